//! Checks of the invoice a wallet submits to the LNURL-withdraw callback, with no I/O: it parses
//! (lightning-invoice), is for the node's network, names an amount within the bounds and has not
//! expired. "Not already paid" is the store's job (the payment hash is the payouts' key).

use std::time::Duration;

use lightning_invoice::{Bolt11Invoice, Currency};

use super::ledger::Withdrawable;
use crate::ids::PaymentHash;

/// An invoice that may be paid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayableInvoice {
    pub payment_hash: PaymentHash,
    pub amount_msat: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceRefusal {
    #[error("the invoice does not parse as BOLT11")]
    Malformed,
    #[error("the invoice is for another network (this node is on {node})")]
    WrongNetwork { node: String },
    #[error("the invoice must name an amount")]
    NoAmount,
    #[error("the invoice has expired")]
    Expired,
    #[error("the invoice is the site's own")]
    OwnInvoice,
    #[error("the amount must be between {min_msat} and {max_msat} msat (got {got_msat})")]
    OutOfRange {
        min_msat: u64,
        max_msat: u64,
        got_msat: u64,
    },
}

/// lnd's network names (getinfo `chains[].network`) as BOLT11 currencies.
pub fn currency_of(network: &str) -> Option<Currency> {
    match network {
        "mainnet" | "bitcoin" => Some(Currency::Bitcoin),
        "testnet" | "testnet3" | "testnet4" => Some(Currency::BitcoinTestnet),
        "signet" => Some(Currency::Signet),
        "regtest" => Some(Currency::Regtest),
        "simnet" => Some(Currency::Simnet),
        _ => None,
    }
}

/// `now` is the time since the unix epoch; `node_pubkey` the paying node's (hex).
pub fn check_invoice(
    bolt11: &str,
    node_network: &str,
    node_pubkey: &str,
    bounds: Withdrawable,
    now: Duration,
) -> Result<PayableInvoice, InvoiceRefusal> {
    use bitcoin::hashes::Hash;
    let invoice: Bolt11Invoice = bolt11
        .trim()
        .parse()
        .map_err(|_| InvoiceRefusal::Malformed)?;
    if currency_of(node_network) != Some(invoice.currency()) {
        return Err(InvoiceRefusal::WrongNetwork {
            node: node_network.to_owned(),
        });
    }
    let amount_msat = invoice
        .amount_milli_satoshis()
        .ok_or(InvoiceRefusal::NoAmount)?;
    if invoice.would_expire(now) {
        return Err(InvoiceRefusal::Expired);
    }
    if invoice.recover_payee_pub_key().to_string() == node_pubkey {
        return Err(InvoiceRefusal::OwnInvoice);
    }
    if amount_msat < bounds.min_msat || amount_msat > bounds.max_msat {
        return Err(InvoiceRefusal::OutOfRange {
            min_msat: bounds.min_msat,
            max_msat: bounds.max_msat,
            got_msat: amount_msat,
        });
    }
    Ok(PayableInvoice {
        payment_hash: PaymentHash(invoice.payment_hash().to_byte_array()),
        amount_msat,
    })
}

#[cfg(test)]
mod tests {
    use bitcoin::hashes::{Hash, sha256};
    use bitcoin::secp256k1::{Secp256k1, SecretKey};
    use lightning_invoice::{InvoiceBuilder, PaymentSecret};

    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn invoice(currency: Currency, amount_msat: Option<u64>, expiry: u64) -> String {
        let key = SecretKey::from_slice(&[7; 32]).unwrap();
        let mut builder = InvoiceBuilder::new(currency)
            .description("test".into())
            .payment_hash(sha256::Hash::from_byte_array([3; 32]))
            .payment_secret(PaymentSecret([4; 32]))
            .duration_since_epoch(Duration::from_secs(NOW - 10))
            .expiry_time(Duration::from_secs(expiry))
            .min_final_cltv_expiry_delta(18);
        if let Some(a) = amount_msat {
            builder = builder.amount_milli_satoshis(a);
        }
        builder
            .build_signed(|m| Secp256k1::new().sign_ecdsa_recoverable(m, &key))
            .unwrap()
            .to_string()
    }

    fn bounds() -> Withdrawable {
        Withdrawable {
            min_msat: 1_000,
            max_msat: 50_000,
        }
    }

    #[test]
    fn a_good_invoice_is_payable() {
        let pr = invoice(Currency::Regtest, Some(50_000), 600);
        let ok = check_invoice(&pr, "regtest", "02ab", bounds(), Duration::from_secs(NOW)).unwrap();
        assert_eq!(
            ok,
            PayableInvoice {
                payment_hash: PaymentHash([3; 32]),
                amount_msat: 50_000
            }
        );
    }

    #[test]
    fn every_bad_invoice_is_refused_with_its_reason() {
        let now = Duration::from_secs(NOW);
        assert_eq!(
            check_invoice("lnbcrt1garbage", "regtest", "02ab", bounds(), now),
            Err(InvoiceRefusal::Malformed)
        );
        assert!(matches!(
            check_invoice(
                &invoice(Currency::Bitcoin, Some(5_000), 600),
                "regtest",
                "02ab",
                bounds(),
                now
            ),
            Err(InvoiceRefusal::WrongNetwork { .. })
        ));
        assert_eq!(
            check_invoice(
                &invoice(Currency::Regtest, None, 600),
                "regtest",
                "02ab",
                bounds(),
                now
            ),
            Err(InvoiceRefusal::NoAmount)
        );
        assert_eq!(
            check_invoice(
                &invoice(Currency::Regtest, Some(5_000), 5),
                "regtest",
                "02ab",
                bounds(),
                now
            ),
            Err(InvoiceRefusal::Expired)
        );
        assert_eq!(
            check_invoice(
                &invoice(Currency::Regtest, Some(50_001), 600),
                "regtest",
                "02ab",
                bounds(),
                now
            ),
            Err(InvoiceRefusal::OutOfRange {
                min_msat: 1_000,
                max_msat: 50_000,
                got_msat: 50_001
            })
        );
        assert!(
            check_invoice(
                &invoice(Currency::Regtest, Some(999), 600),
                "regtest",
                "02ab",
                bounds(),
                now
            )
            .is_err()
        );
        let own = SecretKey::from_slice(&[7; 32])
            .unwrap()
            .public_key(&Secp256k1::new())
            .to_string();
        assert_eq!(
            check_invoice(
                &invoice(Currency::Regtest, Some(5_000), 600),
                "regtest",
                &own,
                bounds(),
                now
            ),
            Err(InvoiceRefusal::OwnInvoice)
        );
    }
}
