//! The filter's Prometheus counters (`define_metric`, names prefixed `warden_`).
//!
//! Envoy keeps metric names process-wide and has no labels for wasm metrics, so the decision
//! and reason are part of the name: `warden_http_denied_not_in_registry`.
//!
//! With `WARDEN_SERVICE_METRICS=true` every decided request is also counted for its service:
//! `warden_http_service_allowed.<namespace>.<name>`, `..._dry_run_denied.<ns>.<name>`,
//! `..._denied_<reason>.<ns>.<name>`, defined the first time they occur (a namespace has no
//! dots, so the split is unambiguous). `render envoy` adds a stats tag that turns the suffix
//! into a `warden_service` label. One counter per service and outcome that happened: the
//! option is for registries whose size a metrics backend can take.
//!
//! A host call costs microseconds, more than a decision. Requests therefore count in cells
//! local to the VM, and the root context adds them to Envoy's counters once per tick
//! ([`FLUSH_PERIOD`]): counters lag by at most that long and cost no host call per request.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

use proxy_wasm::types::MetricType;
use warden_engine::{AllowReason, Decision, DenyReason, ResourceName};

use crate::host::Host;

/// How often counted decisions reach Envoy's counters.
pub const FLUSH_PERIOD: Duration = Duration::from_secs(1);

const DENY_REASONS: usize = DenyReason::ALL.len();

/// One Envoy counter and the increments not yet sent to it.
#[derive(Debug, Default)]
struct Counter {
    id: Option<u32>,
    pending: Cell<u32>,
}

impl Counter {
    fn define(host: &dyn Host, name: &str) -> Self {
        Self {
            id: define(host, MetricType::Counter, name),
            pending: Cell::new(0),
        }
    }

    fn add(&self) {
        self.pending.set(self.pending.get().saturating_add(1));
    }

    fn flush(&self, host: &dyn Host) {
        let pending = self.pending.replace(0);
        if let (Some(id), true) = (self.id, pending > 0) {
            host.increment_metric(id, i64::from(pending));
        }
    }
}

fn define(host: &dyn Host, kind: MetricType, name: &str) -> Option<u32> {
    let id = host.define_metric(kind, name);
    if id.is_none() {
        log::warn!("cannot define metric {name}");
    }
    id
}

#[derive(Debug)]
struct Counters {
    allowed: Counter,
    passthrough: Counter,
    in_mesh: Counter,
    dry_run: Counter,
    denied: [Counter; DENY_REASONS],
}

impl Counters {
    fn define(host: &dyn Host, scope: &str) -> Self {
        let counter = |what: &str| Counter::define(host, &format!("warden_{scope}_{what}"));
        Self {
            allowed: counter("allowed"),
            passthrough: counter("passthrough"),
            in_mesh: counter("in_mesh"),
            dry_run: counter("dry_run_denied"),
            denied: DenyReason::ALL.map(|r| counter(&format!("denied_{}", r.code()))),
        }
    }

    fn record(&self, decision: &Decision<'_>) {
        match decision {
            Decision::Allow(p) => {
                self.allowed.add();
                match p.reason {
                    AllowReason::Passthrough => self.passthrough.add(),
                    AllowReason::InMesh => self.in_mesh.add(),
                    _ => {}
                }
                if p.dry_run_denial.is_some() {
                    self.dry_run.add();
                }
            }
            Decision::Deny(d) => self.denied(d.reason),
        }
    }

    fn denied(&self, reason: DenyReason) {
        let index = DenyReason::ALL.iter().position(|r| *r == reason);
        if let Some(counter) = index.and_then(|i| self.denied.get(i)) {
            counter.add();
        }
    }

    fn flush(&self, host: &dyn Host) {
        for counter in [
            &self.allowed,
            &self.passthrough,
            &self.in_mesh,
            &self.dry_run,
        ]
        .into_iter()
        .chain(&self.denied)
        {
            counter.flush(host);
        }
    }
}

