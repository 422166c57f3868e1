//! Virtual addresses: an address standing for a service's name. A connection to one is decided
//! for that service (access policies and all) and goes to its endpoint or its own host name,
//! never to the virtual address.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

mod support;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use support::*;
use warden_bundle::OutboundMode::{AllowAny, RegistryOnly};
use warden_bundle::{Endpoint, EndpointPort, Locality, Provenance, ResourceKind, Role};
use warden_engine::{
    compile_all, plan, Cluster, DenyReason, Listener, MatchedOn, Policy, Request, Target,
};

const BILLING: &str = "spiffe://cluster.local/ns/pay/sa/billing";
const FRONTEND: &str = "spiffe://cluster.local/ns/web/sa/frontend";

/// `db/ledger`: known only by its name, virtual address 241.0.0.7, billing only;
/// `db/orders`: an internal name for two host-name endpoints, virtual 241.0.0.8 and fd00::8.
fn policy(mode: warden_bundle::OutboundMode) -> Policy {
    let mut ledger = service("db/ledger", &["Ledger-DB.example.com."], &[], &[5432]);
    ledger.virtual_addresses = vec!["241.0.0.7".into()];
    let mut orders = service("db/orders", &["orders-db.mesh.internal"], &[], &[5432]);
    orders.virtual_addresses = vec!["241.0.0.8".into(), "fd00::8".into()];
    orders.endpoints = ["pg-east.dc1.example", "pg-west.dc2.example"]
        .iter()
        .enumerate()
        .map(|(i, host)| Endpoint {
            source: Provenance::new(ResourceKind::ExternalEndpoint, "db", format!("orders-{i}")),
            address: (*host).into(),
            ports: vec![EndpointPort {
                name: None,
                number: 5432,
            }],
            locality: Locality::parse(if i == 0 {
                "us-east/us-east-1a"
            } else {
                "us-west"
            }),
            weight: 1,
        })
        .collect();
    compiled(&bundle(
        mode,
        vec![
            ledger,
            orders,
            service("dc/net", &[], &["10.0.0.0/8"], &[5432]),
        ],
        vec![policy_for("db/ledger")],
    ))
}

fn policy_for(service: &str) -> warden_bundle::AccessPolicy {
    support::policy(
        "db/ledger-billing",
        &[(service, None)],
        vec![clients(&[BILLING])],
    )
}

fn as_client(request: Request<'static>, client: &'static str) -> Request<'static> {
    Request {
        client: Some(client),
        ..request
    }
}

fn routed(
    p: &Policy,
    request: &Request<'_>,
    listener: Listener,
) -> Result<Option<Target>, DenyReason> {
    let decision = p.decide(request);
    assert!(decision.is_allowed(), "{decision}");
    assert_eq!(
        decision.service().unwrap().matched_on,
        MatchedOn::VirtualAddress
    );
    plan(&decision, request, listener, Role::Sidecar, false).map(|r| r.target)
}

fn name(host: &str, port: u16) -> Option<Target> {
    Some(Target::Name {
        host: host.into(),
        port,
    })
}

/// A connection to a name-only service's virtual address is decided for it, with the
/// caller's identity, and goes to the service's own (normalised) host name.
#[test]
fn a_virtual_address_is_decided_for_its_service_and_connects_to_the_name() {
    let p = policy(RegistryOnly);
    let request = as_client(tcp("241.0.0.7", 5432), BILLING);
    for listener in [Listener::Tcp, Listener::TcpEndpoints] {
        assert_eq!(
            routed(&p, &request, listener),
            Ok(name("ledger-db.example.com", 5432))
        );
    }
    let decision = p.decide(&request);
    let route = plan(&decision, &request, Listener::Tcp, Role::Sidecar, false).unwrap();
    assert_eq!(route.cluster, Some(Cluster::ByName));
    // The access policy holds: frontend is denied, naming service and policy.
    assert_eq!(
        verdict(&p, &as_client(tcp("241.0.0.7", 5432), FRONTEND)),
        "deny client_not_allowed db/ledger"
    );
    // A port the service does not declare.
    assert_eq!(
        verdict(&p, &as_client(tcp("241.0.0.7", 5433), BILLING)),
        "deny port_not_declared db/ledger"
    );
}

/// An internal name's virtual addresses (either family, any spelling) go to the endpoint
/// chosen, by name when it is a host name.
#[test]
fn an_internal_names_virtual_address_goes_to_the_endpoint_chosen() {
    let p = policy(RegistryOnly);
    for vip in ["241.0.0.8", "fd00::8", "::ffff:241.0.0.8"] {
        let request = Request {
            locality: Some(Box::leak(Box::new(Locality::parse("us-east/us-east-1a")))),
            ..tcp(vip, 5432)
        };
        assert_eq!(
            routed(&p, &request, Listener::TcpEndpoints),
            Ok(name("pg-east.dc1.example", 5432)),
            "{vip}"
        );
    }
}

