//! Virtual addresses through the CLI and the build API: kept across builds, rendered into the
//! DNS listener, the virtual listeners and the address guard.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use bundle_builder::build::{build, virtual_ips::Previous, BuildOptions};
use bundle_builder::diagnostic::Diagnostics;
use bundle_builder::manifest::{load::load, source::read_all};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bundle-builder"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn orders_db_addresses(previous: Previous) -> Vec<String> {
    let files = read_all(&[root().join("manifests/examples")]).unwrap();
    let mut diagnostics = Diagnostics::default();
    let resources = load(&files, &mut diagnostics);
    let options = BuildOptions {
        previous,
        ..BuildOptions::default()
    };
    let bundle = build(&resources, &options, &mut diagnostics).unwrap();
    let orders = bundle
        .spec
        .services
        .iter()
        .find(|s| s.source.name == "orders-db")
        .unwrap();
    orders.virtual_addresses.clone()
}

/// A previous bundle's address is kept (inside the range); one outside the range is not.
#[test]
fn previous_addresses_are_kept() {
    let fresh = orders_db_addresses(Previous::default());
    assert_eq!(fresh, ["241.13.92.78"]);
    let kept = orders_db_addresses(
        [(
            "databases/orders-db".to_owned(),
            vec!["241.0.0.99".parse().unwrap()],
        )]
        .into(),
    );
    assert_eq!(kept, ["241.0.0.99"]);
    let outside = orders_db_addresses(
        [(
            "databases/orders-db".to_owned(),
            vec!["10.0.0.99".parse().unwrap()],
        )]
        .into(),
    );
    assert_eq!(outside, fresh);
}

/// `build -f FILE` rebuilds over its own output unchanged; `--previous` names the deployed
/// bundle whose addresses are kept, and a missing one is an error.
#[test]
fn build_keeps_the_addresses_of_the_bundle_it_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle.json");
    let out = out.to_str().unwrap();
    let (code, _, err) = run(&["build", "manifests/examples", "-f", out]);
    assert_eq!(code, 0, "{err}");
    let first: Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    let (code, _, err) = run(&["build", "manifests/examples", "-f", out]);
    assert_eq!(code, 0, "{err}");
    let second: Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    assert_eq!(first, second);
    // A deployed bundle that gave orders-db another address: the new build keeps it.
    let mut deployed = first.clone();
    for service in deployed["spec"]["services"].as_array_mut().unwrap() {
        if service["source"]["name"] == "orders-db" {
            service["virtualAddresses"] = serde_json::json!(["241.0.0.99"]);
        }
    }
    deployed["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("digest");
    let deployed_file = dir.path().join("deployed.json");
    std::fs::write(&deployed_file, deployed.to_string()).unwrap();
    let (code, _, err) = run(&[
        "build",
        "manifests/examples",
        "-f",
        out,
        "--previous",
        deployed_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    let orders = kept["spec"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"]["name"] == "orders-db")
        .unwrap()
        .clone();
    assert_eq!(
        orders["virtualAddresses"],
        serde_json::json!(["241.0.0.99"])
    );
    let (code, _, err) = run(&[
        "build",
        "manifests/examples",
        "-f",
        out,
        "--previous",
        "/nonexistent/bundle.json",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--previous: cannot read bundle"), "{err}");
}

/// `render envoy --dns` needs resolvers of its own; with them, the DNS listener answers the
/// names with their virtual addresses, `--virtual-addresses` listens on each, and the address
/// guard refuses every virtual address as a destination.
#[test]
fn render_envoy_renders_dns_virtual_listeners_and_guard() {
    let bundle = root().join("bundle-builder/tests/golden/examples/bundle.json");
    let bundle = bundle.to_str().unwrap();
    let (code, _, err) = run(&[
        "render",
        "envoy",
        "--bundle",
        bundle,
        "--dns",
        "127.0.0.1:5353",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--dns needs --resolver"), "{err}");
    let (code, _, err) = run(&[
        "render",
        "envoy",
        "--bundle",
        bundle,
        "--dns",
        "127.0.0.1:5353",
        "--resolver",
        "127.0.0.1:5353",
    ]);
    assert_eq!(code, 2, "{err}");

    let (code, out, err) = run(&[
        "render",
        "envoy",
        "--bundle",
        bundle,
        "--dns",
        "127.0.0.1:5353",
        "--resolver",
        "127.0.0.1:53",
        "--virtual-addresses",
    ]);
    assert_eq!(code, 0, "{err}");
    let config: Value = serde_json::from_str(&out).unwrap();
    let listeners = config["static_resources"]["listeners"].as_array().unwrap();
    let dns = listeners
        .iter()
        .find(|l| l["name"] == "warden_dns")
        .unwrap();
    let table = &dns["listener_filters"][0]["typed_config"]["server_config"]["inline_dns_table"];
    assert_eq!(
        table["virtual_domains"],
        serde_json::json!([{ "name": "orders-db.mesh.internal",
            "endpoint": { "address_list": { "address": ["241.13.92.78"] } } }])
    );
    let on_vip: Vec<&Value> = listeners
        .iter()
        .filter(|l| l["address"]["socket_address"]["address"] == "241.13.92.78")
        .collect();
    assert_eq!(on_vip.len(), 1);
    assert_eq!(on_vip[0]["address"]["socket_address"]["port_value"], 5432);
    assert!(
        out.contains("\"address_prefix\": \"241.13.92.78\""),
        "the guard"
    );
}
