//! `decide` and `compile` at 10, 1,000 and 100,000 services (exact, wildcard and CIDR mixed),
//! hits and misses; and the compiled policy's memory per service, measured with a counting
//! allocator. Run with `make bench`; `scripts/bench-summary.sh` prints the medians.
#![allow(
    unsafe_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_debug_implementations
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::IpAddr;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use warden_bundle::{
    Bundle, BundleSpec, ExternalService, OutboundMode, Protocol, Provenance, ResourceKind,
    ServicePort,
};
use warden_engine::compact::open;
use warden_engine::{compile, AllHealthy, Listener, Policy, Request, RequestProtocol};

/// Counts live heap bytes, to measure what a compiled policy holds.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
/// The most `LIVE` reached since it was last reset.
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(by: isize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: delegates to the system allocator and only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SIZES: [usize; 3] = [10, 1_000, 100_000];

fn port(number: u16, protocol: Protocol) -> ServicePort {
    ServicePort {
        name: None,
        number,
        protocol,
        target_port: None,
        tls: None,
        egress_gateway: None,
    }
}

/// Service `i`: 60% exact hosts, 20% wildcard hosts, 20% IPv4 /24 networks.
fn service(i: usize) -> ExternalService {
    let (hosts, addresses, ports) = match i % 5 {
        0..=2 => (
            vec![format!("api{i}.vendor{}.example.com", i % 97)],
            vec![],
            vec![port(443, Protocol::Https), port(80, Protocol::Http)],
        ),
        3 => (
            vec![format!("*.tenant{i}.saas.example.net")],
            vec![],
            vec![port(443, Protocol::Https)],
        ),
        _ => (
            vec![],
            vec![format!(
                "{}.{}.{}.0/24",
                10 + (i >> 16),
                (i >> 8) & 0xff,
                i & 0xff
            )],
            vec![port(5432, Protocol::Tcp)],
        ),
    };
    ExternalService {
        source: Provenance::new(
            ResourceKind::ExternalService,
            format!("team{}", i % 50),
            format!("svc-{i}"),
        ),
        hosts,
        addresses,
        ports,
        virtual_addresses: Vec::new(),
        endpoints: Vec::new(),
        workspaces: Vec::new(),
        subject_alt_names: Vec::new(),
        outlier_detection: None,
        failover: Vec::new(),
    }
}

fn bundle(n: usize) -> Bundle {
    Bundle::new(BundleSpec {
        outbound_mode: OutboundMode::RegistryOnly,
        services: (0..n).map(service).collect(),
        ..BundleSpec::default()
    })
}

/// A request for each case, against a bundle of `n` services.
fn cases(n: usize) -> Vec<(&'static str, String, Option<IpAddr>, RequestProtocol, u16)> {
    let exact = n / 2 / 5 * 5; // an exact-host service in the middle
    let wildcard = exact + 3;
    let cidr = service(exact + 4).addresses[0].replace(".0/24", ".77");
    vec![
        (
            "exact_hit",
            format!("api{exact}.vendor{}.example.com", exact % 97),
            None,
            RequestProtocol::Http,
            80,
        ),
        (
            "wildcard_hit",
            format!("eu.tenant{wildcard}.saas.example.net"),
            None,
            RequestProtocol::Http,
            443,
        ),
        (
            "cidr_hit",
            String::new(),
            Some(cidr.parse().unwrap()),
            RequestProtocol::Tcp,
            5432,
        ),
        (
            "host_miss",
            "www.unknown-vendor.example.org".into(),
            None,
            RequestProtocol::Http,
            80,
        ),
        (
            "ip_miss",
            String::new(),
            Some("192.0.2.10".parse().unwrap()),
            RequestProtocol::Tcp,
            5432,
        ),
    ]
}

fn bench_decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");
    group
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    for n in SIZES {
        let policy = compile(&bundle(n)).unwrap();
        for (case, host, ip, protocol, port) in cases(n) {
            let request = Request {
                protocol,
                host: (!host.is_empty()).then_some(host.as_str()),
                destination: ip,
                port: Some(port),
                ..Request::default()
            };
            let expected_hit = case.ends_with("hit");
            assert_eq!(
                policy.decide(&request).is_allowed(),
                expected_hit,
                "{case} at {n}"
            );
            group.bench_with_input(BenchmarkId::new(case, n), &request, |b, r| {
                b.iter(|| black_box(policy.decide(black_box(r)).is_allowed()))
            });
            // What the filter runs per request: the decision, then the route planned for it.
            let listener = match protocol {
                RequestProtocol::Http => Listener::Http,
                _ => Listener::Tcp,
            };
            let id = BenchmarkId::new(format!("{case}+route"), n);
            group.bench_with_input(id, &request, |b, r| {
                b.iter(|| {
                    let d = policy.decide_and_route(
                        black_box(r),
                        listener,
                        false,
                        &AllHealthy,
                        0,
                        |route| black_box(route).cluster.is_none(),
                    );
                    black_box(d.is_allowed())
                })
            });
        }
    }
    group.finish();
}

