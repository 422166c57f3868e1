//! `bundle-builder explain`: why a request is allowed or denied.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::process::ExitCode;

use anyhow::bail;
use serde::Serialize;
use warden_bundle::wire;
use warden_bundle::{Locality, Role};
use warden_engine::{
    parse_authority, AllHealthy, Cluster, Decision, Facts, Host, HostBuf, Listener, Request,
    RequestProtocol, Route, Target,
};

use crate::cli::{ExplainArgs, OutputFormat, ProtocolArg, RoleArg};

pub fn run(args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let (_, _, mut policy) = crate::bundle_file::load(&args.bundle)?;
    let role = match args.role {
        RoleArg::Sidecar => Role::Sidecar,
        RoleArg::Gateway => Role::Gateway,
    };
    let routes = if args.no_gateway_route {
        warden_engine::GatewayRoutes::NONE
    } else {
        warden_engine::GatewayRoutes::ALL
    };
    policy.set_proxy_role(role, routes);
    let locality = args.locality.as_deref().map(Locality::parse);
    let (facts, resolved) = facts(args, role, locality.as_ref(), &policy)?;
    let mut request = facts.request();
    request.source = args.source_ip;
    // Decided and routed as the filter does (all endpoints healthy, the first pick).
    let mut route = None;
    let decision =
        policy.decide_and_route(&request, facts.listener(), false, &AllHealthy, 0, |r| {
            route = Some(r.clone());
            true
        });
    let route = route.filter(|_| decision.is_allowed());
    let out = match args.output {
        OutputFormat::Json => {
            let mut json = to_json(&decision, route.as_ref());
            json.resolved = resolved.clone();
            serde_json::to_string_pretty(&json)? + "\n"
        }
        OutputFormat::Text => {
            // The ranking a choice came from, when there was a choice.
            let locality = request.locality.or(policy.settings().locality.as_ref());
            let ranking = match decision.endpoint() {
                Some(_) => policy.ranking(&decision, locality),
                None => Vec::new(),
            };
            let resolved = resolved.as_ref().map_or_else(String::new, |r| {
                format!(
                    "resolved: {} -> {} (a virtual address of {})\n",
                    r.name, r.address, r.service
                )
            });
            resolved + &to_text(args, &request, &decision, route.as_ref()) + &ranking_text(&ranking)
        }
    };
    crate::output::print(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// A TCP destination given by name, resolved as Warden's DNS would resolve it.
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    pub name: String,
    pub address: IpAddr,
    /// `namespace/name` of the service the virtual address stands for.
    pub service: String,
}

/// What a proxy would know of the request `--to` and the other flags describe; the engine
/// request is built from it exactly as the filter builds it ([`Facts::request`]). A TCP
/// destination given by name is the address Warden's DNS answers for it.
fn facts<'a>(
    args: &'a ExplainArgs,
    role: Role,
    locality: Option<&'a Locality>,
    policy: &warden_engine::Policy,
) -> anyhow::Result<(Facts<'a>, Option<Resolved>)> {
    let mut facts = Facts {
        role,
        // The identity is the workload's at a sidecar, the certificate's at the gateway.
        identity: args.from.as_deref(),
        peer: args.from.as_deref(),
        method: args.method.as_deref(),
        path: args.path.as_deref(),
        server_name: args.sni.as_deref(),
        locality,
        ..Facts::default()
    };
    let protocol = match args.protocol {
        ProtocolArg::Http => {
            facts.listener = Some(Listener::Http);
            facts.authority = Some(&args.to);
            return Ok((facts, None));
        }
        ProtocolArg::Tcp => RequestProtocol::Tcp,
        ProtocolArg::Tls => RequestProtocol::Tls,
    };
    facts.listener = Some(match role {
        Role::Gateway => Listener::GatewayPassthrough,
        Role::Sidecar => Listener::Tcp,
    });
    // A connection carries no host name: the proxy sees the address it was sent to, and for
    // TLS, the server name.
    let mut buf = HostBuf::new();
    let authority = match parse_authority(&args.to, &mut buf) {
        Ok(authority) => authority,
        // A malformed server name is something a client can send: the engine decides it
        // (`invalid_host`), as the filter would.
        Err(_) if protocol == RequestProtocol::Tls => {
            let (host, port) = match args.to.rsplit_once(':') {
                Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
                    (host, port.parse().ok())
                }
                _ => (args.to.as_str(), None),
            };
            facts.server_name = Some(args.sni.as_deref().unwrap_or(host));
            facts.port = port;
            return Ok((facts, None));
        }
        Err(err) => bail!("--to {:?}: {err}", args.to),
    };
    facts.port = authority.port;
    let mut resolved = None;
    match authority.host {
        Host::Ip(ip) => facts.destination = Some(ip),
        // The server name is the host alone; the port is the one connected to.
        Host::Name(_) if protocol == RequestProtocol::Tls && args.sni.is_none() => {
            facts.server_name = Some(args.to.rsplit_once(':').map_or(&args.to, |(h, _)| h));
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
                    .ok_or_else(|| anyhow::anyhow!("--to {:?}: no address", args.to))?;
                facts.destination = Some(address);
                resolved = Some(Resolved {
                    name: name.to_owned(),
                    address,
                    service: service.to_string(),
                });
            }
            None => bail!(
                "--to {:?} names a host that has no virtual address in this bundle, and a {} \
                 connection carries no host name; give the IP address the client connects to{}",
                args.to,
                protocol.as_str(),
                if protocol == RequestProtocol::Tcp {
                    ", or use --protocol tls"
                } else {
                    ""
                }
            ),
        },
    }
    if facts.port.is_none() && protocol == RequestProtocol::Tcp {
        bail!(
            "--to {:?}: a TCP destination needs a port (ADDRESS:PORT)",
            args.to
        );
    }
    Ok((facts, resolved))
}

