//! An attacker inside a workload against the sidecar, in a real Envoy: every allow must hold
//! for what Envoy actually connects to. Upstreams record every connection they accept, so
//! "denied" means no server saw anything, and "steered" means only the decided one did.
//!
//! Both sidecar shapes: an explicit local proxy, and traffic capture (simulated on loopback
//! with a PROXY header that carries the original destination, as iptables would).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;

use bundle_builder::render::envoy::Capture;
use serde_json::{json, Value};
use warden_e2e::envoy::{Envoy, Sidecar};
use warden_e2e::recorder::{
    client_hello, http_request, proxy_header, raw_http, records, send_pieces, Recorder,
};
use warden_e2e::{free_addr, free_port};

const FRONTEND: &str = "spiffe://cluster.local/ns/web/sa/frontend";
const BILLING: &str = "spiffe://cluster.local/ns/pay/sa/billing";

fn service(name: &str, hosts: &[&str], addresses: &[&str], port: u16, protocol: &str) -> Value {
    json!({
        "source": { "kind": "ExternalService", "namespace": "e2e", "name": name },
        "hosts": hosts, "addresses": addresses,
        "ports": [{ "number": port, "protocol": protocol }]
    })
}

/// Only billing may reach `service`.
fn billing_only(service: &str) -> Value {
    json!({
        "source": { "kind": "AccessPolicy", "namespace": "e2e", "name": format!("{service}-access") },
        "targets": [{ "service": { "namespace": "e2e", "name": service } }],
        "rules": [{ "clients": [BILLING] }]
    })
}

fn bundle(mode: &str, services: Vec<Value>, policies: Vec<Value>) -> Value {
    json!({
        "apiVersion": "warden.dev/v1alpha1", "kind": "Bundle",
        "spec": { "outboundMode": mode, "services": services, "accessPolicies": policies }
    })
}

