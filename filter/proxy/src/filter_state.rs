//! Setting Envoy filter state (the `set_envoy_filter_state` foreign function).
//!
//! Clients cannot forge filter state (unlike headers such as `x-envoy-original-dst-host`), so
//! the filter steers the upstream through it. The argument is the protobuf message
//! `envoy.source.extensions.common.wasm.SetEnvoyFilterStateArguments`
//! `{1: path (string), 2: value (string), 3: span (enum)}`, encoded here by hand: three fields
//! do not justify a protobuf code generator in the filter.

use crate::host::Host;
pub use crate::host::Span;

/// Filter state key naming the host the dynamic forward proxy connects to.
pub const DYNAMIC_HOST: &str = "envoy.upstream.dynamic_host";
/// Filter state key naming the port the dynamic forward proxy connects to.
pub const DYNAMIC_PORT: &str = "envoy.upstream.dynamic_port";
/// Filter state key naming the `IP:port` an `ORIGINAL_DST` cluster connects to.
pub const ORIGINAL_DST: &str = "envoy.network.transport_socket.original_dst_address";

/// Filter state key naming the cluster `tcp_proxy` connects to.
pub const TCP_PROXY_CLUSTER: &str = "envoy.tcp_proxy.cluster";
/// Filter state key overriding the SNI of the upstream TLS connection.
pub const UPSTREAM_SERVER_NAME: &str = "envoy.network.upstream_server_name";

/// Sets one filter state value; failures are logged, and the caller decides what they mean.
pub fn set(host: &dyn Host, path: &str, value: &str, span: Span) -> bool {
    let ok = host.set_filter_state(path, value, span);
    if !ok {
        log::error!("cannot set filter state {path}");
    }
    ok
}

/// Sets the host and port a dynamic forward proxy cluster connects to (both, or it would read
/// the port elsewhere).
pub fn set_target(host: &dyn Host, target: &str, port: u16, span: Span) -> bool {
    set(host, DYNAMIC_HOST, target, span) && set(host, DYNAMIC_PORT, &port.to_string(), span)
}

/// The argument of `set_envoy_filter_state`.
pub(crate) fn encode(path: &str, value: &str, span: Span) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + value.len() + 8);
    for (field, text) in [(1u8, path), (2u8, value)] {
        out.push(field << 3 | 2);
        varint(&mut out, text.len() as u64);
        out.extend_from_slice(text.as_bytes());
    }
    out.push(3 << 3);
    varint(&mut out, span as u64);
    out
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encoding is the protobuf wire format: tag, length, bytes; then the span varint.
    #[test]
    fn encodes_the_three_fields() {
        assert_eq!(
            encode("k", "10.0.0.1", Span::Request),
            [&[0x0a, 1, b'k', 0x12, 8][..], b"10.0.0.1", &[0x18, 1]].concat()
        );
    }

    /// Lengths of 128 and more take two varint bytes.
    #[test]
    fn long_values_use_multi_byte_lengths() {
        let value = "a".repeat(200);
        let bytes = encode("k", &value, Span::Request);
        assert_eq!(&bytes[3..6], &[0x12, 0xc8, 0x01]);
    }
}
