//! The filter as a sidecar in a real Envoy 1.40: HTTP and TCP enforcement, against real
//! upstreams on distinct loopback addresses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{json, Value};
use warden_e2e::client::get;
use warden_e2e::envoy::{envoy_bin, Envoy, Sidecar};
use warden_e2e::upstream::{EchoServer, HttpUpstream};
use warden_e2e::{free_addr, free_port};

const BILLING: &str = "spiffe://cluster.local/ns/pay/sa/billing";
const FRONTEND: &str = "spiffe://cluster.local/ns/web/sa/frontend";

fn service(name: &str, hosts: &[&str], addresses: &[&str], port: u16, protocol: &str) -> Value {
    json!({
        "source": { "kind": "ExternalService", "namespace": "e2e", "name": name },
        "hosts": hosts, "addresses": addresses,
        "ports": [{ "number": port, "protocol": protocol }]
    })
}

fn bundle(mode: &str, services: Vec<Value>, policies: Vec<Value>) -> Value {
    json!({
        "apiVersion": "warden.dev/v1alpha1", "kind": "Bundle",
        "spec": { "outboundMode": mode, "services": services, "accessPolicies": policies }
    })
}

fn policy(name: &str, service: &str, clients: &[&str], dry_run: bool) -> Value {
    json!({
        "source": { "kind": "AccessPolicy", "namespace": "e2e", "name": name },
        "targets": [{ "service": { "namespace": "e2e", "name": service } }],
        "rules": [{ "clients": clients }],
        "dryRun": dry_run
    })
}

/// A registered host reaches its upstream; an unregistered one is denied 403 with the reason
/// in a header and a JSON body, and the counters say so.
#[test]
fn registry_only_allows_registered_and_denies_the_rest() {
    let up = HttpUpstream::start("local", free_addr("127.0.0.1"));
    let port = up.addr.port();
    let envoy = Sidecar::new(bundle(
        "REGISTRY_ONLY",
        vec![service("local", &["localhost"], &[], port, "HTTP")],
        vec![],
    ))
    .start();

    let ok = get(envoy.listen, &format!("localhost:{port}"), "/", &[]);
    assert_eq!((ok.status, ok.body.as_str()), (200, "upstream local"));

    let denied = get(envoy.listen, "evil.example", "/", &[]);
    assert_eq!(denied.status, 403);
    assert_eq!(denied.header("x-warden-reason"), Some("not_in_registry"));
    assert_eq!(denied.json()["reason"], "not_in_registry");
    assert_eq!(denied.json()["service"], Value::Null);
    assert_eq!(
        up.seen().len(),
        1,
        "the denied request never reached an upstream"
    );

    assert_eq!(envoy.wait_metric("warden_http_allowed", 1), 1);
    assert_eq!(
        envoy.wait_metric("warden_http_denied_not_in_registry", 1),
        1
    );
    assert_eq!(envoy.metric("warden_services_loaded"), 1);
    assert!(envoy.metric("warden_config_loaded") >= 1);
    assert!(
        envoy.log().contains("deny not_in_registry"),
        "one log line per denial"
    );
    // Envoy's canary VM decoded and checked the compiled tables; the main thread's VM (which
    // serves no request) only accepted them, and the worker decoded them for its first request.
    assert!(envoy
        .wait_log_line(&["decoded for the first stream in"])
        .is_some());
    let log = envoy.log();
    let lines = |text: &str| log.lines().filter(|l| l.contains(text)).count();
    assert_eq!(lines("from compiled tables in "), 1, "{log}");
    assert_eq!(
        lines("this VM decodes them for its first stream"),
        2,
        "{log}"
    );
    assert_eq!(lines("decoded for the first stream in "), 1, "{log}");
}

/// ALLOW_ANY lets unregistered destinations through, counted as passthrough.
#[test]
fn allow_any_passes_unregistered_hosts() {
    let up = HttpUpstream::start("any", free_addr("127.0.0.1"));
    let envoy = Sidecar::new(bundle("ALLOW_ANY", vec![], vec![])).start();
    let r = get(
        envoy.listen,
        &format!("localhost:{}", up.addr.port()),
        "/",
        &[],
    );
    assert_eq!((r.status, r.body.as_str()), (200, "upstream any"));
    assert_eq!(envoy.wait_metric("warden_http_passthrough", 1), 1);
}

