//! `RecordingNode`: an in-memory TEST DOUBLE of the [`Node`] trait that follows lnd's invoice
//! rules (settle on OPEN fails, settle/cancel twice succeed, cancel after settle fails, hashes
//! are never reused, single-invoice streams send the current state first and end after a final
//! one) and records every call, so tests can assert "no double action". Never used in `serve`.
//! Also the tests' free loopback ports ([`ports`]).

pub mod ports;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{broadcast, watch};

use crate::ids::{PaymentHash, Preimage};
use crate::node::{
    CreatedInvoice, InvoiceRequest, InvoiceState, InvoiceStatus, InvoiceUpdates, Node, NodeError,
    NodeInfo, PaymentOutcome,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    CreateHold(PaymentHash),
    CreateInvoice(PaymentHash),
    Settle(PaymentHash),
    Cancel(PaymentHash),
    Lookup(PaymentHash),
    Subscribe(PaymentHash),
}

struct Invoice {
    status: watch::Sender<InvoiceStatus>,
    hold: bool,
}

#[derive(Default)]
struct Inner {
    invoices: HashMap<PaymentHash, Invoice>,
    calls: Vec<Call>,
    unavailable: bool,
    block_height: u32,
}

#[derive(Clone)]
pub struct RecordingNode {
    inner: Arc<Mutex<Inner>>,
    /// Closes every open stream (a dropped connection).
    drop_streams: broadcast::Sender<()>,
    pub hold_expiry_delta: u32,
}

impl Default for RecordingNode {
    fn default() -> Self {
        RecordingNode::new()
    }
}

impl RecordingNode {
    pub fn new() -> RecordingNode {
        let (drop_streams, _) = broadcast::channel(4);
        RecordingNode {
            inner: Arc::new(Mutex::new(Inner {
                block_height: 1_000,
                ..Inner::default()
            })),
            drop_streams,
            hold_expiry_delta: 18,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        crate::mutex::lock(&self.inner)
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn calls_for(&self, hash: &PaymentHash) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| match c {
                Call::CreateHold(h)
                | Call::CreateInvoice(h)
                | Call::Settle(h)
                | Call::Cancel(h)
                | Call::Lookup(h)
                | Call::Subscribe(h) => h == hash,
            })
            .collect()
    }

    pub fn set_unavailable(&self, unavailable: bool) {
        self.lock().unavailable = unavailable;
    }

    pub fn set_block_height(&self, height: u32) {
        self.lock().block_height = height;
    }

    pub fn state(&self, hash: &PaymentHash) -> Option<InvoiceState> {
        self.lock()
            .invoices
            .get(hash)
            .map(|i| i.status.borrow().state)
    }

    /// The visitor's wallet pays a hold invoice in full: OPEN -> ACCEPTED with HTLCs expiring
    /// `cltv` blocks from now.
    pub fn pay_hold(&self, hash: &PaymentHash, cltv: u32) -> Result<(), NodeError> {
        let inner = self.lock();
        let height = inner.block_height;
        let invoice = inner.invoices.get(hash).ok_or(NodeError::NotFound)?;
        if invoice.status.borrow().state != InvoiceState::Open || !invoice.hold {
            return Err(NodeError::Rejected("not an open hold invoice".into()));
        }
        invoice.status.send_modify(|s| {
            s.state = InvoiceState::Accepted;
            s.amount_paid_msat = s.amount_msat;
            s.htlc_expiry_height = Some(height + cltv);
        });
        Ok(())
    }

    /// lnd's own cancel (auto-cancel near HTLC expiry, or invoice expiry).
    pub fn node_cancels(&self, hash: &PaymentHash) {
        if let Some(invoice) = self.lock().invoices.get(hash) {
            invoice.status.send_modify(|s| {
                if matches!(s.state, InvoiceState::Open | InvoiceState::Accepted) {
                    s.state = InvoiceState::Canceled;
                }
            });
        }
    }

    /// Every open stream ends now, as when a proxy drops idle connections.
    pub fn drop_all_streams(&self) {
        let _ = self.drop_streams.send(());
    }

    fn record(&self, call: Call) -> Result<MutexGuard<'_, Inner>, NodeError> {
        let mut inner = self.lock();
        inner.calls.push(call);
        if inner.unavailable {
            return Err(NodeError::Unavailable(
                "RecordingNode set unavailable".into(),
            ));
        }
        Ok(inner)
    }

    fn add(
        &self,
        hash: PaymentHash,
        request: &InvoiceRequest,
        hold: bool,
        call: Call,
    ) -> Result<CreatedInvoice, NodeError> {
        let mut inner = self.record(call)?;
        if inner.invoices.contains_key(&hash) {
            return Err(NodeError::AlreadyExists);
        }
        let status = InvoiceStatus {
            payment_hash: hash,
            state: InvoiceState::Open,
            amount_msat: request.amount_msat,
            amount_paid_msat: 0,
            htlc_expiry_height: None,
            created_at: 0,
            expiry: request.expiry,
        };
        let (tx, _) = watch::channel(status);
        inner.invoices.insert(hash, Invoice { status: tx, hold });
        Ok(CreatedInvoice {
            payment_hash: hash,
            // Not a valid BOLT11: this double is for lifecycle tests, not for wallets.
            payment_request: format!("lnbcrt1recording{}", hex::encode(hash.0)),
        })
    }
}

