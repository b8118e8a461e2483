//! lnd's router RPCs: SendPaymentV2 and TrackPaymentV2, each answered with the payment's NDJSON
//! stream. The double routes nothing: it pays the remote invoices whose preimage the test
//! registered, and refuses a second payment of a hash as lnd does.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxumState};
use axum::response::Response;
use serde_json::json;

use super::{
    Wake, cut, form_urlencoded_pairs, lnd_error, ndjson_line, next_change, stream_error,
    stream_reply,
};
use crate::Shared;
use crate::state::{
    ALREADY_PAID, LndError, OutgoingPayment, PAYMENT_IN_FLIGHT, PAYMENT_NOT_INITIATED,
    PaymentStatus,
};
use crate::wire;

/// SendPaymentV2: pays invoices of simulated remote nodes whose preimage the test registered
/// (`FakeLnd::add_remote_preimage`); anything else fails with NO_ROUTE. Under
/// `PaymentBehaviour::Hold` the payment stays IN_FLIGHT until the test ends it. Like lnd, a
/// second send for a hash that succeeded or is in flight is refused (AlreadyExists); after a
/// failure it is a new attempt.
pub(super) async fn send_payment(
    AxumState(shared): AxumState<Arc<Shared>>,
    body: Bytes,
) -> Response {
    let behaviour = shared.payment_behaviour();
    let req: wire::SendPaymentRequest = match wire::parse_body(&body) {
        Ok(req) => req,
        Err(error) => return lnd_error(&error),
    };
    let route_fee_msat = shared.route_fee_msat();
    let prepared = (|| {
        // `timeout_seconds` 0 (or absent) means lnd's default of 60 s (routerrpc/router.proto,
        // router_server.go SendPaymentV2); it is not an error. The double resolves payments
        // without routing, so it has no attempt timeout to apply.
        let invoice: lightning_invoice::Bolt11Invoice = req
            .payment_request
            .parse()
            .map_err(|e| LndError::unknown(format!("invalid payment request: {e}")))?;
        use bitcoin::hashes::Hash;
        let hash = invoice.payment_hash().to_byte_array();
        let mut db = shared.db();
        let attempts = match db.payments.get(&hash) {
            Some(p) if p.status == PaymentStatus::Succeeded => {
                return Err(LndError {
                    code: 6,
                    message: ALREADY_PAID.to_owned(),
                });
            }
            Some(p) if p.status == PaymentStatus::InFlight => {
                return Err(LndError {
                    code: 6,
                    message: PAYMENT_IN_FLIGHT.to_owned(),
                });
            }
            Some(p) => p.attempts + 1,
            None => 1,
        };
        let preimage = db.remote_preimages.get(&hash).copied();
        // lnd takes no route whose fees exceed the limit (`fee_limit_msat`, else
        // `fee_limit_sat`): the payment fails with NO_ROUTE.
        let fee_limit_msat = if req.fee_limit_msat > 0 {
            req.fee_limit_msat
        } else {
            req.fee_limit_sat.saturating_mul(1000)
        };
        let preimage = preimage.filter(|_| route_fee_msat <= fee_limit_msat);
        let status = match (behaviour, preimage) {
            (crate::PaymentBehaviour::Hold, _) => PaymentStatus::InFlight,
            (crate::PaymentBehaviour::Immediate, Some(_)) => PaymentStatus::Succeeded,
            (crate::PaymentBehaviour::Immediate, None) => {
                PaymentStatus::Failed("FAILURE_REASON_NO_ROUTE")
            }
        };
        let index = db.payments.len() as u64 + 1;
        let payment = OutgoingPayment {
            hash,
            preimage,
            value_msat: invoice.amount_milli_satoshis().unwrap_or(req.amt_msat),
            payment_request: req.payment_request.clone(),
            creation_date: db.now().as_secs(),
            index,
            status,
            attempts,
            fee_msat: route_fee_msat,
        };
        db.payments.insert(hash, payment);
        Ok((hash, req.no_inflight_updates))
    })();
    let (hash, no_inflight) = match prepared {
        Ok(ok) => ok,
        Err(error) => return stream_error(&error),
    };
    shared.announce(&[hash]);
    let lose = shared
        .lose_send_streams
        .load(std::sync::atomic::Ordering::SeqCst);
    payment_stream(shared, hash, no_inflight, lose).await
}

/// TrackPaymentV2: the payment's current state, then its final one; refused for a hash this
/// node never sent.
pub(super) async fn track_payment(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path(payment_hash): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let hash = match wire::decode_url_bytes(&payment_hash)
        .ok_or_else(|| {
            LndError::invalid(format!(
                "payment_hash: illegal base64 data {payment_hash:?}"
            ))
        })
        .and_then(|b| wire::hash32(&b))
    {
        Ok(hash) => hash,
        Err(error) => return lnd_error(&error),
    };
    if !shared.db().payments.contains_key(&hash) {
        return stream_error(&LndError {
            code: 5,
            message: PAYMENT_NOT_INITIATED.to_owned(),
        });
    }
    let no_inflight = form_urlencoded_pairs(query.as_deref().unwrap_or(""))
        .iter()
        .any(|(k, v)| k == "no_inflight_updates" && v == "true");
    payment_stream(shared, hash, no_inflight, false).await
}

/// A payment's NDJSON stream: IN_FLIGHT (unless `no_inflight`), then the final state, then the
/// end. `lose` cuts the connection before the final state, as a dying proxy would; the payment
/// itself goes on.
async fn payment_stream(
    shared: Arc<Shared>,
    hash: [u8; 32],
    no_inflight: bool,
    lose: bool,
) -> Response {
    let mut changes = shared.changes.subscribe();
    let mut kill = shared.kill_streams.subscribe();
    let stream = async_stream::stream! {
        let mut sent_in_flight = false;
        loop {
            let Some(payment) = shared.db().payments.get(&hash).cloned() else { return };
            tokio::time::sleep(Duration::from_millis(5)).await;
            if lose && (payment.status.is_final() || sent_in_flight || no_inflight) {
                yield Err(std::io::Error::other("fake-lnd: payment stream lost by the test"));
                return;
            }
            if payment.status.is_final() {
                yield Ok::<Bytes, std::io::Error>(ndjson_line(&json!({"result": wire::payment_json(&payment)})));
                return;
            }
            if !no_inflight && !sent_in_flight {
                sent_in_flight = true;
                yield Ok(ndjson_line(&json!({"result": wire::payment_json(&payment)})));
                continue;
            }
            match next_change(&mut kill, &mut changes).await {
                Wake::Cut => {
                    yield Err(cut());
                    return;
                }
                Wake::Closed => return,
                Wake::Changed => {}
            }
        }
    };
    stream_reply(stream).await
}
