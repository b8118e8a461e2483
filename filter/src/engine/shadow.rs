//! Shadow mode (docs/operations.md "Shadow mode"): on a route whose policy says `shadow`, the
//! filter challenges, charges, forfeits and refuses nothing, and counts what it would have
//! done — in metrics (`lightning_wall.shadow.*`) and as findings for the sidecar's audit. A
//! finding is only ever a count: nothing here can revoke a token or queue a verdict.

use lightning_wall_contract::events::{Finding, Trigger};

use super::host::{Host, Metric};
use super::routes::Route;
use super::worker::WorkerState;

/// A request that would have been challenged (402): counted; the caller lets it go upstream as
/// on a free route.
pub fn would_challenge(host: &dyn Host, w: &mut WorkerState, route: &Route) {
    host.count(Metric::WouldChallenge);
    w.outbox.finding(&route.id, Finding::WouldChallenge, None);
}

/// A request that would have been refused (bad credential, third-party request…) for `reason`
/// (the refusal's, one of the fixed metric reasons): counted, as a metric only; the caller lets
/// it go upstream as on a free route.
pub fn would_deny(host: &dyn Host, reason: &'static str) {
    host.count(Metric::WouldDeny(reason));
}

/// A deposit that `trigger` would have forfeited: counted, and nothing else.
pub fn would_forfeit(host: &dyn Host, w: &mut WorkerState, route_id: &str, trigger: Trigger) {
    host.count(Metric::WouldForfeit(trigger));
    w.outbox
        .finding(route_id, Finding::WouldForfeit, Some(trigger));
}

#[cfg(test)]
#[path = "shadow_tests.rs"]
mod tests;
