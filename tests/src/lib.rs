//! Harness for end-to-end tests: a real Envoy with the real filter, real upstream servers on
//! distinct loopback addresses, and a raw HTTP client so tests control every header.
//!
//! Tests need `dist/warden.wasm` (`make build`) and Envoy (`make envoy`), or `WARDEN_WASM` and
//! `ENVOY_BIN` pointing at them. Only loopback addresses are used.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_debug_implementations
)]

pub mod client;
pub mod dns;
pub mod envoy;
pub mod pki;
pub mod postgres;
pub mod recorder;
pub mod tls;
pub mod upstream;

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The bundle `bundle-builder build PATH` makes from manifests (a file or a folder), as JSON;
/// panics with the diagnostics when they do not build.
pub fn build_bundle(path: &std::path::Path) -> serde_json::Value {
    use bundle_builder::build::{build, BuildOptions};
    use bundle_builder::diagnostic::Diagnostics;
    use bundle_builder::manifest::{load::load, source::read_all};
    let files = read_all(&[path.to_path_buf()]).expect("read the manifests");
    let mut diagnostics = Diagnostics::default();
    let resources = load(&files, &mut diagnostics);
    let bundle = build(&resources, &BuildOptions::default(), &mut diagnostics)
        .unwrap_or_else(|| panic!("{} does not build: {diagnostics:?}", path.display()));
    serde_json::from_str(&bundle.to_json_pretty().expect("bundle JSON")).expect("bundle JSON")
}

/// A port free on `ip` right now.
pub fn free_port(ip: &str) -> u16 {
    let ip: IpAddr = ip.parse().expect("loopback address");
    assert!(ip.is_loopback(), "tests only use loopback, not {ip}");
    TcpListener::bind(SocketAddr::new(ip, 0))
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}

/// `ip:port` with a free port.
pub fn free_addr(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().expect("ip"), free_port(ip))
}
