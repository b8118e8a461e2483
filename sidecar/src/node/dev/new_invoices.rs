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

use super::rules::DevInvoice;
use super::store::{DevStore, StoreError};
use crate::batch::{Batches, Failed};

/// Most invoices in one statement (13 values each, far below SQLite's bound on variables).
pub(super) const MAX_BATCH: usize = 64;
/// Callers queued beyond the batch being written; more wait for room (backpressure).
const QUEUE: usize = 4096;

/// The handle the node keeps; the writer task ends when the last handle is dropped.
#[derive(Debug)]
pub(super) struct NewInvoices {
    inserts: Batches<DevInvoice, bool>,
}

impl NewInvoices {
    /// Starts the writer task on the current tokio runtime. It writes holding `writes`, the
    /// node's write lock, so a batch never meets another writer of the database in SQLite's
    /// busy handler.
    pub(super) fn start(store: DevStore, writes: Arc<tokio::sync::Mutex<()>>) -> NewInvoices {
        let inserts = Batches::start(1, MAX_BATCH, QUEUE, move |invoices: Vec<DevInvoice>| {
            let (store, writes) = (store.clone(), writes.clone());
            async move {
                let _writing = writes.lock().await;
                let invoices: Vec<&DevInvoice> = invoices.iter().collect();
                store.insert_many(&invoices).await
            }
        });
        NewInvoices { inserts }
    }

    /// Stores a new invoice; `Ok(false)` when its hash already exists (never overwritten).
    /// Returns once the statement holding it is done; when that statement failed, none of the
    /// invoices in it was stored and every caller learns it.
    pub(super) async fn insert(&self, invoice: DevInvoice) -> Result<bool, StoreError> {
        self.inserts
            .call(invoice)
            .await
            .map_err(|failed| match failed {
                Failed::Batch { rows, message } => StoreError::BatchFailed { rows, message },
                Failed::Gone => StoreError::WriterGone,
            })
    }
}
