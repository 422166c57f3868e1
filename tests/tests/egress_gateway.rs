//! The egress gateway with real TLS: a sidecar Envoy sends gateway-routed requests to a
//! gateway Envoy over mutual TLS (certificates from a mesh CA made here with rcgen); the
//! gateway takes the caller's identity from its certificate, enforces the access policy and
//! originates TLS to HTTPS servers (rustls) on loopback that report what they saw.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::path::PathBuf;

use bundle_builder::render::envoy::{GatewayHop, TcpForward};
use serde_json::Value;
use warden_bundle::Role;
use warden_e2e::client::get;
use warden_e2e::envoy::{Envoy, Sidecar};
use warden_e2e::free_addr;
use warden_e2e::pki::{Ca, Leaf};
use warden_e2e::tls::{https_get, https_get_with, HttpsUpstream};
use warden_e2e::upstream::HttpUpstream;

const BILLING: &str = "spiffe://cluster.local/ns/pay/sa/billing";
const FRONTEND: &str = "spiffe://cluster.local/ns/web/sa/frontend";
const GATEWAY: &str = "spiffe://cluster.local/ns/egress/sa/egress-gateway";

/// Everything one test needs: the PKI on disk, the HTTPS upstreams, the gateway.
struct World {
    dir: tempfile::TempDir,
    mesh_ca: Ca,
    external_ca: Ca,
    /// The gateway's client certificate towards `mtls.external.test` (external CA).
    gateway_client: Leaf,
    bundle: Value,
    api: HttpsUpstream,
    mtls: HttpsUpstream,
    wrong_name: HttpsUpstream,
    untrusted: HttpsUpstream,
    /// Reached with the client's own TLS, passed through the gateway by server name.
    passthrough: HttpsUpstream,
    /// Where a sidecar's TLS listener for `passthrough.external.test` listens (the service's
    /// port is this port).
    passthrough_listen: SocketAddr,
    /// Behind a host-name endpoint (`localhost`), with a certificate for that name.
    by_name: HttpsUpstream,
    /// Plain HTTP, for `clientsideTls.mode: DISABLE`.
    plain: HttpUpstream,
    /// `ported.external.test`: port 443 with TLS originated at the gateway, sent to on port 80
    /// (Gloo's `portMatch`).
    ported: HttpsUpstream,
    gateway: Envoy,
    /// The gateway's TLS passthrough listener.
    gateway_tcp: SocketAddr,
}

/// An ExternalService routed through the gateway on port 443 with TLS originated there, and
/// its one endpoint (`ip:port`).
fn gateway_service(name: &str, upstream: SocketAddr, tls: &str) -> String {
    gateway_service_at(name, &upstream.ip().to_string(), upstream.port(), tls, "")
}