/// The cluster a route names, as the rendered configuration calls it.
fn cluster_name<'a>(cluster: &Cluster<'a>) -> &'a str {
    match cluster {
        Cluster::EgressGateway => wire::GATEWAY_CLUSTER,
        Cluster::EgressGatewayPassthrough => wire::GATEWAY_TCP_CLUSTER,
        Cluster::TlsOrigination(name) => name,
        Cluster::ByName => wire::TCP_BY_NAME_CLUSTER,
        Cluster::ByAddress => wire::ORIGINAL_DST_CLUSTER,
    }
}

/// Where an allowed request goes: `as sent`, or the cluster, target, authority and server
/// name the filter sets.
fn route_text(route: &Route<'_>) -> String {
    if route.is_as_is() {
        return "as sent".to_owned();
    }
    let mut parts = Vec::new();
    if let Some(cluster) = &route.cluster {
        parts.push(format!("cluster {}", cluster_name(cluster)));
    }
    if let Some(target) = &route.target {
        parts.push(format!("to {target}"));
    }
    if let Some(authority) = route.authority {
        parts.push(format!("authority {authority}"));
    }
    if let Some(name) = &route.server_name {
        parts.push(format!("server name {name}"));
    }
    parts.join(", ")
}

fn verdict(decision: &Decision<'_>) -> &'static str {
    if decision.is_allowed() {
        "allow"
    } else {
        "deny"
    }
}

/// The `--output json` object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplainOutput {
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
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteOutput {
    pub cluster: Option<String>,
    /// `host:port` or `ip:port`.
    pub target: Option<String>,
    pub authority: Option<String>,
    pub server_name: Option<String>,
}

/// `{address, port, locality}` of a chosen endpoint.
#[derive(Debug, Serialize)]
pub struct EndpointOutput {
    pub address: String,
    pub port: u16,
    pub locality: String,
}

pub fn to_json(decision: &Decision<'_>, route: Option<&Route<'_>>) -> ExplainOutput {
    ExplainOutput {
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
        route: route.map(|r| RouteOutput {
            cluster: r.cluster.as_ref().map(|c| cluster_name(c).to_owned()),
            target: r.target.as_ref().map(Target::to_string),
            authority: r.authority.map(str::to_owned),
            server_name: r.server_name.clone(),
        }),
        resolved: None,
    }
}

fn to_text(
    args: &ExplainArgs,
    request: &Request<'_>,
    decision: &Decision<'_>,
    route: Option<&Route<'_>>,
) -> String {
    let mut out = String::new();
    let dash = || "-".to_string();
    let destination = match (request.destination, request.sni) {
        (Some(ip), _) => format_destination(ip, request.port),
        _ => args.to.clone(),
    };
    let _ = writeln!(
        out,
        "request:  {} {} from {}",
        request.protocol.as_str(),
        destination,
        args.from.as_deref().unwrap_or("(no identity)")
    );
    let _ = writeln!(
        out,
        "decision: {}{}",
        verdict(decision),
        if decision.is_dry_run() {
            " (dry-run)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "reason:   {}", decision.reason());
    let _ = writeln!(
        out,
        "service:  {}",
        decision
            .service()
            .map_or_else(dash, |s| format!("{} port {}", s.service, s.port))
    );
    let _ = writeln!(
        out,
        "policy:   {}",
        decision.policy().map_or_else(dash, |p| p.to_string())
    );
    let via_gateway = decision.service().filter(|s| s.via_gateway);
    match (route, via_gateway, args.role) {
        (Some(route), Some(_), RoleArg::Sidecar) => {
            let _ = writeln!(
                out,
                "route:    {} (the egress gateway chooses the endpoint and originates TLS)",
                route_text(route)
            );
        }
        (Some(route), _, _) => {
            let _ = writeln!(out, "route:    {}", route_text(route));
        }
        (None, Some(s), _) => {
            let _ = writeln!(
                out,
                "route:    port {} goes through the egress gateway",
                s.port
            );
        }
        (None, None, _) => {}
    }
    if let Some(cluster) = decision.service().and_then(|s| s.tls_cluster) {
        if args.role == RoleArg::Gateway || decision.service().is_some_and(|s| !s.via_gateway) {
            let _ = writeln!(out, "tls:      originated by cluster {cluster}");
        }
    }
    if let Some(e) = decision.endpoint() {
        let _ = writeln!(
            out,
            "endpoint: {}:{} {} ({}, {})",
            e.address,
            e.port,
            e.endpoint,
            e.locality,
            e.proximity.as_str()
        );
    }
    let _ = writeln!(out, "why:      {}", decision.message());
    out
}

/// The endpoints of an internal hostname, closest first, as `explain` lists them.
fn ranking_text(ranking: &[warden_engine::EndpointChoice<'_>]) -> String {
    let mut out = String::new();
    for (i, e) in ranking.iter().enumerate() {
        let label = if i == 0 { "ranking:  " } else { "          " };
        let locality = e.locality.to_string();
        let _ = writeln!(
            out,
            "{label}{}. {}:{} {} ({}, {})",
            i + 1,
            e.address,
            e.port,
            e.endpoint,
            if locality.is_empty() {
                "no locality"
            } else {
                &locality
            },
            e.proximity.as_str()
        );
    }
    out
}

fn format_destination(ip: IpAddr, port: Option<u16>) -> String {
    match (ip, port) {
        (IpAddr::V6(v6), Some(p)) => format!("[{v6}]:{p}"),
        (ip, Some(p)) => format!("{ip}:{p}"),
        (ip, None) => ip.to_string(),
    }
}
