//! Verifying a credential for one request, with no call-out: identifier, key lookup, signature
//! chain, caveats against the request, then the proof (preimage or deposit receipt) in constant
//! time. It must never report a request-dependent reason (expired, wrong route…) for a token
//! whose signature has not been verified.

use crate::caveat::{self, CaveatError, CaveatSet, Mode};
use crate::credential::{Credential, CredentialError};
use crate::identifier::{Identifier, IdentifierError};
use crate::keys::{DepositReceipt, KeyEntry, KeyRing, PayReceipt, PaymentHash, Proof, TokenId};
use crate::macaroon::{MacaroonError, MacaroonRef};

/// What the request asks for, as the filter's route table decided it.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// Service name the tokens are issued for (`services=<svc>:…`).
    pub service: &'a str,
    /// Current time, unix seconds.
    pub now_unix: u64,
    /// The matched route's id.
    pub route: &'a str,
    /// The request's HTTP method.
    pub method: &'a str,
    /// The matched route's mode.
    pub mode: Mode,
    /// A capability the route requires, checked against `<svc>_capabilities` when present.
    pub capability: Option<&'a str>,
}

/// A credential that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The token id (hex with [`TokenId::to_hex`]).
    pub token_id: TokenId,
    /// The invoice's payment hash.
    pub payment_hash: PaymentHash,
    /// The token's mode.
    pub mode: Mode,
    /// The route the token is bound to.
    pub route: String,
    /// Expiry, unix seconds (exclusive).
    pub valid_until: u64,
}

