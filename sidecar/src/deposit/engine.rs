//! The deposit engine: the only code that changes a deposit. It feeds events to the pure machine,
//! persists each transition (compare-and-swap) before acting, then performs the node action under
//! a lease so that exactly one replica acts on a deposit at a time. Node actions are idempotent
//! (lnd: cancel twice and settle twice succeed), so a crash between "done on the node" and
//! "recorded as done" only repeats a harmless call. Watchers follow each live invoice's stream;
//! a sweeper runs timers and retries; a reconciler compares every unfinished deposit with the
//! node at start-up and periodically.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rand::TryRngCore;
use tokio::sync::{broadcast, watch};

use super::machine::{self, Event, Rejected};
use super::{Deposit, DepositState, DepositTiming, NodeAction, Timestamp, TokenId};
use crate::clock::{Clock, SystemClock};
use crate::metrics::{Metrics, ModeLabel, OutcomeLabel};
use crate::node::{
    InvoiceRequest, InvoiceState, InvoiceStatus, Node, NodeError, PaymentHash, Preimage,
};
use crate::store::{ApplyOutcome, LiveCounts, Store, StoreError, StoredDeposit};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
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

/// Engine knobs, from `deposits:` and `limits:` in the config.
#[derive(Clone, Debug)]
pub struct EngineSettings {
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

impl EngineSettings {
    pub fn from_config(config: &crate::config::Config, replica_id: String) -> EngineSettings {
        EngineSettings {
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

#[derive(Clone, Copy, Debug)]
struct ChainView {
    block_height: u32,
    hold_expiry_delta: u32,
}

struct Inner {
    store: Store,
    node: Arc<dyn Node>,
    settings: EngineSettings,
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
    changes: broadcast::Sender<PaymentHash>,
    /// The last count of live deposits, for the global limits (see `live_total`).
    live: Mutex<Option<LiveCount>>,
}

#[derive(Clone, Copy, Debug)]
struct LiveCount {
    counted: LiveCounts,
    at: Instant,
    opened_since: u64,
}

/// How long a count of live deposits is reused for the global limit.
const LIVE_COUNT_FOR: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Poisoning means a panic elsewhere; the sets and maps here stay consistent regardless.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn random32() -> Result<[u8; 32], EngineError> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|_| EngineError::Random)?;
    Ok(bytes)
}

impl Engine {
    pub fn new(
        store: Store,
        node: Arc<dyn Node>,
        settings: EngineSettings,
        metrics: Arc<Metrics>,
    ) -> Engine {
        Engine::with_clock(store, node, settings, metrics, Arc::new(SystemClock))
    }

