//! The resolved-address guard: where Envoy resolves a name itself, the address it resolved
//! to is checked before anything connects to it.
//!
//! An explicit local proxy resolves the names clients send; under `ALLOW_ANY` that includes
//! names the registry does not know, which could resolve to an address the registry protects
//! (`localhost`, or a name whose DNS the client controls). The dynamic forward proxy cluster
//! therefore carries Envoy's `upstream_rbac` filter, which decides on the host actually
//! selected, before the connection is made (a wasm upstream filter would run only after the
//! connection pool started connecting). It denies the unspecified addresses and every
//! registered address and port this proxy's workload may not reach, as the engine decides
//! them for its identity, and every virtual address (they stand for names), except for requests the filter itself sent to an IP address (it
//! decided on that address, with the request's method and path). The rules are computed when the configuration is rendered: render
//! again when address services or their access policies change (an ECDS bundle update does
//! not change them).

use serde_json::{json, Value};
use warden_bundle::BundleSpec;
use warden_engine::{Policy, Request, RequestProtocol};

/// Requests the filter itself sent to an IP address (`envoy.upstream.dynamic_host` holds an
/// IP literal): an address authority or an IP endpoint, which the engine decided on, with the
/// method, path and client it had. The guard is for names that Envoy resolves, not for them.
fn decided_address() -> Value {
    json!({ "filter_state": {
        "key": "envoy.upstream.dynamic_host",
        "string_match": { "safe_regex": { "regex": "([0-9]{1,3}\\.){3}[0-9]{1,3}|[0-9a-f.]*:[0-9a-f:.]*" } }
    } })
}

/// One address rule of the guard: a CIDR, and a port (absent: every port).
fn rule(cidr: &ipnet::IpNet, port: Option<u16>) -> Value {
    let mut matcher = json!({
        "@type": "type.googleapis.com/envoy.extensions.rbac.matchers.upstream_ip_port.v3.UpstreamIpPortMatcher",
        "upstream_ip": { "address_prefix": cidr.network().to_string(), "prefix_len": cidr.prefix_len() }
    });
    if let (Some(port), Some(fields)) = (port, matcher.as_object_mut()) {
        fields.insert(
            "upstream_port_range".into(),
            json!({ "start": port, "end": u32::from(port) + 1 }),
        );
    }
    json!({ "matcher": { "name": "envoy.rbac.matchers.upstream_ip_port", "typed_config": matcher } })
}

/// The addresses and ports a workload with `identity` may not reach: unspecified addresses,
/// and each registered address service's port that the policy denies it (decided on the
/// network's first address; a narrower open service inside a protected CIDR is blocked too,
/// which errs on the side of denying).
pub fn protected(
    spec: &BundleSpec,
    policy: Option<&Policy>,
    identity: Option<&str>,
) -> Vec<(ipnet::IpNet, Option<u16>)> {
    let mut out: Vec<(ipnet::IpNet, Option<u16>)> = ["0.0.0.0/8", "::/128"]
        .iter()
        .filter_map(|c| c.parse().ok())
        .map(|c| (c, None))
        .collect();
    // A virtual address is never a destination: it stands for a name, and connecting to it
    // would reach the proxy's own listener (a name whose DNS answer is a virtual address).
    for service in &spec.services {
        for address in &service.virtual_addresses {
            if let Ok(ip) = address.parse::<std::net::IpAddr>() {
                out.push((ipnet::IpNet::from(ip), None));
            }
        }
    }
    let Some(policy) = policy else {
        return out;
    };
    for service in &spec.services {
        for address in &service.addresses {
            let Ok(net) = address
                .parse::<ipnet::IpNet>()
                .or_else(|_| address.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            else {
                continue;
            };
            for port in &service.ports {
                let request = Request {
                    protocol: RequestProtocol::Tcp,
                    destination: Some(net.network()),
                    port: Some(port.number),
                    client: identity,
                    ..Request::default()
                };
                if !policy.decide(&request).is_allowed() {
                    out.push((net, Some(port.number)));
                }
            }
        }
    }
    out
}

/// `typed_extension_protocol_options` for the dynamic forward proxy cluster: HTTP/1.1
/// upstream, with the guard before the upstream codec.
pub fn protocol_options(rules: &[(ipnet::IpNet, Option<u16>)]) -> Value {
    let permissions: Vec<Value> = rules.iter().map(|(c, p)| rule(c, *p)).collect();
    json!({
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": { "http_protocol_options": {} },
            // What a dynamic forward proxy cluster has by default, stated with the options.
            "upstream_http_protocol_options": { "auto_sni": true, "auto_san_validation": true },
            "http_filters": [
                {
                    "name": "envoy.filters.http.upstream_rbac",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
                        "rules": {
                            "action": "DENY",
                            "policies": { "warden-protected-addresses": {
                                "permissions": [{ "or_rules": { "rules": permissions } }],
                                "principals": [{ "not_id": decided_address() }]
                            } }
                        }
                    }
                },
                {
                    "name": "envoy.filters.http.upstream_codec",
                    "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec" }
                }
            ]
        }
    })
}
