//! Group commit of new deposits: concurrent inserts are written by one task, many rows per
//! transaction, and each caller is answered only after the commit that holds its row. It must
//! never answer `Ok` for a row that is not committed, nor let one caller's bad row commit or
//! fail silently with another's.
//!
//! Why: a commit costs one WAL fsync (SQLite `synchronous=FULL`) or one WAL flush (PostgreSQL),
//! and SQLite admits one writer at a time (the others sleep in the busy handler). One commit per
//! batch keeps every preimage durable before its invoice is handed out while paying that cost
//! once per batch instead of once per visitor. There is no coalescing timer: the writer takes
//! whatever queued while the previous commit ran, so an idle sidecar adds no latency and a busy
//! one batches by itself.

use tokio::sync::{mpsc, oneshot};

use super::deposits::{NewRow, insert_query};
use super::{Pool, StoreError, dispatch, is_unique_violation};

/// Most rows in one transaction: bounds the time a batch holds the write lock.
const MAX_BATCH: usize = 256;
/// Callers queued beyond the batch being written; more wait for room (backpressure).
const QUEUE: usize = 4096;

struct Job {
    row: NewRow,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// The handle the store keeps; the writer task ends when the last handle is dropped.
#[derive(Clone, Debug)]
pub(super) struct Inserter {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl Inserter {
    /// Starts the writer task on the current tokio runtime.
    pub(super) fn start(pool: Pool) -> Inserter {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(Writer { pool }.run(queue));
        Inserter { jobs }
    }

    /// Inserts one row; returns once the transaction holding it committed (or failed).
    pub(super) async fn insert(&self, row: NewRow) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job { row, done })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        // The writer drops the sender only if its task died mid-batch (runtime shut down):
        // the row's fate is unknown to us, so report failure (the caller hands nothing out).
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

struct Writer {
    pool: Pool,
}

impl Writer {
    async fn run(self, mut queue: mpsc::Receiver<Job>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let rows: Vec<&NewRow> = batch.iter().map(|j| &j.row).collect();
            match self.write(&rows).await {
                Ok(outcomes) => {
                    for (job, outcome) in batch.drain(..).zip(outcomes) {
                        let _ = job.done.send(outcome);
                    }
                }
                Err(e) => {
                    // Rolled back: none of these rows exists. Every caller learns it.
                    tracing::warn!(error = %e, rows = batch.len(), "a group commit of deposits failed");
                    let (message, rows) = (e.to_string(), batch.len());
                    for job in batch.drain(..) {
                        let _ = job.done.send(Err(StoreError::BatchFailed {
                            rows,
                            message: message.clone(),
                        }));
                    }
                }
            }
        }
    }

    /// One transaction for all `rows`. A row whose payment hash or token id exists is skipped
    /// (`ON CONFLICT DO NOTHING`) and answered `Duplicate` without failing the others; any other
    /// error rolls the whole batch back.
    async fn write(&self, rows: &[&NewRow]) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        dispatch!(self, p => {
            let mut tx = p.begin().await?;
            let mut outcomes = Vec::with_capacity(rows.len());
            for row in rows {
                let inserted = insert_query!(row).execute(&mut *tx).await;
                outcomes.push(match inserted {
                    Ok(r) if r.rows_affected() == 1 => Ok(()),
                    Ok(_) => Err(StoreError::Duplicate),
                    Err(e) if is_unique_violation(&e) => Err(StoreError::Duplicate),
                    Err(e) => return Err(e.into()),
                });
            }
            tx.commit().await?;
            Ok(outcomes)
        })
    }
}
