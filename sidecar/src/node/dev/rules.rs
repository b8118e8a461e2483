//! The dev node's invoice rules, as pure functions of (invoice, event, chain time): LND's state
//! machine for normal and hold invoices. No I/O, no clock; `mod.rs` persists what these return.
//! It must never let an invoice leave a final state (SETTLED, CANCELED) or reuse a hash.

use std::time::Duration;

use crate::ids::{PaymentHash, Preimage};
use crate::node::{InvoiceState, InvoiceStatus, NodeError};

/// An invoice as the dev node keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevInvoice {
    pub payment_hash: PaymentHash,
    /// Known from creation for normal invoices, only after settle for hold invoices (as in lnd,
    /// the node never learns a hold invoice's preimage until the sidecar settles it).
    pub preimage: Option<Preimage>,
    pub is_hold: bool,
    pub state: InvoiceState,
    pub amount_msat: u64,
    pub amount_paid_msat: u64,
    pub memo: String,
    pub created_at: u64,
    pub expiry: Duration,
    pub cltv_expiry: u32,
    pub payment_request: String,
    /// Set when a payment arrived: the held HTLC's expiry height (`accept height + cltv_expiry`).
    pub htlc_expiry_height: Option<u32>,
    pub accept_height: Option<u32>,
}

impl DevInvoice {
    pub fn status(&self) -> InvoiceStatus {
        InvoiceStatus {
            payment_hash: self.payment_hash,
            state: self.state,
            amount_msat: self.amount_msat,
            amount_paid_msat: self.amount_paid_msat,
            htlc_expiry_height: self.htlc_expiry_height,
            created_at: self.created_at,
            expiry: self.expiry,
        }
    }

    fn expired_at(&self, now_unix: u64) -> bool {
        now_unix >= self.created_at.saturating_add(self.expiry.as_secs())
    }
}

/// What a simulated payer gets back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DevPayment {
    /// A normal invoice: paid and settled at once; the preimage is the payer's proof.
    Settled { preimage: Preimage },
    /// A hold invoice: the HTLC is held until the sidecar settles or cancels it, or the node
    /// auto-cancels it `hold_expiry_delta` blocks before `htlc_expiry_height`.
    Held { htlc_expiry_height: u32 },
}

/// Why a simulated payment was refused (what a real payer's wallet would report).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayRefused {
    #[error("invoice expired")]
    Expired,
    #[error("invoice canceled")]
    Canceled,
    #[error("invoice already paid")]
    AlreadyPaid,
    #[error("invoice has no amount; the dev node pays only invoices with an amount")]
    Amountless,
}

/// The result of a rule: the invoice to persist, or `None` when nothing changes (an idempotent
/// repeat such as a second settle).
pub type Change = Option<DevInvoice>;

/// SettleInvoice. lnd: OPEN -> "invoice still open"; CANCELED -> "invoice already canceled";
/// SETTLED -> success (lnd's invoicesrpc ignores ErrInvoiceAlreadySettled).
pub fn settle(invoice: &DevInvoice, preimage: &Preimage) -> Result<Change, NodeError> {
    match invoice.state {
        InvoiceState::Open => Err(NodeError::StillOpen),
        InvoiceState::Canceled => Err(NodeError::AlreadyCanceled),
        InvoiceState::Settled => Ok(None),
        InvoiceState::Accepted => Ok(Some(DevInvoice {
            state: InvoiceState::Settled,
            preimage: Some(*preimage),
            ..invoice.clone()
        })),
    }
}

/// CancelInvoice. lnd: a second cancel succeeds; cancel after settle -> "invoice already settled".
pub fn cancel(invoice: &DevInvoice) -> Result<Change, NodeError> {
    match invoice.state {
        InvoiceState::Settled => Err(NodeError::AlreadySettled),
        InvoiceState::Canceled => Ok(None),
        InvoiceState::Open | InvoiceState::Accepted => Ok(Some(cancelled(invoice))),
    }
}

/// What time alone does to an invoice: an OPEN invoice past its BOLT11 expiry is canceled; an
/// ACCEPTED hold invoice is auto-canceled once `height + hold_expiry_delta >= htlc expiry height`
/// (lnd's `holdexpirydelta`). Time never touches an accepted invoice otherwise.
pub fn time_passes(
    invoice: &DevInvoice,
    now_unix: u64,
    height: u32,
    hold_expiry_delta: u32,
) -> Change {
    match invoice.state {
        InvoiceState::Open if invoice.expired_at(now_unix) => Some(cancelled(invoice)),
        InvoiceState::Accepted => match invoice.htlc_expiry_height {
            Some(expiry) if height.saturating_add(hold_expiry_delta) >= expiry => {
                Some(cancelled(invoice))
            }
            _ => None,
        },
        _ => None,
    }
}

/// A payer pays the full amount at `height`: a normal invoice settles, a hold invoice is held.
pub fn pay(
    invoice: &DevInvoice,
    now_unix: u64,
    height: u32,
) -> Result<(DevInvoice, DevPayment), PayRefused> {
    match invoice.state {
        // Canceled by expiry rather than by the node's owner: tell the payer so.
        InvoiceState::Canceled if invoice.amount_paid_msat == 0 && invoice.expired_at(now_unix) => {
            return Err(PayRefused::Expired);
        }
        InvoiceState::Canceled => return Err(PayRefused::Canceled),
        InvoiceState::Accepted | InvoiceState::Settled => return Err(PayRefused::AlreadyPaid),
        InvoiceState::Open if invoice.expired_at(now_unix) => return Err(PayRefused::Expired),
        InvoiceState::Open => {}
    }
    if invoice.amount_msat == 0 {
        return Err(PayRefused::Amountless);
    }
    // The final hop's HTLC expires `min_final_cltv_expiry` blocks after the height it arrives at.
    let htlc_expiry_height = height.saturating_add(invoice.cltv_expiry);
    let paid = DevInvoice {
        amount_paid_msat: invoice.amount_msat,
        htlc_expiry_height: Some(htlc_expiry_height),
        accept_height: Some(height),
        ..invoice.clone()
    };
    match (invoice.is_hold, invoice.preimage) {
        (true, _) => Ok((
            DevInvoice {
                state: InvoiceState::Accepted,
                ..paid
            },
            DevPayment::Held { htlc_expiry_height },
        )),
        (false, Some(preimage)) => Ok((
            DevInvoice {
                state: InvoiceState::Settled,
                ..paid
            },
            DevPayment::Settled { preimage },
        )),
        // A normal invoice is always created with its preimage; without one it cannot settle.
        (false, None) => Err(PayRefused::Canceled),
    }
}

