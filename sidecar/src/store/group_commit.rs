//! Group commit of the deposit lifecycle's writes: new deposits and transitions are written by
//! one task, many per transaction, and each caller is answered only after the commit that holds
//! its write. It must never answer `Ok` for a write that is not committed, nor let one caller's
//! bad write commit or fail silently with another's.
//!
//! Why: a commit costs one WAL fsync (SQLite `synchronous=FULL`) or one WAL flush (PostgreSQL),
//! and SQLite admits one writer at a time (the others sleep in its busy handler, up to 100 ms a
//! try, so a burst of concurrent transactions is answered late and out of order). One commit per
//! batch keeps every preimage durable before its invoice is handed out, and every transition
//! durable before it is acted on or reported, while paying that cost once per batch instead of
//! once per visitor. There is no coalescing timer: the writer takes whatever queued while the
//! previous commit ran, so an idle sidecar adds no latency and a busy one batches by itself.

use sqlx::Row;
use std::sync::Arc;

use super::deposit_rows::{
    INSERT_AUDIT, INSERT_UNNEST, NewRow, TransitionRow, UPDATE_DEPOSIT, bind_row, bind_update,
    insert_rows,
};
use super::deposits::ApplyOutcome;
use super::{Pool, StoreError, dispatch};
use crate::batch::{Batches, Failed};

/// Most rows in one transaction: bounds the time a batch holds the write lock.
const MAX_BATCH: usize = 256;
/// Writer tasks on PostgreSQL (each holds a pool connection while it writes).
const POSTGRES_WRITERS: usize = 4;
/// Callers queued beyond the batch being written; more wait for room (backpressure).
const QUEUE: usize = 4096;

/// One caller's write.
enum Write {
    Insert(NewRow),
    Apply(TransitionRow),
}

/// What a committed write did.
enum Written {
    Inserted,
    Applied(ApplyOutcome),
}

/// The handle the store keeps; the writer tasks end when the last handle is dropped.
#[derive(Clone, Debug)]
pub(super) struct Inserter {
    queued: Batches<Write, Result<Written, StoreError>>,
    /// PostgreSQL: transitions are written at once, each in its own transaction, by this.
    direct: Option<Arc<Writer>>,
}

impl Inserter {
    /// Starts the writer tasks on the current tokio runtime: one on SQLite (one writer at a
    /// time is all it admits), [`POSTGRES_WRITERS`] on PostgreSQL, so that a batch collects and
    /// commits while the previous one waits for its WAL flush (the flushes of concurrent commits
    /// are shared by PostgreSQL's own group commit).
    pub(super) fn start(pool: Pool) -> Inserter {
        let writers = match pool {
            Pool::Sqlite(_) => 1,
            Pool::Postgres(_) => POSTGRES_WRITERS,
        };
        let (insert_revocation, revocation_lock) = super::records::revocation_sql(&pool);
        let writer = Arc::new(Writer {
            pool: pool.clone(),
            insert_revocation,
            revocation_lock,
        });
        let batch_writer = writer.clone();
        let queued = Batches::start(writers, MAX_BATCH, QUEUE, move |writes: Vec<Write>| {
            let writer = batch_writer.clone();
            async move { writer.write_queued(writes).await }
        });
        let direct = matches!(pool, Pool::Postgres(_)).then_some(writer);
        Inserter { queued, direct }
    }

    async fn write(&self, write: Write) -> Result<Written, StoreError> {
        // A batch that failed rolled back: none of its writes happened, every caller learns
        // it. A writer gone mid-batch (runtime shut down) leaves the write's fate unknown to
        // us, so that is reported as a failure too (the caller acts on nothing).
        self.queued
            .call(write)
            .await
            .map_err(|failed| match failed {
                Failed::Batch { rows, message } => StoreError::BatchFailed { rows, message },
                Failed::Gone => StoreError::WriterGone,
            })?
    }

    /// Inserts one row; returns once the transaction holding it committed (or failed).
    pub(super) async fn insert(&self, row: NewRow) -> Result<(), StoreError> {
        match self.write(Write::Insert(row)).await? {
            Written::Inserted => Ok(()),
            Written::Applied(_) => Err(StoreError::WriterGone),
        }
    }

    /// Applies one transition (compare-and-swap on its version); returns once the transaction
    /// holding it committed (or failed). On SQLite through the writer, batched with the others
    /// queued; on PostgreSQL in a transaction of its own at once: its writers run in parallel,
    /// and one writer task executing a burst of transitions one statement at a time answered
    /// 1,000 held payments with a p99 of 740 ms instead of 94 ms (bench/RESULTS.md).
    pub(super) async fn apply(&self, row: TransitionRow) -> Result<ApplyOutcome, StoreError> {
        let written = match &self.direct {
            Some(writer) => writer
                .write(&[], &[&row])
                .await?
                .pop()
                .unwrap_or(Err(StoreError::WriterGone))?,
            None => self.write(Write::Apply(row)).await?,
        };
        match written {
            Written::Applied(outcome) => Ok(outcome),
            Written::Inserted => Err(StoreError::WriterGone),
        }
    }
}

