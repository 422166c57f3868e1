//! A proxy-wasm HTTP filter that does nothing: every request continues untouched. Built by
//! the same toolchain and profile as Warden's filter, it is the floor of `make bench-envoy`,
//! what entering a wasm VM for a request costs before any work: with the SDK's full set of
//! callback exports, and trimmed as `make build` trims Warden's (`bundle-builder trim`).

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Nothing))
    }
}

struct Nothing;

impl Context for Nothing {}

impl HttpContext for Nothing {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }
}
