//! The filter as Istio runs it: the WasmPlugin that `render istio` writes becomes an Envoy
//! wasm filter with the plugin's `pluginConfig` as configuration and its `vmConfig.env` as VM
//! environment variables, on a proxy whose node metadata is Istio's (`NAMESPACE`,
//! `SERVICE_ACCOUNT`; node ID `sidecar~...` or `router~...`). Istio's routes, not the filter,
//! take allowed traffic on: here one static route to a real upstream.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;

use bundle_builder::render::istio::{resources, IstioGateway, IstioOptions};
use serde_json::{json, Value};
use warden_bundle::Bundle;
use warden_e2e::client::get;
use warden_e2e::envoy::{wasm_path, Envoy};
use warden_e2e::free_addr;
use warden_e2e::upstream::HttpUpstream;

fn examples_bundle() -> Bundle {
    let path = warden_e2e::repo_root().join("bundle-builder/tests/golden/examples/bundle.json");
    Bundle::from_json(&std::fs::read(path).unwrap()).unwrap()
}

/// The rendered WasmPlugin called `name`.
fn plugin(name: &str) -> Value {
    let options = IstioOptions {
        image: format!(
            "oci://registry.example.com/warden@sha256:{}",
            "ab".repeat(32)
        ),
        namespaces: vec!["istio-system".into()],
        gateway: Some(IstioGateway::new("istio-egress")),
        network_policy_namespaces: Vec::new(),
        // The per-service counters' switch travels in `vmConfig.env`, as every setting does.
        service_metrics: true,
        public_key: None,
        embedded: false,
    };
    resources(&examples_bundle(), &options)
        .unwrap()
        .into_iter()
        .find(|r| r["kind"] == "WasmPlugin" && r["metadata"]["name"] == name)
        .unwrap()
}

/// What Istio's agent makes of the plugin for a proxy with this node: the filter with the
/// plugin's configuration and environment, then a route to `upstream`.
fn istio_like_proxy(
    plugin: &Value,
    node_id: &str,
    account: (&str, &str),
    upstream: SocketAddr,
) -> Envoy {
    let hosts = json!([{
        "name": "all", "domains": ["*"],
        "routes": [{ "match": { "prefix": "/" }, "route": { "cluster": "istio_route" } }]
    }]);
    istio_routed_proxy(
        plugin,
        node_id,
        account,
        hosts,
        &[("istio_route", upstream)],
    )
}

/// A cluster to one address, named as Istio names it.
fn static_cluster(name: &str, upstream: SocketAddr) -> Value {
    json!({
        "name": name,
        "connect_timeout": "2s",
        "type": "STATIC",
        "load_assignment": { "cluster_name": name, "endpoints": [{ "lb_endpoints": [{
            "endpoint": { "address": { "socket_address": {
                "address": upstream.ip().to_string(), "port_value": upstream.port()
            } } }
        }] }] }
    })
}

/// The plugin's filter on a proxy with Istio's node metadata, and these virtual hosts and
/// clusters (each cluster: a name and the one address it connects to).
fn istio_routed_proxy(
    plugin: &Value,
    node_id: &str,
    account: (&str, &str),
    virtual_hosts: Value,
    clusters: &[(&str, SocketAddr)],
) -> Envoy {
    let (config, listen, admin) = istio_config(plugin, node_id, account, virtual_hosts, clusters);
    Envoy::start(&config, listen, admin)
}

