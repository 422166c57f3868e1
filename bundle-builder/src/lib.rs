//! The library behind `bundle-builder`: what the CLI does, callable from tests.

pub mod build;
pub mod diagnostic;
pub mod files;
pub mod manifest;
pub mod push;
pub mod render;
