//! A read-only map from names (hosts, wildcard suffixes) to service sets, packed for a VM that
//! holds 100,000 of them: every key in one string, in ascending order, found through a hash
//! index of positions. A key costs its bytes and about fourteen more (its end, its set, its
//! index slot and control byte, the index's spare slots), with no allocation of its own,
//! and a position names a key for good (a service's host is a position, not another copy).
//!
//! In the compiled form the table is the keys' total length, then `(key, set)` pairs in
//! strictly ascending key order; decoding appends each key to the one string as it is read
//! and refuses keys out of order (a duplicate too). The index is rebuilt after decoding.

use std::fmt;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use serde::de::{DeserializeSeed, Error as _, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, SerializeTuple};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::service_set::ServiceSet;

#[derive(Clone, Default)]
pub(crate) struct KeyTable {
    /// Every key, in ascending order, one after the other.
    text: Box<str>,
    /// Where each key ends in `text`.
    ends: Box<[u32]>,
    values: Box<[ServiceSet]>,
    /// Positions, by the key's hash.
    index: HashTable<u32>,
}

impl fmt::Debug for KeyTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

fn hash(key: &str) -> u64 {
    FxBuildHasher.hash_one(key)
}

impl KeyTable {
    /// The table of `entries` (keys distinct).
    pub(crate) fn build(mut entries: Vec<(Box<str>, ServiceSet)>) -> Self {
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut text = String::with_capacity(entries.iter().map(|(k, _)| k.len()).sum());
        let mut ends = Vec::with_capacity(entries.len());
        let mut values = Vec::with_capacity(entries.len());
        for (key, set) in entries {
            text.push_str(&key);
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
            values.push(set);
        }
        Self::indexed(text.into_boxed_str(), ends.into(), values.into())
    }

    fn indexed(text: Box<str>, ends: Box<[u32]>, values: Box<[ServiceSet]>) -> Self {
        let mut table = Self {
            text,
            ends,
            values,
            index: HashTable::new(),
        };
        let mut index = HashTable::with_capacity(table.len());
        for (position, key) in (0u32..).zip(table.keys()) {
            let by_position = |&p: &u32| table.key(p).map_or(0, hash);
            index.insert_unique(hash(key), position, by_position);
        }
        table.index = index;
        table
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The key at `position`.
    pub(crate) fn key(&self, position: u32) -> Option<&str> {
        let at = position as usize;
        let end = *self.ends.get(at)? as usize;
        let start = match at.checked_sub(1) {
            Some(before) => *self.ends.get(before)? as usize,
            None => 0,
        };
        self.text.get(start..end)
    }

    fn keys(&self) -> impl Iterator<Item = &str> {
        (0..self.ends.len())
            .filter_map(|p| u32::try_from(p).ok())
            .filter_map(|p| self.key(p))
    }

    /// Every key with its set, in ascending key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &ServiceSet)> {
        self.keys().zip(self.values.iter())
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &ServiceSet> {
        self.values.iter()
    }

    /// The position of `key`.
    pub(crate) fn position(&self, key: &str) -> Option<u32> {
        self.index
            .find(hash(key), |&p| self.key(p) == Some(key))
            .copied()
    }

    /// The set registered for `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&ServiceSet> {
        self.values.get(self.position(key)? as usize)
    }
}

impl Serialize for KeyTable {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Entries<'a>(&'a KeyTable);
        impl Serialize for Entries<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for entry in self.0.iter() {
                    seq.serialize_element(&entry)?;
                }
                seq.end()
            }
        }
        let text_len = u32::try_from(self.text.len())
            .map_err(|_| serde::ser::Error::custom("a key table over 4 GiB"))?;
        let mut tuple = s.serialize_tuple(2)?;
        tuple.serialize_element(&text_len)?;
        tuple.serialize_element(&Entries(self))?;
        tuple.end()
    }
}

/// The keys and sets as they are decoded.
struct Parts {
    text: String,
    ends: Vec<u32>,
    values: Vec<ServiceSet>,
}

/// Appends one key to `text`, straight from the decoder's buffer.
struct Key<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_string(self)
    }
}

impl Visitor<'_> for Key<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<(), E> {
        self.0.push_str(key);
        Ok(())
    }
}

/// One `(key, set)` pair, appended to the parts.
struct Entry<'a>(&'a mut Parts);

impl<'de> DeserializeSeed<'de> for Entry<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_tuple(2, self)
    }
}