/// The bootstrap [`istio_routed_proxy`] starts, with its listener and admin addresses.
fn istio_config(
    plugin: &Value,
    node_id: &str,
    account: (&str, &str),
    virtual_hosts: Value,
    clusters: &[(&str, SocketAddr)],
) -> (Value, SocketAddr, SocketAddr) {
    let spec = &plugin["spec"];
    let env: serde_json::Map<String, Value> = spec["vmConfig"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e["value"].clone()))
        .collect();
    let filter = json!({
        "name": "warden",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": spec["pluginName"],
                "root_id": spec["pluginName"],
                "vm_config": {
                    "vm_id": "warden",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": { "local": { "filename": wasm_path().display().to_string() } },
                    "environment_variables": { "key_values": env }
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": spec["pluginConfig"].to_string()
                },
                "fail_open": spec["failStrategy"] == "FAIL_OPEN"
            }
        }
    });
    let (listen, admin) = (free_addr("127.0.0.1"), free_addr("127.0.0.1"));
    let config = json!({
        "node": {
            "id": node_id,
            "cluster": "istio",
            // Istio's metadata, plus one line: there is no traffic capture here, so the
            // listener's own address is not where the client meant to go (under Istio's
            // iptables capture `destination.address` is the original destination).
            "metadata": {
                "NAMESPACE": account.0,
                "SERVICE_ACCOUNT": account.1,
                "WARDEN_LOCAL_PROXY": "true"
            }
        },
        "admin": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": admin.port() } } },
        "static_resources": {
            "listeners": [{
                "name": "outbound",
                "address": { "socket_address": { "address": "127.0.0.1", "port_value": listen.port() } },
                "filter_chains": [{ "filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "outbound",
                        "route_config": { "virtual_hosts": virtual_hosts },
                        "http_filters": [filter, {
                            "name": "envoy.filters.http.router",
                            "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
                        }]
                    }
                }] }]
            }],
            "clusters": clusters
                .iter()
                .map(|(name, upstream)| static_cluster(name, *upstream))
                .collect::<Vec<_>>()
        }
    });
    (config, listen, admin)
}

/// A sidecar learns its workload's identity from Istio's node metadata: billing may call the
/// partner API (a gateway-routed port, which Istio's routes take to the gateway, so the
/// filter allows it without a route of its own), frontend may not; an unregistered host is
/// denied under REGISTRY_ONLY.
#[test]
fn sidecar_plugin_decides_on_the_istio_identity_and_leaves_routing_to_istio() {
    let upstream = HttpUpstream::start("istio-route", free_addr("127.0.0.81"));
    let http = plugin("warden-http");
    let billing = istio_like_proxy(
        &http,
        "sidecar~10.1.2.3~billing-0.pay~pay.svc.cluster.local",
        ("pay", "billing"),
        upstream.addr,
    );
    let r = get(billing.listen, "api.partner.example:443", "/", &[]);
    assert_eq!(r.status, 200, "{r:?}\n{}", billing.log());
    assert_eq!(r.body, "upstream istio-route");
    assert_eq!(upstream.seen()[0].host, "api.partner.example:443");
    let r = get(billing.listen, "unregistered.example", "/", &[]);
    assert_eq!(r.header("x-warden-reason"), Some("not_in_registry"));

    let frontend = istio_like_proxy(
        &http,
        "sidecar~10.1.2.4~frontend-0.web~web.svc.cluster.local",
        ("web", "frontend"),
        upstream.addr,
    );
    let r = get(frontend.listen, "api.partner.example:443", "/", &[]);
    assert_eq!(r.status, 403);
    assert_eq!(r.header("x-warden-reason"), Some("client_not_allowed"));
    assert_eq!(upstream.seen().len(), 1);
    // `vmConfig.env` switched the per-service counters on (no stats tag under Istio: the
    // service is in the name).
    let name = "wasmcustom.warden_http_service_denied_client_not_allowed.pay.partner-api";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while frontend.stat(name) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(frontend.stat(name), 1, "{name}");
}

