//! The HTTP filter: request building from headers and properties, route application, local
//! replies, and what a failing host call turns into.

use proxy_wasm::types::Action;
use warden_bundle::wire::{self, root_id};

use super::{bundle, get, http, proxy, sidecar, BILLING, FRONTEND};
use crate::filter_state::{DYNAMIC_HOST, DYNAMIC_PORT};

fn reason(p: &super::Proxy) -> Option<String> {
    let reply = p.fake.reply()?;
    reply
        .headers
        .iter()
        .find(|(n, _)| n == "x-warden-reason")
        .map(|(_, v)| v.clone())
}

/// An allowed request continues; the dynamic forward proxy is told the target only when the
/// authority as sent would take it elsewhere (another spelling of the name).
#[test]
fn allowed_requests_continue_to_what_was_decided() {
    let p = sidecar("REGISTRY_ONLY", BILLING);
    for (authority, target) in [
        ("api.example.com", None),
        ("api.example.com:443", None),
        ("API.example.com.:80", Some("api.example.com")),
    ] {
        assert_eq!(get(&p, authority), Action::Continue, "{authority}");
        assert!(p.fake.reply().is_none(), "{authority}");
        assert_eq!(p.fake.state(DYNAMIC_HOST).as_deref(), target, "{authority}");
    }
    assert_eq!(p.fake.state(DYNAMIC_PORT).as_deref(), Some("80"));
    assert_eq!(p.metric("warden_http_allowed"), 3);
}

#[test]
fn denials_answer_locally_with_reason_status_and_provenance() {
    let p = sidecar("REGISTRY_ONLY", FRONTEND);
    let cases = [
        ("unknown.example.org", "not_in_registry", 403),
        ("api.example.com:8080", "port_not_declared", 403),
        ("10.1.0.5:5432", "client_not_allowed", 403),
        ("0.0.0.0", "unspecified_address", 403),
        ("partner.example.com:443", "must_use_gateway", 403),
        ("bad host", "invalid_host", 400),
    ];
    for (authority, code, status) in cases {
        assert_eq!(get(&p, authority), Action::Pause, "{authority}");
        let reply = p.fake.reply().unwrap();
        assert_eq!(reason(&p).as_deref(), Some(code), "{authority}");
        assert_eq!(reply.status, status, "{authority}");
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(body["reason"], code);
    }
    let body: serde_json::Value = serde_json::from_str(&{
        get(&p, "10.1.0.5:5432");
        p.fake.reply().unwrap().body
    })
    .unwrap();
    assert_eq!(body["service"], "pay/db");
    assert_eq!(body["policy"], "pay/db-billing-only");
    for (_, code, _) in cases {
        assert!(
            p.metric(&format!("warden_http_denied_{code}")) >= 1,
            "{code} not counted"
        );
    }
}

/// The authority comes from `:authority`, else `Host`; one that is not UTF-8 is
/// `invalid_host`; other headers that are not UTF-8 are ignored, never a crash.
#[test]
fn headers_are_bytes_until_validated() {
    let p = sidecar("REGISTRY_ONLY", BILLING);
    assert_eq!(
        http(&p, &[("host", b"api.example.com"), (":method", b"GET")]),
        Action::Continue
    );
    assert_eq!(http(&p, &[(":authority", b"api.\xff.com")]), Action::Pause);
    assert_eq!(reason(&p).as_deref(), Some("invalid_host"));
    assert_eq!(
        http(
            &p,
            &[
                (":authority", b"api.example.com"),
                (":path", b"/\xc3\x28"),
                ("x-other", b"\xff\xfe")
            ]
        ),
        Action::Continue
    );
    assert_eq!(p.metric("warden_http_denied_invalid_host"), 1);
    // No authority at all: nothing registered was named.
    assert_eq!(http(&p, &[(":method", b"GET")]), Action::Pause);
    assert_eq!(reason(&p).as_deref(), Some("not_in_registry"));
}

#[test]
fn spoofable_headers_are_removed_before_deciding() {
    let p = sidecar("REGISTRY_ONLY", BILLING);
    http(
        &p,
        &[
            (":authority", b"api.example.com"),
            ("x-warden-cluster", b"warden_tcp_0"),
            ("X-Warden-Reason", b"allowed"),
            ("x-envoy-original-dst-host", b"10.9.9.9:80"),
        ],
    );
    for name in [
        "x-warden-cluster",
        "X-Warden-Reason",
        "x-envoy-original-dst-host",
    ] {
        assert_eq!(p.fake.header(name), None, "{name} kept");
    }
    assert!(p.fake.header(":authority").is_some());
}