fn at(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// A port free on every address these tests bind it on.
fn shared_port(ips: &[&str]) -> u16 {
    loop {
        let port = free_port(ips[0]);
        if ips
            .iter()
            .all(|ip| std::net::TcpListener::bind(at(ip, port)).is_ok())
        {
            return port;
        }
    }
}

fn frontend(bundle: Value, capture: Option<Capture>, tcp: &[String]) -> Envoy {
    let mut sidecar = Sidecar::new(bundle);
    sidecar.identity = Some(FRONTEND.into());
    sidecar.capture = capture;
    sidecar.tcp = tcp.iter().map(|t| t.parse().unwrap()).collect();
    sidecar.start()
}

/// The TLS scenario: `localhost` is a registered TLS service (its server is 127.0.0.1),
/// 127.0.0.23 is registered for billing only, and 127.0.0.66 is not registered.
struct TlsScene {
    port: u16,
    by_name: Recorder,
    restricted: Recorder,
    unregistered: Recorder,
    bundle: Value,
}

impl TlsScene {
    fn new() -> Self {
        let port = shared_port(&["127.0.0.1", "127.0.0.23", "127.0.0.66", "127.0.0.60"]);
        Self {
            port,
            by_name: Recorder::start("by-name", at("127.0.0.1", port)),
            restricted: Recorder::start("restricted", at("127.0.0.23", port)),
            unregistered: Recorder::start("unregistered", at("127.0.0.66", port)),
            bundle: bundle(
                "REGISTRY_ONLY",
                vec![
                    service("tls-api", &["localhost"], &[], port, "TLS"),
                    service("vault", &[], &["127.0.0.23/32"], port, "TLS"),
                ],
                vec![billing_only("vault")],
            ),
        }
    }

    /// Nothing reached the two servers the client dialled or named falsely.
    fn assert_only_by_name(&self, snis: &[&str]) {
        let seen: Vec<_> = self
            .by_name
            .settled()
            .into_iter()
            .map(|c| c.sni.unwrap_or_default())
            .collect();
        assert_eq!(seen, snis, "connections to the registered name");
        assert_eq!(
            self.restricted.connections(),
            0,
            "restricted server reached"
        );
        assert_eq!(
            self.unregistered.connections(),
            0,
            "unregistered server reached"
        );
    }
}

/// Under capture, a ClientHello naming a registered host but dialled to another address
/// goes to the name, in every spelling and split; an IP literal or a port in the server name
/// is decided on the dialled address, or refused; nothing reaches the dialled servers.
#[test]
fn sni_spoofing_under_capture_goes_to_the_name_or_nowhere() {
    let scene = TlsScene::new();
    let listener = free_addr("127.0.0.1");
    let envoy = frontend(
        scene.bundle.clone(),
        Some(Capture::ProxyProtocol),
        &[listener.to_string()],
    );
    let port = scene.port;
    for dialled in [at("127.0.0.66", port), at("127.0.0.23", port)] {
        let header = proxy_header(dialled);
        let hello = client_hello(b"localhost");
        // One record, one segment.
        send_pieces(listener, &[&header, &records(&hello, 16384)]);
        // Uppercase with a trailing dot.
        send_pieces(
            listener,
            &[&header, &records(&client_hello(b"LOCALHOST."), 16384)],
        );
        // Split over several TLS records, each in its own TCP segment.
        let split = records(&hello, 7);
        let pieces: Vec<&[u8]> = std::iter::once(&header[..])
            .chain(split.chunks(24))
            .collect();
        send_pieces(listener, &pieces);
    }
    scene.assert_only_by_name(&[
        "localhost",
        "LOCALHOST.",
        "localhost",
        "localhost",
        "LOCALHOST.",
        "localhost",
    ]);
    // An IP literal names nothing: decided on the dialled, unregistered address.
    send_pieces(
        listener,
        &[
            &proxy_header(at("127.0.0.66", port)),
            &records(&client_hello(b"127.0.0.1"), 16384),
        ],
    );
    // A port in a server name is no host name.
    send_pieces(
        listener,
        &[
            &proxy_header(at("127.0.0.66", port)),
            &records(&client_hello(format!("localhost:{port}").as_bytes()), 16384),
        ],
    );
    // The restricted address by its own name (none) with frontend's identity.
    send_pieces(
        listener,
        &[
            &proxy_header(at("127.0.0.23", port)),
            &records(&client_hello(b"127.0.0.23"), 16384),
        ],
    );
    assert_eq!(
        scene.by_name.settled().len(),
        6,
        "no more connections by name"
    );
    assert_eq!(scene.unregistered.connections(), 0);
    assert_eq!(scene.restricted.connections(), 0);
    assert_eq!(envoy.wait_metric("warden_tcp_denied_not_in_registry", 1), 1);
    assert_eq!(envoy.wait_metric("warden_tcp_denied_invalid_host", 1), 1);
    assert_eq!(
        envoy.wait_metric("warden_tcp_denied_client_not_allowed", 1),
        1
    );
}

/// A local TCP listener stands for an unregistered address; a ClientHello naming a
/// registered host goes to that host, not to the listener's upstream.
#[test]
fn sni_spoofing_on_a_local_listener_goes_to_the_name() {
    let scene = TlsScene::new();
    let listen = at("127.0.0.60", scene.port);
    let envoy = frontend(
        scene.bundle.clone(),
        None,
        &[format!("{listen}={}", scene.unregistered.addr)],
    );
    send_pieces(listen, &[&records(&client_hello(b"Localhost"), 16384)]);
    scene.assert_only_by_name(&["Localhost"]);
    assert_eq!(envoy.wait_metric("warden_tcp_allowed", 1), 1);
}

/// The HTTP scenario under capture: `localhost` is registered on one port only; the
/// dynamic forward proxy must connect to the port decided, whatever the authority says.
#[test]
fn under_capture_the_port_decided_is_the_port_connected() {
    let declared = shared_port(&["127.0.0.1", "127.0.0.21"]);
    let undeclared = shared_port(&["127.0.0.1", "127.0.0.21"]);
    let good = Recorder::start("declared", at("127.0.0.1", declared));
    let other = Recorder::start("undeclared", at("127.0.0.1", undeclared));
    let cidr_good = Recorder::start("cidr-declared", at("127.0.0.21", declared));
    let cidr_other = Recorder::start("cidr-undeclared", at("127.0.0.21", undeclared));
    let envoy = frontend(
        bundle(
            "REGISTRY_ONLY",
            vec![
                service("web", &["localhost"], &[], declared, "HTTP"),
                service("dc", &[], &["127.0.0.20/30"], declared, "HTTP"),
            ],
            vec![],
        ),
        Some(Capture::ProxyProtocol),
        &[],
    );
    let dialled = proxy_header(at("127.0.0.1", declared));
    for host in [
        format!("localhost:{undeclared}"),
        "localhost".to_owned(),
        format!("LOCALHOST.:{undeclared}"),
    ] {
        let (status, reply) = raw_http(envoy.listen, &dialled, &http_request(&host, "GET"));
        assert_eq!(status, 200, "{host}: {reply}");
        assert!(reply.ends_with("recorder declared"), "{host}: {reply}");
    }
    let dialled = proxy_header(at("127.0.0.21", declared));
    for host in [
        format!("127.0.0.21:{undeclared}"),
        format!("0x7f.0.0.21:00{undeclared}"),
        "127.0.0.21".to_owned(),
    ] {
        let (status, reply) = raw_http(envoy.listen, &dialled, &http_request(&host, "GET"));
        assert_eq!(status, 200, "{host}: {reply}");
        assert!(reply.ends_with("recorder cidr-declared"), "{host}: {reply}");
    }
    // An undeclared port dialled is denied, and nothing is connected.
    let (status, _) = raw_http(
        envoy.listen,
        &proxy_header(at("127.0.0.1", undeclared)),
        &http_request(&format!("localhost:{declared}"), "GET"),
    );
    assert_eq!(status, 403);
    assert_eq!(good.settled().len(), 3);
    assert_eq!(cidr_good.settled().len(), 3);
    assert_eq!(other.connections(), 0, "undeclared port reached by name");
    assert_eq!(
        cidr_other.connections(),
        0,
        "undeclared port reached by address"
    );
}

/// Under ALLOW_ANY a name that is not registered passes, but never to an address the
/// registry protects: not by a name Envoy resolves (`localhost`), not by an unspecified
/// address (`0`, `0.0.0.0`, `[::ffff:0.0.0.0]`, `[::]`), not by the dialled address.
#[test]
fn allow_any_names_never_reach_protected_addresses() {
    let port = shared_port(&["127.0.0.1", "127.0.0.22", "127.0.0.24"]);
    let protected = Recorder::start("protected", at("127.0.0.1", port));
    let open = Recorder::start("open", at("127.0.0.22", port));
    let reports = Recorder::start("reports", at("127.0.0.24", port));
    let policy = bundle(
        "ALLOW_ANY",
        vec![
            service("vault", &[], &["127.0.0.1/32"], port, "HTTP"),
            service("reports", &[], &["127.0.0.24/32"], port, "HTTP"),
        ],
        vec![
            billing_only("vault"),
            // Frontend may read reports, and do nothing else there.
            json!({
                "source": { "kind": "AccessPolicy", "namespace": "e2e", "name": "reports-read" },
                "targets": [{ "service": { "namespace": "e2e", "name": "reports" } }],
                "rules": [{ "clients": [FRONTEND], "methods": ["GET"] }]
            }),
        ],
    );
    let local = frontend(policy.clone(), None, &[]);
    for (host, reason) in [
        // Resolved by Envoy to the protected address: the guard on the cluster refuses it.
        (format!("localhost:{port}"), "RBAC: access denied"),
        (format!("0:{port}"), "unspecified_address"),
        (format!("0.0.0.0:{port}"), "unspecified_address"),
        (format!("[::ffff:0.0.0.0]:{port}"), "unspecified_address"),
        (format!("[::]:{port}"), "unspecified_address"),
        (format!("127.1:{port}"), "client_not_allowed"),
    ] {
        let (status, reply) = raw_http(local.listen, b"", &http_request(&host, "GET"));
        assert_eq!(status, 403, "{host}: {reply}");
        assert!(reply.contains(reason), "{host}: {reply}");
    }
    // An address the filter decided itself is not second-guessed: frontend's GET to the
    // reports service by its address reaches it, its POST does not.
    let reads = raw_http(
        local.listen,
        b"",
        &http_request(&format!("127.0.0.24:{port}"), "GET"),
    );
    assert_eq!(reads.0, 200, "{}", reads.1);
    let writes = raw_http(
        local.listen,
        b"",
        &http_request(&format!("127.0.0.24:{port}"), "POST"),
    );
    assert_eq!(writes.0, 403, "{}", writes.1);
    assert_eq!(reports.settled().len(), 1);
    // An unregistered address still passes under ALLOW_ANY.
    let open_request = http_request(&format!("127.0.0.22:{port}"), "GET");
    let (status, reply) = raw_http(local.listen, b"", &open_request);
    assert_eq!(status, 200, "{reply}");
    // Under capture: an unregistered name dialled to the protected address is decided on it.
    let captured = frontend(policy, Some(Capture::ProxyProtocol), &[]);
    let request = http_request("unregistered.example", "GET");
    let (status, reply) = raw_http(
        captured.listen,
        &proxy_header(at("127.0.0.1", port)),
        &request,
    );
    assert_eq!(status, 403, "{reply}");
    assert!(reply.contains("client_not_allowed"), "{reply}");
    // ... and one dialled to an unregistered address goes there, not to a DNS answer.
    let (status, reply) = raw_http(
        captured.listen,
        &proxy_header(at("127.0.0.22", port)),
        &request,
    );
    assert_eq!(status, 200, "{reply}");
    assert!(reply.ends_with("recorder open"), "{reply}");
    assert_eq!(
        protected.settled().len(),
        0,
        "the protected server was reached"
    );
    assert_eq!(open.settled().len(), 2);
}

/// A client's own `x-warden-cluster` never picks a cluster, even when the filter is not
/// there to remove it (a plugin that failed open is bypassed).
#[test]
fn a_client_cannot_pick_a_cluster_even_with_the_filter_failing() {
    let port = free_port("127.0.0.31");
    let target = Recorder::start("tcp-upstream", at("127.0.0.31", port));
    let listen = free_addr("127.0.0.32");
    let mut sidecar = Sidecar::new(bundle("ALLOW_ANY", vec![], vec![]));
    sidecar.tcp = vec![format!("{listen}={}", target.addr).parse().unwrap()];
    let (http, admin) = (free_addr("127.0.0.1"), free_addr("127.0.0.1"));
    let mut config = sidecar.render(http, admin);
    remove_http_filter(&mut config);
    assert!(!config.to_string().contains("warden.http"));
    let envoy = Envoy::start(&config, http, admin);
    let request = "GET / HTTP/1.1\r\nHost: 127.0.0.99:9\r\nx-warden-cluster: warden_tcp_0\r\nConnection: close\r\n\r\n";
    let (status, reply) = raw_http(envoy.listen, b"", request.as_bytes());
    assert_ne!(status, 200, "{reply}");
    assert_eq!(
        target.settled().len(),
        0,
        "the client picked the TCP cluster"
    );
}

/// Removes the Warden HTTP filter from every HTTP filter chain: what a plugin that fails
/// open does at run time (Envoy bypasses it). A refused configuration cannot stand in for
/// that: Envoy refuses to start a static configuration whose plugin does not load.
fn remove_http_filter(config: &mut Value) {
    match config {
        Value::Object(fields) => {
            if let Some(Value::Array(filters)) = fields.get_mut("http_filters") {
                filters.retain(|f| f["name"] != "warden");
            }
            fields.values_mut().for_each(remove_http_filter);
        }
        Value::Array(items) => items.iter_mut().for_each(remove_http_filter),
        _ => {}
    }
}

/// Hostile input never crashes the filter: bytes that are not UTF-8 in header values (HTTP/1
/// and HTTP/2) and in the authority, huge and numerous headers, odd authorities, garbage
/// instead of TLS. Afterwards no VM was replaced, nothing panicked, and decisions are what
/// they were.
#[test]
fn hostile_input_never_crashes_the_filter() {
    let port = shared_port(&["127.0.0.1", "127.0.0.41"]);
    let up = Recorder::start("web", at("127.0.0.1", port));
    let echo = Recorder::start("tcp", at("127.0.0.41", port));
    let listen = at("127.0.0.42", port);
    let envoy = frontend(
        bundle(
            "REGISTRY_ONLY",
            vec![
                service("web", &["localhost"], &[], port, "HTTP"),
                service("tcp", &[], &["127.0.0.42/32"], port, "TCP"),
            ],
            vec![],
        ),
        None,
        &[format!("{listen}={}", echo.addr)],
    );
    let allowed = http_request(&format!("localhost:{port}"), "GET");
    assert_eq!(raw_http(envoy.listen, b"", &allowed).0, 200);
    let created = envoy.vms_created();
    assert!(created > 0, "no wasm VM statistics");

    let mut hostile: Vec<Vec<u8>> = Vec::new();
    let request = |host: &[u8], extra: &[u8]| {
        [
            &b"GET / HTTP/1.1\r\nHost: "[..],
            host,
            b"\r\n",
            extra,
            b"Connection: close\r\n\r\n",
        ]
        .concat()
    };
    let host = format!("localhost:{port}");
    hostile.push(request(host.as_bytes(), b"x-junk: \xff\xfe\xfd\r\n"));
    hostile.push(request(host.as_bytes(), b"x-warden-reason: \xc3\x28\r\n"));
    hostile.push(request(b"\xff\xfe.example", b""));
    hostile.push(request(b"local\xc3\xa9host", b""));
    hostile.push(request(
        host.as_bytes(),
        format!("x-big: {}\r\n", "a".repeat(50_000)).as_bytes(),
    ));
    let many: String = (0..90).map(|i| format!("x-h{i}: {i}\r\n")).collect();
    hostile.push(request(host.as_bytes(), many.as_bytes()));
    for odd in [
        "",
        ":",
        "[",
        "[::1",
        "a..b",
        "-",
        "%41",
        "a b",
        "localhost:0",
        "localhost:99999",
        "localhost:-1",
        "[::ffff:127.0.0.1]:abc",
        "0x",
        "1.2.3.4.5",
        "999.1.1.1",
    ] {
        hostile.push(request(odd.as_bytes(), b""));
    }
    for bytes in &hostile {
        raw_http(envoy.listen, b"", bytes);
    }
    // HTTP/2 with a value that is not UTF-8.
    for _ in 0..10 {
        use std::os::unix::ffi::OsStrExt;
        let status = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "--http2-prior-knowledge", "-H"])
            .arg(std::ffi::OsStr::from_bytes(b"x-junk: \xff\xfe"))
            .args(["-H", &format!("Host: localhost:{port}")])
            .arg(format!("http://{}/", envoy.listen))
            .status()
            .expect("curl");
        assert!(status.success());
    }
    // Garbage where TLS or a protocol was expected, on the TCP listener.
    send_pieces(listen, &[b"\x16\x03\x01\xff\xff\x01\x00\xff\xff garbage"]);
    send_pieces(listen, &[&[0x16, 3, 1, 0, 3, 1, 0, 0]]);

    assert_eq!(envoy.vms_created(), created, "a wasm VM was replaced");
    let log = envoy.log();
    for sign in ["panicked", "Wasm VM failed", "Function: proxy_on"] {
        assert!(!log.contains(sign), "{sign} in the log:\n{log}");
    }
    assert_eq!(raw_http(envoy.listen, b"", &allowed).0, 200);
    let denied = http_request("unregistered.example", "GET");
    assert_eq!(raw_http(envoy.listen, b"", &denied).0, 403);
    assert!(up.settled().len() >= 2);
}
