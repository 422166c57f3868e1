//! Choosing one endpoint for an internal hostname: the closest locality that has a healthy
//! endpoint, then a weighted choice within it.
//!
//! Proximity ranks endpoints against the proxy's locality: same sub-zone, same zone, same
//! region, anywhere. Ejected endpoints (passive outlier detection, kept by the caller behind
//! [`Health`]) are skipped, so traffic fails over outward rank by rank. When none is healthy,
//! the request is denied `no_healthy_endpoint`, never sent to an arbitrary address. A choice
//! takes two passes over the service's endpoints and allocates nothing.

use warden_bundle::{Locality, TargetPort};

use crate::endpoint::{CompiledEndpoint, EndpointAddress};
use crate::name::ResourceName;
use crate::outlier::OutlierSettings;
use crate::policy::{CompiledPort, CompiledService};

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

/// Which endpoints are ejected right now. The filter keeps this state in proxy-wasm shared
/// data so every worker sees it; tests and `explain` use [`AllHealthy`].
pub trait Health {
    /// Whether endpoint `index` of `service` is ejected.
    fn is_ejected(&self, service: &ResourceName, index: usize) -> bool;

    /// Whether any endpoint of `service` may be ejected. `false` lets the choice skip
    /// per-endpoint checks; the default is the safe answer.
    fn any_ejected(&self, _service: &ResourceName) -> bool {
        true
    }
}

/// No endpoint is ejected.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllHealthy;

impl Health for AllHealthy {
    fn is_ejected(&self, _service: &ResourceName, _index: usize) -> bool {
        false
    }

    fn any_ejected(&self, _service: &ResourceName) -> bool {
        false
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
    fn pick(&self, pick: u64) -> Option<usize> {
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

/// The endpoint a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointChoice<'p> {
    /// `namespace/name` of the ExternalEndpoint.
    pub endpoint: &'p ResourceName,
    /// Its position in the service's endpoints (the key for health state).
    pub index: usize,
    pub address: &'p EndpointAddress,
    pub port: u16,
    pub locality: &'p Locality,
    pub proximity: Proximity,
    /// The service, its number of endpoints and its outlier settings: what recording the
    /// outcome of this request needs.
    pub service: &'p ResourceName,
    pub endpoints: usize,
    pub outlier: &'p OutlierSettings,
}

/// The port traffic for `service_port` goes to on `endpoint`, if the endpoint has it.
pub(crate) fn target_port(
    endpoint: &CompiledEndpoint,
    service_port: u16,
    target: Option<&TargetPort>,
) -> Option<u16> {
    match target {
        None => Some(service_port),
        Some(TargetPort::Number(n)) => Some(*n),
        Some(TargetPort::Name(name)) => endpoint.port_named(name),
    }
}

/// Where a choice is made from: the proxy's locality and its failover targets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Vantage<'a> {
    pub(crate) proxy: Option<&'a Locality>,
    pub(crate) mapping: Option<&'a [Locality]>,
}

impl Vantage<'_> {
    fn proximity(&self, endpoint: &Locality) -> Proximity {
        Proximity::ranked(self.proxy, self.mapping, endpoint)
    }
}

impl<'p> EndpointChoice<'p> {
    /// Endpoint `index` of `service` for traffic to `port`; `None` when the endpoint does not
    /// have the port's target.
    pub(crate) fn of(
        service: &'p CompiledService,
        port: &CompiledPort,
        index: usize,
        vantage: Vantage<'_>,
    ) -> Option<Self> {
        let endpoint = service.endpoints.get(index)?;
        Some(Self {
            endpoint: &endpoint.name,
            index,
            address: &endpoint.address,
            port: target_port(endpoint, port.number, port.target.as_ref())?,
            locality: &endpoint.locality,
            proximity: vantage.proximity(&endpoint.locality),
            service: &service.name,
            endpoints: service.endpoints.len(),
            outlier: &service.outlier,
        })
    }
}

/// Picks an endpoint: the closest proximity with a healthy endpoint, then the endpoint whose
/// cumulative weight covers `pick` modulo the total weight of that proximity. `None` when no
/// endpoint is healthy.
pub(crate) fn choose<'p>(
    service: &'p CompiledService,
    port: &CompiledPort,
    ranked: Option<&Ranked>,
    vantage: Vantage<'_>,
    health: &dyn Health,
    pick: u64,
) -> Option<EndpointChoice<'p>> {
    // The fast path: ranked for this proxy, nothing ejected. Every endpoint has the target
    // port (compile checks named target ports on every endpoint).
    let index = match (ranked, health.any_ejected(&service.name)) {
        (Some(ranked), false) => ranked.pick(pick)?,
        _ => linear_pick(service, port, vantage, health, pick)?,
    };
    EndpointChoice::of(service, port, index, vantage)
}

/// The linear path, for a proxy locality nothing was ranked for, or while some endpoint is
/// ejected: two passes, checking each endpoint's health.
fn linear_pick(
    service: &CompiledService,
    port: &CompiledPort,
    vantage: Vantage<'_>,
    health: &dyn Health,
    pick: u64,
) -> Option<usize> {
    let endpoints = &service.endpoints;
    let usable = |(index, endpoint): &(usize, &CompiledEndpoint)| {
        endpoint.weight > 0
            && !health.is_ejected(&service.name, *index)
            && target_port(endpoint, port.number, port.target.as_ref()).is_some()
    };
    let mut best: Option<Proximity> = None;
    let mut total: u64 = 0;
    for (_, endpoint) in endpoints.iter().enumerate().filter(usable) {
        let proximity = vantage.proximity(&endpoint.locality);
        match best {
            Some(b) if proximity > b => {}
            Some(b) if proximity == b => total += u64::from(endpoint.weight),
            _ => {
                best = Some(proximity);
                total = u64::from(endpoint.weight);
            }
        }
    }
    let best = best?;
    let mut remaining = pick % total.max(1);
    for (index, endpoint) in endpoints.iter().enumerate().filter(usable) {
        if vantage.proximity(&endpoint.locality) != best {
            continue;
        }
        let weight = u64::from(endpoint.weight);
        if remaining < weight {
            return Some(index);
        }
        remaining -= weight;
    }
    None
}
