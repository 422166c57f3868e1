//! Golden tests: for each case under `tests/golden/<case>/`, the manifests in `input/` (or,
//! for `examples`, the repository's `manifests/examples/`) must build into exactly
//! `bundle.json` (or no bundle: `no-bundle.txt`) and report exactly `diagnostics.txt`;
//! `workspace.txt` builds for one workspace, `allow.txt` allows codes (`--allow`).
//! Regenerate with `WARDEN_BLESS=1 cargo test -p bundle-builder --test golden`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use bundle_builder::build::{build, BuildOptions};
use bundle_builder::diagnostic::Diagnostics;
use bundle_builder::manifest::{load::load, source::read_all};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Builds a case; returns (bundle JSON or None, diagnostics report).
fn run(case: &Path) -> (Option<String>, String) {
    let (input, prefix) = if case.ends_with("examples") {
        let dir = root().join("../manifests/examples").canonicalize().unwrap();
        let prefix = format!("{}/", root().join("..").canonicalize().unwrap().display());
        (dir, prefix)
    } else {
        (case.join("input"), format!("{}/", case.display()))
    };
    let workspace = std::fs::read_to_string(case.join("workspace.txt"))
        .ok()
        .map(|w| w.trim().to_owned());
    // `allow.txt`: codes allowed, one per line (`--allow CODE`).
    let allow: Vec<String> = std::fs::read_to_string(case.join("allow.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    let files = read_all(&[input]).unwrap();
    let mut diagnostics = Diagnostics::allowing(&allow).unwrap();
    let resources = load(&files, &mut diagnostics);
    let bundle = build(
        &resources,
        &BuildOptions {
            workspace,
            ..BuildOptions::default()
        },
        &mut diagnostics,
    );
    diagnostics.strip_file_prefix(&prefix);
    (
        bundle.map(|b| b.to_json_pretty().unwrap() + "\n"),
        diagnostics.report(),
    )
}

fn check(path: &Path, actual: &str, failures: &mut Vec<String>) {
    if std::env::var_os("WARDEN_BLESS").is_some() {
        std::fs::write(path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected != actual {
        failures.push(format!(
            "{}:\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        ));
    }
}

/// Every golden case, byte for byte.
#[test]
fn golden_cases() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root().join("tests/golden"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 5, "golden cases are missing");
    let mut failures = Vec::new();
    for case in &cases {
        let (bundle, report) = run(case);
        check(&case.join("diagnostics.txt"), &report, &mut failures);
        match bundle {
            Some(json) => {
                check(&case.join("bundle.json"), &json, &mut failures);
                assert!(
                    !case.join("no-bundle.txt").exists(),
                    "{}: a bundle was built",
                    case.display()
                );
            }
            None => {
                check(
                    &case.join("no-bundle.txt"),
                    "no bundle: the manifests have errors\n",
                    &mut failures,
                );
                assert!(
                    !case.join("bundle.json").exists()
                        || std::env::var_os("WARDEN_BLESS").is_some(),
                    "{}: no bundle was built",
                    case.display()
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden mismatch(es); WARDEN_BLESS=1 regenerates:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
