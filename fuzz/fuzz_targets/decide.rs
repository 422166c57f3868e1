//! Decide and route any request against the committed bundles, as sidecar and gateway, under
//! both outbound modes: no panic, and every allow connects to what was decided.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_fuzz::{check, FuzzRequest};

fuzz_target!(|input: FuzzRequest| check(&input));
