//! `make bench-envoy`: what the filter costs inside a real Envoy, side by side with no filter
//! and with Envoy's native RBAC filter holding the same exact-host allow-list.
//!
//! Every configuration runs at once, each Envoy with `--concurrency 1` pinned to CPU 0; wrk
//! and the upstream (an Envoy answering with `direct_response`) share CPU 1. Runs are
//! interleaved and repeated; the medians are printed as a Markdown table. Envoy CPU per
//! request comes from `/proc/PID/stat`, so the capacity ratio (CPU per request without a
//! filter / with it) does not depend on what else limits the request rate.
//!
//! Options (environment): `BENCH_ROUNDS` (default 3), `BENCH_SECONDS` per run (default 8),
//! `BENCH_SIZES` (default `10,1000,100000`), `BENCH_BASELINE_WASM` (another build of the
//! filter, such as the previous commit's, run beside the current one at every size).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::process::Command;

use bundle_builder::render::rbac;
use serde_json::{json, Value};
use warden_e2e::envoy::{Envoy, Sidecar};
use warden_e2e::free_addr;

const ENVOY_CPU: u32 = 0;
const LOAD_CPU: u32 = 1;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `n` services: 60% exact hosts, 20% wildcards, 20% /24 networks, plus `localhost:<port>`,
/// the host every benchmark request uses.
fn bundle(n: usize, port: u16) -> Value {
    let mut services = vec![json!({
        "source": { "kind": "ExternalService", "namespace": "bench", "name": "target" },
        "hosts": ["localhost"], "ports": [{ "number": port, "protocol": "HTTP" }]
    })];
    for i in 1..n {
        let source = json!({ "kind": "ExternalService", "namespace": format!("team{}", i % 50), "name": format!("svc-{i}") });
        services.push(match i % 5 {
            0..=2 => json!({ "source": source, "hosts": [format!("api{i}.vendor{}.example.com", i % 97)],
                "ports": [{ "number": 443, "protocol": "HTTPS" }, { "number": 80, "protocol": "HTTP" }] }),
            3 => json!({ "source": source, "hosts": [format!("*.tenant{i}.saas.example.net")],
                "ports": [{ "number": 443, "protocol": "HTTPS" }] }),
            _ => json!({ "source": source, "addresses": [format!("{}.{}.{}.0/24", 10 + (i >> 16), (i >> 8) & 0xff, i & 0xff)],
                "ports": [{ "number": 5432, "protocol": "TCP" }] }),
        });
    }
    json!({ "apiVersion": "warden.dev/v1alpha1", "kind": "Bundle",
            "spec": { "outboundMode": "REGISTRY_ONLY", "services": services } })
}

fn http_filters(config: &mut Value) -> &mut Vec<Value> {
    config
        .pointer_mut(
            "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/http_filters",
        )
        .and_then(Value::as_array_mut)
        .expect("the rendered sidecar has an HTTP filter chain")
}

fn upstream_config(listen: std::net::SocketAddr, admin: std::net::SocketAddr) -> Value {
    json!({
        "admin": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": admin.port() } } },
        "static_resources": { "listeners": [{
            "name": "upstream",
            "address": { "socket_address": { "address": listen.ip().to_string(), "port_value": listen.port() } },
            "filter_chains": [{ "filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "upstream",
                    "route_config": { "virtual_hosts": [{ "name": "all", "domains": ["*"], "routes": [{
                        "match": { "prefix": "/" }, "direct_response": { "status": 200, "body": { "inline_string": "ok" } } }] }] },
                    "http_filters": [{ "name": "envoy.filters.http.router",
                        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } }]
                }
            }]}]
        }]}
    })
}

/// User plus system CPU time of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    let after_name = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of proc(5), counted from `state` (field 3) here.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb / 1024.0
}

struct Sample {
    rps: f64,
    cpu_us_per_request: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn duration_ms(text: &str) -> f64 {
    let (number, unit) = text.split_at(
        text.find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(text.len()),
    );
    let value: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => value / 1000.0,
        "ms" => value,
        "s" => value * 1000.0,
        _ => f64::NAN,
    }
}

