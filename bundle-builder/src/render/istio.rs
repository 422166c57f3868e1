//! `render istio`: the Kubernetes resources that load Warden into an Istio mesh and make
//! traffic reach it.
//!
//! - `WasmPlugin`s (`extensions.istio.io/v1alpha1`): an HTTP and a NETWORK plugin for the
//!   sidecars (outbound, `match` mode `CLIENT`), and, with a gateway, both again for the egress
//!   gateway's pods. The bundle is the `pluginConfig`; `vmConfig.env` tells the filter its role
//!   and that Istio does the routing (`WARDEN_ROUTING=mesh`: the filter decides, Istio routes).
//! - A `ServiceEntry` (`networking.istio.io/v1`) per ExternalService, so Istio knows the hosts
//!   and addresses (its DNS proxy answers internal names), with the endpoints inline.
//! - For ports that originate TLS, a `DestinationRule` per host; for ports routed through the
//!   egress gateway, the `Gateway`, the `VirtualService` (mesh -> gateway -> service) and the
//!   `DestinationRule` for the hop to the gateway (`ISTIO_MUTUAL`, SNI = the host).
//! - With network policies, Kubernetes `NetworkPolicy`s that stop workloads from going around
//!   their sidecar and the gateway.

use serde_json::{json, Map, Value};
use warden_bundle::wire::{root_id, setting};
use warden_bundle::{
    Bundle, Endpoint, ExternalService, FailureMode, Protocol, ServicePort, TargetPort, TlsMode,
};

/// Where the egress gateway runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IstioGateway {
    /// The gateway deployment's namespace (not Istio's root namespace: a mesh-wide plugin
    /// would run there as a sidecar plugin too).
    pub namespace: String,
    /// Labels of the gateway's pods (`istio=egressgateway`).
    pub selector: Vec<(String, String)>,
    /// The gateway's Kubernetes service, as a host name.
    pub service_host: String,
}

impl IstioGateway {
    /// Istio's egress gateway as its Helm chart installs it into `namespace`: pods labelled
    /// `istio=egressgateway` behind the service `istio-egressgateway`.
    pub fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            selector: vec![("istio".into(), "egressgateway".into())],
            service_host: format!("istio-egressgateway.{namespace}.svc.cluster.local"),
        }
    }

    /// `{key: value}` of the gateway pods' labels.
    fn labels(&self) -> Map<String, Value> {
        self.selector
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect()
    }
}

/// Everything `render istio` needs.
#[derive(Debug, Clone)]
pub struct IstioOptions {
    /// The image: `oci://REGISTRY/REPOSITORY:TAG` or `...@sha256:HEX`.
    pub image: String,
    /// Where the sidecar plugins go: Istio's root namespace (every sidecar), or the
    /// namespaces of one workspace (a bundle built with `--workspace`).
    pub namespaces: Vec<String>,
    pub gateway: Option<IstioGateway>,
    /// Render `NetworkPolicy`s for these workload namespaces (and the gateway's).
    pub network_policy_namespaces: Vec<String>,
    /// Count every verdict for its service too (`WARDEN_SERVICE_METRICS`).
    pub service_metrics: bool,
    /// A hex ed25519 public key the plugins require bundle signatures from.
    pub public_key: Option<String>,
    /// The bundle is embedded in the image: the plugins carry only its digest.
    pub embedded: bool,
}

/// Why the resources cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IstioError {
    #[error("--image {0:?}: expected oci://REGISTRY/REPOSITORY:TAG or oci://REGISTRY/REPOSITORY@sha256:<64 hex>")]
    Image(String),
    #[error(
        "{0} routes port {1} through the egress gateway; give the gateway (--gateway-namespace)"
    )]
    NoGateway(String, u16),
    #[error("cannot write the bundle as the plugin configuration: {0}")]
    Bundle(String),

    #[error(
        "{0} port {1}: clientsideTls.credentialName works where the egress gateway originates TLS (Istio reads the secret in the gateway's namespace); this port's TLS is originated at the sidecar, so give file paths, or route the port through the gateway"
    )]
    SidecarSecret(String, u16),
}

/// The image's digest, when it is pinned by one.
fn image_sha256(image: &str) -> Result<Option<&str>, IstioError> {
    let bad = || IstioError::Image(image.to_owned());
    let rest = image.strip_prefix("oci://").ok_or_else(bad)?;
    if !rest.contains('/') {
        return Err(bad());
    }
    match rest.split_once("@sha256:") {
        Some((_, hex))
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(Some(hex))
        }
        Some(_) => Err(bad()),
        None => Ok(None),
    }
}

