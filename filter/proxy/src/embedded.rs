//! A bundle embedded in the module itself (`bundle-builder embed`), so that the policy travels
//! in the OCI image, addressed by the image's digest, and a `WasmPlugin` carries only a
//! reference to it, whatever the registry's size.
//!
//! `bundle-builder embed` adds the bundle as a passive data segment and replaces the body of
//! [`warden_embedded_bundle`] with one that copies it out (`memory.init`). The function is
//! called through a pointer the optimiser cannot see through, so the call survives into the
//! module to be rewritten; this build's body says there is none.

/// Copies the embedded bundle into `dst` when `cap` holds it, and returns its length; 0: no
/// bundle is embedded. Replaced by `bundle-builder embed`.
// `no_mangle` exports the function under a name the builder finds; nothing here is unsafe.
#[allow(unsafe_code)]
#[no_mangle]
#[inline(never)]
pub extern "C" fn warden_embedded_bundle(_dst: *mut u8, _cap: usize) -> usize {
    0
}

/// The embedded bundle's bytes, if the module carries one.
pub fn bundle() -> Option<Vec<u8>> {
    let copy: extern "C" fn(*mut u8, usize) -> usize = std::hint::black_box(warden_embedded_bundle);
    let len = copy(std::ptr::null_mut(), 0);
    if len == 0 {
        return None;
    }
    let mut bytes = vec![0u8; len];
    let copied = copy(bytes.as_mut_ptr(), len);
    (copied == len).then_some(bytes)
}
