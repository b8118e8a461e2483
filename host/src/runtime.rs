//! Compiles a proxy-wasm module once and links it against this host's ABI functions, so each
//! worker VM is a cheap instantiation. Owns the epoch ticker that bounds every guest call: a
//! guest that loops forever traps instead of hanging its worker.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use wasmtime::{Config, Engine, InstancePre, Linker, Module, OptLevel, ProfilingStrategy};

use crate::error::HostError;
use crate::state::VmState;

/// How often the epoch advances; a guest call's time limit is a whole number of these.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// A compiled, linked plugin module, shared by all worker VMs.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) pre: InstancePre<VmState>,
    stop_ticker: Arc<AtomicBool>,
}

impl Runtime {
    pub fn from_file(path: &Path) -> Result<Self, HostError> {
        let bytes = std::fs::read(path)
            .map_err(|e| HostError::Load(format!("reading {}: {e}", path.display())))?;
        Self::new(&bytes)
    }

    /// Compiles and links `wasm`. Fails like Envoy does on a module that is not proxy-wasm ABI
    /// v0.2.x or that imports a function this host does not provide.
    pub fn new(wasm: &[u8]) -> Result<Self, HostError> {
        let mut config = Config::new();
        // Epoch interruption costs one load+compare per loop header/function entry, far less
        // than fuel metering; it is what turns a runaway guest into a trap.
        config.epoch_interruption(true);
        config.cranelift_opt_level(OptLevel::Speed);
        // `perf record` sees JIT code as anonymous addresses; with LW_WASM_PERFMAP=1 wasmtime
        // writes /tmp/perf-<pid>.map so `perf report` names the guest's functions.
        if std::env::var_os("LW_WASM_PERFMAP").is_some_and(|v| v == "1") {
            config.profiler(ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(|e| HostError::Load(e.to_string()))?;
        let module = Module::new(&engine, wasm).map_err(|e| HostError::Load(e.to_string()))?;
        let abi = module.exports().any(|e| {
            matches!(
                e.name(),
                "proxy_abi_version_0_2_1" | "proxy_abi_version_0_2_0"
            )
        });
        if !abi {
            return Err(HostError::Load(
                "module exports no proxy_abi_version_0_2_x marker (not a proxy-wasm ABI v0.2 module)"
                    .into(),
            ));
        }
        let mut linker = Linker::new(&engine);
        crate::hostcalls::define(&mut linker).map_err(|e| HostError::Load(e.to_string()))?;
        crate::wasi::define(&mut linker).map_err(|e| HostError::Load(e.to_string()))?;
        let pre = linker.instantiate_pre(&module).map_err(|e| {
            HostError::Load(format!(
                "linking the module against the proxy-wasm host: {e}"
            ))
        })?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        let (stop, ticking) = (Arc::clone(&stop_ticker), engine.clone());
        thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    thread::sleep(EPOCH_TICK);
                    ticking.increment_epoch();
                }
            })
            .map_err(|e| HostError::Load(format!("starting the epoch thread: {e}")))?;
        Ok(Runtime {
            engine,
            pre,
            stop_ticker,
        })
    }

    /// The names of the functions the module imports (`module::name`).
    pub fn imports(&self) -> Vec<String> {
        self.pre
            .module()
            .imports()
            .map(|i| format!("{}::{}", i.module(), i.name()))
            .collect()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}
