//! Endpoint health in proxy-wasm shared data, so that every worker VM stops sending to an
//! endpoint that one of them saw fail. Reads happen only for internal hostnames, once per
//! request; writes use compare-and-swap, so concurrent workers never lose a record.

use std::cell::{Cell, RefCell};

use proxy_wasm::types::Status;
use warden_engine::{
    EndpointChoice, Health, Outcome, OutlierSettings, Recorded, ResourceName, ServiceHealth,
};

use crate::host::Host;

fn key(service: &str) -> String {
    format!("warden.outlier/{service}")
}

fn load(host: &dyn Host, service: &str) -> (ServiceHealth, Option<u32>) {
    match host.shared_data(&key(service)) {
        Ok((Some(bytes), cas)) => (ServiceHealth::decode(&bytes).unwrap_or_default(), cas),
        Ok((None, cas)) => (ServiceHealth::default(), cas),
        Err(_) => (ServiceHealth::default(), None),
    }
}

/// [`Health`] read from shared data, fetched once per request for the service asked about.
/// Neither the clock nor the shared data is read unless an internal hostname asks: requests
/// to plain destinations make no extra host call.
#[derive(Debug)]
pub struct SharedHealth<'h> {
    host: &'h dyn Host,
    now_ms: Cell<Option<u64>>,
    cache: RefCell<Option<(String, ServiceHealth)>>,
}

impl<'h> SharedHealth<'h> {
    pub fn new(host: &'h dyn Host) -> Self {
        Self {
            host,
            now_ms: Cell::new(None),
            cache: RefCell::new(None),
        }
    }

    fn now(&self) -> u64 {
        match self.now_ms.get() {
            Some(now) => now,
            None => {
                let now = self.host.now_ms();
                self.now_ms.set(Some(now));
                now
            }
        }
    }

    fn with<T>(&self, service: &ResourceName, f: impl FnOnce(&ServiceHealth) -> T) -> Option<T> {
        let mut cache = self.cache.borrow_mut();
        if cache
            .as_ref()
            .is_none_or(|(name, _)| name != service.as_str())
        {
            *cache = Some((
                service.as_str().to_owned(),
                load(self.host, service.as_str()).0,
            ));
        }
        cache.as_ref().map(|(_, health)| f(health))
    }
}

impl Health for SharedHealth<'_> {
    fn is_ejected(&self, service: &ResourceName, index: usize) -> bool {
        let now = self.now();
        self.with(service, |h| h.is_ejected(index, now))
            .unwrap_or(false)
    }

    fn any_ejected(&self, service: &ResourceName) -> bool {
        let now = self.now();
        self.with(service, |h| {
            (0..h.endpoints.len()).any(|i| h.is_ejected(i, now))
        })
        .unwrap_or(false)
    }
}

/// The endpoint a request went to, kept until its response.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub service: String,
    pub endpoint: String,
    pub index: usize,
    pub endpoints: usize,
    pub outlier: OutlierSettings,
}

impl From<&EndpointChoice<'_>> for Chosen {
    fn from(e: &EndpointChoice<'_>) -> Self {
        Self {
            service: e.service.to_string(),
            endpoint: e.endpoint.to_string(),
            index: e.index,
            endpoints: e.endpoints,
            outlier: *e.outlier,
        }
    }
}

/// Records the outcome of a request to a chosen endpoint.
pub fn record(host: &dyn Host, chosen: &Chosen, outcome: Outcome) {
    for _ in 0..8 {
        let (mut health, cas) = load(host, &chosen.service);
        if health.endpoints.len() != chosen.endpoints {
            health = ServiceHealth::new(chosen.endpoints);
        }
        let now = host.now_ms();
        let result = health.record(chosen.index, outcome, now, &chosen.outlier);
        match host.set_shared_data(&key(&chosen.service), &health.encode(), cas) {
            Ok(()) => {
                match result {
                    Recorded::Ejected { until_ms } => log::warn!(
                        "ejected endpoint {} of {} for {} ms after repeated failures",
                        chosen.endpoint,
                        chosen.service,
                        until_ms.saturating_sub(now)
                    ),
                    Recorded::EjectionLimited => log::warn!(
                        "endpoint {} of {} keeps failing, but ejecting it would exceed maxEjectionPercent",
                        chosen.endpoint,
                        chosen.service
                    ),
                    Recorded::Counted => {}
                }
                return;
            }
            Err(Status::CasMismatch) => continue,
            Err(status) => {
                log::warn!(
                    "cannot record endpoint health for {}: {status:?}",
                    chosen.service
                );
                return;
            }
        }
    }
}
