//! The root context: loads the bundle once per VM and hands the compiled policy to each
//! request or connection. A compiled form that another VM of this proxy already decoded and
//! checked (`checked`) is decoded when this VM's first stream needs it: the main thread's VM,
//! which serves no stream, never holds the tables.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::ContextType;
use warden_bundle::wire::{self, root_id};
use warden_bundle::{Locality, Role};
use warden_engine::{compact, GatewayRoutes, Policy};

use crate::host::{Envoy, Host};
use crate::metrics::Metrics;
use crate::properties;

/// What every request of this VM reads.
#[derive(Debug)]
pub struct Shared {
    /// The compiled bundle. Until one loads there is no `Shared`, and requests fail closed.
    pub policy: Policy,
    /// The workload's own SPIFFE ID, for sidecar decisions.
    pub identity: Option<String>,
    /// Envoy runs as an explicit local proxy (no traffic capture): `destination.address` is
    /// Envoy's own listener, not where the client meant to go, so HTTP decisions ignore it.
    pub local_proxy: bool,
    /// Count every verdict for its service too (`WARDEN_SERVICE_METRICS=true`).
    pub service_metrics: bool,
    /// Sidecar or egress gateway: the node's `WARDEN_ROLE`, else the bundle's.
    pub role: Role,
    /// A sidecar's cluster to the egress gateway (node metadata `WARDEN_GATEWAY_CLUSTER`).
    pub gateway_cluster: Option<String>,
    /// A sidecar's cluster to the egress gateway's TLS passthrough listener
    /// (`WARDEN_GATEWAY_TCP_CLUSTER`).
    pub gateway_tcp_cluster: Option<String>,
    /// The mesh routes allowed traffic (Istio: VirtualServices, DestinationRules, its own
    /// endpoint choice): the filter only decides, and steers nothing (`WARDEN_ROUTING=mesh`).
    pub mesh_routing: bool,
    /// Under mesh routing with a mesh scope, HTTP decisions need the cluster Istio's route
    /// chose (one host call per request, only then).
    pub reads_route_cluster: bool,
    /// The proxy's locality: the bundle's, else the node's (`xds.node.locality`).
    pub locality: Option<Locality>,
    /// Spreads internal-hostname requests over endpoints by weight (round robin per VM).
    picks: Cell<u64>,
}

impl Shared {
    /// The next pick for endpoint choice.
    pub fn next_pick(&self) -> u64 {
        let pick = self.picks.get();
        self.picks.set(pick.wrapping_add(1));
        pick
    }
}

/// One small JSON object (a VM configuration, an embedded bundle's reference), read by
/// `serde-json-core` rather than `serde_json`, whose code V8 would compile before any VM
/// starts. Escapes in strings are decoded (never longer than their text); trailing text is
/// refused.
fn json<T: serde::de::DeserializeOwned>(text: &[u8]) -> Result<T, serde_json_core::de::Error> {
    let mut unescaped = vec![0u8; text.len()];
    serde_json_core::from_slice_escaped(text, &mut unescaped).map(|(value, _)| value)
}

/// The VM's linear memory (64 KiB pages), which never shrinks: what loading the policy
/// left it at.
fn vm_memory_pages() -> usize {
    #[cfg(target_arch = "wasm32")]
    let pages = core::arch::wasm32::memory_size(0);
    #[cfg(not(target_arch = "wasm32"))]
    let pages = 0usize;
    pages
}

