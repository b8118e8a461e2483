//! The lightning-wall Envoy filter: a pure decision engine ([`engine`]) behind a thin
//! proxy-wasm adapter ([`adapter`]). It must never trap: a panic kills the VM and Envoy then
//! fails every request, so the code denies unwrap/expect/panic and reads headers as bytes.
#![cfg_attr(not(test), forbid(unsafe_code))]

pub mod adapter;
pub mod engine;
