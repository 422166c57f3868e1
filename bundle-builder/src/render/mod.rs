//! Rendering configuration for proxies from a bundle.

pub mod envoy;
pub mod rbac;
pub mod tls;
