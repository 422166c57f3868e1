//! `make bench-envoy`: what the filter costs inside a real Envoy, side by side with no filter
//! and with Envoy's native RBAC filter holding the same exact-host allow-list.
//!
//! Every configuration runs at once, each Envoy with `--concurrency 1` pinned to CPU 0; wrk
//! and the upstream (an Envoy answering with `direct_response`) share CPU 1. Runs are
//! interleaved and repeated; the medians are printed as a Markdown table. Envoy CPU per
//! request comes from `/proc/PID/stat`, so the capacity ratio (CPU per request without a
//! filter / with it) does not depend on what else limits the request rate.
//!
//! After the throughput table: RSS by worker count (`--concurrency 1, 2, 4`, no filter and
//! Warden at the largest size), a reload benchmark (the largest bundle replaced through ECDS
//! ten times under steady load), and one Envoy at `BENCH_SCALE` services (loads, decides).
//!
//! Options (environment): `BENCH_ROUNDS` (default 3), `BENCH_SECONDS` per run (default 8),
//! `BENCH_SIZES` (default `10,1000,100000`), `BENCH_BASELINE_WASM` (another build of the
//! filter, such as the previous commit's, run beside the current one at every size;
//! `BENCH_BASELINE_BUILDER`, that build's `bundle-builder`, renders its configurations, as a
//! filter reads only the compiled form of its own engine),
//! `BENCH_FLOOR_WASM` and `BENCH_FLOOR_TRIMMED_WASM` (the do-nothing filter, full and trimmed
//! exports: the floor rows, and the trimmed one reading every request header, and reading
//! three one call each; `make bench-envoy` builds both), `BENCH_WORKERS` (default `1,2,4`),
//! `BENCH_RELOADS` (default 10; 0 skips), `BENCH_SCALE` (default 1000000; 0 skips).
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
    max_ms: f64,
    /// Non-2xx answers and socket errors.
    failed: u64,
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
    let sample = wrk_run(envoy, host, seconds);
    assert!(
        sample.failed == 0,
        "{} failed requests: the benchmark request must be allowed",
        sample.failed
    );
    sample
}

/// Runs wrk against `envoy` for `seconds`; failures are counted, not refused.
fn wrk_run(envoy: &Envoy, host: &str, seconds: u64) -> Sample {
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
    // "Non-2xx or 3xx responses: N" and "Socket errors: connect N, read N, write N, timeout N".
    let count_after = |prefix: &str| -> u64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .map(|rest| {
                rest.split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse::<u64>().ok())
                    .sum()
            })
            .unwrap_or(0)
    };
    let failed = count_after("Non-2xx or 3xx responses:") + count_after("Socket errors:");
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
        max_ms: duration_ms(
            find("Latency")
                .split_whitespace()
                .nth(2)
                .unwrap_or_default(),
        ),
        failed,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), &c| (l.min(c), h.max(c)))
}

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().expect("a comma-separated list of numbers"))
        .collect()
}

/// An Envoy from a rendered configuration, with the ports it was rendered for.
fn start_config(config: &Value, cpu: Option<u32>, concurrency: u32) -> Envoy {
    let port = |pointer: &str| {
        let p = config.pointer(pointer).and_then(Value::as_u64).unwrap();
        std::net::SocketAddr::from(([127, 0, 0, 1], p as u16))
    };
    Envoy::start_with(
        config,
        port("/static_resources/listeners/0/address/socket_address/port_value"),
        port("/admin/address/socket_address/port_value"),
        cpu,
        concurrency,
    )
}

fn render(b: &Value) -> Value {
    Sidecar::new(b.clone()).render(free_addr("127.0.0.1"), free_addr("127.0.0.1"))
}

fn render_with(b: &Value, wasm: &std::path::Path) -> Value {
    let mut sidecar = Sidecar::new(b.clone());
    sidecar.wasm = Some(wasm.to_path_buf());
    sidecar.render(free_addr("127.0.0.1"), free_addr("127.0.0.1"))
}

/// `b` rendered for the baseline build `wasm`: by that build's own `bundle-builder` when
/// `BENCH_BASELINE_BUILDER` names it (a filter reads only the compiled form its own engine
/// writes), else by this one.
fn render_baseline(b: &Value, wasm: &std::path::Path) -> Value {
    let Some(builder) = std::env::var_os("BENCH_BASELINE_BUILDER") else {
        return render_with(b, wasm);
    };
    let dir = tempfile::tempdir().unwrap();
    let (bundle, out) = (
        dir.path().join("bundle.json"),
        dir.path().join("envoy.json"),
    );
    std::fs::write(&bundle, b.to_string()).unwrap();
    let status = Command::new(&builder)
        .args(["render", "envoy", "--bundle"])
        .arg(&bundle)
        .arg("--wasm")
        .arg(wasm)
        .arg("--listen")
        .arg(free_addr("127.0.0.1").to_string())
        .arg("--admin")
        .arg(free_addr("127.0.0.1").to_string())
        .arg("-f")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "{builder:?} render envoy failed");
    serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap()
}

