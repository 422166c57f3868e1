//! `render envoy`: a complete Envoy bootstrap that runs the Warden filter locally.
//!
//! The sidecar bootstrap has an HTTP listener (Warden's HTTP filter, then the dynamic forward
//! proxy filter and the router, to one `dynamic_forward_proxy` cluster that connects to the
//! request's authority, or to the canonical target the filter sets in filter state), and one
//! TCP listener per `--tcp LISTEN=UPSTREAM` (TLS inspector, Warden's network filter, then
//! `tcp_proxy` to UPSTREAM). The admin interface listens on loopback. The bundle's compiled
//! form is the plugin configuration (`{"compiledPolicy": ...}`, docs/loading.md).
//!
//! The gateway bootstrap (`--role gateway`) has one HTTPS listener that requires a client
//! certificate from the mesh CA, the same filter chain (the filter reads the caller's SPIFFE
//! ID from the certificate), and a cluster per service port that originates TLS. A sidecar
//! rendered with a gateway sends gateway-routed ports to it over mutual TLS.
//!
//! Rendered for a local proxy: clients talk to Envoy's listeners directly, there is no traffic
//! capture, so node metadata tells the filter `WARDEN_LOCAL_PROXY=true` and TCP listeners
//! stand for the address a client dials (the filter decides on the listener's address).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use warden_bundle::wire::{
    root_id, service_tag, setting, CLUSTER_HEADER, DFP_CLUSTER, GATEWAY_CLUSTER,
    GATEWAY_TCP_CLUSTER, ORIGINAL_DST_CLUSTER, TCP_BY_NAME_CLUSTER,
};
use warden_bundle::{Bundle, FailureMode, Locality, Protocol, Role};

use super::tls::{self, MeshTls, OriginationError};

/// Everything `render envoy` needs.
#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    /// The bundle JSON; the filter is given its compiled form
    /// ([`super::plugin_configuration::for_bundle_json`]).
    pub bundle_json: String,
    /// Absolute path of `warden.wasm`.
    pub wasm: PathBuf,
    /// The HTTP listener.
    pub listen: SocketAddr,
    /// The admin interface.
    pub admin: SocketAddr,
    /// TCP listeners: where clients connect, and where Envoy forwards allowed connections.
    pub tcp: Vec<TcpForward>,
    /// The workload's SPIFFE ID.
    pub identity: Option<String>,
    pub locality: Option<Locality>,
    /// Deliver the HTTP filter's configuration through this file-based ECDS discovery file
    /// (live reload) instead of inline.
    pub ecds: Option<PathBuf>,
    /// Hex ed25519 public key: the filter then accepts only bundles signed with its key.
    pub public_key: Option<String>,
    /// Sidecar or egress gateway.
    pub role: Role,
    /// The bundle's trust domain: the gateway accepts SPIFFE IDs in it only.
    pub trust_domain: String,
    /// The proxy's mesh certificate: a sidecar's towards the gateway, the gateway's own.
    pub mesh_tls: Option<MeshTls>,
    /// For a sidecar: the egress gateway gateway-routed ports go to.
    pub gateway: Option<GatewayHop>,
    /// How traffic reaches the sidecar: `None` as an explicit local proxy; with capture, the
    /// listeners learn each connection's original destination.
    pub capture: Option<Capture>,
    /// Count verdicts per service too (`WARDEN_SERVICE_METRICS`), with a `warden_service`
    /// stats tag.
    pub service_metrics: bool,
    /// Listen on every virtual address and TCP port of the bundle (no capture).
    pub virtual_listeners: bool,
    /// A DNS listener (UDP) answering the registry's names with their virtual addresses.
    pub dns: Option<SocketAddr>,
    /// Resolvers for the proxy's DNS cache and the DNS listener's forwarding (empty: the
    /// system's).
    pub resolvers: Vec<SocketAddr>,
}

/// How a sidecar learns where captured traffic was going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// iptables `REDIRECT` / `TPROXY`: the `original_dst` listener filter reads it from the
    /// socket, as Istio's sidecars do.
    OriginalDst,
    /// A PROXY protocol header before the client's bytes carries it: capture simulated on
    /// loopback, for tests and demos without iptables.
    ProxyProtocol,
}

