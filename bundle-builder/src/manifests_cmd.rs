//! `bundle-builder validate` and `bundle-builder build`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use bundle_builder::build::{build as build_bundle, BuildOptions};
use bundle_builder::diagnostic::Diagnostics;
use bundle_builder::manifest::{load::load, source::read_all};
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
    write_atomically(&args.output, &text)?;
    eprintln!(
        "wrote {} ({} services, {} access policies, {})",
        args.output.display(),
        bundle.spec.services.len(),
        bundle.spec.access_policies.len(),
        bundle.metadata.digest.as_deref().unwrap_or("no digest"),
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes through a temporary file in the same folder and a rename, so a reader never sees
/// half a bundle.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&temporary, text)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}
