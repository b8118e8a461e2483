//! `dev`: an embedded development Lightning node for demos and tests. It issues real, signed
//! regtest BOLT11 invoices, follows lnd's invoice and hold-invoice rules on a simulated chain, and
//! is "paid" only through [`DevNode::simulate_payment`]. It moves no real money and must never be
//! presented as anything but a development backend.

mod chain;
mod new_invoices;
mod node_key;
mod payments;
mod rules;
mod store;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;

pub use chain::{Clock, ManualClock, SystemClock};
pub use node_key::NodeKeyError;
pub use payments::DevPayError;
pub use rules::{DevPayment, PayRefused};
pub use store::StoreError;

use chain::Chain;
use node_key::{InvoiceSpec, NodeKey};
use rules::DevInvoice;
use store::DevStore;

use super::{
    CreatedInvoice, InvoiceRequest, InvoiceState, InvoiceStatus, InvoiceUpdates, Node, NodeError,
    NodeInfo, PaymentOutcome,
};
use crate::ids::{PaymentHash, Preimage};
use crate::mutex::lock;

/// lnd's default final CLTV delta for invoices (`cltv_expiry` 80).
pub const DEFAULT_CLTV_EXPIRY: u32 = 80;
/// lnd v0.21 refuses a `cltv_expiry` below 24 (`routing.MinCLTVDelta`).
pub const MIN_CLTV_EXPIRY: u32 = 24;
/// lnd's default invoice expiry when none is given (`expiry` 86400 s).
pub const DEFAULT_INVOICE_EXPIRY: Duration = Duration::from_secs(86_400);
/// lnd v0.21's `holdexpirydelta`.
pub const DEFAULT_HOLD_EXPIRY_DELTA: u32 = 18;

/// How the dev node is set up; the sidecar's YAML `node: {backend: dev, ...}` maps onto it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevNodeConfig {
    /// Holds `dev-node.key` (mode 0600) and `dev-node.sqlite`; created if missing.
    pub data_dir: PathBuf,
    /// Simulated time between blocks (bitcoin's target: 600 s).
    pub block_interval: Duration,
    /// Height of the simulated chain when the data dir is first created.
    pub start_height: u32,
    /// Blocks before the lowest HTLC expiry at which a held invoice is auto-canceled.
    pub hold_expiry_delta: u32,
    /// How often expiry and auto-cancel are applied in the background; `None` = only when
    /// [`DevNode::sweep`] is called (tests that drive time by hand).
    pub sweep_interval: Option<Duration>,
    /// How often a quiet subscription re-reads its invoice, to see changes made by another
    /// process sharing the data dir (changes in this process wake it at once).
    pub subscription_recheck: Duration,
}

impl DevNodeConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            block_interval: Duration::from_secs(600),
            start_height: 1_000,
            hold_expiry_delta: DEFAULT_HOLD_EXPIRY_DELTA,
            sweep_interval: Some(Duration::from_secs(1)),
            subscription_recheck: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DevNodeError {
    #[error("creating the dev node data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] NodeKeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The embedded development node. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct DevNode {
    inner: Arc<Inner>,
}

struct Inner {
    config: DevNodeConfig,
    clock: Arc<dyn Clock>,
    key: NodeKey,
    store: DevStore,
    chain: Mutex<Chain>,
    /// Serialises read-modify-write of invoices (one process owns the dev node's database);
    /// shared with the writer of new invoices.
    writes: Arc<tokio::sync::Mutex<()>>,
    /// New invoices, written in batches (new_invoices.rs).
    new_invoices: new_invoices::NewInvoices,
    /// A change counter per invoice that someone is subscribed to: a change wakes only that
    /// invoice's subscribers. Entries go when their last subscriber does.
    watchers: Mutex<HashMap<PaymentHash, watch::Sender<u64>>>,
    /// Hold invoices created here that nobody has subscribed to yet, as written. The lifecycle
    /// subscribes to each hold invoice right after creating it; its first status comes from
    /// here instead of a read of the database (that read was 9 % of a deposit challenge's
    /// CPU). A change removes the entry before waking subscribers; at most [`MAX_UNREAD`].
    unread: Mutex<HashMap<PaymentHash, DevInvoice>>,
}

/// Hold invoices kept for their first subscriber; more are read from the database.
const MAX_UNREAD: usize = 4096;

impl std::fmt::Debug for DevNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevNode")
            .field("data_dir", &self.inner.config.data_dir)
            .field("key", &self.inner.key)
            .finish_non_exhaustive()
    }
}

