//! The bundle document and its mesh-wide settings.

use serde::{Deserialize, Serialize};

use crate::access::AccessPolicy;
use crate::error::BundleError;
use crate::service::{ExternalService, Locality};

/// The trust domain used when the bundle does not name one (as Istio's default).
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

/// The bundle format version. Only one exists; a bundle of another version is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum ApiVersion {
    #[default]
    #[serde(rename = "warden.dev/v1alpha1")]
    V1Alpha1,
}

/// The document kind: always `Bundle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum BundleKind {
    #[default]
    Bundle,
}

/// A complete Warden policy bundle.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Bundle {
    pub api_version: ApiVersion,
    pub kind: BundleKind,
    #[serde(default)]
    pub metadata: BundleMetadata,
    pub spec: BundleSpec,
}

/// Descriptive data about a bundle. Not covered by the digest.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BundleMetadata {
    /// `sha256:<hex>` over the canonical JSON of `spec`. When present, a filter refuses a
    /// bundle whose spec does not match it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The workspace whose workloads this bundle is for, when built per workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// The program that wrote the bundle, for example `bundle-builder 0.1.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<String>,
    /// Hex ed25519 signature over `digest` (`bundle-builder build --sign KEY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Hex ed25519 signature over the header of this bundle's compiled form, which names the
    /// digest and fixes every byte of the compiled tables: what a filter that loads the
    /// compiled form verifies (`bundle-builder build --sign KEY`; docs/loading.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compiled_signature: Option<String>,
}

/// What the filter enforces. `Default` gives the same values as an empty `spec: {}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BundleSpec {
    #[serde(default)]
    pub outbound_mode: OutboundMode,
    #[serde(default)]
    pub failure_mode: FailureMode,
    #[serde(default = "default_trust_domain")]
    pub trust_domain: String,
    #[serde(default)]
    pub proxy: ProxyHints,
    #[serde(default)]
    pub services: Vec<ExternalService>,
    #[serde(default)]
    pub access_policies: Vec<AccessPolicy>,
    /// Gloo's workspaces, for a bundle built for the whole mesh: a caller decides within its
    /// workspace's view (the services whose `workspaces` name it). Empty: one view, every
    /// service (a single workspace, or a bundle built for one with `--workspace`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workspaces: Vec<Workspace>,
    /// Destinations inside the mesh: left to the mesh, never `not_in_registry`.
    #[serde(default, skip_serializing_if = "MeshScope::is_empty")]
    pub mesh: MeshScope,
}

/// What is inside the mesh, so that `REGISTRY_ONLY` leaves the mesh's own traffic alone.
/// Only traffic the registry does not know is concerned: a registered service is decided as
/// always, wherever it is.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MeshScope {
    /// DNS suffixes of the mesh's services (`svc.cluster.local`): under Istio, a request its
    /// routes send to the cluster of a service under one of them (`outbound|PORT||HOST`) is
    /// in the mesh.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    /// Addresses and CIDRs of the mesh (service and pod ranges): a connection to one, or a
    /// request Istio passes through to one, is in the mesh.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}

impl MeshScope {
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty() && self.addresses.is_empty()
    }
}

/// A workspace: the namespaces whose workloads are in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Workspace {
    pub name: String,
    /// Namespace patterns (`*` any characters, `?` one); a caller is in the first workspace
    /// one of whose patterns matches its namespace, else in `default`.
    pub namespaces: Vec<String>,
}

impl Default for BundleSpec {
    fn default() -> Self {
        Self {
            outbound_mode: OutboundMode::default(),
            failure_mode: FailureMode::default(),
            trust_domain: default_trust_domain(),
            proxy: ProxyHints::default(),
            services: Vec::new(),
            access_policies: Vec::new(),
            workspaces: Vec::new(),
            mesh: MeshScope::default(),
        }
    }
}

fn default_trust_domain() -> String {
    DEFAULT_TRUST_DOMAIN.to_owned()
}

/// What happens to destinations that no ExternalService registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum OutboundMode {
    /// Unknown destinations pass (reason `passthrough`), as Istio's default.
    #[default]
    AllowAny,
    /// Unknown destinations are denied (reason `not_in_registry`), by host and by IP.
    RegistryOnly,
}

/// What the filter does when its configuration is missing or invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum FailureMode {
    /// Deny everything until a valid configuration arrives.
    #[default]
    FailClose,
    /// Let traffic pass unchecked until a valid configuration arrives.
    FailOpen,
}

/// Which proxy a bundle (or a filter instance) acts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Role {
    /// A workload's own sidecar: identity is the workload's, the gateway is a next hop.
    #[default]
    Sidecar,
    /// The egress gateway: identity comes from the caller's mTLS certificate.
    Gateway,
}

/// Facts about the proxy the bundle is for. The filter's own configuration can override them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ProxyHints {
    #[serde(default)]
    pub role: Role,
    /// The SPIFFE identity of the workload this sidecar serves, when not taken from the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_identity: Option<String>,
    /// The proxy's locality, when not taken from the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<Locality>,
}

impl Bundle {
    /// A bundle with the given spec and no metadata.
    pub fn new(spec: BundleSpec) -> Self {
        Self {
            api_version: ApiVersion::V1Alpha1,
            kind: BundleKind::Bundle,
            metadata: BundleMetadata::default(),
            spec,
        }
    }

    /// Parses a bundle from JSON. Errors name the JSON path and, where the path is inside a
    /// service or policy, the resource that entry came from (with the `field-paths` feature;
    /// without it, the line and column).
    pub fn from_json(bytes: &[u8]) -> Result<Self, BundleError> {
        #[cfg(feature = "field-paths")]
        {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            match serde_path_to_error::deserialize::<_, Bundle>(&mut de) {
                Ok(bundle) => {
                    de.end().map_err(|e| BundleError::Parse {
                        path: String::new(),
                        entry: None,
                        message: e.to_string(),
                    })?;
                    Ok(bundle)
                }
                Err(err) => {
                    let path = err.path().to_string();
                    let entry = crate::error::entry_at(bytes, &path);
                    Err(BundleError::Parse {
                        path,
                        entry,
                        message: err.into_inner().to_string(),
                    })
                }
            }
        }
        #[cfg(not(feature = "field-paths"))]
        {
            serde_json::from_slice(bytes).map_err(|e| BundleError::Parse {
                path: String::new(),
                entry: None,
                message: e.to_string(),
            })
        }
    }

    /// The bundle as pretty JSON, the form `bundle-builder` writes.
    pub fn to_json_pretty(&self) -> Result<String, BundleError> {
        serde_json::to_string_pretty(self).map_err(BundleError::Serialize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty spec and `BundleSpec::default()` are the same settings.
    #[test]
    fn default_spec_matches_an_empty_spec() {
        let parsed =
            Bundle::from_json(br#"{"apiVersion":"warden.dev/v1alpha1","kind":"Bundle","spec":{}}"#)
                .unwrap();
        assert_eq!(parsed.spec, BundleSpec::default());
        assert_eq!(parsed.spec.trust_domain, DEFAULT_TRUST_DOMAIN);
    }
}
