//! FakeCln's node: the hold plugin's invoice rules (its `Settler`, `Handler` and `ExpiryCancel`,
//! github.com/BoltzExchange/hold at 14c3568d, with their error texts) and the part of Core
//! Lightning's own invoices and payments that lightning-wall uses. Synchronous and I/O-free; the
//! gRPC services in `services.rs` translate.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::hashes::{Hash, sha256};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning_invoice::{
    Bolt11Invoice, Currency, InvoiceBuilder, PaymentSecret, RouteHint, RouteHintHop, RoutingFees,
};
use sha2::{Digest, Sha256};

pub use crate::proto::cln::ChannelState;

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

/// A Core Lightning invoice (`listinvoices`); status EXPIRED is computed from the clock.
#[derive(Clone, Debug)]
pub struct ClnInvoice {
    pub label: String,
    pub description: String,
    pub payment_hash: [u8; 32],
    pub preimage: [u8; 32],
    pub bolt11: String,
    pub amount_msat: u64,
    pub expires_at: u64,
    pub paid_at: Option<u64>,
    pub created_index: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClnStatus {
    Unpaid,
    Paid,
    Expired,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayStatus {
    Pending,
    Failed,
    Complete,
}

/// One `listpays` entry.
#[derive(Clone, Debug)]
pub struct Pay {
    pub payment_hash: [u8; 32],
    pub bolt11: String,
    pub status: PayStatus,
    pub preimage: Option<[u8; 32]>,
    pub amount_msat: u64,
    pub amount_sent_msat: u64,
    pub created_at: u64,
}

/// How xpay ends for an invoice whose preimage the fake knows (a reachable remote node).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XpayBehaviour {
    /// Succeeds at once for `fee_msat` (refused as too expensive above `maxfee`).
    Succeed { fee_msat: u64 },
    /// Stays PENDING in listpays and never answers (the payment is stuck in flight).
    Hang,
}

/// A `channel_update`'s policy for one direction of a channel (listpeerchannels `updates`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelPolicy {
    pub htlc_minimum_msat: u64,
    pub htlc_maximum_msat: u64,
    pub cltv_expiry_delta: u32,
    pub fee_base_msat: u64,
    pub fee_proportional_millionths: u32,
}

/// One of the node's channels, as `listpeerchannels` reports it (the fields FakeCln models).
#[derive(Clone, Debug)]
pub struct PeerChannel {
    pub peer_id: PublicKey,
    pub peer_connected: bool,
    pub state: ChannelState,
    /// Not announced to the network.
    pub private: bool,
    /// The real id once the funding is confirmed (`BLOCKxTXxOUT`).
    pub short_channel_id: Option<String>,
    pub channel_id: [u8; 32],
    /// Our alias for the channel, and the one the peer gave us (payers must use the latter).
    pub alias_local: Option<String>,
    pub alias_remote: Option<String>,
    /// The channel type has `option_scid_alias` (bit 46): its real id must never be shown.
    pub scid_alias: bool,
    pub total_msat: u64,
    pub to_us_msat: u64,
    pub receivable_msat: u64,
    /// Our own policy (the channel's top-level fee fields are ours).
    pub local: ChannelPolicy,
    /// The peer's policy for forwarding to us; `None` until its `channel_update` arrived.
    pub remote: Option<ChannelPolicy>,
}

