//! From files to typed resources, with a diagnostic for everything that is skipped or wrong.

use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::kinds::{
    AccessPolicySpec, EgressSettingsSpec, ExternalEndpointSpec, ExternalServiceSpec,
    FailoverPolicySpec, Manifest, OutlierDetectionPolicySpec, WorkspaceSettingsSpec, WorkspaceSpec,
};
use super::source::SourceFile;
use super::yaml::{parse, Document};
use crate::diagnostic::{Diagnostic, Diagnostics, Severity};

/// Where a resource was written: its file, document and (for `List` items) its path prefix.
#[derive(Debug, Clone)]
pub struct Origin {
    pub file: String,
    document: Rc<Document>,
    prefix: String,
}

impl Origin {
    /// The full path of `field` in the document (`items[2].spec.hosts[0]` in a List).
    fn path(&self, field: &str) -> String {
        match (self.prefix.is_empty(), field.is_empty()) {
            (true, _) => field.to_owned(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}.{field}", self.prefix),
        }
    }

    /// The line `field` (a path inside the resource) was written on.
    pub fn line(&self, field: &str) -> usize {
        self.document.line_of(&self.path(field))
    }
}

/// A typed resource and where it came from.
#[derive(Debug, Clone)]
pub struct Located<Spec> {
    pub manifest: Manifest<Spec>,
    pub origin: Origin,
}

impl<Spec> Located<Spec> {
    pub fn namespace(&self) -> &str {
        self.manifest
            .metadata
            .namespace
            .as_deref()
            .unwrap_or("default")
    }

    pub fn name(&self) -> &str {
        &self.manifest.metadata.name
    }

    /// `Kind namespace/name`, as every diagnostic names a resource.
    pub fn display(&self) -> String {
        format!(
            "{} {}/{}",
            self.manifest.kind,
            self.namespace(),
            self.name()
        )
    }

    /// A diagnostic (`code`: see [`Diagnostic::code`]) about `field` of this resource.
    pub fn diagnostic(
        &self,
        code: &'static str,
        severity: Severity,
        field: &str,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: self.origin.file.clone(),
            line: self.origin.line(field),
            severity,
            code,
            resource: Some(self.display()),
            field: (!field.is_empty()).then(|| field.to_owned()),
            message: message.into(),
        }
    }
}

/// Istio's own outbound traffic mode (`meshConfig.outboundTrafficPolicy.mode`), from an
/// `IstioOperator` or the `istio` ConfigMap's `mesh` key: used when no EgressSettings gives
/// one, and an error when it gives another.
#[derive(Debug, Clone)]
pub struct IstioMeshMode {
    pub mode: String,
    /// `IstioOperator istio-system/installed-state`, `ConfigMap istio-system/istio`.
    pub resource: String,
    pub field: String,
    pub origin: Origin,
}

impl IstioMeshMode {
    pub fn diagnostic(&self, severity: Severity, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.origin.file.clone(),
            line: self.origin.line(&self.field),
            severity,
            code: "mesh-config",
            resource: Some(self.resource.clone()),
            field: Some(self.field.clone()),
            message: message.into(),
        }
    }
}

/// Every resource Warden reads, by kind.
#[derive(Debug, Default)]
pub struct Resources {
    pub istio_mesh_modes: Vec<IstioMeshMode>,
    pub external_services: Vec<Located<ExternalServiceSpec>>,
    pub external_endpoints: Vec<Located<ExternalEndpointSpec>>,
    pub access_policies: Vec<Located<AccessPolicySpec>>,
    pub workspaces: Vec<Located<WorkspaceSpec>>,
    pub workspace_settings: Vec<Located<WorkspaceSettingsSpec>>,
    pub egress_settings: Vec<Located<EgressSettingsSpec>>,
    pub outlier_detection_policies: Vec<Located<OutlierDetectionPolicySpec>>,
    pub failover_policies: Vec<Located<FailoverPolicySpec>>,
}

