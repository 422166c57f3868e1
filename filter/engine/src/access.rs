//! Compiled access policies and their evaluation for one request.

use ipnet::IpNet;

use crate::identity::IdentityPattern;
use crate::name::{OwnedName, ResourceName};
use crate::request::Request;

/// An access policy, compiled.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct CompiledPolicy {
    pub(crate) name: OwnedName,
    pub(crate) dry_run: bool,
    pub(crate) rules: Box<[Rule]>,
}

/// One allow rule; every non-empty list must match.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Rule {
    pub(crate) clients: Box<[IdentityPattern]>,
    pub(crate) ip_blocks: Box<[IpNet]>,
    /// Uppercase.
    pub(crate) methods: Box<[Box<str>]>,
    pub(crate) paths: Box<[PathPattern]>,
}

/// An `allowedPaths` entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum PathPattern {
    Exact(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
}

impl PathPattern {
    pub(crate) fn parse(text: &str) -> Self {
        if let Some(prefix) = text.strip_suffix('*') {
            Self::Prefix(prefix.into())
        } else if let Some(suffix) = text.strip_prefix('*') {
            Self::Suffix(suffix.into())
        } else {
            Self::Exact(text.into())
        }
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            Self::Exact(p) => path == &**p,
            Self::Prefix(p) => path.starts_with(&**p),
            Self::Suffix(s) => path.ends_with(&**s),
        }
    }
}

impl Rule {
    /// Whether this rule allows `request`. A condition on a field the request lacks (a method
    /// on a TCP connection, a client without mTLS) does not match.
    fn allows(&self, request: &Request<'_>) -> bool {
        let clients = self.clients.is_empty()
            || request
                .client
                .is_some_and(|id| self.clients.iter().any(|p| p.matches(id)));
        let ips = self.ip_blocks.is_empty()
            || request
                .source
                .is_some_and(|ip| self.ip_blocks.iter().any(|net| net.contains(&ip)));
        let methods = self.methods.is_empty()
            || request.method.is_some_and(|m| {
                self.methods
                    .iter()
                    .any(|allowed| allowed.eq_ignore_ascii_case(m))
            });
        let paths = self.paths.is_empty()
            || request.path.is_some_and(|raw| {
                let path = raw.split(['?', '#']).next().unwrap_or(raw);
                self.paths.iter().any(|p| p.matches(path))
            });
        clients && ips && methods && paths
    }
}

/// The access check's result for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccessOutcome<'p> {
    /// No policy applies.
    Unrestricted,
    /// A rule of this policy allows the request.
    Allowed(&'p ResourceName),
    /// An enforced policy applies and no rule allows the request.
    Denied(&'p ResourceName),
    /// Only dry-run policies apply and none allows the request: allowed, reported.
    DryRunDenied(&'p ResourceName),
}

/// Evaluates the policies (indices into `policies`) that apply to one service port.
///
/// When any enforced policy applies, the enforced policies alone decide: the request is
/// allowed when one of their rules allows it, and denied by the first of them otherwise.
/// Dry-run policies then change nothing (rules only ever widen access, so a dry-run policy
/// beside an enforced one could never deny more). When only dry-run policies apply, a request
/// none of their rules allows is allowed and reported as the denial the first would make.
pub(crate) fn evaluate<'p>(
    policies: &'p [CompiledPolicy],
    applicable: &[u32],
    request: &Request<'_>,
) -> AccessOutcome<'p> {
    let applicable = || applicable.iter().filter_map(|&i| policies.get(i as usize));
    let has_enforced = applicable().any(|p| !p.dry_run);
    let mut first = None;
    // The deciding policies: the enforced ones if any, else the dry-run ones.
    for policy in applicable().filter(|p| p.dry_run != has_enforced) {
        if policy.rules.iter().any(|rule| rule.allows(request)) {
            return AccessOutcome::Allowed(&policy.name);
        }
        first.get_or_insert(&*policy.name);
    }
    match first {
        None => AccessOutcome::Unrestricted,
        Some(name) if has_enforced => AccessOutcome::Denied(name),
        Some(name) => AccessOutcome::DryRunDenied(name),
    }
}
