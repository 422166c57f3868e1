//! The compiled policy as bytes: what `bundle-builder` compiles once and every filter VM
//! loads without parsing a bundle's JSON or compiling it again.
//!
//! An envelope holds the compiled tables ([`Policy`], encoded with `postcard`):
//!
//! ```text
//! header   "WARDENCP" | format u16 | flags u16 (0) | digest length u16 | bundle digest
//!          | engine version length u8 | engine version | payload length u32
//!          | tables length u32 | SHA-256 of the payload (32 bytes)
//! payload  the compiled tables, deflate-compressed (RFC 1951)
//! trailer  0 (unsigned), or 1 and an ed25519 signature over the header (64 bytes)
//! ```
//!
//! The tables are compressed because Envoy keeps several copies of a plugin's configuration
//! (measured: a do-nothing filter carrying 100,000 services' uncompressed tables, 12 MB of
//! base64, costs Envoy 100 MB and 0.4 s to start; compressed about ten times smaller); the filter
//! inflates them while it decodes them, so a VM never holds the uncompressed tables' bytes,
//! only the compressed ones and the decoded tables.
//!
//! All integers are little-endian. The tables are the engine's own types in order, so only the
//! engine release that wrote them reads them: the header names it, and a filter of another
//! release refuses them by name (as it does another `FORMAT`, the envelope's own layout). Hash
//! maps are written sorted by key (`crate::sorted_map`), so the bytes do not depend on the
//! platform that wrote them. The header names the bundle the tables were compiled from
//! and, through the payload's SHA-256, fixes every byte of the tables, so a signature over the
//! header covers everything the filter loads. [`open`] checks the framing and the checksum;
//! [`Policy::from_compact`] decodes the tables and checks every index they hold before any
//! request reads them: altered, truncated or malformed bytes are an error, never a policy.

use sha2::{Digest, Sha256};

pub use crate::error::CompactError;
use crate::policy::Policy;

/// The first bytes of every compiled policy.
pub const MAGIC: &[u8; 8] = b"WARDENCP";
/// The layout of the tables this engine writes and reads. A filter reads only its own format:
/// a compiled policy is rebuilt from its bundle by the matching `bundle-builder`.
pub const FORMAT: u16 = 5;
/// The engine release whose types the tables are: only it reads them.
pub const ENGINE: &str = env!("CARGO_PKG_VERSION");
/// The longest bundle digest a header holds.
const MAX_DIGEST: usize = 256;
const SIGNATURE_LEN: usize = 64;
/// The buffer between the inflater and the decoder, which holds a string whole: longer
/// strings are refused.
const LONGEST_STRING: usize = 64 * 1024;
/// Lists are reserved up front for at most this many times the compressed bytes (100,000
/// services decode to about 12 times theirs, natively 24): announced lengths beyond it are
/// not believed until the bytes are there.
const RESERVE_FACTOR: usize = 64;
/// How many times their compressed size the tables may inflate to (a registry's measure about
/// 10; deflate allows 1,032): beyond it a small configuration could make every VM decode
/// gigabytes. `frame` refuses to write such tables, `open` to read them.
const MAX_RATIO: usize = 64;
/// Tables this small may inflate further (a handful of services compress little).
const SMALL_TABLES: usize = 64 * 1024;

/// Whether `tables` bytes may come from `payload` compressed bytes.
fn inflation_allowed(tables: usize, payload: usize) -> bool {
    tables <= SMALL_TABLES.max(payload.saturating_mul(MAX_RATIO))
}

/// A compiled policy's framing, checked: the bundle digest, the signed header, the tables.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// The digest of the bundle the tables were compiled from (empty: none).
    pub digest: &'a str,
    /// The bytes a signature covers.
    pub header: &'a [u8],
    /// The encoded tables, compressed; their SHA-256 matched the header's.
    pub payload: &'a [u8],
    /// The length of the encoded tables once inflated, as the header announces it.
    pub tables_len: usize,
    /// An ed25519 signature over `header`, when the envelope carries one.
    pub signature: Option<&'a [u8; SIGNATURE_LEN]>,
}

