//! What the filter is configured with: the bundle's compiled form, so that no proxy parses a
//! bundle's JSON or compiles it (docs/loading.md).

use base64::Engine as _;
use serde_json::{json, Value};
use warden_bundle::wire::COMPILED_POLICY;
use warden_bundle::Bundle;
use warden_engine::signing::compiled_form;
use warden_engine::CompileError;

/// A bundle signed on its digest only, by a bundle-builder from before compiled forms: the
/// filter verifies the signature over the compiled form it loads, which such a bundle lacks.
fn digest_only_signature(bundle: &Bundle) -> Option<CompileError> {
    (bundle.metadata.signature.is_some() && bundle.metadata.compiled_signature.is_none()).then(
        || CompileError::Invalid {
            entry: None,
            field: "metadata.compiledSignature".into(),
            problem: "the bundle is signed on its digest only (by a bundle-builder from before \
                      compiled forms), and the filter verifies the signature of the compiled form \
                      it loads: sign it again with this release (bundle-builder build --sign KEY)"
                .into(),
        },
    )
}

/// What the filter is given for `bundle`: its compiled form, signed when the bundle carries a
/// compiled signature. The one place that decides it (`render envoy`, `render istio`, `embed`,
/// `build --ecds`, `watch`).
pub fn payload(bundle: &Bundle) -> Result<Vec<u8>, CompileError> {
    if let Some(err) = digest_only_signature(bundle) {
        return Err(err);
    }
    compiled_form(bundle)
}

/// `{"compiledPolicy": "<base64>"}` around a compiled form.
pub fn compiled_value(bytes: &[u8]) -> Value {
    json!({ COMPILED_POLICY: base64::engine::general_purpose::STANDARD.encode(bytes) })
}

/// The plugin configuration for `bundle` as a value: [`compiled_value`].
pub fn value(bundle: &Bundle) -> Result<Value, String> {
    payload(bundle)
        .map(|bytes| compiled_value(&bytes))
        .map_err(|e| e.to_string())
}

/// Whether a bundle that compiles can be shipped: its compiled form can be written, its
/// compiled signature, if any, read, and it is not signed on its digest only. `render envoy`,
/// `render istio --embedded`, `build --ecds` and `watch` check this first and refuse such a
/// bundle loudly (a bundle that does not compile they refuse before, when they read it).
pub fn check(bundle: &Bundle) -> Result<(), CompileError> {
    match payload(bundle) {
        Err(e @ (CompileError::Compact(_) | CompileError::Signature(_))) => Err(e),
        Err(e) if digest_only_signature(bundle).is_some() => Err(e),
        _ => Ok(()),
    }
}

/// The plugin configuration text for a bundle's JSON: its compiled form. A bundle that does not
/// parse or compile travels as its JSON, which the filter refuses (it loads compiled forms
/// only; `render` and `build` refuse such a bundle before, naming what is wrong; tests hand
/// one to the filter on purpose).
pub fn for_bundle_json(bundle_json: &str) -> String {
    let Ok(bundle) = Bundle::from_json(bundle_json.as_bytes()) else {
        return bundle_json.to_owned();
    };
    match payload(&bundle) {
        Ok(bytes) => compiled_value(&bytes).to_string(),
        Err(_) => bundle_json.to_owned(),
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

    /// A bundle signed on its digest only (by a builder from before compiled forms) is refused
    /// with what to do: the filter checks the compiled form's signature.
    #[test]
    fn a_digest_only_signature_is_refused_with_what_to_do() {
        let (private, _) = warden_bundle::key_pair([3; 32]);
        let key = warden_bundle::private_key(&private).unwrap();
        let bundle = Bundle::new(BundleSpec::default()).sign(&key).unwrap();
        let err = check(&bundle).unwrap_err().to_string();
        assert!(
            err.contains("metadata.compiledSignature") && err.contains("build --sign"),
            "{err}"
        );
        assert!(payload(&bundle).is_err());
        let resigned = warden_engine::signing::sign(bundle, &key).unwrap();
        assert!(check(&resigned).is_ok());
    }
}
