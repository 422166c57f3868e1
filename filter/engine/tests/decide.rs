//! Decisions, through the public API, for the rules in shared/API.md. These tests run natively
//! and, compiled to wasm32, under wasm-bindgen-test (the `test` attribute is swapped there).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

mod support;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use support::*;
use warden_bundle::{AccessRule, OutboundMode::*};
use warden_engine::{Request, RequestProtocol};

fn registry() -> warden_engine::Policy {
    compiled(&bundle(
        RegistryOnly,
        vec![
            service("saas/api", &["api.saas.example"], &[], &[443, 80]),
            service("saas/wild", &["*.saas.example"], &[], &[443]),
            service("onprem/db", &[], &["10.20.3.4"], &[5432]),
            service(
                "onprem/net",
                &[],
                &["10.30.0.0/16", "2001:db8::/32"],
                &[5432, 80],
            ),
        ],
        vec![],
    ))
}

/// A registered host on a declared port is allowed, with the service named.
#[test]
fn registered_host_is_allowed() {
    assert_eq!(
        verdict(&registry(), &http("api.saas.example")),
        "allow registered saas/api"
    );
    assert_eq!(
        verdict(&registry(), &http("API.Saas.Example.:443")),
        "allow registered saas/api"
    );
}

/// REGISTRY_ONLY denies hosts no service registers.
#[test]
fn unregistered_host_is_denied_under_registry_only() {
    assert_eq!(
        verdict(&registry(), &http("evil.example")),
        "deny not_in_registry -"
    );
}

/// ALLOW_ANY lets unregistered hosts pass as passthrough.
#[test]
fn unregistered_host_passes_under_allow_any() {
    let p = compiled(&bundle(
        AllowAny,
        vec![service("saas/api", &["api.saas.example"], &[], &[80])],
        vec![],
    ));
    assert_eq!(verdict(&p, &http("evil.example")), "allow passthrough -");
    assert_eq!(verdict(&p, &http("10.9.9.9")), "allow passthrough -");
}

/// A registered host on a port it does not declare is denied, in both modes.
#[test]
fn undeclared_port_is_denied() {
    assert_eq!(
        verdict(&registry(), &http("api.saas.example:8443")),
        "deny port_not_declared saas/api"
    );
    let p = compiled(&bundle(
        AllowAny,
        vec![service("saas/api", &["api.saas.example"], &[], &[80])],
        vec![],
    ));
    assert_eq!(
        verdict(&p, &http("api.saas.example:8080")),
        "deny port_not_declared saas/api"
    );
}

/// Without a port anywhere, HTTP means 80 and TLS 443.
#[test]
fn default_ports_follow_the_protocol() {
    let p = registry();
    assert_eq!(
        verdict(&p, &http("x.saas.example")),
        "deny port_not_declared saas/wild"
    );
    let tls = Request {
        protocol: RequestProtocol::Tls,
        sni: Some("x.saas.example"),
        ..Request::default()
    };
    assert_eq!(verdict(&p, &tls), "allow registered saas/wild");
}

/// The wildcard covers subdomains but not the apex.
#[test]
fn wildcard_host_covers_subdomains_not_the_apex() {
    let p = registry();
    assert_eq!(
        verdict(&p, &http("eu.x.saas.example:443")),
        "allow registered saas/wild"
    );
    assert_eq!(
        verdict(&p, &http("saas.example:443")),
        "deny not_in_registry -"
    );
}

/// Every spelling of a registered address gets the decision of that address.
#[test]
fn ip_spellings_get_the_decision_of_the_address_they_denote() {
    let p = registry();
    for host in [
        "10.20.3.4:5432",
        "169083652:5432",
        "0xa.20.3.4:5432",
        "012.024.3.4:5432",
        "10.20.772:5432",
        "[::ffff:10.20.3.4]:5432",
        "[::ffff:a14:304]:5432",
    ] {
        assert_eq!(
            verdict(&p, &http(host)),
            "allow registered onprem/db",
            "{host}"
        );
    }
    for host in [
        "10.20.3.5:5432",
        "169083653:5432",
        "0xa.20.3.5:5432",
        "[::ffff:10.20.3.5]:5432",
    ] {
        assert_eq!(verdict(&p, &http(host)), "deny not_in_registry -", "{host}");
    }
}