impl std::str::FromStr for Capture {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "original-dst" => Ok(Self::OriginalDst),
            "proxy-protocol" => Ok(Self::ProxyProtocol),
            other => Err(format!(
                "{other:?} is not a capture mode: write original-dst (iptables, as Istio) or \
                 proxy-protocol (capture simulated with a PROXY header)"
            )),
        }
    }
}

/// The listener filter that restores a captured connection's original destination.
fn capture_filter(capture: Capture) -> Value {
    match capture {
        Capture::OriginalDst => json!({
            "name": "envoy.filters.listener.original_dst",
            "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst" }
        }),
        Capture::ProxyProtocol => json!({
            "name": "envoy.filters.listener.proxy_protocol",
            "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol" }
        }),
    }
}

fn tls_inspector() -> Value {
    json!({
        "name": "envoy.filters.listener.tls_inspector",
        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector" }
    })
}

/// Request headers Envoy removes before any filter or route sees them: the cluster header
/// (only the filter may pick a cluster, even when the filter fails or is bypassed) and the
/// header an `ORIGINAL_DST` cluster could be steered by.
fn early_header_mutation() -> Value {
    json!([{
        "name": "envoy.http.early_header_mutation.header_mutation",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation",
            "mutations": [
                { "remove": CLUSTER_HEADER },
                { "remove": "x-envoy-original-dst-host" }
            ]
        }
    }])
}

/// Where a sidecar's egress gateway listens, and the SPIFFE ID its certificate must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayHop {
    pub address: SocketAddr,
    pub identity: String,
    /// The gateway's TLS passthrough listener (`render envoy --role gateway --tcp LISTEN`).
    pub tcp_address: Option<SocketAddr>,
}

/// Why a bootstrap cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("{0}")]
    Origination(#[from] OriginationError),
    #[error("{0}")]
    Options(&'static str),
    #[error("the bundle cannot be shipped compiled: {0}")]
    Compiled(String),
}

/// One TCP listener of a local sidecar: clients connect to `listen` (the address they mean
/// to reach). With an `upstream`, Envoy forwards allowed connections there; without one, the
/// address stands for an internal hostname and the filter chooses the endpoint
/// (`ORIGINAL_DST`); a connection for which it chooses none is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpForward {
    pub listen: SocketAddr,
    pub upstream: Option<SocketAddr>,
}

impl std::str::FromStr for TcpForward {
    type Err = String;

    /// `LISTEN=UPSTREAM` or `LISTEN`, each `IP:PORT`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parse = |s: &str| {
            s.parse::<SocketAddr>().map_err(|_| {
                format!(
                    "{s:?} is not an IP:PORT address (write LISTEN=UPSTREAM, as \
                     127.0.0.50:5432=127.0.0.21:5432, or LISTEN alone for an internal hostname)"
                )
            })
        };
        match text.split_once('=') {
            Some((listen, upstream)) => Ok(Self {
                listen: parse(listen)?,
                upstream: Some(parse(upstream)?),
            }),
            None => Ok(Self {
                listen: parse(text)?,
                upstream: None,
            }),
        }
    }
}

fn socket_address(addr: SocketAddr) -> Value {
    json!({ "socket_address": { "address": addr.ip().to_string(), "port_value": addr.port() } })
}

/// The type of the HTTP wasm filter's configuration.
pub const HTTP_WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
/// The name of the HTTP filter's configuration in the ECDS discovery file.
pub const ECDS_RESOURCE: &str = "warden";

/// The Wasm plugin configuration running `wasm` with `bundle_json`'s compiled form as its
/// configuration.
pub fn plugin_config(
    bundle_json: &str,
    wasm: &Path,
    root_id: &str,
    public_key: Option<&str>,
    role: Role,
) -> Value {
    let mut vm_config = json!({
        "vm_id": "warden",
        "runtime": "envoy.wasm.runtime.v8",
        "code": { "local": { "filename": wasm.display().to_string() } }
    });
    if let (Some(key), Some(fields)) = (public_key, vm_config.as_object_mut()) {
        fields.insert(
            "configuration".into(),
            json!({
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": json!({ "publicKey": key }).to_string()
            }),
        );
    }
    json!({
        "name": "warden",
        "root_id": root_id,
        "vm_config": vm_config,
        "configuration": {
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": super::plugin_configuration::for_bundle_json(bundle_json)
        },
        "failure_policy": failure_policy(bundle_json, role)
    })
}