    /// As [`Engine::new`], with the timers reading `clock`.
    pub fn with_clock(
        store: Store,
        node: Arc<dyn Node>,
        settings: EngineSettings,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> Engine {
        let (changes, _) = broadcast::channel(4096);
        Engine {
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

    pub fn settings(&self) -> &EngineSettings {
        &self.inner.settings
    }

    /// Payment hashes of deposits that changed (for long-polls on this replica).
    pub fn changes(&self) -> broadcast::Receiver<PaymentHash> {
        self.inner.changes.subscribe()
    }

    /// Opens a deposit: limits, a fresh preimage, the hold invoice on the node, then deposit,
    /// preimage and invoice stored in one durable commit, then a watcher. The invoice only
    /// leaves this function after the preimage is on disk.
    pub async fn open_deposit(
        &self,
        new: NewDeposit,
        now: Timestamp,
    ) -> Result<OpenedDeposit, EngineError> {
        let s = &self.inner.settings;
        let live = self.live_total().await?;
        let in_prefix = self
            .inner
            .store
            .prefix_deposit_counts(&new.client_prefix)
            .await?;
        // Only held deposits take HTLC slots and liquidity; unpaid ones have their own cap, so
        // a flood of unpaid challenges cannot use up the places of visitors who pay.
        if live.held >= u64::from(s.max_held_deposits) {
            return Err(EngineError::LimitReached {
                scope: "held in total",
                live: live.held,
                max: s.max_held_deposits,
            });
        }
        if live.unpaid >= u64::from(s.max_unpaid_deposits) {
            return Err(EngineError::LimitReached {
                scope: "awaiting payment in total",
                live: live.unpaid,
                max: s.max_unpaid_deposits,
            });
        }
        // Held and unpaid apart: unpaid invoices cost nothing to request, so they must not
        // use up the held cap of a network that real visitors share (an office, a CGNAT).
        if in_prefix.held >= u64::from(s.max_held_deposits_per_prefix) {
            return Err(EngineError::LimitReached {
                scope: "held for this client network",
                live: in_prefix.held,
                max: s.max_held_deposits_per_prefix,
            });
        }
        if in_prefix.unpaid >= u64::from(s.max_unpaid_deposits_per_prefix) {
            return Err(EngineError::LimitReached {
                scope: "awaiting payment for this client network",
                live: in_prefix.unpaid,
                max: s.max_unpaid_deposits_per_prefix,
            });
        }
        let preimage = Preimage(random32()?);
        let payment_hash = preimage.payment_hash();
        let deposit = Deposit {
            payment_hash,
            token_id: TokenId(random32()?),
            route_id: new.route_id,
            client_prefix: new.client_prefix,
            amount_msat: new.amount_msat,
            state: DepositState::AwaitingPayment,
            created_at: now,
            invoice_expires_at: now.plus(s.invoice_expiry),
            timing: DepositTiming {
                idle_timeout: new.idle_timeout,
                session_cap: new.session_cap,
                safety_margin_blocks: s.safety_margin_blocks,
                assumed_block_interval: s.assumed_block_interval,
            },
            hold: None,
            resolution: None,
            pending: None,
        };
        // Order: node first, then one durable insert of deposit + preimage + BOLT11, then the
        // answer. Only the hash reaches the node; the BOLT11, the only way to pay, leaves this
        // function after the commit that holds the preimage, so a paid deposit always has its
        // preimage. A crash or failed insert in between leaves an OPEN invoice nobody was
        // given: it cannot be paid and the node expires it (lnd cancels OPEN invoices at
        // expiry), so nothing is held or owed. Storing first would cost a second commit per
        // deposit (recording the BOLT11) for no gain in safety.
        let request = InvoiceRequest {
            amount_msat: deposit.amount_msat,
            memo: new.memo,
            expiry: s.invoice_expiry,
            cltv_expiry: Some(s.cltv_expiry),
        };
        let started = Instant::now();
        let created = self
            .inner
            .node
            .create_hold_invoice(&payment_hash, &request)
            .await;
        self.inner
            .metrics
            .observe_node_call("create_hold_invoice", started.elapsed());
        let created = created.inspect_err(|_| self.inner.metrics.error("node_create_invoice"))?;
        if let Err(e) = self
            .inner
            .store
            .insert_deposit_with_invoice(&deposit, &preimage, Some(&created.payment_request))
            .await
        {
            // Not handed out, so unpayable anyway; cancel now rather than at expiry so the
            // node does not keep it open (lnd: cancel of an OPEN invoice is allowed).
            if let Err(cancel) = self.inner.node.cancel(&payment_hash).await {
                tracing::debug!(payment_hash = ?payment_hash, error = %cancel,
                    "canceling an invoice whose deposit could not be stored failed; it expires");
            }
            self.inner.metrics.error("store_insert");
            return Err(e.into());
        }
        if let Some(count) = lock(&self.inner.live).as_mut() {
            count.opened_since += 1;
        }
        self.inner
            .metrics
            .challenges
            .get_or_create(&ModeLabel { mode: "deposit" })
            .inc();
        self.watch(payment_hash);
        Ok(OpenedDeposit {
            expires_at: deposit.invoice_expires_at,
            deposit,
            payment_request: created.payment_request,
        })
    }

    /// Held and unpaid deposits in total, for the global limits. Counting walks an index of
    /// every live deposit (0.45 ms at 12,000 on SQLite), too much for every mint at thousands a
    /// second, so the counts are reused for [`LIVE_COUNT_FOR`], with the deposits this replica
    /// opened since added to the unpaid ones. Deposits that ended meanwhile are still counted,
    /// so a single replica never exceeds the unpaid limit; other replicas' openings, and
    /// payments (unpaid becoming held), show up within `LIVE_COUNT_FOR`, the same order of
    /// slack as the race between counting and inserting that any count-then-insert limit has
    /// under concurrent mints.
    async fn live_total(&self) -> Result<LiveCounts, EngineError> {
        if let Some(c) = *lock(&self.inner.live)
            && c.at.elapsed() < LIVE_COUNT_FOR
        {
            return Ok(LiveCounts {
                held: c.counted.held,
                unpaid: c.counted.unpaid + c.opened_since,
            });
        }
        let at = Instant::now();
        let counted = self.inner.store.global_deposit_counts().await?;
        *lock(&self.inner.live) = Some(LiveCount {
            counted,
            at,
            opened_since: 0,
        });
        Ok(counted)
    }

    /// Feeds one event to a deposit: decide, persist (retrying on concurrent writers), then
    /// carry out any node action it left pending.
    pub async fn event(&self, hash: &PaymentHash, event: Event) -> Result<Stepped, EngineError> {
        let stepped = self.apply_event(hash, event).await?;
        if let Stepped::Changed(d) = &stepped
            && d.pending.is_some()
            && let Err(e) = self.perform(hash).await
        {
            // Persisted as pending: the sweeper retries it.
            tracing::warn!(payment_hash = ?hash, error = %e, "node action failed; will retry");
        }
        Ok(stepped)
    }

    /// The visitor leaves: the token is revoked at once (persisted with the decision, so the
    /// filter's next sync stops every worker serving it), and the refund follows after the
    /// leave grace unless a forfeit arrives first. This replica refunds after exactly the grace;
    /// should it stop before, any replica's timer refunds at the persisted `refund_at`.
    pub async fn leave(&self, hash: &PaymentHash) -> Result<Stepped, EngineError> {
        let grace = self.inner.settings.leave_grace;
        let stepped = self.event(hash, Event::LeaveRequested { grace }).await?;
        if let Stepped::Changed(d) = &stepped
            && d.hold.is_some_and(|h| h.leaving.is_some())
        {
            let engine = self.clone();
            let hash = *hash;
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                if let Err(e) = engine.event(&hash, Event::VisitorLeft).await {
                    // Persisted as leaving: the sweeper's timer refunds it at `refund_at`.
                    tracing::warn!(payment_hash = ?hash, error = %e, "refund after the leave grace failed; the timer retries");
                }
            });
        }
        Ok(stepped)
    }

    pub async fn event_by_token(
        &self,
        token: &TokenId,
        event: Event,
    ) -> Result<Stepped, EngineError> {
        let stored = self
            .inner
            .store
            .deposit_by_token(token)
            .await?
            .ok_or(EngineError::NotFound)?;
        self.event(&stored.deposit.payment_hash, event).await
    }

    async fn apply_event(&self, hash: &PaymentHash, event: Event) -> Result<Stepped, EngineError> {
        for _ in 0..8 {
            let stored = self
                .inner
                .store
                .deposit(hash)
                .await?
                .ok_or(EngineError::NotFound)?;
            let now = self.now();
            let transition = match machine::step(&stored.deposit, event, now) {
                Ok(t) => t,
                Err(rejected) => return Ok(Stepped::Unchanged(stored.deposit, rejected)),
            };
            match self
                .inner
                .store
                .apply(stored.version, &transition, now)
                .await?
            {
                ApplyOutcome::Stale => continue,
                ApplyOutcome::Applied { .. } => {
                    if let Some(audit) = transition.audit {
                        tracing::info!(
                            payment_hash = ?hash,
                            route = %transition.next.route_id,
                            client_prefix = %transition.next.client_prefix,
                            outcome = audit.outcome.as_str(),
                            trigger = audit.trigger.as_str(),
                            "deposit ended"
                        );
                        self.inner
                            .metrics
                            .deposit_outcomes
                            .get_or_create(&OutcomeLabel {
                                outcome: audit.outcome.as_str(),
                                trigger: audit.trigger.as_str(),
                            })
                            .inc();
                    }
                    let _ = self.inner.changes.send(*hash);
                    return Ok(Stepped::Changed(transition.next));
                }
            }
        }
        Err(EngineError::Contended)
    }

    /// Performs the deposit's pending node action if this replica can take the lease.
    pub async fn perform(&self, hash: &PaymentHash) -> Result<(), EngineError> {
        let Some(_acting) = Acting::start(&self.inner, hash) else {
            return Ok(()); // another task of this replica is on it
        };
        let s = &self.inner.settings;
        if !self
            .inner
            .store
            .claim(hash, &s.replica_id, self.now(), s.lease)
            .await?
        {
            return Ok(()); // another replica is acting on it
        }
        let result = self.perform_claimed(hash).await;
        if let Err(e) = self.inner.store.release(hash, &s.replica_id).await {
            // The lease expires by itself; only a delay for the other replicas.
            tracing::warn!(payment_hash = ?hash, error = %e, "releasing a lease failed");
        }
        result
    }

    async fn perform_claimed(&self, hash: &PaymentHash) -> Result<(), EngineError> {
        let Some(stored) = self.inner.store.deposit(hash).await? else {
            return Ok(());
        };
        let Some(action) = stored.deposit.pending else {
            return Ok(());
        };
        let started = Instant::now();
        let outcome = match action {
            NodeAction::Cancel => self.inner.node.cancel(hash).await,
            NodeAction::Settle => {
                let preimage =
                    self.inner
                        .store
                        .preimage(hash)
                        .await?
                        .ok_or(StoreError::Corrupt {
                            table: "deposits",
                            problem: "a deposit without its preimage".into(),
                        })?;
                self.inner.node.settle(&preimage).await
            }
        };
        self.inner
            .metrics
            .observe_node_call(action.as_str(), started.elapsed());
        let event = match (action, outcome) {
            (_, Ok(())) => Event::ActionPerformed(action),
            (NodeAction::Cancel, Err(NodeError::AlreadyCanceled))
            | (NodeAction::Settle, Err(NodeError::AlreadySettled)) => {
                Event::ActionPerformed(action)
            }
            // The node's final state wins; the machine records it (and the audit says so).
            (NodeAction::Cancel, Err(NodeError::AlreadySettled)) => Event::NodeSettled,
            (NodeAction::Settle, Err(NodeError::AlreadyCanceled)) => Event::NodeCanceled,
            (_, Err(NodeError::NotFound)) => {
                tracing::warn!(payment_hash = ?hash, action = action.as_str(),
                    "the node does not know this invoice; nothing to do");
                Event::ActionImpossible(action)
            }
            (_, Err(e)) => {
                let attempts = self.inner.store.record_action_attempt(hash).await?;
                self.schedule_retry(hash, attempts);
                self.inner.metrics.error("node_action");
                return Err(e.into());
            }
        };
        lock(&self.inner.retry_at).remove(hash);
        self.apply_event(hash, event).await?;
        Ok(())
    }

    fn schedule_retry(&self, hash: &PaymentHash, attempts: u32) {
        let backoff = Duration::from_millis(500)
            .saturating_mul(2u32.saturating_pow(attempts.min(6)))
            .min(Duration::from_secs(30));
        lock(&self.inner.retry_at).insert(*hash, Instant::now() + backoff);
    }

    /// Starts following the invoice's stream unless this replica already does.
    pub fn watch(&self, hash: PaymentHash) {
        if !lock(&self.inner.watching).insert(hash) {
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            engine.follow(hash).await;
            lock(&engine.inner.watching).remove(&hash);
        });
    }

