//! FakeLnd's invoice database and lnd's invoice rules (test double). Kept apart from HTTP so the
//! state outlives a simulated restart. It must follow lnd's documented behaviour, not the
//! sidecar's expectations: the point of the double is to catch the client's mistakes.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::hashes::{Hash, sha256};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning_invoice::{
    Currency, InvoiceBuilder, PaymentSecret, RouteHint, RouteHintHop, RoutingFees,
};
use sha2::{Digest, Sha256};

/// lnd's invoice states (`lnrpc.Invoice.InvoiceState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Open,
    Accepted,
    Settled,
    Canceled,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Accepted => "ACCEPTED",
            Self::Settled => "SETTLED",
            Self::Canceled => "CANCELED",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Settled | Self::Canceled)
    }
}

#[derive(Clone, Debug)]
pub struct Invoice {
    pub hash: [u8; 32],
    pub preimage: Option<[u8; 32]>,
    pub is_hold: bool,
    pub state: State,
    pub memo: String,
    pub value_msat: u64,
    pub amt_paid_msat: u64,
    pub creation_date: u64,
    pub settle_date: u64,
    pub expiry: u64,
    pub cltv_expiry: u64,
    pub payment_request: String,
    pub payment_addr: [u8; 32],
    pub add_index: u64,
    pub settle_index: u64,
    pub private: bool,
    pub description_hash: Vec<u8>,
    pub htlc: Option<Htlc>,
}

#[derive(Clone, Copy, Debug)]
pub struct Htlc {
    pub amt_msat: u64,
    pub accept_height: u32,
    pub accept_time: u64,
    pub resolve_time: u64,
    pub expiry_height: u32,
    pub state: State,
}

/// lnd's errors as they travel: gRPC code, and the message clients must match on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LndError {
    pub code: u16,
    pub message: String,
}

impl LndError {
    /// gRPC code 2 (Unknown): what most invoice errors are, HTTP 500.
    pub fn unknown(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: 3,
            message: message.into(),
        }
    }

    pub fn not_found() -> Self {
        Self {
            code: 5,
            message: NOT_FOUND.to_owned(),
        }
    }
}

// lnd's messages (invoices/errors.go).
pub const NOT_FOUND: &str = "unable to locate invoice";
pub const DUPLICATE: &str = "invoice with payment hash already exists";
pub const STILL_OPEN: &str = "invoice still open";
pub const ALREADY_SETTLED: &str = "invoice already settled";
pub const ALREADY_CANCELED: &str = "invoice already canceled";

/// lnd v0.21 `routing.MinCLTVDelta`, default `cltv_expiry` and `holdexpirydelta`.
pub const MIN_CLTV_DELTA: u64 = 24;
/// `invoices.MaxFinalCltvDelta` (math.MaxUint16).
pub const MAX_FINAL_CLTV_DELTA: u64 = 65_535;
pub const DEFAULT_CLTV_EXPIRY: u64 = 80;
pub const DEFAULT_EXPIRY: u64 = 86_400;

pub struct NewInvoice {
    pub hash: [u8; 32],
    pub preimage: Option<[u8; 32]>,
    pub memo: String,
    pub value_msat: u64,
    pub expiry: u64,
    pub cltv_expiry: u64,
    pub private: bool,
    pub description_hash: Vec<u8>,
}

/// The route hint of FakeLnd's one pretend private channel.
pub fn private_channel_hint(secp: &Secp256k1<bitcoin::secp256k1::All>) -> RouteHint {
    let peer = SecretKey::from_slice(&[0x42; 32]).expect("a valid secret key");
    RouteHint(vec![RouteHintHop {
        src_node_id: PublicKey::from_secret_key(secp, &peer),
        short_channel_id: PRIVATE_CHANNEL_ID,
        fees: RoutingFees {
            base_msat: 1_000,
            proportional_millionths: 1,
        },
        cltv_expiry_delta: 40,
        htlc_minimum_msat: None,
        htlc_maximum_msat: None,
    }])
}

/// The channel FakeLnd's HTLCs arrive on (`chan_id` in invoice HTLCs).
pub const PRIVATE_CHANNEL_ID: u64 = 128_642_860_515_328;

pub struct Db {
    pub network: String,
    pub key: SecretKey,
    pub height: u32,
    pub hold_expiry_delta: u32,
    /// Added to the wall clock: tests move time forward without sleeping.
    pub time_offset: Duration,
    pub invoices: HashMap<[u8; 32], Invoice>,
    pub next_add_index: u64,
    pub next_settle_index: u64,
    /// Preimages of invoices of other (simulated) nodes that SendPaymentV2 can pay.
    pub remote_preimages: HashMap<[u8; 32], [u8; 32]>,
    pub payments: HashMap<[u8; 32], OutgoingPayment>,
}

