//! One request as a person (`explain`) or a test file (`test`) describes it, decided and
//! routed exactly as the filter decides it. `explain`, `test` and `diff` all go through here.

use std::net::IpAddr;

use anyhow::bail;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warden_bundle::wire;
use warden_bundle::{Locality, Role};
use warden_engine::{
    parse_authority, AllHealthy, Cluster, Decision, Facts, Host, HostBuf, Listener, Policy,
    RequestProtocol, Route, Target,
};

/// How the proxy sees the traffic.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolArg {
    /// HTTP (the proxy sees the Host header, the method and the path).
    #[default]
    Http,
    /// A TCP connection (the proxy sees the address and port dialled).
    Tcp,
    /// A TLS connection (the proxy sees the server name, and the address dialled).
    Tls,
}

impl ProtocolArg {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }
}

/// Which proxy decides.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RoleArg {
    /// The client's sidecar (the client's identity is `from`).
    #[default]
    Sidecar,
    /// The egress gateway (`from` is the identity in the caller's certificate).
    Gateway,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Sidecar => Role::Sidecar,
            RoleArg::Gateway => Role::Gateway,
        }
    }
}

/// One request or connection, as `explain`'s flags and a decision test's `request` give it.
#[derive(Debug, Clone, Default, clap::Args, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Query {
    /// The client: a SPIFFE ID (spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT), or
    /// NAMESPACE/SERVICE_ACCOUNT in the bundle's trust domain. Omit for a client without an
    /// identity.
    #[arg(long, value_name = "SPIFFE_ID|NS/SA")]
    #[serde(default)]
    pub from: Option<String>,
    /// The destination: a host, an IP address, or either with a port (HOST:PORT, [IPv6]:PORT).
    #[arg(long, value_name = "HOST_OR_IP[:PORT]")]
    pub to: String,
    /// How the proxy sees the traffic.
    #[arg(long, value_enum, default_value_t)]
    #[serde(default)]
    pub protocol: ProtocolArg,
    /// The HTTP method.
    #[arg(long, value_name = "M")]
    #[serde(default)]
    pub method: Option<String>,
    /// The HTTP path (with query string, if any).
    #[arg(long, value_name = "P")]
    #[serde(default)]
    pub path: Option<String>,
    /// The TLS server name the client sends.
    #[arg(long, value_name = "NAME")]
    #[serde(default)]
    pub sni: Option<String>,
    /// The client's own IP address.
    #[arg(long, value_name = "IP")]
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub source_ip: Option<IpAddr>,
    /// The proxy's locality.
    #[arg(long, value_name = "REGION[/ZONE[/SUBZONE]]")]
    #[serde(default)]
    pub locality: Option<String>,
    /// Which proxy decides: a sidecar (the client's identity is `from`) or the egress gateway
    /// (`from` is the identity in the caller's certificate).
    #[arg(long, value_enum, default_value_t)]
    #[serde(default)]
    pub role: RoleArg,
    /// A sidecar without a route to the egress gateway (rendered without `--gateway`): traffic
    /// to gateway-routed ports is then denied `must_use_gateway`.
    #[arg(long)]
    #[serde(default)]
    pub no_gateway_route: bool,
    /// HTTP under Istio: the cluster Istio's route chose (`outbound|9080||reviews.default.svc.cluster.local`,
    /// `PassthroughCluster`), which says whether the request stays in the mesh.
    #[arg(long, value_name = "NAME")]
    #[serde(default)]
    pub cluster: Option<String>,
}

/// A TCP destination given by name, resolved as Warden's DNS would resolve it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolved {
    pub name: String,
    pub address: IpAddr,
    /// `namespace/name` of the service the virtual address stands for.
    pub service: String,
}

/// A query decided: the verdict, where an allowed request goes, and what the request was once
/// the proxy's view of it was worked out.
#[derive(Debug, Clone)]
pub struct Outcome<'p> {
    /// The policy that decided, set up as the query's proxy.
    pub policy: &'p Policy,
    pub decision: Decision<'p>,
    /// Where an allowed request goes (absent when denied).
    pub route: Option<Route<'p>>,
    /// The client identity, expanded to a SPIFFE ID.
    pub client: Option<String>,
    pub protocol: RequestProtocol,
    /// The address dialled, when the proxy decides on one.
    pub destination: Option<IpAddr>,
    pub port: Option<u16>,
    pub resolved: Option<Resolved>,
}

