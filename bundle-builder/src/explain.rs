//! `bundle-builder explain`: why a request is allowed or denied.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::process::ExitCode;

use anyhow::bail;
use serde::Serialize;
use warden_bundle::{Locality, Role};
use warden_engine::{parse_authority, Decision, Host, HostBuf, Request, RequestProtocol};

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
    let request = request(args, locality.as_ref())?;
    let decision = policy.decide(&request);
    let out = match args.output {
        OutputFormat::Json => serde_json::to_string_pretty(&to_json(&decision))? + "\n",
        OutputFormat::Text => {
            // The ranking a choice came from, when there was a choice.
            let locality = request.locality.or(policy.settings().locality.as_ref());
            let ranking = match decision.endpoint() {
                Some(_) => policy.ranking(&decision, locality),
                None => Vec::new(),
            };
            to_text(args, &request, &decision) + &ranking_text(&ranking)
        }
    };
    crate::output::print(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// The engine request `--to` and the other flags describe, as the filter would build it.
fn request<'a>(
    args: &'a ExplainArgs,
    locality: Option<&'a Locality>,
) -> anyhow::Result<Request<'a>> {
    let protocol = match args.protocol {
        ProtocolArg::Http => RequestProtocol::Http,
        ProtocolArg::Tcp => RequestProtocol::Tcp,
        ProtocolArg::Tls => RequestProtocol::Tls,
    };
    let mut request = Request {
        protocol,
        client: args.from.as_deref(),
        source: args.source_ip,
        method: args.method.as_deref(),
        path: args.path.as_deref(),
        sni: args.sni.as_deref(),
        locality,
        ..Request::default()
    };
    match protocol {
        RequestProtocol::Http => request.host = Some(&args.to),
        // A connection carries no host name: the proxy sees the address it was sent to, and
        // for TLS, the SNI.
        RequestProtocol::Tcp | RequestProtocol::Tls => {
            let mut buf = HostBuf::new();
            let authority = parse_authority(&args.to, &mut buf)
                .map_err(|err| anyhow::anyhow!("--to {:?}: {err}", args.to))?;
            request.port = authority.port;
            match authority.host {
                Host::Ip(ip) => request.destination = Some(ip),
                // The server name is the host alone; the port is the one connected to.
                Host::Name(_) if protocol == RequestProtocol::Tls && args.sni.is_none() => {
                    request.sni = Some(args.to.rsplit_once(':').map_or(&args.to, |(h, _)| h));
                }
                Host::Name(_) => bail!(
                    "--to {:?} names a host, but a {} connection carries no host name; give \
                     the IP address the client connects to{}",
                    args.to,
                    protocol.as_str(),
                    if protocol == RequestProtocol::Tcp {
                        ", or use --protocol tls"
                    } else {
                        ""
                    }
                ),
            }
            if request.port.is_none() && protocol == RequestProtocol::Tcp {
                bail!(
                    "--to {:?}: a TCP destination needs a port (ADDRESS:PORT)",
                    args.to
                );
            }
        }
    }
    Ok(request)
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
}

/// `{address, port, locality}` of a chosen endpoint.
#[derive(Debug, Serialize)]
pub struct EndpointOutput {
    pub address: String,
    pub port: u16,
    pub locality: String,
}

pub fn to_json(decision: &Decision<'_>) -> ExplainOutput {
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
    }
}

fn to_text(args: &ExplainArgs, request: &Request<'_>, decision: &Decision<'_>) -> String {
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
    if let Some(s) = decision.service().filter(|s| s.via_gateway) {
        let route = match (args.role, decision.is_allowed()) {
            (RoleArg::Gateway, _) => "arrives through the egress gateway",
            (RoleArg::Sidecar, true) => {
                "sent to the egress gateway, which chooses the endpoint and originates TLS"
            }
            (RoleArg::Sidecar, false) => "routed through the egress gateway",
        };
        let _ = writeln!(out, "route:    {route} (port {})", s.port);
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
