//! The `nwc` backend: a wallet reached over Nostr Wallet Connect (NIP-47), e.g. Alby Hub.
//! Hold invoices are `make_hold_invoice` / `settle_hold_invoice` / `cancel_hold_invoice`; the
//! wallet says a payment is held with the `hold_invoice_accepted` notification, and
//! `lookup_invoice` is asked whenever a notification may have been missed.
//!
//! NIP-47 has no invoice with a caller-chosen preimage, so a normal (pay mode) invoice is a hold
//! invoice that this backend settles with the sidecar's preimage as soon as it is held. It must
//! never settle a hold invoice on its own otherwise: that is a deposit's forfeit.

mod link;
pub mod uri;
mod wire;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hashlink::LruCache;
use tokio::sync::broadcast;

use super::{
    CreatedInvoice, InvoiceRequest, InvoiceState, InvoiceStatus, InvoiceUpdates, Node, NodeError,
    NodeInfo, PaymentOutcome, is_news,
};
use crate::clock::{Clock, SystemClock};
use crate::ids::{PaymentHash, Preimage};
use crate::mutex::lock;
use link::WalletLink;
pub use uri::{ConnectionString, UriError};

/// How the sidecar reaches the wallet.
#[derive(Clone)]
pub struct NwcConfig {
    pub connection: ConnectionString,
    /// The network the wallet's node must be on (`get_info.network`).
    pub network: String,
    /// Blocks before the `settle_deadline` at which the wallet's node cancels a held payment by
    /// itself (lnd's `holdexpirydelta`, 18, under Alby Hub on LND). NIP-47 does not report it.
    pub hold_expiry_delta: u32,
    /// Bound on each request's round trip through the relay (and on connecting).
    pub timeout: Duration,
    /// Bound on a `pay_invoice`; past it the payout is in flight, never paid again.
    pub pay_timeout: Duration,
    /// While no notification arrives, look a subscribed invoice up this often.
    pub stream_recheck: Duration,
    /// Pay reward payouts with `pay_invoice`. NIP-47 cannot cap a payment's routing fee, so this
    /// is off unless the operator accepts that the wallet connection's own budget is the cap.
    pub payouts: bool,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for NwcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NwcConfig")
            .field("connection", &self.connection)
            .field("network", &self.network)
            .field("hold_expiry_delta", &self.hold_expiry_delta)
            .field("payouts", &self.payouts)
            .finish_non_exhaustive()
    }
}

