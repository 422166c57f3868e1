//! Signed bundles: an ed25519 signature over the bundle's digest.
//!
//! The digest covers the spec, so a valid signature over a matching digest proves the policy
//! is the one the key holder built. Keys and signatures are hex.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::bundle::Bundle;
use crate::error::BundleError;

/// Why a bundle's signature is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSignature {
    #[error("the bundle is not signed, and this filter requires a signature (build it with bundle-builder build --sign KEY)")]
    Unsigned,
    #[error("the bundle has no digest to verify the signature against")]
    NoDigest,
    #[error("the signature is not 64 bytes of hex")]
    Malformed,
    #[error("the signature does not match this bundle and key: the bundle was altered, or signed with another key")]
    Mismatch,
    #[error("the public key is not 32 bytes of hex, or not an ed25519 key")]
    BadPublicKey,
    #[error("the private key is not 32 bytes of hex")]
    BadPrivateKey,
}

fn bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    hex::decode(text.trim()).ok()?.try_into().ok()
}

/// A verifying key from its hex form.
pub fn public_key(hex_text: &str) -> Result<VerifyingKey, InvalidSignature> {
    let raw = bytes::<32>(hex_text).ok_or(InvalidSignature::BadPublicKey)?;
    VerifyingKey::from_bytes(&raw).map_err(|_| InvalidSignature::BadPublicKey)
}

/// A signing key from its hex form (the 32-byte seed).
pub fn private_key(hex_text: &str) -> Result<SigningKey, InvalidSignature> {
    bytes::<32>(hex_text)
        .map(|seed| SigningKey::from_bytes(&seed))
        .ok_or(InvalidSignature::BadPrivateKey)
}

/// The hex forms `(private, public)` of the key pair with this 32-byte seed.
pub fn key_pair(seed: [u8; 32]) -> (String, String) {
    let key = SigningKey::from_bytes(&seed);
    (
        hex::encode(key.to_bytes()),
        hex::encode(key.verifying_key().to_bytes()),
    )
}

/// An ed25519 signature over `message` (a compiled policy's header), in hex.
pub fn sign_message(key: &SigningKey, message: &[u8]) -> String {
    hex::encode(key.sign(message).to_bytes())
}

/// A signature's 64 bytes from hex.
pub fn signature_bytes(hex_text: &str) -> Result<[u8; 64], InvalidSignature> {
    bytes::<64>(hex_text).ok_or(InvalidSignature::Malformed)
}

/// Checks an ed25519 signature over `message` (a compiled policy's header).
pub fn verify_message(
    key: &VerifyingKey,
    message: &[u8],
    signature: Option<&[u8; 64]>,
) -> Result<(), InvalidSignature> {
    let signature = signature.ok_or(InvalidSignature::Unsigned)?;
    key.verify(message, &Signature::from_bytes(signature))
        .map_err(|_| InvalidSignature::Mismatch)
}

impl Bundle {
    /// Seals the bundle (sets its digest) and signs the digest.
    pub fn sign(self, key: &SigningKey) -> Result<Self, BundleError> {
        let mut bundle = self.seal()?;
        let digest = bundle.metadata.digest.clone().unwrap_or_default();
        bundle.metadata.signature = Some(hex::encode(key.sign(digest.as_bytes()).to_bytes()));
        Ok(bundle)
    }

    /// Checks the signature over the recorded digest. (`compile` checks the digest against
    /// the spec, so together they prove the spec is the one that was signed.)
    pub fn verify_signature(&self, key: &VerifyingKey) -> Result<(), InvalidSignature> {
        let signature = self
            .metadata
            .signature
            .as_deref()
            .ok_or(InvalidSignature::Unsigned)?;
        let digest = self
            .metadata
            .digest
            .as_deref()
            .ok_or(InvalidSignature::NoDigest)?;
        let raw = bytes::<64>(signature).ok_or(InvalidSignature::Malformed)?;
        key.verify(digest.as_bytes(), &Signature::from_bytes(&raw))
            .map_err(|_| InvalidSignature::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BundleSpec, OutboundMode};

    fn bundle() -> Bundle {
        Bundle::new(BundleSpec {
            outbound_mode: OutboundMode::RegistryOnly,
            ..BundleSpec::default()
        })
    }

    /// A signed bundle verifies with its key, not with another, and not once altered.
    #[test]
    fn signatures_verify_only_the_signed_bundle_and_key() {
        let (private, public) = key_pair([7; 32]);
        let (_, other) = key_pair([8; 32]);
        let signed = bundle().sign(&private_key(&private).unwrap()).unwrap();
        assert_eq!(
            signed.verify_signature(&public_key(&public).unwrap()),
            Ok(())
        );
        assert_eq!(
            signed.verify_signature(&public_key(&other).unwrap()),
            Err(InvalidSignature::Mismatch)
        );
        let mut altered = signed.clone();
        altered.metadata.digest = Some("sha256:00".into());
        assert_eq!(
            altered.verify_signature(&public_key(&public).unwrap()),
            Err(InvalidSignature::Mismatch)
        );
        assert_eq!(
            bundle().verify_signature(&public_key(&public).unwrap()),
            Err(InvalidSignature::Unsigned)
        );
        assert_eq!(public_key("zz"), Err(InvalidSignature::BadPublicKey));
    }
}
