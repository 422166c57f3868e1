//! From resources to a bundle: settings, workspaces, services, the overlap rule, policies.
//! The bundle is sorted, sealed with its digest, and compiled with the engine before it is
//! returned, so a bundle the builder writes is one the filter accepts.

mod overlap;
mod policies;
mod refusals;
mod resilience;
mod services;
pub mod virtual_ips;
mod workspaces;

use warden_bundle::{Bundle, BundleSpec, FailureMode, OutboundMode, DEFAULT_TRUST_DOMAIN};
use warden_engine::{compile_all, validate::spiffe_id};

use crate::diagnostic::{Diagnostic, Diagnostics, Severity};
use crate::manifest::load::Resources;
use workspaces::Workspaces;
pub use workspaces::DEFAULT_WORKSPACE;

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Build the bundle for this workspace's workloads; `None` builds one for everything.
    pub workspace: Option<String>,
    /// Virtual addresses to keep, by `namespace/name` (a previous bundle's): a service keeps
    /// its address even when a new one would hash onto it.
    pub previous: virtual_ips::Previous,
}

/// Builds the bundle, or `None` when an error was reported other than a service left out by
/// the overlap rule (which leaves that service out and builds the rest, as Gloo does).
pub fn build(
    resources: &Resources,
    options: &BuildOptions,
    diagnostics: &mut Diagnostics,
) -> Option<Bundle> {
    if resources.is_empty() {
        // An empty registry is ALLOW_ANY with nothing registered: never what was meant.
        diagnostics.push(Diagnostic {
            file: "<input>".into(),
            line: 0,
            severity: Severity::Error,
            code: "empty-input",
            resource: None,
            field: None,
            message: "no manifest Warden reads was found (ExternalService, EgressSettings, ...); check the paths and the file extensions (.yaml, .yml, .json)".into(),
        });
        return None;
    }
    let mut spec = settings(resources, diagnostics);
    let workspaces = Workspaces::resolve(resources, diagnostics);
    let claimed: Vec<_> = resources.external_services.iter().collect();
    workspaces.check_claims(&claimed, diagnostics);

    let mut services = services::build_services(
        &resources.external_services,
        &resources.external_endpoints,
        &workspaces,
        diagnostics,
    );
    resilience::apply(
        &resources.outlier_detection_policies,
        &mut services,
        &workspaces,
        diagnostics,
    );
    resilience::apply_failover(
        &resources.failover_policies,
        &mut services,
        &workspaces,
        diagnostics,
    );
    // Across every workspace, so that a service has the same address in every bundle.
    let ranges = virtual_ips::ranges(resources, diagnostics);
    virtual_ips::assign(
        &mut services,
        &ranges,
        &options.previous,
        resources,
        diagnostics,
    );
    let rejected =
        overlap::reject_overlaps(&services, &workspaces, spec.outbound_mode, diagnostics);
    if let Some(w) = &options.workspace {
        if !workspaces.names().contains(w) {
            diagnostics.push(Diagnostic {
                file: "<command line>".into(),
                line: 0,
                severity: Severity::Error,
                code: "unknown-workspace",
                resource: None,
                field: Some("--workspace".into()),
                message: format!(
                    "no workspace {w:?}; the manifests declare {}",
                    workspaces.names().join(", ")
                ),
            });
            return None;
        }
    }
    let kept: Vec<_> = services
        .iter()
        .enumerate()
        .filter(|(i, _)| !rejected.contains(i))
        .map(|(_, s)| s)
        .filter(|s| {
            options
                .workspace
                .as_deref()
                .is_none_or(|viewer| workspaces.visible(s.shared(), viewer))
        })
        .collect();

    let mut policies = policies::build_policies(
        &resources.access_policies,
        &kept,
        &workspaces,
        &spec.trust_domain,
        diagnostics,
    );
    // A bundle for the whole mesh, with workspaces declared: each caller decides within its
    // workspace's view, so each service says which workspaces see it.
    let views = options.workspace.is_none() && !resources.workspaces.is_empty();
    if views {
        spec.workspaces = workspaces.declared();
    }
    let names = workspaces.names();
    spec.services = kept
        .iter()
        .map(|s| {
            let mut service = s.service.clone();
            if views {
                service.workspaces = names
                    .iter()
                    .filter(|viewer| workspaces.visible(s.shared(), viewer))
                    .cloned()
                    .collect();
            }
            service
        })
        .collect();
    spec.services.sort_by(|a, b| {
        (&a.source.namespace, &a.source.name).cmp(&(&b.source.namespace, &b.source.name))
    });
    policies.sort_by(|a, b| {
        (&a.source.namespace, &a.source.name, a.dry_run).cmp(&(
            &b.source.namespace,
            &b.source.name,
            b.dry_run,
        ))
    });
    spec.access_policies = policies;
    let mut bundle = Bundle::new(spec);
    bundle.metadata.workspace = options.workspace.clone();
    bundle.metadata.generator = Some(format!("bundle-builder {}", env!("CARGO_PKG_VERSION")));
    let bundle = match bundle.seal() {
        Ok(bundle) => bundle,
        Err(err) => {
            diagnostics.push(internal(format!("cannot seal the bundle: {err}")));
            return None;
        }
    };
    // The engine checks what is built from the valid resources even when others were
    // refused above, so that one run reports everything to fix.
    if let Err(errors) = compile_all(&bundle) {
        refusals::report(errors, resources, diagnostics);
    }
    // Errors that only left a service out (the overlap rule) still build the rest.
    if diagnostics.has_blocking_errors() {
        return None;
    }
    Some(bundle)
}