/// Pages of 64 KiB as MiB to one decimal, rounded, in integers: formatting an `f64` would
/// bring 20 KB of float printing into the module, which V8 compiles before any VM starts.
fn mib(pages: usize) -> String {
    let tenths = pages.saturating_mul(10).saturating_add(8) / 16;
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// A string from the bootstrap's `node.metadata`.
/// A two-valued setting: absent or `off` is `false`, `on` is `true`; anything else is refused
/// (`None`, logged).
fn switch(value: Option<&str>, key: &str, off: &str, on: &str) -> Option<bool> {
    match value {
        None => Some(false),
        Some(v) if v == off => Some(false),
        Some(v) if v == on => Some(true),
        Some(other) => {
            log::error!("refused setting {key} {other:?}: expected {off:?} or {on:?}");
            None
        }
    }
}

fn node_metadata(host: &dyn Host, key: &str) -> Option<String> {
    properties::text(host, &["xds", "node", "metadata", key])
}

/// The workload's SPIFFE ID from the node metadata an Istio sidecar carries (`NAMESPACE`,
/// `SERVICE_ACCOUNT`), as Istio's CA would issue it.
fn istio_identity(host: &dyn Host, trust_domain: &str) -> Option<String> {
    let namespace = node_metadata(host, "NAMESPACE").filter(|n| !n.is_empty())?;
    let account = node_metadata(host, "SERVICE_ACCOUNT").filter(|n| !n.is_empty())?;
    Some(format!(
        "spiffe://{trust_domain}/ns/{namespace}/sa/{account}"
    ))
}

/// The node's locality from the bootstrap, if it names one.
fn node_locality(host: &dyn Host) -> Option<Locality> {
    let part =
        |name: &str| properties::text(host, &["xds", "node", "locality", name]).unwrap_or_default();
    let locality = Locality {
        region: part("region"),
        zone: part("zone"),
        sub_zone: part("sub_zone"),
    };
    (!locality.region.is_empty()).then_some(locality)
}

/// Whether this plugin instance is the HTTP filter or the network (TCP) filter. Envoy loads
/// the same module for both; the plugin's `root_id` tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum FilterKind {
    #[default]
    Http,
    /// `root_id` `warden.network`: the listener forwards to a fixed upstream.
    Network,
    /// `root_id` `warden.network.endpoints`: the listener stands for an internal hostname and
    /// its `ORIGINAL_DST` cluster connects where the filter says.
    NetworkEndpoints,
    /// `root_id` `warden.network.gateway`: the egress gateway's TLS passthrough listener;
    /// decides on the first data, when the caller's certificate is known.
    NetworkGateway,
}

/// The proxy's own settings for a policy: node metadata, else the VM's environment. Read and
/// checked when a configuration arrives, whenever its tables are decoded.
#[derive(Debug, Clone)]
struct ProxySettings {
    /// `WARDEN_ROLE`, when set.
    role: Option<Role>,
    gateway_cluster: Option<String>,
    gateway_tcp_cluster: Option<String>,
    mesh_routing: bool,
    service_metrics: bool,
}

/// A compiled form that another VM of this proxy decoded and checked, kept as bytes until the
/// first stream needs its tables.
#[derive(Debug)]
struct Deferred {
    bytes: Vec<u8>,
    /// The digest an embedded form must carry.
    named: Option<String>,
    proxy: ProxySettings,
    root_id: String,
}

#[derive(Debug)]
pub struct WardenRoot {
    host: Rc<dyn Host>,
    kind: FilterKind,
    /// The policy streams read; `None` until one loads (streams fail closed).
    shared: RefCell<Option<Rc<Shared>>>,
    /// The accepted configuration whose tables are decoded on the first stream.
    deferred: RefCell<Option<Deferred>>,
    /// The counters, defined once per VM: every configuration counts into the same ones, and
    /// requests that find no configuration are counted too.
    metrics: Option<Rc<Metrics>>,
    /// From the VM configuration: when set, only bundles signed with it are accepted.
    public_key: Option<ed25519_dalek::VerifyingKey>,
    /// The plugin configuration's length, as `on_configure` gives it.
    configuration_size: Option<usize>,
}

/// The VM configuration (`vm_config.configuration`): settings that outlive any one bundle.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VmConfig {
    /// Hex ed25519 public key; bundles must carry a valid signature made with its private key.
    #[serde(default)]
    public_key: Option<String>,
}

impl Default for WardenRoot {
    fn default() -> Self {
        Self::new(Rc::new(Envoy))
    }
}

impl WardenRoot {
    pub fn new(host: Rc<dyn Host>) -> Self {
        Self {
            host,
            kind: FilterKind::default(),
            shared: RefCell::new(None),
            deferred: RefCell::new(None),
            metrics: None,
            public_key: None,
            configuration_size: None,
        }
    }

    /// The HTTP filter for one request.
    pub fn http_context(&self) -> crate::http::WardenHttp {
        crate::http::WardenHttp::new(self.host.clone(), self.policy(), self.metrics.clone())
    }

    /// The network filter for one connection.
    pub fn tcp_context(&self) -> crate::tcp::WardenTcp {
        let mode = match self.kind {
            FilterKind::NetworkEndpoints => crate::tcp::Mode::Endpoints,
            FilterKind::NetworkGateway => crate::tcp::Mode::Gateway,
            FilterKind::Network | FilterKind::Http => crate::tcp::Mode::Forward,
        };
        crate::tcp::WardenTcp::new(self.host.clone(), self.policy(), self.metrics.clone(), mode)
    }

