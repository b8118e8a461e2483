//! FakeLnd's REST endpoints (test double of lnd's grpc-gateway): the macaroon check, the invoice
//! calls, the NDJSON stream plumbing (the streams themselves: `subscriptions.rs`, `payments.rs`).
//! Behaviour and messages follow `docs/lnd-rest.md`; nothing here may be more lenient than lnd,
//! or the client's bugs would pass unnoticed.

mod payments;
mod subscriptions;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State as AxumState};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Shared;
use crate::macaroons;
use crate::state::{DEFAULT_CLTV_EXPIRY, DEFAULT_EXPIRY, LndError, NewInvoice, State};
use crate::wire::{self, b64};
use payments::{send_payment, track_payment};
use subscriptions::{subscribe_all, subscribe_single};

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/getinfo", get(get_info))
        .route("/v1/balance/channels", get(channel_balance))
        .route("/v1/channels", get(list_channels))
        .route("/v1/macaroon/permissions", get(list_permissions))
        .route("/v1/invoices", post(add_invoice))
        .route("/v1/invoices/subscribe", get(subscribe_all))
        .route("/v1/invoice/{r_hash_str}", get(lookup_v1))
        .route("/v2/invoices/hodl", post(add_hold_invoice))
        .route("/v2/invoices/settle", post(settle))
        .route("/v2/invoices/cancel", post(cancel))
        .route("/v2/invoices/lookup", get(lookup_v2))
        .route("/v2/invoices/subscribe/{r_hash}", get(subscribe_single))
        .route("/v2/router/send", post(send_payment))
        .route("/v2/router/track/{payment_hash}", get(track_payment))
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            check_macaroon,
        ))
        .with_state(shared)
}

struct Answer(Result<Value, LndError>);

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self.0 {
            Ok(body) => axum::Json(body).into_response(),
            Err(error) => lnd_error(&error),
        }
    }
}

fn lnd_error(error: &LndError) -> Response {
    let status = StatusCode::from_u16(wire::http_status(error.code))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(wire::error_body(error))).into_response()
}

/// lnd checks the macaroon on every call, streams included (`Grpc-Metadata-macaroon`, hex): its
/// signature, then the method's permission (`macaroons.rs`).
async fn check_macaroon(
    AxumState(shared): AxumState<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    shared.log_request(&format!("{} {}", request.method(), request.uri().path()));
    let needed = macaroons::required(request.method().as_str(), request.uri().path());
    let presented: Vec<&HeaderValue> = request
        .headers()
        .get_all("grpc-metadata-macaroon")
        .iter()
        .collect();
    let verdict = match presented.as_slice() {
        [one] => match one.to_str().ok().and_then(|h| hex::decode(h).ok()) {
            Some(bytes) => match needed {
                Some(needed) => macaroons::check(&shared.root_key, &bytes, needed)
                    .map_err(|refusal| LndError::unknown(refusal.message())),
                // Not one of lnd's routes: the router answers 404 as grpc-gateway does.
                None => Ok(()),
            },
            None => Err(LndError::unknown(
                "unable to decode macaroon: encoding/hex: invalid byte",
            )),
        },
        other => Err(LndError::unknown(format!(
            "expected 1 macaroon, got {}",
            other.len()
        ))),
    };
    match verdict {
        Ok(()) => next.run(request).await,
        Err(error) => lnd_error(&error),
    }
}

/// ListPermissions (`lnrpc.ListPermissionsResponse`): every method FakeLnd serves and the
/// permission lnd requires for it.
async fn list_permissions() -> Answer {
    let mut map = serde_json::Map::new();
    for (_, _, full, entity, action) in macaroons::METHODS {
        map.insert(
            (*full).to_owned(),
            json!({"permissions": [{"entity": entity, "action": action}]}),
        );
    }
    Answer(Ok(json!({ "method_permissions": map })))
}

