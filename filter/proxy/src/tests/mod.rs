//! Native tests of the glue, against the in-memory [`Fake`] proxy: settings, request
//! building, route application, denials, counters, and every host call failing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod configure;
mod counters;
mod http;
mod tcp;

use std::rc::Rc;

use proxy_wasm::types::Action;
use serde_json::{json, Value};
use warden_bundle::wire::root_id;

use crate::host::fake::Fake;
use crate::root::WardenRoot;

pub const BILLING: &str = "spiffe://cluster.local/ns/pay/sa/billing";
pub const FRONTEND: &str = "spiffe://cluster.local/ns/web/sa/frontend";

pub fn source(kind: &str, name: &str) -> Value {
    json!({ "kind": kind, "namespace": "pay", "name": name })
}

/// A bundle with: `api.example.com` (HTTP 80, HTTPS 443), `db` at 10.1.0.5 (TCP 5432),
/// `secure.example.com` (TLS 443), `partner.example.com` through the gateway (HTTPS 443),
/// `orders.internal` standing for two endpoints (TCP 5432), and an access policy that lets
/// only billing reach `db`.
pub fn bundle(mode: &str) -> Value {
    let gateway = json!({ "gateways": [{ "namespace": "egress", "name": "egress-gateway" }] });
    json!({
        "apiVersion": "warden.dev/v1alpha1",
        "kind": "Bundle",
        "spec": {
            "outboundMode": mode,
            "services": [
                { "source": source("ExternalService", "api"), "hosts": ["api.example.com"],
                  "ports": [{ "number": 80, "protocol": "HTTP" }, { "number": 443, "protocol": "HTTPS" }] },
                { "source": source("ExternalService", "db"), "addresses": ["10.1.0.5"],
                  "ports": [{ "number": 5432, "protocol": "TCP" }] },
                { "source": source("ExternalService", "secure"), "hosts": ["secure.example.com"],
                  "ports": [{ "number": 443, "protocol": "TLS" }] },
                { "source": source("ExternalService", "partner"), "hosts": ["partner.example.com"],
                  "ports": [{ "number": 443, "protocol": "HTTPS", "egressGateway": gateway }] },
                { "source": source("ExternalService", "orders"), "hosts": ["orders.internal"],
                  "ports": [{ "number": 5432, "protocol": "TCP" }],
                  "endpoints": [
                      { "source": source("ExternalEndpoint", "orders-1"), "address": "10.2.0.1",
                        "ports": [{ "number": 5432 }] },
                      { "source": source("ExternalEndpoint", "orders-2"), "address": "10.2.0.2",
                        "ports": [{ "number": 5432 }] }
                  ] }
            ],
            "accessPolicies": [{
                "source": source("AccessPolicy", "db-billing-only"),
                "targets": [{ "service": { "namespace": "pay", "name": "db" } }],
                "rules": [{ "clients": [BILLING] }]
            }]
        }
    })
}

/// The plugin configuration for `value` as `bundle-builder render` writes it: a bundle that
/// compiles travels as its compiled form (`{"compiledPolicy": ...}`, signed when the bundle
/// carries a compiled signature); anything else (a plugin configuration, or a bundle the
/// builder refuses) as given, for the filter to refuse.
pub fn configuration(value: &Value) -> Vec<u8> {
    use base64::Engine as _;
    let compiled = serde_json::from_value::<warden_bundle::Bundle>(value.clone())
        .ok()
        .and_then(|bundle| warden_engine::signing::compiled_form(&bundle).ok());
    match compiled {
        Some(bytes) => json!({
            "compiledPolicy": base64::engine::general_purpose::STANDARD.encode(bytes)
        })
        .to_string()
        .into_bytes(),
        None => value.to_string().into_bytes(),
    }
}

/// A proxy whose plugin is `root_id`, configured with `bundle` (its compiled form:
/// [`configuration`]), its node metadata, and whatever `setup` adds.
pub fn proxy(root_id: &str, bundle: &Value, setup: impl FnOnce(Fake) -> Fake) -> Proxy {
    let mut fake = Fake::new().with_property("plugin_root_id", root_id);
    fake.plugin_configuration = Some(configuration(bundle));
    let fake = Rc::new(setup(fake));
    let mut root = WardenRoot::new(fake.clone());
    let started = root.start();
    let configured = started && root.configure();
    Proxy {
        fake,
        root,
        configured,
    }
}

/// A sidecar's HTTP filter (explicit local proxy) for `identity`.
pub fn sidecar(mode: &str, identity: &str) -> Proxy {
    let identity = identity.to_owned();
    proxy(root_id::HTTP, &bundle(mode), move |f| {
        f.with_property("xds.node.metadata.WARDEN_WORKLOAD_IDENTITY", identity)
            .with_property("xds.node.metadata.WARDEN_LOCAL_PROXY", "true")
    })
}

pub struct Proxy {
    pub fake: Rc<Fake>,
    pub root: WardenRoot,
    pub configured: bool,
}

impl Proxy {
    /// The counters as Envoy would see them after the next tick.
    pub fn metric(&self, name: &str) -> i64 {
        self.root.tick();
        self.fake.metric(name)
    }
}

/// An HTTP request through `proxy` with these headers; the filter's action.
pub fn http(proxy: &Proxy, headers: &[(&str, &[u8])]) -> Action {
    proxy.fake.headers.borrow_mut().clear();
    proxy.fake.filter_state.borrow_mut().clear();
    for (name, value) in headers {
        proxy
            .fake
            .headers
            .borrow_mut()
            .push(((*name).to_owned(), value.to_vec()));
    }
    proxy.root.http_context().on_request_headers()
}

pub fn get(proxy: &Proxy, authority: &str) -> Action {
    http(
        proxy,
        &[
            (":authority", authority.as_bytes()),
            (":method", b"GET"),
            (":path", b"/"),
        ],
    )
}
