//! `bundle-builder schema`: the JSON Schemas of the bundle and of decision test files,
//! generated from their types.

use std::process::ExitCode;

use bundle_builder::decision_tests::DecisionTests;
use warden_bundle::Bundle;

use crate::cli::SchemaArgs;

/// The schema as pretty JSON with a trailing newline: the form checked in under `docs/`.
pub fn bundle_schema() -> anyhow::Result<String> {
    let schema = schemars::schema_for!(Bundle);
    Ok(serde_json::to_string_pretty(&schema)? + "\n")
}

/// The schema of a decision test file, as checked in under `docs/`.
pub fn decision_tests_schema() -> anyhow::Result<String> {
    let schema = schemars::schema_for!(DecisionTests);
    Ok(serde_json::to_string_pretty(&schema)? + "\n")
}

pub fn run(args: &SchemaArgs) -> anyhow::Result<ExitCode> {
    let schema = if args.decision_tests {
        decision_tests_schema()?
    } else {
        bundle_schema()?
    };
    crate::output::print(&schema)?;
    Ok(ExitCode::SUCCESS)
}
