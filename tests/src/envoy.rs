//! Starting and stopping real Envoy processes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bundle_builder::render::envoy::{bootstrap, EnvoyOptions, GatewayHop, TcpForward};
use bundle_builder::render::tls::MeshTls;
use serde_json::Value;

use crate::{free_addr, repo_root};

/// The Envoy binary: `ENVOY_BIN`, else the one `make envoy` installs.
pub fn envoy_bin() -> PathBuf {
    let path = std::env::var_os("ENVOY_BIN")
        .map(|p| repo_root().join(p))
        .unwrap_or_else(|| repo_root().join(".tools/bin/envoy"));
    assert!(
        path.exists(),
        "no Envoy at {}: run `make envoy`, or set ENVOY_BIN",
        path.display()
    );
    path
}

/// The filter module: `WARDEN_WASM`, else `dist/warden.wasm` from `make build`.
pub fn wasm_path() -> PathBuf {
    let path = std::env::var_os("WARDEN_WASM")
        .map(|p| repo_root().join(p))
        .unwrap_or_else(|| repo_root().join("dist/warden.wasm"));
    assert!(
        path.exists(),
        "no filter at {}: run `make build`, or set WARDEN_WASM",
        path.display()
    );
    std::path::absolute(path).unwrap()
}

/// What a proxy under test should look like: a sidecar, or with `role` `Gateway` the egress
/// gateway.
#[derive(Debug, Clone, Default)]
pub struct Sidecar {
    pub bundle: Value,
    pub identity: Option<String>,
    pub tcp: Vec<TcpForward>,
    /// The node's locality, `REGION/ZONE[/SUBZONE]`.
    pub locality: Option<String>,
    /// Deliver the HTTP filter's configuration through this ECDS file (written by `render`).
    pub ecds: Option<PathBuf>,
    /// Hex public key: the filter accepts only bundles signed with its private half.
    pub public_key: Option<String>,
    /// The workload's mesh certificate, for the hop to the egress gateway.
    pub mesh_tls: Option<MeshTls>,
    /// The egress gateway gateway-routed ports go to.
    pub gateway: Option<GatewayHop>,
    /// `Gateway` renders the egress gateway (`render envoy --role gateway`) instead.
    pub role: warden_bundle::Role,
    /// Traffic capture (`render envoy --capture`); `None`: an explicit local proxy.
    pub capture: Option<bundle_builder::render::envoy::Capture>,
    /// Count verdicts per service too (`render envoy --service-metrics`).
    pub service_metrics: bool,
    /// Listen on the bundle's virtual addresses (`render envoy --virtual-addresses`).
    pub virtual_listeners: bool,
    /// The DNS listener (`render envoy --dns`).
    pub dns: Option<SocketAddr>,
    /// The proxy's resolvers (`render envoy --resolver`).
    pub resolvers: Vec<SocketAddr>,
    /// Another wasm module in Warden's place (the failure-mode test); `None`: Warden's.
    pub wasm: Option<PathBuf>,
}

impl Sidecar {
    pub fn new(bundle: Value) -> Self {
        Self {
            bundle,
            ..Self::default()
        }
    }

    /// The bootstrap `bundle-builder render envoy` produces for this sidecar (and, with
    /// `ecds`, the discovery file it writes).
    pub fn render(&self, listen: SocketAddr, admin: SocketAddr) -> Value {
        if let Some(path) = &self.ecds {
            write_ecds(path, &self.bundle, "initial", self.public_key.as_deref());
        }
        let bundle = warden_bundle::Bundle::from_json(self.bundle.to_string().as_bytes())
            .expect("test bundle parses");
        bootstrap(
            &EnvoyOptions {
                bundle_json: self.bundle.to_string(),
                wasm: self.wasm.clone().unwrap_or_else(wasm_path),
                listen,
                admin,
                tcp: self.tcp.clone(),
                identity: self.identity.clone(),
                locality: self.locality.as_deref().map(warden_bundle::Locality::parse),
                ecds: self.ecds.clone(),
                public_key: self.public_key.clone(),
                role: self.role,
                trust_domain: bundle.spec.trust_domain.clone(),
                mesh_tls: self.mesh_tls.clone(),
                gateway: self.gateway.clone(),
                capture: self.capture,
                service_metrics: self.service_metrics,
                virtual_listeners: self.virtual_listeners,
                dns: self.dns,
                resolvers: self.resolvers.clone(),
            },
            &bundle,
        )
        .expect("renders")
    }

    pub fn start(&self) -> Envoy {
        let (listen, admin) = (free_addr("127.0.0.1"), free_addr("127.0.0.1"));
        Envoy::start(&self.render(listen, admin), listen, admin)
    }
}

/// Writes an ECDS discovery file carrying `bundle`, atomically, as `bundle-builder build
/// --ecds` does.
pub fn write_ecds(path: &std::path::Path, bundle: &Value, version: &str, public_key: Option<&str>) {
    bundle_builder::render::envoy::write_ecds_file(
        path,
        &bundle.to_string(),
        &wasm_path(),
        version,
        public_key,
    )
    .expect("write the ECDS file");
}

/// A running Envoy, stopped when dropped (also when a test fails).
pub struct Envoy {
    child: Child,
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    /// From spawning the process to the admin interface answering `/ready`.
    pub ready_after: Duration,
    dir: tempfile::TempDir,
}

