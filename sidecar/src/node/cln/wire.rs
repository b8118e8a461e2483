//! Pure translations between the `cln` backend's gRPC messages (the hold plugin's `hold.Hold`,
//! Core Lightning's `cln.Node`) and the [`Node`](super::super::Node) vocabulary: states, amounts,
//! HTLC expiry heights, payment outcomes, errors. No I/O, so every rule is unit-tested.

use std::time::Duration;

use bitcoin::hashes::Hash as _;
use lightning_invoice::Bolt11Invoice;

use super::proto::{cln, hold};
use crate::ids::PaymentHash;
use crate::node::{InvoiceState, InvoiceStatus, NodeError, PaymentOutcome};

/// A gRPC failure as a [`NodeError`]. Transport-level codes mean "retry later"; everything else
/// is the node's refusal, with its message (which never holds a secret: the plugin's and
/// cln-grpc's messages name hashes and states only).
pub fn status_error(service: &str, status: &tonic::Status) -> NodeError {
    use tonic::Code;
    let message = format!("{service}: {}", status.message());
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted => {
            NodeError::Unavailable(message)
        }
        // tonic reports a broken connection as Unknown with a transport error as its source.
        Code::Unknown if status.message().contains("transport error") => {
            NodeError::Unavailable(message)
        }
        _ => NodeError::Rejected(message),
    }
}

/// Whether the hold plugin refused `Invoice` because the payment hash is already in its
/// database (a unique constraint: SQLite `UNIQUE constraint failed`, PostgreSQL `duplicate
/// key value violates unique constraint`).
pub fn is_duplicate_hash(status: &tonic::Status) -> bool {
    let message = status.message();
    message.contains("UNIQUE constraint failed") || message.contains("duplicate key value")
}

/// The hold plugin's states in lnd's names: UNPAID is OPEN, PAID is SETTLED.
pub fn hold_state(state: i32) -> Result<InvoiceState, NodeError> {
    match hold::InvoiceState::try_from(state) {
        Ok(hold::InvoiceState::Unpaid) => Ok(InvoiceState::Open),
        Ok(hold::InvoiceState::Accepted) => Ok(InvoiceState::Accepted),
        Ok(hold::InvoiceState::Paid) => Ok(InvoiceState::Settled),
        Ok(hold::InvoiceState::Cancelled) => Ok(InvoiceState::Canceled),
        Err(_) => Err(NodeError::Rejected(format!(
            "hold: unknown invoice state {state}"
        ))),
    }
}

/// What the BOLT11 string says that the plugin's `Invoice` message does not: amount, creation
/// time and expiry.
fn decode(bolt11: &str) -> Result<Bolt11Invoice, NodeError> {
    bolt11.parse().map_err(|e| {
        NodeError::Rejected(format!("cln: the node returned an unreadable BOLT11: {e}"))
    })
}

/// A hold invoice as the plugin lists it. The amount paid and the HTLC expiry come from the
/// HTLCs that count: ACCEPTED ones (held) and PAID ones (settled); the plugin records a rejected
/// or timed-out HTLC as CANCELLED, which does not count.
pub fn hold_invoice_status(invoice: &hold::Invoice) -> Result<InvoiceStatus, NodeError> {
    let payment_hash = hash_from(&invoice.payment_hash)?;
    let state = hold_state(invoice.state)?;
    let bolt11 = decode(&invoice.invoice)?;
    let counted = invoice.htlcs.iter().filter(|h| {
        matches!(
            hold::InvoiceState::try_from(h.state),
            Ok(hold::InvoiceState::Accepted | hold::InvoiceState::Paid)
        )
    });
    let mut amount_paid_msat: u64 = 0;
    let mut lowest_expiry: Option<u64> = None;
    for htlc in counted {
        amount_paid_msat = amount_paid_msat.saturating_add(htlc.msat);
        if let Some(expiry) = htlc.cltv_expiry {
            lowest_expiry = Some(lowest_expiry.map_or(expiry, |l| l.min(expiry)));
        }
    }
    let htlc_expiry_height = match state {
        InvoiceState::Accepted => lowest_expiry.and_then(|e| u32::try_from(e).ok()),
        _ => None,
    };
    Ok(InvoiceStatus {
        payment_hash,
        state,
        amount_msat: bolt11.amount_milli_satoshis().unwrap_or(0),
        amount_paid_msat,
        htlc_expiry_height,
        created_at: bolt11.duration_since_epoch().as_secs(),
        expiry: bolt11.expiry_time(),
    })
}

