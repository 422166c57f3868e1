//! ExternalServices and the ExternalEndpoints they select, validated into bundle entries.

use std::collections::{BTreeMap, HashMap};

use warden_bundle::{
    Endpoint, EndpointPort, ExternalService, GatewayRef, GatewayRoute, Locality, Protocol,
    Provenance, ResourceKind, ServicePort, TargetPort, TlsMode, TlsOrigination,
};
use warden_engine::validate::{self, address, host_pattern};
use warden_engine::CompileError;

use super::workspaces::{Shared, Workspaces};
use crate::diagnostic::{Diagnostics, Severity};
use crate::manifest::kinds::{
    ClientsideTls, ExternalEndpointSpec, ExternalServicePort, ExternalServiceSpec,
};
use crate::manifest::load::Located;

/// A service ready for the bundle, with what the overlap rule and sharing need.
#[derive(Debug, Clone)]
pub struct BuiltService<'r> {
    pub service: ExternalService,
    pub workspace: String,
    pub resource: &'r Located<ExternalServiceSpec>,
}

impl BuiltService<'_> {
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.resource.manifest.metadata.labels
    }

    /// What the workspaces' share rules are checked against.
    pub fn shared(&self) -> Shared<'_> {
        let source = &self.service.source;
        Shared {
            workspace: &self.workspace,
            namespace: &source.namespace,
            name: &source.name,
            labels: self.labels(),
        }
    }

    /// Earlier first: `creationTimestamp` (absent sorts last), then namespace/name.
    pub fn age_key(&self) -> (bool, String, String, String) {
        let created = self.resource.manifest.metadata.creation_timestamp.clone();
        (
            created.is_none(),
            created.unwrap_or_default(),
            self.service.source.namespace.clone(),
            self.service.source.name.clone(),
        )
    }
}

const PROTOCOLS: &str = "HTTP, HTTPS, HTTP2, GRPC, TCP, TLS, MONGO";

fn protocol(name: &str) -> Option<Protocol> {
    Some(match name {
        "HTTP" => Protocol::Http,
        "HTTPS" => Protocol::Https,
        "HTTP2" => Protocol::Http2,
        "GRPC" => Protocol::Grpc,
        "TCP" => Protocol::Tcp,
        "TLS" => Protocol::Tls,
        "MONGO" => Protocol::Mongo,
        _ => return None,
    })
}

fn port_number(value: u32) -> Option<u16> {
    u16::try_from(value).ok().filter(|&p| p > 0)
}

