//! `namespace/name` references to the resources rules came from. A name is text the tables
//! hold: the services' names all sit in one [`NameTable`] (100,000 services are 100,000 names,
//! and a string of their own each cost a VM an allocation and a pointer more), policies' and
//! endpoints' in an [`OwnedName`] each. Decisions borrow a [`ResourceName`] from either.

use std::fmt;

use ref_cast::RefCast;
use serde::de::DeserializeSeed;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::packed::{self, Packed};

/// `namespace/name` of a resource (a namespace holds no `/`).
#[derive(PartialEq, Eq, Hash, RefCast)]
#[repr(transparent)]
pub struct ResourceName(str);

impl ResourceName {
    /// The name `full` spells (`namespace/name`); `None` without a `/`.
    pub(crate) fn parse(full: &str) -> Option<&Self> {
        full.contains('/').then(|| Self::ref_cast(full))
    }

    /// `namespace/name`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn namespace(&self) -> &str {
        self.0.split_once('/').map_or("", |(ns, _)| ns)
    }

    pub fn name(&self) -> &str {
        self.0.split_once('/').map_or("", |(_, name)| name)
    }
}

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &self.0)
    }
}

/// A name held on its own (an access policy's, an endpoint's).
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct OwnedName(Box<str>);

impl OwnedName {
    pub(crate) fn new(namespace: &str, name: &str) -> Self {
        Self(format!("{namespace}/{name}").into_boxed_str())
    }
}

impl std::ops::Deref for OwnedName {
    type Target = ResourceName;

    fn deref(&self) -> &ResourceName {
        ResourceName::ref_cast(&self.0)
    }
}

impl fmt::Display for OwnedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for OwnedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl Serialize for OwnedName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for OwnedName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let full = String::deserialize(d)?;
        if ResourceName::parse(&full).is_none() {
            return Err(crate::decode_error::refuse(format!(
                "a resource name is malformed ({full:?})"
            )));
        }
        Ok(Self(full.into_boxed_str()))
    }
}

/// Names by position (a service's is at the service's index): every name in one string.
///
/// In the compiled form: the names' total length, then the names in order. Decoding appends
/// each name to the one string and refuses one without a `/`.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct NameTable(Packed);

impl NameTable {
    /// The table of `namespace/name` pairs, in order.
    pub(crate) fn build<'a>(names: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut table = packed::Builder::default();
        for (namespace, name) in names {
            table.push(&[namespace, "/", name]);
        }
        Self(table.finish())
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The name at `position`.
    pub(crate) fn get(&self, position: usize) -> Option<&ResourceName> {
        self.0.get(position).map(ResourceName::ref_cast)
    }

    /// Every name, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &ResourceName> {
        self.0.iter().map(ResourceName::ref_cast)
    }
}

impl fmt::Debug for NameTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The names' entries in the compiled form: each name alone, with a `/`.
struct Names;

impl packed::Entries for Names {
    type Value = ();
    const WHAT: &'static str = "the names";

    fn read<'de, D: Deserializer<'de>>(d: D, text: &mut String) -> Result<(), D::Error> {
        packed::Append(text).deserialize(d)
    }

    fn check(_previous: Option<&str>, name: &str) -> Result<(), String> {
        match ResourceName::parse(name) {
            Some(_) => Ok(()),
            None => Err(format!("a resource name is malformed ({name:?})")),
        }
    }
}

impl Serialize for NameTable {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0
            .serialize(s, <Names as packed::Entries>::WHAT, self.0.iter())
    }
}

impl<'de> Deserialize<'de> for NameTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (names, _) = packed::deserialize::<Names, D>(d)?;
        Ok(Self(names))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// The parts come back as they went in.
    #[test]
    fn parts_round_trip() {
        let n = OwnedName::new("pay", "orders-db");
        assert_eq!(n.as_str(), "pay/orders-db");
        assert_eq!(n.namespace(), "pay");
        assert_eq!(n.name(), "orders-db");
        assert!(ResourceName::parse("no-slash").is_none());
    }

    /// Names are found by position, survive the compiled form, and a name without its `/` or
    /// a wrong total length is refused when decoded.
    #[test]
    fn tables_round_trip_and_malformed_names_are_refused() {
        let table = NameTable::build([("pay", "orders-db"), ("ops", "metrics")]);
        assert_eq!(table.len(), 2);
        assert_eq!(table.get(1).map(ResourceName::as_str), Some("ops/metrics"));
        assert_eq!(table.get(0).map(ResourceName::name), Some("orders-db"));
        assert!(table.get(2).is_none());
        let bytes = postcard::to_allocvec(&table).unwrap();
        let decoded: NameTable = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(decoded, table);
        for (len, names) in [(7u32, vec!["a/b", "cde"]), (4, vec!["a/b"])] {
            let bytes = postcard::to_allocvec(&(len, names)).unwrap();
            let err = postcard::from_bytes::<NameTable>(&bytes).unwrap_err();
            assert_eq!(err, postcard::Error::SerdeDeCustom, "{err}");
        }
    }
}
