//! Routing: every allow holds for what Envoy connects to. The plan names the host or address
//! and the port decided, never leaving them to a later reading of the request.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

mod support;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use support::*;
use warden_bundle::OutboundMode::{AllowAny, RegistryOnly};
use warden_bundle::Role;
use warden_engine::{
    plan, AllHealthy, Cluster, DenyReason, Listener, Policy, Request, RequestProtocol, Route,
    Target,
};

/// `web/api` by name on 8080, `dc/db` by address on 5432 and 8080, `tls/api` by name on 443.
fn policy(mode: warden_bundle::OutboundMode) -> Policy {
    compiled(&bundle(
        mode,
        vec![
            service("web/api", &["api.example.com"], &[], &[8080]),
            service("dc/db", &[], &["10.1.0.0/16"], &[5432, 8080]),
            service("tls/api", &["secure.example.com"], &[], &[443]),
        ],
        vec![],
    ))
}

fn route<'p>(
    p: &'p Policy,
    request: &Request<'_>,
    listener: Listener,
) -> Result<Route<'p>, DenyReason> {
    let decision = p.decide(request);
    assert!(decision.is_allowed(), "{decision}");
    plan(&decision, request, listener, Role::Sidecar, false)
}

fn name(host: &str, port: u16) -> Option<Target> {
    Some(Target::Name {
        host: host.into(),
        port,
    })
}

fn tls(sni: &str, destination: &str, port: u16) -> Request<'static> {
    Request {
        protocol: RequestProtocol::Tls,
        sni: Some(Box::leak(sni.to_owned().into_boxed_str())),
        ..tcp(destination, port)
    }
}

/// A connection allowed on its server name goes to that name, not to the dialled address.
#[test]
fn tls_allowed_on_its_name_connects_to_the_name() {
    let p = policy(RegistryOnly);
    for sni in ["secure.example.com", "SECURE.example.com."] {
        let r = route(&p, &tls(sni, "192.0.2.66", 443), Listener::Tcp).unwrap();
        assert_eq!(r.cluster, Some(Cluster::ByName));
        assert_eq!(r.target, name("secure.example.com", 443));
    }
}

/// An IP literal in the server name names nothing: the dialled address decides, and the
/// connection goes there as it is.
#[test]
fn an_ip_literal_server_name_is_decided_on_the_dialled_address() {
    let p = policy(RegistryOnly);
    assert_eq!(
        verdict(&p, &tls("10.1.2.3", "192.0.2.66", 5432)),
        "deny not_in_registry -"
    );
    let r = route(&p, &tls("192.0.2.66", "10.1.2.3", 5432), Listener::Tcp).unwrap();
    assert!(r.is_as_is());
}

/// A server name with a port is no host name.
#[test]
fn a_server_name_with_a_port_is_invalid() {
    let p = policy(RegistryOnly);
    assert_eq!(
        verdict(&p, &tls("secure.example.com:443", "192.0.2.66", 443)),
        "deny invalid_host -"
    );
}

/// Under capture the port decided is the dialled one: the authority's port is not where the
/// request goes.
#[test]
fn http_goes_to_the_port_decided() {
    let p = policy(RegistryOnly);
    let captured = |host: &'static str, ip: &str, port: u16| Request {
        destination: Some(ip.parse().unwrap()),
        port: Some(port),
        ..http(host)
    };
    for (authority, dialled, target) in [
        ("api.example.com:9999", "192.0.2.1", "api.example.com"),
        // No port in the authority: the dynamic forward proxy would use 80.
        ("api.example.com", "192.0.2.1", "api.example.com"),
        // An address authority, any spelling: the canonical address.
        ("0x0a.1.0.5:9999", "10.1.0.5", "10.1.0.5"),
    ] {
        let r = route(&p, &captured(authority, dialled, 8080), Listener::Http).unwrap();
        assert_eq!(r.target, name(target, 8080), "{authority}");
    }
    // Exactly what was decided: left as it is.
    let r = route(&p, &http("api.example.com:8080"), Listener::Http).unwrap();
    assert!(r.is_as_is(), "{r:?}");
}

/// A name the registry does not know, decided on the dialled address, goes to that address.
#[test]
fn unregistered_names_under_capture_go_to_the_dialled_address() {
    let p = policy(AllowAny);
    let request = Request {
        destination: Some("203.0.113.9".parse().unwrap()),
        port: Some(80),
        ..http("anything.example")
    };
    let r = route(&p, &request, Listener::Http).unwrap();
    assert_eq!(r.target, name("203.0.113.9", 80));
}

/// `0.0.0.0/8` and `::` are never destinations, in any spelling, named or dialled.
#[test]
fn unspecified_addresses_are_denied() {
    let p = policy(AllowAny);
    for host in [
        "0",
        "0.0.0.0",
        "0.1.2.3:80",
        "[::]:80",
        "[::ffff:0.0.0.0]",
        "0x0",
    ] {
        assert_eq!(
            verdict(&p, &http(host)),
            "deny unspecified_address -",
            "{host}"
        );
    }
    assert_eq!(
        verdict(&p, &tcp("0.0.0.0", 5432)),
        "deny unspecified_address -"
    );
    // Dialled, under a server name or an authority that names something else: a connection
    // decided as unregistered would go to the dialled address. (Found by the `decide` fuzz
    // target: TLS for an unregistered name dialled to 0.41.204.138 passed through.)
    for dialled in ["0.41.204.138", "0.0.0.0"] {
        assert_eq!(
            verdict(&p, &tls("unregistered.example", dialled, 443)),
            "deny unspecified_address -",
            "{dialled}"
        );
    }
    let mut named = http("unregistered.example");
    named.destination = Some("::".parse().unwrap());
    assert_eq!(verdict(&p, &named), "deny unspecified_address -");
}

/// A listener that stands for an internal hostname has nowhere to send a connection decided
/// on its own address.
#[test]
fn an_endpoints_listener_without_an_endpoint_routes_nowhere() {
    let p = policy(RegistryOnly);
    assert_eq!(
        route(&p, &tcp("10.1.0.5", 5432), Listener::TcpEndpoints),
        Err(DenyReason::RouteFailed)
    );
    // The gateway's passthrough listener connects to addresses only, never by name.
    assert_eq!(
        route(
            &p,
            &tls("secure.example.com", "192.0.2.66", 443),
            Listener::GatewayPassthrough
        ),
        Err(DenyReason::RouteFailed)
    );
    assert!(route(&p, &tcp("10.1.0.5", 5432), Listener::Tcp)
        .unwrap()
        .is_as_is());
}

/// One final verdict: an allow with no route, or one the proxy could not be given, is a
/// denial that keeps the service it was allowed for.
#[test]
fn an_allow_the_proxy_cannot_route_is_a_denial() {
    let p = policy(RegistryOnly);
    let nowhere = p.decide_and_route(
        &tcp("10.1.0.5", 5432),
        Listener::TcpEndpoints,
        false,
        &AllHealthy,
        0,
        |_| true,
    );
    assert_eq!(
        nowhere.to_string(),
        "deny route_failed service=dc/db port=5432"
    );
    let untold = p.decide_and_route(
        &http("API.example.com:8080"),
        Listener::Http,
        false,
        &AllHealthy,
        0,
        |route| route.is_as_is(),
    );
    assert_eq!(
        untold.to_string(),
        "deny route_failed service=web/api port=8080"
    );
    let routed = p.decide_and_route(
        &http("api.example.com:8080"),
        Listener::Http,
        false,
        &AllHealthy,
        0,
        |route| route.is_as_is(),
    );
    assert!(routed.is_allowed(), "{routed}");
}
