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
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::InternalCaller;
use super::error::{ApiError, body_error, parse_json};
use crate::deposit::Trigger;
use crate::deposit::machine::{Event, Outcome};
use crate::ids::TokenId;
use crate::mint::MintedChallenge;
use crate::node::Node as _;
use crate::node::dev::DevPayment;
use crate::rewards::{Limits, RewardId};
use crate::store::CreditOutcome;
use crate::usage::{self, UsageKind};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/challenge", post(challenge))
        .route("/v1/bootstrap", get(bootstrap))
        .route("/v1/sync", get(sync))
        .route("/v1/revocations/snapshot", get(revocation_snapshot))
        .route("/v1/events", post(events))
        .route("/v1/dev/pay", post(dev_pay))
        .route("/v1/dev/invoices/{payment_hash}", get(dev_invoice))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChallengeRequest {
    route_id: String,
    /// The visitor's address as Envoy saw it (for the mint rate and the per-network cap).
    client_ip: IpAddr,
}

async fn challenge(
    State(state): State<AppState>,
    _: InternalCaller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<MintedChallenge>, ApiError> {
    let body = body.map_err(body_error)?;
    let request: ChallengeRequest = parse_json(&body)?;
    let minted = state
        .minter
        .mint(&request.route_id, request.client_ip)
        .await?;
    Ok(Json(minted))
}

async fn bootstrap(
    State(state): State<AppState>,
    _: InternalCaller,
) -> Result<Json<Value>, ApiError> {
    let revocation_seq = state.store.revocation_head().await?;
    Ok(Json(
        state.policy.bootstrap_body(&state.keys, revocation_seq),
    ))
}

/// Every live revocation in one binary body, for a worker that starts (docs/internal-api.md).
async fn revocation_snapshot(
    State(state): State<AppState>,
    _: InternalCaller,
) -> Result<([(axum::http::HeaderName, &'static str); 1], Vec<u8>), ApiError> {
    let body = crate::revocations::snapshot(&state.store, &state.config).await?;
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
}

async fn sync(
    State(state): State<AppState>,
    _: InternalCaller,
    query: Result<Query<SyncQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::bad_request("bad_query", format!("query: {e}")))?;
    let limit = query.limit.unwrap_or(1000).clamp(1, 10_000);
    let revocations = state
        .store
        .revocations_since(query.since, limit.saturating_add(1))
        .await?;
    let more = revocations.len() > limit as usize;
    let items: Vec<Value> = revocations
        .iter()
        .take(limit as usize)
        .map(|r| json!({"seq": r.seq, "token_id": r.token_id.to_string()}))
        .collect();
    let next_since = revocations
        .get(..(limit as usize).min(revocations.len()))
        .and_then(<[_]>::last)
        .map_or(query.since, |r| r.seq);
    Ok(Json(json!({
        "policy_version": state.policy.version,
        "revocations": items,
        "next_since": next_since,
        "more": more,
    })))
}

/// One event from the filter. Unknown types or fields reject the whole batch (400), so a
/// filter/sidecar version mismatch is loud rather than silently dropping verdicts.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum FilterEvent {
    /// Requests were served with this token (resets the idle timer).
    Activity { token_id: String },
    /// One proxy instance's count of a deposit token's requests or upstream errors in a
    /// window, summed across instances for the route's budgets (`crate::usage`).
    Usage {
        token_id: String,
        reporter: String,
        kind: UsageKindWire,
        window_start: u64,
        count: u32,
    },
    /// A forfeit or refund decided by the filter (trap path, rate limit, error storm) or taken
    /// from the upstream's `x-lightning-wall-verdict` response header.
    Verdict {
        token_id: String,
        verdict: VerdictKind,
        trigger: VerdictTrigger,
    },
    /// A reward granted by the upstream (`x-lightning-wall-reward` and `-reward-id` on its
    /// response to a request with a valid credential); credited once per (token, reward id).
    Reward {
        token_id: String,
        sats: u64,
        reward_id: String,
    },
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum UsageKindWire {
    Requests,
    Errors,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum VerdictKind {
    Forfeit,
    Refund,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum VerdictTrigger {
    TrapPath,
    RateLimit,
    ErrorStorm,
    Upstream,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventBatch {
    events: Vec<FilterEvent>,
}

const MAX_EVENTS: usize = 1000;

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
            FilterEvent::Activity { token_id } => (token_id, Parsed::Deposit(Event::Activity)),
            FilterEvent::Usage {
                token_id,
                reporter,
                kind,
                window_start,
                count,
            } => {
                if reporter.len() != 16 || !reporter.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(ApiError::bad_request(
                        "bad_reporter",
                        format!("events[{i}].reporter: must be 16 hex characters"),
                    ));
                }
                (
                    token_id,
                    Parsed::Usage {
                        reporter: reporter.to_ascii_lowercase(),
                        kind: match kind {
                            UsageKindWire::Requests => UsageKind::Requests,
                            UsageKindWire::Errors => UsageKind::Errors,
                        },
                        window_start: *window_start,
                        count: u64::from(*count),
                    },
                )
            }
            FilterEvent::Reward {
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
            FilterEvent::Verdict {
                token_id,
                verdict,
                trigger,
            } => (
                token_id,
                Parsed::Deposit(Event::Verdict {
                    outcome: match verdict {
                        VerdictKind::Forfeit => Outcome::Forfeit,
                        VerdictKind::Refund => Outcome::Refund,
                    },
                    trigger: match trigger {
                        VerdictTrigger::TrapPath => Trigger::TrapPath,
                        VerdictTrigger::RateLimit => Trigger::RateLimit,
                        VerdictTrigger::ErrorStorm => Trigger::ErrorStorm,
                        VerdictTrigger::Upstream => Trigger::Upstream,
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
        parsed.push((TokenId(id), event));
    }
    let mut results = Vec::with_capacity(parsed.len());
    let (mut usage, mut usage_at) = (Vec::new(), Vec::new());
    let limits = Limits::from(&state.config.rewards);
    for (token, event) in parsed {
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
        let result = match state.engine.event_by_token(&token, event).await {
            Ok(crate::deposit::engine::Stepped::Changed(d)) => {
                json!({"result": "applied", "state": d.state.as_str()})
            }
            Ok(crate::deposit::engine::Stepped::Unchanged(d, _)) => {
                json!({"result": "unchanged", "state": d.state.as_str()})
            }
            Err(crate::deposit::engine::EngineError::NotFound) => {
                json!({"result": "unknown_token"})
            }
            Err(e) => return Err(e.into()),
        };
        results.push(result);
    }
    let counted = usage::record(&state.engine, &state.config, &usage).await?;
    for (at, result) in usage_at.into_iter().zip(counted) {
        results[at] = result;
    }
    Ok(Json(json!({"results": results})))
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
        .credit_reward(token, reward_id, amount_msat, limits, state.engine.now())
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
        Err(e) => Err(crate::deposit::engine::EngineError::Node(e).into()),
    }
}