impl PeerChannel {
    /// A private channel in CHANNELD_NORMAL with a connected peer that can receive 500 000 sat,
    /// whose peer charges 1 000 msat + 100 ppm and asks 40 blocks for the last hop; our own
    /// policy differs (0 msat + 10 ppm, 6 blocks) so a hint built from the wrong side shows.
    pub fn private_normal(short_channel_id: &str) -> Self {
        let peer = loop {
            if let Ok(key) = SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
                break key;
            }
        };
        Self {
            peer_id: peer.public_key(&Secp256k1::new()),
            peer_connected: true,
            state: ChannelState::ChanneldNormal,
            private: true,
            short_channel_id: Some(short_channel_id.to_owned()),
            channel_id: rand::random(),
            alias_local: None,
            alias_remote: None,
            scid_alias: false,
            total_msat: 1_000_000_000,
            to_us_msat: 500_000_000,
            receivable_msat: 490_000_000,
            local: ChannelPolicy {
                htlc_minimum_msat: 1,
                htlc_maximum_msat: 990_000_000,
                cltv_expiry_delta: 6,
                fee_base_msat: 0,
                fee_proportional_millionths: 10,
            },
            remote: Some(ChannelPolicy {
                htlc_minimum_msat: 1,
                htlc_maximum_msat: 990_000_000,
                cltv_expiry_delta: 40,
                fee_base_msat: 1_000,
                fee_proportional_millionths: 100,
            }),
        }
    }

    /// CLN's test for a channel it can route a payment to us through (CHANNELD_NORMAL or
    /// CHANNELD_AWAITING_SPLICE, the peer's update known).
    fn usable(&self) -> bool {
        matches!(
            self.state,
            ChannelState::ChanneldNormal | ChannelState::ChanneldAwaitingSplice
        ) && self.remote.is_some()
    }

    /// The id a payer must use in a route hint (lightningd/routehint.c): the peer's alias for a
    /// `scid_alias` channel (none yet: no hint), the peer's alias for an unannounced channel that
    /// has one, else the real id.
    fn hint_scid(&self) -> Option<&str> {
        if self.scid_alias {
            return self.alias_remote.as_deref();
        }
        match &self.alias_remote {
            Some(alias) if self.private || self.short_channel_id.is_none() => Some(alias),
            _ => self.short_channel_id.as_deref(),
        }
    }

    fn route_hint(&self) -> Option<RouteHint> {
        let remote = self.remote?;
        let scid = parse_scid(self.hint_scid()?)?;
        Some(RouteHint(vec![RouteHintHop {
            src_node_id: self.peer_id,
            short_channel_id: scid,
            fees: RoutingFees {
                base_msat: u32::try_from(remote.fee_base_msat).ok()?,
                proportional_millionths: remote.fee_proportional_millionths,
            },
            cltv_expiry_delta: u16::try_from(remote.cltv_expiry_delta).ok()?,
            htlc_minimum_msat: None,
            htlc_maximum_msat: None,
        }]))
    }
}

/// `BLOCKxTXxOUT` as BOLT 7's number.
pub fn parse_scid(text: &str) -> Option<u64> {
    let parts: Vec<u64> = text
        .split('x')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    match parts[..] {
        [block, tx, out] if block < 1 << 24 && tx < 1 << 24 && out < 1 << 16 => {
            Some(block << 40 | tx << 16 | out)
        }
        _ => None,
    }
}

/// A state change the plugin broadcasts to its Track streams.
#[derive(Clone, Debug)]
pub struct StateUpdate {
    pub payment_hash: [u8; 32],
    pub state: HoldState,
}

