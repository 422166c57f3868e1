//! Who gains and who loses access: both bundles decide the same requests, with the engine the
//! filter runs, and every request whose verdict differs is reported.
//!
//! The requests are built from what the two bundles mention, so that every class of request
//! the policies tell apart is tried: each destination (an exact host; a wildcard host and a
//! CIDR through one name or address inside it), each of its ports and one port no service
//! declares, over HTTP and TLS (a host) or HTTP and TCP (an address; a host with a virtual
//! address); and for each, clients that stand for every identity pattern of the policies that
//! can apply (with `*` segments filled by a name no policy mentions, and namespace wildcards
//! also filled by each workspace's namespaces), a workload of each workspace namespace, a
//! workload of no known namespace and a client without identity; each method and path pattern
//! mentioned, plus one of each that none mentions; each `ipBlocks` range, and no source.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;
use warden_bundle::{AccessPolicy, Bundle, Role};
use warden_engine::Policy;

use crate::decide::{host_port, ProtocolArg, Query, RoleArg};

/// A name no manifest uses: what a `*` stands for in a probe.
const PROBE: &str = "warden-probe";

/// How a host, and an address, that no service names are shown.
const UNREGISTERED_HOST: &str = "<unregistered host>";
const UNREGISTERED_ADDRESS: &str = "<unregistered address>";

/// Requests of one client to one destination whose verdict changed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct AccessChange {
    /// `namespace/name` of the service that decides the destination where it is allowed, or
    /// `no service`.
    pub service: String,
    /// `http`, `tls` or `tcp`.
    pub protocol: &'static str,
    /// `host:port` or `address:port`, as the manifests write it (`*.example.com:443`,
    /// `10.0.0.0/8:5432`); `HOST other port` for a port no service declares there;
    /// `<unregistered host>:443` and `<unregistered address>:443` for what no service names.
    pub destination: String,
    /// The clients concerned: identity patterns (`*`: any name the policies do not mention),
    /// or `(no identity)`.
    pub clients: Vec<String>,
    /// `any request` (`any connection`), or the methods and paths concerned (`GET on /v1/*`,
    /// `other methods on any path`), each with ` from RANGE` when a source range decides.
    pub requests: Vec<String>,
}

/// Both directions.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessDiff {
    pub gained: Vec<AccessChange>,
    pub lost: Vec<AccessChange>,
    /// How many requests were decided by each bundle.
    pub requests_tried: usize,
}

/// A destination to try: how it is shown and what is sent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Destination {
    shown: String,
    concrete: String,
    is_address: bool,
}

/// One value of a request dimension: how it is shown and what is sent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Variant<T> {
    shown: String,
    value: T,
}

/// Replaces every `*` segment of `text` (split on `sep`) with [`PROBE`].
fn fill(text: &str, sep: char) -> String {
    text.split(sep)
        .map(|seg| if seg == "*" { PROBE } else { seg })
        .collect::<Vec<_>>()
        .join(&sep.to_string())
}

/// An address of the bundle (an IP or a CIDR) as a range.
fn range(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

/// The address just after `net` (none past the end of the address space).
fn after(net: &IpNet) -> Option<IpAddr> {
    match net.broadcast() {
        IpAddr::V4(v4) => u32::from(v4)
            .checked_add(1)
            .map(|n| IpAddr::from(n.to_be_bytes())),
        IpAddr::V6(v6) => u128::from(v6)
            .checked_add(1)
            .map(|n| IpAddr::from(n.to_be_bytes())),
    }
}

/// Where membership of `ranges` can change: each range's first address and the address just
/// after it. Every stretch of addresses between two such points lies in the same ranges, so
/// one address per stretch (its first) stands for all of it, whatever sizes the ranges have
/// in either bundle. Each comes with how it is shown: the range it starts, else the address.
fn boundaries<'a>(ranges: impl Iterator<Item = &'a String>) -> BTreeMap<IpAddr, String> {
    let parsed: Vec<(IpNet, &String)> = ranges.filter_map(|t| range(t).map(|n| (n, t))).collect();
    let mut out = BTreeMap::new();
    for (net, text) in &parsed {
        out.insert(net.network(), (*text).clone());
    }
    for (net, _) in &parsed {
        if let Some(ip) = after(net) {
            out.entry(ip).or_insert_with(|| ip.to_string());
        }
    }
    out
}

/// A workspace namespace glob (`team-*`, `?`) filled with a matching name.
fn fill_glob(pattern: &str) -> String {
    pattern.replace('*', PROBE).replace('?', "x")
}

