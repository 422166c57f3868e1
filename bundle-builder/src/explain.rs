//! `bundle-builder explain`: why a request is allowed or denied.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::process::ExitCode;

use bundle_builder::decide::{cluster_name, verdict, Outcome, Query, RoleArg};
use warden_bundle::Locality;
use warden_engine::Route;

use crate::cli::{ExplainArgs, OutputFormat};

pub fn run(args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let (_, _, mut policy) = crate::bundle_file::load(&args.bundle)?;
    let query = &args.query;
    let outcome = query.decide(&mut policy)?;
    let policy = outcome.policy;
    let out = match args.output {
        OutputFormat::Json => serde_json::to_string_pretty(&outcome.to_output())? + "\n",
        OutputFormat::Text => {
            // The ranking a choice came from, when there was a choice.
            let locality = query.locality.as_deref().map(Locality::parse);
            let locality = locality.as_ref().or(policy.settings().locality.as_ref());
            let ranking = match outcome.decision.endpoint() {
                Some(_) => policy.ranking(&outcome.decision, locality),
                None => Vec::new(),
            };
            let resolved = outcome.resolved.as_ref().map_or_else(String::new, |r| {
                format!(
                    "resolved: {} -> {} (a virtual address of {})\n",
                    r.name, r.address, r.service
                )
            });
            resolved + &to_text(query, &outcome) + &ranking_text(&ranking)
        }
    };
    crate::output::print(&out)?;
    // Like `kubectl auth can-i`: with --exit-code, a denial is exit status 1.
    Ok(if args.exit_code && !outcome.decision.is_allowed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
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

fn to_text(query: &Query, outcome: &Outcome<'_>) -> String {
    let (decision, route) = (&outcome.decision, outcome.route.as_ref());
    let mut out = String::new();
    let dash = || "-".to_string();
    let destination = match outcome.destination {
        Some(ip) => format_destination(ip, outcome.port),
        None => query.to.clone(),
    };
    let _ = writeln!(
        out,
        "request:  {} {} from {}",
        outcome.protocol.as_str(),
        destination,
        outcome.client.as_deref().unwrap_or("(no identity)")
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
    match (route, via_gateway, query.role) {
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
        if query.role == RoleArg::Gateway || decision.service().is_some_and(|s| !s.via_gateway) {
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