/// The same, with the endpoint at `address` (an IP or a host name) and more `spec` lines.
fn gateway_service_at(name: &str, address: &str, port: u16, tls: &str, spec: &str) -> String {
    format!(
        r#"
apiVersion: networking.gloo.solo.io/v2
kind: ExternalService
metadata: {{ name: {name}, namespace: pay, labels: {{ app: {name} }} }}
spec:
  hosts: [{name}.external.test]
  selector: {{ app: {name} }}{spec}
  ports:
  - name: https
    number: 443
    protocol: HTTPS
    targetPort: {{ name: https }}
    clientsideTls: {{ {tls} }}
    egressGatewayRoutes:
      virtualGatewayRefs: [{{ name: egress-gateway, namespace: egress }}]
---
apiVersion: networking.gloo.solo.io/v2
kind: ExternalEndpoint
metadata: {{ name: {name}-1, namespace: pay, labels: {{ app: {name} }} }}
spec:
  address: "{address}"
  ports: [{{ name: https, number: {port} }}]
"#,
    )
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (mesh_ca, external_ca, rogue_ca) = (
            Ca::new("mesh CA"),
            Ca::new("external CA"),
            Ca::new("rogue CA"),
        );
        let mesh_ca_file = mesh_ca.write(dir.path(), "mesh-ca");
        let external_ca_file = external_ca.write(dir.path(), "external-ca");
        let gateway_client = external_ca.issue(&["egress-gateway.example"], None);
        let (client_cert, client_key) = gateway_client.write(dir.path(), "gateway-client");

        let start = |name: &str, ip: &str, cert: &Leaf| {
            HttpsUpstream::start(name, free_addr(ip), cert, &external_ca)
        };
        let api = start(
            "api",
            "127.0.0.61",
            &external_ca.issue(&["api.external.test"], None),
        );
        let mtls = start(
            "mtls",
            "127.0.0.62",
            &external_ca.issue(&["mtls.external.test"], None),
        );
        let wrong_name = start(
            "wrong-name",
            "127.0.0.63",
            &external_ca.issue(&["other.example"], None),
        );
        let untrusted = start(
            "untrusted",
            "127.0.0.64",
            &rogue_ca.issue(&["untrusted.external.test"], None),
        );
        let passthrough = start(
            "passthrough",
            "127.0.0.65",
            &external_ca.issue(&["passthrough.external.test"], None),
        );
        let passthrough_listen = free_addr("127.0.0.71");
        let by_name = start(
            "by-name",
            "127.0.0.1",
            &external_ca.issue(&["localhost"], None),
        );
        let plain = HttpUpstream::start("plain", free_addr("127.0.0.66"));
        let ported = start(
            "ported",
            "127.0.0.67",
            &external_ca.issue(&["ported.external.test"], None),
        );
        let ca = external_ca_file.display();
        let simple = format!("mode: SIMPLE, caCertificates: {ca}");
        let mutual = format!(
            "mode: MUTUAL, caCertificates: {ca}, clientCertificate: {}, privateKey: {}",
            client_cert.display(),
            client_key.display()
        );
        let manifests = [
            gateway_service("api", api.addr, &simple),
            gateway_service("mtls", mtls.addr, &mutual),
            gateway_service("wrong-name", wrong_name.addr, &simple),
            gateway_service("untrusted", untrusted.addr, &simple),
            // The same two upstreams, reached with the options that make them acceptable.
            gateway_service_at(
                "lenient",
                "127.0.0.64",
                untrusted.addr.port(),
                "mode: SIMPLE, insecureSkipVerify: true",
                "",
            ),
            gateway_service_at(
                "aliased",
                "127.0.0.63",
                wrong_name.addr.port(),
                &simple,
                "\n  subjectAltNames: [other.example]",
            ),
            gateway_service_at(
                "named-sni",
                "127.0.0.63",
                wrong_name.addr.port(),
                &format!("{simple}, sni: other.example"),
                "",
            ),
            gateway_service_at("by-name", "localhost", by_name.addr.port(), &simple, ""),
            gateway_service("plain", plain.addr, "mode: DISABLE"),
            // Gloo's usual pattern: port 443 with TLS, workloads send plain HTTP to port 80.
            gateway_service("ported", ported.addr, &simple).replace(
                "    egressGatewayRoutes:\n",
                "    egressGatewayRoutes:\n      portMatch: 80\n",
            ),
            // The client speaks TLS itself: no clientsideTls, passed through by server name.
            format!(
                r#"
apiVersion: networking.gloo.solo.io/v2
kind: ExternalService
metadata: {{ name: passthrough, namespace: pay, labels: {{ app: passthrough }} }}
spec:
  hosts: [passthrough.external.test]
  selector: {{ app: passthrough }}
  ports:
  - name: tls
    number: {listen_port}
    protocol: HTTPS
    targetPort: {{ name: tls }}
    egressGatewayRoutes:
      virtualGatewayRefs: [{{ name: egress-gateway, namespace: egress }}]
---
apiVersion: networking.gloo.solo.io/v2
kind: ExternalEndpoint
metadata: {{ name: passthrough-1, namespace: pay, labels: {{ app: passthrough }} }}
spec:
  address: "{ip}"
  ports: [{{ name: tls, number: {port} }}]
"#,
                listen_port = passthrough_listen.port(),
                ip = passthrough.addr.ip(),
                port = passthrough.addr.port(),
            ),
            r#"
apiVersion: warden.dev/v1alpha1
kind: EgressSettings
metadata: { name: mesh, namespace: warden }
spec: { outboundTrafficPolicy: { mode: REGISTRY_ONLY } }
---
apiVersion: networking.gloo.solo.io/v2
kind: ExternalService
metadata: { name: open, namespace: web }
spec:
  hosts: [open.external.test]
  ports: [{ name: http, number: 80, protocol: HTTP }]
---
apiVersion: security.policy.gloo.solo.io/v2
kind: AccessPolicy
metadata: { name: api-billing-only, namespace: pay }
spec:
  applyToDestinations:
  - { kind: EXTERNAL_SERVICE, selector: { namespace: pay } }
  config:
    authzList:
    - allowedClients:
      - serviceAccountSelector: { namespace: pay, name: billing }
"#
            .to_owned(),
        ]
        .join("\n---\n");
        let manifests_file = dir.path().join("manifests.yaml");
        std::fs::write(&manifests_file, &manifests).unwrap();
        let bundle = warden_e2e::build_bundle(&manifests_file);

        let gateway_leaf = mesh_ca.issue(&[], Some(GATEWAY));
        let mut gateway = Sidecar::new(bundle.clone());
        gateway.role = Role::Gateway;
        gateway.mesh_tls = Some(gateway_leaf.mesh_tls(dir.path(), &mesh_ca_file, "gateway"));
        let gateway_tcp = free_addr("127.0.0.1");
        gateway.tcp = vec![TcpForward {
            listen: gateway_tcp,
            upstream: None,
        }];
        let gateway = gateway.start();
        Self {
            dir,
            mesh_ca,
            external_ca,
            gateway_client,
            bundle,
            api,
            mtls,
            wrong_name,
            untrusted,
            passthrough,
            passthrough_listen,
            by_name,
            plain,
            ported,
            gateway,
            gateway_tcp,
        }
    }

    fn mesh_ca_file(&self) -> PathBuf {
        self.dir.path().join("mesh-ca.pem")
    }

    /// A sidecar for `identity` holding `cert`, with a route to the gateway (or without).
    fn sidecar(&self, identity: &str, cert: &Leaf, with_gateway: bool) -> Envoy {
        let name = identity.rsplit('/').next().unwrap();
        let mut sidecar = Sidecar::new(self.bundle.clone());
        sidecar.identity = Some(identity.into());
        sidecar.mesh_tls = Some(cert.mesh_tls(self.dir.path(), &self.mesh_ca_file(), name));
        if with_gateway {
            sidecar.gateway = Some(GatewayHop {
                address: self.gateway.listen,
                identity: GATEWAY.into(),
                tcp_address: None,
            });
        }
        sidecar.start()
    }

    /// A sidecar whose TLS listener stands for `passthrough.external.test`, with a TLS route
    /// to the gateway (or without).
    fn tls_sidecar(&self, identity: &str, cert: &Leaf, with_tcp_route: bool) -> Envoy {
        let name = format!("{}-tls", identity.rsplit('/').next().unwrap());
        let mut sidecar = Sidecar::new(self.bundle.clone());
        sidecar.identity = Some(identity.into());
        sidecar.mesh_tls = Some(cert.mesh_tls(self.dir.path(), &self.mesh_ca_file(), &name));
        sidecar.gateway = Some(GatewayHop {
            address: self.gateway.listen,
            identity: GATEWAY.into(),
            tcp_address: with_tcp_route.then_some(self.gateway_tcp),
        });
        sidecar.tcp = vec![TcpForward {
            listen: self.passthrough_listen,
            upstream: None,
        }];
        sidecar.start()
    }

    /// The client's own TLS to `passthrough.external.test`, through `sidecar`.
    fn passthrough_get(
        &self,
        external_ca: &Ca,
    ) -> Result<warden_e2e::client::Response, warden_e2e::tls::Refused> {
        let host = format!(
            "passthrough.external.test:{}",
            self.passthrough_listen.port()
        );
        https_get(
            self.passthrough_listen,
            "passthrough.external.test",
            &host,
            None,
            external_ca,
        )
    }

    fn issue(&self, identity: &str) -> Leaf {
        self.mesh_ca.issue(&[], Some(identity))
    }
}