impl Envoy {
    fn spawn(config: &Value, cpu: Option<u32>, concurrency: u32) -> (Child, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("envoy.json");
        std::fs::write(&path, serde_json::to_vec(config).unwrap()).unwrap();
        let log = std::fs::File::create(dir.path().join("envoy.log")).unwrap();
        // `taskset` execs Envoy, so the child's PID is Envoy's.
        let mut command = match cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg(envoy_bin());
                c
            }
            None => Command::new(envoy_bin()),
        };
        let child = command
            .arg("-c")
            .arg(&path)
            .args(["--concurrency", &concurrency.to_string()])
            .args(["--use-dynamic-base-id", "-l", "info"])
            // Access log lines in the log within 200 ms (Envoy's default is 10 s).
            .args(["--file-flush-interval-msec", "200"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start envoy");
        (child, dir)
    }

    /// Starts Envoy and waits until its admin interface reports ready.
    pub fn start(config: &Value, listen: SocketAddr, admin: SocketAddr) -> Self {
        Self::start_pinned(config, listen, admin, None)
    }

    /// Starts Envoy, on one CPU when `cpu` is given (benchmarks), and waits until it is ready.
    pub fn start_pinned(
        config: &Value,
        listen: SocketAddr,
        admin: SocketAddr,
        cpu: Option<u32>,
    ) -> Self {
        Self::start_with(config, listen, admin, cpu, 1)
    }

    /// Starts Envoy pinned to `cpu` (if given) with `concurrency` worker threads, and waits
    /// until its admin interface reports ready.
    pub fn start_with(
        config: &Value,
        listen: SocketAddr,
        admin: SocketAddr,
        cpu: Option<u32>,
        concurrency: u32,
    ) -> Self {
        let started = Instant::now();
        let (child, dir) = Self::spawn(config, cpu, concurrency);
        let mut envoy = Self {
            child,
            listen,
            admin,
            ready_after: Duration::ZERO,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(Some(status)) = envoy.child.try_wait() {
                panic!(
                    "envoy exited with {status} before ready:\n{}",
                    envoy.log_tail()
                );
            }
            if envoy
                .admin_get("/ready")
                .is_some_and(|(code, _)| code == 200)
            {
                envoy.ready_after = started.elapsed();
                return envoy;
            }
            assert!(
                Instant::now() < deadline,
                "envoy not ready in 120 s:\n{}",
                envoy.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts Envoy with a configuration it must refuse; returns its exit status and log.
    pub fn expect_refusal(config: &Value) -> (ExitStatus, String) {
        let (mut child, dir) = Self::spawn(config, None, 1);
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("envoy accepted a configuration it should refuse");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = std::fs::read_to_string(dir.path().join("envoy.log")).unwrap_or_default();
        (status, log)
    }

    /// `GET path` on the admin interface: status and body.
    pub fn admin_get(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect_timeout(&self.admin, Duration::from_secs(1)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).ok()?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw).ok()?;
        let code = raw.split(' ').nth(1)?.parse().ok()?;
        let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
        Some((code, body))
    }

    /// The value of a Prometheus counter or gauge from `/stats/prometheus` (0 when absent):
    /// `name` is a metric name (labels ignored), or a name with its labels exactly as Envoy
    /// writes them (`warden_http_service_allowed{warden_service="e2e.api"}`).
    pub fn metric(&self, name: &str) -> u64 {
        let (_, body) = self.admin_get("/stats/prometheus").expect("admin stats");
        body.lines()
            .find_map(|line| {
                let (key, value) = line.rsplit_once(' ')?;
                let key = if name.contains('{') {
                    key
                } else {
                    key.split('{').next()?
                };
                (key == name).then(|| value.parse().ok()).flatten()
            })
            .unwrap_or(0)
    }

    /// Envoy's own count of wasm VMs created (all runtimes): a VM that panicked is replaced
    /// by a new one.
    pub fn vms_created(&self) -> u64 {
        let (_, stats) = self.admin_get("/stats").expect("admin stats");
        stats
            .lines()
            .filter(|l| l.starts_with("wasm.") && l.contains(".created: "))
            .filter_map(|l| l.rsplit_once(": ")?.1.trim().parse::<u64>().ok())
            .sum()
    }

    /// The sum of Envoy's statistics whose name ends with `suffix`, such as
    /// `.config_reload` over every discovered extension config.
    pub fn stat_sum(&self, suffix: &str) -> u64 {
        let (_, stats) = self.admin_get("/stats").expect("admin stats");
        stats
            .lines()
            .filter_map(|l| l.split_once(": "))
            .filter(|(key, _)| key.ends_with(suffix))
            .filter_map(|(_, value)| value.trim().parse::<u64>().ok())
            .sum()
    }

    /// The value of one of Envoy's own statistics from `/stats` (0 when absent), such as
    /// `cluster.NAME.ssl.fail_verify_san`.
    pub fn stat(&self, name: &str) -> u64 {
        let (_, body) = self.admin_get("/stats").expect("admin stats");
        body.lines()
            .find_map(|line| {
                let (key, value) = line.split_once(": ")?;
                (key == name).then(|| value.trim().parse().ok()).flatten()
            })
            .unwrap_or(0)
    }

    /// Waits (up to 5 s: Envoy flushes access logs periodically) for a log line containing
    /// every one of `parts`, and returns it.
    pub fn wait_log_line(&self, parts: &[&str]) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.log();
            let found = log
                .lines()
                .find(|line| parts.iter().all(|p| line.contains(p)));
            if let Some(line) = found {
                return Some(line.to_owned());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The Envoy process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (up to 5 s: the filter sends its counts once a second) for a counter to reach
    /// `expected`, and returns its last value.
    pub fn wait_metric(&self, name: &str, expected: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let value = self.metric(name);
            if value == expected || Instant::now() > deadline {
                return value;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Envoy's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("envoy.log")).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
