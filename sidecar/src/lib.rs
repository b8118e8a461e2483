//! The lightning-wall sidecar: talks to the Lightning node, runs the deposit lifecycle, serves the
//! wall's endpoints. Everything stateful lives here; the filter stays stateless.

pub mod api;
pub mod clock;
pub mod config;
pub mod deposit;
pub mod keys;
pub mod metrics;
pub mod node;
pub mod revocations;
pub mod rewards;
pub mod serve;
pub mod store;
pub mod testing;
