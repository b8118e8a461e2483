//! The filter's API (internal listener; optional bearer token): mint a challenge, bootstrap
//! (policy and key material), sync (revocations since a sequence number, policy version), and
//! event batches (activity, verdicts). The contract is docs/internal-api.md. Key material leaves
//! only through bootstrap, on this listener.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use lightning_wall_contract::bootstrap::Bootstrap;
use lightning_wall_contract::challenge::{ChallengeAnswer, ChallengeRequest};
use lightning_wall_contract::events::{self as wire, EventBatch, MAX_EVENTS};
use lightning_wall_contract::paths;
use lightning_wall_contract::store_id::StoreId;
use lightning_wall_contract::sync::{Revocation, SyncAnswer};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::InternalCaller;
use super::error::{ApiError, body_error, parse_json};
use crate::deposit::Trigger;
use crate::deposit::machine::{Event, Outcome};
use crate::ids::TokenId;
use crate::node::Node as _;
use crate::node::dev::DevPayment;
use crate::rewards::{Limits, RewardId};
use crate::store::{CreditOutcome, ShadowCount};
use crate::usage::{self, UsageKind};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(paths::CHALLENGE, post(challenge))
        .route(paths::BOOTSTRAP, get(bootstrap))
        .route(paths::SYNC, get(sync))
        .route(paths::REVOCATION_SNAPSHOT, get(revocation_snapshot))
        .route(paths::EVENTS, post(events))
        .route("/v1/dev/pay", post(dev_pay))
        .route("/v1/dev/invoices/{payment_hash}", get(dev_invoice))
}