fn metadata(name: &str, namespace: &str) -> Value {
    json!({
        "name": name,
        "namespace": namespace,
        "labels": { "app.kubernetes.io/managed-by": "warden" }
    })
}

/// A Kubernetes name from parts (lowercase, `-` for anything else, at most 63 bytes).
fn k8s_name(parts: &[&str]) -> String {
    let mut name: String = parts
        .join("-")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(63);
    name.trim_matches('-').to_owned()
}

/// What the resources cannot do for this bundle, one line each: a FailoverPolicy Istio cannot
/// express exactly; a service known by name with a
/// TCP-level port and no address of its own or virtual address (a bundle from before virtual
/// addresses, or only wildcard hosts) is resolved by Istio's DNS proxy to a virtual IP the
/// bundle does not know, so the sidecar's network filter would find no service for it.
/// What Kubernetes cannot store, or `kubectl apply` (client-side) cannot annotate: objects
/// past 1.5 MiB (etcd's request limit) and past 256 KiB (the last-applied annotation).
pub fn size_warnings(objects: &[Value]) -> Vec<String> {
    const ETCD: usize = 1536 * 1024;
    const ANNOTATION: usize = 256 * 1024;
    objects
        .iter()
        .filter_map(|o| {
            let size = o.to_string().len();
            let text = |pointer: &str, default: &'static str| {
                o.pointer(pointer)
                    .and_then(Value::as_str)
                    .unwrap_or(default)
                    .to_owned()
            };
            let name = format!(
                "{} {}/{}",
                text("/kind", "object"),
                text("/metadata/namespace", "default"),
                text("/metadata/name", "")
            );
            let kib = size / 1024;
            if size > ETCD {
                Some(format!("{name} is {kib} KiB: Kubernetes stores objects up to about 1.5 MiB (etcd), so it cannot be applied; the bundle is too large to travel in pluginConfig: embed it in the image (bundle-builder embed, render istio --embedded) or split the registry by workspace (build --workspace)"))
            } else if size > ANNOTATION {
                Some(format!("{name} is {kib} KiB: past 256 KiB, kubectl apply's client-side last-applied annotation cannot hold it; use kubectl apply --server-side"))
            } else {
                None
            }
        })
        .collect()
}

pub fn warnings(bundle: &Bundle, options: &IstioOptions) -> Vec<String> {
    let mut out: Vec<String> = bundle
        .spec
        .services
        .iter()
        .filter(|s| !s.hosts.is_empty() && s.addresses.is_empty() && s.virtual_addresses.is_empty())
        .filter_map(|s| {
            // Traffic that carries no name (TLS carries its server name).
            let port = s
                .ports
                .iter()
                .find(|p| matches!(p.protocol, Protocol::Tcp | Protocol::Mongo))?;
            Some(format!(
                "{}/{}: port {} is TCP-level and {} has no virtual address in the bundle; under Istio a connection to it reaches the sidecar at a virtual IP Istio allocates and the bundle does not know, so the network filter cannot find the service (REGISTRY_ONLY denies it). Rebuild the bundle with this bundle-builder (names get virtual addresses), or give the service exact hosts",
                s.source.namespace, s.source.name, port.number, s.hosts.first().map_or("it", String::as_str)
            ))
        })
        .collect();
    // Istio's failover maps a region to one region; Warden's FailoverPolicy can name zones and
    // an ordered list.
    for s in &bundle.spec.services {
        for m in &s.failover {
            let zoned = !m.from.zone.is_empty() || m.to.iter().any(|t| !t.zone.is_empty());
            if zoned || m.to.len() > 1 {
                out.push(format!(
                    "{}/{}: Istio's localityLbSetting.failover maps one region to one region; only {} -> {} is rendered (zones and later targets apply under Warden's routing only)",
                    s.source.namespace,
                    s.source.name,
                    m.from.region,
                    m.to.first().map_or("-", |t| t.region.as_str())
                ));
            }
        }
    }
    if let (Some(workspace), Some(gw)) = (&bundle.metadata.workspace, &options.gateway) {
        out.push(format!(
            "the bundle is workspace {workspace}'s: the egress gateway's plugins are not rendered (the gateway serves every workspace; render them from a bundle built without --workspace, which decides each caller within its own workspace's view), only this workspace's routes through {}",
            gw.namespace
        ));
    }
    out
}

