//! The documentation's transcripts run: in README.md and docs/*.md, every ```console block
//! whose lines start with `$ bundle-builder` (or `$ target/release/bundle-builder`) is run
//! with this build's binary, from a scratch folder that sees the repository's `manifests/`
//! and `bundle-builder/` (so files the commands write stay out of the clone), and what it
//! prints (standard error, then standard output) must be the lines shown below the command.
//! `...` in a shown line stands for any text. Every other `bundle-builder` command line in a
//! code block must at least parse: it is run with `--help` appended, which clap answers only
//! when every flag before it exists and takes the value given (nothing is executed).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// README.md, then docs/*.md by name.
fn markdown_files() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    docs.insert(0, root().join("README.md"));
    docs
}

/// A file's name as failures show it: relative to the repository.
fn shown(file: &Path) -> String {
    file.strip_prefix(root())
        .unwrap_or(file)
        .display()
        .to_string()
}

/// A command of a transcript and the lines it must print.
#[derive(Debug)]
struct Step {
    file: String,
    line: usize,
    args: Vec<String>,
    expected: Vec<String>,
}

/// The transcripts of one Markdown file.
fn steps(file: &Path) -> Vec<Step> {
    let text = std::fs::read_to_string(file).unwrap();
    let name = shown(file);
    let mut steps: Vec<Step> = Vec::new();
    let mut in_console = false;
    let mut continued = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if line.starts_with("```") {
            in_console = !in_console && line == "```console";
            continue;
        }
        if !in_console {
            continue;
        }
        if continued {
            let step = steps.last_mut().unwrap();
            continued = line.ends_with('\\');
            step.args.extend(words(line.trim_end_matches('\\')));
            continue;
        }
        if let Some(command) = line.strip_prefix("$ ") {
            let command = command.strip_prefix("target/release/").unwrap_or(command);
            let Some(rest) = command.strip_prefix("bundle-builder ") else {
                panic!("{name}:{}: a transcript runs bundle-builder only", i + 1);
            };
            continued = rest.ends_with('\\');
            steps.push(Step {
                file: name.clone(),
                line: i + 1,
                args: words(rest.trim_end_matches('\\')),
                expected: Vec::new(),
            });
        } else if let Some(step) = steps.last_mut().filter(|s| s.file == name) {
            step.expected.push(line.to_owned());
        }
    }
    steps
}

/// Shell words, enough for documentation: whitespace-separated, with single quotes.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '\'' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Whether `actual` is `expected`, where `...` stands for any text.
fn matches(expected: &str, actual: &str) -> bool {
    let mut parts = expected.split("...");
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = actual.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

#[test]
fn documented_transcripts_print_what_they_show() {
    let files = markdown_files();
    let all: Vec<Step> = files.iter().flat_map(|f| steps(f)).collect();
    assert!(all.len() >= 5, "the transcripts are missing: {all:?}");
    let scratch = tempfile::tempdir().unwrap();
    for dir in ["manifests", "bundle-builder"] {
        std::os::unix::fs::symlink(root().join(dir), scratch.path().join(dir)).unwrap();
    }
    let mut failures = Vec::new();
    for step in &all {
        let out = Command::new(env!("CARGO_BIN_EXE_bundle-builder"))
            .args(&step.args)
            .current_dir(scratch.path())
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        let actual: Vec<&str> = printed.lines().collect();
        let same = actual.len() == step.expected.len()
            && step
                .expected
                .iter()
                .zip(&actual)
                .all(|(e, a)| matches(e, a));
        if !same {
            failures.push(format!(
                "{}:{}: bundle-builder {}\n--- shown\n{}\n--- printed\n{}",
                step.file,
                step.line,
                step.args.join(" "),
                step.expected.join("\n"),
                printed
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_matcher_treats_dots_as_any_text() {
    assert!(matches(
        "wrote a (1 services, sha256:...)",
        "wrote a (1 services, sha256:abc)"
    ));
    assert!(matches("a...b...c", "a123b456c"));
    assert!(!matches("a...b", "a123c"));
    assert!(matches("exact", "exact"));
    assert!(!matches("exact", "exactly"));
}

const SUBCOMMANDS: [&str; 13] = [
    "validate", "build", "watch", "keygen", "push", "embed", "trim", "explain", "test", "diff",
    "schema", "render", "help",
];

/// The `bundle-builder` command lines of code blocks that are not transcripts, with where they
/// are: shell comments, redirections and pipes cut off, continuation lines joined.
fn command_lines(file: &Path) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(file).unwrap();
    let name = shown(file);
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_code = false;
    let mut pending: Option<(String, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        let (at, mut command) = match pending.take() {
            Some((at, so_far)) => (at, so_far + " " + line),
            None => {
                let line = line.strip_prefix("target/release/").unwrap_or(line);
                match line.strip_prefix("bundle-builder ") {
                    Some(rest) => (format!("{name}:{}", i + 1), rest.to_owned()),
                    None => continue,
                }
            }
        };
        if command.ends_with('\\') {
            command.pop();
            pending = Some((at, command));
            continue;
        }
        let cut = command
            .find(['#', '|', '>', '&'])
            .map_or(command.as_str(), |i| &command[..i]);
        let args = words(cut);
        // A command, not prose that names the binary (the README's tour).
        if args
            .first()
            .is_some_and(|a| SUBCOMMANDS.contains(&a.as_str()))
        {
            out.push((at, args));
        }
    }
    out
}

#[test]
fn documented_command_lines_parse() {
    let files = markdown_files();
    let lines: Vec<(String, Vec<String>)> = files.iter().flat_map(|f| command_lines(f)).collect();
    assert!(
        lines.len() >= 20,
        "the command lines are missing: {lines:?}"
    );
    let mut failures = Vec::new();
    for (at, args) in &lines {
        let out = Command::new(env!("CARGO_BIN_EXE_bundle-builder"))
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        if !out.status.success() {
            failures.push(format!(
                "{at}: bundle-builder {}\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
