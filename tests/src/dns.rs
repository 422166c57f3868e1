//! DNS on loopback: a zone server (a second Envoy whose UDP DNS filter answers from a table,
//! standing for the "system resolver" and for the names of external hosts) and a client that
//! asks one question and returns the addresses.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde_json::json;

use crate::envoy::Envoy;
use crate::free_addr;

/// `ip:port` with a free UDP port.
pub fn free_udp_addr(ip: &str) -> SocketAddr {
    let ip: IpAddr = ip.parse().expect("ip");
    assert!(ip.is_loopback(), "tests only use loopback, not {ip}");
    UdpSocket::bind(SocketAddr::new(ip, 0))
        .expect("bind a free UDP port")
        .local_addr()
        .expect("local address")
}

/// The answer to one query: the response code and the A/AAAA addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub code: ResponseCode,
    pub addresses: Vec<IpAddr>,
}

/// Asks `server` for `name`'s `A` records (`AAAA` with `v6`), waiting up to 5 s.
pub fn query(server: SocketAddr, name: &str, v6: bool) -> std::io::Result<Answer> {
    let mut message = Message::new();
    message
        .set_id(0x5741)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true);
    let record_type = if v6 { RecordType::AAAA } else { RecordType::A };
    let name = Name::from_ascii(name).map_err(std::io::Error::other)?;
    message.add_query(Query::query(name, record_type));
    let bytes = message.to_vec().map_err(std::io::Error::other)?;
    let socket = UdpSocket::bind(SocketAddr::new(server.ip(), 0))?;
    socket.set_read_timeout(Some(Duration::from_secs(5)))?;
    socket.send_to(&bytes, server)?;
    let mut buf = [0u8; 4096];
    let (n, _) = socket.recv_from(&mut buf)?;
    let response = Message::from_vec(&buf[..n]).map_err(std::io::Error::other)?;
    let addresses = response
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    Ok(Answer {
        code: response.response_code(),
        addresses,
    })
}

/// A DNS server on loopback answering `names` (name, address) and nothing else.
pub struct Zone {
    pub addr: SocketAddr,
    _envoy: Envoy,
}

impl Zone {
    pub fn start(names: &[(&str, &str)]) -> Self {
        let addr = free_udp_addr("127.0.0.1");
        let admin = free_addr("127.0.0.1");
        let domains: Vec<_> = names
            .iter()
            .map(|(name, ip)| json!({ "name": name, "endpoint": { "address_list": { "address": [ip] } } }))
            .collect();
        let config = json!({
            "node": { "id": "zone", "cluster": "zone" },
            "admin": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": admin.port() } } },
            "static_resources": { "listeners": [{
                "name": "zone",
                "address": { "socket_address": { "protocol": "UDP", "address": addr.ip().to_string(), "port_value": addr.port() } },
                "udp_listener_config": {},
                "listener_filters": [{
                    "name": "envoy.filters.udp.dns_filter",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.udp.dns_filter.v3.DnsFilterConfig",
                        "stat_prefix": "zone",
                        "server_config": { "inline_dns_table": { "virtual_domains": domains } }
                    }
                }]
            }] }
        });
        let envoy = Envoy::start(&config, addr, admin);
        Self {
            addr,
            _envoy: envoy,
        }
    }
}
