//! Small builders for test bundles, so each test states only what it is about.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use warden_bundle::{
    AccessPolicy, AccessRule, Bundle, BundleSpec, ExternalService, OutboundMode, PolicyTarget,
    Protocol, Provenance, ResourceKind, ServicePort, ServiceRef,
};
use warden_engine::{compile, Policy, Request, RequestProtocol};

fn split(ns_name: &str) -> (&str, &str) {
    ns_name.split_once('/').expect("namespace/name")
}

pub fn service(
    ns_name: &str,
    hosts: &[&str],
    addresses: &[&str],
    ports: &[u16],
) -> ExternalService {
    let (ns, name) = split(ns_name);
    ExternalService {
        source: Provenance::new(ResourceKind::ExternalService, ns, name),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        addresses: addresses.iter().map(|a| a.to_string()).collect(),
        virtual_addresses: Vec::new(),
        ports: ports
            .iter()
            .map(|&number| ServicePort {
                name: None,
                number,
                protocol: if number == 443 {
                    Protocol::Https
                } else if number == 80 {
                    Protocol::Http
                } else {
                    Protocol::Tcp
                },
                target_port: None,
                tls: None,
                egress_gateway: None,
            })
            .collect(),
        endpoints: Vec::new(),
        subject_alt_names: Vec::new(),
        outlier_detection: None,
        failover: Vec::new(),
        workspaces: Vec::new(),
    }
}

pub fn policy(
    ns_name: &str,
    targets: &[(&str, Option<u16>)],
    rules: Vec<AccessRule>,
) -> AccessPolicy {
    let (ns, name) = split(ns_name);
    AccessPolicy {
        source: Provenance::new(ResourceKind::AccessPolicy, ns, name),
        targets: targets
            .iter()
            .map(|&(svc, port)| {
                let (namespace, name) = split(svc);
                PolicyTarget {
                    service: ServiceRef {
                        namespace: namespace.into(),
                        name: name.into(),
                    },
                    port,
                }
            })
            .collect(),
        rules,
        dry_run: false,
    }
}

pub fn clients(ids: &[&str]) -> AccessRule {
    AccessRule {
        clients: ids.iter().map(|s| s.to_string()).collect(),
        ..AccessRule::default()
    }
}

pub fn bundle(
    mode: OutboundMode,
    services: Vec<ExternalService>,
    access_policies: Vec<AccessPolicy>,
) -> Bundle {
    Bundle::new(BundleSpec {
        outbound_mode: mode,
        trust_domain: "cluster.local".into(),
        services,
        access_policies,
        ..BundleSpec::default()
    })
}

pub fn compiled(b: &Bundle) -> Policy {
    compile(b).expect("bundle compiles")
}

pub fn http(host: &str) -> Request<'_> {
    Request {
        protocol: RequestProtocol::Http,
        host: Some(host),
        ..Request::default()
    }
}

pub fn tcp(destination: &str, port: u16) -> Request<'static> {
    Request {
        protocol: RequestProtocol::Tcp,
        destination: Some(destination.parse().expect("ip")),
        port: Some(port),
        ..Request::default()
    }
}

/// `allow registered pay/db` or `deny not_in_registry -`: verdict, reason and service, the
/// three things most tests pin.
pub fn verdict(policy: &Policy, request: &Request<'_>) -> String {
    let d = policy.decide(request);
    format!(
        "{} {} {}",
        if d.is_allowed() { "allow" } else { "deny" },
        d.reason(),
        d.service()
            .map_or("-".to_string(), |s| s.service.to_string())
    )
}