    /// `on_vm_start`: the VM configuration (a public key), if any; else the public key in the
    /// VM's environment (`WARDEN_PUBLIC_KEY`, Istio's `vmConfig.env`).
    pub fn start(&mut self) -> bool {
        let Some(raw) = self.host.vm_configuration().filter(|c| !c.is_empty()) else {
            let Some(hex) = self.host.env(wire::setting::PUBLIC_KEY) else {
                return true;
            };
            return match warden_bundle::public_key(hex.trim()) {
                Ok(key) => {
                    self.public_key = Some(key);
                    true
                }
                Err(err) => {
                    log::error!(
                        "refused VM environment: {}: {err}",
                        wire::setting::PUBLIC_KEY
                    );
                    false
                }
            };
        };
        let config: VmConfig = match json(&raw) {
            Ok(config) => config,
            Err(err) => {
                log::error!(
                    "refused VM configuration: {err}; expected {{\"publicKey\": \"<hex>\"}}"
                );
                return false;
            }
        };
        if let Some(hex) = config.public_key {
            match warden_bundle::public_key(&hex) {
                Ok(key) => self.public_key = Some(key),
                Err(err) => {
                    log::error!("refused VM configuration: publicKey: {err}");
                    return false;
                }
            }
        }
        true
    }

    /// `on_configure`: which filter this is, the bundle, and the proxy's settings; `false`
    /// refuses the configuration (Envoy keeps the previous one, or fails closed).
    pub fn configure(&mut self) -> bool {
        let host = &*self.host;
        let root_id = properties::text(host, &["plugin_root_id"]).unwrap_or_default();
        self.kind = match root_id.as_str() {
            root_id::HTTP => FilterKind::Http,
            root_id::NETWORK => FilterKind::Network,
            root_id::NETWORK_ENDPOINTS => FilterKind::NetworkEndpoints,
            root_id::NETWORK_GATEWAY => FilterKind::NetworkGateway,
            other => {
                log::error!(
                    "refused configuration: root_id {other:?} is none of Warden's ({:?}, {:?}, {:?}, {:?})",
                    root_id::HTTP,
                    root_id::NETWORK,
                    root_id::NETWORK_ENDPOINTS,
                    root_id::NETWORK_GATEWAY
                );
                return false;
            }
        };
        let metrics = self
            .metrics
            .get_or_insert_with(|| Rc::new(Metrics::define(host)));
        // Counts reach Envoy on ticks, also those of requests a refused configuration leaves
        // without a policy.
        host.set_tick_period(crate::metrics::FLUSH_PERIOD);
        let key = self.public_key.as_ref();
        let started = host.now_ms();
        // The compiled form is read in chunks; anything else whole.
        let source = match crate::compiled_config::read(host, self.configuration_size) {
            Some(bytes) => bytes.map(|bytes| (bytes, None)),
            None => {
                let Some(config) = host.plugin_configuration().filter(|c| !c.is_empty()) else {
                    log::error!(
                        "refused configuration: the plugin configuration is empty; {EXPECTED}"
                    );
                    metrics.rejected(host);
                    return false;
                };
                embedded(&config, host)
            }
        };
        let loaded = source.and_then(|(bytes, named)| {
            let envelope = opened(&bytes, named.as_deref(), key)?;
            match crate::checked::services(host, envelope.header) {
                Some(services) => Ok(Loaded::Later {
                    digest: match envelope.digest {
                        "" => "(no digest)".to_owned(),
                        digest => digest.to_owned(),
                    },
                    services,
                    bytes,
                    named,
                }),
                None => {
                    let policy = decoded(&envelope, named.as_deref())?;
                    crate::checked::record(host, envelope.header, policy.service_count());
                    Ok(Loaded::Now(Box::new(policy), Form::Compiled))
                }
            }
        });
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(err) => {
                log::error!("refused configuration: {err}");
                metrics.rejected(host);
                return false;
            }
        };
        let Some(proxy) = proxy_settings(host) else {
            metrics.rejected(host);
            return false;
        };
        match loaded {
            Loaded::Now(policy, form) => {
                let took = host.now_ms().saturating_sub(started);
                let shared = serve(host, *policy, &proxy, &root_id, (form, took));
                metrics.loaded(host, shared.policy.service_count());
                *self.deferred.borrow_mut() = None;
                *self.shared.borrow_mut() = Some(Rc::new(shared));
            }
            Loaded::Later {
                digest,
                services,
                bytes,
                named,
            } => {
                log::info!(
                    "accepted bundle {digest} ({services} services, root_id {root_id:?}): compiled tables that another VM of this proxy decoded and checked; this VM decodes them for its first stream"
                );
                metrics.loaded(host, services);
                *self.shared.borrow_mut() = None;
                *self.deferred.borrow_mut() = Some(Deferred {
                    bytes,
                    named,
                    proxy,
                    root_id,
                });
            }
        }
        true
    }

    /// The policy for a new stream: decodes a deferred configuration's tables first. A
    /// deferred form that does not decode here (it did in another VM) leaves no policy:
    /// streams fail closed, and the log says why.
    fn policy(&self) -> Option<Rc<Shared>> {
        if let Some(deferred) = self.deferred.borrow_mut().take() {
            let host = &*self.host;
            let started = host.now_ms();
            // Opened on arrival (checksum, signature, name): this VM's own copy since.
            let loaded = compact::reopen(&deferred.bytes)
                .map_err(|e| e.to_string())
                .and_then(|envelope| decoded(&envelope, deferred.named.as_deref()));
            match loaded {
                Ok(policy) => {
                    let took = host.now_ms().saturating_sub(started);
                    let shared = serve(
                        host,
                        policy,
                        &deferred.proxy,
                        &deferred.root_id,
                        (Form::Deferred, took),
                    );
                    if let Some(metrics) = &self.metrics {
                        metrics.services(host, shared.policy.service_count());
                    }
                    *self.shared.borrow_mut() = Some(Rc::new(shared));
                }
                Err(err) => {
                    log::error!("refused configuration: {err} (tables another VM of this proxy checked did not load in this VM; its streams fail closed)");
                    if let Some(metrics) = &self.metrics {
                        metrics.rejected(host);
                    }
                }
            }
        }
        self.shared.borrow().clone()
    }

    /// Whether a configuration waits for its first stream to decode its tables.
    #[cfg(test)]
    pub fn deferred(&self) -> bool {
        self.deferred.borrow().is_some()
    }

    /// What `on_configure` would have told: the configuration's length.
    #[cfg(test)]
    pub fn set_configuration_size(&mut self, size: Option<usize>) {
        self.configuration_size = size;
    }

    /// The role the current configuration resolved.
    #[cfg(test)]
    pub fn role(&self) -> Option<Role> {
        self.policy().map(|s| s.role)
    }

    /// The workload identity the current configuration resolved.
    #[cfg(test)]
    pub fn identity(&self) -> Option<String> {
        self.policy()?.identity.clone()
    }

    /// `on_tick`: counted decisions reach Envoy's counters.
    pub fn tick(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.flush(&*self.host);
        }
    }
}

