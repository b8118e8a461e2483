//! The lightning-wall Envoy filter (proxy-wasm). Until the filter issue lands it enforces nothing
//! and says so: every request gets a 503 rather than passing unprotected.
#![cfg_attr(not(test), forbid(unsafe_code))]

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(WallRoot) });
}}

struct WallRoot;

impl Context for WallRoot {}

impl RootContext for WallRoot {
    fn on_vm_start(&mut self, _: usize) -> bool {
        proxy_wasm::hostcalls::log(
            LogLevel::Warn,
            "lightning-wall filter: enforcement not implemented yet; answering 503 to every request",
        )
        .is_ok()
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(NotYetEnforcing))
    }
}

struct NotYetEnforcing;

impl Context for NotYetEnforcing {}

impl HttpContext for NotYetEnforcing {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        self.send_http_response(
            503,
            vec![("content-type", "text/plain")],
            Some(b"lightning-wall filter not implemented yet\n"),
        );
        Action::Pause
    }
}
