//! Workspace views: in a bundle built for the whole mesh, a caller decides within its
//! workspace's view (Gloo's workspaces: its own services and those shared into it), so the
//! same address or host in two workspaces that do not share never collides.

/// A workspace's name and its namespace patterns.
type Member = (Box<str>, Box<[Box<str>]>);

/// The workspaces of a bundle and how a caller's namespace finds its own.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Views {
    /// Name and namespace patterns, in the bundle's order (first match wins).
    workspaces: Box<[Member]>,
    /// The view of callers no pattern matches (and of callers without an identity).
    default: u16,
}

/// The name of the workspace of everything outside the declared ones.
pub const DEFAULT_WORKSPACE: &str = "default";

impl Views {
    /// `None` for a bundle without workspaces: one view. The index of each name is its
    /// position; `default` is added when the bundle does not declare it.
    pub(crate) fn new(workspaces: &[warden_bundle::Workspace]) -> Result<Option<Self>, String> {
        if workspaces.is_empty() {
            return Ok(None);
        }
        let mut list: Vec<Member> = Vec::with_capacity(workspaces.len() + 1);
        for (w, ws) in workspaces.iter().enumerate() {
            if list.iter().any(|(name, _)| **name == *ws.name) {
                return Err(format!(
                    "spec.workspaces[{w}].name: {:?} is declared twice",
                    ws.name
                ));
            }
            for (n, pattern) in ws.namespaces.iter().enumerate() {
                let valid = !pattern.is_empty()
                    && pattern.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"-*?".contains(&b)
                    });
                if !valid {
                    return Err(format!(
                        "spec.workspaces[{w}].namespaces[{n}]: {pattern:?} is not a namespace pattern (letters, digits, '-', with '*' for any characters and '?' for one)"
                    ));
                }
            }
            list.push((
                ws.name.as_str().into(),
                ws.namespaces.iter().map(|p| p.as_str().into()).collect(),
            ));
        }
        let default = match list
            .iter()
            .position(|(name, _)| &**name == DEFAULT_WORKSPACE)
        {
            Some(i) => i,
            None => {
                list.push((DEFAULT_WORKSPACE.into(), Box::default()));
                list.len() - 1
            }
        };
        let default =
            u16::try_from(default).map_err(|_| "more than 65535 workspaces".to_owned())?;
        Ok(Some(Self {
            workspaces: list.into_boxed_slice(),
            default,
        }))
    }

    /// The number of views.
    pub(crate) fn len(&self) -> usize {
        self.workspaces.len()
    }

    /// Whether the default view is one of the views. For decoded tables.
    pub(crate) fn check(&self) -> Result<(), String> {
        if usize::from(self.default) < self.workspaces.len() {
            Ok(())
        } else {
            Err("the default workspace view does not exist".into())
        }
    }

    /// The index of the workspace `name`.
    pub(crate) fn index(&self, name: &str) -> Option<u16> {
        let i = self.workspaces.iter().position(|(n, _)| &**n == name)?;
        u16::try_from(i).ok()
    }

    /// The view of a caller: its namespace's workspace (from its SPIFFE ID in the mesh's
    /// trust domain), else `default`. An identity from another trust domain names none of the
    /// mesh's namespaces.
    pub(crate) fn of(&self, client: Option<&str>, trust_domain: &str) -> u16 {
        let Some(namespace) = client.and_then(|c| namespace_of(c, trust_domain)) else {
            return self.default;
        };
        self.workspaces
            .iter()
            .position(|(_, patterns)| {
                patterns
                    .iter()
                    .any(|p| glob(p.as_bytes(), namespace.as_bytes()))
            })
            .and_then(|i| u16::try_from(i).ok())
            .unwrap_or(self.default)
    }
}

/// The namespace in `spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/ACCOUNT`, for this trust domain.
fn namespace_of<'a>(id: &'a str, trust_domain: &str) -> Option<&'a str> {
    let path = id.strip_prefix("spiffe://")?;
    let (domain, path) = path.split_once('/')?;
    if domain != trust_domain {
        return None;
    }
    let rest = path.strip_prefix("ns/")?;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// `*` matches any run of bytes, `?` one byte; everything else itself.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || Some(&c) == text.get(t) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn globs_match_as_gloo_namespaces_do() {
        for (pattern, text, want) in [
            ("prod-*", "prod-apps", true),
            ("prod-*", "prod-", true),
            ("prod-*", "staging-apps", false),
            ("*", "anything", true),
            ("team-?", "team-a", true),
            ("team-?", "team-ab", false),
            ("*-db", "orders-db", true),
            ("*-db", "orders-dbx", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ] {
            assert_eq!(
                glob(pattern.as_bytes(), text.as_bytes()),
                want,
                "{pattern} {text}"
            );
        }
    }

    #[test]
    fn namespaces_come_from_spiffe_ids() {
        let td = "cluster.local";
        assert_eq!(
            namespace_of("spiffe://cluster.local/ns/pay/sa/billing", td),
            Some("pay")
        );
        assert_eq!(
            namespace_of("spiffe://other.domain/ns/pay/sa/billing", td),
            None
        );
        assert_eq!(namespace_of("spiffe://cluster.local/sa/billing", td), None);
        assert_eq!(namespace_of("not-spiffe", td), None);
    }
}
