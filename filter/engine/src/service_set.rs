//! Sets of service indices behind one host or CIDR, stored in four bytes in the common case.
//!
//! Most hosts and CIDRs belong to one service. The rare ones shared by several services (the
//! same host on different ports, or one address seen from two workspaces in a combined bundle)
//! point into an overflow arena.

use rustc_hash::FxHashMap;
use std::hash::Hash;

const SHARED: u32 = 1 << 31;

/// One service index, or (high bit set) an index into [`SetArena`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct ServiceSet(u32);

impl ServiceSet {
    /// No services: marks gaps in a CIDR table.
    pub(crate) const NONE: Self = Self(u32::MAX);

    /// The set holding only `service`.
    #[cfg(test)]
    pub(crate) fn single(service: u32) -> Self {
        Self(service & !SHARED)
    }
}

/// The overflow arena for sets of more than one service.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct SetArena {
    shared: Vec<Box<[u32]>>,
}

impl SetArena {
    /// Whether `set` names services below `services` only (`NONE` is not a set). For tables
    /// that were decoded rather than built.
    pub(crate) fn holds(&self, set: ServiceSet, services: usize) -> bool {
        if set == ServiceSet::NONE {
            return false;
        }
        let members = self.get(&set);
        !members.is_empty() && members.iter().all(|&s| (s as usize) < services)
    }

    /// The service indices in `set`, in bundle order.
    pub(crate) fn get<'a>(&'a self, set: &'a ServiceSet) -> &'a [u32] {
        if set.0 & SHARED == 0 {
            std::slice::from_ref(&set.0)
        } else {
            self.shared
                .get((set.0 & !SHARED) as usize)
                .map_or(&[], |s| &s[..])
        }
    }
}

/// Collects `key -> services` while compiling, then packs each set.
#[derive(Debug)]
pub(crate) struct SetBuilder<K> {
    order: Vec<K>,
    members: FxHashMap<K, Vec<u32>>,
}

impl<K: Hash + Eq + Clone> SetBuilder<K> {
    pub(crate) fn new() -> Self {
        Self {
            order: Vec::new(),
            members: FxHashMap::default(),
        }
    }

    pub(crate) fn add(&mut self, key: K, service: u32) {
        let entry = self.members.entry(key.clone()).or_insert_with(|| {
            self.order.push(key);
            Vec::new()
        });
        if entry.last() != Some(&service) {
            entry.push(service);
        }
    }

    /// Packs every set, in the order keys were first added.
    pub(crate) fn finish(mut self, arena: &mut SetArena) -> Vec<(K, ServiceSet)> {
        let mut out = Vec::with_capacity(self.order.len());
        for key in self.order {
            let Some(services) = self.members.remove(&key) else {
                continue;
            };
            let set = match services.as_slice() {
                [one] if one & SHARED == 0 => ServiceSet(*one),
                _ => {
                    let index = u32::try_from(arena.shared.len()).unwrap_or(u32::MAX);
                    arena.shared.push(services.into_boxed_slice());
                    ServiceSet(index | SHARED)
                }
            };
            out.push((key, set));
        }
        out
    }
}
