//! The filter's Prometheus counters (`define_metric`, names prefixed `warden_`).
//!
//! Envoy keeps metric names process-wide and has no labels for wasm metrics, so the decision
//! and reason are part of the name: `warden_http_denied_not_in_registry`.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use warden_engine::{Decision, DenyReason};

#[derive(Debug, Default)]
pub struct Metrics {
    http: Counters,
    tcp: Counters,
    config_loaded: Option<u32>,
    config_rejected: Option<u32>,
    services: Option<u32>,
}

#[derive(Debug, Default)]
struct Counters {
    allowed: Option<u32>,
    passthrough: Option<u32>,
    dry_run: Option<u32>,
    denied: [Option<u32>; DenyReason::ALL.len()],
}

fn define(kind: MetricType, name: &str) -> Option<u32> {
    match hostcalls::define_metric(kind, name) {
        Ok(id) => Some(id),
        Err(status) => {
            log::warn!("cannot define metric {name}: {status:?}");
            None
        }
    }
}

fn bump(id: Option<u32>, by: i64) {
    if let Some(id) = id {
        let _ = hostcalls::increment_metric(id, by);
    }
}

impl Counters {
    fn define(scope: &str) -> Self {
        let counter = |what: &str| define(MetricType::Counter, &format!("warden_{scope}_{what}"));
        Self {
            allowed: counter("allowed"),
            passthrough: counter("passthrough"),
            dry_run: counter("dry_run_denied"),
            denied: DenyReason::ALL.map(|r| counter(&format!("denied_{}", r.code()))),
        }
    }

    fn record(&self, decision: &Decision<'_>) {
        match decision {
            Decision::Allow(p) => {
                bump(self.allowed, 1);
                if p.reason == warden_engine::AllowReason::Passthrough {
                    bump(self.passthrough, 1);
                }
                if p.dry_run_denial.is_some() {
                    bump(self.dry_run, 1);
                }
            }
            Decision::Deny(d) => {
                let index = DenyReason::ALL.iter().position(|r| *r == d.reason);
                bump(index.and_then(|i| self.denied.get(i).copied().flatten()), 1);
            }
        }
    }
}

impl Metrics {
    pub fn define() -> Self {
        Self {
            http: Counters::define("http"),
            tcp: Counters::define("tcp"),
            config_loaded: define(MetricType::Counter, "warden_config_loaded"),
            config_rejected: define(MetricType::Counter, "warden_config_rejected"),
            services: define(MetricType::Gauge, "warden_services_loaded"),
        }
    }

    pub fn http(&self, decision: &Decision<'_>) {
        self.http.record(decision);
    }

    pub fn tcp(&self, decision: &Decision<'_>) {
        self.tcp.record(decision);
    }

    pub fn loaded(&self, services: usize) {
        bump(self.config_loaded, 1);
        if let Some(id) = self.services {
            let _ = hostcalls::record_metric(id, u64::try_from(services).unwrap_or(u64::MAX));
        }
    }

    pub fn rejected(&self) {
        bump(self.config_rejected, 1);
    }
}
