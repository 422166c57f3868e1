//! Access policies: which clients may reach which external services.

use serde::{Deserialize, Serialize};

use crate::provenance::Provenance;

/// Who may reach a set of external services, from an `AccessPolicy` manifest.
///
/// A service (port) that any policy targets denies every request that no rule of those
/// policies allows. A policy in dry-run mode decides and reports, but does not deny.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AccessPolicy {
    pub source: Provenance,
    pub targets: Vec<PolicyTarget>,
    /// Rules are OR'ed; the conditions inside one rule are AND'ed.
    pub rules: Vec<AccessRule>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// A service (and optionally one of its ports) a policy applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PolicyTarget {
    pub service: ServiceRef,
    /// The port number; absent means every port of the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// An external service by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ServiceRef {
    pub namespace: String,
    pub name: String,
}

/// One allow rule. An empty list places no condition.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AccessRule {
    /// SPIFFE IDs; a path segment `*` matches any one segment
    /// (`spiffe://cluster.local/ns/pay/sa/*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<String>,
    /// Source addresses or CIDRs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_blocks: Vec<String>,
    /// HTTP methods, matched case-insensitively.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Paths: exact, `prefix*` or `*suffix`; the query string is not part of the path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}
