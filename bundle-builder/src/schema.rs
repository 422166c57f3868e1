//! `bundle-builder schema`: the JSON Schema of the bundle, generated from its types.

use std::process::ExitCode;

use warden_bundle::Bundle;

/// The schema as pretty JSON with a trailing newline: the form checked in under `docs/`.
pub fn bundle_schema() -> anyhow::Result<String> {
    let schema = schemars::schema_for!(Bundle);
    Ok(serde_json::to_string_pretty(&schema)? + "\n")
}

pub fn run() -> anyhow::Result<ExitCode> {
    crate::output::print(&bundle_schema()?)?;
    Ok(ExitCode::SUCCESS)
}
