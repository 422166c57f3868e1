//! Reading Envoy properties (attributes) into engine types.

use std::net::{IpAddr, SocketAddr};

use crate::host::Host;

/// A property as UTF-8 text; `None` when absent or not UTF-8.
pub fn text(host: &dyn Host, path: &[&str]) -> Option<String> {
    String::from_utf8(host.property(path)?).ok()
}

/// `destination.address` / `source.address`: `IP:port`, or a bare IP.
pub fn socket_address(host: &dyn Host, path: &[&str]) -> Option<(IpAddr, Option<u16>)> {
    let raw = text(host, path)?;
    if let Ok(sa) = raw.parse::<SocketAddr>() {
        return Some((sa.ip(), Some(sa.port())));
    }
    raw.parse::<IpAddr>().ok().map(|ip| (ip, None))
}

/// A little-endian integer property (Envoy returns ints as 8 bytes).
pub fn int(host: &dyn Host, path: &[&str]) -> Option<u64> {
    let bytes = host.property(path)?;
    bytes.get(..8)?.try_into().ok().map(u64::from_le_bytes)
}