/// Every spelling of a registered address reaches that address; every spelling of an
/// unregistered one is denied, and its server sees nothing.
#[test]
fn ip_spellings_get_the_decision_of_the_address_they_denote() {
    let port = free_port("127.0.0.21").max(free_port("127.0.0.22"));
    let a = HttpUpstream::start("a", SocketAddr::new("127.0.0.21".parse().unwrap(), port));
    let b = HttpUpstream::start("b", SocketAddr::new("127.0.0.22".parse().unwrap(), port));
    let envoy = Sidecar::new(bundle(
        "REGISTRY_ONLY",
        vec![service("a", &[], &["127.0.0.21"], port, "HTTP")],
        vec![],
    ))
    .start();
    // 127.0.0.21 as decimal, hex, octal, short form, IPv4-mapped IPv6 (both notations).
    for host in [
        "127.0.0.21",
        "2130706453",
        "0x7f.0.0.21",
        "0177.0.0.025",
        "127.21",
        "[::ffff:127.0.0.21]",
        "[::ffff:7f00:15]",
    ] {
        let r = get(envoy.listen, &format!("{host}:{port}"), "/", &[]);
        assert_eq!((r.status, r.body.as_str()), (200, "upstream a"), "{host}");
    }
    for host in [
        "127.0.0.22",
        "2130706454",
        "0x7f.0.0.22",
        "0177.0.0.026",
        "[::ffff:127.0.0.22]",
    ] {
        let r = get(envoy.listen, &format!("{host}:{port}"), "/", &[]);
        assert_eq!(r.status, 403, "{host}");
        assert_eq!(
            r.header("x-warden-reason"),
            Some("not_in_registry"),
            "{host}"
        );
    }
    assert_eq!(a.seen().len(), 7);
    assert_eq!(b.seen().len(), 0);
}

/// A host that is not a valid name or address is refused, 400 invalid_host.
#[test]
fn invalid_hosts_are_refused() {
    let envoy = Sidecar::new(bundle("ALLOW_ANY", vec![], vec![])).start();
    for host in ["256.1.1.1", "a..b", "0x7f.1e.0.1"] {
        let r = get(envoy.listen, host, "/", &[]);
        assert_eq!(
            (r.status, r.header("x-warden-reason")),
            (400, Some("invalid_host")),
            "{host}"
        );
    }
}

/// The workload's identity decides: an access policy that does not name it denies 403
/// client_not_allowed; a dry-run policy allows and counts.
#[test]
fn access_policy_denies_and_dry_run_allows_and_counts() {
    let port = free_port("127.0.0.23").max(free_port("127.0.0.24"));
    let guarded = HttpUpstream::start(
        "guarded",
        SocketAddr::new("127.0.0.23".parse().unwrap(), port),
    );
    let audited = HttpUpstream::start(
        "audited",
        SocketAddr::new("127.0.0.24".parse().unwrap(), port),
    );
    let mut sidecar = Sidecar::new(bundle(
        "REGISTRY_ONLY",
        vec![
            service("guarded", &[], &["127.0.0.23"], port, "HTTP"),
            service("audited", &[], &["127.0.0.24"], port, "HTTP"),
        ],
        vec![
            policy("billing-only", "guarded", &[BILLING], false),
            policy("billing-only-audit", "audited", &[BILLING], true),
        ],
    ));
    sidecar.identity = Some(FRONTEND.into());
    sidecar.service_metrics = true;
    let envoy = sidecar.start();

    let denied = get(envoy.listen, &format!("127.0.0.23:{port}"), "/", &[]);
    assert_eq!(denied.status, 403);
    assert_eq!(denied.json()["reason"], "client_not_allowed");
    assert_eq!(denied.json()["service"], "e2e/guarded");
    assert_eq!(denied.json()["policy"], "e2e/billing-only");
    assert!(guarded.seen().is_empty());

    let dry = get(envoy.listen, &format!("127.0.0.24:{port}"), "/", &[]);
    assert_eq!((dry.status, dry.body.as_str()), (200, "upstream audited"));
    assert_eq!(envoy.wait_metric("warden_http_dry_run_denied", 1), 1);
    assert_eq!(
        envoy.wait_metric("warden_http_denied_client_not_allowed", 1),
        1
    );
    assert_eq!(audited.seen().len(), 1);
    assert!(envoy
        .log()
        .contains("allow client_not_allowed dry_run=true service=e2e/audited"));
    // `--service-metrics`: the same verdicts per service, the service as a label.
    for (name, service) in [
        (
            "warden_http_service_denied_client_not_allowed",
            "e2e.guarded",
        ),
        ("warden_http_service_allowed", "e2e.audited"),
        ("warden_http_service_dry_run_denied", "e2e.audited"),
    ] {
        let labelled = format!("{name}{{warden_service=\"{service}\"}}");
        assert_eq!(envoy.wait_metric(&labelled, 1), 1, "{labelled}");
    }
    assert_eq!(envoy.metric("warden_http_service_allowed"), 1);

    // The same bundle with the billing identity is allowed by the policy.
    sidecar.identity = Some(BILLING.into());
    drop(envoy);
    let envoy = sidecar.start();
    let ok = get(envoy.listen, &format!("127.0.0.23:{port}"), "/", &[]);
    assert_eq!((ok.status, ok.body.as_str()), (200, "upstream guarded"));
}

