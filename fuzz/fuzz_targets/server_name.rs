//! TLS server names: the gateway's `outbound_.PORT_._.HOST` form, and a connection decided on
//! any server name against the committed bundles (sidecar and gateway, both outbound modes,
//! every TCP listener kind): no panic, and an allow on a name goes to that name.
#![no_main]
#![allow(clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use warden_engine::{gateway_server_name, parse_gateway_server_name};
use warden_fuzz::{check, FuzzRequest};

/// Dialled addresses worth trying: none, loopback, a registered address, the unspecified ones.
const DESTINATIONS: [Option<IpAddr>; 6] = [
    None,
    Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    Some(IpAddr::V4(Ipv4Addr::new(10, 255, 0, 10))),
    Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 21))),
    Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
    Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
];

fuzz_target!(|data: &[u8]| {
    let [policy, listener, destination, port_hi, port_lo, rest @ ..] = data else {
        return;
    };
    // The glue reads the server name as text; one that is not UTF-8 is no server name.
    let Ok(sni) = std::str::from_utf8(rest) else {
        return;
    };
    if let (host, Some(port)) = parse_gateway_server_name(sni) {
        if !sni.ends_with(host) {
            panic!("{sni:?}: host {host:?} is not its tail");
        }
        let spelled = gateway_server_name(host, port);
        if parse_gateway_server_name(&spelled) != (host, Some(port)) {
            panic!("{sni:?} -> {spelled:?} does not parse back");
        }
    }
    let port = u16::from_be_bytes([*port_hi, *port_lo]);
    let input = FuzzRequest {
        policy: *policy,
        protocol: 1,
        listener: *listener,
        mesh_routing: false,
        host: None,
        sni: Some(sni.to_owned()),
        destination: DESTINATIONS
            .get(usize::from(*destination) % DESTINATIONS.len())
            .copied()
            .flatten(),
        port: (port != 0).then_some(port),
        client: Some("spiffe://cluster.local/ns/web/sa/frontend".to_owned()),
        method: None,
        pick: 0,
    };
    check(&input);
});