pub fn diff(old: &Bundle, new: &Bundle, role: Role) -> anyhow::Result<AccessDiff> {
    let mut old_policy = warden_engine::compile(old)?;
    let mut new_policy = warden_engine::compile(new)?;
    let role = match role {
        Role::Sidecar => RoleArg::Sidecar,
        Role::Gateway => RoleArg::Gateway,
    };

    // Destinations, and the ports each is declared with (in either bundle).
    let mut ports: BTreeMap<Destination, BTreeSet<u16>> = BTreeMap::new();
    let mut claimed_by: BTreeMap<Destination, BTreeSet<String>> = BTreeMap::new();
    for service in old.spec.services.iter().chain(&new.spec.services) {
        let name = format!("{}/{}", service.source.namespace, service.source.name);
        let mut numbers: BTreeSet<u16> = service.ports.iter().map(|p| p.number).collect();
        numbers.extend(
            service
                .ports
                .iter()
                .filter_map(|p| p.egress_gateway.as_ref().and_then(|g| g.port_match)),
        );
        let hosts = service.hosts.iter().map(|h| Destination {
            shown: h.clone(),
            concrete: fill(h, '.'),
            is_address: false,
        });
        let addresses = service.addresses.iter().filter_map(|a| {
            range(a).map(|net| Destination {
                shown: a.clone(),
                concrete: net.network().to_string(),
                is_address: true,
            })
        });
        for destination in hosts.chain(addresses) {
            ports
                .entry(destination.clone())
                .or_default()
                .extend(&numbers);
            claimed_by
                .entry(destination)
                .or_default()
                .insert(name.clone());
        }
    }
    // The first address after each range (a range grown or shrunk between the bundles shows
    // there); it takes every declared port through `all_ports` below.
    // The mesh's own addresses too: a connection there is the mesh's business.
    let addresses = old
        .spec
        .services
        .iter()
        .chain(&new.spec.services)
        .flat_map(|s| &s.addresses)
        .chain(&old.spec.mesh.addresses)
        .chain(&new.spec.mesh.addresses);
    for (ip, shown) in boundaries(addresses) {
        let destination = Destination {
            shown,
            concrete: ip.to_string(),
            is_address: true,
        };
        if !ports.keys().any(|d| d.concrete == destination.concrete) {
            ports.entry(destination).or_default();
        }
    }
    // Somewhere no service names: what the outbound mode decides.
    for (shown, concrete, is_address) in [
        (UNREGISTERED_HOST, "unregistered.warden.invalid", false),
        (UNREGISTERED_ADDRESS, "192.0.2.1", true),
    ] {
        ports
            .entry(Destination {
                shown: shown.into(),
                concrete: concrete.into(),
                is_address,
            })
            .or_default()
            .insert(443);
    }

    let namespaces = workspace_namespaces(old, new);
    let trust_domains: BTreeSet<&str> = [
        old.spec.trust_domain.as_str(),
        new.spec.trust_domain.as_str(),
    ]
    .into();
    let all_policies: Vec<&AccessPolicy> = old
        .spec
        .access_policies
        .iter()
        .chain(&new.spec.access_policies)
        .collect();

    let mut tried = 0;
    let mut tally = Tally::default();
    // Sidecars may be rendered with or without a route to the egress gateway: when either
    // bundle routes a port through it, both are compared.
    let gateway_routes = role == RoleArg::Sidecar
        && old
            .spec
            .services
            .iter()
            .chain(&new.spec.services)
            .flat_map(|s| &s.ports)
            .any(|p| p.egress_gateway.is_some());
    let all_ports: BTreeSet<u16> = ports.values().flatten().copied().collect();
    for destination in ports.keys() {
        // The services that name the destination, and those that decide it in either bundle
        // (another service's wildcard or CIDR may).
        let mut claimants = claimed_by.get(destination).cloned().unwrap_or_default();
        for &port in &all_ports {
            let query = Query {
                to: host_port(&destination.concrete, port),
                role,
                ..Query::default()
            };
            for policy in [&mut old_policy, &mut new_policy] {
                if let Ok(outcome) = query.decide(policy) {
                    claimants.extend(outcome.decision.service().map(|s| s.service.to_string()));
                }
            }
        }
        // The policies that can apply: those of the services that claim the destination.
        let relevant: Vec<&AccessPolicy> = all_policies
            .iter()
            .copied()
            .filter(|p| {
                p.targets.iter().any(|t| {
                    claimants.contains(&format!("{}/{}", t.service.namespace, t.service.name))
                })
            })
            .collect();
        let clients = clients(&relevant, &namespaces, &trust_domains);
        let methods = methods(&relevant);
        let paths = paths(&relevant);
        let sources = sources(&relevant);
        // Every port declared anywhere: a host one service names on one port may be matched
        // on another by a wildcard of another service, in the other bundle.
        let declared = &all_ports;
        let mut port_list: Vec<Option<u16>> = declared.iter().copied().map(Some).collect();
        // A port no service declares (what no service names has no ports of its own).
        if ![UNREGISTERED_HOST, UNREGISTERED_ADDRESS].contains(&destination.shown.as_str()) {
            port_list.push(None);
        }
        let protocols: &[ProtocolArg] = if destination.is_address {
            &[ProtocolArg::Http, ProtocolArg::Tcp]
        } else {
            &[ProtocolArg::Http, ProtocolArg::Tls, ProtocolArg::Tcp]
        };
        let other_port = (1..=u16::MAX).find(|p| !declared.contains(p)).unwrap_or(1);
        for &port in &port_list {
            let number = port.unwrap_or(other_port);
            let shown_destination = match port {
                Some(p) => host_port(&destination.shown, p),
                None => format!("{} other port", destination.shown),
            };
            for &protocol in protocols {
                // HTTP: each method on each path; a connection has neither.
                let requests: Vec<MethodPath<'_>> = if protocol == ProtocolArg::Http {
                    methods
                        .iter()
                        .flat_map(|m| paths.iter().map(move |p| (Some(m), Some(p))))
                        .collect()
                } else {
                    vec![(None, None)]
                };
                for client in &clients {
                    let key = Key {
                        protocol: protocol.as_str(),
                        destination: shown_destination.clone(),
                        client: client.shown.clone(),
                    };
                    let mut count = 0;
                    for &(method, path) in &requests {
                        for source in &sources {
                            count += 1;
                            let query = Query {
                                from: client.value.clone(),
                                to: host_port(&destination.concrete, number),
                                protocol,
                                method: method.map(|m| m.value.clone()),
                                path: path.map(|p| p.value.clone()),
                                source_ip: source.value,
                                role,
                                ..Query::default()
                            };
                            let shown = request_text(
                                method.map_or("", |m| &m.shown),
                                path.map_or("", |p| &p.shown),
                                &source.shown,
                            );
                            tried += 1;
                            compare_one(
                                &query,
                                (&mut old_policy, &mut new_policy),
                                &key,
                                shown,
                                gateway_routes,
                                &mut tally,
                            );
                        }
                    }
                    if gateway_routes {
                        tally.full.insert(key.without_routes(), count);
                    }
                    tally.full.insert(key, count);
                }
            }
        }
    }
    Ok(AccessDiff {
        gained: summarise(tally.gained, &tally.full),
        lost: summarise(tally.lost, &tally.full),
        requests_tried: tried,
    })
}

