//! How close endpoints are to a proxy ([`Proximity`]), and a service's endpoints ranked once
//! for one proxy locality ([`Ranked`]), so a request picks in O(log n). Knows endpoints and
//! localities, nothing of services or decisions.

use warden_bundle::Locality;

use crate::endpoint::CompiledEndpoint;

/// How close an endpoint is to the proxy. Lower is closer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proximity {
    SameSubZone,
    SameZone,
    /// The n-th failover target of a `FailoverPolicy` locality mapping.
    Mapped(u8),
    SameRegion,
    Remote,
}

impl Proximity {
    /// The proximity of an endpoint in `endpoint` to a proxy in `proxy` (unknown: remote).
    pub fn of(proxy: Option<&Locality>, endpoint: &Locality) -> Self {
        let Some(proxy) = proxy else {
            return Self::Remote;
        };
        let same = |a: &str, b: &str| !a.is_empty() && a == b;
        if !same(&proxy.region, &endpoint.region) {
            Self::Remote
        } else if !same(&proxy.zone, &endpoint.zone) {
            Self::SameRegion
        } else if !same(&proxy.sub_zone, &endpoint.sub_zone) {
            Self::SameZone
        } else {
            Self::SameSubZone
        }
    }

    /// Like [`Proximity::of`], with a failover mapping for the proxy's locality: endpoints
    /// outside the proxy's own zone that lie in the mapping's n-th target rank `Mapped(n)`.
    pub fn ranked(
        proxy: Option<&Locality>,
        mapping: Option<&[Locality]>,
        endpoint: &Locality,
    ) -> Self {
        let base = Self::of(proxy, endpoint);
        if base <= Self::SameZone {
            return base;
        }
        mapping
            .and_then(|targets| targets.iter().position(|t| t.contains(endpoint)))
            .and_then(|i| u8::try_from(i).ok())
            .map_or(base, Self::Mapped)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SameSubZone => "same sub-zone",
            Self::SameZone => "same zone",
            Self::Mapped(_) => "failover target",
            Self::SameRegion => "same region",
            Self::Remote => "other region",
        }
    }
}

/// A service's endpoints ranked once for one proxy locality: endpoint indices sorted by
/// proximity, the tiers of equal proximity, and cumulative weights for a binary-search pick.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ranked {
    order: Box<[u32]>,
    /// `(proximity, end)`: each tier runs from the previous tier's end to `end` in `order`.
    tiers: Box<[(Proximity, u32)]>,
    /// Cumulative weight along `order`.
    cumulative: Box<[u64]>,
}

impl Ranked {
    pub(crate) fn new(
        endpoints: &[CompiledEndpoint],
        proxy: Option<&Locality>,
        mapping: Option<&[Locality]>,
    ) -> Self {
        let mut order: Vec<u32> = (0..endpoints.len())
            .filter_map(|i| u32::try_from(i).ok())
            .collect();
        let proximity = |i: &u32| {
            endpoints.get(*i as usize).map_or(Proximity::Remote, |e| {
                Proximity::ranked(proxy, mapping, &e.locality)
            })
        };
        order.sort_by_key(|i| (proximity(i), *i));
        let mut tiers: Vec<(Proximity, u32)> = Vec::new();
        let mut cumulative = Vec::with_capacity(order.len());
        let mut sum = 0u64;
        for (position, i) in order.iter().enumerate() {
            let p = proximity(i);
            let end = u32::try_from(position + 1).unwrap_or(u32::MAX);
            match tiers.last_mut() {
                Some((last, tier_end)) if *last == p => *tier_end = end,
                _ => tiers.push((p, end)),
            }
            sum += endpoints
                .get(*i as usize)
                .map_or(0, |e| u64::from(e.weight));
            cumulative.push(sum);
        }
        Self {
            order: order.into_boxed_slice(),
            tiers: tiers.into_boxed_slice(),
            cumulative: cumulative.into_boxed_slice(),
        }
    }

    /// The closest tier with weight, then the endpoint covering `pick`: O(log n).
    pub(crate) fn pick(&self, pick: u64) -> Option<usize> {
        let mut start = 0usize;
        for &(_, end) in self.tiers.iter() {
            let end = end as usize;
            let before = start
                .checked_sub(1)
                .and_then(|i| self.cumulative.get(i))
                .copied()
                .unwrap_or(0);
            let total = self.cumulative.get(end.checked_sub(1)?)? - before;
            if total > 0 {
                let target = before + pick % total;
                let slot = start
                    + self
                        .cumulative
                        .get(start..end)?
                        .partition_point(|&c| c <= target);
                return self.order.get(slot).map(|&i| i as usize);
            }
            start = end;
        }
        None
    }
}
