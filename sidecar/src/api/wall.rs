//! Public wall endpoints under `/.well-known/lightning-wall/` (public listener, routed by Envoy):
//! deposit status (long-poll; reveals the credential and sets the cookie once held) and leave
//! (the token is revoked at once, the refund follows after the leave grace; reports any
//! unclaimed reward). Rewards are claimed in `rewards`. Both require the deposit's macaroon,
//! checked against our key ring. A third party must never be able to cost a visitor their
//! deposit: nothing here can forfeit, and a cookie-authenticated leave that another page could
//! have caused is refused (the filter's provenance rule, docs/filter.md "Provenance").

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lightning_wall_contract::paths;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::credential::{COOKIE, PREFIX, Presented, invalid_credential, present};
use super::error::ApiError;
use super::wall_page::{accepts_html, header_text};
use crate::deposit::lifecycle::Stepped;
use crate::deposit::waiters::{WaitRefused, WaitTicket};
use crate::deposit::{Deposit, DepositState};
use crate::ids::PaymentHash;
use crate::ids::TokenId;
use crate::mint_limit::provider_network_of_prefix;
use crate::store::StoredDeposit;

/// Longest long-poll.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// `Retry-After` of a status read answered at once because every long-poll place is taken.
const NO_PLACE_FULL_RETRY_S: u64 = 1;
/// The same when the deposit's provider network holds its whole share of the places.
const NO_PLACE_NETWORK_RETRY_S: u64 = 5;

/// The deposit status (long-poll): it passes the public store gate per read itself.
pub fn status_routes() -> Router<AppState> {
    Router::new().route(paths::DEPOSIT_STATUS, get(deposit_status))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        // GET is the leave page (wall_page.rs), POST the leave action.
        .route(paths::LEAVE, post(leave).get(super::wall_page::leave_page))
        .route(paths::CONTINUE, post(continue_after_paying))
}

struct Caller {
    macaroon: l402::Macaroon,
    identifier: l402::Identifier,
    receipt: l402::DepositReceipt,
    presented: Presented,
}

