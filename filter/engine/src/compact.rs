//! The compiled policy as bytes: what `bundle-builder` compiles once and every filter VM
//! loads without parsing a bundle's JSON or compiling it again.
//!
//! An envelope holds the compiled tables ([`Policy`], encoded with `postcard`):
//!
//! ```text
//! header   "WARDENCP" | format u16 | flags u16 (0) | digest length u16 | bundle digest
//!          | engine version length u8 | engine version | payload length u32
//!          | SHA-256 of the payload (32 bytes)
//! payload  the compiled tables
//! trailer  0 (unsigned), or 1 and an ed25519 signature over the header (64 bytes)
//! ```
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
pub const FORMAT: u16 = 1;
/// The engine release whose types the tables are: only it reads them.
pub const ENGINE: &str = env!("CARGO_PKG_VERSION");
/// The longest bundle digest a header holds.
const MAX_DIGEST: usize = 256;
const SIGNATURE_LEN: usize = 64;

/// A compiled policy's framing, checked: the bundle digest, the signed header, the tables.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// The digest of the bundle the tables were compiled from (empty: none).
    pub digest: &'a str,
    /// The bytes a signature covers.
    pub header: &'a [u8],
    /// The encoded tables; their SHA-256 matched the header's.
    pub payload: &'a [u8],
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
    let checksum: [u8; 32] = take_array(&mut rest, "checksum")?;
    let header_len = bytes.len() - rest.len();
    let header = bytes
        .get(..header_len)
        .ok_or(CompactError::Truncated("header"))?;
    let payload_len = usize::try_from(payload_len)
        .map_err(|_| CompactError::Malformed("payload length".into()))?;
    let payload = take(&mut rest, payload_len, "tables")?;
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
    if Sha256::digest(payload).as_slice() != checksum {
        return Err(CompactError::Checksum);
    }
    Ok(Envelope {
        digest,
        header,
        payload,
        signature,
    })
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
    take(&mut rest, 32, "").ok()?;
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

/// An unsigned envelope around encoded tables `payload` compiled from the bundle `digest`.
/// (Tools and fuzzing frame tables this way; [`Policy::to_compact`] frames its own.)
pub fn frame(digest: &str, payload: &[u8]) -> Result<Vec<u8>, CompactError> {
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
    out.extend_from_slice(&Sha256::digest(payload));
    out.extend_from_slice(payload);
    out.push(0);
    Ok(out)
}

impl Policy {
    /// The policy as an unsigned compiled-policy envelope (see the module documentation).
    pub fn to_compact(&self) -> Result<Vec<u8>, CompactError> {
        let payload =
            postcard::to_allocvec(self).map_err(|e| CompactError::Encode(e.to_string()))?;
        frame(
            self.settings.digest.as_deref().unwrap_or_default(),
            &payload,
        )
    }

    /// Decodes an opened envelope's tables and checks them: every index they hold points
    /// inside its table, and the bundle digest matches the header's. Endpoints are ranked for
    /// the locality the policy was prepared for, as [`crate::compile`] leaves them.
    pub fn from_compact(envelope: &Envelope<'_>) -> Result<Self, CompactError> {
        let payload = envelope.payload;
        let (mut policy, rest): (Policy, _) =
            crate::exact_seq::bounded(payload.len(), || postcard::take_from_bytes(payload))
                .map_err(|e| CompactError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CompactError::Malformed(format!(
                "{} bytes after the tables",
                rest.len()
            )));
        }
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
        let mut names = self
            .services
            .iter()
            .map(|s| &s.name)
            .chain(self.policies.iter().map(|p| &p.name))
            .chain(
                self.services
                    .iter()
                    .flat_map(|s| s.endpoints.iter().map(|e| &e.name)),
            );
        if let Some(name) = names.find(|n| !n.is_well_formed()) {
            return Err(format!(
                "a resource name is malformed ({:?})",
                name.as_str()
            ));
        }
        for service in self.services.iter() {
            let name = &service.name;
            if !service.outlier.is_valid() {
                return Err(format!(
                    "service {name} has outlier settings compiling never gives"
                ));
            }
            if service.views.iter().any(|&v| usize::from(v) >= views) {
                return Err(format!(
                    "service {name} is in a workspace view that does not exist"
                ));
            }
            let policies = service.ports.iter().flat_map(|p| p.policies.iter());
            if policies.clone().any(|&p| p as usize >= self.policies.len()) {
                return Err(format!(
                    "service {name} names an access policy that does not exist"
                ));
            }
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
        let breakers: [(&str, Breaker); 6] = [
            ("access policy", |p| p.policies = Box::default()),
            ("service of a host", |p| {
                p.services = Box::default();
            }),
            ("workspace view", |p| p.services[0].views = Box::new([3])),
            ("outlier settings", |p| {
                p.services[0].outlier.consecutive_errors = 0
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
            let bytes = p.to_compact().unwrap();
            let err = Policy::from_compact(&open(&bytes).unwrap()).unwrap_err();
            assert!(matches!(err, CompactError::Malformed(_)), "{what}: {err}");
        }
        let bytes = policy().to_compact().unwrap();
        assert!(Policy::from_compact(&open(&bytes).unwrap()).is_ok());
    }
}
