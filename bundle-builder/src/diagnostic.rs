//! Diagnostics: what is wrong (or worth knowing), where, and what would be valid.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Note,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Note => "note",
        }
    }
}

/// One finding about the manifests. Text form:
/// `FILE:LINE: error[invalid-field]: ExternalService pay/db: spec.hosts[1]: "a.*.com": ...`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub severity: Severity,
    /// What kind of finding this is, stable across releases (docs/manifests.md lists them):
    /// scripts key on it, and `--allow CODE` downgrades the errors of a few.
    pub code: &'static str,
    /// `Kind namespace/name`, when the finding is about one resource.
    pub resource: Option<String>,
    /// The field path inside the resource, such as `spec.ports[0].protocol`.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}[{}]: ",
            self.file,
            self.line,
            self.severity.as_str(),
            self.code
        )?;
        if let Some(resource) = &self.resource {
            write!(f, "{resource}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Diagnostics collected while reading and building, kept in a stable order.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    /// Codes whose errors are downgraded to warnings (`--allow CODE`).
    allowed: Vec<&'static str>,
    /// How many of the errors left a resource out of the bundle and let the rest be built
    /// (Gloo's overlap rule): they fail `validate`, not `build`.
    left_out: usize,
}

/// The codes `--allow` accepts: errors that fail closed by default, on something a user can
/// knowingly accept. Any other error leaves a bundle that cannot say what was meant.
pub const ALLOWABLE: [&str; 2] = ["selects-nothing", "unknown-kind"];

impl Diagnostics {
    /// Diagnostics that downgrade the errors of `codes` (`--allow`), each one of [`ALLOWABLE`].
    pub fn allowing(codes: &[String]) -> Result<Self, String> {
        let mut diagnostics = Self::default();
        for code in codes {
            diagnostics.allow(code)?;
        }
        Ok(diagnostics)
    }

    /// Downgrades the errors of `code` (one of [`ALLOWABLE`]) to warnings, from now on.
    pub fn allow(&mut self, code: &str) -> Result<(), String> {
        match ALLOWABLE.iter().find(|c| **c == code) {
            Some(c) => {
                self.allowed.push(c);
                Ok(())
            }
            None => Err(format!(
                "--allow {code}: only these errors can be allowed: {}",
                ALLOWABLE.join(", ")
            )),
        }
    }

    /// Downgrades an allowed error, saying so.
    fn admit(&self, mut diagnostic: Diagnostic) -> Diagnostic {
        if diagnostic.severity == Severity::Error && self.allowed.contains(&diagnostic.code) {
            diagnostic.severity = Severity::Warning;
            diagnostic.message = format!(
                "{} (an error, allowed by --allow {})",
                diagnostic.message, diagnostic.code
            );
        }
        diagnostic
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        let diagnostic = self.admit(diagnostic);
        self.items.push(diagnostic);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// An error whose resource is left out of the bundle while everything else is built.
    pub fn push_left_out(&mut self, diagnostic: Diagnostic) {
        let diagnostic = self.admit(diagnostic);
        if diagnostic.severity == Severity::Error {
            self.left_out += 1;
        }
        self.items.push(diagnostic);
    }

    /// Errors other than those that only left a resource out: no bundle can be written.
    pub fn has_blocking_errors(&self) -> bool {
        self.count(Severity::Error) > self.left_out
    }

    /// How many errors left a resource out (the bundle was built without it).
    pub fn left_out(&self) -> usize {
        self.left_out
    }

    /// Sorted by file, line, severity and text: the same input always reports the same way.
    pub fn sorted(&self) -> Vec<Diagnostic> {
        let mut items = self.items.clone();
        items.sort();
        items.dedup();
        items
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.items.iter().filter(|d| d.severity == severity).count()
    }

    /// For people: one line per diagnostic, then the counts when there is anything to count.
    pub fn report(&self) -> String {
        self.report_from(Severity::Note)
    }

    /// As [`Self::report`], without diagnostics less severe than `least` (notes, for commands
    /// that only read manifests on the way).
    pub fn report_from(&self, least: Severity) -> String {
        let mut out = String::new();
        for d in self.sorted().into_iter().filter(|d| d.severity <= least) {
            out.push_str(&d.to_string());
            out.push('\n');
        }
        let (errors, warnings) = (self.count(Severity::Error), self.count(Severity::Warning));
        if errors + warnings > 0 {
            out.push_str(&format!("{errors} error(s), {warnings} warning(s)\n"));
        }
        out
    }

    /// Rewrites file names that start with `prefix`, and drops it where a message names a file
    /// (golden tests report relative names).
    pub fn strip_file_prefix(&mut self, prefix: &str) {
        for d in &mut self.items {
            if let Some(rest) = d.file.strip_prefix(prefix) {
                d.file = rest.to_owned();
            }
            d.message = d.message.replace(prefix, "");
        }
    }
}
