//! Host normalisation: the one place where an authority or SNI becomes a name or an address.
//!
//! Every match runs on the result of [`parse_authority`], never on raw input. The rules:
//! lowercase; one trailing dot dropped; the port split off; IPv6 brackets removed; an
//! IPv4-mapped IPv6 address becomes the IPv4 address; and a name whose last label is numeric
//! is read as an IPv4 address the way URL parsers and `inet_aton` read it (`169083652`,
//! `0xa.20.3.4`, `012.024.3.4`, `10.20.772`), or refused if it is not one. No spelling of an
//! address can therefore reach a destination its canonical form would not.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The longest host name DNS allows, in bytes.
pub const MAX_HOST_LEN: usize = 253;
/// The longest label DNS allows, in bytes.
pub const MAX_LABEL_LEN: usize = 63;

/// Why a host is not acceptable. Every variant maps to the decision reason `invalid_host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidHost {
    #[error("the host is empty")]
    Empty,
    #[error("the host is longer than {MAX_HOST_LEN} bytes")]
    TooLong,
    #[error("the host has an empty label")]
    EmptyLabel,
    #[error("a label of the host is longer than {MAX_LABEL_LEN} bytes")]
    LabelTooLong,
    #[error("the host contains a character that is not allowed in a host name")]
    IllegalCharacter,
    #[error("the host ends in a number but is not a valid IPv4 address")]
    InvalidIpv4,
    #[error("the host is not a valid bracketed IPv6 address")]
    InvalidIpv6,
    #[error("the port is not a number from 1 to 65535")]
    InvalidPort,
}

/// Room for one lowercased host name. Normalising borrows the input when it is already
/// lowercase and writes here only when it is not, so a request's host never allocates.
#[derive(Debug, Clone)]
pub struct HostBuf([u8; MAX_HOST_LEN]);

impl HostBuf {
    pub fn new() -> Self {
        Self([0; MAX_HOST_LEN])
    }
}

impl Default for HostBuf {
    fn default() -> Self {
        Self::new()
    }
}

/// A destination host after normalisation: a lowercase name, or an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    Name(&'a str),
    Ip(IpAddr),
}

/// A normalised authority: the host and the port it named, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authority<'a> {
    pub host: Host<'a>,
    pub port: Option<u16>,
}

impl fmt::Display for Authority<'_> {
    /// The canonical spelling; parsing it again gives the same authority.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host {
            Host::Name(name) => f.write_str(name)?,
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}")?,
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// Normalises an HTTP authority, a `Host` header value or a TLS SNI. The result borrows
/// `raw`, or `buf` when the name had to be lowercased.
pub fn parse_authority<'a>(
    raw: &'a str,
    buf: &'a mut HostBuf,
) -> Result<Authority<'a>, InvalidHost> {
    if raw.is_empty() {
        return Err(InvalidHost::Empty);
    }
    if let Some(rest) = raw.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or(InvalidHost::InvalidIpv6)?;
        let ip: Ipv6Addr = inside.parse().map_err(|_| InvalidHost::InvalidIpv6)?;
        let port = match after {
            "" => None,
            _ => Some(parse_port(
                after.strip_prefix(':').ok_or(InvalidHost::InvalidPort)?,
            )?),
        };
        return Ok(Authority {
            host: Host::Ip(canonical_ip(IpAddr::V6(ip))),
            port,
        });
    }
    let (host, port) = match raw.split_once(':') {
        None => (raw, None),
        Some((host, port)) if !port.contains(':') => (host, Some(parse_port(port)?)),
        // More than one colon and no brackets: only a bare IPv6 literal is acceptable.
        Some(_) => {
            let ip: Ipv6Addr = raw.parse().map_err(|_| InvalidHost::InvalidIpv6)?;
            return Ok(Authority {
                host: Host::Ip(canonical_ip(IpAddr::V6(ip))),
                port: None,
            });
        }
    };
    Ok(Authority {
        host: parse_host(host, buf)?,
        port,
    })
}