#[derive(Clone, Debug)]
pub struct OutgoingPayment {
    pub hash: [u8; 32],
    pub preimage: Option<[u8; 32]>,
    pub value_msat: u64,
    pub payment_request: String,
    pub creation_date: u64,
    pub index: u64,
    pub status: PaymentStatus,
    /// SendPaymentV2 calls lnd accepted for this hash (a retry after FAILED is a new attempt).
    pub attempts: u32,
    /// Routing fee of the route taken (`fee_msat` once SUCCEEDED).
    pub fee_msat: u64,
}

/// lnd's `Payment.status` with its `failure_reason`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentStatus {
    InFlight,
    Succeeded,
    Failed(&'static str),
}

impl PaymentStatus {
    pub fn name(&self) -> &'static str {
        match self {
            PaymentStatus::InFlight => "IN_FLIGHT",
            PaymentStatus::Succeeded => "SUCCEEDED",
            PaymentStatus::Failed(_) => "FAILED",
        }
    }

    pub fn failure_reason(&self) -> &'static str {
        match self {
            PaymentStatus::Failed(reason) => reason,
            _ => "FAILURE_REASON_NONE",
        }
    }

    pub fn is_final(&self) -> bool {
        !matches!(self, PaymentStatus::InFlight)
    }
}

// lnd's payment errors (channeldb/payments: ErrAlreadyPaid, ErrPaymentInFlight,
// ErrPaymentNotInitiated).
pub const ALREADY_PAID: &str = "invoice is already paid";
pub const PAYMENT_IN_FLIGHT: &str = "payment is in transition";
pub const PAYMENT_NOT_INITIATED: &str = "payment isn't initiated";

