//! Append-only records: revocations (with a sequence the filter syncs from), audit records of
//! every refund and forfeit, and the master keys shared by replicas. Rows here are never updated
//! or deleted by the sidecar.

use sqlx::Row;

use super::{Store, StoreError, bytes32, dispatch, to_i64, to_u64};
use crate::deposit::{DepositState, Timestamp, TokenId, Trigger};
use crate::node::PaymentHash;

/// Idempotent: revoking twice keeps the first sequence number.
pub(super) const INSERT_REVOCATION: &str = "INSERT INTO revocations (token_id, reason, revoked_at) \
     VALUES ($1, $2, $3) ON CONFLICT (token_id) DO NOTHING";

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

impl Store {
    /// PostgreSQL hands out identity values at insert, not at commit: two writers could commit
    /// seq 8 after a filter already synced past 9. Serialising writers (readers are not blocked
    /// by this lock mode) makes commit order equal seq order. SQLite has one writer anyway.
    pub(super) fn revocation_lock(&self) -> Option<&'static str> {
        match self.pool {
            super::Pool::Sqlite(_) => None,
            super::Pool::Postgres(_) => Some("LOCK TABLE revocations IN SHARE ROW EXCLUSIVE MODE"),
        }
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
        dispatch!(self, p => {
            let mut tx = p.begin().await?;
            if let Some(lock) = lock {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            sqlx::query(INSERT_REVOCATION)
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
                let outcome: String = row.try_get("outcome")?;
                let trigger: String = row.try_get("trigger")?;
                let corrupt = |what: &str, v: &str| StoreError::Corrupt {
                    table: "audit_records",
                    problem: format!("unknown {what} {v:?}"),
                };
                out.push(AuditRecord {
                    payment_hash: PaymentHash(bytes32(row.try_get("payment_hash")?, "audit_records", "payment_hash")?),
                    route_id: row.try_get("route_id")?,
                    client_prefix: row.try_get("client_prefix")?,
                    outcome: DepositState::parse(&outcome).ok_or_else(|| corrupt("outcome", &outcome))?,
                    trigger: Trigger::parse(&trigger).ok_or_else(|| corrupt("trigger", &trigger))?,
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