/// A client cannot steer Envoy with `x-envoy-original-dst-host` or forge `x-warden-*`
/// headers: they are removed, and the request goes where the decision says.
#[test]
fn spoofed_routing_headers_are_ignored_and_removed() {
    let port = free_port("127.0.0.25").max(free_port("127.0.0.26"));
    let a = HttpUpstream::start("a", SocketAddr::new("127.0.0.25".parse().unwrap(), port));
    let b = HttpUpstream::start("b", SocketAddr::new("127.0.0.26".parse().unwrap(), port));
    let envoy = Sidecar::new(bundle(
        "REGISTRY_ONLY",
        vec![service("a", &[], &["127.0.0.25"], port, "HTTP")],
        vec![],
    ))
    .start();
    let spoof = format!("127.0.0.26:{port}");
    let r = get(
        envoy.listen,
        &format!("127.0.0.25:{port}"),
        "/",
        &[
            ("x-envoy-original-dst-host", &spoof),
            ("X-Warden-Reason", "forged"),
        ],
    );
    assert_eq!((r.status, r.body.as_str()), (200, "upstream a"));
    assert!(b.seen().is_empty());
    let seen = &a.seen()[0];
    assert!(
        seen.headers
            .iter()
            .all(|(n, _)| n != "x-envoy-original-dst-host" && !n.starts_with("x-warden-")),
        "{:?}",
        seen.headers
    );
}

fn echo_through(listen: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect(listen)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"hello")?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// TCP: a connection to a registered CIDR passes and echoes; one to an unregistered address
/// is closed before any upstream connection is made.
#[test]
fn tcp_registered_cidr_echoes_and_unregistered_is_closed() {
    let allowed_echo = EchoServer::start(free_addr("127.0.0.31"));
    let denied_echo = EchoServer::start(free_addr("127.0.0.32"));
    let port = free_port("127.0.0.50").max(free_port("127.0.0.60"));
    let (registered, unregistered) = (
        SocketAddr::new("127.0.0.50".parse().unwrap(), port),
        SocketAddr::new("127.0.0.60".parse().unwrap(), port),
    );
    let mut sidecar = Sidecar::new(bundle(
        "REGISTRY_ONLY",
        vec![service("datacentre", &[], &["127.0.0.48/30"], port, "TCP")],
        vec![],
    ));
    sidecar.tcp = vec![
        format!("{registered}={}", allowed_echo.addr)
            .parse()
            .unwrap(),
        format!("{unregistered}={}", denied_echo.addr)
            .parse()
            .unwrap(),
    ];
    let envoy = sidecar.start();

    assert_eq!(echo_through(registered).unwrap(), "echo:hello");
    let refused = echo_through(unregistered);
    assert!(matches!(refused.as_deref(), Err(_) | Ok("")), "{refused:?}");
    assert_eq!(allowed_echo.connections(), 1);
    assert_eq!(
        denied_echo.connections(),
        0,
        "no upstream connection for a denied client"
    );
    assert_eq!(envoy.wait_metric("warden_tcp_allowed", 1), 1);
    assert_eq!(envoy.wait_metric("warden_tcp_denied_not_in_registry", 1), 1);
}

