//! Public wall endpoints under `/.well-known/lightning-wall/` (public listener, routed by Envoy):
//! deposit status (long-poll; reveals the credential and sets the cookie once held) and leave
//! (refund now; reports any unclaimed reward). Rewards are claimed in `rewards`. Both require the deposit's macaroon, checked against our key ring. A third party
//! must never be able to cost a visitor their deposit: nothing here can forfeit, and a
//! cookie-authenticated leave is refused when the request is cross-site.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use crate::deposit::engine::Stepped;
use crate::deposit::machine::Event;
use crate::deposit::{DepositState, TokenId};
use crate::node::PaymentHash;
use crate::store::StoredDeposit;

pub const PREFIX: &str = "/.well-known/lightning-wall";
pub const COOKIE: &str = "lightning-wall";
/// Longest long-poll.
const MAX_WAIT: Duration = Duration::from_secs(60);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(&format!("{PREFIX}/deposit"), get(deposit_status))
        // GET is the leave page (wall_page.rs), POST the leave action.
        .route(
            &format!("{PREFIX}/leave"),
            post(leave).get(super::wall_page::leave_page),
        )
}

/// Where the macaroon came from: cookies are sent by browsers on their own, so they get the
/// cross-site checks; an `Authorization` header is set deliberately by the caller.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Presented {
    Header,
    Cookie,
}

struct Caller {
    macaroon: l402::Macaroon,
    identifier: l402::Identifier,
    receipt: l402::DepositReceipt,
    presented: Presented,
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

/// The deposit macaroon from `Authorization: L402 <b64>:[proof]` or the `lightning-wall`
/// cookie, with a valid signature under one of our keys and `lw_mode=deposit`.
fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let p = present(
        state,
        headers,
        "send the deposit macaroon: Authorization: L402 <macaroon>:",
    )?;
    if p.mode != Some(l402::Mode::Deposit) {
        return Err(invalid_credential("not a deposit token"));
    }
    Ok(Caller {
        receipt: p.receipt,
        macaroon: p.macaroon,
        identifier: p.identifier,
        presented: p.presented,
    })
}

async fn load(state: &AppState, caller: &Caller) -> Result<StoredDeposit, ApiError> {
    let hash = PaymentHash(*caller.identifier.payment_hash.as_bytes());
    let stored = state
        .engine
        .store()
        .deposit(&hash)
        .await?
        .filter(|d| d.deposit.token_id == TokenId(*caller.identifier.token_id.as_bytes()))
        .ok_or_else(|| ApiError::not_found("deposit_not_found", "no deposit for this token"))?;
    Ok(stored)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusQuery {
    /// Seconds to wait for the deposit to leave `awaiting_payment` (long-poll), at most 60.
    #[serde(default)]
    wait: u64,
}

/// Loopback clients (development) get a cookie without `Secure`, which browsers would not
/// store over plain http.
fn secure_cookie(headers: &HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    !matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

fn cookie(value: &str, secure: bool, max_age: Option<u64>) -> Option<HeaderValue> {
    let mut c = format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c).ok()
}

async fn deposit_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<StatusQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::bad_request("bad_query", format!("query: {e}")))?;
    let caller = authenticate(&state, &headers)?;
    let mut changes = state.engine.changes();
    let mut stored = load(&state, &caller).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(query.wait).min(MAX_WAIT);
    while stored.deposit.state == DepositState::AwaitingPayment
        && tokio::time::Instant::now() < deadline
    {
        // Woken by this replica's engine; the 1 s re-read covers changes made by another
        // replica or missed notifications.
        let _ = tokio::time::timeout_at(
            deadline.min(tokio::time::Instant::now() + Duration::from_secs(1)),
            async {
                while let Ok(hash) = changes.recv().await {
                    if hash == stored.deposit.payment_hash {
                        return;
                    }
                }
            },
        )
        .await;
        stored = load(&state, &caller).await?;
    }
    let d = &stored.deposit;
    let mut body = json!({
        "state": d.state.as_str(),
        "payment_hash": hex::encode(d.payment_hash.0),
        "token_id": d.token_id.to_string(),
        "route_id": d.route_id,
        "amount_sat": d.amount_msat / 1000,
        "invoice": stored.payment_request,
        "invoice_expires_at": d.invoice_expires_at.0,
    });
    let revoked = state.engine.store().is_revoked(&d.token_id).await?;
    let mut response_headers = HeaderMap::new();
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if d.state == DepositState::Held && !revoked {
        // The receipt is revealed only now: the node holds the payment.
        let credential =
            l402::format_credential(&caller.macaroon, Some(caller.receipt.expose_secret()));
        if let Some(hold) = d.hold {
            body["held_since"] = json!(hold.held_at.0);
        }
        if let Some(c) = cookie(&credential, secure_cookie(&headers), None) {
            response_headers.insert(header::SET_COOKIE, c);
        }
        body["credential"] = json!(credential);
    }
    if let Some(r) = d.resolution {
        body["ended_at"] = json!(r.at.0);
        body["reason"] = json!(r.trigger.as_str());
    }
    Ok((StatusCode::OK, response_headers, Json(body)).into_response())
}

/// A cookie-authenticated request from another site must not end the visitor's session.
fn cross_site(headers: &HeaderMap) -> bool {
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => site == "cross-site",
        // Older browsers: an Origin that is not our Host means another site.
        None => match (
            headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
            headers.get(header::HOST).and_then(|v| v.to_str().ok()),
        ) {
            (Some(origin), Some(host)) => origin.split_once("://").map(|(_, h)| h) != Some(host),
            _ => false,
        },
    }
}

async fn leave(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers)?;
    if caller.presented == Presented::Cookie && cross_site(&headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site_refused",
            "leave must be requested from the site itself",
        ));
    }
    let stored = load(&state, &caller).await?;
    let stepped = state
        .engine
        .event(&stored.deposit.payment_hash, Event::VisitorLeft)
        .await?;
    let (d, changed) = match &stepped {
        Stepped::Changed(d) => (d, true),
        Stepped::Unchanged(d, _) => (d, false),
    };
    let mut response_headers = HeaderMap::new();
    if let Some(c) = cookie("", secure_cookie(&headers), Some(0)) {
        response_headers.insert(header::SET_COOKIE, c);
    }
    let mut body = json!({"state": d.state.as_str(), "changed": changed});
    // The cookie goes, but an unclaimed reward stays the visitor's: say how much, and hand
    // out an LNURL to claim it with right away (the credential keeps working for claiming).
    let account = state.engine.store().reward_account(&d.token_id).await?;
    body["reward_balance_sat"] = json!(account.balance_msat() / 1000);
    if let Some((lnurl, _)) =
        super::rewards::new_lnurl(&state, &headers, &d.token_id, &account).await?
    {
        body["reward_lnurl"] = json!(lnurl);
    }
    Ok((StatusCode::OK, response_headers, Json(body)).into_response())
}
