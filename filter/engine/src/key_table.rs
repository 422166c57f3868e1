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
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::packed::{self, Packed};
use crate::service_set::ServiceSet;

#[derive(Clone, Default)]
pub(crate) struct KeyTable {
    /// Every key, in ascending order, one after the other.
    keys: Packed,
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
        let text_len = entries.iter().map(|(k, _)| k.len()).sum();
        let mut keys = packed::Builder::with_capacity(text_len, entries.len());
        let mut values = Vec::with_capacity(entries.len());
        for (key, set) in entries {
            keys.push(&[&key]);
            values.push(set);
        }
        Self::indexed(keys.finish(), values.into())
    }

    fn indexed(keys: Packed, values: Box<[ServiceSet]>) -> Self {
        let mut index = HashTable::with_capacity(keys.len());
        for (position, key) in (0u32..).zip(keys.iter()) {
            let by_position = |&p: &u32| keys.get(p as usize).map_or(0, hash);
            index.insert_unique(hash(key), position, by_position);
        }
        Self {
            keys,
            values,
            index,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.len() == 0
    }

    /// The key at `position`.
    pub(crate) fn key(&self, position: u32) -> Option<&str> {
        self.keys.get(position as usize)
    }

    /// Every key with its set, in ascending key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &ServiceSet)> {
        self.keys.iter().zip(self.values.iter())
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

/// The keys' entries in the compiled form: `(key, set)` pairs.
struct Pairs;

impl packed::Entries for Pairs {
    type Value = ServiceSet;
    const WHAT: &'static str = "a host table's keys";

    fn read<'de, D: Deserializer<'de>>(d: D, text: &mut String) -> Result<ServiceSet, D::Error> {
        packed::read_pair(d, text)
    }

    /// Keys in strictly ascending order (a duplicate is refused too).
    fn check(previous: Option<&str>, key: &str) -> Result<(), String> {
        match previous {
            Some(previous) if previous >= key => {
                Err("a host table's keys are not in strictly ascending order".to_owned())
            }
            _ => Ok(()),
        }
    }
}

impl Serialize for KeyTable {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.keys
            .serialize(s, <Pairs as packed::Entries>::WHAT, self.iter())
    }
}

impl<'de> Deserialize<'de> for KeyTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (keys, values) = packed::deserialize::<Pairs, D>(d)?;
        Ok(KeyTable::indexed(keys, values.into_boxed_slice()))
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