impl Context for WardenRoot {}

impl RootContext for WardenRoot {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        self.start()
    }

    fn on_configure(&mut self, size: usize) -> bool {
        self.configuration_size = Some(size);
        self.configure()
    }

    fn on_tick(&mut self) {
        self.tick()
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(match self.kind {
            FilterKind::Http => ContextType::HttpContext,
            FilterKind::Network | FilterKind::NetworkEndpoints | FilterKind::NetworkGateway => {
                ContextType::StreamContext
            }
        })
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(self.http_context()))
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(self.tcp_context()))
    }
}

/// The plugin configuration that names a bundle embedded in the module (`render istio
/// --embedded`): `{"embeddedBundle": "sha256:<digest>"}`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EmbeddedRef {
    embedded_bundle: String,
}

/// How the policy reached this VM, for the log line that says what loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// Compiled tables (`compiledPolicy`, or embedded), decoded and checked on arrival.
    Compiled,
    /// Compiled tables decoded and checked for the first stream.
    Deferred,
}

/// What a plugin configuration must be, for the log line that refuses another.
const EXPECTED: &str = "the filter loads a compiled policy, {\"compiledPolicy\": \"<base64>\"} as bundle-builder render, build --ecds and watch write it, or {\"embeddedBundle\": \"sha256:...\"} naming the one bundle-builder embed put in the module; a bundle's JSON is compiled by bundle-builder, not in the proxy";

