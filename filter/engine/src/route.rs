//! Where an allowed request or connection goes: the one step that turns a decision into what
//! Envoy connects to.
//!
//! The rule (docs/decisions.md): **every allow holds for the endpoint Envoy actually connects
//! to.** A request decided on a registered *name* goes to that name, on the port decided; one
//! decided on an *address* (an IP literal, or the address the client dialled) goes to that
//! address, on the port decided; an internal hostname goes to the endpoint chosen; one decided
//! on a *virtual* address (the builder's, standing for a name) goes to the endpoint chosen, else
//! to the service's own host name, never to the virtual address. Nothing is
//! left to a later reading of the request by Envoy (the authority's own port, the dialled
//! address of a connection allowed on its SNI). The glue applies a [`Route`] and decides
//! nothing itself.

use std::net::SocketAddr;

use warden_bundle::Role;

use crate::decision::{Decision, DenyReason, MatchedOn};
use crate::endpoint::EndpointAddress;
use crate::health::Health;
use crate::host::{parse_authority, parse_host, Host, HostBuf};
use crate::policy::Policy;
use crate::request::Request;

/// The listener a request or connection arrived on, as far as routing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The HTTP listener: a `dynamic_forward_proxy` connects to the authority, or to the
    /// target the filter sets.
    Http,
    /// A TCP listener whose `tcp_proxy` goes where the client dialled: the original
    /// destination under traffic capture, or the fixed upstream a local listener stands for.
    Tcp,
    /// A TCP listener that stands for an internal hostname: it has no destination of its
    /// own, so a connection without a chosen endpoint has nowhere to go.
    TcpEndpoints,
    /// The egress gateway's TLS passthrough listener: the destination is in the server name.
    GatewayPassthrough,
}

/// A cluster the route picks instead of the listener's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cluster<'p> {
    /// The sidecar's cluster to the egress gateway's HTTPS listener.
    EgressGateway,
    /// The sidecar's cluster to the egress gateway's TLS passthrough listener.
    EgressGatewayPassthrough,
    /// A cluster that originates TLS for a service port (`warden_tls|...`).
    TlsOrigination(&'p str),
    /// The TCP cluster that connects to a host name ([`Target::Name`]).
    ByName,
    /// The TCP cluster that connects to an address ([`Target::Address`]).
    ByAddress,
}

/// What the chosen cluster connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A host name or an IP literal and a port, resolved by Envoy (`dynamic_host`,
    /// `dynamic_port` filter state).
    Name { host: String, port: u16 },
    /// An address (`original_dst_address` filter state).
    Address(SocketAddr),
}

impl std::fmt::Display for Target {
    /// `host:port` or `ip:port` (`[v6]:port`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Name { host, port } => write!(f, "{host}:{port}"),
            Self::Address(address) => address.fmt(f),
        }
    }
}

/// Where an allowed request or connection goes. `Route::default()` is "as it is": the
/// listener's own route already connects to what was decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route<'p> {
    pub cluster: Option<Cluster<'p>>,
    pub target: Option<Target>,
    /// HTTP: the authority to write (a host-name endpoint behind TLS origination, so the
    /// SNI and the certificate check follow it).
    pub authority: Option<&'p str>,
    /// The upstream TLS server name (`outbound_.PORT_._.HOST` towards the gateway).
    pub server_name: Option<String>,
}

impl Route<'_> {
    /// Whether the listener's route is left as it is.
    pub fn is_as_is(&self) -> bool {
        *self == Route::default()
    }
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

/// The host part of an authority (before `:port`; IPv6 literals keep their brackets).
fn host_part(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split_once(']').map_or(authority, |(h, _)| h);
    }
    authority.split_once(':').map_or(authority, |(h, _)| h)
}

impl Policy {
    /// Decides `request`, plans where it goes on `listener` (`mesh_routing`: the mesh's own
    /// routes take allowed traffic on), and hands the route to `apply`, which tells the proxy
    /// and says whether it could. One final verdict: an allow with no route, or one the
    /// proxy could not be given, is a denial that keeps its provenance.
    pub fn decide_and_route<'p>(
        &'p self,
        request: &Request<'_>,
        listener: Listener,
        mesh_routing: bool,
        health: &dyn Health,
        pick: u64,
        apply: impl FnOnce(&Route<'p>) -> bool,
    ) -> Decision<'p> {
        let decision = self.decide_with(request, health, pick);
        if !decision.is_allowed() {
            return decision;
        }
        match plan(
            &decision,
            request,
            listener,
            self.settings.role,
            mesh_routing,
        ) {
            Ok(route) if apply(&route) => decision,
            Ok(_) => decision.denied_by(DenyReason::RouteFailed),
            Err(reason) => decision.denied_by(reason),
        }
    }
}

