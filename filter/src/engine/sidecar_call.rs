//! The calls a worker makes to the sidecar's internal API (docs/internal-api.md), as values the
//! adapter dispatches: the sync's (`sync.rs`) and the event batches' (`outbox.rs`).

/// Which call an answer belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// `GET /v1/bootstrap`.
    Bootstrap,
    /// `GET /v1/revocations/snapshot` (once per worker, before the first sync).
    Snapshot,
    /// `GET /v1/sync`.
    Sync,
    /// `POST /v1/events`.
    Events,
}

/// A call the adapter must dispatch to the sidecar cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// Which one.
    pub kind: CallKind,
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Path and query.
    pub path: String,
    /// JSON body (POST only).
    pub body: Option<Vec<u8>>,
}