impl Resources {
    /// Whether nothing Warden reads was found.
    pub fn is_empty(&self) -> bool {
        self.external_services.is_empty()
            && self.external_endpoints.is_empty()
            && self.access_policies.is_empty()
            && self.workspaces.is_empty()
            && self.workspace_settings.is_empty()
            && self.egress_settings.is_empty()
            && self.outlier_detection_policies.is_empty()
            && self.failover_policies.is_empty()
            && self.istio_mesh_modes.is_empty()
    }
}

/// Reads every document of every file. Problems become diagnostics; good resources are kept.
pub fn load(files: &[SourceFile], diagnostics: &mut Diagnostics) -> Resources {
    let mut resources = Resources::default();
    for file in files {
        let documents = match parse(&file.text) {
            Ok(documents) => documents,
            Err(err) => {
                diagnostics.push(Diagnostic {
                    file: file.name.clone(),
                    line: err.line,
                    severity: Severity::Error,
                    code: "invalid-yaml",
                    resource: None,
                    field: None,
                    message: format!("not valid YAML: {}", err.message),
                });
                continue;
            }
        };
        for document in documents {
            let document = Rc::new(document);
            let origin = Origin {
                file: file.name.clone(),
                document: document.clone(),
                prefix: String::new(),
            };
            read_object(&document.value, origin, &mut resources, diagnostics);
        }
    }
    resources
}

