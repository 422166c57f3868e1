//! `bundle-builder test` and `bundle-builder diff`: policy review for pull requests.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use bundle_builder::decision_tests::{self, CaseResult};
use bundle_builder::diff;
use bundle_builder::manifest::source::read_all;
use bundle_builder::policy_input::{self, PolicyInput};

use crate::cli::{DiffArgs, OutputFormat, TestArgs};

pub fn test(args: &TestArgs) -> anyhow::Result<ExitCode> {
    let files = read_all(&args.paths)?;
    let cases = match decision_tests::load(&files) {
        Ok(cases) => cases,
        Err(errors) => bail!("the decision tests cannot be read:\n{}", errors.join("\n")),
    };
    if cases.is_empty() {
        bail!(
            "no decision tests in {} (a document with apiVersion: warden.dev/v1alpha1, kind: DecisionTests)",
            shown(&args.paths)
        );
    }
    // By default the manifests beside the tests.
    let policy_paths = if args.policy.is_empty() {
        let mut dirs: Vec<PathBuf> = args
            .paths
            .iter()
            .map(|p| {
                if p.is_dir() {
                    p.clone()
                } else {
                    p.parent()
                        .filter(|d| !d.as_os_str().is_empty())
                        .map_or_else(|| PathBuf::from("."), |d| d.to_path_buf())
                }
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    } else {
        args.policy.clone()
    };
    let input = policy_input::read(&policy_paths, args.workspace.as_deref(), &args.allow)?;
    eprint!("{}", input.diagnostics);
    let mut policy = warden_engine::compile(&input.bundle)?;
    let results = decision_tests::run(&mut policy, &cases);
    let failed = results.iter().filter(|r| !r.passed).count();
    let out = match args.output {
        OutputFormat::Json => {
            let value = serde_json::json!({
                "passed": results.len() - failed,
                "failed": failed,
                "cases": results,
            });
            serde_json::to_string_pretty(&value)? + "\n"
        }
        OutputFormat::Text => {
            let mut out = String::new();
            for result in results.iter().filter(|r| !r.passed) {
                out += &failure_text(result, &input);
            }
            let _ = writeln!(
                out,
                "{} cases: {} passed, {failed} failed",
                results.len(),
                results.len() - failed
            );
            out
        }
    };
    crate::output::print(&out)?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A failing case: where it is, what was expected and what came, and which resources decided
/// (with where they are written, for manifests).
fn failure_text(result: &CaseResult, input: &PolicyInput) -> String {
    let mut out = format!("FAIL {}:{}: {}\n", result.file, result.line, result.name);
    for mismatch in &result.mismatches {
        let _ = writeln!(out, "  {mismatch}");
    }
    if let Some(actual) = &result.actual {
        let mut got = format!("{} {}", actual.decision, actual.reason);
        if actual.dry_run {
            got += " (dry-run)";
        }
        let _ = writeln!(out, "  got:     {got}");
        let with_location = |kind: &str, name: &str| match input.location(kind, name) {
            Some(at) => format!("{name} ({at})"),
            None => name.to_owned(),
        };
        if let Some(service) = &actual.service {
            let _ = writeln!(
                out,
                "  service: {}",
                with_location("ExternalService", service)
            );
        }
        if let Some(policy) = &actual.policy {
            let _ = writeln!(out, "  policy:  {}", with_location("AccessPolicy", policy));
        }
        let _ = writeln!(out, "  why:     {}", result.why);
    }
    out
}

fn shown(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn diff(args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let workspace = args.workspace.as_deref();
    let old = policy_input::read(std::slice::from_ref(&args.old), workspace, &args.allow)
        .map_err(|e| e.context(format!("OLD {}", args.old.display())))?;
    let new = policy_input::read(std::slice::from_ref(&args.new), workspace, &args.allow)
        .map_err(|e| e.context(format!("NEW {}", args.new.display())))?;
    let report = diff::diff(&old.bundle, &new.bundle, args.role.into())?;
    let out = match args.output {
        OutputFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
        OutputFormat::Text => report.to_text(),
    };
    crate::output::print(&out)?;
    Ok(if report.widened {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