/// Reads `len` bytes from the front of `rest`.
fn take<'a>(rest: &mut &'a [u8], len: usize, what: &'static str) -> Result<&'a [u8], CompactError> {
    let (head, tail) = rest
        .split_at_checked(len)
        .ok_or(CompactError::Truncated(what))?;
    *rest = tail;
    Ok(head)
}

fn take_array<const N: usize>(
    rest: &mut &[u8],
    what: &'static str,
) -> Result<[u8; N], CompactError> {
    let bytes = take(rest, N, what)?;
    bytes.try_into().map_err(|_| CompactError::Truncated(what))
}

/// Checks the framing and the payload's checksum. Nothing in the payload is decoded yet.
pub fn open(bytes: &[u8]) -> Result<Envelope<'_>, CompactError> {
    let (envelope, checksum) = framed(bytes)?;
    if Sha256::digest(envelope.payload).as_slice() != checksum {
        return Err(CompactError::Checksum);
    }
    Ok(envelope)
}

/// Opens again bytes that [`open`] accepted and that stayed in this process's memory since:
/// the framing is read (and checked) again, the payload's checksum is not computed again (a
/// filter that kept a configuration's bytes for later saves hashing them twice).
///
/// Never for bytes from outside: the envelope it returns does not promise that the payload
/// matches the header's checksum, so a signature over the header says nothing about it.
pub fn reopen(bytes: &[u8]) -> Result<Envelope<'_>, CompactError> {
    framed(bytes).map(|(envelope, _)| envelope)
}

/// The framing checked, and the checksum the header gives.
fn framed(bytes: &[u8]) -> Result<(Envelope<'_>, [u8; 32]), CompactError> {
    let mut rest = bytes;
    if take(&mut rest, MAGIC.len(), "magic").ok() != Some(&MAGIC[..]) {
        return Err(CompactError::NotCompiled);
    }
    let found = u16::from_le_bytes(take_array(&mut rest, "format")?);
    if found != FORMAT {
        return Err(CompactError::Format {
            found,
            expected: FORMAT,
        });
    }
    let flags = u16::from_le_bytes(take_array(&mut rest, "flags")?);
    if flags != 0 {
        return Err(CompactError::Malformed(format!(
            "unknown header flags {flags:#06x}"
        )));
    }
    let digest_len = usize::from(u16::from_le_bytes(take_array(&mut rest, "digest")?));
    if digest_len > MAX_DIGEST {
        return Err(CompactError::Malformed(format!(
            "a bundle digest of {digest_len} bytes"
        )));
    }
    let digest = std::str::from_utf8(take(&mut rest, digest_len, "digest")?)
        .map_err(|_| CompactError::Malformed("the bundle digest is not UTF-8".into()))?;
    let [engine_len] = take_array::<1>(&mut rest, "engine version")?;
    let engine = take(&mut rest, usize::from(engine_len), "engine version")?;
    if engine != ENGINE.as_bytes() {
        return Err(CompactError::Engine {
            found: String::from_utf8_lossy(engine).into_owned(),
            expected: ENGINE,
        });
    }
    let payload_len = u32::from_le_bytes(take_array(&mut rest, "payload length")?);
    let tables_len = u32::from_le_bytes(take_array(&mut rest, "tables length")?);
    let tables_len =
        usize::try_from(tables_len).map_err(|_| CompactError::Malformed("tables length".into()))?;
    let checksum: [u8; 32] = take_array(&mut rest, "checksum")?;
    let header_len = bytes.len() - rest.len();
    let header = bytes
        .get(..header_len)
        .ok_or(CompactError::Truncated("header"))?;
    let payload_len = usize::try_from(payload_len)
        .map_err(|_| CompactError::Malformed("payload length".into()))?;
    let payload = take(&mut rest, payload_len, "tables")?;
    if !inflation_allowed(tables_len, payload_len) {
        return Err(CompactError::Malformed(format!(
            "{payload_len} compressed bytes announce {tables_len} bytes of tables, more than \
             {MAX_RATIO} times as many"
        )));
    }
    let signature = match take(&mut rest, 1, "trailer")? {
        [0] => None,
        [1] => Some(
            take(&mut rest, SIGNATURE_LEN, "signature")?
                .try_into()
                .map_err(|_| CompactError::Truncated("signature"))?,
        ),
        other => {
            return Err(CompactError::Malformed(format!(
                "unknown trailer {other:?}"
            )))
        }
    };
    if !rest.is_empty() {
        return Err(CompactError::Malformed(format!(
            "{} bytes after the trailer",
            rest.len()
        )));
    }
    Ok((
        Envelope {
            digest,
            header,
            payload,
            tables_len,
            signature,
        },
        checksum,
    ))
}