/// Under traffic capture the port decided is the dialled one, and the dynamic forward proxy
/// is told it (filter state), since the authority names another.
#[test]
fn under_capture_the_target_is_set_when_the_authority_would_go_elsewhere() {
    let p = proxy(root_id::HTTP, &bundle("REGISTRY_ONLY"), |f| {
        f.with_property("xds.node.metadata.WARDEN_WORKLOAD_IDENTITY", BILLING)
            .with_property("destination.address", "93.184.216.34:443")
    });
    assert_eq!(get(&p, "api.example.com"), Action::Continue);
    assert_eq!(
        p.fake.state(DYNAMIC_HOST).as_deref(),
        Some("api.example.com")
    );
    assert_eq!(p.fake.state(DYNAMIC_PORT).as_deref(), Some("443"));
    // As dialled: nothing to set.
    assert_eq!(get(&p, "api.example.com:443"), Action::Continue);
    assert!(p.fake.filter_state.borrow().is_empty());
}

/// A route the proxy cannot be given is a denial of its own, counted as one.
#[test]
fn a_route_that_cannot_be_applied_is_route_failed() {
    let p = proxy(root_id::HTTP, &bundle("REGISTRY_ONLY"), |f| {
        f.with_property("xds.node.metadata.WARDEN_WORKLOAD_IDENTITY", BILLING)
            .with_property("destination.address", "93.184.216.34:443")
            .failing("set_filter_state")
    });
    assert_eq!(get(&p, "api.example.com"), Action::Pause);
    assert_eq!(reason(&p).as_deref(), Some("route_failed"));
    assert_eq!(p.metric("warden_http_denied_route_failed"), 1);
    assert_eq!(p.metric("warden_http_allowed"), 0);
}

/// Through the gateway: the cluster header names the sidecar's gateway cluster; without one
/// configured the request is `must_use_gateway`; a header that cannot be set is
/// `route_failed`.
#[test]
fn gateway_routed_requests_name_the_gateway_cluster() {
    let with_gateway = |failing: Option<&'static str>| {
        proxy(root_id::HTTP, &bundle("REGISTRY_ONLY"), move |f| {
            let f = f
                .with_property("xds.node.metadata.WARDEN_WORKLOAD_IDENTITY", BILLING)
                .with_property("xds.node.metadata.WARDEN_LOCAL_PROXY", "true")
                .with_property("xds.node.metadata.WARDEN_GATEWAY_CLUSTER", "to_gateway");
            match failing {
                Some(call) => f.failing(call),
                None => f,
            }
        })
    };
    let p = with_gateway(None);
    assert_eq!(get(&p, "partner.example.com:443"), Action::Continue);
    assert_eq!(
        p.fake.header(wire::CLUSTER_HEADER).as_deref(),
        Some("to_gateway")
    );
    let p = with_gateway(Some("set_request_header"));
    assert_eq!(get(&p, "partner.example.com:443"), Action::Pause);
    assert_eq!(reason(&p).as_deref(), Some("route_failed"));
}

/// At the gateway the caller is the certificate's identity, and the TLS server name must
/// name the host asked for.
#[test]
fn the_gateway_decides_on_the_certificate_and_the_server_name() {
    let gateway = |peer: &str, sni: &str| {
        let (peer, sni) = (peer.to_owned(), sni.to_owned());
        proxy(root_id::HTTP, &bundle("REGISTRY_ONLY"), move |f| {
            f.with_property("xds.node.metadata.WARDEN_ROLE", "gateway")
                .with_property("connection.uri_san_peer_certificate", peer)
                .with_property("connection.requested_server_name", sni)
        })
    };
    let p = gateway(BILLING, "partner.example.com");
    assert_eq!(get(&p, "partner.example.com:443"), Action::Continue);
    let p = gateway(BILLING, "api.example.com");
    assert_eq!(get(&p, "partner.example.com:443"), Action::Pause);
    assert_eq!(reason(&p).as_deref(), Some("sni_host_mismatch"));
    // A service without a gateway route is not forwarded.
    let p = gateway(BILLING, "api.example.com");
    assert_eq!(get(&p, "api.example.com:443"), Action::Pause);
    assert_eq!(reason(&p).as_deref(), Some("not_gateway_routed"));
}

