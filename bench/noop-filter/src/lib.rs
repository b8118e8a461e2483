//! A proxy-wasm filter that lets every request and response through untouched: the baseline
//! `make bench-nginx` measures the lightning-wall filter against (the cost of any proxy-wasm
//! filter in nginx). Built with the same SDK as the filter, so both pay the same dispatch into
//! the guest per callback; it makes no host call, so it links in every host (nginx included,
//! where the conformance filter's imports do not).

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(NoopRoot) });
}}

struct NoopRoot;

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(NoopRequest))
    }
}

/// Every callback keeps the SDK's default: continue.
struct NoopRequest;

impl Context for NoopRequest {}

impl HttpContext for NoopRequest {}
