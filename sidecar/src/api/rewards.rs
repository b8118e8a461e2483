//! Claiming rewards (public listener, under `/.well-known/lightning-wall/`): the balance with a
//! fresh LNURL-withdraw (JSON, or a page with its QR code for browsers), then LUD-03's
//! `withdrawRequest` and callback. The balance endpoint needs the full credential (macaroon and
//! proof); it does not care whether the token expired or was revoked, because a revoked token
//! only stops browsing: its unclaimed balance still belongs to the visitor. The LNURL's `k1`
//! is the bearer claim on the balance (LUD-03): single use, short-lived, stored hashed.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use lightning_wall_contract::paths;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use super::credential::{PREFIX, invalid_credential, present};
use super::error::ApiError;
use super::wall_page::{accepts_html, svg_qr_code};
use crate::ids::{Timestamp, TokenId};
use crate::rewards::claim::check_invoice;
use crate::rewards::ledger::{self, Limits};
use crate::rewards::lnurl;
use crate::store::{ClaimRefusal, NewPayout, RewardAccount};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(paths::REWARDS, get(balance))
        .route(&format!("{PREFIX}/rewards/withdraw"), get(withdraw_request))
        .route(
            &format!("{PREFIX}/rewards/withdraw/callback"),
            get(withdraw_callback),
        )
}

/// The token whose balance the caller may claim: a macaroon signed by our key ring (any mode)
/// with its proof — the preimage for pay tokens, the deposit receipt for deposit tokens, both
/// compared in constant time.
fn owner(state: &AppState, headers: &HeaderMap) -> Result<TokenId, ApiError> {
    let p = present(
        state,
        headers,
        "send the credential: Authorization: L402 <macaroon>:<proof>",
    )?;
    let proof = p
        .credential
        .proof()
        .ok_or_else(|| invalid_credential("the proof (preimage or deposit receipt) is missing"))?
        .expose_secret();
    let proof_ok: bool = match p.mode {
        Some(l402::Mode::Pay) => {
            let hash: [u8; 32] = Sha256::digest(proof).into();
            hash.ct_eq(p.identifier.payment_hash.as_bytes()).into()
        }
        Some(l402::Mode::Deposit) => p.receipt.expose_secret().ct_eq(proof).into(),
        None => false,
    };
    if !proof_ok {
        return Err(invalid_credential("the proof does not match"));
    }
    Ok(TokenId(*p.identifier.token_id.as_bytes()))
}

/// Where wallets reach us: `rewards.public_url`, else the request's host (https unless the
/// host is loopback or `X-Forwarded-Proto` says http).
fn origin(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(url) = &state.config().rewards.public_url {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        })
        .ok_or_else(|| {
            ApiError::bad_request("bad_host", "the Host header is missing or malformed")
        })?;
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let loopback = matches!(name, "localhost" | "127.0.0.1" | "[::1]");
    let forwarded_http = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("http"));
    let scheme = if loopback || forwarded_http {
        "http"
    } else {
        "https"
    };
    Ok(format!("{scheme}://{host}"))
}

fn random_k1() -> Result<[u8; 32], ApiError> {
    use rand::TryRngCore;
    let mut k1 = [0u8; 32];
    rand::rngs::OsRng.try_fill_bytes(&mut k1).map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "no randomness available",
        )
    })?;
    Ok(k1)
}

fn k1_hash(k1: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(k1).into()
}

/// A fresh LNURL-withdraw for `token`, or `None` when nothing can be withdrawn now.
pub(super) async fn new_lnurl(
    state: &AppState,
    headers: &HeaderMap,
    token: &TokenId,
    account: &RewardAccount,
) -> Result<Option<(String, Timestamp)>, ApiError> {
    let limits = Limits::from(&state.config().rewards);
    if !limits.enabled || ledger::withdrawable(&limits, account.balance_msat()).is_none() {
        return Ok(None);
    }
    let origin = origin(state, headers)?;
    let k1 = random_k1()?;
    let now = Timestamp::now();
    let expires_at = now.plus(state.config().rewards.lnurl_lifetime);
    state
        .store
        .issue_withdrawal(token, &k1_hash(&k1), now, expires_at)
        .await?;
    let url = format!("{origin}{PREFIX}/rewards/withdraw?k1={}", hex::encode(k1));
    Ok(lnurl::encode(&url).map(|l| (l, expires_at)))
}

