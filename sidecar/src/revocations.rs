//! The revocation log's upkeep, and the snapshot a new filter worker loads in one call
//! (docs/internal-api.md "GET /v1/revocations/snapshot"). The log keeps a revocation as long as
//! its token could still verify somewhere, and no longer; expiry is judged by the store's own
//! clock, never the sidecar's.

use std::time::Duration;

use tokio::sync::watch;

use lightning_wall_contract::store_id::StoreId;

use crate::config::Config;
use crate::store::{RevocationSnapshot, Store, StoreError};

/// How far the filters' and this sidecar's clocks may be from the store's (in either
/// direction) without a compacted revocation's token verifying again: a token's `valid_until`
/// comes from the sidecar's clock at minting and is judged by the filter host's.
pub const CLOCK_MARGIN: Duration = Duration::from_secs(3600);
/// How often the log is compacted.
pub const COMPACT_EVERY: Duration = Duration::from_secs(600);
/// First bytes of a snapshot body (format version 1).
pub const SNAPSHOT_MAGIC: &[u8; 4] = b"LWR1";
/// Bytes before the prefixes: magic, head (u64), count (u32).
pub const SNAPSHOT_HEADER_LEN: usize = 16;

/// How long a revocation is kept after it was logged: a token is minted before it is revoked,
/// so it expires within one token lifetime of its revocation, plus the clock margin.
pub fn retention(config: &Config) -> Duration {
    let longest = config
        .routes
        .iter()
        .map(|r| r.token_lifetime)
        .max()
        .unwrap_or_default();
    longest.saturating_add(CLOCK_MARGIN)
}

/// The snapshot's wire form: `LWR1`, the head (u64 big-endian), the number of prefixes (u32
/// big-endian), then each prefix (8 bytes, big-endian), strictly ascending. 8 bytes a revocation:
/// 1,000,000 revocations are 8,000,016 bytes.
pub fn encode_snapshot(s: &RevocationSnapshot) -> Vec<u8> {
    let count = u32::try_from(s.prefixes.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(SNAPSHOT_HEADER_LEN + 8 * s.prefixes.len());
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&s.head.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    for p in s.prefixes.iter().take(count as usize) {
        out.extend_from_slice(&p.to_be_bytes());
    }
    out
}

/// Reads the snapshot for a new worker.
pub async fn snapshot(store: &Store, config: &Config) -> Result<Vec<u8>, StoreError> {
    let s = store.revocation_snapshot(retention(config)).await?;
    Ok(encode_snapshot(&s))
}

/// The store's id to answer a sync with. A filter of this very store (`theirs`) that has synced
/// past the log's head learnt revocations this store no longer has: it was restored from a
/// backup. Then the store gets a new id, and every token minted before is refused from the
/// filters' next bootstrap on (docs/filter.md "A replaced store"): the deposits made after the
/// backup are unknown here, and a refunded one's credential must not work again. A filter of
/// another store (an empty store replaced the one it knew) only needs the new id.
pub async fn store_for_sync(
    store: &Store,
    theirs: Option<StoreId>,
    since: u64,
) -> Result<StoreId, StoreError> {
    let ours = store.store_id().await?;
    if theirs != Some(ours) || since == 0 {
        return Ok(ours);
    }
    let head = store.revocation_head().await?;
    if since <= head {
        return Ok(ours);
    }
    let new = store.replace_store_id(ours).await?;
    tracing::error!(
        since,
        head,
        old = %ours.to_hex(),
        new = %new.to_hex(),
        "a filter had synced revocations past this store's head: the store went back (restored \
         from a backup?); it has a new id, and credentials minted before are refused"
    );
    Ok(new)
}

/// Compacts the log now and every `every` until stopped. A failed compaction is logged and
/// retried at the next round; nothing depends on it but the log's size.
pub async fn run_compaction(
    store: Store,
    retention: Duration,
    every: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        match store.compact_revocations(retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "revocation log compacted"),
            Err(e) => tracing::error!(error = %e, "revocation log compaction failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Timestamp, TokenId};

    #[tokio::test]
    async fn a_filter_synced_past_the_head_of_its_own_store_gets_the_store_a_new_id() {
        let (store, _dir) = crate::store::tests::fixtures::sqlite().await;
        let ours = store.store_id().await.unwrap();
        let head = store
            .revoke(&TokenId([1; 32]), "admin", Timestamp(1))
            .await
            .unwrap();
        // Older filters, new workers and filters of another store: nothing happens.
        for (theirs, since) in [
            (None, head + 5),
            (Some(ours), 0),
            (Some(ours), head),
            (Some(StoreId([0xee; 8])), head + 5),
        ] {
            assert_eq!(store_for_sync(&store, theirs, since).await.unwrap(), ours);
        }
        // A worker of this store that synced past its head: the store went back.
        let new = store_for_sync(&store, Some(ours), head + 1).await.unwrap();
        assert_ne!(new, ours);
        assert_eq!(store.store_id().await.unwrap(), new);
        // The other workers still name the old id: the store is not replaced again.
        assert_eq!(
            store_for_sync(&store, Some(ours), head + 1).await.unwrap(),
            new
        );
    }

    #[test]
    fn a_snapshot_is_a_header_and_eight_bytes_a_revocation() {
        let s = RevocationSnapshot {
            head: 0x0102,
            prefixes: vec![1, 0xffff_ffff_ffff_ffff],
        };
        let b = encode_snapshot(&s);
        assert_eq!(&b[..4], b"LWR1");
        assert_eq!(b[4..12], 0x0102u64.to_be_bytes());
        assert_eq!(b[12..16], 2u32.to_be_bytes());
        assert_eq!(b[16..24], 1u64.to_be_bytes());
        assert_eq!(b[24..], [0xff; 8]);
        assert_eq!(b.len(), SNAPSHOT_HEADER_LEN + 16);
    }
}
