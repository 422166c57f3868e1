//! Where an entry of the bundle came from.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kinds of resource a bundle entry can come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum ResourceKind {
    ExternalService,
    ExternalEndpoint,
    AccessPolicy,
    EgressSettings,
    FailoverPolicy,
    OutlierDetectionPolicy,
}

impl ResourceKind {
    /// The Kubernetes kind name, as users write it in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExternalService => "ExternalService",
            Self::ExternalEndpoint => "ExternalEndpoint",
            Self::AccessPolicy => "AccessPolicy",
            Self::EgressSettings => "EgressSettings",
            Self::FailoverPolicy => "FailoverPolicy",
            Self::OutlierDetectionPolicy => "OutlierDetectionPolicy",
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The manifest resource a bundle entry was built from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Provenance {
    pub kind: ResourceKind,
    pub namespace: String,
    pub name: String,
}

impl Provenance {
    pub fn new(kind: ResourceKind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for Provenance {
    /// `ExternalService pay/orders-db`: the form every diagnostic uses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}