/// Why a credential does not grant the request. [`VerifyError::reason`] gives a stable
/// machine-readable string for each variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The header or cookie value is not a credential.
    #[error("credential: {0}")]
    Credential(#[from] CredentialError),
    /// The macaroon bytes do not decode.
    #[error("macaroon: {0}")]
    Macaroon(#[from] MacaroonError),
    /// More than one macaroon: lightning-wall issues no third-party caveats, so a discharge
    /// macaroon has nothing to discharge.
    #[error("credential carries {count} macaroons; exactly one is expected")]
    SeveralMacaroons {
        /// How many.
        count: usize,
    },
    /// The identifier is not an L402 version-0 identifier.
    #[error("identifier: {0}")]
    Identifier(#[from] IdentifierError),
    /// No `lw_key` caveat, so no master key to verify with.
    #[error("token names no key (lw_key caveat missing)")]
    MissingKeyId,
    /// The key ring has no key with the token's key id.
    #[error("token's key id is not in the key ring")]
    UnknownKey,
    /// The HMAC chain does not match.
    #[error("macaroon signature does not verify")]
    BadSignature,
    /// A caveat is malformed or widens an earlier one.
    #[error("caveat: {0}")]
    Caveat(#[from] CaveatError),
    /// A condition every lightning-wall token carries is missing.
    #[error("token has no {condition} caveat")]
    MissingCaveat {
        /// The condition.
        condition: &'static str,
    },
    /// The token's `services` does not include the service.
    #[error("token is not valid for this service")]
    WrongService,
    /// `now >= valid_until`.
    #[error("token expired at {valid_until}")]
    Expired {
        /// The expiry, unix seconds.
        valid_until: u64,
    },
    /// The token is bound to another route.
    #[error("token is bound to another route")]
    WrongRoute,
    /// The method is not in `lw_methods`.
    #[error("token does not allow this HTTP method")]
    WrongMethod,
    /// The token's mode is not the route's.
    #[error("token mode {token} does not match the route's mode {route}")]
    WrongMode {
        /// The token's mode.
        token: Mode,
        /// The route's mode.
        route: Mode,
    },
    /// `<svc>_capabilities` does not include the capability the route requires.
    #[error("token lacks the capability the route requires")]
    MissingCapability,
    /// A valid token presented without a proof (`L402 <mac>:`): a deposit whose receipt the
    /// client does not have yet, or a payment not made.
    #[error("credential has no proof")]
    ProofMissing {
        /// The token's id.
        token_id: TokenId,
        /// The token's payment hash.
        payment_hash: PaymentHash,
        /// The token's mode.
        mode: Mode,
    },
    /// The proof is not the preimage or pay receipt (pay), or the receipt (deposit).
    #[error("proof does not match the token")]
    BadProof,
}

impl VerifyError {
    /// A stable, machine-readable reason (for logs, metrics and the 401 body). Never changes
    /// meaning once released; see `docs/caveats.md`.
    pub const fn reason(&self) -> &'static str {
        match self {
            VerifyError::Credential(CredentialError::Conflicting) => "conflicting_credentials",
            VerifyError::Credential(_) | VerifyError::Macaroon(_) => "malformed",
            VerifyError::SeveralMacaroons { .. } => "malformed",
            VerifyError::Identifier(IdentifierError::UnknownVersion { .. }) => "unknown_version",
            VerifyError::Identifier(_) => "malformed",
            VerifyError::MissingKeyId => "missing_caveat",
            VerifyError::UnknownKey => "unknown_key",
            VerifyError::BadSignature => "bad_signature",
            VerifyError::Caveat(CaveatError::Widened { .. } | CaveatError::ModeChanged { .. }) => {
                "widened_caveat"
            }
            VerifyError::Caveat(_) => "malformed_caveat",
            VerifyError::MissingCaveat { .. } => "missing_caveat",
            VerifyError::WrongService => "wrong_service",
            VerifyError::Expired { .. } => "expired",
            VerifyError::WrongRoute => "wrong_route",
            VerifyError::WrongMethod => "wrong_method",
            VerifyError::WrongMode { .. } => "wrong_mode",
            VerifyError::MissingCapability => "missing_capability",
            VerifyError::ProofMissing { .. } => "proof_missing",
            VerifyError::BadProof => "bad_proof",
        }
    }
}

/// Verifies a parsed credential for a request: the one entry point the filter needs.
pub fn verify(
    ring: &KeyRing,
    credential: &Credential,
    ctx: &RequestContext<'_>,
) -> Result<VerifiedToken, VerifyError> {
    let count = credential.macaroon_count();
    if count != 1 {
        return Err(VerifyError::SeveralMacaroons { count });
    }
    let macaroon = MacaroonRef::decode(credential.macaroon())?;
    verify_macaroon(ring, &macaroon, credential.proof(), ctx)
}

/// Parses `Authorization` values (several allowed, conflicts refused) and verifies.
/// `Ok(None)` when no value uses the `L402`/`LSAT` scheme.
pub fn verify_authorization<'v>(
    ring: &KeyRing,
    values: impl IntoIterator<Item = &'v [u8]>,
    ctx: &RequestContext<'_>,
) -> Result<Option<VerifiedToken>, VerifyError> {
    match Credential::from_authorization_values(values)? {
        Some(credential) => verify(ring, &credential, ctx).map(Some),
        None => Ok(None),
    }
}

/// For the sidecar's deposit status endpoint: the receipt of a presented macaroon, revealed only
/// if the macaroon is genuine (its chain verifies under the key ring) and is a deposit token
/// (`lw_mode=deposit`, no widening caveats). Expiry and route are not checked: whether the
/// deposit is held is the sidecar's question, asked of its own state.
pub fn deposit_receipt_for(
    ring: &KeyRing,
    macaroon: &[u8],
) -> Result<(Identifier, DepositReceipt), VerifyError> {
    let macaroon = MacaroonRef::decode(macaroon)?;
    let (identifier, entry) = check_signature(ring, &macaroon)?;
    // No service is in scope here: `services` and the unscoped `lw_` conditions are still
    // checked for malformation and widening.
    let set = CaveatSet::evaluate(macaroon.caveats(), "")?;
    match set.mode {
        Some(Mode::Deposit) => Ok((identifier, entry.deposit_receipt(&identifier))),
        Some(mode) => Err(VerifyError::WrongMode {
            token: mode,
            route: Mode::Deposit,
        }),
        None => Err(VerifyError::MissingCaveat {
            condition: caveat::MODE,
        }),
    }
}

/// For the filter's confirmation of an empty-proof pay credential: the pay receipt of a genuine
/// pay macaroon (`lw_mode=pay`), which the sidecar hands out only once the invoice settled.
pub fn pay_receipt_for(
    ring: &KeyRing,
    macaroon: &[u8],
) -> Result<(Identifier, PayReceipt), VerifyError> {
    let macaroon = MacaroonRef::decode(macaroon)?;
    let (identifier, entry) = check_signature(ring, &macaroon)?;
    let set = CaveatSet::evaluate(macaroon.caveats(), "")?;
    match set.mode {
        Some(Mode::Pay) => Ok((identifier, entry.pay_receipt(&identifier))),
        Some(mode) => Err(VerifyError::WrongMode {
            token: mode,
            route: Mode::Pay,
        }),
        None => Err(VerifyError::MissingCaveat {
            condition: caveat::MODE,
        }),
    }
}

/// Checks the identifier, finds the key named by `lw_key` and verifies the HMAC chain in
/// constant time. Nothing about the caveats' meaning is looked at.
pub fn check_signature<'r>(
    ring: &'r KeyRing,
    macaroon: &MacaroonRef<'_>,
) -> Result<(Identifier, &'r KeyEntry), VerifyError> {
    let identifier = Identifier::decode(macaroon.identifier())?;
    let key_id = caveat::find_key_id(macaroon.caveats()).ok_or(VerifyError::MissingKeyId)?;
    let entry = ring.get(key_id).ok_or(VerifyError::UnknownKey)?;
    let root = entry.root_key(macaroon.identifier());
    if !macaroon.verify_signature_with(&ring.generator, &root) {
        return Err(VerifyError::BadSignature);
    }
    Ok((identifier, entry))
}

