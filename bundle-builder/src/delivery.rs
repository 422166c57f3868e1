//! Whether Envoy took a bundle delivered through an ECDS file: its admin interface counts each
//! update of the discovered filter config as a success or a rejection and shows the version
//! serving (`extension_config_discovery.http_filter.warden.*`). `build --ecds` and `watch` say
//! "accepted" or "rejected" from these, not from having written a file.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::render::envoy::ECDS_RESOURCE;

/// The ECDS counters of Warden's HTTP filter config at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EcdsStats {
    pub success: u64,
    pub rejected: u64,
    /// The version serving (the bundle's digest), once one was accepted.
    pub version: Option<String>,
}

/// What became of an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// Envoy applied it; `version` is what serves now.
    Accepted { version: Option<String> },
    /// Envoy rejected it and serves on with `version` (the filter logs why: `refused
    /// configuration: ...`).
    Rejected { version: Option<String> },
    /// Envoy did not take up the file within the time given.
    NoAnswer,
}

/// A GET on the admin interface (loopback; one request per connection, read to the end).
fn admin_get(admin: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&admin, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    if !head.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!(
            "admin {admin}{path}: {}",
            head.lines().next().unwrap_or("no answer")
        )));
    }
    let chunked = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    Ok(if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    })
}

/// The payload of a chunked body (`SIZE\r\nDATA\r\n`..., ending with size 0).
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16);
        match size {
            Ok(n) if n > 0 && rest.len() >= n && rest.is_char_boundary(n) => {
                let (data, tail) = rest.split_at(n);
                out.push_str(data);
                body = tail.strip_prefix("\r\n").unwrap_or(tail);
            }
            _ => break,
        }
    }
    out
}

/// The counters now.
pub fn ecds_stats(admin: SocketAddr) -> std::io::Result<EcdsStats> {
    let prefix = format!("extension_config_discovery.http_filter.{ECDS_RESOURCE}.");
    let body = admin_get(admin, &format!("/stats?filter=^{prefix}"))?;
    let mut stats = EcdsStats::default();
    for line in body.lines() {
        let Some((name, value)) = line
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split_once(": "))
        else {
            continue;
        };
        match name {
            "update_success" => stats.success = value.trim().parse().unwrap_or(0),
            "update_rejected" => stats.rejected = value.trim().parse().unwrap_or(0),
            "version_text" => {
                let version = value.trim().trim_matches('"');
                stats.version = (!version.is_empty()).then(|| version.to_owned());
            }
            _ => {}
        }
    }
    Ok(stats)
}

/// Waits up to `timeout` for Envoy to count the update written after `before` was read.
pub fn confirm(
    admin: SocketAddr,
    before: &EcdsStats,
    timeout: Duration,
) -> std::io::Result<Confirmation> {
    let deadline = Instant::now() + timeout;
    loop {
        let now = ecds_stats(admin)?;
        if now.rejected > before.rejected {
            return Ok(Confirmation::Rejected {
                version: now.version,
            });
        }
        if now.success > before.success {
            return Ok(Confirmation::Accepted {
                version: now.version,
            });
        }
        if Instant::now() >= deadline {
            return Ok(Confirmation::NoAnswer);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One line for people, and whether the update is serving.
pub fn describe(confirmation: &Confirmation, digest: &str, timeout: Duration) -> (String, bool) {
    let serving = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".to_owned());
    match confirmation {
        Confirmation::Accepted { version } if version.as_deref() == Some(digest) => {
            (format!("Envoy accepted {digest}"), true)
        }
        Confirmation::Accepted { version } => (
            format!(
                "Envoy accepted an update, but serves {} (another writer?), not {digest}",
                serving(version)
            ),
            false,
        ),
        Confirmation::Rejected { version } => (
            format!(
                "Envoy rejected {digest} and serves {} on; the filter logs why in Envoy's log (\"refused configuration: ...\")",
                serving(version)
            ),
            false,
        ),
        Confirmation::NoAnswer => (
            format!(
                "Envoy did not take up {digest} within {} s (is it watching this ECDS file?)",
                timeout.as_secs()
            ),
            false,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(
            dechunk("5\r\nab\ncd\r\n3\r\nef\n\r\n0\r\n\r\n"),
            "ab\ncdef\n"
        );
        assert_eq!(dechunk("zz\r\nbroken"), "");
        assert_eq!(dechunk("9\r\nshort"), "");
    }
}
