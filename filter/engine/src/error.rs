//! Why a bundle cannot be compiled.

use thiserror::Error;
use warden_bundle::{BundleError, Provenance};

/// A bundle the engine refuses. Every variant names where the problem is.
#[derive(Debug, Error)]
pub enum CompileError {
    /// The bundle could not be read, or its digest does not match.
    #[error(transparent)]
    Bundle(#[from] BundleError),
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
