//! The local reply for a denied HTTP request: one place maps a denial to status and body.

use serde::Serialize;
use warden_engine::{Decision, DenyReason};

use crate::host::Host;

/// The response header that carries the reason code.
pub const REASON_HEADER: &str = "x-warden-reason";

/// The JSON body of a denial, written by `serde-json-core`: `serde_json` (its `Value`, number
/// formatting, error messages) is code V8 compiles before the first VM starts, and this body
/// is four strings.
#[derive(Serialize)]
struct Body<'a> {
    message: &'a str,
    policy: Option<&'a str>,
    reason: &'a str,
    service: Option<&'a str>,
}

/// Status and JSON body for a denial.
pub fn response(reason: DenyReason, decision: Option<&Decision<'_>>) -> (u32, String) {
    let body = Body {
        message: reason.message(),
        policy: decision.and_then(|d| d.policy()).map(|p| p.as_str()),
        reason: reason.code(),
        service: decision
            .and_then(|d| d.service())
            .map(|s| s.service.as_str()),
    };
    // Room for every character escaped (`\u00XX`, 6 bytes), the keys and punctuation.
    let text_len = body.message.len()
        + body.policy.map_or(0, str::len)
        + body.reason.len()
        + body.service.map_or(0, str::len);
    let room = 6 * text_len + 128;
    let mut buf = vec![0u8; room];
    let text = match serde_json_core::to_slice(&body, &mut buf) {
        Ok(written) => {
            buf.truncate(written);
            buf.push(b'\n');
            String::from_utf8(buf).ok()
        }
        Err(_) => None,
    };
    // Only if the room above were short: the reason still goes out.
    let text = text.unwrap_or_else(|| format!("{{\"reason\":\"{}\"}}\n", reason.code()));
    (u32::from(reason.http_status()), text)
}

/// Answers a denied request locally, and pauses it.
pub fn send(
    host: &dyn Host,
    reason: DenyReason,
    decision: Option<&Decision<'_>>,
) -> proxy_wasm::types::Action {
    let (status, body) = response(reason, decision);
    let headers = [
        (REASON_HEADER, reason.code()),
        ("content-type", "application/json"),
    ];
    if !host.send_response(status, &headers, body.as_bytes()) {
        log::error!(
            "cannot answer a denied request ({}); it stays paused",
            reason.code()
        );
    }
    proxy_wasm::types::Action::Pause
}
