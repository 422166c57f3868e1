//! The compiled policy and the per-request decision.

use std::net::IpAddr;

use warden_bundle::{FailureMode, Locality, LocalityMapping, OutboundMode, Role};

use crate::access::{evaluate, AccessOutcome, CompiledPolicy};
use crate::cidr::CidrTable;
use crate::compiled::{CompiledPort, CompiledService, Port, PortExtra, Service};
use crate::decision::{AllowReason, Decision, Denial, DenyReason, MatchedOn, Permit, ServiceMatch};
use crate::health::{AllHealthy, Health};
use crate::host::{is_unspecified, parse_authority, parse_host, Authority, Host, HostBuf};
use crate::host_table::{HostMatch, HostTable};
use crate::name::{NameTable, ResourceName};
use crate::ranking::Ranked;
use crate::request::{Request, RequestProtocol};
use crate::selection::{choose, EndpointChoice, Vantage};
use crate::service_set::{ServiceSet, SetArena};
use crate::view::Views;
use rustc_hash::FxHashMap;

/// A bundle compiled into lookup structures. Built once per configuration; `decide` only reads.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Policy {
    pub(crate) settings: Settings,
    /// The proxy locality endpoints are ranked for (see [`Policy::prepare_for`]).
    #[serde(with = "crate::locality_form::optional")]
    pub(crate) prepared_for: Option<Locality>,
    #[serde(with = "crate::compiled::services_form")]
    pub(crate) services: Box<[CompiledService]>,
    /// The services' names, by the services' indices.
    pub(crate) names: NameTable,
    /// Every service's ports, service after service.
    #[serde(with = "crate::exact_seq")]
    pub(crate) ports: Box<[CompiledPort]>,
    /// What few ports have, by the port's position in `ports`, ascending.
    #[serde(with = "crate::exact_seq")]
    pub(crate) port_extras: Box<[(u32, PortExtra)]>,
    /// The distinct lists of workspace views services are in (a service names one by
    /// position, from 1; 0 is every view).
    pub(crate) view_lists: Box<[Box<[u16]>]>,
    pub(crate) hosts: HostTable,
    pub(crate) v4: CidrTable<u32>,
    pub(crate) v6: CidrTable<u128>,
    /// Virtual addresses (canonical) and the one service each stands for.
    #[serde(with = "crate::sorted_map")]
    pub(crate) virtual_addresses: FxHashMap<IpAddr, u32>,
    /// Workspace views (`None`: one view, every service).
    pub(crate) views: Option<Views>,
    pub(crate) sets: SetArena,
    pub(crate) policies: Box<[CompiledPolicy]>,
}

/// Which traffic a sidecar can send to the egress gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct GatewayRoutes {
    /// HTTP requests (a cluster to the gateway's HTTPS listener).
    pub http: bool,
    /// TLS connections, passed through by server name (a cluster to its TLS listener).
    pub tls: bool,
}

impl GatewayRoutes {
    pub const NONE: Self = Self {
        http: false,
        tls: false,
    };
    pub const ALL: Self = Self {
        http: true,
        tls: true,
    };
}

/// The service host of an Istio outbound cluster name, `outbound|PORT|SUBSET|HOST`: a port of
/// digits (1-65535) and one host name (no wildcard, which a ServiceEntry host may be).
fn istio_service_host(cluster: &str) -> Option<&str> {
    let mut parts = cluster.split('|');
    let (Some("outbound"), Some(port), Some(_), Some(host), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let port_ok = !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p > 0);
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    (port_ok && host_ok).then_some(host)
}

