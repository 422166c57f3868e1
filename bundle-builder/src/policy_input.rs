//! What `test` and `diff` decide with: a bundle file, or manifests built on the fly (exactly as
//! `build` builds them), with where each resource was written.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use warden_bundle::Bundle;

use crate::build::{build, BuildOptions};
use crate::diagnostic::Diagnostics;
use crate::manifest::{load::load, source::read_manifests};

/// A bundle and where its resources came from.
#[derive(Debug, Clone)]
pub struct PolicyInput {
    pub bundle: Bundle,
    /// `Kind namespace/name` -> `file:line`, when built from manifests.
    pub locations: BTreeMap<String, String>,
    /// Warnings the build reported (errors refuse the input; notes are left out).
    pub diagnostics: String,
}

impl PolicyInput {
    /// Where `Kind namespace/name` was written, when known.
    pub fn location(&self, kind: &str, name: &str) -> Option<&str> {
        self.locations
            .get(&format!("{kind} {name}"))
            .map(String::as_str)
    }
}

/// Whether `path` is a bundle file: JSON whose `kind` is `Bundle`, whatever its name.
fn is_bundle(path: &std::path::Path) -> bool {
    if !path.is_file() {
        return false;
    }
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|v| v.get("kind").and_then(|k| k.as_str()) == Some("Bundle"))
}

/// Reads `paths`: one bundle file, or manifest files and folders, built for `workspace` (all
/// workspaces, each caller in its own view, when `None`), with the errors of `allow`'s codes
/// downgraded. Manifests with errors are refused
/// with the diagnostics: a decision made on a bundle that would not be built means nothing.
pub fn read(
    paths: &[PathBuf],
    workspace: Option<&str>,
    allow: &[String],
) -> anyhow::Result<PolicyInput> {
    if let Some(bundle) = paths.iter().find(|p| is_bundle(p)) {
        if paths.len() > 1 {
            bail!(
                "{}: a bundle is a whole policy; give it alone, not with manifests",
                bundle.display()
            );
        }
        if let Some(workspace) = workspace {
            bail!(
                "{}: --workspace {workspace} builds manifests; a bundle is already built (for one workspace, or for all)",
                bundle.display()
            );
        }
    }
    if let [path] = paths {
        if is_bundle(path) {
            let shown = path.display();
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read bundle {shown}"))?;
            let bundle = Bundle::from_json(&bytes).with_context(|| format!("{shown}"))?;
            warden_engine::compile(&bundle).with_context(|| format!("{shown}"))?;
            return Ok(PolicyInput {
                bundle,
                locations: BTreeMap::new(),
                diagnostics: String::new(),
            });
        }
    }
    let mut diagnostics = Diagnostics::allowing(allow).map_err(anyhow::Error::msg)?;
    let files = read_manifests(paths, &mut diagnostics)?;
    let resources = load(&files, &mut diagnostics);
    let options = BuildOptions {
        workspace: workspace.map(str::to_owned),
        ..BuildOptions::default()
    };
    let bundle = build(&resources, &options, &mut diagnostics);
    let shown = paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let bundle = match bundle {
        Some(bundle) if !diagnostics.has_errors() => bundle,
        _ => bail!(
            "{shown}: the manifests have errors (`bundle-builder validate` lists them):\n{}",
            diagnostics.report().trim_end()
        ),
    };
    let mut locations = BTreeMap::new();
    let mut at = |display: String, origin: &crate::manifest::load::Origin| {
        locations
            .entry(display)
            .or_insert_with(|| format!("{}:{}", origin.file, origin.line("")));
    };
    for r in &resources.external_services {
        at(r.display(), &r.origin);
    }
    for r in &resources.access_policies {
        at(r.display(), &r.origin);
    }
    for r in &resources.external_endpoints {
        at(r.display(), &r.origin);
    }
    Ok(PolicyInput {
        bundle,
        locations,
        diagnostics: diagnostics.report_from(crate::diagnostic::Severity::Warning),
    })
}