/// An error about the built bundle itself, not a manifest.
pub(super) fn internal(message: String) -> Diagnostic {
    Diagnostic {
        file: "<bundle>".into(),
        line: 0,
        severity: Severity::Error,
        code: "internal",
        resource: None,
        field: None,
        message,
    }
}

/// Istio's own outbound mode (IstioOperator `meshConfig`, the `istio` ConfigMap): Warden's
/// when no EgressSettings states one; an EgressSettings that states another is an error (the
/// user would believe one mode and get the other).
fn istio_mode(
    resources: &Resources,
    stated: bool,
    spec: &mut BundleSpec,
    diagnostics: &mut Diagnostics,
) {
    let mut agreed: Option<&str> = None;
    for istio in &resources.istio_mesh_modes {
        let mode = match istio.mode.as_str() {
            "ALLOW_ANY" => OutboundMode::AllowAny,
            "REGISTRY_ONLY" => OutboundMode::RegistryOnly,
            other => {
                diagnostics.push(istio.diagnostic(
                    Severity::Error,
                    format!("outboundTrafficPolicy.mode {other:?} is not a mode; use ALLOW_ANY or REGISTRY_ONLY"),
                ));
                continue;
            }
        };
        if stated {
            if mode != spec.outbound_mode {
                let egress = resources
                    .egress_settings
                    .first()
                    .map_or_else(String::new, |e| e.display());
                diagnostics.push(istio.diagnostic(
                    Severity::Error,
                    format!(
                        "Istio's outboundTrafficPolicy.mode is {}, but {egress} says {}: make them agree",
                        istio.mode,
                        mode_name(spec.outbound_mode)
                    ),
                ));
            }
            continue;
        }
        match agreed {
            Some(first) if first != istio.mode => diagnostics.push(istio.diagnostic(
                Severity::Error,
                format!(
                    "outboundTrafficPolicy.mode is {}, but another mesh config says {first}: make them agree, or state the mode in EgressSettings",
                    istio.mode
                ),
            )),
            Some(_) => {}
            None => {
                agreed = Some(&istio.mode);
                spec.outbound_mode = mode;
                diagnostics.push(istio.diagnostic(
                    Severity::Note,
                    format!(
                        "outbound mode {} from Istio's mesh config (no EgressSettings states one)",
                        istio.mode
                    ),
                ));
            }
        }
    }
}

