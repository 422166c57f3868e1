//! Passive outlier detection: endpoints that keep failing are ejected for a while.
//!
//! Each response (or failed connection) to a chosen endpoint is recorded. After
//! `consecutive_errors` errors in a row (any 5xx or connect failure), or
//! `consecutive_gateway_errors` gateway errors in a row (502, 503, 504, connect failure) when
//! set, the endpoint is ejected for `base_ejection × times ejected`, unless that would eject
//! more than `max_ejection_percent` of the service's endpoints (one may always be ejected).
//! An ejected endpoint comes back when its time is up. The state is plain data so the filter
//! can keep it in proxy-wasm shared data, where every worker sees it.

use crate::health::Health;
use crate::name::ResourceName;

/// When endpoints are ejected (Gloo's `OutlierDetectionPolicy`, with its defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutlierSettings {
    pub consecutive_errors: u32,
    /// `None`: gateway errors count only as errors.
    pub consecutive_gateway_errors: Option<u32>,
    pub base_ejection_ms: u64,
    pub max_ejection_percent: u32,
}

impl OutlierSettings {
    /// Whether the settings are within what compiling gives (at least one error, at most
    /// 100%). For decoded settings.
    pub(crate) fn is_valid(&self) -> bool {
        self.consecutive_errors >= 1
            && self.consecutive_gateway_errors.is_none_or(|n| n >= 1)
            && self.max_ejection_percent <= 100
    }
}

impl OutlierSettings {
    /// Gloo's defaults.
    pub const DEFAULT: Self = Self {
        consecutive_errors: 5,
        consecutive_gateway_errors: None,
        base_ejection_ms: 30_000,
        max_ejection_percent: 100,
    };
}

impl Default for OutlierSettings {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What happened to one request or connection sent to an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// A 5xx other than 502, 503, 504.
    Error,
    /// 502, 503, 504, or the connection could not be made.
    GatewayError,
}

impl Outcome {
    /// The outcome an HTTP status code means.
    pub fn of_status(status: u32) -> Self {
        match status {
            502..=504 => Self::GatewayError,
            500..=599 => Self::Error,
            _ => Self::Success,
        }
    }
}

/// One endpoint's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EndpointHealth {
    pub consecutive_errors: u32,
    pub consecutive_gateway_errors: u32,
    pub times_ejected: u32,
    /// Milliseconds since the epoch until which the endpoint is ejected.
    pub ejected_until_ms: u64,
}

/// The records of one service's endpoints, in bundle order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceHealth {
    pub endpoints: Vec<EndpointHealth>,
}

/// What [`ServiceHealth::record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Counted,
    /// The endpoint was ejected until this time (ms).
    Ejected {
        until_ms: u64,
    },
    /// The threshold was reached but too many endpoints are already ejected.
    EjectionLimited,
}

const ENCODED_LEN: usize = 4 + 4 + 4 + 8;

impl ServiceHealth {
    pub fn new(endpoints: usize) -> Self {
        Self {
            endpoints: vec![EndpointHealth::default(); endpoints],
        }
    }

    pub fn is_ejected(&self, index: usize, now_ms: u64) -> bool {
        self.endpoints
            .get(index)
            .is_some_and(|e| now_ms < e.ejected_until_ms)
    }

    /// Records one outcome for endpoint `index` at `now_ms`.
    pub fn record(
        &mut self,
        index: usize,
        outcome: Outcome,
        now_ms: u64,
        settings: &OutlierSettings,
    ) -> Recorded {
        let total = self.endpoints.len();
        let ejected_now = (0..total).filter(|&i| self.is_ejected(i, now_ms)).count();
        let Some(endpoint) = self.endpoints.get_mut(index) else {
            return Recorded::Counted;
        };
        match outcome {
            Outcome::Success => {
                endpoint.consecutive_errors = 0;
                endpoint.consecutive_gateway_errors = 0;
                return Recorded::Counted;
            }
            Outcome::Error => {
                endpoint.consecutive_errors += 1;
                endpoint.consecutive_gateway_errors = 0;
            }
            Outcome::GatewayError => {
                endpoint.consecutive_errors += 1;
                endpoint.consecutive_gateway_errors += 1;
            }
        }
        let tripped = endpoint.consecutive_errors >= settings.consecutive_errors
            || settings
                .consecutive_gateway_errors
                .is_some_and(|limit| endpoint.consecutive_gateway_errors >= limit);
        if !tripped || now_ms < endpoint.ejected_until_ms {
            return Recorded::Counted;
        }
        let allowed = (total * settings.max_ejection_percent as usize / 100).max(1);
        if ejected_now + 1 > allowed {
            return Recorded::EjectionLimited;
        }
        endpoint.times_ejected += 1;
        endpoint.consecutive_errors = 0;
        endpoint.consecutive_gateway_errors = 0;
        let until_ms = now_ms + settings.base_ejection_ms * u64::from(endpoint.times_ejected);
        endpoint.ejected_until_ms = until_ms;
        Recorded::Ejected { until_ms }
    }

