//! The HTTP filter: one decision per request, from the request headers, and the route the
//! engine plans for it applied.
//!
//! Headers are read as bytes: a value that is not UTF-8 is never turned into a `String` (the
//! SDK's `get_http_request_headers` panics on one, which would crash the VM for every
//! workload on the proxy). An authority that is not UTF-8 is an invalid host; any other such
//! header is absent as far as the decision is concerned.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, Bytes};
use warden_bundle::{wire, Role};
use warden_engine::{Cluster, Decision, DenyReason, Facts, Listener, Outcome, Route, Target};

use crate::denial;
use crate::filter_state::{self, Span};
use crate::health::{self, Chosen, SharedHealth};
use crate::host::Host;
use crate::metrics::Metrics;
use crate::properties;
use crate::root::Shared;

/// Request headers a client could send to steer Envoy or forge our own signals. Envoy
/// removes the cluster header before any filter; the filter removes the rest.
fn is_spoofable(name: &str) -> bool {
    name.eq_ignore_ascii_case("x-envoy-original-dst-host")
        || name
            .get(..9)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("x-warden-"))
}

/// A header's value as text; `Err` when it is present but not UTF-8.
fn header<'h>(headers: &'h [(String, Bytes)], name: &str) -> Result<Option<&'h str>, ()> {
    match headers.iter().find(|(n, _)| n == name) {
        Some((_, value)) => std::str::from_utf8(value).map(Some).map_err(|_| ()),
        None => Ok(None),
    }
}

#[derive(Debug)]
pub struct WardenHttp {
    host: Rc<dyn Host>,
    shared: Option<Rc<Shared>>,
    metrics: Option<Rc<Metrics>>,
    /// The endpoint an internal-hostname request went to, to record its outcome.
    chosen: Option<Chosen>,
}

impl WardenHttp {
    pub fn new(
        host: Rc<dyn Host>,
        shared: Option<Rc<Shared>>,
        metrics: Option<Rc<Metrics>>,
    ) -> Self {
        Self {
            host,
            shared,
            metrics,
            chosen: None,
        }
    }

    /// The decision and the route for this request, as one final verdict.
    fn decide(&mut self, shared: &Shared, headers: &[(String, Bytes)]) -> Action {
        let host_calls = &*self.host;
        let policy = &shared.policy;
        let host = match header(headers, ":authority") {
            Ok(None) => header(headers, "host"),
            authority => authority,
        };
        let host = match host {
            Ok(host) => host,
            Err(()) => {
                log::info!("deny invalid_host: the authority is not UTF-8");
                return self.refuse(DenyReason::InvalidHost);
            }
        };
        let destination = if shared.local_proxy {
            None
        } else {
            properties::socket_address(host_calls, &["destination", "address"])
        };
        // At the egress gateway the caller is who its certificate says (the listener only
        // accepts certificates from the mesh CA), and the TLS server name it sent must name
        // the host it asks for (domain fronting). Two host calls, only at the gateway.
        let (peer, sni) = if shared.role == Role::Gateway {
            (
                properties::text(host_calls, &["connection", "uri_san_peer_certificate"]),
                properties::text(host_calls, &["connection", "requested_server_name"])
                    .filter(|s| !s.is_empty()),
            )
        } else {
            (None, None)
        };
        // Under Istio, where its route sends the request says whether it stays in the mesh
        // (one host call, only when the bundle has a mesh scope).
        let cluster = if shared.reads_route_cluster {
            properties::text(host_calls, &["xds", "cluster_name"])
        } else {
            None
        };
        let facts = Facts {
            role: shared.role,
            listener: Some(Listener::Http),
            cluster: cluster.as_deref(),
            authority: host,
            server_name: sni.as_deref(),
            // With traffic capture, where the client connected is where it is going.
            destination: destination.map(|(ip, _)| ip),
            port: destination.and_then(|(_, port)| port),
            peer: peer.as_deref(),
            identity: shared.identity.as_deref(),
            method: header(headers, ":method").ok().flatten(),
            path: header(headers, ":path").ok().flatten(),
            locality: shared.locality.as_ref(),
        };
        let request = facts.request();
        let decision = policy.decide_and_route(
            &request,
            Listener::Http,
            shared.mesh_routing,
            &SharedHealth::new(host_calls),
            shared.next_pick(),
            |route| apply(host_calls, shared, route),
        );
        self.count(|m| m.http(host_calls, &decision, shared.service_metrics));
        let (host_text, client_text) = (host.unwrap_or("-"), request.client.unwrap_or("-"));
        let Decision::Deny(denial) = decision else {
            if decision.is_dry_run() {
                log::info!("{decision} host={host_text} client={client_text} (dry-run: allowed)");
            } else {
                log::debug!("{decision} host={host_text} client={client_text}");
            }
            // Only an endpoint we chose, on a path we route, has an outcome to record.
            if !shared.mesh_routing {
                self.chosen = decision.endpoint().as_ref().map(Chosen::from);
            }
            return Action::Continue;
        };
        log::info!("{decision} host={host_text} client={client_text}");
        denial::send(host_calls, denial.reason, Some(&decision))
    }
}

