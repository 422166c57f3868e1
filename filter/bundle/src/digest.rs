//! The bundle's content digest: `sha256:<hex>` over the canonical JSON of its spec.
//!
//! The spec serialises deterministically (struct fields in declaration order, lists in the
//! order the builder sorted them), so the same policy always has the same digest.

use sha2::{Digest, Sha256};

use crate::bundle::Bundle;
use crate::error::BundleError;

/// The algorithm prefix of every digest.
pub const DIGEST_PREFIX: &str = "sha256:";

impl Bundle {
    /// The digest of this bundle's spec, whatever `metadata.digest` says.
    pub fn compute_digest(&self) -> Result<String, BundleError> {
        let canonical = serde_json::to_vec(&self.spec).map_err(BundleError::Serialize)?;
        Ok(format!(
            "{DIGEST_PREFIX}{}",
            hex::encode(Sha256::digest(&canonical))
        ))
    }

    /// Sets `metadata.digest` to the digest of the spec.
    pub fn seal(mut self) -> Result<Self, BundleError> {
        self.metadata.digest = Some(self.compute_digest()?);
        Ok(self)
    }

    /// Checks `metadata.digest` against the spec. A bundle without a digest passes; one whose
    /// spec was changed after sealing does not.
    pub fn verify_digest(&self) -> Result<(), BundleError> {
        let Some(recorded) = &self.metadata.digest else {
            return Ok(());
        };
        let actual = self.compute_digest()?;
        if *recorded == actual {
            Ok(())
        } else {
            Err(BundleError::DigestMismatch {
                recorded: recorded.clone(),
                actual,
            })
        }
    }
}