fn main() {
    let rounds: usize = env_or("BENCH_ROUNDS", 3);
    let seconds: u64 = env_or("BENCH_SECONDS", 8);
    let sizes = env_list("BENCH_SIZES", "10,1000,100000");
    let largest = *sizes.iter().max().expect("at least one size");

    let upstream_addr = free_addr("127.0.0.1");
    let upstream_admin = free_addr("127.0.0.1");
    let upstream = Envoy::start_pinned(
        &upstream_config(upstream_addr, upstream_admin),
        upstream_addr,
        upstream_admin,
        Some(LOAD_CPU),
    );
    let port = upstream_addr.port();
    let host = format!("localhost:{port}");

    let mut configs: Vec<(String, Envoy)> = Vec::new();
    let start = |name: String, mut config: Value, edit: &dyn Fn(&mut Value)| {
        edit(&mut config);
        eprintln!("starting {name}");
        (name, start_config(&config, Some(ENVOY_CPU), 1))
    };
    let base = bundle(10, port);
    configs.push(start("no filter".into(), render(&base), &|c| {
        http_filters(c).remove(0);
    }));
    let floors = [
        ("do-nothing wasm filter, full exports", "BENCH_FLOOR_WASM"),
        (
            "do-nothing wasm filter, trimmed",
            "BENCH_FLOOR_TRIMMED_WASM",
        ),
    ];
    let mut floor_trimmed = None;
    for (name, var) in floors {
        if let Some(wasm) = std::env::var_os(var) {
            if var == "BENCH_FLOOR_TRIMMED_WASM" {
                floor_trimmed = Some(configs.len());
            }
            configs.push(start(
                name.into(),
                render_with(&base, std::path::Path::new(&wasm)),
                &|_| {},
            ));
        }
    }
    // The trimmed do-nothing filter reading every request's headers in one call, as Warden
    // does: the floor of any filter that reads them so; and reading only the three Warden
    // decides on, one call each. The root ids are `READ_HEADERS` and `READ_THREE` in
    // tests/noop-filter/src/lib.rs.
    if let Some(wasm) = std::env::var_os("BENCH_FLOOR_TRIMMED_WASM") {
        for (name, root_id) in [
            (
                "do-nothing wasm filter, trimmed, reading the headers",
                "noop.read-headers",
            ),
            (
                "do-nothing wasm filter, trimmed, reading three headers one by one",
                "noop.read-three",
            ),
        ] {
            configs.push(start(
                name.into(),
                render_with(&base, std::path::Path::new(&wasm)),
                &|c| {
                    let filter = http_filters(c)
                        .first_mut()
                        .and_then(|f| f.pointer_mut("/typed_config/config/root_id"))
                        .expect("the rendered HTTP filter has a root id");
                    *filter = json!(root_id);
                },
            ));
        }
    }
    let baseline_wasm = std::env::var_os("BENCH_BASELINE_WASM").map(std::path::PathBuf::from);
    for &n in &sizes {
        configs.push(start(
            format!("warden, {n} services"),
            render(&bundle(n, port)),
            &|_| {},
        ));
        if let Some(wasm) = &baseline_wasm {
            configs.push(start(
                format!("warden baseline build, {n} services"),
                render_baseline(&bundle(n, port), wasm),
                &|_| {},
            ));
        }
    }
    let big = bundle(largest, port);
    let rbac_filter = rbac::http_filter(&serde_json::from_value(big.clone()).unwrap());
    configs.push(start(
        format!("native RBAC matcher, {largest} services"),
        render(&big),
        &|c| {
            http_filters(c)[0] = rbac_filter.clone();
        },
    ));

    // The first request after ready: a worker that decodes its tables for its first stream
    // does it here (docs/loading.md).
    let first: Vec<f64> = configs
        .iter()
        .map(|(_, envoy)| {
            let at = std::time::Instant::now();
            warden_e2e::client::get(envoy.listen, &host, "/", &[]);
            at.elapsed().as_secs_f64() * 1e3
        })
        .collect();
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

    let cpu_of = |i: usize| median(samples[i].iter().map(|s| s.cpu_us_per_request).collect());
    let baseline = cpu_of(0);
    let floor = floor_trimmed.map(cpu_of);
    let no_filter_rss = rss_mb(configs[0].1.pid());
    println!("| configuration | requests/s | Envoy CPU per request (min-max) | capacity vs no filter | CPU vs trimmed do-nothing filter | p50 | p99 | RSS (above no filter) | ready | first request |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (i, ((name, envoy), runs)) in configs.iter().zip(&samples).enumerate() {
        let cpus: Vec<f64> = runs.iter().map(|s| s.cpu_us_per_request).collect();
        let cpu = cpu_of(i);
        let (low, high) = min_max(&cpus);
        let rss = rss_mb(envoy.pid());
        println!(
            "| {name} | {:.0} | {:.1} us ({low:.1}-{high:.1}) | {:.2} | {} | {:.2} ms | {:.2} ms | {rss:.0} MB ({:+.0} MB) | {:.2} s | {:.0} ms |",
            median(runs.iter().map(|s| s.rps).collect()),
            cpu,
            baseline / cpu,
            floor.map_or("-".into(), |f| format!("{:.2}", cpu / f)),
            median(runs.iter().map(|s| s.p50_ms).collect()),
            median(runs.iter().map(|s| s.p99_ms).collect()),
            rss - no_filter_rss,
            envoy.ready_after.as_secs_f64(),
            first[i],
        );
    }
    println!("\n{rounds} interleaved rounds of {seconds} s per configuration; medians. Envoy --concurrency 1 on CPU {ENVOY_CPU}; wrk -t1 -c16 and the upstream on CPU {LOAD_CPU}.");
    drop(configs);

    workers(&env_list("BENCH_WORKERS", "1,2,4"), largest, port, &host);
    let reloads: usize = env_or("BENCH_RELOADS", 10);
    if reloads > 0 {
        reload(largest, reloads, port, &host);
    }
    let scale: usize = env_or("BENCH_SCALE", 1_000_000);
    if scale > 0 {
        at_scale(scale, port);
    }
    drop(upstream);
}

