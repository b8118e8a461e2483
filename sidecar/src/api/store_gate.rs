//! Store capacity reserved for the filter's internal API. Public endpoints (reachable by anyone,
//! unpaid) may use at most half of the store's connections at once; the other half stays free
//! for the filter's sync, events and challenges and the lifecycle's own work. Without it, 10,000
//! long-polls' reads queued in the pool ahead of the filter's 1 s sync call-out, the filter
//! marked the sidecar down and refused every honest visitor (docs/reliability.md "Soak").
//!
//! Bounded: a public request waits at most [`WAIT`] for a place, then gets 503 `busy`
//! with `Retry-After`.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::AppState;
use super::error::ApiError;

/// Longest wait of a public request for its share of the store.
pub const WAIT: Duration = Duration::from_secs(2);

/// The public endpoints' share of the store's connections.
pub struct StoreGate {
    places: Semaphore,
}

impl StoreGate {
    /// Half of a pool of `max_connections` (at least one).
    pub fn for_pool(max_connections: u32) -> StoreGate {
        StoreGate {
            places: Semaphore::new((max_connections as usize / 2).max(1)),
        }
    }

    /// A place to use the store for one public request (or one read of a long-poll, which must
    /// not hold a place while it waits), or 503 after [`WAIT`].
    pub async fn enter(&self) -> Result<SemaphorePermit<'_>, ApiError> {
        match tokio::time::timeout(WAIT, self.places.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the wall is busy; retry shortly",
            )
            .retry_after(1)),
        }
    }
}

/// Middleware for the public routes that read the store once or twice per request.
pub async fn gated(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let _place = state.public_store.enter().await?;
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::store::tests::fixtures;

    /// A read long enough (tens of ms) that public reads pile up in the pool's queue.
    const SLOW_READ: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
        WHERE x < 50000) SELECT count(*) FROM c";

    /// The soak's starvation, staged: 100 slow public reads at once on SQLite's 8
    /// connections; the filter's read (not gated) is answered while most public reads still
    /// wait, because they never hold more than half the pool.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_internal_read_is_answered_while_public_reads_saturate_their_share() {
        let (store, _dir) = fixtures::sqlite().await;
        assert_eq!(store.max_connections(), 8);
        let gate = Arc::new(StoreGate::for_pool(store.max_connections()));
        let done = Arc::new(AtomicUsize::new(0));
        let public = 100;
        let mut reads = Vec::new();
        for _ in 0..public {
            let (gate, store, done) = (gate.clone(), store.clone(), done.clone());
            reads.push(tokio::spawn(async move {
                // Public callers beyond the bounded wait get 503; none here must.
                let _place = tokio::time::timeout(Duration::from_secs(60), gate.places.acquire())
                    .await
                    .unwrap()
                    .unwrap();
                store.execute_for_test(SLOW_READ).await;
                done.fetch_add(1, Ordering::SeqCst);
            }));
        }
        // Let the public reads take their places and queue.
        tokio::time::sleep(Duration::from_millis(50)).await;
        store.revocations_since(0, 10).await.unwrap();
        let before_internal = done.load(Ordering::SeqCst);
        for r in reads {
            r.await.unwrap();
        }
        assert!(
            before_internal < public / 4,
            "the filter's read waited for {before_internal} of {public} public reads"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_public_request_waits_a_bounded_time_then_gets_503() {
        let gate = StoreGate::for_pool(8);
        let held: Vec<_> = futures_util::future::join_all((0..4).map(|_| gate.enter()))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let Err(refused) = gate.enter().await else {
            panic!("no fifth place")
        };
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.code, "busy");
        assert_eq!(refused.retry_after, Some(1));
        drop(held);
        assert!(gate.enter().await.is_ok());
        assert_eq!(StoreGate::for_pool(1).places.available_permits(), 1);
    }
}
