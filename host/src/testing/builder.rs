//! How a [`TestHost`] is set up: the plugin configuration, the number of worker VMs, the clock,
//! the call-out clusters and the guest's limits, then every worker started at once.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::TestHost;
use crate::abi::LogLevel;
use crate::callout::{CallHandler, CallRequest, CallResponse, Cluster};
use crate::clock::Clock;
use crate::error::HostError;
use crate::plugin::{FailurePolicy, PluginConfig};
use crate::runtime::Runtime;
use crate::semantics::HostSemantics;
use crate::shared::HostShared;
use crate::state::VmEnv;
use crate::vm::Vm;

pub struct TestHostBuilder {
    runtime: Arc<Runtime>,
    plugin: PluginConfig,
    workers: usize,
    clock: Clock,
    clusters: Vec<(String, Cluster)>,
    call_time_limit: Duration,
    memory_limit: usize,
    semantics: HostSemantics,
}

impl TestHostBuilder {
    pub fn new(runtime: Arc<Runtime>) -> Self {
        TestHostBuilder {
            runtime,
            plugin: PluginConfig {
                log_level: LogLevel::Trace,
                ..PluginConfig::default()
            },
            workers: 1,
            clock: Clock::manual(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            clusters: Vec::new(),
            call_time_limit: Duration::from_secs(1),
            memory_limit: crate::state::DEFAULT_MEMORY_LIMIT,
            semantics: HostSemantics::envoy(),
        }
    }

    /// Which host to imitate (Envoy by default; [`HostSemantics::nginx`], or any one switch).
    pub fn semantics(mut self, semantics: HostSemantics) -> Self {
        self.semantics = semantics;
        self
    }

    /// The plugin configuration the guest reads in `on_configure`.
    pub fn configuration(mut self, config: impl Into<Vec<u8>>) -> Self {
        self.plugin.configuration = config.into();
        self
    }

    pub fn vm_configuration(mut self, config: impl Into<Vec<u8>>) -> Self {
        self.plugin.vm_configuration = config.into();
        self
    }

    pub fn plugin(mut self, f: impl FnOnce(&mut PluginConfig)) -> Self {
        f(&mut self.plugin);
        self
    }

    /// Number of worker VMs (Envoy: one per worker thread).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    pub fn failure_policy(mut self, p: FailurePolicy) -> Self {
        self.plugin.failure_policy = p;
        self
    }

    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn start_time(mut self, t: SystemTime) -> Self {
        self.clock = Clock::manual(t);
        self
    }

    /// Longest a guest callback may run before it is trapped.
    pub fn call_time_limit(mut self, d: Duration) -> Self {
        self.call_time_limit = d;
        self
    }

    /// Most linear memory a guest may grow to (bytes).
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// A cluster answered in-process by `handler`.
    pub fn cluster_handler(
        mut self,
        name: &str,
        handler: impl Fn(&CallRequest) -> CallResponse + Send + Sync + 'static,
    ) -> Self {
        let h: CallHandler = Arc::new(handler);
        self.clusters.push((name.into(), Cluster::Handler(h)));
        self
    }

    /// A cluster answered by a real HTTP server (`http://127.0.0.1:PORT`).
    pub fn cluster_url(mut self, name: &str, url: &str) -> Self {
        self.clusters.push((name.into(), Cluster::Url(url.into())));
        self
    }

    /// A cluster whose call-outs stay pending until the test answers them.
    pub fn cluster_manual(mut self, name: &str) -> Self {
        self.clusters.push((name.into(), Cluster::Manual));
        self
    }

    /// Starts every worker VM (`_initialize`, `on_vm_start`, `on_configure`).
    pub fn build(self) -> Result<TestHost, HostError> {
        let shared = HostShared::with_rules(true, self.semantics.shared_data_rules());
        let env = VmEnv {
            plugin: Arc::new(self.plugin),
            shared: Arc::clone(&shared),
            clock: self.clock.clone(),
            clusters: Arc::new(self.clusters.iter().map(|(n, _)| n.clone()).collect()),
            call_time_limit: self.call_time_limit,
            memory_limit: self.memory_limit,
            semantics: Arc::new(self.semantics),
        };
        let mut workers = Vec::with_capacity(self.workers);
        for w in 0..self.workers {
            workers.push(Vm::start(&self.runtime, w, env.clone())?);
        }
        let mut host = TestHost {
            next_tick: vec![None; workers.len()],
            workers,
            shared,
            clock: self.clock,
            clusters: self.clusters.into_iter().collect(),
            next_worker: 0,
            pending: Vec::new(),
            tokio: None,
            env,
        };
        host.pump();
        Ok(host)
    }
}
