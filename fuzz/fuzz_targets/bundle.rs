//! Bundles as the builder reads them (bundle files are bytes from anywhere): parse, check a
//! signature, compile, and decide each registered host, address and port as HTTP and as TLS. A bundle is
//! bytes until validated: anything may be rejected, nothing may panic, and what compiles
//! keeps the decision properties.
#![no_main]
#![allow(clippy::panic)]

use libfuzzer_sys::fuzz_target;
use warden_bundle::{Bundle, Role};
use warden_engine::{compile, GatewayRoutes};
use warden_fuzz::{check_with, FuzzRequest};

fuzz_target!(|data: &[u8]| {
    let Ok(bundle) = Bundle::from_json(data) else {
        return;
    };
    // A signature, when present, is checked the way the filter checks it.
    let (_, public) = warden_bundle::key_pair([7; 32]);
    if let Ok(key) = warden_bundle::public_key(&public) {
        let _ = bundle.verify_signature(&key);
    }
    let Ok(mut policy) = compile(&bundle) else {
        return;
    };
    for role in [Role::Sidecar, Role::Gateway] {
        policy.set_proxy_role(role, GatewayRoutes::ALL);
        for service in bundle.spec.services.iter().take(8) {
            let names = service.hosts.iter().chain(&service.addresses).take(8);
            for name in names {
                for port in service.ports.iter().take(4) {
                    for protocol in [0, 1] {
                        let input = FuzzRequest {
                            policy: 0,
                            protocol,
                            listener: 0,
                            mesh_routing: false,
                            host: Some(format!("{name}:{}", port.number)),
                            sni: Some(name.replace('*', "a")),
                            destination: None,
                            port: Some(port.number),
                            client: Some("spiffe://cluster.local/ns/web/sa/frontend".to_owned()),
                            method: Some("GET".to_owned()),
                            pick: 0,
                        };
                        check_with(&policy, &input);
                    }
                }
            }
        }
    }
});
