//! How a hash map is written in the compiled form (`crate::compact`): its entries sorted by
//! key, so that the bytes depend on neither the hasher nor the platform that wrote them (a
//! signature made where the bundle was built holds for the compiled form rendered elsewhere),
//! and read back only when the keys are strictly ascending (no duplicates, nothing reordered).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub(crate) fn serialize<K, V, H, S>(map: &HashMap<K, V, H>, s: S) -> Result<S::Ok, S::Error>
where
    K: Ord + Serialize,
    V: Serialize,
    S: Serializer,
{
    let mut entries: Vec<(&K, &V)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    s.collect_seq(entries)
}

pub(crate) fn deserialize<'de, K, V, H, D>(d: D) -> Result<HashMap<K, V, H>, D::Error>
where
    K: Ord + Hash + Deserialize<'de>,
    V: Deserialize<'de>,
    H: BuildHasher + Default,
    D: Deserializer<'de>,
{
    let entries = Vec::<(K, V)>::deserialize(d)?;
    if entries
        .windows(2)
        .any(|w| matches!(w, [a, b] if a.0 >= b.0))
    {
        return Err(crate::decode_error::refuse(
            "a table's keys are not in strictly ascending order",
        ));
    }
    let mut map = HashMap::with_capacity_and_hasher(entries.len(), H::default());
    map.extend(entries);
    Ok(map)
}
