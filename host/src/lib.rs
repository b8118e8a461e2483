//! A proxy-wasm ABI v0.2.1 host on wasmtime with Envoy's semantics, for tests, benchmarks and the
//! development gateway. Production always runs the filter inside Envoy; this host exists so the
//! filter can be exercised where Envoy cannot be installed, and must never be mistaken for it.
//!
//! - [`runtime::Runtime`]: the compiled module; [`vm::Vm`]: one worker's instance, whose store
//!   data ([`state::VmState`]) and requests ([`stream::StreamState`]) the host functions see.
//! - [`testing::TestHost`]: a `proxytest`-style API (N workers, manual clock, call-out clusters).
//! - [`gateway`]: the `lightning-wall-host serve` HTTP/1.1 development gateway.

pub mod abi;
pub mod callout;
pub mod clock;
pub mod error;
pub mod gateway;
pub mod headers;
pub mod hostcalls;
pub mod load;
pub mod plugin;
mod properties;
pub mod runtime;
pub mod semantics;
pub mod shared;
pub mod state;
pub mod stream;
pub mod testing;
pub mod vm;
mod wasi;

pub use abi::{LogLevel, Status};
pub use callout::{CallRequest, CallResponse, Cluster};
pub use clock::Clock;
pub use error::HostError;
pub use headers::HeaderMap;
pub use plugin::{FailurePolicy, PluginConfig};
pub use runtime::Runtime;
pub use semantics::{CalloutPhases, HostSemantics};
pub use stream::{LocalReply, Message, StreamInfo};