/// The mesh's own addresses (`spec.mesh.addresses`) are the mesh's business under
/// REGISTRY_ONLY: a connection there passes (`in_mesh`), one to an address just outside is
/// closed before any upstream connection.
#[test]
fn tcp_to_the_mesh_s_addresses_passes_under_registry_only() {
    let mesh_echo = EchoServer::start(free_addr("127.0.0.33"));
    let outside_echo = EchoServer::start(free_addr("127.0.0.34"));
    let port = free_port("127.0.0.70").max(free_port("127.0.0.72"));
    let (in_mesh, outside) = (
        SocketAddr::new("127.0.0.70".parse().unwrap(), port),
        SocketAddr::new("127.0.0.72".parse().unwrap(), port),
    );
    let mut with_mesh = bundle("REGISTRY_ONLY", vec![], vec![]);
    with_mesh["spec"]["mesh"] = json!({ "addresses": ["127.0.0.70/31"] });
    let mut sidecar = Sidecar::new(with_mesh);
    sidecar.tcp = vec![
        format!("{in_mesh}={}", mesh_echo.addr).parse().unwrap(),
        format!("{outside}={}", outside_echo.addr).parse().unwrap(),
    ];
    let envoy = sidecar.start();
    assert_eq!(echo_through(in_mesh).unwrap(), "echo:hello");
    let refused = echo_through(outside);
    assert!(matches!(refused.as_deref(), Err(_) | Ok("")), "{refused:?}");
    assert_eq!(mesh_echo.connections(), 1);
    assert_eq!(
        outside_echo.connections(),
        0,
        "no upstream connection when denied"
    );
    assert_eq!(envoy.wait_metric("warden_tcp_in_mesh", 1), 1);
    assert_eq!(envoy.wait_metric("warden_tcp_denied_not_in_registry", 1), 1);
}

/// A bundle that does not compile cannot be compiled by the builder (which names what is
/// wrong), and handed to the filter as JSON it is refused with one log line; Envoy does not
/// start, so nothing passes (fail closed).
#[test]
fn bad_bundle_is_refused_and_nothing_passes() {
    let bad = bundle(
        "ALLOW_ANY",
        vec![service("net", &[], &["127.0.0.49/30"], 80, "HTTP")],
        vec![],
    );
    let parsed: warden_bundle::Bundle = serde_json::from_value(bad.clone()).unwrap();
    let err = warden_engine::compile(&parsed).unwrap_err().to_string();
    assert_eq!(
        err,
        "ExternalService e2e/net: spec.services[0].addresses[0]: \"127.0.0.49/30\" has host \
         bits set; the network is 127.0.0.48/30"
    );
    let (listen, admin) = (free_addr("127.0.0.1"), free_addr("127.0.0.1"));
    let (status, log) = Envoy::expect_refusal(&Sidecar::new(bad).render(listen, admin));
    assert!(!status.success());
    assert!(
        log.contains("refused configuration: the plugin configuration is not a compiled policy"),
        "{log}"
    );
    assert!(
        TcpStream::connect(listen).is_err(),
        "no listener serves traffic"
    );
}

