//! Reading the manifests users write (Gloo Mesh's shapes) into typed resources.

pub mod kinds;
pub mod load;
pub mod source;
pub mod yaml;
