//! Authority and host normalisation (HTTP `:authority` / `Host`, and the names and addresses
//! everything else is matched on): no panic, canonical results, and a round trip through the
//! canonical spelling.
#![no_main]
#![allow(clippy::panic)]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use warden_engine::{
    canonical_ip, parse_authority, parse_host, parse_ipv4_spelling, Host, HostBuf,
};

fuzz_target!(|data: &[u8]| {
    // The glue hands the engine text only: a header that is not UTF-8 is `invalid_host`.
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let mut buf = HostBuf::new();
    if let Ok(authority) = parse_authority(raw, &mut buf) {
        canonical(authority.host);
        let spelled = authority.to_string();
        let mut again_buf = HostBuf::new();
        match parse_authority(&spelled, &mut again_buf) {
            Ok(again) if again == authority => {}
            other => panic!("{raw:?} -> {spelled:?} parses as {other:?}, not {authority:?}"),
        }
    }
    let mut buf = HostBuf::new();
    if let Ok(host) = parse_host(raw, &mut buf) {
        canonical(host);
    }
    // Every spelling std accepts is the same address to us (std takes dotted decimal only).
    if let Ok(std_ip) = raw.parse::<Ipv4Addr>() {
        let mut buf = HostBuf::new();
        match parse_host(raw, &mut buf) {
            Ok(Host::Ip(ip)) if ip == std::net::IpAddr::V4(std_ip) => {}
            other => panic!("{raw:?} is {std_ip} but parses as {other:?}"),
        }
        if parse_ipv4_spelling(raw) != Some(std_ip) {
            panic!("{raw:?}: parse_ipv4_spelling disagrees with std");
        }
    }
});

/// A normalised host: a lowercase name without a trailing dot that parses to itself, or an
/// address in its canonical form.
fn canonical(host: Host<'_>) {
    match host {
        Host::Name(name) => {
            if name.bytes().any(|b| b.is_ascii_uppercase()) || name.ends_with('.') {
                panic!("not normalised: {name:?}");
            }
            let mut buf = HostBuf::new();
            match parse_host(name, &mut buf) {
                Ok(Host::Name(again)) if again == name => {}
                other => panic!("{name:?} parses again as {other:?}"),
            }
        }
        Host::Ip(ip) => {
            if canonical_ip(ip) != ip {
                panic!("not canonical: {ip}");
            }
        }
    }
}
