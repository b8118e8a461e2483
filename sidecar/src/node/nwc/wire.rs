//! NIP-47's JSON, as the spec (nostr-protocol/nips 47.md) writes it: requests, responses,
//! notifications, error codes, and what a wallet's answer means in the `Node` contract's terms.
//! Pure: no relay, no clock (callers pass "now").
//!
//! Written here rather than taken from `nostr::nips::nip47` because that module (0.44) names
//! `make_hold_invoice`'s CLTV field `cltv_expiry_delta` where the NIP says
//! `min_cltv_expiry_delta`, has no `accepted` transaction state and decrypts with NIP-04 only.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::super::{InvoiceRequest, InvoiceState, InvoiceStatus, NodeError, PaymentOutcome};
use crate::ids::{PaymentHash, Preimage};

/// Methods the backend calls; the wallet must offer each (info event) and grant each to this
/// connection (`get_info.methods`).
pub const REQUIRED_METHODS: [&str; 5] = [
    "make_hold_invoice",
    "settle_hold_invoice",
    "cancel_hold_invoice",
    "lookup_invoice",
    "get_info",
];

/// A request's plaintext: `{"method": …, "params": {…}}`.
pub fn request(method: &str, params: Value) -> String {
    json!({ "method": method, "params": params }).to_string()
}

pub fn make_hold_invoice(hash: &PaymentHash, request: &InvoiceRequest) -> Value {
    let mut params = json!({
        "amount": request.amount_msat,
        "description": request.memo,
        "expiry": request.expiry.as_secs(),
        "payment_hash": hex::encode(hash.0),
    });
    if let (Some(cltv), Some(map)) = (request.cltv_expiry, params.as_object_mut()) {
        map.insert("min_cltv_expiry_delta".into(), cltv.into());
    }
    params
}

pub fn settle_hold_invoice(preimage: &Preimage) -> Value {
    json!({ "preimage": hex::encode(preimage.0) })
}

pub fn by_hash(hash: &PaymentHash) -> Value {
    json!({ "payment_hash": hex::encode(hash.0) })
}

pub fn pay_invoice(bolt11: &str) -> Value {
    json!({ "invoice": bolt11 })
}

/// A response's plaintext.
#[derive(Debug, Deserialize)]
pub struct Response {
    pub result_type: String,
    #[serde(default)]
    pub error: Option<WireError>,
    #[serde(default)]
    pub result: Option<Value>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct WireError {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// A notification's plaintext.
#[derive(Clone, Debug, Deserialize)]
pub struct Notification {
    pub notification_type: String,
    pub notification: Value,
}

/// A transaction as `lookup_invoice` returns it and as notifications carry it. Fields the spec
/// marks optional are optional here; unknown fields are ignored.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Transaction {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub invoice: Option<String>,
    #[serde(default)]
    pub preimage: Option<String>,
    pub payment_hash: String,
    #[serde(default)]
    pub amount: u64,
    #[serde(default)]
    pub fees_paid: Option<u64>,
    #[serde(default)]
    pub created_at: Option<u64>,
    #[serde(default)]
    pub expires_at: Option<u64>,
    #[serde(default)]
    pub settled_at: Option<u64>,
    /// `hold_invoice_accepted` only: the block before which the wallet can still settle or
    /// cancel safely.
    #[serde(default)]
    pub settle_deadline: Option<u32>,
}

/// What a response means: its result, or the wallet's error.
pub fn result(response: Response, method: &str) -> Result<Value, WireError> {
    if let Some(error) = response.error {
        return Err(error);
    }
    if response.result_type != method {
        return Err(WireError {
            code: "OTHER".into(),
            message: format!("the wallet answered {:?} to {method}", response.result_type),
        });
    }
    Ok(response.result.unwrap_or(Value::Null))
}

/// A wallet error as the contract sees it, before any disambiguating lookup. NIP-47 codes:
/// RATE_LIMITED is "retry in a few seconds"; INTERNAL may be a node that is down as well as a
/// refusal, so the callers that can tell (settle, cancel, create) look the invoice up.
pub fn node_error(error: &WireError) -> NodeError {
    let text = || format!("{}: {}", error.code, error.message);
    match error.code.as_str() {
        "NOT_FOUND" => NodeError::NotFound,
        "RATE_LIMITED" | "INTERNAL" => NodeError::Unavailable(text()),
        _ => NodeError::Rejected(text()),
    }
}

pub fn parse_hash(text: &str) -> Option<PaymentHash> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(PaymentHash(out))
}