/// RSS by worker count: no filter and Warden with `n` services, each at `--concurrency` 1, 2
/// and 4 (a VM per worker, plus the main thread's), after a few requests.
fn workers(counts: &[usize], n: usize, port: u16, host: &str) {
    if counts.is_empty() {
        return;
    }
    let warden = render(&bundle(n, port));
    let mut none = warden.clone();
    http_filters(&mut none).remove(0);
    println!("\n| --concurrency | no filter RSS | warden, {n} services: RSS | above no filter | per extra worker | ready |");
    println!("|---|---|---|---|---|---|");
    let mut previous: Option<(f64, usize)> = None;
    for &count in counts {
        let workers = u32::try_from(count).expect("a worker count");
        eprintln!("workers: {count}");
        let plain = start_config(&none, None, workers);
        wrk(&plain, host, 1);
        let plain_rss = rss_mb(plain.pid());
        drop(plain);
        let envoy = start_config(&warden, None, workers);
        wrk(&envoy, host, 1);
        let rss = rss_mb(envoy.pid());
        let above = rss - plain_rss;
        let per_worker = previous.map_or("-".to_owned(), |(p, c)| {
            format!("{:+.1} MB", (above - p) / (count - c) as f64)
        });
        println!(
            "| {count} | {plain_rss:.0} MB | {rss:.0} MB | {above:+.0} MB | {per_worker} | {:.2} s |",
            envoy.ready_after.as_secs_f64()
        );
        previous = Some((above, count));
    }
}

/// The `n`-service bundle with one more service named after `version`, so that each reload is
/// a different policy of the same size.
fn variant(n: usize, port: u16, version: usize) -> Value {
    let mut b = bundle(n, port);
    b["spec"]["services"].as_array_mut().unwrap().push(json!({
        "source": { "kind": "ExternalService", "namespace": "bench", "name": format!("reload-{version}") },
        "hosts": [format!("reload-{version}.example.com")], "ports": [{ "number": 443, "protocol": "HTTPS" }]
    }));
    b
}

