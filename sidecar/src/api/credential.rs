//! The visitor's credential on the public endpoints: where it is (the `Authorization` header,
//! else the wall cookie), and the checks every public endpoint makes before reading it (our key
//! ring's signature, readable caveats). Below `wall`, `rewards`, `payment` and the pages, which
//! each add their own rule (deposit mode, a proof).

use axum::http::{HeaderMap, StatusCode, header};

use super::AppState;
use super::error::ApiError;

/// Where the public endpoints live (Envoy routes this prefix to the public listener).
pub const PREFIX: &str = "/.well-known/lightning-wall";
/// The wall cookie, holding the deposit credential once held.
pub const COOKIE: &str = "lightning-wall";

/// Where the macaroon came from: cookies are sent by browsers on their own, so they get the
/// cross-site checks; an `Authorization` header is set deliberately by the caller.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Presented {
    Header,
    Cookie,
}

pub(super) fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A credential from the `Authorization` header or, without one, the wall cookie, whose
/// macaroon carries our key ring's signature and caveats we can read. Its proof is not checked
/// here: the deposit endpoints accept the empty proof, the rewards endpoint checks it.
pub(super) struct Presentation {
    pub credential: l402::Credential,
    pub presented: Presented,
    pub macaroon: l402::Macaroon,
    pub identifier: l402::Identifier,
    /// What a deposit token's proof must be (the receipt our key derives for it).
    pub receipt: l402::DepositReceipt,
    /// What a pay token's receipt is (handed out once its invoice settled, `payment.rs`).
    pub pay_receipt: l402::PayReceipt,
    pub mode: Option<l402::Mode>,
    /// The `lw_route` caveat.
    pub route: Option<String>,
}

/// 401 `invalid_credential` saying why.
pub(super) fn invalid_credential(why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credential",
        format!("the credential is invalid: {why}"),
    )
}

/// Reads and checks the caller's credential (see [`Presentation`]); `missing` is the 401
/// message when there is none.
pub(super) fn present(
    state: &AppState,
    headers: &HeaderMap,
    missing: &str,
) -> Result<Presentation, ApiError> {
    let (credential, presented) = match headers.get(header::AUTHORIZATION) {
        Some(value) => (
            l402::Credential::parse_authorization(value.as_bytes())
                .map_err(invalid_credential)?
                .ok_or_else(|| invalid_credential("not an L402 or LSAT authorization"))?,
            Presented::Header,
        ),
        None => match cookie_value(headers, COOKIE) {
            Some(value) => (
                l402::Credential::parse_token(value.as_bytes()).map_err(invalid_credential)?,
                Presented::Cookie,
            ),
            None => return Err(ApiError::unauthorized(missing)),
        },
    };
    let mac = l402::MacaroonRef::decode(credential.macaroon()).map_err(invalid_credential)?;
    let (identifier, entry) =
        l402::check_signature(&state.keys.ring, &mac).map_err(invalid_credential)?;
    let caveats = l402::CaveatSet::evaluate(mac.caveats(), super::policy::SERVICE)
        .map_err(invalid_credential)?;
    Ok(Presentation {
        receipt: entry.deposit_receipt(&identifier),
        pay_receipt: entry.pay_receipt(&identifier),
        macaroon: mac.to_owned_macaroon(),
        presented,
        identifier,
        mode: caveats.mode,
        route: caveats.route.map(str::to_owned),
        credential,
    })
}
