//! The network filter: one decision per TCP connection, before any upstream is dialled.

use std::rc::Rc;

use proxy_wasm::traits::{Context, StreamContext};
use proxy_wasm::types::Action;
use warden_engine::{EndpointAddress, Outcome, Request, RequestProtocol};

use crate::filter_state::{self, Span, ORIGINAL_DST};
use crate::health::{self, Chosen, SharedHealth};
use crate::properties;
use crate::root::Shared;

/// Envoy's "upstream connection failure" response flag (`UF`).
const UPSTREAM_CONNECTION_FAILURE: u64 = 1 << 5;

pub struct WardenTcp {
    shared: Option<Rc<Shared>>,
    /// The listener stands for an internal hostname: the filter must choose the endpoint.
    endpoints: bool,
    /// The endpoint this connection went to, to record its outcome.
    chosen: Option<Chosen>,
}

impl WardenTcp {
    pub fn new(shared: Option<Rc<Shared>>, endpoints: bool) -> Self {
        Self {
            shared,
            endpoints,
            chosen: None,
        }
    }

    fn close(&self) -> Action {
        self.close_downstream();
        Action::Pause
    }
}

impl Context for WardenTcp {}

impl StreamContext for WardenTcp {
    fn on_new_connection(&mut self) -> Action {
        let Some(shared) = self.shared.clone() else {
            log::warn!("no policy loaded; closing connection (fail closed)");
            return self.close();
        };
        let Some(policy) = shared.policy.as_ref() else {
            return self.close();
        };
        let destination = properties::socket_address(&["destination", "address"]);
        let sni =
            properties::text(&["connection", "requested_server_name"]).filter(|s| !s.is_empty());
        let request = Request {
            protocol: if sni.is_some() {
                RequestProtocol::Tls
            } else {
                RequestProtocol::Tcp
            },
            sni: sni.as_deref(),
            destination: destination.map(|(ip, _)| ip),
            port: destination.and_then(|(_, port)| port),
            client: shared.identity.as_deref(),
            locality: shared.locality.as_ref(),
            ..Request::default()
        };
        let health = SharedHealth::default();
        let decision = policy.decide_with(&request, &health, shared.next_pick());
        shared.metrics.tcp(&decision);
        let target = match destination {
            Some((ip, Some(port))) => std::net::SocketAddr::new(ip, port).to_string(),
            Some((ip, None)) => ip.to_string(),
            None => "-".to_owned(),
        };
        let sni = sni.as_deref().unwrap_or("-");
        if !decision.is_allowed() {
            log::info!("{decision} destination={target} sni={sni}");
            return self.close();
        }
        log::debug!("{decision} destination={target} sni={sni}");
        if !self.endpoints {
            return Action::Continue;
        }
        // An internal hostname's listener: connect to the chosen endpoint, or to nothing (an
        // ORIGINAL_DST cluster without filter state would dial the listener itself).
        let Some(endpoint) = decision.endpoint() else {
            log::warn!("{decision} destination={target}: no endpoint to connect to; closing");
            return self.close();
        };
        let EndpointAddress::Ip(ip) = endpoint.address else {
            log::warn!("{decision}: endpoint {} is a host name; TCP endpoints must be IP addresses; closing", endpoint.endpoint);
            return self.close();
        };
        let upstream = std::net::SocketAddr::new(*ip, endpoint.port).to_string();
        if !filter_state::set(ORIGINAL_DST, &upstream, Span::Connection) {
            return self.close();
        }
        self.chosen = Some(Chosen::from(&endpoint));
        Action::Continue
    }

    fn on_log(&mut self) {
        let Some(chosen) = self.chosen.take() else {
            return;
        };
        let flags = proxy_wasm::hostcalls::get_property(vec!["response", "flags"])
            .ok()
            .flatten()
            .and_then(|bytes| {
                bytes
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_le_bytes)
            })
            .unwrap_or(0);
        let outcome = if flags & UPSTREAM_CONNECTION_FAILURE != 0 {
            Outcome::GatewayError
        } else {
            Outcome::Success
        };
        health::record(&chosen, outcome);
    }
}
