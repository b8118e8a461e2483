//! FakeCln's node: the hold plugin's invoice rules (its `Settler`, `Handler` and `ExpiryCancel`,
//! github.com/BoltzExchange/hold at 14c3568d, with their error texts) and the part of Core
//! Lightning's own invoices and payments that lightning-wall uses (`state/core_lightning.rs`).
//! Synchronous and I/O-free; the gRPC services in `services.rs` translate.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::hashes::{Hash, sha256};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning_invoice::{Bolt11Invoice, Currency, InvoiceBuilder, PaymentSecret, RouteHint};
use sha2::{Digest, Sha256};

mod core_lightning;

pub use crate::proto::cln::ChannelState;
pub use core_lightning::{
    ChannelPolicy, ClnInvoice, ClnStatus, Pay, PayStatus, PeerChannel, RpcError, XpayBehaviour,
};

/// The plugin's `InvoiceState` (database names `unpaid`, `accepted`, `paid`, `cancelled`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldState {
    Unpaid,
    Accepted,
    Paid,
    Cancelled,
}

impl HoldState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Unpaid => "unpaid",
            Self::Accepted => "accepted",
            Self::Paid => "paid",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Paid | Self::Cancelled)
    }

    /// The plugin's `validate_transition`, with its error texts.
    fn validate_transition(self, next: HoldState) -> Result<(), String> {
        if self.is_final() && self != next {
            return Err(format!("state {} is final", self.name()));
        }
        let invalid = match self {
            Self::Unpaid => next != Self::Accepted && next != Self::Cancelled,
            Self::Accepted => next == Self::Unpaid,
            _ => false,
        };
        if invalid {
            return Err(format!(
                "invoice state transition ({} -> {})",
                self.name(),
                next.name()
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct Htlc {
    pub id: i64,
    pub state: HoldState,
    pub scid: String,
    pub channel_id: u64,
    pub msat: u64,
    pub created_at: u64,
    pub cltv_expiry: u64,
}

#[derive(Clone, Debug)]
pub struct HoldInvoice {
    pub id: i64,
    pub payment_hash: [u8; 32],
    pub preimage: Option<[u8; 32]>,
    pub bolt11: String,
    pub amount_msat: u64,
    pub state: HoldState,
    pub created_at: u64,
    pub settled_at: Option<u64>,
    pub min_cltv: Option<u64>,
    pub htlcs: Vec<Htlc>,
}

impl HoldInvoice {
    fn amount_paid_msat(&self) -> u64 {
        self.htlcs
            .iter()
            .filter(|h| matches!(h.state, HoldState::Paid | HoldState::Accepted))
            .map(|h| h.msat)
            .sum()
    }
}

/// A state change the plugin broadcasts to its Track streams.
#[derive(Clone, Debug)]
pub struct StateUpdate {
    pub payment_hash: [u8; 32],
    pub state: HoldState,
}

pub struct Db {
    pub network: String,
    key: SecretKey,
    pub height: u32,
    time_offset: Duration,
    time_rewind: Duration,
    /// `hold-expiry-deadline`.
    pub expiry_deadline: u32,
    pub hold: Vec<HoldInvoice>,
    next_htlc_id: i64,
    pub cln: Vec<ClnInvoice>,
    pub pays: Vec<Pay>,
    pub remote_preimages: HashMap<[u8; 32], [u8; 32]>,
    pub xpay_behaviour: XpayBehaviour,
    pub channels: Vec<PeerChannel>,
    /// Replaces `channels` right after the next `listpeerchannels` (a channel closing meanwhile).
    pub channels_after_listing: Option<Vec<PeerChannel>>,
}

impl Db {
    pub fn new(network: &str, height: u32, expiry_deadline: u32) -> Self {
        let key = loop {
            if let Ok(key) = SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
                break key;
            }
        };
        Self {
            network: network.to_owned(),
            key,
            height,
            time_offset: Duration::ZERO,
            time_rewind: Duration::ZERO,
            expiry_deadline,
            hold: Vec::new(),
            next_htlc_id: 1,
            cln: Vec::new(),
            pays: Vec::new(),
            remote_preimages: HashMap::new(),
            xpay_behaviour: XpayBehaviour::Succeed { fee_msat: 1_000 },
            channels: Vec::new(),
            channels_after_listing: None,
        }
    }

    pub fn now(&self) -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(self.time_offset)
            .saturating_sub(self.time_rewind)
    }

    pub fn advance_time(&mut self, by: Duration) {
        self.time_offset += by;
    }

    pub fn rewind_time(&mut self, by: Duration) {
        self.time_rewind += by;
    }

    pub fn pubkey(&self) -> PublicKey {
        self.key.public_key(&Secp256k1::new())
    }

    fn currency(&self) -> Currency {
        match self.network.as_str() {
            "bitcoin" => Currency::Bitcoin,
            "testnet" | "testnet4" => Currency::BitcoinTestnet,
            "signet" => Currency::Signet,
            _ => Currency::Regtest,
        }
    }

    fn sign(
        &self,
        hash: [u8; 32],
        amount_msat: u64,
        memo: &str,
        expiry: u64,
        cltv: u64,
        hints: Vec<RouteHint>,
    ) -> Result<String, String> {
        let secp = Secp256k1::new();
        let builder = hints.into_iter().fold(
            InvoiceBuilder::new(self.currency()),
            InvoiceBuilder::private_route,
        );
        builder
            .description(memo.to_owned())
            .payment_hash(sha256::Hash::from_byte_array(hash))
            .payment_secret(PaymentSecret(rand::random()))
            .duration_since_epoch(self.now())
            .min_final_cltv_expiry_delta(cltv)
            .expiry_time(Duration::from_secs(expiry))
            .amount_milli_satoshis(amount_msat)
            .build_signed(|m| secp.sign_ecdsa_recoverable(m, &self.key))
            .map(|i| i.to_string())
            .map_err(|e| format!("{e}"))
    }

    pub fn hold_invoice(&self, hash: &[u8]) -> Option<&HoldInvoice> {
        self.hold.iter().find(|i| i.payment_hash == hash)
    }

    fn hold_invoice_mut(&mut self, hash: &[u8]) -> Option<&mut HoldInvoice> {
        self.hold.iter_mut().find(|i| i.payment_hash == hash)
    }

    // ---- the hold plugin ----

    /// `Hold.Invoice`: encodes and stores; a second invoice for a hash fails on the database's
    /// unique constraint, as the plugin's SQLite database does.
    pub fn hold_create(
        &mut self,
        hash: &[u8],
        amount_msat: u64,
        memo: &str,
        expiry: Option<u64>,
        min_cltv: Option<u64>,
        hints: Vec<RouteHint>,
    ) -> Result<String, String> {
        let hash: [u8; 32] = hash
            .try_into()
            .map_err(|_| "could not encode invoice: invalid payment hash".to_owned())?;
        // The plugin's encoder defaults: expiry 3600 s (BOLT11), min final CLTV 80 (CLN's
        // cltv-final default).
        let bolt11 = self
            .sign(
                hash,
                amount_msat,
                memo,
                expiry.unwrap_or(3_600),
                min_cltv.unwrap_or(80),
                hints,
            )
            .map_err(|e| format!("could not encode invoice: {e}"))?;
        if self.hold_invoice(&hash).is_some() {
            return Err(
                "could not save invoice: UNIQUE constraint failed: invoices.payment_hash"
                    .to_owned(),
            );
        }
        let id = i64::try_from(self.hold.len()).unwrap_or(i64::MAX) + 1;
        self.hold.push(HoldInvoice {
            id,
            payment_hash: hash,
            preimage: None,
            bolt11: bolt11.clone(),
            amount_msat,
            state: HoldState::Unpaid,
            created_at: self.now().as_secs(),
            settled_at: None,
            min_cltv,
            htlcs: Vec::new(),
        });
        Ok(bolt11)
    }

    /// `Settler::settle`: PAID already is success; otherwise it needs pending (accepted) HTLCs.
    pub fn hold_settle(&mut self, preimage: &[u8]) -> Result<Option<StateUpdate>, String> {
        let hash: [u8; 32] = Sha256::digest(preimage).into();
        let now = self.now().as_secs();
        let invoice = self
            .hold_invoice_mut(&hash)
            .ok_or("could not settle invoice: invoice not found")?;
        if invoice.state == HoldState::Paid {
            return Ok(None);
        }
        let pending = invoice.htlcs.iter().any(|h| h.state == HoldState::Accepted);
        if !pending || invoice.state == HoldState::Cancelled {
            return Err("could not settle invoice: no HTLCs to settle".to_owned());
        }
        invoice
            .state
            .validate_transition(HoldState::Paid)
            .map_err(|e| format!("could not settle invoice: {e}"))?;
        invoice.state = HoldState::Paid;
        invoice.settled_at = Some(now);
        invoice.preimage = preimage.try_into().ok();
        for htlc in &mut invoice.htlcs {
            if htlc.state == HoldState::Accepted {
                htlc.state = HoldState::Paid;
            }
        }
        Ok(Some(StateUpdate {
            payment_hash: hash,
            state: HoldState::Paid,
        }))
    }

    /// `Settler::cancel`: fails the pending HTLCs, then moves the invoice (and its HTLCs in the
    /// invoice's state) to CANCELLED; cancelling twice succeeds, cancelling PAID fails.
    pub fn hold_cancel(&mut self, hash: &[u8]) -> Result<StateUpdate, String> {
        let invoice = self
            .hold_invoice_mut(hash)
            .ok_or("could not cancel invoice: invoice not found")?;
        let current = invoice.state;
        current
            .validate_transition(HoldState::Cancelled)
            .map_err(|e| format!("could not cancel invoice: {e}"))?;
        invoice.state = HoldState::Cancelled;
        for htlc in &mut invoice.htlcs {
            if htlc.state == current || htlc.state == HoldState::Accepted {
                htlc.state = HoldState::Cancelled;
            }
        }
        Ok(StateUpdate {
            payment_hash: invoice.payment_hash,
            state: HoldState::Cancelled,
        })
    }

    /// An HTLC for a hold invoice reaching the plugin's `htlc_accepted` hook (`Handler`): only an
    /// UNPAID invoice takes it, the CLTV must reach the invoice's minimum, at most twice the
    /// amount is taken, and the full amount makes the invoice ACCEPTED. The expiry of an unpaid
    /// invoice is not checked (the plugin does not).
    pub fn hold_htlc(
        &mut self,
        hash: &[u8],
        msat: u64,
        cltv_relative: u64,
    ) -> Result<Option<StateUpdate>, String> {
        let height = u64::from(self.height);
        let now = self.now().as_secs();
        let id = self.next_htlc_id;
        self.next_htlc_id += 1;
        let invoice = self.hold_invoice_mut(hash).ok_or("not a hold invoice")?;
        let mut htlc = Htlc {
            id,
            state: HoldState::Accepted,
            scid: "103x1x0".to_owned(),
            channel_id: u64::try_from(id).unwrap_or(0),
            msat,
            created_at: now,
            cltv_expiry: height + cltv_relative,
        };
        let decoded: Bolt11Invoice = invoice.bolt11.parse().map_err(|e| format!("{e:?}"))?;
        let min_cltv = invoice
            .min_cltv
            .unwrap_or(decoded.min_final_cltv_expiry_delta());
        let refusal = if invoice.state != HoldState::Unpaid {
            Some(format!("invoice is in state: {}", invoice.state.name()))
        } else if cltv_relative < min_cltv {
            Some(format!("CLTV too little ({cltv_relative} < {min_cltv})"))
        } else if invoice.amount_msat * 2 < invoice.amount_paid_msat() + msat {
            Some("overpayment protection".to_owned())
        } else {
            None
        };
        if let Some(reason) = refusal {
            htlc.state = HoldState::Cancelled;
            invoice.htlcs.push(htlc);
            return Err(reason);
        }
        invoice.htlcs.push(htlc);
        if invoice.amount_paid_msat() >= invoice.amount_msat {
            invoice.state = HoldState::Accepted;
            return Ok(Some(StateUpdate {
                payment_hash: invoice.payment_hash,
                state: HoldState::Accepted,
            }));
        }
        Ok(None)
    }

    /// One block: `ExpiryCancel::block_added` cancels every invoice with pending HTLCs whose
    /// lowest expiry is `hold-expiry-deadline` blocks away or closer.
    pub fn add_block(&mut self) -> Vec<StateUpdate> {
        self.height += 1;
        let height = u64::from(self.height);
        let deadline = u64::from(self.expiry_deadline);
        if deadline == 0 {
            return Vec::new();
        }
        let due: Vec<[u8; 32]> = self
            .hold
            .iter()
            .filter_map(|i| {
                let lowest = i
                    .htlcs
                    .iter()
                    .filter(|h| h.state == HoldState::Accepted)
                    .map(|h| h.cltv_expiry)
                    .min()?;
                (lowest.saturating_sub(height) <= deadline).then_some(i.payment_hash)
            })
            .collect();
        due.iter()
            .filter_map(|hash| self.hold_cancel(hash).ok())
            .collect()
    }
}
