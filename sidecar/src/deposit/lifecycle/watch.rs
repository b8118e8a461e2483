//! Following the node: one task per live invoice on its stream (re-subscribing and looking up
//! when the stream dies), the event each node status means, and the chain view (block height,
//! auto-cancel margin) the hold deadline is computed from.

use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::{ChainView, Lifecycle, LifecycleError, lock};
use crate::deposit::machine::Event;
use crate::deposit::{Deposit, DepositState};
use crate::ids::PaymentHash;
use crate::node::{InvoiceState, InvoiceStatus, NodeError};

impl Lifecycle {
    /// Starts following the invoice's stream unless this replica already does.
    pub fn watch(&self, hash: PaymentHash) {
        if !lock(&self.inner.watching).insert(hash) {
            return;
        }
        let lifecycle = self.clone();
        tokio::spawn(async move {
            lifecycle.follow(hash).await;
            lock(&lifecycle.inner.watching).remove(&hash);
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
    pub(super) async fn status_event(&self, status: &InvoiceStatus) -> Option<Event> {
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

    pub(super) async fn refresh_chain(&self) -> Result<ChainView, LifecycleError> {
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
}

/// What "the node has no such invoice" means for a deposit: it was never created (a deposit
/// stored before its invoice, by an older version) or the node lost it. Either way nothing is
/// held: an unpaid deposit ends, a pending action cannot be carried out.
pub(super) fn missing_event(d: &Deposit) -> Option<Event> {
    match (d.state, d.pending) {
        (DepositState::AwaitingPayment, _) => Some(Event::NodeCanceled),
        (_, Some(action)) => Some(Event::ActionImpossible(action)),
        _ => None,
    }
}
