//! The mesh's own traffic under `REGISTRY_ONLY`: a request or connection the registry does not
//! know is the mesh's business when the proxy connects it inside the mesh, judged on where it
//! goes (Istio's route cluster, the dialled address), never on the name it carries.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

mod support;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use support::*;
use warden_bundle::OutboundMode::RegistryOnly;
use warden_bundle::{Bundle, MeshScope};
use warden_engine::{compile, Policy, Request};

const FRONTEND: &str = "spiffe://cluster.local/ns/web/sa/frontend";

/// REGISTRY_ONLY with one external service, the mesh `svc.cluster.local` and 10.96.0.0/12.
fn mesh_bundle() -> Bundle {
    let mut b = bundle(
        RegistryOnly,
        vec![
            service("saas/stripe", &["api.stripe.example"], &[], &[443]),
            // A registered service inside the mesh's addresses stays decided as registered.
            service("dc/legacy", &[], &["10.96.5.0/24"], &[5432]),
        ],
        vec![support::policy(
            "dc/legacy-billing",
            &[("dc/legacy", None)],
            vec![clients(&["spiffe://cluster.local/ns/pay/sa/billing"])],
        )],
    );
    b.spec.mesh = MeshScope {
        domains: vec!["svc.cluster.local".into()],
        addresses: vec!["10.96.0.0/12".into()],
    };
    b
}

fn policy() -> Policy {
    compiled(&mesh_bundle())
}

fn routed<'a>(host: &'a str, cluster: &'a str) -> Request<'a> {
    Request {
        cluster: Some(cluster),
        client: Some(FRONTEND),
        ..http(host)
    }
}

#[test]
fn istio_routes_to_a_mesh_service_are_the_mesh_s() {
    let p = policy();
    let r = routed(
        "reviews.default.svc.cluster.local:9080",
        "outbound|9080||reviews.default.svc.cluster.local",
    );
    assert_eq!(verdict(&p, &r), "allow in_mesh -");
    // A subset, a short name the route resolved, a trailing dot: the cluster decides.
    let r = routed(
        "reviews",
        "outbound|9080|v2|reviews.default.svc.cluster.local.",
    );
    assert_eq!(verdict(&p, &r), "allow in_mesh -");
    // The same name without a route cluster (a local proxy resolves the name): not exempt.
    assert_eq!(
        verdict(&p, &http("reviews.default.svc.cluster.local:9080")),
        "deny not_in_registry -"
    );
}

#[test]
fn the_name_carried_never_exempts_only_the_cluster_it_goes_to() {
    let p = policy();
    // An in-mesh looking name that Istio passes through (no such service): where it goes is
    // the dialled address, outside the mesh.
    let mut r = routed("reviews.default.svc.cluster.local", "PassthroughCluster");
    r.destination = Some("203.0.113.9".parse().unwrap());
    assert_eq!(verdict(&p, &r), "deny not_in_registry -");
    // A ServiceEntry's cluster for an external host is not the mesh, whatever the Host says.
    let r = routed(
        "reviews.default.svc.cluster.local",
        "outbound|443||api.evil.example",
    );
    assert_eq!(verdict(&p, &r), "deny not_in_registry -");
    // Suffix tricks on the cluster's host.
    for cluster in [
        "outbound|80||evilsvc.cluster.local",
        "outbound|80||svc.cluster.local.evil.example",
        "outbound|80||",
        "outbound|x||a.svc.cluster.local",
        "inbound|80||a.svc.cluster.local",
        "outbound|80||a.svc.cluster.local|extra",
    ] {
        let r = routed("a.svc.cluster.local", cluster);
        assert_eq!(verdict(&p, &r), "deny not_in_registry -", "{cluster}");
    }
    // A wildcard ServiceEntry host, a port that is not a port, a host with other characters.
    for cluster in [
        "outbound|80||*.svc.cluster.local",
        "outbound|+80||a.svc.cluster.local",
        "outbound|0||a.svc.cluster.local",
        "outbound|80||a:80.svc.cluster.local",
        "outbound|80||a/b.svc.cluster.local",
    ] {
        let r = routed("a.svc.cluster.local", cluster);
        assert_eq!(verdict(&p, &r), "deny not_in_registry -", "{cluster}");
    }
    // Exactly the domain is inside it.
    let r = routed("svc.cluster.local", "outbound|80||svc.cluster.local");
    assert_eq!(verdict(&p, &r), "allow in_mesh -");
}

