//! The operator API (admin listener, bearer token always required): list and inspect deposits
//! with their audit records, refund, forfeit, revoke, drain, and the config in force (reload).
//! Forfeit by hand is recorded with trigger `admin` like every other decision; a drain's
//! refunds with trigger `drain`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::AdminCaller;
use super::error::{ApiError, body_error, parse_json};
use crate::deposit::lifecycle::{DrainReport, Stepped};
use crate::deposit::machine::{Event, Outcome};
use crate::deposit::{DepositState, Trigger};
use crate::ids::PaymentHash;
use crate::ids::{Timestamp, TokenId};
use crate::reload::Outcome as ReloadOutcome;
use crate::store::{AuditRecord, DepositFilter, SHADOW_RETENTION_DAYS, ShadowDay, StoredDeposit};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/deposits", get(list))
        .route("/admin/v1/deposits/{payment_hash}", get(show))
        .route("/admin/v1/deposits/{payment_hash}/refund", post(refund))
        .route("/admin/v1/deposits/{payment_hash}/forfeit", post(forfeit))
        .route("/admin/v1/revoke", post(revoke))
        .route("/admin/v1/audit", get(audit))
        .route("/admin/v1/shadow", get(shadow))
        .route(
            "/admin/v1/drain",
            post(drain).get(drain_status).delete(undrain),
        )
        .route("/admin/v1/config", get(config_status))
        .route("/admin/v1/config/reload", post(config_reload))
}

pub fn deposit_json(s: &StoredDeposit) -> Value {
    let d = &s.deposit;
    json!({
        "payment_hash": hex::encode(d.payment_hash.0),
        "token_id": d.token_id.to_string(),
        "route_id": d.route_id,
        "client_prefix": d.client_prefix,
        "amount_sat": d.amount_msat / 1000,
        "state": d.state.as_str(),
        "created_at": d.created_at.0,
        "invoice_expires_at": d.invoice_expires_at.0,
        "held_at": d.hold.map(|h| h.held_at.0),
        "last_activity_at": d.hold.map(|h| h.last_activity_at.0),
        "deadline_at": d.hold.map(|h| h.deadline_at.0),
        "htlc_expiry_height": d.hold.and_then(|h| h.htlc_expiry_height),
        "ended_at": d.resolution.map(|r| r.at.0),
        "trigger": d.resolution.map(|r| r.trigger.as_str()),
        "pending_action": d.pending.map(|a| a.as_str()),
        "action_attempts": s.action_attempts,
        "invoice": s.payment_request,
    })
}

pub(super) fn audit_json(a: &AuditRecord) -> Value {
    json!({
        "payment_hash": hex::encode(a.payment_hash.0),
        "route_id": a.route_id,
        "client_prefix": a.client_prefix,
        "outcome": a.outcome.as_str(),
        "trigger": a.trigger.as_str(),
        "amount_sat": a.amount_msat / 1000,
        "at": a.at.0,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    route: Option<String>,
    limit: Option<u32>,
}

async fn list(
    State(state): State<AppState>,
    _: AdminCaller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("bad_query", format!("query: {e}")))?;
    let deposit_state = match q.state.as_deref() {
        None => None,
        Some(s) => Some(DepositState::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                "bad_query",
                format!("state must be one of awaiting_payment, held, refunded, forfeited, expired (got {s:?})"),
            )
        })?),
    };
    let deposits = state
        .store
        .list_deposits(&DepositFilter {
            state: deposit_state,
            route_id: q.route,
            limit: q.limit.unwrap_or(100),
        })
        .await?;
    Ok(Json(
        json!({"deposits": deposits.iter().map(deposit_json).collect::<Vec<_>>()}),
    ))
}

pub(super) fn parse_hash(text: &str) -> Result<PaymentHash, ApiError> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes).map_err(|_| {
        ApiError::bad_request("bad_payment_hash", "payment_hash must be 64 hex characters")
    })?;
    Ok(PaymentHash(bytes))
}

