//! Property tests: the compiled lookups agree with naive definitions of the rules.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

mod support;

use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;
use proptest::prelude::*;
use support::*;
use warden_bundle::OutboundMode::RegistryOnly;
use warden_engine::{parse_authority, Authority, Host, HostBuf, Request, RequestProtocol};

/// CIDRs drawn from a small space so that they nest and collide often.
fn cidr() -> impl Strategy<Value = Ipv4Net> {
    (0u32..64, 0u8..=8).prop_map(|(high, extra)| {
        let prefix = 24 + extra.min(8);
        let addr = Ipv4Addr::from(0x0a00_0000 | (high << 2) << 8 | u32::from(extra) << 4);
        Ipv4Net::new(addr, prefix).unwrap().trunc()
    })
}

fn address_in_space() -> impl Strategy<Value = Ipv4Addr> {
    (0u32..(1 << 16)).prop_map(|low| Ipv4Addr::from(0x0a00_0000 | low))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// CIDR lookup equals a linear scan for the longest prefix (first service on ties).
    #[test]
    fn cidr_lookup_equals_linear_scan(
        nets in prop::collection::vec(cidr(), 1..40),
        probes in prop::collection::vec(address_in_space(), 1..40),
    ) {
        let services: Vec<_> = nets
            .iter()
            .enumerate()
            .map(|(i, net)| service(&format!("ns/s{i}"), &[], &[&net.to_string()], &[80]))
            .collect();
        let policy = compiled(&bundle(RegistryOnly, services, vec![]));
        for ip in probes {
            let expected = nets
                .iter()
                .enumerate()
                .filter(|(_, net)| net.contains(&ip))
                .max_by_key(|(i, net)| (net.prefix_len(), std::cmp::Reverse(*i)))
                .map(|(i, _)| format!("ns/s{i}"));
            let request = Request {
                protocol: RequestProtocol::Tcp,
                destination: Some(IpAddr::V4(ip)),
                port: Some(80),
                ..Request::default()
            };
            let got = policy.decide(&request).service().map(|s| s.service.to_string());
            prop_assert_eq!(got, expected, "address {}", ip);
        }
    }

    /// Wildcard and exact lookup equals a naive matcher: exact first, then the longest
    /// wildcard suffix strictly below the apex.
    #[test]
    fn host_lookup_equals_naive_matcher(
        patterns in prop::collection::btree_set("(\\*\\.)?[ab](\\.[ab]){0,3}", 1..20),
        probes in prop::collection::vec("[ab](\\.[ab]){0,4}", 1..30),
    ) {
        let patterns: Vec<String> = patterns.into_iter().collect();
        let services: Vec<_> = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| service(&format!("ns/s{i}"), &[p.as_str()], &[], &[80]))
            .collect();
        let policy = compiled(&bundle(RegistryOnly, services, vec![]));
        for host in probes {
            let exact = patterns.iter().position(|p| *p == host);
            let wildcard = patterns
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.strip_prefix("*.").map(|s| (i, s)))
                .filter(|(_, suffix)| host.ends_with(&format!(".{suffix}")))
                .max_by_key(|(_, suffix)| suffix.len())
                .map(|(i, _)| i);
            let expected = exact.or(wildcard).map(|i| format!("ns/s{i}"));
            let got = policy.decide(&http(&host)).service().map(|s| s.service.to_string());
            prop_assert_eq!(got, expected, "host {}", host);
        }
    }

    /// Normalisation is idempotent: the canonical spelling normalises to itself.
    #[test]
    fn normalisation_is_idempotent(raw in "[a-zA-Z0-9.:\\[\\]_-]{1,40}") {
        let (mut a, mut b) = (HostBuf::new(), HostBuf::new());
        if let Ok(first) = parse_authority(&raw, &mut a) {
            let canonical = first.to_string();
            let again = parse_authority(&canonical, &mut b);
            prop_assert_eq!(again, Ok(first), "{} -> {}", raw, canonical);
        }
    }

    /// Every inet_aton spelling of an IPv4 address normalises to that address.
    #[test]
    fn every_ipv4_spelling_is_the_same_address(
        addr in any::<u32>(),
        parts in 1usize..=4,
        radixes in prop::collection::vec(0u8..3, 4),
        uppercase in any::<bool>(),
        trailing_dot in any::<bool>(),
    ) {
        let bytes = addr.to_be_bytes();
        // The first parts-1 parts are single bytes; the last holds the rest.
        let mut values: Vec<u64> = bytes[..parts - 1].iter().map(|&b| u64::from(b)).collect();
        let rest = bytes[parts - 1..].iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
        values.push(rest);
        let mut text = values
            .iter()
            .zip(&radixes)
            .map(|(&v, &radix)| match radix {
                0 => v.to_string(),
                1 => format!("0{v:o}"),
                _ if uppercase => format!("0X{v:X}"),
                _ => format!("0x{v:x}"),
            })
            .collect::<Vec<_>>()
            .join(".");
        if trailing_dot {
            text.push('.');
        }
        let expected = Authority { host: Host::Ip(IpAddr::V4(Ipv4Addr::from(addr))), port: None };
        let mut buf = HostBuf::new();
        prop_assert_eq!(parse_authority(&text, &mut buf), Ok(expected), "{}", text);
    }
}

/// Claims that something may be ejected (forcing the linear path) but ejects nothing.
struct SlowPath;

impl warden_engine::Health for SlowPath {
    fn is_ejected(&self, _: &warden_engine::ResourceName, _: usize) -> bool {
        false
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The ranked fast path chooses exactly what the linear path chooses.
    #[test]
    fn ranked_choice_equals_linear_choice(
        endpoints in prop::collection::vec((0u8..3, 0u8..3, 0u32..4), 1..30),
        proxy in (0u8..3, 0u8..3),
        failover_to in prop::collection::vec(0u8..3, 0..3),
        picks in prop::collection::vec(any::<u64>(), 1..20),
    ) {
        use warden_bundle::{Endpoint, EndpointPort, Locality};
        let mut svc = service("db/orders", &["orders.mesh.internal"], &[], &[443]);
        svc.endpoints = endpoints
            .iter()
            .enumerate()
            .map(|(i, &(r, z, weight))| Endpoint {
                source: warden_bundle::Provenance::new(warden_bundle::ResourceKind::ExternalEndpoint, "db", format!("ep{i}")),
                address: format!("10.0.0.{i}"),
                ports: vec![EndpointPort { name: None, number: 443 }],
                locality: Locality::parse(&format!("r{r}/z{z}")),
                weight,
            })
            .collect();
        if !failover_to.is_empty() {
            svc.failover = vec![warden_bundle::LocalityMapping {
                from: Locality::parse(&format!("r{}", proxy.0)),
                to: failover_to.iter().map(|r| Locality::parse(&format!("r{r}"))).collect(),
            }];
        }
        let mut policy = compiled(&bundle(RegistryOnly, vec![svc], vec![]));
        let here = Locality::parse(&format!("r{}/z{}", proxy.0, proxy.1));
        policy.prepare_for(Some(here.clone()));
        let request = Request { locality: Some(&here), ..http("orders.mesh.internal:443") };
        for pick in picks {
            let fast = policy.decide_with(&request, &warden_engine::AllHealthy, pick);
            let slow = policy.decide_with(&request, &SlowPath, pick);
            prop_assert_eq!(fast.endpoint().map(|e| e.index), slow.endpoint().map(|e| e.index));
            prop_assert_eq!(fast.reason(), slow.reason());
        }
    }
}