/// Envoy's `failure_policy` for the bundle's `failureMode`, for a VM that fails while serving:
/// `FAIL_CLOSE` fails the request that found the VM failed and starts a new VM for the next
/// (`FAIL_RELOAD`); `FAIL_OPEN` lets traffic through unfiltered from then on. A bundle the
/// filter refuses is another matter: Envoy refuses that configuration whatever the mode
/// (docs/bundle.md). The egress gateway never fails open (it would forward anything to anyone
/// holding a mesh certificate): `role` `Gateway`, or a bundle built for the gateway, is always
/// `FAIL_RELOAD`. A bundle that does not parse renders as `FAIL_CLOSE`.
pub fn failure_policy(bundle_json: &str, role: Role) -> &'static str {
    let bundle = Bundle::from_json(bundle_json.as_bytes());
    let gateway = role == Role::Gateway
        || bundle
            .as_ref()
            .is_ok_and(|b| b.spec.proxy.role == Role::Gateway);
    match bundle.map(|b| b.spec.failure_mode) {
        Ok(FailureMode::FailOpen) if !gateway => "FAIL_OPEN",
        _ => "FAIL_RELOAD",
    }
}

fn plugin(options: &EnvoyOptions, root_id: &str) -> Value {
    plugin_config(
        &options.bundle_json,
        &options.wasm,
        root_id,
        options.public_key.as_deref(),
        options.role,
    )
}

/// A file-based ECDS `DiscoveryResponse` carrying the HTTP filter's configuration. Write it
/// atomically (temporary file, then rename): Envoy applies it when the rename lands, and
/// keeps the previous configuration if the filter refuses this one.
fn ecds_response(bundle_json: &str, wasm: &Path, version: &str, public_key: Option<&str>) -> Value {
    json!({
        "version_info": version,
        "resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": ECDS_RESOURCE,
            "typed_config": {
                "@type": HTTP_WASM_TYPE,
                // A local sidecar's HTTP filter (a gateway's bundle still never fails open).
                "config": plugin_config(bundle_json, wasm, root_id::HTTP, public_key, Role::Sidecar)
            }
        }]
    })
}

/// Writes the ECDS discovery file for `bundle_json` atomically (what `render --ecds`,
/// `build --ecds` and `watch` all do).
pub fn write_ecds_file(
    path: &Path,
    bundle_json: &str,
    wasm: &Path,
    version: &str,
    public_key: Option<&str>,
) -> std::io::Result<()> {
    if let Ok(bundle) = Bundle::from_json(bundle_json.as_bytes()) {
        super::plugin_configuration::check(&bundle).map_err(std::io::Error::other)?;
    }
    let response = ecds_response(bundle_json, wasm, version, public_key);
    crate::files::write_atomically(path, &format!("{response:#}\n"))
}

/// The HTTP filter entry: inline, or discovered from the ECDS file.
fn http_filter(options: &EnvoyOptions) -> Value {
    match &options.ecds {
        Some(path) => json!({
            "name": ECDS_RESOURCE,
            "config_discovery": {
                "config_source": {
                    "path_config_source": { "path": path.display().to_string() },
                    "resource_api_version": "V3"
                },
                "type_urls": [HTTP_WASM_TYPE]
            }
        }),
        None => json!({
            "name": "warden",
            "typed_config": { "@type": HTTP_WASM_TYPE, "config": plugin(options, root_id::HTTP) }
        }),
    }
}

/// The proxy's DNS cache (every dynamic forward proxy shares it): the system's resolvers, or
/// `resolvers`.
fn dns_cache(resolvers: &[SocketAddr]) -> Value {
    let mut cache = json!({ "name": "warden_dns", "dns_lookup_family": "V4_PREFERRED" });
    if let (Some(fields), Some(config)) = (cache.as_object_mut(), resolver_config(resolvers)) {
        fields.insert("typed_dns_resolver_config".into(), config);
    }
    cache
}

