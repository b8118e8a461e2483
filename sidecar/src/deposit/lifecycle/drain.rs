//! The operator's drain (`admin drain`): minting stops on every replica (a row in the store the
//! minter checks), and every live deposit goes back through the machine's `Drain` event — the
//! same persisted decision, revocation, audit record and retried cancel as a leave. It must never
//! drop a cancel the node refused: those stay pending and the sweeper retries them, and while the
//! drain is on every replica's sweeper repeats the pass, so a deposit minted by a replica that
//! had not seen the flag yet, or paid during the drain, is given back too.

use std::time::{Duration, Instant};

use super::{Lifecycle, LifecycleError, Stepped, lock};
use crate::deposit::machine::Event;
use crate::deposit::{DepositState, NodeAction};
use crate::ids::{PaymentHash, Timestamp};

/// How long a replica trusts its last reading of the drain flag before minting. A mint in that
/// window is still given back by the next sweep (every second), so this bounds a visitor's
/// wasted payment attempt, not the money.
pub(super) const DRAIN_RECHECK: Duration = Duration::from_secs(1);

/// What a drain pass did and what is left.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub started_at: Option<Timestamp>,
    /// Held deposits refunded by this pass, and their amount.
    pub refunded_held: u32,
    pub refunded_msat: u64,
    /// Unpaid invoices cancelled by this pass (nothing was held; they can no longer be paid).
    pub cancelled_unpaid: u32,
    /// Deposits whose event failed (the store refused): the next pass (every sweep) retries.
    pub failures: Vec<DrainFailure>,
    /// Decided, the node has not confirmed yet (the sweeper retries with backoff).
    pub pending: Vec<PendingAction>,
    /// Still awaiting payment or held after the pass (a concurrent mint or payment; the next
    /// sweep takes them).
    pub still_live: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrainFailure {
    pub payment_hash: PaymentHash,
    pub error: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingAction {
    pub payment_hash: PaymentHash,
    pub state: DepositState,
    pub action: NodeAction,
    pub amount_msat: u64,
    pub attempts: u32,
}

impl Lifecycle {
    /// Turns the drain on for every replica sharing the store, then gives back everything live.
    pub async fn drain(&self) -> Result<DrainReport, LifecycleError> {
        let started_at = self.inner.store.start_drain(self.now()).await?;
        *lock(&self.inner.drain) = Some((Some(started_at), Instant::now()));
        let mut report = self.drain_pass().await?;
        report.started_at = Some(started_at);
        Ok(report)
    }

    /// Ends the drain: minting resumes (other replicas within [`DRAIN_RECHECK`]). True when a
    /// drain was on.
    pub async fn undrain(&self) -> Result<bool, LifecycleError> {
        let was_on = self.inner.store.end_drain().await?;
        *lock(&self.inner.drain) = Some((None, Instant::now()));
        Ok(was_on)
    }

    /// Whether minting is stopped: the store's flag, read at most every [`DRAIN_RECHECK`].
    pub async fn draining(&self) -> Result<Option<Timestamp>, LifecycleError> {
        if let Some((started, at)) = *lock(&self.inner.drain)
            && at.elapsed() < DRAIN_RECHECK
        {
            return Ok(started);
        }
        let read_at = Instant::now();
        let started = self.inner.store.drain_started().await?;
        *lock(&self.inner.drain) = Some((started, read_at));
        Ok(started)
    }

    /// The state of a drain without acting: what is still live or pending.
    pub async fn drain_status(&self) -> Result<DrainReport, LifecycleError> {
        let mut report = DrainReport {
            started_at: self.inner.store.drain_started().await?,
            ..DrainReport::default()
        };
        self.left_over(&mut report).await?;
        Ok(report)
    }

    /// One pass: every live deposit gets the `Drain` event (persisted, then the cancel sent;
    /// a refused cancel stays pending for the sweeper).
    pub async fn drain_pass(&self) -> Result<DrainReport, LifecycleError> {
        let mut report = DrainReport::default();
        let mut pages = self.inner.store.unfinished_pages(super::background::PAGE);
        while let Some(page) = pages.next_page().await? {
            for stored in page.iter().filter(|s| !s.deposit.state.is_final()) {
                let hash = stored.deposit.payment_hash;
                match self.event(&hash, Event::Drain).await {
                    Ok(Stepped::Changed(d)) => match d.state {
                        DepositState::Refunded => {
                            report.refunded_held += 1;
                            report.refunded_msat += d.amount_msat;
                        }
                        _ => report.cancelled_unpaid += 1,
                    },
                    // Decided by someone else meanwhile (a forfeit, the visitor's leave).
                    Ok(Stepped::Unchanged(..)) => {}
                    Err(e) => report.failures.push(DrainFailure {
                        payment_hash: hash,
                        error: e.to_string(),
                    }),
                }
            }
        }
        if report.refunded_held + report.cancelled_unpaid > 0 || !report.failures.is_empty() {
            tracing::info!(
                refunded_held = report.refunded_held,
                refunded_sat = report.refunded_msat / 1000,
                cancelled_unpaid = report.cancelled_unpaid,
                failures = report.failures.len(),
                "drain pass"
            );
        }
        self.left_over(&mut report).await?;
        Ok(report)
    }

    async fn left_over(&self, report: &mut DrainReport) -> Result<(), LifecycleError> {
        let mut pages = self.inner.store.unfinished_pages(super::background::PAGE);
        while let Some(page) = pages.next_page().await? {
            for s in page {
                if !s.deposit.state.is_final() {
                    report.still_live += 1;
                }
                if let Some(action) = s.deposit.pending {
                    report.pending.push(PendingAction {
                        payment_hash: s.deposit.payment_hash,
                        state: s.deposit.state,
                        action,
                        amount_msat: s.deposit.amount_msat,
                        attempts: s.action_attempts,
                    });
                }
            }
        }
        Ok(())
    }
}