/// The resources, in a stable order.
pub fn resources(bundle: &Bundle, options: &IstioOptions) -> Result<Vec<Value>, IstioError> {
    let sha256 = image_sha256(&options.image)?;
    let plugin_config = if options.embedded {
        // The module carries the compiled form `embed` wrote; refuse here what it refuses.
        super::plugin_configuration::check(bundle)
            .map_err(|e| IstioError::Bundle(e.to_string()))?;
        let digest = bundle.metadata.digest.as_deref().ok_or_else(|| {
            IstioError::Bundle(
                "an embedded bundle is named by its digest, and this one has none".into(),
            )
        })?;
        json!({ "embeddedBundle": digest })
    } else {
        super::plugin_configuration::value(bundle).map_err(IstioError::Bundle)?
    };
    let mut out = Vec::new();
    let fail = match bundle.spec.failure_mode {
        FailureMode::FailClose => "FAIL_CLOSE",
        FailureMode::FailOpen => "FAIL_OPEN",
    };
    let plugin =
        |name: &str, namespace: &str, kind: &str, role: &str, selector: Option<&IstioGateway>| {
            let mut spec = Map::new();
            if let Some(gw) = selector {
                spec.insert("selector".into(), json!({ "matchLabels": gw.labels() }));
            } else {
                // Sidecars: outbound traffic only.
                spec.insert("match".into(), json!([{ "mode": "CLIENT" }]));
            }
            spec.insert("url".into(), json!(options.image));
            if let Some(hex) = sha256 {
                spec.insert("sha256".into(), json!(hex));
            }
            spec.insert("imagePullPolicy".into(), json!("IfNotPresent"));
            // The plugin name is the filter's root ID: at the gateway the network filter
            // decides on the first data, when the caller's certificate is known.
            let plugin_name = match (kind, selector.is_some()) {
                ("HTTP", _) => root_id::HTTP,
                (_, true) => root_id::NETWORK_GATEWAY,
                (_, false) => root_id::NETWORK,
            };
            spec.insert("pluginName".into(), json!(plugin_name));
            spec.insert("phase".into(), json!("AUTHZ"));
            // The egress gateway never fails open: it would forward anything to anyone holding
            // a mesh certificate.
            let fail = if selector.is_some() {
                "FAIL_CLOSE"
            } else {
                fail
            };
            spec.insert("failStrategy".into(), json!(fail));
            spec.insert("type".into(), json!(kind));
            let mut env = vec![
                json!({ "name": setting::ROLE, "value": role }),
                json!({ "name": setting::ROUTING, "value": "mesh" }),
            ];
            if options.service_metrics {
                env.push(json!({ "name": setting::SERVICE_METRICS, "value": "true" }));
            }
            if let Some(key) = &options.public_key {
                env.push(json!({ "name": setting::PUBLIC_KEY, "value": key }));
            }
            spec.insert("vmConfig".into(), json!({ "env": env }));
            spec.insert("pluginConfig".into(), plugin_config.clone());
            json!({
                "apiVersion": "extensions.istio.io/v1alpha1",
                "kind": "WasmPlugin",
                "metadata": metadata(name, namespace),
                "spec": spec
            })
        };
    // A workspace's bundle names its plugins after the workspace: two workspaces' plugins in
    // one namespace would otherwise be one object, and the last applied would win.
    let suffix = bundle
        .metadata
        .workspace
        .as_deref()
        .map_or_else(String::new, |w| format!("-{}", k8s_name(&[w])));
    for namespace in &options.namespaces {
        let (http, tcp) = (
            format!("warden-http{suffix}"),
            format!("warden-tcp{suffix}"),
        );
        out.push(plugin(&http, namespace, "HTTP", "sidecar", None));
        out.push(plugin(&tcp, namespace, "NETWORK", "sidecar", None));
    }
    // The egress gateway serves every workspace: its plugins come from a bundle built for
    // all of them (a second plugin with another workspace's bundle would deny the first
    // one's traffic there). A workspace's bundle renders its routes through the gateway only.
    let gateway_plugins = options
        .gateway
        .as_ref()
        .filter(|_| bundle.metadata.workspace.is_none());
    if let Some(gw) = gateway_plugins {
        out.push(plugin(
            "warden-gateway-http",
            &gw.namespace,
            "HTTP",
            "gateway",
            Some(gw),
        ));
        out.push(plugin(
            "warden-gateway-tcp",
            &gw.namespace,
            "NETWORK",
            "gateway",
            Some(gw),
        ));
    }
    for service in &bundle.spec.services {
        let secret_at_sidecar = service.ports.iter().find(|p| {
            p.egress_gateway.is_none()
                && p.tls.as_ref().is_some_and(|t| t.credential_name.is_some())
        });
        if let Some(port) = secret_at_sidecar {
            return Err(IstioError::SidecarSecret(
                format!("{}/{}", service.source.namespace, service.source.name),
                port.number,
            ));
        }
        out.push(service_entry(service));
        out.extend(destination_rules(service));
        for port in service.ports.iter().filter(|p| p.egress_gateway.is_some()) {
            let Some(gw) = &options.gateway else {
                return Err(IstioError::NoGateway(
                    format!("{}/{}", service.source.namespace, service.source.name),
                    port.number,
                ));
            };
            out.extend(gateway_route(service, port, gw));
        }
    }
    if !options.network_policy_namespaces.is_empty() {
        out.extend(network_policies(bundle, options));
    }
    Ok(out)
}

