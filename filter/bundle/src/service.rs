//! External services, their ports and the endpoints behind them.

use serde::{Deserialize, Serialize};

use crate::provenance::Provenance;

/// A destination outside the mesh, from an `ExternalService` manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ExternalService {
    pub source: Provenance,
    /// Exact names (`api.example.com`) or wildcard prefixes (`*.example.com`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// IPv4/IPv6 addresses or CIDRs. A single address may omit the prefix length.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    pub ports: Vec<ServicePort>,
    /// Addresses that stand for the service's hosts (IPs, no prefix): given by the builder to
    /// a service known only by name with TCP ports, so that a plain connection, which
    /// carries no name, can still be matched to it. A connection to one is decided for this
    /// service and goes to its endpoint, else to its first exact host, never to the virtual
    /// address itself. At most one per IP family is usual; none is shared between services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_addresses: Vec<String>,
    /// The endpoints this service stands for. When present, the service's hosts and addresses
    /// are internal names: traffic to them is rewritten to one of these endpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<Endpoint>,
    /// Names the endpoint's certificate must carry when TLS is originated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
    /// When endpoints are ejected for failing (absent: the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    /// The workspaces whose callers see this service (its own, and those it is shared with),
    /// when the bundle has `workspaces`. Empty: every caller.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workspaces: Vec<String>,
    /// Where a proxy in one locality fails over to, in order (Gloo's `FailoverPolicy`).
    /// Absent: failover follows proximity (zone, region, anywhere).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover: Vec<LocalityMapping>,
}

impl ExternalService {
    /// The hosts that are one name each (not `*.` wildcards).
    pub fn exact_hosts(&self) -> impl Iterator<Item = &str> {
        self.hosts
            .iter()
            .map(String::as_str)
            .filter(|h| !h.starts_with("*."))
    }
}

/// For proxies in `from` (a region, optionally narrowed to a zone and sub-zone): after their
/// own zone, endpoints in `to[0]`, then `to[1]`, ..., then the rest by proximity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LocalityMapping {
    pub from: Locality,
    pub to: Vec<Locality>,
}

/// Passive outlier detection for a service's endpoints (Gloo's `OutlierDetectionPolicy`).
/// Absent fields take the defaults: 5 consecutive errors, no separate gateway-error
/// threshold, 30 s base ejection time, up to 100% of endpoints ejected.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OutlierDetection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_errors: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_gateway_errors: Option<u32>,
    /// Ejection time for the first ejection, in milliseconds; it grows with each ejection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ejection_millis: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ejection_percent: Option<u32>,
}

/// Application protocols a port can declare (Gloo's `ExternalService` port protocols).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Protocol {
    Http,
    Https,
    Http2,
    Grpc,
    Tcp,
    Tls,
    Mongo,
}

impl Protocol {
    /// Whether the filter sees HTTP requests on this port (rather than a byte stream).
    pub fn is_http(self) -> bool {
        matches!(self, Self::Http | Self::Http2 | Self::Grpc)
    }
}

/// One port of an external service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ServicePort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub number: u16,
    pub protocol: Protocol,
    /// The endpoint port traffic is sent to; defaults to `number`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<TargetPort>,
    /// TLS originated by the proxy towards the endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOrigination>,
    /// Traffic to this port must leave through an egress gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_gateway: Option<GatewayRoute>,
}

/// An endpoint port, by number or by the name an `ExternalEndpoint` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum TargetPort {
    Number(u16),
    Name(String),
}

/// How the proxy originates TLS to the endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TlsOrigination {
    pub mode: TlsMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// Path of a PEM CA bundle the proxy trusts for this endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificates: Option<String>,
    /// Path of the PEM client certificate for `MUTUAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    /// Path of the PEM private key for `MUTUAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// A Kubernetes secret with the certificates (Gloo's and Istio's `credentialName`): read by
    /// Istio (`render istio`); a local Envoy needs the files above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_name: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure_skip_verify: bool,
}

impl TlsOrigination {
    /// Whether the proxy originates TLS: every mode but `DISABLE`.
    pub fn originates(&self) -> bool {
        self.mode != TlsMode::Disable
    }
}

/// The Envoy cluster through which an egress gateway originates TLS for one port of a
/// service: `render envoy --role gateway` creates it and the filter routes requests to it,
/// so both derive the name here.
pub fn origination_cluster(namespace: &str, name: &str, port: u16) -> String {
    format!("warden_tls|{namespace}|{name}|{port}")
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// TLS origination modes (as Gloo's `clientsideTls.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum TlsMode {
    Disable,
    Simple,
    Mutual,
    IstioMutual,
}

/// Egress gateways a port's traffic must go through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GatewayRoute {
    pub gateways: Vec<GatewayRef>,
    /// The port workloads send to (Gloo's `portMatch`), when it is not the service port: a
    /// request to the host on this port is this port's, goes through the gateway, and the
    /// gateway reaches the service port (originating TLS when the port says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub port_match: Option<u16>,
}

/// A gateway, by the name of its `VirtualGateway`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GatewayRef {
    pub namespace: String,
    pub name: String,
}

/// One concrete instance behind an external service, from an `ExternalEndpoint` manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Endpoint {
    pub source: Provenance,
    /// An IP address or a fully-qualified host name (no port, no wildcard).
    pub address: String,
    pub ports: Vec<EndpointPort>,
    #[serde(default)]
    pub locality: Locality,
    /// Relative weight among endpoints of the same locality rank.
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

/// A port of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EndpointPort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub number: u16,
}

/// Where an endpoint or a proxy runs. Empty fields are unknown.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Locality {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub zone: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub_zone: String,
}

impl Locality {
    /// Whether `other` lies within this locality: same region, and the same zone and
    /// sub-zone where this one names them.
    pub fn contains(&self, other: &Locality) -> bool {
        let within = |mine: &str, theirs: &str| mine.is_empty() || mine == theirs;
        !self.region.is_empty()
            && self.region == other.region
            && within(&self.zone, &other.zone)
            && within(&self.sub_zone, &other.sub_zone)
    }

    /// Parses `REGION[/ZONE[/SUBZONE]]`.
    pub fn parse(text: &str) -> Self {
        let mut parts = text.splitn(3, '/');
        let mut next = || parts.next().unwrap_or_default().to_owned();
        Self {
            region: next(),
            zone: next(),
            sub_zone: next(),
        }
    }
}

impl std::fmt::Display for Locality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.region)?;
        for part in [&self.zone, &self.sub_zone] {
            if !part.is_empty() {
                write!(f, "/{part}")?;
            }
        }
        Ok(())
    }
}
