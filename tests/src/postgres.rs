//! Real PostgreSQL servers for tests: Debian's `postgresql` package, one server per loopback
//! address, each in a temporary data directory and run as the unprivileged `postgres` user
//! (PostgreSQL refuses to run as root). Stopped (killed, as an outage) when dropped.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server binaries of the installed PostgreSQL (`/usr/lib/postgresql/<version>/bin`).
pub fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .filter(|b| b.join("postgres").exists())
        .unwrap_or_else(|| {
            panic!("no PostgreSQL server: run `make postgres` (Debian's postgresql package)")
        })
}

fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("run id");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u32>()
            .expect("the postgres user exists")
    };
    (id("-u"), id("-g"))
}

/// `program` as the `postgres` user. `setpriv` execs it (no wrapper process), so the child is
/// the program itself and can be signalled.
fn as_postgres(program: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=postgres",
        "--regid=postgres",
        "--clear-groups",
        "--",
    ])
    .arg(program);
    c
}

/// A running PostgreSQL server.
pub struct Postgres {
    pub addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Postgres {
    /// Initialises a cluster (trust authentication, user `postgres`) and starts it on `addr`.
    pub fn start(addr: SocketAddr) -> Self {
        let bin = bin_dir();
        let dir = tempfile::tempdir().unwrap();
        let (uid, gid) = postgres_ids();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        let data = dir.path().join("data");
        let init = as_postgres(&bin.join("initdb"))
            .args(["--auth=trust", "--username=postgres", "--no-sync", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .output()
            .expect("run initdb");
        assert!(
            init.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let child = as_postgres(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .args([
                "-c",
                &format!("listen_addresses={}", addr.ip()),
                "-p",
                &addr.port().to_string(),
            ])
            .args(["-c", "fsync=off", "-c", "log_connections=on"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap())
            .spawn()
            .expect("start postgres");
        let server = Self {
            addr,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "postgres on {addr} did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }
}

impl Postgres {
    /// Connections the server has received so far (its `log_connections` lines), readiness
    /// probes included: compare before and after.
    pub fn connections_received(&self) -> usize {
        std::fs::read_to_string(self._dir.path().join("server.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("connection received"))
            .count()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // `runuser` runs postgres as its child: stop the whole process group of the server.
        let _ = Command::new("pkill")
            .args([
                "-KILL",
                "-f",
                "--",
                &format!(
                    "listen_addresses={} -p {}",
                    self.addr.ip(),
                    self.addr.port()
                ),
            ])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one SQL statement with `psql` against `addr`; returns its unaligned output, or the
/// error text.
pub fn psql(addr: SocketAddr, sql: &str) -> Result<String, String> {
    let conn = format!(
        "host={} port={} user=postgres dbname=postgres connect_timeout=5 sslmode=disable",
        addr.ip(),
        addr.port()
    );
    let out = Command::new("psql")
        .args([conn.as_str(), "-v", "ON_ERROR_STOP=1", "-Atc", sql])
        .output()
        .map_err(|e| format!("run psql: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}
