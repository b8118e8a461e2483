//! What the decision engine needs from its host (Envoy through proxy-wasm, or a test double):
//! the clock, shared data (shared by every worker VM), metrics, logs and the client's address. The engine must never
//! reach the host any other way, so that all of its logic runs natively in unit tests.

use core::fmt;

use lightning_wall_contract::events::Trigger;

/// A counter the filter exports (`define_metric`; Envoy shows it as `wasmcustom.<name>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// 402 challenges answered.
    Challenges,
    /// Requests let through with a valid credential.
    Allowed,
    /// Requests refused, by stable reason (`bad_signature`, `forfeited`, `unavailable`…).
    Denied(&'static str),
    /// Deposits forfeited by this filter (trap path, rate limit, error storm, upstream verdict).
    Forfeits,
    /// Deposits refunded on an upstream verdict.
    Refunds,
    /// Bootstrap, sync or event calls to the sidecar that failed.
    SyncFailures,
    /// Upstream rewards queued for the sidecar.
    Rewards,
    /// Upstream reward headers dropped (malformed, no id, or no valid credential).
    RewardsDropped,
    /// Shadow routes: requests that would have been answered 402.
    WouldChallenge,
    /// Shadow routes: deposits the trigger would have forfeited.
    WouldForfeit(Trigger),
    /// Shadow routes: requests that would have been refused, by the refusal's reason.
    WouldDeny(&'static str),
}

impl Metric {
    /// The metric's name as defined with the host.
    pub fn name(self) -> String {
        match self {
            Metric::Challenges => "lightning_wall.challenges".into(),
            Metric::Allowed => "lightning_wall.allowed".into(),
            Metric::Denied(reason) => format!("lightning_wall.denied.{reason}"),
            Metric::Forfeits => "lightning_wall.forfeits".into(),
            Metric::Refunds => "lightning_wall.refunds".into(),
            Metric::SyncFailures => "lightning_wall.sync_failures".into(),
            Metric::Rewards => "lightning_wall.rewards".into(),
            Metric::RewardsDropped => "lightning_wall.rewards_dropped".into(),
            Metric::WouldChallenge => "lightning_wall.shadow.would_challenge".into(),
            Metric::WouldForfeit(trigger) => {
                format!("lightning_wall.shadow.would_forfeit.{}", trigger.as_str())
            }
            Metric::WouldDeny(reason) => format!("lightning_wall.shadow.would_deny.{reason}"),
        }
    }
}

/// Log levels the engine uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Something an operator must fix.
    Error,
    /// Unexpected but handled.
    Warn,
    /// Normal operation worth a line.
    Info,
    /// Per-request detail.
    Debug,
}

/// Why a shared-data write did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SharedWriteError {
    /// Another worker wrote the key since we read it (compare-and-swap failed).
    #[error("shared data changed since it was read")]
    CasMismatch,
    /// The host refused the write.
    #[error("the host refused the shared-data write")]
    Failed,
}

/// A value from shared data with its compare-and-swap version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharedValue {
    /// The bytes; empty when the key does not exist (or was "removed", which stores empty).
    pub bytes: Vec<u8>,
    /// The version to pass back for a compare-and-swap write; `None` when the key is new.
    pub cas: Option<u32>,
}

/// The host, as the engine sees it.
pub trait Host {
    /// Current time, unix seconds.
    fn now_unix(&self) -> u64;
    /// Reads a shared-data key. A failing host reads as "absent".
    fn shared_get(&self, key: &str) -> SharedValue;
    /// Writes a shared-data key, checking `cas` when given.
    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>)
    -> Result<(), SharedWriteError>;
    /// Adds one to a counter.
    fn count(&self, metric: Metric);
    /// Logs a line. Callers never pass credentials, keys or proofs.
    fn log(&self, level: Level, message: fmt::Arguments<'_>);
    /// The current request's client address as the host reports it (`source.address`), `None`
    /// when it has none. Asked only when a challenge is about to be minted: a host call that
    /// most requests do not need.
    fn client_address(&self) -> Option<String>;
}

#[cfg(test)]
pub mod memory {
    //! `MemoryHost`: an in-memory TEST DOUBLE of [`Host`] with Envoy's shared-data semantics
    //! (one CAS counter, a stale CAS is refused, a new key is created whatever the CAS).
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;

    #[derive(Default)]
    pub struct MemoryHost {
        pub now: Cell<u64>,
        data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
        next_cas: Cell<u32>,
        pub metrics: RefCell<HashMap<String, u64>>,
        pub logs: RefCell<Vec<String>>,
        /// Writes fail with CasMismatch this many times (contention from other workers).
        pub conflicts: Cell<u32>,
        /// What `source.address` reads as.
        pub client: RefCell<Option<String>>,
    }

    impl MemoryHost {
        pub fn at(now: u64) -> Self {
            let h = MemoryHost::default();
            h.now.set(now);
            h
        }
        pub fn keys(&self) -> Vec<String> {
            self.data.borrow().keys().cloned().collect()
        }
        pub fn metric(&self, m: Metric) -> u64 {
            self.metrics.borrow().get(&m.name()).copied().unwrap_or(0)
        }
    }

    impl Host for MemoryHost {
        fn now_unix(&self) -> u64 {
            self.now.get()
        }
        fn shared_get(&self, key: &str) -> SharedValue {
            match self.data.borrow().get(key) {
                Some((v, cas)) => SharedValue {
                    bytes: v.clone(),
                    cas: Some(*cas),
                },
                None => SharedValue::default(),
            }
        }
        fn shared_set(
            &self,
            key: &str,
            value: &[u8],
            cas: Option<u32>,
        ) -> Result<(), SharedWriteError> {
            if self.conflicts.get() > 0 {
                self.conflicts.set(self.conflicts.get() - 1);
                return Err(SharedWriteError::CasMismatch);
            }
            let mut data = self.data.borrow_mut();
            if let (Some((_, current)), Some(cas)) = (data.get(key), cas)
                && *current != cas
            {
                return Err(SharedWriteError::CasMismatch);
            }
            let next = self.next_cas.get() + 1;
            self.next_cas.set(next);
            data.insert(key.to_owned(), (value.to_vec(), next));
            Ok(())
        }
        fn count(&self, metric: Metric) {
            *self.metrics.borrow_mut().entry(metric.name()).or_default() += 1;
        }
        fn log(&self, _level: Level, message: fmt::Arguments<'_>) {
            self.logs.borrow_mut().push(message.to_string());
        }
        fn client_address(&self) -> Option<String> {
            self.client.borrow().clone()
        }
    }
}
