//! `bundle-builder render ...`: checks the bundle, then writes the configuration.

use std::process::ExitCode;

use anyhow::{bail, Context};
use bundle_builder::files::write_atomically;
use bundle_builder::render::envoy::{ecds_response, sidecar, EnvoyOptions};
use warden_bundle::{Bundle, Locality};
use warden_engine::compile;

use crate::cli::{EnvoyArgs, RbacArgs, RoleArg};

pub fn envoy(args: &EnvoyArgs) -> anyhow::Result<ExitCode> {
    if args.role == RoleArg::Gateway {
        bail!("--role gateway is not available yet: the egress gateway bootstrap is still to come; use --role sidecar");
    }
    let shown = args.bundle.display();
    let bundle_json = std::fs::read_to_string(&args.bundle)
        .with_context(|| format!("cannot read bundle {shown}"))?;
    // The filter would refuse a bundle the engine refuses: say so now, not in Envoy's log.
    let bundle = Bundle::from_json(bundle_json.as_bytes()).with_context(|| format!("{shown}"))?;
    compile(&bundle).with_context(|| format!("{shown}"))?;
    let wasm = std::path::absolute(&args.wasm)
        .with_context(|| format!("cannot resolve {}", args.wasm.display()))?;
    let options = EnvoyOptions {
        bundle_json,
        wasm,
        listen: args.listen,
        admin: args.admin,
        tcp: args.tcp.clone(),
        identity: args.identity.clone(),
        locality: args.locality.as_deref().map(Locality::parse),
        ecds: args.ecds.as_deref().map(std::path::absolute).transpose()?,
        public_key: crate::manifests_cmd::read_key(args.public_key.as_deref())?,
    };
    if let Some(key) = &options.public_key {
        warden_bundle::public_key(key).with_context(|| "--public-key")?;
    }
    if let Some(path) = &options.ecds {
        let digest = bundle.compute_digest()?;
        let response = ecds_response(
            &options.bundle_json,
            &options.wasm,
            &digest,
            options.public_key.as_deref(),
        );
        write_atomically(path, &(serde_json::to_string_pretty(&response)? + "\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let text = serde_json::to_string_pretty(&sidecar(&options))? + "\n";
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => crate::output::print(&text)?,
    }
    Ok(ExitCode::SUCCESS)
}

pub fn rbac(args: &RbacArgs) -> anyhow::Result<ExitCode> {
    let shown = args.bundle.display();
    let text =
        std::fs::read(&args.bundle).with_context(|| format!("cannot read bundle {shown}"))?;
    let bundle = Bundle::from_json(&text).with_context(|| format!("{shown}"))?;
    compile(&bundle).with_context(|| format!("{shown}"))?;
    let filter = bundle_builder::render::rbac::http_filter(&bundle);
    crate::output::print(&(serde_json::to_string_pretty(&filter)? + "\n"))?;
    Ok(ExitCode::SUCCESS)
}
