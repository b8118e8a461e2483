//! The `x-lightning-wall-*` header names. The filter strips every request header with
//! [`OWN_PREFIX`] (a client must not forge what the upstream trusts) and the upstream's
//! [`VERDICT`], [`REWARD`] and [`REWARD_ID`] from every response.

/// Every header of ours starts with this.
pub const OWN_PREFIX: &str = "x-lightning-wall-";
/// Upstream request: the token id (lowercase hex) of the credential that was verified.
pub const TOKEN: &str = "x-lightning-wall-token";
/// Upstream request: the route's mode (`pay`, `deposit`).
pub const MODE: &str = "x-lightning-wall-mode";
/// Upstream response: `forfeit` or `refund` the request's deposit.
pub const VERDICT: &str = "x-lightning-wall-verdict";
/// Upstream response: a reward in satoshis for the request's token.
pub const REWARD: &str = "x-lightning-wall-reward";
/// Upstream response: the reward's idempotency key.
pub const REWARD_ID: &str = "x-lightning-wall-reward-id";
/// Client response: the full credential after an empty-proof credential was confirmed.
pub const CREDENTIAL: &str = "x-lightning-wall-credential";
/// Client response: why the filter answered itself.
pub const REASON: &str = "x-lightning-wall-reason";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_header_is_lowercase_and_ours() {
        for name in [TOKEN, MODE, VERDICT, REWARD, REWARD_ID, CREDENTIAL, REASON] {
            assert!(name.starts_with(OWN_PREFIX), "{name}");
            assert_eq!(name, name.to_ascii_lowercase());
        }
    }
}