/// Registering a name does not register the addresses it may resolve to, and vice versa.
#[test]
fn raw_ip_is_checked_under_registry_only() {
    let p = registry();
    assert_eq!(
        verdict(&p, &tcp("10.20.3.4", 5432)),
        "allow registered onprem/db"
    );
    assert_eq!(
        verdict(&p, &tcp("10.30.200.1", 5432)),
        "allow registered onprem/net"
    );
    assert_eq!(
        verdict(&p, &tcp("2001:db8::7", 80)),
        "allow registered onprem/net"
    );
    assert_eq!(
        verdict(&p, &tcp("::ffff:10.30.0.1", 80)),
        "allow registered onprem/net"
    );
    assert_eq!(
        verdict(&p, &tcp("10.31.0.1", 5432)),
        "deny not_in_registry -"
    );
    assert_eq!(
        verdict(&p, &tcp("10.30.0.1", 22)),
        "deny port_not_declared onprem/net"
    );
    let no_port = Request {
        protocol: RequestProtocol::Tcp,
        destination: Some("10.20.3.4".parse().unwrap()),
        ..Request::default()
    };
    assert_eq!(verdict(&p, &no_port), "deny port_not_declared onprem/db");
}

/// An unknown name sent to a registered address is judged by the address.
#[test]
fn unknown_name_falls_back_to_the_destination_address() {
    let p = registry();
    let r = Request {
        destination: Some("10.20.3.4".parse().unwrap()),
        port: Some(5432),
        ..http("db.internal")
    };
    assert_eq!(verdict(&p, &r), "allow registered onprem/db");
    let r = Request {
        destination: Some("10.99.0.1".parse().unwrap()),
        port: Some(5432),
        ..http("db.internal")
    };
    assert_eq!(verdict(&p, &r), "deny not_in_registry -");
}

/// Hosts that are not names or addresses are denied as invalid, whatever the mode.
#[test]
fn invalid_hosts_are_denied() {
    let p = compiled(&bundle(AllowAny, vec![], vec![]));
    for host in [
        "",
        "a..b",
        "exa mple.com",
        "256.1.1.1",
        "*.example.com",
        "[::1",
        "a.com:99999",
    ] {
        assert_eq!(verdict(&p, &http(host)), "deny invalid_host -", "{host:?}");
    }
}

/// A TLS server name that names another host than the authority is domain fronting.
#[test]
fn sni_and_authority_must_agree() {
    let p = registry();
    let fronted = Request {
        sni: Some("api.saas.example"),
        ..http("evil.example")
    };
    assert_eq!(verdict(&p, &fronted), "deny sni_host_mismatch -");
    let same = Request {
        sni: Some("API.saas.example"),
        ..http("api.saas.example:443")
    };
    assert_eq!(verdict(&p, &same), "allow registered saas/api");
}

const BILLING: &str = "spiffe://cluster.local/ns/pay/sa/billing";
const FRONTEND: &str = "spiffe://cluster.local/ns/web/sa/frontend";

fn guarded(dry_run: bool) -> warden_engine::Policy {
    let mut access = policy(
        "pay/db-access",
        &[("onprem/db", None)],
        vec![clients(&["spiffe://cluster.local/ns/pay/sa/*"])],
    );
    access.dry_run = dry_run;
    compiled(&bundle(
        RegistryOnly,
        vec![service("onprem/db", &[], &["10.20.3.4"], &[5432])],
        vec![access],
    ))
}

/// A service under an access policy admits the clients a rule names, and names the policy.
#[test]
fn access_policy_allows_named_clients() {
    let p = guarded(false);
    let r = Request {
        client: Some(BILLING),
        ..tcp("10.20.3.4", 5432)
    };
    let d = p.decide(&r);
    assert_eq!(verdict(&p, &r), "allow client_allowed onprem/db");
    assert_eq!(d.policy().map(|n| n.as_str()), Some("pay/db-access"));
}

/// Clients no rule names, and clients without an identity, are denied.
#[test]
fn access_policy_denies_other_clients() {
    let p = guarded(false);
    let r = Request {
        client: Some(FRONTEND),
        ..tcp("10.20.3.4", 5432)
    };
    assert_eq!(verdict(&p, &r), "deny client_not_allowed onprem/db");
    assert_eq!(
        p.decide(&r).policy().map(|n| n.as_str()),
        Some("pay/db-access")
    );
    assert_eq!(
        verdict(&p, &tcp("10.20.3.4", 5432)),
        "deny client_not_allowed onprem/db"
    );
}

