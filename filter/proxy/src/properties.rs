//! Reading Envoy properties (attributes) into engine types.

use std::net::{IpAddr, SocketAddr};

use proxy_wasm::hostcalls;

/// A property as UTF-8 text.
pub fn text(path: &[&str]) -> Option<String> {
    let bytes = hostcalls::get_property(path.to_vec()).ok().flatten()?;
    String::from_utf8(bytes).ok()
}

/// `destination.address` / `source.address`: `IP:port`, or a bare IP.
pub fn socket_address(path: &[&str]) -> Option<(IpAddr, Option<u16>)> {
    let raw = text(path)?;
    if let Ok(sa) = raw.parse::<SocketAddr>() {
        return Some((sa.ip(), Some(sa.port())));
    }
    raw.parse::<IpAddr>().ok().map(|ip| (ip, None))
}