/// Validates every ExternalService (and the endpoints it selects). Invalid ones are reported
/// and left out.
pub fn build_services<'r>(
    services: &'r [Located<ExternalServiceSpec>],
    endpoints: &'r [Located<ExternalEndpointSpec>],
    workspaces: &Workspaces,
    diagnostics: &mut Diagnostics,
) -> Vec<BuiltService<'r>> {
    let endpoints: Vec<(&str, Option<Endpoint>, &Located<ExternalEndpointSpec>)> = endpoints
        .iter()
        .map(|e| {
            (
                workspaces.workspace_of(e.namespace()),
                endpoint(e, diagnostics),
                e,
            )
        })
        .collect();
    // Endpoints by (workspace, label, value): a selector only looks at the shortest list.
    let mut by_label: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
    for (index, (ws, _, e)) in endpoints.iter().enumerate() {
        for (key, value) in &e.manifest.metadata.labels {
            by_label.entry((ws, key, value)).or_default().push(index);
        }
    }
    let mut out = Vec::new();
    for es in services {
        let before = diagnostics.count(Severity::Error);
        let workspace = workspaces.workspace_of(es.namespace()).to_owned();
        let spec = &es.manifest.spec;
        let error = |d: &mut Diagnostics, field: &str, message: String| {
            d.push(es.diagnostic("invalid-field", Severity::Error, field, message))
        };
        match (spec.hosts.is_empty(), spec.addresses.is_empty()) {
            (true, true) => error(diagnostics, "spec", "set hosts (names) or addresses (IPs or CIDRs); a service needs one of them".into()),
            (false, false) => error(diagnostics, "spec.addresses", "hosts and addresses are mutually exclusive: put names and addresses in two ExternalServices".into()),
            _ => {}
        }
        let mut hosts = Vec::new();
        for (i, host) in spec.hosts.iter().enumerate() {
            match host_pattern(host) {
                Ok(pattern) => hosts.push(pattern.to_string()),
                Err(problem) => error(diagnostics, &format!("spec.hosts[{i}]"), problem),
            }
        }
        let mut addresses = Vec::new();
        for (i, raw) in spec.addresses.iter().enumerate() {
            match address(raw) {
                Ok(net) => addresses.push(net.to_string()),
                Err(problem) => error(diagnostics, &format!("spec.addresses[{i}]"), problem),
            }
        }
        // The endpoints this service selects: same workspace, every selector label present.
        let candidates = spec
            .selector
            .iter()
            .map(|(k, v)| {
                by_label
                    .get(&(workspace.as_str(), k.as_str(), v.as_str()))
                    .map_or(&[][..], Vec::as_slice)
            })
            .min_by_key(|list| list.len())
            .unwrap_or(&[]);
        let selected: Vec<&(&str, Option<Endpoint>, &Located<ExternalEndpointSpec>)> = candidates
            .iter()
            .filter_map(|&index| endpoints.get(index))
            .filter(|(_, _, e)| {
                let labels = &e.manifest.metadata.labels;
                spec.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .collect();
        if !spec.selector.is_empty() && selected.is_empty() {
            diagnostics.push(es.diagnostic("no-endpoints", 
                Severity::Warning,
                "spec.selector",
                "selects no ExternalEndpoint in this workspace; traffic goes to the hosts themselves",
            ));
        }
        let ports: Vec<ServicePort> = spec
            .ports
            .iter()
            .enumerate()
            .filter_map(|(i, port)| service_port(es, i, port, diagnostics))
            .collect();
        let mut endpoints: Vec<Endpoint> =
            selected.iter().filter_map(|(_, e, _)| e.clone()).collect();
        endpoints.sort_by(|a, b| {
            (&a.source.namespace, &a.source.name).cmp(&(&b.source.namespace, &b.source.name))
        });
        let service = ExternalService {
            source: Provenance::new(ResourceKind::ExternalService, es.namespace(), es.name()),
            hosts,
            addresses,
            ports,
            virtual_addresses: Vec::new(),
            endpoints,
            workspaces: Vec::new(),
            subject_alt_names: spec.subject_alt_names.clone(),
            outlier_detection: None,
            failover: Vec::new(),
        };
        // Ports missing or declared twice, port names the endpoints lack: the engine's own
        // checks, made on every port whose number could be read even when other fields are
        // wrong, so that one run reports all of them.
        let (indices, shapes): (Vec<usize>, Vec<ServicePort>) = spec
            .ports
            .iter()
            .enumerate()
            .filter_map(|(i, port)| Some((i, port_shape(port)?)))
            .unzip();
        let shape = ExternalService {
            ports: shapes,
            ..service.clone()
        };
        for error in validate::ports(&shape) {
            let (field, problem) = match error {
                CompileError::Invalid { field, problem, .. } => (field, problem),
                other => ("spec.ports".into(), other.to_string()),
            };
            if field == "spec.ports" && !spec.ports.is_empty() {
                continue; // it has ports, none of them readable: each is reported already
            }
            if field.ends_with(".targetPort.name") && selected.iter().any(|(_, e, _)| e.is_none()) {
                continue; // a selected endpoint is invalid, and reported: its ports are unknown
            }
            let field = manifest_port_field(&field, &indices);
            diagnostics.push(es.diagnostic("invalid-field", Severity::Error, &field, problem));
        }
        if diagnostics.count(Severity::Error) > before {
            continue;
        }
        out.push(BuiltService {
            service,
            workspace,
            resource: es,
        });
    }
    out
}

/// `spec.ports[k]...` of the ports that could be read is `spec.ports[indices[k]]...` of the
/// manifest.
fn manifest_port_field(field: &str, indices: &[usize]) -> String {
    let renumbered = field
        .strip_prefix("spec.ports[")
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(k, rest)| {
            let index = indices.get(k.parse::<usize>().ok()?)?;
            Some(format!("spec.ports[{index}]{rest}"))
        });
    renumbered.unwrap_or_else(|| field.to_owned())
}

