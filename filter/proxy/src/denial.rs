//! The local reply for a denied HTTP request: one place maps a denial to status and body.

use warden_engine::{Decision, DenyReason};

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
