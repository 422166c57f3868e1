//! Live reload through file-based ECDS: a new bundle takes effect within seconds under steady
//! load with no failed request; a broken bundle is rejected and the previous policy serves on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use warden_e2e::client::get;
use warden_e2e::envoy::{write_ecds, Sidecar};
use warden_e2e::free_addr;
use warden_e2e::upstream::HttpUpstream;

fn bundle(services: Value) -> Value {
    json!({ "apiVersion": "warden.dev/v1alpha1", "kind": "Bundle",
            "spec": { "outboundMode": "REGISTRY_ONLY", "services": services } })
}

#[test]
fn new_bundle_applies_live_and_a_broken_one_is_refused() {
    let up = HttpUpstream::start("api", free_addr("127.0.0.1"));
    let host = format!("localhost:{}", up.addr.port());
    let allowing = bundle(json!([{
        "source": { "kind": "ExternalService", "namespace": "e2e", "name": "api" },
        "hosts": ["localhost"], "ports": [{ "number": up.addr.port(), "protocol": "HTTP" }]
    }]));
    let denying = bundle(json!([]));
    let dir = tempfile::tempdir().unwrap();
    let ecds = dir.path().join("warden-ecds.json");
    let mut sidecar = Sidecar::new(allowing);
    sidecar.ecds = Some(ecds.clone());
    let envoy = sidecar.start();
    assert_eq!(get(envoy.listen, &host, "/", &[]).status, 200);

    // Steady load while the policy changes.
    let stop = Arc::new(AtomicBool::new(false));
    let (listen, load_host, halt) = (envoy.listen, host.clone(), stop.clone());
    let load = std::thread::spawn(move || {
        let mut statuses = Vec::new();
        while !halt.load(Ordering::SeqCst) {
            statuses.push(get(listen, &load_host, "/", &[]).status);
        }
        statuses
    });
    std::thread::sleep(Duration::from_millis(300));
    let switched = Instant::now();
    write_ecds(&ecds, &denying, "v2", None);
    while get(envoy.listen, &host, "/", &[]).status != 403 {
        assert!(
            switched.elapsed() < Duration::from_secs(5),
            "the new bundle never took effect"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = switched.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let statuses = load.join().unwrap();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(
        statuses.len() > 20,
        "the load ran: {} requests",
        statuses.len()
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 403),
        "a request failed during the switch: {statuses:?}"
    );
    assert!(statuses.contains(&200) && statuses.contains(&403));

    // A bundle the filter refuses: Envoy keeps the previous one.
    let broken = bundle(json!([{
        "source": { "kind": "ExternalService", "namespace": "e2e", "name": "net" },
        "addresses": ["10.1.2.3/8"], "ports": [{ "number": 80, "protocol": "HTTP" }]
    }]));
    write_ecds(&ecds, &broken, "v3", None);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !envoy
        .log()
        .contains("refused configuration: the plugin configuration is not a compiled policy")
    {
        assert!(
            Instant::now() < deadline,
            "the broken bundle was not refused:\n{}",
            envoy.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let r = get(envoy.listen, &host, "/", &[]);
    assert_eq!(
        (r.status, r.header("x-warden-reason")),
        (403, Some("not_in_registry")),
        "the previous policy serves on"
    );
    let (_, stats) = envoy
        .admin_get("/stats?filter=extension_config_discovery")
        .unwrap();
    assert!(stats.contains("config_fail: 1"), "{stats}");
}

/// What `build --ecds --admin` and `watch --admin` report comes from Envoy: an update the
/// filter takes is "accepted" with its version serving; one it refuses is "rejected" while
/// the previous version serves on; no update is no answer.
#[test]
fn envoy_s_answer_to_an_update_is_read_back_from_its_admin() {
    use bundle_builder::delivery::{confirm, describe, ecds_stats, Confirmation};
    let dir = tempfile::tempdir().unwrap();
    let ecds = dir.path().join("warden-ecds.json");
    let mut sidecar = Sidecar::new(bundle(json!([])));
    sidecar.ecds = Some(ecds.clone());
    let envoy = sidecar.start();
    let wait = Duration::from_secs(10);

    let before = ecds_stats(envoy.admin).unwrap();
    let allowing = bundle(json!([{
        "source": { "kind": "ExternalService", "namespace": "e2e", "name": "api" },
        "hosts": ["api.example.com"], "ports": [{ "number": 80, "protocol": "HTTP" }]
    }]));
    write_ecds(&ecds, &allowing, "v2", None);
    let answer = confirm(envoy.admin, &before, wait).unwrap();
    assert_eq!(
        answer,
        Confirmation::Accepted {
            version: Some("v2".into())
        }
    );
    assert_eq!(
        describe(&answer, "v2", wait),
        ("Envoy accepted v2".into(), true)
    );

    let before = ecds_stats(envoy.admin).unwrap();
    let broken = bundle(json!([{
        "source": { "kind": "ExternalService", "namespace": "e2e", "name": "net" },
        "addresses": ["10.1.2.3/8"], "ports": [{ "number": 80, "protocol": "HTTP" }]
    }]));
    write_ecds(&ecds, &broken, "v3", None);
    let answer = confirm(envoy.admin, &before, wait).unwrap();
    assert_eq!(
        answer,
        Confirmation::Rejected {
            version: Some("v2".into())
        }
    );
    let (line, serving) = describe(&answer, "v3", wait);
    assert!(!serving);
    assert!(
        line.starts_with("Envoy rejected v3 and serves v2 on"),
        "{line}"
    );
    assert!(envoy
        .log()
        .contains("refused configuration: the plugin configuration is not a compiled policy"));

    let before = ecds_stats(envoy.admin).unwrap();
    let answer = confirm(envoy.admin, &before, Duration::from_millis(500)).unwrap();
    assert_eq!(answer, Confirmation::NoAnswer);
}