/// What the engine's port checks look at (number and target port), for any port whose number
/// is valid.
fn port_shape(port: &ExternalServicePort) -> Option<ServicePort> {
    let target_port = port
        .target_port
        .as_ref()
        .and_then(|t| match (t.number, &t.name) {
            (None, Some(name)) => Some(TargetPort::Name(name.clone())),
            (Some(n), None) => port_number(n).map(TargetPort::Number),
            _ => None,
        });
    Some(ServicePort {
        name: port.name.clone(),
        number: u16::try_from(port.number).ok()?,
        protocol: Protocol::Tcp,
        target_port,
        tls: None,
        egress_gateway: None,
    })
}

fn service_port(
    es: &Located<ExternalServiceSpec>,
    i: usize,
    port: &ExternalServicePort,
    diagnostics: &mut Diagnostics,
) -> Option<ServicePort> {
    let at = |field: &str| format!("spec.ports[{i}].{field}");
    let mut errors: Vec<(String, String)> = Vec::new();
    let mut error = |field: &str, message: String| errors.push((at(field), message));
    let number = port_number(port.number);
    if number.is_none() {
        error(
            "number",
            format!("{} is not a port; use 1 to 65535", port.number),
        );
    }
    let proto = protocol(&port.protocol);
    if proto.is_none() {
        error(
            "protocol",
            format!(
                "{:?} is not a protocol; use one of {PROTOCOLS}",
                port.protocol
            ),
        );
    }
    let target_port = match &port.target_port {
        None => None,
        Some(t) => match (t.number, &t.name) {
            (Some(n), None) => match port_number(n) {
                Some(n) => Some(TargetPort::Number(n)),
                None => {
                    error(
                        "targetPort.number",
                        format!("{n} is not a port; use 1 to 65535"),
                    );
                    None
                }
            },
            (None, Some(name)) => Some(TargetPort::Name(name.clone())),
            (None, None) => None,
            (Some(_), Some(_)) => {
                error(
                    "targetPort",
                    "set targetPort.number or targetPort.name, not both".into(),
                );
                None
            }
        },
    };
    let tls = match &port.clientside_tls {
        None => None,
        Some(t) => {
            if t.credential_name.is_some() {
                diagnostics.push(es.diagnostic("istio-only", Severity::Note, &at("clientsideTls.credentialName"), "a Kubernetes secret: render istio hands it to Istio; render envoy (a local Envoy) needs caCertificates, clientCertificate and privateKey files instead"));
            }
            let mode = match t.mode.as_deref().unwrap_or("SIMPLE") {
                "SIMPLE" => Some(TlsMode::Simple),
                "MUTUAL" => Some(TlsMode::Mutual),
                "DISABLE" => Some(TlsMode::Disable),
                "ISTIO_MUTUAL" => Some(TlsMode::IstioMutual),
                other => {
                    error("clientsideTls.mode", format!("{other:?} is not a TLS mode; use SIMPLE, MUTUAL, DISABLE or ISTIO_MUTUAL"));
                    None
                }
            };
            if let Some(mode) = mode {
                for problem in tls_problems(mode, t) {
                    match problem {
                        TlsProblem::Error(field, message) => error(field, message),
                        TlsProblem::Warning(field, message) => diagnostics.push(es.diagnostic(
                            "tls-setting",
                            Severity::Warning,
                            &at(field),
                            message,
                        )),
                    }
                }
            }
            mode.map(|mode| TlsOrigination {
                mode,
                sni: t.sni.clone(),
                ca_certificates: t.ca_certificates.clone(),
                client_certificate: t.client_certificate.clone(),
                private_key: t.private_key.clone(),
                credential_name: t.credential_name.clone(),
                insecure_skip_verify: t.insecure_skip_verify,
            })
        }
    };
    let gateway = match &port.egress_gateway_routes {
        None => None,
        Some(routes) => {
            if es.manifest.spec.hosts.is_empty() {
                error(
                    "egressGatewayRoutes",
                    "egress gateway routes need a service with hosts; this one has only addresses"
                        .into(),
                );
            }
            if !matches!(
                proto,
                Some(Protocol::Http | Protocol::Http2 | Protocol::Https) | None
            ) {
                error(
                    "egressGatewayRoutes",
                    format!(
                        "egress gateway routes work on HTTP, HTTP2 and HTTPS ports, not {}",
                        port.protocol
                    ),
                );
            }
            let gateways = routes
                .virtual_gateway_refs
                .iter()
                .map(|g| GatewayRef {
                    namespace: g
                        .namespace
                        .clone()
                        .unwrap_or_else(|| es.namespace().to_owned()),
                    name: g.name.clone().unwrap_or_default(),
                })
                .collect();
            // Gloo's portMatch: the port workloads send to, when it is not the service port.
            let port_match = match routes.port_match {
                None => None,
                Some(n) => match port_number(n) {
                    None => {
                        error(
                            "egressGatewayRoutes.portMatch",
                            format!("{n} is not a port; use 1 to 65535"),
                        );
                        None
                    }
                    Some(p) if u32::from(p) == port.number => None,
                    Some(p) => {
                        let declared = es
                            .manifest
                            .spec
                            .ports
                            .iter()
                            .any(|q| q.number == u32::from(p));
                        let matched_twice = es.manifest.spec.ports.iter().take(i).any(|q| {
                            q.egress_gateway_routes.as_ref().and_then(|r| r.port_match)
                                == Some(u32::from(p))
                        });
                        if matched_twice {
                            error(
                                "egressGatewayRoutes.portMatch",
                                format!("port {p} is already the portMatch of another port of this service"),
                            );
                        }
                        if declared {
                            error(
                                "egressGatewayRoutes.portMatch",
                                format!("port {p} is also declared as a port of this service; a request to it would match two ports"),
                            );
                        }
                        Some(p)
                    }
                },
            };
            Some(GatewayRoute {
                gateways,
                port_match,
            })
        }
    };
    if !errors.is_empty() {
        for (field, message) in errors {
            diagnostics.push(es.diagnostic("invalid-field", Severity::Error, &field, message));
        }
        return None;
    }
    Some(ServicePort {
        name: port.name.clone(),
        number: number?,
        protocol: proto?,
        target_port,
        tls,
        egress_gateway: gateway,
    })
}

