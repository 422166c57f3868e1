//! Pushing the filter to a real OCI registry (Debian's docker-registry on loopback) and
//! checking what an independent client (skopeo) sees.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bundle_builder::push::{push, Variant};
use oci_client::secrets::RegistryAuth;
use serde_json::Value;
use warden_e2e::envoy::wasm_path;
use warden_e2e::free_addr;

struct Registry {
    child: Child,
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Self {
        Self::start_with("")
    }

    /// A registry that answers 401 without the right credentials (htpasswd basic auth, one
    /// user `ci` with password `secret`).
    fn start_requiring_credentials(dir: &std::path::Path) -> Self {
        let htpasswd = dir.join("htpasswd");
        let hash = bcrypt::hash("secret", 5).unwrap();
        std::fs::write(&htpasswd, format!("ci:{hash}\n")).unwrap();
        Self::start_with(&format!(
            "auth:\n  htpasswd:\n    realm: warden-test\n    path: {}\n",
            htpasswd.display()
        ))
    }

    fn start_with(extra_config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let addr = free_addr("127.0.0.1");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n{extra_config}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian package; make registry-tools)");
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo (Debian package; make registry-tools)");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The image manifest as the registry serves it.
fn inspect_raw(image: &str) -> Value {
    let raw = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{image}"),
    ]);
    serde_json::from_str(&raw).unwrap()
}

