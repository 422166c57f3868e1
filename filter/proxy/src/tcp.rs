//! The network filter: one decision per TCP connection, before any upstream is dialled.

use std::rc::Rc;

use proxy_wasm::traits::{Context, StreamContext};
use proxy_wasm::types::Action;
use warden_bundle::Role;
use warden_engine::{Decision, EndpointAddress, Outcome, Request, RequestProtocol};

use crate::filter_state::{self, Span, ORIGINAL_DST, TCP_PROXY_CLUSTER, UPSTREAM_SERVER_NAME};
use crate::health::{self, Chosen, SharedHealth};
use crate::properties;
use crate::root::Shared;

/// Envoy's "upstream connection failure" response flag (`UF`).
const UPSTREAM_CONNECTION_FAILURE: u64 = 1 << 5;

/// `IP:port`, `IP` or `-` in log lines.
struct Destination(Option<(std::net::IpAddr, Option<u16>)>);

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some((ip, Some(port))) => std::net::SocketAddr::new(ip, port).fmt(f),
            Some((ip, None)) => ip.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// What the listener's `tcp_proxy` does with an allowed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forwards to its fixed upstream (`root_id` `warden.network`).
    Forward,
    /// Stands for an internal hostname: its `ORIGINAL_DST` cluster connects to the endpoint the
    /// filter chooses (`warden.network.endpoints`).
    Endpoints,
    /// The egress gateway's TLS passthrough listener, behind mutual TLS with sidecars: the
    /// caller's certificate is known only with the first data, so the decision waits for it
    /// (`tcp_proxy` with `upstream_connect_mode: ON_DOWNSTREAM_DATA` dials nothing before).
    Gateway,
}

pub struct WardenTcp {
    shared: Option<Rc<Shared>>,
    mode: Mode,
    /// The gateway has decided this connection.
    decided: bool,
    /// The endpoint this connection went to, to record its outcome.
    chosen: Option<Chosen>,
}

/// The server name a sidecar sends the gateway for a connection passed through: Istio's
/// `outbound_.PORT_.SUBSET_.HOST`, so the gateway learns the port as well as the host.
pub fn gateway_server_name(host: &str, port: u16) -> String {
    format!("outbound_.{port}_._.{host}")
}

/// The host and port in a server name from [`gateway_server_name`]; a plain name is a host on
/// the TLS port.
pub fn parse_gateway_server_name(sni: &str) -> (&str, Option<u16>) {
    let parsed = sni.strip_prefix("outbound_.").and_then(|rest| {
        let (port, rest) = rest.split_once("_.")?;
        let (_subset, host) = rest.split_once("_.")?;
        Some((host, port.parse().ok()?))
    });
    match parsed {
        Some((host, port)) => (host, Some(port)),
        None => (sni, None),
    }
}

impl WardenTcp {
    pub fn new(shared: Option<Rc<Shared>>, mode: Mode) -> Self {
        Self {
            shared,
            mode,
            decided: false,
            chosen: None,
        }
    }

    fn close(&self) -> Action {
        self.close_downstream();
        Action::Pause
    }

    /// Decides the connection the first time it is called; lets it through or closes it.
    fn decide_once(&mut self) -> Action {
        if self.decided {
            return Action::Continue;
        }
        self.decided = true;
        if self.decide() {
            Action::Continue
        } else {
            self.close()
        }
    }