/// Without a loaded policy, and when the reply itself cannot be sent, the request is paused:
/// nothing goes upstream.
#[test]
fn without_a_policy_everything_fails_closed() {
    let p = proxy(root_id::HTTP, &serde_json::json!({}), |f| f);
    assert!(!p.configured);
    assert_eq!(get(&p, "api.example.com"), Action::Pause);
    assert_eq!(reason(&p).as_deref(), Some("no_policy"));
    assert_eq!(p.fake.reply().unwrap().status, 503);
    assert_eq!(p.metric("warden_http_denied_no_policy"), 1);
    assert_eq!(p.metric("warden_config_rejected"), 1);
    let p = proxy(root_id::HTTP, &bundle("REGISTRY_ONLY"), |f| {
        f.failing("send_response")
    });
    assert_eq!(get(&p, "unknown.example.org"), Action::Pause);
    assert!(p.fake.reply().is_none());
}

/// A request whose headers cannot be read, or whose spoofable headers cannot be removed, is
/// denied `route_failed`: nothing a client sent to steer Envoy goes through.
#[test]
fn headers_that_cannot_be_read_or_cleaned_fail_closed() {
    for call in ["request_headers", "remove_request_header"] {
        let p = proxy(root_id::HTTP, &bundle("ALLOW_ANY"), move |f| {
            f.with_property("xds.node.metadata.WARDEN_WORKLOAD_IDENTITY", BILLING)
                .with_property("xds.node.metadata.WARDEN_LOCAL_PROXY", "true")
                .failing(call)
        });
        let action = http(
            &p,
            &[
                (":authority", b"api.example.com"),
                ("x-warden-cluster", b"warden_tcp_0"),
            ],
        );
        assert_eq!(action, Action::Pause, "{call}");
        assert_eq!(reason(&p).as_deref(), Some("route_failed"), "{call}");
        assert_eq!(p.metric("warden_http_denied_route_failed"), 1, "{call}");
        assert_eq!(p.metric("warden_http_allowed"), 0, "{call}");
    }
}

/// Under Istio (`WARDEN_ROUTING=mesh`) with a mesh scope, the route's cluster
/// (`xds.cluster_name`) says whether an unregistered request stays in the mesh: the mesh
/// service's cluster is `in_mesh` (counted), a pass-through is decided as unregistered.
#[test]
fn under_istio_the_route_cluster_says_what_is_in_the_mesh() {
    let mut with_mesh = bundle("REGISTRY_ONLY");
    with_mesh["spec"]["mesh"] = serde_json::json!({ "domains": ["svc.cluster.local"] });
    let istio = |cluster: &'static str| {
        proxy(root_id::HTTP, &with_mesh, move |f| {
            f.with_env("WARDEN_ROUTING", "mesh")
                .with_property("xds.node.metadata.NAMESPACE", "web")
                .with_property("xds.node.metadata.SERVICE_ACCOUNT", "frontend")
                .with_property("xds.cluster_name", cluster)
        })
    };
    let p = istio("outbound|9080||reviews.default.svc.cluster.local");
    assert!(p.configured);
    assert_eq!(
        get(&p, "reviews.default.svc.cluster.local:9080"),
        Action::Continue
    );
    assert!(p.fake.reply().is_none());
    assert_eq!(p.metric("warden_http_in_mesh"), 1);
    assert_eq!(p.metric("warden_http_allowed"), 1);

    let p = istio(wire::ISTIO_PASSTHROUGH_CLUSTER);
    assert_eq!(
        get(&p, "reviews.default.svc.cluster.local:9080"),
        Action::Pause
    );
    assert_eq!(reason(&p).as_deref(), Some("not_in_registry"));
    assert_eq!(p.metric("warden_http_in_mesh"), 0);

    // Without a mesh scope the cluster is not even read: decided as unregistered.
    let p = proxy(root_id::HTTP, &bundle("REGISTRY_ONLY"), |f| {
        f.with_env("WARDEN_ROUTING", "mesh").with_property(
            "xds.cluster_name",
            "outbound|9080||reviews.default.svc.cluster.local",
        )
    });
    assert_eq!(get(&p, "reviews.default.svc.cluster.local"), Action::Pause);
    assert_eq!(reason(&p).as_deref(), Some("not_in_registry"));
}
