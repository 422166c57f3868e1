//! The compiled policy as bytes: what decodes decides exactly as what was compiled, and bytes
//! that were truncated, altered or are not a compiled policy are refused, never loaded.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

mod support;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use support::*;
use warden_bundle::OutboundMode::RegistryOnly;
use warden_bundle::{Bundle, Endpoint, EndpointPort, Locality, Provenance, ResourceKind};
use warden_engine::compact::{open, reopen, with_signature, CompactError, FORMAT, MAGIC};
use warden_engine::{compile, Policy, Request};

/// Hosts, a wildcard, CIDRs, an identity rule and an internal hostname with endpoints in two
/// localities: every table the compiled form carries.
fn sample() -> Bundle {
    let mut internal = service("dc/db", &["db.internal"], &[], &[5432]);
    for (address, zone) in [("10.9.0.1", "a"), ("10.9.0.2", "b")] {
        internal.endpoints.push(Endpoint {
            source: Provenance::new(ResourceKind::ExternalEndpoint, "dc", address),
            address: address.into(),
            ports: vec![EndpointPort {
                name: None,
                number: 5432,
            }],
            locality: Locality {
                region: "eu".into(),
                zone: zone.into(),
                sub_zone: String::new(),
            },
            weight: 1,
        });
    }
    let mut b = bundle(
        RegistryOnly,
        vec![
            service("saas/stripe", &["api.stripe.example"], &[], &[443]),
            service("saas/tenants", &["*.tenants.example"], &[], &[443]),
            service("dc/ledger", &[], &["10.1.0.0/16", "2001:db8::/48"], &[5432]),
            internal,
        ],
        vec![policy(
            "dc/ledger-billing",
            &[("dc/ledger", None)],
            vec![clients(&["spiffe://cluster.local/ns/pay/sa/billing"])],
        )],
    );
    b.spec.proxy.locality = Some(Locality {
        region: "eu".into(),
        zone: "b".into(),
        sub_zone: String::new(),
    });
    b.seal().unwrap()
}

fn requests() -> Vec<Request<'static>> {
    let billing = Some("spiffe://cluster.local/ns/pay/sa/billing");
    vec![
        http("api.stripe.example"),
        http("x.tenants.example"),
        http("tenants.example"),
        http("unknown.example"),
        tcp("10.1.2.3", 5432),
        Request {
            client: billing,
            ..tcp("10.1.2.3", 5432)
        },
        Request {
            client: billing,
            ..tcp("2001:db8::5", 5432)
        },
        tcp("10.2.0.1", 5432),
        http("db.internal:5432"),
    ]
}

#[test]
fn decoded_policy_decides_as_the_compiled_one() {
    let compiled = compile(&sample()).unwrap();
    let bytes = compiled.to_compact().unwrap();
    let envelope = open(&bytes).unwrap();
    assert_eq!(Some(envelope.digest), sample().metadata.digest.as_deref());
    assert!(envelope.digest.starts_with("sha256:"));
    assert!(envelope.signature.is_none());
    let decoded = Policy::from_compact(&envelope).unwrap();
    assert_eq!(decoded.settings(), compiled.settings());
    assert_eq!(decoded.service_count(), compiled.service_count());
    for request in requests() {
        assert_eq!(
            format!("{:?}", decoded.decide(&request)),
            format!("{:?}", compiled.decide(&request)),
            "{request:?}"
        );
    }
    // Encoding is deterministic: the builder can sign what the filter will load.
    assert_eq!(decoded.to_compact().unwrap().len(), bytes.len());
    assert_eq!(compile(&sample()).unwrap().to_compact().unwrap(), bytes);
}

/// The same sample without its wildcard host (a host table with no wildcards).
fn without_wildcards() -> Bundle {
    let mut b = sample();
    b.spec.services.retain(|s| s.source.name != "tenants");
    b.seal().unwrap()
}

