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
    // The signed compiled form altered on its way: its checksum says so.
    let (listen, admin) = (free_addr("127.0.0.1"), free_addr("127.0.0.1"));
    let mut config = start(signed(&bundle, &private)).render(listen, admin);
    assert_eq!(alter_compiled_policies(&mut config), 1);
    let (status, log) = Envoy::expect_refusal(&config);
    assert!(!status.success());
    assert!(
        log.contains("refused configuration: the compiled policy was altered"),
        "{log}"
    );
    // A signed bundle's JSON altered and handed to the filter: refused, whatever it says.
    let mut altered = signed(&bundle, &private);
    altered["spec"]["outboundMode"] = "ALLOW_ANY".into();
    let log = refused(altered);
    assert!(
        log.contains("refused configuration: the plugin configuration is not a compiled policy"),
        "{log}"
    );
}

/// Changes one character in the middle of every `{"compiledPolicy": "<base64>"}` plugin
/// configuration in a rendered bootstrap; how many it changed.
fn alter_compiled_policies(config: &mut Value) -> usize {
    match config {
        Value::String(text) if text.starts_with("{\"compiledPolicy\"") => {
            use base64::Engine as _;
            let engine = base64::engine::general_purpose::STANDARD;
            let value: Value = serde_json::from_str(text).unwrap();
            let mut bytes = engine
                .decode(value["compiledPolicy"].as_str().unwrap())
                .unwrap();
            // The last byte of the compressed tables, before the trailer (1, then a 64-byte
            // signature).
            let trailer = bytes.len() - 65;
            assert_eq!(bytes[trailer], 1, "a signed compiled form");
            bytes[trailer - 1] ^= 0x20;
            *text = json!({ "compiledPolicy": engine.encode(bytes) }).to_string();
            1
        }
        Value::Array(items) => items.iter_mut().map(alter_compiled_policies).sum(),
        Value::Object(fields) => fields.values_mut().map(alter_compiled_policies).sum(),
        _ => 0,
    }
}
