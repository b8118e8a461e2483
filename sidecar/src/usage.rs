//! Per-token request and error-storm budgets counted across every proxy replica
//! (docs/deployment.md "Several Envoy replicas"). Each filter instance counts a deposit token's
//! requests and upstream errors in its own shared data and reports its count per window with
//! its events; the store sums the instances' counts; when the sum crosses the route's budget
//! the deposit is forfeited with the trigger the filter itself would have used. Only held
//! deposits are counted, so nobody who has not paid can make the store keep anything.

use std::time::Duration;

use serde_json::{Value, json};

use crate::config::{Config, DepositPolicy};
use crate::deposit::lifecycle::{Lifecycle, LifecycleError, Stepped};
use crate::deposit::machine::{Event, Outcome};
use crate::deposit::{DepositState, Trigger};
use crate::ids::{Timestamp, TokenId};
use crate::store::UsageReport;

/// How long after its window ends a report is still taken, and its rows kept: covers a
/// filter's sync period and a short outage of the sidecar. A later report is ignored, which
/// only loosens a limit.
pub const GRACE: Duration = Duration::from_secs(60);

/// What a count is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageKind {
    /// Requests served on the token (the route's `rate_limit`).
    Requests,
    /// Upstream 4xx answers to them (the route's `error_storm`).
    Errors,
}

impl UsageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UsageKind::Requests => "requests",
            UsageKind::Errors => "errors",
        }
    }

    /// The verdict's trigger when this count crosses its budget.
    pub fn trigger(self) -> Trigger {
        match self {
            UsageKind::Requests => Trigger::RateLimit,
            UsageKind::Errors => Trigger::ErrorStorm,
        }
    }
}

/// One filter instance's count of a token in a window, as reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub token_id: TokenId,
    pub kind: UsageKind,
    pub window_start: u64,
    pub reporter: String,
    pub count: u64,
}

/// A budget: more than `limit` in a window of `per_s` seconds forfeits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub limit: u64,
    pub per_s: u64,
}

/// The route's budget for `kind`, if it has one.
pub fn budget(policy: &DepositPolicy, kind: UsageKind) -> Option<Budget> {
    let (limit, per) = match kind {
        UsageKind::Requests => policy.rate_limit.map(|r| (r.requests, r.per))?,
        UsageKind::Errors => policy.error_storm.map(|e| (e.errors, e.within))?,
    };
    Some(Budget {
        limit: u64::from(limit),
        per_s: per.as_secs().max(1),
    })
}

/// Whether a report of the window starting at `window_start` is taken at `now`: until the
/// window has been over for [`GRACE`], and not from further ahead than that (a filter host's
/// clock ahead of ours). Bounds how many windows of one token the store holds.
pub fn window_open(window_start: u64, budget: Budget, now: Timestamp) -> bool {
    let grace = GRACE.as_secs();
    let end = window_start.saturating_add(budget.per_s);
    end.saturating_add(grace) >= now.0 && window_start <= now.0.saturating_add(grace)
}

/// Records reports and forfeits every deposit whose global count crossed its budget. One
/// result per report, in order: `counted` (with the window's total), `applied`/`unchanged` (a
/// forfeit), `ignored` (not a held deposit, no such budget, window closed) or `unknown_token`.
pub async fn record(
    lifecycle: &Lifecycle,
    config: &Config,
    reports: &[Report],
) -> Result<Vec<Value>, LifecycleError> {
    let now = lifecycle.now();
    let mut results = vec![json!({"result": "ignored"}); reports.len()];
    let mut taken = Vec::new();
    let mut rows = Vec::new();
    for (i, r) in reports.iter().enumerate() {
        let Some(stored) = lifecycle.store().deposit_by_token(&r.token_id).await? else {
            results[i] = json!({"result": "unknown_token"});
            continue;
        };
        if stored.deposit.state != DepositState::Held {
            continue;
        }
        let budget = config
            .routes
            .iter()
            .find(|route| route.id == stored.deposit.route_id)
            .and_then(|route| route.deposit.as_ref())
            .and_then(|policy| budget(policy, r.kind));
        let Some(budget) = budget.filter(|b| window_open(r.window_start, *b, now)) else {
            continue;
        };
        taken.push((i, budget));
        rows.push(UsageReport {
            token_id: r.token_id,
            kind: r.kind,
            window_start: r.window_start,
            reporter: r.reporter.clone(),
            count: r.count,
            expires_at: Timestamp(
                r.window_start
                    .saturating_add(budget.per_s)
                    .saturating_add(GRACE.as_secs()),
            ),
        });
    }
    let totals = lifecycle.store().record_usage(&rows, now).await?;
    for ((i, budget), total) in taken.into_iter().zip(totals) {
        let r = &reports[i];
        if total <= budget.limit {
            results[i] = json!({"result": "counted", "total": total});
            continue;
        }
        let verdict = Event::Verdict {
            outcome: Outcome::Forfeit,
            trigger: r.kind.trigger(),
        };
        results[i] = match lifecycle.event_by_token(&r.token_id, verdict).await {
            Ok(Stepped::Changed(d)) => {
                tracing::info!(
                    kind = r.kind.as_str(),
                    total,
                    limit = budget.limit,
                    "a deposit's count across replicas crossed its budget: forfeited"
                );
                json!({"result": "applied", "state": d.state.as_str()})
            }
            Ok(Stepped::Unchanged(d, _)) => {
                json!({"result": "unchanged", "state": d.state.as_str()})
            }
            Err(LifecycleError::NotFound) => json!({"result": "unknown_token"}),
            Err(e) => return Err(e),
        };
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Budget = Budget {
        limit: 20,
        per_s: 60,
    };

    #[test]
    fn a_window_is_taken_until_its_grace_ends_and_not_from_far_ahead() {
        assert!(window_open(600, B, Timestamp(600)));
        assert!(window_open(600, B, Timestamp(660 + 60)));
        assert!(!window_open(600, B, Timestamp(660 + 61)));
        assert!(window_open(660, B, Timestamp(600)));
        assert!(!window_open(661 + 60, B, Timestamp(600)));
    }
}
