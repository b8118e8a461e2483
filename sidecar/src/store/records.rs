//! Append-only records: revocations (with a sequence the filter syncs from), audit records of
//! every refund and forfeit, and the master keys shared by replicas. Rows here are never updated;
//! only revocations whose tokens can no longer verify are deleted ([`Store::compact_revocations`]).

use std::time::Duration;

use sqlx::Row;

use super::{Store, StoreError, audit_outcome, bytes32, dispatch, to_i64, to_u64};
use crate::deposit::{DepositState, Trigger};
use crate::ids::PaymentHash;
use crate::ids::{Timestamp, TokenId};

/// Idempotent: revoking twice keeps the first sequence number. `logged_at` is the store's own
/// clock (see [`Store::compact_revocations`]); `revoked_at` is the sidecar's, for people.
const INSERT_REVOCATION_SQLITE: &str = "INSERT INTO revocations \
     (token_id, reason, revoked_at, logged_at) \
     VALUES ($1, $2, $3, CAST(strftime('%s', 'now') AS INTEGER)) ON CONFLICT (token_id) DO NOTHING";
const INSERT_REVOCATION_POSTGRES: &str = "INSERT INTO revocations \
     (token_id, reason, revoked_at, logged_at) \
     VALUES ($1, $2, $3, CAST(EXTRACT(EPOCH FROM now()) AS BIGINT)) ON CONFLICT (token_id) DO NOTHING";

/// Rows deleted per statement when compacting: short transactions, so writers never wait long.
const COMPACT_BATCH: i64 = 10_000;

/// What a new filter worker loads in one call: every revocation still within the retention,
/// as the first 8 bytes of each token id, sorted and without duplicates, and the sequence
/// number to sync from afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationSnapshot {
    /// The highest sequence number handed out when the snapshot was read.
    pub head: u64,
    /// Token id prefixes (big-endian), ascending, distinct.
    pub prefixes: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    pub seq: u64,
    pub token_id: TokenId,
    pub reason: String,
    pub revoked_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub payment_hash: PaymentHash,
    pub route_id: String,
    pub client_prefix: String,
    pub outcome: DepositState,
    pub trigger: Trigger,
    pub amount_msat: u64,
    pub at: Timestamp,
}

/// The insert of one revocation for `pool`'s backend (with its clock for `logged_at`), and the
/// lock its writers take first, if any. PostgreSQL hands out identity values at insert, not at
/// commit: two writers could commit seq 8 after a filter already synced past 9. Serialising
/// writers (readers are not blocked by this lock mode) makes commit order equal seq order.
/// SQLite has one writer anyway.
pub(super) fn revocation_sql(pool: &super::Pool) -> (&'static str, Option<&'static str>) {
    match pool {
        super::Pool::Sqlite(_) => (INSERT_REVOCATION_SQLITE, None),
        super::Pool::Postgres(_) => (
            INSERT_REVOCATION_POSTGRES,
            Some("LOCK TABLE revocations IN SHARE ROW EXCLUSIVE MODE"),
        ),
    }
}

