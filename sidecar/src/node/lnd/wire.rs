//! lnd's REST encoding (grpc-gateway protobuf JSON): request bodies with only documented field
//! names (lnd rejects unknown ones), int64 as strings, bytes as base64 (base64url with padding in
//! paths and queries), and the mapping of lnd's error messages to [`NodeError`]. Pure: no I/O.
//! Public so that the fuzz targets (fuzz/, fuzz-checks/) decode lnd's answers through exactly
//! the functions the client uses.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::ids::PaymentHash;
use crate::node::{InvoiceState, InvoiceStatus, NodeError, NodeInfo, PaymentOutcome};

/// Bytes in a URL path or query: base64url keeping the `=` padding (`/` would split the path,
/// and `+` would turn into a space in a query).
pub fn url_bytes(bytes: &[u8]) -> String {
    URL_SAFE.encode(bytes)
}

pub fn body_bytes(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn decode_bytes(text: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .ok()
}

/// int64 fields arrive as strings; accept numbers too (older gateways, proxies re-encoding).
pub(super) fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
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
            .map_err(|_| serde::de::Error::custom(format!("not an int64: {s:?}"))),
    }
}

// ---- requests: exactly lnd's field names ----

#[derive(Serialize)]
pub struct AddInvoice<'a> {
    pub memo: &'a str,
    pub r_preimage: String,
    pub value_msat: String,
    pub expiry: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cltv_expiry: Option<String>,
    /// Route hints for lnd's private channels (lightning.proto `Invoice.private`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
}

#[derive(Serialize)]
pub struct AddHoldInvoice<'a> {
    pub memo: &'a str,
    pub hash: String,
    pub value_msat: String,
    pub expiry: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cltv_expiry: Option<String>,
    /// Route hints for lnd's private channels (invoices.proto `AddHoldInvoiceRequest.private`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
}

#[derive(Serialize)]
pub struct SettleInvoice {
    pub preimage: String,
}

#[derive(Serialize)]
pub struct CancelInvoice {
    pub payment_hash: String,
}

#[derive(Serialize)]
pub struct SendPayment<'a> {
    pub payment_request: &'a str,
    pub timeout_seconds: u32,
    pub fee_limit_msat: String,
    pub no_inflight_updates: bool,
}

// ---- answers: unknown fields tolerated (lnd adds fields between versions) ----

#[derive(Deserialize)]
pub struct GetInfo {
    #[serde(default)]
    pub identity_pubkey: String,
    #[serde(default)]
    pub block_height: u32,
    #[serde(default)]
    pub synced_to_chain: bool,
    #[serde(default)]
    pub chains: Vec<Chain>,
}

#[derive(Deserialize)]
pub struct Chain {
    #[serde(default)]
    pub network: String,
}

#[derive(Deserialize)]
pub struct AddInvoiceAnswer {
    #[serde(default)]
    pub r_hash: String,
    pub payment_request: String,
}

#[derive(Deserialize)]
pub struct AddHoldInvoiceAnswer {
    pub payment_request: String,
}

#[derive(Deserialize)]
pub struct Empty {}

#[derive(Deserialize)]
pub struct Invoice {
    pub r_hash: String,
    pub state: String,
    #[serde(default, deserialize_with = "int64")]
    pub value_msat: u64,
    #[serde(default, deserialize_with = "int64")]
    pub amt_paid_msat: u64,
    #[serde(default, deserialize_with = "int64")]
    pub creation_date: u64,
    #[serde(default, deserialize_with = "int64")]
    pub expiry: u64,
    #[serde(default)]
    pub htlcs: Vec<Htlc>,
}

#[derive(Deserialize)]
pub struct Htlc {
    #[serde(default)]
    pub expiry_height: u32,
    #[serde(default)]
    pub state: String,
}

#[derive(Deserialize)]
pub struct Payment {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub payment_preimage: String,
    #[serde(default, deserialize_with = "int64")]
    pub fee_msat: u64,
    #[serde(default)]
    pub failure_reason: String,
}

/// One NDJSON line of a stream: `{"result": …}` or `{"error": {…}}`.
#[derive(Deserialize)]
pub struct StreamLine<T> {
    pub result: Option<T>,
    pub error: Option<LndErrorBody>,
}

#[derive(Deserialize, Debug, Default)]
pub struct LndErrorBody {
    #[serde(default)]
    pub code: i32,
    #[serde(default)]
    pub message: String,
}

/// An error body: `{"code","message","details"}`, or `{"error": {…}}` when a stream fails
/// before its first message.
pub fn parse_error_body(body: &[u8]) -> Option<LndErrorBody> {
    #[derive(Deserialize)]
    struct Wrapped {
        error: LndErrorBody,
    }
    serde_json::from_slice::<Wrapped>(body)
        .map(|w| w.error)
        .or_else(|_| serde_json::from_slice::<LndErrorBody>(body))
        .ok()
        .filter(|e| !e.message.is_empty() || e.code != 0)
}

