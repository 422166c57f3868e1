//! The local reply for a denied HTTP request: one place maps a denial to status and body.

use warden_engine::{Decision, DenyReason};

/// The response header that carries the reason code.
pub const REASON_HEADER: &str = "x-warden-reason";

/// Status and JSON body for a denial.
pub fn response(reason: DenyReason, decision: Option<&Decision<'_>>) -> (u32, String) {
    let service = decision
        .and_then(|d| d.service())
        .map(|s| s.service.to_string());
    let policy = decision.and_then(|d| d.policy()).map(|p| p.to_string());
    let body = format!(
        "{{\"reason\":{},\"service\":{},\"policy\":{},\"message\":{}}}\n",
        json_string(Some(reason.code())),
        json_string(service.as_deref()),
        json_string(policy.as_deref()),
        json_string(Some(reason.message())),
    );
    (u32::from(reason.http_status()), body)
}

fn json_string(value: Option<&str>) -> String {
    match value {
        None => "null".into(),
        Some(text) => {
            let mut out = String::with_capacity(text.len() + 2);
            out.push('"');
            for c in text.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
    }
}
