//! Exact and wildcard host lookup.
//!
//! Exact hosts sit in one table. A wildcard `*.example.com` is stored under its suffix
//! `example.com`; a lookup of `a.b.example.com` tries the suffixes `b.example.com`,
//! `example.com`, `com` in that order, so the most specific wildcard wins and the apex
//! `example.com` itself never matches `*.example.com`. No lookup allocates. Both are
//! [`KeyTable`]s: a service names its host by position in the exact one.

use crate::key_table::KeyTable;
use crate::service_set::{ServiceSet, SetArena};

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct HostTable {
    exact: KeyTable,
    wildcard: KeyTable,
    /// The fewest labels any wildcard suffix has: shorter suffixes need no lookup. (A fixed
    /// width: the compiled form is written on 64-bit hosts and read in 32-bit wasm.)
    min_wildcard_labels: u32,
}

/// Which kind of host entry matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostMatch {
    Exact,
    Wildcard,
}

impl HostTable {
    /// Builds the table from normalised patterns: exact names, or `*.` followed by a suffix.
    pub(crate) fn build(entries: Vec<(Box<str>, ServiceSet)>) -> Self {
        let mut exact = Vec::new();
        let mut wildcard = Vec::new();
        let mut min_wildcard_labels = u32::MAX;
        for (pattern, set) in entries {
            match pattern.strip_prefix("*.") {
                Some(suffix) => {
                    let labels = u32::try_from(suffix.split('.').count()).unwrap_or(u32::MAX);
                    min_wildcard_labels = min_wildcard_labels.min(labels);
                    wildcard.push((Box::from(suffix), set));
                }
                None => exact.push((pattern, set)),
            }
        }
        Self {
            exact: KeyTable::build(exact),
            wildcard: KeyTable::build(wildcard),
            min_wildcard_labels,
        }
    }

    /// The position of the exact host `host`, by which a service names it.
    pub(crate) fn exact_position(&self, host: &str) -> Option<u32> {
        self.exact.position(host)
    }

    /// The exact host at `position`.
    pub(crate) fn exact_host(&self, position: u32) -> Option<&str> {
        self.exact.key(position)
    }

    /// How many exact hosts the table holds.
    pub(crate) fn exact_len(&self) -> usize {
        self.exact.len()
    }

    /// Whether every entry names a set of `services` services. For decoded tables.
    pub(crate) fn check(&self, arena: &SetArena, services: usize) -> Result<(), String> {
        let fewest = self
            .wildcard
            .iter()
            .map(|(suffix, _)| u32::try_from(suffix.split('.').count()).unwrap_or(u32::MAX))
            .min()
            .unwrap_or(u32::MAX);
        if fewest != self.min_wildcard_labels {
            return Err("the wildcard hosts' label count does not match them".into());
        }
        match self
            .exact
            .values()
            .chain(self.wildcard.values())
            .find(|&&set| !arena.holds(set, services))
        {
            Some(_) => Err("a host names a service that does not exist".into()),
            None => Ok(()),
        }
    }

    /// The set registered for `host` (already normalised), exact names first.
    pub(crate) fn lookup(&self, host: &str) -> Option<(&ServiceSet, HostMatch)> {
        if let Some(set) = self.exact.get(host) {
            return Some((set, HostMatch::Exact));
        }
        if self.wildcard.is_empty() {
            return None;
        }
        let mut labels_left = host.bytes().filter(|&b| b == b'.').count();
        let mut rest = host;
        let min_labels = usize::try_from(self.min_wildcard_labels).unwrap_or(usize::MAX);
        while labels_left >= min_labels {
            let (_, suffix) = rest.split_once('.')?;
            if let Some(set) = self.wildcard.get(suffix) {
                return Some((set, HostMatch::Wildcard));
            }
            rest = suffix;
            labels_left -= 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn table(patterns: &[&str]) -> HostTable {
        let mut arena = crate::service_set::SetArena::default();
        let mut builder = crate::service_set::SetBuilder::new();
        for (i, p) in patterns.iter().enumerate() {
            builder.add(Box::<str>::from(*p), i as u32);
        }
        HostTable::build(builder.finish(&mut arena))
    }

    fn find(t: &HostTable, host: &str) -> Option<(u32, HostMatch)> {
        t.lookup(host).map(|(set, m)| {
            let arena = crate::service_set::SetArena::default();
            (arena.get(set)[0], m)
        })
    }

    /// `*.example.com` matches one or more labels below the apex, never the apex.
    #[test]
    fn wildcard_does_not_match_apex() {
        let t = table(&["*.example.com"]);
        assert_eq!(find(&t, "a.example.com"), Some((0, HostMatch::Wildcard)));
        assert_eq!(find(&t, "a.b.example.com"), Some((0, HostMatch::Wildcard)));
        assert_eq!(find(&t, "example.com"), None);
        assert_eq!(find(&t, "badexample.com"), None);
    }

    /// The most specific wildcard wins, and an exact host beats any wildcard.
    #[test]
    fn most_specific_match_wins() {
        let t = table(&["*.example.com", "*.eu.example.com", "api.eu.example.com"]);
        assert_eq!(find(&t, "x.eu.example.com"), Some((1, HostMatch::Wildcard)));
        assert_eq!(find(&t, "x.us.example.com"), Some((0, HostMatch::Wildcard)));
        assert_eq!(find(&t, "api.eu.example.com"), Some((2, HostMatch::Exact)));
    }
}