    pub fn watched(&self) -> usize {
        lock(&self.inner.watching).len()
    }

    /// Follows one invoice until its deposit needs nothing more from the node. Streams die
    /// silently (no keepalive in lnd's REST streams): after each end, reconcile by lookup.
    ///
    /// One such task per live deposit, parked on its stream most of the time: a task's memory
    /// is its future's largest state, so every call that may run a transition is boxed
    /// (allocated only while it runs) instead of inlined into the parked future, which would
    /// otherwise keep the largest transition's state allocated for each of 10,000 deposits.
    async fn follow(&self, hash: PaymentHash) {
        let mut backoff = Duration::from_millis(200);
        loop {
            match Box::pin(self.inner.node.subscribe(&hash)).await {
                Ok(mut updates) => {
                    backoff = Duration::from_millis(200);
                    while let Some(update) = updates.next().await {
                        match update {
                            Ok(status) => Box::pin(self.on_status(&status)).await,
                            Err(e) => {
                                tracing::debug!(payment_hash = ?hash, error = %e, "invoice stream error");
                                break;
                            }
                        }
                    }
                }
                Err(NodeError::NotFound) => Box::pin(self.on_missing(&hash)).await,
                Err(e) => tracing::debug!(payment_hash = ?hash, error = %e, "subscribe failed"),
            }
            match Box::pin(self.inner.node.lookup(&hash)).await {
                Ok(status) => Box::pin(self.on_status(&status)).await,
                Err(NodeError::NotFound) => Box::pin(self.on_missing(&hash)).await,
                Err(e) => tracing::debug!(payment_hash = ?hash, error = %e, "lookup failed"),
            }
            match Box::pin(self.inner.store.deposit(&hash)).await {
                Ok(Some(d)) if d.deposit.state.is_final() && d.deposit.pending.is_none() => return,
                Ok(None) => return,
                _ => {}
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    async fn on_status(&self, status: &InvoiceStatus) {
        let Some(event) = self.status_event(status).await else {
            return;
        };
        if let Err(e) = self.event(&status.payment_hash, event).await {
            tracing::warn!(payment_hash = ?status.payment_hash, error = %e, "applying a node update failed");
        }
    }

    /// The event a node status means for its deposit (none for OPEN).
    async fn status_event(&self, status: &InvoiceStatus) -> Option<Event> {
        Some(match status.state {
            InvoiceState::Open => return None,
            InvoiceState::Accepted => {
                let chain = self.chain_view(status).await;
                Event::NodeAccepted {
                    amount_paid_msat: status.amount_paid_msat,
                    htlc_expiry_height: status.htlc_expiry_height,
                    block_height: chain.block_height,
                    hold_expiry_delta: chain.hold_expiry_delta,
                }
            }
            InvoiceState::Settled => Event::NodeSettled,
            InvoiceState::Canceled => Event::NodeCanceled,
        })
    }

    /// The node has no such invoice: it was never created (crash between storing the preimage
    /// and creating it) or the node lost it. Either way nothing is held.
    async fn on_missing(&self, hash: &PaymentHash) {
        let Ok(Some(stored)) = self.inner.store.deposit(hash).await else {
            return;
        };
        let Some(event) = missing_event(&stored.deposit) else {
            return;
        };
        if let Err(e) = self.apply_event(hash, event).await {
            tracing::warn!(payment_hash = ?hash, error = %e, "recording a missing invoice failed");
        }
    }

    /// Current block height and auto-cancel margin; asks the node when not known yet.
    async fn chain_view(&self, status: &InvoiceStatus) -> ChainView {
        if let Some(view) = *lock(&self.inner.chain) {
            return view;
        }
        if let Ok(view) = self.refresh_chain().await {
            return view;
        }
        // The node cannot tell us now: assume the HTLC was just accepted with the CLTV we asked
        // for and lnd's larger margin, which errs toward an early refund.
        ChainView {
            block_height: status
                .htlc_expiry_height
                .map_or(0, |h| h.saturating_sub(self.inner.settings.cltv_expiry)),
            hold_expiry_delta: 18,
        }
    }

    async fn refresh_chain(&self) -> Result<ChainView, EngineError> {
        let started = Instant::now();
        let info = self.inner.node.info().await;
        self.inner
            .metrics
            .observe_node_call("info", started.elapsed());
        let info = info?;
        let view = ChainView {
            block_height: info.block_height,
            hold_expiry_delta: info.hold_expiry_delta,
        };
        *lock(&self.inner.chain) = Some(view);
        Ok(view)
    }

    pub fn block_height(&self) -> Option<u32> {
        lock(&self.inner.chain).map(|c| c.block_height)
    }

    /// One pass of timers and retries: ticks every due deposit, retries pending node actions
    /// whose backoff has passed.
    pub async fn sweep(&self) -> Result<(), EngineError> {
        let now = self.now();
        let block_height = self.block_height();
        for stored in self.inner.store.due_deposits(now, 1000).await? {
            let hash = stored.deposit.payment_hash;
            if let Err(e) = self.event(&hash, Event::Tick { block_height }).await {
                tracing::warn!(payment_hash = ?hash, error = %e, "timer tick failed");
            }
        }
        for stored in self.inner.store.pending_deposits(now, 1000).await? {
            let hash = stored.deposit.payment_hash;
            let due = lock(&self.inner.retry_at)
                .get(&hash)
                .is_none_or(|at| *at <= Instant::now());
            if due && let Err(e) = self.perform(&hash).await {
                tracing::debug!(payment_hash = ?hash, error = %e, "retrying a node action failed");
            }
        }
        Ok(())
    }

    /// Compares every unfinished deposit with the node, applies what it missed, resumes watchers
    /// and performs pending actions. Run at start-up (before serving) and periodically.
    pub async fn reconcile(&self) -> Result<ReconcileReport, EngineError> {
        let mut report = ReconcileReport::default();
        let _ = self.refresh_chain().await;
        let block_height = self.block_height();
        let mut after = None;
        loop {
            let page = self
                .inner
                .store
                .unfinished_deposits_after(after.as_ref(), PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.deposit.payment_hash);
            for stored in page {
                self.reconcile_one(stored, block_height, &mut report).await;
            }
        }
        Ok(report)
    }

    async fn reconcile_one(
        &self,
        stored: StoredDeposit,
        block_height: Option<u32>,
        report: &mut ReconcileReport,
    ) {
        report.examined += 1;
        let hash = stored.deposit.payment_hash;
        // Decide on the row just read and write only what the machine accepts: a deposit
        // that agrees with the node (the usual case, every period, for every held deposit)
        // costs one lookup and no store round trip. A change re-reads inside `event`.
        let mut changed = false;
        match self.inner.node.lookup(&hash).await {
            Ok(status) => {
                if let Some(event) = self.status_event(&status).await
                    && machine::step(&stored.deposit, event, self.now()).is_ok()
                {
                    changed = true;
                    if let Err(e) = self.event(&hash, event).await {
                        tracing::warn!(payment_hash = ?hash, error = %e, "applying a node update failed");
                    }
                }
            }
            Err(NodeError::NotFound) => {
                if let Some(event) = missing_event(&stored.deposit) {
                    changed = true;
                    if let Err(e) = self.apply_event(&hash, event).await {
                        tracing::warn!(payment_hash = ?hash, error = %e, "recording a missing invoice failed");
                    }
                }
            }
            Err(e) => {
                report.node_errors += 1;
                tracing::warn!(payment_hash = ?hash, error = %e, "reconcile lookup failed");
            }
        }
        let tick = Event::Tick { block_height };
        if changed || machine::step(&stored.deposit, tick, self.now()).is_ok() {
            changed = true;
            let _ = self.event(&hash, tick).await;
        }
        let now = if changed {
            self.inner.store.deposit(&hash).await.ok().flatten()
        } else {
            Some(stored)
        };
        if let Some(now) = now {
            if now.deposit.pending.is_some()
                && let Err(e) = self.perform(&hash).await
            {
                report.node_errors += 1;
                tracing::warn!(payment_hash = ?hash, error = %e, "reconcile action failed");
            }
            if !now.deposit.state.is_final() || now.deposit.pending.is_some() {
                self.watch(hash);
            }
        }
    }

    /// Runs the sweeper, the reconciler and the chain refresher until `shutdown` turns true.
    /// Separate tasks: a slow reconcile (many deposits, a slow node) must never delay the timers
    /// that refund idle deposits or beat the HTLC deadline.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let s = self.inner.settings.clone();
        let sweeper = self
            .clone()
            .every(s.sweep_interval, shutdown.clone(), |e| async move {
                if let Err(err) = e.sweep().await {
                    e.inner.metrics.error("sweep");
                    tracing::warn!(error = %err, "sweep failed");
                }
            });
        let reconciler =
            self.clone()
                .every(s.reconcile_interval, shutdown.clone(), |e| async move {
                    match e.reconcile().await {
                        Ok(report) => tracing::debug!(?report, "reconciled"),
                        Err(err) => {
                            e.inner.metrics.error("reconcile");
                            tracing::warn!(error = %err, "reconcile failed");
                        }
                    }
                });
        let chain = self.every(Duration::from_secs(30), shutdown, |e| async move {
            e.follow_chain().await;
        });
        let _ = tokio::join!(sweeper, reconciler, chain);
    }

    fn every<F, Fut>(
        self,
        period: Duration,
        mut shutdown: watch::Receiver<bool>,
        job: F,
    ) -> tokio::task::JoinHandle<()>
    where
        F: Fn(Engine) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(async move {
            let mut timer = tokio::time::interval(period);
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = timer.tick() => job(self.clone()).await,
                }
            }
        })
    }

