//! TLS in the rendered Envoy configuration: the mesh's mutual TLS between sidecars and the
//! egress gateway, and TLS originated towards external endpoints (`clientsideTls`).

use std::path::PathBuf;

use serde_json::{json, Value};
use warden_bundle::{origination_cluster, BundleSpec, TlsMode, TlsOrigination};

/// The CA bundle a `SIMPLE` origination trusts when its service names none (Debian's).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The mesh identity of this proxy: its certificate and key (PEM files), and the mesh CA that
/// issued every mesh certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshTls {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    pub ca: PathBuf,
}

fn filename(path: &std::path::Path) -> Value {
    json!({ "filename": path.display().to_string() })
}

fn certificate(chain: &str, key: &str) -> Value {
    json!({ "certificate_chain": { "filename": chain }, "private_key": { "filename": key } })
}

fn mesh_certificate(mesh: &MeshTls) -> Value {
    json!({
        "certificate_chain": filename(&mesh.certificate),
        "private_key": filename(&mesh.private_key)
    })
}

const UPSTREAM_TLS: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
const DOWNSTREAM_TLS: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
const HTTP_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// The gateway listener's TLS: its own certificate, and client certificates required, issued
/// by the mesh CA and naming a SPIFFE ID in `trust_domain`. Anything else fails the
/// handshake, before any filter runs.
pub fn gateway_listener(mesh: &MeshTls, trust_domain: &str) -> Value {
    json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": DOWNSTREAM_TLS,
            "require_client_certificate": true,
            "common_tls_context": mesh_context(mesh, json!({ "prefix": format!("spiffe://{trust_domain}/") }))
        }
    })
}

/// The gateway's first network filter: the caller's certificate must carry exactly one URI
/// SAN, a SPIFFE ID in `trust_domain` (an X.509-SVID has exactly one). The TLS validation above
/// accepts a certificate when *any* SAN matches and Envoy reports the first as the identity,
/// so a certificate naming two identities would be taken as either. Envoy's URI SAN input
/// joins every URI SAN with commas, and a SPIFFE ID holds no comma: one ID is exactly what
/// the pattern matches. Anything else is closed before a byte reaches the filter or an
/// upstream (counted `warden_gateway_identity.rbac.denied`).
pub fn one_spiffe_id(trust_domain: &str) -> Value {
    let escaped: String = trust_domain
        .chars()
        .flat_map(|c| {
            let escape = (!c.is_ascii_alphanumeric()).then_some('\\');
            escape.into_iter().chain(std::iter::once(c))
        })
        .collect();
    let action = super::rbac::action;
    json!({
        "name": "envoy.filters.network.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC",
            "stat_prefix": "warden_gateway_identity.",
            "matcher": {
                "matcher_list": { "matchers": [{
                    "predicate": { "single_predicate": {
                        "input": {
                            "name": "envoy.matching.inputs.uri_san",
                            "typed_config": { "@type": "type.googleapis.com/envoy.extensions.matching.common_inputs.ssl.v3.UriSanInput" }
                        },
                        "value_match": { "safe_regex": { "google_re2": {}, "regex": format!("^spiffe://{escaped}/[^,]+$") } }
                    }},
                    "on_match": action("one-spiffe-id", "ALLOW")
                }]},
                "on_no_match": action("not-one-spiffe-id", "DENY")
            }
        }
    })
}

/// The proxy's mesh certificate, and the peer's checked against the mesh CA and a SPIFFE URI
/// SAN `matcher`.
fn mesh_context(mesh: &MeshTls, matcher: Value) -> Value {
    json!({
        "tls_certificates": [mesh_certificate(mesh)],
        "validation_context": {
            "trusted_ca": filename(&mesh.ca),
            "match_typed_subject_alt_names": [{ "san_type": "URI", "matcher": matcher }]
        }
    })
}

/// The sidecar's cluster to the egress gateway: mutual TLS with the workload's certificate,
/// the gateway's certificate checked for its SPIFFE ID, and the request's host as SNI (the
/// gateway refuses a request whose authority names another host).
pub fn gateway_cluster(
    name: &str,
    address: std::net::SocketAddr,
    gateway_identity: &str,
    mesh: &MeshTls,
    http: bool,
) -> Value {
    let mut cluster = json!({
        "name": name,
        "connect_timeout": "5s",
        "type": "STATIC",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": {
                "socket_address": { "address": address.ip().to_string(), "port_value": address.port() }
            } } }] }]
        },
        "transport_socket": {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": UPSTREAM_TLS,
                "common_tls_context": mesh_context(mesh, json!({ "exact": gateway_identity }))
            }
        }
    });
    if let (true, Some(fields)) = (http, cluster.as_object_mut()) {
        fields.insert(
            "typed_extension_protocol_options".into(),
            json!({
                HTTP_OPTIONS: {
                    "@type": format!("type.googleapis.com/{HTTP_OPTIONS}"),
                    "upstream_http_protocol_options": { "auto_sni": true },
                    "explicit_http_config": { "http_protocol_options": {} }
                }
            }),
        );
    }
    cluster
}