impl Store {
    pub(super) fn revocation_lock(&self) -> Option<&'static str> {
        revocation_sql(&self.pool).1
    }

    /// The insert of one revocation, with this backend's clock for `logged_at`.
    pub(super) fn insert_revocation_sql(&self) -> &'static str {
        revocation_sql(&self.pool).0
    }

    /// Drops revocations logged more than `retention` ago by the store's own clock (SQLite's
    /// is the machine it runs on; PostgreSQL's the database server), in short batches. Judged
    /// by the store, a sidecar whose clock steps cannot drop entries early, and a store whose
    /// clock steps back only keeps them longer. The newest row always stays: its sequence
    /// number is the head every filter syncs from, which must never go back. Returns the rows
    /// deleted.
    pub async fn compact_revocations(&self, retention: Duration) -> Result<u64, StoreError> {
        let retention = to_i64(retention.as_secs(), "retention")?;
        let sql = match self.pool {
            super::Pool::Sqlite(_) => {
                "DELETE FROM revocations WHERE seq IN (SELECT seq FROM revocations \
                 WHERE logged_at < CAST(strftime('%s', 'now') AS INTEGER) - $1 \
                 AND seq < (SELECT MAX(seq) FROM revocations) LIMIT $2)"
            }
            super::Pool::Postgres(_) => {
                "DELETE FROM revocations WHERE seq IN (SELECT seq FROM revocations \
                 WHERE logged_at < CAST(EXTRACT(EPOCH FROM now()) AS BIGINT) - $1 \
                 AND seq < (SELECT MAX(seq) FROM revocations) LIMIT $2)"
            }
        };
        let mut deleted = 0u64;
        loop {
            let n = dispatch!(self, p => {
                sqlx::query(sql)
                    .bind(retention)
                    .bind(COMPACT_BATCH)
                    .execute(p)
                    .await?
                    .rows_affected()
            });
            deleted = deleted.saturating_add(n);
            if n < COMPACT_BATCH.unsigned_abs() {
                return Ok(deleted);
            }
        }
    }

    /// Every revocation logged within `retention` (the store's clock, as compaction judges it)
    /// as token id prefixes, with the head, read in one statement so that both come from the
    /// same view of the table. The prefixes are concatenated by the database in that statement
    /// (one row, not a million): this is what keeps a new worker's start under a second.
    pub async fn revocation_snapshot(
        &self,
        retention: Duration,
    ) -> Result<RevocationSnapshot, StoreError> {
        let retention = to_i64(retention.as_secs(), "retention")?;
        let (head, packed) = match &self.pool {
            super::Pool::Sqlite(p) => {
                let row = sqlx::query(
                    "SELECT (SELECT COALESCE(MAX(seq), 0) FROM revocations) AS head, \
                     COALESCE(group_concat(hex(substr(token_id, 1, 8)), ''), '') AS prefixes \
                     FROM revocations \
                     WHERE logged_at >= CAST(strftime('%s', 'now') AS INTEGER) - $1",
                )
                .bind(retention)
                .fetch_one(p)
                .await?;
                let hex_text: String = row.try_get("prefixes")?;
                let packed = hex::decode(hex_text.as_bytes()).map_err(|e| StoreError::Corrupt {
                    table: "revocations",
                    problem: format!("token id prefixes: {e}"),
                })?;
                (row.try_get::<i64, _>("head")?, packed)
            }
            super::Pool::Postgres(p) => {
                let row = sqlx::query(
                    "SELECT (SELECT COALESCE(MAX(seq), 0) FROM revocations) AS head, \
                     COALESCE(string_agg(substring(token_id FROM 1 FOR 8), ''::bytea), ''::bytea) \
                     AS prefixes FROM revocations \
                     WHERE logged_at >= CAST(EXTRACT(EPOCH FROM now()) AS BIGINT) - $1",
                )
                .bind(retention)
                .fetch_one(p)
                .await?;
                (
                    row.try_get::<i64, _>("head")?,
                    row.try_get::<Vec<u8>, _>("prefixes")?,
                )
            }
        };
        if packed.len() % 8 != 0 {
            return Err(StoreError::Corrupt {
                table: "revocations",
                problem: "a token id shorter than 8 bytes".into(),
            });
        }
        let mut prefixes: Vec<u64> = packed
            .chunks_exact(8)
            .map(|c| <[u8; 8]>::try_from(c).map_or(0, u64::from_be_bytes))
            .collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        Ok(RevocationSnapshot {
            head: to_u64(head, "revocations", "seq")?,
            prefixes,
        })
    }

    /// Revokes a token (admin, or a pay token); returns its sequence number.
    pub async fn revoke(
        &self,
        token: &TokenId,
        reason: &str,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let now_i = to_i64(now.0, "now")?;
        let lock = self.revocation_lock();
        let insert = self.insert_revocation_sql();
        dispatch!(self, p => {
            let mut tx = p.begin().await?;
            if let Some(lock) = lock {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            sqlx::query(insert)
                .bind(token.0.to_vec())
                .bind(reason)
                .bind(now_i)
                .execute(&mut *tx)
                .await?;
            let row = sqlx::query("SELECT seq FROM revocations WHERE token_id = $1")
                .bind(token.0.to_vec())
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            to_u64(row.try_get("seq")?, "revocations", "seq")
        })
    }

    /// Revokes many tokens in one transaction (bulk revocation: operator tooling, and the
    /// tests and benchmarks that fill a log of a million). Already revoked tokens keep their
    /// sequence numbers. Returns how many were new.
    pub async fn revoke_many(
        &self,
        tokens: &[TokenId],
        reason: &str,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        // 3 parameters a row; SQLite allows 32,766 per statement.
        const ROWS: usize = 1000;
        let now_i = to_i64(now.0, "now")?;
        let lock = self.revocation_lock();
        let clock = match self.pool {
            super::Pool::Sqlite(_) => "CAST(strftime('%s', 'now') AS INTEGER)",
            super::Pool::Postgres(_) => "CAST(EXTRACT(EPOCH FROM now()) AS BIGINT)",
        };
        dispatch!(self, p => {
            let mut tx = p.begin().await?;
            if let Some(lock) = lock {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            let mut added = 0u64;
            for chunk in tokens.chunks(ROWS) {
                let mut sql = String::from(
                    "INSERT INTO revocations (token_id, reason, revoked_at, logged_at) VALUES ");
                for i in 0..chunk.len() {
                    if i > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&format!("(${}, ${}, ${}, {clock})", 3 * i + 1, 3 * i + 2, 3 * i + 3));
                }
                sql.push_str(" ON CONFLICT (token_id) DO NOTHING");
                let mut q = sqlx::query(&sql);
                for t in chunk {
                    q = q.bind(t.0.to_vec()).bind(reason).bind(now_i);
                }
                added = added.saturating_add(q.execute(&mut *tx).await?.rows_affected());
            }
            tx.commit().await?;
            Ok(added)
        })
    }

    /// Revocations with `seq > since`, oldest first.
    pub async fn revocations_since(
        &self,
        since: u64,
        limit: u32,
    ) -> Result<Vec<Revocation>, StoreError> {
        let since = to_i64(since, "since")?;
        dispatch!(self, p => {
            let rows = sqlx::query(
                "SELECT seq, token_id, reason, revoked_at FROM revocations WHERE seq > $1 \
                 ORDER BY seq LIMIT $2")
                .bind(since)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(Revocation {
                    seq: to_u64(row.try_get("seq")?, "revocations", "seq")?,
                    token_id: TokenId(bytes32(row.try_get("token_id")?, "revocations", "token_id")?),
                    reason: row.try_get("reason")?,
                    revoked_at: Timestamp(to_u64(row.try_get("revoked_at")?, "revocations", "revoked_at")?),
                });
            }
            Ok(out)
        })
    }

    /// The highest sequence number handed out (0 when none).
    pub async fn revocation_head(&self) -> Result<u64, StoreError> {
        dispatch!(self, p => {
            let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS head FROM revocations")
                .fetch_one(p)
                .await?;
            to_u64(row.try_get("head")?, "revocations", "seq")
        })
    }

    pub async fn is_revoked(&self, token: &TokenId) -> Result<bool, StoreError> {
        dispatch!(self, p => {
            let row = sqlx::query("SELECT 1 AS one FROM revocations WHERE token_id = $1")
                .bind(token.0.to_vec())
                .fetch_optional(p)
                .await?;
            Ok(row.is_some())
        })
    }

    /// Audit records, newest first; of one deposit when `hash` is given.
    pub async fn audit_records(
        &self,
        hash: Option<&PaymentHash>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let hash = hash.map(|h| h.0.to_vec());
        dispatch!(self, p => {
            let rows = sqlx::query(
                "SELECT payment_hash, route_id, client_prefix, outcome, trigger, amount_msat, at \
                 FROM audit_records WHERE ($1 IS NULL OR payment_hash = $1) \
                 ORDER BY id DESC LIMIT $2")
                .bind(hash)
                .bind(i64::from(limit.clamp(1, 1000)))
                .fetch_all(p)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let (outcome, trigger) = audit_outcome(&row)?;
                out.push(AuditRecord {
                    payment_hash: PaymentHash(bytes32(row.try_get("payment_hash")?, "audit_records", "payment_hash")?),
                    route_id: row.try_get("route_id")?,
                    client_prefix: row.try_get("client_prefix")?,
                    outcome,
                    trigger,
                    amount_msat: to_u64(row.try_get("amount_msat")?, "audit_records", "amount_msat")?,
                    at: Timestamp(to_u64(row.try_get("at")?, "audit_records", "at")?),
                });
            }
            Ok(out)
        })
    }

    /// Master keys shared by replicas, `(id, key)`, oldest first.
    pub async fn master_keys(&self) -> Result<Vec<(String, [u8; 32])>, StoreError> {
        dispatch!(self, p => {
            let rows = sqlx::query("SELECT id, key FROM master_keys ORDER BY created_at, id")
                .fetch_all(p)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push((
                    row.try_get("id")?,
                    bytes32(row.try_get("key")?, "master_keys", "key")?,
                ));
            }
            Ok(out)
        })
    }

    /// Adds a key unless the id exists (replicas racing to create the first key agree on one).
    pub async fn add_master_key_if_absent(
        &self,
        id: &str,
        key: &[u8; 32],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let now_i = to_i64(now.0, "now")?;
        dispatch!(self, p => sqlx::query(
            "INSERT INTO master_keys (id, key, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO NOTHING")
            .bind(id)
            .bind(key.to_vec())
            .bind(now_i)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }
}
