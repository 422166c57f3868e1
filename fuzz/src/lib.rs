//! What the fuzz targets share: the policies they decide against, a request built from the
//! fuzzer's bytes, and the properties every decision must keep ("every allow holds for what
//! Envoy actually connects to", docs/decisions.md). A property that fails panics, which is
//! how libFuzzer records a crash; the engine itself must never panic.
#![allow(clippy::panic)]

use std::net::IpAddr;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use warden_bundle::{Bundle, OutboundMode, Role};
use warden_engine::{
    compile, is_unspecified, parse_authority, parse_host, AllHealthy, Facts, GatewayRoutes, Host,
    HostBuf, Listener, MatchedOn, Policy, Request, Route, Target,
};

/// The bundles the decision targets run against: the examples the README uses, the demo's
/// loopback registry (TLS origination, internal hostnames, access policies), and what the
/// builder makes of `manifests/examples` (a name with a virtual address, 241.13.92.78).
const BUNDLES: [&[u8]; 3] = [
    include_bytes!("../../manifests/bundles/example.json"),
    include_bytes!("../../manifests/bundles/demo-local.json"),
    include_bytes!("../../bundle-builder/tests/golden/examples/bundle.json"),
];

/// Each bundle compiled as a sidecar and as a gateway, under both outbound modes.
pub fn policies() -> &'static [Policy] {
    static POLICIES: OnceLock<Vec<Policy>> = OnceLock::new();
    POLICIES.get_or_init(|| {
        let mut all = Vec::new();
        for json in BUNDLES {
            for mode in [OutboundMode::RegistryOnly, OutboundMode::AllowAny] {
                for role in [Role::Sidecar, Role::Gateway] {
                    let Ok(mut bundle) = Bundle::from_json(json) else {
                        panic!("a committed bundle does not parse");
                    };
                    bundle.spec.outbound_mode = mode;
                    // The spec changed: its digest no longer holds.
                    bundle.metadata.digest = None;
                    let Ok(mut policy) = compile(&bundle) else {
                        panic!("a committed bundle does not compile");
                    };
                    policy.set_proxy_role(role, GatewayRoutes::ALL);
                    all.push(policy);
                }
            }
        }
        all
    })
}

/// One request or connection as the glue would describe it, from fuzzer bytes.
#[derive(Debug, Arbitrary)]
pub struct FuzzRequest {
    pub policy: u8,
    pub protocol: u8,
    pub listener: u8,
    pub mesh_routing: bool,
    pub host: Option<String>,
    pub sni: Option<String>,
    pub destination: Option<IpAddr>,
    pub port: Option<u16>,
    pub client: Option<String>,
    pub method: Option<String>,
    pub pick: u64,
}

impl FuzzRequest {
    /// HTTP, as the HTTP filter describes it (an authority, no server name); otherwise a
    /// connection as the network filter describes it (a server name makes it TLS).
    fn is_http(&self) -> bool {
        self.protocol.is_multiple_of(2)
    }

    /// The request the filter would build from these facts: through `Facts::request`, as the
    /// HTTP and network filters do (at the gateway: the caller's certificate, the server name
    /// checked against the authority, `outbound_.PORT_._.HOST` parsed, the listener's own
    /// address ignored).
    pub fn request(&self, role: Role) -> Request<'_> {
        let http = self.is_http();
        Facts {
            role,
            listener: Some(self.listener()),
            authority: self.host.as_deref().filter(|_| http),
            server_name: self.sni.as_deref(),
            destination: self.destination,
            port: self.port,
            peer: self.client.as_deref(),
            identity: self.client.as_deref(),
            method: self.method.as_deref().filter(|_| http),
            ..Facts::default()
        }
        .request()
    }

    pub fn listener(&self) -> Listener {
        if self.is_http() {
            return Listener::Http;
        }
        match self.listener % 3 {
            0 => Listener::Tcp,
            1 => Listener::TcpEndpoints,
            _ => Listener::GatewayPassthrough,
        }
    }

    pub fn policy(&self) -> &'static Policy {
        let all = policies();
        match all.get(usize::from(self.policy) % all.len()) {
            Some(policy) => policy,
            None => panic!("no policies"),
        }
    }
}