/// The client a query names, as a SPIFFE ID: `NAMESPACE/SERVICE_ACCOUNT` is expanded in
/// `trust_domain`; anything else must be a SPIFFE ID.
pub fn client_identity(from: &str, trust_domain: &str) -> anyhow::Result<String> {
    let id = if from.starts_with("spiffe://") {
        from.to_owned()
    } else {
        match from.split_once('/') {
            Some((ns, sa)) if !ns.is_empty() && !sa.is_empty() && !sa.contains('/') => {
                format!("spiffe://{trust_domain}/ns/{ns}/sa/{sa}")
            }
            _ => bail!(
                "from {from:?} is neither a SPIFFE ID (spiffe://{trust_domain}/ns/NAMESPACE/sa/SERVICE_ACCOUNT) nor NAMESPACE/SERVICE_ACCOUNT"
            ),
        }
    };
    warden_engine::validate::spiffe_id(&id, false)
        .map_err(|e| anyhow::anyhow!("from {from:?}: {e}"))?;
    Ok(id)
}

impl Query {
    /// Decides the query with `policy`, as the proxy in `self.role` would (all endpoints
    /// healthy, the first choice among equals).
    pub fn decide<'p>(&self, policy: &'p mut Policy) -> anyhow::Result<Outcome<'p>> {
        let routes = if self.no_gateway_route {
            warden_engine::GatewayRoutes::NONE
        } else {
            warden_engine::GatewayRoutes::ALL
        };
        policy.set_proxy_role(self.role.into(), routes);
        let policy: &'p Policy = policy;
        let client = self
            .from
            .as_deref()
            .map(|from| client_identity(from, &policy.settings().trust_domain))
            .transpose()?;
        let locality = self.locality.as_deref().map(Locality::parse);
        let (mut facts, resolved) = self.facts(policy, locality.as_ref())?;
        facts.identity = client.as_deref();
        facts.peer = client.as_deref();
        let mut request = facts.request();
        request.source = self.source_ip;
        let mut route = None;
        let decision =
            policy.decide_and_route(&request, facts.listener(), false, &AllHealthy, 0, |r| {
                route = Some(r.clone());
                true
            });
        let (protocol, destination, port) = (request.protocol, request.destination, request.port);
        Ok(Outcome {
            policy,
            route: route.filter(|_| decision.is_allowed()),
            decision,
            client: client.clone(),
            protocol,
            destination,
            port,
            resolved,
        })
    }

    /// What a proxy would know of the request; the engine request is built from it exactly as
    /// the filter builds it ([`Facts::request`]). A TCP destination given by name is the
    /// address Warden's DNS answers for it. The identity is filled in by the caller.
    fn facts<'a>(
        &'a self,
        policy: &Policy,
        locality: Option<&'a Locality>,
    ) -> anyhow::Result<(Facts<'a>, Option<Resolved>)> {
        let mut facts = Facts {
            role: self.role.into(),
            method: self.method.as_deref(),
            path: self.path.as_deref(),
            server_name: self.sni.as_deref(),
            locality,
            ..Facts::default()
        };
        let protocol = match self.protocol {
            ProtocolArg::Http => {
                facts.listener = Some(Listener::Http);
                facts.authority = Some(&self.to);
                facts.cluster = self.cluster.as_deref();
                return Ok((facts, None));
            }
            ProtocolArg::Tcp => RequestProtocol::Tcp,
            ProtocolArg::Tls => RequestProtocol::Tls,
        };
        facts.listener = Some(match self.role {
            RoleArg::Gateway => Listener::GatewayPassthrough,
            RoleArg::Sidecar => Listener::Tcp,
        });
        // A connection carries no host name: the proxy sees the address it was sent to, and
        // for TLS, the server name.
        let mut buf = HostBuf::new();
        let authority = match parse_authority(&self.to, &mut buf) {
            Ok(authority) => authority,
            // A malformed server name is something a client can send: the engine decides it
            // (`invalid_host`), as the filter would.
            Err(_) if protocol == RequestProtocol::Tls => {
                let (host, port) = match self.to.rsplit_once(':') {
                    Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
                        (host, port.parse().ok())
                    }
                    _ => (self.to.as_str(), None),
                };
                facts.server_name = Some(self.sni.as_deref().unwrap_or(host));
                facts.port = port;
                return Ok((facts, None));
            }
            Err(err) => bail!("to {:?}: {err}", self.to),
        };
        facts.port = authority.port;
        let mut resolved = None;
        match authority.host {
            Host::Ip(ip) => facts.destination = Some(ip),
            // The server name is the host alone; the port is the one connected to.
            Host::Name(_) if protocol == RequestProtocol::Tls && self.sni.is_none() => {
                facts.server_name = Some(self.to.rsplit_once(':').map_or(&self.to, |(h, _)| h));
            }
            // A client resolves the name through Warden's DNS (or Istio's, from the
            // ServiceEntry): it connects to the name's virtual address, IPv4 first.
            Host::Name(name) => match policy.virtual_addresses_of(name) {
                Some((addresses, service)) => {
                    let address = addresses
                        .iter()
                        .find(|a| a.is_ipv4())
                        .or(addresses.first())
                        .copied()
                        .ok_or_else(|| anyhow::anyhow!("to {:?}: no address", self.to))?;
                    facts.destination = Some(address);
                    resolved = Some(Resolved {
                        name: name.to_owned(),
                        address,
                        service: service.to_string(),
                    });
                }
                None => bail!(
                    "to {:?} names a host that has no virtual address in this bundle, and a {} \
                     connection carries no host name; give the IP address the client connects to{}",
                    self.to,
                    protocol.as_str(),
                    if protocol == RequestProtocol::Tcp {
                        ", or the tls protocol"
                    } else {
                        ""
                    }
                ),
            },
        }
        if facts.port.is_none() && protocol == RequestProtocol::Tcp {
            bail!(
                "to {:?}: a TCP destination needs a port (ADDRESS:PORT)",
                self.to
            );
        }
        Ok((facts, resolved))
    }
}