/// billing -> sidecar -> (mTLS) -> gateway -> (TLS) -> HTTPS upstream: 200; the upstream saw
/// the service's name as SNI, and for MUTUAL the gateway's client certificate.
#[test]
fn billing_reaches_https_upstreams_through_the_gateway() {
    let world = World::new();
    let billing = world.sidecar(BILLING, &world.issue(BILLING), true);

    let r = get(billing.listen, "api.external.test:443", "/", &[]);
    assert_eq!(
        r.status,
        200,
        "{r:?}\ngateway log:\n{}",
        world.gateway.log()
    );
    assert_eq!(r.body, "upstream api");
    let seen = world.api.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].sni.as_deref(), Some("api.external.test"));
    assert_eq!(
        seen[0].host, "api.external.test:443",
        "the authority is kept"
    );
    assert!(
        seen[0].client_cert.is_none(),
        "SIMPLE presents no client certificate"
    );
    assert!(
        !seen[0]
            .headers
            .iter()
            .any(|(n, _)| n.starts_with("x-warden-")),
        "the cluster header stays inside the proxies: {:?}",
        seen[0].headers
    );

    let r = get(billing.listen, "mtls.external.test:443", "/", &[]);
    assert_eq!(
        r.status,
        200,
        "{r:?}\ngateway log:\n{}",
        world.gateway.log()
    );
    let seen = world.mtls.seen();
    assert_eq!(seen[0].sni.as_deref(), Some("mtls.external.test"));
    assert_eq!(
        seen[0].client_cert.as_ref(),
        Some(&world.gateway_client.der),
        "MUTUAL presents the configured client certificate"
    );

    // The gateway decided on the certificate's identity, and the sidecar sent it there.
    assert_eq!(world.gateway.wait_metric("warden_http_allowed", 2), 2);
    assert!(world.gateway.log().contains(&format!("peer={BILLING}")));
}

