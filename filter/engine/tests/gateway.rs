//! Egress gateway routes: what a sidecar and the gateway each decide for a port that must
//! leave through the gateway.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

mod support;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use support::*;
use warden_bundle::{
    Endpoint, EndpointPort, GatewayRef, GatewayRoute, Locality, OutboundMode::RegistryOnly,
    Provenance, ResourceKind, Role, TargetPort, TlsMode, TlsOrigination,
};
use warden_engine::{GatewayRoutes, Policy, Request, RequestProtocol};

const BILLING: &str = "spiffe://cluster.local/ns/pay/sa/billing";
const FRONTEND: &str = "spiffe://cluster.local/ns/web/sa/frontend";

/// `pay/api` on 8443: through the gateway, TLS originated there, only billing may call it,
/// one IP endpoint. `saas/open` on 80: direct.
fn policy(role: Role, gateway_route: bool) -> Policy {
    policy_in(RegistryOnly, role, gateway_route)
}

fn policy_in(mode: warden_bundle::OutboundMode, role: Role, gateway_route: bool) -> Policy {
    let routes = if gateway_route {
        GatewayRoutes::ALL
    } else {
        GatewayRoutes::NONE
    };
    let mut api = service("pay/api", &["api.external.test"], &[], &[8443]);
    api.ports[0].protocol = warden_bundle::Protocol::Http;
    api.ports[0].target_port = Some(TargetPort::Number(9443));
    api.ports[0].egress_gateway = Some(GatewayRoute {
        gateways: vec![GatewayRef {
            namespace: "egress".into(),
            name: "gw".into(),
        }],
        port_match: None,
    });
    api.ports[0].tls = Some(TlsOrigination {
        mode: TlsMode::Simple,
        sni: None,
        ca_certificates: Some("/etc/ca.pem".into()),
        client_certificate: None,
        private_key: None,
        insecure_skip_verify: false,
        credential_name: None,
    });
    api.endpoints = vec![Endpoint {
        source: Provenance::new(ResourceKind::ExternalEndpoint, "pay", "api-1"),
        address: "127.0.0.31".into(),
        ports: vec![EndpointPort {
            name: None,
            number: 9443,
        }],
        locality: Locality::default(),
        weight: 1,
    }];
    let open = service("saas/open", &["open.external.test"], &[], &[80]);
    let access = support::policy(
        "pay/api-access",
        &[("pay/api", None)],
        vec![clients(&[BILLING])],
    );
    let mut p = compiled(&bundle(mode, vec![api, open], vec![access]));
    p.set_proxy_role(role, routes);
    p
}

fn from<'a>(client: &'a str, host: &'a str) -> Request<'a> {
    Request {
        client: Some(client),
        ..http(host)
    }
}

/// A sidecar with a gateway route lets the request go to the gateway: allowed, marked
/// `via_gateway`, and with no endpoint chosen (the gateway chooses).
#[test]
fn sidecar_sends_gateway_ports_to_the_gateway() {
    let p = policy(Role::Sidecar, true);
    let d = p.decide(&from(BILLING, "api.external.test:8443"));
    assert_eq!(
        d.to_string(),
        "allow client_allowed service=pay/api port=8443 policy=pay/api-access via=egress-gateway"
    );
    assert!(d.service().unwrap().via_gateway);
    assert!(d.endpoint().is_none());
    // Ports without a gateway route are untouched.
    assert_eq!(
        verdict(&p, &http("open.external.test")),
        "allow registered saas/open"
    );
}

/// The sidecar still enforces access: defence in depth before the gateway does.
#[test]
fn sidecar_denies_a_disallowed_client_before_the_gateway() {
    let p = policy(Role::Sidecar, true);
    assert_eq!(
        verdict(&p, &from(FRONTEND, "api.external.test:8443")),
        "deny client_not_allowed pay/api"
    );
}

/// Without a gateway route for the kind of traffic, or over plain TCP (no server name to
/// pass through by), traffic to a gateway-only port is denied `must_use_gateway`.
#[test]
fn going_around_the_gateway_is_denied() {
    let p = policy(Role::Sidecar, false);
    assert_eq!(
        verdict(&p, &from(BILLING, "api.external.test:8443")),
        "deny must_use_gateway pay/api"
    );
    let tls = Request {
        protocol: RequestProtocol::Tls,
        sni: Some("api.external.test"),
        port: Some(8443),
        client: Some(BILLING),
        ..Request::default()
    };
    let mut http_only = policy(Role::Sidecar, true);
    http_only.set_proxy_role(
        Role::Sidecar,
        GatewayRoutes {
            http: true,
            tls: false,
        },
    );
    assert_eq!(verdict(&http_only, &tls), "deny must_use_gateway pay/api");
    assert!(http_only.decide(&tls).message().contains("egress gateway"));
    // With a TLS route, the connection passes through the gateway by its server name.
    let routed = policy(Role::Sidecar, true);
    assert_eq!(verdict(&routed, &tls), "allow client_allowed pay/api");
    assert!(routed.decide(&tls).endpoint().is_none());
    let tcp = Request {
        protocol: RequestProtocol::Tcp,
        destination: Some("127.0.0.31".parse().unwrap()),
        port: Some(8443),
        client: Some(BILLING),
        ..Request::default()
    };
    assert_eq!(verdict(&routed, &tcp), "deny not_in_registry -");
}

