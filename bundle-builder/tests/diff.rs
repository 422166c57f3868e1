//! `diff`: golden cases (each `tests/golden-diff/<case>/` has manifests in `old/` and `new/`
//! and the exact report in `diff.txt`; regenerate with `WARDEN_BLESS=1`), and properties over
//! generated bundles: a bundle compared with itself shows nothing, and whenever some request
//! is allowed by NEW and denied by OLD, the diff says access widened.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use bundle_builder::decide::{ProtocolArg, Query};
use bundle_builder::diff::diff;
use bundle_builder::policy_input;
use proptest::prelude::*;
use serde_json::{json, Value};
use warden_bundle::{Bundle, Role};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

#[test]
fn golden_diffs() {
    let dir = root().join("tests/golden-diff");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 4, "golden diff cases are missing");
    let mut failures = Vec::new();
    for case in &cases {
        let old = policy_input::read(&[case.join("old")], None, &[]).unwrap();
        let new = policy_input::read(&[case.join("new")], None, &[]).unwrap();
        let report = diff(&old.bundle, &new.bundle, Role::Sidecar).unwrap();
        let actual = report.to_text();
        let path = case.join("diff.txt");
        if std::env::var_os("WARDEN_BLESS").is_some() {
            std::fs::write(&path, &actual).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{}:\n--- expected\n{expected}\n--- actual\n{actual}",
                path.display()
            ));
        }
        // The reverse change swaps what is gained and lost.
        let back = diff(&new.bundle, &old.bundle, Role::Sidecar).unwrap();
        assert_eq!(back.widened, report.narrowed, "{}", case.display());
        assert_eq!(back.narrowed, report.widened, "{}", case.display());
        assert_eq!(back.access.gained, report.access.lost, "{}", case.display());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The vocabulary generated bundles and requests draw from, so that requests hit what the
/// bundles say (and what they do not).
const HOSTS: [&str; 3] = ["a.example", "*.example", "b.example"];
const ADDRESSES: [&str; 3] = ["10.0.0.0/24", "10.0.0.5", "10.0.0.0/16"];
const IP_BLOCKS: [&str; 2] = ["10.1.0.0/24", "10.1.0.0/16"];
const PORTS: [u16; 2] = [443, 80];
const CLIENTS: [&str; 4] = [
    "spiffe://cluster.local/ns/pay/sa/billing",
    "spiffe://cluster.local/ns/pay/sa/*",
    "spiffe://cluster.local/ns/*/sa/api",
    "spiffe://cluster.local/ns/web/sa/front",
];
const METHODS: [&str; 2] = ["GET", "POST"];
const PATHS: [&str; 3] = ["/v1/*", "/admin", "*.json"];

fn pick<T>(items: &[T], mask: u8) -> Vec<&T> {
    items
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, x)| x)
        .collect()
}

/// A service: which hosts, addresses and ports (bit masks over the vocabulary).
fn service() -> impl Strategy<Value = (u8, u8, u8)> {
    (0u8..8, 0u8..8, 1u8..4)
}

/// A policy: target service index, port (none or one), clients, methods, paths, dry-run,
/// source ranges.
fn policy() -> impl Strategy<Value = PolicyGen> {
    (
        0usize..3,
        prop::option::of(0usize..2),
        0u8..16,
        0u8..4,
        0u8..8,
        any::<bool>(),
        0u8..4,
    )
}

type ServiceGen = (u8, u8, u8);
type PolicyGen = (usize, Option<usize>, u8, u8, u8, bool, u8);