/// A JSON-RPC error of Core Lightning as cln-grpc forwards it (`RpcError { code, message }`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcError {
    pub code: i32,
    pub message: String,
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

    // ---- Core Lightning ----

    fn rpc(code: i32, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
        }
    }

    pub fn cln_status(&self, invoice: &ClnInvoice) -> ClnStatus {
        if invoice.paid_at.is_some() {
            ClnStatus::Paid
        } else if self.now().as_secs() >= invoice.expires_at {
            ClnStatus::Expired
        } else {
            ClnStatus::Unpaid
        }
    }

    /// `invoice`: unique label (900) and preimage (901), as lightningd/invoice.c.
    pub fn cln_invoice(
        &mut self,
        request: &crate::proto::cln::InvoiceRequest,
    ) -> Result<ClnInvoice, RpcError> {
        use crate::proto::cln::amount_or_any::Value;
        let label = request.label.as_str();
        let description = request.description.as_str();
        let amount_msat = match request.amount_msat.as_ref().and_then(|a| a.value.as_ref()) {
            Some(Value::Amount(a)) => a.msat,
            _ => 0,
        };
        let preimage = request.preimage.as_deref();
        let (expiry, cltv) = (request.expiry, request.cltv);
        if self.cln.iter().any(|i| i.label == label) {
            return Err(Self::rpc(900, format!("Duplicate label '{label}'")));
        }
        let preimage: [u8; 32] = match preimage {
            Some(p) => p
                .try_into()
                .map_err(|_| Self::rpc(-32602, "preimage: should be a 32 byte hex value"))?,
            None => rand::random(),
        };
        let hash: [u8; 32] = Sha256::digest(preimage).into();
        if self.cln.iter().any(|i| i.payment_hash == hash) {
            return Err(Self::rpc(901, "preimage already used"));
        }
        let hints = self.cln_route_hints(&request.exposeprivatechannels)?;
        let expiry = expiry.unwrap_or(604_800);
        let bolt11 = self
            .sign(
                hash,
                amount_msat,
                description,
                expiry,
                u64::from(cltv.unwrap_or(18)),
                hints,
            )
            .map_err(|e| Self::rpc(-1, e))?;
        let invoice = ClnInvoice {
            label: label.to_owned(),
            description: description.to_owned(),
            payment_hash: hash,
            preimage,
            bolt11,
            amount_msat,
            expires_at: self.now().as_secs() + expiry,
            paid_at: None,
            created_index: self.cln.len() as u64 + 1,
        };
        self.cln.push(invoice.clone());
        Ok(invoice)
    }

    /// The route hints `invoice` puts in (lightningd/invoice.c `add_routehints` with
    /// routehint.c): with `exposeprivatechannels` the usable channels it names (by real id or
    /// either alias) whose peer is connected, code 902 when none is; without it, the private
    /// ones only when the node has no public channel at all. Simplified: CLN then picks a
    /// subset by capacity (random or round-robin), FakeCln takes them all; hints to public
    /// channels (CLN adds some when it has public ones) are not modelled.
    fn cln_route_hints(&self, expose: &[String]) -> Result<Vec<RouteHint>, RpcError> {
        let candidates = self
            .channels
            .iter()
            .filter(|c| c.usable() && c.peer_connected);
        if expose.is_empty() {
            if self.channels.iter().any(|c| !c.private) {
                return Ok(Vec::new());
            }
            return Ok(candidates.filter_map(PeerChannel::route_hint).collect());
        }
        for scid in expose {
            if parse_scid(scid).is_none() {
                // cln-grpc parses each with `unwrap()`: a malformed one panics its handler.
                return Err(Self::rpc(-1, format!("cln-grpc panicked parsing {scid:?}")));
            }
        }
        let named = |id: &Option<String>| id.as_ref().is_some_and(|id| expose.contains(id));
        let hints: Vec<RouteHint> = candidates
            .filter(|c| {
                named(&c.short_channel_id) || named(&c.alias_local) || named(&c.alias_remote)
            })
            .filter_map(PeerChannel::route_hint)
            .collect();
        if hints.is_empty() {
            return Err(Self::rpc(
                902,
                "None of those hints were suitable local channels",
            ));
        }
        Ok(hints)
    }

    /// A payment reaching a CLN invoice (not one of the plugin's).
    pub fn cln_pay(&mut self, hash: &[u8]) -> Result<(), String> {
        let now = self.now().as_secs();
        let Some(position) = self.cln.iter().position(|i| i.payment_hash == hash) else {
            return Err("no invoice for this payment hash".to_owned());
        };
        match self.cln_status(&self.cln[position]) {
            ClnStatus::Unpaid => {
                self.cln[position].paid_at = Some(now);
                Ok(())
            }
            ClnStatus::Paid => Err("invoice already paid".to_owned()),
            ClnStatus::Expired => Err("invoice expired".to_owned()),
        }
    }

    /// `xpay`: pays an invoice of a remote node the fake knows the preimage of, and records the
    /// attempt for `listpays`. `Ok(None)`: the payment hangs in flight.
    pub fn xpay(
        &mut self,
        invstring: &str,
        maxfee_msat: Option<u64>,
    ) -> Result<Option<Pay>, RpcError> {
        let invoice: Bolt11Invoice = invstring
            .trim()
            .parse()
            .map_err(|_| Self::rpc(-32602, "invstring: Unparsable invoice"))?;
        let hash = invoice.payment_hash().to_byte_array();
        if self
            .pays
            .iter()
            .any(|p| p.payment_hash == hash && p.status == PayStatus::Complete)
        {
            return Err(Self::rpc(219, "Already paid"));
        }
        let amount = invoice.amount_milli_satoshis().unwrap_or(0);
        let mut pay = Pay {
            payment_hash: hash,
            bolt11: invstring.trim().to_owned(),
            status: PayStatus::Failed,
            preimage: None,
            amount_msat: amount,
            amount_sent_msat: 0,
            created_at: self.now().as_secs(),
        };
        let Some(preimage) = self.remote_preimages.get(&hash).copied() else {
            self.pays.push(pay);
            return Err(Self::rpc(
                209,
                "Failed after 1 attempts. We got an error from the destination: no route",
            ));
        };
        match self.xpay_behaviour {
            XpayBehaviour::Hang => {
                pay.status = PayStatus::Pending;
                self.pays.push(pay);
                Ok(None)
            }
            XpayBehaviour::Succeed { fee_msat } => {
                if maxfee_msat.is_some_and(|max| fee_msat > max) {
                    self.pays.push(pay);
                    return Err(Self::rpc(
                        209,
                        format!("Could not find route without excessive cost (fee {fee_msat}msat)"),
                    ));
                }
                pay.status = PayStatus::Complete;
                pay.preimage = Some(preimage);
                pay.amount_sent_msat = amount + fee_msat;
                self.pays.push(pay.clone());
                Ok(Some(pay))
            }
        }
    }
}
