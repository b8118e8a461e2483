//! Shadow findings (docs/operations.md "Shadow mode"): what the filter would have done on routes
//! in shadow, as counts per UTC day, route, finding and trigger. Aggregates, never one row per
//! request: an unpaid flood can send millions, and the table stays at routes × findings ×
//! triggers × days, the days bounded by [`SHADOW_RETENTION_DAYS`].

use lightning_wall_contract::events::{Finding, Trigger};
use sqlx::Row;

use super::{Store, StoreError, dispatch, to_i64, to_u64};
use crate::ids::Timestamp;

/// Days of findings kept (the dashboard shows the last 14; a week of shadow fits twice over).
pub const SHADOW_RETENTION_DAYS: u64 = 35;

const DAY_S: u64 = 86_400;

/// What the filter counted for one route, finding and trigger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShadowCount {
    pub route_id: String,
    pub finding: Finding,
    /// The would-be forfeit's trigger; `None` for a would-be challenge.
    pub trigger: Option<Trigger>,
    pub count: u64,
}

/// One day's total of a [`ShadowCount`] key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShadowDay {
    /// Unix seconds of the day's 00:00 UTC.
    pub day: Timestamp,
    pub finding: ShadowCount,
}

const UPSERT: &str = "INSERT INTO shadow_findings (day, route_id, finding, trigger, count) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (day, route_id, finding, trigger) \
     DO UPDATE SET count = shadow_findings.count + excluded.count";

fn trigger_from(s: &str) -> Result<Option<Trigger>, StoreError> {
    Ok(Some(match s {
        "" => return Ok(None),
        "trap_path" => Trigger::TrapPath,
        "rate_limit" => Trigger::RateLimit,
        "error_storm" => Trigger::ErrorStorm,
        "upstream" => Trigger::Upstream,
        other => return Err(corrupt(format!("unknown trigger {other:?}"))),
    }))
}

fn finding_from(s: &str) -> Result<Finding, StoreError> {
    match s {
        "would_challenge" => Ok(Finding::WouldChallenge),
        "would_forfeit" => Ok(Finding::WouldForfeit),
        other => Err(corrupt(format!("unknown finding {other:?}"))),
    }
}

fn corrupt(problem: String) -> StoreError {
    StoreError::Corrupt {
        table: "shadow_findings",
        problem,
    }
}

impl Store {
    /// Adds `counts` to today's totals (one transaction) and drops days past the retention.
    pub async fn record_shadow(
        &self,
        counts: &[ShadowCount],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        let day = to_i64(now.0 / DAY_S * DAY_S, "day")?;
        let oldest = to_i64(
            (now.0 / DAY_S).saturating_sub(SHADOW_RETENTION_DAYS) * DAY_S,
            "day",
        )?;
        dispatch!(self, p => {
            let mut tx = p.begin().await?;
            sqlx::query("DELETE FROM shadow_findings WHERE day < $1")
                .bind(oldest)
                .execute(&mut *tx)
                .await?;
            for c in counts {
                // A count past i64 (never from a real filter) is stored as the most it can hold.
                let count = i64::try_from(c.count).unwrap_or(i64::MAX);
                sqlx::query(UPSERT)
                    .bind(day)
                    .bind(&c.route_id)
                    .bind(c.finding.as_str())
                    .bind(c.trigger.map_or("", Trigger::as_str))
                    .bind(count)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The findings of the days since `since`, newest day first, then by route, finding and
    /// trigger.
    pub async fn shadow_findings(&self, since: Timestamp) -> Result<Vec<ShadowDay>, StoreError> {
        let since_i = to_i64(since.0 / DAY_S * DAY_S, "since")?;
        dispatch!(self, p => {
            let rows = sqlx::query(
                "SELECT day, route_id, finding, trigger, count FROM shadow_findings \
                 WHERE day >= $1 ORDER BY day DESC, route_id, finding, trigger",
            )
            .bind(since_i)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let finding: String = row.try_get("finding")?;
                let trigger: String = row.try_get("trigger")?;
                out.push(ShadowDay {
                    day: Timestamp(to_u64(row.try_get("day")?, "shadow_findings", "day")?),
                    finding: ShadowCount {
                        route_id: row.try_get("route_id")?,
                        finding: finding_from(&finding)?,
                        trigger: trigger_from(&trigger)?,
                        count: to_u64(row.try_get("count")?, "shadow_findings", "count")?,
                    },
                });
            }
            Ok(out)
        })
    }
}
