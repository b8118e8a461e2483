//! One worker's VM: a wasmtime Store and Instance of the plugin, its root context and the http
//! contexts of the requests it is serving. Every call into the guest goes through `call_*`,
//! which bounds its time, turns a trap into "VM failed", and afterwards runs the actions the
//! guest asked for (continue, local reply, call-out delivery) — never while the guest is running.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Instance, Store, StoreLimitsBuilder, TypedFunc};

use crate::abi::{Action, LogLevel};
use crate::callout::{CallResponse, PendingCall};
use crate::error::HostError;
use crate::runtime::{EPOCH_TICK, Runtime};
use crate::state::{After, ROOT_CONTEXT_ID, VmEnv, VmState};
use crate::stream::{StreamInfo, StreamState};

mod requests;

/// (root context, token, header count, body size, trailer count).
type CallResponseArgs = (i32, i32, i32, i32, i32);

/// The guest's exported callbacks; each is optional, as in Envoy.
pub(crate) struct Exports {
    pub on_context_create: Option<TypedFunc<(i32, i32), ()>>,
    pub on_vm_start: Option<TypedFunc<(i32, i32), i32>>,
    pub on_configure: Option<TypedFunc<(i32, i32), i32>>,
    pub on_request_headers: Option<TypedFunc<(i32, i32, i32), i32>>,
    pub on_request_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    pub on_request_trailers: Option<TypedFunc<(i32, i32), i32>>,
    pub on_response_headers: Option<TypedFunc<(i32, i32, i32), i32>>,
    pub on_response_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    pub on_response_trailers: Option<TypedFunc<(i32, i32), i32>>,
    pub on_http_call_response: Option<TypedFunc<CallResponseArgs, ()>>,
    pub on_tick: Option<TypedFunc<i32, ()>>,
    pub on_queue_ready: Option<TypedFunc<(i32, i32), ()>>,
    pub on_log: Option<TypedFunc<i32, ()>>,
    pub on_done: Option<TypedFunc<i32, i32>>,
    pub on_delete: Option<TypedFunc<i32, ()>>,
}

/// A guest call trapped (or ran past its time limit); the VM is now failed.
#[derive(Debug)]
pub(crate) struct Trapped;

/// One worker VM.
pub struct Vm {
    pub(crate) store: Store<VmState>,
    /// Shared so a callback can be called through a reference while the VM is borrowed:
    /// cloning a `TypedFunc` re-registers its type with the engine on every call.
    pub(crate) exports: Arc<Exports>,
    deadline_ticks: u64,
}

fn typed<P, R>(
    store: &mut Store<VmState>,
    instance: &Instance,
    name: &str,
) -> Result<Option<TypedFunc<P, R>>, String>
where
    P: wasmtime::WasmParams,
    R: wasmtime::WasmResults,
{
    match instance.get_func(&mut *store, name) {
        None => Ok(None),
        Some(f) => f
            .typed::<P, R>(&*store)
            .map(Some)
            .map_err(|e| format!("export {name} has the wrong signature: {e}")),
    }
}

