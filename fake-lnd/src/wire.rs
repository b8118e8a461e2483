//! lnd's REST encoding for FakeLnd (test double): protobuf JSON with proto field names, int64 as
//! strings on output and numbers-or-strings on input, bytes as base64, every field emitted, and
//! error bodies `{"code","message","details"}`. Unknown request fields are rejected, as lnd does.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::state::{Invoice, LndError, OutgoingPayment, State};

/// int64/uint64 fields: protojson accepts a JSON number or a decimal string.
pub fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        Number(u64),
        Text(String),
    }
    match Option::<Int>::deserialize(d)? {
        None => Ok(0),
        Some(Int::Number(n)) => Ok(n),
        Some(Int::Text(s)) if s.is_empty() => Ok(0),
        Some(Int::Text(s)) => s
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("invalid value for int64 field: {s:?}"))),
    }
}

/// bytes fields: protojson accepts either base64 alphabet, padded or not.
pub fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = Option::<String>::deserialize(d)?.unwrap_or_default();
    decode_base64(&text)
        .ok_or_else(|| serde::de::Error::custom(format!("invalid value for bytes field: {text:?}")))
}

/// bytes in a URL path or query: grpc-gateway's `runtime.Bytes` tries padded standard base64,
/// then padded URL-safe base64, and nothing else (an unpadded hash is refused, unlike in bodies).
pub fn decode_url_bytes(text: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .ok()
}

pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// A JSON body into a request message, or lnd's InvalidArgument answer.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, LndError> {
    serde_json::from_slice(body).map_err(|e| LndError::invalid(format!("proto: {e}")))
}

pub fn hash32(bytes: &[u8]) -> Result<[u8; 32], LndError> {
    bytes
        .try_into()
        .map_err(|_| LndError::unknown(format!("invalid hash length of {}, want 32", bytes.len())))
}

pub fn error_body(error: &LndError) -> Value {
    json!({"code": error.code, "message": error.message, "details": []})
}

/// grpc-gateway's mapping of gRPC codes to HTTP statuses.
pub fn http_status(code: u16) -> u16 {
    match code {
        3 => 400,
        5 => 404,
        6 => 409,
        7 => 403,
        14 => 503,
        16 => 401,
        _ => 500,
    }
}

// AddInvoice takes a whole `lnrpc.Invoice` (lnrpc/lightning.proto): every field of it is
// accepted, as lnd does, even the output-only ones it ignores (`r_hash`, `settled`, `state`…;
// LNbits' LndRestWallet sends `r_hash` with `r_preimage`). The double acts only on the inputs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct AddInvoiceRequest {
    #[serde(default)]
    pub memo: String,
    #[serde(default, deserialize_with = "bytes")]
    pub r_preimage: Vec<u8>,
    #[serde(default, deserialize_with = "bytes")]
    pub r_hash: Vec<u8>,
    #[serde(default)]
    pub settled: bool,
    #[serde(default, deserialize_with = "int64")]
    pub creation_date: u64,
    #[serde(default, deserialize_with = "int64")]
    pub settle_date: u64,
    #[serde(default)]
    pub payment_request: String,
    #[serde(default, deserialize_with = "int64")]
    pub add_index: u64,
    #[serde(default, deserialize_with = "int64")]
    pub settle_index: u64,
    #[serde(default, deserialize_with = "int64")]
    pub amt_paid: u64,
    #[serde(default, deserialize_with = "int64")]
    pub amt_paid_sat: u64,
    #[serde(default, deserialize_with = "int64")]
    pub amt_paid_msat: u64,
    #[serde(default)]
    pub state: Value,
    #[serde(default)]
    pub htlcs: Vec<Value>,
    #[serde(default)]
    pub features: Value,
    #[serde(default, deserialize_with = "bytes")]
    pub payment_addr: Vec<u8>,
    #[serde(default)]
    pub amp_invoice_state: Value,
    #[serde(default)]
    pub is_blinded: bool,
    #[serde(default)]
    pub blinded_path_config: Value,
    #[serde(default, deserialize_with = "int64")]
    pub value: u64,
    #[serde(default, deserialize_with = "int64")]
    pub value_msat: u64,
    #[serde(default, deserialize_with = "bytes")]
    pub description_hash: Vec<u8>,
    #[serde(default, deserialize_with = "int64")]
    pub expiry: u64,
    #[serde(default)]
    pub fallback_addr: String,
    #[serde(default, deserialize_with = "int64")]
    pub cltv_expiry: u64,
    #[serde(default)]
    pub route_hints: Vec<Value>,
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub is_keysend: bool,
    #[serde(default)]
    pub is_amp: bool,
}

// Every documented field is accepted (lnd would), even those the double does not act on.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct AddHoldInvoiceRequest {
    #[serde(default)]
    pub memo: String,
    #[serde(default, deserialize_with = "bytes")]
    pub hash: Vec<u8>,
    #[serde(default, deserialize_with = "int64")]
    pub value: u64,
    #[serde(default, deserialize_with = "int64")]
    pub value_msat: u64,
    #[serde(default, deserialize_with = "bytes")]
    pub description_hash: Vec<u8>,
    #[serde(default, deserialize_with = "int64")]
    pub expiry: u64,
    #[serde(default)]
    pub fallback_addr: String,
    #[serde(default, deserialize_with = "int64")]
    pub cltv_expiry: u64,
    #[serde(default)]
    pub route_hints: Vec<Value>,
    #[serde(default)]
    pub private: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettleRequest {
    #[serde(default, deserialize_with = "bytes")]
    pub preimage: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    #[serde(default, deserialize_with = "bytes")]
    pub payment_hash: Vec<u8>,
}