/// ListChannels (`lnrpc.ListChannelsResponse`): the channels a test configured, every field the
/// wall reads emitted as lnd does (int64/uint64 as strings, uint32 as numbers). Held hold
/// invoices show as incoming HTLCs on the first channel and no longer count in its
/// `remote_balance`, as in lnd, where an HTLC's amount leaves the sender's balance while in
/// flight.
async fn list_channels(AxumState(shared): AxumState<Arc<Shared>>) -> Answer {
    let channels = shared.channels();
    let held: Vec<(u64, [u8; 32], u32)> = {
        let db = shared.db();
        db.invoices
            .values()
            .filter(|i| i.state == State::Accepted)
            .filter_map(|i| {
                i.htlc
                    .as_ref()
                    .map(|h| (i.amt_paid_msat, i.hash, h.expiry_height))
            })
            .collect()
    };
    let list: Vec<Value> = channels
        .iter()
        .enumerate()
        .map(|(n, c)| {
            let on_this = if n == 0 { held.as_slice() } else { &[] };
            let in_flight_sat: u64 = on_this.iter().map(|(msat, ..)| msat / 1000).sum();
            let constraints = |reserve: u64, max_htlcs: u32| {
                json!({
                    "csv_delay": 144,
                    "chan_reserve_sat": reserve.to_string(),
                    "dust_limit_sat": "354",
                    "max_pending_amt_msat": (c.capacity_sat * 990).to_string(),
                    "min_htlc_msat": "1",
                    "max_accepted_htlcs": max_htlcs,
                })
            };
            json!({
                "active": c.active,
                "remote_pubkey": format!("02{}", hex::encode([n as u8 + 1; 32])),
                "channel_point": format!("{}:0", hex::encode([n as u8 + 9; 32])),
                "chan_id": ((800_000u64 << 40) | n as u64).to_string(),
                "capacity": c.capacity_sat.to_string(),
                "local_balance": c.local_balance_sat.to_string(),
                "remote_balance": c.remote_balance_sat.saturating_sub(in_flight_sat).to_string(),
                "commit_fee": "0",
                "commit_weight": "0",
                "fee_per_kw": "0",
                "unsettled_balance": in_flight_sat.to_string(),
                "total_satoshis_sent": "0",
                "total_satoshis_received": "0",
                "num_updates": "0",
                "pending_htlcs": on_this.iter().map(|(msat, hash, expiry)| json!({
                    "incoming": true,
                    "amount": (msat / 1000).to_string(),
                    "hash_lock": b64(hash),
                    "expiration_height": expiry,
                    "htlc_index": "0",
                    "forwarding_channel": "0",
                    "forwarding_htlc_index": "0",
                    "locked_in": true,
                })).collect::<Vec<_>>(),
                "private": c.private,
                "initiator": true,
                "local_constraints": constraints(c.capacity_sat / 100, 483),
                "remote_constraints": constraints(c.remote_reserve_sat, c.max_accepted_htlcs),
            })
        })
        .collect();
    Answer(Ok(json!({ "channels": list })))
}

async fn get_info(AxumState(shared): AxumState<Arc<Shared>>) -> Answer {
    let db = shared.db();
    Answer(Ok(json!({
        "version": "0.18.5-beta fake-lnd test double",
        "commit_hash": "",
        "identity_pubkey": db.pubkey_hex(),
        "alias": "fake-lnd",
        "color": "#3399ff",
        "num_pending_channels": 0,
        "num_active_channels": 1,
        "num_inactive_channels": 0,
        "num_peers": 1,
        "block_height": db.height,
        "block_hash": hex::encode(Sha256::digest(db.height.to_be_bytes())),
        "best_header_timestamp": db.now().as_secs().to_string(),
        "synced_to_chain": true,
        "synced_to_graph": true,
        "testnet": db.network == "testnet",
        "chains": [{"chain": "bitcoin", "network": db.network}],
        "uris": [],
        "features": {},
        "require_htlc_interceptor": false,
        "store_final_htlc_resolutions": false,
    })))
}

/// ChannelBalance (lnrpc.ChannelBalanceResponse, every field emitted): FakeLnd has no money, so
/// every balance is zero. LNbits' LndRestWallet calls it at start-up as its health check.
async fn channel_balance() -> Answer {
    let zero = json!({"sat": "0", "msat": "0"});
    Answer(Ok(json!({
        "balance": "0",
        "pending_open_balance": "0",
        "local_balance": zero,
        "remote_balance": zero,
        "unsettled_local_balance": zero,
        "unsettled_remote_balance": zero,
        "pending_open_local_balance": zero,
        "pending_open_remote_balance": zero,
        "custom_channel_data": "",
    })))
}