/// Plans where an allowed `decision` for `request` goes, on `listener`, for a proxy in `role`;
/// `mesh_routing`: the mesh's own routes take allowed traffic on (Istio), and nothing is
/// steered. A denial plans nothing. `Err` is a denial of its own: the decision allowed
/// something this proxy has no way to connect to as decided.
pub fn plan<'p>(
    decision: &Decision<'p>,
    request: &Request<'_>,
    listener: Listener,
    role: Role,
    mesh_routing: bool,
) -> Result<Route<'p>, DenyReason> {
    let Decision::Allow(permit) = decision else {
        return Ok(Route::default());
    };
    let service = permit.service;
    let via_gateway = role == Role::Sidecar && service.is_some_and(|s| s.via_gateway);
    if mesh_routing {
        return Ok(Route::default());
    }
    if listener == Listener::Http {
        return http(decision, request, via_gateway);
    }
    // TCP and TLS: the port decided is the service's, else the dialled one.
    let port = service
        .map(|s| s.port)
        .or(request.port)
        .ok_or(DenyReason::RouteFailed)?;
    let mut buf = HostBuf::new();
    let name = match request.sni.map(|sni| parse_host(sni, &mut buf)) {
        Some(Ok(Host::Name(name))) => Some(name),
        _ => None,
    };
    if via_gateway {
        // To the gateway's passthrough listener, over mutual TLS whose server name says
        // where the connection goes (the engine allowed it only with a server name).
        let name = name.ok_or(DenyReason::MustUseGateway)?;
        return Ok(Route {
            cluster: Some(Cluster::EgressGatewayPassthrough),
            server_name: Some(gateway_server_name(name, port)),
            ..Route::default()
        });
    }
    let by_name = service.is_some_and(|s| s.matched_on == MatchedOn::Host);
    let virtual_host = service
        .filter(|s| s.matched_on == MatchedOn::VirtualAddress)
        .map(|s| s.host.ok_or(DenyReason::RouteFailed))
        .transpose()?;
    let (cluster, target) = match (decision.endpoint(), name, virtual_host) {
        (Some(endpoint), _, _) => match endpoint.address {
            EndpointAddress::Ip(ip) => (
                Cluster::ByAddress,
                Target::Address(SocketAddr::new(*ip, endpoint.port)),
            ),
            EndpointAddress::Name(host) => (
                Cluster::ByName,
                Target::Name {
                    host: host.to_string(),
                    port: endpoint.port,
                },
            ),
        },
        // Allowed on its server name: connect to that name, never to the dialled address.
        (None, Some(name), _) if by_name => (
            Cluster::ByName,
            Target::Name {
                host: name.to_owned(),
                port,
            },
        ),
        // Decided on a virtual address: the service's own name, on the port decided.
        (None, _, Some(host)) => (
            Cluster::ByName,
            Target::Name {
                host: host.to_owned(),
                port,
            },
        ),
        // Decided on the dialled address: go there, where the listener has one.
        _ if listener == Listener::Tcp => return Ok(Route::default()),
        // The listener's own address is no destination.
        _ => return Err(DenyReason::RouteFailed),
    };
    // The gateway's passthrough listener decides on the first data, after a name could have
    // been resolved for it: it connects to addresses only.
    if cluster == Cluster::ByName && listener == Listener::GatewayPassthrough {
        return Err(DenyReason::RouteFailed);
    }
    Ok(Route {
        cluster: Some(cluster),
        target: Some(target),
        ..Route::default()
    })
}

/// HTTP: the gateway, a TLS-originating cluster, and the target the dynamic forward proxy
/// connects to when the authority alone would not take the request there.
fn http<'p>(
    decision: &Decision<'p>,
    request: &Request<'_>,
    via_gateway: bool,
) -> Result<Route<'p>, DenyReason> {
    if via_gateway {
        // The authority goes as the client sent it; the gateway decides and routes again.
        return Ok(Route {
            cluster: Some(Cluster::EgressGateway),
            ..Route::default()
        });
    }
    let service = decision.service();
    let tls_cluster = service.and_then(|s| s.tls_cluster);
    let mut route = Route {
        cluster: tls_cluster.map(Cluster::TlsOrigination),
        ..Route::default()
    };
    if let Some(endpoint) = decision.endpoint() {
        let host = match endpoint.address {
            EndpointAddress::Ip(ip) => ip.to_string(),
            EndpointAddress::Name(name) => {
                // Behind TLS origination the SNI and the certificate check follow the
                // authority: a host-name endpoint becomes it.
                if tls_cluster.is_some() {
                    route.authority = Some(name);
                }
                name.to_string()
            }
        };
        route.target = Some(Target::Name {
            host,
            port: endpoint.port,
        });
        return Ok(route);
    }
    let mut buf = HostBuf::new();
    let Some(raw) = request.host else {
        return Ok(route);
    };
    let Ok(authority) = parse_authority(raw, &mut buf) else {
        return Ok(route);
    };
    // The port decided: the service's, else the dialled one, the authority's, the default.
    let port = service
        .map(|s| s.port)
        .or(request.port)
        .or(authority.port)
        .unwrap_or(80);
    let by_name = service.is_some_and(|s| s.matched_on == MatchedOn::Host);
    let host = match (authority.host, request.destination) {
        // Decided on a virtual address (named, or dialled): the service's own name, also as
        // the authority, so that `Host`, SNI and the certificate check name it.
        _ if service.is_some_and(|s| s.matched_on == MatchedOn::VirtualAddress) => {
            let host = service
                .and_then(|s| s.host)
                .ok_or(DenyReason::RouteFailed)?;
            route.authority = Some(host);
            host.to_owned()
        }
        // Decided on the address the authority names.
        (Host::Ip(ip), _) => ip.to_string(),
        // Decided on the dialled address (the name is unregistered, or the address matched):
        // connect to that address, not to whatever the name resolves to.
        (Host::Name(_), Some(ip)) if !by_name => ip.to_string(),
        (Host::Name(name), _) => {
            // The dynamic forward proxy reads the authority's port, else 443 behind TLS
            // origination and 80 otherwise.
            let default_port = if tls_cluster.is_some() { 443 } else { 80 };
            if host_part(raw) == name && authority.port.unwrap_or(default_port) == port {
                return Ok(route);
            }
            name.to_owned()
        }
    };
    route.target = Some(Target::Name { host, port });
    Ok(route)
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

    #[test]
    fn host_part_splits_off_the_port() {
        assert_eq!(host_part("a.com:80"), "a.com");
        assert_eq!(host_part("a.com"), "a.com");
    }
}