async fn show(
    State(state): State<AppState>,
    _: AdminCaller,
    Path(hash): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let hash = parse_hash(&hash)?;
    let stored = state
        .store
        .deposit(&hash)
        .await?
        .ok_or_else(|| ApiError::not_found("deposit_not_found", "no such deposit"))?;
    let audit = state.store.audit_records(Some(&hash), 100).await?;
    let mut body = deposit_json(&stored);
    body["audit"] = json!(audit.iter().map(audit_json).collect::<Vec<_>>());
    Ok(Json(body))
}

async fn decide(state: AppState, hash: String, outcome: Outcome) -> Result<Json<Value>, ApiError> {
    let hash = parse_hash(&hash)?;
    let stepped = state
        .lifecycle
        .event(
            &hash,
            Event::Verdict {
                outcome,
                trigger: Trigger::Admin,
            },
        )
        .await?;
    match stepped {
        Stepped::Changed(d) => Ok(Json(json!({"state": d.state.as_str(), "changed": true}))),
        Stepped::Unchanged(d, why) => Err(ApiError::new(
            StatusCode::CONFLICT,
            if d.state.is_final() {
                "deposit_finished"
            } else {
                "deposit_not_held"
            },
            format!("nothing done: {why}"),
        )),
    }
}

async fn refund(
    State(state): State<AppState>,
    _: AdminCaller,
    Path(hash): Path<String>,
) -> Result<Json<Value>, ApiError> {
    decide(state, hash, Outcome::Refund).await
}

async fn forfeit(
    State(state): State<AppState>,
    _: AdminCaller,
    Path(hash): Path<String>,
) -> Result<Json<Value>, ApiError> {
    decide(state, hash, Outcome::Forfeit).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    token_id: String,
    #[serde(default)]
    reason: Option<String>,
}

async fn revoke(
    State(state): State<AppState>,
    _: AdminCaller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(body_error)?;
    let request: RevokeRequest = parse_json(&body)?;
    let mut id = [0u8; 32];
    hex::decode_to_slice(&request.token_id, &mut id)
        .map_err(|_| ApiError::bad_request("bad_token_id", "token_id must be 64 hex characters"))?;
    let reason = request.reason.unwrap_or_else(|| "admin".into());
    if reason.len() > 200 {
        return Err(ApiError::bad_request(
            "bad_reason",
            "reason: at most 200 characters",
        ));
    }
    let token = TokenId(id);
    // A held deposit's token: refund it too (a revoked visitor must get the money back).
    if let Some(d) = state.store.deposit_by_token(&token).await?
        && d.deposit.state == DepositState::Held
    {
        state
            .lifecycle
            .event(
                &d.deposit.payment_hash,
                Event::Verdict {
                    outcome: Outcome::Refund,
                    trigger: Trigger::Admin,
                },
            )
            .await?;
    }
    let seq = state
        .store
        .revoke(&token, &reason, Timestamp::now())
        .await?;
    Ok(Json(json!({"token_id": token.to_string(), "seq": seq})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    limit: Option<u32>,
}

async fn audit(
    State(state): State<AppState>,
    _: AdminCaller,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("bad_query", format!("query: {e}")))?;
    let records = state
        .store
        .audit_records(None, q.limit.unwrap_or(100))
        .await?;
    Ok(Json(
        json!({"audit": records.iter().map(audit_json).collect::<Vec<_>>()}),
    ))
}

pub(super) fn shadow_json(d: &ShadowDay) -> Value {
    let f = &d.finding;
    json!({
        "day": d.day.0,
        "route_id": f.route_id,
        "finding": f.finding.as_str(),
        "trigger": f.trigger.map(|t| t.as_str()),
        "count": f.count,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShadowQuery {
    days: Option<u64>,
}

/// Shadow findings by day (newest first), route, finding and trigger, with the routes in
/// shadow now (docs/operations.md "Shadow mode").
async fn shadow(
    State(state): State<AppState>,
    _: AdminCaller,
    query: Result<Query<ShadowQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("bad_query", format!("query: {e}")))?;
    let days = q.days.unwrap_or(14);
    if !(1..=SHADOW_RETENTION_DAYS).contains(&days) {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("days: must be between 1 and {SHADOW_RETENTION_DAYS} (got {days})"),
        ));
    }
    let now = state.lifecycle.now();
    let since = Timestamp((now.0 / 86_400).saturating_sub(days - 1) * 86_400);
    let findings = state.store.shadow_findings(since).await?;
    Ok(Json(json!({
        "shadow_routes": state.config().shadow_routes(),
        "findings": findings.iter().map(shadow_json).collect::<Vec<_>>(),
    })))
}

fn drain_json(r: &DrainReport) -> Value {
    json!({
        "draining": r.started_at.is_some(),
        "started_at": r.started_at.map(|t| t.0),
        "refunded_held": r.refunded_held,
        "refunded_sat": r.refunded_msat / 1000,
        "cancelled_unpaid": r.cancelled_unpaid,
        "failures": r.failures.iter().map(|f| json!({
            "payment_hash": hex::encode(f.payment_hash.0),
            "error": f.error,
        })).collect::<Vec<_>>(),
        "pending": r.pending.iter().map(|p| json!({
            "payment_hash": hex::encode(p.payment_hash.0),
            "state": p.state.as_str(),
            "action": p.action.as_str(),
            "amount_sat": p.amount_msat / 1000,
            "attempts": p.attempts,
        })).collect::<Vec<_>>(),
        "still_live": r.still_live,
        // Everything given back and confirmed by the node.
        "done": r.failures.is_empty() && r.pending.is_empty() && r.still_live == 0,
    })
}

/// Starts the drain (or repeats its pass) and reports.
async fn drain(State(state): State<AppState>, _: AdminCaller) -> Result<Json<Value>, ApiError> {
    let report = state.lifecycle.drain().await?;
    tracing::warn!("drain started by the operator: minting stopped on every replica");
    Ok(Json(drain_json(&report)))
}

/// What is left: still live, still pending on the node.
async fn drain_status(
    State(state): State<AppState>,
    _: AdminCaller,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(drain_json(&state.lifecycle.drain_status().await?)))
}

