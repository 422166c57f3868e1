//! Decisions: a permit or a denial, each carrying the resources that decided it.
//!
//! Logs, metrics, the `explain` command and the filter's denial response all read the same
//! value, so they cannot disagree.

use std::fmt;

use warden_bundle::Protocol;

use crate::name::ResourceName;
use crate::selection::EndpointChoice;

/// Why a request was allowed. Codes are stable: dashboards and alerts key on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllowReason {
    /// The destination is a registered service that no access policy restricts.
    Registered,
    /// An access policy rule allowed the client.
    ClientAllowed,
    /// The destination is not registered and the outbound mode is `ALLOW_ANY`.
    Passthrough,
    /// The destination is not registered and the proxy connects it inside the mesh (the
    /// bundle's `mesh` scope): the mesh's own traffic, whatever the outbound mode.
    InMesh,
}

impl AllowReason {
    pub const ALL: [Self; 4] = [
        Self::Registered,
        Self::ClientAllowed,
        Self::Passthrough,
        Self::InMesh,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::ClientAllowed => "client_allowed",
            Self::Passthrough => "passthrough",
            Self::InMesh => "in_mesh",
        }
    }
}

/// Why a request was (or, in dry-run, would have been) denied. Codes are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// No service registers the destination and the outbound mode is `REGISTRY_ONLY`.
    NotInRegistry,
    /// The destination is registered, but not on this port.
    PortNotDeclared,
    /// An access policy covers the service and no rule allows this client.
    ClientNotAllowed,
    /// The host is not a valid name or address.
    InvalidHost,
    /// The TLS server name and the HTTP authority name different hosts.
    SniHostMismatch,
    /// The filter has no valid policy and fails closed.
    NoPolicy,
    /// The filter could not steer an allowed request to the destination it was decided on.
    RouteFailed,
    /// Every endpoint behind the internal hostname is ejected.
    NoHealthyEndpoint,
    /// The port is routed through the egress gateway and this traffic would bypass it.
    MustUseGateway,
    /// The destination is an unspecified address (`0.0.0.0/8`, `::`): never a legitimate
    /// destination, and one that operating systems connect to the local host.
    UnspecifiedAddress,
    /// At the egress gateway: the registry does not route this destination, port and
    /// protocol through the gateway (unregistered, no `egressGatewayRoutes`, or TLS
    /// passthrough to a port whose TLS the gateway originates).
    NotGatewayRouted,
    /// The connection was sent to a virtual address, but names (authority or server name) a
    /// host that address does not stand for.
    NameMismatch,
    /// The destination is registered, but in workspaces that do not share it with the
    /// caller's (a bundle for the whole mesh).
    NotInWorkspace,
}

impl DenyReason {
    pub const ALL: [Self; 13] = [
        Self::NotInRegistry,
        Self::PortNotDeclared,
        Self::ClientNotAllowed,
        Self::InvalidHost,
        Self::SniHostMismatch,
        Self::NoPolicy,
        Self::RouteFailed,
        Self::NoHealthyEndpoint,
        Self::MustUseGateway,
        Self::UnspecifiedAddress,
        Self::NotGatewayRouted,
        Self::NameMismatch,
        Self::NotInWorkspace,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::NotInRegistry => "not_in_registry",
            Self::PortNotDeclared => "port_not_declared",
            Self::ClientNotAllowed => "client_not_allowed",
            Self::InvalidHost => "invalid_host",
            Self::SniHostMismatch => "sni_host_mismatch",
            Self::NoPolicy => "no_policy",
            Self::RouteFailed => "route_failed",
            Self::NoHealthyEndpoint => "no_healthy_endpoint",
            Self::MustUseGateway => "must_use_gateway",
            Self::UnspecifiedAddress => "unspecified_address",
            Self::NotGatewayRouted => "not_gateway_routed",
            Self::NameMismatch => "name_mismatch",
            Self::NotInWorkspace => "not_in_workspace",
        }
    }

    /// The HTTP status a denial answers with.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidHost => 400,
            Self::NoPolicy | Self::RouteFailed | Self::NoHealthyEndpoint => 503,
            _ => 403,
        }
    }

    /// A sentence for people: what happened and what would change it.
    pub fn message(self) -> &'static str {
        match self {
            Self::NotInRegistry => {
                "the destination is not registered and outbound traffic is REGISTRY_ONLY; \
                 add an ExternalService for it"
            }
            Self::PortNotDeclared => {
                "the destination is registered, but not on this port; declare the port in \
                 its ExternalService"
            }
            Self::ClientNotAllowed => {
                "an access policy covers this service and none of its rules allows this \
                 client"
            }
            Self::InvalidHost => "the host is not a valid host name or address",
            Self::SniHostMismatch => "the TLS server name and the HTTP authority differ",
            Self::NoPolicy => "the egress filter has no valid policy and fails closed",
            Self::RouteFailed => {
                "the egress filter could not steer the request to the destination it decided on"
            }
            Self::MustUseGateway => {
                "this port of the service is reached only through the egress gateway, and this \
                 traffic would go around it; send it as HTTP through a sidecar with a gateway route"
            }
            Self::NoHealthyEndpoint => {
                "every endpoint behind this internal hostname is ejected as unhealthy; none is tried blindly"
            }
            Self::UnspecifiedAddress => {
                "the destination is an unspecified address (0.0.0.0/8 or ::), which reaches the \
                 local host; it is never a legitimate destination"
            }
            Self::NotGatewayRouted => {
                "the egress gateway forwards only what the registry routes through it: a \
                 registered service, on a port with egressGatewayRoutes, in the form it \
                 declares (TLS the gateway originates cannot pass through)"
            }
            Self::NameMismatch => {
                "the connection was sent to the virtual address of one service but names \
                 another host; resolve the name you mean and connect to its address"
            }
            Self::NotInWorkspace => {
                "the destination is registered in a workspace that does not share it with the \
                 caller's; export it from its workspace and import it into the caller's"
            }
        }
    }
}