/// The gateway plugin (`WARDEN_ROLE=gateway` in its environment), and the mesh-wide sidecar
/// plugin on a `router~` node, both take the caller's identity from its certificate, never
/// from the node: a plain-text caller has none, so no workspace either (the examples declare
/// workspaces), and is denied: the partner API is not in its view.
#[test]
fn on_the_gateway_identity_comes_from_the_certificate_only() {
    let upstream = HttpUpstream::start("istio-route", free_addr("127.0.0.82"));
    let gateway = plugin("warden-gateway-http");
    let by_env = istio_like_proxy(
        &gateway,
        "sidecar~10.1.2.5~gw.istio-egress~istio-egress.svc.cluster.local",
        ("pay", "billing"),
        upstream.addr,
    );
    let r = get(by_env.listen, "api.partner.example:443", "/", &[]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.header("x-warden-reason"), Some("not_in_workspace"));

    let mut sidecar_plugin = plugin("warden-http");
    sidecar_plugin["spec"]["vmConfig"]["env"] =
        json!([{ "name": "WARDEN_ROUTING", "value": "mesh" }]);
    let by_node = istio_like_proxy(
        &sidecar_plugin,
        "router~10.1.2.6~egressgateway-0.istio-egress~istio-egress.svc.cluster.local",
        ("pay", "billing"),
        upstream.addr,
    );
    let r = get(by_node.listen, "api.partner.example:443", "/", &[]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.header("x-warden-reason"), Some("not_in_workspace"));
    assert!(
        by_node.log().contains(", Gateway, root_id"),
        "the filter says which role it took"
    );
    assert!(upstream.seen().is_empty());
}

/// Under Istio, REGISTRY_ONLY leaves the mesh's own traffic alone: Istio's routes send
/// `reviews.default.svc.cluster.local` to its service's cluster (`outbound|9080||...`), and the
/// filter, reading that cluster, allows it `in_mesh`. What Istio passes through
/// (`PassthroughCluster`) is decided as unregistered, whatever in-mesh name it carries: no
/// upstream sees it. Registered external services keep their policies.
#[test]
fn in_mesh_traffic_passes_under_registry_only_and_nothing_else_does() {
    let reviews = HttpUpstream::start("reviews", free_addr("127.0.0.84"));
    let partner = HttpUpstream::start("partner", free_addr("127.0.0.85"));
    let outside = HttpUpstream::start("outside", free_addr("127.0.0.86"));
    let route = |name: &str, domains: &[&str], cluster: &str| {
        json!({
            "name": name, "domains": domains,
            "routes": [{ "match": { "prefix": "/" }, "route": { "cluster": cluster } }]
        })
    };
    let reviews_cluster = "outbound|9080||reviews.default.svc.cluster.local";
    let partner_cluster = "outbound|443||api.partner.example";
    // Istio's sidecar routes: one virtual host per service (with its short names), and
    // `allow_any` to PassthroughCluster (ORIGINAL_DST under capture; here the outside server).
    let hosts = json!([
        route(
            "reviews.default.svc.cluster.local:9080",
            &[
                "reviews.default.svc.cluster.local",
                "reviews.default.svc.cluster.local:9080",
                "reviews",
                "reviews:9080"
            ],
            reviews_cluster
        ),
        route(
            "api.partner.example:443",
            &["api.partner.example", "api.partner.example:443"],
            partner_cluster
        ),
        route("allow_any", &["*"], "PassthroughCluster"),
    ]);
    let clusters = [
        (reviews_cluster, reviews.addr),
        (partner_cluster, partner.addr),
        ("PassthroughCluster", outside.addr),
    ];
    let http = plugin("warden-http");
    // The examples' bundle: REGISTRY_ONLY, mesh domain svc.cluster.local by default; the
    // plugin carries it compiled.
    assert_eq!(examples_bundle().spec.mesh.domains, ["svc.cluster.local"]);
    assert!(http["spec"]["pluginConfig"]["compiledPolicy"].is_string());
    let billing = istio_routed_proxy(
        &http,
        "sidecar~10.1.2.3~billing-0.pay~pay.svc.cluster.local",
        ("pay", "billing"),
        hosts.clone(),
        &clusters,
    );
    for host in ["reviews.default.svc.cluster.local:9080", "reviews:9080"] {
        let r = get(billing.listen, host, "/reviews/1", &[]);
        assert_eq!(r.status, 200, "{host}: {r:?}\n{}", billing.log());
        assert_eq!(r.body, "upstream reviews");
    }
    assert_eq!(reviews.seen().len(), 2);
    // An in-mesh name Istio has no route for, and a suffix trick: passed through, so decided
    // as unregistered; the outside server sees nothing.
    for host in [
        "unregistered.example",
        "ratings.default.svc.cluster.local:9080",
        "reviews.default.svc.cluster.local.evil.example",
    ] {
        let r = get(billing.listen, host, "/", &[]);
        assert_eq!(r.status, 403, "{host}: {r:?}");
        assert_eq!(
            r.header("x-warden-reason"),
            Some("not_in_registry"),
            "{host}"
        );
    }
    assert!(outside.seen().is_empty(), "{:?}", outside.seen());
    // The registry's external service keeps its policy: billing may, frontend may not.
    let r = get(billing.listen, "api.partner.example:443", "/", &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "upstream partner");
    let counted = |envoy: &Envoy, name: &str, want: u64| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while envoy.stat(name) != want && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(envoy.stat(name), want, "{name}");
    };
    counted(&billing, "wasmcustom.warden_http_in_mesh", 2);
    counted(&billing, "wasmcustom.warden_http_denied_not_in_registry", 3);
    drop(billing);

    let frontend = istio_routed_proxy(
        &http,
        "sidecar~10.1.2.4~frontend-0.web~web.svc.cluster.local",
        ("web", "frontend"),
        hosts,
        &clusters,
    );
    let r = get(frontend.listen, "api.partner.example:443", "/", &[]);
    assert_eq!(r.status, 403);
    assert_eq!(r.header("x-warden-reason"), Some("client_not_allowed"));
    assert_eq!(partner.seen().len(), 1);
    // The mesh's own services are everyone's.
    let r = get(frontend.listen, "reviews:9080", "/", &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(reviews.seen().len(), 3);
}