/// Whether an OPEN hold invoice has outlived its BOLT11 expiry at `now` (Unix time). The plugin
/// never expires an unpaid invoice by itself and would still accept a late HTLC.
pub fn hold_invoice_expired(status: &InvoiceStatus, now: Duration) -> bool {
    status.state == InvoiceState::Open
        && now.as_secs() >= status.created_at.saturating_add(status.expiry.as_secs())
}

/// A normal invoice as Core Lightning lists it: UNPAID is OPEN, PAID is SETTLED, EXPIRED (CLN
/// expires unpaid invoices itself) is CANCELED.
pub fn cln_invoice_status(invoice: &cln::ListinvoicesInvoices) -> Result<InvoiceStatus, NodeError> {
    use cln::listinvoices_invoices::ListinvoicesInvoicesStatus as Status;
    let state = match Status::try_from(invoice.status) {
        Ok(Status::Unpaid) => InvoiceState::Open,
        Ok(Status::Paid) => InvoiceState::Settled,
        Ok(Status::Expired) => InvoiceState::Canceled,
        Err(_) => {
            return Err(NodeError::Rejected(format!(
                "cln: unknown invoice status {}",
                invoice.status
            )));
        }
    };
    let (created_at, expiry) = match invoice.bolt11.as_deref().map(decode).transpose()? {
        Some(bolt11) => (
            bolt11.duration_since_epoch().as_secs(),
            bolt11.expiry_time(),
        ),
        None => (0, Duration::ZERO),
    };
    Ok(InvoiceStatus {
        payment_hash: hash_from(&invoice.payment_hash)?,
        state,
        amount_msat: invoice.amount_msat.as_ref().map_or(0, |a| a.msat),
        amount_paid_msat: invoice.amount_received_msat.as_ref().map_or(0, |a| a.msat),
        htlc_expiry_height: None,
        created_at,
        expiry,
    })
}

/// CLN's network names (`getinfo.network`) in the sidecar's: CLN calls mainnet `bitcoin`.
pub fn network_name(cln_network: &str) -> String {
    match cln_network {
        "bitcoin" => "mainnet".to_owned(),
        other => other.to_owned(),
    }
}

/// A payment's outcome from `listpays` (one entry per payment attempt group): any COMPLETE wins,
/// then any PENDING (the money may still arrive: never pay again), else FAILED. `None` when the
/// node never tried to pay this hash.
pub fn pays_outcome(pays: &[cln::ListpaysPays]) -> Option<PaymentOutcome> {
    use cln::listpays_pays::ListpaysPaysStatus as Status;
    let status = |p: &cln::ListpaysPays| Status::try_from(p.status).ok();
    if let Some(done) = pays.iter().find(|p| status(p) == Some(Status::Complete)) {
        let amount = done.amount_msat.as_ref().map_or(0, |a| a.msat);
        let sent = done.amount_sent_msat.as_ref().map_or(0, |a| a.msat);
        return Some(PaymentOutcome::Succeeded {
            preimage_hex: done
                .preimage
                .as_deref()
                .map(hex::encode)
                .unwrap_or_default(),
            fee_msat: sent.saturating_sub(amount),
        });
    }
    if pays.iter().any(|p| status(p) == Some(Status::Pending)) {
        return Some(PaymentOutcome::InFlight);
    }
    if pays.is_empty() {
        return None;
    }
    Some(PaymentOutcome::Failed {
        reason: "cln: every payment attempt failed".to_owned(),
    })
}

/// The outcome of a successful `xpay`.
pub fn xpay_outcome(answer: &cln::XpayResponse) -> PaymentOutcome {
    let amount = answer.amount_msat.as_ref().map_or(0, |a| a.msat);
    let sent = answer.amount_sent_msat.as_ref().map_or(0, |a| a.msat);
    PaymentOutcome::Succeeded {
        preimage_hex: hex::encode(&answer.payment_preimage),
        fee_msat: sent.saturating_sub(amount),
    }
}

pub fn hash_from(bytes: &[u8]) -> Result<PaymentHash, NodeError> {
    <[u8; 32]>::try_from(bytes)
        .map(PaymentHash)
        .map_err(|_| NodeError::Rejected(format!("cln: a payment hash of {} bytes", bytes.len())))
}

/// The payment hash of an invoice to pay, so its payment can be tracked.
pub fn bolt11_hash(bolt11: &str) -> Result<PaymentHash, NodeError> {
    let invoice = decode(bolt11.trim())?;
    Ok(PaymentHash(invoice.payment_hash().to_byte_array()))
}

/// The label of a normal invoice: CLN requires a unique one; the payment hash is.
pub fn invoice_label(hash: &PaymentHash) -> String {
    format!("lightning-wall-{}", hex::encode(hash.0))
}