/// The protocol a workload speaks to this port: plain HTTP where the proxy originates TLS.
fn istio_protocol(port: &ServicePort) -> &'static str {
    if port.tls.as_ref().is_some_and(|t| t.originates()) {
        return "HTTP";
    }
    match port.protocol {
        Protocol::Http => "HTTP",
        Protocol::Https => "HTTPS",
        Protocol::Http2 => "HTTP2",
        Protocol::Grpc => "GRPC",
        Protocol::Tcp => "TCP",
        Protocol::Tls => "TLS",
        Protocol::Mongo => "MONGO",
    }
}

fn port_name(port: &ServicePort) -> String {
    port.name.clone().unwrap_or_else(|| {
        format!(
            "{}-{}",
            istio_protocol(port).to_ascii_lowercase(),
            port.number
        )
    })
}

/// Hosts as Istio wants them; a service with only addresses gets a name of its own.
fn hosts(service: &ExternalService) -> Vec<String> {
    if service.hosts.is_empty() {
        vec![format!(
            "{}.{}.warden.internal",
            service.source.name, service.source.namespace
        )]
    } else {
        service.hosts.clone()
    }
}

fn endpoint_entry(service: &ExternalService, endpoint: &Endpoint) -> Value {
    let mut ports = Map::new();
    for port in &service.ports {
        let target = match &port.target_port {
            Some(TargetPort::Number(n)) => Some(*n),
            Some(TargetPort::Name(name)) => endpoint
                .ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name))
                .map(|p| p.number),
            None => endpoint
                .ports
                .iter()
                .find(|p| p.number == port.number)
                .or(endpoint.ports.first().filter(|_| endpoint.ports.len() == 1))
                .map(|p| p.number),
        };
        if let Some(number) = target {
            ports.insert(port_name(port), json!(number));
        }
    }
    let mut entry = Map::new();
    entry.insert("address".into(), json!(endpoint.address));
    entry.insert("ports".into(), Value::Object(ports));
    let locality = endpoint.locality.to_string();
    if !locality.is_empty() {
        entry.insert("locality".into(), json!(locality));
    }
    entry.insert("weight".into(), json!(endpoint.weight));
    entry.insert(
        "labels".into(),
        json!({ "warden.dev/endpoint": k8s_name(&[&endpoint.source.namespace, &endpoint.source.name]) }),
    );
    Value::Object(entry)
}

