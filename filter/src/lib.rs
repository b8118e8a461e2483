//! The lightning-wall Envoy filter: a pure decision engine ([`engine`]) behind a thin
//! proxy-wasm adapter ([`adapter`], with `wasm_host`: the engine's `Host` over host calls). It must never trap: a panic kills the VM and Envoy then
//! fails every request, so the code denies unwrap/expect/panic and reads headers as bytes.
//! `unsafe` only in `raw_shared_data` and `raw_response_body` (three host imports the SDK
//! would panic on).
#![cfg_attr(not(test), deny(unsafe_code))]

pub mod adapter;
pub mod engine;
mod raw_response_body;
mod raw_shared_data;
mod wasm_host;
