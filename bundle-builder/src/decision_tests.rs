//! Decision tests: requests and the decisions they must get, kept in YAML beside the manifests
//! (`kind: DecisionTests`) and run by `bundle-builder test` with the engine the filter runs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warden_engine::Policy;

use crate::decide::{DecisionOutput, Query};
use crate::manifest::source::SourceFile;
use crate::manifest::yaml;

/// A file of decision tests.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "Warden decision tests")]
pub struct DecisionTests {
    /// `warden.dev/v1alpha1`.
    pub api_version: TestsApiVersion,
    /// `DecisionTests`.
    pub kind: TestsKind,
    #[serde(default)]
    pub metadata: TestsMetadata,
    pub spec: TestsSpec,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
pub enum TestsApiVersion {
    #[serde(rename = "warden.dev/v1alpha1")]
    V1Alpha1,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
pub enum TestsKind {
    DecisionTests,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestsMetadata {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestsSpec {
    /// The cases, run in order.
    pub cases: Vec<TestCase>,
}

/// One request and the decision it must get.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestCase {
    /// What the case checks, as a reviewer would say it.
    pub name: String,
    pub request: Query,
    pub expect: Expectation,
}

/// `allow` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Allowed (a dry-run denial is allowed: say `dryRun: true` to require one).
    Allow,
    Deny,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

/// What the decision must be; fields left out are not checked.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expectation {
    pub decision: Verdict,
    /// The reason code (`registered`, `client_allowed`, `in_mesh`, `client_not_allowed`,
    /// `not_in_registry`, ...: docs/decisions.md lists them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The matched ExternalService, `namespace/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The AccessPolicy that decided, `namespace/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// For an internal hostname, the endpoint chosen with every endpoint healthy:
    /// `ADDRESS:PORT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Whether the decision is a dry-run denial (allowed, reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
}

/// A case read from a file, with where it was written.
#[derive(Debug, Clone)]
pub struct LoadedCase {
    pub file: String,
    pub line: usize,
    pub case: TestCase,
}

/// Reads every `DecisionTests` document of `files`; other documents are ignored. Errors name
/// the file, line and field.
pub fn load(files: &[SourceFile]) -> Result<Vec<LoadedCase>, Vec<String>> {
    let mut cases = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        let documents = match yaml::parse(&file.text) {
            Ok(documents) => documents,
            Err(err) => {
                errors.push(format!(
                    "{}:{}: not YAML: {}",
                    file.name, err.line, err.message
                ));
                continue;
            }
        };
        for document in documents {
            let kind = document
                .value
                .get("kind")
                .and_then(|k| k.as_str())
                .unwrap_or_default();
            if kind != "DecisionTests" {
                // A misspelt kind would drop its cases without a word.
                let distance =
                    crate::manifest::load::distance(&kind.to_ascii_lowercase(), "decisiontests");
                if distance <= 2 {
                    errors.push(format!(
                        "{}:{}: kind: {kind} is not a kind Warden reads; did you mean DecisionTests?",
                        file.name,
                        document.line_of("kind")
                    ));
                }
                continue;
            }
            match serde_path_to_error::deserialize::<_, DecisionTests>(&document.value) {
                Ok(tests) => {
                    for (i, case) in tests.spec.cases.into_iter().enumerate() {
                        cases.push(LoadedCase {
                            file: file.name.clone(),
                            line: document.line_of(&format!("spec.cases[{i}]")),
                            case,
                        });
                    }
                }
                Err(err) => {
                    let path = err.path().to_string();
                    errors.push(format!(
                        "{}:{}: {path}: {}",
                        file.name,
                        document.line_of(&path),
                        err.into_inner()
                    ));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(errors)
    }
}

/// One case's result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseResult {
    pub file: String,
    pub line: usize,
    pub name: String,
    pub passed: bool,
    pub expected: Expectation,
    /// The decision (absent when the request itself could not be decided).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<DecisionOutput>,
    /// The engine's explanation of the decision, or why the request could not be decided.
    pub why: String,
    /// Each expectation the decision did not meet.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<String>,
}

/// Runs `cases` against `policy`.
pub fn run(policy: &mut Policy, cases: &[LoadedCase]) -> Vec<CaseResult> {
    cases
        .iter()
        .map(|loaded| {
            let case = &loaded.case;
            let result =
                |actual: Option<DecisionOutput>, why: String, mismatches: Vec<String>| CaseResult {
                    file: loaded.file.clone(),
                    line: loaded.line,
                    name: case.name.clone(),
                    passed: mismatches.is_empty(),
                    expected: case.expect.clone(),
                    actual,
                    why,
                    mismatches,
                };
            match case.request.decide(policy) {
                Ok(outcome) => {
                    let actual = outcome.to_output();
                    let mismatches = mismatches(&case.expect, &actual);
                    result(Some(actual), outcome.decision.message(), mismatches)
                }
                Err(err) => result(
                    None,
                    format!("{err:#}"),
                    vec![format!("request: cannot be decided: {err:#}")],
                ),
            }
        })
        .collect()
}

fn mismatches(expect: &Expectation, actual: &DecisionOutput) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |field: &str, want: Option<&str>, got: Option<&str>| {
        if let Some(want) = want {
            if Some(want) != got {
                out.push(format!(
                    "{field}: expected {want}, got {}",
                    got.unwrap_or("none")
                ));
            }
        }
    };
    check(
        "decision",
        Some(expect.decision.as_str()),
        Some(actual.decision),
    );
    check("reason", expect.reason.as_deref(), Some(actual.reason));
    check(
        "service",
        expect.service.as_deref(),
        actual.service.as_deref(),
    );
    check("policy", expect.policy.as_deref(), actual.policy.as_deref());
    let endpoint = actual
        .endpoint
        .as_ref()
        .map(|e| crate::decide::host_port(&e.address, e.port));
    check("endpoint", expect.endpoint.as_deref(), endpoint.as_deref());
    let dry_run = actual.dry_run.to_string();
    let want = expect.dry_run.map(|d| d.to_string());
    check("dryRun", want.as_deref(), Some(&dry_run));
    out
}
