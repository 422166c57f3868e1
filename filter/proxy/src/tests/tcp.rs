//! The network filter: connections decided on the dialled address and the server name, the
//! route applied through filter state, closes, and the gateway's passthrough.

use proxy_wasm::types::Action;
use warden_bundle::wire::{self, root_id};

use super::{bundle, proxy, BILLING, FRONTEND};
use crate::filter_state::{
    DYNAMIC_HOST, DYNAMIC_PORT, ORIGINAL_DST, TCP_PROXY_CLUSTER, UPSTREAM_SERVER_NAME,
};

/// A sidecar's network filter (`root_id`) for `identity`, for a connection dialled to
/// `destination` with server name `sni`.
fn connection(root_id: &str, identity: &str, destination: &str, sni: Option<&str>) -> super::Proxy {
    let (identity, destination, sni) = (
        identity.to_owned(),
        destination.to_owned(),
        sni.map(str::to_owned),
    );
    proxy(root_id, &bundle("REGISTRY_ONLY"), move |f| {
        let f = f
            .with_property("xds.node.metadata.WARDEN_WORKLOAD_IDENTITY", identity)
            .with_property("destination.address", destination);
        match sni {
            Some(sni) => f.with_property("connection.requested_server_name", sni),
            None => f,
        }
    })
}

#[test]
fn an_address_decision_goes_as_dialled() {
    let p = connection(root_id::NETWORK, BILLING, "10.1.0.5:5432", None);
    let mut tcp = p.root.tcp_context();
    assert_eq!(tcp.on_connection(), Action::Continue);
    assert!(p.fake.filter_state.borrow().is_empty());
    assert!(!p.fake.closed.get());
    // Decided once: data later changes nothing.
    assert_eq!(tcp.decide_once(), Action::Continue);
    assert_eq!(p.metric("warden_tcp_allowed"), 1);
}

#[test]
fn a_denied_connection_is_closed_and_counted() {
    for (destination, sni, code) in [
        ("10.1.0.5:5432", None, "client_not_allowed"),
        ("10.9.9.9:5432", None, "not_in_registry"),
        ("10.1.0.5:5433", None, "port_not_declared"),
        (
            "0.0.0.0:443",
            Some("secure.example.com"),
            "unspecified_address",
        ),
        (
            "10.9.9.9:443",
            Some("secure.example.com:443"),
            "invalid_host",
        ),
    ] {
        let p = connection(root_id::NETWORK, FRONTEND, destination, sni);
        assert_eq!(
            p.root.tcp_context().on_connection(),
            Action::Pause,
            "{code}"
        );
        assert!(p.fake.closed.get(), "{code}: not closed");
        assert!(p.fake.filter_state.borrow().is_empty(), "{code}");
        assert_eq!(p.metric(&format!("warden_tcp_denied_{code}")), 1, "{code}");
    }
}

/// TLS allowed on its server name goes to that name, whatever was dialled.
#[test]
fn tls_allowed_on_its_name_goes_to_the_name() {
    let p = connection(
        root_id::NETWORK,
        FRONTEND,
        "10.9.9.9:443",
        Some("SECURE.example.com."),
    );
    assert_eq!(p.root.tcp_context().on_connection(), Action::Continue);
    assert_eq!(
        p.fake.state(TCP_PROXY_CLUSTER).as_deref(),
        Some(wire::TCP_BY_NAME_CLUSTER)
    );
    assert_eq!(
        p.fake.state(DYNAMIC_HOST).as_deref(),
        Some("secure.example.com")
    );
    assert_eq!(p.fake.state(DYNAMIC_PORT).as_deref(), Some("443"));
}

/// An internal hostname's listener sends the connection to the endpoint chosen.
#[test]
fn an_endpoints_listener_goes_to_the_chosen_endpoint() {
    let p = connection(
        root_id::NETWORK_ENDPOINTS,
        BILLING,
        "10.3.0.1:5432",
        Some("orders.internal"),
    );
    assert_eq!(p.root.tcp_context().on_connection(), Action::Continue);
    assert_eq!(
        p.fake.state(TCP_PROXY_CLUSTER).as_deref(),
        Some(wire::ORIGINAL_DST_CLUSTER)
    );
    let target = p.fake.state(ORIGINAL_DST).unwrap();
    assert!(
        ["10.2.0.1:5432", "10.2.0.2:5432"].contains(&target.as_str()),
        "{target}"
    );
}