/// Reloads under load: Warden with `n` services behind file-based ECDS, wrk running, and the
/// bundle replaced `reloads` times (each a different policy), each confirmed by Envoy's ECDS
/// counters before the next, 2 s apart. Prints failed requests, latency over the run that
/// holds the switches (from 2 s before the first to 1 s after the last) beside a run without
/// them, and RSS before the reloads, after the first and after the last (each 1 s after its
/// confirmation).
fn reload(n: usize, reloads: usize, port: u16, host: &str) {
    use bundle_builder::delivery::{confirm, ecds_stats, Confirmation};
    use std::time::{Duration, Instant};
    eprintln!("reload: preparing {reloads} bundles of {n} services");
    let dir = tempfile::tempdir().unwrap();
    let ecds = dir.path().join("ecds.json");
    let mut sidecar = Sidecar::new(variant(n, port, 0));
    sidecar.ecds = Some(ecds.clone());
    let config = sidecar.render(free_addr("127.0.0.1"), free_addr("127.0.0.1"));
    // Every replacement is written beforehand: at its moment it is one rename.
    let staged: Vec<std::path::PathBuf> = (1..=reloads)
        .map(|i| {
            let path = dir.path().join(format!("ecds-{i}.json"));
            warden_e2e::envoy::write_ecds(&path, &variant(n, port, i), &format!("v{i}"), None);
            path
        })
        .collect();
    let envoy = start_config(&config, Some(ENVOY_CPU), 1);
    wrk(&envoy, host, 2);
    let steady = wrk_run(&envoy, host, 10);
    let before_reloads = rss_mb(envoy.pid());
    let spacing = Duration::from_secs(2);
    let seconds = (reloads as u64) * 2 + 3;
    let (result, applied, rss) = std::thread::scope(|scope| {
        let load = scope.spawn(|| wrk_run(&envoy, host, seconds));
        std::thread::sleep(Duration::from_secs(2));
        let mut applied = Vec::new();
        let mut rss = Vec::new();
        for path in &staged {
            let before = ecds_stats(envoy.admin).unwrap();
            let at = Instant::now();
            std::fs::rename(path, &ecds).unwrap();
            match confirm(envoy.admin, &before, Duration::from_secs(60)).unwrap() {
                Confirmation::Accepted { .. } => applied.push(at.elapsed()),
                other => panic!("reload not accepted: {other:?}\n{}", envoy.log()),
            }
            std::thread::sleep(Duration::from_secs(1));
            rss.push(rss_mb(envoy.pid()));
            std::thread::sleep(spacing.saturating_sub(at.elapsed()));
        }
        (load.join().unwrap(), applied, rss)
    });
    let applied_ms: Vec<f64> = applied.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    let (first, last) = (rss[0], rss[rss.len() - 1]);
    println!("\n| reload under load, {n} services | requests/s | failed requests | p99 | max latency | applied after (median, max) | RSS before | after reload 1 | after reload {reloads} | reload 1 to {reloads} | before to {reloads} |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| steady, no reload ({} s) | {:.0} | {} | {:.2} ms | {:.2} ms | - | {before_reloads:.0} MB | - | - | - | - |",
        10, steady.rps, steady.failed, steady.p99_ms, steady.max_ms
    );
    println!(
        "| {reloads} reloads in {seconds} s | {:.0} | {} | {:.2} ms | {:.2} ms | {:.0} ms, {:.0} ms | {before_reloads:.0} MB | {first:.0} MB | {last:.0} MB | {:+.1}% | {:+.1}% |",
        result.rps,
        result.failed,
        result.p99_ms,
        result.max_ms,
        median(applied_ms.clone()),
        min_max(&applied_ms).1,
        (last - first) / first * 100.0,
        (last - before_reloads) / before_reloads * 100.0
    );
}

/// One Envoy at `n` services: what rendering costs (compiling on the host), the size of what
/// travels, start-up and memory, and that it decides (the benchmark host allowed, another
/// denied).
fn at_scale(n: usize, port: u16) {
    use std::time::Instant;
    eprintln!("scale: {n} services");
    let b = bundle(n, port);
    let json_len = b.to_string().len();
    let at = Instant::now();
    let config = render(&b);
    let rendered = at.elapsed().as_secs_f64();
    drop(b);
    let configuration = config
        .pointer("/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/http_filters/0/typed_config/config/configuration/value")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        configuration.starts_with("{\"compiledPolicy\""),
        "the configuration is not the compiled form"
    );
    let configuration_len = configuration.len();
    let envoy = start_config(&config, Some(ENVOY_CPU), 1);
    let allowed = warden_e2e::client::get(envoy.listen, &format!("localhost:{port}"), "/", &[]);
    let denied = warden_e2e::client::get(envoy.listen, "not-registered.example", "/", &[]);
    println!("\n| scale | bundle JSON | plugin configuration (compiled, base64) | render (host) | ready | RSS | registered host | unregistered host |");
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {n} services | {:.0} MB | {:.0} MB | {rendered:.1} s | {:.2} s | {:.0} MB | {} | {} |",
        json_len as f64 / 1e6,
        configuration_len as f64 / 1e6,
        envoy.ready_after.as_secs_f64(),
        rss_mb(envoy.pid()),
        allowed.status,
        denied.status,
    );
}
