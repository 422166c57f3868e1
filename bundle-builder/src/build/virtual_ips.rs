//! Virtual IPs for services known only by name.
//!
//! A plain TCP connection carries no name: to a proxy it is an address and a port. A service
//! that has host names, a port whose traffic carries no name (`TCP`, `MONGO`) and no
//! addresses therefore gets a *virtual address* per IP family: clients resolve the name to it
//! (Istio's DNS proxy from the ServiceEntry's `addresses`; locally the DNS listener of
//! `render envoy --dns`), the proxy decides a connection to it for the service, and connects
//! to the service's endpoint or its own host name, never to the virtual address.
//!
//! Allocation is stable: a service's address depends on its namespace/name (a hash, probed
//! on collision), and a service never takes an address an *older* service holds
//! (`creationTimestamp`, then namespace/name, as the overlap rule). So adding services never
//! moves an existing one; removing one can move only a younger service whose hash collided
//! with it. Addresses given in the annotation [`ANNOTATION`] win and are never allocated to
//! another service.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use sha2::{Digest, Sha256};
use warden_bundle::Protocol;

use super::services::BuiltService;
use crate::diagnostic::{Diagnostic, Diagnostics, Severity};
use crate::manifest::load::Resources;

/// The default IPv4 range: inside the reserved 240.0.0.0/4, apart from Istio's auto-allocation
/// block (240.240.0.0/16), so Warden's and Istio's addresses never collide.
pub const DEFAULT_V4: &str = "241.0.0.0/8";

/// User-given virtual addresses of an ExternalService (comma-separated IPs). Gloo's
/// `addresses` and `hosts` are mutually exclusive, so the addresses a name stands for are
/// given here.
pub const ANNOTATION: &str = "warden.dev/virtual-addresses";

/// The ranges virtual addresses come from: at most one per IP family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranges {
    pub v4: Option<IpNet>,
    pub v6: Option<IpNet>,
}

impl Default for Ranges {
    fn default() -> Self {
        Self {
            v4: DEFAULT_V4.parse().ok(),
            v6: None,
        }
    }
}

impl Ranges {
    fn iter(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.v4.iter().chain(self.v6.iter()).copied()
    }
}

/// The ranges the EgressSettings give (`spec.virtualAddressRanges`), else the default.
pub fn ranges(resources: &Resources, diagnostics: &mut Diagnostics) -> Ranges {
    let Some(settings) = resources.egress_settings.first() else {
        return Ranges::default();
    };
    let Some(raw) = &settings.manifest.spec.virtual_address_ranges else {
        return Ranges::default();
    };
    let mut ranges = Ranges { v4: None, v6: None };
    for (i, text) in raw.iter().enumerate() {
        let field = format!("spec.virtualAddressRanges[{i}]");
        let mut error = |message: String| {
            diagnostics.push(settings.diagnostic(
                "invalid-field",
                Severity::Error,
                &field,
                message,
            ));
        };
        // The engine's reading: host bits clear, an IPv4-mapped IPv6 range is the IPv4 one.
        let net = match warden_engine::validate::address(text) {
            Ok(net) => net,
            Err(problem) => {
                error(problem);
                continue;
            }
        };
        if host_count(net) < 4 {
            error(format!("{text:?} is too small to hand out addresses"));
            continue;
        }
        let slot = match net {
            IpNet::V4(_) => &mut ranges.v4,
            IpNet::V6(_) => &mut ranges.v6,
        };
        if slot.is_some() {
            error("give at most one IPv4 and one IPv6 range".into());
            continue;
        }
        *slot = Some(net);
    }
    ranges
}

/// How many addresses a range hands out: all but its first and last.
fn host_count(net: IpNet) -> u128 {
    let bits = match net {
        IpNet::V4(_) => 32,
        IpNet::V6(_) => 128,
    };
    let size = 1u128.checked_shl(bits - u32::from(net.prefix_len()));
    size.unwrap_or(u128::MAX).saturating_sub(2)
}

fn carries_no_name(service: &BuiltService<'_>) -> bool {
    service
        .service
        .ports
        .iter()
        .any(|p| matches!(p.protocol, Protocol::Tcp | Protocol::Mongo))
}

fn has_exact_host(service: &BuiltService<'_>) -> bool {
    service.service.exact_hosts().next().is_some()
}

/// Whether a service is reached by name over a port whose traffic carries no name.
fn needs_address(service: &BuiltService<'_>) -> bool {
    service.service.addresses.is_empty() && has_exact_host(service) && carries_no_name(service)
}