#[async_trait::async_trait]
impl Node for RecordingNode {
    async fn info(&self) -> Result<NodeInfo, NodeError> {
        let inner = self.lock();
        if inner.unavailable {
            return Err(NodeError::Unavailable(
                "RecordingNode set unavailable".into(),
            ));
        }
        Ok(NodeInfo {
            pubkey: "02".repeat(33),
            network: "regtest".into(),
            block_height: inner.block_height,
            hold_expiry_delta: self.hold_expiry_delta,
            synced_to_chain: true,
        })
    }

    async fn create_invoice(
        &self,
        preimage: &Preimage,
        request: &InvoiceRequest,
    ) -> Result<CreatedInvoice, NodeError> {
        let hash = preimage.payment_hash();
        self.add(hash, request, false, Call::CreateInvoice(hash))
    }

    async fn create_hold_invoice(
        &self,
        hash: &PaymentHash,
        request: &InvoiceRequest,
    ) -> Result<CreatedInvoice, NodeError> {
        self.add(*hash, request, true, Call::CreateHold(*hash))
    }

    async fn settle(&self, preimage: &Preimage) -> Result<(), NodeError> {
        let hash = preimage.payment_hash();
        let inner = self.record(Call::Settle(hash))?;
        let invoice = inner.invoices.get(&hash).ok_or(NodeError::NotFound)?;
        let state = invoice.status.borrow().state;
        match state {
            InvoiceState::Open => Err(NodeError::StillOpen),
            InvoiceState::Canceled => Err(NodeError::AlreadyCanceled),
            InvoiceState::Settled => Ok(()),
            InvoiceState::Accepted => {
                invoice
                    .status
                    .send_modify(|s| s.state = InvoiceState::Settled);
                Ok(())
            }
        }
    }

    async fn cancel(&self, hash: &PaymentHash) -> Result<(), NodeError> {
        let inner = self.record(Call::Cancel(*hash))?;
        let invoice = inner.invoices.get(hash).ok_or(NodeError::NotFound)?;
        let state = invoice.status.borrow().state;
        match state {
            InvoiceState::Settled => Err(NodeError::AlreadySettled),
            InvoiceState::Canceled => Ok(()),
            InvoiceState::Open | InvoiceState::Accepted => {
                invoice
                    .status
                    .send_modify(|s| s.state = InvoiceState::Canceled);
                Ok(())
            }
        }
    }

    async fn lookup(&self, hash: &PaymentHash) -> Result<InvoiceStatus, NodeError> {
        let inner = self.record(Call::Lookup(*hash))?;
        let invoice = inner.invoices.get(hash).ok_or(NodeError::NotFound)?;
        Ok(invoice.status.borrow().clone())
    }

    async fn subscribe(&self, hash: &PaymentHash) -> Result<InvoiceUpdates, NodeError> {
        let inner = self.record(Call::Subscribe(*hash))?;
        let invoice = inner.invoices.get(hash).ok_or(NodeError::NotFound)?;
        let mut rx = invoice.status.subscribe();
        let mut dropped = self.drop_streams.subscribe();
        drop(inner);
        let first = rx.borrow_and_update().clone();
        let rest = futures_util::stream::unfold(
            (rx, first.state, dropped.resubscribe()),
            |(mut rx, last, mut dropped)| async move {
                if matches!(last, InvoiceState::Settled | InvoiceState::Canceled) {
                    return None;
                }
                tokio::select! {
                    changed = rx.changed() => {
                        changed.ok()?;
                        let status = rx.borrow_and_update().clone();
                        let state = status.state;
                        Some((Ok(status), (rx, state, dropped)))
                    }
                    _ = dropped.recv() => None,
                }
            },
        );
        // Drop the initial receiver of the kill signal only after the stream holds its own.
        let _ = dropped.try_recv();
        let stream = futures_util::stream::once(async move { Ok(first) }).chain(rest);
        Ok(Box::pin(stream))
    }

    async fn pay(&self, _bolt11: &str, _max_fee_msat: u64) -> Result<PaymentOutcome, NodeError> {
        Err(NodeError::Rejected(
            "RecordingNode does not pay invoices".into(),
        ))
    }

    async fn track_payment(&self, _hash: &PaymentHash) -> Result<PaymentOutcome, NodeError> {
        Err(NodeError::NotFound)
    }
}

/// How long tests wait for something asynchronous before failing.
pub const PATIENCE: Duration = Duration::from_secs(10);
