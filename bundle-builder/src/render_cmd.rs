//! `bundle-builder render ...`: checks the bundle, then writes the configuration.

use std::process::ExitCode;

use anyhow::{bail, Context};
use bundle_builder::render::envoy::{sidecar, write_ecds_file, EnvoyOptions};
use warden_bundle::Locality;

use crate::cli::{EnvoyArgs, RbacArgs, RoleArg};

pub fn envoy(args: &EnvoyArgs) -> anyhow::Result<ExitCode> {
    if args.role == RoleArg::Gateway {
        bail!("--role gateway is not available yet: the egress gateway bootstrap is still to come; use --role sidecar");
    }
    // The filter would refuse a bundle the engine refuses: say so now, not in Envoy's log.
    let (bundle_json, bundle, _) = crate::bundle_file::load(&args.bundle)?;
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
        write_ecds_file(
            path,
            &options.bundle_json,
            &options.wasm,
            &digest,
            options.public_key.as_deref(),
        )
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
    let (_, bundle, _) = crate::bundle_file::load(&args.bundle)?;
    let filter = bundle_builder::render::rbac::http_filter(&bundle);
    crate::output::print(&(serde_json::to_string_pretty(&filter)? + "\n"))?;
    Ok(ExitCode::SUCCESS)
}
