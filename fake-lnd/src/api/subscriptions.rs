//! lnd's two invoice subscriptions as NDJSON streams: SubscribeInvoices (every add and settle,
//! with a backlog from the indexes the client names) and SubscribeSingleInvoice (one invoice until
//! it is final). Both end as lnd's do, and `drop_streams` cuts them mid-way.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxumState};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Wake, cut, form_urlencoded_pairs, lnd_error, ndjson_line, next_change, stream_reply};
use crate::Shared;
use crate::state::{LndError, State};
use crate::wire;

/// SubscribeInvoices (`GET /v1/invoices/subscribe?add_index=&settle_index=`): first the backlog
/// (invoices added after a non-zero `add_index`, settled after a non-zero `settle_index`), then
/// each add and each settle as it happens. Never ACCEPTED or CANCELED: lnd keeps them from
/// all-invoice subscribers "for backwards compatibility" (invoices/invoiceregistry.go). The
/// stream never closes by itself; `drop_streams` cuts it.
pub(super) async fn subscribe_all(
    AxumState(shared): AxumState<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    let mut sent_add = 0u64;
    let mut sent_settle = 0u64;
    for (key, value) in form_urlencoded_pairs(&query.unwrap_or_default()) {
        let index = match value.parse::<u64>() {
            Ok(index) => index,
            Err(_) => {
                return lnd_error(&LndError::invalid(format!(
                    "{key}: invalid value for uint64 field: {value:?}"
                )));
            }
        };
        match key.as_str() {
            "add_index" => sent_add = index,
            "settle_index" => sent_settle = index,
            other => {
                return lnd_error(&LndError::invalid(format!(
                    "failed to populate field: no field {other:?} found in InvoiceSubscription"
                )));
            }
        }
    }
    // lnd only replays a backlog for an index the client named; 0 means "from now on".
    {
        let db = shared.db();
        if sent_add == 0 {
            sent_add = db.next_add_index.saturating_sub(1);
        }
        if sent_settle == 0 {
            sent_settle = db.next_settle_index.saturating_sub(1);
        }
    }
    let mut changes = shared.changes.subscribe();
    let mut kill = shared.kill_streams.subscribe();
    let stream = async_stream::stream! {
        loop {
            let due: Vec<Value> = {
                let mut db = shared.db();
                let changed = db.sweep();
                let mut due: Vec<(u64, u64, Value)> = db
                    .invoices
                    .values()
                    .filter(|i| {
                        i.add_index > sent_add
                            || (i.state == State::Settled && i.settle_index > sent_settle)
                    })
                    .map(|i| (i.add_index, i.settle_index, wire::invoice_json(i)))
                    .collect();
                drop(db);
                shared.announce(&changed);
                due.sort_by_key(|(add, settle, _)| (*settle, *add));
                due.into_iter()
                    .map(|(add, settle, invoice)| {
                        sent_add = sent_add.max(add);
                        if settle > 0 {
                            sent_settle = sent_settle.max(settle);
                        }
                        invoice
                    })
                    .collect()
            };
            for invoice in due {
                yield Ok::<Bytes, std::io::Error>(ndjson_line(&json!({"result": invoice})));
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

/// SubscribeSingleInvoice: the current state first (if the invoice exists; lnd waits for an
/// unknown hash), every change after, closed after SETTLED or CANCELED. `drop_streams` cuts
/// the connection mid-way, without a final chunk, as a dying proxy or lnd would.
pub(super) async fn subscribe_single(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path(r_hash): Path<String>,
) -> Response {
    let hash = match wire::decode_url_bytes(&r_hash)
        .ok_or_else(|| LndError::invalid(format!("r_hash: illegal base64 data {r_hash:?}")))
        .and_then(|b| wire::hash32(&b))
    {
        Ok(hash) => hash,
        Err(error) => return lnd_error(&error),
    };
    let mut changes = shared.changes.subscribe();
    let mut kill = shared.kill_streams.subscribe();
    let stream = async_stream::stream! {
        let mut last: Option<(State, u64)> = None;
        loop {
            let current = {
                let mut db = shared.db();
                let changed = db.sweep();
                let invoice = db.get(&hash).ok().cloned();
                drop(db);
                shared.announce(&changed);
                invoice
            };
            // Silenced: the connection stays open but nothing more arrives, as when a proxy
            // between the client and lnd has silently dropped the stream.
            if last.is_some() && shared.silenced.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = kill.changed().await;
                yield Err(cut());
                return;
            }
            if let Some(invoice) = current {
                let key = (invoice.state, invoice.amt_paid_msat);
                if last != Some(key) {
                    last = Some(key);
                    yield Ok::<Bytes, std::io::Error>(ndjson_line(&json!({"result": wire::invoice_json(&invoice)})));
                    if invoice.state.is_final() {
                        return;
                    }
                }
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
