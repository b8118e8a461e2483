//! L402 protocol core. Pure: no I/O, no clock, no proxy-wasm; builds for wasm32 and native.
#![forbid(unsafe_code)]