/// Normalises a host without a port: a name, or an address in any IPv4 spelling.
pub fn parse_host<'a>(raw: &'a str, buf: &'a mut HostBuf) -> Result<Host<'a>, InvalidHost> {
    let trimmed = raw.strip_suffix('.').unwrap_or(raw);
    if trimmed.is_empty() {
        return Err(if raw.is_empty() {
            InvalidHost::Empty
        } else {
            InvalidHost::EmptyLabel
        });
    }
    if trimmed.len() > MAX_HOST_LEN {
        return Err(InvalidHost::TooLong);
    }
    let mut label_len = 0usize;
    let mut has_upper = false;
    for byte in trimmed.bytes() {
        match byte {
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => label_len += 1,
            b'A'..=b'Z' => {
                has_upper = true;
                label_len += 1;
            }
            b'.' if label_len == 0 => return Err(InvalidHost::EmptyLabel),
            b'.' => label_len = 0,
            _ => return Err(InvalidHost::IllegalCharacter),
        }
        if label_len > MAX_LABEL_LEN {
            return Err(InvalidHost::LabelTooLong);
        }
    }
    if label_len == 0 {
        return Err(InvalidHost::EmptyLabel);
    }
    let text: &'a str = if has_upper {
        let out = buf.0.get_mut(..trimmed.len()).ok_or(InvalidHost::TooLong)?;
        for (slot, byte) in out.iter_mut().zip(trimmed.bytes()) {
            *slot = byte.to_ascii_lowercase();
        }
        // Only ASCII letters, digits, '-', '_' and '.' were written.
        std::str::from_utf8(out).map_err(|_| InvalidHost::IllegalCharacter)?
    } else {
        trimmed
    };
    let last_label = text.rsplit('.').next().unwrap_or(text);
    if ends_in_number(last_label) {
        return parse_ipv4_spelling(text)
            .map(|ip| Host::Ip(IpAddr::V4(ip)))
            .ok_or(InvalidHost::InvalidIpv4);
    }
    Ok(Host::Name(text))
}

/// `0.0.0.0/8` and `::` (in any spelling, IPv4-mapped included): addresses that name no
/// destination, and that a connect(2) sends to the local host.
pub fn is_unspecified(ip: IpAddr) -> bool {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => v4.octets()[0] == 0,
        IpAddr::V6(v6) => v6.is_unspecified(),
    }
}

/// Maps IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) to the IPv4 address they carry.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn parse_port(text: &str) -> Result<u16, InvalidHost> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InvalidHost::InvalidPort);
    }
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(InvalidHost::InvalidPort),
        Ok(port) => Ok(port),
    }
}

/// The WHATWG URL rule: a host whose last label is a number is an IPv4 address or nothing.
fn ends_in_number(label: &str) -> bool {
    if !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    match label.strip_prefix("0x") {
        Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => false,
    }
}

/// Reads an IPv4 address the way `inet_aton` and URL parsers do: one to four parts, each
/// decimal, octal (leading `0`) or hexadecimal (`0x`); the last part fills the remaining bytes.
pub fn parse_ipv4_spelling(text: &str) -> Option<Ipv4Addr> {
    let mut parts = [0u64; 4];
    let mut count = 0usize;
    for part in text.split('.') {
        let slot = parts.get_mut(count)?;
        *slot = parse_ipv4_part(part)?;
        count += 1;
    }
    let (last, leading) = parts.get(..count)?.split_last()?;
    if leading.iter().any(|&p| p > 255) {
        return None;
    }
    let remaining_bytes = 4 - leading.len();
    if *last >= 1u64 << (8 * remaining_bytes) {
        return None;
    }
    let mut value = *last;
    for (i, &part) in leading.iter().enumerate() {
        value |= part << (8 * (3 - i));
    }
    u32::try_from(value).ok().map(Ipv4Addr::from)
}

