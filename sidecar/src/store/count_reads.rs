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

use sqlx::Row;

use super::deposits::LiveCounts;
use super::{StoreError, to_u64};
use crate::batch::{Batches, Failed};

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

/// The handle the store keeps; the reader tasks end when the last handle is dropped.
#[derive(Clone, Debug)]
pub(super) struct PrefixCounts {
    reads: Batches<String, LiveCounts>,
}

impl PrefixCounts {
    /// Starts the reader tasks on the current tokio runtime.
    pub(super) fn start(pool: sqlx::PgPool) -> PrefixCounts {
        let reads = Batches::start(READERS, MAX_BATCH, QUEUE, move |prefixes: Vec<String>| {
            let pool = pool.clone();
            async move { read(&pool, &prefixes).await }
        });
        PrefixCounts { reads }
    }

    /// Held and unpaid deposits of `prefix`, read after this call began.
    pub(super) async fn get(&self, prefix: &str) -> Result<LiveCounts, StoreError> {
        self.reads
            .call(prefix.to_owned())
            .await
            .map_err(|failed| match failed {
                Failed::Batch { message, .. } => StoreError::ReadFailed { message },
                Failed::Gone => StoreError::WriterGone,
            })
    }
}

async fn read(pool: &sqlx::PgPool, prefixes: &[String]) -> Result<Vec<LiveCounts>, StoreError> {
    let rows = sqlx::query(COUNTS).bind(prefixes).fetch_all(pool).await?;
    if rows.len() != prefixes.len() {
        return Err(StoreError::Corrupt {
            table: "deposits",
            problem: format!("{} counts for {} networks", rows.len(), prefixes.len()),
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
