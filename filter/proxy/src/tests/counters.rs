//! Every counter `docs/decisions.md` lists can increase, under the name it gives; the reason
//! codes it lists are exactly the engine's.

use std::collections::BTreeSet;

use warden_engine::{AllowReason, DenyReason};

use crate::host::fake::Fake;
use crate::metrics::Metrics;

const DECISIONS_MD: &str = include_str!("../../../../docs/decisions.md");

/// The codes in the reason table whose decision column starts with `verdict`.
fn documented(verdict: &str) -> BTreeSet<String> {
    DECISIONS_MD
        .lines()
        .filter_map(|line| {
            let mut cells = line.split('|').map(str::trim).skip(1);
            let code = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            cells.next()?.starts_with(verdict).then(|| code.to_owned())
        })
        .collect()
}

#[test]
fn the_documented_reason_codes_are_the_engines() {
    let deny: BTreeSet<String> = DenyReason::ALL
        .iter()
        .map(|r| r.code().to_owned())
        .collect();
    assert_eq!(documented("deny"), deny);
    let allow: BTreeSet<String> = AllowReason::ALL
        .iter()
        .map(|r| r.code().to_owned())
        .collect();
    assert_eq!(documented("allow"), allow);
}

#[test]
fn every_denial_counter_can_increase() {
    let fake = Fake::new();
    let metrics = Metrics::define(&fake);
    for reason in DenyReason::ALL {
        metrics.http_denied(reason);
        metrics.tcp_denied(reason);
    }
    // Nothing reaches Envoy until the flush; then each once.
    assert!(fake.metrics.borrow().is_empty());
    metrics.flush(&fake);
    for reason in DenyReason::ALL {
        for scope in ["http", "tcp"] {
            let name = format!("warden_{scope}_denied_{}", reason.code());
            assert_eq!(fake.metric(&name), 1, "{name}");
        }
    }
    // A second flush adds nothing.
    metrics.flush(&fake);
    assert_eq!(fake.metric("warden_http_denied_no_policy"), 1);
}

/// A proxy that refuses metric definitions loses the counts, and nothing fails.
#[test]
fn counters_that_cannot_be_defined_are_skipped() {
    let fake = Fake::new().failing("define_metric");
    let metrics = Metrics::define(&fake);
    metrics.http_denied(DenyReason::NotInRegistry);
    metrics.flush(&fake);
    metrics.loaded(&fake, 3);
    assert!(fake.metrics.borrow().is_empty());
}

/// With `WARDEN_SERVICE_METRICS=true` (node metadata or the VM's environment) each verdict is
/// also counted for its service, under the documented names; without it, none is defined.
#[test]
fn per_service_counters_follow_the_setting() {
    use super::{get, proxy, BILLING, FRONTEND};
    use warden_bundle::wire::root_id;

    let setup = |on: Option<&'static str>, identity: &'static str| {
        proxy(root_id::HTTP, &super::bundle("REGISTRY_ONLY"), move |f| {
            let f = f
                .with_property("xds.node.metadata.WARDEN_WORKLOAD_IDENTITY", identity)
                .with_property("xds.node.metadata.WARDEN_LOCAL_PROXY", "true");
            match on {
                Some(v) => f.with_env("WARDEN_SERVICE_METRICS", v),
                None => f,
            }
        })
    };
    let p = setup(Some("true"), FRONTEND);
    assert!(p.configured);
    get(&p, "api.example.com");
    get(&p, "api.example.com");
    get(&p, "10.1.0.5:5432"); // pay/db: frontend is not allowed
    get(&p, "api.example.com:8080"); // a port api does not declare
    get(&p, "unknown.example.org"); // no service: not counted per service
    assert_eq!(p.metric("warden_http_service_allowed.pay.api"), 2);
    assert_eq!(
        p.metric("warden_http_service_denied_client_not_allowed.pay.db"),
        1
    );
    assert_eq!(
        p.metric("warden_http_service_denied_port_not_declared.pay.api"),
        1
    );
    assert_eq!(p.metric("warden_http_denied_not_in_registry"), 1);
    let defined = |p: &super::Proxy| -> Vec<String> {
        p.fake
            .metric_names
            .borrow()
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| n.contains("_service_"))
            .collect()
    };
    assert_eq!(defined(&p).len(), 3, "{:?}", defined(&p));

    let off = setup(None, BILLING);
    get(&off, "api.example.com");
    assert_eq!(off.metric("warden_http_allowed"), 1);
    assert!(defined(&off).is_empty());

    let bad = setup(Some("yes"), BILLING);
    assert!(!bad.configured);
    assert_eq!(bad.metric("warden_config_rejected"), 1);
}
