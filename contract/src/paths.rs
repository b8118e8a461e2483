//! Where each side calls the other: the internal API the filter calls on the sidecar cluster,
//! and the public wall endpoints under [`WALL_PREFIX`] that Envoy routes to the sidecar (the
//! filter calls two of them itself to confirm an empty-proof credential).

/// `POST`: mint a challenge ([`crate::challenge`]).
pub const CHALLENGE: &str = "/v1/challenge";
/// `GET`: policy and key material ([`crate::bootstrap`]).
pub const BOOTSTRAP: &str = "/v1/bootstrap";
/// `GET ?since=<seq>&limit=<n>&store=<id>`: revocations since a sequence number
/// ([`crate::sync`]); `store` is the store id of the filter's bootstrap ([`crate::store_id`]).
pub const SYNC: &str = "/v1/sync";
/// `GET`: every live revocation in one binary body (docs/internal-api.md).
pub const REVOCATION_SNAPSHOT: &str = "/v1/revocations/snapshot";
/// `POST`: a batch of events ([`crate::events`]).
pub const EVENTS: &str = "/v1/events";

/// The public wall endpoints' prefix, with its trailing slash.
pub const WALL_PREFIX: &str = "/.well-known/lightning-wall/";
/// Deposit status (long-poll; reveals the credential once held).
pub const DEPOSIT_STATUS: &str = "/.well-known/lightning-wall/deposit";
/// Pay receipt for payers without the preimage.
pub const PAYMENT_STATUS: &str = "/.well-known/lightning-wall/payment";
/// Leave (POST) and the leave page (GET).
pub const LEAVE: &str = "/.well-known/lightning-wall/leave";
/// The no-JavaScript "I have paid: continue" form of the wall page (POST).
pub const CONTINUE: &str = "/.well-known/lightning-wall/continue";
/// The terms a machine can read.
pub const TERMS: &str = "/.well-known/lightning-wall/terms";
/// The nginx L402 module's manifest format.
pub const L402_SERVICES: &str = "/.well-known/lightning-wall/l402-services";
/// The reward balance; `/withdraw` and `/withdraw/callback` below it are LNURL-withdraw.
pub const REWARDS: &str = "/.well-known/lightning-wall/rewards";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wall_endpoint_is_under_the_wall_prefix() {
        for path in [
            DEPOSIT_STATUS,
            PAYMENT_STATUS,
            LEAVE,
            TERMS,
            L402_SERVICES,
            REWARDS,
        ] {
            assert!(path.starts_with(WALL_PREFIX), "{path}");
        }
        assert_eq!(WALL_PREFIX, "/.well-known/lightning-wall/");
    }
}
