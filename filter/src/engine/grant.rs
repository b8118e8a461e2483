//! What a request allowed with a valid credential carries into its response phase ([`Grant`]),
//! and a verified token still waiting for the sidecar's confirmation ([`PendingGrant`]).

use super::policy::RouteMode;
use super::revocations::TokenId;

/// A request allowed with a valid credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Token id.
    pub token_id: TokenId,
    /// Token id, lowercase hex (sent upstream as `x-lightning-wall-token`).
    pub token_hex: String,
    /// The token's expiry when known (bounds how long a revocation of it is kept).
    pub valid_until: Option<u64>,
    /// The route's mode.
    pub mode: RouteMode,
    /// Index of the matched route in the policy.
    pub route: usize,
}

/// A verified deposit token waiting for the sidecar to confirm that its deposit is held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingGrant {
    /// The grant it becomes.
    pub grant: Grant,
    /// Whether the request's path is one of the route's trap paths.
    pub trap: bool,
    /// The full credential (`<macaroon>:<receipt hex>`) to hand back to the client.
    pub credential: String,
}
