//! What the filter is configured with: the bundle's compiled form, so that no proxy parses a
//! bundle's JSON or compiles it (docs/loading.md).

use base64::Engine as _;
use serde_json::{json, Value};
use warden_bundle::Bundle;
use warden_engine::signing::compiled_form;

/// The key of the plugin configuration that carries a compiled policy.
pub const COMPILED_POLICY: &str = "compiledPolicy";

/// `{"compiledPolicy": "<base64 of the compiled form>"}` for `bundle`, signed when the bundle
/// carries a compiled signature (`build --sign`).
pub fn compiled(bundle: &Bundle) -> Result<Value, warden_engine::CompileError> {
    let bytes = compiled_form(bundle)?;
    Ok(json!({ COMPILED_POLICY: base64::engine::general_purpose::STANDARD.encode(bytes) }))
}

/// A bundle signed by a bundle-builder from before compiled forms: it has a digest signature
/// and no compiled signature, so it travels as its JSON, whose signature the filter verifies.
pub fn signed_for_json_only(bundle: &Bundle) -> bool {
    bundle.metadata.signature.is_some() && bundle.metadata.compiled_signature.is_none()
}

/// Whether a bundle that compiles can be shipped compiled: its compiled form can be written and
/// its compiled signature, if any, read. `render envoy`, `build --ecds` and `watch` check this
/// first and refuse such a bundle loudly, so that [`for_bundle_json`] never ships its JSON
/// in silence.
pub fn check(bundle: &Bundle) -> Result<(), warden_engine::CompileError> {
    use warden_engine::CompileError::{Compact, Signature};
    match compiled_form(bundle) {
        Err(e @ (Compact(_) | Signature(_))) => Err(e),
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
    match compiled(&bundle) {
        Ok(value) if !signed_for_json_only(&bundle) => value.to_string(),
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