impl Db {
    pub fn new(network: &str, height: u32, hold_expiry_delta: u32) -> Self {
        let key = loop {
            if let Ok(key) = SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
                break key;
            }
        };
        Self {
            network: network.to_owned(),
            key,
            height,
            hold_expiry_delta,
            time_offset: Duration::ZERO,
            invoices: HashMap::new(),
            next_add_index: 1,
            next_settle_index: 1,
            remote_preimages: HashMap::new(),
            payments: HashMap::new(),
        }
    }

    pub fn now(&self) -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            + self.time_offset
    }

    pub fn pubkey_hex(&self) -> String {
        self.key.public_key(&Secp256k1::new()).to_string()
    }

    pub fn currency(&self) -> Currency {
        match self.network.as_str() {
            "mainnet" => Currency::Bitcoin,
            "testnet" | "testnet4" => Currency::BitcoinTestnet,
            "signet" => Currency::Signet,
            "simnet" => Currency::Simnet,
            _ => Currency::Regtest,
        }
    }

    pub fn add(&mut self, new: NewInvoice) -> Result<&Invoice, LndError> {
        if self.invoices.contains_key(&new.hash) {
            return Err(LndError::unknown(DUPLICATE));
        }
        // lnrpc/invoicesrpc/addinvoice.go, word for word.
        if new.cltv_expiry > MAX_FINAL_CLTV_DELTA {
            return Err(LndError::unknown(format!(
                "CLTV delta of {} is too large, max accepted is: {MAX_FINAL_CLTV_DELTA}",
                new.cltv_expiry
            )));
        }
        if new.cltv_expiry < MIN_CLTV_DELTA {
            return Err(LndError::unknown(format!(
                "CLTV delta of {} must be greater than minimum of {MIN_CLTV_DELTA}",
                new.cltv_expiry
            )));
        }
        let now = self.now();
        let payment_addr: [u8; 32] = rand::random();
        let builder = InvoiceBuilder::new(self.currency())
            .description(new.memo.clone())
            .payment_hash(sha256::Hash::from_byte_array(new.hash))
            .payment_secret(PaymentSecret(payment_addr))
            .duration_since_epoch(now)
            .min_final_cltv_expiry_delta(new.cltv_expiry)
            .expiry_time(Duration::from_secs(new.expiry));
        let builder = if new.value_msat > 0 {
            builder.amount_milli_satoshis(new.value_msat)
        } else {
            builder
        };
        let secp = Secp256k1::new();
        // `private`: lnd adds a route hint for each of its private channels (lightning.proto,
        // Invoice.private); the double pretends to have one, to a fixed peer, with the channel id
        // its HTLCs report.
        let builder = if new.private {
            builder.private_route(private_channel_hint(&secp))
        } else {
            builder
        };
        let payment_request = builder
            .build_signed(|m| secp.sign_ecdsa_recoverable(m, &self.key))
            .map_err(|e| LndError::unknown(format!("{e}")))?
            .to_string();
        let add_index = self.next_add_index;
        self.next_add_index += 1;
        let invoice = Invoice {
            hash: new.hash,
            preimage: new.preimage,
            is_hold: new.preimage.is_none(),
            state: State::Open,
            memo: new.memo,
            value_msat: new.value_msat,
            amt_paid_msat: 0,
            creation_date: now.as_secs(),
            settle_date: 0,
            expiry: new.expiry,
            cltv_expiry: new.cltv_expiry,
            payment_request,
            payment_addr,
            add_index,
            settle_index: 0,
            private: new.private,
            description_hash: new.description_hash,
            htlc: None,
        };
        Ok(self.invoices.entry(new.hash).or_insert(invoice))
    }

    pub fn get(&self, hash: &[u8; 32]) -> Result<&Invoice, LndError> {
        self.invoices.get(hash).ok_or_else(LndError::not_found)
    }

    /// SettleInvoice (invoicesrpc): a second settle succeeds.
    pub fn settle(&mut self, preimage: [u8; 32]) -> Result<Vec<[u8; 32]>, LndError> {
        let hash: [u8; 32] = Sha256::digest(preimage).into();
        let now = self.now().as_secs();
        let settle_index = self.next_settle_index;
        let invoice = self
            .invoices
            .get_mut(&hash)
            .ok_or_else(|| LndError::unknown(NOT_FOUND))?;
        match invoice.state {
            State::Open => Err(LndError::unknown(STILL_OPEN)),
            State::Canceled => Err(LndError::unknown(ALREADY_CANCELED)),
            State::Settled => Ok(vec![]),
            State::Accepted => {
                invoice.state = State::Settled;
                invoice.preimage = Some(preimage);
                invoice.settle_date = now;
                invoice.settle_index = settle_index;
                if let Some(htlc) = invoice.htlc.as_mut() {
                    htlc.state = State::Settled;
                    htlc.resolve_time = now;
                }
                self.next_settle_index += 1;
                Ok(vec![hash])
            }
        }
    }

    /// CancelInvoice: a second cancel succeeds; cancel after settle fails.
    pub fn cancel(&mut self, hash: [u8; 32]) -> Result<Vec<[u8; 32]>, LndError> {
        let now = self.now().as_secs();
        let invoice = self
            .invoices
            .get_mut(&hash)
            .ok_or_else(|| LndError::unknown(NOT_FOUND))?;
        match invoice.state {
            State::Settled => Err(LndError::unknown(ALREADY_SETTLED)),
            State::Canceled => Ok(vec![]),
            State::Open | State::Accepted => {
                cancel_in_place(invoice, now);
                Ok(vec![hash])
            }
        }
    }

    /// The test's payer: the full amount arrives at the current height.
    pub fn pay(&mut self, hash: [u8; 32]) -> Result<Vec<[u8; 32]>, String> {
        self.sweep();
        let (now, height) = (self.now().as_secs(), self.height);
        let settle_index = self.next_settle_index;
        let invoice = self
            .invoices
            .get_mut(&hash)
            .ok_or_else(|| NOT_FOUND.to_owned())?;
        if invoice.state != State::Open {
            return Err(format!("invoice is {}", invoice.state.name()));
        }
        let expiry_height = height.saturating_add(u32::try_from(invoice.cltv_expiry).unwrap_or(0));
        invoice.amt_paid_msat = invoice.value_msat;
        invoice.htlc = Some(Htlc {
            amt_msat: invoice.value_msat,
            accept_height: height,
            accept_time: now,
            resolve_time: 0,
            expiry_height,
            state: State::Accepted,
        });
        if invoice.is_hold {
            invoice.state = State::Accepted;
        } else {
            invoice.state = State::Settled;
            invoice.settle_date = now;
            invoice.settle_index = settle_index;
            if let Some(htlc) = invoice.htlc.as_mut() {
                htlc.state = State::Settled;
                htlc.resolve_time = now;
            }
            self.next_settle_index += 1;
        }
        Ok(vec![hash])
    }

    /// Time-driven changes: OPEN invoices past expiry are canceled; ACCEPTED hold invoices are
    /// auto-canceled when `height + holdexpirydelta >= htlc expiry height` (lnd's invoice
    /// registry). Returns the hashes that changed.
    pub fn sweep(&mut self) -> Vec<[u8; 32]> {
        let (now, height, delta) = (self.now().as_secs(), self.height, self.hold_expiry_delta);
        let mut changed = vec![];
        for invoice in self.invoices.values_mut() {
            let expired = invoice.state == State::Open
                && now >= invoice.creation_date.saturating_add(invoice.expiry);
            let auto_cancel = invoice.state == State::Accepted
                && invoice
                    .htlc
                    .is_some_and(|h| height.saturating_add(delta) >= h.expiry_height);
            if expired || auto_cancel {
                cancel_in_place(invoice, now);
                changed.push(invoice.hash);
            }
        }
        changed
    }
}

fn cancel_in_place(invoice: &mut Invoice, now: u64) {
    invoice.state = State::Canceled;
    if let Some(htlc) = invoice.htlc.as_mut() {
        htlc.state = State::Canceled;
        htlc.resolve_time = now;
    }
}
