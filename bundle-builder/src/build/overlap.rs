//! The overlap rule: ExternalServices visible in the same workspace must not claim the same
//! host on the same port, or overlapping addresses. The later one (by `creationTimestamp`,
//! then namespace/name) is rejected and left out of the bundle; the earlier keeps working,
//! and, as in Gloo, the bundle is built with everything else (the error fails `validate`).
//! Under `ALLOW_ANY` leaving a service out would let its other hosts and addresses pass
//! unchecked, so there an overlap is an error that writes no bundle.
//!
//! Services are taken earliest first. Hosts are keyed by `(host, port)`; accepted address
//! ranges are kept disjoint in an ordered map, so checking the one range that starts at or
//! before a new range's end is enough. Each check is O(log n): never quadratic.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ipnet::IpNet;
use warden_bundle::{OutboundMode, Protocol};
use warden_engine::validate::address;

use super::services::BuiltService;
use super::workspaces::Workspaces;
use crate::diagnostic::{Diagnostic, Diagnostics, Severity};

/// Indices (into `services`) of the services the rule rejects.
pub fn reject_overlaps(
    services: &[BuiltService<'_>],
    workspaces: &Workspaces,
    mode: OutboundMode,
    diagnostics: &mut Diagnostics,
) -> BTreeSet<usize> {
    // Leaving a service out never widens access under REGISTRY_ONLY (its destinations are
    // then unregistered, and denied); under ALLOW_ANY they would pass.
    let report = |diagnostics: &mut Diagnostics, d: Diagnostic| match mode {
        OutboundMode::RegistryOnly => diagnostics.push_left_out(d),
        OutboundMode::AllowAny => {
            let message = format!(
                "{}; under ALLOW_ANY its other destinations would then pass unchecked, so no bundle is written",
                d.message
            );
            diagnostics.push(Diagnostic { message, ..d });
        }
    };
    let mut order: Vec<usize> = (0..services.len()).collect();
    order.sort_by_key(|&i| services.get(i).map(BuiltService::age_key));
    let mut rejected = BTreeSet::new();
    for viewer in workspaces.names() {
        let mut hosts: HashMap<(&str, u16), usize> = HashMap::new();
        // Plain-TCP ports of services known only by name: a sidecar sees just IP and port.
        let mut blind_tcp: HashMap<u16, usize> = HashMap::new();
        // Address ranges by family: start -> (end, service).
        let mut ranges: [BTreeMap<u128, (u128, usize)>; 2] = [BTreeMap::new(), BTreeMap::new()];
        for &i in &order {
            let Some(s) = services.get(i) else { continue };
            if rejected.contains(&i) || !workspaces.visible(s.shared(), &viewer) {
                continue;
            }
            if let Some((j, port)) = blind_tcp_clash(s, &blind_tcp) {
                let other = services
                    .get(j)
                    .map_or_else(String::new, |e| e.resource.display());
                report(diagnostics, s.resource.diagnostic("overlap", 
                    Severity::Error,
                    "spec.ports",
                    format!(
                        "TCP port {port} is also a TCP port of {other} in workspace {viewer}, and neither has addresses: a sidecar sees only the address and port of a TCP connection, so it cannot tell them apart, and this service is left out of the bundle; give them exact hosts or addresses (or use TLS, whose SNI names the host)"
                    ),
                ));
                rejected.insert(i);
                continue;
            }
            if let Some((j, what)) = host_clash(s, i, &hosts).or_else(|| address_clash(s, &ranges))
            {
                let earlier = services
                    .get(j)
                    .map_or_else(String::new, |e| e.resource.display());
                report(diagnostics, s.resource.diagnostic("overlap", 
                    Severity::Error,
                    what.0,
                    format!(
                        "{} {earlier}, created earlier, in workspace {viewer}; {earlier} keeps it and this service is left out of the bundle (give it other addresses or ports, or keep the two in workspaces that do not share)",
                        what.1
                    ),
                ));
                rejected.insert(i);
                continue;
            }
            for host in &s.service.hosts {
                for number in claimed_ports(s) {
                    hosts.insert((host.as_str(), number), i);
                }
            }
            for port in blind_tcp_ports(s) {
                blind_tcp.insert(port, i);
            }
            for (family, start, end) in s.service.addresses.iter().filter_map(|a| range(a)) {
                if let Some(map) = ranges.get_mut(family) {
                    map.insert(start, (end, i));
                }
            }
        }
    }
    rejected
}

type Clash = (usize, (&'static str, String));

/// The plain-TCP ports of a service that has hosts and no addresses: traffic to them can only
/// be recognised by port.
fn blind_tcp_ports<'a>(s: &'a BuiltService<'_>) -> impl Iterator<Item = u16> + 'a {
    // A virtual address tells services known by name apart (only wildcard hosts get none).
    let blind = s.service.addresses.is_empty() && s.service.virtual_addresses.is_empty();
    s.service
        .ports
        .iter()
        .filter(move |p| blind && matches!(p.protocol, Protocol::Tcp | Protocol::Mongo))
        .map(|p| p.number)
}

fn blind_tcp_clash(s: &BuiltService<'_>, seen: &HashMap<u16, usize>) -> Option<(usize, u16)> {
    blind_tcp_ports(s).find_map(|port| seen.get(&port).map(|&j| (j, port)))
}

fn host_clash(
    s: &BuiltService<'_>,
    i: usize,
    hosts: &HashMap<(&str, u16), usize>,
) -> Option<Clash> {
    for host in &s.service.hosts {
        for number in claimed_ports(s) {
            if let Some(&j) = hosts.get(&(host.as_str(), number)).filter(|&&j| j != i) {
                return Some((
                    j,
                    (
                        "spec.hosts",
                        format!("host {host} on port {number} is already claimed by"),
                    ),
                ));
            }
        }
    }
    None
}

/// The ports a service claims for its hosts: its declared ports and their `portMatch` ports
/// (a request to either is decided for it).
fn claimed_ports<'a>(s: &'a BuiltService<'_>) -> impl Iterator<Item = u16> + 'a {
    s.service.ports.iter().flat_map(|p| {
        std::iter::once(p.number).chain(p.egress_gateway.as_ref().and_then(|g| g.port_match))
    })
}

fn address_clash(
    s: &BuiltService<'_>,
    ranges: &[BTreeMap<u128, (u128, usize)>; 2],
) -> Option<Clash> {
    for text in &s.service.addresses {
        let (family, start, end) = range(text)?;
        let map = ranges.get(family)?;
        if let Some((_, &(other_end, j))) = map.range(..=end).next_back() {
            if other_end >= start {
                return Some((
                    j,
                    (
                        "spec.addresses",
                        format!("address range {text} overlaps an address range of"),
                    ),
                ));
            }
        }
    }
    None
}

/// `(family, first, last)` of an address or CIDR; family 0 is IPv4, 1 is IPv6.
fn range(text: &str) -> Option<(usize, u128, u128)> {
    match address(text).ok()? {
        IpNet::V4(net) => Some((
            0,
            u128::from(u32::from(net.network())),
            u128::from(u32::from(net.broadcast())),
        )),
        IpNet::V6(net) => Some((1, u128::from(net.network()), u128::from(net.broadcast()))),
    }
}
