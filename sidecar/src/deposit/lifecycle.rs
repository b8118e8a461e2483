//! The deposit lifecycle: the only code that changes a deposit. It feeds events to the pure machine,
//! persists each transition (compare-and-swap) before acting, then performs the node action under
//! a lease so that exactly one replica acts on a deposit at a time. Node actions are idempotent
//! (lnd: cancel twice and settle twice succeed), so a crash between "done on the node" and
//! "recorded as done" only repeats a harmless call. Watchers follow each live invoice's stream;
//! a sweeper runs timers and retries; a reconciler compares every unfinished deposit with the
//! node at start-up and periodically.
//!
//! Split by what each part holds: `commands` (what callers ask for: open, event, leave, perform),
//! `watch` (one task per live invoice following the node, and the chain view), `background`
//! (the sweeper, the reconciler and the chain follower), `drain` (the operator's drain).

mod background;
mod commands;
mod drain;
mod watch;

pub use background::ReconcileReport;
pub use drain::{DrainFailure, DrainReport, PendingAction};

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::TryRngCore;
use tokio::sync::broadcast;

use super::Deposit;
use super::machine::Rejected;
use crate::clock::{Clock, SystemClock};
use crate::ids::PaymentHash;
use crate::ids::Timestamp;
use crate::ids::TokenId;
use crate::metrics::Metrics;
use crate::mutex::lock;
use crate::node::{Node, NodeError};
use crate::store::{LiveCounts, Store, StoreError, StoredDeposit};

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("too many live deposits {scope}: {live} of {max}")]
    LimitReached {
        scope: &'static str,
        live: u64,
        max: u32,
    },
    #[error("no such deposit")]
    NotFound,
    #[error("the operating system's random number generator failed")]
    Random,
    #[error("the deposit kept changing under us; try again")]
    Contended,
}

/// Lifecycle knobs, from `deposits:` and `limits:` in the config.
#[derive(Clone, Debug)]
pub struct LifecycleSettings {
    pub invoice_expiry: Duration,
    pub cltv_expiry: u32,
    pub safety_margin_blocks: u32,
    pub assumed_block_interval: Duration,
    pub reconcile_interval: Duration,
    pub sweep_interval: Duration,
    /// How long a replica may act on one deposit before another may take over.
    pub lease: Duration,
    /// How long a leave waits for a forfeit already on its way before refunding.
    pub leave_grace: Duration,
    /// Held deposits in total (unpaid ones do not count).
    pub max_held_deposits: u32,
    /// Deposits awaiting payment in total.
    pub max_unpaid_deposits: u32,
    /// Held deposits per client prefix (unpaid ones do not count).
    pub max_held_deposits_per_prefix: u32,
    /// Deposits awaiting payment per client prefix.
    pub max_unpaid_deposits_per_prefix: u32,
    /// Names this process in leases; unique per replica.
    pub replica_id: String,
}

impl LifecycleSettings {
    pub fn from_config(config: &crate::config::Config, replica_id: String) -> LifecycleSettings {
        LifecycleSettings {
            invoice_expiry: config.deposits.invoice_expiry,
            cltv_expiry: config.deposits.cltv_expiry,
            safety_margin_blocks: config.deposits.safety_margin_blocks,
            assumed_block_interval: config.deposits.assumed_block_interval,
            reconcile_interval: config.deposits.reconcile_interval,
            sweep_interval: Duration::from_secs(1),
            lease: Duration::from_secs(30),
            leave_grace: config.deposits.leave_grace,
            max_held_deposits: config.limits.max_held_deposits,
            max_unpaid_deposits: config.limits.max_unpaid_deposits,
            max_held_deposits_per_prefix: config.limits.max_held_deposits_per_prefix,
            max_unpaid_deposits_per_prefix: config.limits.max_unpaid_deposits_per_prefix,
            replica_id,
        }
    }
}

/// A deposit to open for a visitor.
#[derive(Clone, Debug)]
pub struct NewDeposit {
    pub route_id: String,
    pub client_prefix: String,
    pub amount_msat: u64,
    pub idle_timeout: Duration,
    pub session_cap: Duration,
    pub memo: String,
}

#[derive(Clone, Debug)]
pub struct OpenedDeposit {
    pub deposit: Deposit,
    pub payment_request: String,
    pub expires_at: Timestamp,
}

/// What an event did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stepped {
    Changed(Deposit),
    Unchanged(Deposit, Rejected),
}

