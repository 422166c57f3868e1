//! The HTTP filter: one decision per request, from the request headers.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use warden_engine::{Decision, DenyReason, Request, RequestProtocol};

use crate::denial::{self, REASON_HEADER};
use crate::properties;
use crate::root::Shared;

/// Request headers a client could send to steer Envoy or forge our own signals.
fn is_spoofable(name: &str) -> bool {
    name.eq_ignore_ascii_case("x-envoy-original-dst-host")
        || name
            .get(..9)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("x-warden-"))
}

pub struct WardenHttp {
    shared: Option<Rc<Shared>>,
}

impl WardenHttp {
    pub fn new(shared: Option<Rc<Shared>>) -> Self {
        Self { shared }
    }

    fn deny(&self, reason: DenyReason, decision: Option<&Decision<'_>>) -> Action {
        let (status, body) = denial::response(reason, decision);
        self.send_http_response(
            status,
            vec![
                (REASON_HEADER, reason.code()),
                ("content-type", "application/json"),
            ],
            Some(body.as_bytes()),
        );
        Action::Pause
    }
}

impl Context for WardenHttp {}

impl HttpContext for WardenHttp {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let headers = self.get_http_request_headers();
        for (name, _) in headers.iter().filter(|(n, _)| is_spoofable(n)) {
            self.remove_http_request_header(name);
        }
        let Some(shared) = self.shared.clone() else {
            log::warn!("warden: no policy loaded; denying (fail closed)");
            return self.deny(DenyReason::NoPolicy, None);
        };
        let Some(policy) = shared.policy.as_ref() else {
            return self.deny(DenyReason::NoPolicy, None);
        };
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let destination = properties::socket_address(&["destination", "address"]);
        let request = Request {
            protocol: RequestProtocol::Http,
            host: header(":authority").or_else(|| header("host")),
            destination: destination.map(|(ip, _)| ip),
            client: shared.identity.as_deref(),
            method: header(":method"),
            path: header(":path"),
            ..Request::default()
        };
        let decision = policy.decide(&request);
        shared.metrics.http(&decision);
        match decision {
            Decision::Allow(_) => {
                log::debug!("warden: {decision} host={:?}", request.host);
                if decision.is_dry_run() {
                    log::info!(
                        "warden: {decision} host={:?} (dry-run: allowed)",
                        request.host
                    );
                }
                Action::Continue
            }
            Decision::Deny(denial) => {
                log::info!(
                    "warden: {decision} host={:?} client={:?}",
                    request.host,
                    request.client
                );
                self.deny(denial.reason, Some(&decision))
            }
        }
    }
}
