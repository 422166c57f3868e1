//! AccessPolicies: destinations resolved to services, clients to SPIFFE ID patterns.
//!
//! Conditions Warden cannot enforce yet (`match` on headers, `requestIdentityMatcher`) never
//! widen access: an entry that depends on them is left out, with a warning, so the policy
//! denies what that entry would have allowed.

use warden_bundle::{AccessPolicy, AccessRule, PolicyTarget, Provenance, ResourceKind, ServiceRef};
use warden_engine::validate::address;

use super::services::BuiltService;
use super::workspaces::Workspaces;
use crate::diagnostic::{Diagnostics, Severity};
use crate::manifest::kinds::{AccessPolicySpec, AuthzEntry, DestinationSelector, ObjectSelector};
use crate::manifest::load::Located;

pub fn build_policies(
    policies: &[Located<AccessPolicySpec>],
    services: &[&BuiltService<'_>],
    workspaces: &Workspaces,
    trust_domain: &str,
    diagnostics: &mut Diagnostics,
) -> Vec<AccessPolicy> {
    let mut out = Vec::new();
    // Kubernetes keeps one object per kind, namespace and name: two with one name are a
    // mistake whose union would be wider than either.
    let mut names: std::collections::HashMap<(&str, &str), &Located<AccessPolicySpec>> =
        std::collections::HashMap::new();
    for policy in policies {
        if let Some(first) = names.insert((policy.namespace(), policy.name()), policy) {
            diagnostics.push(policy.diagnostic("duplicate-name", 
                Severity::Error,
                "metadata.name",
                format!(
                    "another AccessPolicy has this namespace/name ({}:{}); Kubernetes keeps one object per name: merge them or rename one",
                    first.origin.file,
                    first.origin.line("")
                ),
            ));
            continue;
        }
        let spec = &policy.manifest.spec;
        let warn = |d: &mut Diagnostics, field: &str, message: &str| {
            d.push(policy.diagnostic("not-enforced", Severity::Warning, field, message))
        };
        if spec.apply_to_workloads.is_some() {
            warn(diagnostics, "spec.applyToWorkloads", "Warden enforces access at the destination (applyToDestinations); applyToWorkloads is ignored");
        }
        if spec.config.authn.is_some() {
            warn(
                diagnostics,
                "spec.config.authn",
                "peer authentication is the mesh's setting; Warden ignores it",
            );
        }
        if spec.config.enforcement_layers.is_some() {
            diagnostics.push(policy.diagnostic("not-enforced", 
                Severity::Note,
                "spec.config.enforcementLayers",
                "Warden enforces in the sidecar's and the egress gateway's filter, whatever layers are named here",
            ));
        }
        let workspace = workspaces.workspace_of(policy.namespace());
        let mut targets = Vec::new();
        for (k, destination) in spec.apply_to_destinations.iter().enumerate() {
            targets.extend(resolve(
                policy,
                k,
                destination,
                services,
                workspaces,
                workspace,
                diagnostics,
            ));
        }
        targets.sort_by(|a: &PolicyTarget, b| {
            (&a.service.namespace, &a.service.name, a.port).cmp(&(
                &b.service.namespace,
                &b.service.name,
                b.port,
            ))
        });
        targets.dedup();
        if targets.is_empty() {
            // A restriction that applies to nothing leaves what it meant to restrict open
            // (a misspelt name or label): an error, unless allowed knowingly.
            diagnostics.push(policy.diagnostic(
                "selects-nothing",
                Severity::Error,
                "spec.applyToDestinations",
                "selects no ExternalService, so it restricts nothing (a misspelt name or label would leave the service it meant open); fix the selector, or build with --allow selects-nothing",
            ));
            continue;
        }
        let (mut enforced, mut dry_run) = (Vec::new(), Vec::new());
        // `authz` (Gloo's single-entry form) is one more entry beside `authzList`.
        let entries = spec
            .config
            .authz
            .iter()
            .map(|entry| ("spec.config.authz".to_owned(), entry))
            .chain(
                spec.config
                    .authz_list
                    .iter()
                    .enumerate()
                    .map(|(e, entry)| (format!("spec.config.authzList[{e}]"), entry)),
            );
        for (at, entry) in entries {
            if let Some(rule) = rule(policy, &at, entry, trust_domain, diagnostics) {
                if spec.config.dry_run || entry.dry_run {
                    dry_run.push(rule);
                } else {
                    enforced.push(rule);
                }
            }
        }
        let source = Provenance::new(
            ResourceKind::AccessPolicy,
            policy.namespace(),
            policy.name(),
        );
        let has_entries = spec.config.authz.is_some() || !spec.config.authz_list.is_empty();
        let whole_policy_dry =
            spec.config.dry_run || (has_entries && enforced.is_empty() && !dry_run.is_empty());
        if !whole_policy_dry {
            out.push(AccessPolicy {
                source: source.clone(),
                targets: targets.clone(),
                rules: enforced,
                dry_run: false,
            });
        }
        if !dry_run.is_empty() {
            out.push(AccessPolicy {
                source,
                targets,
                rules: dry_run,
                dry_run: true,
            });
        }
    }
    out
}

/// Whether a destination selector picks this service, seen from `workspace`.
pub(super) fn selects(
    selector: &ObjectSelector,
    s: &BuiltService<'_>,
    workspaces: &Workspaces,
    workspace: &str,
) -> bool {
    let source = &s.service.source;
    workspaces.visible(s.shared(), workspace)
        && selector.name.as_deref().is_none_or(|n| n == source.name)
        && selector
            .namespace
            .as_deref()
            .is_none_or(|n| n == source.namespace)
        && selector
            .workspace
            .as_deref()
            .is_none_or(|w| w == s.workspace)
        && selector
            .labels
            .iter()
            .all(|(key, v)| s.labels().get(key) == Some(v))
}

fn resolve(
    policy: &Located<AccessPolicySpec>,
    k: usize,
    destination: &DestinationSelector,
    services: &[&BuiltService<'_>],
    workspaces: &Workspaces,
    workspace: &str,
    diagnostics: &mut Diagnostics,
) -> Vec<PolicyTarget> {
    let at = format!("spec.applyToDestinations[{k}]");
    if let Some(kind) = destination
        .kind
        .as_deref()
        .filter(|k| *k != "EXTERNAL_SERVICE")
    {
        diagnostics.push(policy.diagnostic(
            "not-enforced",
            Severity::Warning,
            &format!("{at}.kind"),
            format!("Warden enforces EXTERNAL_SERVICE destinations; {kind} is left to the mesh"),
        ));
        return Vec::new();
    }
    let selector = &destination.selector;
    if selector.cluster.is_some() {
        // Selecting in every cluster applies the policy to more services: never wider access.
        diagnostics.push(policy.diagnostic("not-enforced", 
            Severity::Warning,
            &format!("{at}.selector.cluster"),
            "ExternalServices are not per cluster in a Warden bundle; the selector matches in every cluster",
        ));
    }
    let mut out = Vec::new();
    for s in services {
        let source = &s.service.source;
        let matches = selects(selector, s, workspaces, workspace);
        if !matches {
            continue;
        }
        let port = match &destination.port {
            None => None,
            Some(p) => {
                let found = s.service.ports.iter().find(|sp| {
                    p.number.is_some_and(|n| u32::from(sp.number) == n)
                        || p.name.is_some() && sp.name == p.name
                });
                match found {
                    Some(sp) => Some(sp.number),
                    None => {
                        diagnostics.push(policy.diagnostic(
                            "no-such-port",
                            Severity::Warning,
                            &format!("{at}.port"),
                            format!(
                                "{} declares no such port; the policy does not apply to it",
                                s.resource.display()
                            ),
                        ));
                        continue;
                    }
                }
            }
        };
        out.push(PolicyTarget {
            service: ServiceRef {
                namespace: source.namespace.clone(),
                name: source.name.clone(),
            },
            port,
        });
    }
    out
}

fn rule(
    policy: &Located<AccessPolicySpec>,
    at: &str,
    entry: &AuthzEntry,
    trust_domain: &str,
    diagnostics: &mut Diagnostics,
) -> Option<AccessRule> {
    if entry.match_.is_some() {
        diagnostics.push(policy.diagnostic(
            "not-enforced",
            Severity::Warning,
            &format!("{at}.match"),
            "header matching is not enforced yet; this entry is left out, so it allows nothing",
        ));
        return None;
    }
    let mut clients = Vec::new();
    for (c, client) in entry.allowed_clients.iter().enumerate() {
        let field = format!("{at}.allowedClients[{c}]");
        if client.request_identity_matcher.is_some() {
            diagnostics.push(policy.diagnostic(
                "not-enforced",
                Severity::Warning,
                &format!("{field}.requestIdentityMatcher"),
                "request identity matching is not enforced yet; this client allows nothing",
            ));
        }
        let Some(sa) = &client.service_account_selector else {
            continue;
        };
        if !sa.labels.is_empty() {
            diagnostics.push(policy.diagnostic("unverifiable-client", 
                Severity::Error,
                &format!("{field}.serviceAccountSelector.labels"),
                "service-account labels are not part of a SPIFFE ID, so a proxy cannot check them; select by name and namespace",
            ));
            continue;
        }
        // The workload's SPIFFE ID names its trust domain, namespace and service account, not
        // its cluster: checking the rest would widen the selector to every cluster.
        if sa.cluster.as_deref().is_some_and(|c| !c.is_empty()) {
            diagnostics.push(policy.diagnostic("unverifiable-client", 
                Severity::Warning,
                &format!("{field}.serviceAccountSelector.cluster"),
                "a SPIFFE ID does not name the workload's cluster, so a proxy cannot check it; this client is left out (it allows nothing); give each cluster its own trust domain and select by namespace and name",
            ));
            continue;
        }
        let segment = |value: &Option<String>| {
            value
                .clone()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "*".into())
        };
        clients.push(format!(
            "spiffe://{trust_domain}/ns/{}/sa/{}",
            segment(&sa.namespace),
            segment(&sa.name)
        ));
    }
    // Clients were listed but none can be checked: the entry allows nothing (it is reported
    // above), rather than everyone.
    if !entry.allowed_clients.is_empty() && clients.is_empty() {
        return None;
    }
    let mut ip_blocks = Vec::new();
    for (b, block) in entry.allowed_ip_blocks.iter().enumerate() {
        match address(block) {
            Ok(net) => ip_blocks.push(net.to_string()),
            Err(problem) => diagnostics.push(policy.diagnostic(
                "invalid-field",
                Severity::Error,
                &format!("{at}.allowedIpBlocks[{b}]"),
                problem,
            )),
        }
    }
    Some(AccessRule {
        clients,
        ip_blocks,
        methods: entry
            .allowed_methods
            .iter()
            .map(|m| m.to_ascii_uppercase())
            .collect(),
        paths: entry.allowed_paths.clone(),
    })
}