/// Bundle-wide settings the filter needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    pub outbound_mode: OutboundMode,
    pub failure_mode: FailureMode,
    pub trust_domain: Box<str>,
    /// Which proxy this is: a sidecar sends gateway-routed ports to the egress gateway and
    /// leaves endpoint choice to it; the gateway decides on the caller's certificate.
    pub role: Role,
    /// A sidecar's routes to the egress gateway (`render envoy --gateway`, `--gateway-tcp`).
    /// Traffic to a gateway-routed port without one is denied `must_use_gateway`.
    pub gateway_routes: GatewayRoutes,
    pub workload_identity: Option<Box<str>>,
    #[serde(with = "crate::locality_form::optional")]
    pub locality: Option<Locality>,
    pub digest: Option<Box<str>>,
    /// DNS suffixes of the mesh's services (`svc.cluster.local`), normalised.
    pub mesh_domains: Box<[Box<str>]>,
    /// Addresses and CIDRs of the mesh.
    pub mesh_addresses: Box<[ipnet::IpNet]>,
}

/// Whether the egress gateway forwards `protocol` on this port: only ports with a gateway
/// route, and TLS passed through only where the gateway does not originate TLS itself (its
/// CA, server name and client certificate would be skipped).
fn gateway_forwards(port: Port<'_>, protocol: RequestProtocol) -> bool {
    port.via_gateway() && !(protocol == RequestProtocol::Tls && port.tls_cluster().is_some())
}

impl<'p> ServiceMatch<'p> {
    fn of(
        hosts: &'p HostTable,
        service: Service<'p>,
        port: Port<'p>,
        matched_on: MatchedOn,
    ) -> Self {
        Self {
            service: service.name,
            matched_on,
            host: service.host().and_then(|h| hosts.exact_host(h)),
            port: port.number,
            protocol: Some(port.protocol),
            via_gateway: port.via_gateway(),
            tls_cluster: port.tls_cluster(),
        }
    }
}

/// The failover targets for a proxy in `locality`: the first mapping whose `from` holds it.
fn failover_for<'a>(
    mappings: &'a [LocalityMapping],
    locality: Option<&Locality>,
) -> Option<&'a [Locality]> {
    let locality = locality?;
    mappings
        .iter()
        .find(|m| m.from.contains(locality))
        .map(|m| &m.to[..])
}

/// The normalised host the request names: the authority, else the SNI. Both present and
/// naming different hosts is a mismatch.
///
/// A TLS server name is a host name without a port (RFC 6066): one with a port is invalid, and
/// an IP literal names nothing, so a TLS connection carrying one is decided on the address it
/// was dialled to, like any connection without a name.
fn authority<'a>(
    request: &Request<'a>,
    host_buf: &'a mut HostBuf,
    sni_buf: &'a mut HostBuf,
) -> Result<Option<Authority<'a>>, DenyReason> {
    let host = match request.host {
        Some(raw) => Some(parse_authority(raw, host_buf).map_err(|_| DenyReason::InvalidHost)?),
        None => None,
    };
    let sni = match request.sni {
        Some(raw) => match parse_host(raw, sni_buf).map_err(|_| DenyReason::InvalidHost)? {
            Host::Ip(_) if request.protocol == RequestProtocol::Tls => None,
            host => Some(Authority { host, port: None }),
        },
        None => None,
    };
    match (host, sni) {
        (Some(h), Some(s)) if h.host != s.host => Err(DenyReason::SniHostMismatch),
        (Some(h), _) => Ok(Some(h)),
        (None, s) => Ok(s),
    }
}

impl Policy {
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Ranks every internal hostname's endpoints once for a proxy in `locality`, so that a
    /// request from there picks an endpoint in O(log n). Requests that name another locality
    /// still get the right answer, by the linear path.
    pub fn prepare_for(&mut self, locality: Option<Locality>) {
        let routing = self.services.iter_mut().filter_map(|s| s.routing_mut());
        for routing in routing.filter(|r| !r.endpoints.is_empty()) {
            let mapping = failover_for(&routing.failover, locality.as_ref());
            routing.ranked = Some(Ranked::new(&routing.endpoints, locality.as_ref(), mapping));
        }
        self.prepared_for = locality;
    }

