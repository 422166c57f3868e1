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