/// c-ares with these resolvers; `None` for the system's (`/etc/resolv.conf`).
fn resolver_config(resolvers: &[SocketAddr]) -> Option<Value> {
    if resolvers.is_empty() {
        return None;
    }
    let resolvers: Vec<Value> = resolvers.iter().map(|r| socket_address(*r)).collect();
    Some(json!({
        "name": "envoy.network.dns_resolver.cares",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig",
            "resolvers": resolvers,
            "dns_resolver_options": { "no_default_search_domain": true }
        }
    }))
}

/// The DNS listener (`--dns`): Envoy's UDP DNS filter answers each exact host of a service
/// that has virtual addresses with them, and forwards every other name to the resolvers
/// (`--resolver`, else the system's).
fn dns_listener(listen: SocketAddr, bundle: &Bundle, resolvers: &[SocketAddr]) -> Value {
    let domains: Vec<Value> = bundle
        .spec
        .services
        .iter()
        .filter(|s| !s.virtual_addresses.is_empty())
        .flat_map(|s| {
            s.exact_hosts().map(move |host| {
                json!({
                    "name": host,
                    "endpoint": { "address_list": { "address": s.virtual_addresses } }
                })
            })
        })
        .collect();
    let mut client = json!({ "resolver_timeout": "5s", "max_pending_lookups": 256 });
    if let (Some(fields), Some(config)) = (client.as_object_mut(), resolver_config(resolvers)) {
        fields.insert("typed_dns_resolver_config".into(), config);
    }
    let mut address = socket_address(listen);
    if let Some(inner) = address
        .get_mut("socket_address")
        .and_then(Value::as_object_mut)
    {
        inner.insert("protocol".into(), json!("UDP"));
    }
    json!({
        "name": "warden_dns",
        "address": address,
        "udp_listener_config": {},
        "listener_filters": [{
            "name": "envoy.filters.udp.dns_filter",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.udp.dns_filter.v3.DnsFilterConfig",
                "stat_prefix": "warden_dns",
                "server_config": { "inline_dns_table": { "virtual_domains": domains } },
                "client_config": client
            }
        }]
    })
}

/// A `dynamic_forward_proxy` cluster type on `dns_cache`. `insecure_options` lets the cluster
/// turn off automatic SNI and certificate-name checks (it sets its own).
pub(crate) fn dfp_cluster_type(dns_cache: &Value, insecure_options: bool) -> Value {
    json!({
        "name": "envoy.clusters.dynamic_forward_proxy",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig",
            "dns_cache_config": dns_cache,
            "allow_insecure_cluster_options": insecure_options
        }
    })
}

/// One line per request on Envoy's standard error: what was asked, by whom, what answered,
/// and for a failed upstream TLS handshake, why (`CERTIFICATE_VERIFY_FAILED`, ...).
fn access_log() -> Value {
    json!([{
        "name": "envoy.access_loggers.stderr",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog",
            "log_format": { "text_format_source": { "inline_string":
                "warden-access %REQ(:METHOD)% %REQ(:AUTHORITY)%%REQ(:PATH)% status=%RESPONSE_CODE% flags=%RESPONSE_FLAGS% reason=%RESP(X-WARDEN-REASON)% peer=%DOWNSTREAM_PEER_URI_SAN% sni=%REQUESTED_SERVER_NAME% cluster=%UPSTREAM_CLUSTER% upstream=%UPSTREAM_HOST% tls_failure=%UPSTREAM_TRANSPORT_FAILURE_REASON%\n"
            } }
        }
    }])
}