impl NwcConfig {
    pub fn new(connection: ConnectionString, network: impl Into<String>) -> Self {
        Self {
            connection,
            network: network.into(),
            hold_expiry_delta: 18,
            timeout: Duration::from_secs(10),
            pay_timeout: Duration::from_secs(60),
            stream_recheck: Duration::from_secs(30),
            payouts: false,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Most hashes whose `settle_deadline` or (normal invoices) preimage the backend remembers.
const REMEMBERED: usize = 65_536;

#[derive(Clone)]
pub struct NwcNode {
    inner: Arc<Inner>,
}

struct Inner {
    config: NwcConfig,
    link: WalletLink,
    /// `settle_deadline` of held invoices, from their `hold_invoice_accepted` notification
    /// (`lookup_invoice` does not carry it).
    deadlines: Mutex<LruCache<PaymentHash, u32>>,
    /// Preimages of normal invoices, settled as soon as the wallet holds their payment.
    normal: Mutex<LruCache<PaymentHash, Preimage>>,
    /// Every state change the backend learns, for subscribers.
    changes: broadcast::Sender<InvoiceStatus>,
}

fn lru<K: std::hash::Hash + Eq, V>() -> Mutex<LruCache<K, V>> {
    Mutex::new(LruCache::new(REMEMBERED))
}

impl NwcNode {
    /// Connects to the relays, reads the wallet's info event and `get_info`, and refuses a
    /// wallet that lacks a method the backend needs, speaks no NIP-44, or is on another network.
    pub async fn connect(config: NwcConfig) -> Result<Self, NodeError> {
        let c = &config.connection;
        let link =
            WalletLink::connect(&c.secret, &c.wallet_pubkey, &c.relays, config.timeout).await?;
        check_info_event(&link, config.timeout).await?;
        let (changes, _) = broadcast::channel(1024);
        let node = Self {
            inner: Arc::new(Inner {
                deadlines: lru(),
                normal: lru(),
                changes,
                link,
                config,
            }),
        };
        let info = node.get_info().await?;
        let methods: Vec<&str> = info
            .get("methods")
            .and_then(|m| m.as_array())
            .map(|m| m.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let mut needed = wire::REQUIRED_METHODS.to_vec();
        if node.inner.config.payouts {
            needed.push("pay_invoice");
        }
        let missing: Vec<&str> = needed
            .into_iter()
            .filter(|m| !methods.contains(m))
            .collect();
        if !missing.is_empty() {
            return Err(NodeError::Rejected(format!(
                "this wallet connection is not allowed {}: grant them to the app connection in \
                 the wallet (docs/node-backends.md, nwc)",
                missing.join(", ")
            )));
        }
        let network = info.get("network").and_then(|n| n.as_str()).unwrap_or("");
        if network != node.inner.config.network {
            return Err(NodeError::Rejected(format!(
                "the wallet is on {network:?}, node.nwc.network says {:?}",
                node.inner.config.network
            )));
        }
        node.spawn_notification_task();
        Ok(node)
    }

    async fn call(
        &self,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, wire::WireError> {
        self.call_within(method, params, self.inner.config.timeout)
            .await
    }

    async fn call_within(
        &self,
        method: &str,
        params: serde_json::Value,
        timeout: Duration,
    ) -> Result<serde_json::Value, wire::WireError> {
        let response = self
            .inner
            .link
            .call(method, params, timeout)
            .await
            .map_err(|e| wire::WireError {
                code: "UNREACHABLE".into(),
                message: e.to_string(),
            })?;
        wire::result(response, method)
    }

    async fn get_info(&self) -> Result<serde_json::Value, NodeError> {
        self.call("get_info", serde_json::json!({}))
            .await
            .map_err(|e| to_node_error(&e))
    }

    fn now_unix(&self) -> u64 {
        self.inner.config.clock.now().as_secs()
    }

    /// Notifications become state changes; a held normal invoice is settled at once.
    fn spawn_notification_task(&self) {
        let weak = Arc::downgrade(&self.inner);
        let mut notifications = self.inner.link.notifications();
        tokio::spawn(async move {
            loop {
                let notification = match notifications.recv().await {
                    Ok(n) => n,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let Some(inner) = weak.upgrade() else { return };
                let node = NwcNode { inner };
                node.on_notification(notification).await;
            }
        });
    }

    async fn on_notification(&self, notification: wire::Notification) {
        let state = match notification.notification_type.as_str() {
            "hold_invoice_accepted" => "accepted",
            "payment_received" => "settled",
            _ => return,
        };
        let Ok(mut tx) = serde_json::from_value::<wire::Transaction>(notification.notification)
        else {
            tracing::warn!("nwc: a notification that is not a NIP-47 transaction");
            return;
        };
        tx.state = Some(state.to_owned());
        let Some(hash) = wire::parse_hash(&tx.payment_hash) else {
            return;
        };
        if let Some(deadline) = tx.settle_deadline {
            lock(&self.inner.deadlines).insert(hash, deadline);
        }
        match wire::invoice_status(&tx, None, self.now_unix()) {
            Ok(status) => {
                let status = self.settle_if_normal(status).await;
                let _ = self.inner.changes.send(status);
            }
            Err(e) => tracing::warn!(error = %e, "nwc: a notification we cannot read"),
        }
    }

    /// A held normal invoice is settled with its preimage (pay mode); anything else as is.
    async fn settle_if_normal(&self, status: InvoiceStatus) -> InvoiceStatus {
        if status.state != InvoiceState::Accepted {
            return status;
        }
        let Some(preimage) = lock(&self.inner.normal).get(&status.payment_hash).copied() else {
            return status;
        };
        match self.settle(&preimage).await {
            Ok(()) => InvoiceStatus {
                state: InvoiceState::Settled,
                htlc_expiry_height: None,
                ..status
            },
            Err(e) => {
                tracing::warn!(payment_hash = ?status.payment_hash, error = %e, "nwc: settling a paid normal invoice failed; retried at the next lookup");
                status
            }
        }
    }

    async fn lookup_tx(&self, hash: &PaymentHash) -> Result<wire::Transaction, NodeError> {
        let result = self
            .call("lookup_invoice", wire::by_hash(hash))
            .await
            .map_err(|e| to_node_error(&e))?;
        serde_json::from_value(result).map_err(|e| {
            NodeError::Rejected(format!(
                "lookup_invoice answered an unreadable transaction: {e}"
            ))
        })
    }

    /// After our own settle or cancel: tell subscribers without waiting for their recheck.
    async fn announce(&self, hash: &PaymentHash) {
        if let Ok(status) = self.lookup(hash).await {
            let _ = self.inner.changes.send(status);
        }
    }
}

async fn check_info_event(link: &WalletLink, timeout: Duration) -> Result<(), NodeError> {
    let Some(event) = link.info_event(timeout).await? else {
        return Err(NodeError::Unavailable(
            "the wallet has published no NIP-47 info event (kind 13194) on the connection's \
             relays: is the wallet service running and connected to them?"
                .into(),
        ));
    };
    let tag = |name: &str| -> Vec<String> {
        event
            .tags
            .iter()
            .filter(|t| t.kind().to_string() == name)
            .filter_map(|t| t.content())
            .flat_map(|c| c.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .collect()
    };
    // NIP-47 "Encryption": no tag means NIP-04 only, which this backend does not speak.
    if !tag("encryption").iter().any(|e| e == "nip44_v2") {
        return Err(NodeError::Rejected(
            "the wallet does not offer NIP-44 encryption (its info event has no nip44_v2 in its \
             encryption tag); update the wallet service"
                .into(),
        ));
    }
    let offered: Vec<&str> = event.content.split_whitespace().collect();
    let missing: Vec<&str> = wire::REQUIRED_METHODS
        .into_iter()
        .filter(|m| !offered.contains(m))
        .collect();
    if !missing.is_empty() {
        return Err(NodeError::Rejected(format!(
            "the wallet service does not offer {} (hold invoices need a wallet that implements \
             NIP-47's hold invoice methods, e.g. Alby Hub on LND)",
            missing.join(", ")
        )));
    }
    if !tag("notifications")
        .iter()
        .any(|n| n == "hold_invoice_accepted")
    {
        tracing::warn!(
            "nwc: the wallet sends no hold_invoice_accepted notification: held deposits are \
             seen only by lookups every node.nwc.stream_recheck"
        );
    }
    Ok(())
}

fn to_node_error(e: &wire::WireError) -> NodeError {
    if e.code == "UNREACHABLE" {
        return NodeError::Unavailable(e.message.clone());
    }
    wire::node_error(e)
}

#[async_trait::async_trait]
impl Node for NwcNode {
    async fn info(&self) -> Result<NodeInfo, NodeError> {
        let info = self.get_info().await?;
        let text = |k: &str| {
            info.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned()
        };
        let block_height = info
            .get("block_height")
            .and_then(serde_json::Value::as_u64)
            .and_then(|h| u32::try_from(h).ok())
            .ok_or_else(|| NodeError::Rejected("get_info has no block_height".into()))?;
        Ok(NodeInfo {
            pubkey: text("pubkey"),
            network: text("network"),
            block_height,
            hold_expiry_delta: self.inner.config.hold_expiry_delta,
            synced_to_chain: true,
        })
    }

    async fn create_invoice(
        &self,
        preimage: &Preimage,
        request: &InvoiceRequest,
    ) -> Result<CreatedInvoice, NodeError> {
        let hash = preimage.payment_hash();
        // Remembered first: a payment can be held before the wallet's answer reaches us.
        let known = lock(&self.inner.normal).insert(hash, *preimage);
        let created = self.create_hold_invoice(&hash, request).await;
        if created.is_err() && known.is_none() {
            lock(&self.inner.normal).remove(&hash);
        }
        created
    }

    async fn create_hold_invoice(
        &self,
        hash: &PaymentHash,
        request: &InvoiceRequest,
    ) -> Result<CreatedInvoice, NodeError> {
        let result = match self
            .call("make_hold_invoice", wire::make_hold_invoice(hash, request))
            .await
        {
            Ok(result) => result,
            Err(e) => {
                // NIP-47 has no code for "exists": whether the hash is taken, the lookup says.
                return Err(match self.lookup_tx(hash).await {
                    Ok(_) => NodeError::AlreadyExists,
                    Err(_) => to_node_error(&e),
                });
            }
        };
        let invoice = result.get("invoice").and_then(|v| v.as_str()).unwrap_or("");
        let answered = result.get("payment_hash").and_then(|v| v.as_str());
        if invoice.is_empty() || answered.and_then(wire::parse_hash) != Some(*hash) {
            return Err(NodeError::Rejected(
                "make_hold_invoice answered without the invoice for our payment hash".into(),
            ));
        }
        Ok(CreatedInvoice {
            payment_hash: *hash,
            payment_request: invoice.to_owned(),
        })
    }

    async fn settle(&self, preimage: &Preimage) -> Result<(), NodeError> {
        let hash = preimage.payment_hash();
        match self
            .call("settle_hold_invoice", wire::settle_hold_invoice(preimage))
            .await
        {
            Ok(_) => {
                self.announce(&hash).await;
                Ok(())
            }
            Err(e) => match self.lookup(&hash).await?.state {
                InvoiceState::Settled => Ok(()),
                InvoiceState::Canceled => Err(NodeError::AlreadyCanceled),
                InvoiceState::Open => Err(NodeError::StillOpen),
                InvoiceState::Accepted => Err(to_node_error(&e)),
            },
        }
    }

    async fn cancel(&self, hash: &PaymentHash) -> Result<(), NodeError> {
        match self.call("cancel_hold_invoice", wire::by_hash(hash)).await {
            Ok(_) => {
                lock(&self.inner.normal).remove(hash);
                self.announce(hash).await;
                Ok(())
            }
            Err(e) => match self.lookup(hash).await?.state {
                InvoiceState::Canceled => Ok(()),
                InvoiceState::Settled => Err(NodeError::AlreadySettled),
                InvoiceState::Open | InvoiceState::Accepted => Err(to_node_error(&e)),
            },
        }
    }

    async fn lookup(&self, hash: &PaymentHash) -> Result<InvoiceStatus, NodeError> {
        let tx = self.lookup_tx(hash).await?;
        if tx.kind.as_deref() == Some("outgoing") {
            return Err(NodeError::NotFound);
        }
        let deadline = lock(&self.inner.deadlines).get(hash).copied();
        let status = wire::invoice_status(&tx, deadline, self.now_unix())?;
        if status.state.is_final() {
            lock(&self.inner.deadlines).remove(hash);
            lock(&self.inner.normal).remove(hash);
        }
        Ok(self.settle_if_normal(status).await)
    }

    async fn subscribe(&self, hash: &PaymentHash) -> Result<InvoiceUpdates, NodeError> {
        let mut changes = self.inner.changes.subscribe();
        let first = self.lookup(hash).await?;
        let node = self.clone();
        let hash = *hash;
        Ok(Box::pin(async_stream::stream! {
            let mut last = first.clone();
            yield Ok(first);
            while !last.state.is_final() {
                let recheck = node.quiet_period(&last);
                let next = tokio::select! {
                    change = changes.recv() => match change {
                        Ok(status) if status.payment_hash == hash => Some(status),
                        Ok(_) => None,
                        Err(broadcast::error::RecvError::Lagged(_)) => node.lookup(&hash).await.ok(),
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    () = tokio::time::sleep(recheck) => node.lookup(&hash).await.ok(),
                };
                if let Some(next) = next
                    && is_news(&next, &last)
                {
                    last = next.clone();
                    yield Ok(next);
                }
            }
        }))
    }

    async fn pay(&self, bolt11: &str, max_fee_msat: u64) -> Result<PaymentOutcome, NodeError> {
        if !self.inner.config.payouts {
            return Ok(PaymentOutcome::Failed {
                reason: "payouts are off for node.backend nwc: NIP-47 pay_invoice cannot cap \
                         routing fees (set node.nwc.payouts: true to let the wallet \
                         connection's budget be the cap)"
                    .into(),
            });
        }
        match self
            .call_within(
                "pay_invoice",
                wire::pay_invoice(bolt11),
                self.inner.config.pay_timeout,
            )
            .await
        {
            Ok(result) => {
                let preimage_hex = result
                    .get("preimage")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_owned();
                let fee_msat = result
                    .get("fees_paid")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
                if fee_msat > max_fee_msat {
                    tracing::warn!(
                        fee_msat,
                        max_fee_msat,
                        "nwc: the wallet paid a payout with more routing fee than the budget (NIP-47 cannot cap it)"
                    );
                }
                Ok(PaymentOutcome::Succeeded {
                    preimage_hex,
                    fee_msat,
                })
            }
            // No answer: the wallet may still be paying. Never pay again; track it.
            Err(e) if e.code == "UNREACHABLE" => Ok(PaymentOutcome::InFlight),
            Err(e)
                if matches!(
                    e.code.as_str(),
                    "PAYMENT_FAILED"
                        | "INSUFFICIENT_BALANCE"
                        | "QUOTA_EXCEEDED"
                        | "RESTRICTED"
                        | "UNAUTHORIZED"
                        | "NOT_IMPLEMENTED"
                ) =>
            {
                Ok(PaymentOutcome::Failed {
                    reason: format!("{}: {}", e.code, e.message),
                })
            }
            Err(_) => Ok(PaymentOutcome::InFlight),
        }
    }

    async fn track_payment(&self, hash: &PaymentHash) -> Result<PaymentOutcome, NodeError> {
        let tx = self.lookup_tx(hash).await?;
        if tx.kind.as_deref() == Some("incoming") {
            return Err(NodeError::NotFound);
        }
        Ok(wire::payment_outcome(&tx))
    }
}

impl NwcNode {
    /// How long to wait for a notification before looking again: `stream_recheck`, or until
    /// just past an unpaid invoice's expiry (it is CANCELED then).
    fn quiet_period(&self, last: &InvoiceStatus) -> Duration {
        let recheck = self.inner.config.stream_recheck;
        if last.state != InvoiceState::Open {
            return recheck;
        }
        let expires = Duration::from_secs(last.created_at).saturating_add(last.expiry);
        let until = expires.saturating_sub(self.inner.config.clock.now());
        recheck.min(until.saturating_add(Duration::from_millis(500)))
    }
}