#[derive(Debug)]
struct Writer {
    pool: Pool,
    insert_revocation: &'static str,
    revocation_lock: Option<&'static str>,
}

impl Writer {
    /// A batch of queued writes in one commit; the outcomes in the order of `writes`.
    async fn write_queued(
        &self,
        writes: Vec<Write>,
    ) -> Result<Vec<Result<Written, StoreError>>, StoreError> {
        let mut rows: Vec<&NewRow> = Vec::new();
        let mut transitions: Vec<&TransitionRow> = Vec::new();
        for w in &writes {
            match w {
                Write::Insert(row) => rows.push(row),
                Write::Apply(row) => transitions.push(row),
            }
        }
        let mut outcomes = self
            .write(&rows, &transitions)
            .await
            .inspect_err(|e| {
                tracing::warn!(error = %e, rows = writes.len(), "a group commit of deposit writes failed");
            })?;
        // `write` answers the inserts first, then the transitions: back to the queue's order.
        let mut applied = outcomes
            .split_off(rows.len().min(outcomes.len()))
            .into_iter();
        let mut inserted = outcomes.into_iter();
        Ok(writes
            .iter()
            .map(|w| {
                match w {
                    Write::Insert(_) => inserted.next(),
                    Write::Apply(_) => applied.next(),
                }
                .unwrap_or(Err(StoreError::WriterGone))
            })
            .collect())
    }

    /// One transaction for all `rows` and `transitions`; the outcomes in that order. New rows
    /// are written by multi-row statements of up to [`MAX_BATCH`] rows (a batch of 37 is three
    /// statements: 32, 4 and 1 rows), so they cost a handful of round trips rather than one per
    /// row, and the few statement texts stay prepared. A row whose payment hash or token id
    /// exists is skipped (`ON CONFLICT DO NOTHING`) and answered `Duplicate` without failing the
    /// others; a transition whose deposit changed since it was read is answered `Stale` and
    /// writes nothing; any other error rolls the whole batch back.
    async fn write(
        &self,
        rows: &[&NewRow],
        transitions: &[&TransitionRow],
    ) -> Result<Vec<Result<Written, StoreError>>, StoreError> {
        if let Pool::Postgres(p) = &self.pool {
            if transitions.is_empty() {
                return insert_unnest(p, rows).await;
            }
            if let [t] = transitions
                && rows.is_empty()
                && t.revoked.is_empty()
                && t.audit.is_none()
            {
                return update_alone(p, t).await.map(|outcome| vec![Ok(outcome)]);
            }
        }
        dispatch!(self, p => {
            let mut tx = p.begin().await?;
            let mut outcomes = Vec::with_capacity(rows.len() + transitions.len());
            let mut rest = rows;
            // The table ends with the 1-row statement, so every non-empty rest finds one.
            while let Some((n, sql)) = statements().iter().find(|(n, _)| *n <= rest.len()) {
                let (chunk, after) = rest.split_at(*n);
                let mut query = sqlx::query(sql);
                for row in chunk {
                    query = bind_row!(query, row);
                }
                let inserted = query.fetch_all(&mut *tx).await?;
                outcomes.extend(inserted_or_duplicate(chunk, &inserted)?);
                rest = after;
            }
            let mut locked = false;
            for t in transitions {
                let updated = bind_update!(sqlx::query(UPDATE_DEPOSIT), t)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(updated) = updated else {
                    outcomes.push(Ok(Written::Applied(ApplyOutcome::Stale)));
                    continue;
                };
                for token in &t.revoked {
                    if let Some(lock) = self.revocation_lock.filter(|_| !locked) {
                        sqlx::query(lock).execute(&mut *tx).await?;
                        locked = true;
                    }
                    sqlx::query(self.insert_revocation)
                        .bind(token)
                        .bind(t.revoke_reason)
                        .bind(t.now)
                        .execute(&mut *tx)
                        .await?;
                }
                if let Some(audit) = &t.audit {
                    sqlx::query(INSERT_AUDIT)
                        .bind(&t.payment_hash)
                        .bind(&audit.route_id)
                        .bind(&audit.client_prefix)
                        .bind(audit.outcome)
                        .bind(audit.trigger)
                        .bind(audit.amount_msat)
                        .bind(audit.at)
                        .execute(&mut *tx)
                        .await?;
                }
                outcomes.push(Ok(Written::Applied(applied(&updated)?)));
            }
            tx.commit().await?;
            Ok(outcomes)
        })
    }
}