fn service_entry(service: &ExternalService) -> Value {
    let (ns, name) = (&service.source.namespace, &service.source.name);
    let mut ports: Vec<Value> = service
        .ports
        .iter()
        .map(|p| json!({ "number": p.number, "protocol": istio_protocol(p), "name": port_name(p) }))
        .collect();
    // A portMatch port is where workloads send: Istio needs it declared to route it.
    for p in &service.ports {
        if let Some(sent) = p.egress_gateway.as_ref().and_then(|g| g.port_match) {
            ports.push(json!({
                "number": sent,
                "protocol": istio_protocol(p),
                "name": format!("{}-match-{sent}", port_name(p))
            }));
        }
    }
    let mut spec = Map::new();
    spec.insert("hosts".into(), json!(hosts(service)));
    // Virtual addresses: Istio's DNS proxy answers the hosts with them, and the sidecar's
    // network filter finds the service by them.
    let addresses: Vec<&String> = service
        .addresses
        .iter()
        .chain(&service.virtual_addresses)
        .collect();
    if !addresses.is_empty() {
        spec.insert("addresses".into(), json!(addresses));
    }
    spec.insert("ports".into(), Value::Array(ports));
    spec.insert("location".into(), json!("MESH_EXTERNAL"));
    // Every allow holds for what is connected: an address-only service is decided on the
    // address dialled and goes there (`NONE`); a wildcard host is decided on the name, so it
    // must go by that name (`DYNAMIC_DNS`), never to the original destination.
    let resolution = if service.endpoints.is_empty() {
        if service.hosts.is_empty() {
            "NONE"
        } else if service.hosts.iter().any(|h| h.starts_with('*')) {
            "DYNAMIC_DNS"
        } else {
            "DNS"
        }
    } else if service
        .endpoints
        .iter()
        .all(|e| e.address.parse::<std::net::IpAddr>().is_ok())
    {
        "STATIC"
    } else {
        "DNS"
    };
    spec.insert("resolution".into(), json!(resolution));
    if !service.endpoints.is_empty() {
        let endpoints: Vec<Value> = service
            .endpoints
            .iter()
            .map(|e| endpoint_entry(service, e))
            .collect();
        spec.insert("endpoints".into(), Value::Array(endpoints));
    }
    if !service.subject_alt_names.is_empty() {
        spec.insert("subjectAltNames".into(), json!(service.subject_alt_names));
    }
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": metadata(&k8s_name(&["warden", name]), ns),
        "spec": spec
    })
}

/// `ClientTLSSettings` for a port's `clientsideTls`.
fn client_tls(service: &ExternalService, port: &ServicePort) -> Option<Value> {
    let tls = port.tls.as_ref().filter(|t| t.originates())?;
    let mut out = Map::new();
    let mode = match tls.mode {
        TlsMode::Simple => "SIMPLE",
        TlsMode::Mutual => "MUTUAL",
        TlsMode::IstioMutual => "ISTIO_MUTUAL",
        TlsMode::Disable => "DISABLE",
    };
    out.insert("mode".into(), json!(mode));
    // Istio reads certificates from a secret (`credentialName`) or from files in the proxy;
    // with a secret the file paths are not Istio's to use.
    let files: [(&str, &Option<String>); 3] = [
        ("caCertificates", &tls.ca_certificates),
        ("clientCertificate", &tls.client_certificate),
        ("privateKey", &tls.private_key),
    ];
    let files = if tls.credential_name.is_some() {
        &[][..]
    } else {
        &files[..]
    };
    for (key, value) in files
        .iter()
        .copied()
        .chain([("sni", &tls.sni), ("credentialName", &tls.credential_name)])
    {
        if let Some(v) = value {
            out.insert(key.into(), json!(v));
        }
    }
    if !service.subject_alt_names.is_empty() {
        out.insert("subjectAltNames".into(), json!(service.subject_alt_names));
    }
    if tls.insecure_skip_verify {
        out.insert("insecureSkipVerify".into(), json!(true));
    }
    Some(Value::Object(out))
}

/// A `DestinationRule` per host of a service that needs one (Istio applies one rule per host):
/// TLS origination for the ports that ask for it (at the sidecar for direct ports, at the
/// egress gateway for gateway-routed ones), and for an internal hostname's endpoints passive
/// outlier detection (`OutlierDetectionPolicy`, else Warden's defaults) and locality failover
/// (`FailoverPolicy`), so that closest-first routing and ejection hold under Istio's routing
/// (`WARDEN_ROUTING=mesh`) as in Warden's.
fn destination_rules(service: &ExternalService) -> Vec<Value> {
    let settings: Vec<Value> = service
        .ports
        .iter()
        .filter_map(|p| {
            client_tls(service, p).map(|tls| json!({ "port": { "number": p.number }, "tls": tls }))
        })
        .collect();
    let mut policy = Map::new();
    if !settings.is_empty() {
        policy.insert("portLevelSettings".into(), Value::Array(settings));
    }
    if !service.endpoints.is_empty() {
        policy.insert("outlierDetection".into(), outlier_detection(service));
        let failover: Vec<Value> = service
            .failover
            .iter()
            .filter_map(|m| {
                let to = m.to.first()?;
                Some(json!({ "from": m.from.region, "to": to.region }))
            })
            .collect();
        let mut locality = json!({ "enabled": true });
        if let (Some(fields), false) = (locality.as_object_mut(), failover.is_empty()) {
            fields.insert("failover".into(), Value::Array(failover));
        }
        policy.insert(
            "loadBalancer".into(),
            json!({ "localityLbSetting": locality }),
        );
    }
    if policy.is_empty() {
        return Vec::new();
    }
    let (ns, name) = (&service.source.namespace, &service.source.name);
    hosts(service)
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let index = i.to_string();
            json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": metadata(&k8s_name(&["warden", name, &index]), ns),
                "spec": { "host": host, "trafficPolicy": policy }
            })
        })
        .collect()
}

