//! The contract between the renderers (`render envoy`, `render istio`) and the filter: the
//! names both sides must spell alike. One place, so they cannot drift apart.

/// The request header that picks a cluster (a route's `cluster_header`): the egress gateway,
/// or a TLS-originating cluster. Envoy removes it from every request before any filter runs
/// (early header mutation), so only the filter can set it.
pub const CLUSTER_HEADER: &str = "x-warden-cluster";

/// The HTTP listener's cluster: a dynamic forward proxy connecting to the authority, or to
/// the target the filter sets (`envoy.upstream.dynamic_host` / `dynamic_port`).
pub const DFP_CLUSTER: &str = "warden_dynamic_forward_proxy";

/// A TCP listener's cluster connecting to a host name the filter sets (a connection allowed
/// on its server name goes to that name; a host-name endpoint).
pub const TCP_BY_NAME_CLUSTER: &str = "warden_tcp_by_name";

/// A TCP listener's cluster connecting to the address the filter sets
/// (`envoy.network.transport_socket.original_dst_address`), else to the connection's
/// original destination.
pub const ORIGINAL_DST_CLUSTER: &str = "warden_original_dst";

/// A sidecar's cluster to the egress gateway's HTTPS listener.
pub const GATEWAY_CLUSTER: &str = "warden_egress_gateway";

/// A sidecar's cluster to the egress gateway's TLS passthrough listener.
pub const GATEWAY_TCP_CLUSTER: &str = "warden_egress_gateway_tcp";

/// Istio's cluster for traffic its routes pass through to the original destination.
pub const ISTIO_PASSTHROUGH_CLUSTER: &str = "PassthroughCluster";

/// The plugin configuration's one key when it carries the compiled policy:
/// `{"compiledPolicy": "<base64 of the compiled form>"}` (docs/loading.md).
pub const COMPILED_POLICY: &str = "compiledPolicy";

/// Root ids: which of its filters a plugin instance is.
pub mod root_id {
    /// The HTTP filter.
    pub const HTTP: &str = "warden.http";
    /// The network filter of a TCP listener that goes where the client dialled.
    pub const NETWORK: &str = "warden.network";
    /// The network filter of a TCP listener that stands for an internal hostname.
    pub const NETWORK_ENDPOINTS: &str = "warden.network.endpoints";
    /// The network filter of the egress gateway's TLS passthrough listener.
    pub const NETWORK_GATEWAY: &str = "warden.network.gateway";
}

/// The proxy's settings: keys of the bootstrap's `node.metadata` (`render envoy`), or of the
/// VM's environment (`render istio`: a `WasmPlugin`'s `vmConfig.env`, since Istio owns the node
/// metadata). The filter reads the metadata first, then the environment.
pub mod setting {
    /// `sidecar` or `gateway`.
    pub const ROLE: &str = "WARDEN_ROLE";
    /// `warden` (the filter steers allowed traffic) or `mesh` (Istio's routes do).
    pub const ROUTING: &str = "WARDEN_ROUTING";
    /// `true`: an explicit local proxy, whose `destination.address` is its own listener.
    pub const LOCAL_PROXY: &str = "WARDEN_LOCAL_PROXY";
    /// A sidecar's cluster to the egress gateway's HTTPS listener.
    pub const GATEWAY_CLUSTER: &str = "WARDEN_GATEWAY_CLUSTER";
    /// A sidecar's cluster to the egress gateway's TLS passthrough listener.
    pub const GATEWAY_TCP_CLUSTER: &str = "WARDEN_GATEWAY_TCP_CLUSTER";
    /// The workload's SPIFFE ID (a sidecar outside Istio).
    pub const WORKLOAD_IDENTITY: &str = "WARDEN_WORKLOAD_IDENTITY";
    /// `true`: count every verdict for its service too (one counter per service and outcome).
    pub const SERVICE_METRICS: &str = "WARDEN_SERVICE_METRICS";
    /// The hex ed25519 public key bundles must be signed with, in the VM's environment
    /// (Istio's `vmConfig.env`), where no VM configuration exists.
    pub const PUBLIC_KEY: &str = "WARDEN_PUBLIC_KEY";
}

/// The per-service counters' names end in `.<namespace>.<name>`; this Envoy stats tag
/// (`stats_config.stats_tags`) turns that suffix into a `warden_service` label, `<ns>.<name>`.
pub mod service_tag {
    /// The label.
    pub const NAME: &str = "warden_service";
    /// The first group is cut from the name, the second is the label's value.
    pub const REGEX: &str = r"^wasmcustom\.warden_(?:http|tcp)_service_[a-z_]+(\.(.+))$";
}
