//! Warden's policy engine.
//!
//! [`compile`] turns a [`Bundle`](warden_bundle::Bundle) into a [`Policy`] once per
//! configuration; [`Policy::decide`] answers each request or connection with a [`Decision`].
//! The engine has no proxy-wasm dependency: the filter, `bundle-builder explain` and the tests
//! all run this same code, natively or as wasm.

mod access;
mod cidr;
pub mod compact;
mod compile;
mod compiled;
mod decision;
mod decode_error;
mod endpoint;
mod error;
mod exact_seq;
mod facts;
mod health;
mod host;
mod host_table;
mod identity;
mod key_table;
mod locality_form;
mod name;
mod outlier;
mod packed;
mod policy;
mod ranking;
mod refill;
mod request;
mod route;
mod selection;
mod service_set;
pub mod signing;
mod sorted_map;
mod view;

pub use compile::{compile, compile_all};

/// The checks `compile` applies to single values, for tools that report them against their
/// own input (the builder names manifest files and lines).
pub mod validate {
    pub use crate::compile::{address, endpoint, host_pattern, mesh_address, mesh_domain, ports};
    pub use crate::identity::validate as spiffe_id;
}
pub use decision::{AllowReason, Decision, Denial, DenyReason, MatchedOn, Permit, ServiceMatch};
pub use endpoint::EndpointAddress;
pub use error::CompileError;
pub use facts::Facts;
pub use health::{AllHealthy, Health};
pub use host::{
    canonical_ip, is_unspecified, parse_authority, parse_host, parse_ipv4_spelling, Authority,
    Host, HostBuf, InvalidHost,
};
pub use identity::InvalidIdentity;
pub use name::ResourceName;
pub use outlier::{EndpointHealth, HealthAt, Outcome, OutlierSettings, Recorded, ServiceHealth};
pub use policy::{GatewayRoutes, Policy, Settings};
pub use ranking::Proximity;
pub use request::{Request, RequestProtocol};
pub use route::{
    gateway_server_name, parse_gateway_server_name, plan, Cluster, Listener, Route, Target,
};
pub use selection::EndpointChoice;
