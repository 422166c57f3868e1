//! The bundle's `failureMode` as `render envoy` writes it (`failure_policy`), against a VM that
//! really fails. Warden's filter cannot be crashed from outside, so a fixture module that
//! panics on `x-crash` (`tests/crash-filter`) stands in for it under the same configuration.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use warden_e2e::client::get;
use warden_e2e::envoy::{Envoy, Sidecar};
use warden_e2e::free_addr;
use warden_e2e::upstream::HttpUpstream;

fn crash_wasm() -> PathBuf {
    let path = std::env::var_os("WARDEN_CRASH_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/wasm32-wasip1/release/warden_crash_filter.wasm")
        });
    assert!(
        path.exists(),
        "no crash fixture at {}: `make test` builds it (cargo build --release -p warden-crash-filter --target wasm32-wasip1)",
        path.display()
    );
    path
}

fn proxy(mode: &str, up: &HttpUpstream) -> Envoy {
    let bundle = json!({ "apiVersion": "warden.dev/v1alpha1", "kind": "Bundle",
        "spec": { "outboundMode": "REGISTRY_ONLY", "failureMode": mode, "services": [{
            "source": { "kind": "ExternalService", "namespace": "e2e", "name": "api" },
            "hosts": ["localhost"], "ports": [{ "number": up.addr.port(), "protocol": "HTTP" }] }] } });
    let mut sidecar = Sidecar::new(bundle);
    sidecar.wasm = Some(crash_wasm());
    sidecar.start()
}

/// `FAIL_CLOSE`: the request that fails the VM is answered 503 and never forwarded, and so is
/// every request until Envoy has started a new VM (`FAIL_RELOAD`, after its reload backoff);
/// then the filter is back in the path. Nothing passes unfiltered in between.
#[test]
fn fail_close_fails_requests_until_a_new_vm_serves() {
    let up = HttpUpstream::start("api", free_addr("127.0.0.1"));
    let host = format!("localhost:{}", up.addr.port());
    let envoy = proxy("FAIL_CLOSE", &up);
    assert_eq!(get(envoy.listen, &host, "/", &[]).status, 200);
    let created = envoy.vms_created();
    for round in 1..=2 {
        let r = get(envoy.listen, &host, "/", &[("x-crash", "1")]);
        assert_eq!(r.status, 503, "round {round}: {r:?}");
        let failed = Instant::now();
        let mut refused = 0;
        loop {
            match get(envoy.listen, &host, "/", &[]).status {
                200 => break,
                503 => refused += 1,
                other => panic!("round {round}: {other}"),
            }
            assert!(
                failed.elapsed() < Duration::from_secs(15),
                "round {round}: no new VM after {refused} refused requests\n{}",
                envoy.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!(
            "FAIL_CLOSE round {round}: served again after {:?} ({refused} requests refused meanwhile)",
            failed.elapsed()
        );
    }
    assert_eq!(
        up.seen().len(),
        3,
        "only the requests a live filter let through arrived"
    );
    assert!(
        envoy.vms_created() > created,
        "no VM was started after the failure"
    );
}

/// `FAIL_OPEN`: the request that fails the VM is 503; from then on traffic flows without the
/// filter: the next request carrying the crash trigger is forwarded, since nothing runs it.
#[test]
fn fail_open_lets_traffic_through_unfiltered() {
    let up = HttpUpstream::start("api", free_addr("127.0.0.1"));
    let host = format!("localhost:{}", up.addr.port());
    let envoy = proxy("FAIL_OPEN", &up);
    assert_eq!(get(envoy.listen, &host, "/", &[]).status, 200);
    let first = get(envoy.listen, &host, "/", &[("x-crash", "1")]);
    assert_eq!(first.status, 503, "{first:?}");
    let after = get(envoy.listen, &host, "/", &[("x-crash", "1")]);
    assert_eq!(after.status, 200, "{after:?}\n{}", envoy.log());
    assert_eq!(up.seen().len(), 2, "the unfiltered request arrived");
}