/// A sidecar that wrongly believes it is billing but holds frontend's certificate gets past its
/// own check; the gateway, deciding on the certificate, denies 403 `client_not_allowed`. A
/// correctly configured frontend sidecar denies it itself.
#[test]
fn the_gateway_denies_by_certificate_whatever_the_sidecar_thinks() {
    let world = World::new();
    let misconfigured = world.sidecar(BILLING, &world.issue(FRONTEND), true);
    let r = get(misconfigured.listen, "api.external.test:443", "/", &[]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.header("x-warden-reason"), Some("client_not_allowed"));
    assert_eq!(
        world
            .gateway
            .wait_metric("warden_http_denied_client_not_allowed", 1),
        1
    );
    assert_eq!(
        misconfigured.metric("warden_http_denied_client_not_allowed"),
        0
    );
    assert!(world.api.seen().is_empty());

    let frontend = world.sidecar(FRONTEND, &world.issue(FRONTEND), true);
    let r = get(frontend.listen, "api.external.test:443", "/", &[]);
    assert_eq!(r.status, 403);
    assert_eq!(r.header("x-warden-reason"), Some("client_not_allowed"));
    assert_eq!(
        frontend.wait_metric("warden_http_denied_client_not_allowed", 1),
        1
    );
    assert!(world.api.seen().is_empty());
}

/// The gateway's listener takes mesh certificates only: none, or one from another CA, fails
/// the handshake; a mesh certificate gets through to the filter.
#[test]
fn the_gateway_refuses_clients_without_a_mesh_certificate() {
    let world = World::new();
    let gw = world.gateway.listen;
    let host = "api.external.test:443";
    let sni = "api.external.test";
    let no_cert = https_get(gw, sni, host, None, &world.mesh_ca);
    assert!(no_cert.is_err(), "{no_cert:?}");
    let rogue = Ca::new("rogue mesh CA").issue(&[], Some(BILLING));
    let other_ca = https_get(gw, sni, host, Some(&rogue), &world.mesh_ca);
    assert!(other_ca.is_err(), "{other_ca:?}");
    assert!(world.api.seen().is_empty());

    let ok = https_get(gw, sni, host, Some(&world.issue(BILLING)), &world.mesh_ca).unwrap();
    assert_eq!(ok.status, 200, "{ok:?}");
    let denied = https_get(gw, sni, host, Some(&world.issue(FRONTEND)), &world.mesh_ca).unwrap();
    assert_eq!(denied.status, 403);
    assert_eq!(denied.header("x-warden-reason"), Some("client_not_allowed"));
    assert_eq!(world.api.seen().len(), 1);
    let listener = format!("listener.{}_{}.ssl", gw.ip(), gw.port());
    assert_eq!(
        world
            .gateway
            .stat(&format!("{listener}.fail_verify_no_cert")),
        1
    );
    assert_eq!(
        world.gateway.stat(&format!("{listener}.fail_verify_error")),
        1
    );
}