fn bundle(registry_only: bool, services: &[ServiceGen], policies: &[PolicyGen]) -> Bundle {
    // Hosts and addresses may be claimed by one service only: later services drop them.
    let mut taken: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (i, (hosts, addresses, ports)) in services.iter().enumerate() {
        let hosts: Vec<String> = pick(&HOSTS, *hosts)
            .into_iter()
            .map(|s| s.to_string())
            .filter(|h| !taken.contains(h))
            .collect();
        // One address per bundle at most: 10.0.0.5 lies inside 10.0.0.0/24.
        let addresses: Vec<String> = pick(&ADDRESSES, *addresses)
            .into_iter()
            .take(1)
            .map(|s| s.to_string())
            .filter(|_| !taken.iter().any(|t| t.starts_with("10.")))
            .collect();
        taken.extend(hosts.iter().cloned());
        taken.extend(addresses.iter().cloned());
        if hosts.is_empty() && addresses.is_empty() {
            continue;
        }
        let ports: Vec<Value> = pick(&PORTS, *ports)
            .into_iter()
            .map(|p| json!({"number": p, "protocol": if *p == 443 { "HTTPS" } else { "HTTP" }}))
            .collect();
        out.push(json!({
            "source": {"kind": "ExternalService", "namespace": "ns", "name": format!("s{i}")},
            "hosts": hosts,
            "addresses": addresses,
            "ports": ports,
        }));
    }
    let names: Vec<String> = out
        .iter()
        .map(|s| s["source"]["name"].as_str().unwrap().to_owned())
        .collect();
    let mut access = Vec::new();
    for (i, (target, port, clients, methods, paths, dry_run, blocks)) in policies.iter().enumerate()
    {
        let Some(name) = names.get(*target) else {
            continue;
        };
        let declared = out[*target]["ports"].as_array().unwrap().clone();
        let mut target = json!({"service": {"namespace": "ns", "name": name}});
        // Only a port the service declares (the engine refuses others).
        if let Some(port) = port.map(|p| PORTS[p]) {
            if declared.iter().any(|d| d["number"] == json!(port)) {
                target["port"] = json!(port);
            }
        }
        access.push(json!({
            "source": {"kind": "AccessPolicy", "namespace": "ns", "name": format!("p{i}")},
            "targets": [target],
            "rules": [{
                "clients": pick(&CLIENTS, *clients),
                "methods": pick(&METHODS, *methods),
                "paths": pick(&PATHS, *paths),
                "ipBlocks": pick(&IP_BLOCKS, *blocks),
            }],
            "dryRun": dry_run,
        }));
    }
    let value = json!({
        "apiVersion": "warden.dev/v1alpha1",
        "kind": "Bundle",
        "spec": {
            "outboundMode": if registry_only { "REGISTRY_ONLY" } else { "ALLOW_ANY" },
            "services": out,
            "accessPolicies": access,
        }
    });
    Bundle::from_json(value.to_string().as_bytes()).unwrap()
}

fn bundles() -> impl Strategy<Value = Bundle> {
    (
        any::<bool>(),
        prop::collection::vec(service(), 1..4),
        prop::collection::vec(policy(), 0..4),
    )
        .prop_map(|(mode, services, policies)| bundle(mode, &services, &policies))
}

/// Every request of the generated vocabulary, and a few outside it.
fn requests() -> Vec<Query> {
    let froms = [
        None,
        Some("pay/billing"),
        Some("pay/other"),
        Some("web/api"),
        Some("web/front"),
        Some("orders/x"),
    ];
    let hosts = ["a.example", "c.example", "b.example", "zzz.other"];
    let ips = ["10.0.0.5", "10.0.0.9", "10.0.7.1", "192.0.2.77"];
    let sources = [None, Some("10.1.0.9"), Some("10.1.5.5")];
    let mut out = Vec::new();
    for (from, source) in froms
        .iter()
        .flat_map(|f| sources.iter().map(move |s| (*f, *s)))
    {
        for port in [443u16, 80, 8080] {
            for host in hosts {
                for method in ["GET", "POST", "PUT"] {
                    for path in ["/v1/x", "/admin", "/x.json", "/other"] {
                        out.push(Query {
                            from: from.map(str::to_owned),
                            source_ip: source.map(|s| s.parse().unwrap()),
                            to: format!("{host}:{port}"),
                            method: Some(method.into()),
                            path: Some(path.into()),
                            ..Query::default()
                        });
                    }
                }
                out.push(Query {
                    from: from.map(str::to_owned),
                    source_ip: source.map(|s| s.parse().unwrap()),
                    to: format!("{host}:{port}"),
                    protocol: ProtocolArg::Tls,
                    ..Query::default()
                });
            }
            for ip in ips {
                out.push(Query {
                    from: from.map(str::to_owned),
                    source_ip: source.map(|s| s.parse().unwrap()),
                    to: format!("{ip}:{port}"),
                    protocol: ProtocolArg::Tcp,
                    ..Query::default()
                });
                out.push(Query {
                    from: from.map(str::to_owned),
                    source_ip: source.map(|s| s.parse().unwrap()),
                    to: format!("{ip}:{port}"),
                    method: Some("GET".into()),
                    path: Some("/v1/x".into()),
                    ..Query::default()
                });
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_bundle_compared_with_itself_shows_nothing(a in bundles()) {
        let report = diff(&a, &a, Role::Sidecar).unwrap();
        prop_assert!(report.is_empty(), "{}", report.to_text());
        prop_assert!(!report.widened);
    }

    #[test]
    fn a_request_newly_allowed_is_reported_as_a_widening(old in bundles(), new in bundles()) {
        let report = diff(&old, &new, Role::Sidecar).unwrap();
        let (mut old_policy, mut new_policy) =
            (warden_engine::compile(&old).unwrap(), warden_engine::compile(&new).unwrap());
        for query in requests() {
            let was = query.decide(&mut old_policy).is_ok_and(|o| o.decision.is_allowed());
            let is = query.decide(&mut new_policy).is_ok_and(|o| o.decision.is_allowed());
            if is && !was {
                prop_assert!(
                    report.widened,
                    "{query:?} is allowed by NEW and denied by OLD, but the diff says:\n{}",
                    report.to_text()
                );
            }
            if was && !is {
                prop_assert!(report.narrowed, "{query:?} lost, but:\n{}", report.to_text());
            }
        }
    }
}