fn read_object(value: &Value, origin: Origin, out: &mut Resources, diagnostics: &mut Diagnostics) {
    let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default();
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    let plain = |code: &'static str, severity, field: &str, message: String| Diagnostic {
        file: origin.file.clone(),
        line: origin.line(field),
        severity,
        code,
        resource: None,
        field: (!field.is_empty()).then(|| field.to_owned()),
        message,
    };
    if kind.is_empty() || api_version.is_empty() {
        diagnostics.push(plain(
            "missing-kind",
            Severity::Error,
            "",
            "a manifest needs apiVersion and kind".into(),
        ));
        return;
    }
    if kind == "List" || kind.ends_with("List") && value.get("items").is_some() {
        let items = value
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (i, item) in items.iter().enumerate() {
            let prefix = origin.path(&format!("items[{i}]"));
            let item_origin = Origin {
                prefix,
                ..origin.clone()
            };
            read_object(item, item_origin, out, diagnostics);
        }
        return;
    }
    let group = api_version.split('/').next().unwrap_or_default();
    match (api_version, kind) {
        ("networking.gloo.solo.io/v2", "ExternalService") => {
            push(value, origin, &mut out.external_services, diagnostics)
        }
        ("networking.gloo.solo.io/v2", "ExternalEndpoint") => {
            push(value, origin, &mut out.external_endpoints, diagnostics)
        }
        ("security.policy.gloo.solo.io/v2", "AccessPolicy") => {
            push(value, origin, &mut out.access_policies, diagnostics)
        }
        ("admin.gloo.solo.io/v2", "Workspace") => {
            push(value, origin, &mut out.workspaces, diagnostics)
        }
        ("admin.gloo.solo.io/v2", "WorkspaceSettings") => {
            push(value, origin, &mut out.workspace_settings, diagnostics)
        }
        ("warden.dev/v1alpha1", "EgressSettings") => {
            push(value, origin, &mut out.egress_settings, diagnostics)
        }
        // Decision tests kept beside the manifests: `bundle-builder test` reads them.
        ("warden.dev/v1alpha1", "DecisionTests") => {}
        // A built bundle written beside the manifests (`build manifests/ -f manifests/b.json`).
        ("warden.dev/v1alpha1", "Bundle") => diagnostics.push(plain(
            "skipped-kind",
            Severity::Note,
            "kind",
            "skipped a built bundle: bundles are built from manifests, not read as one".into(),
        )),
        ("resilience.policy.gloo.solo.io/v2", "OutlierDetectionPolicy") => push(
            value,
            origin,
            &mut out.outlier_detection_policies,
            diagnostics,
        ),
        ("resilience.policy.gloo.solo.io/v2", "FailoverPolicy") => {
            push(value, origin, &mut out.failover_policies, diagnostics)
        }
        ("resilience.policy.gloo.solo.io/v2", "ConnectionPolicy") => {
            // Read, not applied: say exactly which settings stay as rendered.
            let fields: Vec<String> = value
                .pointer("/spec/config")
                .and_then(Value::as_object)
                .map(|config| {
                    config
                        .iter()
                        .flat_map(|(group, inner)| match inner.as_object() {
                            Some(inner) => inner.keys().map(|k| format!("{group}.{k}")).collect(),
                            None => vec![group.clone()],
                        })
                        .collect()
                })
                .unwrap_or_default();
            diagnostics.push(Diagnostic {
                resource: Some(format!(
                    "ConnectionPolicy {}/{}",
                    text_at(value, "/metadata/namespace").unwrap_or("default"),
                    text_at(value, "/metadata/name").unwrap_or_default()
                )),
                ..plain(
                    "not-applied",
                    Severity::Warning,
                    "spec.config",
                    format!(
                        "not applied yet: {} stay as rendered (render envoy: connect timeout 5 s, no TCP keepalive; render istio: Istio's defaults)",
                        if fields.is_empty() {
                            "its settings".to_owned()
                        } else {
                            fields.join(", ")
                        }
                    ),
                )
            });
        }
        (_, "IstioOperator") if group == "install.istio.io" => {
            istio_mode(value, origin, kind, "spec.meshConfig", out, diagnostics)
        }
        ("v1", "ConfigMap") if text_at(value, "/metadata/name") == Some("istio") => {
            istio_mode(value, origin, kind, "data.mesh", out, diagnostics)
        }
        (
            _,
            "ExternalService" | "ExternalEndpoint" | "AccessPolicy" | "Workspace"
            | "WorkspaceSettings" | "EgressSettings",
        ) if matches!(
            group,
            "networking.gloo.solo.io"
                | "security.policy.gloo.solo.io"
                | "admin.gloo.solo.io"
                | "warden.dev"
        ) =>
        {
            diagnostics.push(plain(
                "unsupported-version",
                Severity::Error,
                "apiVersion",
                format!(
                    "{api_version} {kind} is not a version Warden reads; write {}",
                    supported_version(kind)
                ),
            ));
        }
        _ => match near_miss(kind) {
            // A misspelt kind Warden reads would leave its restrictions out: an error.
            Some(meant) => diagnostics.push(plain(
                "misspelt-kind",
                Severity::Error,
                "kind",
                format!("{api_version} {kind} is not a kind Warden reads; did you mean {meant}? (skipping it would leave out what it says)"),
            )),
            // A kind of Gloo's or Warden's own API groups that Warden does not read may say
            // something about egress that would be left out: an error unless allowed.
            None if group.ends_with(".solo.io") || group == "warden.dev" => {
                diagnostics.push(plain(
                    "unknown-kind",
                    Severity::Error,
                    "kind",
                    format!("{api_version} {kind} is not a kind Warden reads, and what it says would be left out; remove it from the input, or build with --allow unknown-kind"),
                ))
            }
            None => diagnostics.push(plain(
                "skipped-kind",
                Severity::Note,
                "kind",
                format!("skipped {api_version} {kind}: not a kind Warden reads"),
            )),
        },
    }
}

/// The kinds Warden reads.
const READ_KINDS: [&str; 9] = [
    "ExternalService",
    "ExternalEndpoint",
    "AccessPolicy",
    "Workspace",
    "WorkspaceSettings",
    "EgressSettings",
    "OutlierDetectionPolicy",
    "FailoverPolicy",
    "DecisionTests",
];

/// The kind Warden reads that `kind` is one or two edits away from (a typo), unless `kind` is
/// a real kind of its own.
fn near_miss(kind: &str) -> Option<&'static str> {
    READ_KINDS
        .iter()
        .find(|k| {
            let d = distance(&k.to_ascii_lowercase(), &kind.to_ascii_lowercase());
            d <= 2 && (d > 0 || **k != kind)
        })
        .copied()
}