/// gRPC status codes that mean "try again later".
const GRPC_DEADLINE_EXCEEDED: i32 = 4;
const GRPC_UNAVAILABLE: i32 = 14;

/// lnd's errors by message (most invoice errors are code 2 / HTTP 500, so the code says little).
pub fn map_error(http_status: u16, body: &[u8]) -> NodeError {
    let Some(error) = parse_error_body(body) else {
        let text = String::from_utf8_lossy(body);
        let text: String = text.chars().take(200).collect();
        return NodeError::Unavailable(format!("lnd answered HTTP {http_status}: {text}"));
    };
    map_lnd_error(http_status, &error)
}

pub fn map_lnd_error(http_status: u16, error: &LndErrorBody) -> NodeError {
    let message: String = error.message.chars().take(300).collect();
    let has = |needle: &str| message.contains(needle);
    // "payment isn't initiated": TrackPaymentV2 for a hash this node never sent.
    if has("unable to locate invoice")
        || has("there are no existing invoices")
        || has("payment isn't initiated")
    {
        NodeError::NotFound
    } else if has("invoice with payment hash already exists") {
        NodeError::AlreadyExists
    } else if has("invoice still open") {
        NodeError::StillOpen
    } else if has("invoice already settled") {
        NodeError::AlreadySettled
    } else if has("invoice already canceled") {
        NodeError::AlreadyCanceled
    } else if error.code == GRPC_UNAVAILABLE
        || error.code == GRPC_DEADLINE_EXCEEDED
        || matches!(http_status, 502..=504)
        // lnd while starting or locked (lnrpc: ErrServerNotActive, ErrRPCStarting, walletunlocker).
        || has("in the process of starting")
        || has("not yet ready")
        || has("RPC services not available")
        || has("wallet locked")
    {
        NodeError::Unavailable(message)
    } else {
        NodeError::Rejected(message)
    }
}

/// lnd's Invoice into the trait's view. `htlc_expiry_height` is the lowest expiry of the HTLCs
/// that are not canceled (canceled MPP parts no longer bind the hold window).
pub fn invoice_status(invoice: &Invoice) -> Result<InvoiceStatus, NodeError> {
    let hash = decode_bytes(&invoice.r_hash)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            NodeError::Rejected(format!("lnd sent a malformed r_hash {:?}", invoice.r_hash))
        })?;
    let state = InvoiceState::from_lnd_str(&invoice.state).ok_or_else(|| {
        NodeError::Rejected(format!(
            "lnd sent an unknown invoice state {:?}",
            invoice.state
        ))
    })?;
    Ok(InvoiceStatus {
        payment_hash: PaymentHash(hash),
        state,
        amount_msat: invoice.value_msat,
        amount_paid_msat: invoice.amt_paid_msat,
        htlc_expiry_height: invoice
            .htlcs
            .iter()
            .filter(|h| h.state != "CANCELED")
            .map(|h| h.expiry_height)
            .min(),
        created_at: invoice.creation_date,
        expiry: Duration::from_secs(invoice.expiry),
    })
}

pub fn decode_hash(text: &str) -> Option<[u8; 32]> {
    decode_bytes(text).and_then(|b| b.try_into().ok())
}

/// A unary call's answer: an lnd error for a non-2xx status, else the JSON body as `T`.
pub fn answer<T: DeserializeOwned>(
    path: &str,
    http_status: u16,
    body: &[u8],
) -> Result<T, NodeError> {
    if !(200..300).contains(&http_status) {
        return Err(map_error(http_status, body));
    }
    serde_json::from_slice(body)
        .map_err(|e| NodeError::Rejected(format!("unexpected answer from lnd {path}: {e}")))
}

/// The next complete line of a stream's buffer (without its `\n`), removed from the buffer.
pub fn take_line(buffer: &mut Vec<u8>) -> Option<Vec<u8>> {
    let end = buffer.iter().position(|&b| b == b'\n')?;
    Some(buffer.drain(..=end).collect())
}

/// One NDJSON line of a stream: `None` for a blank line (skipped), else the item or the error
/// that ends the stream.
pub fn stream_line<T: DeserializeOwned>(line: &[u8]) -> Option<Result<T, NodeError>> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return None;
    }
    Some(match serde_json::from_slice::<StreamLine<T>>(line) {
        Ok(StreamLine {
            result: Some(item), ..
        }) => Ok(item),
        Ok(StreamLine {
            error: Some(error), ..
        }) => Err(map_lnd_error(200, &error)),
        Ok(_) => Err(NodeError::Rejected(
            "lnd sent an empty stream message".to_owned(),
        )),
        Err(e) => Err(NodeError::Rejected(format!(
            "lnd sent a malformed stream line: {e}"
        ))),
    })
}