/// Applies a route; `false` when the proxy could not be told (a host call failed).
fn apply(host: &dyn Host, shared: &Shared, route: &Route<'_>) -> bool {
    if let Some(cluster) = route.cluster {
        let name = match cluster {
            Cluster::EgressGateway => shared.gateway_cluster.as_deref(),
            Cluster::TlsOrigination(name) => Some(name),
            // TCP clusters: never planned for HTTP.
            Cluster::EgressGatewayPassthrough | Cluster::ByName | Cluster::ByAddress => None,
        };
        let Some(name) = name else {
            return false;
        };
        if !host.set_request_header(wire::CLUSTER_HEADER, name) {
            return false;
        }
    }
    if let Some(authority) = route.authority {
        if !host.set_request_header(":authority", authority) {
            return false;
        }
    }
    match &route.target {
        Some(Target::Name { host: name, port }) => {
            filter_state::set_target(host, name, *port, Span::Request)
        }
        // Addresses are for TCP clusters: never planned for HTTP.
        Some(Target::Address(_)) => false,
        None => true,
    }
}

impl WardenHttp {
    fn count(&self, record: impl FnOnce(&Metrics)) {
        if let Some(metrics) = &self.metrics {
            record(metrics);
        }
    }

    /// Denies a request the engine never decided (unreadable, no policy), counted.
    fn refuse(&self, reason: DenyReason) -> Action {
        self.count(|m| m.http_denied(reason));
        denial::send(&*self.host, reason, None)
    }

    /// `on_http_request_headers`: strips what a client could spoof, then decides.
    pub fn on_request_headers(&mut self) -> Action {
        // A request whose headers cannot be read, or still carry what a client must not
        // send, is not let through: it fails closed (`route_failed`).
        let Some(headers) = self.host.request_headers() else {
            log::error!("cannot read the request headers; denying");
            return self.refuse(DenyReason::RouteFailed);
        };
        for (name, _) in headers.iter().filter(|(n, _)| is_spoofable(n)) {
            if !self.host.remove_request_header(name) {
                log::error!("cannot remove the request header {name}; denying");
                return self.refuse(DenyReason::RouteFailed);
            }
        }
        let Some(shared) = self.shared.clone() else {
            log::warn!("no policy loaded; denying (fail closed)");
            return self.refuse(DenyReason::NoPolicy);
        };
        self.decide(&shared, &headers)
    }

    /// `on_http_response_headers`: the outcome of a request to a chosen endpoint.
    pub fn on_response_headers(&mut self) -> Action {
        if let Some(chosen) = self.chosen.take() {
            let status = self
                .host
                .response_header(":status")
                .and_then(|s| std::str::from_utf8(&s).ok()?.parse::<u32>().ok())
                .unwrap_or(0);
            health::record(&*self.host, &chosen, Outcome::of_status(status));
        }
        Action::Continue
    }
}

impl Context for WardenHttp {}

impl HttpContext for WardenHttp {
    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        self.on_response_headers()
    }

    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        self.on_request_headers()
    }
}