/// An HTTP request's method and path (a connection has neither).
type MethodPath<'a> = (Option<&'a Variant<String>>, Option<&'a Variant<String>>);

/// What one group of requests shares.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    protocol: &'static str,
    destination: String,
    client: String,
}

impl Key {
    /// The same group at a sidecar without a route to the egress gateway.
    fn without_routes(&self) -> Self {
        Self {
            destination: format!("{} (sidecar without a gateway route)", self.destination),
            ..self.clone()
        }
    }
}

fn request_text(method: &str, path: &str, source: &str) -> String {
    let mut text = match (method.is_empty(), path.is_empty()) {
        (true, _) => "any connection".to_owned(),
        (false, _) => format!("{method} on {path}"),
    };
    if !source.is_empty() {
        text = format!("{text} from {source}");
    }
    text
}

/// Decides `query` with both policies; records a request whose verdict changed, under the
/// service that allows it.
fn compare_one(
    query: &Query,
    policies: (&mut Policy, &mut Policy),
    key: &Key,
    shown: String,
    also_without_routes: bool,
    tally: &mut Tally,
) {
    let (old, new) = policies;
    let normal = verdicts(query, old, new);
    tally.record(key, &shown, &normal);
    // A sidecar rendered without a route to the egress gateway decides gateway-routed ports
    // differently (`must_use_gateway`): compared too, shown where it differs.
    if also_without_routes {
        let mut bare = query.clone();
        bare.no_gateway_route = true;
        let without = verdicts(&bare, old, new);
        if (without.0 .0, without.1 .0) != (normal.0 .0, normal.1 .0) {
            tally.record(&key.without_routes(), &shown, &without);
        }
    }
}

