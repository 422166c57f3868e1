//! `make demo`: the Warden filter in a real Envoy, with real servers on loopback.
//!
//! Starts the upstreams the demo bundle names, two sidecars (the bundle as written, in
//! REGISTRY_ONLY, and the same bundle in ALLOW_ANY), sends requests and connections through
//! them, prints what happened and the filter's counters, and stops everything it started.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;
use warden_e2e::client::get;
use warden_e2e::envoy::{Envoy, Sidecar};
use warden_e2e::repo_root;
use warden_e2e::upstream::{EchoServer, HttpUpstream};

const IDENTITY: &str = "spiffe://cluster.local/ns/web/sa/frontend";

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("demo address")
}

fn row(request: &str, status: &str, reason: &str, detail: &str) {
    println!("{request:<52} {status:<8} {reason:<20} {detail}");
}

fn http(envoy: &Envoy, label: &str, host: &str) {
    let r = get(envoy.listen, host, "/", &[]);
    let (reason, detail) = match r.header("x-warden-reason") {
        Some(reason) => {
            let service = r.json()["service"].as_str().unwrap_or("-").to_owned();
            (reason.to_owned(), format!("service {service}"))
        }
        None => ("allowed".to_owned(), r.body.clone()),
    };
    row(
        &format!("{label} GET http://{host}/"),
        &r.status.to_string(),
        &reason,
        &detail,
    );
}

fn tcp(label: &str, target: SocketAddr) {
    let outcome = TcpStream::connect(target).and_then(|mut s| {
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.write_all(b"SELECT 1")?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    });
    match outcome {
        Ok(reply) if !reply.is_empty() => {
            row(&format!("{label} tcp {target}"), "open", "allowed", &reply)
        }
        _ => row(
            &format!("{label} tcp {target}"),
            "closed",
            "not_in_registry",
            "(see warden_tcp_denied_*)",
        ),
    }
}

fn main() {
    let path = repo_root()
        .join("manifests/bundles/demo-local.json")
        .canonicalize()
        .expect("the demo bundle exists");
    let text = std::fs::read_to_string(&path).expect("read the demo bundle");
    let bundle: Value = serde_json::from_str(&text).expect("demo bundle is JSON");

    let _servers = (
        HttpUpstream::start("payments-api (localhost)", addr("127.0.0.1:18080")),
        HttpUpstream::start("datacentre 127.0.0.21", addr("127.0.0.21:18080")),
        HttpUpstream::start("payroll 127.0.0.23", addr("127.0.0.23:18080")),
        HttpUpstream::start("unregistered 127.0.0.99", addr("127.0.0.99:18080")),
    );
    let _databases = (
        EchoServer::start(addr("127.0.0.41:15432")),
        EchoServer::start(addr("127.0.0.42:15432")),
    );

    let mut sidecar = Sidecar::new(bundle.clone());
    sidecar.identity = Some(IDENTITY.into());
    // Clients dial 127.0.0.40 (registered) and 127.0.0.60 (not); Envoy stands in for both.
    sidecar.tcp = vec![
        "127.0.0.40:15432=127.0.0.41:15432"
            .parse()
            .expect("tcp forward"),
        "127.0.0.60:15432=127.0.0.42:15432"
            .parse()
            .expect("tcp forward"),
    ];
    let strict = sidecar.start();
    let mut open_bundle = bundle;
    open_bundle["spec"]["outboundMode"] = "ALLOW_ANY".into();
    let mut open = Sidecar::new(open_bundle);
    open.identity = Some(IDENTITY.into());
    let open = open.start();

    println!("Warden demo: a sidecar for {IDENTITY}");
    println!(
        "bundle {}; Envoy {} (REGISTRY_ONLY) and {} (ALLOW_ANY)\n",
        path.display(),
        strict.listen,
        open.listen
    );
    row("REQUEST", "STATUS", "REASON", "DETAIL");
    http(&strict, "[registry-only]", "localhost:18080");
    http(&strict, "[registry-only]", "evil.example");
    http(&strict, "[registry-only]", "127.0.0.21:18080");
    http(&strict, "[registry-only]", "0x7f.0.0.21:18080");
    http(&strict, "[registry-only]", "2130706531:18080"); // 127.0.0.99
    http(&strict, "[registry-only]", "localhost:9999");
    http(&strict, "[registry-only]", "127.0.0.23:18080");
    http(&strict, "[registry-only]", "a..b");
    http(&open, "[allow-any]    ", "127.0.0.99:18080");
    tcp("[registry-only]", addr("127.0.0.40:15432"));
    tcp("[registry-only]", addr("127.0.0.60:15432"));

    println!("\nCounters of the REGISTRY_ONLY sidecar (/stats/prometheus):");
    // The filter sends its counts to Envoy once a second.
    strict.wait_metric("warden_tcp_denied_not_in_registry", 1);
    let (_, stats) = strict.admin_get("/stats/prometheus").expect("admin stats");
    for line in stats
        .lines()
        .filter(|l| l.starts_with("warden_") && !l.ends_with(" 0"))
    {
        println!("  {line}");
    }
    println!("\nEnvoy's log lines for the denials:");
    for line in strict
        .log()
        .lines()
        .filter(|l| l.contains("wasm log") && l.contains(" deny "))
    {
        let message = line.rsplit_once("warden: ").map_or(line, |(_, m)| m);
        println!("  {message}");
    }
    println!("\nAll processes the demo started are stopped on exit.");
}
