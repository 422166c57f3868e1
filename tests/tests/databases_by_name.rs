//! Databases by name: plain TCP to services known only by host name. The builder gives each
//! name a virtual address; the sidecar's DNS listener answers the name with it; a connection
//! to it is decided for the service with the caller's identity and goes to the service's own
//! host name, or to the chosen endpoint of an internal name (host-name endpoints included).
//! Real PostgreSQL servers, real `psql`, a zone DNS server for the external names; loopback
//! only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::{IpAddr, SocketAddr};

use serde_json::Value;
use warden_e2e::dns::{free_udp_addr, query, Zone};
use warden_e2e::envoy::Sidecar;
use warden_e2e::postgres::{psql, Postgres};
use warden_e2e::{build_bundle, free_port};

const BILLING: &str = "spiffe://cluster.local/ns/pay/sa/billing";
const FRONTEND: &str = "spiffe://cluster.local/ns/web/sa/frontend";

/// The manifests, as a user writes them: no addresses anywhere, only names; the virtual
/// addresses come from a loopback range so that a proxy on this machine can listen on them.
fn manifests(port: u16) -> String {
    format!(
        r#"
apiVersion: warden.dev/v1alpha1
kind: EgressSettings
metadata: {{name: mesh, namespace: warden-system}}
spec:
  outboundTrafficPolicy: {{mode: REGISTRY_ONLY}}
  virtualAddressRanges: [127.77.0.0/16]
---
# Known only by its own host name: connections go to that name.
apiVersion: networking.gloo.solo.io/v2
kind: ExternalService
metadata: {{name: ledger-db, namespace: databases}}
spec:
  hosts: [ledger-db.example.test]
  ports: [{{name: postgres, number: {port}, protocol: TCP}}]
---
apiVersion: security.policy.gloo.solo.io/v2
kind: AccessPolicy
metadata: {{name: ledger-db-billing-only, namespace: databases}}
spec:
  applyToDestinations:
  - kind: EXTERNAL_SERVICE
    selector: {{name: ledger-db, namespace: databases}}
  config:
    authzList:
    - allowedClients:
      - serviceAccountSelector: {{namespace: pay, name: billing}}
---
# An internal name for a database in two data centres, whose endpoints are host names.
apiVersion: networking.gloo.solo.io/v2
kind: ExternalService
metadata: {{name: orders-db, namespace: databases}}
spec:
  hosts: [orders-db.mesh.internal]
  selector: {{app: orders-db}}
  ports: [{{name: postgres, number: {port}, protocol: TCP, targetPort: {{name: postgres}}}}]
---
apiVersion: networking.gloo.solo.io/v2
kind: ExternalEndpoint
metadata: {{name: orders-db-east, namespace: databases, labels: {{app: orders-db}}}}
spec:
  address: pg-east.dc1.example.test
  ports: [{{name: postgres, number: {port}}}]
  locality: {{region: us-east, zone: us-east-1a}}
---
apiVersion: networking.gloo.solo.io/v2
kind: ExternalEndpoint
metadata: {{name: orders-db-west, namespace: databases, labels: {{app: orders-db}}}}
spec:
  address: pg-west.dc2.example.test
  ports: [{{name: postgres, number: {port}}}]
  locality: {{region: us-west, zone: us-west-2a}}
---
apiVersion: resilience.policy.gloo.solo.io/v2
kind: OutlierDetectionPolicy
metadata: {{name: orders-db-outliers, namespace: databases}}
spec:
  applyToDestinations:
  - kind: EXTERNAL_SERVICE
    selector: {{name: orders-db}}
  config: {{consecutiveErrors: 2, baseEjectionTime: 60s}}
"#
    )
}

/// The virtual address the bundle gives `service`.
fn virtual_address(bundle: &Value, service: &str) -> IpAddr {
    let services = bundle["spec"]["services"].as_array().unwrap();
    let s = services
        .iter()
        .find(|s| s["source"]["name"] == service)
        .unwrap();
    s["virtualAddresses"][0].as_str().unwrap().parse().unwrap()
}

struct World {
    bundle: Value,
    zone: Zone,
    dns: SocketAddr,
}

fn world(port: u16) -> World {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("databases.yaml"), manifests(port)).unwrap();
    let bundle = build_bundle(dir.path());
    // The names of the external hosts, as the data centres' DNS would answer them.
    let zone = Zone::start(&[
        ("ledger-db.example.test", "127.0.0.61"),
        ("pg-east.dc1.example.test", "127.0.0.62"),
        ("pg-west.dc2.example.test", "127.0.0.63"),
    ]);
    World {
        bundle,
        zone,
        dns: free_udp_addr("127.0.0.1"),
    }
}

