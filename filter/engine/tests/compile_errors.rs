//! Bundles the engine refuses, with the exact error a user sees.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

mod support;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use support::*;
use warden_bundle::{Bundle, OutboundMode::RegistryOnly};
use warden_engine::compile;

fn error_of(b: &Bundle) -> String {
    compile(b).expect_err("bundle must be refused").to_string()
}

/// A wildcard anywhere but the whole leftmost label is refused, naming service and field.
#[test]
fn wildcard_not_leftmost_is_refused() {
    let b = bundle(
        RegistryOnly,
        vec![service("saas/api", &["api.*.example.com"], &[], &[443])],
        vec![],
    );
    assert_eq!(
        error_of(&b),
        "ExternalService saas/api: spec.services[0].hosts[0]: \"api.*.example.com\": a wildcard may only be the whole leftmost label, as in *.example.com"
    );
}

/// A CIDR with host bits set is refused, and the network is suggested.
#[test]
fn cidr_with_host_bits_suggests_the_network() {
    let b = bundle(
        RegistryOnly,
        vec![service("onprem/net", &[], &["10.30.1.7/16"], &[5432])],
        vec![],
    );
    assert_eq!(
        error_of(&b),
        "ExternalService onprem/net: spec.services[0].addresses[0]: \"10.30.1.7/16\" has host bits set; the network is 10.30.0.0/16"
    );
}

/// An IP written under hosts is refused with the advice to move it.
#[test]
fn ip_under_hosts_is_refused() {
    let b = bundle(
        RegistryOnly,
        vec![service("onprem/db", &["0xa.20.3.4"], &[], &[5432])],
        vec![],
    );
    assert_eq!(
        error_of(&b),
        "ExternalService onprem/db: spec.services[0].hosts[0]: \"0xa.20.3.4\" is an IP address (10.20.3.4); list it under addresses, not hosts"
    );
}

/// A port declared twice is refused.
#[test]
fn duplicate_port_is_refused() {
    let b = bundle(
        RegistryOnly,
        vec![service("saas/api", &["api.example"], &[], &[443, 443])],
        vec![],
    );
    assert_eq!(
        error_of(&b),
        "ExternalService saas/api: spec.services[0].ports[1].number: port 443 is declared twice; declare each port number once"
    );
}

/// A namespace with a `/` is refused: `namespace/name` must read back as the two it was
/// (two services would otherwise share one name in counters and decisions).
#[test]
fn a_namespace_with_a_slash_is_refused() {
    let mut svc = service("team/api", &["api.example"], &[], &[443]);
    svc.source.namespace = "team/a".into();
    let b = bundle(RegistryOnly, vec![svc], vec![]);
    assert_eq!(
        error_of(&b),
        "ExternalService team/a/api: spec.services[0].source.namespace: \"team/a\": a namespace holds no '/'"
    );
}

/// A gateway port matched on port 0 is refused: no request is sent to port 0.
#[test]
fn a_port_match_of_zero_is_refused() {
    let mut svc = service("saas/api", &["api.example"], &[], &[443]);
    svc.ports[0].egress_gateway = Some(warden_bundle::GatewayRoute {
        gateways: Vec::new(),
        port_match: Some(0),
    });
    let b = bundle(RegistryOnly, vec![svc], vec![]);
    assert_eq!(
        error_of(&b),
        "ExternalService saas/api: spec.services[0].ports[0].egressGateway.portMatch: port 0 is not a port; use 1 to 65535"
    );
}

/// A policy that targets a service the bundle lacks is refused, not ignored.
#[test]
fn policy_for_unknown_service_is_refused() {
    let b = bundle(
        RegistryOnly,
        vec![service("saas/api", &["api.example"], &[], &[443])],
        vec![policy("pay/access", &[("saas/apii", None)], vec![])],
    );
    assert_eq!(
        error_of(&b),
        "AccessPolicy pay/access: spec.accessPolicies[0].targets[0].service: no ExternalService saas/apii in this bundle"
    );
}