/// Why an origination cluster cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service} port {port}: {problem}")]
pub struct OriginationError {
    pub service: String,
    pub port: u16,
    pub problem: String,
}

/// One `dynamic_forward_proxy` cluster per service port that originates TLS, named by
/// [`origination_cluster`]; the filter routes requests to it. SNI is the service's `sni`, or
/// the request's authority (which the filter sets to a host-name endpoint); the endpoint's
/// certificate must chain to `caCertificates` (default: the system CA bundle) and name the
/// service's `subjectAltNames`, else the `sni`, else the authority.
///
/// `include` says which ports this proxy originates for (the gateway: all; a sidecar: those
/// not routed through the gateway).
pub fn origination_clusters(
    spec: &BundleSpec,
    mesh: Option<&MeshTls>,
    dns_cache: &Value,
    include: impl Fn(&warden_bundle::ServicePort) -> bool,
) -> Result<Vec<Value>, OriginationError> {
    let mut clusters = Vec::new();
    for service in &spec.services {
        let (namespace, name) = (&service.source.namespace, &service.source.name);
        for port in service.ports.iter().filter(|p| include(p)) {
            let Some(tls) = port.tls.as_ref().filter(|t| t.originates()) else {
                continue;
            };
            let fail = |problem: &str| OriginationError {
                service: format!("{namespace}/{name}"),
                port: port.number,
                problem: problem.to_owned(),
            };
            let context = upstream_context(tls, &service.subject_alt_names, mesh).map_err(fail)?;
            let auto_sni = tls.sni.is_none();
            let auto_san =
                auto_sni && service.subject_alt_names.is_empty() && !tls.insecure_skip_verify;
            let cluster = origination_cluster(namespace, name, port.number);
            clusters.push(json!({
                "name": cluster,
                "connect_timeout": "5s",
                "lb_policy": "CLUSTER_PROVIDED",
                // SNI and name checks are set explicitly below, not always automatic.
                "cluster_type": super::envoy::dfp_cluster_type(dns_cache, true),
                "transport_socket": {
                    "name": "envoy.transport_sockets.tls",
                    "typed_config": context
                },
                "typed_extension_protocol_options": {
                    HTTP_OPTIONS: {
                        "@type": format!("type.googleapis.com/{HTTP_OPTIONS}"),
                        "upstream_http_protocol_options": {
                            "auto_sni": auto_sni,
                            "auto_san_validation": auto_san
                        },
                        "explicit_http_config": { "http_protocol_options": {} }
                    }
                }
            }));
        }
    }
    Ok(clusters)
}

fn upstream_context(
    tls: &TlsOrigination,
    subject_alt_names: &[String],
    mesh: Option<&MeshTls>,
) -> Result<Value, &'static str> {
    let mut common = serde_json::Map::new();
    match tls.mode {
        TlsMode::Mutual => {
            let (Some(chain), Some(key)) = (&tls.client_certificate, &tls.private_key) else {
                if tls.credential_name.is_some() {
                    return Err("credentialName names a Kubernetes secret, which only Istio reads (render istio); a local Envoy needs clientCertificate and privateKey files (and caCertificates), beside it");
                }
                return Err("MUTUAL TLS needs clientCertificate and privateKey");
            };
            common.insert("tls_certificates".into(), json!([certificate(chain, key)]));
        }
        TlsMode::IstioMutual => {
            let Some(mesh) = mesh else {
                return Err("ISTIO_MUTUAL presents the proxy's mesh certificate; give --cert, --key and --ca");
            };
            common.insert("tls_certificates".into(), json!([mesh_certificate(mesh)]));
        }
        TlsMode::Simple | TlsMode::Disable => {}
    }
    if !tls.insecure_skip_verify {
        let ca = match (tls.mode, &tls.ca_certificates, mesh) {
            (_, Some(ca), _) => json!({ "filename": ca }),
            (TlsMode::IstioMutual, None, Some(mesh)) => filename(&mesh.ca),
            _ => json!({ "filename": SYSTEM_CA_BUNDLE }),
        };
        let names: Vec<&String> = if subject_alt_names.is_empty() {
            tls.sni.iter().collect()
        } else {
            subject_alt_names.iter().collect()
        };
        let mut validation = serde_json::Map::new();
        validation.insert("trusted_ca".into(), ca);
        if !names.is_empty() {
            let matchers: Vec<Value> = names
                .iter()
                .map(|n| json!({ "san_type": "DNS", "matcher": { "exact": n } }))
                .collect();
            validation.insert(
                "match_typed_subject_alt_names".into(),
                Value::Array(matchers),
            );
        }
        common.insert("validation_context".into(), Value::Object(validation));
    }
    let mut context = serde_json::Map::new();
    context.insert("@type".into(), json!(UPSTREAM_TLS));
    if let Some(sni) = &tls.sni {
        context.insert("sni".into(), json!(sni));
    }
    context.insert("common_tls_context".into(), Value::Object(common));
    Ok(Value::Object(context))
}
