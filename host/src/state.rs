//! What a worker VM's host functions can see: the wasmtime store data (`VmState`), the settings
//! every worker shares, and the work queued for after a guest call. Below the VM and the host
//! functions alike, so neither imports the other.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Memory, StoreLimits, TypedFunc};

use crate::abi::LogLevel;
use crate::callout::{CallResponse, PendingCall};
use crate::clock::Clock;
use crate::plugin::PluginConfig;
use crate::shared::{HostShared, LogEntry};
use crate::stream::{Dir, LocalReply, StreamState};

/// The root context's id: Envoy creates it first in every VM.
pub const ROOT_CONTEXT_ID: u32 = 1;

/// Work the guest asked for that Envoy performs after the current VM call returns
/// (cpp-host's `addAfterVmCallAction`).
#[derive(Debug)]
pub(crate) enum After {
    Continue(u32, Dir),
    LocalReply(u32, LocalReply),
    Close(u32, Dir),
}

/// Settings every worker of a host shares.
#[derive(Clone)]
pub struct VmEnv {
    pub plugin: Arc<PluginConfig>,
    pub shared: Arc<HostShared>,
    pub clock: Clock,
    /// Cluster names `proxy_http_call` accepts (others get BadArgument, as in Envoy).
    pub clusters: Arc<Vec<String>>,
    /// Longest a single guest callback may run before it is trapped.
    pub call_time_limit: Duration,
    /// Most linear memory a guest may grow to; past it `memory.grow` fails (the Rust SDK then
    /// aborts, which traps) instead of the guest exhausting the host.
    pub memory_limit: usize,
    /// Which host's behaviour to reproduce (Envoy by default).
    pub semantics: Arc<crate::semantics::HostSemantics>,
}

/// Default guest memory limit: far above what a filter needs, far below what hurts the machine.
pub const DEFAULT_MEMORY_LIMIT: usize = 1 << 30;

/// The store data: everything host functions can see.
pub struct VmState {
    pub(crate) worker: usize,
    pub(crate) env: VmEnv,
    pub(crate) memory: Option<Memory>,
    pub(crate) malloc: Option<TypedFunc<i32, i32>>,
    /// The context the host called into; 0 outside any callback.
    pub(crate) current_context: u32,
    /// Set by `proxy_set_effective_context` for the rest of the current callback.
    pub(crate) effective_context: u32,
    pub(crate) streams: HashMap<u32, StreamState>,
    pub(crate) next_context_id: u32,
    /// True only inside `proxy_on_configure` (Envoy's `temp_plugin_`).
    pub(crate) in_configure: bool,
    /// True inside the callbacks ngx_wasm_module allows call-outs from (request headers and
    /// body, `on_tick`, a call-out's response).
    pub(crate) callout_phase: bool,
    /// The call-out response being delivered (visible only during `on_http_call_response`).
    pub(crate) call_response: Option<CallResponse>,
    /// `proxy_get_status` (code, message): set around a failed call-out's delivery.
    pub(crate) status: (u32, Vec<u8>),
    pub(crate) after: Vec<After>,
    pub(crate) queue_ready: Vec<(u32, u32)>,
    pub(crate) pending_calls: Vec<PendingCall>,
    pub(crate) outstanding_calls: HashMap<u32, u32>,
    pub(crate) next_call_token: u32,
    pub(crate) tick_period: Option<Duration>,
    /// Reused buffer for values copied into the guest (no allocation per host call).
    pub(crate) scratch: Vec<u8>,
    pub(crate) failed: bool,
    pub(crate) limits: StoreLimits,
}

impl VmState {
    /// The context a host function acts on: the effective context if it still exists.
    pub(crate) fn context(&self) -> u32 {
        let e = self.effective_context;
        if e != 0 && (e == ROOT_CONTEXT_ID || self.streams.contains_key(&e)) {
            e
        } else {
            self.current_context
        }
    }

    pub(crate) fn log(&self, level: LogLevel, message: String) {
        let plugin = &self.env.plugin.name;
        match level {
            LogLevel::Trace => tracing::trace!(worker = self.worker, plugin, "wasm log: {message}"),
            LogLevel::Debug => tracing::debug!(worker = self.worker, plugin, "wasm log: {message}"),
            LogLevel::Info => tracing::info!(worker = self.worker, plugin, "wasm log: {message}"),
            LogLevel::Warn => tracing::warn!(worker = self.worker, plugin, "wasm log: {message}"),
            LogLevel::Error | LogLevel::Critical => {
                tracing::error!(worker = self.worker, plugin, "wasm log: {message}")
            }
        }
        self.env.shared.push_log(LogEntry {
            worker: self.worker,
            level,
            message,
        });
    }
}
