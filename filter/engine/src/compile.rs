//! `compile(Bundle) -> Policy`: validation and the lookup structures, built once.

use std::net::IpAddr;

use ipnet::IpNet;
use rustc_hash::FxHashMap;
use warden_bundle::{AccessPolicy, Bundle, ExternalService, Provenance, TargetPort};

use crate::access::{CompiledPolicy, PathPattern, Rule};
use crate::cidr::CidrTable;
use crate::compiled::{CompiledPort, CompiledService, PortExtra, ServiceRouting};
use crate::endpoint::{compile_endpoint, CompiledEndpoint};
use crate::error::CompileError;
use crate::host::{parse_host, Host, HostBuf};
use crate::host_table::HostTable;
use crate::identity::{validate, IdentityPattern};
use crate::name::{NameTable, OwnedName};
use crate::outlier::OutlierSettings;
use crate::policy::{GatewayRoutes, Policy, Settings};
use crate::service_set::{SetArena, SetBuilder};
use crate::view::Views;

/// Compiles a bundle into a [`Policy`]. Refuses, naming the entry and field, anything it
/// cannot enforce exactly as written: nothing is silently dropped. The error is the first of
/// [`compile_all`]'s.
pub fn compile(bundle: &Bundle) -> Result<Policy, CompileError> {
    compile_all(bundle).map_err(|mut errors| errors.swap_remove(0))
}

