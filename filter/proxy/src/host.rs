//! The host calls the filter makes, each returning what happened instead of panicking.
//!
//! The SDK's context methods `unwrap()` every host call's status, and its string getters turn
//! bytes into `String` with `unwrap()`: a status Envoy returns, or a header that is not UTF-8,
//! would crash the VM. The filter calls these functions instead; a failed call is logged by
//! the caller and becomes a decision (deny, fail closed), never a panic.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{Bytes, MapType};

/// The request headers, values as bytes. Names are tokens, which Envoy's codecs check before
/// any filter runs. Empty when the host refuses the call.
pub fn request_headers() -> Vec<(String, Bytes)> {
    hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default()
}

/// Sets (or replaces) a request header.
pub fn set_request_header(name: &str, value: &str) -> bool {
    hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value)).is_ok()
}

/// Removes a request header.
pub fn remove_request_header(name: &str) -> bool {
    hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None).is_ok()
}

/// One response header's value as bytes.
pub fn response_header(name: &str) -> Option<Bytes> {
    hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, name)
        .ok()
        .flatten()
}

/// Answers the request locally.
pub fn send_response(status: u32, headers: &[(&str, &str)], body: &[u8]) -> bool {
    hostcalls::send_http_response(status, headers.to_vec(), Some(body)).is_ok()
}

/// Closes the downstream connection.
pub fn close_downstream() -> bool {
    hostcalls::close_downstream().is_ok()
}
