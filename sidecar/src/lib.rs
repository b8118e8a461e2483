//! The lightning-wall sidecar: talks to the Lightning node, runs the deposit lifecycle, serves the
//! wall's endpoints. Everything durable lives here; the filter keeps only
//! per-worker caches, counters and its copy of the revocation list, all rebuilt from the sidecar.

pub mod api;
pub mod batch;
pub mod clock;
pub mod config;
pub mod deposit;
pub mod doctor;
pub mod ids;
pub mod keys;
pub mod metrics;
pub mod mint;
pub mod mint_limit;
pub mod mutex;
pub mod node;
pub mod reload;
pub mod revocations;
pub mod rewards;
pub mod serve;
pub mod store;
/// The node test double; only in test builds (`--features testing` for the integration tests).
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod usage;