/// One internal hostname with `n` endpoints over 10 regions x 10 zones; the proxy is in one
/// of the zones. Compared with the same service without endpoints.
fn bench_endpoint_choice(c: &mut Criterion) {
    use warden_bundle::{Endpoint, EndpointPort, Locality};
    let mut group = c.benchmark_group("endpoint_choice");
    group
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    for n in [0usize, 10, 1_000] {
        let mut svc = service(0);
        svc.endpoints = (0..n)
            .map(|i| Endpoint {
                source: Provenance::new(ResourceKind::ExternalEndpoint, "db", format!("ep-{i}")),
                address: format!("10.{}.{}.{}", i >> 16 & 0xff, i >> 8 & 0xff, i & 0xff),
                ports: vec![EndpointPort {
                    name: None,
                    number: 443,
                }],
                locality: Locality::parse(&format!("r{}/r{}-z{}", i % 10, i % 10, (i / 10) % 10)),
                weight: 1,
            })
            .collect();
        let host = svc.hosts[0].clone();
        let policy = compile(&Bundle::new(BundleSpec {
            outbound_mode: OutboundMode::RegistryOnly,
            services: vec![svc],
            ..BundleSpec::default()
        }))
        .unwrap();
        let here = Locality::parse("r3/r3-z7");
        // As the filter does at load: rank the endpoints once for this proxy.
        let mut policy = policy;
        policy.prepare_for(Some(here.clone()));
        let request = Request {
            protocol: RequestProtocol::Http,
            host: Some(host.as_str()),
            port: Some(443),
            locality: Some(&here),
            ..Request::default()
        };
        assert!(policy.decide(&request).is_allowed());
        assert_eq!(policy.decide(&request).endpoint().is_some(), n > 0);
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| black_box(policy.decide(black_box(&request)).is_allowed()))
        });
    }
    group.finish();
}

fn bench_compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for n in SIZES {
        let b = bundle(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &b, |bench, b| {
            bench.iter(|| black_box(compile(b).unwrap()))
        });
    }
    group.finish();

    for n in SIZES {
        let b = bundle(n);
        let before = LIVE.load(Ordering::Relaxed);
        let policy = compile(&b).unwrap();
        let held = LIVE.load(Ordering::Relaxed) - before;
        println!(
            "compiled policy memory: {n} services hold {held} bytes ({} bytes per service)",
            held / n as isize
        );
        drop(policy);
    }
}

/// What loading costs a VM: the bundle's JSON parsed and compiled, against the compiled form
/// opened (framing, checksum) and decoded (tables, index checks). Time, and the peak heap
/// above the input bytes each path needs.
fn bench_load(c: &mut Criterion) {
    let mut group = c.benchmark_group("load");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for n in SIZES {
        let b = bundle(n).seal().unwrap();
        let json = b.to_json_pretty().unwrap().into_bytes();
        let compiled = compile(&b).unwrap().to_compact().unwrap();
        let from_json = || compile(&Bundle::from_json(&json).unwrap()).unwrap();
        let from_compiled = || Policy::from_compact(&open(&compiled).unwrap()).unwrap();
        group.bench_function(BenchmarkId::new("json", n), |bench| {
            bench.iter(|| black_box(from_json()))
        });
        group.bench_function(BenchmarkId::new("compiled", n), |bench| {
            bench.iter(|| black_box(from_compiled()))
        });
        let peak = |load: &dyn Fn() -> Policy| {
            let base = LIVE.load(Ordering::Relaxed);
            PEAK.store(base, Ordering::Relaxed);
            let policy = load();
            let (peak, held) = (
                PEAK.load(Ordering::Relaxed) - base,
                LIVE.load(Ordering::Relaxed) - base,
            );
            drop(policy);
            (peak, held)
        };
        let (json_peak, json_held) = peak(&from_json);
        let (compiled_peak, compiled_held) = peak(&from_compiled);
        println!(
            "load {n} services: JSON {} bytes, peak {json_peak} bytes, holds {json_held}; compiled form {} bytes, peak {compiled_peak} bytes, holds {compiled_held}",
            json.len(),
            compiled.len()
        );
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_decide,
    bench_endpoint_choice,
    bench_compile,
    bench_load
);
criterion_main!(benches);
