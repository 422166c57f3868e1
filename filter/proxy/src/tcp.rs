//! The network filter: one decision per TCP connection, before any upstream is dialled.

use std::rc::Rc;

use proxy_wasm::traits::{Context, StreamContext};
use proxy_wasm::types::Action;
use warden_bundle::{wire, Role};
use warden_engine::{Cluster, DenyReason, Facts, Listener, Outcome, Route, Target};

use crate::filter_state::{self, Span, ORIGINAL_DST, TCP_PROXY_CLUSTER, UPSTREAM_SERVER_NAME};
use crate::health::{self, Chosen, SharedHealth};
use crate::host::Host;
use crate::metrics::Metrics;
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

#[derive(Debug)]
pub struct WardenTcp {
    host: Rc<dyn Host>,
    shared: Option<Rc<Shared>>,
    metrics: Option<Rc<Metrics>>,
    mode: Mode,
    /// The gateway has decided this connection.
    decided: bool,
    /// The endpoint this connection went to, to record its outcome.
    chosen: Option<Chosen>,
}

impl WardenTcp {
    pub fn new(
        host: Rc<dyn Host>,
        shared: Option<Rc<Shared>>,
        metrics: Option<Rc<Metrics>>,
        mode: Mode,
    ) -> Self {
        Self {
            host,
            shared,
            metrics,
            mode,
            decided: false,
            chosen: None,
        }
    }

    fn close(&self) -> Action {
        if !self.host.close_downstream() {
            log::error!("cannot close a denied connection");
        }
        Action::Pause
    }

    /// Decides the connection the first time it is called; lets it through or closes it.
    pub fn decide_once(&mut self) -> Action {
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
            if let Some(metrics) = &self.metrics {
                metrics.tcp_denied(DenyReason::NoPolicy);
            }
            return false;
        };
        let policy = &shared.policy;
        let host = &*self.host;
        let destination = properties::socket_address(host, &["destination", "address"]);
        let sni = properties::text(host, &["connection", "requested_server_name"])
            .filter(|s| !s.is_empty());
        let gateway = self.mode == Mode::Gateway;
        let peer = if gateway {
            properties::text(host, &["connection", "uri_san_peer_certificate"])
        } else {
            None
        };
        let listener = match self.mode {
            Mode::Forward => Listener::Tcp,
            Mode::Endpoints => Listener::TcpEndpoints,
            Mode::Gateway => Listener::GatewayPassthrough,
        };
        // The gateway's listener is its own address; where the caller is going is in the
        // server name.
        let facts = Facts {
            // The caller is the certificate's on the gateway's passthrough listener, and the
            // workload's on any other listener, whatever the proxy's role.
            role: if gateway {
                Role::Gateway
            } else {
                Role::Sidecar
            },
            listener: Some(listener),
            server_name: sni.as_deref(),
            destination: destination.filter(|_| !gateway).map(|(ip, _)| ip),
            port: destination.filter(|_| !gateway).and_then(|(_, port)| port),
            peer: peer.as_deref(),
            identity: shared.identity.as_deref(),
            locality: shared.locality.as_ref(),
            ..Facts::default()
        };
        let request = facts.request();
        let decision = policy.decide_and_route(
            &request,
            listener,
            shared.mesh_routing,
            &SharedHealth::new(host),
            shared.next_pick(),
            |route| apply(host, &shared, route),
        );
        if let Some(metrics) = &self.metrics {
            metrics.tcp(&*self.host, &decision, shared.service_metrics);
        }
        // Formatted only when a line is logged: an allowed connection logs at debug level.
        let target = Destination(destination);
        let sni_text = sni.as_deref().unwrap_or("-");
        let client = request.client.unwrap_or("-");
        if !decision.is_allowed() {
            log::info!("{decision} destination={target} sni={sni_text} client={client}");
            return false;
        }
        log::debug!("{decision} destination={target} sni={sni_text} client={client}");
        if !shared.mesh_routing {
            self.chosen = decision.endpoint().as_ref().map(Chosen::from);
        }
        true
    }
}

/// Applies a connection's route through filter state; `false` when the proxy could not be
/// told, or has no cluster for it.
fn apply(host: &dyn Host, shared: &Shared, route: &Route<'_>) -> bool {
    if let Some(cluster) = route.cluster {
        let name = match cluster {
            Cluster::EgressGatewayPassthrough => shared.gateway_tcp_cluster.as_deref(),
            Cluster::ByName => Some(wire::TCP_BY_NAME_CLUSTER),
            Cluster::ByAddress => Some(wire::ORIGINAL_DST_CLUSTER),
            // HTTP clusters: never planned for a connection.
            Cluster::EgressGateway | Cluster::TlsOrigination(_) => None,
        };
        let Some(name) = name else {
            return false;
        };
        if !filter_state::set(host, TCP_PROXY_CLUSTER, name, Span::Connection) {
            return false;
        }
    }
    if let Some(name) = &route.server_name {
        if !filter_state::set(host, UPSTREAM_SERVER_NAME, name, Span::Connection) {
            return false;
        }
    }
    match &route.target {
        Some(Target::Name { host: name, port }) => {
            filter_state::set_target(host, name, *port, Span::Connection)
        }
        Some(Target::Address(address)) => {
            filter_state::set(host, ORIGINAL_DST, &address.to_string(), Span::Connection)
        }
        None => true,
    }
}

impl WardenTcp {
    /// `on_new_connection`: decides, except at the gateway, where the peer certificate is not
    /// known yet (`tcp_proxy` waits for data too).
    pub fn on_connection(&mut self) -> Action {
        if self.mode == Mode::Gateway {
            return Action::Continue;
        }
        self.decide_once()
    }

    /// `on_log`: the outcome of a connection to a chosen endpoint.
    pub fn on_done(&mut self) {
        let Some(chosen) = self.chosen.take() else {
            return;
        };
        let flags = properties::int(&*self.host, &["response", "flags"]).unwrap_or(0);
        let outcome = if flags & UPSTREAM_CONNECTION_FAILURE != 0 {
            Outcome::GatewayError
        } else {
            Outcome::Success
        };
        health::record(&*self.host, &chosen, outcome);
    }
}

impl Context for WardenTcp {}

impl StreamContext for WardenTcp {
    fn on_new_connection(&mut self) -> Action {
        self.on_connection()
    }

    fn on_downstream_data(&mut self, _data_size: usize, _end_of_stream: bool) -> Action {
        self.decide_once()
    }

    fn on_log(&mut self) {
        self.on_done()
    }
}
