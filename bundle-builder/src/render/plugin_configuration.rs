//! What the filter is configured with: the bundle's compiled form, so that no proxy parses a
//! bundle's JSON or compiles it (docs/loading.md).

use base64::Engine as _;
use serde_json::{json, Value};
use warden_bundle::wire::COMPILED_POLICY;
use warden_bundle::Bundle;
use warden_engine::signing::compiled_form;
use warden_engine::CompileError;

/// What the filter is given for a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// The compiled form (signed when the bundle carries a compiled signature).
    Compiled(Vec<u8>),
    /// The bundle's JSON: a bundle signed by a bundle-builder from before compiled forms has a
    /// digest signature and no compiled signature, and the filter verifies the digest's.
    Json,
}

/// The one place that decides what travels for `bundle` (`render envoy`, `render istio`,
/// `embed`, `build --ecds`, `watch`).
pub fn payload(bundle: &Bundle) -> Result<Payload, CompileError> {
    if bundle.metadata.signature.is_some() && bundle.metadata.compiled_signature.is_none() {
        return Ok(Payload::Json);
    }
    compiled_form(bundle).map(Payload::Compiled)
}

/// `{"compiledPolicy": "<base64>"}` around a compiled form.
pub fn compiled_value(bytes: &[u8]) -> Value {
    json!({ COMPILED_POLICY: base64::engine::general_purpose::STANDARD.encode(bytes) })
}

/// The plugin configuration for `bundle` as a value: [`compiled_value`], or the bundle.
pub fn value(bundle: &Bundle) -> Result<Value, String> {
    match payload(bundle).map_err(|e| e.to_string())? {
        Payload::Compiled(bytes) => Ok(compiled_value(&bytes)),
        Payload::Json => serde_json::to_value(bundle).map_err(|e| e.to_string()),
    }
}

/// Whether a bundle that compiles can be shipped: its compiled form can be written and its
/// compiled signature, if any, read. `render envoy`, `build --ecds` and `watch` check this
/// first and refuse such a bundle loudly, so that [`for_bundle_json`] never ships its JSON
/// in silence.
pub fn check(bundle: &Bundle) -> Result<(), CompileError> {
    match payload(bundle) {
        Err(e @ (CompileError::Compact(_) | CompileError::Signature(_))) => Err(e),
        _ => Ok(()),
    }
}

/// The plugin configuration text for a bundle's JSON: its compiled form. A bundle that does not
/// parse or compile travels as its JSON, for the filter to refuse with the reason (`render` and
/// `build` refuse such a bundle before; tests hand one to the filter on purpose), and so does a
/// bundle signed without a compiled signature (by a bundle-builder from before compiled
/// forms), whose digest signature the filter still verifies on the JSON.
pub fn for_bundle_json(bundle_json: &str) -> String {
    let Ok(bundle) = Bundle::from_json(bundle_json.as_bytes()) else {
        return bundle_json.to_owned();
    };
    match payload(&bundle) {
        Ok(Payload::Compiled(bytes)) => compiled_value(&bytes).to_string(),
        _ => bundle_json.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use warden_bundle::BundleSpec;

    /// A compiled signature that cannot be read is an error, never a silent fall back to the
    /// bundle's JSON.
    #[test]
    fn a_malformed_compiled_signature_is_refused_not_shipped_as_json() {
        let mut bundle = Bundle::new(BundleSpec::default()).seal().unwrap();
        assert!(check(&bundle).is_ok());
        bundle.metadata.compiled_signature = Some("zz".into());
        let err = check(&bundle).unwrap_err().to_string();
        assert!(err.contains("signature"), "{err}");
    }
}
