//! The part of Core Lightning's own node that lightning-wall uses, as FakeCln models it: normal
//! invoices (`invoice`, `listinvoices`), outgoing payments (`xpay`, `listpays`) and the peer
//! channels whose route hints go into invoices. Synchronous and I/O-free, like the hold plugin's
//! rules in `state.rs`; error codes and texts follow lightningd's.

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning_invoice::{Bolt11Invoice, RouteHint, RouteHintHop, RoutingFees};
use sha2::{Digest, Sha256};

use super::Db;
use crate::proto::cln::ChannelState;

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

/// A JSON-RPC error of Core Lightning as cln-grpc forwards it (`RpcError { code, message }`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcError {
    pub code: i32,
    pub message: String,
}

impl Db {
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
