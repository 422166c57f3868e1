//! Internal hostnames: one name for a set of endpoints, closest first, weighted, failing over.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

mod support;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use support::*;
use warden_bundle::{
    Endpoint, EndpointPort, Locality, OutboundMode::RegistryOnly, Provenance, ResourceKind,
    TargetPort,
};
use warden_engine::{Health, Policy, Proximity, Request, RequestProtocol, ResourceName};

fn endpoint(name: &str, address: &str, port: (&str, u16), locality: &str, weight: u32) -> Endpoint {
    Endpoint {
        source: Provenance::new(ResourceKind::ExternalEndpoint, "db", name),
        address: address.into(),
        ports: vec![EndpointPort {
            name: Some(port.0.into()),
            number: port.1,
        }],
        locality: Locality::parse(locality),
        weight,
    }
}

fn orders_db(endpoints: Vec<Endpoint>) -> Policy {
    let mut svc = service("db/orders", &["orders-db.mesh.internal"], &[], &[5432]);
    svc.ports[0].target_port = Some(TargetPort::Name("pg".into()));
    svc.endpoints = endpoints;
    compiled(&bundle(RegistryOnly, vec![svc], vec![]))
}

fn three_regions() -> Policy {
    orders_db(vec![
        endpoint(
            "east-a",
            "127.0.0.21",
            ("pg", 15432),
            "us-east/us-east-1a",
            1,
        ),
        endpoint(
            "east-b",
            "127.0.0.22",
            ("pg", 25432),
            "us-east/us-east-1b",
            1,
        ),
        endpoint("west", "127.0.0.23", ("pg", 5432), "us-west/us-west-2a", 1),
    ])
}

/// Ejects the endpoints at these indices.
struct Ejected(Vec<usize>);

impl Health for Ejected {
    fn is_ejected(&self, _service: &ResourceName, index: usize) -> bool {
        self.0.contains(&index)
    }
}

fn tls<'a>(locality: &'a Locality) -> Request<'a> {
    Request {
        protocol: RequestProtocol::Tls,
        sni: Some("orders-db.mesh.internal"),
        port: Some(5432),
        locality: Some(locality),
        ..Request::default()
    }
}

fn chosen(p: &Policy, request: &Request<'_>, health: &dyn Health, pick: u64) -> String {
    let d = p.decide_with(request, health, pick);
    match d.endpoint() {
        Some(e) => format!("{}:{}", e.address, e.port),
        None => d.reason().to_owned(),
    }
}

/// The endpoint in the proxy's own zone wins, on the port its `targetPort` name gives.
#[test]
fn closest_locality_first_on_the_named_target_port() {
    let p = three_regions();
    let here = Locality::parse("us-east/us-east-1a");
    for pick in 0..10 {
        assert_eq!(
            chosen(&p, &tls(&here), &Ejected(vec![]), pick),
            "127.0.0.21:15432"
        );
    }
    let d = p.decide(&tls(&here));
    assert_eq!(d.endpoint().unwrap().proximity, Proximity::SameZone);
    assert!(
        d.to_string()
            .ends_with("endpoint=127.0.0.21:15432 (db/east-a)"),
        "{d}"
    );
}

/// Ejected endpoints are skipped rank by rank; with none left the request is denied 503.
#[test]
fn failover_walks_outward_then_denies() {
    let p = three_regions();
    let here = Locality::parse("us-east/us-east-1a");
    assert_eq!(
        chosen(&p, &tls(&here), &Ejected(vec![0]), 0),
        "127.0.0.22:25432"
    );
    assert_eq!(
        chosen(&p, &tls(&here), &Ejected(vec![0, 1]), 0),
        "127.0.0.23:5432"
    );
    let d = p.decide_with(&tls(&here), &Ejected(vec![0, 1, 2]), 0);
    assert_eq!((d.is_allowed(), d.reason()), (false, "no_healthy_endpoint"));
    assert_eq!(
        warden_engine::DenyReason::NoHealthyEndpoint.http_status(),
        503
    );
}