/// routerrpc.SendPaymentRequest (lnrpc/routerrpc/router.proto): every documented field accepted,
/// as lnd does; the double acts on a few and ignores the rest.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SendPaymentRequest {
    #[serde(default)]
    pub payment_request: String,
    #[serde(default)]
    pub timeout_seconds: i64,
    #[serde(default, deserialize_with = "int64")]
    pub fee_limit_sat: u64,
    #[serde(default, deserialize_with = "int64")]
    pub fee_limit_msat: u64,
    #[serde(default)]
    pub no_inflight_updates: bool,
    #[serde(default)]
    pub allow_self_payment: bool,
    #[serde(default)]
    pub max_parts: u32,
    #[serde(default, deserialize_with = "int64")]
    pub amt: u64,
    #[serde(default, deserialize_with = "int64")]
    pub amt_msat: u64,
    #[serde(default)]
    pub cltv_limit: i64,
    #[serde(default)]
    pub outgoing_chan_ids: Vec<Value>,
    #[serde(default)]
    pub time_pref: f64,
    #[serde(default, deserialize_with = "bytes")]
    pub dest: Vec<u8>,
    #[serde(default, deserialize_with = "bytes")]
    pub payment_hash: Vec<u8>,
    #[serde(default)]
    pub final_cltv_delta: i64,
    #[serde(default)]
    pub route_hints: Vec<Value>,
    #[serde(default)]
    pub dest_custom_records: Value,
    #[serde(default, deserialize_with = "bytes")]
    pub last_hop_pubkey: Vec<u8>,
    #[serde(default)]
    pub dest_features: Vec<Value>,
    #[serde(default, deserialize_with = "bytes")]
    pub payment_addr: Vec<u8>,
    #[serde(default, deserialize_with = "int64")]
    pub max_shard_size_msat: u64,
    #[serde(default)]
    pub amp: bool,
    #[serde(default)]
    pub cancelable: bool,
    #[serde(default)]
    pub first_hop_custom_records: Value,
}

/// mpp amounts as lnd reports them: `value` in whole sats, `value_msat` exact.
pub fn invoice_json(invoice: &Invoice) -> Value {
    let htlcs: Vec<Value> = invoice
        .htlc
        .iter()
        .map(|h| {
            json!({
                "chan_id": crate::state::PRIVATE_CHANNEL_ID.to_string(),
                "htlc_index": "0",
                "amt_msat": h.amt_msat.to_string(),
                "accept_height": h.accept_height,
                "accept_time": h.accept_time.to_string(),
                "resolve_time": h.resolve_time.to_string(),
                "expiry_height": h.expiry_height,
                "state": match h.state {
                    State::Accepted | State::Open => "ACCEPTED",
                    State::Settled => "SETTLED",
                    State::Canceled => "CANCELED",
                },
                "custom_records": {},
                "mpp_total_amt_msat": invoice.value_msat.to_string(),
                "amp": null,
            })
        })
        .collect();
    json!({
        "memo": invoice.memo,
        "r_preimage": invoice.preimage.filter(|_| invoice.state == State::Settled || !invoice.is_hold)
            .map(|p| b64(&p)).unwrap_or_default(),
        "r_hash": b64(&invoice.hash),
        "value": (invoice.value_msat / 1000).to_string(),
        "value_msat": invoice.value_msat.to_string(),
        "settled": invoice.state == State::Settled,
        "creation_date": invoice.creation_date.to_string(),
        "settle_date": invoice.settle_date.to_string(),
        "payment_request": invoice.payment_request,
        "description_hash": b64(&invoice.description_hash),
        "expiry": invoice.expiry.to_string(),
        "fallback_addr": "",
        "cltv_expiry": invoice.cltv_expiry.to_string(),
        "route_hints": [],
        "private": invoice.private,
        "add_index": invoice.add_index.to_string(),
        "settle_index": invoice.settle_index.to_string(),
        "amt_paid": invoice.amt_paid_msat.to_string(),
        "amt_paid_sat": (invoice.amt_paid_msat / 1000).to_string(),
        "amt_paid_msat": invoice.amt_paid_msat.to_string(),
        "state": invoice.state.name(),
        "htlcs": htlcs,
        "features": {},
        "is_keysend": false,
        "payment_addr": b64(&invoice.payment_addr),
        "is_amp": false,
        "amp_invoice_state": {},
        "is_blinded": false,
        "blinded_path_config": null,
    })
}

pub fn payment_json(payment: &OutgoingPayment) -> Value {
    let status = payment.status.name();
    let failure_reason = payment.status.failure_reason();
    let preimage = match payment.status {
        crate::state::PaymentStatus::Succeeded => payment.preimage,
        _ => None,
    };
    json!({
        "payment_hash": hex::encode(payment.hash),
        "value": (payment.value_msat / 1000).to_string(),
        "creation_date": payment.creation_date.to_string(),
        "fee": (payment.fee_msat / 1000).to_string(),
        "payment_preimage": preimage.map(hex::encode)
            .unwrap_or_else(|| "0".repeat(64)),
        "value_sat": (payment.value_msat / 1000).to_string(),
        "value_msat": payment.value_msat.to_string(),
        "payment_request": payment.payment_request,
        "status": status,
        "fee_sat": (payment.fee_msat / 1000).to_string(),
        "fee_msat": payment.fee_msat.to_string(),
        "creation_time_ns": (payment.creation_date * 1_000_000_000).to_string(),
        "htlcs": [],
        "payment_index": payment.index.to_string(),
        "failure_reason": failure_reason,
        "first_hop_custom_records": {},
    })
}
