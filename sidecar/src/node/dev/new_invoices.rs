//! New invoices of the dev node, written in batches: the invoices created while the previous
//! batch was being written go to its database as one multi-row insert, and each caller is
//! answered once the statement holding its row is done (as durable as a single insert was).
//!
//! Why: one insert per invoice, one at a time under the node's write lock, made the dev node
//! the slowest step of a deposit challenge under a wave of mints (bench/RESULTS.md
//! "PostgreSQL minting": 6–9 ms of a 17–21 ms mint at 32 concurrent mints), each insert a
//! round trip to a SQLite worker thread waited for in turn. No coalescing timer: an idle node
//! writes at once, a busy one batches by itself.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::rules::DevInvoice;
use super::store::{DevStore, StoreError};

/// Most invoices in one statement (13 values each, far below SQLite's bound on variables).
pub(super) const MAX_BATCH: usize = 64;
/// Callers queued beyond the batch being written; more wait for room (backpressure).
const QUEUE: usize = 4096;

struct Job {
    invoice: DevInvoice,
    done: oneshot::Sender<Result<bool, StoreError>>,
}

/// The handle the node keeps; the writer task ends when the last handle is dropped.
#[derive(Debug)]
pub(super) struct NewInvoices {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl NewInvoices {
    /// Starts the writer task on the current tokio runtime. It writes holding `writes`, the
    /// node's write lock, so a batch never meets another writer of the database in SQLite's
    /// busy handler.
    pub(super) fn start(store: DevStore, writes: Arc<tokio::sync::Mutex<()>>) -> NewInvoices {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(store, writes, queue));
        NewInvoices { jobs }
    }

    /// Stores a new invoice; `Ok(false)` when its hash already exists (never overwritten).
    /// Returns once the statement holding it is done.
    pub(super) async fn insert(&self, invoice: DevInvoice) -> Result<bool, StoreError> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job { invoice, done })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

async fn write_batches(
    store: DevStore,
    writes: Arc<tokio::sync::Mutex<()>>,
    mut queue: mpsc::Receiver<Job>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let invoices: Vec<&DevInvoice> = batch.iter().map(|j| &j.invoice).collect();
        let written = {
            let _writing = writes.lock().await;
            store.insert_many(&invoices).await
        };
        match written {
            Ok(inserted) => {
                for (job, inserted) in batch.drain(..).zip(inserted) {
                    let _ = job.done.send(Ok(inserted));
                }
            }
            Err(e) => {
                // One statement: none of the batch was stored. Every caller learns it.
                let message = e.to_string();
                let rows = batch.len();
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