fn cancelled(invoice: &DevInvoice) -> DevInvoice {
    DevInvoice {
        state: InvoiceState::Canceled,
        ..invoice.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold_invoice() -> DevInvoice {
        DevInvoice {
            payment_hash: PaymentHash([1; 32]),
            preimage: None,
            is_hold: true,
            state: InvoiceState::Open,
            amount_msat: 10_000,
            amount_paid_msat: 0,
            memo: String::new(),
            created_at: 1_000,
            expiry: Duration::from_secs(600),
            cltv_expiry: 80,
            payment_request: String::new(),
            htlc_expiry_height: None,
            accept_height: None,
        }
    }

    fn normal_invoice() -> DevInvoice {
        DevInvoice {
            is_hold: false,
            preimage: Some(Preimage([7; 32])),
            ..hold_invoice()
        }
    }

    #[test]
    fn settle_on_an_open_hold_invoice_fails_with_still_open() {
        assert!(matches!(
            settle(&hold_invoice(), &Preimage([7; 32])),
            Err(NodeError::StillOpen)
        ));
    }

    #[test]
    fn paid_hold_invoice_is_held_until_the_htlc_expiry_height() {
        let (held, payment) = pay(&hold_invoice(), 1_010, 500).unwrap();
        assert_eq!(held.state, InvoiceState::Accepted);
        assert_eq!(held.htlc_expiry_height, Some(580));
        assert_eq!(held.amount_paid_msat, 10_000);
        assert_eq!(
            payment,
            DevPayment::Held {
                htlc_expiry_height: 580
            }
        );
        assert_eq!(
            held.preimage, None,
            "the node must not learn a hold preimage"
        );
    }

    #[test]
    fn settling_a_held_invoice_records_the_preimage_and_a_second_settle_changes_nothing() {
        let (held, _) = pay(&hold_invoice(), 1_010, 500).unwrap();
        let settled = settle(&held, &Preimage([9; 32])).unwrap().unwrap();
        assert_eq!(settled.state, InvoiceState::Settled);
        assert_eq!(settled.preimage, Some(Preimage([9; 32])));
        assert_eq!(settle(&settled, &Preimage([9; 32])).unwrap(), None);
    }

    #[test]
    fn cancel_twice_succeeds_and_cancel_after_settle_fails() {
        let cancelled = cancel(&hold_invoice()).unwrap().unwrap();
        assert_eq!(cancelled.state, InvoiceState::Canceled);
        assert_eq!(cancel(&cancelled).unwrap(), None);
        let (settled, _) = pay(&normal_invoice(), 1_010, 500).unwrap();
        assert!(matches!(cancel(&settled), Err(NodeError::AlreadySettled)));
        assert!(matches!(
            settle(&cancelled, &Preimage([7; 32])),
            Err(NodeError::AlreadyCanceled)
        ));
    }

    #[test]
    fn paid_normal_invoice_settles_and_reveals_its_preimage() {
        let (settled, payment) = pay(&normal_invoice(), 1_010, 500).unwrap();
        assert_eq!(settled.state, InvoiceState::Settled);
        assert_eq!(
            payment,
            DevPayment::Settled {
                preimage: Preimage([7; 32])
            }
        );
        assert_eq!(pay(&settled, 1_011, 500), Err(PayRefused::AlreadyPaid));
    }

    #[test]
    fn open_invoice_expires_to_canceled_at_its_expiry_and_not_before() {
        let open = hold_invoice();
        assert_eq!(time_passes(&open, 1_599, 500, 18), None);
        assert_eq!(
            time_passes(&open, 1_600, 500, 18).unwrap().state,
            InvoiceState::Canceled
        );
        assert_eq!(pay(&open, 1_600, 500), Err(PayRefused::Expired));
    }

    #[test]
    fn accepted_invoice_is_not_expired_by_time_but_auto_canceled_by_height() {
        let (held, _) = pay(&hold_invoice(), 1_010, 500).unwrap();
        // Long past the BOLT11 expiry: still held.
        assert_eq!(time_passes(&held, 100_000, 561, 18), None);
        // 562 + 18 >= 580: lnd cancels it itself.
        assert_eq!(
            time_passes(&held, 100_000, 562, 18).unwrap().state,
            InvoiceState::Canceled
        );
    }

    #[test]
    fn final_invoices_are_never_changed_by_time_or_payment() {
        let cancelled = cancel(&hold_invoice()).unwrap().unwrap();
        assert_eq!(time_passes(&cancelled, u64::MAX, u32::MAX, 18), None);
        assert_eq!(pay(&cancelled, 1_010, 500), Err(PayRefused::Canceled));
    }

    #[test]
    fn amountless_invoices_are_not_paid_by_the_dev_payer() {
        let free = DevInvoice {
            amount_msat: 0,
            ..hold_invoice()
        };
        assert_eq!(pay(&free, 1_010, 500), Err(PayRefused::Amountless));
    }
}