/// What a request's service was found by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedOn {
    /// The host name (authority or SNI), exactly or by wildcard.
    Host,
    /// An address: the host was an IP literal, or the destination the client connected to.
    Address,
    /// A virtual address (the builder's, standing for the service's hosts): the IP literal or
    /// the destination. Traffic goes to the service's endpoint or host, never to the address.
    VirtualAddress,
}

/// The registered service (and port) a request matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceMatch<'p> {
    pub service: &'p ResourceName,
    /// Whether the host or an address found the service. When the address did, traffic must
    /// go to that address, whatever name the request carries.
    pub matched_on: MatchedOn,
    /// The service's first exact host: where a match on a virtual address connects when the
    /// service has no endpoints.
    pub host: Option<&'p str>,
    pub port: u16,
    /// The port's declared protocol; `None` when the port is not declared.
    pub protocol: Option<Protocol>,
    /// Traffic to this port must leave through an egress gateway.
    pub via_gateway: bool,
    /// At the egress gateway: the cluster that originates TLS for this port.
    pub tls_cluster: Option<&'p str>,
}

/// An allowed request, with what allowed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permit<'p> {
    pub reason: AllowReason,
    pub service: Option<ServiceMatch<'p>>,
    pub policy: Option<&'p ResourceName>,
    /// Set when a dry-run access policy would have denied the request.
    pub dry_run_denial: Option<DenyReason>,
    /// For an internal hostname: the endpoint the request goes to.
    pub endpoint: Option<EndpointChoice<'p>>,
}

/// A denied request, with what denied it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denial<'p> {
    pub reason: DenyReason,
    pub service: Option<ServiceMatch<'p>>,
    pub policy: Option<&'p ResourceName>,
}

/// The engine's answer for one request or connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'p> {
    Allow(Permit<'p>),
    Deny(Denial<'p>),
}

impl<'p> Decision<'p> {
    pub(crate) fn deny(reason: DenyReason) -> Self {
        Self::Deny(Denial {
            reason,
            service: None,
            policy: None,
        })
    }

    /// This request denied after all, for `reason` (routing found nowhere to send it as
    /// decided), keeping the service and policy that allowed it for provenance.
    pub fn denied_by(self, reason: DenyReason) -> Self {
        Self::Deny(Denial {
            reason,
            service: self.service(),
            policy: self.policy(),
        })
    }

    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow(_))
    }

    /// The reason code: for a dry-run permit, the denial it reports.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Allow(p) => p.dry_run_denial.map_or(p.reason.code(), DenyReason::code),
            Self::Deny(d) => d.reason.code(),
        }
    }

    /// Whether a dry-run policy would have denied this allowed request.
    pub fn is_dry_run(&self) -> bool {
        matches!(self, Self::Allow(p) if p.dry_run_denial.is_some())
    }

    pub fn service(&self) -> Option<ServiceMatch<'p>> {
        match self {
            Self::Allow(p) => p.service,
            Self::Deny(d) => d.service,
        }
    }

    /// For an internal hostname, the endpoint an allowed request goes to.
    pub fn endpoint(&self) -> Option<EndpointChoice<'p>> {
        match self {
            Self::Allow(p) => p.endpoint,
            Self::Deny(_) => None,
        }
    }

    pub fn policy(&self) -> Option<&'p ResourceName> {
        match self {
            Self::Allow(p) => p.policy,
            Self::Deny(d) => d.policy,
        }
    }

    /// A sentence for people explaining the decision.
    pub fn message(&self) -> String {
        match self {
            Self::Deny(d) => d.reason.message().to_owned(),
            Self::Allow(Permit {
                dry_run_denial: Some(r),
                ..
            }) => format!(
                "allowed because the policy is in dry-run; enforced, {}",
                r.message()
            ),
            Self::Allow(p) => match p.reason {
                AllowReason::Registered => "the destination is registered and unrestricted".into(),
                AllowReason::ClientAllowed => "an access policy rule allows this client".into(),
                AllowReason::Passthrough => {
                    "the destination is not registered and outbound traffic is ALLOW_ANY".into()
                }
                AllowReason::InMesh => {
                    "the destination is not registered and the proxy connects it inside the mesh"
                        .into()
                }
            },
        }
    }
}

impl fmt::Display for Decision<'_> {
    /// One line for logs: `deny client_not_allowed service=pay/db policy=pay/db-access`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.is_allowed() { "allow" } else { "deny" };
        write!(f, "{verdict} {}", self.reason())?;
        if self.is_dry_run() {
            f.write_str(" dry_run=true")?;
        }
        if let Some(s) = self.service() {
            write!(f, " service={} port={}", s.service, s.port)?;
        }
        if let Some(p) = self.policy() {
            write!(f, " policy={p}")?;
        }
        if self.service().is_some_and(|s| s.via_gateway) {
            f.write_str(" via=egress-gateway")?;
        }
        if let Some(e) = self.endpoint() {
            write!(f, " endpoint={}:{} ({})", e.address, e.port, e.endpoint)?;
        }
        Ok(())
    }
}