/// The whole envelope's length (at most: as if signed) that a header announces, from the first
/// bytes of an envelope; `None` until the header is complete or when it is not one. For sizing
/// a buffer once; `open` checks everything.
pub fn expected_len(prefix: &[u8]) -> Option<usize> {
    let mut rest = prefix;
    take(&mut rest, MAGIC.len() + 4, "").ok()?;
    let digest_len = usize::from(u16::from_le_bytes(take_array(&mut rest, "").ok()?));
    take(&mut rest, digest_len, "").ok()?;
    let [engine_len] = take_array::<1>(&mut rest, "").ok()?;
    take(&mut rest, usize::from(engine_len), "").ok()?;
    let payload_len = u32::from_le_bytes(take_array(&mut rest, "").ok()?);
    take(&mut rest, 4 + 32, "").ok()?;
    let header = prefix.len() - rest.len();
    usize::try_from(payload_len)
        .ok()?
        .checked_add(header + 1 + SIGNATURE_LEN)
}

/// The envelope of `bytes` (unsigned, or signed) with `signature` over its header instead.
pub fn with_signature(
    bytes: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<Vec<u8>, CompactError> {
    let envelope = open(bytes)?;
    let mut out = Vec::with_capacity(envelope.header.len() + envelope.payload.len() + 65);
    out.extend_from_slice(envelope.header);
    out.extend_from_slice(envelope.payload);
    out.push(1);
    out.extend_from_slice(signature);
    Ok(out)
}

/// An unsigned envelope around encoded tables `tables` compiled from the bundle `digest`,
/// compressing them. (Tools and fuzzing frame tables this way; [`Policy::to_compact`] frames
/// its own.)
pub fn frame(digest: &str, tables: &[u8]) -> Result<Vec<u8>, CompactError> {
    let tables_len = u32::try_from(tables.len())
        .map_err(|_| CompactError::Encode("the tables exceed 4 GiB".into()))?;
    let payload = deflate(tables)?;
    if !inflation_allowed(tables.len(), payload.len()) {
        return Err(CompactError::Encode(format!(
            "the tables compress {} times (from {} to {} bytes), and a filter reads tables that \
             compress at most {MAX_RATIO} times",
            tables.len() / payload.len().max(1),
            tables.len(),
            payload.len()
        )));
    }
    frame_compressed(digest, tables_len, &payload)
}

/// The tables compressed as the envelope carries them.
fn deflate(tables: &[u8]) -> Result<Vec<u8>, CompactError> {
    use std::io::Write as _;
    let mut encoder = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(tables.len() / 4),
        flate2::Compression::default(),
    );
    encoder
        .write_all(tables)
        .and_then(|()| encoder.finish())
        .map_err(|e| CompactError::Encode(format!("compressing the tables: {e}")))
}