type Verdict = (bool, Option<String>);

/// Both bundles' verdicts (allowed, and the deciding service) for `query`. A query a bundle
/// cannot even send (a TCP name with no virtual address there) is denied.
fn verdicts(query: &Query, old: &mut Policy, new: &mut Policy) -> (Verdict, Verdict) {
    let verdict = |policy: &mut Policy| -> Verdict {
        match query.decide(policy) {
            Ok(outcome) => (
                outcome.decision.is_allowed(),
                outcome.decision.service().map(|s| s.service.to_string()),
            ),
            Err(_) => (false, None),
        }
    };
    (verdict(old), verdict(new))
}

/// The requests whose verdict changed, by group.
#[derive(Default)]
struct Tally {
    gained: BTreeMap<Key, BTreeSet<String>>,
    lost: BTreeMap<Key, BTreeSet<String>>,
    /// How many requests each group (without its service) holds.
    full: BTreeMap<Key, usize>,
}

impl Tally {
    /// Records a changed verdict under the service that allows the request.
    fn record(
        &mut self,
        key: &Key,
        shown: &str,
        ((was, old_service), (is, new_service)): &(Verdict, Verdict),
    ) {
        if was == is {
            return;
        }
        let (into, service) = if *is {
            (&mut self.gained, new_service)
        } else {
            (&mut self.lost, old_service)
        };
        into.entry(Key {
            // The service is part of what is shown; keep it in the client field's group key.
            client: format!(
                "{}\u{0}{}",
                service.as_deref().unwrap_or("no service"),
                key.client
            ),
            ..key.clone()
        })
        .or_default()
        .insert(shown.to_owned());
    }
}

fn summarise(
    changes: BTreeMap<Key, BTreeSet<String>>,
    full: &BTreeMap<Key, usize>,
) -> Vec<AccessChange> {
    let mut out: Vec<AccessChange> = changes
        .into_iter()
        .map(|(key, requests)| {
            let (service, client) = key
                .client
                .split_once('\u{0}')
                .map(|(s, c)| (s.to_owned(), c.to_owned()))
                .unwrap_or_default();
            let total = full
                .get(&Key {
                    client: client.clone(),
                    ..key.clone()
                })
                .copied()
                .unwrap_or(0);
            let requests: Vec<String> = if requests.len() == total && key.protocol == "http" {
                vec!["any request".to_owned()]
            } else {
                requests.into_iter().collect()
            };
            AccessChange {
                service,
                protocol: key.protocol,
                destination: key.destination,
                clients: vec![client],
                requests,
            }
        })
        .collect();
    // Clients whose requests changed alike share one entry.
    out.sort_by(|a, b| {
        (
            &a.service,
            a.protocol,
            &a.destination,
            &a.requests,
            &a.clients,
        )
            .cmp(&(
                &b.service,
                b.protocol,
                &b.destination,
                &b.requests,
                &b.clients,
            ))
    });
    let mut grouped: Vec<AccessChange> = Vec::with_capacity(out.len());
    for change in out {
        match grouped.last_mut() {
            Some(last)
                if last.service == change.service
                    && last.protocol == change.protocol
                    && last.destination == change.destination
                    && last.requests == change.requests =>
            {
                last.clients.extend(change.clients)
            }
            _ => grouped.push(change),
        }
    }
    grouped.sort();
    grouped
}

/// The namespaces of every workspace of both bundles: each glob filled, and for each pair of
/// globs a name built to match both (`team-*` and `*-prod`: `team--prod`), since a view is
/// the first workspace whose glob matches and overlapping globs decide there.
fn workspace_namespaces(old: &Bundle, new: &Bundle) -> BTreeSet<String> {
    let globs: BTreeSet<&String> = old
        .spec
        .workspaces
        .iter()
        .chain(&new.spec.workspaces)
        .flat_map(|w| &w.namespaces)
        .collect();
    let bare = |g: &str| g.replace(['*', '?'], "");
    let fill_with = |g: &str, with: &str| g.replace('*', with).replace('?', "x");
    let mut out: BTreeSet<String> = globs.iter().map(|g| fill_glob(g)).collect();
    for a in &globs {
        for b in &globs {
            if a != b && a.contains(['*', '?']) {
                out.insert(fill_with(a, &bare(b)));
            }
        }
    }
    out
}

