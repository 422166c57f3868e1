//! Workspaces: which namespaces belong to which workspace, and what they share.
//!
//! A namespace belongs to the workspace whose `workloadClusters[].namespaces[].name` glob
//! matches it; resources in no declared workspace belong to [`DEFAULT_WORKSPACE`]. An
//! ExternalService is visible in another workspace only when its own workspace exports it
//! *and* the other imports it.

use std::collections::BTreeMap;

use globset::{Glob, GlobMatcher};

use crate::diagnostic::{Diagnostics, Severity};
use crate::manifest::kinds::{ShareRule, WorkspaceSettingsSpec};
use crate::manifest::load::{Located, Resources};

/// The workspace of resources that no declared workspace claims.
pub const DEFAULT_WORKSPACE: &str = "default";

#[derive(Debug)]
struct Workspace {
    name: String,
    labels: BTreeMap<String, String>,
    namespaces: Vec<(String, GlobMatcher)>,
}

/// Workspace membership and sharing, resolved.
#[derive(Debug, Default)]
pub struct Workspaces {
    workspaces: Vec<Workspace>,
    /// Settings by the workspace they belong to.
    settings: BTreeMap<String, WorkspaceSettingsSpec>,
}

/// What a share rule is checked against: an ExternalService.
#[derive(Debug, Clone, Copy)]
pub struct Shared<'a> {
    pub workspace: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

