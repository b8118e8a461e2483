//! The deposits table: insert (preimage first), compare-and-swap transitions that write the
//! revocations and audit records of the same decision in one database transaction, timer and
//! pending-action scans, and leases that let exactly one replica act on a deposit at a time.

use std::time::Duration;

use sqlx::Row;

use super::deposit_rows::{COLUMNS, NewRow, StoredDeposit, TransitionRow, from_row};
use super::{Store, StoreError, bytes32, dispatch, to_i64, to_u32, to_u64};
use crate::deposit::machine::Transition;
use crate::deposit::{Deposit, DepositState};
use crate::ids::{PaymentHash, Preimage};
use crate::ids::{Timestamp, TokenId};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyOutcome {
    Applied {
        version: i64,
        /// Whether the deposit's token was in the revocation log when the transition
        /// committed (read by the same statement; revocations the transition itself writes
        /// are not included). A long-poll answers from this instead of a read of its own.
        token_revoked: bool,
    },
    /// Someone else wrote the deposit since it was read: read again and re-decide.
    Stale,
}

#[derive(Clone, Debug, Default)]
pub struct DepositFilter {
    pub state: Option<DepositState>,
    pub route_id: Option<String>,
    /// Newest first; at most this many (capped at 1000).
    pub limit: u32,
}

const LIVE: &str = "('awaiting_payment', 'held')";

/// Live deposits (of one client prefix, or all), by whether they are paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveCounts {
    pub held: u64,
    pub unpaid: u64,
}

impl Store {
    /// Stores a new deposit and its preimage. Must return before the invoice is handed out.
    pub async fn insert_deposit(&self, d: &Deposit, preimage: &Preimage) -> Result<(), StoreError> {
        self.insert_deposit_with_invoice(d, preimage, None).await
    }

    /// Stores a new deposit, its preimage and (when the node already created it) its BOLT11, in
    /// one durable commit shared with concurrent inserts (group commit). Returns once that
    /// commit is done: only then may the invoice be handed out.
    pub async fn insert_deposit_with_invoice(
        &self,
        d: &Deposit,
        preimage: &Preimage,
        payment_request: Option<&str>,
    ) -> Result<(), StoreError> {
        let row = NewRow::of(d, preimage, payment_request)?;
        self.inserter.insert(row).await
    }

    /// Records the BOLT11 once the node created the invoice.
    pub async fn set_payment_request(
        &self,
        hash: &PaymentHash,
        payment_request: &str,
    ) -> Result<(), StoreError> {
        dispatch!(self, p => sqlx::query(
            "UPDATE deposits SET payment_request = $1 WHERE payment_hash = $2")
            .bind(payment_request)
            .bind(hash.0.to_vec())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn deposit(&self, hash: &PaymentHash) -> Result<Option<StoredDeposit>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM deposits WHERE payment_hash = $1");
        dispatch!(self, p => {
            let row = sqlx::query(&sql).bind(hash.0.to_vec()).fetch_optional(p).await?;
            row.as_ref().map(from_row).transpose()
        })
    }

    /// Which of `hashes` are no longer awaiting payment (paid, expired or gone): one query for
    /// the whole list, so long-poll waiters cost the store O(1) reads per re-check however many
    /// there are (deposit/waiters.rs). Callers chunk the list (SQLite binds at most 32,766).
    pub async fn no_longer_awaiting(
        &self,
        hashes: &[PaymentHash],
    ) -> Result<Vec<PaymentHash>, StoreError> {
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=hashes.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT payment_hash FROM deposits WHERE state = 'awaiting_payment' \
             AND payment_hash IN ({})",
            placeholders.join(", ")
        );
        let still: std::collections::HashSet<Vec<u8>> = dispatch!(self, p => {
            let mut q = sqlx::query_scalar(&sql);
            for h in hashes {
                q = q.bind(h.0.to_vec());
            }
            q.fetch_all(p).await?.into_iter().collect()
        });
        Ok(hashes
            .iter()
            .filter(|h| !still.contains(h.0.as_slice()))
            .copied()
            .collect())
    }

