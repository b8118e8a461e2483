//! The contract between the proxy-wasm filter and the sidecar (docs/internal-api.md): the JSON
//! messages of the internal API, the paths both sides call or serve, and the `x-lightning-wall-*`
//! header names. Both sides build from these types, so a field exists in one place only.
//! It also holds the wall's texts (`wall_text`): the sidecar resolves them into the policy and
//! the filter renders its own pages from them, so both read one list of keys and defaults.
//! No I/O and no allocation beyond the messages themselves: this crate is linked into the
//! `.wasm`, which pays for every byte.
//!
//! Compatibility: operators upgrade one side at a time (docs/deployment.md "Upgrade order"), so
//! the JSON must stay as it is; each message has a fixed sample in its tests, and a rename
//! fails them. Types the sidecar receives refuse unknown fields (a version mismatch is loud);
//! types the filter receives accept them (a newer sidecar may add fields).

// Not `no_std`: `wall_text` keeps its parsed defaults in a `std::sync::OnceLock`; both users
// (the filter and the sidecar) link std anyway.
extern crate alloc;

pub mod bootstrap;
pub mod challenge;
pub mod events;
pub mod headers;
pub mod paths;
pub mod status;
pub mod store_id;
pub mod sync;
pub mod wall_text;

pub use bootstrap::{FailureMode, RouteMode};
