//! Reading a bundle file the way every command that takes `--bundle` does.

use std::path::Path;

use anyhow::Context;
use warden_bundle::Bundle;
use warden_engine::{compile, Policy};

/// The file's text, the parsed bundle and its compiled policy. Errors name the file, and then
/// the entry and field the engine names.
pub fn load(path: &Path) -> anyhow::Result<(String, Bundle, Policy)> {
    let shown = path.display();
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read bundle {shown}"))?;
    let bundle = Bundle::from_json(text.as_bytes()).with_context(|| format!("{shown}"))?;
    let policy = compile(&bundle).with_context(|| format!("{shown}"))?;
    Ok((text, bundle, policy))
}