/// With the mesh's addresses known and the dialled address too (capture), a mesh service's
/// cluster counts only for a client that dialled inside the mesh: a ServiceEntry with an
/// in-mesh name and `resolution: NONE` goes where the client dialled.
#[test]
fn under_capture_a_mesh_cluster_needs_a_mesh_address_too() {
    let p = policy();
    let mut r = routed(
        "x.attacker.svc.cluster.local",
        "outbound|80||x.attacker.svc.cluster.local",
    );
    r.destination = Some("203.0.113.9".parse().unwrap());
    assert_eq!(verdict(&p, &r), "deny not_in_registry -");
    r.destination = Some("10.96.0.10".parse().unwrap());
    assert_eq!(verdict(&p, &r), "allow in_mesh -");
}

/// TLS is routed by its server name: one naming somewhere outside the mesh is not the
/// mesh's, whatever address it was dialled to.
#[test]
fn tls_naming_outside_the_mesh_is_not_in_it() {
    let p = policy();
    let mut tls = tcp("10.244.0.5", 443);
    tls.protocol = warden_engine::RequestProtocol::Tls;
    tls.destination = Some("10.97.0.5".parse().unwrap());
    tls.sni = Some("api.evil.example");
    assert_eq!(verdict(&p, &tls), "deny not_in_registry -");
    tls.sni = Some("reviews.default.svc.cluster.local");
    assert_eq!(verdict(&p, &tls), "allow in_mesh -");
}

#[test]
fn passthrough_and_connections_are_the_mesh_s_by_the_dialled_address() {
    let p = policy();
    let mut r = routed("10.96.0.10:8080", "PassthroughCluster");
    r.destination = Some("10.96.0.10".parse().unwrap());
    assert_eq!(verdict(&p, &r), "allow in_mesh -");
    assert_eq!(verdict(&p, &tcp("10.100.3.4", 6379)), "allow in_mesh -");
    assert_eq!(
        verdict(&p, &tcp("10.112.0.1", 6379)),
        "deny not_in_registry -"
    );
    // A TLS connection without a server name goes where it was dialled.
    let mut tls = tcp("10.97.1.1", 443);
    tls.protocol = warden_engine::RequestProtocol::Tls;
    assert_eq!(verdict(&p, &tls), "allow in_mesh -");
    tls.destination = Some("198.51.100.1".parse().unwrap());
    assert_eq!(verdict(&p, &tls), "deny not_in_registry -");
}

#[test]
fn registered_services_inside_the_mesh_are_decided_as_always() {
    let p = policy();
    // 10.96.5.0/24 is registered, with a policy: the mesh scope does not widen it.
    let mut r = tcp("10.96.5.7", 5432);
    r.client = Some(FRONTEND);
    assert_eq!(verdict(&p, &r), "deny client_not_allowed dc/legacy");
    // And the registry's external service keeps its rules.
    let r = routed("api.stripe.example:443", "outbound|443||api.stripe.example");
    assert_eq!(verdict(&p, &r), "allow registered saas/stripe");
}

#[test]
fn no_mesh_scope_no_exemption() {
    let mut b = mesh_bundle();
    b.spec.mesh = MeshScope::default();
    let p = compiled(&b);
    let r = routed(
        "reviews.default.svc.cluster.local:9080",
        "outbound|9080||reviews.default.svc.cluster.local",
    );
    assert_eq!(verdict(&p, &r), "deny not_in_registry -");
    assert_eq!(
        verdict(&p, &tcp("10.100.3.4", 6379)),
        "deny not_in_registry -"
    );
}

#[test]
fn a_bad_mesh_scope_is_refused_with_its_field() {
    let mut b = mesh_bundle();
    b.spec.mesh.domains.push("*.cluster.local".into());
    b.spec.mesh.domains.push("com".into());
    b.spec.mesh.addresses.push("10.0.0.1/8".into());
    b.spec.mesh.addresses.push("0.0.0.0/0".into());
    b.spec.mesh.addresses.push("2001:db8::/16".into());
    let errors: Vec<String> = warden_engine::compile_all(&b)
        .err()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("spec.mesh.domains[1]")),
        "{errors:?}"
    );
    for field in [
        "spec.mesh.domains[2]",
        "spec.mesh.addresses[1]",
        "spec.mesh.addresses[2]",
        "spec.mesh.addresses[3]",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(field)),
            "{field}: {errors:?}"
        );
    }
    assert!(
        errors
            .iter()
            .any(|e| e.contains("a top-level domain would cover the internet")),
        "{errors:?}"
    );
    assert!(compile(&b).is_err());
}
