//! The library behind `bundle-builder`: what the CLI does, callable from tests.

pub mod build;
pub mod decide;
pub mod decision_tests;
pub mod delivery;
pub mod diagnostic;
pub mod diff;
pub mod embed;
pub mod files;
pub mod manifest;
pub mod policy_input;
pub mod push;
pub mod render;
pub mod trim;
