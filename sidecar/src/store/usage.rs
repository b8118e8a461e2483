//! Per-token usage counts the filters report (requests served, upstream errors), summed over
//! every proxy instance and every sidecar sharing the store (docs/internal-api.md "usage").
//! A row keeps the highest count its reporter sent for a window, so a report sent twice (a
//! batch re-sent after a lost answer) counts once and can never make a visitor look busier
//! than they were.

use sqlx::Row;

use super::{Store, StoreError, dispatch, to_i64, to_u64};
use crate::ids::{Timestamp, TokenId};
use crate::usage::UsageKind;

/// One proxy instance's count of one token in one window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageReport {
    pub token_id: TokenId,
    pub kind: UsageKind,
    /// Start of the window (unix seconds, the filter's clock).
    pub window_start: u64,
    /// The proxy instance that counted (16 hex digits).
    pub reporter: String,
    /// Its count so far in the window.
    pub count: u64,
    /// When the row may go (the window's end plus a grace).
    pub expires_at: Timestamp,
}

const UPSERT: &str = "INSERT INTO usage_counts \
     (token_id, kind, window_start, reporter, count, expires_at) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (token_id, kind, window_start, reporter) DO UPDATE SET count = \
     CASE WHEN excluded.count > usage_counts.count THEN excluded.count ELSE usage_counts.count END";

/// PostgreSQL's SUM of BIGINT is NUMERIC: cast back.
const TOTAL: &str = "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) AS total FROM usage_counts \
     WHERE token_id = $1 AND kind = $2 AND window_start = $3";

impl Store {
    /// Records `reports` in one transaction (which also drops rows expired at `now`), then
    /// returns each report's window total over all reporters. The totals are read after the
    /// commit: of two sidecars recording the same token at once, the one that reads last sees
    /// both reports, so a crossing of the budget is never missed by both.
    pub async fn record_usage(
        &self,
        reports: &[UsageReport],
        now: Timestamp,
    ) -> Result<Vec<u64>, StoreError> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        dispatch!(self, p => {
            let mut tx = p.begin().await?;
            sqlx::query("DELETE FROM usage_counts WHERE expires_at < $1")
                .bind(to_i64(now.0, "now")?)
                .execute(&mut *tx)
                .await?;
            for r in reports {
                sqlx::query(UPSERT)
                    .bind(r.token_id.0.to_vec())
                    .bind(r.kind.as_str())
                    .bind(to_i64(r.window_start, "window_start")?)
                    .bind(&r.reporter)
                    .bind(to_i64(r.count, "count")?)
                    .bind(to_i64(r.expires_at.0, "expires_at")?)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            let mut totals = Vec::with_capacity(reports.len());
            for r in reports {
                let row = sqlx::query(TOTAL)
                    .bind(r.token_id.0.to_vec())
                    .bind(r.kind.as_str())
                    .bind(to_i64(r.window_start, "window_start")?)
                    .fetch_one(p)
                    .await?;
                totals.push(to_u64(row.try_get("total")?, "usage_counts", "total")?);
            }
            Ok(totals)
        })
    }

    /// Rows in the usage table (tests and the soak's bound).
    pub async fn usage_rows(&self) -> Result<u64, StoreError> {
        dispatch!(self, p => {
            let row = sqlx::query("SELECT COUNT(*) AS n FROM usage_counts").fetch_one(p).await?;
            to_u64(row.try_get("n")?, "usage_counts", "count")
        })
    }
}