/// Within one rank, picks spread exactly by weight.
#[test]
fn weighted_choice_within_a_rank() {
    let p = orders_db(vec![
        endpoint("a", "127.0.0.21", ("pg", 5432), "us-east/us-east-1a", 1),
        endpoint("b", "127.0.0.22", ("pg", 5432), "us-east/us-east-1a", 3),
        endpoint("far", "127.0.0.23", ("pg", 5432), "eu-west/eu-west-1a", 100),
    ]);
    let here = Locality::parse("us-east/us-east-1a");
    let mut counts = [0usize; 2];
    for pick in 0..400 {
        match chosen(&p, &tls(&here), &Ejected(vec![]), pick).as_str() {
            "127.0.0.21:5432" => counts[0] += 1,
            "127.0.0.22:5432" => counts[1] += 1,
            other => panic!("{other}"),
        }
    }
    assert_eq!(counts, [100, 300]);
}

/// Without a proxy locality every endpoint is equally far: weights alone decide.
#[test]
fn unknown_locality_spreads_over_all() {
    let p = three_regions();
    let unused = Locality::default();
    let nowhere = Request {
        locality: None,
        ..tls(&unused)
    };
    let picks: Vec<String> = (0..3)
        .map(|i| chosen(&p, &nowhere, &Ejected(vec![]), i))
        .collect();
    assert_eq!(
        picks,
        ["127.0.0.21:15432", "127.0.0.22:25432", "127.0.0.23:5432"]
    );
}

/// A denied request gets no endpoint: access is decided before routing.
#[test]
fn access_denial_comes_before_endpoint_choice() {
    let mut svc = service("db/orders", &["orders-db.mesh.internal"], &[], &[5432]);
    svc.endpoints = vec![endpoint(
        "east-a",
        "127.0.0.21",
        ("pg", 5432),
        "us-east/us-east-1a",
        1,
    )];
    let access = policy(
        "db/access",
        &[("db/orders", None)],
        vec![clients(&["spiffe://cluster.local/ns/orders/sa/*"])],
    );
    let p = compiled(&bundle(RegistryOnly, vec![svc], vec![access]));
    let here = Locality::parse("us-east/us-east-1a");
    let d = p.decide(&tls(&here));
    assert_eq!((d.reason(), d.endpoint()), ("client_not_allowed", None));
}

/// A FailoverPolicy mapping sends a proxy's traffic, once its own zone is out, to the listed
/// localities in order, ahead of the rest of its region.
#[test]
fn failover_mapping_orders_the_targets() {
    let mut svc = service("db/orders", &["orders-db.mesh.internal"], &[], &[5432]);
    svc.ports[0].target_port = Some(TargetPort::Name("pg".into()));
    svc.endpoints = vec![
        endpoint(
            "east-a",
            "127.0.0.21",
            ("pg", 5432),
            "us-east/us-east-1a",
            1,
        ),
        endpoint(
            "east-b",
            "127.0.0.22",
            ("pg", 5432),
            "us-east/us-east-1b",
            1,
        ),
        endpoint("west", "127.0.0.23", ("pg", 5432), "us-west/us-west-2a", 1),
    ];
    svc.failover = vec![warden_bundle::LocalityMapping {
        from: Locality::parse("us-east"),
        to: vec![Locality::parse("us-west")],
    }];
    let mut p = compiled(&bundle(RegistryOnly, vec![svc], vec![]));
    let here = Locality::parse("us-east/us-east-1a");
    assert_eq!(
        chosen(&p, &tls(&here), &Ejected(vec![]), 0),
        "127.0.0.21:5432"
    );
    assert_eq!(
        chosen(&p, &tls(&here), &Ejected(vec![0]), 0),
        "127.0.0.23:5432"
    );
    assert_eq!(
        chosen(&p, &tls(&here), &Ejected(vec![0, 2]), 0),
        "127.0.0.22:5432"
    );
    p.prepare_for(Some(here.clone()));
    assert_eq!(
        chosen(&p, &tls(&here), &Ejected(vec![]), 7),
        "127.0.0.21:5432"
    );
    // A proxy the mapping does not cover keeps plain proximity.
    let elsewhere = Locality::parse("eu-west/eu-west-1a");
    let d = p.decide(&tls(&elsewhere));
    assert_eq!(d.endpoint().unwrap().proximity, Proximity::Remote);
}
