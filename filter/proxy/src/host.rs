//! What the filter asks of its proxy, behind one small interface: [`Host`]. [`Envoy`] makes
//! the proxy-wasm host calls; [`fake::Fake`] (tests only) keeps everything in memory, so that
//! settings, request building, routing, denials and counters are tested natively, case by
//! case, with every host call able to fail.
//!
//! Every call returns what happened instead of panicking. The SDK's context methods
//! `unwrap()` every host call's status, and its string getters turn bytes into `String` with
//! `unwrap()`: a status Envoy returns, or a header that is not UTF-8, would crash the VM. A
//! failed call is logged by the caller and becomes a decision (deny, fail closed), never a
//! panic.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, Bytes, MapType, MetricType, Status};

/// How long filter state lives (`set_envoy_filter_state`'s span).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// The downstream request (HTTP).
    Request = 1,
    /// The downstream connection (TCP).
    Connection = 2,
}

/// The proxy, as the filter sees it.
pub trait Host: std::fmt::Debug {
    /// A property (attribute) as bytes; `None` when absent or refused.
    fn property(&self, path: &[&str]) -> Option<Bytes>;
    /// The request headers, values as bytes. Names are tokens, which Envoy's codecs check
    /// before any filter runs. `None` when the host refuses the call.
    fn request_headers(&self) -> Option<Vec<(String, Bytes)>>;
    /// Sets (or replaces) a request header.
    fn set_request_header(&self, name: &str, value: &str) -> bool;
    /// Removes a request header.
    fn remove_request_header(&self, name: &str) -> bool;
    /// One response header's value as bytes.
    fn response_header(&self, name: &str) -> Option<Bytes>;
    /// Answers the request locally.
    fn send_response(&self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> bool;
    /// Closes the downstream connection.
    fn close_downstream(&self) -> bool;
    /// Sets one filter state value Envoy's own extensions read (a cluster, a target).
    fn set_filter_state(&self, key: &str, value: &str, span: Span) -> bool;
    /// Defines a counter or gauge; its id.
    fn define_metric(&self, kind: MetricType, name: &str) -> Option<u32>;
    /// Adds to a counter.
    fn increment_metric(&self, id: u32, by: i64) -> bool;
    /// Sets a gauge.
    fn record_metric(&self, id: u32, value: u64) -> bool;
    /// A shared-data value and its compare-and-swap token.
    fn shared_data(&self, key: &str) -> Result<(Option<Bytes>, Option<u32>), Status>;
    /// Writes a shared-data value if `cas` still matches.
    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), Status>;
    /// Milliseconds since the epoch, from the proxy's clock.
    fn now_ms(&self) -> u64;
    /// The plugin configuration (the policy).
    fn plugin_configuration(&self) -> Option<Bytes>;
    /// Up to `len` bytes of the plugin configuration from `start` (fewer at its end, `None` or
    /// empty at it): for reading a large configuration in chunks.
    fn plugin_configuration_range(&self, start: usize, len: usize) -> Option<Bytes>;
    /// The VM configuration (settings that outlive any one bundle).
    fn vm_configuration(&self) -> Option<Bytes>;
    /// The bundle embedded in the module (`bundle-builder embed`), if any.
    fn embedded_bundle(&self) -> Option<Bytes>;
    /// An environment variable of the VM (Istio's `vmConfig.env`).
    fn env(&self, key: &str) -> Option<String>;
    /// Asks for `on_tick` every `period`.
    fn set_tick_period(&self, period: std::time::Duration) -> bool;
}

/// The real proxy: proxy-wasm host calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct Envoy;

impl Host for Envoy {
    fn property(&self, path: &[&str]) -> Option<Bytes> {
        hostcalls::get_property(path.to_vec()).ok().flatten()
    }

    fn request_headers(&self) -> Option<Vec<(String, Bytes)>> {
        hostcalls::get_map_bytes(MapType::HttpRequestHeaders).ok()
    }