/// [`compile`], reporting every problem instead of the first: each entry (service, endpoint,
/// port, policy rule) is checked even when an earlier one is invalid, so that a tool can show a
/// user everything to fix at once. On error the list is never empty.
pub fn compile_all(bundle: &Bundle) -> Result<Policy, Vec<CompileError>> {
    bundle.verify_digest().map_err(|e| vec![e.into()])?;
    let spec = &bundle.spec;
    let mut errors = Vec::new();
    let settings = compile_settings(bundle, &mut errors);
    let views = Views::new(&spec.workspaces).unwrap_or_else(|problem| {
        let (field, problem) = problem
            .split_once(": ")
            .unwrap_or(("spec.workspaces", &problem));
        errors.push(CompileError::invalid(None, field, problem));
        None
    });

    let mut names: FxHashMap<(&str, &str), u32> = FxHashMap::default();
    let mut hosts: SetBuilder<Box<str>> = SetBuilder::new();
    let mut v4: SetBuilder<(u32, u8)> = SetBuilder::new();
    let mut v6: SetBuilder<(u128, u8)> = SetBuilder::new();
    // Virtual addresses, and where each was given (checked against the tables once built).
    let mut virtual_addresses: FxHashMap<IpAddr, u32> = FxHashMap::default();
    let mut virtual_fields: Vec<(IpAddr, String, &Provenance)> = Vec::new();
    // `None` for a service with errors: the list stays indexed like `spec.services`.
    let mut services: Vec<Option<CompiledService>> = Vec::with_capacity(spec.services.len());
    // Each compiled service's first exact host, named by position once the table is built.
    let mut first_hosts: Vec<Option<Box<str>>> = Vec::with_capacity(spec.services.len());
    let mut port_policies: Vec<Vec<Vec<u32>>> = Vec::with_capacity(spec.services.len());
    // Each service's ports and workspace views, joined into the policy's tables at the end.
    let mut service_ports: Vec<Vec<(CompiledPort, PortExtra)>> =
        Vec::with_capacity(spec.services.len());
    let mut service_views: Vec<Vec<u16>> = Vec::with_capacity(spec.services.len());

    for (i, service) in spec.services.iter().enumerate() {
        let Ok(index) = u32::try_from(i) else {
            errors.push(too_many("spec.services"));
            break;
        };
        let field = format!("spec.services[{i}]");
        let src = &service.source;
        let before = errors.len();
        let mut fail = |at: String, problem: String| {
            errors.push(CompileError::invalid(Some(src), at, problem));
        };
        if src.namespace.contains('/') {
            fail(
                format!("{field}.source.namespace"),
                format!("{:?}: a namespace holds no '/'", src.namespace),
            );
        }
        if names.insert((&src.namespace, &src.name), index).is_some() {
            fail(
                format!("{field}.source"),
                "another service in the bundle has the same namespace/name".into(),
            );
        }
        if service.hosts.is_empty() && service.addresses.is_empty() {
            fail(
                field.clone(),
                "a service needs at least one host or address".into(),
            );
        }
        // The first exact host, normalised: where a virtual address's connections go.
        let mut exact_host: Option<Box<str>> = None;
        for (h, raw) in service.hosts.iter().enumerate() {
            match host_pattern(raw) {
                Ok(pattern) => {
                    if exact_host.is_none() && !pattern.starts_with("*.") {
                        exact_host = Some(pattern.clone());
                    }
                    hosts.add(pattern, index);
                }
                Err(p) => fail(format!("{field}.hosts[{h}]"), p),
            }
        }
        for (a, raw) in service.addresses.iter().enumerate() {
            match address(raw) {
                Ok(IpNet::V4(net)) => v4.add((u32::from(net.addr()), net.prefix_len()), index),
                Ok(IpNet::V6(net)) => v6.add((u128::from(net.addr()), net.prefix_len()), index),
                Err(p) => fail(format!("{field}.addresses[{a}]"), p),
            }
        }
        let first_virtual = virtual_fields.len();
        for (v, raw) in service.virtual_addresses.iter().enumerate() {
            let at = format!("{field}.virtualAddresses[{v}]");
            let ip = match address(raw) {
                Ok(net) if net.prefix_len() == net.max_prefix_len() => net.addr(),
                Ok(_) => {
                    fail(
                        at,
                        format!("{raw:?}: a virtual address is one IP, not a network"),
                    );
                    continue;
                }
                Err(p) => {
                    fail(at, p);
                    continue;
                }
            };
            if exact_host.is_none() || !service.addresses.is_empty() {
                fail(
                    at,
                    "a virtual address stands for the service's exact hosts; this service has addresses, or no exact host".into(),
                );
                continue;
            }
            if let Some(other) = virtual_addresses.insert(ip, index) {
                let other = spec
                    .services
                    .get(other as usize)
                    .map(|s| format!("ExternalService {}/{}", s.source.namespace, s.source.name))
                    .unwrap_or_default();
                fail(at, format!("{ip} is already a virtual address of {other}"));
                continue;
            }
            virtual_fields.push((ip, format!("{field}.virtualAddresses[{v}]"), src));
        }
        let mut own_views = Vec::with_capacity(service.workspaces.len());
        for (w, name) in service.workspaces.iter().enumerate() {
            match views.as_ref().map(|v| v.index(name)) {
                Some(Some(index)) => own_views.push(index),
                Some(None) => fail(
                    format!("{field}.workspaces[{w}]"),
                    format!("{name:?} is not one of the bundle's spec.workspaces"),
                ),
                None => fail(
                    format!("{field}.workspaces[{w}]"),
                    "the bundle declares no spec.workspaces for this to name".into(),
                ),
            }
        }
        let own_virtual: Box<[IpAddr]> = virtual_fields
            .get(first_virtual..)
            .unwrap_or_default()
            .iter()
            .map(|&(ip, _, _)| ip)
            .collect();
        let mut endpoints = Vec::with_capacity(service.endpoints.len());
        for (e, ep) in service.endpoints.iter().enumerate() {
            match compile_endpoint(ep, &format!("{field}.endpoints[{e}]")) {
                Ok(ep) => endpoints.push(ep),
                Err(err) => errors.push(err),
            }
        }
        let ports = compile_ports(service, &endpoints, &field, &mut errors);
        port_policies.push(vec![Vec::new(); ports.len()]);
        service_ports.push(ports);
        service_views.push(own_views);
        if errors.len() > before {
            services.push(None);
            continue;
        }
        first_hosts.push(exact_host);
        services.push(Some(CompiledService::new(
            None,
            0,
            0,
            ServiceRouting {
                virtual_addresses: own_virtual,
                outlier: outlier_settings(service),
                endpoints: endpoints.into_boxed_slice(),
                ranked: None,
                failover: service.failover.clone().into_boxed_slice(),
            },
        )));
    }

    let mut policies = Vec::with_capacity(spec.access_policies.len());
    for (j, policy) in spec.access_policies.iter().enumerate() {
        let Ok(index) = u32::try_from(j) else {
            errors.push(too_many("spec.accessPolicies"));
            break;
        };
        let field = format!("spec.accessPolicies[{j}]");
        if let Some(compiled) = compile_policy(policy, &field, &mut errors) {
            policies.push(compiled);
        }
        for (t, target) in policy.targets.iter().enumerate() {
            let at = format!("{field}.targets[{t}]");
            let key = (
                target.service.namespace.as_str(),
                target.service.name.as_str(),
            );
            let Some(service) = names.get(&key).copied() else {
                errors.push(CompileError::invalid(
                    Some(&policy.source),
                    format!("{at}.service"),
                    format!("no ExternalService {}/{} in this bundle", key.0, key.1),
                ));
                continue;
            };
            // A service with errors has been reported already; its ports are unknown.
            let (Some(Some(_)), Some(ports), Some(slots)) = (
                services.get(service as usize),
                service_ports.get(service as usize),
                port_policies.get_mut(service as usize),
            ) else {
                continue;
            };
            let mut attached = false;
            for ((port, _), slot) in ports.iter().zip(slots.iter_mut()) {
                if target.port.is_none_or(|p| p == port.number) {
                    slot.push(index);
                    attached = true;
                }
            }
            if !attached {
                errors.push(CompileError::invalid(
                    Some(&policy.source),
                    format!("{at}.port"),
                    format!(
                        "ExternalService {}/{} declares no port {}",
                        key.0,
                        key.1,
                        target.port.unwrap_or_default()
                    ),
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut services: Vec<CompiledService> = services.into_iter().flatten().collect();
    let mut ports = Vec::with_capacity(service_ports.iter().map(Vec::len).sum());
    let mut port_extras: Vec<(u32, PortExtra)> = Vec::new();
    let mut view_lists: Vec<Box<[u16]>> = Vec::new();
    let mut list_of: FxHashMap<Vec<u16>, u32> = FxHashMap::default();
    let each = services
        .iter_mut()
        .zip(service_ports)
        .zip(port_policies)
        .zip(service_views);
    for (((service, own_ports), slots), views) in each {
        for ((mut port, mut extra), slot) in own_ports.into_iter().zip(slots) {
            extra.policies = slot.into_boxed_slice();
            if !extra.is_plain() {
                let position = u32::try_from(ports.len())
                    .map_err(|_| vec![too_many("spec.services[*].ports")])?;
                port.set_has_extra();
                port_extras.push((position, extra));
            }
            ports.push(port);
        }
        service.ports_end =
            u32::try_from(ports.len()).map_err(|_| vec![too_many("spec.services[*].ports")])?;
        if views.is_empty() {
            continue;
        }
        service.views = match list_of.get(&views) {
            Some(&list) => list,
            None => {
                let list = u32::try_from(view_lists.len() + 1)
                    .map_err(|_| vec![too_many("spec.services")])?;
                view_lists.push(views.clone().into_boxed_slice());
                list_of.insert(views, list);
                list
            }
        };
    }

    let mut sets = SetArena::default();
    let host_table = HostTable::build(hosts.finish(&mut sets));
    for (service, host) in services.iter_mut().zip(first_hosts) {
        service.set_host(host.and_then(|h| host_table.exact_position(&h)));
    }
    let v4 = CidrTable::build(
        v4.finish(&mut sets)
            .into_iter()
            .map(|((addr, len), set)| (addr, len, set)),
    );
    let v6 = CidrTable::build(
        v6.finish(&mut sets)
            .into_iter()
            .map(|((addr, len), set)| (addr, len, set)),
    );
    // A virtual address inside a service's addresses would make a connection ambiguous.
    for (ip, field, src) in virtual_fields {
        let inside = match ip {
            IpAddr::V4(ip) => v4.lookup(u32::from(ip)),
            IpAddr::V6(ip) => v6.lookup(u128::from(ip)),
        };
        if let Some(&index) = inside.and_then(|set| sets.get(set).first()) {
            let other = spec
                .services
                .get(index as usize)
                .map(|s| format!("ExternalService {}/{}", s.source.namespace, s.source.name))
                .unwrap_or_default();
            return Err(vec![CompileError::invalid(
                Some(src),
                field,
                format!("{ip} is inside the addresses of {other}"),
            )]);
        }
    }
    let locality = settings.locality.clone();
    let mut policy = Policy {
        prepared_for: None,
        settings,
        services: services.into_boxed_slice(),
        names: NameTable::build(
            spec.services
                .iter()
                .map(|s| (s.source.namespace.as_str(), s.source.name.as_str())),
        ),
        ports: ports.into_boxed_slice(),
        port_extras: port_extras.into_boxed_slice(),
        view_lists: view_lists.into_boxed_slice(),
        hosts: host_table,
        v4,
        v6,
        virtual_addresses,
        views,
        sets,
        policies: policies.into_boxed_slice(),
    };
    policy.prepare_for(locality);
    Ok(policy)
}

/// The checks `compile` makes of an endpoint, on its own; fields are named from `spec`, as in
/// an ExternalEndpoint manifest (`spec.address`, `spec.ports[1].name`).
pub fn endpoint(endpoint: &warden_bundle::Endpoint) -> Result<(), CompileError> {
    compile_endpoint(endpoint, "spec").map(|_| ())
}

/// The checks `compile` makes of a service's ports (numbers, duplicates, target port names
/// against the service's endpoints; endpoints that are invalid themselves are skipped here).
/// Fields are named from `spec`, as in an ExternalService manifest (`spec.ports[1].number`).
pub fn ports(service: &ExternalService) -> Vec<CompileError> {
    let endpoints: Vec<CompiledEndpoint> = service
        .endpoints
        .iter()
        .filter_map(|e| compile_endpoint(e, "").ok())
        .collect();
    let mut errors = Vec::new();
    compile_ports(service, &endpoints, "spec", &mut errors);
    errors
}

fn outlier_settings(service: &ExternalService) -> OutlierSettings {
    let defaults = OutlierSettings::default();
    service
        .outlier_detection
        .as_ref()
        .map_or(defaults, |o| OutlierSettings {
            consecutive_errors: o
                .consecutive_errors
                .unwrap_or(defaults.consecutive_errors)
                .max(1),
            consecutive_gateway_errors: o.consecutive_gateway_errors.map(|n| n.max(1)),
            base_ejection_ms: o.base_ejection_millis.unwrap_or(defaults.base_ejection_ms),
            max_ejection_percent: o
                .max_ejection_percent
                .unwrap_or(defaults.max_ejection_percent)
                .min(100),
        })
}

fn too_many(field: &str) -> CompileError {
    CompileError::invalid(None, field, "more than 2^31 entries")
}

/// A mesh domain, normalised: a DNS suffix of two labels or more (`svc.cluster.local`; a
/// leading dot is dropped), never a wildcard or a top-level domain.
pub fn mesh_domain(raw: &str) -> Result<Box<str>, String> {
    let name = host_pattern(raw.trim_start_matches('.'))?;
    if name.starts_with('*') {
        return Err(format!(
            "{raw:?}: a mesh domain is a DNS suffix (svc.cluster.local), not a wildcard"
        ));
    }
    if !name.contains('.') {
        return Err(format!("{raw:?}: a mesh domain has at least two labels (svc.cluster.local): a top-level domain would cover the internet"));
    }
    Ok(name)
}

/// A mesh address range: at most /8 (IPv4) or /32 (IPv6), since every address in it is
/// reachable by any workload.
pub fn mesh_address(raw: &str) -> Result<IpNet, String> {
    let net = address(raw)?;
    let widest = match net {
        IpNet::V4(_) => 8,
        IpNet::V6(_) => 32,
    };
    if net.prefix_len() < widest {
        return Err(format!("{raw:?} is wider than a mesh's ranges can be (at most /8 for IPv4, /32 for IPv6): every address in it would be reachable by any workload"));
    }
    Ok(net)
}

fn compile_settings(bundle: &Bundle, errors: &mut Vec<CompileError>) -> Settings {
    let spec = &bundle.spec;
    let domain = spec.trust_domain.as_str();
    if let Err(err) = validate(&format!("spiffe://{domain}"), false) {
        errors.push(CompileError::invalid(
            None,
            "spec.trustDomain",
            format!("{domain:?} is not a valid trust domain: {err}"),
        ));
    }
    if let Some(id) = &spec.proxy.workload_identity {
        if let Err(err) = validate(id, false) {
            errors.push(CompileError::invalid(
                None,
                "spec.proxy.workloadIdentity",
                format!("{id:?} is not a SPIFFE ID: {err}"),
            ));
        }
    }
    let mut mesh_domains = Vec::new();
    for (i, raw) in spec.mesh.domains.iter().enumerate() {
        match mesh_domain(raw) {
            Ok(name) => mesh_domains.push(name),
            Err(err) => errors.push(CompileError::invalid(
                None,
                format!("spec.mesh.domains[{i}]"),
                err,
            )),
        }
    }
    let mut mesh_addresses = Vec::new();
    for (i, raw) in spec.mesh.addresses.iter().enumerate() {
        match mesh_address(raw) {
            Ok(net) => mesh_addresses.push(net),
            Err(err) => errors.push(CompileError::invalid(
                None,
                format!("spec.mesh.addresses[{i}]"),
                err,
            )),
        }
    }
    Settings {
        mesh_domains: mesh_domains.into(),
        mesh_addresses: mesh_addresses.into(),
        outbound_mode: spec.outbound_mode,
        failure_mode: spec.failure_mode,
        trust_domain: domain.into(),
        role: spec.proxy.role,
        gateway_routes: GatewayRoutes::NONE,
        workload_identity: spec.proxy.workload_identity.as_deref().map(Box::from),
        locality: spec.proxy.locality.clone(),
        digest: bundle.metadata.digest.as_deref().map(Box::from),
    }
}

/// A host pattern, normalised: `name` or `*.suffix`; the error says what is wrong and what
/// would be valid.
pub fn host_pattern(raw: &str) -> Result<Box<str>, String> {
    let (wildcard, name) = match raw.strip_prefix("*.") {
        Some(suffix) => (true, suffix),
        None => (false, raw),
    };
    if name.contains('*') {
        return Err(format!(
            "{raw:?}: a wildcard may only be the whole leftmost label, as in *.example.com"
        ));
    }
    let mut buf = HostBuf::new();
    match parse_host(name, &mut buf) {
        Ok(Host::Name(n)) if wildcard => Ok(format!("*.{n}").into()),
        Ok(Host::Name(n)) => Ok(n.into()),
        Ok(Host::Ip(ip)) => Err(format!(
            "{raw:?} is an IP address ({ip}); list it under addresses, not hosts"
        )),
        Err(err) => Err(format!("{raw:?} is not a valid host name: {err}")),
    }
}

/// An address or CIDR; host bits must be clear (the error suggests the network).
pub fn address(raw: &str) -> Result<IpNet, String> {
    if let Ok(ip) = raw.parse::<IpAddr>() {
        return Ok(IpNet::from(crate::host::canonical_ip(ip)));
    }
    let net: IpNet = raw
        .parse()
        .map_err(|_| format!("{raw:?} is not an IP address or CIDR (such as 10.0.0.0/8)"))?;
    if net.addr() != net.network() {
        return Err(format!(
            "{raw:?} has host bits set; the network is {}",
            net.trunc()
        ));
    }
    // An IPv4-mapped IPv6 network is the IPv4 network it maps.
    if let IpNet::V6(v6) = net {
        if let (Some(v4), true) = (v6.addr().to_ipv4_mapped(), v6.prefix_len() >= 96) {
            return IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).map_err(|e| e.to_string());
        }
    }
    Ok(net)
}

fn compile_ports(
    service: &ExternalService,
    endpoints: &[CompiledEndpoint],
    field: &str,
    errors: &mut Vec<CompileError>,
) -> Vec<(CompiledPort, PortExtra)> {
    let src = &service.source;
    let mut fail = |at: String, problem: String| {
        errors.push(CompileError::invalid(Some(src), at, problem));
    };
    if service.ports.is_empty() {
        fail(
            format!("{field}.ports"),
            "a service needs at least one port".into(),
        );
    }
    let mut ports: Vec<(CompiledPort, PortExtra)> = Vec::with_capacity(service.ports.len());
    for (p, port) in service.ports.iter().enumerate() {
        let at = format!("{field}.ports[{p}]");
        if port.number == 0 {
            fail(
                format!("{at}.number"),
                "port 0 is not a port; use 1 to 65535".into(),
            );
        }
        if ports.iter().any(|(q, _)| q.number == port.number) {
            fail(
                format!("{at}.number"),
                format!(
                    "port {} is declared twice; declare each port number once",
                    port.number
                ),
            );
        }
        if port.egress_gateway.as_ref().and_then(|g| g.port_match) == Some(0) {
            fail(
                format!("{at}.egressGateway.portMatch"),
                "port 0 is not a port; use 1 to 65535".into(),
            );
        }
        if let Some(matched) = port.egress_gateway.as_ref().and_then(|g| g.port_match) {
            let clash = service.ports.iter().enumerate().any(|(q, other)| {
                other.number == matched
                    || (q < p
                        && other.egress_gateway.as_ref().and_then(|g| g.port_match)
                            == Some(matched))
            });
            if clash {
                fail(
                    format!("{at}.egressGateway.portMatch"),
                    format!("port {matched} is also a declared port or another port's portMatch of this service"),
                );
            }
        }
        if let Some(TargetPort::Name(name)) = &port.target_port {
            if service.endpoints.is_empty() {
                fail(
                    format!("{at}.targetPort.name"),
                    format!(
                        "targetPort names {name:?}, but the service has no endpoints whose ports could carry that name; use targetPort.number"
                    ),
                );
            }
            for ep in endpoints.iter().filter(|e| e.port_named(name).is_none()) {
                fail(
                    format!("{at}.targetPort.name"),
                    format!("ExternalEndpoint {} has no port named {name:?}", ep.name),
                );
            }
        }
        let compiled = CompiledPort::new(
            port.number,
            port.protocol,
            port.egress_gateway.as_ref().and_then(|g| g.port_match),
            port.egress_gateway.is_some(),
        );
        let extra = PortExtra::new(
            port.tls.as_ref().filter(|t| t.originates()).map(|_| {
                warden_bundle::origination_cluster(
                    &service.source.namespace,
                    &service.source.name,
                    port.number,
                )
                .into_boxed_str()
            }),
            port.target_port.clone(),
        );
        ports.push((compiled, extra));
    }
    ports
}

/// The policy, or `None` with its problems added to `errors` (every rule is checked).
fn compile_policy(
    policy: &AccessPolicy,
    field: &str,
    errors: &mut Vec<CompileError>,
) -> Option<CompiledPolicy> {
    let src: &Provenance = &policy.source;
    let fail = |at: String, problem: String| CompileError::invalid(Some(src), at, problem);
    let before = errors.len();
    if policy.targets.is_empty() {
        errors.push(fail(
            format!("{field}.targets"),
            "a policy needs at least one target".into(),
        ));
    }
    let mut rules = Vec::with_capacity(policy.rules.len());
    for (r, rule) in policy.rules.iter().enumerate() {
        let at = format!("{field}.rules[{r}]");
        let clients = rule
            .clients
            .iter()
            .enumerate()
            .map(|(c, id)| {
                IdentityPattern::parse(id).map_err(|err| {
                    fail(
                        format!("{at}.clients[{c}]"),
                        format!("{id:?} is not a SPIFFE ID pattern: {err}"),
                    )
                })
            })
            .filter_map(|r| r.map_err(|e| errors.push(e)).ok())
            .collect();
        let ip_blocks = rule
            .ip_blocks
            .iter()
            .enumerate()
            .map(|(b, raw)| address(raw).map_err(|p| fail(format!("{at}.ipBlocks[{b}]"), p)))
            .filter_map(|r| r.map_err(|e| errors.push(e)).ok())
            .collect();
        let methods = rule
            .methods
            .iter()
            .enumerate()
            .map(|(m, method)| {
                if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
                    Err(fail(
                        format!("{at}.methods[{m}]"),
                        format!("{method:?} is not an HTTP method"),
                    ))
                } else {
                    Ok(method.to_ascii_uppercase().into_boxed_str())
                }
            })
            .filter_map(|r| r.map_err(|e| errors.push(e)).ok())
            .collect();
        let paths = rule
            .paths
            .iter()
            .enumerate()
            .map(|(p, path)| {
                let inner = path.trim_start_matches('*').trim_end_matches('*');
                if path.is_empty() || inner.contains('*') {
                    Err(fail(
                        format!("{at}.paths[{p}]"),
                        format!("{path:?}: a path is exact, prefix* or *suffix"),
                    ))
                } else {
                    Ok(PathPattern::parse(path))
                }
            })
            .filter_map(|r| r.map_err(|e| errors.push(e)).ok())
            .collect();
        rules.push(Rule {
            clients,
            ip_blocks,
            methods,
            paths,
        });
    }
    (errors.len() == before).then(|| CompiledPolicy {
        name: OwnedName::new(&src.namespace, &src.name),
        dry_run: policy.dry_run,
        rules: rules.into_boxed_slice(),
    })
}
