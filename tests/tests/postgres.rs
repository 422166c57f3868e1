//! TCP with a real database: two PostgreSQL servers behind one internal name (a virtual IP);
//! `psql` through the sidecar reaches the closest, and the other when it stops.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;

use serde_json::json;
use warden_e2e::envoy::Sidecar;
use warden_e2e::free_port;
use warden_e2e::postgres::{psql, Postgres};

/// orders-db's virtual IP reaches the PostgreSQL server in the proxy's zone; data written
/// through it reads back through it; when that server stops, new connections reach the other
/// data centre with nothing else changed.
#[test]
fn psql_through_the_internal_name_reaches_the_closest_database_and_fails_over() {
    let port = ["127.0.0.41", "127.0.0.42", "127.0.0.57"]
        .map(free_port)
        .into_iter()
        .max()
        .unwrap();
    let at = |ip: &str| SocketAddr::new(ip.parse().unwrap(), port);
    let east = Postgres::start(at("127.0.0.41"));
    let _west = Postgres::start(at("127.0.0.42"));
    let endpoint = |name: &str, ip: &str, region: &str| {
        json!({
            "source": { "kind": "ExternalEndpoint", "namespace": "databases", "name": name },
            "address": ip, "ports": [{ "name": "postgres", "number": port }],
            "locality": { "region": region, "zone": format!("{region}-1a") }
        })
    };
    let bundle = json!({
        "apiVersion": "warden.dev/v1alpha1", "kind": "Bundle",
        "spec": { "outboundMode": "REGISTRY_ONLY", "services": [{
            "source": { "kind": "ExternalService", "namespace": "databases", "name": "orders-db" },
            "addresses": ["127.0.0.57"],
            "ports": [{ "number": port, "protocol": "TCP", "targetPort": { "name": "postgres" } }],
            "endpoints": [endpoint("orders-db-east", "127.0.0.41", "us-east"), endpoint("orders-db-west", "127.0.0.42", "us-west")],
            "outlierDetection": { "consecutiveErrors": 2, "baseEjectionMillis": 60000 }
        }]}
    });
    let mut sidecar = Sidecar::new(bundle);
    sidecar.locality = Some("us-east/us-east-1a".into());
    let vip = at("127.0.0.57");
    sidecar.tcp = vec![vip.to_string().parse().unwrap()];
    let _envoy = sidecar.start();

    assert_eq!(
        psql(vip, "select host(inet_server_addr())").unwrap(),
        "127.0.0.41"
    );
    psql(vip, "create table orders (id int primary key, item text)").unwrap();
    psql(
        vip,
        "insert into orders values (1, 'widget'), (2, 'gadget')",
    )
    .unwrap();
    assert_eq!(
        psql(vip, "select string_agg(item, ',' order by id) from orders").unwrap(),
        "widget,gadget"
    );

    drop(east);
    let mut failures = Vec::new();
    let server = loop {
        match psql(vip, "select host(inet_server_addr())") {
            Ok(server) => break server,
            Err(e) => failures.push(e),
        }
        assert!(failures.len() <= 5, "never failed over: {failures:?}");
    };
    assert_eq!(server, "127.0.0.42");
    assert!((2..=3).contains(&failures.len()), "{failures:?}");
}