/// An unsigned envelope around an already compressed `payload` that inflates to `tables_len`
/// bytes of tables (or claims to: fuzzing frames arbitrary bytes this way).
pub fn frame_compressed(
    digest: &str,
    tables_len: u32,
    payload: &[u8],
) -> Result<Vec<u8>, CompactError> {
    let digest_len = u16::try_from(digest.len())
        .ok()
        .filter(|&l| usize::from(l) <= MAX_DIGEST)
        .ok_or_else(|| CompactError::Encode("the bundle digest is too long".into()))?;
    let payload_len = u32::try_from(payload.len())
        .map_err(|_| CompactError::Encode("the tables exceed 4 GiB".into()))?;
    let mut out = Vec::with_capacity(payload.len() + digest.len() + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&digest_len.to_le_bytes());
    out.extend_from_slice(digest.as_bytes());
    let engine_len = u8::try_from(ENGINE.len())
        .map_err(|_| CompactError::Encode("the engine version is too long".into()))?;
    out.push(engine_len);
    out.extend_from_slice(ENGINE.as_bytes());
    out.extend_from_slice(&payload_len.to_le_bytes());
    out.extend_from_slice(&tables_len.to_le_bytes());
    out.extend_from_slice(&Sha256::digest(payload));
    out.extend_from_slice(payload);
    out.push(0);
    Ok(out)
}

impl Policy {
    /// The policy as an unsigned compiled-policy envelope (see the module documentation),
    /// read back as a filter reads it: what the filter would refuse (a string longer than it
    /// reads, say) is an error here, not in every proxy.
    pub fn to_compact(&self) -> Result<Vec<u8>, CompactError> {
        let payload =
            postcard::to_allocvec(self).map_err(|e| CompactError::Encode(e.to_string()))?;
        let bytes = frame(
            self.settings.digest.as_deref().unwrap_or_default(),
            &payload,
        )?;
        open(&bytes)
            .and_then(|envelope| Policy::from_compact(&envelope))
            .map_err(|e| CompactError::Encode(format!("a filter would refuse it: {e}")))?;
        Ok(bytes)
    }

    /// Decodes an opened envelope's tables and checks them: every index they hold points
    /// inside its table, and the bundle digest matches the header's. Endpoints are ranked for
    /// the locality the policy was prepared for, as [`crate::compile`] leaves them.
    pub fn from_compact(envelope: &Envelope<'_>) -> Result<Self, CompactError> {
        let mut policy = inflate_and_decode(envelope)?;
        if policy.settings.digest.as_deref().unwrap_or_default() != envelope.digest {
            return Err(CompactError::Malformed(
                "the tables name another bundle digest than the header".into(),
            ));
        }
        policy.check().map_err(CompactError::Malformed)?;
        let locality = policy.prepared_for.take();
        policy.prepare_for(locality);
        Ok(policy)
    }
}