/// A configuration accepted: its policy, or a compiled form another VM checked, decoded for
/// the first stream.
enum Loaded {
    Now(Box<Policy>, Form),
    Later {
        digest: String,
        services: usize,
        bytes: Vec<u8>,
        named: Option<String>,
    },
}

/// The proxy's settings, from node metadata else the VM's environment; `None` (logged) when
/// one is not a value it can take.
fn proxy_settings(host: &dyn Host) -> Option<ProxySettings> {
    // Under Istio the node metadata is Istio's: the WasmPlugin's `vmConfig.env` carries
    // Warden's settings instead.
    let setting = |key: &str| node_metadata(host, key).or_else(|| host.env(key));
    let role = match setting(wire::setting::ROLE).as_deref() {
        Some("gateway") => Some(Role::Gateway),
        Some("sidecar") => Some(Role::Sidecar),
        Some(other) => {
            log::error!(
                "refused node metadata WARDEN_ROLE {other:?}: expected \"sidecar\" or \"gateway\""
            );
            return None;
        }
        None => None,
    };
    let switch = |key: &str, off: &str, on: &str| switch(setting(key).as_deref(), key, off, on);
    Some(ProxySettings {
        role,
        gateway_cluster: setting(wire::setting::GATEWAY_CLUSTER).filter(|c| !c.is_empty()),
        gateway_tcp_cluster: setting(wire::setting::GATEWAY_TCP_CLUSTER).filter(|c| !c.is_empty()),
        mesh_routing: switch(wire::setting::ROUTING, "warden", "mesh")?,
        service_metrics: switch(wire::setting::SERVICE_METRICS, "false", "true")?,
    })
}

/// The policy as this proxy serves it: the role, identity and locality resolved, the
/// endpoints ranked for the locality. Logs what loaded, how, and in how many milliseconds.
fn serve(
    host: &dyn Host,
    mut policy: Policy,
    proxy: &ProxySettings,
    root_id: &str,
    (form, took_ms): (Form, u64),
) -> Shared {
    let role = match proxy.role {
        Some(role) => role,
        // An Istio gateway's node ID is `router~...` (sidecars: `sidecar~...`): a plugin
        // applied mesh-wide acts as the gateway there.
        None if properties::text(host, &["xds", "node", "id"])
            .is_some_and(|id| id.starts_with("router~")) =>
        {
            Role::Gateway
        }
        None => policy.settings().role,
    };
    let mesh_routing = proxy.mesh_routing;
    let settings = policy.settings();
    log::info!(
        "loaded bundle {} ({} services, outbound {:?}, {:?}, {role:?}, root_id {root_id:?}, from {} in {took_ms} ms, VM memory {} MiB)",
        settings.digest.as_deref().unwrap_or("(no digest)"),
        policy.service_count(),
        settings.outbound_mode,
        settings.failure_mode,
        match form {
            Form::Compiled => "compiled tables",
            Form::Deferred => "compiled tables, decoded for the first stream",
        },
        mib(vm_memory_pages()),
    );
    let identity = settings
        .workload_identity
        .as_deref()
        .map(str::to_owned)
        .or_else(|| node_metadata(host, wire::setting::WORKLOAD_IDENTITY))
        .or_else(|| istio_identity(host, &settings.trust_domain));
    let local_proxy = node_metadata(host, wire::setting::LOCAL_PROXY).is_some_and(|v| v == "true");
    let locality = settings.locality.clone().or_else(|| node_locality(host));
    // Rank internal hostnames' endpoints once for this proxy.
    if settings.locality.is_none() && locality.is_some() {
        policy.prepare_for(locality.clone());
    }
    let routes = GatewayRoutes {
        http: proxy.gateway_cluster.is_some() || mesh_routing,
        tls: proxy.gateway_tcp_cluster.is_some() || mesh_routing,
    };
    policy.set_proxy_role(role, routes);
    let settings = policy.settings();
    let reads_route_cluster =
        mesh_routing && !(settings.mesh_domains.is_empty() && settings.mesh_addresses.is_empty());
    Shared {
        reads_route_cluster,
        policy,
        identity,
        local_proxy,
        service_metrics: proxy.service_metrics,
        role,
        gateway_cluster: proxy.gateway_cluster.clone(),
        gateway_tcp_cluster: proxy.gateway_tcp_cluster.clone(),
        mesh_routing,
        locality,
        picks: Cell::new(0),
    }
}