fn mode_name(mode: OutboundMode) -> &'static str {
    match mode {
        OutboundMode::AllowAny => "ALLOW_ANY",
        OutboundMode::RegistryOnly => "REGISTRY_ONLY",
    }
}

/// The mesh's service domain when EgressSettings names none: Kubernetes' default cluster
/// domain.
pub const DEFAULT_MESH_DOMAIN: &str = "svc.cluster.local";

fn settings(resources: &Resources, diagnostics: &mut Diagnostics) -> BundleSpec {
    let mut spec = BundleSpec::default();
    spec.mesh.domains = vec![DEFAULT_MESH_DOMAIN.to_owned()];
    let mut stated = false;
    for (i, settings) in resources.egress_settings.iter().enumerate() {
        if i > 0 {
            diagnostics.push(settings.diagnostic(
                "duplicate-name",
                Severity::Error,
                "",
                "only one EgressSettings may exist; merge them",
            ));
            continue;
        }
        let s = &settings.manifest.spec;
        if let Some(policy) = &s.outbound_traffic_policy {
            stated = true;
            match policy.mode.as_str() {
                "ALLOW_ANY" => spec.outbound_mode = OutboundMode::AllowAny,
                "REGISTRY_ONLY" => spec.outbound_mode = OutboundMode::RegistryOnly,
                other => diagnostics.push(settings.diagnostic(
                    "invalid-field",
                    Severity::Error,
                    "spec.outboundTrafficPolicy.mode",
                    format!("{other:?} is not a mode; use ALLOW_ANY or REGISTRY_ONLY"),
                )),
            }
        }
        match s.failure_mode.as_deref() {
            None | Some("FAIL_CLOSE") => spec.failure_mode = FailureMode::FailClose,
            Some("FAIL_OPEN") => spec.failure_mode = FailureMode::FailOpen,
            Some(other) => diagnostics.push(settings.diagnostic(
                "invalid-field",
                Severity::Error,
                "spec.failureMode",
                format!("{other:?} is not a failure mode; use FAIL_CLOSE or FAIL_OPEN"),
            )),
        }
        let domain = s
            .trust_domain
            .clone()
            .unwrap_or_else(|| DEFAULT_TRUST_DOMAIN.into());
        match spiffe_id(&format!("spiffe://{domain}"), false) {
            Ok(()) => spec.trust_domain = domain,
            Err(err) => diagnostics.push(settings.diagnostic(
                "invalid-field",
                Severity::Error,
                "spec.trustDomain",
                format!("{domain:?} is not a trust domain: {err}"),
            )),
        }
        if let Some(mesh) = &s.mesh {
            mesh_scope(settings, mesh, &mut spec, diagnostics);
        }
    }
    istio_mode(resources, stated, &mut spec, diagnostics);
    spec
}

/// EgressSettings `spec.mesh`, each entry checked with the engine's own rules.
fn mesh_scope(
    settings: &crate::manifest::load::Located<crate::manifest::kinds::EgressSettingsSpec>,
    mesh: &crate::manifest::kinds::MeshSpec,
    spec: &mut BundleSpec,
    diagnostics: &mut Diagnostics,
) {
    if let Some(domains) = &mesh.domains {
        spec.mesh.domains.clear();
        for (i, domain) in domains.iter().enumerate() {
            match warden_engine::validate::mesh_domain(domain) {
                Ok(name) => spec.mesh.domains.push(name.into()),
                Err(err) => diagnostics.push(settings.diagnostic(
                    "invalid-field",
                    Severity::Error,
                    &format!("spec.mesh.domains[{i}]"),
                    err,
                )),
            }
        }
    }
    for (i, address) in mesh.addresses.iter().enumerate() {
        match warden_engine::validate::mesh_address(address) {
            Ok(net) => spec.mesh.addresses.push(net.to_string()),
            Err(err) => diagnostics.push(settings.diagnostic(
                "invalid-field",
                Severity::Error,
                &format!("spec.mesh.addresses[{i}]"),
                err,
            )),
        }
    }
}
