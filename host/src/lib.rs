//! proxy-wasm host on wasmtime (development and tests only; production runs inside Envoy).
