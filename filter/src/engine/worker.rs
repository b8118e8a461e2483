//! What one worker VM keeps between requests, besides the policy: its outbox for the sidecar,
//! its view of the revocation set, and its cache of verified credentials.

use super::host::Host;
use super::limits;
use super::policy::Policy;
use super::revocations::Revocations;
use super::sync::{Outbox, UsageKind};
use super::verified::VerifiedCache;

/// One worker's state.
#[derive(Debug, Default)]
pub struct WorkerState {
    /// Events for the sidecar.
    pub outbox: Outbox,
    /// Revoked tokens.
    pub revocations: Revocations,
    /// Credentials that verified.
    pub verified: VerifiedCache,
    /// This proxy instance's id in usage reports, read once from shared data.
    reporter: Option<u64>,
}

impl WorkerState {
    /// Queues this instance's count of a deposit token in a window for the sidecar, which sums
    /// the counts of every instance against the route's budget.
    pub fn report_usage(
        &mut self,
        host: &dyn Host,
        token_hex: &str,
        kind: UsageKind,
        window_start: u64,
        count: u32,
    ) {
        if self.reporter.is_none() {
            self.reporter = limits::instance_id(host);
        }
        if let Some(reporter) = self.reporter {
            self.outbox
                .usage(reporter, token_hex, kind, window_start, count);
        }
    }

    /// A new policy is in force: cached verifications may rest on keys it no longer has.
    pub fn installed(&mut self, policy: &Policy) {
        self.verified.clear();
        self.revocations.set_horizon(policy.max_token_lifetime_s);
    }
}