/// Gives every service that needs one its virtual addresses (user-given ones first, then
/// the `previous` bundle's, then new ones), and reports what cannot be given.
pub fn assign(
    services: &mut [BuiltService<'_>],
    ranges: &Ranges,
    previous: &Previous,
    resources: &Resources,
    diagnostics: &mut Diagnostics,
) {
    let range_error = |diagnostics: &mut Diagnostics, message: String| {
        diagnostics.push(match resources.egress_settings.first() {
            Some(settings) => settings.diagnostic(
                "invalid-field",
                Severity::Error,
                "spec.virtualAddressRanges",
                message,
            ),
            None => Diagnostic {
                file: "<default virtual address range>".into(),
                line: 0,
                severity: Severity::Error,
                code: "invalid-field",
                resource: None,
                field: None,
                message,
            },
        })
    };
    check_ranges(services, ranges, diagnostics);
    check_shared_hosts(services, diagnostics);
    let names: Vec<String> = services.iter().map(|s| s.resource.display()).collect();
    let declared: Vec<(IpNet, usize)> = services
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            s.service
                .addresses
                .iter()
                .filter_map(move |a| a.parse::<IpNet>().ok().map(|n| (n, i)))
        })
        .collect();
    let mut taken: HashMap<IpAddr, usize> = HashMap::new();
    for (index, built) in services.iter_mut().enumerate() {
        let resource = built.resource;
        let Some(raw) = resource.manifest.metadata.annotations.get(ANNOTATION) else {
            if built.service.addresses.is_empty()
                && !built.service.hosts.is_empty()
                && !has_exact_host(built)
                && carries_no_name(built)
            {
                diagnostics.push(resource.diagnostic("tcp-wildcard", 
                    Severity::Warning,
                    "spec.hosts",
                    "has TCP ports but only wildcard hosts: no address can stand for a wildcard, so no plain TCP connection can be matched to this service; give exact hosts",
                ));
            }
            continue;
        };
        let field = format!("metadata.annotations[{ANNOTATION}]");
        let mut error = |message: String| {
            diagnostics.push(resource.diagnostic(
                "invalid-field",
                Severity::Error,
                &field,
                message,
            ));
        };
        if !needs_address(built) {
            error("virtual addresses stand for a service's exact hosts on TCP or MONGO ports; this service has none to stand for".into());
            continue;
        }
        let mut given = Vec::new();
        for text in raw.split(',').map(str::trim) {
            let ip = match warden_engine::validate::address(text) {
                Ok(net) if net.prefix_len() == net.max_prefix_len() => net.addr(),
                _ => {
                    error(format!(
                        "{text:?} is not an IP address; give IPs separated by commas"
                    ));
                    continue;
                }
            };
            if let Some(other) = taken.get(&ip).and_then(|&o| names.get(o)) {
                error(format!("{ip} is already a virtual address of {other}"));
                continue;
            }
            // Checked here against every service, in every workspace: a bundle for one
            // workspace would not show the clash, and Istio's ServiceEntries span them all.
            if let Some((net, owner)) = declared.iter().find(|(net, _)| net.contains(&ip)) {
                let owner = names.get(*owner).map_or("", String::as_str);
                error(format!("{ip} is inside {net}, an address of {owner}"));
                continue;
            }
            taken.insert(ip, index);
            given.push(ip.to_string());
        }
        built.service.virtual_addresses = given;
    }
    // Older services first: a service never takes an address an older one holds.
    let mut order: Vec<usize> = (0..services.len())
        .filter(|&i| {
            services
                .get(i)
                .is_some_and(|s| needs_address(s) && s.service.virtual_addresses.is_empty())
        })
        .collect();
    order.sort_by_cached_key(|&i| services.get(i).map(BuiltService::age_key));
    for range in ranges.iter() {
        let capacity = host_count(range);
        let needed = u128::try_from(order.len() + taken.len()).unwrap_or(u128::MAX);
        // At most half full, so that a free address is a probe or two away.
        if needed > capacity / 2 {
            range_error(
                diagnostics,
                format!(
                    "the virtual address range {range} hands out {capacity} addresses, and at most half of them are used; {needed} services need one: give a larger range"
                ),
            );
            continue;
        }
        let keys: Vec<String> = order
            .iter()
            .filter_map(|&i| services.get(i))
            .map(|s| format!("{}/{}", s.service.source.namespace, s.service.source.name))
            .collect();
        let pinned: Vec<Option<IpAddr>> = keys
            .iter()
            .map(|k| {
                previous
                    .get(k)
                    .and_then(|ips| ips.iter().find(|ip| range.contains(*ip)).copied())
            })
            .collect();
        let given: HashSet<IpAddr> = taken.keys().copied().collect();
        for (&i, address) in order
            .iter()
            .zip(allocate_pinned(&keys, &pinned, &given, range))
        {
            let Some(built) = services.get_mut(i) else {
                continue;
            };
            match address {
                Some(ip) => built.service.virtual_addresses.push(ip.to_string()),
                None => diagnostics.push(built.resource.diagnostic(
                    "virtual-address",
                    Severity::Error,
                    "spec.hosts",
                    format!("no free virtual address in {range} after {MAX_PROBES} tries"),
                )),
            }
        }
    }
}