/// Compiled forms written natively (64-bit), as `bundle-builder` writes them, and committed:
/// natively their tables must match what compiles now (`WARDEN_BLESS=1` rewrites them); as
/// wasm (the filter's 32-bit target) they must load and decide as what compiles there.
#[test]
fn a_compiled_form_written_natively_loads_the_same_in_wasm() {
    let fixtures: [(&str, &[u8], Bundle); 2] = [
        (
            "sample",
            include_bytes!("fixtures/sample.compiled"),
            sample(),
        ),
        (
            "without-wildcards",
            include_bytes!("fixtures/without-wildcards.compiled"),
            without_wildcards(),
        ),
    ];
    for (name, committed, bundle) in fixtures {
        let compiled = compile(&bundle).unwrap();
        #[cfg(not(target_arch = "wasm32"))]
        {
            let now = compiled.to_compact().unwrap();
            if std::env::var_os("WARDEN_BLESS").is_some() {
                let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join(format!("{name}.compiled")), &now).unwrap();
            }
            // The tables, inflated: the compressor's bytes may differ between releases of
            // the deflate library, the tables may not.
            let tables = |form: &[u8]| {
                use std::io::Read as _;
                let mut out = Vec::new();
                flate2::read::DeflateDecoder::new(open(form).unwrap().payload)
                    .read_to_end(&mut out)
                    .unwrap();
                out
            };
            assert!(
                tables(committed) == tables(&now),
                "{name}: tests/fixtures/{name}.compiled is stale: the tables' bytes changed. \
                 A filter of another engine release refuses them by version; if the layout \
                 changed within one release, raise compact::FORMAT. Then WARDEN_BLESS=1."
            );
        }
        let loaded = Policy::from_compact(&open(committed).unwrap()).unwrap();
        for request in requests() {
            assert_eq!(
                format!("{:?}", loaded.decide(&request)),
                format!("{:?}", compiled.decide(&request)),
                "{name}: {request:?}"
            );
        }
    }
}

#[test]
fn every_truncation_is_refused() {
    let bytes = compile(&sample()).unwrap().to_compact().unwrap();
    for len in 0..bytes.len() {
        assert!(
            open(&bytes[..len]).is_err(),
            "{len} of {} bytes",
            bytes.len()
        );
    }
}

/// Reopening bytes that opened gives the same envelope without hashing the payload again: the
/// framing is still checked, the checksum is not (what `reopen` is for: bytes kept in memory).
#[test]
fn reopening_reads_the_framing_again_but_not_the_checksum() {
    let bytes = compile(&sample()).unwrap().to_compact().unwrap();
    let (opened, reopened) = (open(&bytes).unwrap(), reopen(&bytes).unwrap());
    assert_eq!(
        (
            opened.header,
            opened.payload,
            opened.tables_len,
            opened.digest
        ),
        (
            reopened.header,
            reopened.payload,
            reopened.tables_len,
            reopened.digest
        )
    );
    for len in 0..bytes.len() {
        assert!(
            reopen(&bytes[..len]).is_err(),
            "{len} of {} bytes",
            bytes.len()
        );
    }
    let mut altered = bytes.clone();
    let last = altered.len() - 2;
    altered[last] ^= 0x20;
    assert!(matches!(open(&altered), Err(CompactError::Checksum)));
    assert!(reopen(&altered).is_ok());
}

/// Any one byte changed: the framing, the checksum or the decoded tables say so.
#[test]
fn every_altered_byte_is_refused() {
    let bytes = compile(&sample()).unwrap().to_compact().unwrap();
    for at in 0..bytes.len() {
        let mut altered = bytes.clone();
        altered[at] ^= 0x20;
        let loaded = open(&altered).and_then(|e| Policy::from_compact(&e));
        assert!(loaded.is_err(), "byte {at} altered and still loaded");
    }
}

#[test]
fn what_is_not_a_compiled_policy_says_so() {
    assert_eq!(
        open(b"{\"apiVersion\": 1}").unwrap_err(),
        CompactError::NotCompiled
    );
    let mut other_format = compile(&sample()).unwrap().to_compact().unwrap();
    other_format[MAGIC.len()..MAGIC.len() + 2].copy_from_slice(&(FORMAT + 1).to_le_bytes());
    let err = open(&other_format).unwrap_err();
    assert_eq!(
        err,
        CompactError::Format {
            found: FORMAT + 1,
            expected: FORMAT
        }
    );
    assert!(err.to_string().contains("bundle-builder"), "{err}");
    let mut extra = compile(&sample()).unwrap().to_compact().unwrap();
    extra.push(0);
    assert!(matches!(open(&extra), Err(CompactError::Malformed(_))));
}

