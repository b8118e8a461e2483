//! Shared set-up for the host's integration tests: each built module is compiled once per test
//! binary and reused, like Envoy compiles once and clones per worker.
// Test code: a failed expectation is reported by panicking.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
// Each test binary uses only some of these loaders.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, OnceLock};

use lightning_wall_host::Runtime;
use lightning_wall_host::testing::wasm_file;

fn load(cell: &'static OnceLock<Mutex<Option<Arc<Runtime>>>>, name: &str) -> Arc<Runtime> {
    let slot = cell.get_or_init(|| Mutex::new(None));
    let mut g = slot.lock().unwrap();
    if let Some(r) = g.as_ref() {
        return Arc::clone(r);
    }
    let path = wasm_file(name).unwrap_or_else(|e| panic!("{e}"));
    let r = Arc::new(Runtime::from_file(&path).unwrap());
    *g = Some(Arc::clone(&r));
    r
}

/// The conformance filter built for wasm32-wasip1.
pub fn conformance() -> Arc<Runtime> {
    static CELL: OnceLock<Mutex<Option<Arc<Runtime>>>> = OnceLock::new();
    load(&CELL, "conformance_filter.wasm")
}

/// The conformance filter built for wasm32-unknown-unknown.
pub fn conformance_unknown() -> Arc<Runtime> {
    static CELL: OnceLock<Mutex<Option<Arc<Runtime>>>> = OnceLock::new();
    load(&CELL, "conformance_filter_unknown.wasm")
}

/// The project's filter.
pub fn wall_filter() -> Arc<Runtime> {
    static CELL: OnceLock<Mutex<Option<Arc<Runtime>>>> = OnceLock::new();
    load(&CELL, "lightning_wall_filter.wasm")
}