/// Decodes the tables while inflating them: the inflated bytes pass through a small buffer,
/// never held whole. Exactly `tables_len` bytes must inflate, and the tables must end there.
fn inflate_and_decode(envelope: &Envelope<'_>) -> Result<Policy, CompactError> {
    use std::io::Read as _;
    let announced = u64::try_from(envelope.tables_len).unwrap_or(u64::MAX);
    let mut inflater = flate2::read::DeflateDecoder::new(envelope.payload);
    let not_deflate = |e: &dyn std::fmt::Display| {
        CompactError::Malformed(format!("the tables are not deflate data: {e}"))
    };
    let mut decoder = postcard::Deserializer::from_flavor(crate::refill::Refill::new(
        (&mut inflater).take(announced),
        LONGEST_STRING,
    ));
    let bound = envelope.payload.len().saturating_mul(RESERVE_FACTOR);
    crate::decode_error::take();
    let decoded = crate::exact_seq::bounded(bound, || {
        <Policy as serde::Deserialize>::deserialize(&mut decoder)
    });
    let refusal = crate::decode_error::take();
    let Ok(mut tables) = decoder.finalize() else {
        return Err(CompactError::Malformed("the decoder lost its input".into()));
    };
    let policy = match decoded {
        Ok(policy) => policy,
        Err(e) => {
            return Err(match tables.error() {
                Some(inflate) => not_deflate(inflate),
                None if e == postcard::Error::SerdeDeCustom && refusal.is_some() => {
                    CompactError::Malformed(refusal.unwrap_or_default())
                }
                // The tables had not ended: the buffer could not hold a string.
                None if e == postcard::Error::DeserializeUnexpectedEnd && !tables.ended() => {
                    CompactError::Malformed(format!(
                        "a string in the tables is longer than the {} KiB a filter reads",
                        LONGEST_STRING / 1024
                    ))
                }
                None if e == postcard::Error::DeserializeUnexpectedEnd => {
                    CompactError::Malformed(format!(
                        "the tables end after {} bytes, before they are complete (the header says {announced})",
                        tables.read()
                    ))
                }
                None => CompactError::Malformed(e.to_string()),
            });
        }
    };
    // Whatever the decoder left unread is not tables (counted, not kept).
    let after =
        std::io::copy(tables.reader(), &mut std::io::sink()).map_err(|e| not_deflate(&e))?;
    let inflated = tables.read().saturating_add(after);
    let rest = after.saturating_add(u64::try_from(tables.unread()).unwrap_or(u64::MAX));
    if rest > 0 {
        return Err(CompactError::Malformed(format!(
            "{rest} bytes after the tables"
        )));
    }
    if inflated != announced {
        return Err(CompactError::Malformed(format!(
            "the tables inflate to {inflated} bytes, and the header says {announced}"
        )));
    }
    let mut beyond = [0u8; 1];
    let compressed = u64::try_from(envelope.payload.len()).unwrap_or(u64::MAX);
    match inflater.read(&mut beyond) {
        Ok(0) if inflater.total_in() != compressed => Err(CompactError::Malformed(format!(
            "{} bytes after the compressed tables",
            compressed.saturating_sub(inflater.total_in())
        ))),
        Ok(0) => Ok(policy),
        Ok(_) => Err(CompactError::Malformed(format!(
            "the tables inflate to more than the {announced} bytes the header says"
        ))),
        Err(e) => Err(not_deflate(&e)),
    }
}