    pub async fn deposit_by_token(
        &self,
        token: &TokenId,
    ) -> Result<Option<StoredDeposit>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM deposits WHERE token_id = $1");
        dispatch!(self, p => {
            let row = sqlx::query(&sql).bind(token.0.to_vec()).fetch_optional(p).await?;
            row.as_ref().map(from_row).transpose()
        })
    }

    /// Deposits whose token id or payment hash lies in `[low, high]` (a reference the visitor
    /// read off the wall page, see `deposit::reference`), newest first, at most `limit`. Both
    /// columns are indexed (primary key, unique), so this is two range seeks.
    pub async fn deposits_in_reference_range(
        &self,
        low: &[u8; 32],
        high: &[u8; 32],
        limit: u32,
    ) -> Result<Vec<StoredDeposit>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM deposits WHERE (token_id BETWEEN $1 AND $2) \
             OR (payment_hash BETWEEN $1 AND $2) ORDER BY created_at DESC LIMIT $3"
        );
        dispatch!(self, p => {
            let rows = sqlx::query(&sql)
                .bind(low.to_vec())
                .bind(high.to_vec())
                .bind(i64::from(limit.clamp(1, 100)))
                .fetch_all(p)
                .await?;
            rows.iter().map(from_row).collect()
        })
    }

    /// The preimage, only for settling a forfeit. Never log it.
    pub async fn preimage(&self, hash: &PaymentHash) -> Result<Option<Preimage>, StoreError> {
        dispatch!(self, p => {
            let row = sqlx::query("SELECT preimage FROM deposits WHERE payment_hash = $1")
                .bind(hash.0.to_vec())
                .fetch_optional(p)
                .await?;
            match row {
                None => Ok(None),
                Some(row) => Ok(Some(Preimage(bytes32(row.try_get("preimage")?, "deposits", "preimage")?))),
            }
        })
    }

    /// Writes a transition if the deposit is still at `read_version`, together with the
    /// revocations and the audit record it carries, atomically. Node actions are not performed
    /// here: they are now pending on the row, for the lifecycle (or, after a crash, the reconciler).
    /// Committed by the store's writer with the other writes queued meanwhile (group commit):
    /// returns once the commit holding it is done.
    pub async fn apply(
        &self,
        read_version: i64,
        t: &Transition,
        now: Timestamp,
    ) -> Result<ApplyOutcome, StoreError> {
        let row = TransitionRow::of(read_version, t, now)?;
        self.inserter.apply(row).await
    }

    pub async fn list_deposits(
        &self,
        filter: &DepositFilter,
    ) -> Result<Vec<StoredDeposit>, StoreError> {
        let limit = i64::from(filter.limit.clamp(1, 1000));
        let sql = format!(
            "SELECT {COLUMNS} FROM deposits WHERE ($1 IS NULL OR state = $1) \
             AND ($2 IS NULL OR route_id = $2) ORDER BY created_at DESC, payment_hash LIMIT $3"
        );
        let state = filter.state.map(DepositState::as_str);
        dispatch!(self, p => {
            let rows = sqlx::query(&sql)
                .bind(state)
                .bind(filter.route_id.as_deref())
                .bind(limit)
                .fetch_all(p)
                .await?;
            rows.iter().map(from_row).collect()
        })
    }

    /// Deposits whose timer is due at `now`.
    pub async fn due_deposits(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<StoredDeposit>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM deposits WHERE next_due_at IS NOT NULL AND next_due_at <= $1 \
             ORDER BY next_due_at LIMIT $2"
        );
        let now_i = to_i64(now.0, "now")?;
        dispatch!(self, p => {
            let rows = sqlx::query(&sql).bind(now_i).bind(i64::from(limit)).fetch_all(p).await?;
            rows.iter().map(from_row).collect()
        })
    }

    /// Deposits with a node action decided but not confirmed, whose lease is free.
    pub async fn pending_deposits(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<StoredDeposit>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM deposits WHERE pending_action IS NOT NULL \
             AND (lease_until IS NULL OR lease_until < $1) ORDER BY created_at LIMIT $2"
        );
        let now_i = to_i64(now.0, "now")?;
        dispatch!(self, p => {
            let rows = sqlx::query(&sql).bind(now_i).bind(i64::from(limit)).fetch_all(p).await?;
            rows.iter().map(from_row).collect()
        })
    }

    /// Every deposit not settled for good: live states or a pending action. The reconciler
    /// compares each with the node.
    pub async fn unfinished_deposits(&self) -> Result<Vec<StoredDeposit>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM deposits WHERE state IN {LIVE} OR pending_action IS NOT NULL"
        );
        dispatch!(self, p => {
            let rows = sqlx::query(&sql).fetch_all(p).await?;
            rows.iter().map(from_row).collect()
        })
    }

    /// One page of [`Store::unfinished_deposits`] in payment-hash order, after `after`: the
    /// reconciler walks them page by page so its memory does not grow with the number held.
    pub async fn unfinished_deposits_after(
        &self,
        after: Option<&PaymentHash>,
        limit: u32,
    ) -> Result<Vec<StoredDeposit>, StoreError> {
        // Same condition as the `deposits_unfinished` partial index (migration 0002).
        let unfinished = format!("(state IN {LIVE} OR pending_action IS NOT NULL)");
        let limit = i64::from(limit.max(1));
        dispatch!(self, p => {
            let rows = match after {
                None => sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM deposits WHERE {unfinished} \
                     ORDER BY payment_hash LIMIT $1"))
                    .bind(limit)
                    .fetch_all(p)
                    .await?,
                Some(after) => sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM deposits WHERE {unfinished} AND payment_hash > $1 \
                     ORDER BY payment_hash LIMIT $2"))
                    .bind(after.0.to_vec())
                    .bind(limit)
                    .fetch_all(p)
                    .await?,
            };
            rows.iter().map(from_row).collect()
        })
    }

    /// Walks [`Store::unfinished_deposits`] a page of `page_size` at a time, in payment-hash
    /// order: the one way the lifecycle visits them all (reconciler, drain, chain follower), so its
    /// memory does not grow with the number held.
    pub fn unfinished_pages(&self, page_size: u32) -> UnfinishedPages<'_> {
        UnfinishedPages {
            store: self,
            after: None,
            page_size,
        }
    }

    /// Live deposits (awaiting payment or held): all, and those of one client prefix. Two
    /// counts rather than one pass with a CASE per row: both are answered from the
    /// `(state, client_prefix)` index, the second by a seek to the prefix. Runs on every mint.
    pub async fn live_deposit_counts(&self, client_prefix: &str) -> Result<(u64, u64), StoreError> {
        let sql = format!(
            "SELECT (SELECT COUNT(*) FROM deposits WHERE state IN {LIVE}) AS total, \
             (SELECT COUNT(*) FROM deposits WHERE state IN {LIVE} AND client_prefix = $1) AS prefix"
        );
        dispatch!(self, p => {
            let row = sqlx::query(&sql).bind(client_prefix).fetch_one(p).await?;
            let total: i64 = row.try_get("total")?;
            let prefix: i64 = row.try_get("prefix")?;
            Ok((to_u64(total, "deposits", "count")?, to_u64(prefix, "deposits", "count")?))
        })
    }

    /// Held and unpaid deposits in total: two walks of the `(state, client_prefix)` index, so
    /// callers on a hot path cache it (see the lifecycle's `LiveCount`).
    pub async fn global_deposit_counts(&self) -> Result<LiveCounts, StoreError> {
        let sql = "SELECT \
             (SELECT COUNT(*) FROM deposits WHERE state = 'held') AS held, \
             (SELECT COUNT(*) FROM deposits WHERE state = 'awaiting_payment') AS unpaid";
        dispatch!(self, p => {
            let row = sqlx::query(sql).fetch_one(p).await?;
            Ok(LiveCounts {
                held: to_u64(row.try_get("held")?, "deposits", "count")?,
                unpaid: to_u64(row.try_get("unpaid")?, "deposits", "count")?,
            })
        })
    }

    /// Held and unpaid deposits of one client prefix: two seeks in the `(state, client_prefix)`
    /// index, cheap on every mint. On PostgreSQL read in a batch with the other mints' (one
    /// round trip for all of them, count_reads.rs); on SQLite, in the process, at once.
    pub async fn prefix_deposit_counts(
        &self,
        client_prefix: &str,
    ) -> Result<LiveCounts, StoreError> {
        if let Some(batched) = &self.prefix_counts {
            return batched.get(client_prefix).await;
        }
        let sql = "SELECT \
             (SELECT COUNT(*) FROM deposits WHERE state = 'held' AND client_prefix = $1) AS held, \
             (SELECT COUNT(*) FROM deposits WHERE state = 'awaiting_payment' AND client_prefix = $1) \
             AS unpaid";
        dispatch!(self, p => {
            let row = sqlx::query(sql).bind(client_prefix).fetch_one(p).await?;
            Ok(LiveCounts {
                held: to_u64(row.try_get("held")?, "deposits", "count")?,
                unpaid: to_u64(row.try_get("unpaid")?, "deposits", "count")?,
            })
        })
    }

    pub async fn count_by_state(&self) -> Result<Vec<(DepositState, u64)>, StoreError> {
        dispatch!(self, p => {
            let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM deposits GROUP BY state")
                .fetch_all(p)
                .await?;
            let mut out = Vec::new();
            for row in rows {
                let state: String = row.try_get("state")?;
                let n: i64 = row.try_get("n")?;
                if let Some(s) = DepositState::parse(&state) {
                    out.push((s, to_u64(n, "deposits", "count")?));
                }
            }
            Ok(out)
        })
    }

    /// Takes (or renews) the right to act on the node for this deposit until `now + lease`.
    /// True for exactly one caller while the lease runs, whatever the number of replicas.
    pub async fn claim(
        &self,
        hash: &PaymentHash,
        owner: &str,
        now: Timestamp,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let now_i = to_i64(now.0, "now")?;
        let until = to_i64(now.plus(lease).0, "lease_until")?;
        let done = dispatch!(self, p => sqlx::query(
            "UPDATE deposits SET lease_owner = $1, lease_until = $2 WHERE payment_hash = $3 \
             AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < $4)")
            .bind(owner)
            .bind(until)
            .bind(hash.0.to_vec())
            .bind(now_i)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    pub async fn release(&self, hash: &PaymentHash, owner: &str) -> Result<(), StoreError> {
        dispatch!(self, p => sqlx::query(
            "UPDATE deposits SET lease_owner = NULL, lease_until = NULL \
             WHERE payment_hash = $1 AND lease_owner = $2")
            .bind(hash.0.to_vec())
            .bind(owner)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Counts a failed attempt at the pending action (for backoff and alerts).
    pub async fn record_action_attempt(&self, hash: &PaymentHash) -> Result<u32, StoreError> {
        dispatch!(self, p => {
            let row = sqlx::query(
                "UPDATE deposits SET action_attempts = action_attempts + 1 \
                 WHERE payment_hash = $1 RETURNING action_attempts")
                .bind(hash.0.to_vec())
                .fetch_optional(p)
                .await?;
            match row {
                None => Ok(0),
                Some(row) => to_u32(row.try_get("action_attempts")?, "deposits", "action_attempts"),
            }
        })
    }
}

/// A walk over the unfinished deposits, from [`Store::unfinished_pages`]. A deposit whose hash
/// sorts before the walk's position when it becomes unfinished is seen by the next walk.
pub struct UnfinishedPages<'a> {
    store: &'a Store,
    /// The last payment hash seen: the next page starts after it.
    after: Option<PaymentHash>,
    page_size: u32,
}

impl UnfinishedPages<'_> {
    /// The next page; `None` once every unfinished deposit has been seen.
    pub async fn next_page(&mut self) -> Result<Option<Vec<StoredDeposit>>, StoreError> {
        let page = self
            .store
            .unfinished_deposits_after(self.after.as_ref(), self.page_size)
            .await?;
        let Some(last) = page.last() else {
            return Ok(None);
        };
        self.after = Some(last.deposit.payment_hash);
        Ok(Some(page))
    }
}
