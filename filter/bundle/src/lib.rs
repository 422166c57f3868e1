//! The Warden bundle: the JSON document `bundle-builder` writes and the filter loads.
//!
//! The bundle is inert data. It is versioned (`apiVersion: warden.dev/v1alpha1`,
//! `kind: Bundle`), refuses unknown fields, and carries a content digest over its `spec`.
//! Every entry names the resource it came from ([`Provenance`]) so that errors, logs and
//! decisions can point back at the manifest a user wrote.

mod access;
mod bundle;
mod digest;
mod error;
mod provenance;
mod service;
mod signature;
pub mod wire;

pub use access::{AccessPolicy, AccessRule, PolicyTarget, ServiceRef};
pub use bundle::{
    ApiVersion, Bundle, BundleKind, BundleMetadata, BundleSpec, FailureMode, MeshScope,
    OutboundMode, ProxyHints, Role, Workspace, DEFAULT_TRUST_DOMAIN,
};
pub use digest::DIGEST_PREFIX;
pub use error::BundleError;
pub use provenance::{Provenance, ResourceKind};
pub use service::{
    origination_cluster, Endpoint, EndpointPort, ExternalService, GatewayRef, GatewayRoute,
    Locality, LocalityMapping, OutlierDetection, Protocol, ServicePort, TargetPort, TlsMode,
    TlsOrigination,
};
pub use signature::{
    key_pair, private_key, public_key, sign_message, signature_bytes, verify_message,
    InvalidSignature,
};
