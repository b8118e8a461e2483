//! What callers ask of the lifecycle: open a deposit, feed it an event, leave, carry out its pending
//! node action. Every state change goes through `apply_event` (decide, then compare-and-swap).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    Changed, Inner, Lifecycle, LifecycleError, LiveCount, NewDeposit, OpenedDeposit, Stepped, lock,
    random32,
};
use crate::deposit::machine::{self, Event};
use crate::deposit::{Deposit, DepositState, DepositTiming, NodeAction};
use crate::ids::{PaymentHash, Preimage};
use crate::ids::{Timestamp, TokenId};
use crate::metrics::{ModeLabel, OutcomeLabel};
use crate::node::{InvoiceRequest, NodeError};
use crate::store::{ApplyOutcome, LiveCounts, StoreError};

/// How long a count of live deposits is reused for the global limit.
pub(super) const LIVE_COUNT_FOR: Duration = Duration::from_millis(250);

impl Lifecycle {
    /// Opens a deposit: limits, a fresh preimage, the hold invoice on the node, then deposit,
    /// preimage and invoice stored in one durable commit, then a watcher. The invoice only
    /// leaves this function after the preimage is on disk.
    pub async fn open_deposit(
        &self,
        new: NewDeposit,
        now: Timestamp,
    ) -> Result<OpenedDeposit, LifecycleError> {
        let s = &self.inner.settings;
        let live = self.live_total().await?;
        let in_prefix = self
            .inner
            .store
            .prefix_deposit_counts(&new.client_prefix)
            .await?;
        // Only held deposits take HTLC slots and liquidity; unpaid ones have their own caps, so
        // a flood of unpaid challenges cannot use up the places of visitors who pay — in total,
        // and for a network that real visitors share (an office, a CGNAT): unpaid invoices cost
        // nothing to request. The first limit reached is the one reported.
        let limits = [
            ("held in total", live.held, s.max_held_deposits),
            (
                "awaiting payment in total",
                live.unpaid,
                s.max_unpaid_deposits,
            ),
            (
                "held for this client network",
                in_prefix.held,
                s.max_held_deposits_per_prefix,
            ),
            (
                "awaiting payment for this client network",
                in_prefix.unpaid,
                s.max_unpaid_deposits_per_prefix,
            ),
        ];
        if let Some(&(scope, live, max)) = limits
            .iter()
            .find(|(_, live, max)| *live >= u64::from(*max))
        {
            return Err(LifecycleError::LimitReached { scope, live, max });
        }
        let preimage = Preimage(random32()?);
        let payment_hash = preimage.payment_hash();
        let deposit = Deposit {
            payment_hash,
            token_id: self.new_token_id()?,
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
    async fn live_total(&self) -> Result<LiveCounts, LifecycleError> {
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
    pub async fn event(&self, hash: &PaymentHash, event: Event) -> Result<Stepped, LifecycleError> {
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
    pub async fn leave(&self, hash: &PaymentHash) -> Result<Stepped, LifecycleError> {
        let grace = self.inner.settings.leave_grace;
        let stepped = self.event(hash, Event::LeaveRequested { grace }).await?;
        if let Stepped::Changed(d) = &stepped
            && d.hold.is_some_and(|h| h.leaving.is_some())
        {
            let lifecycle = self.clone();
            let hash = *hash;
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                if let Err(e) = lifecycle.event(&hash, Event::VisitorLeft).await {
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
    ) -> Result<Stepped, LifecycleError> {
        let stored = self
            .inner
            .store
            .deposit_by_token(token)
            .await?
            .ok_or(LifecycleError::NotFound)?;
        self.event(&stored.deposit.payment_hash, event).await
    }

    pub(super) async fn apply_event(
        &self,
        hash: &PaymentHash,
        event: Event,
    ) -> Result<Stepped, LifecycleError> {
        for _ in 0..8 {
            let stored = self
                .inner
                .store
                .deposit(hash)
                .await?
                .ok_or(LifecycleError::NotFound)?;
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
                ApplyOutcome::Applied {
                    version,
                    token_revoked,
                } => {
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
                    let revokes_own = transition.actions.iter().any(
                        |a| matches!(a, machine::Action::Revoke(t) if *t == transition.next.token_id),
                    );
                    let _ = self.inner.changes.send(Changed {
                        deposit: Arc::new(transition.next.clone()),
                        version,
                        token_revoked: token_revoked || revokes_own,
                    });
                    return Ok(Stepped::Changed(transition.next));
                }
            }
        }
        Err(LifecycleError::Contended)
    }

    /// Performs the deposit's pending node action if this replica can take the lease.
    pub async fn perform(&self, hash: &PaymentHash) -> Result<(), LifecycleError> {
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

    async fn perform_claimed(&self, hash: &PaymentHash) -> Result<(), LifecycleError> {
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
