//! The filter's decision engine: configuration, policy, routes, verification, limits, the
//! per-request course with its call-outs (`request`, `callout`) and the sidecar sync (`sync`,
//! `worker`), with no proxy-wasm dependency. Everything reaches the host through [`Host`], so
//! all of it is unit-tested natively; the adapter only moves bytes.

pub mod callout;
pub mod challenge;
pub mod client_addr;
pub mod config;
pub mod decision;
pub mod facts;
pub mod grant;
pub mod headers;
pub mod health;
pub mod held;
pub mod host;
pub mod limits;
pub mod mint_limit;
pub mod outbox;
pub mod pages;
pub mod policy;
pub mod provenance;
pub mod query;
pub mod reply;
pub mod request;
pub mod response;
pub mod revocations;
pub mod routes;
pub mod shadow;
pub mod shared_data;
pub mod sidecar_call;
pub mod sync;
pub mod verified;
/// The wall's texts and their helpers, shared with the sidecar through the contract crate.
pub use lightning_wall_contract::wall_text;
pub mod worker;

pub use host::{Host, Level, Metric};