impl Caller {
    /// The full credential (`<macaroon>:<receipt>`), revealed only while the node holds the
    /// deposit and its token is not revoked: the one rule for the status answer and the
    /// no-JavaScript continue.
    fn credential_if_held(
        &self,
        deposit: &crate::deposit::Deposit,
        revoked: bool,
    ) -> Option<String> {
        (deposit.state == DepositState::Held && !revoked)
            .then(|| l402::format_credential(&self.macaroon, Some(self.receipt.expose_secret())))
    }
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
        .store
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
    let host = header_text(headers, header::HOST);
    let host = host.as_str();
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
    let mut stored = {
        let _place = state.public_store.enter().await?;
        load(&state, &caller).await?
    };
    let wait = Duration::from_secs(query.wait).min(MAX_WAIT);
    // Whether the token is revoked, when this replica's lifecycle said so with the change the
    // answer is made of; otherwise read below.
    let mut revoked = None;
    // Seconds after which to ask again, when this read found no place to wait.
    let mut no_place_retry_s = None;
    if stored.deposit.state == DepositState::AwaitingPayment && !wait.is_zero() {
        let network = provider_network_of_prefix(&stored.deposit.client_prefix);
        match state.waiters.enter(stored.deposit.payment_hash, network) {
            Ok(ticket) => {
                let deadline = tokio::time::Instant::now() + wait;
                revoked = wait_for_change(&state, &caller, &ticket, &mut stored, deadline).await?;
            }
            Err(e @ WaitRefused::PerToken(_)) => {
                state.metrics.long_poll_refused("per_token");
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_waiters",
                    format!("{e}; wait for one to answer"),
                )
                .retry_after(1));
            }
            // No place: the state read above is the answer, as for `wait=0`, and the page asks
            // again after `Retry-After`. A visitor who just paid looks unpaid here until the
            // node's acceptance reaches us, and a 503 cost them their visit in the soak
            // (bench/RESULTS.md "Soak with release binaries"). A full house is asked again
            // after a second (it may hold such a visitor); a provider network over its share
            // after five, because that is where a flood's unpaid macaroons are.
            Err(WaitRefused::Network(_)) => {
                state.metrics.long_poll_refused("network_share");
                no_place_retry_s = Some(NO_PLACE_NETWORK_RETRY_S);
            }
            Err(WaitRefused::Total(_)) => {
                state.metrics.long_poll_refused("full");
                no_place_retry_s = Some(NO_PLACE_FULL_RETRY_S);
            }
        }
    }
    let d = &stored.deposit;
    let mut body = json!({
        "state": d.public_state(),
        "payment_hash": hex::encode(d.payment_hash.0),
        "token_id": d.token_id.to_string(),
        "route_id": d.route_id,
        "amount_sat": d.amount_msat / 1000,
        "invoice": stored.payment_request,
        "invoice_expires_at": d.invoice_expires_at.0,
    });
    let revoked = match revoked {
        Some(revoked) => revoked,
        // Only a held deposit's answer depends on it (the credential): the reads of unpaid
        // deposits, which a flood makes (answered at once when they find no place to wait),
        // cost the store one read, not two.
        None if d.state == DepositState::Held => {
            let _place = state.public_store.enter().await?;
            state.store.is_revoked(&d.token_id).await?
        }
        None => false,
    };
    let mut response_headers = HeaderMap::new();
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(seconds) = no_place_retry_s {
        response_headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    // The receipt is revealed only now: the node holds the payment.
    if let Some(credential) = caller.credential_if_held(d, revoked) {
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
    if let Some(leaving) = d.hold.and_then(|h| h.leaving) {
        body["refund_at"] = json!(leaving.refund_at.0);
    }
    Ok((StatusCode::OK, response_headers, Json(body)).into_response())
}

/// Waits with `ticket` until `stored` (read just before) leaves `awaiting_payment` or
/// `deadline`, updating it; `Some(revoked)` when the answer is a change this replica's lifecycle
/// committed (it says whether the token is revoked), `None` when it was read from the store.
async fn wait_for_change(
    state: &AppState,
    caller: &Caller,
    ticket: &WaitTicket,
    stored: &mut StoredDeposit,
    deadline: tokio::time::Instant,
) -> Result<Option<bool>, ApiError> {
    loop {
        // Registered before the re-read, so a change between the read and the wait still
        // wakes us.
        let woken = ticket.notify().notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        // A change this replica's lifecycle committed since our read is the answer itself
        // (deposit/waiters.rs): no store read per wake. Without one (the first pass, a wake
        // by the re-check for another replica's change or by a lagging relay, the deadline)
        // the store is read.
        let revoked = match ticket.change().filter(|c| c.version > stored.version) {
            Some(change) => {
                stored.deposit = Deposit::clone(&change.deposit);
                stored.version = change.version;
                Some(change.token_revoked)
            }
            None => {
                let _place = state.public_store.enter().await?;
                *stored = load(state, caller).await?;
                None
            }
        };
        if stored.deposit.state != DepositState::AwaitingPayment
            || tokio::time::Instant::now() >= deadline
        {
            return Ok(revoked);
        }
        // Woken by this replica's lifecycle at once, or by the waiters' one re-check task for
        // another replica's changes (deposit/waiters.rs): no per-waiter store reads.
        let _ = tokio::time::timeout_at(deadline, woken).await;
    }
}

/// Whether another page could have caused a cookie-authenticated request, by the filter's
/// rule (docs/filter.md "Provenance"): only `Sec-Fetch-Site: same-origin` (the site's own
/// page) or `none` (the visitor's own navigation) count as the visitor's; without Fetch
/// Metadata, a foreign or `null` `Origin`/`Referer` refuses.
fn third_party(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    let host = text(header::HOST.as_str()).unwrap_or("");
    let foreign = |url: &str| {
        let Some((_, rest)) = url.split_once("://") else {
            return true; // `null` or garbage: not ours
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        !authority.eq_ignore_ascii_case(host)
    };
    text(header::ORIGIN.as_str()).is_some_and(foreign)
        || text(header::REFERER.as_str()).is_some_and(foreign)
}

async fn leave(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers)?;
    if caller.presented == Presented::Cookie && third_party(&headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site_refused",
            "leave must be requested from the site itself",
        ));
    }
    let stored = load(&state, &caller).await?;
    let stepped = state.lifecycle.leave(&stored.deposit.payment_hash).await?;
    let (d, changed) = match &stepped {
        Stepped::Changed(d) => (d, true),
        Stepped::Unchanged(d, _) => (d, false),
    };
    let mut response_headers = HeaderMap::new();
    if let Some(c) = cookie("", secure_cookie(&headers), Some(0)) {
        response_headers.insert(header::SET_COOKIE, c);
    }
    // `leaving`: the refund is on its way (after the leave grace); the status endpoint says
    // `refunded` once the node cancelled the invoice.
    let mut body = json!({"state": d.public_state(), "changed": changed});
    if let Some(leaving) = d.hold.and_then(|h| h.leaving) {
        body["refund_at"] = json!(leaving.refund_at.0);
    }
    // The cookie goes now; the page follows the refund on the status endpoint with the
    // macaroon alone (an empty proof: it reveals nothing once the token is revoked).
    body["status_credential"] = json!(l402::format_credential(&caller.macaroon, None));
    // The cookie goes, but an unclaimed reward stays the visitor's: say how much, and hand
    // out an LNURL to claim it with right away (the credential keeps working for claiming).
    let account = state.store.reward_account(&d.token_id).await?;
    body["reward_balance_sat"] = json!(account.balance_msat() / 1000);
    if let Some((lnurl, _)) =
        super::rewards::new_lnurl(&state, &headers, &d.token_id, &account).await?
    {
        body["reward_lnurl"] = json!(lnurl);
    }
    if browser_form(&headers) {
        let page = super::wall_page::left_page(
            &state.live.current(),
            &header_text(&headers, header::HOST),
            d.public_state(),
            d.amount_msat / 1000,
        );
        return Ok((StatusCode::OK, response_headers, page).into_response());
    }
    Ok((StatusCode::OK, response_headers, Json(body)).into_response())
}