impl Workspaces {
    pub fn resolve(resources: &Resources, diagnostics: &mut Diagnostics) -> Self {
        let mut out = Self::default();
        for ws in &resources.workspaces {
            let mut namespaces = Vec::new();
            for (c, cluster) in ws.manifest.spec.workload_clusters.iter().enumerate() {
                // What Warden cannot check must not be dropped: a workspace narrowed by
                // cluster, cluster selector or namespace labels would otherwise claim more.
                let at = format!("spec.workloadClusters[{c}]");
                if cluster.name.as_deref().is_some_and(|n| n != "*") {
                    diagnostics.push(ws.diagnostic("unverifiable-selector", 
                        Severity::Error,
                        &format!("{at}.name"),
                        "a SPIFFE ID does not name the workload's cluster, so the filter cannot tell clusters apart; use '*' (and one trust domain per cluster if they must differ)",
                    ));
                }
                if cluster.selector.is_some() {
                    diagnostics.push(ws.diagnostic("unverifiable-selector", 
                        Severity::Error,
                        &format!("{at}.selector"),
                        "cluster selectors cannot be checked by the filter (a SPIFFE ID names no cluster); select namespaces by name",
                    ));
                }
                for (n, ns) in cluster.namespaces.iter().enumerate() {
                    if ns.labels.is_some() {
                        diagnostics.push(ws.diagnostic("unverifiable-selector", 
                            Severity::Error,
                            &format!("{at}.namespaces[{n}].labels"),
                            "namespace labels cannot be checked by the filter (a SPIFFE ID names the namespace only); select namespaces by name",
                        ));
                        continue;
                    }
                    let field = format!("spec.workloadClusters[{c}].namespaces[{n}].name");
                    // The filter matches a caller's namespace against these itself (a bundle
                    // for the whole mesh): `*` and `?` only, as namespaces are written.
                    let plain = ns.name.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"-*?".contains(&b)
                    });
                    if !plain || ns.name.is_empty() {
                        diagnostics.push(ws.diagnostic("invalid-field", 
                            Severity::Error,
                            &field,
                            format!(
                                "{:?}: a namespace pattern is letters, digits and '-', with '*' for any characters and '?' for one",
                                ns.name
                            ),
                        ));
                        continue;
                    }
                    match Glob::new(&ns.name) {
                        Ok(glob) => namespaces.push((ns.name.clone(), glob.compile_matcher())),
                        Err(err) => diagnostics.push(ws.diagnostic(
                            "invalid-field",
                            Severity::Error,
                            &field,
                            format!("{:?} is not a valid glob: {err}", ns.name),
                        )),
                    }
                }
            }
            out.workspaces.push(Workspace {
                name: ws.name().to_owned(),
                labels: ws.manifest.metadata.labels.clone(),
                namespaces,
            });
        }
        out.workspaces.sort_by(|a, b| a.name.cmp(&b.name));
        for settings in &resources.workspace_settings {
            if settings.manifest.spec.options.is_some() {
                diagnostics.push(settings.diagnostic("not-enforced", 
                    Severity::Note,
                    "spec.options",
                    "federation and service isolation are the mesh's settings; Warden's decisions do not use them",
                ));
            }
            let owner = out.workspace_of(settings.namespace()).to_owned();
            if out
                .settings
                .insert(owner.clone(), settings.manifest.spec.clone())
                .is_some()
            {
                diagnostics.push(settings.diagnostic("duplicate-name", 
                    Severity::Error,
                    "",
                    format!("workspace {owner} has more than one WorkspaceSettings; merge them into one"),
                ));
            }
        }
        out
    }

    /// The bundle's `spec.workspaces`: each declared workspace's namespace patterns, in the
    /// order the filter tries them (by name, as [`Self::workspace_of`]).
    pub fn declared(&self) -> Vec<warden_bundle::Workspace> {
        self.workspaces
            .iter()
            .map(|w| warden_bundle::Workspace {
                name: w.name.clone(),
                namespaces: w.namespaces.iter().map(|(raw, _)| raw.clone()).collect(),
            })
            .collect()
    }

    /// The workspace a namespace belongs to (the first, by name, whose globs match it).
    pub fn workspace_of(&self, namespace: &str) -> &str {
        self.workspaces
            .iter()
            .find(|ws| {
                ws.namespaces
                    .iter()
                    .any(|(_, glob)| glob.is_match(namespace))
            })
            .map_or(DEFAULT_WORKSPACE, |ws| ws.name.as_str())
    }

    /// Reports namespaces that two workspaces claim. Only namespaces resources use are known.
    pub fn check_claims<Spec>(&self, resources: &[&Located<Spec>], diagnostics: &mut Diagnostics) {
        for resource in resources {
            let ns = resource.namespace();
            let claims: Vec<&str> = self
                .workspaces
                .iter()
                .filter(|ws| ws.namespaces.iter().any(|(_, glob)| glob.is_match(ns)))
                .map(|ws| ws.name.as_str())
                .collect();
            if claims.len() > 1 {
                diagnostics.push(resource.diagnostic("namespace-claimed", 
                    Severity::Error,
                    "metadata.namespace",
                    format!(
                        "namespace {ns} belongs to workspaces {}; a namespace may belong to one workspace",
                        claims.join(" and ")
                    ),
                ));
            }
        }
    }

    /// Every workspace name, the default one included.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.workspaces.iter().map(|w| w.name.clone()).collect();
        names.push(DEFAULT_WORKSPACE.to_owned());
        names.sort();
        names.dedup();
        names
    }

    fn labels_of(&self, workspace: &str) -> Option<&BTreeMap<String, String>> {
        self.workspaces
            .iter()
            .find(|w| w.name == workspace)
            .map(|w| &w.labels)
    }

    /// Whether a service of one workspace is visible in `viewer`.
    pub fn visible(&self, service: Shared<'_>, viewer: &str) -> bool {
        if service.workspace == viewer {
            return true;
        }
        let exported = self.settings.get(service.workspace).is_some_and(|s| {
            s.export_to
                .iter()
                .any(|rule| self.rule_matches(rule, viewer, service))
        });
        let imported = self.settings.get(viewer).is_some_and(|s| {
            s.import_from
                .iter()
                .any(|rule| self.rule_matches(rule, service.workspace, service))
        });
        exported && imported
    }

    /// A share rule matches when it names the other workspace (by name, glob or labels) and,
    /// if it lists resources, one of them matches the service.
    fn rule_matches(&self, rule: &ShareRule, other: &str, service: Shared<'_>) -> bool {
        let workspace_ok = rule.workspaces.iter().any(|w| {
            let by_name = w.name.as_deref().is_some_and(|pattern| {
                Glob::new(pattern).is_ok_and(|g| g.compile_matcher().is_match(other))
            });
            let by_labels = !w.selector.is_empty()
                && self
                    .labels_of(other)
                    .is_some_and(|labels| w.selector.iter().all(|(k, v)| labels.get(k) == Some(v)));
            by_name || by_labels
        });
        let resource_ok = rule.resources.is_empty()
            || rule.resources.iter().any(|r| {
                let kind_ok = r
                    .kind
                    .as_deref()
                    .is_none_or(|k| k == "ALL" || k == "EXTERNAL_SERVICE");
                let name_ok = r.name.as_deref().is_none_or(|n| n == service.name);
                let ns_ok = r
                    .namespace
                    .as_deref()
                    .is_none_or(|n| n == service.namespace);
                let labels_ok = r
                    .labels
                    .iter()
                    .all(|(k, v)| service.labels.get(k) == Some(v));
                kind_ok && name_ok && ns_ok && labels_ok
            });
        workspace_ok && resource_ok
    }
}
