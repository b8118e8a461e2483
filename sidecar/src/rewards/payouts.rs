//! The only code that asks the node to pay a reward. A payout is always recorded first (amount
//! reserved, payment hash stored: `Store::start_payout`), then sent once; an outcome that is not
//! known (stream lost, timeout, crash, sidecar restart) is resolved by tracking the payment by
//! its hash, at start-up and periodically, and the invoice is never sent again. A failed payout
//! returns the amount to the balance.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::ids::PaymentHash;
use crate::ids::Timestamp;
use crate::metrics::Metrics;
use crate::node::{Node, NodeError, PaymentOutcome};
use crate::store::{NewPayout, Payout, PayoutResult, Store, StoreError};

/// How long a payout the node has never heard of stays in flight before it is given up as
/// failed. Covers a send that was still on its way to the node (the lnd client gives a send at
/// most its payment timeout plus the call timeout, 70 s by default); past it, nothing can start
/// the payment any more, because a payout older than half of this is never sent.
pub const NEVER_STARTED_GRACE: Duration = Duration::from_secs(300);

/// Most payouts looked at per reconcile pass.
const RECONCILE_BATCH: u32 = 500;

#[derive(Clone)]
pub struct Payouts {
    store: Store,
    node: Arc<dyn Node>,
    metrics: Arc<Metrics>,
    grace: Duration,
}

/// What one reconcile pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PayoutReport {
    pub examined: usize,
    pub resolved: usize,
    pub node_errors: usize,
}

impl Payouts {
    pub fn new(store: Store, node: Arc<dyn Node>, metrics: Arc<Metrics>) -> Payouts {
        Payouts {
            store,
            node,
            metrics,
            grace: NEVER_STARTED_GRACE,
        }
    }

    /// As [`Payouts::new`] with another grace (tests).
    pub fn with_grace(mut self, grace: Duration) -> Payouts {
        self.grace = grace;
        self
    }

    /// Sends a payout recorded by `Store::start_payout` and records its outcome when the node
    /// gives one. Returns the payout's state afterwards (in flight when unknown).
    pub async fn send(&self, payout: &NewPayout) -> Result<Option<Payout>, StoreError> {
        let hash = payout.payment_hash;
        match self.store.payout(&hash).await? {
            Some(p) if p.state == crate::store::PayoutState::InFlight => {
                let age = Timestamp::now().0.saturating_sub(p.created_at.0);
                if age > self.grace.as_secs() / 2 {
                    // The reconciler may give it up any moment now: sending could pay twice.
                    tracing::warn!(payment_hash = %hex::encode(hash.0), age, "reward payout too old to send; left to the reconciler");
                    return self.store.payout(&hash).await;
                }
            }
            _ => return self.store.payout(&hash).await,
        }
        let started = Instant::now();
        let outcome = self
            .node
            .pay(&payout.payment_request, payout.fee_limit_msat)
            .await;
        self.metrics.observe_node_call("pay", started.elapsed());
        match outcome {
            Ok(PaymentOutcome::InFlight) => self.metrics.reward_payout("unknown"),
            Ok(outcome) => {
                self.record(&hash, outcome).await?;
            }
            Err(e) => {
                // Refused or unreachable: whether lnd started the payment is for tracking to say.
                tracing::warn!(payment_hash = %hex::encode(hash.0), error = %e, "reward payout: node error; tracking will resolve it");
                self.metrics.reward_payout("unknown");
            }
        }
        self.store.payout(&hash).await
    }

    /// Records a final outcome; an in-flight one is left for tracking.
    async fn record(
        &self,
        hash: &PaymentHash,
        outcome: PaymentOutcome,
    ) -> Result<bool, StoreError> {
        let result = match outcome {
            PaymentOutcome::Succeeded { fee_msat, .. } => PayoutResult::Succeeded { fee_msat },
            PaymentOutcome::Failed { reason } => PayoutResult::Failed { reason },
            PaymentOutcome::InFlight => return Ok(false),
        };
        self.finish(hash, result).await
    }

    async fn finish(&self, hash: &PaymentHash, result: PayoutResult) -> Result<bool, StoreError> {
        let Some(payout) = self.store.payout(hash).await? else {
            return Ok(false);
        };
        let ended = self
            .store
            .finish_payout(hash, &result, Timestamp::now())
            .await?;
        if ended {
            match &result {
                PayoutResult::Succeeded { fee_msat } => {
                    self.metrics.reward_payout("succeeded");
                    self.metrics.reward_paid_msat.inc_by(payout.amount_msat);
                    tracing::info!(payment_hash = %hex::encode(hash.0), amount_msat = payout.amount_msat, fee_msat, "reward paid");
                }
                PayoutResult::Failed { reason } => {
                    self.metrics.reward_payout("failed");
                    tracing::warn!(payment_hash = %hex::encode(hash.0), amount_msat = payout.amount_msat, %reason, "reward payout failed; amount returned to the balance");
                }
            }
        }
        Ok(ended)
    }

    /// Tracks every in-flight payout once and records the outcomes the node knows.
    pub async fn reconcile(&self) -> Result<PayoutReport, StoreError> {
        let mut report = PayoutReport::default();
        for payout in self.store.payouts_in_flight(RECONCILE_BATCH).await? {
            report.examined += 1;
            let hash = payout.payment_hash;
            let started = Instant::now();
            let tracked = self.node.track_payment(&hash).await;
            self.metrics
                .observe_node_call("track_payment", started.elapsed());
            let ended = match tracked {
                Ok(outcome) => self.record(&hash, outcome).await?,
                Err(NodeError::NotFound) => {
                    let age = Timestamp::now().0.saturating_sub(payout.created_at.0);
                    if age >= self.grace.as_secs() {
                        let reason = "the node never started the payment".to_owned();
                        self.finish(&hash, PayoutResult::Failed { reason }).await?
                    } else {
                        false
                    }
                }
                Err(e) => {
                    report.node_errors += 1;
                    tracing::warn!(payment_hash = %hex::encode(hash.0), error = %e, "reward payout: tracking failed; will retry");
                    false
                }
            };
            if ended {
                report.resolved += 1;
            }
        }
        Ok(report)
    }

    /// Reconciles every `every` until `stopped`.
    pub async fn run(self, every: Duration, mut stopped: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stopped.changed() => return,
            }
            if let Err(e) = self.reconcile().await {
                tracing::error!(error = %e, "reward payout reconcile failed");
            }
        }
    }
}
