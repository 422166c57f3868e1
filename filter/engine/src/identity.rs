//! SPIFFE identities and the patterns access rules match them with.

/// A SPIFFE ID pattern: `spiffe://<trust-domain>/<path>`, where a path segment (or the trust
/// domain) that is exactly `*` matches any one non-empty segment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct IdentityPattern(Box<str>);

/// Why a SPIFFE ID or pattern is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidIdentity {
    #[error("a SPIFFE ID starts with spiffe://")]
    MissingScheme,
    #[error("the trust domain is empty")]
    EmptyTrustDomain,
    #[error("a path segment is empty")]
    EmptySegment,
    #[error("`*` must stand alone as a whole segment, as in spiffe://cluster.local/ns/pay/sa/*")]
    PartialWildcard,
    #[error("the SPIFFE ID contains a character other than letters, digits, '.', '-', '_'")]
    IllegalCharacter,
}

const SCHEME: &str = "spiffe://";

impl IdentityPattern {
    pub(crate) fn parse(text: &str) -> Result<Self, InvalidIdentity> {
        validate(text, true)?;
        Ok(Self(Box::from(text)))
    }

    /// Whether `identity` (a SPIFFE ID) matches this pattern, segment by segment.
    pub(crate) fn matches(&self, identity: &str) -> bool {
        let (Some(pattern), Some(id)) =
            (self.0.strip_prefix(SCHEME), identity.strip_prefix(SCHEME))
        else {
            return false;
        };
        let mut want = pattern.split('/');
        let mut have = id.split('/');
        loop {
            match (want.next(), have.next()) {
                (None, None) => return true,
                (Some("*"), Some(seg)) if !seg.is_empty() => {}
                (Some(w), Some(h)) if w == h => {}
                _ => return false,
            }
        }
    }
}

/// Checks a SPIFFE ID (or, with `allow_wildcards`, a pattern).
pub fn validate(text: &str, allow_wildcards: bool) -> Result<(), InvalidIdentity> {
    let rest = text
        .strip_prefix(SCHEME)
        .ok_or(InvalidIdentity::MissingScheme)?;
    for (i, segment) in rest.split('/').enumerate() {
        if segment.is_empty() {
            return Err(if i == 0 {
                InvalidIdentity::EmptyTrustDomain
            } else {
                InvalidIdentity::EmptySegment
            });
        }
        if segment == "*" && allow_wildcards {
            continue;
        }
        if segment.contains('*') {
            return Err(InvalidIdentity::PartialWildcard);
        }
        let legal = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_');
        if !segment.bytes().all(legal) {
            return Err(InvalidIdentity::IllegalCharacter);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// `*` stands for exactly one segment, anywhere in the path.
    #[test]
    fn wildcard_segment_matches_one_segment() {
        let p = IdentityPattern::parse("spiffe://cluster.local/ns/pay/sa/*").unwrap();
        assert!(p.matches("spiffe://cluster.local/ns/pay/sa/billing"));
        assert!(!p.matches("spiffe://cluster.local/ns/pay/sa"));
        assert!(!p.matches("spiffe://cluster.local/ns/pay/sa/billing/extra"));
        assert!(!p.matches("spiffe://cluster.local/ns/web/sa/billing"));
        assert!(!p.matches("spiffe://other.domain/ns/pay/sa/billing"));
    }

    /// Malformed patterns are refused with the reason.
    #[test]
    fn malformed_patterns_are_refused() {
        assert_eq!(
            IdentityPattern::parse("cluster.local/ns/a/sa/b"),
            Err(InvalidIdentity::MissingScheme)
        );
        assert_eq!(
            IdentityPattern::parse("spiffe:///ns/a"),
            Err(InvalidIdentity::EmptyTrustDomain)
        );
        assert_eq!(
            IdentityPattern::parse("spiffe://td/ns//sa/b"),
            Err(InvalidIdentity::EmptySegment)
        );
        assert_eq!(
            IdentityPattern::parse("spiffe://td/ns/a/sa/bill*"),
            Err(InvalidIdentity::PartialWildcard)
        );
        assert_eq!(
            IdentityPattern::parse("spiffe://td/ns/a b"),
            Err(InvalidIdentity::IllegalCharacter)
        );
    }
}