#[test]
fn a_signature_travels_in_the_trailer_and_covers_the_header() {
    let bytes = compile(&sample()).unwrap().to_compact().unwrap();
    let signed = with_signature(&bytes, &[7; 64]).unwrap();
    let envelope = open(&signed).unwrap();
    assert_eq!(envelope.signature, Some(&[7; 64]));
    assert_eq!(envelope.header, open(&bytes).unwrap().header);
    // Re-signing replaces the signature rather than adding one.
    let resigned = with_signature(&signed, &[9; 64]).unwrap();
    assert_eq!(resigned.len(), signed.len());
    assert_eq!(open(&resigned).unwrap().signature, Some(&[9; 64]));
}

/// The tables as they were compressed into `bytes`.
fn inflated(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read as _;
    let mut tables = Vec::new();
    flate2::read::DeflateDecoder::new(open(bytes).unwrap().payload)
        .read_to_end(&mut tables)
        .unwrap();
    tables
}

/// Behind a checksum that matches (no signature: anyone can recompute it), the compressed
/// tables must inflate to exactly the length the header says, hold nothing after the tables,
/// and be deflate data at all; each refusal says which.
#[test]
fn compressed_tables_are_refused_unless_they_inflate_to_what_the_header_says() {
    use warden_engine::compact::{frame, frame_compressed};
    let policy = compile(&sample()).unwrap();
    let bytes = policy.to_compact().unwrap();
    let envelope = open(&bytes).unwrap();
    let digest = envelope.digest;
    let tables = inflated(&bytes);
    assert_eq!(tables.len(), envelope.tables_len);
    let refusal = |framed: Vec<u8>| {
        let err = Policy::from_compact(&open(&framed).unwrap()).unwrap_err();
        assert!(matches!(err, CompactError::Malformed(_)), "{err}");
        err.to_string()
    };
    let len = u32::try_from(tables.len()).unwrap();
    let shorter = refusal(frame_compressed(digest, len - 1, envelope.payload).unwrap());
    assert!(shorter.contains("before they are complete"), "{shorter}");
    let longer = refusal(frame_compressed(digest, len + 1, envelope.payload).unwrap());
    assert!(longer.contains("the header says"), "{longer}");
    let mut padded = tables.clone();
    padded.push(0);
    let after = refusal(frame(digest, &padded).unwrap());
    assert!(after.contains("1 bytes after the tables"), "{after}");
    // A complete stream of tables cut short, announced at their full length.
    let cut = {
        use std::io::Write as _;
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&tables[..tables.len() - 3]).unwrap();
        encoder.finish().unwrap()
    };
    let early = refusal(frame_compressed(digest, len, &cut).unwrap());
    assert!(early.contains("before they are complete"), "{early}");
    let garbage = refusal(frame_compressed(digest, len, b"\xff\xff not deflate").unwrap());
    assert!(garbage.contains("deflate"), "{garbage}");
    // And the bytes `frame` writes from the same tables load.
    let reframed = frame(digest, &tables).unwrap();
    assert!(Policy::from_compact(&open(&reframed).unwrap()).is_ok());
}

/// The tables travel compressed: a registry's many similar names take far fewer bytes.
#[test]
fn the_tables_travel_compressed() {
    let names: Vec<(String, String)> = (0..200)
        .map(|i| {
            (
                format!("team{}/svc-{i}", i % 7),
                format!("api{i}.vendor.example"),
            )
        })
        .collect();
    let services = names
        .iter()
        .map(|(name, host)| service(name, &[host.as_str()], &[], &[443]))
        .collect();
    let b = bundle(RegistryOnly, services, Vec::new()).seal().unwrap();
    let bytes = compile(&b).unwrap().to_compact().unwrap();
    let envelope = open(&bytes).unwrap();
    assert!(
        envelope.payload.len() * 3 < envelope.tables_len,
        "{} compressed bytes for {} bytes of tables",
        envelope.payload.len(),
        envelope.tables_len
    );
}