/// A malformed client pattern is refused with what would be valid.
#[test]
fn bad_client_pattern_is_refused() {
    let b = bundle(
        RegistryOnly,
        vec![service("saas/api", &["api.example"], &[], &[443])],
        vec![policy(
            "pay/access",
            &[("saas/api", None)],
            vec![clients(&["spiffe://cluster.local/ns/pay/sa/bill*"])],
        )],
    );
    assert_eq!(
        error_of(&b),
        "AccessPolicy pay/access: spec.accessPolicies[0].rules[0].clients[0]: \"spiffe://cluster.local/ns/pay/sa/bill*\" is not a SPIFFE ID pattern: `*` must stand alone as a whole segment, as in spiffe://cluster.local/ns/pay/sa/*"
    );
}

/// A sealed bundle whose spec was edited afterwards is refused.
#[test]
fn altered_bundle_is_refused() {
    let mut b = bundle(
        RegistryOnly,
        vec![service("saas/api", &["api.example"], &[], &[443])],
        vec![],
    )
    .seal()
    .unwrap();
    assert!(compile(&b).is_ok());
    b.spec.services[0].hosts.push("evil.example".into());
    assert!(error_of(&b).starts_with("bundle digest mismatch: metadata.digest is sha256:"));
}

/// JSON that is not a bundle is refused with the path and the resource it is in.
#[test]
fn parse_errors_name_path_and_resource() {
    let json = r#"{"apiVersion":"warden.dev/v1alpha1","kind":"Bundle","spec":{"services":[
        {"source":{"kind":"ExternalService","namespace":"saas","name":"api"},
         "hosts":["api.example"],"ports":[{"number":443,"protocol":"HTTPX"}]}]}}"#;
    let err = Bundle::from_json(json.as_bytes()).unwrap_err().to_string();
    assert!(
        err.starts_with("invalid bundle at spec.services[0].ports[0].protocol (in ExternalService saas/api): unknown variant `HTTPX`"),
        "{err}"
    );
    let err = Bundle::from_json(br#"{"apiVersion":"warden.dev/v2","kind":"Bundle","spec":{}}"#)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("invalid bundle at apiVersion: unknown variant `warden.dev/v2`, expected `warden.dev/v1alpha1`"), "{err}");
    let err = Bundle::from_json(br#"{"apiVersion":"warden.dev/v1alpha1","kind":"Bundle","spec":{"outboundMode":"REGISTRY_ONLY","colour":1}}"#).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "invalid bundle at spec.colour: unknown field `colour`, expected one of `outboundMode`"
        ),
        "{err}"
    );
}

/// `compile_all` reports every problem, across services, ports and policies, in bundle
/// order; `compile` reports the first of them. A policy on a service with errors is not
/// blamed for that service's ports.
#[test]
fn compile_all_reports_every_problem() {
    let b = bundle(
        RegistryOnly,
        vec![
            service("saas/api", &["api.*.example"], &[], &[443, 443]),
            service("saas/ok", &["ok.example"], &[], &[443]),
            service("onprem/net", &[], &["10.30.1.7/16"], &[5432]),
        ],
        vec![
            policy("pay/a", &[("saas/api", Some(80))], vec![]),
            policy(
                "pay/b",
                &[("saas/ok", Some(80)), ("saas/gone", None)],
                vec![clients(&["spiffe://cluster.local/ns/pay/sa/bill*", "nope"])],
            ),
        ],
    );
    let errors: Vec<String> = warden_engine::compile_all(&b)
        .expect_err("bundle must be refused")
        .iter()
        .map(|e| e.to_string())
        .collect();
    let fields: Vec<&str> = errors
        .iter()
        .map(|e| e.split(": ").nth(1).unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "spec.services[0].hosts[0]",
            "spec.services[0].ports[1].number",
            "spec.services[2].addresses[0]",
            "spec.accessPolicies[1].rules[0].clients[0]",
            "spec.accessPolicies[1].rules[0].clients[1]",
            "spec.accessPolicies[1].targets[0].port",
            "spec.accessPolicies[1].targets[1].service",
        ],
        "{errors:#?}"
    );
    assert_eq!(error_of(&b), errors[0]);
}
