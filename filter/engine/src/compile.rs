//! `compile(Bundle) -> Policy`: validation and the lookup structures, built once.

use std::net::IpAddr;

use ipnet::IpNet;
use rustc_hash::FxHashMap;
use warden_bundle::{AccessPolicy, Bundle, ExternalService, Provenance, TargetPort};

use crate::access::{CompiledPolicy, PathPattern, Rule};
use crate::cidr::CidrTable;
use crate::compiled::{CompiledPort, CompiledService};
use crate::endpoint::{compile_endpoint, CompiledEndpoint};
use crate::error::CompileError;
use crate::host::{parse_host, Host, HostBuf};
use crate::host_table::HostTable;
use crate::identity::{validate, IdentityPattern};
use crate::name::ResourceName;
use crate::outlier::OutlierSettings;
use crate::policy::{GatewayRoutes, Policy, Settings};
use crate::service_set::{SetArena, SetBuilder};

/// Compiles a bundle into a [`Policy`]. Refuses, naming the entry and field, anything it
/// cannot enforce exactly as written: nothing is silently dropped.
pub fn compile(bundle: &Bundle) -> Result<Policy, CompileError> {
    bundle.verify_digest()?;
    let spec = &bundle.spec;
    let settings = compile_settings(bundle)?;

    let mut names: FxHashMap<(&str, &str), u32> = FxHashMap::default();
    let mut hosts: SetBuilder<Box<str>> = SetBuilder::new();
    let mut v4: SetBuilder<(u32, u8)> = SetBuilder::new();
    let mut v6: SetBuilder<(u128, u8)> = SetBuilder::new();
    let mut services = Vec::with_capacity(spec.services.len());
    let mut port_policies: Vec<Vec<Vec<u32>>> = Vec::with_capacity(spec.services.len());

    for (i, service) in spec.services.iter().enumerate() {
        let index = u32::try_from(i).map_err(|_| too_many("spec.services"))?;
        let field = format!("spec.services[{i}]");
        let src = &service.source;
        if names.insert((&src.namespace, &src.name), index).is_some() {
            return Err(CompileError::invalid(
                Some(src),
                format!("{field}.source"),
                "another service in the bundle has the same namespace/name",
            ));
        }
        if service.hosts.is_empty() && service.addresses.is_empty() {
            return Err(CompileError::invalid(
                Some(src),
                field,
                "a service needs at least one host or address",
            ));
        }
        for (h, raw) in service.hosts.iter().enumerate() {
            let pattern = host_pattern(raw)
                .map_err(|p| CompileError::invalid(Some(src), format!("{field}.hosts[{h}]"), p))?;
            hosts.add(pattern, index);
        }
        for (a, raw) in service.addresses.iter().enumerate() {
            match address(raw).map_err(|p| {
                CompileError::invalid(Some(src), format!("{field}.addresses[{a}]"), p)
            })? {
                IpNet::V4(net) => v4.add((u32::from(net.addr()), net.prefix_len()), index),
                IpNet::V6(net) => v6.add((u128::from(net.addr()), net.prefix_len()), index),
            }
        }
        let endpoints = service
            .endpoints
            .iter()
            .enumerate()
            .map(|(e, ep)| compile_endpoint(ep, &format!("{field}.endpoints[{e}]")))
            .collect::<Result<Box<[_]>, _>>()?;
        let ports = compile_ports(service, &endpoints, &field)?;
        port_policies.push(vec![Vec::new(); ports.len()]);
        let defaults = OutlierSettings::default();
        let outlier = service
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
            });
        services.push(CompiledService {
            name: ResourceName::new(&src.namespace, &src.name),
            outlier,
            ports,
            endpoints,
            ranked: None,
            failover: service.failover.clone().into_boxed_slice(),
        });
    }

    let mut policies = Vec::with_capacity(spec.access_policies.len());
    for (j, policy) in spec.access_policies.iter().enumerate() {
        let index = u32::try_from(j).map_err(|_| too_many("spec.accessPolicies"))?;
        let field = format!("spec.accessPolicies[{j}]");
        policies.push(compile_policy(policy, &field)?);
        for (t, target) in policy.targets.iter().enumerate() {
            let at = format!("{field}.targets[{t}]");
            let key = (
                target.service.namespace.as_str(),
                target.service.name.as_str(),
            );
            let service = names.get(&key).copied().ok_or_else(|| {
                CompileError::invalid(
                    Some(&policy.source),
                    format!("{at}.service"),
                    format!("no ExternalService {}/{} in this bundle", key.0, key.1),
                )
            })?;
            let (Some(compiled), Some(slots)) = (
                services.get(service as usize),
                port_policies.get_mut(service as usize),
            ) else {
                continue;
            };
            let mut attached = false;
            for (port, slot) in compiled.ports.iter().zip(slots.iter_mut()) {
                if target.port.is_none_or(|p| p == port.number) {
                    slot.push(index);
                    attached = true;
                }
            }
            if !attached {
                return Err(CompileError::invalid(
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
    for (service, slots) in services.iter_mut().zip(port_policies) {
        for (port, slot) in service.ports.iter_mut().zip(slots) {
            port.policies = slot.into_boxed_slice();
        }
    }

    let mut sets = SetArena::default();
    let host_table = HostTable::build(hosts.finish(&mut sets));
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
    let locality = settings.locality.clone();
    let mut policy = Policy {
        prepared_for: None,
        settings,
        services: services.into_boxed_slice(),
        hosts: host_table,
        v4,
        v6,
        sets,
        policies: policies.into_boxed_slice(),
    };
    policy.prepare_for(locality);
    Ok(policy)
}

fn too_many(field: &str) -> CompileError {
    CompileError::invalid(None, field, "more than 2^31 entries")
}

fn compile_settings(bundle: &Bundle) -> Result<Settings, CompileError> {
    let spec = &bundle.spec;
    let domain = spec.trust_domain.as_str();
    if let Err(err) = validate(&format!("spiffe://{domain}"), false) {
        return Err(CompileError::invalid(
            None,
            "spec.trustDomain",
            format!("{domain:?} is not a valid trust domain: {err}"),
        ));
    }
    if let Some(id) = &spec.proxy.workload_identity {
        validate(id, false).map_err(|err| {
            CompileError::invalid(
                None,
                "spec.proxy.workloadIdentity",
                format!("{id:?} is not a SPIFFE ID: {err}"),
            )
        })?;
    }
    Ok(Settings {
        outbound_mode: spec.outbound_mode,
        failure_mode: spec.failure_mode,
        trust_domain: domain.into(),
        role: spec.proxy.role,
        gateway_routes: GatewayRoutes::NONE,
        workload_identity: spec.proxy.workload_identity.as_deref().map(Box::from),
        locality: spec.proxy.locality.clone(),
        digest: bundle.metadata.digest.as_deref().map(Box::from),
    })
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
) -> Result<Box<[CompiledPort]>, CompileError> {
    let src = &service.source;
    if service.ports.is_empty() {
        return Err(CompileError::invalid(
            Some(src),
            format!("{field}.ports"),
            "a service needs at least one port",
        ));
    }
    let mut ports: Vec<CompiledPort> = Vec::with_capacity(service.ports.len());
    for (p, port) in service.ports.iter().enumerate() {
        let at = format!("{field}.ports[{p}]");
        if port.number == 0 {
            return Err(CompileError::invalid(
                Some(src),
                format!("{at}.number"),
                "port 0 is not a port; use 1 to 65535",
            ));
        }
        if ports.iter().any(|q| q.number == port.number) {
            return Err(CompileError::invalid(
                Some(src),
                format!("{at}.number"),
                format!("port {} is declared twice", port.number),
            ));
        }
        if let Some(TargetPort::Name(name)) = &port.target_port {
            if endpoints.is_empty() {
                return Err(CompileError::invalid(
                    Some(src),
                    format!("{at}.targetPort.name"),
                    format!(
                        "targetPort names {name:?}, but the service has no endpoints to name ports"
                    ),
                ));
            }
            if let Some(ep) = endpoints.iter().find(|e| e.port_named(name).is_none()) {
                return Err(CompileError::invalid(
                    Some(src),
                    format!("{at}.targetPort.name"),
                    format!("endpoint {} has no port named {name:?}", ep.name),
                ));
            }
        }
        ports.push(CompiledPort {
            number: port.number,
            protocol: port.protocol,
            via_gateway: port.egress_gateway.is_some(),
            tls_cluster: port.tls.as_ref().filter(|t| t.originates()).map(|_| {
                warden_bundle::origination_cluster(
                    &service.source.namespace,
                    &service.source.name,
                    port.number,
                )
                .into_boxed_str()
            }),
            target: port.target_port.clone(),
            policies: Box::default(),
        });
    }
    Ok(ports.into_boxed_slice())
}

fn compile_policy(policy: &AccessPolicy, field: &str) -> Result<CompiledPolicy, CompileError> {
    let src: &Provenance = &policy.source;
    let fail = |at: String, problem: String| CompileError::invalid(Some(src), at, problem);
    if policy.targets.is_empty() {
        return Err(fail(
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
            .collect::<Result<_, _>>()?;
        let ip_blocks = rule
            .ip_blocks
            .iter()
            .enumerate()
            .map(|(b, raw)| address(raw).map_err(|p| fail(format!("{at}.ipBlocks[{b}]"), p)))
            .collect::<Result<_, _>>()?;
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
            .collect::<Result<_, _>>()?;
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
            .collect::<Result<_, _>>()?;
        rules.push(Rule {
            clients,
            ip_blocks,
            methods,
            paths,
        });
    }
    Ok(CompiledPolicy {
        name: ResourceName::new(&src.namespace, &src.name),
        dry_run: policy.dry_run,
        rules: rules.into_boxed_slice(),
    })
}
