//! `bundle-builder validate` and `bundle-builder build`.

use std::process::ExitCode;

use anyhow::Context;
use bundle_builder::build::{build as build_bundle, BuildOptions};
use bundle_builder::diagnostic::Diagnostics;
use bundle_builder::files::write_atomically;
use bundle_builder::manifest::{load::load, source::read_all};
use bundle_builder::render::envoy::ecds_response;
use serde_json::json;

use crate::cli::{BuildArgs, OutputFormat, ValidateArgs};

pub fn validate(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let files = read_all(&args.paths)?;
    let mut diagnostics = Diagnostics::default();
    let resources = load(&files, &mut diagnostics);
    let _ = build_bundle(&resources, &BuildOptions::default(), &mut diagnostics);
    match args.output {
        OutputFormat::Text => crate::output::print(&diagnostics.report())?,
        OutputFormat::Json => {
            let value =
                json!({ "valid": !diagnostics.has_errors(), "diagnostics": diagnostics.sorted() });
            crate::output::print(&(serde_json::to_string_pretty(&value)? + "\n"))?;
        }
    }
    Ok(if diagnostics.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn build(args: &BuildArgs) -> anyhow::Result<ExitCode> {
    let files = read_all(&args.paths)?;
    let mut diagnostics = Diagnostics::default();
    let resources = load(&files, &mut diagnostics);
    let options = BuildOptions {
        workspace: args.workspace.clone(),
    };
    let bundle = build_bundle(&resources, &options, &mut diagnostics);
    eprint!("{}", diagnostics.report());
    let Some(bundle) = bundle else {
        eprintln!("bundle-builder: no bundle written: fix the errors above");
        return Ok(ExitCode::from(1));
    };
    let text = bundle.to_json_pretty()? + "\n";
    let digest = bundle.metadata.digest.as_deref().unwrap_or("no digest");
    let summary = format!(
        "{} services, {} access policies, {digest}",
        bundle.spec.services.len(),
        bundle.spec.access_policies.len()
    );
    if let Some(path) = &args.output {
        write_atomically(path, &text)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {} ({summary})", path.display());
    }
    if let Some(path) = &args.ecds {
        let wasm = std::path::absolute(&args.wasm)?;
        let response = ecds_response(&text, &wasm, digest);
        write_atomically(path, &(serde_json::to_string_pretty(&response)? + "\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote ECDS {} ({summary})", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
