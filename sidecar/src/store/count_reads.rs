//! Batched reads of one client network's live deposits (the per-network limits, read on every
//! deposit mint) on PostgreSQL: the reads queued while the previous batch ran go to the
//! database as one statement, each caller answered with its own network's counts.
//!
//! Why: a read is a round trip to a backend process, and under a wave of mints from distinct
//! addresses each one took a pool connection and a backend wake-up of its own: on a busy
//! 2-core machine those wake-ups, not the index seeks, were where the time went
//! (bench/RESULTS.md "PostgreSQL minting"). As with the group commit there is no coalescing
//! timer: an idle sidecar reads at once, a busy one batches by itself. A batched read is no
//! staler than a read of its own: it starts after every caller in it asked.

use std::sync::Arc;

use sqlx::Row;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::deposits::LiveCounts;
use super::{StoreError, to_u64};

/// Most networks in one statement.
const MAX_BATCH: usize = 256;
/// Reader tasks: one batch collects while another is at the database.
const READERS: usize = 2;
/// Callers queued beyond the batches being read; more wait for room (backpressure).
const QUEUE: usize = 4096;

/// Per network given, in order: held and awaiting-payment deposits, two seeks each in the
/// `(state, client_prefix)` index, as the single read does.
const COUNTS: &str = "SELECT \
     (SELECT COUNT(*) FROM deposits WHERE state = 'held' AND client_prefix = p.prefix) AS held, \
     (SELECT COUNT(*) FROM deposits WHERE state = 'awaiting_payment' \
      AND client_prefix = p.prefix) AS unpaid \
     FROM UNNEST($1::text[]) WITH ORDINALITY AS p(prefix, n) ORDER BY p.n";

struct Job {
    prefix: String,
    done: oneshot::Sender<Result<LiveCounts, StoreError>>,
}

/// The handle the store keeps; the reader tasks end when the last handle is dropped.
#[derive(Clone, Debug)]
pub(super) struct PrefixCounts {
    jobs: mpsc::Sender<Job>,
}

impl PrefixCounts {
    /// Starts the reader tasks on the current tokio runtime.
    pub(super) fn start(pool: sqlx::PgPool) -> PrefixCounts {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..READERS {
            tokio::spawn(read_batches(pool.clone(), queue.clone()));
        }
        PrefixCounts { jobs }
    }

    /// Held and unpaid deposits of `prefix`, read after this call began.
    pub(super) async fn get(&self, prefix: &str) -> Result<LiveCounts, StoreError> {
        let (done, answer) = oneshot::channel();
        let job = Job {
            prefix: prefix.to_owned(),
            done,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

/// Takes a batch (holding the queue only while taking it), reads it, answers its callers.
async fn read_batches(pool: sqlx::PgPool, queue: Arc<Mutex<mpsc::Receiver<Job>>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.lock().await.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match read(&pool, &batch).await {
            Ok(counts) => {
                for (job, counts) in batch.drain(..).zip(counts) {
                    let _ = job.done.send(Ok(counts));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for job in batch.drain(..) {
                    let _ = job.done.send(Err(StoreError::ReadFailed {
                        message: message.clone(),
                    }));
                }
            }
        }
    }
}

async fn read(pool: &sqlx::PgPool, batch: &[Job]) -> Result<Vec<LiveCounts>, StoreError> {
    let prefixes: Vec<&str> = batch.iter().map(|j| j.prefix.as_str()).collect();
    let rows = sqlx::query(COUNTS).bind(prefixes).fetch_all(pool).await?;
    if rows.len() != batch.len() {
        return Err(StoreError::Corrupt {
            table: "deposits",
            problem: format!("{} counts for {} networks", rows.len(), batch.len()),
        });
    }
    rows.iter()
        .map(|row| {
            Ok(LiveCounts {
                held: to_u64(row.try_get("held")?, "deposits", "count")?,
                unpaid: to_u64(row.try_get("unpaid")?, "deposits", "count")?,
            })
        })
        .collect()
}
