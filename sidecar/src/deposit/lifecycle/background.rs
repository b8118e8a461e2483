//! The lifecycle's own loops: the sweeper (timers and retries), the reconciler (every unfinished
//! deposit against the node, at start-up and periodically) and the chain follower.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::watch::missing_event;
use super::{Lifecycle, LifecycleError, lock};
use crate::deposit::DepositState;
use crate::deposit::machine::{self, Event};
use crate::node::NodeError;
use crate::store::StoredDeposit;

impl Lifecycle {
    /// One pass of timers and retries: ticks every due deposit, retries pending node actions
    /// whose backoff has passed.
    pub async fn sweep(&self) -> Result<(), LifecycleError> {
        // While the operator drains, give back whatever became live since the last pass (a
        // replica that minted before it saw the flag, a payment that arrived meanwhile).
        // A failure here must not hold up the timers below.
        match self.draining().await {
            Ok(Some(_)) => {
                if let Err(e) = self.drain_pass().await {
                    tracing::warn!(error = %e, "drain pass failed; the next sweep retries");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "reading the drain flag failed"),
        }
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
    pub async fn reconcile(&self) -> Result<ReconcileReport, LifecycleError> {
        let mut report = ReconcileReport::default();
        let _ = self.refresh_chain().await;
        let block_height = self.block_height();
        let mut pages = self.inner.store.unfinished_pages(PAGE);
        while let Some(page) = pages.next_page().await? {
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
        F: Fn(Lifecycle) -> Fut + Send + 'static,
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
        let mut pages = self.inner.store.unfinished_pages(PAGE);
        // A store error ends this pass; the next block tries again.
        while let Ok(Some(page)) = pages.next_page().await {
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
}

/// Unfinished deposits read per page by the reconciler and the chain follower.
pub(super) const PAGE: u32 = 500;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    pub examined: u32,
    pub node_errors: u32,
}
