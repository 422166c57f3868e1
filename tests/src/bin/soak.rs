//! `make soak`: the filter in a real Envoy under steady load while its bundle is replaced
//! through ECDS every few seconds, for a long time. It reports Envoy's resident memory at the
//! start and the end, requests that failed (anything but the expected 200 or 403), bundles
//! applied, and wasm VMs replaced or panics in the log; it exits non-zero when any request
//! failed, a VM was replaced, something panicked, a reload was refused, or memory grew by 5% or
//! more.
//!
//! Options (environment): `SOAK_MINUTES` (default 30), `SOAK_RELOAD_SECONDS` (default 10),
//! `SOAK_CLIENTS` (default 4 threads), `SOAK_RATE` (requests per second per client, default 50),
//! `SOAK_WARMUP_SECONDS` before the starting memory is taken (default 30).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use warden_e2e::envoy::{write_ecds, Envoy, Sidecar};
use warden_e2e::free_addr;
use warden_e2e::upstream::HttpUpstream;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Bundle `version`: the load's service, and a few hundred others that change with every
/// version, so that each reload is a new policy of realistic size.
fn bundle(port: u16, version: u64) -> Value {
    let mut services = vec![json!({
        "source": { "kind": "ExternalService", "namespace": "soak", "name": "api" },
        "hosts": ["localhost"], "ports": [{ "number": port, "protocol": "HTTP" }]
    })];
    for i in 0..300 {
        services.push(json!({
            "source": { "kind": "ExternalService", "namespace": "soak", "name": format!("svc-{i}") },
            "hosts": [format!("api{i}.v{version}.example.com")],
            "ports": [{ "number": 443, "protocol": "HTTPS" }]
        }));
    }
    json!({ "apiVersion": "warden.dev/v1alpha1", "kind": "Bundle",
            "spec": { "outboundMode": "REGISTRY_ONLY", "services": services } })
}

/// One `GET /` through the proxy; the status, or why there was none. The response is read to
/// the end of its body (`content-length`), not to the end of the connection: Envoy may wait
/// for the client to close first.
fn try_get(proxy: SocketAddr, host: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect(proxy).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&raw);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())
                        .flatten()
                })
                .unwrap_or(0);
            if body.len() >= length {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&raw);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {text:?}"))
}

/// Envoy's resident set size in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[derive(Default)]
struct Counts {
    allowed: AtomicU64,
    denied: AtomicU64,
    failed: AtomicU64,
}

fn log_panics(envoy: &Envoy) -> usize {
    let log = envoy.log();
    ["panicked", "Wasm VM failed", "Function: proxy_on"]
        .iter()
        .map(|sign| log.matches(sign).count())
        .sum()
}