    fn set_request_header(&self, name: &str, value: &str) -> bool {
        hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value)).is_ok()
    }

    fn remove_request_header(&self, name: &str) -> bool {
        hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None).is_ok()
    }

    fn response_header(&self, name: &str) -> Option<Bytes> {
        hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, name)
            .ok()
            .flatten()
    }

    fn send_response(&self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> bool {
        hostcalls::send_http_response(status, headers.to_vec(), Some(body)).is_ok()
    }

    fn close_downstream(&self) -> bool {
        hostcalls::close_downstream().is_ok()
    }

    fn set_filter_state(&self, key: &str, value: &str, span: Span) -> bool {
        let arguments = crate::filter_state::encode(key, value, span);
        hostcalls::call_foreign_function("set_envoy_filter_state", Some(&arguments)).is_ok()
    }

    fn define_metric(&self, kind: MetricType, name: &str) -> Option<u32> {
        hostcalls::define_metric(kind, name).ok()
    }

    fn increment_metric(&self, id: u32, by: i64) -> bool {
        hostcalls::increment_metric(id, by).is_ok()
    }

    fn record_metric(&self, id: u32, value: u64) -> bool {
        hostcalls::record_metric(id, value).is_ok()
    }

    fn shared_data(&self, key: &str) -> Result<(Option<Bytes>, Option<u32>), Status> {
        hostcalls::get_shared_data(key)
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), Status> {
        hostcalls::set_shared_data(key, Some(value), cas)
    }

    fn now_ms(&self) -> u64 {
        use std::time::{SystemTime, UNIX_EPOCH};
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    fn plugin_configuration(&self) -> Option<Bytes> {
        hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
    }

    fn plugin_configuration_range(&self, start: usize, len: usize) -> Option<Bytes> {
        hostcalls::get_buffer(BufferType::PluginConfiguration, start, len)
            .ok()
            .flatten()
    }

    fn vm_configuration(&self) -> Option<Bytes> {
        hostcalls::get_buffer(BufferType::VmConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
    }

    fn embedded_bundle(&self) -> Option<Bytes> {
        crate::embedded::bundle()
    }

    fn env(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }

    fn set_tick_period(&self, period: std::time::Duration) -> bool {
        hostcalls::set_tick_period(period).is_ok()
    }
}

/// An in-memory proxy for native tests: properties and headers are set up front; what the
/// filter does (headers set, filter state, responses, closes, metrics, shared data) is
/// recorded; any call can be made to fail.
#[cfg(test)]
pub mod fake {
    use std::cell::{Cell, RefCell};
    use std::collections::{BTreeMap, BTreeSet};

    use super::{Bytes, Host, MetricType, Span, Status};

    /// A local reply the filter sent.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Reply {
        pub status: u32,
        pub headers: Vec<(String, String)>,
        pub body: String,
    }

    #[derive(Debug, Default)]
    pub struct Fake {
        pub properties: BTreeMap<String, Bytes>,
        pub headers: RefCell<Vec<(String, Bytes)>>,
        pub response_headers: Vec<(String, Bytes)>,
        pub filter_state: RefCell<BTreeMap<String, (String, Span)>>,
        pub replies: RefCell<Vec<Reply>>,
        pub closed: Cell<bool>,
        /// Every metric defined, in order.
        pub metric_names: RefCell<Vec<(String, MetricType)>>,
        pub metrics: RefCell<BTreeMap<String, i64>>,
        pub shared: RefCell<BTreeMap<String, (Bytes, u32)>>,
        pub now_ms: Cell<u64>,
        pub plugin_configuration: Option<Bytes>,
        /// Chunked reads of the plugin configuration so far.
        pub plugin_configuration_reads: Cell<usize>,
        pub vm_configuration: Option<Bytes>,
        pub embedded_bundle: Option<Bytes>,
        pub env: BTreeMap<String, String>,
        pub tick_period: Cell<Option<std::time::Duration>>,
        /// Calls (by method name) that fail.
        pub failing: BTreeSet<&'static str>,
    }

    impl Fake {
        pub fn new() -> Self {
            Self::default()
        }

        /// Sets a property; `path` joined with dots (`destination.address`).
        pub fn with_property(mut self, path: &str, value: impl Into<Bytes>) -> Self {
            self.properties.insert(path.to_owned(), value.into());
            self
        }

        /// Sets a variable of the VM's environment (`vmConfig.env` under Istio).
        pub fn with_env(mut self, key: &str, value: &str) -> Self {
            self.env.insert(key.to_owned(), value.to_owned());
            self
        }

        pub fn failing(mut self, call: &'static str) -> Self {
            self.failing.insert(call);
            self
        }

        fn ok(&self, call: &'static str) -> bool {
            !self.failing.contains(call)
        }

        /// A request header's current value as text.
        pub fn header(&self, name: &str) -> Option<String> {
            self.headers
                .borrow()
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        }

        /// A filter state value the filter set.
        pub fn state(&self, key: &str) -> Option<String> {
            self.filter_state.borrow().get(key).map(|(v, _)| v.clone())
        }

        /// A metric's value by name (0 when never incremented).
        pub fn metric(&self, name: &str) -> i64 {
            self.metrics.borrow().get(name).copied().unwrap_or(0)
        }

        /// The one reply sent, if any.
        pub fn reply(&self) -> Option<Reply> {
            self.replies.borrow().last().cloned()
        }
    }

    impl Host for Fake {
        fn property(&self, path: &[&str]) -> Option<Bytes> {
            if !self.ok("property") {
                return None;
            }
            self.properties.get(&path.join(".")).cloned()
        }

        fn request_headers(&self) -> Option<Vec<(String, Bytes)>> {
            if !self.ok("request_headers") {
                return None;
            }
            Some(self.headers.borrow().clone())
        }

        fn set_request_header(&self, name: &str, value: &str) -> bool {
            if !self.ok("set_request_header") {
                return false;
            }
            let mut headers = self.headers.borrow_mut();
            headers.retain(|(n, _)| n != name);
            headers.push((name.to_owned(), value.as_bytes().to_vec()));
            true
        }

        fn remove_request_header(&self, name: &str) -> bool {
            if !self.ok("remove_request_header") {
                return false;
            }
            self.headers.borrow_mut().retain(|(n, _)| n != name);
            true
        }

        fn response_header(&self, name: &str) -> Option<Bytes> {
            self.response_headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        }

        fn send_response(&self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> bool {
            if !self.ok("send_response") {
                return false;
            }
            self.replies.borrow_mut().push(Reply {
                status,
                headers: headers
                    .iter()
                    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                    .collect(),
                body: String::from_utf8_lossy(body).into_owned(),
            });
            true
        }

        fn close_downstream(&self) -> bool {
            if !self.ok("close_downstream") {
                return false;
            }
            self.closed.set(true);
            true
        }

        fn set_filter_state(&self, key: &str, value: &str, span: Span) -> bool {
            if !self.ok("set_filter_state") {
                return false;
            }
            self.filter_state
                .borrow_mut()
                .insert(key.to_owned(), (value.to_owned(), span));
            true
        }

        fn define_metric(&self, kind: MetricType, name: &str) -> Option<u32> {
            if !self.ok("define_metric") {
                return None;
            }
            let mut names = self.metric_names.borrow_mut();
            names.push((name.to_owned(), kind));
            u32::try_from(names.len() - 1).ok()
        }

        fn increment_metric(&self, id: u32, by: i64) -> bool {
            let names = self.metric_names.borrow();
            let Some((name, _)) = names.get(id as usize) else {
                return false;
            };
            *self.metrics.borrow_mut().entry(name.clone()).or_default() += by;
            true
        }

        fn record_metric(&self, id: u32, value: u64) -> bool {
            let names = self.metric_names.borrow();
            let Some((name, _)) = names.get(id as usize) else {
                return false;
            };
            self.metrics
                .borrow_mut()
                .insert(name.clone(), i64::try_from(value).unwrap_or(i64::MAX));
            true
        }

        fn shared_data(&self, key: &str) -> Result<(Option<Bytes>, Option<u32>), Status> {
            if !self.ok("shared_data") {
                return Err(Status::InternalFailure);
            }
            Ok(match self.shared.borrow().get(key) {
                Some((value, cas)) => (Some(value.clone()), Some(*cas)),
                None => (None, None),
            })
        }

        fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), Status> {
            if !self.ok("set_shared_data") {
                return Err(Status::InternalFailure);
            }
            let mut shared = self.shared.borrow_mut();
            let current = shared.get(key).map(|(_, c)| *c);
            if cas.is_some() && cas != current {
                return Err(Status::CasMismatch);
            }
            let next = current.unwrap_or(0) + 1;
            shared.insert(key.to_owned(), (value.to_vec(), next));
            Ok(())
        }

        fn now_ms(&self) -> u64 {
            self.now_ms.get()
        }

        fn plugin_configuration(&self) -> Option<Bytes> {
            self.plugin_configuration.clone()
        }

        fn plugin_configuration_range(&self, start: usize, len: usize) -> Option<Bytes> {
            self.plugin_configuration_reads
                .set(self.plugin_configuration_reads.get() + 1);
            let all = self.plugin_configuration.as_ref()?;
            let rest = all.get(start..)?;
            Some(rest.get(..len).unwrap_or(rest).to_vec())
        }

        fn vm_configuration(&self) -> Option<Bytes> {
            self.vm_configuration.clone()
        }

        fn embedded_bundle(&self) -> Option<Bytes> {
            self.embedded_bundle.clone()
        }

        fn env(&self, key: &str) -> Option<String> {
            self.env.get(key).cloned()
        }

        fn set_tick_period(&self, period: std::time::Duration) -> bool {
            self.tick_period.set(Some(period));
            self.ok("set_tick_period")
        }
    }
}