/// A route that cannot be set is a closed connection counted `route_failed`, not an allow.
#[test]
fn a_route_that_cannot_be_applied_closes_the_connection() {
    let p = proxy(root_id::NETWORK, &bundle("REGISTRY_ONLY"), |f| {
        f.with_property("xds.node.metadata.WARDEN_WORKLOAD_IDENTITY", BILLING)
            .with_property("destination.address", "10.9.9.9:443")
            .with_property("connection.requested_server_name", "secure.example.com")
            .failing("set_filter_state")
    });
    assert_eq!(p.root.tcp_context().on_connection(), Action::Pause);
    assert!(p.fake.closed.get());
    assert_eq!(p.metric("warden_tcp_denied_route_failed"), 1);
    assert_eq!(p.metric("warden_tcp_allowed"), 0);
}

/// The sidecar passes gateway-routed TLS to the gateway's passthrough cluster with the
/// server name `outbound_.PORT_._.HOST`; the gateway decides on its first data, from that
/// name and the caller's certificate.
#[test]
fn passthrough_through_the_gateway() {
    let mut partner = bundle("REGISTRY_ONLY");
    partner["spec"]["services"][3]["ports"][0]["protocol"] = "TLS".into();
    partner["spec"]["services"][3]["endpoints"] = serde_json::json!([{
        "source": { "kind": "ExternalEndpoint", "namespace": "pay", "name": "partner-1" },
        "address": "10.4.0.1", "ports": [{ "number": 443 }]
    }]);
    partner["spec"]["accessPolicies"][0]["targets"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({ "service": { "namespace": "pay", "name": "partner" } }));
    let sidecar = proxy(root_id::NETWORK, &partner, |f| {
        f.with_property("xds.node.metadata.WARDEN_WORKLOAD_IDENTITY", BILLING)
            .with_property(
                "xds.node.metadata.WARDEN_GATEWAY_TCP_CLUSTER",
                "to_gateway_tls",
            )
            .with_property("destination.address", "10.9.9.9:443")
            .with_property("connection.requested_server_name", "partner.example.com")
    });
    assert_eq!(sidecar.root.tcp_context().on_connection(), Action::Continue);
    assert_eq!(
        sidecar.fake.state(TCP_PROXY_CLUSTER).as_deref(),
        Some("to_gateway_tls")
    );
    let server_name = sidecar.fake.state(UPSTREAM_SERVER_NAME).unwrap();
    assert_eq!(server_name, "outbound_.443_._.partner.example.com");

    let gateway = |peer: &'static str| {
        let name = server_name.clone();
        proxy(root_id::NETWORK_GATEWAY, &partner, move |mut f| {
            f.properties
                .insert("xds.node.metadata.WARDEN_ROLE".into(), b"gateway".to_vec());
            f.with_property("connection.uri_san_peer_certificate", peer)
                .with_property("connection.requested_server_name", name)
                .with_property("destination.address", "127.0.0.1:15443")
        })
    };
    let p = gateway(BILLING);
    let mut tcp = p.root.tcp_context();
    // Nothing is decided before the first data, when the certificate is known.
    assert_eq!(tcp.on_connection(), Action::Continue);
    assert_eq!(p.metric("warden_tcp_allowed"), 0);
    assert_eq!(tcp.decide_once(), Action::Continue);
    assert_eq!(p.metric("warden_tcp_allowed"), 1);
    assert_eq!(p.fake.state(ORIGINAL_DST).as_deref(), Some("10.4.0.1:443"));
    assert!(p.fake.state(DYNAMIC_HOST).is_none());
    // Frontend's certificate: closed on the first data.
    let p = gateway(FRONTEND);
    let mut tcp = p.root.tcp_context();
    assert_eq!(tcp.on_connection(), Action::Continue);
    assert_eq!(tcp.decide_once(), Action::Pause);
    assert!(p.fake.closed.get());
    assert_eq!(p.metric("warden_tcp_denied_client_not_allowed"), 1);
}

/// Without a loaded policy a connection is closed, and counted.
#[test]
fn without_a_policy_connections_are_closed() {
    let p = proxy(root_id::NETWORK, &serde_json::json!({}), |f| {
        f.with_property("destination.address", "10.1.0.5:5432")
    });
    assert!(!p.configured);
    assert_eq!(p.root.tcp_context().on_connection(), Action::Pause);
    assert!(p.fake.closed.get());
    assert_eq!(p.metric("warden_tcp_denied_no_policy"), 1);
}
