//! The Lightning node as the sidecar sees it: invoices, hold invoices, their states, payments.
//!
//! Backends: `lnd` (REST, production), `cln` (Core Lightning with the hold plugin, gRPC),
//! `nwc` (a wallet over Nostr Wallet Connect, NIP-47) and `dev` (an embedded development node for demos and tests). The deposit lifecycle only ever talks
//! to this trait, so it never learns which node it has. Semantics follow LND (see
//! `docs/lnd-rest.md`): settle on OPEN fails, settle
//! twice and cancel twice succeed, cancel after settle fails, a payment hash is never reused.

pub mod cln;
pub mod dev;
pub mod lnd;
pub mod nwc;

use std::pin::Pin;
use std::time::Duration;

use futures_core::Stream;

use crate::ids::{PaymentHash, Preimage};

/// An invoice's state, as LND names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvoiceState {
    Open,
    /// Hold invoices only: the full amount arrived and the HTLCs are held.
    Accepted,
    Settled,
    Canceled,
}

impl InvoiceState {
    /// The name lnd uses on the wire and in its docs (`"ACCEPTED"`).
    pub fn as_lnd_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Accepted => "ACCEPTED",
            Self::Settled => "SETTLED",
            Self::Canceled => "CANCELED",
        }
    }

    pub fn from_lnd_str(name: &str) -> Option<Self> {
        match name {
            "OPEN" => Some(Self::Open),
            "ACCEPTED" => Some(Self::Accepted),
            "SETTLED" => Some(Self::Settled),
            "CANCELED" => Some(Self::Canceled),
            _ => None,
        }
    }

    /// SETTLED and CANCELED never change again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Settled | Self::Canceled)
    }
}

/// What to invoice.
#[derive(Clone, Debug)]
pub struct InvoiceRequest {
    pub amount_msat: u64,
    pub memo: String,
    /// Time to pay (BOLT11 expiry). Does not bound how long an accepted hold invoice is held.
    pub expiry: Duration,
    /// Final CLTV delta for hold invoices (LND `cltv_expiry`); `None` = the backend's default.
    pub cltv_expiry: Option<u32>,
}

/// A freshly created invoice.
#[derive(Clone, Debug)]
pub struct CreatedInvoice {
    pub payment_hash: PaymentHash,
    pub payment_request: String,
}

/// An invoice as looked up or streamed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceStatus {
    pub payment_hash: PaymentHash,
    pub state: InvoiceState,
    pub amount_msat: u64,
    pub amount_paid_msat: u64,
    /// Lowest `expiry_height` of the held HTLCs (ACCEPTED hold invoices); the node auto-cancels
    /// `hold_expiry_delta` blocks before it.
    pub htlc_expiry_height: Option<u32>,
    /// Unix seconds the invoice was created, and its BOLT11 expiry.
    pub created_at: u64,
    pub expiry: Duration,
}

#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub pubkey: String,
    /// `mainnet`, `testnet`, `signet`, `regtest`, `simnet`.
    pub network: String,
    pub block_height: u32,
    /// Blocks before the lowest HTLC expiry at which the node cancels a held invoice by itself
    /// (`holdexpirydelta`: 18 in lnd v0.21, 12 before).
    pub hold_expiry_delta: u32,
    pub synced_to_chain: bool,
}

/// Outcome of paying an invoice (rewards).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentOutcome {
    Succeeded {
        preimage_hex: String,
        fee_msat: u64,
    },
    Failed {
        reason: String,
    },
    /// The node accepted the payment but its final state is not known yet (stream lost).
    InFlight,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("invoice not found")]
    NotFound,
    #[error("an invoice with this payment hash already exists")]
    AlreadyExists,
    #[error("invoice still open")]
    StillOpen,
    #[error("invoice already settled")]
    AlreadySettled,
    #[error("invoice already canceled")]
    AlreadyCanceled,
    /// The node could not be reached or answered with a transport-level failure; retry later.
    #[error("node unavailable: {0}")]
    Unavailable(String),
    /// The node understood and refused the request for another reason.
    #[error("node rejected the request: {0}")]
    Rejected(String),
}

/// Whether `next` is news after `last` in a subscription. Lookups and stream messages
/// interleave (a message buffered before a reconciling lookup can arrive after it), so a state
/// that goes backwards (states only move OPEN -> ACCEPTED -> SETTLED/CANCELED) is stale, never
/// news.
pub(crate) fn is_news(next: &InvoiceStatus, last: &InvoiceStatus) -> bool {
    fn rank(state: InvoiceState) -> u8 {
        match state {
            InvoiceState::Open => 0,
            InvoiceState::Accepted => 1,
            InvoiceState::Settled | InvoiceState::Canceled => 2,
        }
    }
    if last.state.is_final() {
        return false;
    }
    match rank(next.state).cmp(&rank(last.state)) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => {
            next.amount_paid_msat != last.amount_paid_msat
                || next.htlc_expiry_height != last.htlc_expiry_height
        }
    }
}

pub type InvoiceUpdates = Pin<Box<dyn Stream<Item = Result<InvoiceStatus, NodeError>> + Send>>;

#[async_trait::async_trait]
pub trait Node: Send + Sync {
    async fn info(&self) -> Result<NodeInfo, NodeError>;
    /// A normal invoice for a preimage the sidecar generated and stored first.
    async fn create_invoice(
        &self,
        preimage: &Preimage,
        request: &InvoiceRequest,
    ) -> Result<CreatedInvoice, NodeError>;
    /// A hold invoice for a hash whose preimage the sidecar stored first.
    async fn create_hold_invoice(
        &self,
        hash: &PaymentHash,
        request: &InvoiceRequest,
    ) -> Result<CreatedInvoice, NodeError>;
    async fn settle(&self, preimage: &Preimage) -> Result<(), NodeError>;
    async fn cancel(&self, hash: &PaymentHash) -> Result<(), NodeError>;
    async fn lookup(&self, hash: &PaymentHash) -> Result<InvoiceStatus, NodeError>;
    /// The invoice's current state first, then each change; ends after SETTLED or CANCELED.
    /// May end early (dropped stream): callers reconcile with `lookup`.
    async fn subscribe(&self, hash: &PaymentHash) -> Result<InvoiceUpdates, NodeError>;
    /// Pays `bolt11` spending at most `max_fee_msat` in routing fees. `InFlight` (or an
    /// `Unavailable` error) means the outcome is unknown: ask [`Node::track_payment`] later,
    /// never pay again.
    async fn pay(&self, bolt11: &str, max_fee_msat: u64) -> Result<PaymentOutcome, NodeError>;
    /// The state of a payment this node sent, by its hash, without waiting for it to end;
    /// `NotFound` when the node never started one.
    async fn track_payment(&self, hash: &PaymentHash) -> Result<PaymentOutcome, NodeError>;
}
