//! `bundle-builder diff OLD NEW`: what a policy change does. The resources that changed
//! ([`structure`]) and, decided by the engine the filter runs, which clients gain or lose
//! access to what ([`access`]). Sorted and stable, for review in CI.

pub mod access;
pub mod structure;

use std::fmt::Write as _;

use serde::Serialize;
use warden_bundle::{Bundle, Role};

pub use access::{AccessChange, AccessDiff};
pub use structure::{Change, Changes};

/// Everything that differs between two bundles.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Some request allowed by NEW is denied by OLD.
    pub widened: bool,
    /// Some request allowed by OLD is denied by NEW.
    pub narrowed: bool,
    /// Bundle-wide settings (`outboundMode`, `trustDomain`, `workspaces`, ...).
    pub settings: Vec<Change>,
    pub services: Changes,
    pub policies: Changes,
    pub access: AccessDiff,
}

/// Compares OLD and NEW as proxies in `role` decide.
pub fn diff(old: &Bundle, new: &Bundle, role: Role) -> anyhow::Result<Report> {
    let access = access::diff(old, new, role)?;
    Ok(Report {
        widened: !access.gained.is_empty(),
        narrowed: !access.lost.is_empty(),
        settings: structure::settings(old, new),
        services: structure::services(old, new),
        policies: structure::policies(old, new),
        access,
    })
}

impl Report {
    /// Whether nothing at all differs.
    pub fn is_empty(&self) -> bool {
        self.settings.is_empty()
            && self.services.is_empty()
            && self.policies.is_empty()
            && self.access.gained.is_empty()
            && self.access.lost.is_empty()
    }

    /// One line per change, in a fixed order: settings, services, policies, access gained,
    /// access lost; then a summary line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for change in &self.settings {
            let _ = writeln!(out, "setting {}", change.text());
        }
        resource_lines(&mut out, "service", &self.services);
        resource_lines(&mut out, "policy", &self.policies);
        for (word, changes) in [("gained", &self.access.gained), ("lost", &self.access.lost)] {
            for c in changes {
                let _ = writeln!(
                    out,
                    "access {word}: {} {} ({}): {}: {}",
                    c.protocol,
                    c.destination,
                    c.service,
                    c.requests.join(", "),
                    c.clients.join(", ")
                );
            }
        }
        let _ = writeln!(out, "{}", self.summary());
        out
    }

    fn summary(&self) -> String {
        if self.is_empty() {
            return format!(
                "no change ({} requests decided alike)",
                self.access.requests_tried
            );
        }
        let count = |c: &Changes| {
            format!(
                "{} added, {} removed, {} renamed, {} changed",
                c.added.len(),
                c.removed.len(),
                c.renamed.len(),
                c.changed.len()
            )
        };
        let verdict = match (self.widened, self.narrowed) {
            (true, true) => "access widened and narrowed",
            (true, false) => "access widened",
            (false, true) => "access narrowed",
            (false, false) => "access unchanged",
        };
        format!(
            "{verdict}: {} settings changed; services {}; policies {}; {} gained, {} lost (of {} requests decided)",
            self.settings.len(),
            count(&self.services),
            count(&self.policies),
            self.access.gained.len(),
            self.access.lost.len(),
            self.access.requests_tried
        )
    }
}

fn resource_lines(out: &mut String, kind: &str, changes: &Changes) {
    for name in &changes.added {
        let _ = writeln!(out, "{kind} added: {name}");
    }
    for name in &changes.removed {
        let _ = writeln!(out, "{kind} removed: {name}");
    }
    for rename in &changes.renamed {
        let _ = writeln!(
            out,
            "{kind} renamed: {} -> {} (nothing else changed)",
            rename.old, rename.new
        );
    }
    for resource in &changes.changed {
        for change in &resource.changes {
            let _ = writeln!(out, "{kind} changed: {}: {}", resource.name, change.text());
        }
    }
}
