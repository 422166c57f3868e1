//! `bundle-builder render ...`: checks the bundle, then writes the configuration.

use std::process::ExitCode;

use anyhow::{bail, Context};
use bundle_builder::render::envoy::{bootstrap, write_ecds_file, EnvoyOptions, GatewayHop};
use bundle_builder::render::tls::MeshTls;
use warden_bundle::{Locality, Role};

use crate::cli::{EnvoyArgs, IstioArgs, RbacArgs, RoleArg};

pub fn envoy(args: &EnvoyArgs) -> anyhow::Result<ExitCode> {
    // The filter would refuse a bundle the engine refuses: say so now, not in Envoy's log.
    let (bundle_json, bundle, _) = crate::bundle_file::load(&args.bundle)?;
    let wasm = std::path::absolute(&args.wasm)
        .with_context(|| format!("cannot resolve {}", args.wasm.display()))?;
    if !wasm.is_file() {
        // The configuration may be for another machine: say so, do not refuse.
        eprintln!(
            "warning: --wasm {} does not exist here; Envoy refuses to start the filter unless it exists where Envoy runs (make build writes dist/warden.wasm)",
            wasm.display()
        );
    }
    let public_key = verified_key(args.public_key.as_deref(), &bundle, &args.bundle)?;
    let options = EnvoyOptions {
        bundle_json,
        wasm,
        listen: args.listen,
        admin: args.admin,
        tcp: args.tcp.clone(),
        identity: args.identity.clone(),
        locality: args.locality.as_deref().map(Locality::parse),
        ecds: args.ecds.as_deref().map(std::path::absolute).transpose()?,
        public_key,
        role: match args.role {
            RoleArg::Sidecar => Role::Sidecar,
            RoleArg::Gateway => Role::Gateway,
        },
        trust_domain: bundle.spec.trust_domain.clone(),
        mesh_tls: mesh_tls(args)?,
        gateway: match (args.gateway, &args.gateway_identity) {
            (Some(address), Some(identity)) => {
                warden_engine::validate::spiffe_id(identity, false)
                    .map_err(|e| anyhow::anyhow!("--gateway-identity {identity:?}: {e}"))?;
                Some(GatewayHop {
                    address,
                    identity: identity.clone(),
                    tcp_address: args.gateway_tcp,
                })
            }
            _ => None,
        },
        capture: args.capture,
        service_metrics: args.service_metrics,
        virtual_listeners: args.virtual_addresses,
        dns: args.dns,
        resolvers: args.resolvers.clone(),
    };
    if let Some(key) = &options.public_key {
        warden_bundle::public_key(key).with_context(|| "--public-key")?;
    }
    if let Some(path) = &options.ecds {
        let digest = bundle.compute_digest()?;
        write_ecds_file(
            path,
            &options.bundle_json,
            &options.wasm,
            &digest,
            options.public_key.as_deref(),
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let config = bootstrap(&options, &bundle)?;
    let text = serde_json::to_string_pretty(&config)? + "\n";
    match &args.out_file {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => crate::output::print(&text)?,
    }
    Ok(ExitCode::SUCCESS)
}

pub fn rbac(args: &RbacArgs) -> anyhow::Result<ExitCode> {
    let (_, bundle, _) = crate::bundle_file::load(&args.bundle)?;
    let filter = bundle_builder::render::rbac::http_filter(&bundle);
    crate::output::print(&(serde_json::to_string_pretty(&filter)? + "\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// The `--public-key` file's key, once the bundle's signature verifies with it: the filter
/// would refuse the bundle otherwise, so say so now, not in Envoy's log.
fn verified_key(
    path: Option<&std::path::Path>,
    bundle: &warden_bundle::Bundle,
    bundle_path: &std::path::Path,
) -> anyhow::Result<Option<String>> {
    let public_key = crate::manifests_cmd::read_key(path, crate::manifests_cmd::KeyKind::Public)?;
    if let Some(key) = &public_key {
        let key = warden_bundle::public_key(key).with_context(|| "--public-key".to_owned())?;
        let refused = || {
            format!(
                "{}: the filter, given --public-key, would refuse this bundle",
                bundle_path.display()
            )
        };
        bundle.verify_signature(&key).with_context(refused)?;
        // What the filter loads is the compiled form, and its signature is what it verifies.
        let compiled =
            bundle_builder::render::plugin_configuration::payload(bundle).with_context(refused)?;
        let envelope = warden_engine::compact::open(&compiled).with_context(refused)?;
        warden_bundle::verify_message(&key, envelope.header, envelope.signature)
            .map_err(|e| anyhow::anyhow!("compiled form: {e}"))
            .with_context(refused)?;
    }
    Ok(public_key)
}

/// `--cert`, `--key`, `--ca` as absolute paths (Envoy reads them), each checked to exist.
fn mesh_tls(args: &EnvoyArgs) -> anyhow::Result<Option<MeshTls>> {
    let (Some(cert), Some(key), Some(ca)) = (&args.cert, &args.key, &args.ca) else {
        return Ok(None);
    };
    let file = |flag: &str, path: &std::path::Path| -> anyhow::Result<std::path::PathBuf> {
        if !path.is_file() {
            bail!("{flag} {}: no such file", path.display());
        }
        Ok(std::path::absolute(path)?)
    };
    Ok(Some(MeshTls {
        certificate: file("--cert", cert)?,
        private_key: file("--key", key)?,
        ca: file("--ca", ca)?,
    }))
}

pub fn istio(args: &IstioArgs) -> anyhow::Result<ExitCode> {
    use bundle_builder::render::istio::{resources, IstioGateway, IstioOptions};
    let (_, bundle, _) = crate::bundle_file::load(&args.bundle)?;
    let gateway = match &args.gateway_namespace {
        None => None,
        Some(namespace) => {
            let mut gateway = IstioGateway::new(namespace);
            if !args.gateway_selector.is_empty() {
                gateway.selector = args
                    .gateway_selector
                    .iter()
                    .map(|pair| {
                        pair.split_once('=')
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .with_context(|| {
                                format!("--gateway-selector {pair:?}: expected KEY=VALUE")
                            })
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
            }
            if let Some(host) = &args.gateway_service {
                gateway.service_host = host.clone();
            }
            Some(gateway)
        }
    };
    let public_key = verified_key(args.public_key.as_deref(), &bundle, &args.bundle)?;
    let options = IstioOptions {
        embedded: args.embedded,
        public_key,
        image: args.image.clone(),
        namespaces: args.namespaces.clone(),
        gateway,
        network_policy_namespaces: args.network_policy.clone(),
        service_metrics: args.service_metrics,
    };
    let values = resources(&bundle, &options)?;
    for warning in bundle_builder::render::istio::warnings(&bundle, &options)
        .into_iter()
        .chain(bundle_builder::render::istio::size_warnings(&values))
    {
        eprintln!("warning: {warning}");
    }
    let header = format!(
        "Rendered by bundle-builder {} from bundle {}: kubectl apply -f <this file>",
        env!("CARGO_PKG_VERSION"),
        bundle.metadata.digest.as_deref().unwrap_or("(no digest)")
    );
    let text = bundle_builder::render::yaml_out::documents(&header, &values)
        .map_err(|e| anyhow::anyhow!("cannot write YAML: {e}"))?;
    match &args.out_file {
        Some(path) => bundle_builder::files::write_atomically(path, &text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => crate::output::print(&text)?,
    }
    Ok(ExitCode::SUCCESS)
}

pub fn embed(args: &crate::cli::EmbedArgs) -> anyhow::Result<ExitCode> {
    let (_, bundle, _) = crate::bundle_file::load(&args.bundle)?;
    let Some(digest) = bundle.metadata.digest.as_deref() else {
        bail!(
            "{}: the bundle has no digest, and the plugins name an embedded bundle by it; build it with bundle-builder build",
            args.bundle.display()
        );
    };
    let module = std::fs::read(&args.wasm)
        .with_context(|| format!("cannot read {}", args.wasm.display()))?;
    // What render gives inline: the compiled form.
    let payload = bundle_builder::render::plugin_configuration::payload(&bundle)
        .with_context(|| format!("{}", args.bundle.display()))?;
    let out = bundle_builder::embed::embed(&module, &payload)
        .with_context(|| format!("{}", args.wasm.display()))?;
    std::fs::write(&args.out_file, &out)
        .with_context(|| format!("cannot write {}", args.out_file.display()))?;
    eprintln!(
        "wrote {} ({} bytes, bundle {digest} embedded): push it, then render istio --embedded",
        args.out_file.display(),
        out.len()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn trim(args: &crate::cli::TrimArgs) -> anyhow::Result<ExitCode> {
    let module = std::fs::read(&args.wasm)
        .with_context(|| format!("cannot read {}", args.wasm.display()))?;
    let (out, removed) = bundle_builder::trim::trim(&module)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.wasm.display()))?;
    std::fs::write(&args.out_file, &out)
        .with_context(|| format!("cannot write {}", args.out_file.display()))?;
    eprintln!(
        "wrote {} ({} bytes; {} unused callback exports removed)",
        args.out_file.display(),
        out.len(),
        removed.len()
    );
    Ok(ExitCode::SUCCESS)
}