fn http_listener(options: &EnvoyOptions) -> Value {
    let http_filters = json!([
        http_filter(options),
        {
            "name": "envoy.filters.http.dynamic_forward_proxy",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig",
                "dns_cache_config": dns_cache(&options.resolvers),
                "allow_dynamic_host_from_filter_state": true
            }
        },
        {
            "name": "envoy.filters.http.router",
            "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
        }
    ]);
    let mut listener = json!({
        "name": "warden_http",
        "address": socket_address(options.listen),
        "filter_chains": [{ "filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "warden_http",
                "early_header_mutation_extensions": early_header_mutation(),
                "access_log": access_log(),
                "route_config": {
                    "name": "warden_egress",
                    "virtual_hosts": [{
                        "name": "egress",
                        "domains": ["*"],
                        "routes": [
                            {
                                // Only the filter sets this header (it removes any a client
                                // sent), and only towards clusters this bootstrap defines.
                                "match": { "prefix": "/", "headers": [{ "name": CLUSTER_HEADER, "present_match": true }] },
                                "route": { "cluster_header": CLUSTER_HEADER },
                                "request_headers_to_remove": [CLUSTER_HEADER]
                            },
                            { "match": { "prefix": "/" }, "route": { "cluster": DFP_CLUSTER } }
                        ]
                    }]
                },
                "http_filters": http_filters
            }
        }]}]
    });
    if let (Some(capture), Some(fields)) = (options.capture, listener.as_object_mut()) {
        fields.insert("listener_filters".into(), json!([capture_filter(capture)]));
    }
    if let (Role::Gateway, Some(mesh)) = (options.role, &options.mesh_tls) {
        let socket = tls::gateway_listener(mesh, &options.trust_domain);
        if let Some(chain) = listener
            .pointer_mut("/filter_chains/0")
            .and_then(Value::as_object_mut)
        {
            chain.insert("transport_socket".into(), socket);
        }
        if let Some(filters) = listener
            .pointer_mut("/filter_chains/0/filters")
            .and_then(Value::as_array_mut)
        {
            filters.insert(0, tls::one_spiffe_id(&options.trust_domain));
        }
        if let Some(fields) = listener.as_object_mut() {
            fields.insert("name".into(), json!("warden_gateway"));
            // The TLS inspector records the client's server name, which the filter compares
            // with the request's authority.
            fields.insert("listener_filters".into(), json!([tls_inspector()]));
        }
    }
    listener
}

/// The egress gateway's TLS passthrough listener: mutual TLS with sidecars (their certificate
/// is the caller's identity), the server name saying where the connection goes; `tcp_proxy`
/// dials only after the first data, when the filter has decided.
fn gateway_tcp_listener(
    options: &EnvoyOptions,
    mesh: &MeshTls,
    index: usize,
    listen: SocketAddr,
) -> Value {
    let name = format!("warden_gateway_tcp_{index}");
    json!({
        "name": name,
        "address": socket_address(listen),
        "listener_filters": [tls_inspector()],
        "filter_chains": [{
            "transport_socket": tls::gateway_listener(mesh, &options.trust_domain),
            "filters": [
                tls::one_spiffe_id(&options.trust_domain),
                {
                    "name": "warden",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
                        "config": plugin(options, root_id::NETWORK_GATEWAY)
                    }
                },
                {
                    "name": "envoy.filters.network.tcp_proxy",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                        "stat_prefix": name,
                        "cluster": ORIGINAL_DST_CLUSTER,
                        "upstream_connect_mode": "ON_DOWNSTREAM_DATA",
                        "max_early_data_bytes": 65536,
                        "access_log": access_log()
                    }
                }
            ]
        }]
    })
}

fn tcp_listener(options: &EnvoyOptions, index: usize, forward: &TcpForward) -> Value {
    if let (Role::Gateway, Some(mesh), None) = (options.role, &options.mesh_tls, forward.upstream) {
        return gateway_tcp_listener(options, mesh, index, forward.listen);
    }
    let name = format!("warden_tcp_{index}");
    // A listener with an upstream stands for it; under capture, a listener alone forwards to
    // each connection's original destination; locally, it stands for an internal hostname.
    let (root, cluster) = match (forward.upstream, options.capture) {
        (Some(_), _) => (root_id::NETWORK, name.clone()),
        (None, Some(_)) => (root_id::NETWORK, ORIGINAL_DST_CLUSTER.to_owned()),
        (None, None) => (root_id::NETWORK_ENDPOINTS, ORIGINAL_DST_CLUSTER.to_owned()),
    };
    let mut listener_filters: Vec<Value> =
        options.capture.map(capture_filter).into_iter().collect();
    listener_filters.push(tls_inspector());
    json!({
        "name": name,
        "address": socket_address(forward.listen),
        // The TLS inspector waits for a TLS record header (5 bytes). A server-first protocol
        // (the client sends nothing) would wait for the timeout and be closed: continue
        // without an SNI after a second instead.
        "listener_filters_timeout": "1s",
        "continue_on_listener_filters_timeout": true,
        "listener_filters": listener_filters,
        "filter_chains": [{ "filters": [
            {
                "name": "warden",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
                    "config": plugin(options, root)
                }
            },
            {
                // Holds a connection the filter sends to a name (filter state) until the
                // name is resolved: without it, tcp_proxy fails on a cold DNS cache.
                "name": "envoy.filters.network.sni_dynamic_forward_proxy",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.sni_dynamic_forward_proxy.v3.FilterConfig",
                    "dns_cache_config": dns_cache(&options.resolvers),
                    "port_value": 443
                }
            },
            {
                "name": "envoy.filters.network.tcp_proxy",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                    "stat_prefix": name,
                    "cluster": cluster
                }
            }
        ]}]
    })
}