/// `render istio --public-key` puts the key in the plugins' `vmConfig.env`; the filter reads
/// it at VM start (no VM configuration under Istio): an unsigned bundle is refused (Envoy does
/// not start with it), a bundle signed with the key's private half serves.
#[test]
fn signed_bundles_under_istio_take_the_key_from_the_environment() {
    let upstream = HttpUpstream::start("istio-route", free_addr("127.0.0.87"));
    let (private, public) = warden_bundle::key_pair([5; 32]);
    let render = |bundle: &Bundle| {
        let options = IstioOptions {
            image: "oci://registry.example.com/warden:1".into(),
            namespaces: vec!["istio-system".into()],
            gateway: Some(IstioGateway::new("istio-egress")),
            network_policy_namespaces: Vec::new(),
            service_metrics: false,
            public_key: Some(public.clone()),
            embedded: false,
        };
        resources(bundle, &options)
            .unwrap()
            .into_iter()
            .find(|r| r["kind"] == "WasmPlugin" && r["metadata"]["name"] == "warden-http")
            .unwrap()
    };
    let hosts = json!([{
        "name": "all", "domains": ["*"],
        "routes": [{ "match": { "prefix": "/" }, "route": { "cluster": "istio_route" } }]
    }]);
    let node = "sidecar~10.1.2.3~billing-0.pay~pay.svc.cluster.local";
    let unsigned = render(&examples_bundle());
    let (config, _, _) = istio_config(
        &unsigned,
        node,
        ("pay", "billing"),
        hosts.clone(),
        &[("istio_route", upstream.addr)],
    );
    let (_, log) = Envoy::expect_refusal(&config);
    assert!(
        log.contains("refused configuration: signature: the bundle is not signed"),
        "{log}"
    );
    let signed = warden_engine::signing::sign(
        examples_bundle(),
        &warden_bundle::private_key(&private).unwrap(),
    )
    .unwrap();
    let plugin = render(&signed);
    let envoy = istio_routed_proxy(
        &plugin,
        node,
        ("pay", "billing"),
        hosts,
        &[("istio_route", upstream.addr)],
    );
    let r = get(envoy.listen, "api.partner.example:443", "/", &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(upstream.seen().len() == 1);
}
