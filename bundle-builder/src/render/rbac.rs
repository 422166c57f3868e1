//! `render rbac`: Envoy's native RBAC HTTP filter holding a bundle's exact hosts as an
//! allow-list, a `matcher` hash map on `:authority`. It is the strongest native alternative to
//! Warden's host check and serves as the baseline in the Envoy benchmark.
//!
//! What it cannot say: wildcard hosts, addresses and CIDRs, identities, dry-run. It is a
//! comparison point, not a replacement.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};
use warden_bundle::Bundle;

/// An RBAC `matcher` action (`on_match` / `on_no_match`) with this name and verdict.
pub(crate) fn action(name: &str, verdict: &str) -> Value {
    json!({ "action": {
        "name": name,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.config.rbac.v3.Action",
            "name": name,
            "action": verdict
        }
    }})
}

/// The `:authority` values the bundle allows: `host:port` for every exact host and declared
/// port, and the bare host for port 80. Sorted, so the output is deterministic.
pub fn allowed_authorities(bundle: &Bundle) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for service in &bundle.spec.services {
        for host in service.hosts.iter().filter(|h| !h.starts_with("*.")) {
            let host = host.to_ascii_lowercase();
            for port in &service.ports {
                keys.insert(format!("{host}:{}", port.number));
                if port.number == 80 {
                    keys.insert(host.clone());
                }
            }
        }
    }
    keys
}

/// The RBAC HTTP filter entry, for `http_filters`.
pub fn http_filter(bundle: &Bundle) -> Value {
    let allow = action("allow", "ALLOW");
    let map: Map<String, Value> = allowed_authorities(bundle)
        .into_iter()
        .map(|key| (key, allow.clone()))
        .collect();
    json!({
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "matcher": {
                "matcher_tree": {
                    "input": {
                        "name": "authority",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput",
                            "header_name": ":authority"
                        }
                    },
                    "exact_match_map": { "map": map }
                },
                "on_no_match": action("deny", "DENY")
            }
        }
    })
}