/// One of the node's private channels a payer can reach it through, as Core Lightning itself
/// would put it into a BOLT11 `r` field (lightningd/routehint.c at the vendored commit): the
/// peer's public key, the channel's id as the payer must name it, and the peer's fee policy
/// towards us (the peer forwards the last hop, so its `channel_update` is what the payer pays).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateChannel {
    pub peer_id: Vec<u8>,
    /// `BLOCKxTXxOUT`, as CLN's `exposeprivatechannels` takes it.
    pub short_channel_id: String,
    pub fee_base_msat: u32,
    pub fee_proportional_millionths: u32,
    pub cltv_expiry_delta: u16,
}

/// The private channels of `listpeerchannels` that can receive a payment now, with CLN's own
/// rules for a route hint: state CHANNELD_NORMAL or CHANNELD_AWAITING_SPLICE, the peer connected,
/// the peer's `channel_update` known (`updates.remote`: CLN uses no channel without it), room to
/// receive, and the peer's alias rather than the real id when the channel has one (BOLT 2: a
/// `scid_alias` channel MUST NOT show its real id; CLN uses the alias for any unannounced
/// channel). A channel CLN would not use is left out, so `exposeprivatechannels` never names
/// one CLN refuses. The top-level `fee_base_msat` of listpeerchannels is our own fee, not the
/// peer's: it is not used.
pub fn private_channels(channels: &[cln::ListpeerchannelsChannels]) -> Vec<PrivateChannel> {
    use cln::ChannelState;
    channels
        .iter()
        .filter(|c| c.private == Some(true) && c.peer_connected)
        .filter(|c| {
            matches!(
                ChannelState::try_from(c.state),
                Ok(ChannelState::ChanneldNormal | ChannelState::ChanneldAwaitingSplice)
            )
        })
        .filter(|c| c.receivable_msat.as_ref().is_some_and(|a| a.msat > 0))
        .filter_map(|c| {
            let remote = c.updates.as_ref()?.remote.as_ref()?;
            let alias = c.alias.as_ref().and_then(|a| a.remote.clone());
            let scid_alias_type = c.channel_type.as_ref().is_some_and(|t| {
                t.names
                    .contains(&i32::from(cln::ChannelTypeName::ScidAliasEven))
            });
            let short_channel_id = match alias {
                Some(alias) => alias,
                None if scid_alias_type => return None,
                None => c.short_channel_id.clone()?,
            };
            scid_number(&short_channel_id)?;
            if c.peer_id.len() != 33 {
                return None;
            }
            Some(PrivateChannel {
                peer_id: c.peer_id.clone(),
                short_channel_id,
                // CLN skips a fee that does not fit the BOLT11 field (and the plugin would wrap it).
                fee_base_msat: u32::try_from(remote.fee_base_msat.as_ref().map_or(0, |a| a.msat))
                    .ok()?,
                fee_proportional_millionths: remote.fee_proportional_millionths,
                cltv_expiry_delta: u16::try_from(remote.cltv_expiry_delta).ok()?,
            })
        })
        .collect()
}

/// A short channel id `BLOCKxTXxOUT` as BOLT 7's 8-byte number (3 bytes block, 3 bytes
/// transaction index, 2 bytes output), the form the hold plugin's `Hop.short_channel_id` takes.
pub fn scid_number(text: &str) -> Option<u64> {
    let mut parts = text.split('x');
    let (block, tx, out) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (block, tx, out): (u64, u64, u64) =
        (block.parse().ok()?, tx.parse().ok()?, out.parse().ok()?);
    if block >= 1 << 24 || tx >= 1 << 24 || out >= 1 << 16 {
        return None;
    }
    Some(block << 40 | tx << 16 | out)
}

/// One single-hop hint per channel for the hold plugin's `Invoice.routing_hints`.
pub fn hold_routing_hints(channels: &[PrivateChannel]) -> Vec<hold::RoutingHint> {
    channels
        .iter()
        .filter_map(|c| {
            Some(hold::RoutingHint {
                hops: vec![hold::Hop {
                    public_key: c.peer_id.clone(),
                    short_channel_id: scid_number(&c.short_channel_id)?,
                    base_fee: u64::from(c.fee_base_msat),
                    ppm_fee: u64::from(c.fee_proportional_millionths),
                    cltv_expiry_delta: u64::from(c.cltv_expiry_delta),
                }],
            })
        })
        .collect()
}

/// Whether CLN refused `invoice` because none of the channels named in
/// `exposeprivatechannels` was usable any more (code 902): they changed since we listed them.
pub fn is_hints_gave_no_routes(status: &tonic::Status) -> bool {
    status.message().contains("code: Some(902)")
}

#[cfg(test)]
mod tests;
