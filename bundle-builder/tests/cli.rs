//! The real binary, driven as a user would, with exact output asserted.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A file of the repository, as an argument.
fn repo_file(path: &str) -> String {
    root().join(path).display().to_string()
}

fn example() -> String {
    repo_file("manifests/bundles/example.json")
}

/// Runs the binary; returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bundle-builder"))
        .args(args)
        .output()
        .expect("run bundle-builder");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn explain(extra: &[&str]) -> (i32, String, String) {
    explain_with(&example(), extra)
}

/// `explain --bundle BUNDLE EXTRA...`.
fn explain_with(bundle: &str, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["explain", "--bundle", bundle];
    args.extend_from_slice(extra);
    run(&args)
}

/// The access-policy denial, as an operator reads it.
#[test]
fn explain_text_names_service_policy_and_reason() {
    let (code, out, _) = explain(&[
        "--from",
        "spiffe://cluster.local/ns/web/sa/frontend",
        "--to",
        "10.255.0.10:5432",
        "--protocol",
        "tcp",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "request:  tcp 10.255.0.10:5432 from spiffe://cluster.local/ns/web/sa/frontend\n\
         decision: deny\n\
         reason:   client_not_allowed\n\
         service:  databases/orders-db port 5432\n\
         policy:   databases/orders-db-access\n\
         why:      an access policy covers this service and none of its rules allows this client\n"
    );
}

/// `--output json` prints the documented object, keys in order.
#[test]
fn explain_json_has_the_documented_fields() {
    let (code, out, _) = explain(&[
        "--from",
        "spiffe://cluster.local/ns/orders/sa/api",
        "--to",
        "orders-db.mesh.internal:5432",
        "--protocol",
        "tls",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "{\n  \"decision\": \"allow\",\n  \"reason\": \"client_allowed\",\n  \"dryRun\": false,\n  \
         \"service\": \"databases/orders-db\",\n  \"policy\": \"databases/orders-db-access\",\n  \
         \"endpoint\": {\n    \"address\": \"10.20.3.4\",\n    \"port\": 5432,\n    \"locality\": \"us-east/us-east-1a\"\n  },\n  \"viaGateway\": false,\n  \
         \"route\": {\n    \"cluster\": \"warden_original_dst\",\n    \"target\": \"10.20.3.4:5432\",\n    \
         \"authority\": null,\n    \"serverName\": null\n  }\n}\n"
    );
}

/// A dry-run policy shows the denial it would make, and the request allowed.
#[test]
fn explain_shows_dry_run() {
    let (_, out, _) = explain(&["--to", "api.payments.example:443", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["dryRun"], true);
    assert_eq!(v["reason"], "client_not_allowed");
    assert_eq!(v["policy"], "saas/payments-billing-only");
}

/// An address spelled in hex is judged as the address; unregistered ones are denied.
#[test]
fn explain_normalises_ip_spellings() {
    let (_, out, _) = explain(&["--to", "0xa.30.0x1.1:8080", "--output", "json"]);
    assert!(
        out.contains("\"service\": \"legacy/datacentre-net\""),
        "{out}"
    );
    let (_, out, _) = explain(&["--to", "167772161:8080", "--output", "json"]);
    assert!(out.contains("\"reason\": \"not_in_registry\""), "{out}");
}

/// Asking about a host name with no virtual address over plain TCP is refused with what to do
/// instead.
#[test]
fn explain_refuses_a_tcp_host_name() {
    let (code, out, err) = explain(&["--to", "db.example:5432", "--protocol", "tcp"]);
    assert_eq!(code, 2);
    assert_eq!(out, "");
    assert_eq!(
        err,
        "bundle-builder: to \"db.example:5432\" names a host that has no virtual address in \
         this bundle, and a tcp connection carries no host name; give the IP address the client \
         connects to, or the tls protocol\n"
    );
}

/// A bundle that does not compile is reported with file, resource and field.
#[test]
fn explain_reports_a_bad_bundle() {
    let dir = std::env::temp_dir().join(format!("warden-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.json");
    let text = std::fs::read_to_string(example())
        .unwrap()
        .replace("10.30.0.0/16", "10.30.0.1/16");
    std::fs::write(&path, text).unwrap();
    let (code, _, err) = run(&[
        "explain",
        "--bundle",
        path.to_str().unwrap(),
        "--to",
        "a.example",
    ]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        format!(
            "bundle-builder: {}: ExternalService legacy/datacentre-net: spec.services[2].addresses[0]: \
             \"10.30.0.1/16\" has host bits set; the network is 10.30.0.0/16\n",
            path.display()
        )
    );
    let (code, _, err) = run(&[
        "explain",
        "--bundle",
        "/nonexistent/b.json",
        "--to",
        "a.example",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("bundle-builder: cannot read bundle /nonexistent/b.json: "),
        "{err}"
    );
}

/// The JSON Schema checked in under docs/ is the one the types generate. Regenerate with
/// `WARDEN_BLESS=1 cargo test -p bundle-builder --test cli`.
#[test]
fn bundle_schema_in_docs_is_current() {
    let (code, generated, _) = run(&["schema"]);
    assert_eq!(code, 0);
    let path = root().join("docs/bundle.schema.json");
    if std::env::var_os("WARDEN_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/bundle.schema.json is out of date with the bundle types; regenerate it with \
         WARDEN_BLESS=1 cargo test -p bundle-builder --test cli"
    );
}

/// The example bundle survives a write and a read unchanged.
#[test]
fn example_bundle_round_trips() {
    let text = std::fs::read(example()).unwrap();
    let bundle = warden_bundle::Bundle::from_json(&text).unwrap();
    let again =
        warden_bundle::Bundle::from_json(bundle.to_json_pretty().unwrap().as_bytes()).unwrap();
    assert_eq!(bundle, again);
}

fn run_with_stdin(args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_bundle-builder"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `validate` exits 0 on valid manifests (notes allowed) and 1 with the diagnostics otherwise.
#[test]
fn validate_exit_codes_and_text() {
    let examples = root().join("manifests/examples").display().to_string();
    let (code, out, _) = run(&["validate", &examples]);
    assert_eq!(code, 0, "{out}");
    let bad = "apiVersion: networking.gloo.solo.io/v2\nkind: ExternalService\nmetadata: {name: api, namespace: saas}\nspec:\n  hosts: [api.example.com]\n  ports: [{number: 443, protocol: HTTPX}]\n";
    let (code, out, _) = run_with_stdin(&["validate", "-"], bad);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "<stdin>:6: error[invalid-field]: ExternalService saas/api: spec.ports[0].protocol: \"HTTPX\" is not a protocol; use one of HTTP, HTTPS, HTTP2, GRPC, TCP, TLS, MONGO\n1 error(s), 0 warning(s)\n"
    );
}

/// `validate --output json` gives CI a list of diagnostics with every location field.
#[test]
fn validate_json_for_pipelines() {
    let bad = "apiVersion: networking.gloo.solo.io/v2\nkind: ExternalService\nmetadata: {name: net, namespace: dc}\nspec:\n  addresses: [10.1.2.3/8]\n  ports: [{number: 80, protocol: HTTP}]\n";
    let (code, out, _) = run_with_stdin(&["validate", "-", "--output", "json"], bad);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["valid"], false);
    let d = &v["diagnostics"][0];
    assert_eq!(d["severity"], "error");
    assert_eq!(d["file"], "<stdin>");
    assert_eq!(d["line"], 5);
    assert_eq!(d["resource"], "ExternalService dc/net");
    assert_eq!(d["field"], "spec.addresses[0]");
    assert_eq!(
        d["message"],
        "\"10.1.2.3/8\" has host bits set; the network is 10.0.0.0/8"
    );
}

/// `build` writes a sealed bundle the filter accepts, and the same bytes every time.
#[test]
fn build_writes_a_deterministic_sealed_bundle() {
    let dir = std::env::temp_dir().join(format!("warden-build-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let examples = root().join("manifests/examples").display().to_string();
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    for out in [&a, &b] {
        let (code, _, err) = run(&["build", &examples, "-f", out.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("wrote "), "{err}");
    }
    let bytes = std::fs::read(&a).unwrap();
    assert_eq!(bytes, std::fs::read(&b).unwrap());
    let bundle = warden_bundle::Bundle::from_json(&bytes).unwrap();
    assert!(bundle
        .metadata
        .digest
        .as_deref()
        .unwrap()
        .starts_with("sha256:"));
    bundle.verify_digest().unwrap();
    // The explain command reads it.
    let (code, out, _) = run(&[
        "explain",
        "--bundle",
        a.to_str().unwrap(),
        "--to",
        "evil.example",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("\"reason\": \"not_in_registry\""), "{out}");
}

/// `build` writes nothing when there are errors, and names an unknown workspace.
#[test]
fn build_refuses_errors_and_unknown_workspaces() {
    let dir = std::env::temp_dir().join(format!("warden-build-err-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("bundle.json");
    let bad = "apiVersion: networking.gloo.solo.io/v2\nkind: ExternalService\nmetadata: {name: x, namespace: y}\nspec: {ports: [{number: 80, protocol: HTTP}]}\n";
    let (code, _, err) = run_with_stdin(&["build", "-", "-f", out.to_str().unwrap()], bad);
    assert_eq!(code, 1);
    assert!(err.contains("a service needs one of them"), "{err}");
    assert!(
        err.ends_with("bundle-builder: no bundle written: fix the errors above\n"),
        "{err}"
    );
    assert!(!out.exists());
    let examples = root().join("manifests/examples").display().to_string();
    let (code, _, err) = run(&[
        "build",
        &examples,
        "-f",
        out.to_str().unwrap(),
        "--workspace",
        "nope",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("<command line>:0: error[unknown-workspace]: --workspace: no workspace \"nope\"; the manifests declare default, payments, platform"),
        "{err}"
    );
}

/// `watch` applies the first build, rebuilds on a change, and leaves the running policy
/// untouched (printing the diagnostic) when a change breaks the manifests.
#[test]
fn watch_rebuilds_on_change_and_keeps_the_policy_on_errors() {
    use std::io::Read;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    let dir = std::env::temp_dir().join(format!("warden-watch-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("manifests")).unwrap();
    let manifest = dir.join("manifests/api.yaml");
    let service = |host: &str| {
        format!("apiVersion: networking.gloo.solo.io/v2\nkind: ExternalService\nmetadata: {{name: api, namespace: saas}}\nspec:\n  hosts: [{host}]\n  ports: [{{number: 443, protocol: HTTPS}}]\n")
    };
    std::fs::write(&manifest, service("a.example.com")).unwrap();
    let ecds = dir.join("ecds.json");
    // The module the local Envoy would load: it must exist for watch to apply anything.
    let wasm = dir.join("warden.wasm");
    std::fs::write(&wasm, b"\0asm").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_bundle-builder"))
        .args([
            "watch",
            dir.join("manifests").to_str().unwrap(),
            "--ecds",
            ecds.to_str().unwrap(),
            "--wasm",
            wasm.to_str().unwrap(),
            // Long enough that a loaded machine does not stall between the test's truncating
            // a manifest and writing it for a whole interval twice (50 ms did, in CI-like
            // runs of the whole suite, and the empty file settled).
            "--interval-ms",
            "250",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    // Stopped however the test ends (a failed assertion would otherwise leave it running).
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Stop(child);
    let log = Arc::new(Mutex::new(String::new()));
    let (sink, mut stderr) = (log.clone(), stderr);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let wait_for = |what: &dyn Fn() -> bool, label: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !what() {
            assert!(
                Instant::now() < deadline,
                "{label}; stderr:\n{}",
                log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let response = || {
        std::fs::read_to_string(&ecds)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    };
    let version = || response().and_then(|v| v["version_info"].as_str().map(str::to_owned));
    // The filter's configuration is the compiled form: the host names are in its tables.
    let applied = |host: &str| {
        response()
            .and_then(|v| {
                let config = v["resources"][0]["typed_config"]["config"]["configuration"]["value"]
                    .as_str()?
                    .to_owned();
                let config: serde_json::Value = serde_json::from_str(&config).ok()?;
                use base64::Engine as _;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(config["compiledPolicy"].as_str()?)
                    .ok()?;
                // The tables travel deflate-compressed.
                let envelope = warden_engine::compact::open(&bytes).ok()?;
                let mut tables = Vec::new();
                std::io::Read::read_to_end(
                    &mut flate2::read::DeflateDecoder::new(envelope.payload),
                    &mut tables,
                )
                .ok()?;
                Some(tables)
            })
            .is_some_and(|tables| tables.windows(host.len()).any(|w| w == host.as_bytes()))
    };
    wait_for(&|| version().is_some(), "the first build was not applied");
    let first = version().unwrap();
    assert!(applied("a.example.com"));

    std::fs::write(&manifest, service("b.example.com")).unwrap();
    wait_for(
        &|| version().is_some_and(|v| v != first) && applied("b.example.com"),
        "the change was not applied",
    );
    let second = version().unwrap();
    // Only settled files are built: nothing was applied between the two versions (such as
    // the empty registry a half-written file would have given).
    // (The count is taken before the message locks the log again: one statement holding
    // both locks would deadlock when the assertion fails.)
    let applies = log.lock().unwrap().matches("applied sha256:").count();
    assert_eq!(applies, 2, "{}", log.lock().unwrap());

    std::fs::write(&manifest, service("b.*.example.com")).unwrap();
    wait_for(
        &|| {
            log.lock()
                .unwrap()
                .contains("the running policy is unchanged")
        },
        "the error was not reported",
    );
    assert!(log.lock().unwrap().contains(
        "spec.hosts[0]: \"b.*.example.com\": a wildcard may only be the whole leftmost label"
    ));
    assert_eq!(
        version().unwrap(),
        second,
        "a broken change leaves the policy untouched"
    );
}

/// `keygen` writes a key pair (the private key readable by its owner only); `build --sign`
/// writes a bundle whose signature verifies with the public key.
#[test]
fn keygen_and_build_sign() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("warden-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prefix = dir.join("bundle-signing");
    let (code, _, err) = run(&["keygen", "--out", prefix.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let key = prefix.with_extension("key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (code, _, err) = run(&["keygen", "--out", prefix.to_str().unwrap()]);
    assert_eq!(code, 2, "an existing key is never overwritten");
    assert!(err.contains("it must not exist yet"), "{err}");

    let out = dir.join("bundle.json");
    let examples = root().join("manifests/examples").display().to_string();
    let (code, _, err) = run(&[
        "build",
        &examples,
        "-f",
        out.to_str().unwrap(),
        "--sign",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let bundle = warden_bundle::Bundle::from_json(&std::fs::read(&out).unwrap()).unwrap();
    let pub_file = prefix.with_extension("pub");
    let public = std::fs::read_to_string(&pub_file).unwrap();
    // Labelled, so that one half is never taken for the other.
    let (label, hex) = public.split_once('\n').unwrap();
    assert_eq!(label, "# warden ed25519 public key");
    bundle
        .verify_signature(&warden_bundle::public_key(hex.trim()).unwrap())
        .unwrap();
    // Signing with the public key, or requiring the private one, is refused.
    let (code, _, err) = run(&[
        "build",
        &examples,
        "-f",
        out.to_str().unwrap(),
        "--sign",
        pub_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("is a public key (from keygen); signing takes the private key, PREFIX.key"),
        "{err}"
    );
    let (code, _, err) = run(&[
        "render",
        "istio",
        "--bundle",
        out.to_str().unwrap(),
        "--image",
        "oci://registry.example.com/warden:1",
        "--gateway-namespace",
        "istio-egress",
        "--public-key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("is a private key; give the public key, PREFIX.pub"),
        "{err}"
    );
    // render istio checks the signature and hands the key to every plugin.
    let (code, yaml, err) = run(&[
        "render",
        "istio",
        "--bundle",
        out.to_str().unwrap(),
        "--image",
        "oci://registry.example.com/warden:1",
        "--gateway-namespace",
        "istio-egress",
        "--public-key",
        pub_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        yaml.matches(&format!("value: {}", hex.trim())).count(),
        4,
        "WARDEN_PUBLIC_KEY in the four plugins"
    );
    let (code, _, err) = run(&[
        "render",
        "istio",
        "--bundle",
        &examples_bundle(),
        "--image",
        "oci://registry.example.com/warden:1",
        "--gateway-namespace",
        "istio-egress",
        "--public-key",
        pub_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("the filter, given --public-key, would refuse this bundle"),
        "{err}"
    );
}

/// The bundle built from `manifests/examples/` (the golden test keeps it current).
fn examples_bundle() -> String {
    repo_file("bundle-builder/tests/golden/examples/bundle.json")
}

fn explain_examples(extra: &[&str]) -> (i32, String, String) {
    explain_with(&examples_bundle(), extra)
}

/// The same request explained at a sidecar (sent on to the gateway), at a sidecar without a
/// gateway route (denied), and at the gateway (TLS originated there).
#[test]
fn explain_follows_the_egress_gateway_route() {
    let billing = "spiffe://cluster.local/ns/pay/sa/billing";
    let base = ["--from", billing, "--to", "api.partner.example:443"];
    let explain = explain_examples;
    let (code, out, _) = explain(&base);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "request:  http api.partner.example:443 from spiffe://cluster.local/ns/pay/sa/billing\n\
         decision: allow\n\
         reason:   client_allowed\n\
         service:  pay/partner-api port 443\n\
         policy:   pay/partner-api-billing-only\n\
         route:    cluster warden_egress_gateway (the egress gateway chooses the endpoint and originates TLS)\n\
         why:      an access policy rule allows this client\n"
    );
    let (_, out, _) = explain(&[&base[..], &["--no-gateway-route"]].concat());
    assert!(out.contains("reason:   must_use_gateway\n"), "{out}");
    let (_, out, _) = explain(&[&base[..], &["--role", "gateway"]].concat());
    assert!(
        out.contains("tls:      originated by cluster warden_tls|pay|partner-api|443\n"),
        "{out}"
    );
    assert!(
        out.contains("route:    cluster warden_tls|pay|partner-api|443\n"),
        "{out}"
    );
    let (_, out, _) = explain(&[
        "--role",
        "gateway",
        "--from",
        "spiffe://cluster.local/ns/web/sa/frontend",
        "--to",
        "api.partner.example:443",
        "--output",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["reason"], "client_not_allowed");
    assert_eq!(json["viaGateway"], true);
}

/// `render envoy --role gateway` needs the gateway's mesh certificate; with it, the listener
/// requires client certificates and each TLS-originating port gets its cluster.
#[test]
fn render_gateway_requires_mesh_tls_and_renders_origination() {
    let bundle = examples_bundle();
    let (code, _, err) = run(&["render", "envoy", "--role", "gateway", "--bundle", &bundle]);
    assert_eq!(code, 2);
    assert!(
        err.contains("the egress gateway needs its mesh certificate"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, "PEM").unwrap();
        path.display().to_string()
    };
    let (cert, key, ca) = (file("gw.crt"), file("gw.key"), file("mesh-ca.pem"));
    let tls = ["--cert", &cert, "--key", &key, "--ca", &ca];
    let mut args = vec!["render", "envoy", "--role", "gateway", "--bundle", &bundle];
    args.extend_from_slice(&tls);
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    let config: serde_json::Value = serde_json::from_str(&out).unwrap();
    let listener = &config["static_resources"]["listeners"][0];
    assert_eq!(listener["name"], "warden_gateway");
    let downstream = &listener["filter_chains"][0]["transport_socket"]["typed_config"];
    assert_eq!(downstream["require_client_certificate"], true);
    let clusters: Vec<&str> = config["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        clusters.contains(&"warden_tls|pay|partner-api|443"),
        "{clusters:?}"
    );
    assert_eq!(config["node"]["metadata"]["WARDEN_ROLE"], "gateway");

    // A sidecar with a gateway gets the mTLS cluster to it, and leaves origination to it.
    let mut args = vec![
        "render",
        "envoy",
        "--bundle",
        &bundle,
        "--gateway",
        "127.0.0.70:15443",
    ];
    args.extend_from_slice(&[
        "--gateway-identity",
        "spiffe://cluster.local/ns/egress/sa/gw",
    ]);
    args.extend_from_slice(&tls);
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    let config: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = config["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"warden_egress_gateway"), "{names:?}");
    assert!(
        !names.contains(&"warden_tls|pay|partner-api|443"),
        "{names:?}"
    );
    assert_eq!(
        config["node"]["metadata"]["WARDEN_GATEWAY_CLUSTER"],
        "warden_egress_gateway"
    );
    let (code, _, err) = run(&[
        "render",
        "envoy",
        "--bundle",
        &bundle,
        "--gateway",
        "127.0.0.70:15443",
        "--gateway-identity",
        "not-spiffe",
        "--cert",
        &cert,
        "--key",
        &key,
        "--ca",
        &ca,
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--gateway-identity \"not-spiffe\""), "{err}");
}

/// Malformed hosts a client can send are answered as the filter decides them, not refused:
/// over HTTP and as a TLS server name, `deny invalid_host`.
#[test]
fn explain_answers_malformed_hosts_as_the_filter_does() {
    for extra in [
        &["--to", "api..example.com:443"][..],
        &["--to", "api..example.com:443", "--protocol", "tls"][..],
        &["--to", "exa mple.com", "--protocol", "tls"][..],
    ] {
        let mut args = extra.to_vec();
        args.extend(["--output", "json"]);
        let (code, out, err) = explain(&args);
        assert_eq!(code, 0, "{extra:?}: {err}");
        assert!(
            out.contains("\"reason\": \"invalid_host\""),
            "{extra:?}: {out}"
        );
    }
}

/// Gloo's overlap rule under REGISTRY_ONLY: the later service is left out, the bundle is built
/// with everything else and `build` says so; `validate` still fails, so CI catches it.
#[test]
fn an_overlap_leaves_the_later_service_out_and_builds_the_rest() {
    let input = repo_file("bundle-builder/tests/golden/overlap-left-out/input");
    let input = input.as_str();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle.json");
    let (code, _, err) = run(&["build", input, "-f", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("2 service(s) left out by the overlap rule"),
        "{err}"
    );
    let bundle = std::fs::read_to_string(&out).unwrap();
    assert!(!bundle.contains("api-copy") && !bundle.contains("dc-net"));
    let (code, out, _) = run(&["validate", input]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("this service is left out of the bundle"),
        "{out}"
    );
}

/// `clientsideTls.credentialName` (a Kubernetes secret) is for Istio: `render envoy` says
/// plainly that a local Envoy needs the certificate files instead.
#[test]
fn render_envoy_explains_that_a_secret_needs_files_locally() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.json");
    std::fs::write(
        &bundle,
        serde_json::json!({
            "apiVersion": "warden.dev/v1alpha1", "kind": "Bundle",
            "spec": { "services": [{
                "source": { "kind": "ExternalService", "namespace": "pay", "name": "bank" },
                "hosts": ["bank.example"],
                "ports": [{ "number": 443, "protocol": "HTTPS",
                            "tls": { "mode": "MUTUAL", "credentialName": "bank-client" } }]
            }] }
        })
        .to_string(),
    )
    .unwrap();
    let (code, _, err) = run(&["render", "envoy", "--bundle", bundle.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("pay/bank port 443")
            && err.contains("credentialName names a Kubernetes secret, which only Istio reads"),
        "{err}"
    );
}

/// Gloo's staging/prod example in one bundle: `explain` decides each caller within its
/// workspace's view, as the filter does.
#[test]
fn explain_decides_within_the_callers_workspace() {
    let bundle = repo_file("bundle-builder/tests/golden/workspace-views/bundle.json");
    for (from, want) in [
        (
            "spiffe://cluster.local/ns/staging-apps/sa/api",
            "allow registered staging-data/db",
        ),
        (
            "spiffe://cluster.local/ns/prod-apps/sa/api",
            "allow client_allowed prod-data/db",
        ),
        (
            "spiffe://cluster.local/ns/prod-apps/sa/batch",
            "deny client_not_allowed prod-data/db",
        ),
        (
            "spiffe://cluster.local/ns/web/sa/frontend",
            "deny not_in_workspace -",
        ),
    ] {
        let (code, out, err) = explain_with(
            &bundle,
            &[
                "--from",
                from,
                "--to",
                "127.0.0.90:15490",
                "--protocol",
                "tcp",
                "--output",
                "json",
            ],
        );
        assert_eq!(code, 0, "{err}");
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        let got = format!(
            "{} {} {}",
            json["decision"].as_str().unwrap(),
            json["reason"].as_str().unwrap(),
            json["service"].as_str().unwrap_or("-")
        );
        assert_eq!(got, want, "{from}");
    }
}

/// A folder with nothing Warden reads (empty, or files with another extension) builds no
/// bundle: an empty registry would be ALLOW_ANY with nothing registered.
#[test]
fn nothing_to_read_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("services.YAML.txt"),
        "kind: ExternalService\n",
    )
    .unwrap();
    let path = dir.path().to_str().unwrap();
    let (code, out, _) = run(&["validate", path]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no manifest Warden reads was found"), "{out}");
    let out_file = dir.path().join("bundle.json");
    let (code, _, err) = run(&["build", path, "-f", out_file.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(!out_file.exists());
}

/// Delivery says what would happen: `watch` and `build --ecds` refuse a `--wasm` that does not
/// exist (Envoy would reject every update); `render envoy --public-key` refuses a bundle the
/// filter would refuse (unsigned), and warns about a `--wasm` missing here.
#[test]
fn delivery_refuses_what_envoy_would_reject() {
    let dir = tempfile::tempdir().unwrap();
    let ecds = dir.path().join("ecds.json");
    let (code, _, err) = run(&[
        "build",
        &repo_file("manifests/examples"),
        "--ecds",
        ecds.to_str().unwrap(),
        "--wasm",
        "/nonexistent/warden.wasm",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--wasm /nonexistent/warden.wasm does not exist"),
        "{err}"
    );
    assert!(!ecds.exists());

    let key = dir.path().join("k");
    let (code, _, err) = run(&["keygen", "--out", key.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let public = dir.path().join("k.pub");
    let (code, _, err) = run(&[
        "render",
        "envoy",
        "--bundle",
        &example(),
        "--public-key",
        public.to_str().unwrap(),
        "--wasm",
        "/nonexistent/warden.wasm",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("would refuse this bundle"), "{err}");
    assert!(err.contains("not signed"), "{err}");
    let (code, _, err) = run(&[
        "render",
        "envoy",
        "--bundle",
        &example(),
        "--wasm",
        "/nonexistent/warden.wasm",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning: --wasm /nonexistent/warden.wasm does not exist here"),
        "{err}"
    );
}

/// `explain --exit-code` exits 1 on a denial, like `kubectl auth can-i`; `--from` takes a
/// SPIFFE ID or NAMESPACE/SERVICE_ACCOUNT, and nothing else.
#[test]
fn explain_exit_code_and_from_forms() {
    let (code, out, _) = explain_examples(&[
        "--from",
        "web/frontend",
        "--to",
        "api.partner.example:443",
        "--exit-code",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with(
            "request:  http api.partner.example:443 from spiffe://cluster.local/ns/web/sa/frontend\n\
             decision: deny\n"
        ),
        "{out}"
    );
    let (code, _, _) = explain_examples(&[
        "--from",
        "pay/billing",
        "--to",
        "api.partner.example:443",
        "--exit-code",
    ]);
    assert_eq!(code, 0);
    // Without --exit-code a denial is still a successful answer.
    let (code, _, _) =
        explain_examples(&["--from", "web/frontend", "--to", "api.partner.example:443"]);
    assert_eq!(code, 0);
    let (code, out, err) =
        explain_examples(&["--from", "frontend", "--to", "api.partner.example:443"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(
        err,
        "bundle-builder: from \"frontend\" is neither a SPIFFE ID \
         (spiffe://cluster.local/ns/NAMESPACE/sa/SERVICE_ACCOUNT) nor NAMESPACE/SERVICE_ACCOUNT\n"
    );
}

/// The decision tests kept beside the examples pass (this is how `make test` runs them).
#[test]
fn decision_tests_of_the_examples_pass() {
    let (code, out, err) = run(&["test", &repo_file("manifests/examples/decision-tests.yaml")]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "9 cases: 9 passed, 0 failed\n");
    // The same against the built bundle.
    let (code, out, _) = run(&[
        "test",
        "--policy",
        &examples_bundle(),
        &repo_file("manifests/examples/decision-tests.yaml"),
    ]);
    assert_eq!((code, out.as_str()), (0, "9 cases: 9 passed, 0 failed\n"));
}

/// A failing case names its file and line, each expectation missed, what came instead, and
/// where the deciding resources are written; exit 1.
#[test]
fn decision_test_failures_say_what_and_where() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["partner-api.yaml", "egress-settings.yaml"] {
        std::fs::copy(
            root().join("manifests/examples").join(file),
            dir.path().join(file),
        )
        .unwrap();
    }
    let tests = dir.path().join("tests.yaml");
    std::fs::write(
        &tests,
        [
            "apiVersion: warden.dev/v1alpha1",
            "kind: DecisionTests",
            "spec:",
            "  cases:",
            "  - name: web may call the partner",
            "    request:",
            "      from: web/frontend",
            "      to: api.partner.example:443",
            "    expect:",
            "      decision: allow",
            "      reason: client_allowed",
            "  - name: billing may call the partner",
            "    request:",
            "      from: pay/billing",
            "      to: api.partner.example:443",
            "    expect:",
            "      decision: allow",
            "",
        ]
        .join("\n"),
    )
    .unwrap();
    let (code, out, _) = run(&["test", &tests.display().to_string()]);
    let d = dir.path().display();
    assert_eq!(code, 1);
    assert_eq!(
        out,
        format!(
            "FAIL {d}/tests.yaml:5: web may call the partner\n\
             \x20 decision: expected allow, got deny\n\
             \x20 reason: expected client_allowed, got client_not_allowed\n\
             \x20 got:     deny client_not_allowed\n\
             \x20 service: pay/partner-api ({d}/partner-api.yaml:4)\n\
             \x20 policy:  pay/partner-api-billing-only ({d}/partner-api.yaml:25)\n\
             \x20 why:     an access policy covers this service and none of its rules allows this client\n\
             2 cases: 1 passed, 1 failed\n"
        )
    );
    // JSON: every case, with expected and actual.
    let (code, out, _) = run(&["test", "-o", "json", &tests.display().to_string()]);
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["passed"], 1);
    assert_eq!(json["failed"], 1);
    assert_eq!(json["cases"][0]["actual"]["reason"], "client_not_allowed");
    assert_eq!(json["cases"][0]["expected"]["decision"], "allow");
    assert_eq!(json["cases"][1]["passed"], true);

    // A mistake in the test file is named with its line; nothing runs (exit 2).
    std::fs::write(
        &tests,
        "apiVersion: warden.dev/v1alpha1\nkind: DecisionTests\nspec:\n  cases:\n  - name: x\n    request:\n      to: a.example\n    expect:\n      decision: allowed\n",
    )
    .unwrap();
    let (code, out, err) = run(&["test", &tests.display().to_string()]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(
        err,
        format!(
            "bundle-builder: the decision tests cannot be read:\n{d}/tests.yaml:9: spec.cases[0].expect.decision: unknown variant `allowed`, expected `allow` or `deny`\n"
        )
    );
    // A misspelt kind would drop its cases without a word: an error.
    let misspelt = dir.path().join("more-tests.yaml");
    std::fs::write(
        &misspelt,
        "apiVersion: warden.dev/v1alpha1\nkind: DecisionTest\nspec:\n  cases: []\n",
    )
    .unwrap();
    let (code, _, err) = run(&["test", &misspelt.display().to_string()]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        format!(
            "bundle-builder: the decision tests cannot be read:\n{d}/more-tests.yaml:2: kind: DecisionTest is not a kind Warden reads; did you mean DecisionTests?\n"
        )
    );
    std::fs::remove_file(&misspelt).unwrap();
    // Manifests with errors are refused: a test of a bundle that would not be built means nothing.
    let valid = std::fs::read_to_string(&tests)
        .unwrap()
        .replace("allowed", "allow");
    std::fs::write(&tests, valid).unwrap();
    // A bundle is a whole policy: not with manifests, not with --workspace.
    let (code, _, err) = run(&[
        "test",
        "--policy",
        &examples_bundle(),
        "--workspace",
        "payments",
        &tests.display().to_string(),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--workspace payments builds manifests; a bundle is already built"),
        "{err}"
    );
    std::fs::write(
        dir.path().join("typo.yaml"),
        "apiVersion: security.policy.gloo.solo.io/v2\nkind: AccesPolicy\nmetadata:\n  name: x\n",
    )
    .unwrap();
    let (code, _, err) = run(&["test", &tests.display().to_string()]);
    assert_eq!(code, 2);
    assert!(err.contains("the manifests have errors"), "{err}");
    assert!(err.contains("did you mean AccessPolicy?"), "{err}");
}

/// `diff`: exit 1 when access widened (text names who gains what), 0 otherwise; manifest
/// folders and bundles alike; JSON for pipelines.
#[test]
fn diff_exit_status_says_whether_access_widened() {
    let case =
        |c: &str, side: &str| repo_file(&format!("bundle-builder/tests/golden-diff/{c}/{side}"));
    let (code, out, _) = run(&["diff", &case("widening", "old"), &case("widening", "new")]);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        std::fs::read_to_string(case("widening", "diff.txt")).unwrap()
    );
    assert!(out.contains(
        "access gained: http api.stripe.example:443 (saas/stripe): GET on any path, POST on any path: spiffe://cluster.local/ns/orders/sa/api\n"
    ));
    // The reverse change narrows: exit 0.
    let (code, out, _) = run(&["diff", &case("widening", "new"), &case("widening", "old")]);
    assert_eq!(code, 0);
    assert!(out.ends_with("2 lost (of 50 requests decided)\n"), "{out}");
    // Nothing changed.
    let examples = repo_file("manifests/examples");
    let (code, out, _) = run(&["diff", &examples, &examples]);
    assert_eq!(code, 0);
    assert!(out.starts_with("no change ("), "{out}");
    // A bundle against the manifests it was built from: the same policy.
    let (code, out, _) = run(&["diff", &examples_bundle(), &examples]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("no change ("), "{out}");
    // JSON.
    let (code, out, _) = run(&[
        "diff",
        "-o",
        "json",
        &case("workspace-import", "old"),
        &case("workspace-import", "new"),
    ]);
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["widened"], true);
    assert_eq!(json["narrowed"], false);
    assert_eq!(json["services"]["changed"][0]["name"], "saas/stripe");
    assert_eq!(
        json["access"]["gained"][0]["clients"][0],
        "spiffe://cluster.local/ns/pay/sa/*"
    );
    // An input that does not build is an error (exit 2), named.
    let (code, _, err) = run(&["diff", &examples, "/nonexistent/manifests"]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("bundle-builder: NEW /nonexistent/manifests: "),
        "{err}"
    );
}

/// The decision test schema checked in under docs/ is the one the types generate, and the
/// examples' test file is valid against it.
#[test]
fn decision_tests_schema_in_docs_is_current() {
    let (code, generated, _) = run(&["schema", "--decision-tests"]);
    assert_eq!(code, 0);
    let path = root().join("docs/decision-tests.schema.json");
    if std::env::var_os("WARDEN_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/decision-tests.schema.json is out of date; regenerate it with \
         WARDEN_BLESS=1 cargo test -p bundle-builder --test cli"
    );
    let schema: serde_json::Value = serde_json::from_str(&generated).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let text =
        std::fs::read_to_string(root().join("manifests/examples/decision-tests.yaml")).unwrap();
    let documents = bundle_builder::manifest::yaml::parse(&text).unwrap();
    assert_eq!(documents.len(), 1);
    let errors: Vec<String> = validator
        .iter_errors(&documents[0].value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    // And a mistake is caught by the schema too.
    let mut wrong = documents[0].value.clone();
    wrong["spec"]["cases"][0]["expect"]["decision"] = "maybe".into();
    assert!(!validator.is_valid(&wrong));
}

/// CLI conventions: `-o/--output` is a format everywhere, a file is `-f/--out-file`
/// (`build -o json` once wrote a file named `json`).
#[test]
fn output_is_a_format_and_out_file_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let examples = repo_file("manifests/examples");
    let out = dir.path().join("bundle.json");
    let (code, _, err) = run(&["build", &examples, "--out-file", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.exists());
    let (code, _, err) = run(&["build", &examples, "-o", "json"]);
    assert_eq!(code, 2);
    assert!(err.contains("unexpected argument '-o'"), "{err}");
    assert!(!Path::new("json").exists());
    for command in [
        &["validate", &examples][..],
        &[
            "explain",
            "--bundle",
            &examples_bundle(),
            "--to",
            "evil.example",
        ],
    ] {
        let (code, out, err) = run(&[command, &["-o", "json"]].concat());
        assert!(code == 0 || code == 1, "{command:?}: {err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
    }
}

/// A file that is not text, in a folder of manifests, is one error diagnostic; the rest is
/// still read and reported (JSON too), and no bundle is built.
#[test]
fn an_unreadable_file_is_a_diagnostic_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["partner-api.yaml", "egress-settings.yaml"] {
        std::fs::copy(
            root().join("manifests/examples").join(file),
            dir.path().join(file),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("blob.yaml"), [0xff, 0xfe, 0x00, 0x41]).unwrap();
    let d = dir.path().display().to_string();
    let (code, out, _) = run(&["validate", &d, "-o", "json"]);
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["valid"], false);
    assert_eq!(json["diagnostics"][0]["file"], format!("{d}/blob.yaml"));
    assert!(json["diagnostics"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("cannot be read as a manifest: "));
    let out_file = dir.path().join("out.json");
    let (code, _, err) = run(&["build", &d, "-f", out_file.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(!out_file.exists());
    // A path that does not exist is still an error of its own.
    let (code, _, err) = run(&["validate", &format!("{d}/missing.yaml")]);
    assert_eq!(code, 2);
    assert!(
        err.contains("missing.yaml: no such file or folder"),
        "{err}"
    );
}

/// Mistakes that would widen access fail closed: a policy that selects nothing (a misspelt
/// service name) and a Gloo kind Warden does not read are errors, each with its code;
/// `--allow CODE` accepts them knowingly, and only those codes can be allowed.
#[test]
fn mistakes_fail_closed_unless_allowed_by_code() {
    let dir = tempfile::tempdir().unwrap();
    let partner = std::fs::read_to_string(root().join("manifests/examples/partner-api.yaml"))
        .unwrap()
        // The policy's selector misses the service by one letter.
        .replace(
            "      name: partner-api\n      namespace: pay",
            "      name: partner-apl\n      namespace: pay",
        );
    std::fs::write(dir.path().join("partner-api.yaml"), partner).unwrap();
    std::fs::write(
        dir.path().join("routes.yaml"),
        "apiVersion: networking.gloo.solo.io/v2\nkind: RouteTable\nmetadata:\n  name: r\n  namespace: pay\nspec: {}\n",
    )
    .unwrap();
    let d = dir.path().display().to_string();
    let elsewhere = tempfile::tempdir().unwrap();
    let (code, out, _) = run(&["validate", &d]);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        format!(
            "{d}/partner-api.yaml:32: error[selects-nothing]: AccessPolicy pay/partner-api-billing-only: spec.applyToDestinations: selects no ExternalService, so it restricts nothing (a misspelt name or label would leave the service it meant open); fix the selector, or build with --allow selects-nothing\n\
             {d}/routes.yaml:2: error[unknown-kind]: kind: networking.gloo.solo.io/v2 RouteTable is not a kind Warden reads, and what it says would be left out; remove it from the input, or build with --allow unknown-kind\n\
             2 error(s), 0 warning(s)\n"
        )
    );
    let out_file = elsewhere.path().join("bundle.json");
    let (code, _, _) = run(&["build", &d, "-f", out_file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(!out_file.exists());
    let (code, _, err) = run(&[
        "build",
        &d,
        "-f",
        out_file.to_str().unwrap(),
        "--allow",
        "selects-nothing",
        "--allow",
        "unknown-kind",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning[selects-nothing]"), "{err}");
    assert!(
        err.contains("(an error, allowed by --allow unknown-kind)"),
        "{err}"
    );
    assert!(out_file.exists());
    // JSON carries the code.
    let (_, out, _) = run(&["validate", &d, "-o", "json"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["diagnostics"][0]["code"], "selects-nothing");
    // Only codes that fail closed by choice can be allowed.
    let (code, _, err) = run(&["validate", &d, "--allow", "invalid-field"]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "bundle-builder: --allow invalid-field: only these errors can be allowed: selects-nothing, unknown-kind\n"
    );
}

/// `build --ecds --admin` with no Envoy answering says so and writes nothing it cannot
/// confirm (exit 2, before the file is written).
#[test]
fn build_ecds_admin_that_does_not_answer_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let ecds = dir.path().join("ecds.json");
    let wasm = dir.path().join("warden.wasm");
    std::fs::write(&wasm, b"\0asm").unwrap();
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let admin = format!("127.0.0.1:{port}");
    let (code, _, err) = run(&[
        "build",
        &repo_file("manifests/examples"),
        "--ecds",
        ecds.to_str().unwrap(),
        "--wasm",
        wasm.to_str().unwrap(),
        "--admin",
        &admin,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "--admin {admin}: cannot read Envoy's ECDS counters"
        )),
        "{err}"
    );
    assert!(!ecds.exists());
}

/// `embed` refuses what is not a Warden module, and `render istio --embedded` writes plugins
/// that carry only the bundle's digest.
#[test]
fn embed_and_render_istio_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.wasm");
    let not_wasm = dir.path().join("not.wasm");
    std::fs::write(&not_wasm, b"hello").unwrap();
    let (code, _, err) = run(&[
        "embed",
        "--wasm",
        not_wasm.to_str().unwrap(),
        "--bundle",
        &examples_bundle(),
        "-f",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("not a wasm module"), "{err}");
    // An empty but valid module: no slot to fill.
    let empty = dir.path().join("empty.wasm");
    std::fs::write(&empty, b"\0asm\x01\0\0\0").unwrap();
    let (code, _, err) = run(&[
        "embed",
        "--wasm",
        empty.to_str().unwrap(),
        "--bundle",
        &examples_bundle(),
        "-f",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("the module exports no warden_embedded_bundle function"),
        "{err}"
    );
    assert!(!out.exists());
    let image = format!(
        "oci://registry.example.com/warden@sha256:{}",
        "ab".repeat(32)
    );
    let (code, yaml, err) = run(&[
        "render",
        "istio",
        "--bundle",
        &examples_bundle(),
        "--image",
        &image,
        "--gateway-namespace",
        "istio-egress",
        "--embedded",
    ]);
    assert_eq!(code, 0, "{err}");
    let bundle =
        warden_bundle::Bundle::from_json(&std::fs::read(examples_bundle()).unwrap()).unwrap();
    let digest = bundle.metadata.digest.unwrap();
    assert_eq!(
        yaml.matches(&format!("embeddedBundle: \"{digest}\""))
            .count(),
        4,
        "{yaml}"
    );
    assert!(
        !yaml.contains("outboundMode"),
        "the bundle itself is not in the plugins"
    );
}

/// Manifests are found by extension in any case: a folder of `.YAML` files is read, not an
/// empty registry.
#[test]
fn upper_case_extensions_are_manifests() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("manifests/examples/partner-api.yaml"),
        dir.path().join("PARTNER.YAML"),
    )
    .unwrap();
    let (code, out, err) = run(&["validate", &dir.path().display().to_string(), "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["valid"], true);
}

/// `trim` removes the exports of callbacks Warden does not implement and keeps the rest
/// (the ones the filters use, and the slot `embed` fills); a file that is not wasm is refused.
#[test]
fn trim_removes_only_unused_callback_exports() {
    let dir = tempfile::tempdir().unwrap();
    // A module exporting one used and one unused callback (hand-assembled: two functions of
    // type () -> (), exported).
    let module: Vec<u8> = [
        &b"\0asm\x01\0\0\0"[..],
        // type section: one type () -> ()
        &[0x01, 0x04, 0x01, 0x60, 0x00, 0x00],
        // function section: two functions of type 0
        &[0x03, 0x03, 0x02, 0x00, 0x00],
        // export section: "proxy_on_request_headers" -> 0, "proxy_on_response_body" -> 1
        &[0x07, 0x35, 0x02],
        &[24],
        b"proxy_on_request_headers",
        &[0x00, 0x00],
        &[22],
        b"proxy_on_response_body",
        &[0x00, 0x01],
        // code section: two empty bodies
        &[0x0a, 0x07, 0x02, 0x02, 0x00, 0x0b, 0x02, 0x00, 0x0b],
    ]
    .concat();
    let input = dir.path().join("in.wasm");
    let out = dir.path().join("out.wasm");
    let trim = || {
        run(&[
            "trim",
            "--wasm",
            input.to_str().unwrap(),
            "-f",
            out.to_str().unwrap(),
        ])
    };
    std::fs::write(&input, &module).unwrap();
    let (code, _, err) = trim();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 unused callback exports removed"), "{err}");
    let trimmed = std::fs::read(&out).unwrap();
    let contains = |needle: &[u8]| trimmed.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"proxy_on_request_headers"));
    assert!(!contains(b"proxy_on_response_body"));
    std::fs::write(&input, b"not wasm").unwrap();
    let (code, _, err) = trim();
    assert_eq!(code, 2);
    assert!(err.contains("not a wasm module"), "{err}");
}