/// A form a browser posted by itself (the leave page without JavaScript): it shows whatever
/// comes back, so it gets a page. The page's script posts without a body and reads JSON.
fn browser_form(headers: &HeaderMap) -> bool {
    let content_type = header_text(headers, header::CONTENT_TYPE);
    (content_type.starts_with("application/x-www-form-urlencoded")
        || content_type.starts_with("multipart/form-data"))
        && accepts_html(headers)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContinueForm {
    /// The deposit's macaroon (base64), as on the wall page.
    macaroon: String,
    /// Where the visitor was going.
    to: String,
}

/// Where a continue may send the browser: a path on this site, never back into the wall's
/// endpoints, never to a trap path (whoever led the visitor there must not cost them the
/// deposit they just paid), else the home page.
fn continue_target<'t>(config: &crate::config::Config, to: &'t str) -> &'t str {
    let path = to.split(['?', '#']).next().unwrap_or(to);
    let local = to.starts_with('/')
        && !to.starts_with("//")
        && !to.contains('\\')
        && !to.chars().any(char::is_control)
        && !to.starts_with(PREFIX);
    let trap = config
        .routes
        .iter()
        .filter_map(|r| r.deposit.as_ref())
        .any(|d| d.trap_paths.iter().any(|t| t == path));
    if local && !trap { to } else { "/" }
}

/// `POST /.well-known/lightning-wall/continue`: the wall page's "I have paid" form, the way on
/// without JavaScript. Held: the cookie is set and the browser goes back to where it was
/// going with a `303` (a GET: a form the visitor posted is never sent again). Not yet paid: a
/// page saying so, with the invoice and the same form. Ended: a page saying so. Only the
/// site's own page may ask (a foreign page must not plant its deposit in the visitor's
/// browser).
async fn continue_after_paying(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<axum::Form<ContinueForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let axum::Form(form) =
        form.map_err(|e| ApiError::bad_request("bad_form", format!("form: {e}")))?;
    if third_party(&headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site_refused",
            "continue must be requested from the site itself",
        ));
    }
    let mut presented = HeaderMap::new();
    let authorization = HeaderValue::from_str(&format!("L402 {}:", form.macaroon))
        .map_err(|_| invalid_credential("the macaroon is not base64"))?;
    presented.insert(header::AUTHORIZATION, authorization);
    let caller = authenticate(&state, &presented)?;
    let (stored, revoked) = {
        let _place = state.public_store.enter().await?;
        let stored = load(&state, &caller).await?;
        let revoked = state.store.is_revoked(&stored.deposit.token_id).await?;
        (stored, revoked)
    };
    let to = continue_target(&state.config(), &form.to);
    let d = &stored.deposit;
    if let Some(credential) = caller.credential_if_held(d, revoked) {
        let mut response_headers = HeaderMap::new();
        response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(c) = cookie(&credential, secure_cookie(&headers), None) {
            response_headers.insert(header::SET_COOKIE, c);
        }
        let location = HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/"));
        response_headers.insert(header::LOCATION, location);
        return Ok((StatusCode::SEE_OTHER, response_headers).into_response());
    }
    let page = super::wall_page::continue_page(
        &state.live.current(),
        &header_text(&headers, header::HOST),
        d.state == DepositState::AwaitingPayment,
        d.public_state(),
        stored.payment_request.as_deref().unwrap_or_default(),
        &form.macaroon,
        to,
    );
    Ok(page)
}

#[cfg(test)]
#[path = "wall_tests.rs"]
mod tests;
