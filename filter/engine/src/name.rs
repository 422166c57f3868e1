//! Compact `namespace/name` references to the resources rules came from.

use std::fmt;

/// `namespace/name` of a resource, stored as one string.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ResourceName {
    full: Box<str>,
    slash: u32,
}

impl ResourceName {
    pub fn new(namespace: &str, name: &str) -> Self {
        let mut full = String::with_capacity(namespace.len() + 1 + name.len());
        full.push_str(namespace);
        full.push('/');
        full.push_str(name);
        Self {
            full: full.into_boxed_str(),
            slash: u32::try_from(namespace.len()).unwrap_or(u32::MAX),
        }
    }

    /// Whether the separator offset is where the `/` is. For decoded names.
    pub(crate) fn is_well_formed(&self) -> bool {
        self.full.as_bytes().get(self.slash as usize) == Some(&b'/')
    }

    /// `namespace/name`.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    pub fn namespace(&self) -> &str {
        self.full
            .split_at_checked(self.slash as usize)
            .map_or("", |(ns, _)| ns)
    }

    pub fn name(&self) -> &str {
        self.full.get(self.slash as usize + 1..).unwrap_or_default()
    }
}

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl fmt::Debug for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// The parts come back as they went in.
    #[test]
    fn parts_round_trip() {
        let n = ResourceName::new("pay", "orders-db");
        assert_eq!(n.as_str(), "pay/orders-db");
        assert_eq!(n.namespace(), "pay");
        assert_eq!(n.name(), "orders-db");
    }
}