/// Istio's `outlierDetection` for Warden's settings: connection failures and 5xx count (for
/// TCP, Istio counts connect failures as 5xx), with the same ejection time and percentage.
fn outlier_detection(service: &ExternalService) -> Value {
    let settings = service.outlier_detection.clone().unwrap_or_default();
    let defaults = warden_engine::OutlierSettings::default();
    let mut out = Map::new();
    out.insert(
        "consecutive5xxErrors".into(),
        json!(settings
            .consecutive_errors
            .unwrap_or(defaults.consecutive_errors)),
    );
    if let Some(n) = settings.consecutive_gateway_errors {
        out.insert("consecutiveGatewayErrors".into(), json!(n));
    }
    let ms = settings
        .base_ejection_millis
        .unwrap_or(defaults.base_ejection_ms);
    out.insert("baseEjectionTime".into(), json!(duration(ms)));
    out.insert(
        "maxEjectionPercent".into(),
        json!(settings
            .max_ejection_percent
            .unwrap_or(defaults.max_ejection_percent)
            .min(100)),
    );
    Value::Object(out)
}

/// A protobuf JSON duration (`30s`, `0.5s`).
fn duration(ms: u64) -> String {
    match ms % 1000 {
        0 => format!("{}s", ms / 1000),
        rest => format!("{}.{rest:03}s", ms / 1000),
    }
}

/// The port the egress gateway listens on for mesh traffic (its Service's HTTPS port).
const GATEWAY_PORT: u16 = 443;

