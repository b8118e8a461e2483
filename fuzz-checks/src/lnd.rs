//! lnd's REST answers as the sidecar's lnd client decodes them (`node::lnd::wire`): unary
//! answers and errors, the NDJSON streams of SubscribeSingleInvoice and SendPaymentV2.

use lightning_wall::node::lnd::wire::{self, AddHoldInvoiceAnswer, AddInvoiceAnswer, Empty};
use lightning_wall::node::lnd::wire::{GetInfo, Invoice, Payment};
use lightning_wall::node::{NodeError, PaymentOutcome};

/// HTTP statuses lnd's gateway (or a proxy in front of it) answers with.
const STATUSES: [u16; 8] = [200, 400, 401, 404, 500, 502, 503, 504];

/// Byte 0 picks the call (low 3 bits) and the HTTP status (high bits); the rest is the body.
pub fn lnd_answers(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let status = STATUSES
        .get(usize::from(selector >> 5))
        .copied()
        .unwrap_or(200);
    match selector & 7 {
        0 => {
            if let Ok(info) = wire::answer::<GetInfo>("/v1/getinfo", status, body) {
                let _ = wire::node_info(info, 18);
            }
        }
        1 => {
            if let Ok(a) = wire::answer::<AddInvoiceAnswer>("/v1/invoices", status, body) {
                let _ = wire::decode_hash(&a.r_hash);
            }
        }
        2 => {
            let _ = wire::answer::<AddHoldInvoiceAnswer>("/v2/invoices/hodl", status, body);
        }
        3 => {
            if let Ok(invoice) = wire::answer::<Invoice>("/v2/invoices/lookup", status, body) {
                invoice_checked(&invoice);
            }
        }
        4 => {
            let _ = wire::answer::<Empty>("/v2/invoices/settle", status, body);
        }
        5 => invoice_stream(body),
        6 => payment_stream(body),
        _ => error_body(status, body),
    }
}

/// A decoded invoice names the hash lnd sent and a known state.
fn invoice_checked(invoice: &Invoice) {
    if let Ok(status) = wire::invoice_status(invoice) {
        assert_eq!(
            wire::decode_hash(&invoice.r_hash),
            Some(status.payment_hash.0)
        );
        assert_eq!(status.state.as_lnd_str(), invoice.state);
    }
}

/// Lines as the client takes them from its buffer; the first error ends the stream.
fn lines<T: serde::de::DeserializeOwned>(body: &[u8], mut each: impl FnMut(T)) {
    let mut buffer = body.to_vec();
    while let Some(line) = wire::take_line(&mut buffer) {
        assert_eq!(line.last(), Some(&b'\n'));
        match wire::stream_line::<T>(&line) {
            None => assert!(line.trim_ascii().is_empty()),
            Some(Ok(item)) => each(item),
            Some(Err(_)) => return,
        }
    }
    assert!(!buffer.contains(&b'\n'));
}

fn invoice_stream(body: &[u8]) {
    lines::<Invoice>(body, |invoice| invoice_checked(&invoice));
}

fn payment_stream(body: &[u8]) {
    lines::<Payment>(body, |payment| {
        let status = payment.status.clone();
        match wire::payment_outcome(payment) {
            Some(PaymentOutcome::Succeeded { .. }) => assert_eq!(status, "SUCCEEDED"),
            Some(PaymentOutcome::Failed { .. }) => assert_eq!(status, "FAILED"),
            Some(PaymentOutcome::InFlight) => panic!("an update is final or not"),
            None => assert!(status != "SUCCEEDED" && status != "FAILED"),
        }
    });
}

/// Error bodies map to a typed error whose text stays bounded (a hostile or broken gateway
/// cannot make the sidecar log megabytes per call).
fn error_body(status: u16, body: &[u8]) {
    let text = match wire::map_error(status, body) {
        NodeError::Unavailable(m) | NodeError::Rejected(m) => m,
        _ => return,
    };
    assert!(
        text.chars().count() <= 300 + 40,
        "{} chars",
        text.chars().count()
    );
}