/// The gateway decides on the caller's identity, picks the endpoint and names the cluster that
/// originates TLS.
#[test]
fn gateway_chooses_the_endpoint_and_the_origination_cluster() {
    let p = policy(Role::Gateway, false);
    let d = p.decide(&from(BILLING, "api.external.test:8443"));
    assert!(d.is_allowed(), "{d}");
    let endpoint = d.endpoint().unwrap();
    assert_eq!(endpoint.address.to_string(), "127.0.0.31");
    assert_eq!(endpoint.port, 9443);
    assert_eq!(
        d.service().unwrap().tls_cluster,
        Some("warden_tls|pay|api|8443")
    );
    assert_eq!(
        verdict(&p, &from(FRONTEND, "api.external.test:8443")),
        "deny client_not_allowed pay/api"
    );
    // No certificate identity at all: not allowed either.
    assert_eq!(
        verdict(&p, &http("api.external.test:8443")),
        "deny client_not_allowed pay/api"
    );
}

/// Domain fronting: a TLS server name for one host and an HTTP authority for another.
#[test]
fn sni_and_authority_must_name_the_same_host() {
    let p = policy(Role::Gateway, false);
    let fronted = Request {
        sni: Some("open.external.test"),
        ..from(BILLING, "api.external.test:8443")
    };
    assert_eq!(verdict(&p, &fronted), "deny sni_host_mismatch -");
    let matching = Request {
        sni: Some("API.external.test"),
        ..from(BILLING, "api.external.test:8443")
    };
    assert!(p.decide(&matching).is_allowed());
}

/// The gateway is no general proxy: only ports with a gateway route, whatever the outbound
/// mode, and no TLS passed through to a port whose TLS it originates.
#[test]
fn the_gateway_forwards_only_what_the_registry_routes_through_it() {
    for mode in [RegistryOnly, warden_bundle::OutboundMode::AllowAny] {
        let p = policy_in(mode, Role::Gateway, false);
        assert_eq!(
            verdict(&p, &from(BILLING, "open.external.test")),
            "deny not_gateway_routed saas/open"
        );
        for host in ["unregistered.example", "127.0.0.1:15000", "0x7f.1:15000"] {
            assert_eq!(
                verdict(&p, &from(BILLING, host)),
                "deny not_gateway_routed -",
                "{host}"
            );
        }
        let passthrough = Request {
            protocol: RequestProtocol::Tls,
            sni: Some("api.external.test"),
            port: Some(8443),
            client: Some(BILLING),
            ..Request::default()
        };
        assert_eq!(verdict(&p, &passthrough), "deny not_gateway_routed pay/api");
    }
}

/// Gloo's `portMatch`: requests to the host on the matched port are the gateway-routed port's,
/// at the sidecar (to the gateway) and at the gateway (to the endpoint, on the service's
/// target port, with its TLS); the matched port opens nothing else.
#[test]
fn port_match_is_the_gateway_routed_ports() {
    let with_match = |role: Role| {
        let mut api = service("pay/api", &["api.external.test"], &[], &[443]);
        api.ports[0].egress_gateway = Some(GatewayRoute {
            gateways: vec![GatewayRef {
                namespace: "egress".into(),
                name: "gw".into(),
            }],
            port_match: Some(80),
        });
        api.ports[0].tls = Some(TlsOrigination {
            mode: TlsMode::Simple,
            sni: None,
            ca_certificates: None,
            client_certificate: None,
            private_key: None,
            credential_name: None,
            insecure_skip_verify: false,
        });
        let mut p = compiled(&bundle(RegistryOnly, vec![api], vec![]));
        p.set_proxy_role(role, GatewayRoutes::ALL);
        p
    };
    let sidecar = with_match(Role::Sidecar);
    let d = sidecar.decide(&from(BILLING, "api.external.test"));
    assert_eq!(
        d.to_string(),
        "allow registered service=pay/api port=443 via=egress-gateway"
    );
    let gateway = with_match(Role::Gateway);
    let request = from(BILLING, "api.external.test:80");
    let d = gateway.decide(&request);
    assert!(d.is_allowed(), "{d}");
    let route = warden_engine::plan(
        &d,
        &request,
        warden_engine::Listener::Http,
        Role::Gateway,
        false,
    )
    .unwrap();
    assert_eq!(
        route.cluster,
        Some(warden_engine::Cluster::TlsOrigination(
            "warden_tls|pay|api|443"
        ))
    );
    assert_eq!(
        route.target,
        Some(warden_engine::Target::Name {
            host: "api.external.test".into(),
            port: 443
        })
    );
    assert_eq!(
        verdict(&sidecar, &from(BILLING, "api.external.test:8080")),
        "deny port_not_declared pay/api"
    );
}

/// A port another service of the same host declares wins over a `portMatch`, whatever the
/// services' order; a `portMatch` that is also a declared port is refused.
#[test]
fn a_declared_port_wins_over_a_port_match() {
    let gateway_route = || GatewayRoute {
        gateways: vec![GatewayRef {
            namespace: "egress".into(),
            name: "gw".into(),
        }],
        port_match: Some(80),
    };
    let mut ported = service("a/ported", &["api.external.test"], &[], &[443]);
    ported.ports[0].egress_gateway = Some(gateway_route());
    let plain = service("b/plain", &["api.external.test"], &[], &[80]);
    for services in [
        vec![ported.clone(), plain.clone()],
        vec![plain, ported.clone()],
    ] {
        let p = compiled(&bundle(RegistryOnly, services, vec![]));
        assert_eq!(
            verdict(&p, &http("api.external.test")),
            "allow registered b/plain"
        );
    }
    let mut twice = ported;
    twice.ports.push(twice.ports[0].clone());
    twice.ports[1].number = 80;
    let err = warden_engine::compile(&bundle(RegistryOnly, vec![twice], vec![]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("egressGateway.portMatch: port 80 is also a declared port"),
        "{err}"
    );
}
