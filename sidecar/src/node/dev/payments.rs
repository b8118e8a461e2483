//! The dev node as a payer: simulated payments of its own invoices (`lightning-wall dev pay`,
//! the dev-only endpoint) and the outgoing payments of rewards, which have no network to cross
//! and are recorded as made. No real money moves here.

use bitcoin::hashes::Hash;
use lightning_invoice::{Bolt11Invoice, Currency};

use super::rules::{self, DevPayment, PayRefused};
use super::store::StoreError;
use super::{DevNode, unavailable};
use crate::ids::PaymentHash;
use crate::node::{NodeError, PaymentOutcome};

/// Why [`DevNode::simulate_payment`] did not pay.
#[derive(Debug, thiserror::Error)]
pub enum DevPayError {
    #[error("not a BOLT11 invoice: {0}")]
    Malformed(String),
    #[error("the invoice is for {0}, the dev node runs on regtest")]
    WrongNetwork(String),
    #[error("the invoice was not issued by this dev node")]
    UnknownInvoice,
    #[error(transparent)]
    Refused(#[from] PayRefused),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DevPayError {
    /// A stable code for the dev-only HTTP endpoint and `dev pay` output.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed_invoice",
            Self::WrongNetwork(_) => "wrong_network",
            Self::UnknownInvoice => "unknown_invoice",
            Self::Refused(PayRefused::Expired) => "invoice_expired",
            Self::Refused(PayRefused::Canceled) => "invoice_canceled",
            Self::Refused(PayRefused::AlreadyPaid) => "invoice_already_paid",
            Self::Refused(PayRefused::Amountless) => "amountless_invoice",
            Self::Store(_) => "dev_node_unavailable",
        }
    }
}

impl DevPayment {
    /// What `lightning-wall dev pay` prints: `{"status":"settled","preimage":"<hex>"}` or
    /// `{"status":"held","htlc_expiry_height":<n>}`. The preimage is the payer's proof of
    /// payment, so showing it to the payer is the point.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Settled { preimage } => {
                serde_json::json!({"status": "settled", "preimage": hex::encode(preimage.0)})
            }
            Self::Held { htlc_expiry_height } => {
                serde_json::json!({"status": "held", "htlc_expiry_height": htlc_expiry_height})
            }
        }
    }
}

impl DevNode {
    /// The payer's side, for `lightning-wall dev pay` and the dev-only endpoint: pays `bolt11`
    /// in full. A normal invoice settles (the preimage is the proof of payment); a hold invoice
    /// becomes ACCEPTED and its HTLC is held until settle, cancel or auto-cancel.
    pub async fn simulate_payment(&self, bolt11: &str) -> Result<DevPayment, DevPayError> {
        let invoice = self.own_invoice(bolt11)?;
        let hash = PaymentHash(invoice.payment_hash().to_byte_array());
        let payment = self
            .transition(&hash, |current, now, height| {
                let current = current.ok_or(DevPayError::UnknownInvoice)?;
                let (paid, payment) = rules::pay(current, now, height)?;
                Ok::<_, DevPayError>((Some(paid), payment))
            })
            .await?;
        tracing::info!(payment_hash = %hex::encode(hash.0), ?payment, "dev node: simulated payment");
        Ok(payment)
    }

    fn own_invoice(&self, bolt11: &str) -> Result<Bolt11Invoice, DevPayError> {
        let invoice: Bolt11Invoice = bolt11
            .trim()
            .parse()
            .map_err(|e| DevPayError::Malformed(format!("{e}")))?;
        if invoice.currency() != Currency::Regtest {
            return Err(DevPayError::WrongNetwork(format!(
                "{:?}",
                invoice.currency()
            )));
        }
        if !self.inner.key.signed(&invoice) {
            return Err(DevPayError::UnknownInvoice);
        }
        Ok(invoice)
    }

    /// What [`Node::pay`] does: one of its own invoices is paid for real through
    /// [`DevNode::simulate_payment`]; another wallet's regtest invoice is recorded as paid.
    pub(super) async fn pay_outgoing(&self, bolt11: &str) -> Result<PaymentOutcome, NodeError> {
        // One of our own invoices: pay it for real (as another node would).
        match self.simulate_payment(bolt11).await {
            Ok(DevPayment::Settled { preimage }) => {
                // Recorded too, so that tracking the payment by its hash finds it.
                let hash = preimage.payment_hash();
                self.inner
                    .store
                    .record_payment(&hash, bolt11.trim(), 0, self.now_unix())
                    .await
                    .map_err(unavailable)?;
                return Ok(PaymentOutcome::Succeeded {
                    preimage_hex: hex::encode(preimage.0),
                    fee_msat: 0,
                });
            }
            Ok(DevPayment::Held { .. }) => return Ok(PaymentOutcome::InFlight),
            Err(DevPayError::UnknownInvoice) => {}
            Err(DevPayError::Refused(PayRefused::AlreadyPaid)) => {
                return Err(NodeError::Rejected("invoice is already paid".to_owned()));
            }
            Err(DevPayError::Store(e)) => return Err(unavailable(e)),
            Err(e) => {
                return Ok(PaymentOutcome::Failed {
                    reason: e.to_string(),
                });
            }
        }
        // Another wallet's regtest invoice: there is no network to route through, so the dev
        // node records the payment as made. It cannot learn that wallet's preimage, so the
        // outcome carries none (an empty `preimage_hex`).
        let invoice: Bolt11Invoice = match bolt11.trim().parse() {
            Ok(invoice) => invoice,
            Err(e) => {
                return Ok(PaymentOutcome::Failed {
                    reason: format!("{e}"),
                });
            }
        };
        let Some(amount_msat) = invoice.amount_milli_satoshis() else {
            return Ok(PaymentOutcome::Failed {
                reason: PayRefused::Amountless.to_string(),
            });
        };
        if invoice.would_expire(self.inner.clock.now()) {
            return Ok(PaymentOutcome::Failed {
                reason: PayRefused::Expired.to_string(),
            });
        }
        let hash = PaymentHash(invoice.payment_hash().to_byte_array());
        let fresh = self
            .inner
            .store
            .record_payment(&hash, bolt11.trim(), amount_msat, self.now_unix())
            .await
            .map_err(unavailable)?;
        if !fresh {
            // lnd's SendPaymentV2 refuses a second payment of a paid invoice.
            return Err(NodeError::Rejected("invoice is already paid".to_owned()));
        }
        tracing::info!(payment_hash = %hex::encode(hash.0), amount_msat, "dev node: simulated outgoing payment");
        Ok(PaymentOutcome::Succeeded {
            preimage_hex: String::new(),
            fee_msat: 0,
        })
    }
}

/// What [`Node::track_payment`] reads: the dev node's payments end when they are made.
impl DevNode {
    pub(super) async fn tracked(&self, hash: &PaymentHash) -> Result<PaymentOutcome, NodeError> {
        if self
            .inner
            .store
            .payment_recorded(hash)
            .await
            .map_err(unavailable)?
        {
            Ok(PaymentOutcome::Succeeded {
                preimage_hex: String::new(),
                fee_msat: 0,
            })
        } else {
            Err(NodeError::NotFound)
        }
    }
}