/// Counters per service and outcome, by full metric name, defined on first use.
#[derive(Debug, Default)]
struct PerService {
    counters: RefCell<HashMap<String, Counter>>,
}

impl PerService {
    fn record(&self, host: &dyn Host, scope: &str, decision: &Decision<'_>) {
        let (service, outcome) = match decision {
            Decision::Allow(p) => match p.service {
                Some(s) => (s.service, "allowed".to_owned()),
                None => return,
            },
            Decision::Deny(d) => match d.service {
                Some(s) => (s.service, format!("denied_{}", d.reason.code())),
                None => return,
            },
        };
        self.add(host, scope, &outcome, service);
        if let Decision::Allow(p) = decision {
            if p.dry_run_denial.is_some() {
                self.add(host, scope, "dry_run_denied", service);
            }
        }
    }

    fn add(&self, host: &dyn Host, scope: &str, outcome: &str, service: &ResourceName) {
        let name = format!(
            "warden_{scope}_service_{outcome}.{}.{}",
            service.namespace(),
            service.name()
        );
        let mut counters = self.counters.borrow_mut();
        counters
            .entry(name)
            .or_insert_with_key(|name| Counter::define(host, name))
            .add();
    }

    fn flush(&self, host: &dyn Host) {
        for counter in self.counters.borrow().values() {
            counter.flush(host);
        }
    }
}

#[derive(Debug)]
pub struct Metrics {
    http: Counters,
    tcp: Counters,
    per_service: PerService,
    config_loaded: Option<u32>,
    config_rejected: Option<u32>,
    services: Option<u32>,
}

impl Metrics {
    pub fn define(host: &dyn Host) -> Self {
        Self {
            http: Counters::define(host, "http"),
            tcp: Counters::define(host, "tcp"),
            per_service: PerService::default(),
            config_loaded: define(host, MetricType::Counter, "warden_config_loaded"),
            config_rejected: define(host, MetricType::Counter, "warden_config_rejected"),
            services: define(host, MetricType::Gauge, "warden_services_loaded"),
        }
    }

    /// An HTTP request's final verdict; with `per_service` (`WARDEN_SERVICE_METRICS`) also
    /// for its service.
    pub fn http(&self, host: &dyn Host, decision: &Decision<'_>, per_service: bool) {
        self.http.record(decision);
        if per_service {
            self.per_service.record(host, "http", decision);
        }
    }

    /// A connection's final verdict; with `per_service` also for its service.
    pub fn tcp(&self, host: &dyn Host, decision: &Decision<'_>, per_service: bool) {
        self.tcp.record(decision);
        if per_service {
            self.per_service.record(host, "tcp", decision);
        }
    }

    /// An HTTP request denied before the engine could decide it (no policy, an authority
    /// that is not text).
    pub fn http_denied(&self, reason: DenyReason) {
        self.http.denied(reason);
    }

    /// A connection denied before the engine could decide it (no policy).
    pub fn tcp_denied(&self, reason: DenyReason) {
        self.tcp.denied(reason);
    }

    /// Sends counted decisions to Envoy.
    pub fn flush(&self, host: &dyn Host) {
        self.http.flush(host);
        self.tcp.flush(host);
        self.per_service.flush(host);
    }

    pub fn loaded(&self, host: &dyn Host, services: usize) {
        if let Some(id) = self.config_loaded {
            host.increment_metric(id, 1);
        }
        self.services(host, services);
    }

    /// The services of the policy serving (once its tables are decoded, the count they hold).
    pub fn services(&self, host: &dyn Host, services: usize) {
        if let Some(id) = self.services {
            host.record_metric(id, u64::try_from(services).unwrap_or(u64::MAX));
        }
    }

    pub fn rejected(&self, host: &dyn Host) {
        if let Some(id) = self.config_rejected {
            host.increment_metric(id, 1);
        }
    }
}