fn wrk(envoy: &Envoy, host: &str, seconds: u64) -> Sample {
    let before = cpu_seconds(envoy.pid());
    let out = Command::new("taskset")
        .args([
            "-c",
            &LOAD_CPU.to_string(),
            "wrk",
            "-t1",
            "-c16",
            "--latency",
        ])
        .arg(format!("-d{seconds}s"))
        .args(["-H", &format!("Host: {host}")])
        .arg(format!("http://{}/", envoy.listen))
        .output()
        .expect("run wrk (apt-get install wrk)");
    let cpu = cpu_seconds(envoy.pid()) - before;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("Non-2xx"),
        "non-2xx answers: the benchmark request must be allowed\n{text}"
    );
    let find = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|r| r.trim().to_owned()))
            .unwrap_or_else(|| panic!("no {prefix:?} in wrk output:\n{text}"))
    };
    let requests: f64 = text
        .lines()
        .find_map(|l| {
            l.trim()
                .split_once(" requests in")
                .map(|(n, _)| n.trim().parse().unwrap())
        })
        .expect("request count");
    Sample {
        rps: find("Requests/sec:").parse().unwrap(),
        cpu_us_per_request: cpu * 1e6 / requests,
        p50_ms: duration_ms(&find("50%")),
        p99_ms: duration_ms(&find("99%")),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn main() {
    let rounds: usize = env_or("BENCH_ROUNDS", 3);
    let seconds: u64 = env_or("BENCH_SECONDS", 8);
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "10,1000,100000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("BENCH_SIZES: numbers"))
        .collect();
    let largest = *sizes.iter().max().expect("at least one size");

    let upstream_addr = free_addr("127.0.0.1");
    let upstream_admin = free_addr("127.0.0.1");
    let upstream = Envoy::start_pinned(
        &upstream_config(upstream_addr, upstream_admin),
        upstream_addr,
        upstream_admin,
        Some(LOAD_CPU),
    );
    let host = format!("localhost:{}", upstream_addr.port());

    let mut configs: Vec<(String, Envoy)> = Vec::new();
    let start = |name: String, mut config: Value, edit: &dyn Fn(&mut Value)| {
        edit(&mut config);
        eprintln!("starting {name}");
        let listen = config
            .pointer("/static_resources/listeners/0/address/socket_address/port_value")
            .and_then(Value::as_u64)
            .unwrap();
        let admin = config
            .pointer("/admin/address/socket_address/port_value")
            .and_then(Value::as_u64)
            .unwrap();
        let addr = |p: u64| std::net::SocketAddr::from(([127, 0, 0, 1], p as u16));
        (
            name,
            Envoy::start_pinned(&config, addr(listen), addr(admin), Some(ENVOY_CPU)),
        )
    };
    let render =
        |b: &Value| Sidecar::new(b.clone()).render(free_addr("127.0.0.1"), free_addr("127.0.0.1"));
    let base = bundle(10, upstream_addr.port());
    configs.push(start("no filter".into(), render(&base), &|c| {
        http_filters(c).remove(0);
    }));
    let baseline_wasm = std::env::var_os("BENCH_BASELINE_WASM").map(std::path::PathBuf::from);
    for &n in &sizes {
        configs.push(start(
            format!("warden, {n} services"),
            render(&bundle(n, upstream_addr.port())),
            &|_| {},
        ));
        if let Some(wasm) = &baseline_wasm {
            let mut sidecar = Sidecar::new(bundle(n, upstream_addr.port()));
            sidecar.wasm = Some(wasm.clone());
            configs.push(start(
                format!("warden baseline build, {n} services"),
                sidecar.render(free_addr("127.0.0.1"), free_addr("127.0.0.1")),
                &|_| {},
            ));
        }
    }
    let big = bundle(largest, upstream_addr.port());
    let rbac_filter = rbac::http_filter(&serde_json::from_value(big.clone()).unwrap());
    configs.push(start(
        format!("native RBAC matcher, {largest} services"),
        render(&big),
        &|c| {
            http_filters(c)[0] = rbac_filter.clone();
        },
    ));

    for (name, envoy) in &configs {
        eprintln!("warming up {name}");
        wrk(envoy, &host, 2);
    }
    let mut samples: Vec<Vec<Sample>> = configs.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        for (i, (name, envoy)) in configs.iter().enumerate() {
            eprintln!("round {round}/{rounds}: {name}");
            samples[i].push(wrk(envoy, &host, seconds));
        }
    }

    let baseline = median(samples[0].iter().map(|s| s.cpu_us_per_request).collect());
    println!("| configuration | requests/s | Envoy CPU per request (min-max) | capacity vs no filter | p50 | p99 | RSS | ready |");
    println!("|---|---|---|---|---|---|---|---|");
    for ((name, envoy), runs) in configs.iter().zip(&samples) {
        let cpus: Vec<f64> = runs.iter().map(|s| s.cpu_us_per_request).collect();
        let cpu = median(cpus.clone());
        let (low, high) = cpus
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &c| (l.min(c), h.max(c)));
        println!(
            "| {name} | {:.0} | {:.1} us ({low:.1}-{high:.1}) | {:.2} | {:.2} ms | {:.2} ms | {:.0} MB | {:.2} s |",
            median(runs.iter().map(|s| s.rps).collect()),
            cpu,
            baseline / cpu,
            median(runs.iter().map(|s| s.p50_ms).collect()),
            median(runs.iter().map(|s| s.p99_ms).collect()),
            rss_mb(envoy.pid()),
            envoy.ready_after.as_secs_f64(),
        );
    }
    println!("\n{rounds} interleaved rounds of {seconds} s per configuration; medians. Envoy --concurrency 1 on CPU {ENVOY_CPU}; wrk -t1 -c16 and the upstream on CPU {LOAD_CPU}.");
    drop(upstream);
}
