//! Signed bundles in a real Envoy: with a public key in the VM configuration, the filter
//! serves a bundle signed with its private half and refuses unsigned or altered ones.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{json, Value};
use warden_bundle::{key_pair, private_key, Bundle};
use warden_e2e::client::get;
use warden_e2e::envoy::{Envoy, Sidecar};
use warden_e2e::free_addr;

fn signed(bundle: &Bundle, private: &str) -> Value {
    serde_json::to_value(
        warden_engine::signing::sign(bundle.clone(), &private_key(private).unwrap()).unwrap(),
    )
    .unwrap()
}

#[test]
fn only_bundles_signed_with_the_configured_key_are_accepted() {
    let (private, public) = key_pair([42; 32]);
    let (other_private, _) = key_pair([43; 32]);
    let bundle: Bundle = serde_json::from_value(json!({
        "apiVersion": "warden.dev/v1alpha1", "kind": "Bundle",
        "spec": { "outboundMode": "REGISTRY_ONLY" }
    }))
    .unwrap();
    let start = |b: Value| {
        let mut sidecar = Sidecar::new(b);
        sidecar.public_key = Some(public.clone());
        sidecar
    };

    // Signed with the right key: serves (and denies what the policy denies).
    let envoy = start(signed(&bundle, &private)).start();
    assert_eq!(get(envoy.listen, "evil.example", "/", &[]).status, 403);
    drop(envoy);

    let refused = |b: Value| {
        let (listen, admin) = (free_addr("127.0.0.1"), free_addr("127.0.0.1"));
        let (status, log) = Envoy::expect_refusal(&start(b).render(listen, admin));
        assert!(!status.success());
        log
    };
    let log = refused(serde_json::to_value(&bundle).unwrap());
    assert!(
        log.contains("refused configuration: signature: the bundle is not signed"),
        "{log}"
    );
    let log = refused(signed(&bundle, &other_private));
    assert!(
        log.contains("refused configuration: signature: the signature does not match"),
        "{log}"
    );
    let mut altered = signed(&bundle, &private);
    altered["spec"]["outboundMode"] = "ALLOW_ANY".into();
    let log = refused(altered);
    assert!(
        log.contains("refused configuration: bundle digest mismatch"),
        "{log}"
    );
}
