//! What one worker VM keeps between requests, besides the policy: its outbox for the sidecar,
//! its view of the revocation set, and its cache of verified credentials.

use super::policy::Policy;
use super::revocations::Revocations;
use super::sync::Outbox;
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
}

impl WorkerState {
    /// A new policy is in force: cached verifications may rest on keys it no longer has.
    pub fn installed(&mut self, policy: &Policy) {
        self.verified.clear();
        self.revocations.set_horizon(policy.max_token_lifetime_s);
    }
}