async fn challenge(
    State(state): State<AppState>,
    _: InternalCaller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ChallengeAnswer>, ApiError> {
    let body = body.map_err(body_error)?;
    let request: ChallengeRequest = parse_json(&body)?;
    let client_ip: IpAddr = request.client_ip.parse().map_err(|_| {
        ApiError::bad_request("malformed_json", "client_ip: not an IPv4 or IPv6 address")
    })?;
    let minted = state.minter.mint(&request.route_id, client_ip).await?;
    Ok(Json(minted))
}

async fn bootstrap(
    State(state): State<AppState>,
    _: InternalCaller,
) -> Result<Json<Bootstrap>, ApiError> {
    let store_id = state.store.store_id().await?;
    let revocation_seq = state.store.revocation_head().await?;
    Ok(Json(state.policy().bootstrap_body(
        &state.keys,
        revocation_seq,
        store_id,
    )))
}

/// Every live revocation in one binary body, for a worker that starts (docs/internal-api.md).
async fn revocation_snapshot(
    State(state): State<AppState>,
    _: InternalCaller,
) -> Result<([(axum::http::HeaderName, &'static str); 1], Vec<u8>), ApiError> {
    let body = crate::revocations::snapshot(&state.store, &state.config()).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        body,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncQuery {
    #[serde(default)]
    since: u64,
    #[serde(default)]
    limit: Option<u32>,
    /// The store the filter bootstrapped from (16 hex; absent from older filters).
    #[serde(default)]
    store: Option<String>,
}

async fn sync(
    State(state): State<AppState>,
    _: InternalCaller,
    query: Result<Query<SyncQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SyncAnswer>, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::bad_request("bad_query", format!("query: {e}")))?;
    let limit = query.limit.unwrap_or(1000).clamp(1, 10_000);
    let theirs =
        match query.store.as_deref() {
            None => None,
            Some(hex) => Some(StoreId::from_hex(hex).ok_or_else(|| {
                ApiError::bad_request("bad_query", "store: not 16 hex characters")
            })?),
        };
    let store_id = crate::revocations::store_for_sync(&state.store, theirs, query.since).await?;
    let revocations = state
        .store
        .revocations_since(query.since, limit.saturating_add(1))
        .await?;
    let more = revocations.len() > limit as usize;
    let items: Vec<Revocation> = revocations
        .iter()
        .take(limit as usize)
        .map(|r| Revocation {
            seq: r.seq,
            token_id: r.token_id.to_string(),
        })
        .collect();
    let next_since = revocations
        .get(..(limit as usize).min(revocations.len()))
        .and_then(<[_]>::last)
        .map_or(query.since, |r| r.seq);
    Ok(Json(SyncAnswer {
        policy_version: state.policy().version(store_id),
        revocations: items,
        next_since,
        more,
    }))
}

async fn events(
    State(state): State<AppState>,
    _: InternalCaller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(body_error)?;
    let batch: EventBatch = parse_json(&body)?;
    if batch.events.len() > MAX_EVENTS {
        return Err(ApiError::bad_request(
            "too_many_events",
            format!("at most {MAX_EVENTS} events per batch"),
        ));
    }
    // Validate the whole batch before applying any of it: nothing changes on bad input.
    let mut parsed = Vec::with_capacity(batch.events.len());
    for (i, event) in batch.events.iter().enumerate() {
        let (token, event) = match event {
            wire::Event::Shadow {
                route_id,
                finding,
                trigger,
                count,
            } => {
                // Kept only for routes of this config in shadow, so the table stays at its
                // routes × findings × triggers × days whatever a batch names.
                let config = state.config();
                let known = config
                    .routes
                    .iter()
                    .any(|r| r.id == *route_id && config.route_in_shadow(r));
                parsed.push(Item::Shadow(known.then(|| ShadowCount {
                    route_id: route_id.clone(),
                    finding: *finding,
                    trigger: *trigger,
                    count: *count,
                })));
                continue;
            }
            wire::Event::Activity { token_id } => (token_id, Parsed::Deposit(Event::Activity)),
            wire::Event::Usage(usage) => {
                if usage.reporter_id().is_none() {
                    return Err(ApiError::bad_request(
                        "bad_reporter",
                        format!("events[{i}].reporter: must be 16 hex characters"),
                    ));
                }
                (
                    &usage.token_id,
                    Parsed::Usage {
                        reporter: usage.reporter.to_ascii_lowercase(),
                        kind: match usage.kind {
                            wire::UsageKind::Requests => UsageKind::Requests,
                            wire::UsageKind::Errors => UsageKind::Errors,
                        },
                        window_start: usage.window_start,
                        count: u64::from(usage.count),
                    },
                )
            }
            wire::Event::Reward {
                token_id,
                sats,
                reward_id,
            } => {
                let reward_id = RewardId::parse(reward_id).ok_or_else(|| {
                    ApiError::bad_request(
                        "bad_reward_id",
                        format!(
                            "events[{i}].reward_id: must be 1-64 characters of A-Z a-z 0-9 . _ : -"
                        ),
                    )
                })?;
                let amount_msat = sats.checked_mul(1000).ok_or_else(|| {
                    ApiError::bad_request("bad_reward", format!("events[{i}].sats: too large"))
                })?;
                (
                    token_id,
                    Parsed::Reward {
                        reward_id,
                        amount_msat,
                    },
                )
            }
            wire::Event::Verdict {
                token_id,
                verdict,
                trigger,
            } => (
                token_id,
                Parsed::Deposit(Event::Verdict {
                    outcome: match verdict {
                        wire::Verdict::Forfeit => Outcome::Forfeit,
                        wire::Verdict::Refund => Outcome::Refund,
                    },
                    trigger: match trigger {
                        wire::Trigger::TrapPath => Trigger::TrapPath,
                        wire::Trigger::RateLimit => Trigger::RateLimit,
                        wire::Trigger::ErrorStorm => Trigger::ErrorStorm,
                        wire::Trigger::Upstream => Trigger::Upstream,
                    },
                }),
            ),
        };
        let mut id = [0u8; 32];
        hex::decode_to_slice(token, &mut id).map_err(|_| {
            ApiError::bad_request(
                "bad_token_id",
                format!("events[{i}].token_id: must be 64 hex characters"),
            )
        })?;
        parsed.push(Item::Token(TokenId(id), event));
    }
    let mut results = Vec::with_capacity(parsed.len());
    let (mut usage, mut usage_at) = (Vec::new(), Vec::new());
    let limits = Limits::from(&state.config().rewards);
    let (mut shadow, mut shadow_at) = (Vec::new(), Vec::new());
    for item in parsed {
        let (token, event) = match item {
            Item::Token(token, event) => (token, event),
            Item::Shadow(Some(count)) => {
                shadow_at.push(results.len());
                results.push(json!({"result": "counted"}));
                shadow.push(count);
                continue;
            }
            Item::Shadow(None) => {
                results.push(json!({"result": "unknown_route"}));
                continue;
            }
        };
        let event = match event {
            Parsed::Deposit(event) => event,
            Parsed::Usage {
                reporter,
                kind,
                window_start,
                count,
            } => {
                // Recorded together after the other events (one transaction), so a verdict
                // in the same batch is applied first; its answer is put in place below.
                usage_at.push(results.len());
                results.push(Value::Null);
                usage.push(usage::Report {
                    token_id: token,
                    kind,
                    window_start,
                    reporter,
                    count,
                });
                continue;
            }
            Parsed::Reward {
                reward_id,
                amount_msat,
            } => {
                results.push(credit(&state, &limits, &token, &reward_id, amount_msat).await?);
                continue;
            }
        };
        let result = match state.lifecycle.event_by_token(&token, event).await {
            Ok(crate::deposit::lifecycle::Stepped::Changed(d)) => {
                json!({"result": "applied", "state": d.state.as_str()})
            }
            Ok(crate::deposit::lifecycle::Stepped::Unchanged(d, _)) => {
                json!({"result": "unchanged", "state": d.state.as_str()})
            }
            Err(crate::deposit::lifecycle::LifecycleError::NotFound) => {
                json!({"result": "unknown_token"})
            }
            Err(e) => return Err(e.into()),
        };
        results.push(result);
    }
    let counted = usage::record(&state.lifecycle, &state.config(), &usage).await?;
    for (at, result) in usage_at.into_iter().zip(counted) {
        results[at] = result;
    }
    state
        .store
        .record_shadow(&shadow, state.lifecycle.now())
        .await?;
    for f in &shadow {
        state
            .metrics
            .shadow_finding(&f.route_id, f.finding, f.trigger, f.count);
    }
    Ok(Json(json!({"results": results})))
}

/// A validated event: one about a token, or shadow findings (`None`: of a route this config
/// does not run in shadow; ignored).
enum Item {
    Token(TokenId, Parsed),
    Shadow(Option<ShadowCount>),
}

/// A validated event.
enum Parsed {
    Deposit(Event),
    Usage {
        reporter: String,
        kind: UsageKind,
        window_start: u64,
        count: u64,
    },
    Reward {
        reward_id: RewardId,
        amount_msat: u64,
    },
}

/// Credits a reward; the result says what happened and, when refused, why.
async fn credit(
    state: &AppState,
    limits: &Limits,
    token: &TokenId,
    reward_id: &RewardId,
    amount_msat: u64,
) -> Result<Value, ApiError> {
    // A forfeited deposit's token earns nothing more. What it was credited before the forfeit
    // was owed to it and stays claimable (docs/reliability.md "Rewards after a forfeit"); the
    // filter sends a response's verdict before its reward, so that reward comes too late.
    let forfeited = state
        .store
        .deposit_by_token(token)
        .await?
        .is_some_and(|d| d.deposit.state == crate::deposit::DepositState::Forfeited);
    if forfeited {
        state.metrics.reward_credit("deposit_forfeited");
        tracing::info!(token_id = %token, reward_id = %reward_id, amount_msat, "reward refused: the deposit was forfeited");
        return Ok(json!({"result": "refused", "reason": "deposit_forfeited"}));
    }
    let outcome = state
        .store
        .credit_reward(token, reward_id, amount_msat, limits, state.lifecycle.now())
        .await?;
    Ok(match outcome {
        CreditOutcome::Credited { balance_msat } => {
            state.metrics.reward_credit("credited");
            state.metrics.reward_credited_msat.inc_by(amount_msat);
            tracing::info!(token_id = %token, reward_id = %reward_id, amount_msat, "reward credited");
            json!({"result": "credited", "balance_sat": balance_msat / 1000})
        }
        CreditOutcome::Refused(refusal) => {
            state.metrics.reward_credit(refusal.as_str());
            tracing::info!(token_id = %token, reward_id = %reward_id, amount_msat, reason = refusal.as_str(), "reward refused");
            json!({"result": "refused", "reason": refusal.as_str()})
        }
        CreditOutcome::Duplicate {
            credited_msat,
            refusal,
        } => {
            state.metrics.reward_credit("duplicate");
            json!({
                "result": "duplicate",
                "credited_sat": credited_msat / 1000,
                "reason": refusal.map(|r| r.as_str()),
            })
        }
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DevPayRequest {
    invoice: String,
}

/// DEVELOPMENT ONLY: pays an invoice of the embedded dev node. Absent (404) with any other
/// backend.
async fn dev_pay(
    State(state): State<AppState>,
    // A Result, checked after the dev-node test: without the dev node these paths do not
    // exist (404) whoever asks.
    caller: Result<InternalCaller, ApiError>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let Some(dev) = &state.dev_node else {
        return Err(ApiError::not_found(
            "not_found",
            "no such endpoint (the dev node is not in use)",
        ));
    };
    caller?;
    let body = body.map_err(body_error)?;
    let request: DevPayRequest = parse_json(&body)?;
    match dev.simulate_payment(&request.invoice).await {
        Ok(DevPayment::Settled { preimage }) => Ok(Json(
            json!({"status": "settled", "preimage": hex::encode(preimage.0)}),
        )),
        Ok(DevPayment::Held { .. }) => Ok(Json(json!({"status": "held"}))),
        Err(e) => Err(ApiError::bad_request("payment_refused", e.to_string())),
    }
}

/// DEVELOPMENT ONLY: the dev node's own view of an invoice (`OPEN`, `ACCEPTED`, `SETTLED`,
/// `CANCELED`, as lnd names them), so demos and tests can see what the visitor's wallet would
/// see. Absent (404) with any other backend.
async fn dev_invoice(
    State(state): State<AppState>,
    // A Result, checked after the dev-node test: without the dev node these paths do not
    // exist (404) whoever asks.
    caller: Result<InternalCaller, ApiError>,
    Path(hash): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let Some(dev) = &state.dev_node else {
        return Err(ApiError::not_found(
            "not_found",
            "no such endpoint (the dev node is not in use)",
        ));
    };
    caller?;
    let hash = super::admin::parse_hash(&hash)?;
    match dev.lookup(&hash).await {
        Ok(status) => Ok(Json(json!({"state": status.state.as_lnd_str()}))),
        Err(crate::node::NodeError::NotFound) => Err(ApiError::not_found(
            "invoice_not_found",
            "the dev node has no such invoice",
        )),
        Err(e) => Err(crate::deposit::lifecycle::LifecycleError::Node(e).into()),
    }
}