/// Decides and routes `input` against its policy, then checks the properties of the result.
pub fn check(input: &FuzzRequest) {
    check_with(input.policy(), input);
}

/// Decides and routes `input` against `policy`, then checks the properties of the result.
pub fn check_with(policy: &Policy, input: &FuzzRequest) {
    let request = input.request(policy.settings().role);
    let listener = input.listener();
    let mut route: Option<Route<'_>> = None;
    let decision = policy.decide_and_route(
        &request,
        listener,
        input.mesh_routing,
        &AllHealthy,
        input.pick,
        |r| {
            route = Some(r.clone());
            true
        },
    );
    // Deterministic: the same request gets the same verdict (before routing, which can only
    // turn an allow into a denial).
    let again = policy.decide_with(&request, &AllHealthy, input.pick);
    let routed_away = again.is_allowed() && !decision.is_allowed();
    if again.reason() != decision.reason() && !routed_away {
        panic!("decide is not deterministic: {decision:?} then {again:?}");
    }
    if !decision.is_allowed() {
        return;
    }
    let Some(route) = route else {
        panic!("an allow that was never routed: {decision:?}");
    };
    // Never to an unspecified address, whatever spelling got it there.
    if request.destination.is_some_and(is_unspecified) {
        panic!("allowed with an unspecified destination: {request:?} -> {decision:?}");
    }
    match &route.target {
        Some(Target::Address(addr)) if is_unspecified(addr.ip()) => {
            panic!("routed to an unspecified address: {request:?} -> {route:?}")
        }
        Some(Target::Name { host, .. }) => {
            let mut buf = HostBuf::new();
            if let Ok(Host::Ip(ip)) = parse_host(host, &mut buf) {
                if is_unspecified(ip) {
                    panic!("routed to an unspecified address: {request:?} -> {route:?}");
                }
            }
        }
        _ => {}
    }
    let sidecar = policy.settings().role == Role::Sidecar;
    let Some(service) = decision.service() else {
        return;
    };
    // Decided on a virtual address: never connected as dialled, never to the virtual address.
    if service.matched_on == MatchedOn::VirtualAddress
        && !input.mesh_routing
        && !service.via_gateway
    {
        let dialled = request.destination.or_else(|| {
            let mut buf = HostBuf::new();
            match request.host.map(|h| parse_authority(h, &mut buf)) {
                Some(Ok(a)) => match a.host {
                    Host::Ip(ip) => Some(ip),
                    Host::Name(_) => None,
                },
                _ => None,
            }
        });
        let to_virtual = match &route.target {
            None => true,
            Some(Target::Address(addr)) => Some(addr.ip()) == dialled,
            Some(Target::Name { host, .. }) => {
                let mut buf = HostBuf::new();
                matches!(parse_host(host, &mut buf), Ok(Host::Ip(ip)) if Some(ip) == dialled)
            }
        };
        if to_virtual {
            panic!("decided on a virtual address but routed to it: {request:?} -> {route:?}");
        }
    }
    if !sidecar || input.mesh_routing || service.via_gateway || decision.endpoint().is_some() {
        return;
    }
    // HTTP: the port decided is the port the dynamic forward proxy connects to.
    if listener == Listener::Http {
        let mut buf = HostBuf::new();
        let authority_port = request
            .host
            .and_then(|h| parse_authority(h, &mut buf).ok())
            .and_then(|a| a.port);
        let default_port = if service.tls_cluster.is_some() {
            443
        } else {
            80
        };
        let connected = match &route.target {
            Some(Target::Name { port, .. }) => *port,
            Some(Target::Address(addr)) => addr.port(),
            None => authority_port.unwrap_or(default_port),
        };
        if connected != service.port {
            panic!(
                "decided port {} but connects to {connected}: {request:?} -> {route:?}",
                service.port
            );
        }
    }
    // TLS allowed on its server name goes to that name, on the port decided.
    if listener == Listener::Tcp && service.matched_on == MatchedOn::Host {
        let mut buf = HostBuf::new();
        if let Some(Ok(Host::Name(name))) = request.sni.map(|s| parse_host(s, &mut buf)) {
            let expected = Target::Name {
                host: name.to_owned(),
                port: service.port,
            };
            if route.target.as_ref() != Some(&expected) {
                panic!("allowed on server name {name} but routed to {route:?}");
            }
        }
    }
}