/// An upstream whose certificate names another host, or comes from a CA the service does not
/// trust: 503, with the TLS failure in the gateway's access log and its cluster's counters.
#[test]
fn upstream_certificate_problems_are_503_with_a_reason() {
    let world = World::new();
    let billing = world.sidecar(BILLING, &world.issue(BILLING), true);

    let r = get(billing.listen, "wrong-name.external.test:443", "/", &[]);
    assert_eq!(r.status, 503, "{r:?}");
    let r = get(billing.listen, "untrusted.external.test:443", "/", &[]);
    assert_eq!(r.status, 503, "{r:?}");
    assert!(world.wrong_name.seen().is_empty() && world.untrusted.seen().is_empty());

    let stat = |service: &str, name: &str| {
        world
            .gateway
            .stat(&format!("cluster.warden_tls|pay|{service}|443.ssl.{name}"))
    };
    assert_eq!(stat("wrong-name", "fail_verify_san"), 1);
    assert_eq!(stat("untrusted", "fail_verify_error"), 1);
    for host in ["wrong-name", "untrusted"] {
        let authority = format!("{host}.external.test:443/");
        let line = world
            .gateway
            .wait_log_line(&["warden-access", &authority])
            .unwrap_or_else(|| panic!("no access log line for {host}:\n{}", world.gateway.log()));
        assert!(line.contains("status=503"), "{line}");
        assert!(line.contains("CERTIFICATE_VERIFY_FAILED"), "{line}");
    }
}

/// A sidecar without a route to the gateway does not send gateway-only traffic directly.
#[test]
fn a_sidecar_without_the_gateway_route_denies_must_use_gateway() {
    let world = World::new();
    let direct = world.sidecar(BILLING, &world.issue(BILLING), false);
    let r = get(direct.listen, "api.external.test:443", "/", &[]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.header("x-warden-reason"), Some("must_use_gateway"));
    assert_eq!(r.json()["reason"], "must_use_gateway");
    assert!(world.api.seen().is_empty());
}

/// Domain fronting: TLS to the gateway for one host, an HTTP authority for another.
#[test]
fn sni_and_authority_must_agree_at_the_gateway() {
    let world = World::new();
    let billing = world.issue(BILLING);
    let gw = world.gateway.listen;
    let r = https_get(
        gw,
        "open.external.test",
        "api.external.test:443",
        Some(&billing),
        &world.mesh_ca,
    )
    .unwrap();
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.header("x-warden-reason"), Some("sni_host_mismatch"));
    assert!(world.api.seen().is_empty());
    let r = https_get(
        gw,
        "api.external.test",
        "api.external.test:443",
        Some(&billing),
        &world.mesh_ca,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
}

/// TLS the client makes itself passes through: sidecar -> (mTLS, server name
/// `outbound_.PORT_._.HOST`) -> gateway, which decides on the first bytes with the caller's
/// certificate and connects to the endpoint; the client's handshake reaches the real server.
/// The gateway denies frontend's certificate; a sidecar without the TLS route denies
/// `must_use_gateway`. Nothing reaches the server for either.
#[test]
fn client_tls_passes_through_the_gateway_by_server_name() {
    let world = World::new();
    let billing = world.tls_sidecar(BILLING, &world.issue(BILLING), true);
    let r = world
        .passthrough_get(&world.external_ca)
        .unwrap_or_else(|e| {
            panic!(
                "{e:?}\nsidecar:\n{}\ngateway:\n{}",
                billing.log(),
                world.gateway.log()
            )
        });
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "upstream passthrough");
    let seen = world.passthrough.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].sni.as_deref(), Some("passthrough.external.test"));
    assert_eq!(world.gateway.wait_metric("warden_tcp_allowed", 1), 1);
    drop(billing);

    let misconfigured = world.tls_sidecar(BILLING, &world.issue(FRONTEND), true);
    assert!(world.passthrough_get(&world.external_ca).is_err());
    assert_eq!(
        world
            .gateway
            .wait_metric("warden_tcp_denied_client_not_allowed", 1),
        1
    );
    drop(misconfigured);

    let no_route = world.tls_sidecar(BILLING, &world.issue(BILLING), false);
    assert!(world.passthrough_get(&world.external_ca).is_err());
    assert_eq!(
        no_route.wait_metric("warden_tcp_denied_must_use_gateway", 1),
        1
    );
    assert_eq!(
        world.passthrough.seen().len(),
        1,
        "only the allowed connection arrived"
    );
}