/// A dry-run policy reports the denial it would make, and allows.
#[test]
fn dry_run_reports_but_allows() {
    let p = guarded(true);
    let r = Request {
        client: Some(FRONTEND),
        ..tcp("10.20.3.4", 5432)
    };
    let d = p.decide(&r);
    assert!(d.is_allowed());
    assert!(d.is_dry_run());
    assert_eq!(d.reason(), "client_not_allowed");
    let ok = Request {
        client: Some(BILLING),
        ..tcp("10.20.3.4", 5432)
    };
    assert!(!p.decide(&ok).is_dry_run());
}

/// A policy scoped to one port leaves the service's other ports unrestricted.
#[test]
fn port_scoped_policy_leaves_other_ports_open() {
    let svc = service("saas/api", &["api.saas.example"], &[], &[443, 80]);
    let access = policy(
        "saas/tls-only",
        &[("saas/api", Some(443))],
        vec![clients(&[BILLING])],
    );
    let p = compiled(&bundle(RegistryOnly, vec![svc], vec![access]));
    assert_eq!(
        verdict(&p, &http("api.saas.example:80")),
        "allow registered saas/api"
    );
    assert_eq!(
        verdict(&p, &http("api.saas.example:443")),
        "deny client_not_allowed saas/api"
    );
}

/// Conditions inside one rule are AND'ed; rules are OR'ed; the query string is not the path.
#[test]
fn rule_conditions_combine() {
    let rule = AccessRule {
        clients: vec![BILLING.into()],
        methods: vec!["get".into()],
        paths: vec!["/v1/*".into(), "*.json".into(), "/health".into()],
        ip_blocks: vec!["192.168.0.0/16".into()],
    };
    let open = AccessRule {
        paths: vec!["/public/*".into()],
        ..AccessRule::default()
    };
    let access = policy("saas/api-access", &[("saas/api", None)], vec![rule, open]);
    let p = compiled(&bundle(
        RegistryOnly,
        vec![service("saas/api", &["api.saas.example"], &[], &[80])],
        vec![access],
    ));
    let base = Request {
        client: Some(BILLING),
        method: Some("GET"),
        path: Some("/v1/orders?limit=5"),
        source: Some("192.168.1.9".parse().unwrap()),
        ..http("api.saas.example")
    };
    let is_allowed = |r: Request<'_>| p.decide(&r).is_allowed();
    assert!(is_allowed(base));
    assert!(is_allowed(Request {
        path: Some("/data/x.json"),
        ..base
    }));
    assert!(is_allowed(Request {
        path: Some("/health?x=1"),
        ..base
    }));
    assert!(!is_allowed(Request {
        path: Some("/healthz"),
        ..base
    }));
    assert!(!is_allowed(Request {
        method: Some("POST"),
        ..base
    }));
    assert!(!is_allowed(Request {
        client: Some(FRONTEND),
        ..base
    }));
    assert!(!is_allowed(Request {
        source: Some("10.0.0.1".parse().unwrap()),
        ..base
    }));
    assert!(is_allowed(Request {
        client: None,
        method: Some("DELETE"),
        path: Some("/public/a"),
        ..base
    }));
}

/// The decision prints as one log line with provenance.
#[test]
fn decision_log_line_names_service_and_policy() {
    let p = guarded(false);
    let r = Request {
        client: Some(FRONTEND),
        ..tcp("10.20.3.4", 5432)
    };
    assert_eq!(
        p.decide(&r).to_string(),
        "deny client_not_allowed service=onprem/db port=5432 policy=pay/db-access"
    );
}

/// A dry-run policy never allows what an enforced policy on the same service denies.
#[test]
fn dry_run_policy_never_widens_an_enforced_one() {
    let enforced = policy(
        "pay/db-access",
        &[("onprem/db", None)],
        vec![clients(&[BILLING])],
    );
    let mut audit = policy(
        "pay/db-audit",
        &[("onprem/db", None)],
        vec![clients(&[FRONTEND])],
    );
    audit.dry_run = true;
    let p = compiled(&bundle(
        RegistryOnly,
        vec![service("onprem/db", &[], &["10.20.3.4"], &[5432])],
        vec![audit, enforced],
    ));
    let frontend = Request {
        client: Some(FRONTEND),
        ..tcp("10.20.3.4", 5432)
    };
    assert_eq!(verdict(&p, &frontend), "deny client_not_allowed onprem/db");
    assert_eq!(
        p.decide(&frontend).policy().map(|n| n.as_str()),
        Some("pay/db-access")
    );
    let billing = Request {
        client: Some(BILLING),
        ..tcp("10.20.3.4", 5432)
    };
    assert_eq!(verdict(&p, &billing), "allow client_allowed onprem/db");
}
