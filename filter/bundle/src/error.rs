//! Errors reading or writing a bundle.

use thiserror::Error;

/// Why a bundle could not be read or written.
#[derive(Debug, Error)]
pub enum BundleError {
    /// The JSON does not have the shape of a bundle.
    #[error("invalid bundle{}{}: {message}", at(path), within(entry))]
    Parse {
        /// JSON path of the offending value, such as `spec.services[3].ports[0].protocol`.
        path: String,
        /// The resource the offending entry came from, such as `ExternalService pay/db`.
        entry: Option<String>,
        message: String,
    },
    /// `metadata.digest` does not match the spec: the bundle was altered after it was built.
    #[error(
        "bundle digest mismatch: metadata.digest is {recorded} but the spec hashes to {actual}; \
         the bundle was changed after it was built"
    )]
    DigestMismatch { recorded: String, actual: String },
    /// Serialising the bundle failed.
    #[error("cannot serialise bundle: {0}")]
    Serialize(#[source] serde_json::Error),
}

fn at(path: &str) -> String {
    if path.is_empty() || path == "." {
        String::new()
    } else {
        format!(" at {path}")
    }
}

fn within(entry: &Option<String>) -> String {
    entry
        .as_ref()
        .map(|e| format!(" (in {e})"))
        .unwrap_or_default()
}

/// On the error path only: finds the `source` of the service or policy that `path` points
/// into, so that a parse error can name the resource a user wrote.
#[cfg(feature = "field-paths")]
pub(crate) fn entry_at(bytes: &[u8], path: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    for list in ["services", "accessPolicies"] {
        let prefix = format!("spec.{list}[");
        let Some(rest) = path.strip_prefix(&prefix) else {
            continue;
        };
        let index: usize = rest.split(']').next()?.parse().ok()?;
        let entry = value.get("spec")?.get(list)?.get(index)?;
        let source = entry.get("source")?;
        let kind = source.get("kind")?.as_str()?;
        let namespace = source.get("namespace")?.as_str()?;
        let name = source.get("name")?.as_str()?;
        return Some(format!("{kind} {namespace}/{name}"));
    }
    None
}
