//! The library behind `bundle-builder`: what the CLI does, callable from tests.

pub mod render;
