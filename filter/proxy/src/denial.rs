//! The local reply for a denied HTTP request: one place maps a denial to status and body.

use warden_engine::{Decision, DenyReason};

use crate::host::Host;

/// The response header that carries the reason code.
pub const REASON_HEADER: &str = "x-warden-reason";

/// Status and JSON body for a denial.
pub fn response(reason: DenyReason, decision: Option<&Decision<'_>>) -> (u32, String) {
    let body = serde_json::json!({
        "reason": reason.code(),
        "service": decision.and_then(|d| d.service()).map(|s| s.service.as_str()),
        "policy": decision.and_then(|d| d.policy()).map(|p| p.as_str()),
        "message": reason.message(),
    });
    (u32::from(reason.http_status()), format!("{body}\n"))
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
