//! What one worker VM keeps between requests: its configuration and policy, its sync with the
//! sidecar ([`Worker`]), and what the decisions change ([`WorkerState`]: its outbox for the
//! sidecar, its view of the revocation set, and its cache of verified credentials).

use std::time::Duration;

use super::config::PluginConfig;
use super::host::Host;
use super::limits;
use super::outbox::Outbox;
use super::policy::Policy;
use super::revocations::Revocations;
use super::sidecar_call::{Call, CallKind};
use super::sync::{SyncState, UsageKind};
use super::verified::VerifiedCache;

/// One worker's state.
#[derive(Debug, Default)]
pub struct WorkerState {
    /// Events for the sidecar.
    pub outbox: Outbox,
    /// Revoked tokens.
    pub revocations: Revocations,
    /// Credentials that verified.
    pub verified: VerifiedCache,
    /// This proxy instance's id in usage reports, read once from shared data.
    reporter: Option<u64>,
}

impl WorkerState {
    /// Queues this instance's count of a deposit token in a window for the sidecar, which sums
    /// the counts of every instance against the route's budget.
    pub fn report_usage(
        &mut self,
        host: &dyn Host,
        token_hex: &str,
        kind: UsageKind,
        window_start: u64,
        count: u32,
    ) {
        if self.reporter.is_none() {
            self.reporter = limits::instance_id(host);
        }
        if let Some(reporter) = self.reporter {
            self.outbox
                .usage(reporter, token_hex, kind, window_start, count);
        }
    }

    /// A new policy is in force: cached verifications may rest on keys it no longer has.
    pub fn installed(&mut self, policy: &Policy) {
        self.verified.clear();
        self.revocations.set_horizon(policy.max_token_lifetime_s);
    }
}

/// Timeout of the revocation snapshot call-out (at least; `timeout_ms` when longer): megabytes
/// read in one statement, once per worker, and deposit credentials wait for it: more time than
/// a sync gets.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything one worker VM's engine keeps: its configuration, the policy once bootstrapped,
/// the sync with the sidecar and the [`WorkerState`] the decisions change. The adapter holds one
/// per VM, shared by its root context (ticks, sync answers) and its HTTP contexts (requests);
/// it only keeps which call-out token belongs to which call.
#[derive(Default)]
pub struct Worker {
    /// The plugin configuration; `None` until the host configured the VM.
    pub config: Option<PluginConfig>,
    /// The policy; `None` until the first bootstrap.
    pub policy: Option<Policy>,
    /// The sync state machine.
    pub sync: SyncState,
    /// What the decisions change.
    pub state: WorkerState,
    /// Follow-up calls held for the next tick (`request_callouts_only`).
    deferred: Vec<Call>,
    /// This worker already logged that its host let an undecided request through
    /// (`RequestState::withhold`).
    pub warned_undecided: bool,
}

impl Worker {
    /// A worker VM before its configuration.
    pub fn new() -> Worker {
        Worker {
            sync: SyncState::new(),
            ..Worker::default()
        }
    }

    /// The calls due at a tick (none before the configuration).
    pub fn tick(&mut self, host: &dyn Host) -> Vec<Call> {
        if self.config.is_none() {
            return Vec::new();
        }
        self.state.revocations.refresh(host, host.now_unix());
        let mut calls = std::mem::take(&mut self.deferred);
        calls.extend(self.sync.on_tick(&mut self.state.outbox));
        calls
    }

    /// How long a call may take.
    pub fn call_timeout(&self, kind: CallKind) -> Duration {
        let timeout = self.config.as_ref().map_or(SNAPSHOT_TIMEOUT, |c| c.timeout);
        match kind {
            CallKind::Snapshot => timeout.max(SNAPSHOT_TIMEOUT),
            _ => timeout,
        }
    }

    /// The adapter could not dispatch a call (unknown cluster…): as if it failed.
    pub fn call_failed(&mut self, kind: CallKind, host: &dyn Host) {
        self.sync
            .dispatch_failed(kind, host, &mut self.state.outbox);
    }

    /// Digests the answer to a root call (`status` `None` for a failed call; the body handed
    /// over, not copied: a snapshot is up to megabytes) and returns the calls to make at once.
    pub fn on_answer(
        &mut self,
        kind: CallKind,
        status: Option<u16>,
        body: Vec<u8>,
        host: &dyn Host,
    ) -> Vec<Call> {
        let Worker { sync, state, .. } = self;
        let digest = if kind == CallKind::Snapshot {
            sync.on_snapshot(status, body, host, &mut state.revocations)
        } else {
            sync.on_answer(
                kind,
                status,
                &body,
                host,
                &mut state.outbox,
                &mut state.revocations,
            )
        };
        if let Some(policy) = digest.policy {
            self.state.installed(&policy);
            self.policy = Some(policy);
        }
        let Some(call) = digest.follow_up else {
            return Vec::new();
        };
        // nginx: a call-out from a root context's call-out answer crashes the worker
        // (ngx_wasm_module 3bed2783 dereferences the finished call's pool); the tick sends it.
        if self
            .config
            .as_ref()
            .is_some_and(|c| c.request_callouts_only)
        {
            self.deferred.push(call);
            return Vec::new();
        }
        vec![call]
    }
}
