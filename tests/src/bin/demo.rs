//! `make demo`: the Warden filter in real Envoys, with real servers on loopback.
//!
//! Builds the bundle from `manifests/demo/` (Gloo manifests whose destinations are on
//! loopback), makes a test PKI, starts the upstreams the manifests name (HTTP, TCP echo, and an
//! HTTPS partner API), an egress gateway and three sidecars (frontend, billing, and frontend
//! under ALLOW_ANY; billing also answers DNS and reaches a database by name over plain TCP),
//! sends requests and connections through them, prints what happened, the
//! filter's counters and its denial log lines, and stops everything it started.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use bundle_builder::render::envoy::GatewayHop;
use serde_json::Value;
use warden_bundle::Role;
use warden_e2e::client::get;
use warden_e2e::dns::{free_udp_addr, query, Zone};
use warden_e2e::envoy::{Envoy, Sidecar};
use warden_e2e::pki::Ca;
use warden_e2e::repo_root;
use warden_e2e::tls::{https_get, HttpsUpstream};
use warden_e2e::upstream::{EchoServer, HttpUpstream};

const FRONTEND: &str = "spiffe://cluster.local/ns/web/sa/frontend";
const BILLING: &str = "spiffe://cluster.local/ns/pay/sa/billing";
const GATEWAY: &str = "spiffe://cluster.local/ns/egress/sa/egress-gateway";
/// Where the demo's PKI goes: `manifests/demo/` names the external CA by this path.
const PKI_DIR: &str = "/tmp/warden-demo";

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("demo address")
}

fn row(request: &str, status: &str, reason: &str, detail: &str) {
    println!("{request:<54} {status:<7} {reason:<19} {detail}");
}

