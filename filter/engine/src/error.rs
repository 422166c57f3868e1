//! Why a bundle cannot be compiled.

use thiserror::Error;
use warden_bundle::{BundleError, Provenance};

/// A bundle the engine refuses. Every variant names where the problem is.
#[derive(Debug, Error)]
pub enum CompileError {
    /// The bundle could not be read, or its digest does not match.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The compiled policy cannot be written.
    #[error(transparent)]
    Compact(#[from] CompactError),
    /// The signature cannot be made or read.
    #[error("signature: {0}")]
    Signature(#[from] warden_bundle::InvalidSignature),
    /// An entry of the bundle is invalid.
    #[error("{}{field}: {problem}", entry.as_ref().map(|e| format!("{e}: ")).unwrap_or_default())]
    Invalid {
        /// The resource the entry came from; `None` for bundle-wide settings.
        entry: Option<Provenance>,
        /// JSON path inside the bundle, such as `spec.services[3].hosts[1]`.
        field: String,
        /// What is wrong, and what would be valid.
        problem: String,
    },
}

impl CompileError {
    pub(crate) fn invalid(
        entry: Option<&Provenance>,
        field: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            entry: entry.cloned(),
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Why bytes are not a compiled policy this filter can load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    #[error("not a compiled policy (it does not start with \"WARDENCP\")")]
    NotCompiled,
    #[error("compiled policy format {found}, and this filter reads format {expected}: compile the bundle with the bundle-builder of this filter's release")]
    Format { found: u16, expected: u16 },
    #[error("the compiled policy was written by warden-engine {found:?}, and this filter reads only warden-engine {expected}'s tables: compile the bundle with the bundle-builder of this filter's release")]
    Engine {
        found: String,
        expected: &'static str,
    },
    #[error("the compiled policy is truncated ({0})")]
    Truncated(&'static str),
    #[error("the compiled policy was altered: its tables do not match the checksum in its header")]
    Checksum,
    #[error("the compiled policy is malformed: {0}")]
    Malformed(String),
    #[error("the policy cannot be written in compiled form: {0}")]
    Encode(String),
}