/// The config in force: its generation, when it was loaded, from which file, and the last
/// reload refused since (reload.rs).
async fn config_status(State(state): State<AppState>, _: AdminCaller) -> Json<Value> {
    let current = state.live.current();
    let refused = state.live.last_refusal();
    Json(json!({
        "generation": current.generation,
        "loaded_at": current.loaded_at.0,
        "file": current.config.source.as_ref().map(|p| p.display().to_string()),
        "file_sha256": current.file_sha256,
        "reloadable": crate::config::reload::RELOADABLE,
        "last_refused": refused.map(|(at, reason)| json!({"at": at.0, "reason": reason})),
    }))
}

/// Reads the config file again now (as SIGHUP does): 200 applied or unchanged; 422
/// `config_refused` with the reason when the file is invalid or changes a section read only at
/// start (the old config stays).
async fn config_reload(
    State(state): State<AppState>,
    _: AdminCaller,
) -> Result<Json<Value>, ApiError> {
    let live = state.live.clone();
    let outcome = tokio::task::spawn_blocking(move || live.reload(true))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "reload failed",
            )
        })?;
    let generation = state.live.current().generation;
    match outcome {
        ReloadOutcome::Unchanged => Ok(Json(
            json!({"outcome": "unchanged", "generation": generation}),
        )),
        ReloadOutcome::Applied(changed) => Ok(Json(
            json!({"outcome": "applied", "changed": changed, "generation": generation}),
        )),
        ReloadOutcome::Refused(reason) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "config_refused",
            reason,
        )),
    }
}

async fn undrain(State(state): State<AppState>, _: AdminCaller) -> Result<Json<Value>, ApiError> {
    let was_draining = state.lifecycle.undrain().await?;
    tracing::warn!("drain ended by the operator: minting resumes");
    Ok(Json(
        json!({"draining": false, "was_draining": was_draining}),
    ))
}
