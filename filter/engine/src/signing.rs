//! Signing a bundle for the filter, and the compiled form the filter loads.
//!
//! A signed bundle carries two signatures made with one key: over its digest (what
//! `bundle-builder` checks of a bundle file) and over its compiled form's header (what the
//! filter, which loads the compiled form, verifies; the header names the digest and the
//! SHA-256 of the compiled tables). The compiled form is deterministic, so the signature made when the bundle
//! is built holds for the compiled form rendered from it later.

use ed25519_dalek::SigningKey;
use warden_bundle::{sign_message, signature_bytes, Bundle};

use crate::compact::{open, with_signature};
use crate::compile::compile;
use crate::error::CompileError;

/// Seals `bundle`, signs its digest, and signs the header of its compiled form.
pub fn sign(bundle: Bundle, key: &SigningKey) -> Result<Bundle, CompileError> {
    let mut bundle = bundle.sign(key)?;
    let compiled = compile(&bundle)?.to_compact()?;
    let header = open(&compiled)?.header;
    bundle.metadata.compiled_signature = Some(sign_message(key, header));
    Ok(bundle)
}

/// The compiled form of `bundle` (see [`crate::compact`]), carrying the bundle's compiled
/// signature when it has one.
pub fn compiled_form(bundle: &Bundle) -> Result<Vec<u8>, CompileError> {
    let compiled = compile(bundle)?.to_compact()?;
    match bundle.metadata.compiled_signature.as_deref() {
        None => Ok(compiled),
        Some(hex) => Ok(with_signature(&compiled, &signature_bytes(hex)?)?),
    }
}
