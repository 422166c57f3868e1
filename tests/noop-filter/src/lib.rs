//! A proxy-wasm HTTP filter that does nothing: every request continues untouched. Built by
//! the same toolchain and profile as Warden's filter, it is the floor of `make bench-envoy`,
//! what entering a wasm VM for a request costs before any work: with the SDK's full set of
//! callback exports, and trimmed as `make build` trims Warden's (`bundle-builder trim`).
//!
//! Under the root id [`READ_HEADERS`] it does one thing more: it reads the request's headers,
//! as Warden reads them (every header in one call, as bytes), and continues. That row of the
//! benchmark is the floor of any filter that reads every header in one call. Under
//! [`READ_THREE`] it reads only `:authority`, `:method` and `:path`, one call each.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

/// The root id under which the filter reads each request's headers.
pub const READ_HEADERS: &str = "noop.read-headers";
/// The root id under which the filter reads `:authority`, `:method` and `:path`, one call each.
pub const READ_THREE: &str = "noop.read-three";

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { mode: Mode::Nothing }) });
}}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Nothing,
    ReadHeaders,
    ReadThree,
}

struct Root {
    mode: Mode,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _configuration_size: usize) -> bool {
        let root_id = self
            .get_property(vec!["plugin_root_id"])
            .unwrap_or_default();
        self.mode = if root_id == READ_HEADERS.as_bytes() {
            Mode::ReadHeaders
        } else if root_id == READ_THREE.as_bytes() {
            Mode::ReadThree
        } else {
            Mode::Nothing
        };
        // Said once, so a benchmark row that meant to read the headers can be checked to.
        let mode = match self.mode {
            Mode::Nothing => "does nothing",
            Mode::ReadHeaders => "reads every request's headers",
            Mode::ReadThree => "reads :authority, :method and :path",
        };
        let _ = proxy_wasm::hostcalls::log(
            proxy_wasm::types::LogLevel::Info,
            &format!("do-nothing filter: {mode}"),
        );
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Nothing { mode: self.mode }))
    }
}

struct Nothing {
    mode: Mode,
}

impl Context for Nothing {}

impl HttpContext for Nothing {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        // Read and dropped: the copy into the VM is what is measured.
        match self.mode {
            Mode::Nothing => {}
            Mode::ReadHeaders => {
                std::hint::black_box(self.get_http_request_headers_bytes());
            }
            Mode::ReadThree => {
                for name in [":authority", ":method", ":path"] {
                    std::hint::black_box(self.get_http_request_header_bytes(name));
                }
            }
        }
        Action::Continue
    }
}
