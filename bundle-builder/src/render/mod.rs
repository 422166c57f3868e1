//! Rendering configuration for proxies from a bundle.

pub mod envoy;
pub mod guard;
pub mod istio;
pub mod plugin_configuration;
pub mod rbac;
pub mod tls;
pub mod yaml_out;
