//! `namespace/name` references to the resources rules came from. A name is text the tables
//! hold: the services' names all sit in one [`NameTable`] (100,000 services are 100,000 names,
//! and a string of their own each cost a VM an allocation and a pointer more), policies' and
//! endpoints' in an [`OwnedName`] each. Decisions borrow a [`ResourceName`] from either.

use std::fmt;

use ref_cast::RefCast;
use serde::de::{DeserializeSeed, Error as _, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, SerializeTuple};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
pub(crate) struct NameTable {
    text: Box<str>,
    /// Where each name ends in `text`.
    ends: Box<[u32]>,
}

impl NameTable {
    /// The table of `namespace/name` pairs, in order.
    pub(crate) fn build<'a>(names: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut text = String::new();
        let mut ends = Vec::new();
        for (namespace, name) in names {
            text.push_str(namespace);
            text.push('/');
            text.push_str(name);
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
        }
        Self {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The name at `position`.
    pub(crate) fn get(&self, position: usize) -> Option<&ResourceName> {
        let end = *self.ends.get(position)? as usize;
        let start = match position.checked_sub(1) {
            Some(before) => *self.ends.get(before)? as usize,
            None => 0,
        };
        self.text.get(start..end).map(ResourceName::ref_cast)
    }

    /// Every name, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &ResourceName> {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

impl fmt::Debug for NameTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for NameTable {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Names<'a>(&'a NameTable);
        impl Serialize for Names<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for name in self.0.iter() {
                    seq.serialize_element(name.as_str())?;
                }
                seq.end()
            }
        }
        let text_len = u32::try_from(self.text.len())
            .map_err(|_| serde::ser::Error::custom("names over 4 GiB"))?;
        let mut tuple = s.serialize_tuple(2)?;
        tuple.serialize_element(&text_len)?;
        tuple.serialize_element(&Names(self))?;
        tuple.end()
    }
}

/// The names as they are decoded.
#[derive(Default)]
struct Parts {
    text: String,
    ends: Vec<u32>,
}

/// One name, appended to the parts straight from the decoder's buffer.
struct Name<'a>(&'a mut Parts);

impl<'de> DeserializeSeed<'de> for Name<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_string(self)
    }
}

impl Visitor<'_> for Name<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a resource name")
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<(), E> {
        if ResourceName::parse(name).is_none() {
            return Err(crate::decode_error::refuse(format!(
                "a resource name is malformed ({name:?})"
            )));
        }
        let parts = self.0;
        parts.text.push_str(name);
        let end = u32::try_from(parts.text.len())
            .map_err(|_| crate::decode_error::refuse("names over 4 GiB"))?;
        parts.ends.push(end);
        Ok(())
    }
}

/// The names, reserved up front for what the bytes announce within the decode's bound.
struct Names<'a>(&'a mut Parts);

impl<'de> DeserializeSeed<'de> for Names<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Names<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("resource names")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let parts = self.0;
        let announced = seq.size_hint().unwrap_or(0);
        parts
            .ends
            .reserve_exact(crate::exact_seq::grant(announced, size_of::<u32>()));
        while seq.next_element_seed(Name(parts))?.is_some() {}
        Ok(())
    }
}

impl<'de> Deserialize<'de> for NameTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Table;
        impl<'de> Visitor<'de> for Table {
            type Value = NameTable;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a name table")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NameTable, A::Error> {
                let text_len: u32 = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let announced = text_len as usize;
                let mut parts = Parts {
                    text: String::with_capacity(crate::exact_seq::grant(announced, 1)),
                    ends: Vec::new(),
                };
                seq.next_element_seed(Names(&mut parts))?
                    .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                if parts.text.len() != announced {
                    return Err(crate::decode_error::refuse(format!(
                        "the names take {} bytes, and the table says {announced}",
                        parts.text.len()
                    )));
                }
                Ok(NameTable {
                    text: parts.text.into_boxed_str(),
                    ends: parts.ends.into_boxed_slice(),
                })
            }
        }
        d.deserialize_tuple(2, Table)
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
