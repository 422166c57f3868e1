//! `bundle-builder push`: the filter as a Wasm OCI image that Istio's image fetcher accepts.
//!
//! Two variants: "compat" (the default, what Istio documents): one gzip-compressed tar layer
//! holding `plugin.wasm`, and the annotation `module.wasm.image/variant=compat` on the
//! manifest; and "oci" (the Wasm OCI spec): a `application/vnd.module.wasm.config.v1+json`
//! config and one `application/vnd.module.wasm.content.layer.v1+wasm` layer, the module as is.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

/// The two image layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    Compat,
    Oci,
}

/// Why a push failed, in one line.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{0:?} is not an image reference ([oci://]REGISTRY/REPOSITORY:TAG): {1}")]
    BadReference(String, String),
    #[error("cannot read {0}: {1}")]
    Read(String, String),
    #[error("cannot package the module: {0}")]
    Package(String),
    #[error("push to {0} failed: {1}")]
    Push(String, String),
}

/// The manifest digest of what was pushed.
pub fn push(
    wasm: &Path,
    image: &str,
    variant: Variant,
    plain_http: bool,
    auth: RegistryAuth,
) -> Result<String, PushError> {
    // `render istio --image` takes `oci://REGISTRY/REPOSITORY:TAG`; the same form works here.
    let image = strip_scheme(image);
    let reference: Reference = image.parse().map_err(|e: oci_client::ParseError| {
        PushError::BadReference(image.to_owned(), e.to_string())
    })?;
    let module = std::fs::read(wasm)
        .map_err(|e| PushError::Read(wasm.display().to_string(), e.to_string()))?;
    let (layers, config, annotations) = match variant {
        Variant::Compat => {
            let layer = compat_layer(&module).map_err(|e| PushError::Package(e.to_string()))?;
            let config = Config::oci_v1(b"{\"architecture\":\"wasm\",\"os\":\"wasip1\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}".to_vec(), None);
            let annotations =
                BTreeMap::from([("module.wasm.image/variant".to_owned(), "compat".to_owned())]);
            (
                vec![ImageLayer::oci_v1_gzip(layer, None)],
                config,
                Some(annotations),
            )
        }
        Variant::Oci => {
            let config = Config::new(
                b"{}".to_vec(),
                "application/vnd.module.wasm.config.v1+json".to_owned(),
                None,
            );
            let layer = ImageLayer::new(
                module,
                "application/vnd.module.wasm.content.layer.v1+wasm".to_owned(),
                None,
            );
            (vec![layer], config, None)
        }
    };
    let manifest = OciImageManifest::build(&layers, &config, annotations);
    let client = Client::new(ClientConfig {
        protocol: if plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        ..ClientConfig::default()
    });
    let registry = reference.registry().to_owned();
    let failed = |e: oci_client::errors::OciDistributionError| {
        PushError::Push(registry.clone(), one_line(&e.to_string()))
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PushError::Push(registry.clone(), e.to_string()))?;
    runtime.block_on(async {
        client
            .push(&reference, &layers, config, &auth, Some(manifest))
            .await
            .map_err(failed)?;
        client
            .fetch_manifest_digest(&reference, &auth)
            .await
            .map_err(failed)
    })
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A tar.gz holding `plugin.wasm`.
fn compat_layer(module: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut header = tar::Header::new_gnu();
    header.set_size(module.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    let mut archive = tar::Builder::new(Vec::new());
    archive.append_data(&mut header, "plugin.wasm", module)?;
    let tarball = archive.into_inner()?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tarball)?;
    gz.finish()
}

/// Credentials: the flags, else the Docker config file (`$DOCKER_CONFIG/config.json` or
/// `~/.docker/config.json`) entry for the registry, else anonymous.
/// `REGISTRY/REPOSITORY:TAG` from the `oci://` form Istio's WasmPlugin uses, or as given.
pub fn strip_scheme(image: &str) -> &str {
    image.strip_prefix("oci://").unwrap_or(image)
}

pub fn auth(username: Option<&str>, password: Option<&str>, image: &str) -> RegistryAuth {
    let image = strip_scheme(image);
    if let (Some(u), Some(p)) = (username, password) {
        return RegistryAuth::Basic(u.to_owned(), p.to_owned());
    }
    let registry = image.split('/').next().unwrap_or_default();
    let path = std::env::var_os("DOCKER_CONFIG")
        .map(|d| Path::new(&d).join("config.json"))
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker/config.json")));
    let encoded = path
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|config| {
            config
                .get("auths")?
                .get(registry)?
                .get("auth")?
                .as_str()
                .map(str::to_owned)
        });
    let decoded = encoded
        .and_then(|e| base64::engine::general_purpose::STANDARD.decode(e).ok())
        .and_then(|d| String::from_utf8(d).ok());
    match decoded.as_deref().and_then(|d| d.split_once(':')) {
        Some((u, p)) => RegistryAuth::Basic(u.to_owned(), p.to_owned()),
        None => RegistryAuth::Anonymous,
    }
}