fn main() {
    let minutes: f64 = env_or("SOAK_MINUTES", 30.0);
    let reload_every = Duration::from_secs(env_or("SOAK_RELOAD_SECONDS", 10));
    let clients: usize = env_or("SOAK_CLIENTS", 4);
    let rate: u64 = env_or("SOAK_RATE", 50);
    let warmup = Duration::from_secs(env_or("SOAK_WARMUP_SECONDS", 30));
    let total = Duration::from_secs_f64(minutes * 60.0);

    let upstream = HttpUpstream::start("api", free_addr("127.0.0.1"));
    let port = upstream.addr.port();
    let dir = tempfile::tempdir().unwrap();
    let ecds = dir.path().join("warden-ecds.json");
    let mut sidecar = Sidecar::new(bundle(port, 0));
    sidecar.ecds = Some(ecds.clone());
    let envoy = sidecar.start();
    let pid = envoy.pid();
    let allowed_host = format!("localhost:{port}");
    println!(
        "soak: {minutes} min, bundle reload every {reload_every:?} through ECDS, \
         {clients} clients x {rate} req/s (half allowed, half denied), Envoy pid {pid}"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let first_failure = Arc::new(std::sync::Mutex::new(None::<String>));
    let mut load = Vec::new();
    for c in 0..clients {
        let (stop, counts, first_failure) = (stop.clone(), counts.clone(), first_failure.clone());
        let (listen, allowed_host) = (envoy.listen, allowed_host.clone());
        load.push(std::thread::spawn(move || {
            let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
            let mut next = Instant::now();
            let mut n = c as u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let (host, expected) = if n % 2 == 0 {
                    (allowed_host.as_str(), 200)
                } else {
                    ("unregistered.example.org", 403)
                };
                match try_get(listen, host) {
                    Ok(200) if expected == 200 => {
                        counts.allowed.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(403) if expected == 403 => {
                        counts.denied.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        counts.failed.fetch_add(1, Ordering::Relaxed);
                        let mut first = first_failure.lock().unwrap();
                        first.get_or_insert(format!("{host}: expected {expected}, got {other:?}"));
                    }
                }
                next += interval;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                } else {
                    next = Instant::now();
                }
            }
        }));
    }

    let started = Instant::now();
    let rss_initial = rss_kib(pid);
    let (vms_initial, panics_initial) = (envoy.vms_created(), log_panics(&envoy));
    let applied_initial = envoy.stat_sum(".config_reload");
    let mut rss_start = None;
    let mut version = 0;
    let mut last_report = Instant::now();
    while started.elapsed() < total {
        std::thread::sleep(reload_every);
        version += 1;
        write_ecds(&ecds, &bundle(port, version), &format!("v{version}"), None);
        if rss_start.is_none() && started.elapsed() >= warmup {
            rss_start = Some(rss_kib(pid));
        }
        if last_report.elapsed() >= Duration::from_secs(60) {
            last_report = Instant::now();
            println!(
                "  {:>5.1} min  rss {} KiB  bundles written {version}  applied {}  allowed {}  denied {}  failed {}",
                started.elapsed().as_secs_f64() / 60.0,
                rss_kib(pid),
                envoy.stat_sum(".config_reload"),
                counts.allowed.load(Ordering::Relaxed),
                counts.denied.load(Ordering::Relaxed),
                counts.failed.load(Ordering::Relaxed),
            );
        }
    }
    // Let the last bundle apply under load, then stop.
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    for thread in load {
        thread.join().unwrap();
    }
    let rss_end = rss_kib(pid);
    let rss_start = rss_start.unwrap_or(rss_initial);
    let applied = envoy.stat_sum(".config_reload");
    let refused = envoy.stat_sum(".config_fail");
    // Envoy starts a VM for every configuration it applies; any other is a replacement.
    let vms_created = envoy.vms_created().saturating_sub(vms_initial);
    let vms_replaced = vms_created.saturating_sub(applied.saturating_sub(applied_initial));
    let panics = log_panics(&envoy).saturating_sub(panics_initial);
    let failed = counts.failed.load(Ordering::Relaxed);
    let growth = (rss_end as f64 - rss_start as f64) / rss_start.max(1) as f64 * 100.0;
    println!(
        "soak result: {:.1} min, requests {} allowed + {} denied, failed {failed}; \
         bundles written {version}, applied {applied}, refused {refused}; \
         wasm VMs created {vms_created} (one per bundle applied), replaced {vms_replaced}, \
         panics in the log {panics}; \
         Envoy RSS {rss_initial} KiB at launch, {rss_start} KiB after {warmup:?} warm-up, \
         {rss_end} KiB at the end ({growth:+.1}%)",
        started.elapsed().as_secs_f64() / 60.0,
        counts.allowed.load(Ordering::Relaxed),
        counts.denied.load(Ordering::Relaxed),
    );
    if let Some(first) = first_failure.lock().unwrap().as_ref() {
        println!("first failure: {first}");
    }
    let ok = failed == 0 && panics == 0 && vms_replaced == 0 && refused == 0 && growth < 5.0;
    if !ok {
        eprintln!("soak FAILED\n{}", envoy.log());
        std::process::exit(1);
    }
}