impl<'de> Visitor<'de> for Entry<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key and its services")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let parts = self.0;
        let start = parts.text.len();
        seq.next_element_seed(Key(&mut parts.text))?
            .ok_or_else(|| A::Error::invalid_length(0, &"a key and its services"))?;
        let set: ServiceSet = seq
            .next_element()?
            .ok_or_else(|| A::Error::invalid_length(1, &"a key and its services"))?;
        let previous_start = match parts.ends.len().checked_sub(2) {
            Some(at) => parts.ends.get(at).map_or(0, |&e| e as usize),
            None => 0,
        };
        let key = parts.text.get(start..).unwrap_or_default();
        let previous = match parts.ends.last() {
            Some(_) => parts.text.get(previous_start..start),
            None => None,
        };
        if previous.is_some_and(|p| p >= key) {
            return Err(crate::decode_error::refuse(
                "a host table's keys are not in strictly ascending order",
            ));
        }
        let end = u32::try_from(parts.text.len())
            .map_err(|_| crate::decode_error::refuse("a host table over 4 GiB"))?;
        parts.ends.push(end);
        parts.values.push(set);
        Ok(())
    }
}

/// The pairs, reserved up front for what the bytes announce within the decode's bound.
struct Entries<'a>(&'a mut Parts);

impl<'de> DeserializeSeed<'de> for Entries<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Entries<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key table's entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let parts = self.0;
        let announced = seq.size_hint().unwrap_or(0);
        let reserved =
            crate::exact_seq::grant(announced, size_of::<u32>() + size_of::<ServiceSet>());
        parts.ends.reserve_exact(reserved);
        parts.values.reserve_exact(reserved);
        while seq.next_element_seed(Entry(parts))?.is_some() {}
        Ok(())
    }
}

impl<'de> Deserialize<'de> for KeyTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Table;
        impl<'de> Visitor<'de> for Table {
            type Value = KeyTable;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key table")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyTable, A::Error> {
                let text_len: u32 = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let announced = text_len as usize;
                let mut parts = Parts {
                    text: String::with_capacity(crate::exact_seq::grant(announced, 1)),
                    ends: Vec::new(),
                    values: Vec::new(),
                };
                seq.next_element_seed(Entries(&mut parts))?
                    .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                if parts.text.len() != announced {
                    return Err(crate::decode_error::refuse(format!(
                        "a host table's keys take {} bytes, and the table says {announced}",
                        parts.text.len()
                    )));
                }
                Ok(KeyTable::indexed(
                    parts.text.into_boxed_str(),
                    parts.ends.into_boxed_slice(),
                    parts.values.into_boxed_slice(),
                ))
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

    fn set(i: u32) -> ServiceSet {
        ServiceSet::single(i)
    }

    #[test]
    fn keys_are_found_by_name_and_position() {
        let table = KeyTable::build(vec![
            ("b.example".into(), set(1)),
            ("a.example".into(), set(0)),
            ("c".into(), set(2)),
        ]);
        assert_eq!(table.len(), 3);
        assert_eq!(table.get("a.example"), Some(&set(0)));
        assert_eq!(table.get("c"), Some(&set(2)));
        assert_eq!(table.get("d"), None);
        assert_eq!(table.get("a.exampl"), None);
        let position = table.position("b.example").unwrap();
        assert_eq!(table.key(position), Some("b.example"));
        assert_eq!(table.key(3), None);
        let keys: Vec<&str> = table.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a.example", "b.example", "c"]);
        assert!(KeyTable::build(Vec::new()).is_empty());
    }

    #[test]
    fn decoded_tables_match_and_out_of_order_keys_are_refused() {
        let table = KeyTable::build(vec![("x".into(), set(4)), ("w.v".into(), set(5))]);
        let bytes = postcard::to_allocvec(&table).unwrap();
        let decoded: KeyTable = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(format!("{decoded:?}"), format!("{table:?}"));
        assert_eq!(decoded.get("x"), Some(&set(4)));
        for entries in [
            vec![("b", 1u32), ("a", 2)],
            vec![("a", 1), ("a", 2)],
            vec![("ab", 1), ("a", 2)],
        ] {
            let len: u32 = entries.iter().map(|(k, _)| k.len() as u32).sum();
            let entries: Vec<(&str, ServiceSet)> =
                entries.into_iter().map(|(k, s)| (k, set(s))).collect();
            let bytes = postcard::to_allocvec(&(len, entries)).unwrap();
            let err = postcard::from_bytes::<KeyTable>(&bytes).unwrap_err();
            assert_eq!(err, postcard::Error::SerdeDeCustom, "{err}");
        }
    }
}