/// HTTP naming a virtual address (or dialled to it, naming it) goes to the service's name,
/// which also becomes the authority (`Host`, SNI and the certificate check follow it); never
/// to the virtual address.
#[test]
fn http_to_a_virtual_address_goes_to_the_name() {
    let p = policy(AllowAny);
    for destination in [None, Some("241.0.0.7".parse().unwrap())] {
        let literal = Request {
            destination,
            port: destination.map(|_| 5432),
            client: Some(BILLING),
            ..http("241.0.0.7:5432")
        };
        let decision = p.decide(&literal);
        let route = plan(&decision, &literal, Listener::Http, Role::Sidecar, false).unwrap();
        assert_eq!(route.target, name("ledger-db.example.com", 5432));
        assert_eq!(route.authority, Some("ledger-db.example.com"));
    }
}

/// Sent to a virtual address, a request or connection must name what that address stands
/// for: another name (registered or not, as authority or server name) or another address is
/// denied `name_mismatch`, in both outbound modes, so that neither the name (Istio routes by
/// address) nor the address (the name travels upstream) can be swapped.
#[test]
fn a_virtual_address_with_another_name_is_denied() {
    for mode in [AllowAny, RegistryOnly] {
        let p = policy(mode);
        let dialled = |host: &'static str| Request {
            destination: Some("241.0.0.7".parse().unwrap()),
            port: Some(5432),
            client: Some(BILLING),
            ..http(host)
        };
        for host in [
            "evil.example",
            "orders-db.mesh.internal",
            "10.1.2.3:5432",
            "241.0.0.8",
        ] {
            assert_eq!(
                verdict(&p, &dialled(host)),
                "deny name_mismatch -",
                "{host}"
            );
        }
        for host in [
            "ledger-db.example.com",
            "LEDGER-DB.example.com.:5432",
            "241.0.0.7",
        ] {
            assert!(p.decide(&dialled(host)).is_allowed(), "{host}");
        }
        for sni in ["evil.example", "orders-db.mesh.internal"] {
            let tls = Request {
                protocol: warden_engine::RequestProtocol::Tls,
                sni: Some(sni),
                client: Some(BILLING),
                ..tcp("241.0.0.7", 5432)
            };
            assert_eq!(verdict(&p, &tls), "deny name_mismatch -", "{sni}");
        }
    }
}

/// The bundle's virtual addresses are checked: one IP each, only for a service with an exact
/// host and no addresses, never shared, never inside another service's addresses.
#[test]
fn bad_virtual_addresses_are_refused() {
    let mut a = service("db/a", &["a.example"], &[], &[5432]);
    a.virtual_addresses = vec!["241.0.0.0/24".into(), "241.0.0.9".into()];
    let mut b = service("db/b", &["*.b.example"], &[], &[5432]);
    b.virtual_addresses = vec!["241.0.0.10".into()];
    let mut c = service("db/c", &["c.example"], &[], &[5432]);
    c.virtual_addresses = vec!["241.0.0.9".into()];
    let mut d = service("db/d", &["d.example"], &[], &[5432]);
    d.virtual_addresses = vec!["10.1.2.3".into()];
    let net = service("dc/net", &[], &["10.0.0.0/8"], &[5432]);
    let errors: Vec<String> = compile_all(&bundle(RegistryOnly, vec![a, b, c, d, net], vec![]))
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        [
            "ExternalService db/a: spec.services[0].virtualAddresses[0]: \"241.0.0.0/24\": a virtual address is one IP, not a network",
            "ExternalService db/b: spec.services[1].virtualAddresses[0]: a virtual address stands for the service's exact hosts; this service has addresses, or no exact host",
            "ExternalService db/c: spec.services[2].virtualAddresses[0]: 241.0.0.9 is already a virtual address of ExternalService db/a",
        ],
    );
    // Inside another service's addresses: found once the tables are built.
    let mut d = service("db/d", &["d.example"], &[], &[5432]);
    d.virtual_addresses = vec!["10.1.2.3".into()];
    let net = service("dc/net", &[], &["10.0.0.0/8"], &[5432]);
    let errors = compile_all(&bundle(RegistryOnly, vec![d, net], vec![])).unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        "ExternalService db/d: spec.services[0].virtualAddresses[0]: 10.1.2.3 is inside the addresses of ExternalService dc/net"
    );
}

/// Addresses that are not virtual keep their meaning: a connection goes as dialled.
#[test]
fn declared_addresses_still_go_as_dialled() {
    let p = policy(RegistryOnly);
    let request = tcp("10.9.8.7", 5432);
    let decision = p.decide(&request);
    assert_eq!(decision.service().unwrap().matched_on, MatchedOn::Address);
    let route = plan(&decision, &request, Listener::Tcp, Role::Sidecar, false).unwrap();
    assert!(route.is_as_is());
}