    /// Refreshes the block height; when it moved, re-checks every hold against it (blocks may
    /// come faster than the assumed interval the wall-clock deadline was computed with).
    async fn follow_chain(&self) {
        let before = self.block_height();
        if self.refresh_chain().await.is_err() || self.block_height() == before {
            return;
        }
        let block_height = self.block_height();
        let mut after = None;
        while let Ok(page) = self
            .inner
            .store
            .unfinished_deposits_after(after.as_ref(), PAGE)
            .await
        {
            let Some(last) = page.last() else { break };
            after = Some(last.deposit.payment_hash);
            for d in page
                .iter()
                .filter(|d| d.deposit.state == DepositState::Held)
            {
                let _ = self
                    .event(&d.deposit.payment_hash, Event::Tick { block_height })
                    .await;
            }
        }
    }

    pub async fn deposit(&self, hash: &PaymentHash) -> Result<Option<StoredDeposit>, EngineError> {
        Ok(self.inner.store.deposit(hash).await?)
    }
}

/// Unfinished deposits read per page by the reconciler and the chain follower.
const PAGE: u32 = 500;

/// What "the node has no such invoice" means for a deposit: it was never created (a deposit
/// stored before its invoice, by an older version) or the node lost it. Either way nothing is
/// held: an unpaid deposit ends, a pending action cannot be carried out.
fn missing_event(d: &Deposit) -> Option<Event> {
    match (d.state, d.pending) {
        (DepositState::AwaitingPayment, _) => Some(Event::NodeCanceled),
        (_, Some(action)) => Some(Event::ActionImpossible(action)),
        _ => None,
    }
}

/// Marks a deposit as being acted on by this process; unmarks on drop (also on error paths).
struct Acting<'a> {
    inner: &'a Inner,
    hash: PaymentHash,
}

impl<'a> Acting<'a> {
    fn start(inner: &'a Inner, hash: &PaymentHash) -> Option<Acting<'a>> {
        // `then`, not `then_some`: an eagerly built guard would be dropped (and unlock the
        // deposit for its current owner) when the insert fails.
        let inserted = lock(&inner.acting).insert(*hash);
        inserted.then(|| Acting { inner, hash: *hash })
    }
}

impl Drop for Acting<'_> {
    fn drop(&mut self) {
        lock(&self.inner.acting).remove(&self.hash);
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    pub examined: u32,
    pub node_errors: u32,
}

#[cfg(test)]
mod tests;
