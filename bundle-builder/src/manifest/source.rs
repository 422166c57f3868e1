//! Where manifests come from: files, folders (recursively), or standard input.

use std::io::Read;
use std::path::{Path, PathBuf};

/// A manifest file's name (as it will be reported) and text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct SourceError {
    pub path: String,
    pub reason: String,
}

/// Whether `path` names a manifest file (by extension, in any case: YAML or JSON).
pub fn is_manifest(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["yaml", "yml", "json"].contains(&e.to_ascii_lowercase().as_str()))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SourceError> {
    let fail = |e: std::io::Error| SourceError {
        path: dir.display().to_string(),
        reason: e.to_string(),
    };
    for entry in std::fs::read_dir(dir).map_err(fail)? {
        let path = entry.map_err(fail)?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if is_manifest(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads every input, as [`read_all`], except that a file that cannot be read or is not text
/// (a binary beside the manifests) is an error diagnostic and the run goes on, so one run
/// reports everything. An input that does not exist is still an error of its own.
pub fn read_manifests(
    inputs: &[PathBuf],
    diagnostics: &mut crate::diagnostic::Diagnostics,
) -> Result<Vec<SourceFile>, SourceError> {
    read(inputs, Some(diagnostics))
}

/// Reads every input. A folder contributes its `*.yaml`, `*.yml` and `*.json` files,
/// recursively; `-` is standard input. Files come back sorted by name, each once.
pub fn read_all(inputs: &[PathBuf]) -> Result<Vec<SourceFile>, SourceError> {
    read(inputs, None)
}

fn read(
    inputs: &[PathBuf],
    mut diagnostics: Option<&mut crate::diagnostic::Diagnostics>,
) -> Result<Vec<SourceFile>, SourceError> {
    let mut paths = Vec::new();
    let mut stdin = None;
    for input in inputs {
        if input.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| SourceError {
                    path: "-".into(),
                    reason: e.to_string(),
                })?;
            stdin = Some(SourceFile {
                name: "<stdin>".into(),
                text,
            });
        } else if input.is_dir() {
            walk(input, &mut paths)?;
        } else {
            paths.push(input.clone());
        }
    }
    paths.sort();
    paths.dedup();
    let mut files = Vec::with_capacity(paths.len() + 1);
    for path in paths {
        if !path.exists() {
            return Err(SourceError {
                path: path.display().to_string(),
                reason: "no such file or folder".into(),
            });
        }
        let text = match (std::fs::read_to_string(&path), diagnostics.as_deref_mut()) {
            (Ok(text), _) => text,
            (Err(e), Some(diagnostics)) => {
                diagnostics.push(crate::diagnostic::Diagnostic {
                    file: path.display().to_string(),
                    line: 0,
                    severity: crate::diagnostic::Severity::Error,
                    code: "unreadable-file",
                    resource: None,
                    field: None,
                    message: format!("cannot be read as a manifest: {e}"),
                });
                continue;
            }
            (Err(e), None) => {
                return Err(SourceError {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })
            }
        };
        files.push(SourceFile {
            name: path.display().to_string(),
            text,
        });
    }
    files.extend(stdin);
    Ok(files)
}
