//! The resources Warden reads, in the shapes users already write (Gloo Mesh v2, plus Warden's
//! own `EgressSettings`). `spec` refuses unknown fields; `metadata` accepts what Kubernetes
//! adds (uid, resourceVersion, managedFields, ...). Fields Warden accepts but does not enforce
//! are kept as raw values so that the builder can warn about them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// Kubernetes object metadata: what Warden uses of it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Read: `warden.dev/virtual-addresses` on an ExternalService.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339; orders resources for the overlap rule (earlier wins).
    #[serde(default)]
    pub creation_timestamp: Option<String>,
}

/// A whole manifest of one kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest<Spec> {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: Spec,
    /// Written by controllers; ignored.
    #[serde(default)]
    pub status: Option<Value>,
}

// ---- networking.gloo.solo.io/v2 ----------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalServiceSpec {
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub ports: Vec<ExternalServicePort>,
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    #[serde(default)]
    pub subject_alt_names: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalServicePort {
    #[serde(default)]
    pub name: Option<String>,
    pub number: u32,
    pub protocol: String,
    #[serde(default)]
    pub target_port: Option<TargetPortSpec>,
    #[serde(default)]
    pub clientside_tls: Option<ClientsideTls>,
    #[serde(default)]
    pub egress_gateway_routes: Option<EgressGatewayRoutes>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetPortSpec {
    #[serde(default)]
    pub number: Option<u32>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientsideTls {
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub sni: Option<String>,
    #[serde(default)]
    pub ca_certificates: Option<String>,
    #[serde(default)]
    pub client_certificate: Option<String>,
    #[serde(default)]
    pub private_key: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// A Kubernetes secret name: kept for Istio (`render istio`); a local Envoy needs files.
    #[serde(default)]
    pub credential_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressGatewayRoutes {
    #[serde(default)]
    pub port_match: Option<u32>,
    #[serde(default)]
    pub virtual_gateway_refs: Vec<ObjectRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectRef {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub cluster: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalEndpointSpec {
    pub address: String,
    #[serde(default)]
    pub ports: Vec<EndpointPortSpec>,
    #[serde(default)]
    pub locality: Option<LocalitySpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointPortSpec {
    #[serde(default)]
    pub name: Option<String>,
    pub number: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalitySpec {
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub zone: String,
    #[serde(default)]
    pub sub_zone: String,
}

// ---- security.policy.gloo.solo.io/v2 -----------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessPolicySpec {
    #[serde(default)]
    pub apply_to_destinations: Vec<DestinationSelector>,
    /// Workload-side selection; Warden enforces at the destination (warning).
    #[serde(default)]
    pub apply_to_workloads: Option<Value>,
    #[serde(default)]
    pub config: AccessPolicyConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationSelector {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub selector: ObjectSelector,
    #[serde(default)]
    pub port: Option<PortSelector>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectSelector {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub workspace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortSelector {
    #[serde(default)]
    pub number: Option<u32>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessPolicyConfig {
    /// The single-entry form: one more entry, beside `authzList`.
    #[serde(default)]
    pub authz: Option<AuthzEntry>,
    #[serde(default)]
    pub authz_list: Vec<AuthzEntry>,
    #[serde(default)]
    pub dry_run: bool,
    /// Peer authentication settings; the mesh's concern, not Warden's (warning).
    #[serde(default)]
    pub authn: Option<Value>,
    /// Where Gloo enforces (mesh and/or cloud); Warden enforces in the filter (note).
    #[serde(default)]
    pub enforcement_layers: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthzEntry {
    #[serde(default)]
    pub allowed_clients: Vec<AllowedClient>,
    #[serde(default)]
    pub allowed_ip_blocks: Vec<String>,
    #[serde(default)]
    pub allowed_methods: Vec<String>,
    #[serde(default)]
    pub allowed_paths: Vec<String>,
    /// Header matching: not enforced yet (warning).
    #[serde(default, rename = "match")]
    pub match_: Option<Value>,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllowedClient {
    #[serde(default)]
    pub service_account_selector: Option<ServiceAccountSelector>,
    /// JWT / request identity matching: not enforced yet (warning).
    #[serde(default)]
    pub request_identity_matcher: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceAccountSelector {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub cluster: Option<String>,
    /// Service-account labels cannot be seen in a SPIFFE ID (error if set).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

// ---- resilience.policy.gloo.solo.io/v2 ---------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutlierDetectionPolicySpec {
    #[serde(default)]
    pub apply_to_destinations: Vec<DestinationSelector>,
    #[serde(default)]
    pub config: OutlierDetectionConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutlierDetectionConfig {
    #[serde(default)]
    pub consecutive_errors: Option<u32>,
    #[serde(default)]
    pub consecutive_gateway_errors: Option<u32>,
    /// Active-sweep interval: passive detection counts consecutive errors (warning).
    #[serde(default)]
    pub interval: Option<String>,
    /// A duration such as `30s` or `500ms`.
    #[serde(default)]
    pub base_ejection_time: Option<String>,
    #[serde(default)]
    pub max_ejection_percent: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailoverPolicySpec {
    #[serde(default)]
    pub apply_to_destinations: Vec<DestinationSelector>,
    #[serde(default)]
    pub config: FailoverConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailoverConfig {
    #[serde(default)]
    pub locality_mappings: Vec<LocalityMappingSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalityMappingSpec {
    pub from: LocalitySpec,
    #[serde(default)]
    pub to: Vec<FailoverTarget>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailoverTarget {
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub zone: String,
    #[serde(default)]
    pub sub_zone: String,
    /// Weights between targets are not applied yet: targets are tried in order (warning).
    #[serde(default)]
    pub weight: Option<u32>,
}

// ---- admin.gloo.solo.io/v2 ---------------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkspaceSpec {
    #[serde(default)]
    pub workload_clusters: Vec<WorkloadCluster>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadCluster {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub selector: Option<Value>,
    #[serde(default)]
    pub namespaces: Vec<NamespaceMatch>,
    #[serde(default)]
    pub config_enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceMatch {
    pub name: String,
    #[serde(default)]
    pub labels: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkspaceSettingsSpec {
    #[serde(default)]
    pub export_to: Vec<ShareRule>,
    #[serde(default)]
    pub import_from: Vec<ShareRule>,
    /// Gloo's other workspace options (federation, service isolation, ...): ignored.
    #[serde(default)]
    pub options: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShareRule {
    #[serde(default)]
    pub workspaces: Vec<WorkspaceRef>,
    #[serde(default)]
    pub resources: Vec<ResourceRule>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkspaceRef {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceRule {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

// ---- warden.dev/v1alpha1 -----------------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressSettingsSpec {
    #[serde(default)]
    pub outbound_traffic_policy: Option<OutboundTrafficPolicy>,
    #[serde(default)]
    pub failure_mode: Option<String>,
    #[serde(default)]
    pub trust_domain: Option<String>,
    /// Where virtual addresses for services known only by name come from: at most one IPv4
    /// and one IPv6 CIDR (default `241.0.0.0/8`).
    #[serde(default)]
    pub virtual_address_ranges: Option<Vec<String>>,
    /// What is inside the mesh (Warden's own): its traffic is the mesh's business, never
    /// `not_in_registry`. Default: `domains: [svc.cluster.local]`, no addresses.
    #[serde(default)]
    pub mesh: Option<MeshSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeshSpec {
    /// DNS suffixes of the mesh's services; `[]` turns the rule off.
    #[serde(default)]
    pub domains: Option<Vec<String>>,
    /// Service and pod CIDRs of the mesh.
    #[serde(default)]
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutboundTrafficPolicy {
    pub mode: String,
}