fn parse_ipv4_part(part: &str) -> Option<u64> {
    if part.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x") {
        (hex, 16)
    } else if let Some(octal) = part.strip_prefix('0').filter(|rest| !rest.is_empty()) {
        (octal, 8)
    } else {
        (part, 10)
    };
    if digits.is_empty() {
        // `0x` alone is zero, as URL parsers read it.
        return Some(0);
    }
    // Anything above 32 bits is out of range for every position; cap the work.
    if digits.len() > 32 {
        return None;
    }
    u64::from_str_radix(digits, radix)
        .ok()
        .filter(|&v| v <= u64::from(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn ip(text: &str) -> Host<'static> {
        Host::Ip(text.parse().unwrap())
    }

    /// The normalised host, as an owned string (names) or the address.
    fn host(text: &str) -> Host<'static> {
        let mut buf = HostBuf::new();
        match parse_authority(text, &mut buf).unwrap().host {
            Host::Name(n) => Host::Name(Box::leak(n.to_owned().into_boxed_str())),
            Host::Ip(ip) => Host::Ip(ip),
        }
    }

    fn parse(text: &str) -> Result<String, InvalidHost> {
        let mut buf = HostBuf::new();
        parse_authority(text, &mut buf).map(|a| a.to_string())
    }

    /// Names are lowercased and lose one trailing dot.
    #[test]
    fn names_are_lowercased_and_lose_one_trailing_dot() {
        assert_eq!(host("API.Example.COM."), Host::Name("api.example.com"));
        assert_eq!(host("already.lower"), Host::Name("already.lower"));
        assert_eq!(parse("a.com.."), Err(InvalidHost::EmptyLabel));
    }

    /// The port is split off and must be a number from 1 to 65535.
    #[test]
    fn port_is_split_off_and_checked() {
        assert_eq!(
            parse("DB.example.com:5432").as_deref(),
            Ok("db.example.com:5432")
        );
        assert_eq!(parse("a.com:0"), Err(InvalidHost::InvalidPort));
        assert_eq!(parse("a.com:65536"), Err(InvalidHost::InvalidPort));
        assert_eq!(parse("a.com:"), Err(InvalidHost::InvalidPort));
        assert_eq!(parse("a.com:+80"), Err(InvalidHost::InvalidPort));
    }

    /// Every inet_aton spelling of 10.20.3.4 denotes 10.20.3.4.
    #[test]
    fn ipv4_spellings_denote_the_same_address() {
        for spelling in [
            "10.20.3.4",
            "169083652",
            "0xa.20.3.4",
            "0XA.0x14.3.4",
            "012.024.3.4",
            "10.20.772",
            "10.1311492",
            "0xa140304",
            "10.20.3.4.",
            "00000012.20.3.4",
        ] {
            assert_eq!(host(spelling), ip("10.20.3.4"), "{spelling}");
        }
    }

    /// A name ending in a number that is not an address is refused, not treated as a name.
    #[test]
    fn numeric_last_label_that_is_not_an_address_is_invalid() {
        for bad in [
            "256.1.1.1",
            "1.2.3.4.5",
            "example.123",
            "08.1.1.1",
            "1.2.3.0x100",
            "4294967296",
        ] {
            assert_eq!(parse(bad), Err(InvalidHost::InvalidIpv4), "{bad}");
        }
    }

    /// IPv6 literals lose their brackets; IPv4-mapped ones become the IPv4 address.
    #[test]
    fn ipv6_brackets_and_mapped_ipv4() {
        assert_eq!(host("[2001:DB8::1]:443"), ip("2001:db8::1"));
        assert_eq!(host("[::ffff:10.20.3.4]"), ip("10.20.3.4"));
        assert_eq!(host("[::ffff:a14:304]:80"), ip("10.20.3.4"));
        assert_eq!(host("::1"), ip("::1"));
        assert_eq!(parse("[fe80::1%25eth0]"), Err(InvalidHost::InvalidIpv6));
        assert_eq!(parse("[::1]x"), Err(InvalidHost::InvalidPort));
    }

    /// Characters outside letters, digits, hyphen and underscore are refused.
    #[test]
    fn illegal_characters_and_lengths_are_refused() {
        for bad in [
            "exa mple.com",
            "a/b.com",
            "*.example.com",
            "ex%41.com",
            "é.com",
            "a@b.com",
        ] {
            assert_eq!(parse(bad), Err(InvalidHost::IllegalCharacter), "{bad}");
        }
        assert_eq!(parse(""), Err(InvalidHost::Empty));
        assert_eq!(parse("."), Err(InvalidHost::EmptyLabel));
        assert_eq!(parse(".a.com"), Err(InvalidHost::EmptyLabel));
        let long_label = format!("{}.com", "a".repeat(64));
        assert_eq!(parse(&long_label), Err(InvalidHost::LabelTooLong));
        let long_host = vec!["abcdefghi"; 26].join(".");
        assert_eq!(parse(&long_host), Err(InvalidHost::TooLong));
    }
}
