//! The engine's refusals of a built bundle, reported against the manifests they came from.
//!
//! Checks that only the engine can make exactly (ports declared twice, port names the selected
//! endpoints lack, ...) are made once, in the engine; the builder compiles every bundle it
//! builds and maps each [`CompileError`] back to the resource, field and line a user wrote.

use warden_bundle::{Provenance, ResourceKind};
use warden_engine::CompileError;

use super::internal;
use crate::diagnostic::{Diagnostic, Diagnostics, Severity};
use crate::manifest::load::{Located, Resources};

/// Adds one error per refusal (duplicates, such as one bad endpoint selected by two services,
/// once).
pub fn report(errors: Vec<CompileError>, resources: &Resources, diagnostics: &mut Diagnostics) {
    let mut seen: std::collections::HashSet<Diagnostic> = std::collections::HashSet::new();
    for error in errors {
        let diagnostic = locate(error, resources);
        if seen.insert(diagnostic.clone()) {
            diagnostics.push(diagnostic);
        }
    }
}

fn locate(error: CompileError, resources: &Resources) -> Diagnostic {
    let (entry, field, problem) = match error {
        CompileError::Invalid {
            entry,
            field,
            problem,
        } => (entry, field, problem),
        other => return internal(format!("the engine refuses the built bundle: {other}")),
    };
    let Some(entry) = entry else {
        // Bundle-wide settings come from the EgressSettings resource, when there is one.
        return match resources.egress_settings.first() {
            Some(settings) => {
                settings.diagnostic("engine-refusal", Severity::Error, &field, problem)
            }
            None => internal(format!("{field}: {problem}")),
        };
    };
    let manifest_field = manifest_field(entry.kind, &field);
    let found = match entry.kind {
        ResourceKind::ExternalService => at(&resources.external_services, &entry, &manifest_field),
        ResourceKind::ExternalEndpoint => {
            at(&resources.external_endpoints, &entry, &manifest_field)
        }
        ResourceKind::AccessPolicy => at(&resources.access_policies, &entry, &manifest_field),
        ResourceKind::FailoverPolicy => at(&resources.failover_policies, &entry, &manifest_field),
        ResourceKind::OutlierDetectionPolicy => at(
            &resources.outlier_detection_policies,
            &entry,
            &manifest_field,
        ),
        ResourceKind::EgressSettings => at(&resources.egress_settings, &entry, &manifest_field),
    };
    match found {
        Some(mut diagnostic) => {
            diagnostic.message = match manifest_field {
                Some(_) => format!("{problem}{}", diagnostic.message),
                // A field with no counterpart in the manifest: say where in the bundle.
                None => format!("in the bundle at {field}: {problem}{}", diagnostic.message),
            };
            diagnostic
        }
        None => internal(format!("{entry}: {field}: {problem}")),
    }
}

/// The diagnostic for the resource `entry` names; where several resources have that name (the
/// engine refuses the second), the last one, and the message says where the others are.
fn at<Spec>(
    resources: &[Located<Spec>],
    entry: &Provenance,
    field: &Option<String>,
) -> Option<Diagnostic> {
    let named: Vec<&Located<Spec>> = resources
        .iter()
        .filter(|r| r.namespace() == entry.namespace && r.name() == entry.name)
        .collect();
    let (last, others) = named.split_last()?;
    let mut diagnostic = last.diagnostic(
        "engine-refusal",
        Severity::Error,
        field.as_deref().unwrap_or(""),
        "",
    );
    if !others.is_empty() {
        let places: Vec<String> = others
            .iter()
            .map(|r| format!("{}:{}", r.origin.file, r.origin.line("")))
            .collect();
        // Filled in by `locate` with the problem in front.
        diagnostic.message = format!(" (also at {})", places.join(", "));
    }
    Some(diagnostic)
}

/// The manifest field a bundle path stands for, where the two correspond one to one: a
/// service's hosts, addresses and ports are its manifest's, in the same order (a service with
/// any error is left out of the bundle before it is compiled); an endpoint's address and ports
/// likewise. `None` for paths with no such counterpart (policy rules are built from several
/// manifest fields).
fn manifest_field(kind: ResourceKind, bundle_path: &str) -> Option<String> {
    let rest = bundle_path.strip_prefix("spec.services[")?;
    let (_, rest) = rest.split_once(']')?;
    match kind {
        ResourceKind::ExternalService => match rest {
            "" => Some("spec".into()),
            ".source" => Some("metadata.name".into()),
            _ if rest.starts_with(".virtualAddresses") => Some(format!(
                "metadata.annotations[{}]",
                super::virtual_ips::ANNOTATION
            )),
            _ if [".hosts", ".addresses", ".ports"]
                .iter()
                .any(|p| rest.starts_with(p)) =>
            {
                Some(format!("spec{rest}"))
            }
            _ => None,
        },
        ResourceKind::ExternalEndpoint => {
            let rest = rest.strip_prefix(".endpoints[")?;
            let (_, rest) = rest.split_once(']')?;
            [".address", ".ports"]
                .iter()
                .any(|p| rest.starts_with(p))
                .then(|| format!("spec{rest}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_paths_map_to_manifest_fields() {
        use ResourceKind::*;
        let cases = [
            (ExternalService, "spec.services[3]", Some("spec")),
            (
                ExternalService,
                "spec.services[3].source",
                Some("metadata.name"),
            ),
            (
                ExternalService,
                "spec.services[3].hosts[1]",
                Some("spec.hosts[1]"),
            ),
            (
                ExternalService,
                "spec.services[12].ports[0].targetPort.name",
                Some("spec.ports[0].targetPort.name"),
            ),
            (
                ExternalEndpoint,
                "spec.services[0].endpoints[2].ports[1].name",
                Some("spec.ports[1].name"),
            ),
            (
                ExternalEndpoint,
                "spec.services[0].endpoints[2].address",
                Some("spec.address"),
            ),
            (
                AccessPolicy,
                "spec.accessPolicies[0].rules[0].clients[0]",
                None,
            ),
            (ExternalService, "spec.services[0].endpoints[0]", None),
        ];
        for (kind, path, want) in cases {
            assert_eq!(manifest_field(kind, path).as_deref(), want, "{path}");
        }
    }
}
