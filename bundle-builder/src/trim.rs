//! `bundle-builder trim`: the filter module without the exports of callbacks Warden does not
//! implement. Envoy's proxy-wasm host enters a VM for a stream event only when the module
//! exports its callback, and the SDK exports every one: without these, a response body chunk,
//! request trailers, a connection's upstream data or close cost no VM entry. Callbacks that
//! keep per-stream state in the SDK (`proxy_on_done`, `proxy_on_delete`, `proxy_on_log`,
//! which the network filter uses) stay. `make build` runs it.

use walrus::Module;

/// The callbacks no Warden filter implements (the SDK's defaults do nothing).
pub const UNUSED: [&str; 14] = [
    "proxy_on_request_body",
    "proxy_on_request_trailers",
    "proxy_on_response_body",
    "proxy_on_response_trailers",
    "proxy_on_upstream_data",
    "proxy_on_upstream_connection_close",
    "proxy_on_downstream_connection_close",
    "proxy_on_http_call_response",
    "proxy_on_grpc_receive_initial_metadata",
    "proxy_on_grpc_receive",
    "proxy_on_grpc_receive_trailing_metadata",
    "proxy_on_grpc_close",
    "proxy_on_queue_ready",
    "proxy_on_foreign_function",
];

/// `module` without the exports in [`UNUSED`]; the names removed.
pub fn trim(module: &[u8]) -> Result<(Vec<u8>, Vec<String>), String> {
    let mut wasm = Module::from_buffer(module).map_err(|e| format!("not a wasm module: {e}"))?;
    let unused: Vec<(walrus::ExportId, String)> = wasm
        .exports
        .iter()
        .filter(|e| UNUSED.contains(&e.name.as_str()))
        .map(|e| (e.id(), e.name.clone()))
        .collect();
    for (id, _) in &unused {
        wasm.exports.delete(*id);
    }
    let mut names: Vec<String> = unused.into_iter().map(|(_, n)| n).collect();
    names.sort();
    Ok((wasm.emit_wasm(), names))
}