    /// A compact binary form for proxy-wasm shared data.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.endpoints.len() * ENCODED_LEN);
        for e in &self.endpoints {
            out.extend_from_slice(&e.consecutive_errors.to_le_bytes());
            out.extend_from_slice(&e.consecutive_gateway_errors.to_le_bytes());
            out.extend_from_slice(&e.times_ejected.to_le_bytes());
            out.extend_from_slice(&e.ejected_until_ms.to_le_bytes());
        }
        out
    }

    /// Reads [`ServiceHealth::encode`]'s form, however many records it holds; `None` for bytes
    /// that are not whole records. (A record count that no longer matches the service is the
    /// writer's concern: it starts afresh.)
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() % ENCODED_LEN != 0 {
            return None;
        }
        let records = bytes
            .chunks_exact(ENCODED_LEN)
            .map(|c| {
                let u32_at = |at: usize| {
                    c.get(at..at + 4)
                        .and_then(|b| b.try_into().ok())
                        .map(u32::from_le_bytes)
                };
                let u64_at = |at: usize| {
                    c.get(at..at + 8)
                        .and_then(|b| b.try_into().ok())
                        .map(u64::from_le_bytes)
                };
                Some(EndpointHealth {
                    consecutive_errors: u32_at(0)?,
                    consecutive_gateway_errors: u32_at(4)?,
                    times_ejected: u32_at(8)?,
                    ejected_until_ms: u64_at(12)?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self { endpoints: records })
    }
}

/// [`Health`] over one service's records at one instant.
#[derive(Debug, Clone, Copy)]
pub struct HealthAt<'a> {
    pub service: &'a ResourceName,
    pub health: &'a ServiceHealth,
    pub now_ms: u64,
}

impl Health for HealthAt<'_> {
    fn is_ejected(&self, service: &ResourceName, index: usize) -> bool {
        service == self.service && self.health.is_ejected(index, self.now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn settings() -> OutlierSettings {
        OutlierSettings {
            consecutive_errors: 3,
            consecutive_gateway_errors: None,
            base_ejection_ms: 1_000,
            max_ejection_percent: 100,
        }
    }

    /// Three errors in a row eject; a success in between resets the count.
    #[test]
    fn consecutive_errors_eject_and_success_resets() {
        let mut h = ServiceHealth::new(2);
        let s = settings();
        h.record(0, Outcome::Error, 0, &s);
        h.record(0, Outcome::Error, 0, &s);
        h.record(0, Outcome::Success, 0, &s);
        h.record(0, Outcome::Error, 0, &s);
        assert_eq!(h.record(0, Outcome::GatewayError, 0, &s), Recorded::Counted);
        assert_eq!(
            h.record(0, Outcome::Error, 10, &s),
            Recorded::Ejected { until_ms: 1_010 }
        );
        assert!(h.is_ejected(0, 1_009));
        assert!(!h.is_ejected(0, 1_010), "back after its time");
    }

    /// Each ejection lasts longer: base time times the number of ejections.
    #[test]
    fn ejection_time_grows_with_each_ejection() {
        let mut h = ServiceHealth::new(2);
        let s = settings();
        for _ in 0..3 {
            h.record(0, Outcome::Error, 0, &s);
        }
        for _ in 0..2 {
            h.record(0, Outcome::Error, 5_000, &s);
        }
        assert_eq!(
            h.record(0, Outcome::Error, 5_000, &s),
            Recorded::Ejected { until_ms: 7_000 }
        );
    }

    /// At most max_ejection_percent of the endpoints are ejected at once (at least one).
    #[test]
    fn max_ejection_percent_limits_ejections() {
        let mut h = ServiceHealth::new(3);
        let s = OutlierSettings {
            max_ejection_percent: 50,
            ..settings()
        };
        for _ in 0..3 {
            h.record(0, Outcome::Error, 0, &s);
        }
        assert!(h.is_ejected(0, 1));
        for _ in 0..2 {
            h.record(1, Outcome::Error, 0, &s);
        }
        assert_eq!(
            h.record(1, Outcome::Error, 0, &s),
            Recorded::EjectionLimited
        );
        assert!(!h.is_ejected(1, 1));
    }

    /// Gateway errors alone can eject sooner when a gateway threshold is set.
    #[test]
    fn gateway_errors_have_their_own_threshold() {
        let mut h = ServiceHealth::new(2);
        let s = OutlierSettings {
            consecutive_gateway_errors: Some(2),
            ..settings()
        };
        h.record(0, Outcome::GatewayError, 0, &s);
        assert!(matches!(
            h.record(0, Outcome::GatewayError, 0, &s),
            Recorded::Ejected { .. }
        ));
        assert_eq!(Outcome::of_status(503), Outcome::GatewayError);
        assert_eq!(Outcome::of_status(500), Outcome::Error);
        assert_eq!(Outcome::of_status(404), Outcome::Success);
    }

    /// The shared-data form round-trips; bytes that are not whole records are not trusted.
    #[test]
    fn encoding_round_trips() {
        let mut h = ServiceHealth::new(3);
        for _ in 0..3 {
            h.record(2, Outcome::GatewayError, 42, &settings());
        }
        let bytes = h.encode();
        assert_eq!(ServiceHealth::decode(&bytes), Some(h));
        assert_eq!(ServiceHealth::decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(ServiceHealth::decode(&[]), Some(ServiceHealth::new(0)));
    }
}
