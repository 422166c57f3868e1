//! `bundle-builder embed`: the bundle inside the filter module, so that the policy travels in
//! the OCI image (addressed by the image's digest, signed with the bundle) and a `WasmPlugin`
//! carries only `{"embeddedBundle": "sha256:<digest>"}`, whatever the registry's size.
//!
//! The module exports `warden_embedded_bundle(dst, cap) -> len`, which says no bundle is
//! embedded. `embed` adds the bundle as a passive data segment and replaces that function's
//! body: when `cap` holds the bundle it is copied to `dst` (`memory.init`); the length is
//! returned either way. The filter calls the function through a pointer, so the call is in the
//! module to be redirected.

use walrus::ir::{BinaryOp, InstrSeqType, Value};
use walrus::{DataKind, FunctionKind, Module};

/// The function the filter exports for the builder to fill in.
pub const EXPORT: &str = "warden_embedded_bundle";

/// Why a module cannot carry the bundle.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("not a wasm module: {0}")]
    Module(String),
    #[error("the module exports no {EXPORT} function: not a Warden filter of this release")]
    NoSlot,
    #[error("{EXPORT} is not a local function of (i32, i32) -> i32")]
    BadSlot,
    #[error("the module has {0} memories; the filter has one")]
    Memories(usize),
    #[error("the bundle ({0} bytes) is larger than a 32-bit module can hold")]
    TooLarge(usize),
}

/// `module` with `bundle` embedded (replacing any bundle embedded before).
pub fn embed(module: &[u8], bundle: &[u8]) -> Result<Vec<u8>, EmbedError> {
    let len = i32::try_from(bundle.len()).map_err(|_| EmbedError::TooLarge(bundle.len()))?;
    let mut wasm = Module::from_buffer(module).map_err(|e| EmbedError::Module(e.to_string()))?;
    let slot = wasm
        .exports
        .get_func(EXPORT)
        .map_err(|_| EmbedError::NoSlot)?;
    let memories: Vec<_> = wasm.memories.iter().map(|m| m.id()).collect();
    let [memory] = memories[..] else {
        return Err(EmbedError::Memories(memories.len()));
    };
    let data = wasm.data.add(DataKind::Passive, bundle.to_vec());
    let FunctionKind::Local(function) = &mut wasm.funcs.get_mut(slot).kind else {
        return Err(EmbedError::BadSlot);
    };
    let [dst, cap] = function.args[..] else {
        return Err(EmbedError::BadSlot);
    };
    let entry = function.entry_block();
    function.block_mut(entry).instrs.clear();
    function
        .builder_mut()
        .func_body()
        // Too small a buffer: only the length.
        .local_get(cap)
        .i32_const(len)
        .binop(BinaryOp::I32LtU)
        .if_else(
            InstrSeqType::Simple(None),
            |then| {
                then.i32_const(len).return_();
            },
            |_| {},
        )
        .local_get(dst)
        .i32_const(0)
        .i32_const(len)
        .memory_init(memory, data)
        .const_(Value::I32(len));
    Ok(wasm.emit_wasm())
}