fn tcp_cluster(index: usize, upstream: SocketAddr) -> Value {
    let name = format!("warden_tcp_{index}");
    json!({
        "name": name,
        "connect_timeout": "5s",
        "type": "STATIC",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": socket_address(upstream) } }] }]
        }
    })
}

/// The bootstrap for a sidecar or, with `role` gateway, for the egress gateway, for `bundle`
/// (its TLS origination settings become clusters; a local sidecar's address guard comes from
/// its policy).
pub fn bootstrap(options: &EnvoyOptions, bundle: &Bundle) -> Result<Value, RenderError> {
    super::plugin_configuration::check(bundle).map_err(|e| RenderError::Compiled(e.to_string()))?;
    let spec = &bundle.spec;
    let gateway = options.role == Role::Gateway;
    if gateway && options.mesh_tls.is_none() {
        return Err(RenderError::Options(
            "the egress gateway needs its mesh certificate, key and CA (--cert, --key, --ca): it accepts only clients with mesh certificates",
        ));
    }
    if options.gateway.is_some() && (gateway || options.mesh_tls.is_none()) {
        return Err(RenderError::Options(
            "--gateway is for sidecars, and needs the workload's mesh certificate, key and CA (--cert, --key, --ca)",
        ));
    }
    if let Some(dns) = options.dns {
        // The proxy's own lookups must not reach its DNS listener: a registered name would
        // resolve to its virtual address, and the proxy would connect back into itself.
        if options.resolvers.is_empty() || options.resolvers.contains(&dns) {
            return Err(RenderError::Options(
                "--dns needs --resolver, and not its own address: the proxy resolves the names it connects to (and forwards the DNS listener's other names) with the resolvers you give, never with its own DNS listener; give the resolvers workloads used before",
            ));
        }
    }
    let mut metadata = serde_json::Map::new();
    if options.capture.is_none() {
        metadata.insert(setting::LOCAL_PROXY.into(), json!("true"));
    }
    metadata.insert(
        setting::ROLE.into(),
        json!(if gateway { "gateway" } else { "sidecar" }),
    );
    if let Some(hop) = &options.gateway {
        metadata.insert(setting::GATEWAY_CLUSTER.into(), json!(GATEWAY_CLUSTER));
        if hop.tcp_address.is_some() {
            metadata.insert(
                setting::GATEWAY_TCP_CLUSTER.into(),
                json!(GATEWAY_TCP_CLUSTER),
            );
        }
    }
    if let Some(id) = &options.identity {
        metadata.insert(setting::WORKLOAD_IDENTITY.into(), json!(id));
    }
    if options.service_metrics {
        metadata.insert(setting::SERVICE_METRICS.into(), json!("true"));
    }
    let mut node = serde_json::Map::new();
    let id = if gateway {
        "warden-gateway"
    } else {
        "warden-sidecar"
    };
    node.insert("id".into(), json!(id));
    node.insert("cluster".into(), json!("warden"));
    node.insert("metadata".into(), Value::Object(metadata));
    if let Some(l) = &options.locality {
        let locality = json!({ "region": l.region, "zone": l.zone, "sub_zone": l.sub_zone });
        node.insert("locality".into(), locality);
    }
    let mut listeners = vec![http_listener(options)];
    let mut dfp = json!({
        "name": DFP_CLUSTER,
        "connect_timeout": "5s",
        "lb_policy": "CLUSTER_PROVIDED",
        "cluster_type": dfp_cluster_type(&dns_cache(&options.resolvers), false)
    });
    // A local sidecar resolves names itself: the guard checks what they resolved to.
    if !gateway && options.capture.is_none() {
        // A bundle the engine refuses, the filter refuses too (nothing passes): the guard then
        // holds only the unspecified addresses.
        let policy = warden_engine::compile(bundle).ok();
        let identity = options
            .identity
            .as_deref()
            .or(spec.proxy.workload_identity.as_deref());
        let rules = super::guard::protected(spec, policy.as_ref(), identity);
        if let Some(fields) = dfp.as_object_mut() {
            fields.insert(
                "typed_extension_protocol_options".into(),
                super::guard::protocol_options(&rules),
            );
        }
    }
    let mut clusters = vec![dfp];
    if let (Some(hop), Some(mesh)) = (&options.gateway, &options.mesh_tls) {
        clusters.push(tls::gateway_cluster(
            GATEWAY_CLUSTER,
            hop.address,
            &hop.identity,
            mesh,
            true,
        ));
        if let Some(tcp) = hop.tcp_address {
            // The filter sets the server name per connection (filter state).
            clusters.push(tls::gateway_cluster(
                GATEWAY_TCP_CLUSTER,
                tcp,
                &hop.identity,
                mesh,
                false,
            ));
        }
    }
    // The gateway originates TLS for every port that asks for it; a sidecar for the ports it
    // sends directly (gateway-routed ones are the gateway's).
    clusters.extend(tls::origination_clusters(
        spec,
        options.mesh_tls.as_ref(),
        &dns_cache(&options.resolvers),
        |port| gateway || port.egress_gateway.is_none(),
    )?);
    // `--virtual-addresses`: a listener on each virtual address and TCP port, standing for
    // its name (the proxy must own the addresses: a loopback range on one machine).
    let mut tcp = options.tcp.clone();
    if options.virtual_listeners && !gateway {
        for service in &spec.services {
            let ports = service
                .ports
                .iter()
                .filter(|p| matches!(p.protocol, Protocol::Tcp | Protocol::Mongo));
            for port in ports {
                for address in &service.virtual_addresses {
                    let Ok(ip) = address.parse::<std::net::IpAddr>() else {
                        continue;
                    };
                    tcp.push(TcpForward {
                        listen: SocketAddr::new(ip, port.number),
                        upstream: None,
                    });
                }
            }
        }
    }
    for (i, forward) in tcp.iter().enumerate() {
        listeners.push(tcp_listener(options, i, forward));
        if let Some(upstream) = forward.upstream {
            clusters.push(tcp_cluster(i, upstream));
        }
    }
    if let Some(listen) = options.dns {
        listeners.push(dns_listener(listen, bundle, &options.resolvers));
    }
    if !tcp.is_empty() {
        // Where the filter sends connections: to an address it sets (else the original
        // destination), or, from a sidecar, to a name it sets (a connection allowed on its
        // server name; the gateway's passthrough connects to addresses only).
        clusters.push(json!({
            "name": ORIGINAL_DST_CLUSTER,
            "connect_timeout": "2s",
            "type": "ORIGINAL_DST",
            "lb_policy": "CLUSTER_PROVIDED"
        }));
    }
    if !tcp.is_empty() && !gateway {
        clusters.push(json!({
            "name": TCP_BY_NAME_CLUSTER,
            "connect_timeout": "5s",
            "lb_policy": "CLUSTER_PROVIDED",
            "cluster_type": dfp_cluster_type(&dns_cache(&options.resolvers), false)
        }));
    }
    let mut bootstrap = serde_json::Map::new();
    bootstrap.insert("node".into(), Value::Object(node));
    bootstrap.insert(
        "admin".into(),
        json!({ "address": socket_address(options.admin) }),
    );
    bootstrap.insert(
        "static_resources".into(),
        json!({ "listeners": listeners, "clusters": clusters }),
    );
    if options.service_metrics {
        // `wasmcustom.warden_http_service_allowed.pay.db` -> `..._allowed{warden_service="pay.db"}`.
        bootstrap.insert(
            "stats_config".into(),
            json!({ "stats_tags": [{ "tag_name": service_tag::NAME, "regex": service_tag::REGEX }] }),
        );
    }
    Ok(Value::Object(bootstrap))
}