/// The cluster a route names, as the rendered configuration calls it.
pub fn cluster_name<'a>(cluster: &Cluster<'a>) -> &'a str {
    match cluster {
        Cluster::EgressGateway => wire::GATEWAY_CLUSTER,
        Cluster::EgressGatewayPassthrough => wire::GATEWAY_TCP_CLUSTER,
        Cluster::TlsOrigination(name) => name,
        Cluster::ByName => wire::TCP_BY_NAME_CLUSTER,
        Cluster::ByAddress => wire::ORIGINAL_DST_CLUSTER,
    }
}

/// `allow` or `deny` (a dry-run denial is an allow).
pub fn verdict(decision: &Decision<'_>) -> &'static str {
    if decision.is_allowed() {
        "allow"
    } else {
        "deny"
    }
}

/// A decision as `explain --output json` and `test --output json` print it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionOutput {
    pub decision: &'static str,
    pub reason: &'static str,
    pub dry_run: bool,
    /// `namespace/name` of the matched ExternalService.
    pub service: Option<String>,
    /// `namespace/name` of the AccessPolicy that decided.
    pub policy: Option<String>,
    /// For an internal hostname, the endpoint chosen (all endpoints healthy).
    pub endpoint: Option<EndpointOutput>,
    /// The port is routed through the egress gateway.
    pub via_gateway: bool,
    /// The cluster that originates TLS for this port (absent: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cluster: Option<String>,
    /// Where an allowed request goes (absent when denied).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteOutput>,
    /// A TCP destination given by name: the virtual address it resolves to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Resolved>,
}

/// The route the filter applies: all absent means "as sent".
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteOutput {
    pub cluster: Option<String>,
    /// `host:port` or `ip:port`.
    pub target: Option<String>,
    pub authority: Option<String>,
    pub server_name: Option<String>,
}

/// `{address, port, locality}` of a chosen endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointOutput {
    pub address: String,
    pub port: u16,
    pub locality: String,
}

impl Outcome<'_> {
    pub fn to_output(&self) -> DecisionOutput {
        let decision = &self.decision;
        DecisionOutput {
            decision: verdict(decision),
            reason: decision.reason(),
            dry_run: decision.is_dry_run(),
            service: decision.service().map(|s| s.service.to_string()),
            policy: decision.policy().map(|p| p.to_string()),
            endpoint: decision.endpoint().map(|e| EndpointOutput {
                address: e.address.to_string(),
                port: e.port,
                locality: e.locality.to_string(),
            }),
            via_gateway: decision.service().is_some_and(|s| s.via_gateway),
            tls_cluster: decision
                .service()
                .and_then(|s| s.tls_cluster)
                .map(str::to_owned),
            route: self.route.as_ref().map(|r| RouteOutput {
                cluster: r.cluster.as_ref().map(|c| cluster_name(c).to_owned()),
                target: r.target.as_ref().map(Target::to_string),
                authority: r.authority.map(str::to_owned),
                server_name: r.server_name.clone(),
            }),
            resolved: self.resolved.clone(),
        }
    }
}

/// `host:port`, with an IPv6 address in brackets.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