impl Policy {
    /// Checks that every index the decoded tables hold points inside its table, so that a
    /// decision never reads past one (the engine would find nothing there, which is still a
    /// wrong answer).
    fn check(&self) -> Result<(), String> {
        let services = self.services.len();
        self.hosts.check(&self.sets, services)?;
        self.v4.check(&self.sets, services)?;
        self.v6.check(&self.sets, services)?;
        if self
            .virtual_addresses
            .values()
            .any(|&s| s as usize >= services)
        {
            return Err("a virtual address names a service that does not exist".into());
        }
        let views = match &self.views {
            Some(views) => {
                views.check()?;
                views.len()
            }
            None => 0,
        };
        // Each name was checked for its `/` as it was decoded.
        if self.names.len() != services {
            return Err(format!(
                "the tables name {} services and hold {services}",
                self.names.len()
            ));
        }
        let mut ports_start = 0;
        for (i, service) in self.services.iter().enumerate() {
            let name = self
                .names
                .get(i)
                .ok_or_else(|| format!("service {i} has no name"))?;
            if !service.outlier().is_valid() {
                return Err(format!(
                    "service {name} has outlier settings compiling never gives"
                ));
            }
            if service
                .host()
                .is_some_and(|h| h as usize >= self.hosts.exact_len())
            {
                return Err(format!("service {name} names a host that does not exist"));
            }
            if service.views as usize > self.view_lists.len() {
                return Err(format!(
                    "service {name} names a list of workspace views that does not exist"
                ));
            }
            if (service.ports_end as usize) < ports_start
                || service.ports_end as usize > self.ports.len()
            {
                return Err(format!("service {name} has ports outside the port table"));
            }
            ports_start = service.ports_end as usize;
        }
        if ports_start != self.ports.len() {
            return Err(format!(
                "{} ports belong to no service",
                self.ports.len().saturating_sub(ports_start)
            ));
        }
        if self
            .view_lists
            .iter()
            .flatten()
            .any(|&v| usize::from(v) >= views)
        {
            return Err("a service is in a workspace view that does not exist".into());
        }
        if self.view_lists.iter().any(|list| list.is_empty()) {
            return Err("a list of workspace views is empty".into());
        }
        if self.ports.iter().any(|p| !p.is_well_formed()) {
            return Err("a port has flags compiling never sets".into());
        }
        // One extra per port marked as having one, ascending by position.
        let marked = self.ports.iter().filter(|p| p.has_extra()).count();
        let mut previous = None;
        for &(position, _) in self.port_extras.iter() {
            let port = self.ports.get(position as usize);
            if previous.is_some_and(|p| p >= position) || !port.is_some_and(|p| p.has_extra()) {
                return Err(format!(
                    "the extras of port {position} are out of order or for a port without any"
                ));
            }
            previous = Some(position);
        }
        if marked != self.port_extras.len() {
            return Err(format!(
                "{marked} ports have extras, and the tables hold {}",
                self.port_extras.len()
            ));
        }
        let policies = self.port_extras.iter().flat_map(|(_, e)| e.policies.iter());
        if policies.clone().any(|&p| p as usize >= self.policies.len()) {
            return Err("a port names an access policy that does not exist".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use warden_bundle::{
        AccessPolicy, Bundle, BundleSpec, ExternalService, PolicyTarget, Protocol, Provenance,
        ResourceKind, ServicePort, ServiceRef,
    };

    fn policy() -> Policy {
        let service = ExternalService {
            source: Provenance::new(ResourceKind::ExternalService, "dc", "db"),
            hosts: vec!["db.example".into()],
            addresses: vec!["10.0.0.0/8".into()],
            virtual_addresses: Vec::new(),
            ports: vec![ServicePort {
                name: None,
                number: 5432,
                protocol: Protocol::Tcp,
                target_port: None,
                tls: None,
                egress_gateway: None,
            }],
            endpoints: Vec::new(),
            subject_alt_names: Vec::new(),
            outlier_detection: None,
            failover: Vec::new(),
            workspaces: Vec::new(),
        };
        let access = AccessPolicy {
            source: Provenance::new(ResourceKind::AccessPolicy, "dc", "db-readers"),
            targets: vec![PolicyTarget {
                service: ServiceRef {
                    namespace: "dc".into(),
                    name: "db".into(),
                },
                port: None,
            }],
            rules: Vec::new(),
            dry_run: false,
        };
        crate::compile(&Bundle::new(BundleSpec {
            services: vec![service],
            access_policies: vec![access],
            ..BundleSpec::default()
        }))
        .unwrap()
    }

    /// Tables whose checksum matches but whose indices point past their tables (as someone
    /// who rewrote them and the checksum could make them) are refused.
    #[test]
    fn indices_outside_their_tables_are_refused() {
        type Breaker = fn(&mut Policy);
        let breakers: [(&str, Breaker); 17] = [
            ("host of a service", |p| p.services[0].set_host(Some(9))),
            ("names of the services", |p| {
                p.names = crate::name::NameTable::default();
            }),
            ("access policy", |p| p.policies = Box::default()),
            ("service of a host", |p| {
                p.services = Box::default();
            }),
            ("workspace view list", |p| p.services[0].views = 1),
            ("workspace view", |p| {
                p.view_lists = Box::new([Box::new([3])]);
                p.services[0].views = 1;
            }),
            ("empty workspace view list", |p| {
                p.view_lists = Box::new([Box::new([])]);
            }),
            ("extras of a port", |p| p.port_extras = Box::default()),
            ("extras beyond the ports", |p| {
                p.port_extras[0].0 = 7;
            }),
            ("extras of a port twice", |p| {
                let extra = p.port_extras[0].clone();
                p.port_extras = Box::new([extra.clone(), extra]);
            }),
            ("extras of a port without any", |p| {
                p.ports[0].set_flags_for_test(0);
            }),
            ("port flags", |p| p.ports[0].set_flags_for_test(2 | 8)),
            ("ports of a service", |p| p.services[0].ports_end = 9),
            ("ports of no service", |p| p.services[0].ports_end = 0),
            ("outlier settings", |p| {
                p.services[0].set_outlier_for_test(crate::outlier::OutlierSettings {
                    consecutive_errors: 0,
                    ..crate::outlier::OutlierSettings::DEFAULT
                })
            }),
            ("virtual address of a missing service", |p| {
                p.virtual_addresses.insert([10, 9, 9, 9].into(), 7);
            }),
            ("address order", |p| {
                p.v4 = crate::cidr::CidrTable::build([
                    (1, 32, crate::service_set::ServiceSet::single(0)),
                    (5, 32, crate::service_set::ServiceSet::single(0)),
                ]);
                p.v4.reverse_for_test();
            }),
        ];
        for (what, breaker) in breakers {
            let mut p = policy();
            breaker(&mut p);
            // Written as someone who rewrote the tables would (`to_compact` refuses them).
            assert!(p.to_compact().is_err(), "{what}");
            let bytes = frame("", &postcard::to_allocvec(&p).unwrap()).unwrap();
            let err = Policy::from_compact(&open(&bytes).unwrap()).unwrap_err();
            assert!(matches!(err, CompactError::Malformed(_)), "{what}: {err}");
        }
        let bytes = policy().to_compact().unwrap();
        assert!(Policy::from_compact(&open(&bytes).unwrap()).is_ok());
    }

    /// The engine's own refusals while decoding (here: host keys out of order, as swapping
    /// two hosts' bytes makes them) reach the log line in words.
    #[test]
    fn refusals_while_decoding_say_what_is_wrong() {
        let mut p = policy();
        p.hosts = crate::host_table::HostTable::build(vec![
            (
                "a.example".into(),
                crate::service_set::ServiceSet::single(0),
            ),
            (
                "b.example".into(),
                crate::service_set::ServiceSet::single(0),
            ),
        ]);
        let mut tables = postcard::to_allocvec(&p).unwrap();
        let at = |t: &[u8], needle: &[u8]| t.windows(needle.len()).position(|w| w == needle);
        let (a, b) = (
            at(&tables, b"a.example").unwrap(),
            at(&tables, b"b.example").unwrap(),
        );
        tables[a] = b'b';
        tables[b] = b'a';
        let err = Policy::from_compact(&open(&frame("", &tables).unwrap()).unwrap()).unwrap_err();
        assert!(
            err.to_string()
                .contains("keys are not in strictly ascending order"),
            "{err}"
        );
    }

    /// A string longer than the filter reads is refused when the builder writes the compiled
    /// form, and named when a filter reads it anyway.
    #[test]
    fn strings_longer_than_the_filter_reads_are_named() {
        let mut p = policy();
        // Letters that do not repeat, so that the tables still compress as real ones do.
        let mut state = 1u64;
        let long: String = (0..=LONGEST_STRING)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                char::from(b'a' + ((state >> 33) % 26) as u8)
            })
            .collect();
        p.settings.trust_domain = long.into();
        let err = p.to_compact().unwrap_err();
        assert!(
            err.to_string().contains("a filter would refuse it"),
            "{err}"
        );
        assert!(err.to_string().contains("longer than the 64 KiB"), "{err}");
    }

    /// A small payload that announces far more tables than deflate of real tables gives is
    /// refused before anything inflates.
    #[test]
    fn tables_that_inflate_too_far_are_refused() {
        let tables = vec![0u8; 4 * SMALL_TABLES];
        let err = frame("", &tables).unwrap_err();
        assert!(err.to_string().contains("at most 64 times"), "{err}");
        let payload = deflate(&tables).unwrap();
        let len = u32::try_from(tables.len()).unwrap();
        let err = open(&frame_compressed("", len, &payload).unwrap()).unwrap_err();
        assert!(err.to_string().contains("more than 64 times"), "{err}");
    }
}