/// The compiled form a plugin configuration read whole names: `{"embeddedBundle": "sha256:..."}`,
/// the one the module carries (`bundle-builder embed`), and the digest it must carry.
/// (`{"compiledPolicy": ...}` is read in chunks by `compiled_config` before this.) Anything
/// else, a bundle's JSON among it, is refused with what is expected.
fn embedded(config: &[u8], host: &dyn Host) -> Result<(Vec<u8>, Option<String>), String> {
    let Ok(reference) = json::<EmbeddedRef>(config) else {
        return Err(format!(
            "the plugin configuration is not a compiled policy; {EXPECTED}"
        ));
    };
    let named = reference.embedded_bundle;
    let bytes = host.embedded_bundle().ok_or_else(|| {
        format!(
            "the configuration names the embedded bundle {named}, and this module carries none (bundle-builder embed)"
        )
    })?;
    if !bytes.starts_with(compact::MAGIC) {
        return Err("embedded bundle: the module carries a bundle that is not compiled (embedded by a bundle-builder from before compiled forms); embed it again with this release's bundle-builder".to_owned());
    }
    Ok((bytes, Some(named)))
}

/// The configuration names one embedded bundle and the module carries another.
fn other_embedded(named: &str, carried: &str) -> String {
    format!(
        "the configuration names the embedded bundle {named}, and this module carries {carried}"
    )
}

/// Opens a compiled form (framing and checksum) and checks its signature, before anything is
/// decoded. `named`: the digest an embedded form must carry.
fn opened<'a>(
    bytes: &'a [u8],
    named: Option<&str>,
    key: Option<&ed25519_dalek::VerifyingKey>,
) -> Result<compact::Envelope<'a>, String> {
    let context = |e: String| match named {
        Some(_) => format!("embedded bundle: {e}"),
        None => e,
    };
    let envelope = compact::open(bytes).map_err(|e| context(e.to_string()))?;
    if let Some(named) = named.filter(|n| *n != envelope.digest) {
        return Err(context(other_embedded(named, envelope.digest)));
    }
    if let Some(key) = key {
        warden_bundle::verify_message(key, envelope.header, envelope.signature)
            .map_err(|e| context(format!("signature: {e}")))?;
    }
    Ok(envelope)
}

/// Decodes and checks an opened compiled form's tables.
fn decoded(envelope: &compact::Envelope<'_>, named: Option<&str>) -> Result<Policy, String> {
    Policy::from_compact(envelope).map_err(|e| match named {
        Some(_) => format!("embedded bundle: {e}"),
        None => e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::{json, mib, EmbeddedRef, VmConfig};
    use proptest::prelude::*;

    proptest! {
        /// The VM configuration and the plugin configuration are bytes from the operator's
        /// configuration: whatever they hold, reading them refuses or accepts, never panics
        /// (a panic would stop the VM for every workload on the proxy).
        #[test]
        fn json_objects_from_any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
            let _ = json::<VmConfig>(&bytes);
            let _ = json::<EmbeddedRef>(&bytes);
        }

        /// The same for text shaped like the objects, escapes and all.
        #[test]
        fn json_shaped_text_never_panics(text in r#"[{}" :\\u0-9a-fA-FqnrtbK,\[\]]{0,64}"#) {
            for shaped in [text.clone(), format!(r#"{{"publicKey": "{text}"}}"#), format!(r#"{{"embeddedBundle": "{text}"}}"#)] {
                let _ = json::<VmConfig>(shaped.as_bytes());
                let _ = json::<EmbeddedRef>(shaped.as_bytes());
            }
        }
    }

    #[test]
    fn pages_print_as_mib_to_one_decimal_rounded() {
        assert_eq!(mib(0), "0.0");
        assert_eq!(mib(1), "0.1"); // 0.0625 MiB
        assert_eq!(mib(16), "1.0");
        assert_eq!(mib(176), "11.0");
        assert_eq!(mib(177), "11.1"); // 11.0625
        assert_eq!(mib(183), "11.4"); // 11.4375
        assert_eq!(mib(65536), "4096.0"); // the 4 GiB a wasm32 memory can reach
        assert_eq!(
            mib(usize::MAX),
            format!("{}.{}", usize::MAX / 16 / 10, usize::MAX / 16 % 10)
        );
    }
}