fn amount_msat(value: u64, value_msat: u64) -> Result<u64, LndError> {
    // lnrpc.UnmarshallAmt.
    match (value, value_msat) {
        (0, msat) => Ok(msat),
        (sat, 0) => Ok(sat.saturating_mul(1000)),
        _ => Err(LndError::unknown(
            "sat and msat arguments are mutually exclusive",
        )),
    }
}

fn or_default(value: u64, default: u64) -> u64 {
    if value == 0 { default } else { value }
}

async fn add_invoice(AxumState(shared): AxumState<Arc<Shared>>, body: Bytes) -> Answer {
    Answer((|| {
        let req: wire::AddInvoiceRequest = wire::parse_body(&body)?;
        let preimage: [u8; 32] = if req.r_preimage.is_empty() {
            rand::random()
        } else {
            req.r_preimage.as_slice().try_into().map_err(|_| {
                LndError::unknown(format!(
                    "invalid preimage length of {}, want 32",
                    req.r_preimage.len()
                ))
            })?
        };
        let hash: [u8; 32] = Sha256::digest(preimage).into();
        let mut db = shared.db();
        let invoice = db.add(NewInvoice {
            hash,
            preimage: Some(preimage),
            memo: req.memo,
            value_msat: amount_msat(req.value, req.value_msat)?,
            expiry: or_default(req.expiry, DEFAULT_EXPIRY),
            cltv_expiry: or_default(req.cltv_expiry, DEFAULT_CLTV_EXPIRY),
            private: req.private,
            description_hash: req.description_hash,
        })?;
        shared.announce(&[invoice.hash]);
        Ok(json!({
            "r_hash": b64(&invoice.hash),
            "payment_request": invoice.payment_request,
            "add_index": invoice.add_index.to_string(),
            "payment_addr": b64(&invoice.payment_addr),
        }))
    })())
}

async fn add_hold_invoice(AxumState(shared): AxumState<Arc<Shared>>, body: Bytes) -> Answer {
    Answer((|| {
        let req: wire::AddHoldInvoiceRequest = wire::parse_body(&body)?;
        let hash = wire::hash32(&req.hash)?;
        let mut db = shared.db();
        let invoice = db.add(NewInvoice {
            hash,
            preimage: None,
            memo: req.memo,
            value_msat: amount_msat(req.value, req.value_msat)?,
            expiry: or_default(req.expiry, DEFAULT_EXPIRY),
            cltv_expiry: or_default(req.cltv_expiry, DEFAULT_CLTV_EXPIRY),
            private: req.private,
            description_hash: req.description_hash,
        })?;
        shared.announce(&[invoice.hash]);
        Ok(json!({
            "payment_request": invoice.payment_request,
            "add_index": invoice.add_index.to_string(),
            "payment_addr": b64(&invoice.payment_addr),
        }))
    })())
}

async fn settle(AxumState(shared): AxumState<Arc<Shared>>, body: Bytes) -> Answer {
    let result = (|| {
        let req: wire::SettleRequest = wire::parse_body(&body)?;
        let preimage = req.preimage.as_slice().try_into().map_err(|_| {
            LndError::unknown(format!(
                "invalid preimage length of {}, want 32",
                req.preimage.len()
            ))
        })?;
        shared.db().settle(preimage)
    })();
    Answer(result.map(|changed| {
        shared.announce(&changed);
        json!({})
    }))
}

async fn cancel(AxumState(shared): AxumState<Arc<Shared>>, body: Bytes) -> Answer {
    let result = (|| {
        let req: wire::CancelRequest = wire::parse_body(&body)?;
        let hash = wire::hash32(&req.payment_hash)?;
        shared.db().cancel(hash)
    })();
    Answer(result.map(|changed| {
        shared.announce(&changed);
        json!({})
    }))
}

