//! Confirming an empty-proof credential with the sidecar: where to ask (the deposit or the
//! payment status), what its answer means, and the shared cache of confirmations, so a token is
//! asked about once. Never admits a token by itself: a confirmation goes through `admit`.

use lightning_wall_contract::paths;
use lightning_wall_contract::status::{self, StatusState};

use super::grant::Grant;
use super::host::Host;
use super::limits;
use super::policy::RouteMode;
use super::revocations::TokenId;

/// Slots of the held-deposit cache (`lw.held.<slot>`, each naming one token): bounded, and a
/// token pushed out by another only costs one more call-out.
pub const HELD_SLOTS: u64 = 4096;

fn held_key(token: &TokenId) -> String {
    format!("lw.held.{}", limits::token_owner(token) % HELD_SLOTS)
}

/// Whether a confirmation that this token's deposit is held is cached (shared by workers).
pub fn held_cached(host: &dyn Host, grant: &Grant) -> bool {
    host.shared_get(&held_key(&grant.token_id)).bytes == grant.token_hex.as_bytes()
}

/// Caches the sidecar's confirmation. A later refund or forfeit revokes the token, and the
/// revocation is checked before this cache, so the cache never outlives the deposit.
pub fn cache_held(host: &dyn Host, grant: &Grant) {
    let _ = host.shared_set(&held_key(&grant.token_id), grant.token_hex.as_bytes(), None);
}

/// The sidecar's answer to "is this deposit held?" (`GET /.well-known/lightning-wall/deposit`
/// with the empty-proof credential): `Some(true)` held, `Some(false)` not (awaiting payment or
/// ended), `None` could not tell (call failed, garbage).
pub fn held_from_status(status: Option<u16>, body: &[u8]) -> Option<bool> {
    confirmed_from_status(RouteMode::Deposit, status, body)
}

/// Where the sidecar answers whether an empty-proof credential of `mode` is good: the deposit
/// status (held) or the payment status (settled), `docs/internal-api.md`.
pub fn confirm_url(mode: RouteMode) -> &'static str {
    match mode {
        RouteMode::Pay => paths::PAYMENT_STATUS,
        RouteMode::Deposit | RouteMode::Free => paths::DEPOSIT_STATUS,
    }
}

/// [`held_from_status`] for either mode: a deposit must be `held`, a payment `settled`.
pub fn confirmed_from_status(mode: RouteMode, status: Option<u16>, body: &[u8]) -> Option<bool> {
    let good = match mode {
        RouteMode::Pay => status::SETTLED,
        RouteMode::Deposit | RouteMode::Free => status::HELD,
    };
    match status {
        Some(200) => {
            let s: StatusState = serde_json::from_slice(body).ok()?;
            Some(s.state == good)
        }
        // The sidecar knows no such deposit, refuses the macaroon, or the route wants the
        // preimage (403 `preimage_required`).
        Some(401 | 403 | 404) => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_settled_status_confirms_a_payment() {
        let pay = |status, body: &[u8]| confirmed_from_status(RouteMode::Pay, status, body);
        assert_eq!(pay(Some(200), br#"{"state":"settled"}"#), Some(true));
        assert_eq!(pay(Some(200), br#"{"state":"open"}"#), Some(false));
        assert_eq!(pay(Some(200), br#"{"state":"held"}"#), Some(false));
        assert_eq!(pay(Some(403), b""), Some(false));
        assert_eq!(pay(Some(503), b""), None);
        assert_eq!(
            confirmed_from_status(RouteMode::Deposit, Some(200), br#"{"state":"settled"}"#),
            Some(false)
        );
    }

    #[test]
    fn only_a_held_status_confirms_a_deposit() {
        assert_eq!(
            held_from_status(Some(200), br#"{"state":"held","x":1}"#),
            Some(true)
        );
        assert_eq!(
            held_from_status(Some(200), br#"{"state":"awaiting_payment"}"#),
            Some(false)
        );
        assert_eq!(held_from_status(Some(404), b""), Some(false));
        assert_eq!(held_from_status(Some(200), b"{"), None);
        assert_eq!(held_from_status(Some(503), b""), None);
        assert_eq!(held_from_status(None, b""), None);
    }
}
