//! Re-exports the wasmtime C API so cargo builds `libwasmtime.a`/`.so` for ngx_wasm_module.
pub use wasmtime_c_api::*;