/// Every configuration `render envoy` produces passes `envoy --mode validate`.
#[test]
fn rendered_sidecar_config_validates() {
    let example =
        std::fs::read_to_string(warden_e2e::repo_root().join("manifests/bundles/example.json"))
            .unwrap();
    let mut sidecar = Sidecar::new(serde_json::from_str(&example).unwrap());
    sidecar.identity = Some(FRONTEND.into());
    sidecar.tcp = vec!["127.0.0.50:5432=127.0.0.21:5432".parse().unwrap()];
    let config = sidecar.render(free_addr("127.0.0.1"), free_addr("127.0.0.1"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("envoy.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let out = std::process::Command::new(envoy_bin())
        .args(["--mode", "validate", "--use-dynamic-base-id", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("OK"), "{text}");
}

/// Every counter a sidecar's traffic can move, moved by real requests through Envoy, each by
/// exactly the requests that should: one per reason a workload can cause, allowed, passthrough
/// and dry-run. (`no_policy`, `route_failed`, `no_healthy_endpoint` and the gateway's reasons
/// are counted by the same code; the glue's native tests and the gateway and internal-hostname
/// suites drive them.)
#[test]
fn each_outcome_moves_its_own_counter() {
    let up = HttpUpstream::start("local", free_addr("127.0.0.1"));
    let port = up.addr.port();
    let mut gated = service("gated", &["gated.example"], &[], 443, "HTTPS");
    gated["ports"][0]["egressGateway"] =
        json!({ "gateways": [{ "namespace": "egress", "name": "egress-gateway" }] });
    let bundle = bundle(
        "ALLOW_ANY",
        vec![
            service("local", &["localhost"], &[], port, "HTTP"),
            service("restricted", &["restricted.example"], &[], 80, "HTTP"),
            service("trial", &["trial.example"], &[], 80, "HTTP"),
            gated,
        ],
        vec![
            policy("restricted-billing", "restricted", &[BILLING], false),
            policy("trial-billing", "trial", &[BILLING], true),
        ],
    );
    let mut sidecar = Sidecar::new(bundle);
    sidecar.identity = Some(FRONTEND.into());
    let envoy = sidecar.start();
    let cases: [(&str, &str, u16); 8] = [
        (&format!("localhost:{port}"), "allowed", 200),
        ("unregistered.example", "passthrough", 0),
        ("restricted.example", "denied_client_not_allowed", 403),
        ("trial.example", "dry_run_denied", 0),
        ("localhost:1", "denied_port_not_declared", 403),
        ("a..b.example", "denied_invalid_host", 400),
        ("gated.example:443", "denied_must_use_gateway", 403),
        ("0.0.0.0", "denied_unspecified_address", 403),
    ];
    for (authority, _, status) in &cases {
        let r = get(envoy.listen, authority, "/", &[]);
        if *status != 0 {
            assert_eq!(r.status, *status, "{authority}: {r:?}");
        }
    }
    // Passthrough and dry-run requests are allowed too.
    let expected = |counter: &str| match counter {
        "allowed" => 3,
        _ => 1,
    };
    for (authority, counter, _) in &cases {
        let name = format!("warden_http_{counter}");
        assert_eq!(
            envoy.wait_metric(&name, expected(counter)),
            expected(counter),
            "{name} after {authority}"
        );
    }
}

/// Gloo's staging/prod example, one bundle for the whole mesh, in Envoy: the same database
/// address is staging's for staging's workloads and prod's (with prod's access policy) for
/// prod's; a workload outside both workspaces is denied `not_in_workspace`. Denied means the
/// database saw nothing.
#[test]
fn one_bundle_decides_each_caller_within_its_workspace() {
    let port = free_port("127.0.0.90").max(free_port("127.0.0.91"));
    let manifests = std::fs::read_to_string(
        warden_e2e::repo_root()
            .join("bundle-builder/tests/golden/workspace-views/input/staging-prod.yaml"),
    )
    .unwrap()
    .replace("15490", &port.to_string());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("staging-prod.yaml"), manifests).unwrap();
    let bundle = warden_e2e::build_bundle(dir.path());
    let database = EchoServer::start(SocketAddr::new("127.0.0.91".parse().unwrap(), port));
    let dialled = SocketAddr::new("127.0.0.90".parse().unwrap(), port);
    // One proxy at a time: each listens on the database's address, standing for it.
    let run = |identity: &str| {
        let mut sidecar = Sidecar::new(bundle.clone());
        sidecar.identity = Some(identity.into());
        sidecar.tcp = vec![format!("{dialled}={}", database.addr).parse().unwrap()];
        let envoy = sidecar.start();
        let outcome = echo_through(dialled).ok().filter(|r| !r.is_empty());
        (envoy, outcome)
    };
    let (_, staging) = run("spiffe://cluster.local/ns/staging-apps/sa/api");
    assert_eq!(staging.as_deref(), Some("echo:hello"));
    let (_, prod) = run("spiffe://cluster.local/ns/prod-apps/sa/api");
    assert_eq!(prod.as_deref(), Some("echo:hello"));
    assert_eq!(database.connections(), 2);
    let (batch, denied) = run("spiffe://cluster.local/ns/prod-apps/sa/batch");
    assert_eq!(denied, None);
    assert_eq!(
        batch.wait_metric("warden_tcp_denied_client_not_allowed", 1),
        1
    );
    // Two proxies on one address would share its connections (SO_REUSEPORT): one at a time.
    drop(batch);
    let (outside, denied) = run("spiffe://cluster.local/ns/web/sa/frontend");
    assert_eq!(denied, None);
    assert_eq!(
        outside.wait_metric("warden_tcp_denied_not_in_workspace", 1),
        1
    );
    assert_eq!(
        database.connections(),
        2,
        "denied connections reached the database"
    );
}