async fn balance(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = owner(&state, &headers)?;
    let account = state.store.reward_account(&token).await?;
    let limits = Limits::from(&state.config().rewards);
    let lnurl = new_lnurl(&state, &headers, &token, &account).await?;
    let bounds = ledger::withdrawable(&limits, account.balance_msat());
    let mut body = json!({
        "token_id": token.to_string(),
        "balance_sat": account.balance_msat() / 1000,
        "balance_msat": account.balance_msat(),
        "credited_sat": account.credited_msat / 1000,
        "paid_sat": account.paid_msat / 1000,
        "pending_sat": account.reserved_msat / 1000,
        "rewards_enabled": limits.enabled,
        "lnurl": Value::Null,
    });
    if let (Some((lnurl, expires_at)), Some(bounds)) = (&lnurl, bounds) {
        body["lnurl"] = json!(lnurl);
        body["lnurl_expires_at"] = json!(expires_at.0);
        body["min_withdrawable_sat"] = json!(bounds.min_msat.div_ceil(1000));
        body["max_withdrawable_sat"] = json!(bounds.max_msat / 1000);
    }
    let mut response = if accepts_html(&headers) {
        Html(page(&body, lnurl.as_ref().map(|(l, _)| l.as_str()))).into_response()
    } else {
        Json(body).into_response()
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The browser's page: the balance and, when there is something to withdraw, the LNURL as a
/// QR code (upper case: QR alphanumeric mode) and a `lightning:` link.
fn page(body: &Value, lnurl: Option<&str>) -> String {
    let balance = body["balance_sat"].as_u64().unwrap_or(0);
    let claim = match lnurl.and_then(|l| Some((l, svg_qr_code(&l.to_uppercase())?))) {
        Some((lnurl, svg)) => format!(
            "<p>Scan with a Lightning wallet to withdraw, or <a href=\"lightning:{lnurl}\">open your wallet</a>.</p>\
             <div class=\"qr\">{svg}</div><p class=\"small\">This code works once and expires in a few minutes; reload for a new one.</p>"
        ),
        None if balance > 0 => "<p>Nothing can be withdrawn right now (below the minimum, a payout in progress, or rewards paused).</p>".to_owned(),
        None => "<p>No reward to withdraw yet.</p>".to_owned(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Your rewards</title><style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;text-align:center}}\
         .qr svg{{width:100%;max-width:18rem;height:auto}}.small{{font-size:.85rem;color:#555}}</style></head>\
         <body><h1>Your rewards</h1><p><strong>{balance} sat</strong> to withdraw.</p>{claim}</body></html>"
    )
}

/// LUD-03 errors: HTTP 200 with `{"status":"ERROR","reason"}` (wallets read the body).
fn lnurl_error(reason: impl Into<String>) -> Response {
    let mut response = Json(json!({"status": "ERROR", "reason": reason.into()})).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// What both LNURL-withdraw steps check first: rewards are on and `k1` is well formed.
/// The error is the LNURL refusal's reason.
fn open_lnurl(state: &AppState, k1: &str) -> Result<(Limits, [u8; 32]), &'static str> {
    let limits = Limits::from(&state.config().rewards);
    if !limits.enabled {
        return Err("rewards are paused; try again later");
    }
    let k1 = parse_k1(k1).ok_or("k1 must be 64 hex characters")?;
    Ok((limits, k1))
}

fn parse_k1(k1: &str) -> Option<[u8; 32]> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(k1, &mut bytes).ok()?;
    Some(bytes)
}

#[derive(Deserialize)]
struct WithdrawQuery {
    #[serde(default)]
    k1: String,
}

async fn withdraw_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<WithdrawQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return lnurl_error("malformed query");
    };
    let (limits, k1) = match open_lnurl(&state, &query.k1) {
        Ok(opened) => opened,
        Err(reason) => return lnurl_error(reason),
    };
    let store = &state.store;
    let token = match store
        .usable_withdrawal(&k1_hash(&k1), Timestamp::now())
        .await
    {
        Ok(Some(token)) => token,
        Ok(None) => return lnurl_error("this withdrawal link was already used or has expired"),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let account = match store.reward_account(&token).await {
        Ok(account) => account,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Some(bounds) = ledger::withdrawable(&limits, account.balance_msat()) else {
        return lnurl_error("nothing to withdraw");
    };
    let origin = match origin(&state, &headers) {
        Ok(origin) => origin,
        Err(e) => return e.into_response(),
    };
    let mut response = Json(json!({
        "tag": "withdrawRequest",
        "callback": format!("{origin}{PREFIX}/rewards/withdraw/callback"),
        "k1": query.k1,
        "defaultDescription": "lightning-wall reward",
        "minWithdrawable": bounds.min_msat,
        "maxWithdrawable": bounds.max_msat,
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
struct CallbackQuery {
    #[serde(default)]
    k1: String,
    #[serde(default)]
    pr: String,
}

async fn withdraw_callback(
    State(state): State<AppState>,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return lnurl_error("malformed query");
    };
    let (limits, k1) = match open_lnurl(&state, &query.k1) {
        Ok(opened) => opened,
        Err(reason) => return lnurl_error(reason),
    };
    let k1_hash = k1_hash(&k1);
    let store = &state.store;
    let now = Timestamp::now();
    let token = match store.usable_withdrawal(&k1_hash, now).await {
        Ok(Some(token)) => token,
        Ok(None) => return lnurl_error("this withdrawal link was already used or has expired"),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let account = match store.reward_account(&token).await {
        Ok(account) => account,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Some(bounds) = ledger::withdrawable(&limits, account.balance_msat()) else {
        return lnurl_error("nothing to withdraw");
    };
    let info = match state.node.info().await {
        Ok(info) => info,
        Err(_) => return lnurl_error("the Lightning node is unavailable; try again later"),
    };
    let now_since_epoch = std::time::Duration::from_secs(now.0);
    let invoice = match check_invoice(
        &query.pr,
        &info.network,
        &info.pubkey,
        bounds,
        now_since_epoch,
    ) {
        Ok(invoice) => invoice,
        Err(refusal) => return lnurl_error(refusal.to_string()),
    };
    let payout = NewPayout {
        payment_hash: invoice.payment_hash,
        amount_msat: invoice.amount_msat,
        fee_limit_msat: ledger::fee_limit_msat(&limits, invoice.amount_msat),
        payment_request: query.pr.trim().to_owned(),
    };
    match store.start_payout(&k1_hash, &payout, &limits, now).await {
        Ok(Ok(_)) => {}
        Ok(Err(ClaimRefusal::K1Unusable)) => {
            return lnurl_error("this withdrawal link was already used or has expired");
        }
        Ok(Err(ClaimRefusal::InsufficientBalance)) => {
            return lnurl_error("the amount is more than the balance");
        }
        Ok(Err(ClaimRefusal::AlreadyPaid)) => {
            return lnurl_error("this invoice was already paid");
        }
        Ok(Err(ClaimRefusal::TooManyWithdrawals)) => {
            return lnurl_error("this token has made its maximum number of withdrawals");
        }
        Ok(Err(ClaimRefusal::FeeBudgetSpent)) => {
            return lnurl_error("the site's payout budget for today is spent; try tomorrow");
        }
        Err(e) => return ApiError::from(e).into_response(),
    }
    state.metrics.reward_payout("started");
    tracing::info!(payment_hash = %hex::encode(payout.payment_hash.0), amount_msat = payout.amount_msat, "reward payout started");
    // LUD-03: answer OK now and pay asynchronously. A crash from here on leaves the payout in
    // flight in the store, where the reconciler finds it.
    let payouts = state.payouts.clone();
    tokio::spawn(async move {
        if let Err(e) = payouts.send(&payout).await {
            tracing::error!(error = %e, "reward payout: store error after sending; the reconciler resolves it");
        }
    });
    Json(json!({"status": "OK"})).into_response()
}
