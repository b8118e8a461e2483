//! What the operator switches and watches: the drain flag every replica reads before minting,
//! and the sums the dashboard shows (outcomes by day and trigger, money held, collected and paid
//! out). Read-only summaries apart from the flag; never a deposit transition (the lifecycle's job).

use sqlx::Row;

use super::{Store, StoreError, audit_outcome, dispatch, to_i64, to_u64};
use crate::deposit::{DepositState, Trigger};
use crate::ids::Timestamp;

/// Deposits that ended on one day with one outcome and trigger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutcomeDay {
    /// Unix seconds of the day's 00:00 UTC.
    pub day: Timestamp,
    pub outcome: DepositState,
    pub trigger: Trigger,
    pub count: u64,
    pub amount_msat: u64,
}

/// Money the sidecar knows about, now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MoneySummary {
    pub held_count: u64,
    pub held_msat: u64,
    pub awaiting_payment_count: u64,
    /// Deposits decided but whose cancel or settle the node has not confirmed yet.
    pub pending_actions: u64,
    /// Forfeited deposits, all time (what the walls collected).
    pub forfeited_msat: u64,
    pub rewards_paid_msat: u64,
    pub rewards_paid_count: u64,
}

const DAY_S: u64 = 86_400;

impl Store {
    /// When the drain started, if one is on.
    pub async fn drain_started(&self) -> Result<Option<Timestamp>, StoreError> {
        dispatch!(self, p => {
            let row = sqlx::query("SELECT started_at FROM drain WHERE id = 1")
                .fetch_optional(p)
                .await?;
            match row {
                None => Ok(None),
                Some(row) => Ok(Some(Timestamp(to_u64(row.try_get("started_at")?, "drain", "started_at")?))),
            }
        })
    }

    /// Turns the drain on (a drain already on keeps its start); returns when it started.
    pub async fn start_drain(&self, now: Timestamp) -> Result<Timestamp, StoreError> {
        let now_i = to_i64(now.0, "started_at")?;
        dispatch!(self, p => {
            sqlx::query("INSERT INTO drain (id, started_at) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
                .bind(now_i)
                .execute(p)
                .await?;
        });
        Ok(self.drain_started().await?.unwrap_or(now))
    }

    /// Turns the drain off; true when one was on.
    pub async fn end_drain(&self) -> Result<bool, StoreError> {
        let removed = dispatch!(self, p => sqlx::query("DELETE FROM drain WHERE id = 1")
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(removed == 1)
    }

    /// Ended deposits since `since`, by UTC day, outcome and trigger (from the audit records:
    /// every final decision writes one).
    pub async fn outcomes_by_day(&self, since: Timestamp) -> Result<Vec<OutcomeDay>, StoreError> {
        let since_i = to_i64(since.0, "since")?;
        dispatch!(self, p => {
            let rows = sqlx::query(
                &format!("SELECT (at / {DAY_S}) * {DAY_S} AS day, outcome, trigger, COUNT(*) AS n, \
                 CAST(COALESCE(SUM(amount_msat), 0) AS BIGINT) AS msat \
                 FROM audit_records WHERE at >= $1 \
                 GROUP BY (at / {DAY_S}) * {DAY_S}, outcome, trigger \
                 ORDER BY day DESC, outcome, trigger"))
                .bind(since_i)
                .fetch_all(p)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let (outcome, trigger) = audit_outcome(&row)?;
                out.push(OutcomeDay {
                    day: Timestamp(to_u64(row.try_get("day")?, "audit_records", "at")?),
                    outcome,
                    trigger,
                    count: to_u64(row.try_get("n")?, "audit_records", "count")?,
                    amount_msat: to_u64(row.try_get("msat")?, "audit_records", "amount_msat")?,
                });
            }
            Ok(out)
        })
    }

    /// Held and unpaid deposits, pending node actions, collected forfeits, rewards paid.
    pub async fn money_summary(&self) -> Result<MoneySummary, StoreError> {
        let sql = "SELECT \
             (SELECT COUNT(*) FROM deposits WHERE state = 'held') AS held_count, \
             (SELECT CAST(COALESCE(SUM(amount_msat), 0) AS BIGINT) FROM deposits \
                WHERE state = 'held') AS held_msat, \
             (SELECT COUNT(*) FROM deposits WHERE state = 'awaiting_payment') AS unpaid_count, \
             (SELECT COUNT(*) FROM deposits WHERE pending_action IS NOT NULL) AS pending, \
             (SELECT CAST(COALESCE(SUM(amount_msat), 0) AS BIGINT) FROM deposits \
                WHERE state = 'forfeited' AND pending_action IS NULL) AS forfeited_msat, \
             (SELECT COUNT(*) FROM reward_payouts WHERE state = 'succeeded') AS paid_count, \
             (SELECT CAST(COALESCE(SUM(amount_msat), 0) AS BIGINT) FROM reward_payouts \
                WHERE state = 'succeeded') AS paid_msat";
        dispatch!(self, p => {
            let row = sqlx::query(sql).fetch_one(p).await?;
            let n = |name: &str, table: &'static str| -> Result<u64, StoreError> {
                to_u64(row.try_get(name)?, table, name)
            };
            Ok(MoneySummary {
                held_count: n("held_count", "deposits")?,
                held_msat: n("held_msat", "deposits")?,
                awaiting_payment_count: n("unpaid_count", "deposits")?,
                pending_actions: n("pending", "deposits")?,
                forfeited_msat: n("forfeited_msat", "deposits")?,
                rewards_paid_msat: n("paid_msat", "reward_payouts")?,
                rewards_paid_count: n("paid_count", "reward_payouts")?,
            })
        })
    }
}
