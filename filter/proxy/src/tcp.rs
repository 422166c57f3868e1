//! The network filter: one decision per TCP connection, before any upstream is dialled.

use std::rc::Rc;

use proxy_wasm::traits::{Context, StreamContext};
use proxy_wasm::types::Action;
use warden_engine::{Request, RequestProtocol};

use crate::properties;
use crate::root::Shared;

pub struct WardenTcp {
    shared: Option<Rc<Shared>>,
}

impl WardenTcp {
    pub fn new(shared: Option<Rc<Shared>>) -> Self {
        Self { shared }
    }
}

impl Context for WardenTcp {}

impl StreamContext for WardenTcp {
    fn on_new_connection(&mut self) -> Action {
        let Some(policy) = self.shared.as_ref().and_then(|s| s.policy.as_ref()) else {
            log::warn!("no policy loaded; closing connection (fail closed)");
            self.close_downstream();
            return Action::Pause;
        };
        let Some(shared) = self.shared.as_ref() else {
            return Action::Pause;
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
            ..Request::default()
        };
        let decision = policy.decide(&request);
        shared.metrics.tcp(&decision);
        let target = match destination {
            Some((ip, Some(port))) => std::net::SocketAddr::new(ip, port).to_string(),
            Some((ip, None)) => ip.to_string(),
            None => "-".to_owned(),
        };
        let sni = sni.as_deref().unwrap_or("-");
        if decision.is_allowed() {
            log::debug!("{decision} destination={target} sni={sni}");
            Action::Continue
        } else {
            log::info!("{decision} destination={target} sni={sni}");
            self.close_downstream();
            Action::Pause
        }
    }
}