    /// Sets which proxy this policy runs in, as the filter learns it from its node: the role,
    /// and for a sidecar whether a route to the egress gateway exists.
    pub fn set_proxy_role(&mut self, role: Role, gateway_routes: GatewayRoutes) {
        self.settings.role = role;
        self.settings.gateway_routes = gateway_routes;
    }

    /// The number of external services loaded.
    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// Service `index` with what the tables hold for it.
    pub(crate) fn service(&self, index: u32) -> Option<Service<'_>> {
        let at = index as usize;
        let compiled = self.services.get(at)?;
        let ports_start = match at.checked_sub(1) {
            Some(before) => self.services.get(before)?.ports_end as usize,
            None => 0,
        };
        Some(Service {
            name: self.names.get(at)?,
            compiled,
            ports: self.ports.get(ports_start..compiled.ports_end as usize)?,
            ports_start: u32::try_from(ports_start).ok()?,
            extras: &self.port_extras,
        })
    }

    /// Whether a caller in `view` sees service `index` (`None`: the bundle has one view),
    /// read from its view list alone; `false` for an index the tables do not hold. The rest of
    /// the service (its name, its ports) is read by [`Policy::service`]; that every service
    /// has them, and that every view list is valid and not empty, `Policy::check` made sure
    /// of when the tables were decoded.
    fn sees(&self, index: u32, view: Option<u16>) -> bool {
        let Some(compiled) = self.services.get(index as usize) else {
            return false;
        };
        let Some(view) = view else {
            return true;
        };
        match compiled.views.checked_sub(1) {
            None => true,
            Some(list) => self
                .view_lists
                .get(list as usize)
                .is_some_and(|views| views.contains(&view)),
        }
    }

    /// Decides one request or connection, with every endpoint healthy and the first choice
    /// among equals (what `explain` shows).
    pub fn decide<'p>(&'p self, request: &Request<'_>) -> Decision<'p> {
        self.decide_with(request, &AllHealthy, 0)
    }

    /// Decides one request or connection. For an internal hostname, `health` says which
    /// endpoints are ejected and `pick` (a counter or a random number) spreads requests over
    /// the closest healthy endpoints by weight.
    pub fn decide_with<'p>(
        &'p self,
        request: &Request<'_>,
        health: &dyn Health,
        pick: u64,
    ) -> Decision<'p> {
        let (mut host_buf, mut sni_buf) = (HostBuf::new(), HostBuf::new());
        let authority = match authority(request, &mut host_buf, &mut sni_buf) {
            Ok(authority) => authority,
            Err(reason) => return Decision::deny(reason),
        };
        let port = request
            .port
            .or(authority.and_then(|a| a.port))
            .or(request.protocol.default_port())
            .unwrap_or(0);

        let gateway = self.settings.role == Role::Gateway;
        let named_ip = match authority.map(|a| a.host) {
            Some(Host::Ip(ip)) => Some(ip),
            _ => None,
        };
        // Never a destination, whether named or dialled: a connection decided on a name
        // can still fall back to the dialled address.
        if named_ip.is_some_and(is_unspecified) || request.destination.is_some_and(is_unspecified) {
            return Decision::deny(DenyReason::UnspecifiedAddress);
        }
        let by_name = match authority.map(|a| a.host) {
            Some(Host::Name(name)) => self
                .hosts
                .lookup(name)
                .map(|(set, _)| (self.sets.get(set), MatchedOn::Host)),
            Some(Host::Ip(ip)) => self.by_address(ip),
            None => None,
        };
        // The dialled address, and the service it stands for when it is a virtual address
        // (looked up once).
        let dialled = request.destination.map(crate::host::canonical_ip);
        let dialled_owner = dialled.and_then(|ip| self.virtual_addresses.get(&ip));
        // Sent to a virtual address: whatever the request names must be what that address
        // stands for (one of its service's hosts, or the address itself). Otherwise the name
        // would be decided and the address routed (Istio), or the address decided and the
        // name carried upstream in `Host` or the server name (a shared front end).
        if let Some(owner) = dialled_owner {
            let names_owner = match (authority.map(|a| a.host), by_name) {
                (None, _) => true,
                (Some(Host::Name(_)), found) => found.is_some_and(|(c, _)| c.contains(owner)),
                (Some(Host::Ip(_)), Some((c, MatchedOn::VirtualAddress))) => c.contains(owner),
                (Some(Host::Ip(_)), _) => false,
            };
            if !names_owner {
                return Decision::Deny(Denial {
                    reason: DenyReason::NameMismatch,
                    service: None,
                    policy: None,
                });
            }
        }
        // The caller's workspace view: what another workspace registers, and does not share,
        // is not registered for it.
        let view = self
            .views
            .as_ref()
            .map(|v| v.of(request.client, &self.settings.trust_domain));
        let visible = |found: (&'p [u32], MatchedOn)| {
            found.0.iter().any(|&i| self.sees(i, view)).then_some(found)
        };
        // An IP literal names the destination; only a name falls back to the dialled address
        // (looked up only when the name found nothing the caller sees).
        let by_destination = || match (authority.map(|a| a.host), dialled_owner) {
            (Some(Host::Ip(_)), _) => None,
            (_, Some(owner)) => Some((std::slice::from_ref(owner), MatchedOn::VirtualAddress)),
            (_, None) => dialled
                .and_then(|ip| self.lookup_ip(ip))
                .map(|set| (self.sets.get(set), MatchedOn::Address)),
        };
        let (found, registered) = match by_name.map(visible) {
            Some(Some(found)) => (Some(found), true),
            named => {
                let dialled = by_destination();
                (
                    dialled.and_then(visible),
                    named.is_some() || dialled.is_some(),
                )
            }
        };
        // Registered, but only in workspaces that do not share it with the caller's: denied,
        // whatever the outbound mode (passing it would bypass its access policies).
        if found.is_none() && registered {
            return Decision::deny(DenyReason::NotInWorkspace);
        }
        let Some((candidates, matched_on)) = found else {
            // The gateway is no general proxy, whatever the outbound mode.
            if gateway {
                return Decision::deny(DenyReason::NotGatewayRouted);
            }
            return self.unregistered(request, dialled);
        };
        // The candidates the caller sees (usually one): a declared port in any of them before
        // a gateway route's portMatch; the first of them names the service a port is not
        // declared for.
        let seen = || {
            candidates
                .iter()
                .filter(|&&i| self.sees(i, view))
                .filter_map(|&i| self.service(i))
        };
        let declared = seen().find_map(|s| s.declared_port(port).map(|p| (s, p)));
        let matched = || seen().find_map(|s| s.matched_port(port).map(|p| (s, p)));
        if let Some((service, p)) = declared.or_else(matched) {
            if gateway && !gateway_forwards(p, request.protocol) {
                return Decision::Deny(Denial {
                    reason: DenyReason::NotGatewayRouted,
                    service: Some(ServiceMatch::of(&self.hosts, service, p, matched_on)),
                    policy: None,
                });
            }
            let decision = self.check_access(service, p, matched_on, request);
            return self.route(decision, service, p, request, health, pick);
        }
        Decision::Deny(Denial {
            reason: DenyReason::PortNotDeclared,
            service: seen().next().map(|s| ServiceMatch {
                service: s.name,
                matched_on,
                host: s.host().and_then(|h| self.hosts.exact_host(h)),
                port,
                protocol: None,
                via_gateway: false,
                tls_cluster: None,
            }),
            policy: None,
        })
    }

    /// The services an address finds: the one a virtual address stands for, else those whose
    /// addresses hold it (longest prefix).
    fn by_address(&self, ip: IpAddr) -> Option<(&[u32], MatchedOn)> {
        let ip = crate::host::canonical_ip(ip);
        if let Some(index) = self.virtual_addresses.get(&ip) {
            return Some((std::slice::from_ref(index), MatchedOn::VirtualAddress));
        }
        self.lookup_ip(ip)
            .map(|set| (self.sets.get(set), MatchedOn::Address))
    }

    /// What Warden's DNS answers for `name` (normalised): the virtual addresses of the
    /// service whose exact host it is, and that service. Names matched only by a wildcard
    /// have none.
    pub fn virtual_addresses_of(&self, name: &str) -> Option<(&[IpAddr], &ResourceName)> {
        let (set, HostMatch::Exact) = self.hosts.lookup(name)? else {
            return None;
        };
        self.sets
            .get(set)
            .iter()
            .filter_map(|&i| self.service(i))
            .find(|s| !s.virtual_addresses().is_empty())
            .map(|s| (s.compiled.virtual_addresses(), s.name))
    }

    pub(crate) fn lookup_ip(&self, ip: IpAddr) -> Option<&ServiceSet> {
        match crate::host::canonical_ip(ip) {
            IpAddr::V4(v4) => self.v4.lookup(u32::from(v4)),
            IpAddr::V6(v6) => self.v6.lookup(u128::from(v6)),
        }
    }

    fn unregistered(&self, request: &Request<'_>, dialled: Option<IpAddr>) -> Decision<'_> {
        if self.in_mesh(request, dialled) {
            return Decision::Allow(Permit {
                reason: AllowReason::InMesh,
                service: None,
                policy: None,
                dry_run_denial: None,
                endpoint: None,
            });
        }
        match self.settings.outbound_mode {
            OutboundMode::AllowAny => Decision::Allow(Permit {
                reason: AllowReason::Passthrough,
                service: None,
                policy: None,
                dry_run_denial: None,
                endpoint: None,
            }),
            OutboundMode::RegistryOnly => Decision::deny(DenyReason::NotInRegistry),
        }
    }

    /// Whether an unregistered request stays inside the mesh, judged on where the proxy
    /// connects it, never on the name it carries:
    /// - HTTP routed by Istio (`request.cluster`): to the cluster of a service under a mesh
    ///   domain (`outbound|PORT|SUBSET|HOST`), or through `PassthroughCluster` to a dialled
    ///   address inside the mesh's addresses. Any other cluster (a ServiceEntry's, Warden's
    ///   own) is not the mesh.
    /// - A connection (TCP, TLS): to a dialled address inside the mesh's addresses, where the
    ///   proxy connects it (Istio's cluster for that address holds the mesh's own endpoints).
    /// - HTTP with no mesh route (a local proxy goes where the name resolves): never.
    fn in_mesh(&self, request: &Request<'_>, dialled: Option<IpAddr>) -> bool {
        let settings = &self.settings;
        let in_addresses =
            || dialled.is_some_and(|ip| settings.mesh_addresses.iter().any(|n| n.contains(&ip)));
        let in_domains = |host: &str| {
            let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
            settings.mesh_domains.iter().any(|d| {
                host.strip_suffix(&**d)
                    .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
            })
        };
        match (request.protocol, request.cluster) {
            (RequestProtocol::Http, Some(warden_bundle::wire::ISTIO_PASSTHROUGH_CLUSTER)) => {
                in_addresses()
            }
            // A mesh service's cluster; where the mesh's addresses are known and the dialled
            // address too (traffic capture), the client must have dialled inside them (a
            // ServiceEntry with an in-mesh name and `resolution: NONE` goes where it dialled).
            (RequestProtocol::Http, Some(cluster)) => {
                istio_service_host(cluster).is_some_and(in_domains)
                    && (settings.mesh_addresses.is_empty() || dialled.is_none() || in_addresses())
            }
            (RequestProtocol::Http, None) => false,
            // TLS: Istio routes a connection by its server name, so one naming somewhere
            // outside the mesh is not the mesh's, whatever address it was dialled to.
            (RequestProtocol::Tls, _) => in_addresses() && request.sni.is_none_or(in_domains),
            (RequestProtocol::Tcp, _) => in_addresses(),
        }
    }

    /// Adds the endpoint to a permit for an internal hostname, or denies when none is healthy.
    fn route<'p>(
        &'p self,
        decision: Decision<'p>,
        service: Service<'p>,
        port: Port<'p>,
        request: &Request<'_>,
        health: &dyn Health,
        pick: u64,
    ) -> Decision<'p> {
        let Decision::Allow(mut permit) = decision else {
            return decision;
        };
        if port.via_gateway() && self.settings.role == Role::Sidecar {
            // The gateway picks the endpoint and originates TLS; the sidecar's only job is to
            // send the request there, which it can do for HTTP with a gateway route.
            let routes = self.settings.gateway_routes;
            let routable = match request.protocol {
                RequestProtocol::Http => routes.http,
                // TLS passes through the gateway by server name; plain TCP carries no name
                // to tell the gateway where it is going.
                RequestProtocol::Tls => routes.tls && request.sni.is_some(),
                RequestProtocol::Tcp => false,
            };
            if routable {
                return Decision::Allow(permit);
            }
            return Decision::Deny(Denial {
                reason: DenyReason::MustUseGateway,
                service: permit.service,
                policy: permit.policy,
            });
        }
        if service.endpoints().is_empty() {
            return Decision::Allow(permit);
        }
        let locality = request.locality.or(self.settings.locality.as_ref());
        let vantage = Vantage {
            proxy: locality,
            mapping: failover_for(service.failover(), locality),
        };
        let ranked = service
            .ranked()
            .filter(|_| self.prepared_for.as_ref() == locality);
        match choose(service, port, ranked, vantage, health, pick) {
            Some(choice) => {
                permit.endpoint = Some(choice);
                Decision::Allow(permit)
            }
            None => Decision::Deny(Denial {
                reason: DenyReason::NoHealthyEndpoint,
                service: permit.service,
                policy: permit.policy,
            }),
        }
    }

    /// Every endpoint of the service a request matches, closest first, with its proximity to
    /// `locality` (for `explain`).
    pub fn ranking<'p>(
        &'p self,
        decision: &Decision<'p>,
        locality: Option<&Locality>,
    ) -> Vec<EndpointChoice<'p>> {
        let Some(matched) = decision.service() else {
            return Vec::new();
        };
        let Some(service) = (0..)
            .map_while(|i| self.service(i))
            .find(|s| std::ptr::eq(s.name, matched.service))
        else {
            return Vec::new();
        };
        let Some(port) = service.declared_port(matched.port) else {
            return Vec::new();
        };
        let vantage = Vantage {
            proxy: locality,
            mapping: failover_for(service.failover(), locality),
        };
        let mut out: Vec<EndpointChoice<'p>> = (0..service.endpoints().len())
            .filter_map(|index| EndpointChoice::of(service, port, index, vantage))
            .collect();
        out.sort_by_key(|c| (c.proximity, c.index));
        out
    }

    fn check_access<'p>(
        &'p self,
        service: Service<'p>,
        port: Port<'p>,
        matched_on: MatchedOn,
        request: &Request<'_>,
    ) -> Decision<'p> {
        let matched = Some(ServiceMatch::of(&self.hosts, service, port, matched_on));
        let permit = |reason, policy, dry_run_denial| {
            Decision::Allow(Permit {
                reason,
                service: matched,
                policy,
                dry_run_denial,
                endpoint: None,
            })
        };
        match evaluate(&self.policies, port.policies(), request) {
            AccessOutcome::Unrestricted => permit(AllowReason::Registered, None, None),
            AccessOutcome::Allowed(p) => permit(AllowReason::ClientAllowed, Some(p), None),
            AccessOutcome::DryRunDenied(p) => permit(
                AllowReason::Registered,
                Some(p),
                Some(DenyReason::ClientNotAllowed),
            ),
            AccessOutcome::Denied(p) => Decision::Deny(Denial {
                reason: DenyReason::ClientNotAllowed,
                service: matched,
                policy: Some(p),
            }),
        }
    }
}