/// GetInfo into the trait's view; `hold_expiry_delta` comes from the config (getinfo lacks it).
pub fn node_info(info: GetInfo, hold_expiry_delta: u32) -> NodeInfo {
    NodeInfo {
        network: info
            .chains
            .first()
            .map(|c| c.network.clone())
            .unwrap_or_default(),
        pubkey: info.identity_pubkey,
        block_height: info.block_height,
        hold_expiry_delta,
        synced_to_chain: info.synced_to_chain,
    }
}

/// A SendPaymentV2 update: `Some` once the payment is final, `None` while in flight.
pub fn payment_outcome(payment: Payment) -> Option<PaymentOutcome> {
    match payment.status.as_str() {
        "SUCCEEDED" => Some(PaymentOutcome::Succeeded {
            preimage_hex: payment.payment_preimage,
            fee_msat: payment.fee_msat,
        }),
        "FAILED" => Some(PaymentOutcome::Failed {
            reason: payment.failure_reason,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_bytes_are_base64url_with_padding() {
        // 0xfb 0xff -> "+/8=" in standard base64: both characters are unsafe in a URL.
        assert_eq!(url_bytes(&[0xfb, 0xff]), "-_8=");
        assert_eq!(url_bytes(&[0u8; 32]).len(), 44);
        assert!(url_bytes(&[0u8; 32]).ends_with('='));
    }

    #[test]
    fn lnd_messages_map_to_typed_errors() {
        let body = |m: &str| format!(r#"{{"code":2,"message":"{m}","details":[]}}"#);
        assert!(matches!(
            map_error(404, body("unable to locate invoice").as_bytes()),
            NodeError::NotFound
        ));
        assert!(matches!(
            map_error(
                500,
                body("invoice with payment hash already exists").as_bytes()
            ),
            NodeError::AlreadyExists
        ));
        assert!(matches!(
            map_error(500, body("invoice still open").as_bytes()),
            NodeError::StillOpen
        ));
        assert!(matches!(
            map_error(500, body("invoice already settled").as_bytes()),
            NodeError::AlreadySettled
        ));
        assert!(matches!(
            map_error(500, body("invoice already canceled").as_bytes()),
            NodeError::AlreadyCanceled
        ));
        assert!(matches!(
            map_error(
                500,
                body("verification failed: signature mismatch after caveat verification")
                    .as_bytes()
            ),
            NodeError::Rejected(_)
        ));
        assert!(matches!(
            map_error(
                500,
                body("server is still in the process of starting").as_bytes()
            ),
            NodeError::Unavailable(_)
        ));
        assert!(matches!(
            map_error(502, b"<html>Bad Gateway</html>"),
            NodeError::Unavailable(_)
        ));
        assert!(matches!(
            map_error(
                500,
                br#"{"error":{"code":5,"message":"unable to locate invoice"}}"#
            ),
            NodeError::NotFound
        ));
    }

    #[test]
    fn invoices_decode_from_protobuf_json_with_string_int64s() {
        let json = r#"{"r_hash":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=","state":"ACCEPTED",
            "value_msat":"5000","amt_paid_msat":"5000","creation_date":"1700000000","expiry":"600",
            "htlcs":[{"expiry_height":744,"state":"ACCEPTED"},{"expiry_height":700,"state":"CANCELED"},
                     {"expiry_height":740,"state":"ACCEPTED"}],"some_future_field":true}"#;
        let invoice: Invoice = serde_json::from_str(json).unwrap();
        let status = invoice_status(&invoice).unwrap();
        assert_eq!(status.payment_hash, PaymentHash([1; 32]));
        assert_eq!(status.state, InvoiceState::Accepted);
        assert_eq!(status.amount_msat, 5_000);
        assert_eq!(status.amount_paid_msat, 5_000);
        assert_eq!(status.htlc_expiry_height, Some(740));
        assert_eq!(status.expiry, Duration::from_secs(600));
    }

    #[test]
    fn request_bodies_carry_only_lnds_field_names_and_int64_strings() {
        let body = serde_json::to_value(AddHoldInvoice {
            memo: "m",
            hash: body_bytes(&[0; 32]),
            value_msat: 1_000.to_string(),
            expiry: 600.to_string(),
            cltv_expiry: None,
            private: false,
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"memo":"m","hash":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                               "value_msat":"1000","expiry":"600"})
        );
        let private = serde_json::to_value(AddHoldInvoice {
            memo: "m",
            hash: body_bytes(&[0; 32]),
            value_msat: 1_000.to_string(),
            expiry: 600.to_string(),
            cltv_expiry: Some(144.to_string()),
            private: true,
        })
        .unwrap();
        assert_eq!(private["private"], true);
        assert_eq!(private["cltv_expiry"], "144");
    }
}
