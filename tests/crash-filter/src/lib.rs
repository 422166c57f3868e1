//! A proxy-wasm HTTP filter that panics on any request carrying `x-crash`, and lets every
//! other request through. Warden's own filter cannot be made to panic from outside (that is
//! the point of its tests and fuzzing), so the end-to-end test of the failure policy
//! (`tests/tests/failure_mode.rs`) runs this module under the configuration `render envoy`
//! writes for Warden, to see what Envoy does when a VM fails.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MapType};

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
        Some(Box::new(Crash))
    }
}

struct Crash;

impl Context for Crash {}

impl HttpContext for Crash {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let crash = proxy_wasm::hostcalls::get_map_value(MapType::HttpRequestHeaders, "x-crash");
        if matches!(crash, Ok(Some(_))) {
            #[allow(clippy::panic)]
            {
                panic!("x-crash: a deliberate VM failure");
            }
        }
        Action::Continue
    }
}