fn sidecar(world: &World, identity: &str) -> warden_e2e::envoy::Envoy {
    let mut sidecar = Sidecar::new(world.bundle.clone());
    sidecar.identity = Some(identity.into());
    sidecar.locality = Some("us-east/us-east-1a".into());
    sidecar.virtual_listeners = true;
    sidecar.dns = Some(world.dns);
    sidecar.resolvers = vec![world.zone.addr];
    sidecar.start()
}

fn free_port_everywhere() -> u16 {
    ["127.0.0.61", "127.0.0.62", "127.0.0.63"]
        .map(free_port)
        .into_iter()
        .max()
        .unwrap()
}

/// The sidecar's DNS listener answers the registry's names with their virtual addresses and
/// forwards every other name; `psql` by name reaches the database known only by its host
/// name; another identity is denied `client_not_allowed` and the database sees nothing.
#[test]
fn psql_reaches_a_database_known_only_by_name_and_others_are_denied() {
    let port = free_port_everywhere();
    let w = world(port);
    let ledger = Postgres::start(SocketAddr::new("127.0.0.61".parse().unwrap(), port));
    let vip = virtual_address(&w.bundle, "ledger-db");
    assert!(vip.to_string().starts_with("127.77."), "{vip}");
    let billing = sidecar(&w, BILLING);

    // DNS: the name's virtual address; an internal name's; any other name forwarded.
    let answer = query(w.dns, "ledger-db.example.test", false).unwrap();
    assert_eq!(answer.addresses, vec![vip], "{answer:?}\n{}", billing.log());
    let answer = query(w.dns, "orders-db.mesh.internal", false).unwrap();
    assert_eq!(
        answer.addresses,
        vec![virtual_address(&w.bundle, "orders-db")]
    );
    let answer = query(w.dns, "pg-west.dc2.example.test", false).unwrap();
    assert_eq!(
        answer.addresses,
        vec!["127.0.0.63".parse::<IpAddr>().unwrap()]
    );

    // The client connects to what the name resolved to; the database is the real one.
    let to = SocketAddr::new(vip, port);
    psql(to, "create table entries (id int, amount int)")
        .unwrap_or_else(|e| panic!("{e}\n{}", billing.log()));
    psql(to, "insert into entries values (1, 250), (2, 750)").unwrap();
    assert_eq!(psql(to, "select sum(amount) from entries").unwrap(), "1000");
    assert_eq!(
        psql(to, "select host(inet_server_addr())").unwrap(),
        "127.0.0.61"
    );
    assert_eq!(billing.wait_metric("warden_tcp_allowed", 4), 4);
    // The server logs every connection it receives: these four, and its readiness probe.
    assert!(
        ledger.connections_received() >= 5,
        "{}",
        ledger.connections_received()
    );

    // Another workload (its own proxy on the same addresses): denied by the access policy,
    // nothing reaches the database.
    drop(billing);
    let frontend = sidecar(&w, FRONTEND);
    let before = ledger.connections_received();
    let err = psql(to, "select 1").unwrap_err();
    assert!(!err.is_empty());
    assert_eq!(
        frontend.wait_metric("warden_tcp_denied_client_not_allowed", 1),
        1,
        "{}",
        frontend.log()
    );
    assert_eq!(
        ledger.connections_received(),
        before,
        "the database saw a connection"
    );
    assert!(frontend
        .log()
        .contains("deny client_not_allowed service=databases/ledger-db"));
}

/// An internal name whose endpoints are host names: `psql` to its virtual address reaches the
/// closest data centre's database by name, and the other when that one stops.
#[test]
fn psql_by_internal_name_reaches_host_name_endpoints_and_fails_over() {
    let port = free_port_everywhere();
    let w = world(port);
    let east = Postgres::start(SocketAddr::new("127.0.0.62".parse().unwrap(), port));
    let _west = Postgres::start(SocketAddr::new("127.0.0.63".parse().unwrap(), port));
    let envoy = sidecar(&w, BILLING);
    let resolved = query(w.dns, "orders-db.mesh.internal", false).unwrap();
    let to = SocketAddr::new(resolved.addresses[0], port);
    assert_eq!(
        psql(to, "select host(inet_server_addr())")
            .unwrap_or_else(|e| panic!("{e}\n{}", envoy.log())),
        "127.0.0.62"
    );
    drop(east);
    let mut failures = Vec::new();
    let server = loop {
        match psql(to, "select host(inet_server_addr())") {
            Ok(server) => break server,
            Err(e) => failures.push(e),
        }
        assert!(failures.len() <= 5, "never failed over: {failures:?}");
    };
    assert_eq!(server, "127.0.0.63");
    assert!((1..=3).contains(&failures.len()), "{failures:?}");
}