/// PostgreSQL: a batch of new deposits in one statement ([`INSERT_UNNEST`]: each column bound
/// as one array), outside an explicit transaction. One round trip per batch, where a
/// transaction costs BEGIN, a statement per power-of-two chunk and COMMIT, each waited for (the
/// profile in bench/RESULTS.md "PostgreSQL minting"); and one prepared statement whatever the
/// batch size. A single statement is atomic, and PostgreSQL answers it only after its commit
/// (with `synchronous_commit` on, the default, after the WAL flush): every row or none is
/// durable before any caller is answered, as with the transaction.
async fn insert_unnest(
    p: &sqlx::PgPool,
    rows: &[&NewRow],
) -> Result<Vec<Result<Written, StoreError>>, StoreError> {
    fn column<'r, T>(rows: &[&'r NewRow], f: impl Fn(&'r NewRow) -> T) -> Vec<T> {
        rows.iter().map(|r| f(r)).collect()
    }
    let inserted = sqlx::query(INSERT_UNNEST)
        .bind(column(rows, |r| r.payment_hash.as_slice()))
        .bind(column(rows, |r| r.token_id.as_slice()))
        .bind(column(rows, |r| r.preimage.as_slice()))
        .bind(column(rows, |r| r.route_id.as_str()))
        .bind(column(rows, |r| r.client_prefix.as_str()))
        .bind(column(rows, |r| r.amount_msat))
        .bind(column(rows, |r| r.state))
        .bind(column(rows, |r| r.created_at))
        .bind(column(rows, |r| r.invoice_expires_at))
        .bind(column(rows, |r| r.idle_timeout_s))
        .bind(column(rows, |r| r.session_cap_s))
        .bind(column(rows, |r| r.safety_margin_blocks))
        .bind(column(rows, |r| r.block_interval_s))
        .bind(column(rows, |r| r.next_due_at))
        .bind(column(rows, |r| r.pending_action))
        .bind(column(rows, |r| r.payment_request.as_deref()))
        .fetch_all(p)
        .await?;
    inserted_or_duplicate(rows, &inserted)
}

/// PostgreSQL: a transition that writes nothing but the deposit's row (a payment held, an
/// activity, a node action done: most of them) as one statement outside an explicit
/// transaction: one round trip instead of BEGIN, UPDATE and COMMIT, each a backend wake-up on
/// a busy machine (bench/RESULTS.md "Long-poll wake-up"). Atomic and answered only after its
/// commit, as [`insert_unnest`]; a transition that also revokes or audits keeps its
/// transaction, so its writes commit together.
async fn update_alone(p: &sqlx::PgPool, t: &TransitionRow) -> Result<Written, StoreError> {
    let updated = bind_update!(sqlx::query(UPDATE_DEPOSIT), t)
        .fetch_optional(p)
        .await?;
    Ok(Written::Applied(match updated {
        Some(row) => applied(&row)?,
        None => ApplyOutcome::Stale,
    }))
}

/// The outcome of an applied transition from the row [`UPDATE_DEPOSIT`] returned.
fn applied<R: Row>(row: &R) -> Result<ApplyOutcome, StoreError>
where
    usize: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(ApplyOutcome::Applied {
        version: row.try_get(0)?,
        token_revoked: row.try_get(1)?,
    })
}

/// Each row's outcome, from the `(payment_hash, token_id)` pairs an insert returned: each
/// inserted row comes back once; a row not among them was skipped as a duplicate.
fn inserted_or_duplicate<R: Row>(
    rows: &[&NewRow],
    returned: &[R],
) -> Result<Vec<Result<Written, StoreError>>, StoreError>
where
    usize: sqlx::ColumnIndex<R>,
    Vec<u8>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let mut inserted = returned
        .iter()
        .map(|r| Ok((r.try_get::<Vec<u8>, _>(0)?, r.try_get::<Vec<u8>, _>(1)?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(rows
        .iter()
        .map(|row| {
            let at = inserted
                .iter()
                .position(|(hash, token)| *hash == row.payment_hash && *token == row.token_id);
            match at {
                Some(at) => {
                    inserted.swap_remove(at);
                    Ok(Written::Inserted)
                }
                None => Err(StoreError::Duplicate),
            }
        })
        .collect())
}

/// The insert statements, by rows per statement: powers of two from [`MAX_BATCH`] down to 1.
fn statements() -> &'static [(usize, String)] {
    static STATEMENTS: std::sync::OnceLock<Vec<(usize, String)>> = std::sync::OnceLock::new();
    STATEMENTS.get_or_init(|| {
        std::iter::successors(Some(MAX_BATCH), |n| (*n > 1).then_some(n / 2))
            .map(|n| (n, insert_rows(n)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_written_in_few_statements_of_known_sizes() {
        let sizes: Vec<usize> = statements().iter().map(|(n, _)| *n).collect();
        assert_eq!(sizes, [256, 128, 64, 32, 16, 8, 4, 2, 1]);
        for (n, sql) in statements() {
            assert_eq!(sql.matches("), (").count() + 1, *n, "{n} rows");
            assert!(
                sql.contains(&format!("${},", 16 * n)),
                "{n} rows bind {} values",
                16 * n
            );
            assert!(!sql.contains(&format!("${},", 16 * n + 1)));
        }
    }
}
