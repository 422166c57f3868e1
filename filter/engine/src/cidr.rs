//! Longest-prefix match over IPv4 or IPv6 CIDRs, as a sorted array of boundaries.
//!
//! CIDRs are either disjoint or nested, so the address space splits into intervals that each
//! belong to one most specific CIDR (or none). The table keeps the start of every interval and
//! the set of services that owns it; a lookup is one binary search, whatever the number of rules.

use crate::service_set::{ServiceSet, SetArena};

/// An address width the table works on: `u32` for IPv4, `u128` for IPv6.
pub(crate) trait AddressBits: Copy + Ord + std::fmt::Debug {
    /// The first and last address of `addr/prefix` (host bits of `addr` ignored).
    fn range(addr: Self, prefix: u8) -> (Self, Self);
    fn checked_succ(self) -> Option<Self>;
}

macro_rules! impl_address_bits {
    ($t:ty) => {
        impl AddressBits for $t {
            fn range(addr: Self, prefix: u8) -> (Self, Self) {
                let host_mask = <$t>::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
                (addr & !host_mask, addr | host_mask)
            }
            fn checked_succ(self) -> Option<Self> {
                self.checked_add(1)
            }
        }
    };
}
impl_address_bits!(u32);
impl_address_bits!(u128);

const NONE: ServiceSet = ServiceSet::NONE;

/// A longest-prefix-match table from addresses to service sets.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct CidrTable<A> {
    /// Start of each interval, ascending.
    starts: Box<[A]>,
    /// The set owning `[starts[i], starts[i + 1])`, or [`ServiceSet::NONE`].
    values: Box<[ServiceSet]>,
}

impl<A: AddressBits> CidrTable<A> {
    /// Builds the table. Each entry is `(address, prefix length, value)`; identical CIDRs must
    /// have been merged into one value by the caller (the last one wins otherwise).
    pub(crate) fn build(entries: impl IntoIterator<Item = (A, u8, ServiceSet)>) -> Self {
        let mut ranges: Vec<(A, A, ServiceSet)> = entries
            .into_iter()
            .map(|(addr, prefix, value)| {
                let (first, last) = A::range(addr, prefix);
                (first, last, value)
            })
            .collect();
        // Outer ranges before the ranges nested in them.
        ranges.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));

        let mut bounds: Vec<(A, ServiceSet)> = Vec::with_capacity(ranges.len() * 2);
        let mut open: Vec<(A, ServiceSet)> = Vec::new();
        let close_until =
            |limit: Option<A>, open: &mut Vec<(A, ServiceSet)>, bounds: &mut Vec<_>| {
                while let Some(&(last, _)) = open.last() {
                    if limit.is_some_and(|start| last >= start) {
                        break;
                    }
                    open.pop();
                    if let Some(next) = last.checked_succ() {
                        bounds.push((next, open.last().map_or(NONE, |o| o.1)));
                    }
                }
            };
        for (first, last, value) in ranges {
            close_until(Some(first), &mut open, &mut bounds);
            bounds.push((first, value));
            open.push((last, value));
        }
        close_until(None, &mut open, &mut bounds);

        // Several bounds at one address: the last pushed is the one in force. Then merge
        // neighbours that carry the same value.
        let mut starts = Vec::with_capacity(bounds.len());
        let mut values: Vec<ServiceSet> = Vec::with_capacity(bounds.len());
        for (start, value) in bounds {
            if starts.last() == Some(&start) {
                starts.pop();
                values.pop();
            }
            if values.last() == Some(&value) {
                continue;
            }
            if starts.is_empty() && value == NONE {
                continue;
            }
            starts.push(start);
            values.push(value);
        }
        Self {
            starts: starts.into_boxed_slice(),
            values: values.into_boxed_slice(),
        }
    }

    /// Whether the table is well formed for `services` services: one value per interval start,
    /// starts strictly ascending, every value a gap or a set of those services.
    pub(crate) fn check(&self, arena: &SetArena, services: usize) -> Result<(), String> {
        if self.starts.len() != self.values.len() {
            return Err("an address table has more interval starts than values".into());
        }
        if self
            .starts
            .windows(2)
            .any(|w| matches!(w, [a, b] if a >= b))
        {
            return Err("an address table's intervals are not in ascending order".into());
        }
        match self
            .values
            .iter()
            .find(|&&v| v != NONE && !arena.holds(v, services))
        {
            Some(_) => Err("an address table names a service that does not exist".into()),
            None => Ok(()),
        }
    }

    /// Puts the intervals out of order, as only corrupted tables have them.
    #[cfg(test)]
    pub(crate) fn reverse_for_test(&mut self) {
        self.starts.reverse();
    }

    /// The services of the most specific CIDR containing `addr`.
    pub(crate) fn lookup(&self, addr: A) -> Option<&ServiceSet> {
        let index = self.starts.partition_point(|&start| start <= addr);
        let value = self.values.get(index.checked_sub(1)?)?;
        (*value != NONE).then_some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn set(i: u32) -> ServiceSet {
        ServiceSet::single(i)
    }

    fn v4(text: &str) -> u32 {
        u32::from(text.parse::<Ipv4Addr>().unwrap())
    }

    /// The most specific CIDR wins, and the outer one resumes after the inner one ends.
    #[test]
    fn nested_cidrs_resolve_to_the_most_specific() {
        let table = CidrTable::build([
            (v4("10.0.0.0"), 8, set(1)),
            (v4("10.1.0.0"), 16, set(2)),
            (v4("10.1.2.0"), 24, set(3)),
        ]);
        assert_eq!(table.lookup(v4("10.0.0.1")), Some(&set(1)));
        assert_eq!(table.lookup(v4("10.1.0.1")), Some(&set(2)));
        assert_eq!(table.lookup(v4("10.1.2.255")), Some(&set(3)));
        assert_eq!(table.lookup(v4("10.1.3.0")), Some(&set(2)));
        assert_eq!(table.lookup(v4("10.2.0.0")), Some(&set(1)));
        assert_eq!(table.lookup(v4("11.0.0.0")), None);
        assert_eq!(table.lookup(v4("9.255.255.255")), None);
    }

    /// A /0 covers everything, and ranges ending at the top of the space close cleanly.
    #[test]
    fn edges_of_the_address_space() {
        let table = CidrTable::build([(0u32, 0, set(7)), (v4("255.255.255.255"), 32, set(8))]);
        assert_eq!(table.lookup(0), Some(&set(7)));
        assert_eq!(table.lookup(v4("255.255.255.254")), Some(&set(7)));
        assert_eq!(table.lookup(u32::MAX), Some(&set(8)));
    }

    /// An empty table finds nothing.
    #[test]
    fn empty_table_finds_nothing() {
        let table: CidrTable<u128> = CidrTable::build([]);
        assert_eq!(table.lookup(42), None);
    }
}