/// The clients to try: every identity pattern of `policies` (wildcards filled; a wildcard
/// namespace also with each workspace namespace), a workload of each workspace namespace and
/// of no known namespace in each trust domain, and no identity.
fn clients(
    policies: &[&AccessPolicy],
    namespaces: &BTreeSet<String>,
    trust_domains: &BTreeSet<&str>,
) -> Vec<Variant<Option<String>>> {
    let mut concrete: BTreeSet<String> = BTreeSet::new();
    for td in trust_domains {
        concrete.insert(format!("spiffe://{td}/ns/{PROBE}/sa/{PROBE}"));
        for ns in namespaces {
            concrete.insert(format!("spiffe://{td}/ns/{ns}/sa/{PROBE}"));
        }
    }
    for pattern in policies
        .iter()
        .flat_map(|p| &p.rules)
        .flat_map(|r| &r.clients)
    {
        let Some(rest) = pattern.strip_prefix("spiffe://") else {
            continue;
        };
        concrete.insert(format!("spiffe://{}", fill(rest, '/')));
        // `spiffe://TD/ns/*/...`: each workspace's namespaces too (views depend on it).
        let segments: Vec<&str> = rest.split('/').collect();
        if segments.get(1) == Some(&"ns") && segments.get(2) == Some(&"*") {
            for ns in namespaces {
                let mut filled: Vec<String> = segments.iter().map(|s| (*s).to_owned()).collect();
                if let Some(slot) = filled.get_mut(2) {
                    slot.clone_from(ns);
                }
                concrete.insert(format!("spiffe://{}", fill(&filled.join("/"), '/')));
            }
        }
    }
    let mut out = vec![Variant {
        shown: "(no identity)".to_owned(),
        value: None,
    }];
    out.extend(concrete.into_iter().map(|id| {
        Variant {
            shown: id
                .split('/')
                .map(|s| if s == PROBE { "*" } else { s })
                .collect::<Vec<_>>()
                .join("/"),
            value: Some(id),
        }
    }));
    out
}

/// Each method the policies name, and one they do not (`other methods`); just `any method`
/// when none is named.
fn methods(policies: &[&AccessPolicy]) -> Vec<Variant<String>> {
    let named: BTreeSet<String> = policies
        .iter()
        .flat_map(|p| &p.rules)
        .flat_map(|r| &r.methods)
        .map(|m| m.to_ascii_uppercase())
        .collect();
    if named.is_empty() {
        return vec![Variant {
            shown: "any method".into(),
            value: "GET".into(),
        }];
    }
    let mut out: Vec<Variant<String>> = named
        .into_iter()
        .map(|m| Variant {
            shown: m.clone(),
            value: m,
        })
        .collect();
    out.push(Variant {
        shown: "other methods".into(),
        value: "WARDEN-PROBE".into(),
    });
    out
}

/// A path inside each path pattern the policies name, and one outside them all (`other
/// paths`); just `any path` when none is named.
fn paths(policies: &[&AccessPolicy]) -> Vec<Variant<String>> {
    let named: BTreeSet<&String> = policies
        .iter()
        .flat_map(|p| &p.rules)
        .flat_map(|r| &r.paths)
        .collect();
    if named.is_empty() {
        return vec![Variant {
            shown: "any path".into(),
            value: "/".into(),
        }];
    }
    let mut out: Vec<Variant<String>> = named
        .into_iter()
        .map(|p| Variant {
            shown: p.clone(),
            value: if let Some(prefix) = p.strip_suffix('*') {
                format!("{prefix}{PROBE}")
            } else if let Some(suffix) = p.strip_prefix('*') {
                format!("/{PROBE}{suffix}")
            } else {
                p.clone()
            },
        })
        .collect();
    out.push(Variant {
        shown: "other paths".into(),
        value: format!("/{PROBE}/{PROBE}"),
    });
    out
}

/// No source address, and the boundaries of the `ipBlocks` ranges the policies name (see
/// [`boundaries`]).
fn sources(policies: &[&AccessPolicy]) -> Vec<Variant<Option<IpAddr>>> {
    let mut out = vec![Variant {
        shown: String::new(),
        value: None,
    }];
    let blocks = policies
        .iter()
        .flat_map(|p| &p.rules)
        .flat_map(|r| &r.ip_blocks);
    out.extend(boundaries(blocks).into_iter().map(|(ip, shown)| Variant {
        shown,
        value: Some(ip),
    }));
    out
}