fn endpoint(e: &Located<ExternalEndpointSpec>, diagnostics: &mut Diagnostics) -> Option<Endpoint> {
    let before = diagnostics.count(Severity::Error);
    let spec = &e.manifest.spec;
    let raw = spec.address.as_str();
    let is_ip = raw.parse::<std::net::IpAddr>().is_ok();
    if let Some((scheme, _)) = raw.split_once("://") {
        diagnostics.push(e.diagnostic("invalid-field", 
            Severity::Error,
            "spec.address",
            format!("{raw:?}: a {scheme}:// address (such as a Unix domain socket) is not a network endpoint a proxy can route to; give an IP address or a host name"),
        ));
    } else if raw.contains('*') {
        diagnostics.push(e.diagnostic(
            "invalid-field",
            Severity::Error,
            "spec.address",
            format!("{raw:?}: an endpoint address is one IP or host name, without wildcards"),
        ));
    } else if !is_ip && (raw.contains(':') || raw.contains('/')) {
        diagnostics.push(e.diagnostic(
            "invalid-field",
            Severity::Error,
            "spec.address",
            format!(
                "{raw:?}: write the address without a port or prefix; ports go under spec.ports"
            ),
        ));
    }
    let mut ports = Vec::new();
    for (i, p) in spec.ports.iter().enumerate() {
        match port_number(p.number) {
            Some(number) => ports.push(EndpointPort {
                name: p.name.clone(),
                number,
            }),
            None => diagnostics.push(e.diagnostic(
                "invalid-field",
                Severity::Error,
                &format!("spec.ports[{i}].number"),
                format!("{} is not a port; use 1 to 65535", p.number),
            )),
        }
        if spec.ports.len() > 1 && p.name.is_none() {
            diagnostics.push(e.diagnostic(
                "invalid-field",
                Severity::Error,
                &format!("spec.ports[{i}].name"),
                "an endpoint with more than one port names each of them",
            ));
        }
    }
    if diagnostics.count(Severity::Error) > before {
        return None;
    }
    let locality = spec
        .locality
        .as_ref()
        .map_or_else(Locality::default, |l| Locality {
            region: l.region.clone(),
            zone: l.zone.clone(),
            sub_zone: l.sub_zone.clone(),
        });
    let built = Endpoint {
        source: Provenance::new(ResourceKind::ExternalEndpoint, e.namespace(), e.name()),
        address: raw.to_owned(),
        ports,
        locality,
        weight: 1,
    };
    // The rest is the engine's: address syntax, at least one port, port names unique.
    match validate::endpoint(&built) {
        Ok(()) => Some(built),
        Err(CompileError::Invalid { field, problem, .. }) => {
            diagnostics.push(e.diagnostic("invalid-field", Severity::Error, &field, problem));
            None
        }
        Err(other) => {
            diagnostics.push(e.diagnostic("invalid-field", Severity::Error, "", other.to_string()));
            None
        }
    }
}