/// An incoming transaction as an invoice status. `deadline` is the `settle_deadline` the
/// backend remembers from a `hold_invoice_accepted` notification (lookups do not carry it).
/// A transaction without `state` is read from its timestamps: settled when it has a
/// `settled_at`, canceled once expired, open before.
pub fn invoice_status(
    tx: &Transaction,
    deadline: Option<u32>,
    now_unix: u64,
) -> Result<InvoiceStatus, NodeError> {
    let payment_hash = parse_hash(&tx.payment_hash).ok_or_else(|| {
        NodeError::Rejected(format!(
            "the wallet sent a bad payment_hash {:?}",
            tx.payment_hash
        ))
    })?;
    let expired = tx.expires_at.is_some_and(|at| now_unix >= at);
    let state = match tx.state.as_deref() {
        Some("settled") => InvoiceState::Settled,
        Some("accepted") => InvoiceState::Accepted,
        Some("expired" | "failed") => InvoiceState::Canceled,
        // An unpaid invoice past its expiry cannot be paid any more, whatever the wallet's
        // state says yet.
        Some("pending") if expired => InvoiceState::Canceled,
        Some("pending") => InvoiceState::Open,
        None if tx.settled_at.is_some() => InvoiceState::Settled,
        None if expired => InvoiceState::Canceled,
        None => InvoiceState::Open,
        Some(other) => {
            return Err(NodeError::Rejected(format!(
                "the wallet reported an unknown invoice state {other:?}"
            )));
        }
    };
    let created_at = tx.created_at.unwrap_or(0);
    let held = matches!(state, InvoiceState::Accepted | InvoiceState::Settled);
    Ok(InvoiceStatus {
        payment_hash,
        state,
        amount_msat: tx.amount,
        amount_paid_msat: if held { tx.amount } else { 0 },
        htlc_expiry_height: match state {
            InvoiceState::Accepted => tx.settle_deadline.or(deadline),
            _ => None,
        },
        created_at,
        expiry: Duration::from_secs(
            tx.expires_at
                .unwrap_or(created_at)
                .saturating_sub(created_at),
        ),
    })
}

/// An outgoing transaction (a payout) as a payment outcome.
pub fn payment_outcome(tx: &Transaction) -> PaymentOutcome {
    match tx.state.as_deref() {
        Some("settled") => PaymentOutcome::Succeeded {
            preimage_hex: tx.preimage.clone().unwrap_or_default(),
            fee_msat: tx.fees_paid.unwrap_or(0),
        },
        Some("failed" | "expired") => PaymentOutcome::Failed {
            reason: "the wallet reports the payment failed".into(),
        },
        _ if tx.preimage.as_deref().is_some_and(|p| !p.is_empty()) => PaymentOutcome::Succeeded {
            preimage_hex: tx.preimage.clone().unwrap_or_default(),
            fee_msat: tx.fees_paid.unwrap_or(0),
        },
        _ => PaymentOutcome::InFlight,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(state: Option<&str>) -> Transaction {
        Transaction {
            kind: Some("incoming".into()),
            state: state.map(str::to_owned),
            invoice: None,
            preimage: None,
            payment_hash: "11".repeat(32),
            amount: 5_000,
            fees_paid: None,
            created_at: Some(1_000),
            expires_at: Some(1_600),
            settled_at: None,
            settle_deadline: None,
        }
    }

    #[test]
    fn states_map_to_lnd_names() {
        let at = |s, now| invoice_status(&tx(s), Some(900), now).unwrap().state;
        assert_eq!(at(Some("pending"), 1_100), InvoiceState::Open);
        assert_eq!(at(Some("pending"), 1_600), InvoiceState::Canceled);
        assert_eq!(at(Some("accepted"), 9_999), InvoiceState::Accepted);
        assert_eq!(at(Some("settled"), 1_100), InvoiceState::Settled);
        assert_eq!(at(Some("expired"), 1_100), InvoiceState::Canceled);
        assert_eq!(at(None, 1_100), InvoiceState::Open);
        assert!(invoice_status(&tx(Some("weird")), None, 0).is_err());
    }

    #[test]
    fn an_accepted_invoice_carries_the_settle_deadline_and_its_amount() {
        let status = invoice_status(&tx(Some("accepted")), Some(1_144), 1_100).unwrap();
        assert_eq!(status.htlc_expiry_height, Some(1_144));
        assert_eq!(status.amount_paid_msat, 5_000);
        assert_eq!(status.expiry, Duration::from_secs(600));
        let mut notified = tx(Some("accepted"));
        notified.settle_deadline = Some(1_200);
        let status = invoice_status(&notified, Some(1_144), 1_100).unwrap();
        assert_eq!(status.htlc_expiry_height, Some(1_200));
        let open = invoice_status(&tx(Some("pending")), Some(1_144), 1_100).unwrap();
        assert_eq!((open.htlc_expiry_height, open.amount_paid_msat), (None, 0));
    }

    #[test]
    fn error_codes() {
        let e = |code: &str| {
            node_error(&WireError {
                code: code.into(),
                message: "m".into(),
            })
        };
        assert!(matches!(e("NOT_FOUND"), NodeError::NotFound));
        assert!(matches!(e("RATE_LIMITED"), NodeError::Unavailable(_)));
        assert!(matches!(e("RESTRICTED"), NodeError::Rejected(_)));
        assert!(matches!(e("QUOTA_EXCEEDED"), NodeError::Rejected(_)));
    }

    #[test]
    fn make_hold_invoice_uses_the_nip_field_names() {
        let params = make_hold_invoice(
            &PaymentHash([7; 32]),
            &InvoiceRequest {
                amount_msat: 1_000,
                memo: "m".into(),
                expiry: Duration::from_secs(600),
                cltv_expiry: Some(144),
            },
        );
        assert_eq!(params["amount"], 1_000);
        assert_eq!(params["expiry"], 600);
        assert_eq!(params["min_cltv_expiry_delta"], 144);
        assert_eq!(params["payment_hash"], "07".repeat(32));
    }

    #[test]
    fn a_mismatched_result_type_is_an_error() {
        let response: Response =
            serde_json::from_str(r#"{"result_type":"pay_invoice","result":{}}"#).unwrap();
        assert!(result(response, "lookup_invoice").is_err());
    }
}