/// Gateway, VirtualService and the DestinationRule for the hop to the gateway, for one
/// gateway-routed port. Plain HTTP (TLS originated at the gateway) goes by `http` routes; the
/// client's own TLS is matched by server name at the sidecar (`tls` route) and, once the
/// gateway has ended the mesh mTLS, forwarded as bytes (`tcp` route).
fn gateway_route(service: &ExternalService, port: &ServicePort, gw: &IstioGateway) -> Vec<Value> {
    // The port workloads send to: Gloo's portMatch, else the service port.
    // The ports workloads send to: the service port and, with Gloo's portMatch, that port
    // too; both go to the gateway (the filter decides both for this port).
    let mut mesh_ports = vec![port.number];
    mesh_ports.extend(port.egress_gateway.as_ref().and_then(|g| g.port_match));
    let (ns, name) = (&service.source.namespace, &service.source.name);
    let number = port.number.to_string();
    let hosts = hosts(service);
    let passthrough = istio_protocol(port) != "HTTP" && istio_protocol(port) != "HTTP2";
    let gateway_name = k8s_name(&["warden", name, &number]);
    let subset = k8s_name(&[name, &number]);
    let (server_protocol, server_port_name) = if passthrough {
        ("TLS", k8s_name(&["tls", name, &number]))
    } else {
        ("HTTPS", k8s_name(&["https", name, &number]))
    };
    let gateway = json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": metadata(&gateway_name, &gw.namespace),
        "spec": {
            "selector": gw.labels(),
            "servers": [{
                "port": { "number": GATEWAY_PORT, "name": server_port_name, "protocol": server_protocol },
                "hosts": hosts,
                "tls": { "mode": "ISTIO_MUTUAL" }
            }]
        }
    });
    let to_gateway = json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": metadata(&k8s_name(&["warden-to-gateway", name, &number]), ns),
        "spec": {
            "host": gw.service_host,
            "subsets": [{
                "name": subset,
                "trafficPolicy": { "portLevelSettings": [{
                    "port": { "number": GATEWAY_PORT },
                    "tls": { "mode": "ISTIO_MUTUAL", "sni": hosts.first() }
                }] }
            }]
        }
    });
    let gateway_ref = format!("{}/{}", gw.namespace, gateway_name);
    let to_gateway_route = json!([{ "destination": {
        "host": gw.service_host, "subset": subset, "port": { "number": GATEWAY_PORT }
    } }]);
    let to_service_route = json!([{ "destination": {
        "host": hosts.first(), "port": { "number": port.number }
    } }]);
    let mut spec = Map::new();
    spec.insert("hosts".into(), json!(hosts));
    spec.insert("gateways".into(), json!(["mesh", gateway_ref]));
    if passthrough {
        spec.insert(
            "tls".into(),
            json!([{
                "match": mesh_ports.iter().map(|port| json!({ "gateways": ["mesh"], "port": port, "sniHosts": hosts })).collect::<Vec<_>>(),
                "route": to_gateway_route
            }]),
        );
        spec.insert(
            "tcp".into(),
            json!([{
                "match": [{ "gateways": [gateway_ref], "port": GATEWAY_PORT }],
                "route": to_service_route
            }]),
        );
    } else {
        spec.insert(
            "http".into(),
            json!([
                { "match": mesh_ports.iter().map(|port| json!({ "gateways": ["mesh"], "port": port })).collect::<Vec<_>>(), "route": to_gateway_route },
                { "match": [{ "gateways": [gateway_ref], "port": GATEWAY_PORT }], "route": to_service_route }
            ]),
        );
    }
    let virtual_service = json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": metadata(&k8s_name(&["warden-via-gateway", name, &number]), ns),
        "spec": spec
    });
    vec![gateway, to_gateway, virtual_service]
}
/// Workload namespaces: egress only to the cluster's DNS, in-cluster pods (the mesh,
/// including the egress gateway). The gateway's namespace: also the declared external
/// addresses on their ports (by IP block; host-named services on their ports anywhere, as a
/// name cannot be an IP block).
fn network_policies(bundle: &Bundle, options: &IstioOptions) -> Vec<Value> {
    let dns = json!({
        "to": [{
            "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "kube-system" } },
            "podSelector": { "matchLabels": { "k8s-app": "kube-dns" } }
        }],
        "ports": [{ "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 }]
    });
    let in_cluster = json!({ "to": [{ "namespaceSelector": {} }] });
    let mut out: Vec<Value> = options
        .network_policy_namespaces
        .iter()
        .map(|ns| {
            json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": metadata("warden-egress-via-mesh", ns),
                "spec": {
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [dns, in_cluster]
                }
            })
        })
        .collect();
    if let Some(gw) = &options.gateway {
        let mut egress = vec![dns.clone(), in_cluster.clone()];
        for service in &bundle.spec.services {
            let ports: Vec<Value> = service
                .ports
                .iter()
                .map(|p| json!({ "protocol": "TCP", "port": p.number }))
                .collect();
            let mut blocks: Vec<String> = service
                .addresses
                .iter()
                .map(|a| {
                    if a.contains('/') {
                        a.clone()
                    } else if a.contains(':') {
                        format!("{a}/128")
                    } else {
                        format!("{a}/32")
                    }
                })
                .collect();
            for e in &service.endpoints {
                if let Ok(ip) = e.address.parse::<std::net::IpAddr>() {
                    blocks.push(if ip.is_ipv4() {
                        format!("{ip}/32")
                    } else {
                        format!("{ip}/128")
                    });
                }
            }
            let endpoint_ports: Vec<Value> = service
                .endpoints
                .iter()
                .flat_map(|e| e.ports.iter().map(|p| p.number))
                .collect::<std::collections::BTreeSet<u16>>()
                .into_iter()
                .map(|n| json!({ "protocol": "TCP", "port": n }))
                .collect();
            let all_ports: Vec<Value> = ports.into_iter().chain(endpoint_ports).collect();
            if blocks.is_empty() {
                blocks.push("0.0.0.0/0".into());
            }
            let to: Vec<Value> = blocks
                .iter()
                .map(|b| json!({ "ipBlock": { "cidr": b } }))
                .collect();
            egress.push(json!({ "to": to, "ports": all_ports }));
        }
        out.push(json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": metadata("warden-egress-gateway", &gw.namespace),
            "spec": {
                "podSelector": { "matchLabels": gw.labels() },
                "policyTypes": ["Egress"],
                "egress": egress
            }
        }));
    }
    out
}
