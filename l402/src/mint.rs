//! Minting: the macaroon a 402 challenge hands out, with the caveats that bind it to a service,
//! an expiry, a mode, a route, methods and a master key. The caller supplies the random token id
//! and the clock; this module must never mint a caveat the verifier would reject.

use crate::caveat::{self, Mode};
use crate::identifier::Identifier;
use crate::keys::{KeyRing, PaymentHash, TokenId};
use crate::macaroon::{Macaroon, MacaroonError};

/// The location written into every macaroon (a hint only: it is not signed).
pub const LOCATION: &str = "lightning-wall";

/// What a new token allows.
#[derive(Debug, Clone, Copy)]
pub struct TokenSpec<'a> {
    /// Service name for `services=<svc>:0` and `<svc>_valid_until` (`[A-Za-z0-9._-]{1,64}`).
    pub service: &'a str,
    /// Pay or deposit.
    pub mode: Mode,
    /// Route id (`[A-Za-z0-9._:/-]{1,128}`).
    pub route: &'a str,
    /// HTTP methods allowed; empty means any method on the route (no `lw_methods` caveat).
    pub methods: &'a [&'a str],
    /// Unix seconds until which the token is valid (exclusive).
    pub valid_until: u64,
    /// The invoice's payment hash.
    pub payment_hash: PaymentHash,
    /// 32 random bytes from the caller's CSPRNG.
    pub token_id: TokenId,
}

/// Why a token cannot be minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    /// The key ring has no key with this id.
    #[error("no master key with id {0:?} in the key ring")]
    UnknownKey(String),
    /// The service name is not `[A-Za-z0-9._-]{1,64}`.
    #[error("service name must be 1 to 64 characters of A-Z a-z 0-9 . _ -")]
    InvalidService,
    /// The route id is not `[A-Za-z0-9._:/-]{1,128}`.
    #[error("route id must be 1 to 128 characters of A-Z a-z 0-9 . _ : / -")]
    InvalidRoute,
    /// A method is not an HTTP token.
    #[error("HTTP method {0:?} is not a valid method token")]
    InvalidMethod(String),
    /// The macaroon would exceed the codec's bounds.
    #[error("macaroon: {0}")]
    Macaroon(#[from] MacaroonError),
}

impl KeyRing {
    /// Mints a macaroon for `spec` under master key `key_id`. Caveats, in order:
    /// `services=<svc>:0`, `<svc>_valid_until=<unix>`, `lw_mode`, `lw_route`,
    /// `lw_methods` (when methods are given), `lw_key`.
    pub fn mint(&self, key_id: &str, spec: &TokenSpec<'_>) -> Result<Macaroon, MintError> {
        let entry = self
            .get(key_id)
            .ok_or_else(|| MintError::UnknownKey(key_id.to_owned()))?;
        if !caveat::is_service_name(spec.service) {
            return Err(MintError::InvalidService);
        }
        if !caveat::is_route_id(spec.route) {
            return Err(MintError::InvalidRoute);
        }
        if let Some(bad) = spec.methods.iter().find(|m| !caveat::is_method(m)) {
            return Err(MintError::InvalidMethod((*bad).to_owned()));
        }
        let identifier = Identifier::new(spec.payment_hash, spec.token_id).encode();
        let root = entry.root_key(&identifier);
        let mut mac = Macaroon::new(&root, &identifier, Some(LOCATION))?;
        let svc = spec.service;
        mac.add_first_party_caveat(format!("{}={svc}:0", caveat::SERVICES).as_bytes())?;
        mac.add_first_party_caveat(
            format!("{svc}{}={}", caveat::VALID_UNTIL_SUFFIX, spec.valid_until).as_bytes(),
        )?;
        mac.add_first_party_caveat(format!("{}={}", caveat::MODE, spec.mode).as_bytes())?;
        mac.add_first_party_caveat(format!("{}={}", caveat::ROUTE, spec.route).as_bytes())?;
        if !spec.methods.is_empty() {
            let methods = spec.methods.join(",");
            mac.add_first_party_caveat(format!("{}={methods}", caveat::METHODS).as_bytes())?;
        }
        mac.add_first_party_caveat(format!("{}={}", caveat::KEY, entry.id()).as_bytes())?;
        Ok(mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caveat::CaveatSet;

    fn spec() -> TokenSpec<'static> {
        TokenSpec {
            service: "wall",
            mode: Mode::Deposit,
            route: "docs",
            methods: &["GET", "HEAD"],
            valid_until: 1_800_000_000,
            payment_hash: PaymentHash([5; 32]),
            token_id: TokenId([6; 32]),
        }
    }

    #[test]
    fn minted_tokens_carry_every_binding_and_verify_under_their_root_key() {
        let ring = KeyRing::from_keys([("k1", [1; 32]), ("k2", [2; 32])]).unwrap();
        let mac = ring.mint("k2", &spec()).unwrap();
        let caveats: Vec<String> = mac
            .caveats()
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        assert_eq!(
            caveats,
            [
                "services=wall:0",
                "wall_valid_until=1800000000",
                "lw_mode=deposit",
                "lw_route=docs",
                "lw_methods=GET,HEAD",
                "lw_key=k2"
            ]
        );
        assert_eq!(mac.location(), Some(LOCATION));
        let ident = Identifier::decode(mac.identifier()).unwrap();
        assert_eq!(ident.token_id, TokenId([6; 32]));
        assert!(mac.verify_signature(&ring.get("k2").unwrap().root_key(mac.identifier())));
        assert!(!mac.verify_signature(&ring.get("k1").unwrap().root_key(mac.identifier())));
        let set = CaveatSet::evaluate(mac.caveats(), "wall").unwrap();
        assert_eq!(set.key_id, Some("k2"));
    }

    #[test]
    fn no_methods_means_no_methods_caveat() {
        let ring = KeyRing::from_keys([("k1", [1; 32])]).unwrap();
        let mac = ring
            .mint(
                "k1",
                &TokenSpec {
                    methods: &[],
                    ..spec()
                },
            )
            .unwrap();
        assert_eq!(mac.caveats().len(), 5);
    }

    #[test]
    fn minting_refuses_values_the_verifier_would_reject() {
        let ring = KeyRing::from_keys([("k1", [1; 32])]).unwrap();
        assert_eq!(
            ring.mint("nope", &spec()),
            Err(MintError::UnknownKey("nope".into()))
        );
        let bad_service = TokenSpec {
            service: "a b",
            ..spec()
        };
        assert_eq!(
            ring.mint("k1", &bad_service),
            Err(MintError::InvalidService)
        );
        let bad_route = TokenSpec {
            route: "a,b",
            ..spec()
        };
        assert_eq!(ring.mint("k1", &bad_route), Err(MintError::InvalidRoute));
        let bad_method = TokenSpec {
            methods: &["GET,POST"],
            ..spec()
        };
        assert!(matches!(
            ring.mint("k1", &bad_method),
            Err(MintError::InvalidMethod(_))
        ));
    }
}