/// The origination options, each against a real server: `DISABLE` sends plain HTTP;
/// `insecureSkipVerify` accepts a
/// certificate from an unknown CA; `subjectAltNames` accepts a certificate for another name
/// (SNI is still the host); `sni` sends that name and checks it; a host-name endpoint becomes
/// the authority, so SNI, the certificate check and `Host` follow it.
#[test]
fn origination_options_sni_subject_alt_names_skip_verify_and_host_names() {
    let world = World::new();
    let billing = world.sidecar(BILLING, &world.issue(BILLING), true);
    let ok = |host: &str| {
        let r = get(
            billing.listen,
            &format!("{host}.external.test:443"),
            "/",
            &[],
        );
        assert_eq!(
            r.status,
            200,
            "{host}: {r:?}\ngateway:\n{}",
            world.gateway.log()
        );
        r.body
    };
    assert_eq!(ok("lenient"), "upstream untrusted");
    assert_eq!(ok("aliased"), "upstream wrong-name");
    assert_eq!(ok("named-sni"), "upstream wrong-name");
    let seen = world.wrong_name.seen();
    let snis: Vec<_> = seen.iter().map(|s| s.sni.as_deref()).collect();
    assert_eq!(snis, [Some("aliased.external.test"), Some("other.example")]);
    assert_eq!(
        ok("plain"),
        "upstream plain",
        "DISABLE: plain HTTP to the endpoint"
    );
    assert_eq!(world.plain.seen()[0].host, "plain.external.test:443");
    assert_eq!(ok("by-name"), "upstream by-name");
    let seen = world.by_name.seen();
    assert_eq!(seen[0].sni.as_deref(), Some("localhost"));
    assert_eq!(
        seen[0].host, "localhost",
        "the authority is the endpoint's name"
    );
}

/// A client cannot pick the gateway's upstream cluster: its own `x-warden-cluster` (naming the
/// cluster of another service, whose SNI and name check would fail here) is removed before the
/// decision, and the request goes where the decision says.
#[test]
fn a_client_cannot_choose_the_gateway_cluster() {
    let world = World::new();
    let spoof = [("x-warden-cluster", "warden_tls|pay|named-sni|443")];
    let r = https_get_with(
        world.gateway.listen,
        "api.external.test",
        "api.external.test:443",
        &spoof,
        Some(&world.issue(BILLING)),
        &world.mesh_ca,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "upstream api");
    assert_eq!(
        world.api.seen()[0].sni.as_deref(),
        Some("api.external.test")
    );
}

/// The gateway is no open proxy: a registered service without a gateway route, an
/// unregistered address (the plain upstream by IP), and the gateway's own admin interface
/// are all denied `not_gateway_routed`, under `REGISTRY_ONLY` and `ALLOW_ANY` alike; no
/// server sees anything and the admin interface does not answer through it.
#[test]
fn the_gateway_is_no_open_proxy() {
    let world = World::new();
    let billing = world.issue(BILLING);
    let mut allow_any = world.bundle.clone();
    allow_any["spec"]["outboundMode"] = Value::from("ALLOW_ANY");
    // Edited after it was built: drop the digest it no longer matches.
    if let Some(metadata) = allow_any["metadata"].as_object_mut() {
        metadata.remove("digest");
    }
    let mut gateway = Sidecar::new(allow_any);
    gateway.role = Role::Gateway;
    gateway.mesh_tls = Some(world.mesh_ca.issue(&[], Some(GATEWAY)).mesh_tls(
        world.dir.path(),
        &world.mesh_ca_file(),
        "gateway-allow-any",
    ));
    let lenient = gateway.start();
    for gw in [&world.gateway, &lenient] {
        let admin = gw.admin.to_string();
        let plain = world.plain.addr.to_string();
        for authority in ["open.external.test", admin.as_str(), plain.as_str()] {
            let sni = authority.split(':').next().unwrap();
            let r = https_get(gw.listen, sni, authority, Some(&billing), &world.mesh_ca);
            let r = r.unwrap_or_else(|e| panic!("{authority}: {e:?}"));
            assert_eq!(r.status, 403, "{authority}: {r:?}");
            assert_eq!(r.header("x-warden-reason"), Some("not_gateway_routed"));
            assert!(
                !r.body.contains("LIVE"),
                "the admin interface answered: {r:?}"
            );
        }
    }
    assert!(
        world.plain.seen().is_empty(),
        "the plain upstream was reached"
    );
}

