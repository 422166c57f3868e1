//! Internal hostnames in a real Envoy: one name for several endpoints, closest first, by weight.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;

use serde_json::{json, Value};
use warden_e2e::client::get;
use warden_e2e::envoy::Sidecar;
use warden_e2e::free_port;
use warden_e2e::upstream::HttpUpstream;

fn endpoint(name: &str, ip: &str, port: u16, locality: (&str, &str), weight: u32) -> Value {
    json!({
        "source": { "kind": "ExternalEndpoint", "namespace": "e2e", "name": name },
        "address": ip,
        "ports": [{ "name": "http", "number": port }],
        "locality": { "region": locality.0, "zone": locality.1 },
        "weight": weight
    })
}

/// The `orders-api.mesh.internal` bundle over these endpoints.
fn orders_api(endpoints: Vec<Value>, outlier_detection: Option<Value>) -> Value {
    let mut service = json!({
        "source": { "kind": "ExternalService", "namespace": "e2e", "name": "orders-api" },
        "hosts": ["orders-api.mesh.internal"],
        "ports": [{ "number": 80, "protocol": "HTTP", "targetPort": { "name": "http" } }],
        "endpoints": endpoints
    });
    if let Some(outlier) = outlier_detection {
        service["outlierDetection"] = outlier;
    }
    json!({
        "apiVersion": "warden.dev/v1alpha1", "kind": "Bundle",
        "spec": { "outboundMode": "REGISTRY_ONLY", "services": [service] }
    })
}

/// A sidecar in us-east-1a sends `orders-api.mesh.internal` only to its zone's endpoints, split
/// by weight; a sidecar in us-west-2a sends it to the west endpoint. The upstreams are real
/// servers on three loopback addresses.
#[test]
fn internal_hostname_goes_to_the_closest_endpoints_by_weight() {
    let port = ["127.0.0.27", "127.0.0.28", "127.0.0.29"]
        .map(free_port)
        .into_iter()
        .max()
        .unwrap();
    let addr = |ip: &str| SocketAddr::new(ip.parse().unwrap(), port);
    let (a, b, west) = (
        HttpUpstream::start("east-a", addr("127.0.0.27")),
        HttpUpstream::start("east-b", addr("127.0.0.28")),
        HttpUpstream::start("west", addr("127.0.0.29")),
    );
    let bundle = orders_api(
        vec![
            endpoint("east-a", "127.0.0.27", port, ("us-east", "us-east-1a"), 1),
            endpoint("east-b", "127.0.0.28", port, ("us-east", "us-east-1a"), 3),
            endpoint("west", "127.0.0.29", port, ("us-west", "us-west-2a"), 1),
        ],
        None,
    );
    let mut sidecar = Sidecar::new(bundle);
    sidecar.locality = Some("us-east/us-east-1a".into());
    let east = sidecar.start();
    for _ in 0..40 {
        let r = get(east.listen, "orders-api.mesh.internal", "/", &[]);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(
        (a.seen().len(), b.seen().len(), west.seen().len()),
        (10, 30, 0)
    );
    assert!(
        a.seen()
            .iter()
            .all(|s| s.host == "orders-api.mesh.internal"),
        "the Host header is kept"
    );

    sidecar.locality = Some("us-west/us-west-2a".into());
    let far = sidecar.start();
    let r = get(far.listen, "orders-api.mesh.internal", "/", &[]);
    assert_eq!((r.status, r.body.as_str()), (200, "upstream west"));
}

fn wait_for(envoy: &warden_e2e::envoy::Envoy, host: &str, body: &str, seconds: u64) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let mut failures = 0;
    loop {
        let r = get(envoy.listen, host, "/", &[]);
        if r.status == 200 && r.body == body {
            return failures;
        }
        failures += 1;
        assert!(
            std::time::Instant::now() < deadline,
            "never reached {body}; last answer {} {}",
            r.status,
            r.body
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Stop the closest endpoint and, after the configured number of failures, traffic moves to
/// the next zone, then to the next region; restart it and it is used again once its ejection
/// time is over.
#[test]
fn failing_endpoints_are_ejected_and_come_back() {
    let port = ["127.0.0.21", "127.0.0.22", "127.0.0.23"]
        .map(free_port)
        .into_iter()
        .max()
        .unwrap();
    let addr = |ip: &str| SocketAddr::new(ip.parse().unwrap(), port);
    let east_a = HttpUpstream::start("east-a", addr("127.0.0.21"));
    let east_b = HttpUpstream::start("east-b", addr("127.0.0.22"));
    let _west = HttpUpstream::start("west", addr("127.0.0.23"));
    let bundle = orders_api(
        vec![
            endpoint("east-a", "127.0.0.21", port, ("us-east", "us-east-1a"), 1),
            endpoint("east-b", "127.0.0.22", port, ("us-east", "us-east-1b"), 1),
            endpoint("west", "127.0.0.23", port, ("us-west", "us-west-2a"), 1),
        ],
        Some(json!({ "consecutiveErrors": 2, "baseEjectionMillis": 3000 })),
    );
    let mut sidecar = Sidecar::new(bundle);
    sidecar.locality = Some("us-east/us-east-1a/rack1".into());
    let envoy = sidecar.start();
    let host = "orders-api.mesh.internal";
    assert_eq!(get(envoy.listen, host, "/", &[]).body, "upstream east-a");

    drop(east_a);
    let failures = wait_for(&envoy, host, "upstream east-b", 10);
    assert_eq!(
        failures, 2,
        "ejected after exactly the configured number of failures"
    );
    // Envoy writes its log on its own schedule: wait for the line.
    assert!(
        envoy
            .wait_log_line(&["ejected endpoint e2e/east-a of e2e/orders-api"])
            .is_some(),
        "{}",
        envoy.log()
    );

    drop(east_b);
    assert_eq!(wait_for(&envoy, host, "upstream west", 10), 2);

    let _east_a = HttpUpstream::start("east-a again", addr("127.0.0.21"));
    let started = std::time::Instant::now();
    wait_for(&envoy, host, "upstream east-a again", 15);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1500),
        "not before its ejection time"
    );
}