impl Vm {
    /// Instantiates the module for `worker` and starts it the way Envoy does: `_initialize`,
    /// root context, `on_vm_start`, `on_configure`.
    pub fn start(runtime: &Runtime, worker: usize, env: VmEnv) -> Result<Vm, HostError> {
        let deadline_ticks =
            (env.call_time_limit.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        let memory_limit = env.memory_limit;
        if env.semantics.missing_imports
            && let Some(import) = runtime
                .imports()
                .into_iter()
                .find(|i| i == "env::proxy_get_log_level" || i == "env::proxy_get_header_map_size")
        {
            // ngx_wasm_module declares proxy_get_log_level with another signature than SDK
            // 0.2.5 imports, and has no proxy_get_header_map_size: such a module fails to link.
            return Err(HostError::Instantiate {
                worker,
                reason: format!(
                    "the module imports {import}, which ngx_wasm_module lacks or declares \
                     with another signature"
                ),
            });
        }
        let state = VmState {
            worker,
            env,
            memory: None,
            malloc: None,
            current_context: 0,
            effective_context: 0,
            streams: HashMap::new(),
            next_context_id: ROOT_CONTEXT_ID + 1,
            in_configure: false,
            callout_phase: false,
            call_response: None,
            status: (0, Vec::new()),
            after: Vec::new(),
            queue_ready: Vec::new(),
            pending_calls: Vec::new(),
            outstanding_calls: HashMap::new(),
            next_call_token: 0,
            tick_period: None,
            scratch: Vec::with_capacity(1024),
            failed: false,
            limits: StoreLimitsBuilder::new().memory_size(memory_limit).build(),
        };
        let mut store = Store::new(&runtime.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(deadline_ticks);
        let inst_err = |reason: String| HostError::Instantiate { worker, reason };
        let instance = runtime
            .pre
            .instantiate(&mut store)
            .map_err(|e| inst_err(e.to_string()))?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| inst_err("the module exports no memory".into()))?;
        // cpp-host prefers `malloc` and falls back to the SDK's `proxy_on_memory_allocate`.
        let malloc = match typed::<i32, i32>(&mut store, &instance, "malloc").map_err(inst_err)? {
            Some(f) => f,
            None => typed::<i32, i32>(&mut store, &instance, "proxy_on_memory_allocate")
                .map_err(inst_err)?
                .ok_or_else(|| inst_err("the module exports no allocator".into()))?,
        };
        store.data_mut().memory = Some(memory);
        store.data_mut().malloc = Some(malloc);
        let exports = Exports {
            on_context_create: typed(&mut store, &instance, "proxy_on_context_create")
                .map_err(inst_err)?,
            on_vm_start: typed(&mut store, &instance, "proxy_on_vm_start").map_err(inst_err)?,
            on_configure: typed(&mut store, &instance, "proxy_on_configure").map_err(inst_err)?,
            on_request_headers: typed(&mut store, &instance, "proxy_on_request_headers")
                .map_err(inst_err)?,
            on_request_body: typed(&mut store, &instance, "proxy_on_request_body")
                .map_err(inst_err)?,
            on_request_trailers: typed(&mut store, &instance, "proxy_on_request_trailers")
                .map_err(inst_err)?,
            on_response_headers: typed(&mut store, &instance, "proxy_on_response_headers")
                .map_err(inst_err)?,
            on_response_body: typed(&mut store, &instance, "proxy_on_response_body")
                .map_err(inst_err)?,
            on_response_trailers: typed(&mut store, &instance, "proxy_on_response_trailers")
                .map_err(inst_err)?,
            on_http_call_response: typed(&mut store, &instance, "proxy_on_http_call_response")
                .map_err(inst_err)?,
            on_tick: typed(&mut store, &instance, "proxy_on_tick").map_err(inst_err)?,
            on_queue_ready: typed(&mut store, &instance, "proxy_on_queue_ready")
                .map_err(inst_err)?,
            on_log: typed(&mut store, &instance, "proxy_on_log").map_err(inst_err)?,
            on_done: typed(&mut store, &instance, "proxy_on_done").map_err(inst_err)?,
            on_delete: typed(&mut store, &instance, "proxy_on_delete").map_err(inst_err)?,
        };
        let initialize = typed::<(), ()>(&mut store, &instance, "_initialize").map_err(inst_err)?;
        let mut vm = Vm {
            store,
            exports: Arc::new(exports),
            deadline_ticks,
        };

        let trapped = |reason: &str| HostError::StartTrapped {
            worker,
            reason: reason.into(),
        };
        if let Some(init) = initialize {
            vm.guest(0, |s| init.call(s, ()))
                .map_err(|_| trapped("_initialize"))?;
        }
        let ex = Arc::clone(&vm.exports);
        if let Some(f) = &ex.on_context_create {
            vm.guest(ROOT_CONTEXT_ID, |s| f.call(s, (ROOT_CONTEXT_ID as i32, 0)))
                .map_err(|_| trapped("proxy_on_context_create"))?;
        }
        let vm_config_len = vm.store.data().env.plugin.vm_configuration.len() as i32;
        if let Some(f) = &ex.on_vm_start {
            let ok = vm
                .guest(ROOT_CONTEXT_ID, |s| {
                    f.call(s, (ROOT_CONTEXT_ID as i32, vm_config_len))
                })
                .map_err(|_| trapped("proxy_on_vm_start"))?;
            if ok == 0 {
                return Err(HostError::VmStartRejected { worker });
            }
        }
        let config_len = vm.store.data().env.plugin.configuration.len() as i32;
        if let Some(f) = &ex.on_configure {
            vm.store.data_mut().in_configure = true;
            let r = vm.guest(ROOT_CONTEXT_ID, |s| {
                f.call(s, (ROOT_CONTEXT_ID as i32, config_len))
            });
            vm.store.data_mut().in_configure = false;
            if r.map_err(|_| trapped("proxy_on_configure"))? == 0 {
                return Err(HostError::ConfigureRejected { worker });
            }
        }
        vm.run_after();
        Ok(vm)
    }

    pub fn worker(&self) -> usize {
        self.store.data().worker
    }

    /// True once a guest call trapped; Envoy never calls a failed VM again.
    pub fn is_failed(&self) -> bool {
        self.store.data().failed
    }

    /// Size of the guest's linear memory in bytes. Wasm memory only grows, so this is the
    /// high-water mark of what the guest's allocator ever needed (tests state filter memory
    /// bounds from it).
    pub fn memory_bytes(&self) -> usize {
        self.store
            .data()
            .memory
            .map_or(0, |m| m.data_size(&self.store))
    }

    pub fn tick_period(&self) -> Option<Duration> {
        self.store.data().tick_period
    }

    pub fn state(&self) -> &VmState {
        self.store.data()
    }

    /// Runs one guest call as Envoy's `SaveRestoreContext` would: sets the current context,
    /// clears the effective one, bounds the time. A trap marks the VM failed.
    pub(crate) fn guest<R>(
        &mut self,
        context: u32,
        f: impl FnOnce(&mut Store<VmState>) -> wasmtime::Result<R>,
    ) -> Result<R, Trapped> {
        if self.store.data().failed {
            return Err(Trapped);
        }
        let saved = (
            self.store.data().current_context,
            self.store.data().effective_context,
        );
        {
            let d = self.store.data_mut();
            d.current_context = context;
            d.effective_context = 0;
        }
        self.store.set_epoch_deadline(self.deadline_ticks);
        let r = f(&mut self.store);
        {
            let d = self.store.data_mut();
            d.current_context = saved.0;
            d.effective_context = saved.1;
        }
        match r {
            Ok(v) => Ok(v),
            Err(e) => {
                let d = self.store.data_mut();
                d.failed = true;
                // Work queued by a callback that then trapped is dropped with the VM.
                d.after.clear();
                d.queue_ready.clear();
                let reason = format!("{e:#}");
                tracing::error!(worker = d.worker, plugin = %d.env.plugin.name,
                    "wasm VM failed (guest trapped): {reason}");
                d.log(LogLevel::Critical, format!("VM failed: {reason}"));
                Err(Trapped)
            }
        }
    }

    /// Calls a stream callback returning an action.
    pub(crate) fn call_action3(
        &mut self,
        f: Option<&TypedFunc<(i32, i32, i32), i32>>,
        ctx: u32,
        a: i32,
        b: i32,
    ) -> Result<Action, Trapped> {
        match f {
            None => Ok(Action::Continue),
            Some(f) => self
                .guest(ctx, |s| f.call(s, (ctx as i32, a, b)))
                .map(Action::from_raw),
        }
    }

    pub(crate) fn call_action2(
        &mut self,
        f: Option<&TypedFunc<(i32, i32), i32>>,
        ctx: u32,
        a: i32,
    ) -> Result<Action, Trapped> {
        match f {
            None => Ok(Action::Continue),
            Some(f) => self
                .guest(ctx, |s| f.call(s, (ctx as i32, a)))
                .map(Action::from_raw),
        }
    }

    /// Creates an http context (`proxy_on_context_create(id, root)`) for a new request.
    pub fn create_stream(&mut self, info: StreamInfo) -> u32 {
        let id = {
            let d = self.store.data_mut();
            let id = d.next_context_id;
            d.next_context_id = d.next_context_id.wrapping_add(1).max(ROOT_CONTEXT_ID + 1);
            d.streams.insert(id, StreamState::new(info));
            id
        };
        let ex = Arc::clone(&self.exports);
        let created = match &ex.on_context_create {
            Some(f) => self.guest(id, |s| f.call(s, (id as i32, ROOT_CONTEXT_ID as i32))),
            None => Ok(()),
        };
        if created.is_err() {
            self.fail_stream(id);
        }
        id
    }

    /// Fires `proxy_on_tick` on the root context.
    pub fn tick(&mut self) {
        let ex = Arc::clone(&self.exports);
        if let Some(f) = &ex.on_tick {
            self.store.data_mut().callout_phase = true;
            let _ = self.guest(ROOT_CONTEXT_ID, |s| f.call(s, ROOT_CONTEXT_ID as i32));
            self.store.data_mut().callout_phase = false;
            self.run_after();
        }
    }

    /// Delivers `proxy_on_queue_ready(context, token)`.
    pub fn queue_ready(&mut self, context: u32, token: u32) {
        let ex = Arc::clone(&self.exports);
        if let Some(f) = &ex.on_queue_ready {
            let _ = self.guest(context, |s| f.call(s, (context as i32, token as i32)));
            self.run_after();
        }
    }

    /// Call-outs dispatched since the last call, for the embedder to perform.
    /// Call-outs to send now. Those of a stream whose pause was not held wait for its upstream
    /// response (`HostSemantics::request_pause_not_held`).
    pub fn take_pending_calls(&mut self) -> Vec<PendingCall> {
        let d = self.store.data_mut();
        let (later, now) = std::mem::take(&mut d.pending_calls)
            .into_iter()
            .partition(|c| {
                d.outstanding_calls
                    .get(&c.token)
                    .and_then(|caller| d.streams.get(caller))
                    .is_some_and(StreamState::call_outs_after_upstream)
            });
        d.pending_calls = later;
        now
    }

    pub fn has_queue_ready(&self) -> bool {
        !self.store.data().queue_ready.is_empty()
    }

    /// Queue notifications for this VM raised by its own guest calls.
    pub fn take_queue_ready(&mut self) -> Vec<(u32, u32)> {
        std::mem::take(&mut self.store.data_mut().queue_ready)
    }

    /// Answers a call-out: `proxy_on_http_call_response(root, token, …)` on the root context, as
    /// Envoy does; the SDK then switches to the calling context with `set_effective_context`.
    pub fn deliver_call_response(&mut self, token: u32, response: CallResponse) {
        // The SDK panics on a token it never got ("invalid token_id"); Envoy never sends one.
        let Some(caller) = self.store.data_mut().outstanding_calls.remove(&token) else {
            tracing::warn!(
                token,
                "call-out response for an unknown or cancelled token ignored"
            );
            return;
        };
        let (n_headers, body_len, n_trailers) = (
            response.headers.len() as i32,
            response.body.len() as i32,
            response.trailers.len() as i32,
        );
        {
            let d = self.store.data_mut();
            if n_headers == 0 {
                // Envoy's onHttpCallFailure: status BrokenConnection, message "reset".
                d.status = (
                    crate::abi::Status::BrokenConnection as u32,
                    b"reset".to_vec(),
                );
            }
            d.call_response = Some(response);
        }
        let ex = Arc::clone(&self.exports);
        if let Some(f) = &ex.on_http_call_response {
            let args = (
                ROOT_CONTEXT_ID as i32,
                token as i32,
                n_headers,
                body_len,
                n_trailers,
            );
            // ngx_wasm_module: a call-out from the answer to a root context's call-out crashes
            // the worker (see CalloutPhases); one from a request's call-out answer is allowed.
            self.store.data_mut().callout_phase = caller != ROOT_CONTEXT_ID;
            let _ = self.guest(ROOT_CONTEXT_ID, |s| f.call(s, args));
            self.store.data_mut().callout_phase = false;
        }
        {
            let d = self.store.data_mut();
            d.call_response = None;
            d.status = (0, Vec::new());
        }
        if self.is_failed() {
            self.fail_all_paused_streams();
        }
        self.run_after();
    }

    /// Streams waiting on the guest when the VM failed get the failure policy now.
    pub(crate) fn fail_all_paused_streams(&mut self) {
        let ids: Vec<u32> = self
            .store
            .data()
            .streams
            .iter()
            .filter(|(_, s)| !s.is_finished())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.fail_stream(id);
        }
    }

    /// Runs deferred actions until none are left (an action may call the guest, which may queue
    /// more).
    pub(crate) fn run_after(&mut self) {
        loop {
            let next = {
                let d = self.store.data_mut();
                if d.after.is_empty() {
                    None
                } else {
                    Some(d.after.remove(0))
                }
            };
            let Some(action) = next else { break };
            match action {
                After::Continue(id, dir) => self.continue_stream(id, dir),
                After::LocalReply(id, reply) => self.apply_local_reply(id, reply),
                After::Close(id, dir) => self.close_stream(id, dir),
            }
        }
    }
}
