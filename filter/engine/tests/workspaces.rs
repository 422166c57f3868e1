//! Workspace views: one bundle for the whole mesh, each caller deciding within its own
//! workspace's view (Gloo's semantics): the same address in two workspaces that do not share
//! never collides.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

mod support;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use support::*;
use warden_bundle::{
    OutboundMode::{AllowAny, RegistryOnly},
    Workspace,
};
use warden_engine::{compile_all, Policy, Request};

const STAGING_API: &str = "spiffe://cluster.local/ns/staging-apps/sa/api";
const PROD_API: &str = "spiffe://cluster.local/ns/prod-apps/sa/api";
const PROD_BATCH: &str = "spiffe://cluster.local/ns/prod-apps/sa/batch";
const OUTSIDE: &str = "spiffe://cluster.local/ns/web/sa/frontend";

/// Gloo's example: the same database address as `staging/db` and as `prod/db`, in workspaces
/// that do not share; prod's policy lets only prod's api in. `shared/vault` is prod's,
/// shared with staging.
fn policy() -> Policy {
    policy_in(RegistryOnly)
}

fn policy_in(mode: warden_bundle::OutboundMode) -> Policy {
    let mut staging = service("staging-apps/db", &[], &["10.5.0.10"], &[5432]);
    staging.workspaces = vec!["staging".into()];
    let mut prod = service("prod-apps/db", &[], &["10.5.0.10"], &[5432]);
    prod.workspaces = vec!["prod".into()];
    let mut vault = service("prod-apps/vault", &["vault.example"], &[], &[8200]);
    vault.workspaces = vec!["prod".into(), "staging".into()];
    let mut b = bundle(
        mode,
        vec![staging, prod, vault],
        vec![support::policy(
            "prod-apps/db-api-only",
            &[("prod-apps/db", None)],
            vec![clients(&[PROD_API])],
        )],
    );
    b.spec.workspaces = vec![
        Workspace {
            name: "staging".into(),
            namespaces: vec!["staging-*".into()],
        },
        Workspace {
            name: "prod".into(),
            namespaces: vec!["prod-*".into()],
        },
    ];
    compiled(&b)
}

fn from(client: &'static str, request: Request<'static>) -> Request<'static> {
    Request {
        client: Some(client),
        ..request
    }
}

#[test]
fn each_caller_decides_within_its_workspace() {
    let p = policy();
    let db = || tcp("10.5.0.10", 5432);
    assert_eq!(
        verdict(&p, &from(STAGING_API, db())),
        "allow registered staging-apps/db"
    );
    assert_eq!(
        verdict(&p, &from(PROD_API, db())),
        "allow client_allowed prod-apps/db"
    );
    assert_eq!(
        verdict(&p, &from(PROD_BATCH, db())),
        "deny client_not_allowed prod-apps/db"
    );
    // A shared service is in both views; another workspace's is in neither.
    for client in [STAGING_API, PROD_API] {
        assert_eq!(
            verdict(&p, &from(client, http("vault.example:8200"))),
            "allow registered prod-apps/vault"
        );
    }
    // Outside every workspace: the `default` view, which holds none of these. They are
    // registered elsewhere, so denied, never passed through (under ALLOW_ANY too).
    for mode in [RegistryOnly, AllowAny] {
        let p = policy_in(mode);
        assert_eq!(verdict(&p, &from(OUTSIDE, db())), "deny not_in_workspace -");
        assert_eq!(
            verdict(&p, &from(OUTSIDE, http("vault.example:8200"))),
            "deny not_in_workspace -"
        );
        // Without an identity: the `default` view too.
        assert_eq!(verdict(&p, &db()), "deny not_in_workspace -");
        // What no workspace registers is the outbound mode's.
        let unknown = verdict(&p, &from(OUTSIDE, tcp("10.9.9.9", 5432)));
        assert!(unknown.ends_with(" -"), "{unknown}");
    }
}

#[test]
fn bad_workspaces_are_refused() {
    let mut s = service("a/db", &[], &["10.5.0.10"], &[5432]);
    s.workspaces = vec!["nowhere".into()];
    let mut b = bundle(RegistryOnly, vec![s], vec![]);
    b.spec.workspaces = vec![Workspace {
        name: "prod".into(),
        namespaces: vec!["prod-[a-z]".into()],
    }];
    let errors: Vec<String> = compile_all(&b)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        [
            "spec.workspaces[0].namespaces[0]: \"prod-[a-z]\" is not a namespace pattern (letters, digits, '-', with '*' for any characters and '?' for one)",
            "ExternalService a/db: spec.services[0].workspaces[0]: the bundle declares no spec.workspaces for this to name",
        ]
    );
}
