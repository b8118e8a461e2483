//! Pay routes for wallets that never show the payer the preimage (custodial wallets, some NWC
//! and WebLN bridges): `GET /.well-known/lightning-wall/payment` with the pay macaroon asks the
//! node whether that invoice settled and, only then, hands back the credential with the pay
//! receipt (HMAC(master, "pay" || identifier), `l402::KeyEntry::pay_receipt`), which the filter
//! verifies locally like a preimage. An unpaid, open or cancelled invoice never yields a receipt.

use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lightning_wall_contract::paths;
use lightning_wall_contract::status::PaymentStatus;

use super::AppState;
use super::credential::{invalid_credential, present};
use super::error::ApiError;
use crate::deposit::lifecycle::LifecycleError;
use crate::ids::PaymentHash;
use crate::ids::TokenId;
use crate::node::InvoiceState;

pub fn routes() -> Router<AppState> {
    Router::new().route(paths::PAYMENT_STATUS, get(payment_status))
}

async fn payment_status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = present(
        &state,
        &headers,
        "send the pay macaroon: Authorization: L402 <macaroon>:",
    )?;
    if p.mode != Some(l402::Mode::Pay) {
        return Err(invalid_credential("not a pay token"));
    }
    // Per route: an operator may insist on the preimage.
    let config = state.config();
    let allowed = p
        .route
        .as_deref()
        .and_then(|id| config.route(id))
        .and_then(|r| r.pay.as_ref())
        .is_some_and(|pay| pay.without_preimage);
    if !allowed {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "preimage_required",
            "this route accepts only the preimage as proof of payment",
        ));
    }
    // Anyone holding an unpaid macaroon can ask, as often as they like: the node is asked at
    // most `limits.payment_lookups_per_s` times a second on this replica.
    if let Err(wait) = state.payment_lookups.take(Instant::now()) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "lookup_budget_spent",
            "too many payment lookups right now; retry shortly",
        )
        .retry_after(wait));
    }
    let hash = PaymentHash(*p.identifier.payment_hash.as_bytes());
    let status = state
        .node
        .lookup(&hash)
        .await
        .map_err(|e| ApiError::from(LifecycleError::Node(e)))?;
    let revoked = state
        .store
        .is_revoked(&TokenId(*p.identifier.token_id.as_bytes()))
        .await?;
    let body = PaymentStatus {
        state: status.state.as_lnd_str().to_ascii_lowercase(),
        payment_hash: hex::encode(hash.0),
        credential: (status.state == InvoiceState::Settled && !revoked)
            .then(|| l402::format_credential(&p.macaroon, Some(p.pay_receipt.expose_secret()))),
    };
    Ok((
        StatusCode::OK,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(body),
    )
        .into_response())
}