impl Stepped {
    pub fn deposit(&self) -> &Deposit {
        match self {
            Stepped::Changed(d) | Stepped::Unchanged(d, _) => d,
        }
    }
}

/// A committed change of a deposit, as this replica's lifecycle tells its long-polls: everything a
/// deposit status answer needs, so a woken long-poll answers without reading the store
/// (deposit/waiters.rs). Sent only after the transition's commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changed {
    pub deposit: Arc<Deposit>,
    /// The deposit's version after the change (changes may be received out of order).
    pub version: i64,
    /// Whether the deposit's token is revoked once this change committed.
    pub token_revoked: bool,
}

#[derive(Clone, Copy, Debug)]
struct ChainView {
    block_height: u32,
    hold_expiry_delta: u32,
}

struct Inner {
    store: Store,
    node: Arc<dyn Node>,
    settings: LifecycleSettings,
    metrics: Arc<Metrics>,
    /// Wall clock of the deposit timers (tests step it forward and back).
    clock: Arc<dyn Clock>,
    chain: Mutex<Option<ChainView>>,
    watching: Mutex<HashSet<PaymentHash>>,
    /// Deposits a task of this replica is acting on: the store lease is per replica, so tasks
    /// of one process (sweeper, watcher, API) must also exclude each other.
    acting: Mutex<HashSet<PaymentHash>>,
    /// Earliest next try of a failed node action, by deposit.
    retry_at: Mutex<HashMap<PaymentHash, Instant>>,
    changes: broadcast::Sender<Changed>,
    /// The last count of live deposits, for the global limits (see `live_total`).
    live: Mutex<Option<LiveCount>>,
    /// The drain flag as last read from the store (when it started, if on), and when it was
    /// read (see `drain.rs`).
    drain: Mutex<Option<(Option<Timestamp>, Instant)>>,
}

#[derive(Clone, Copy, Debug)]
struct LiveCount {
    counted: LiveCounts,
    at: Instant,
    opened_since: u64,
}

#[derive(Clone)]
pub struct Lifecycle {
    inner: Arc<Inner>,
}

fn random32() -> Result<[u8; 32], LifecycleError> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|_| LifecycleError::Random)?;
    Ok(bytes)
}

impl Lifecycle {
    /// A fresh token id: 24 random bytes, then the store's id (contract `store_id`), so that a
    /// filter refuses this token's deposit credential once another store replaces this one.
    pub fn new_token_id(&self) -> Result<TokenId, LifecycleError> {
        let mut id = random32()?;
        self.inner.store.cached_store_id()?.stamp(&mut id);
        Ok(TokenId(id))
    }
}

impl Lifecycle {
    pub fn new(
        store: Store,
        node: Arc<dyn Node>,
        settings: LifecycleSettings,
        metrics: Arc<Metrics>,
    ) -> Lifecycle {
        Lifecycle::with_clock(store, node, settings, metrics, Arc::new(SystemClock))
    }

    /// As [`Lifecycle::new`], with the timers reading `clock`.
    pub fn with_clock(
        store: Store,
        node: Arc<dyn Node>,
        settings: LifecycleSettings,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> Lifecycle {
        let (changes, _) = broadcast::channel(4096);
        Lifecycle {
            inner: Arc::new(Inner {
                store,
                node,
                settings,
                metrics,
                clock,
                chain: Mutex::new(None),
                watching: Mutex::new(HashSet::new()),
                acting: Mutex::new(HashSet::new()),
                retry_at: Mutex::new(HashMap::new()),
                changes,
                live: Mutex::new(None),
                drain: Mutex::new(None),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The wall clock's time as the deposit timers see it.
    pub fn now(&self) -> Timestamp {
        Timestamp(self.inner.clock.now().as_secs())
    }

    pub fn node(&self) -> &Arc<dyn Node> {
        &self.inner.node
    }

    pub fn settings(&self) -> &LifecycleSettings {
        &self.inner.settings
    }

    /// Deposits as they change, each after its commit (for long-polls on this replica).
    pub fn changes(&self) -> broadcast::Receiver<Changed> {
        self.inner.changes.subscribe()
    }

    pub async fn deposit(
        &self,
        hash: &PaymentHash,
    ) -> Result<Option<StoredDeposit>, LifecycleError> {
        Ok(self.inner.store.deposit(hash).await?)
    }
}

#[cfg(test)]
mod commit_tests;
#[cfg(test)]
mod tests;
