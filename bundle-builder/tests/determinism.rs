//! The bundle does not depend on how documents are spread over files or ordered.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use bundle_builder::build::{build, BuildOptions};
use bundle_builder::diagnostic::Diagnostics;
use bundle_builder::manifest::{load::load, source::SourceFile};
use proptest::prelude::*;

/// Every document of the examples, and of the golden cases that build a bundle.
fn documents(dir: &Path) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.split("\n---\n").map(str::to_owned).collect::<Vec<_>>()
        })
        .collect()
}

fn bundle_of(files: Vec<SourceFile>) -> String {
    // The access-policies case holds a policy that selects nothing, allowed there too.
    let mut diagnostics = Diagnostics::allowing(&["selects-nothing".to_owned()]).unwrap();
    let resources = load(&files, &mut diagnostics);
    let bundle = build(&resources, &BuildOptions::default(), &mut diagnostics)
        .unwrap_or_else(|| panic!("{}", diagnostics.report()));
    bundle.to_json_pretty().unwrap()
}

fn as_files(docs: &[String], cuts: &[usize]) -> Vec<SourceFile> {
    let mut files = Vec::new();
    let mut start = 0;
    for (n, &cut) in cuts.iter().chain(std::iter::once(&docs.len())).enumerate() {
        let end = cut.clamp(start, docs.len());
        files.push(SourceFile {
            name: format!("f{n}.yaml"),
            text: docs[start..end].join("\n---\n"),
        });
        start = end;
    }
    files
}

fn check(dir: &str) -> (Vec<String>, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = documents(&root.join(dir));
    let reference = bundle_of(as_files(&docs, &[]));
    (docs, reference)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Shuffling the documents and splitting them over files never changes the bundle.
    #[test]
    fn shuffling_documents_and_files_never_changes_the_bundle(
        seed in any::<u64>(),
        cuts in prop::collection::vec(0usize..40, 0..5),
        case in 0usize..3,
    ) {
        let dir = ["../manifests/examples", "tests/golden/access-policies/input", "tests/golden/workspace-bundle/input"][case];
        let (mut docs, reference) = check(dir);
        // A deterministic shuffle from the seed (Fisher-Yates with a small LCG).
        let mut state = seed | 1;
        for i in (1..docs.len()).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            docs.swap(i, (state >> 33) as usize % (i + 1));
        }
        let mut cuts = cuts;
        cuts.sort_unstable();
        prop_assert_eq!(bundle_of(as_files(&docs, &cuts)), reference);
    }
}
