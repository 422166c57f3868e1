//! The Warden proxy-wasm filter: thin glue between Envoy and the policy engine.
//!
//! The root context loads the policy once per VM (`root`: the compiled form, read in chunks by
//! `compiled_config`, decoded on arrival or, when another VM of the proxy checked it already
//! (`checked`), for the first stream); each HTTP request
//! (`http`) or TCP connection (`tcp`) builds an engine request from a few host calls, asks the
//! compiled policy, and either continues or denies (`denial`). Everything that decides lives in
//! `warden-engine`, tested natively.

mod checked;
mod compiled_config;
mod denial;
mod embedded;
mod filter_state;
mod health;
mod host;
mod http;
mod metrics;
mod properties;
mod root;
mod tcp;
#[cfg(test)]
mod tests;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::WardenRoot::default())
    });
}}