/// Verifies a decoded macaroon and proof for a request.
pub fn verify_macaroon(
    ring: &KeyRing,
    macaroon: &MacaroonRef<'_>,
    proof: Option<&Proof>,
    ctx: &RequestContext<'_>,
) -> Result<VerifiedToken, VerifyError> {
    let (identifier, entry) = check_signature(ring, macaroon)?;
    let set = CaveatSet::evaluate(macaroon.caveats(), ctx.service)?;
    let (mode, route, valid_until) = check_request(&set, ctx)?;
    let Some(proof) = proof else {
        return Err(VerifyError::ProofMissing {
            token_id: identifier.token_id,
            payment_hash: identifier.payment_hash,
            mode,
        });
    };
    // The mode comes from the signed caveat (equal to the route's): a deposit token's preimage,
    // which the visitor's wallet learns when a deposit is forfeited (settled), never passes
    // as a payment proof.
    let proof_ok = match mode {
        // The preimage, or the pay receipt the sidecar hands out once the node reports the
        // invoice settled (payers whose wallet never shows the preimage). Both are compared in
        // full, so which one matched tells an attacker nothing.
        Mode::Pay => {
            let hash = crate::hmac_sha256::sha256(proof.expose_secret());
            let by_preimage = crate::keys::ct_eq_32(&hash, identifier.payment_hash.as_bytes());
            let by_receipt = crate::keys::ct_eq_32(
                entry.pay_receipt_raw(macaroon.identifier()).expose_secret(),
                proof.expose_secret(),
            );
            by_preimage | by_receipt
        }
        Mode::Deposit => crate::keys::ct_eq_32(
            entry
                .deposit_receipt_raw(macaroon.identifier())
                .expose_secret(),
            proof.expose_secret(),
        ),
    };
    if !proof_ok {
        return Err(VerifyError::BadProof);
    }
    Ok(VerifiedToken {
        token_id: identifier.token_id,
        payment_hash: identifier.payment_hash,
        mode,
        route: route.to_owned(),
        valid_until,
    })
}

/// Checks the folded caveats against the request. Every lightning-wall token carries
/// services, expiry, mode and route; a token without one was not minted by us and is refused
/// rather than read as unrestricted.
pub fn check_request<'a>(
    set: &CaveatSet<'a>,
    ctx: &RequestContext<'_>,
) -> Result<(Mode, &'a str, u64), VerifyError> {
    let missing = |condition| VerifyError::MissingCaveat { condition };
    let services = set.services.ok_or(missing(caveat::SERVICES))?;
    if services.tier_of(ctx.service).is_none() {
        return Err(VerifyError::WrongService);
    }
    let valid_until = set.valid_until.ok_or(missing("valid_until"))?;
    // Aperture: valid while now < valid_until.
    if ctx.now_unix >= valid_until {
        return Err(VerifyError::Expired { valid_until });
    }
    let mode = set.mode.ok_or(missing(caveat::MODE))?;
    if mode != ctx.mode {
        return Err(VerifyError::WrongMode {
            token: mode,
            route: ctx.mode,
        });
    }
    let route = set.route.ok_or(missing(caveat::ROUTE))?;
    if route != ctx.route {
        return Err(VerifyError::WrongRoute);
    }
    if set.methods.is_some_and(|m| !m.contains(ctx.method)) {
        return Err(VerifyError::WrongMethod);
    }
    if let (Some(required), Some(granted)) = (ctx.capability, set.capabilities)
        && !granted.contains(required)
    {
        return Err(VerifyError::MissingCapability);
    }
    Ok((mode, route, valid_until))
}
