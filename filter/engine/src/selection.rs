//! Choosing one endpoint for an internal hostname: the closest locality that has a healthy
//! endpoint, then a weighted choice within it.
//!
//! Proximity ranks endpoints against the proxy's locality: same sub-zone, same zone, same
//! region, anywhere. Ejected endpoints (passive outlier detection, kept by the caller behind
//! [`Health`]) are skipped, so traffic fails over outward rank by rank. When none is healthy,
//! the request is denied `no_healthy_endpoint`, never sent to an arbitrary address. A choice
//! takes two passes over the service's endpoints and allocates nothing.

use warden_bundle::{Locality, TargetPort};

use crate::compiled::{Port, Service};
use crate::endpoint::{CompiledEndpoint, EndpointAddress};
use crate::health::Health;
use crate::name::ResourceName;
use crate::outlier::OutlierSettings;
use crate::ranking::{Proximity, Ranked};

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
        service: Service<'p>,
        port: Port<'_>,
        index: usize,
        vantage: Vantage<'_>,
    ) -> Option<Self> {
        let endpoint = service.compiled.endpoints().get(index)?;
        Some(Self {
            endpoint: &endpoint.name,
            index,
            address: &endpoint.address,
            port: target_port(endpoint, port.number, port.target())?,
            locality: &endpoint.locality,
            proximity: vantage.proximity(&endpoint.locality),
            service: service.name,
            endpoints: service.compiled.endpoints().len(),
            outlier: service.compiled.outlier(),
        })
    }
}

/// Picks an endpoint: the closest proximity with a healthy endpoint, then the endpoint whose
/// cumulative weight covers `pick` modulo the total weight of that proximity. `None` when no
/// endpoint is healthy.
pub(crate) fn choose<'p>(
    service: Service<'p>,
    port: Port<'_>,
    ranked: Option<&Ranked>,
    vantage: Vantage<'_>,
    health: &dyn Health,
    pick: u64,
) -> Option<EndpointChoice<'p>> {
    // The fast path: ranked for this proxy, nothing ejected. Every endpoint has the target
    // port (compile checks named target ports on every endpoint).
    let index = match (ranked, health.any_ejected(service.name)) {
        (Some(ranked), false) => ranked.pick(pick)?,
        _ => linear_pick(service, port, vantage, health, pick)?,
    };
    EndpointChoice::of(service, port, index, vantage)
}

/// The linear path, for a proxy locality nothing was ranked for, or while some endpoint is
/// ejected: two passes, checking each endpoint's health.
fn linear_pick(
    service: Service<'_>,
    port: Port<'_>,
    vantage: Vantage<'_>,
    health: &dyn Health,
    pick: u64,
) -> Option<usize> {
    let endpoints = service.endpoints();
    let usable = |(index, endpoint): &(usize, &CompiledEndpoint)| {
        endpoint.weight > 0
            && !health.is_ejected(service.name, *index)
            && target_port(endpoint, port.number, port.target()).is_some()
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