impl DevNode {
    /// Opens (or creates) the dev node in `config.data_dir`, on the machine's clock.
    pub async fn open(config: DevNodeConfig) -> Result<Self, DevNodeError> {
        Self::open_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn open_with_clock(
        config: DevNodeConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, DevNodeError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| DevNodeError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let key = NodeKey::load_or_create(&config.data_dir)?;
        let store = DevStore::open(&config.data_dir).await?;
        let chain = store
            .chain(clock.now().as_secs(), config.start_height)
            .await?;
        let writes = Arc::new(tokio::sync::Mutex::new(()));
        let new_invoices = new_invoices::NewInvoices::start(store.clone(), writes.clone());
        let node = Self {
            inner: Arc::new(Inner {
                config,
                clock,
                key,
                store,
                chain: Mutex::new(chain),
                writes,
                new_invoices,
                watchers: Mutex::new(HashMap::new()),
                unread: Mutex::new(HashMap::new()),
            }),
        };
        tracing::warn!(
            data_dir = %node.inner.config.data_dir.display(),
            pubkey = %node.inner.key.public_key(),
            height = node.height(),
            "lightning node backend `dev`: a DEVELOPMENT node that moves no real money; \
             its regtest invoices can only be paid with `lightning-wall dev pay`. \
             Never use it in production."
        );
        if let Some(every) = node.inner.config.sweep_interval {
            tokio::spawn(sweep_forever(Arc::downgrade(&node.inner), every));
        }
        Ok(node)
    }

    /// The node's public key (hex), the payee of its invoices.
    pub fn pubkey(&self) -> String {
        self.inner.key.public_key().to_string()
    }

    /// The simulated block height now.
    pub fn height(&self) -> u32 {
        let chain = *lock(&self.inner.chain);
        chain.height_at(self.now_unix(), self.inner.config.block_interval)
    }

    /// Mines `blocks` simulated blocks at once (persisted), then applies auto-cancel.
    pub async fn advance_blocks(&self, blocks: u32) -> Result<(), DevNodeError> {
        self.inner.store.add_blocks(blocks).await?;
        self.sweep().await?;
        Ok(())
    }

    /// Applies what time has done (expiry of OPEN invoices, auto-cancel of held ones) to every
    /// due invoice; returns how many changed. Runs in the background every `sweep_interval`.
    /// Also re-reads the chain, which another process sharing the data dir may have mined.
    pub async fn sweep(&self) -> Result<usize, DevNodeError> {
        let chain = self
            .inner
            .store
            .chain(self.now_unix(), self.inner.config.start_height)
            .await?;
        *lock(&self.inner.chain) = chain;
        let _writing = self.inner.writes.lock().await;
        let (now, height) = (self.now_unix(), self.height());
        let delta = self.inner.config.hold_expiry_delta;
        let mut changed = 0;
        for invoice in self
            .inner
            .store
            .due(now, height.saturating_add(delta))
            .await?
        {
            if let Some(next) = rules::time_passes(&invoice, now, height, delta) {
                // Lost to another process: it changed the invoice first, nothing to do.
                if self.persist(&next, invoice.state).await? {
                    changed += 1;
                }
            }
        }
        Ok(changed)
    }

    fn now_unix(&self) -> u64 {
        self.inner.clock.now().as_secs()
    }

    /// The one way an invoice changes: read it, apply what time has done, apply `rule`, and
    /// write the result only if the stored state is still the one read. Another process sharing
    /// the data dir (two sidecar replicas on one dev node) may have changed it meanwhile: then
    /// read again and re-apply, so two actions on one invoice never both take effect.
    async fn transition<T, E: From<StoreError>>(
        &self,
        hash: &PaymentHash,
        rule: impl Fn(Option<&DevInvoice>, u64, u32) -> Result<(rules::Change, T), E>,
    ) -> Result<T, E> {
        let _writing = self.inner.writes.lock().await;
        let delta = self.inner.config.hold_expiry_delta;
        for _ in 0..MAX_CONFLICTS {
            let stored = self.inner.store.get(hash).await?;
            let (now, height) = (self.now_unix(), self.height());
            let aged = stored
                .as_ref()
                .and_then(|invoice| rules::time_passes(invoice, now, height, delta));
            let (change, answer) = match rule(aged.as_ref().or(stored.as_ref()), now, height) {
                Ok(outcome) => outcome,
                Err(refused) => {
                    // A refusal still records what time did (e.g. an expired invoice).
                    if let (Some(stored), Some(aged)) = (&stored, &aged) {
                        self.persist(aged, stored.state).await?;
                    }
                    return Err(refused);
                }
            };
            match (change.or(aged), &stored) {
                (Some(next), Some(stored)) if !self.persist(&next, stored.state).await? => continue,
                _ => return Ok(answer),
            }
        }
        Err(StoreError::Contended(MAX_CONFLICTS).into())
    }

    /// Writes a changed invoice if its stored state is still `expected`, then wakes its
    /// subscribers (persist before announcing). `Ok(false)`: someone changed it first.
    async fn persist(
        &self,
        invoice: &DevInvoice,
        expected: InvoiceState,
    ) -> Result<bool, StoreError> {
        if !self.inner.store.update(invoice, expected).await? {
            return Ok(false);
        }
        lock(&self.inner.unread).remove(&invoice.payment_hash);
        let mut watchers = lock(&self.inner.watchers);
        if let Some(watcher) = watchers.get(&invoice.payment_hash) {
            if watcher.receiver_count() == 0 {
                watchers.remove(&invoice.payment_hash);
            } else {
                watcher.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
        Ok(true)
    }

    /// The invoice now, with what time has done applied.
    async fn current(&self, hash: &PaymentHash) -> Result<DevInvoice, NodeError> {
        let invoice = self.inner.store.get(hash).await?;
        let invoice = invoice.ok_or(NodeError::NotFound)?;
        let delta = self.inner.config.hold_expiry_delta;
        if rules::time_passes(&invoice, self.now_unix(), self.height(), delta).is_none() {
            return Ok(invoice);
        }
        self.transition(hash, |current, _, _| {
            let current = current.ok_or(NodeError::NotFound)?;
            Ok((None, current.clone()))
        })
        .await
    }

    /// The invoice as created here, if nothing has changed it since and time has not either;
    /// taken, so only the first subscriber is served from memory. Another process sharing the
    /// data dir may have changed it: that is seen within `subscription_recheck`, as for a
    /// subscriber who read it a moment earlier.
    fn unread(&self, hash: &PaymentHash) -> Option<DevInvoice> {
        let invoice = lock(&self.inner.unread).remove(hash)?;
        let delta = self.inner.config.hold_expiry_delta;
        rules::time_passes(&invoice, self.now_unix(), self.height(), delta)
            .is_none()
            .then_some(invoice)
    }

    fn watch(&self, hash: PaymentHash) -> Watch {
        let mut watchers = lock(&self.inner.watchers);
        let changes = watchers
            .entry(hash)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        Watch {
            inner: self.inner.clone(),
            hash,
            changes,
        }
    }

    /// Applies a settle/cancel rule to an existing invoice.
    async fn change(
        &self,
        hash: &PaymentHash,
        rule: impl Fn(&DevInvoice) -> Result<rules::Change, NodeError>,
    ) -> Result<(), NodeError> {
        self.transition(hash, |current, _, _| {
            let current = current.ok_or(NodeError::NotFound)?;
            Ok((rule(current)?, ()))
        })
        .await
    }

    async fn create(
        &self,
        hash: PaymentHash,
        preimage: Option<Preimage>,
        request: &InvoiceRequest,
    ) -> Result<CreatedInvoice, NodeError> {
        let cltv_expiry = request.cltv_expiry.unwrap_or(DEFAULT_CLTV_EXPIRY);
        if cltv_expiry < MIN_CLTV_EXPIRY {
            // lnd's wording (invoicesrpc/addinvoice.go).
            return Err(NodeError::Rejected(format!(
                "CLTV delta of {cltv_expiry} must be greater than minimum of {MIN_CLTV_EXPIRY}"
            )));
        }
        let expiry = if request.expiry.is_zero() {
            DEFAULT_INVOICE_EXPIRY
        } else {
            request.expiry
        };
        let now = self.inner.clock.now();
        let payment_request = self
            .inner
            .key
            .sign_invoice(&InvoiceSpec {
                payment_hash: hash,
                amount_msat: request.amount_msat,
                memo: &request.memo,
                created_at: now,
                expiry,
                cltv_expiry,
            })
            .map_err(NodeError::Rejected)?;
        let invoice = DevInvoice {
            payment_hash: hash,
            preimage,
            is_hold: preimage.is_none(),
            state: InvoiceState::Open,
            amount_msat: request.amount_msat,
            amount_paid_msat: 0,
            memo: request.memo.clone(),
            created_at: now.as_secs(),
            expiry,
            cltv_expiry,
            payment_request: payment_request.clone(),
            htlc_expiry_height: None,
            accept_height: None,
        };
        // Written with the others created meanwhile, under the node's write lock (writers
        // queue there rather than in SQLite's busy handler, whose sleeps cost more than the
        // inserts under concurrent minting).
        let unread = invoice.is_hold.then(|| invoice.clone());
        if !self
            .inner
            .new_invoices
            .insert(invoice)
            .await
            .map_err(unavailable)?
        {
            return Err(NodeError::AlreadyExists);
        }
        if let Some(invoice) = unread {
            let mut unread = lock(&self.inner.unread);
            if unread.len() < MAX_UNREAD {
                unread.insert(hash, invoice);
            }
        }
        Ok(CreatedInvoice {
            payment_hash: hash,
            payment_request,
        })
    }
}

#[async_trait::async_trait]
impl Node for DevNode {
    async fn info(&self) -> Result<NodeInfo, NodeError> {
        self.inner.store.ping().await.map_err(unavailable)?;
        Ok(NodeInfo {
            pubkey: self.pubkey(),
            network: "regtest".to_owned(),
            block_height: self.height(),
            hold_expiry_delta: self.inner.config.hold_expiry_delta,
            synced_to_chain: true,
        })
    }

    async fn create_invoice(
        &self,
        preimage: &Preimage,
        request: &InvoiceRequest,
    ) -> Result<CreatedInvoice, NodeError> {
        let hash = preimage.payment_hash();
        self.create(hash, Some(*preimage), request).await
    }

    async fn create_hold_invoice(
        &self,
        hash: &PaymentHash,
        request: &InvoiceRequest,
    ) -> Result<CreatedInvoice, NodeError> {
        self.create(*hash, None, request).await
    }

    async fn settle(&self, preimage: &Preimage) -> Result<(), NodeError> {
        let hash = preimage.payment_hash();
        self.change(&hash, |invoice| rules::settle(invoice, preimage))
            .await
    }

    async fn cancel(&self, hash: &PaymentHash) -> Result<(), NodeError> {
        self.change(hash, rules::cancel).await
    }

    async fn lookup(&self, hash: &PaymentHash) -> Result<InvoiceStatus, NodeError> {
        Ok(self.current(hash).await?.status())
    }

    async fn subscribe(&self, hash: &PaymentHash) -> Result<InvoiceUpdates, NodeError> {
        // Listen before reading, so a change between the read and the first wait is not missed.
        let mut watch = self.watch(*hash);
        let first = match self.unread(hash) {
            Some(invoice) => invoice.status(),
            None => self.current(hash).await?.status(),
        };
        let node = self.clone();
        let hash = *hash;
        let recheck = self.inner.config.subscription_recheck;
        Ok(Box::pin(async_stream::stream! {
            let mut last = first.clone();
            yield Ok(first);
            while !last.state.is_final() {
                // Woken by a change in this process, or re-read after `subscription_recheck` for
                // changes made by another process sharing the data dir.
                let woken = tokio::time::timeout(recheck, watch.changes.changed()).await;
                if matches!(woken, Ok(Err(_))) {
                    return;
                }
                // Boxed: the stream of every watched invoice stays parked here, and an inlined
                // read (a transition when time has passed) would stay allocated with it.
                match Box::pin(node.current(&hash)).await {
                    Ok(invoice) => {
                        let status = invoice.status();
                        if !same_status(&status, &last) {
                            last = status.clone();
                            yield Ok(status);
                        }
                    }
                    Err(e) => {
                        yield Err(e);
                        return;
                    }
                }
            }
        }))
    }

    async fn track_payment(&self, hash: &PaymentHash) -> Result<PaymentOutcome, NodeError> {
        self.tracked(hash).await
    }

    async fn pay(&self, bolt11: &str, _max_fee_msat: u64) -> Result<PaymentOutcome, NodeError> {
        self.pay_outgoing(bolt11).await
    }
}

/// A subscriber's receiver; the last one to go removes the invoice's entry.
struct Watch {
    inner: Arc<Inner>,
    hash: PaymentHash,
    changes: watch::Receiver<u64>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watchers = lock(&self.inner.watchers);
        // `self.changes` still counts: one receiver left means it is ours.
        if watchers
            .get(&self.hash)
            .is_some_and(|w| w.receiver_count() <= 1)
        {
            watchers.remove(&self.hash);
        }
    }
}

fn same_status(a: &InvoiceStatus, b: &InvoiceStatus) -> bool {
    a.state == b.state
        && a.amount_paid_msat == b.amount_paid_msat
        && a.htlc_expiry_height == b.htlc_expiry_height
}

fn unavailable(e: StoreError) -> NodeError {
    NodeError::Unavailable(e.to_string())
}

impl From<StoreError> for NodeError {
    fn from(e: StoreError) -> Self {
        unavailable(e)
    }
}

/// Attempts before a transition gives up on an invoice that keeps changing under it.
const MAX_CONFLICTS: usize = 16;

async fn sweep_forever(node: Weak<Inner>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        // The node was dropped: stop.
        let Some(inner) = node.upgrade() else { return };
        if let Err(e) = (DevNode { inner }).sweep().await {
            tracing::warn!(error = %e, "dev node: sweeping expired invoices failed; retrying");
        }
    }
}

#[cfg(test)]
mod tests;
