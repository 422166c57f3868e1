//! Building a bundle from 10,000 ExternalServices, 30,000 ExternalEndpoints and 1,000
//! AccessPolicies, spread over 100 files: reading the YAML, validating, the overlap rule, and
//! sealing. Run with `make bench-engine` (or `cargo bench -p bundle-builder --bench build`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_debug_implementations
)]

use std::fmt::Write;
use std::hint::black_box;
use std::time::Duration;

use bundle_builder::build::{build, BuildOptions};
use bundle_builder::diagnostic::Diagnostics;
use bundle_builder::manifest::{load::load, source::SourceFile};
use criterion::{criterion_group, criterion_main, Criterion};

const SERVICES: usize = 10_000;
const FILES: usize = 100;

fn manifests() -> Vec<SourceFile> {
    let mut files = vec![String::new(); FILES];
    for i in 0..SERVICES {
        let text = &mut files[i % FILES];
        let ns = format!("team{}", i % 40);
        let _ = write!(
            text,
            "---\napiVersion: networking.gloo.solo.io/v2\nkind: ExternalService\nmetadata:\n  name: svc-{i}\n  namespace: {ns}\n  labels: {{tier: t{}}}\nspec:\n  hosts: [svc-{i}.vendor{}.example.com]\n  ports:\n  - {{name: https, number: 443, protocol: HTTPS}}\n  - {{name: db, number: 5432, protocol: TLS, targetPort: {{name: db}}}}\n  selector: {{app: svc-{i}}}\n",
            i % 10,
            i % 97
        );
        for e in 0..3 {
            let _ = write!(
                text,
                "---\napiVersion: networking.gloo.solo.io/v2\nkind: ExternalEndpoint\nmetadata:\n  name: svc-{i}-{e}\n  namespace: {ns}\n  labels: {{app: svc-{i}}}\nspec:\n  address: 10.{}.{}.{}\n  ports: [{{name: db, number: 5432}}]\n  locality: {{region: r{e}, zone: r{e}-a}}\n",
                e,
                (i >> 8) & 0xff,
                i & 0xff
            );
        }
        if i % 10 == 0 {
            let _ = write!(
                text,
                "---\napiVersion: security.policy.gloo.solo.io/v2\nkind: AccessPolicy\nmetadata:\n  name: access-{i}\n  namespace: {ns}\nspec:\n  applyToDestinations:\n  - selector: {{name: svc-{i}, namespace: {ns}}}\n  config:\n    authzList:\n    - allowedClients:\n      - serviceAccountSelector: {{namespace: {ns}, name: app-{i}}}\n"
            );
        }
    }
    files
        .into_iter()
        .enumerate()
        .map(|(n, text)| SourceFile {
            name: format!("file-{n}.yaml"),
            text,
        })
        .collect()
}

fn bench_build(c: &mut Criterion) {
    let files = manifests();
    let mut diagnostics = Diagnostics::default();
    let bundle = build(
        &load(&files, &mut diagnostics),
        &BuildOptions::default(),
        &mut diagnostics,
    )
    .unwrap_or_else(|| panic!("{}", diagnostics.report()));
    assert_eq!(bundle.spec.services.len(), SERVICES);
    assert_eq!(bundle.spec.access_policies.len(), SERVICES / 10);
    let mut group = c.benchmark_group("builder");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("10k_services_30k_endpoints_1k_policies", |b| {
        b.iter(|| {
            let mut diagnostics = Diagnostics::default();
            let resources = load(black_box(&files), &mut diagnostics);
            black_box(build(
                &resources,
                &BuildOptions::default(),
                &mut diagnostics,
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_build);
criterion_main!(benches);
