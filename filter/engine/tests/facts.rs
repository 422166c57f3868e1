//! One way from what a proxy knows to an engine request (`Facts::request`), for every kind of
//! listener and both roles.
#![allow(clippy::unwrap_used)]

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::net::IpAddr;

use warden_bundle::Role;
use warden_engine::{Facts, Listener, RequestProtocol};

const BILLING: &str = "spiffe://cluster.local/ns/pay/sa/billing";
const PEER: &str = "spiffe://cluster.local/ns/web/sa/frontend";

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().unwrap())
}

#[test]
fn a_sidecar_http_request_is_its_authority_and_identity() {
    let facts = Facts {
        authority: Some("api.example.com"),
        server_name: Some("ignored.example.com"),
        destination: ip("192.0.2.1"),
        port: Some(443),
        identity: Some(BILLING),
        peer: Some(PEER),
        method: Some("GET"),
        path: Some("/x"),
        ..Facts::default()
    };
    let r = facts.request();
    assert_eq!(r.protocol, RequestProtocol::Http);
    assert_eq!(r.host, Some("api.example.com"));
    assert_eq!(r.sni, None, "a sidecar's clients speak plain HTTP to it");
    assert_eq!((r.destination, r.port), (ip("192.0.2.1"), Some(443)));
    assert_eq!(r.client, Some(BILLING));
    assert_eq!((r.method, r.path), (Some("GET"), Some("/x")));
}

#[test]
fn a_gateway_http_request_is_the_certificates_and_keeps_the_server_name() {
    let facts = Facts {
        role: Role::Gateway,
        authority: Some("api.example.com:443"),
        server_name: Some("api.example.com"),
        identity: Some(BILLING),
        peer: Some(PEER),
        ..Facts::default()
    };
    let r = facts.request();
    assert_eq!(r.client, Some(PEER));
    assert_eq!(r.sni, Some("api.example.com"));
}

#[test]
fn a_sidecar_connection_is_tls_with_a_server_name_and_tcp_without() {
    let base = Facts {
        listener: Some(Listener::Tcp),
        destination: ip("10.1.0.5"),
        port: Some(5432),
        identity: Some(BILLING),
        ..Facts::default()
    };
    let tcp = base.request();
    assert_eq!(tcp.protocol, RequestProtocol::Tcp);
    assert_eq!(
        (tcp.destination, tcp.port, tcp.sni),
        (ip("10.1.0.5"), Some(5432), None)
    );
    for empty in [None, Some("")] {
        let r = Facts {
            server_name: empty,
            ..base
        }
        .request();
        assert_eq!(r.protocol, RequestProtocol::Tcp, "{empty:?}");
    }
    let tls = Facts {
        server_name: Some("db.example.com"),
        ..base
    }
    .request();
    assert_eq!(tls.protocol, RequestProtocol::Tls);
    assert_eq!(tls.sni, Some("db.example.com"));
    assert_eq!(tls.host, None);
    assert_eq!(tls.client, Some(BILLING));
}

#[test]
fn at_the_gateway_a_connection_goes_where_its_server_name_says() {
    let base = Facts {
        role: Role::Gateway,
        listener: Some(Listener::GatewayPassthrough),
        peer: Some(PEER),
        identity: Some(BILLING),
        ..Facts::default()
    };
    let r = Facts {
        server_name: Some("outbound_.8443_._.api.example.com"),
        ..base
    }
    .request();
    assert_eq!((r.sni, r.port), (Some("api.example.com"), Some(8443)));
    assert_eq!(
        r.destination, None,
        "the listener's own address is no destination"
    );
    assert_eq!(r.client, Some(PEER));
    // A plain name: the TLS port, unless the facts name one (explain's --to HOST:PORT).
    let r = Facts {
        server_name: Some("api.example.com"),
        ..base
    }
    .request();
    assert_eq!((r.sni, r.port), (Some("api.example.com"), None));
    let r = Facts {
        server_name: Some("api.example.com"),
        port: Some(9443),
        ..base
    }
    .request();
    assert_eq!(r.port, Some(9443));
    // No server name: nothing says where it goes.
    let r = base.request();
    assert_eq!(
        (r.protocol, r.sni, r.destination),
        (RequestProtocol::Tcp, None, None)
    );
}

/// A TCP listener that is not the passthrough, on a gateway-role proxy: the connection goes
/// where it was dialled, and its server name is a name, not a destination.
#[test]
fn only_the_passthrough_listener_reads_its_destination_from_the_server_name() {
    for listener in [Listener::Tcp, Listener::TcpEndpoints] {
        let r = Facts {
            role: Role::Gateway,
            listener: Some(listener),
            server_name: Some("outbound_.8443_._.api.example.com"),
            destination: ip("10.1.0.5"),
            port: Some(5432),
            ..Facts::default()
        }
        .request();
        assert_eq!(
            r.sni,
            Some("outbound_.8443_._.api.example.com"),
            "{listener:?}"
        );
        assert_eq!(
            (r.destination, r.port),
            (ip("10.1.0.5"), Some(5432)),
            "{listener:?}"
        );
    }
}
