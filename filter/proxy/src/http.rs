//! The HTTP filter: one decision per request, from the request headers.

use std::net::IpAddr;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use warden_engine::{
    parse_authority, Decision, DenyReason, EndpointAddress, Host, HostBuf, MatchedOn, Outcome,
    Request, RequestProtocol,
};

use crate::denial::{self, REASON_HEADER};
use crate::filter_state::{self, Span, DYNAMIC_HOST, DYNAMIC_PORT};
use crate::health::{self, Chosen, SharedHealth};
use crate::properties;
use crate::root::Shared;
use warden_bundle::Role;

/// The request header that picks the upstream cluster (the route's `cluster_header`): the
/// egress gateway for a sidecar, a TLS-originating cluster at the gateway. Clients cannot set
/// it: every `x-warden-` header is removed before the decision.
const CLUSTER_HEADER: &str = "x-warden-cluster";

/// Request headers a client could send to steer Envoy or forge our own signals.
fn is_spoofable(name: &str) -> bool {
    name.eq_ignore_ascii_case("x-envoy-original-dst-host")
        || name
            .get(..9)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("x-warden-"))
}

pub struct WardenHttp {
    shared: Option<Rc<Shared>>,
    /// The endpoint an internal-hostname request went to, to record its outcome.
    chosen: Option<Chosen>,
}

impl WardenHttp {
    pub fn new(shared: Option<Rc<Shared>>) -> Self {
        Self {
            shared,
            chosen: None,
        }
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

/// Where an allowed request must go when `:authority` alone would not take it there: the
/// endpoint chosen for an internal hostname, the canonical form of a non-canonical spelling
/// (`0x7f.0.0.21`, `API.Example.COM.`), or the address the decision was made on. `None` when
/// the authority is already exact.
fn steer_to(
    raw_authority: &str,
    decision: &Decision<'_>,
    destination: Option<(IpAddr, Option<u16>)>,
) -> Option<(String, u16)> {
    if let Some(endpoint) = decision.endpoint() {
        let host = match endpoint.address {
            EndpointAddress::Ip(ip) => ip.to_string(),
            EndpointAddress::Name(name) => name.to_string(),
        };
        return Some((host, endpoint.port));
    }
    let mut buf = HostBuf::new();
    let authority = parse_authority(raw_authority, &mut buf).ok()?;
    let port = authority.port.unwrap_or(80);
    let by_address = decision
        .service()
        .is_some_and(|s| s.matched_on == MatchedOn::Address);
    match authority.host {
        Host::Name(_) if by_address => {
            let (ip, dest_port) = destination?;
            Some((ip.to_string(), dest_port.unwrap_or(port)))
        }
        Host::Name(name) if host_part(raw_authority) == name => None,
        Host::Name(name) => Some((name.to_owned(), port)),
        Host::Ip(ip) => Some((ip.to_string(), port)),
    }
}

/// The host part of an authority (before `:port`; IPv6 literals keep their brackets).
fn host_part(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split_once(']').map_or(authority, |(h, _)| h);
    }
    authority.split_once(':').map_or(authority, |(h, _)| h)
}

impl Context for WardenHttp {}

impl HttpContext for WardenHttp {
    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if let Some(chosen) = self.chosen.take() {
            let status = self
                .get_http_response_header(":status")
                .and_then(|s| s.parse::<u32>().ok())
                .unwrap_or(0);
            health::record(&chosen, Outcome::of_status(status));
        }
        Action::Continue
    }

    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let headers = self.get_http_request_headers();
        for (name, _) in headers.iter().filter(|(n, _)| is_spoofable(n)) {
            self.remove_http_request_header(name);
        }
        let Some(shared) = self.shared.clone() else {
            log::warn!("no policy loaded; denying (fail closed)");
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
        let destination = if shared.local_proxy {
            None
        } else {
            properties::socket_address(&["destination", "address"])
        };
        let host = header(":authority").or_else(|| header("host"));
        // At the egress gateway the caller is who its certificate says (the listener only
        // accepts certificates from the mesh CA), and the TLS server name it sent must name
        // the host it asks for (domain fronting). Two host calls, only at the gateway.
        let (peer, sni) = if shared.role == Role::Gateway {
            (
                properties::text(&["connection", "uri_san_peer_certificate"]),
                properties::text(&["connection", "requested_server_name"])
                    .filter(|s| !s.is_empty()),
            )
        } else {
            (None, None)
        };
        let client = match shared.role {
            Role::Gateway => peer.as_deref(),
            Role::Sidecar => shared.identity.as_deref(),
        };
        let request = Request {
            protocol: RequestProtocol::Http,
            host,
            sni: sni.as_deref(),
            destination: destination.map(|(ip, _)| ip),
            // With traffic capture, the port the client connected to is where it is going.
            port: destination.and_then(|(_, port)| port),
            client,
            method: header(":method"),
            path: header(":path"),
            locality: shared.locality.as_ref(),
            ..Request::default()
        };
        let health = SharedHealth::default();
        let decision = policy.decide_with(&request, &health, shared.next_pick());
        self.chosen = decision.endpoint().as_ref().map(Chosen::from);
        shared.metrics.http(&decision);
        let (host_text, client_text) = (host.unwrap_or("-"), request.client.unwrap_or("-"));
        let Decision::Deny(denial) = decision else {
            if decision.is_dry_run() {
                log::info!(
                    "{decision} host={host:?} client={:?} (dry-run: allowed)",
                    request.client
                );
            } else {
                log::debug!("{decision} host={host_text} client={client_text}");
            }
            if shared.mesh_routing {
                // The mesh's routes take it from here; nothing of ours to record.
                self.chosen = None;
                return Action::Continue;
            }
            let via_gateway = decision.service().is_some_and(|s| s.via_gateway);
            if via_gateway && shared.role == Role::Sidecar {
                // To the gateway, with the authority as the client sent it (the engine allows
                // this only when the sidecar has the route).
                let Some(cluster) = shared.gateway_cluster.as_deref() else {
                    return self.deny(DenyReason::RouteFailed, Some(&decision));
                };
                self.set_http_request_header(CLUSTER_HEADER, Some(cluster));
                return Action::Continue;
            }
            if let Some(cluster) = decision.service().and_then(|s| s.tls_cluster) {
                // TLS is originated by this cluster: its SNI and certificate check follow the
                // authority, so a host-name endpoint becomes the authority.
                self.set_http_request_header(CLUSTER_HEADER, Some(cluster));
                if let Some(EndpointAddress::Name(name)) = decision.endpoint().map(|e| e.address) {
                    self.set_http_request_header(":authority", Some(name));
                }
            }
            if let Some((target, port)) = host.and_then(|h| steer_to(h, &decision, destination)) {
                let ok = filter_state::set(DYNAMIC_HOST, &target, Span::Request)
                    && filter_state::set(DYNAMIC_PORT, &port.to_string(), Span::Request);
                if !ok {
                    // Our own 503 says nothing about the endpoint's health.
                    self.chosen = None;
                    return self.deny(DenyReason::RouteFailed, Some(&decision));
                }
            }
            return Action::Continue;
        };
        log::info!("{decision} host={host_text} client={client_text}");
        self.deny(denial.reason, Some(&decision))
    }
}