/// What is wrong with a `clientsideTls` block, field by field.
enum TlsProblem {
    Error(&'static str, String),
    Warning(&'static str, String),
}

/// The proxy reads these files: they must be named, and by absolute path (a relative path
/// would be read from wherever the proxy happens to run).
fn tls_problems(mode: TlsMode, t: &ClientsideTls) -> Vec<TlsProblem> {
    let mut problems = Vec::new();
    let files = [
        ("clientsideTls.caCertificates", &t.ca_certificates),
        ("clientsideTls.clientCertificate", &t.client_certificate),
        ("clientsideTls.privateKey", &t.private_key),
    ];
    for (field, path) in files {
        if let Some(path) = path.as_deref().filter(|p| !p.starts_with('/')) {
            problems.push(TlsProblem::Error(
                field,
                format!("{path:?} is not an absolute path; the proxy reads this file, so give its absolute path on the proxy's machine"),
            ));
        }
    }
    // A secret (credentialName) holds the client certificate for Istio.
    if mode == TlsMode::Mutual && t.credential_name.is_none() {
        for (field, path) in files.iter().skip(1) {
            if path.is_none() {
                problems.push(TlsProblem::Error(
                    field,
                    "MUTUAL TLS presents a client certificate: give clientCertificate and privateKey".into(),
                ));
            }
        }
    } else if t.client_certificate.is_some() || t.private_key.is_some() {
        problems.push(TlsProblem::Warning(
            "clientsideTls.clientCertificate",
            format!(
                "{} TLS presents no client certificate; clientCertificate and privateKey are ignored (use mode MUTUAL)",
                t.mode.as_deref().unwrap_or("SIMPLE")
            ),
        ));
    }
    if t.insecure_skip_verify && t.ca_certificates.is_some() {
        problems.push(TlsProblem::Warning(
            "clientsideTls.insecureSkipVerify",
            "the endpoint's certificate is not verified, so caCertificates is ignored".into(),
        ));
    }
    if let Some(sni) = &t.sni {
        if let Err(problem) = host_pattern(sni) {
            problems.push(TlsProblem::Error("clientsideTls.sni", problem));
        } else if sni.starts_with('*') {
            problems.push(TlsProblem::Error(
                "clientsideTls.sni",
                format!("{sni:?} is a wildcard; a TLS server name names one host"),
            ));
        }
    }
    problems
}