/// The virtual addresses of a previous bundle, by `namespace/name` (`build --previous`).
pub type Previous = HashMap<String, Vec<IpAddr>>;

/// What `previous` pins: its services' virtual addresses.
pub fn previous_of(bundle: &warden_bundle::Bundle) -> Previous {
    bundle
        .spec
        .services
        .iter()
        .filter(|s| !s.virtual_addresses.is_empty())
        .map(|s| {
            (
                format!("{}/{}", s.source.namespace, s.source.name),
                s.virtual_addresses
                    .iter()
                    .filter_map(|a| a.parse().ok())
                    .collect(),
            )
        })
        .collect()
}

/// A name has one virtual address: two services that both need one for the same exact host
/// (the host on different ports) cannot both have it.
fn check_shared_hosts(services: &[BuiltService<'_>], diagnostics: &mut Diagnostics) {
    let mut order: Vec<usize> = (0..services.len())
        .filter(|&i| services.get(i).is_some_and(needs_address))
        .collect();
    order.sort_by_cached_key(|&i| services.get(i).map(BuiltService::age_key));
    let mut owners: HashMap<&str, usize> = HashMap::new();
    for &i in &order {
        let Some(s) = services.get(i) else { continue };
        for host in s.service.exact_hosts() {
            match owners.get(host).and_then(|&o| services.get(o)) {
                Some(other) => diagnostics.push(s.resource.diagnostic("virtual-address", 
                    Severity::Error,
                    "spec.hosts",
                    format!(
                        "{host} is also a host of {}, and both have TCP ports: a name has one virtual address, so declare the name's TCP ports in one ExternalService",
                        other.resource.display()
                    ),
                )),
                None => {
                    owners.insert(host, i);
                }
            }
        }
    }
}

const MAX_PROBES: u32 = 1_000;

/// Addresses in `range` for `keys` (`namespace/name`, oldest first), avoiding `given`: each
/// takes the first of its candidates ([`address_in`]) that no older key holds.
pub fn allocate(keys: &[String], given: &HashSet<IpAddr>, range: IpNet) -> Vec<Option<IpAddr>> {
    allocate_pinned(keys, &vec![None; keys.len()], given, range)
}

/// [`allocate`], where a key with a pinned address (from the previous bundle) keeps it when no
/// one was given it; pinned addresses are reserved before any new one is handed out, so a new
/// service never takes one.
pub fn allocate_pinned(
    keys: &[String],
    pinned: &[Option<IpAddr>],
    given: &HashSet<IpAddr>,
    range: IpNet,
) -> Vec<Option<IpAddr>> {
    let mut used = given.clone();
    let mut out: Vec<Option<IpAddr>> = pinned
        .iter()
        .map(|p| p.filter(|ip| used.insert(*ip)))
        .collect();
    for (key, slot) in keys.iter().zip(out.iter_mut()) {
        if slot.is_some() {
            continue;
        }
        *slot = (0..MAX_PROBES)
            .map(|k| address_in(range, key, k))
            .find(|ip| !used.contains(ip));
        if let Some(ip) = slot {
            used.insert(*ip);
        }
    }
    out
}

/// The `attempt`-th candidate address of `key` in `range`: a hash, never the range's first or
/// last address.
pub fn address_in(range: IpNet, key: &str, attempt: u32) -> IpAddr {
    let digest = Sha256::new()
        .chain_update(key.as_bytes())
        .chain_update([0])
        .chain_update(attempt.to_be_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(digest.get(..16).unwrap_or(&[0; 16]));
    let offset = u128::from_be_bytes(bytes) % host_count(range).max(1) + 1;
    match range {
        IpNet::V4(net) => {
            let base = u32::from(net.network());
            let offset = u32::try_from(offset).unwrap_or(1);
            IpAddr::V4(std::net::Ipv4Addr::from(base.wrapping_add(offset)))
        }
        IpNet::V6(net) => {
            let base = u128::from(net.network());
            IpAddr::V6(std::net::Ipv6Addr::from(base.wrapping_add(offset)))
        }
    }
}

/// A range may not hold any service's declared addresses: a connection to one would be
/// ambiguous.
fn check_ranges(services: &[BuiltService<'_>], ranges: &Ranges, diagnostics: &mut Diagnostics) {
    for range in ranges.iter() {
        for built in services {
            for (i, raw) in built.service.addresses.iter().enumerate() {
                let Ok(net) = raw.parse::<IpNet>() else {
                    continue;
                };
                if range.contains(&net.network()) || net.contains(&range.network()) {
                    diagnostics.push(built.resource.diagnostic("virtual-address", 
                        Severity::Error,
                        &format!("spec.addresses[{i}]"),
                        format!(
                            "{raw} overlaps the virtual address range {range}: give the service other addresses, or EgressSettings another spec.virtualAddressRanges"
                        ),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use proptest::prelude::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("team{}/db-{i}", i % 37)).collect()
    }

    fn range() -> IpNet {
        DEFAULT_V4.parse().unwrap()
    }

    /// 100,000 names: all distinct, all inside the range and apart from its first and last
    /// address and from Istio's block.
    #[test]
    fn no_collisions_at_100_000_names() {
        let keys = keys(100_000);
        let got = allocate(&keys, &HashSet::new(), range());
        let unique: HashSet<IpAddr> = got.iter().map(|a| a.unwrap()).collect();
        assert_eq!(unique.len(), keys.len());
        let istio: IpNet = "240.240.0.0/16".parse().unwrap();
        for ip in &unique {
            assert!(range().contains(ip) && !istio.contains(ip));
            assert_ne!(*ip, range().network());
            assert_ne!(*ip, range().broadcast());
        }
        // IPv6 alike.
        let v6: IpNet = "fd00:241::/64".parse().unwrap();
        let got = allocate(&keys[..1000], &HashSet::new(), v6);
        assert!(got.iter().all(|a| a.is_some_and(|ip| v6.contains(&ip))));
    }

    /// A small range makes collisions certain: the older name keeps its address, the younger
    /// probes on; given addresses are never handed out.
    #[test]
    fn collisions_go_to_the_younger_name() {
        let small: IpNet = "127.77.0.0/28".parse().unwrap();
        let keys = keys(6);
        let given: HashSet<IpAddr> = ["127.77.0.1".parse().unwrap()].into();
        let got = allocate(&keys, &given, small);
        let unique: HashSet<IpAddr> = got.iter().map(|a| a.unwrap()).collect();
        assert_eq!(unique.len(), 6);
        assert!(!unique.contains(&"127.77.0.1".parse().unwrap()));
        // Each name's first free candidate, in age order.
        let first_alone = allocate(&keys[..1], &given, small)[0];
        assert_eq!(got[0], first_alone);
    }

    /// With the previous bundle's addresses pinned, a new service that sorts first and whose
    /// hash hits an existing service's address never takes it.
    #[test]
    fn pinned_addresses_are_kept_against_older_newcomers() {
        let small: IpNet = "127.77.0.0/27".parse().unwrap();
        let existing = keys(8);
        let before = allocate(&existing, &HashSet::new(), small);
        // A newcomer sorting first, whose first candidate is an existing service's address.
        let taken: HashSet<IpAddr> = before.iter().flatten().copied().collect();
        let newcomer = (0..10_000)
            .map(|i| format!("aaa/new-{i}"))
            .find(|k| taken.contains(&address_in(small, k, 0)))
            .unwrap();
        let mut all = vec![newcomer];
        all.extend(existing.iter().cloned());
        // Without pins, the newcomer takes an existing address.
        let moved = allocate(&all, &HashSet::new(), small);
        assert_ne!(&moved[1..], &before[..]);
        // With pins, every existing service keeps its own.
        let mut pinned = vec![None];
        pinned.extend(before.iter().copied());
        let kept = allocate_pinned(&all, &pinned, &HashSet::new(), small);
        assert_eq!(&kept[1..], &before[..]);
        assert!(kept[0].is_some() && !before.contains(&kept[0]));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Adding younger names never moves an older one; removing a name moves only younger
        /// names that had collided with it (none at this density in the default range).
        #[test]
        fn additions_and_removals_keep_addresses(n in 1usize..400, extra in 1usize..50, removed in 0usize..400) {
            let all = keys(n + extra);
            let before = allocate(&all[..n], &HashSet::new(), range());
            let after = allocate(&all, &HashSet::new(), range());
            prop_assert_eq!(&before[..], &after[..n]);
            let removed = removed % n;
            let mut fewer = all[..n].to_vec();
            fewer.remove(removed);
            let without = allocate(&fewer, &HashSet::new(), range());
            let mut kept = before.clone();
            kept.remove(removed);
            prop_assert_eq!(without, kept);
        }

        /// Order of the input does not matter once ages are fixed: the same key gets the same
        /// address wherever it sits among keys that do not collide with it.
        #[test]
        fn an_address_depends_on_the_name(n in 1usize..300, pick in 0usize..300) {
            let all = keys(n);
            let pick = pick % n;
            let alone = allocate(&all[pick..=pick], &HashSet::new(), range());
            let among = allocate(&all, &HashSet::new(), range());
            prop_assert_eq!(alone[0], among[pick]);
        }
    }
}
