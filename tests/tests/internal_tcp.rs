//! Internal hostnames over TCP: a virtual IP stands for endpoints; Envoy connects to the one
//! the filter chooses (`ORIGINAL_DST`), and fails over when it stops answering.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::json;
use warden_e2e::envoy::Sidecar;
use warden_e2e::free_port;
use warden_e2e::upstream::EchoServer;

fn talk(to: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect(to).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"ping!").ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    (n > 0).then(|| String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Connections to the virtual IP reach the closest endpoint; when it stops, they fail until
/// it is ejected (after the configured number of failed connections), then reach the other.
#[test]
fn virtual_ip_connects_to_the_closest_endpoint_and_fails_over() {
    let port = ["127.0.0.31", "127.0.0.32", "127.0.0.55"]
        .map(free_port)
        .into_iter()
        .max()
        .unwrap();
    let at = |ip: &str| SocketAddr::new(ip.parse().unwrap(), port);
    let near = EchoServer::start(at("127.0.0.31"));
    let far = EchoServer::start(at("127.0.0.32"));
    let endpoint = |name: &str, ip: &str, zone: &str| {
        json!({
            "source": { "kind": "ExternalEndpoint", "namespace": "e2e", "name": name },
            "address": ip, "ports": [{ "number": port }],
            "locality": { "region": "us-east", "zone": zone }
        })
    };
    let bundle = json!({
        "apiVersion": "warden.dev/v1alpha1", "kind": "Bundle",
        "spec": { "outboundMode": "REGISTRY_ONLY", "services": [{
            "source": { "kind": "ExternalService", "namespace": "e2e", "name": "cache" },
            "addresses": ["127.0.0.55"],
            "ports": [{ "number": port, "protocol": "TCP" }],
            "endpoints": [endpoint("near", "127.0.0.31", "us-east-1a"), endpoint("far", "127.0.0.32", "us-east-1b")],
            "outlierDetection": { "consecutiveErrors": 2, "baseEjectionMillis": 60000 }
        }]}
    });
    let mut sidecar = Sidecar::new(bundle);
    sidecar.locality = Some("us-east/us-east-1a".into());
    sidecar.tcp = vec![format!("{}", at("127.0.0.55")).parse().unwrap()];
    let envoy = sidecar.start();
    let vip = at("127.0.0.55");

    assert_eq!(talk(vip).as_deref(), Some("echo:ping!"));
    assert_eq!((near.connections(), far.connections()), (1, 0));

    drop(near);
    let mut failed = 0;
    while talk(vip).as_deref() != Some("echo:ping!") {
        failed += 1;
        assert!(failed <= 5, "never failed over");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A connection's outcome is recorded when Envoy logs the connection, which can come just
    // after the client sees it closed: one more attempt may fail before the ejection shows.
    assert!(
        (2..=3).contains(&failed),
        "ejected after {failed} failed connections, configured 2:\n{}",
        envoy.log()
    );
    assert_eq!(far.connections(), 1);
    assert!(
        envoy
            .log()
            .contains("ejected endpoint e2e/near of e2e/cache"),
        "{}",
        envoy.log()
    );
}

/// On a listener that stands for an internal hostname, an allowed connection for which no
/// endpoint is chosen (here: the address is registered but has no endpoints) is closed, never
/// looped back to the listener by the ORIGINAL_DST cluster.
#[test]
fn connection_without_an_endpoint_is_closed_not_looped() {
    let port = free_port("127.0.0.56");
    let bundle = json!({
        "apiVersion": "warden.dev/v1alpha1", "kind": "Bundle",
        "spec": { "outboundMode": "REGISTRY_ONLY", "services": [{
            "source": { "kind": "ExternalService", "namespace": "e2e", "name": "bare" },
            "addresses": ["127.0.0.56"],
            "ports": [{ "number": port, "protocol": "TCP" }]
        }]}
    });
    let mut sidecar = Sidecar::new(bundle);
    let vip = SocketAddr::new("127.0.0.56".parse().unwrap(), port);
    sidecar.tcp = vec![vip.to_string().parse().unwrap()];
    let envoy = sidecar.start();
    assert_eq!(talk(vip), None);
    // Allowed by the registry, but with nowhere to go: the final verdict is a denial.
    assert!(
        envoy.log().contains("deny route_failed service=e2e/bare"),
        "{}",
        envoy.log()
    );
    assert_eq!(envoy.wait_metric("warden_tcp_denied_route_failed", 1), 1);
    assert_eq!(envoy.metric("warden_tcp_allowed"), 0);
}