/// Levenshtein distance (small strings only: kind names).
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row.first().copied().unwrap_or(0);
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let above = row.get(j + 1).copied().unwrap_or(usize::MAX);
            let left = row.get(j).copied().unwrap_or(usize::MAX);
            let value = (previous + usize::from(ca != *cb))
                .min(above.saturating_add(1))
                .min(left.saturating_add(1));
            previous = above;
            if let Some(cell) = row.get_mut(j + 1) {
                *cell = value;
            }
        }
    }
    row.last().copied().unwrap_or(0)
}

fn text_at<'v>(value: &'v Value, pointer: &str) -> Option<&'v str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// The outbound mode in Istio's mesh config: an IstioOperator's `spec.meshConfig`, or the
/// `istio` ConfigMap's `data.mesh` (YAML in a string). Everything else in them is Istio's.
fn istio_mode(
    value: &Value,
    origin: Origin,
    kind: &str,
    at: &str,
    out: &mut Resources,
    diagnostics: &mut Diagnostics,
) {
    let resource = format!(
        "{kind} {}/{}",
        text_at(value, "/metadata/namespace").unwrap_or("default"),
        text_at(value, "/metadata/name").unwrap_or_default()
    );
    let mesh = match at {
        "data.mesh" => {
            let Some(text) = text_at(value, "/data/mesh") else {
                return;
            };
            match parse(text) {
                Ok(documents) => documents.into_iter().next().map(|d| d.value),
                Err(err) => {
                    diagnostics.push(Diagnostic {
                        file: origin.file.clone(),
                        line: origin.line(at),
                        severity: Severity::Error,
                        code: "invalid-yaml",
                        resource: Some(resource),
                        field: Some(at.to_owned()),
                        message: format!("the mesh config is not valid YAML: {}", err.message),
                    });
                    return;
                }
            }
        }
        _ => value.pointer("/spec/meshConfig").cloned(),
    };
    let Some(mode) = mesh
        .as_ref()
        .and_then(|m| m.pointer("/outboundTrafficPolicy/mode"))
        .and_then(Value::as_str)
    else {
        return;
    };
    out.istio_mesh_modes.push(IstioMeshMode {
        mode: mode.to_owned(),
        resource,
        // Inside the ConfigMap's string, the line is the `mesh` key's.
        field: match at {
            "data.mesh" => at.to_owned(),
            _ => format!("{at}.outboundTrafficPolicy.mode"),
        },
        origin,
    });
}

fn supported_version(kind: &str) -> &'static str {
    match kind {
        "ExternalService" | "ExternalEndpoint" => "networking.gloo.solo.io/v2",
        "AccessPolicy" => "security.policy.gloo.solo.io/v2",
        "EgressSettings" => "warden.dev/v1alpha1",
        _ => "admin.gloo.solo.io/v2",
    }
}

fn push<Spec: DeserializeOwned>(
    value: &Value,
    origin: Origin,
    out: &mut Vec<Located<Spec>>,
    diagnostics: &mut Diagnostics,
) {
    match serde_path_to_error::deserialize::<_, Manifest<Spec>>(value) {
        Ok(manifest) => out.push(Located { manifest, origin }),
        Err(err) => {
            let field = err.path().to_string();
            let field = if field == "." { String::new() } else { field };
            let name = |key: &str| {
                value
                    .pointer(&format!("/metadata/{key}"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            let kind = value
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let resource = name("name").map(|n| {
                format!(
                    "{kind} {}/{n}",
                    name("namespace").unwrap_or_else(|| "default".into())
                )
            });
            let message = err.into_inner().to_string();
            diagnostics.push(Diagnostic {
                file: origin.file.clone(),
                line: origin.line(&field),
                severity: Severity::Error,
                code: "invalid-field",
                resource,
                field: (!field.is_empty()).then_some(field),
                message,
            });
        }
    }
}
