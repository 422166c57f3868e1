//! Which endpoints are ejected right now, as the endpoint choice asks it: the filter answers
//! from proxy-wasm shared data ([`crate::ServiceHealth`] records), tests and `explain` with
//! [`AllHealthy`]. A leaf: it knows only resource names.

use crate::name::ResourceName;

/// Which endpoints are ejected right now. The filter keeps this state in proxy-wasm shared
/// data so every worker sees it; tests and `explain` use [`AllHealthy`].
pub trait Health {
    /// Whether endpoint `index` of `service` is ejected.
    fn is_ejected(&self, service: &ResourceName, index: usize) -> bool;

    /// Whether any endpoint of `service` may be ejected. `false` lets the choice skip
    /// per-endpoint checks; the default is the safe answer.
    fn any_ejected(&self, _service: &ResourceName) -> bool {
        true
    }
}

/// No endpoint is ejected.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllHealthy;

impl Health for AllHealthy {
    fn is_ejected(&self, _service: &ResourceName, _index: usize) -> bool {
        false
    }

    fn any_ejected(&self, _service: &ResourceName) -> bool {
        false
    }
}