    /// Decides the connection and sets where it goes; `false`: close it.
    fn decide(&mut self) -> bool {
        let Some(shared) = self.shared.clone() else {
            log::warn!("no policy loaded; closing connection (fail closed)");
            return false;
        };
        let Some(policy) = shared.policy.as_ref() else {
            return false;
        };
        let destination = properties::socket_address(&["destination", "address"]);
        let sni =
            properties::text(&["connection", "requested_server_name"]).filter(|s| !s.is_empty());
        let gateway = self.mode == Mode::Gateway;
        let peer = if gateway {
            properties::text(&["connection", "uri_san_peer_certificate"])
        } else {
            None
        };
        let (host, port) = match (&sni, gateway) {
            (Some(sni), true) => {
                let (host, port) = parse_gateway_server_name(sni);
                (Some(host), port)
            }
            (sni, _) => (sni.as_deref(), destination.and_then(|(_, port)| port)),
        };
        let request = Request {
            protocol: if host.is_some() {
                RequestProtocol::Tls
            } else {
                RequestProtocol::Tcp
            },
            sni: host,
            // The gateway's listener is its own address; where the caller is going is in the
            // server name.
            destination: destination.filter(|_| !gateway).map(|(ip, _)| ip),
            port,
            client: if gateway {
                peer.as_deref()
            } else {
                shared.identity.as_deref()
            },
            locality: shared.locality.as_ref(),
            ..Request::default()
        };
        let health = SharedHealth::default();
        let decision = policy.decide_with(&request, &health, shared.next_pick());
        shared.metrics.tcp(&decision);
        // Formatted only when a line is logged: an allowed connection logs at debug level.
        let target = Destination(destination);
        let sni_text = sni.as_deref().unwrap_or("-");
        let client = request.client.unwrap_or("-");
        if !decision.is_allowed() {
            log::info!("{decision} destination={target} sni={sni_text} client={client}");
            return false;
        }
        log::debug!("{decision} destination={target} sni={sni_text} client={client}");
        self.route(&shared, &decision, host)
    }

    /// Sends an allowed connection where the decision says.
    fn route(&mut self, shared: &Shared, decision: &Decision<'_>, host: Option<&str>) -> bool {
        let via_gateway = decision.service().is_some_and(|s| s.via_gateway);
        if via_gateway && shared.role == Role::Sidecar {
            if shared.mesh_routing {
                return true;
            }
            // To the gateway's passthrough listener, over mutual TLS whose server name says
            // where the connection is going (the engine allowed it only with a server name).
            let (Some(cluster), Some(host), Some(service)) = (
                shared.gateway_tcp_cluster.as_deref(),
                host,
                decision.service(),
            ) else {
                return false;
            };
            let name = gateway_server_name(host, service.port);
            return filter_state::set(TCP_PROXY_CLUSTER, cluster, Span::Connection)
                && filter_state::set(UPSTREAM_SERVER_NAME, &name, Span::Connection);
        }
        if self.mode == Mode::Forward || shared.mesh_routing {
            return true;
        }
        // An internal hostname's listener, or the gateway: connect to the chosen endpoint, or
        // to nothing (an ORIGINAL_DST cluster without filter state would dial the listener
        // itself).
        let Some(endpoint) = decision.endpoint() else {
            log::warn!("{decision}: no endpoint to connect to; closing (connections here need an ExternalService with IP endpoints)");
            return false;
        };
        let EndpointAddress::Ip(ip) = endpoint.address else {
            log::warn!("{decision}: endpoint {} is a host name; TCP endpoints must be IP addresses; closing", endpoint.endpoint);
            return false;
        };
        let upstream = std::net::SocketAddr::new(*ip, endpoint.port).to_string();
        if !filter_state::set(ORIGINAL_DST, &upstream, Span::Connection) {
            return false;
        }
        self.chosen = Some(Chosen::from(&endpoint));
        true
    }
}

impl Context for WardenTcp {}

impl StreamContext for WardenTcp {
    fn on_new_connection(&mut self) -> Action {
        if self.mode == Mode::Gateway {
            // The peer certificate is not known yet; `tcp_proxy` waits for data too.
            return Action::Continue;
        }
        self.decide_once()
    }

    fn on_downstream_data(&mut self, _data_size: usize, _end_of_stream: bool) -> Action {
        self.decide_once()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_server_names_carry_host_and_port() {
        let name = gateway_server_name("db.example.com", 5432);
        assert_eq!(name, "outbound_.5432_._.db.example.com");
        assert_eq!(
            parse_gateway_server_name(&name),
            ("db.example.com", Some(5432))
        );
        assert_eq!(
            parse_gateway_server_name("api.example.com"),
            ("api.example.com", None)
        );
        assert_eq!(
            parse_gateway_server_name("outbound_.x_._.a.com"),
            ("outbound_.x_._.a.com", None)
        );
    }
}
