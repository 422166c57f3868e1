//! Compiled policies as the filter receives them (`compiledPolicy`, or embedded): bytes are
//! framed as they come (checked framing and checksum), as compressed tables behind a header
//! whose checksum matches them (the first four bytes announce the inflated length), and as
//! tables compressed behind a matching header, as someone who rewrote tables and checksum
//! would send them.
//! Anything may be refused, nothing may panic, and whatever loads keeps the decision
//! properties.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_bundle::Role;
use warden_engine::compact::{frame, frame_compressed, open};
use warden_engine::{GatewayRoutes, Policy};
use warden_fuzz::{check_with, FuzzRequest};

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = open(data) {
        let _ = Policy::from_compact(&envelope);
    }
    if let Some((len, payload)) = data.split_first_chunk::<4>() {
        let announced = u32::from_le_bytes(*len) % (1 << 24);
        if let Ok(framed) = frame_compressed("", announced, payload) {
            if let Ok(envelope) = open(&framed) {
                let _ = Policy::from_compact(&envelope);
            }
        }
    }
    let Ok(framed) = frame("", data) else {
        return;
    };
    let Ok(envelope) = open(&framed) else {
        return;
    };
    let Ok(mut policy) = Policy::from_compact(&envelope) else {
        return;
    };
    for role in [Role::Sidecar, Role::Gateway] {
        policy.set_proxy_role(role, GatewayRoutes::ALL);
        for (host, port) in [("api.example.com", 443), ("10.0.0.1", 5432), ("a.b.c", 80)] {
            for protocol in [0, 1] {
                check_with(
                    &policy,
                    &FuzzRequest {
                        policy: 0,
                        protocol,
                        listener: 0,
                        mesh_routing: false,
                        host: Some(format!("{host}:{port}")),
                        sni: Some(host.to_owned()),
                        destination: host.parse().ok(),
                        port: Some(port),
                        client: Some("spiffe://cluster.local/ns/web/sa/frontend".to_owned()),
                        method: Some("GET".to_owned()),
                        pick: 0,
                    },
                );
            }
        }
    }
});