/// Copies the image to an OCI layout with skopeo and returns its only layer's bytes.
fn pulled_layer(image: &str) -> (Value, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let layout = format!("oci:{}:pulled", dir.path().display());
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{image}"),
        &layout,
    ]);
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    let blob = |digest: &str| {
        std::fs::read(
            dir.path()
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let manifest: Value =
        serde_json::from_slice(&blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let layer = blob(manifest["layers"][0]["digest"].as_str().unwrap());
    (manifest, layer)
}

#[test]
fn compat_and_oci_images_are_what_istio_pulls() {
    let registry = Registry::start();
    let module = std::fs::read(wasm_path()).unwrap();

    // compat: one tar.gz layer with plugin.wasm, annotated.
    let image = format!("{}/warden/filter:compat", registry.addr);
    let digest = push(
        &wasm_path(),
        &image,
        Variant::Compat,
        true,
        RegistryAuth::Anonymous,
    )
    .unwrap();
    assert!(digest.starts_with("sha256:"), "{digest}");
    let raw: Value = inspect_raw(&image);
    assert_eq!(raw["annotations"]["module.wasm.image/variant"], "compat");
    assert_eq!(raw["layers"].as_array().unwrap().len(), 1);
    assert_eq!(
        raw["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let (_, layer) = pulled_layer(&image);
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&layer[..]));
    let mut entries = archive.entries().unwrap();
    let mut entry = entries.next().unwrap().unwrap();
    assert_eq!(entry.path().unwrap().to_str(), Some("plugin.wasm"));
    let mut inside = Vec::new();
    entry.read_to_end(&mut inside).unwrap();
    assert!(
        inside == module,
        "plugin.wasm is byte-identical to dist/warden.wasm"
    );
    assert!(entries.next().is_none(), "only plugin.wasm in the layer");

    // oci: the Wasm OCI spec's media types, the module as the layer.
    // Given in the oci:// form `render istio --image` takes.
    let image = format!("{}/warden/filter:oci", registry.addr);
    push(
        &wasm_path(),
        &format!("oci://{image}"),
        Variant::Oci,
        true,
        RegistryAuth::Anonymous,
    )
    .unwrap();
    let raw: Value = inspect_raw(&image);
    assert_eq!(
        raw["config"]["mediaType"],
        "application/vnd.module.wasm.config.v1+json"
    );
    assert_eq!(raw["layers"].as_array().unwrap().len(), 1);
    assert_eq!(
        raw["layers"][0]["mediaType"],
        "application/vnd.module.wasm.content.layer.v1+wasm"
    );
    let (_, layer) = pulled_layer(&image);
    assert!(layer == module, "the layer is dist/warden.wasm");
}

/// Failures are one line that says what went wrong.
#[test]
fn push_errors_are_one_clear_line() {
    let down = free_addr("127.0.0.1");
    let err = push(
        &wasm_path(),
        &format!("{down}/warden:x"),
        Variant::Compat,
        true,
        RegistryAuth::Anonymous,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with(&format!("push to {down} failed: ")),
        "{err}"
    );
    assert!(!err.contains('\n'));
    let err = push(
        &wasm_path(),
        "127.0.0.1:5000/UPPER/Case:x",
        Variant::Compat,
        true,
        RegistryAuth::Anonymous,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("\"127.0.0.1:5000/UPPER/Case:x\" is not an image reference"),
        "{err}"
    );
    let err = push(
        std::path::Path::new("/nonexistent.wasm"),
        "127.0.0.1:5000/w:x",
        Variant::Compat,
        true,
        RegistryAuth::Anonymous,
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("cannot read /nonexistent.wasm: "), "{err}");
}

/// A registry that wants credentials: an anonymous push fails with one line that says so;
/// the same push with `--username/--password` gets through.
#[test]
fn unauthorised_push_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start_requiring_credentials(dir.path());
    let image = format!("{}/warden/filter:auth", registry.addr);
    let err = push(
        &wasm_path(),
        &image,
        Variant::Compat,
        true,
        RegistryAuth::Anonymous,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with(&format!("push to {} failed: ", registry.addr)),
        "{err}"
    );
    assert!(err.to_lowercase().contains("unauthorized"), "{err}");
    assert!(!err.contains('\n'), "{err}");
    let wrong = RegistryAuth::Basic("ci".into(), "guess".into());
    let err = push(&wasm_path(), &image, Variant::Compat, true, wrong)
        .unwrap_err()
        .to_string();
    assert!(err.to_lowercase().contains("unauthorized"), "{err}");
    let auth = RegistryAuth::Basic("ci".into(), "secret".into());
    let digest = push(&wasm_path(), &image, Variant::Compat, true, auth).unwrap();
    assert!(digest.starts_with("sha256:"), "{digest}");
}

/// The policy travels in the image: `bundle-builder embed` puts the bundle in the module,
/// which is pushed, pulled back as Istio's agent pulls it (skopeo, the compat layer), and run
/// in Envoy with a plugin configuration of a few bytes that names the bundle by digest. The
/// embedded policy decides; a module without it, or with another bundle, is refused.
#[test]
fn the_policy_travels_in_the_image_and_loads_from_it() {
    use warden_e2e::client::get;
    use warden_e2e::envoy::{Envoy, Sidecar};
    use warden_e2e::upstream::HttpUpstream;

    let upstream = HttpUpstream::start("api", free_addr("127.0.0.1"));
    let port = upstream.addr.port();
    let bundle = warden_bundle::Bundle::from_json(
        serde_json::json!({
            "apiVersion": "warden.dev/v1alpha1", "kind": "Bundle",
            "spec": { "outboundMode": "REGISTRY_ONLY", "services": [{
                "source": { "kind": "ExternalService", "namespace": "e2e", "name": "api" },
                "hosts": ["localhost"], "ports": [{ "number": port, "protocol": "HTTP" }]
            }] }
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap()
    .seal()
    .unwrap();
    let digest = bundle.metadata.digest.clone().unwrap();
    let compiled = warden_engine::signing::compiled_form(&bundle).unwrap();
    let module = std::fs::read(wasm_path()).unwrap();
    let embedded = bundle_builder::embed::embed(&module, &compiled).unwrap();

    let registry = Registry::start();
    let image = format!("{}/warden/filter:embedded", registry.addr);
    let dir = tempfile::tempdir().unwrap();
    let module_file = dir.path().join("warden-embedded.wasm");
    std::fs::write(&module_file, &embedded).unwrap();
    push(
        &module_file,
        &image,
        Variant::Compat,
        true,
        RegistryAuth::Anonymous,
    )
    .unwrap();
    let (_, layer) = pulled_layer(&image);
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&layer[..]));
    let mut inside = Vec::new();
    archive
        .entries()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .read_to_end(&mut inside)
        .unwrap();
    assert!(
        inside == embedded,
        "the pulled plugin.wasm is the embedded module"
    );
    let pulled = dir.path().join("plugin.wasm");
    std::fs::write(&pulled, &inside).unwrap();

    // A sidecar whose plugin configuration only names the bundle.
    let reference = serde_json::json!({ "embeddedBundle": digest }).to_string();
    let config_for = |wasm: &std::path::Path, reference: &str| {
        let (listen, admin) = (free_addr("127.0.0.1"), free_addr("127.0.0.1"));
        let mut sidecar = Sidecar::new(serde_json::to_value(&bundle).unwrap());
        sidecar.wasm = Some(wasm.to_path_buf());
        let mut config = sidecar.render(listen, admin);
        let replaced = replace_plugin_configuration(&mut config, reference);
        assert!(replaced > 0, "the rendered plugin configuration was found");
        (config, listen, admin)
    };
    let (config, listen, admin) = config_for(&pulled, &reference);
    let envoy = Envoy::start(&config, listen, admin);
    let host = format!("localhost:{port}");
    let r = get(envoy.listen, &host, "/", &[]);
    assert_eq!(r.status, 200, "{r:?}\n{}", envoy.log());
    let r = get(envoy.listen, "evil.example", "/", &[]);
    assert_eq!(r.header("x-warden-reason"), Some("not_in_registry"));
    assert!(envoy.log().contains(&format!("loaded bundle {digest}")));
    drop(envoy);

    // The plain module carries no bundle; another digest is not the embedded one.
    let (config, _, _) = config_for(&wasm_path(), &reference);
    let (_, log) = Envoy::expect_refusal(&config);
    assert!(log.contains("and this module carries none"), "{log}");
    let other = serde_json::json!({ "embeddedBundle": format!("sha256:{}", "0".repeat(64)) });
    let (config, _, _) = config_for(&pulled, &other.to_string());
    let (_, log) = Envoy::expect_refusal(&config);
    assert!(
        log.contains(&format!("and this module carries {digest}")),
        "{log}"
    );
}

/// Replaces every Warden plugin's configuration (the `StringValue` holding the bundle) in a
/// rendered bootstrap; how many were replaced.
fn replace_plugin_configuration(value: &mut Value, with: &str) -> usize {
    match value {
        Value::Object(map) => {
            let mut n = 0;
            if map.get("@type").and_then(Value::as_str)
                == Some("type.googleapis.com/google.protobuf.StringValue")
                && map.contains_key("value")
            {
                map.insert("value".into(), Value::String(with.to_owned()));
                return 1;
            }
            for v in map.values_mut() {
                n += replace_plugin_configuration(v, with);
            }
            n
        }
        Value::Array(items) => items
            .iter_mut()
            .map(|v| replace_plugin_configuration(v, with))
            .sum(),
        _ => 0,
    }
}