fn lookup(shared: &Shared, hash: &[u8; 32]) -> Result<Value, LndError> {
    let mut db = shared.db();
    let changed = db.sweep();
    let answer = db.get(hash).map(wire::invoice_json);
    drop(db);
    shared.announce(&changed);
    answer
}

/// `GET /v2/invoices/lookup?payment_hash=`: the query is form-decoded first (`+` becomes a
/// space), so only base64url survives — the pitfall the client must avoid.
async fn lookup_v2(AxumState(shared): AxumState<Arc<Shared>>, RawQuery(query): RawQuery) -> Answer {
    Answer((|| {
        let query = query.unwrap_or_default();
        let mut hash_text = None;
        for (key, value) in form_urlencoded_pairs(&query) {
            match key.as_str() {
                "payment_hash" => hash_text = Some(value),
                // The rest of LookupInvoiceMsg (invoicesrpc/invoices.proto): accepted, unused.
                "payment_addr" | "set_id" | "lookup_modifier" => {}
                other => {
                    return Err(LndError::invalid(format!(
                        "failed to populate field: no field {other:?} found in LookupInvoiceMsg"
                    )));
                }
            }
        }
        let text = hash_text.unwrap_or_default();
        let bytes = wire::decode_url_bytes(&text).ok_or_else(|| {
            LndError::invalid(format!(
                "payment_hash: invalid base64 {text:?}: illegal base64 data"
            ))
        })?;
        lookup(&shared, &wire::hash32(&bytes)?)
    })())
}

async fn lookup_v1(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path(r_hash_str): Path<String>,
) -> Answer {
    Answer((|| {
        let bytes = hex::decode(&r_hash_str)
            .map_err(|e| LndError::unknown(format!("unable to decode hex: {e}")))?;
        lookup(&shared, &wire::hash32(&bytes)?)
    })())
}

fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(key), form_decode(value))
        })
        .collect()
}

/// application/x-www-form-urlencoded decoding, as Go's url.ParseQuery does it.
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => match bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(decoded) => {
                    out.push(decoded);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn ndjson_line(value: &Value) -> Bytes {
    let mut line = serde_json::to_vec(value).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// What ends a stream's wait between two looks at the state.
enum Wake {
    /// The test cut every stream (`drop_streams`): end with an error, no final chunk.
    Cut,
    /// The server is going away.
    Closed,
    /// Something changed (or changes were missed): look again.
    Changed,
}

/// Waits for the next change; a cut wins over a change that arrives at the same moment.
async fn next_change(
    kill: &mut tokio::sync::watch::Receiver<u64>,
    changes: &mut tokio::sync::broadcast::Receiver<[u8; 32]>,
) -> Wake {
    tokio::select! {
        biased;
        _ = kill.changed() => Wake::Cut,
        changed = changes.recv() => match changed {
            Err(tokio::sync::broadcast::error::RecvError::Closed) => Wake::Closed,
            _ => Wake::Changed,
        },
    }
}

/// The error a cut stream ends with.
fn cut() -> std::io::Error {
    std::io::Error::other("fake-lnd: stream dropped by the test")
}

/// An error a streaming RPC itself returns (the gateway has parsed the request): grpc-gateway's
/// ForwardResponseStream writes `{"error": {code, message, details}}`, with the HTTP status mapped
/// from the code since no message went before it. Request parsing errors stay unary-shaped.
fn stream_error(error: &LndError) -> Response {
    let status = StatusCode::from_u16(wire::http_status(error.code))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        axum::Json(json!({"error": wire::error_body(error)})),
    )
        .into_response()
}

/// lnd writes a stream's response head only together with its first message (grpc-gateway's
/// ForwardResponseStream): a client waiting for the head of a quiet stream sees nothing at all.
async fn stream_reply<S>(stream: S) -> Response
where
    S: futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    use futures_util::StreamExt;
    let mut stream = Box::pin(stream);
    match stream.next().await {
        Some(first) => stream_response(Body::from_stream(
            futures_util::stream::iter([first]).chain(stream),
        )),
        None => stream_response(Body::empty()),
    }
}

fn stream_response(body: Body) -> Response {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
