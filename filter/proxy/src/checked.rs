//! Which compiled forms a VM of this proxy has already decoded and checked, in proxy-wasm shared
//! data (one value per `vm_id`, seen by every VM of the process).
//!
//! Envoy configures a plugin first in a short-lived canary VM, then in the main thread's VM
//! and in one VM per worker; the main thread's VM never serves a stream. A VM that finds its
//! compiled form here (the same header, which fixes every byte of the tables through their
//! SHA-256) keeps the form's bytes and decodes the tables when its first stream needs them,
//! with every check (`root.rs`): the record saves the main thread's VM its tables, never a
//! check. Anything may write shared data under this `vm_id`, so the value is bytes until
//! parsed, and a record that lies only moves a refusal to the first stream.
//!
//! The value: up to [`KEEP`] entries, the newest first, each `header length (u16 LE) |
//! header | services (u32 LE)`.

use crate::host::Host;

/// The shared-data key.
pub const KEY: &str = "warden.checked_forms";
/// Entries kept: the forms of the last few reloads, and a few plugins' forms at once.
pub const KEEP: usize = 8;
/// Attempts to write the value when another VM writes it at the same time.
const ATTEMPTS: usize = 4;

/// The entries of a shared-data value, in order; parsing stops at the first malformed one.
fn entries(value: &[u8]) -> Vec<(&[u8], u32)> {
    let mut out = Vec::new();
    let mut rest = value;
    while out.len() < KEEP {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            break;
        };
        let Some((header, tail)) = tail.split_at_checked(usize::from(u16::from_le_bytes(*len)))
        else {
            break;
        };
        let Some((services, tail)) = tail.split_first_chunk::<4>() else {
            break;
        };
        out.push((header, u32::from_le_bytes(*services)));
        rest = tail;
    }
    out
}

fn encode(entries: &[(&[u8], u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (header, services) in entries {
        let Ok(len) = u16::try_from(header.len()) else {
            continue;
        };
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(header);
        out.extend_from_slice(&services.to_le_bytes());
    }
    out
}

/// The number of services of the compiled form with this header, if a VM of this proxy
/// decoded and checked it.
pub fn services(host: &dyn Host, header: &[u8]) -> Option<usize> {
    let (value, _) = host.shared_data(KEY).ok()?;
    let value = value?;
    entries(&value)
        .into_iter()
        .find(|(h, _)| *h == header)
        .and_then(|(_, services)| usize::try_from(services).ok())
}

/// Records that the compiled form with this header decoded and passed every check here.
/// Best effort: a record that cannot be written costs the other VMs only their own decode.
pub fn record(host: &dyn Host, header: &[u8], services: usize) {
    let Ok(services) = u32::try_from(services) else {
        return;
    };
    if u16::try_from(header.len()).is_err() {
        return;
    }
    for _ in 0..ATTEMPTS {
        let Ok((value, cas)) = host.shared_data(KEY) else {
            return;
        };
        let value = value.unwrap_or_default();
        let mut kept = vec![(header, services)];
        kept.extend(
            entries(&value)
                .into_iter()
                .filter(|(h, _)| *h != header)
                .take(KEEP - 1),
        );
        match host.set_shared_data(KEY, &encode(&kept), cas) {
            Ok(()) => return,
            Err(proxy_wasm::types::Status::CasMismatch) => continue,
            Err(status) => {
                log::debug!("could not record the checked compiled form: {status:?}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake::Fake;

    #[test]
    fn a_recorded_header_is_found_and_the_newest_are_kept() {
        let host = Fake::new();
        assert_eq!(services(&host, b"first"), None);
        record(&host, b"first", 5);
        assert_eq!(services(&host, b"first"), Some(5));
        assert_eq!(services(&host, b"firs"), None);
        for i in 0..KEEP {
            record(&host, format!("header {i}").as_bytes(), i);
        }
        assert_eq!(services(&host, b"first"), None, "the oldest is dropped");
        assert_eq!(services(&host, b"header 0"), Some(0));
        record(&host, b"header 0", 7);
        assert_eq!(
            services(&host, b"header 0"),
            Some(7),
            "a form recorded again is updated"
        );
        assert_eq!(
            services(&host, format!("header {}", KEEP - 1).as_bytes()),
            Some(KEEP - 1)
        );
    }

    #[test]
    fn any_value_parses_without_panicking_and_stops_at_damage() {
        let host = Fake::new();
        record(&host, b"abc", 3);
        let good = host.shared.borrow().get(KEY).unwrap().0.clone();
        for cut in 0..good.len() {
            assert!(entries(&good[..cut]).is_empty(), "cut at {cut}");
        }
        let mut longer = good.clone();
        longer.extend_from_slice(&[0xff, 0xff, 1, 2]);
        assert_eq!(entries(&longer), vec![(&b"abc"[..], 3)]);
        for byte in 0..=255u8 {
            let _ = entries(&[byte; 9]);
        }
    }

    #[test]
    fn a_record_that_cannot_be_written_is_skipped() {
        let host = Fake::new().failing("set_shared_data");
        record(&host, b"abc", 3);
        assert_eq!(services(&host, b"abc"), None);
        let host = Fake::new().failing("shared_data");
        record(&host, b"abc", 3);
        assert_eq!(services(&host, b"abc"), None);
    }
}