/// An X.509-SVID carries exactly one URI SAN. A mesh certificate naming two identities (in
/// either order, or one of them in another trust domain) is closed at the gateway before any
/// filter or upstream sees a byte, on the HTTPS and the passthrough listener; the same
/// caller with one identity is served.
#[test]
fn the_gateway_takes_only_certificates_with_one_spiffe_id() {
    let world = World::new();
    let gw = world.gateway.listen;
    let (sni, host) = ("api.external.test", "api.external.test:443");
    let ok = https_get(gw, sni, host, Some(&world.issue(BILLING)), &world.mesh_ca).unwrap();
    assert_eq!(ok.status, 200, "{ok:?}");
    let foreign = "spiffe://other.example/ns/pay/sa/billing";
    let two_ids: [&[&str]; 4] = [
        &[BILLING, FRONTEND],
        &[FRONTEND, BILLING],
        &[BILLING, foreign],
        &[foreign, BILLING],
    ];
    for ids in two_ids {
        let leaf = world.mesh_ca.issue_uris(&[], ids);
        let r = https_get(gw, sni, host, Some(&leaf), &world.mesh_ca);
        assert!(r.is_err(), "{ids:?}: {r:?}\n{}", world.gateway.log());
    }
    assert_eq!(
        world.api.seen().len(),
        1,
        "only the one-identity request arrived"
    );
    assert_eq!(
        world.gateway.stat("warden_gateway_identity.rbac.denied"),
        4,
        "{}",
        world.gateway.log()
    );

    // Passthrough: a sidecar holding a two-identity certificate gets nowhere.
    let leaf = world.mesh_ca.issue_uris(&[], &[BILLING, FRONTEND]);
    let sidecar = world.tls_sidecar(BILLING, &leaf, true);
    let r = world.passthrough_get(&world.external_ca);
    assert!(r.is_err(), "{r:?}");
    assert!(world.passthrough.seen().is_empty());
    assert_eq!(world.gateway.stat("warden_gateway_identity.rbac.denied"), 5);
    assert_eq!(world.gateway.metric("warden_tcp_allowed"), 0);
    drop(sidecar);
}

/// A port whose TLS the gateway originates is never passed through: a caller that asks the
/// passthrough listener for `api.external.test:443` (clientsideTls) directly, with a valid
/// certificate, is denied `not_gateway_routed` and the upstream sees nothing.
#[test]
fn the_gateway_never_passes_through_a_port_it_originates_tls_for() {
    let world = World::new();
    let billing = world.issue(BILLING);
    for sni in [
        "outbound_.443_._.api.external.test",
        "outbound_.443_._.API.external.test.",
        "api.external.test",
    ] {
        let r = https_get(
            world.gateway_tcp,
            sni,
            "api.external.test",
            Some(&billing),
            &world.mesh_ca,
        );
        assert!(r.is_err(), "{sni}: {r:?}");
    }
    assert!(world.api.seen().is_empty(), "the upstream was reached");
    assert_eq!(
        world
            .gateway
            .wait_metric("warden_tcp_denied_not_gateway_routed", 3),
        3,
        "{}",
        world.gateway.log()
    );
}

/// Gloo's `portMatch`: the service declares 443 with TLS and `egressGatewayRoutes.portMatch:
/// 80`; the workload sends plain `http://ported.external.test/` (port 80), the sidecar and the
/// gateway decide it for that port, and the gateway reaches 443 with TLS and the right SNI.
/// Port 80 is no more than that: other ports stay undeclared.
#[test]
fn port_match_sends_plain_http_on_80_and_the_gateway_originates_tls_to_443() {
    let world = World::new();
    let billing = world.sidecar(BILLING, &world.issue(BILLING), true);
    let r = get(billing.listen, "ported.external.test", "/", &[]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "upstream ported"),
        "{r:?}\ngateway log:\n{}",
        world.gateway.log()
    );
    let seen = world.ported.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].sni.as_deref(), Some("ported.external.test"));
    // The gateway decided it too (for the certificate's identity), and allowed it.
    assert_eq!(world.gateway.wait_metric("warden_http_allowed", 1), 1);

    let r = get(billing.listen, "ported.external.test:8080", "/", &[]);
    assert_eq!(r.header("x-warden-reason"), Some("port_not_declared"));
    // The access policy holds on the matched port too.
    let frontend = world.sidecar(FRONTEND, &world.issue(FRONTEND), true);
    let r = get(frontend.listen, "ported.external.test", "/", &[]);
    assert_eq!(r.header("x-warden-reason"), Some("client_not_allowed"));
    assert_eq!(world.ported.seen().len(), 1);
}