fn http(envoy: &Envoy, label: &str, host: &str) {
    let r = get(envoy.listen, host, "/", &[]);
    let (reason, detail) = match r.header("x-warden-reason") {
        Some(reason) => {
            let service = r.json()["service"].as_str().unwrap_or("-").to_owned();
            (reason.to_owned(), format!("service {service}"))
        }
        None if r.status == 200 => ("allowed".to_owned(), format!("answered by {}", r.body)),
        None => (
            "-".to_owned(),
            r.body.lines().next().unwrap_or("").to_owned(),
        ),
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

fn print_counters(title: &str, envoy: &Envoy) {
    println!("\n{title} (/stats/prometheus):");
    let (_, stats) = envoy.admin_get("/stats/prometheus").expect("admin stats");
    for line in stats
        .lines()
        .filter(|l| l.starts_with("warden_") && !l.ends_with(" 0"))
    {
        println!("  {line}");
    }
}

fn main() {
    // A test PKI: the mesh CA (sidecars, gateway) and the partner's CA.
    let pki = Path::new(PKI_DIR);
    std::fs::create_dir_all(pki).expect("create /tmp/warden-demo");
    let (mesh_ca, external_ca) = (Ca::new("demo mesh CA"), Ca::new("demo partner CA"));
    let mesh_ca_file = mesh_ca.write(pki, "mesh-ca");
    external_ca.write(pki, "external-ca");

    let manifests = repo_root()
        .join("manifests/demo")
        .canonicalize()
        .expect("manifests/demo");
    let bundle = warden_e2e::build_bundle(&manifests);
    let digest = bundle["metadata"]["digest"]
        .as_str()
        .unwrap_or("-")
        .to_owned();

    let _servers = (
        HttpUpstream::start("payments-api (localhost)", addr("127.0.0.1:18080")),
        HttpUpstream::start("datacentre 127.0.0.21", addr("127.0.0.21:18080")),
        HttpUpstream::start("payroll 127.0.0.33", addr("127.0.0.33:18080")),
        HttpUpstream::start("unregistered 127.0.0.99", addr("127.0.0.99:18080")),
        HttpUpstream::start("orders-api east 127.0.0.27", addr("127.0.0.27:18080")),
        HttpUpstream::start("orders-api west 127.0.0.28", addr("127.0.0.28:18080")),
    );
    let partner = HttpsUpstream::start(
        "partner-api 127.0.0.31 (HTTPS)",
        addr("127.0.0.31:18443"),
        &external_ca.issue(&["partner.demo.test"], None),
        &external_ca,
    );
    let _databases = (
        EchoServer::start(addr("127.0.0.41:15432")),
        EchoServer::start(addr("127.0.0.42:15432")),
        EchoServer::start(addr("127.0.0.43:15432")),
    );

    let mut gateway = Sidecar::new(bundle.clone());
    gateway.role = Role::Gateway;
    gateway.mesh_tls = Some(mesh_ca.issue(&[], Some(GATEWAY)).mesh_tls(
        pki,
        &mesh_ca_file,
        "gateway",
    ));
    let gateway = gateway.start();
    let hop = GatewayHop {
        address: gateway.listen,
        identity: GATEWAY.into(),
        tcp_address: None,
    };

    let sidecar = |identity: &str, name: &str, bundle: &Value| {
        let mut s = Sidecar::new(bundle.clone());
        s.identity = Some(identity.into());
        s.locality = Some("us-east/us-east-1a".into());
        s.mesh_tls = Some(
            mesh_ca
                .issue(&[], Some(identity))
                .mesh_tls(pki, &mesh_ca_file, name),
        );
        s.gateway = Some(hop.clone());
        s
    };
    let mut strict = sidecar(FRONTEND, "frontend", &bundle);
    // Clients dial 127.0.0.40 (registered) and 127.0.0.60 (not); Envoy stands in for both.
    strict.tcp = vec![
        "127.0.0.40:15432=127.0.0.41:15432"
            .parse()
            .expect("tcp forward"),
        "127.0.0.60:15432=127.0.0.42:15432"
            .parse()
            .expect("tcp forward"),
    ];
    let strict = strict.start();
    // The billing sidecar also answers DNS for the registry's names and listens on their
    // virtual addresses (a database known only by name).
    let mut billing = sidecar(BILLING, "billing", &bundle);
    let dns = free_udp_addr("127.0.0.1");
    // The proxy's own resolver (never its DNS listener): here a zone server with no names.
    let zone = Zone::start(&[]);
    billing.dns = Some(dns);
    billing.resolvers = vec![zone.addr];
    billing.virtual_listeners = true;
    let billing = billing.start();
    // The same bundle with ALLOW_ANY, sealed again (the filter refuses a changed spec).
    let mut open_bundle = warden_bundle::Bundle::from_json(bundle.to_string().as_bytes()).unwrap();
    open_bundle.spec.outbound_mode = warden_bundle::OutboundMode::AllowAny;
    open_bundle.metadata.digest = Some(open_bundle.compute_digest().unwrap());
    let open_bundle = serde_json::to_value(&open_bundle).unwrap();
    let open = sidecar(FRONTEND, "frontend-open", &open_bundle).start();

    println!(
        "Warden demo: bundle {digest}, built from {}",
        manifests.display()
    );
    println!(
        "Envoys: sidecars for web/frontend at {} (REGISTRY_ONLY) and {} (ALLOW_ANY), for pay/billing at {}; egress gateway at {} (mTLS)\n",
        strict.listen, open.listen, billing.listen, gateway.listen
    );
    row("REQUEST", "STATUS", "REASON", "ENDPOINT / DETAIL");
    let f = "[frontend]";
    http(&strict, f, "localhost:18080");
    http(&strict, f, "evil.example");
    http(&strict, f, "127.0.0.21:18080");
    http(&strict, f, "0x7f.0.0.21:18080");
    http(&strict, f, "2130706531:18080"); // 127.0.0.99
    http(&strict, f, "localhost:9999");
    http(&strict, f, "127.0.0.33:18080");
    http(&strict, f, "a..b");
    http(&strict, f, "orders-api.mesh.internal");
    http(&strict, f, "partner.demo.test:443");
    http(&billing, "[billing] ", "partner.demo.test:443");
    http(&open, "[frontend, allow-any]", "127.0.0.99:18080");
    tcp(f, addr("127.0.0.40:15432"));
    tcp(f, addr("127.0.0.60:15432"));
    // By name over plain TCP: resolve through the sidecar's DNS, connect to the answer.
    let name = "ledger-db.mesh.internal";
    match query(dns, name, false).map(|a| a.addresses) {
        Ok(addresses) if !addresses.is_empty() => {
            row(
                &format!("[billing]  dns {name}"),
                "answer",
                "virtual address",
                &addresses[0].to_string(),
            );
            tcp(
                "[billing]  by name ->",
                SocketAddr::new(addresses[0], 15433),
            );
        }
        other => row(
            &format!("[billing]  dns {name}"),
            "failed",
            "-",
            &format!("{other:?}"),
        ),
    }
    let direct = https_get(
        gateway.listen,
        "partner.demo.test",
        "partner.demo.test:443",
        None,
        &mesh_ca,
    );
    row(
        "[no certificate] TLS to the egress gateway",
        if direct.is_ok() { "open" } else { "refused" },
        "handshake",
        "the gateway accepts only mesh certificates",
    );
    if let Some(seen) = partner.seen().first() {
        println!(
            "\nThe partner API saw TLS from the gateway with SNI {:?} for Host {:?}.",
            seen.sni.as_deref().unwrap_or("-"),
            seen.host
        );
    }

    // The filter sends its counts to Envoy once a second.
    strict.wait_metric("warden_tcp_denied_not_in_registry", 1);
    gateway.wait_metric("warden_http_allowed", 1);
    print_counters("Counters of the frontend sidecar", &strict);
    print_counters("Counters of the egress gateway", &gateway);
    println!("\nEnvoy's log lines for the frontend sidecar's denials:");
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
