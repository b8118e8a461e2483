//! `cln`: Core Lightning with the hold plugin (github.com/BoltzExchange/hold), both over gRPC
//! with mutual TLS. Hold invoices, their states and the `Track` stream come from the plugin's
//! `hold.Hold` service; node info, normal invoices and reward payouts from CLN's own `cln.Node`
//! (the grpc plugin). It must never log the client key and never pay an invoice twice.
//!
//! The plugin never expires an unpaid hold invoice (it would accept a payment long after the
//! BOLT11 expiry), so this backend cancels an OPEN hold invoice itself once it is past its
//! expiry, the first time it looks at it after that: the node contract promises lnd's
//! behaviour (docs/node-backends.md).

mod connect;
mod proto;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tonic::transport::Channel;

use super::{
    CreatedInvoice, InvoiceRequest, InvoiceState, InvoiceStatus, InvoiceUpdates, Node, NodeError,
    NodeInfo, PaymentOutcome, is_news,
};
use crate::ids::{PaymentHash, Preimage};
use connect::channel;
pub use connect::{ClnConfig, ClnConnectError, GrpcEndpoint};
use proto::cln::node_client::NodeClient;
use proto::hold::hold_client::HoldClient;
use proto::{cln, hold};

/// The cln backend. Cheap to clone.
#[derive(Clone)]
pub struct ClnNode {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClnConfig,
    node: NodeClient<Channel>,
    hold: HoldClient<Channel>,
}

impl std::fmt::Debug for ClnNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClnNode")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Where an invoice lives: the hold plugin's database or CLN's own invoices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Hold,
    Normal,
}

impl ClnNode {
    /// Reads the certificates, asks both services (getinfo, the plugin's GetInfo), refuses a node
    /// on another network.
    pub async fn connect(config: ClnConfig) -> Result<Self, ClnConnectError> {
        let node = NodeClient::new(channel("cln", &config.node, config.timeout)?);
        let hold = HoldClient::new(channel("hold", &config.hold, config.timeout)?);
        let this = Self {
            inner: Arc::new(Inner { config, node, hold }),
        };
        let config = &this.inner.config;
        let version = this
            .unary(
                "hold",
                this.inner.hold.clone().get_info(hold::GetInfoRequest {}),
            )
            .await
            .map_err(|source| ClnConnectError::Unreachable {
                service: "the hold plugin",
                url: config.hold.url.clone(),
                source,
            })?
            .version;
        let info = this
            .info()
            .await
            .map_err(|source| ClnConnectError::Unreachable {
                service: "Core Lightning",
                url: config.node.url.clone(),
                source,
            })?;
        if info.network != config.network {
            return Err(ClnConnectError::NetworkMismatch {
                url: config.node.url.clone(),
                expected: config.network.clone(),
                actual: info.network,
            });
        }
        if !info.synced_to_chain {
            tracing::warn!(url = %config.node.url, "Core Lightning is not synced to chain yet; block heights may lag");
        }
        tracing::info!(
            url = %config.node.url,
            hold_url = %config.hold.url,
            hold_version = %version,
            pubkey = %info.pubkey,
            network = %info.network,
            block_height = info.block_height,
            "connected to Core Lightning and its hold plugin"
        );
        Ok(this)
    }

    /// A unary call bounded by the configured timeout.
    async fn unary<T>(
        &self,
        service: &str,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, NodeError> {
        match tokio::time::timeout(self.inner.config.timeout, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(wire::status_error(service, &status)),
            Err(_) => Err(NodeError::Unavailable(format!("{service}: timed out"))),
        }
    }

    async fn hold_invoice(&self, hash: &PaymentHash) -> Result<Option<hold::Invoice>, NodeError> {
        let request = hold::ListRequest {
            constraint: Some(hold::list_request::Constraint::PaymentHash(hash.0.to_vec())),
        };
        let answer = self
            .unary("hold", self.inner.hold.clone().list(request))
            .await?;
        Ok(answer
            .invoices
            .into_iter()
            .find(|i| i.payment_hash == hash.0))
    }

    async fn cln_invoice(
        &self,
        hash: &PaymentHash,
    ) -> Result<Option<cln::ListinvoicesInvoices>, NodeError> {
        let request = cln::ListinvoicesRequest {
            payment_hash: Some(hash.0.to_vec()),
            ..Default::default()
        };
        let answer = self
            .unary("cln", self.inner.node.clone().list_invoices(request))
            .await?;
        Ok(answer
            .invoices
            .into_iter()
            .find(|i| i.payment_hash == hash.0))
    }

    /// The invoice wherever it lives. An OPEN hold invoice past its BOLT11 expiry is cancelled
    /// here (the plugin does not expire invoices) and reported as such.
    async fn find(&self, hash: &PaymentHash) -> Result<Option<(Kind, InvoiceStatus)>, NodeError> {
        if let Some(invoice) = self.hold_invoice(hash).await? {
            let status = wire::hold_invoice_status(&invoice)?;
            if wire::hold_invoice_expired(&status, self.inner.config.clock.now()) {
                return self.expire(hash).await.map(|s| Some((Kind::Hold, s)));
            }
            return Ok(Some((Kind::Hold, status)));
        }
        match self.cln_invoice(hash).await? {
            Some(invoice) => Ok(Some((Kind::Normal, wire::cln_invoice_status(&invoice)?))),
            None => Ok(None),
        }
    }

    /// Cancels an expired unpaid hold invoice and answers its state afterwards: CANCELED, or
    /// ACCEPTED if a payment won the race (the deposit lifecycle then refunds it as a late payment).
    async fn expire(&self, hash: &PaymentHash) -> Result<InvoiceStatus, NodeError> {
        let cancelled = self
            .unary(
                "hold",
                self.inner.hold.clone().cancel(hold::CancelRequest {
                    payment_hash: hash.0.to_vec(),
                }),
            )
            .await;
        if let Err(e) = &cancelled {
            tracing::warn!(payment_hash = %hex::encode(hash.0), error = %e, "hold: cancelling an expired unpaid invoice failed");
        }
        let invoice = self.hold_invoice(hash).await?.ok_or(NodeError::NotFound)?;
        wire::hold_invoice_status(&invoice)
    }

    /// The private channels to hint in a new invoice: none unless `private` is set.
    async fn private_channels(&self) -> Result<Vec<wire::PrivateChannel>, NodeError> {
        if !self.inner.config.private {
            return Ok(Vec::new());
        }
        let answer = self
            .unary(
                "cln",
                self.inner
                    .node
                    .clone()
                    .list_peer_channels(cln::ListpeerchannelsRequest::default()),
            )
            .await?;
        Ok(wire::private_channels(&answer.channels))
    }

    /// One Track stream: the plugin sends the current state first (nothing at all for an unknown
    /// hash), then each change, and ends after sending a final one.
    async fn track(
        &self,
        hash: &PaymentHash,
    ) -> Result<tonic::Streaming<hold::TrackResponse>, NodeError> {
        self.unary(
            "hold",
            self.inner.hold.clone().track(hold::TrackRequest {
                payment_hash: hash.0.to_vec(),
            }),
        )
        .await
    }
}

/// How long until an OPEN invoice's BOLT11 expiry (when this backend cancels it), capped at
/// `recheck`.
fn quiet_period(status: &InvoiceStatus, now: Duration, recheck: Duration) -> Duration {
    if status.state != InvoiceState::Open {
        return recheck;
    }
    let expires_at = Duration::from_secs(status.created_at.saturating_add(status.expiry.as_secs()));
    expires_at
        .saturating_sub(now)
        .saturating_add(Duration::from_millis(100))
        .min(recheck)
}

#[async_trait::async_trait]
impl Node for ClnNode {
    async fn info(&self) -> Result<NodeInfo, NodeError> {
        let info = self
            .unary(
                "cln",
                self.inner.node.clone().getinfo(cln::GetinfoRequest {}),
            )
            .await?;
        Ok(NodeInfo {
            pubkey: hex::encode(&info.id),
            network: wire::network_name(&info.network),
            block_height: info.blockheight,
            hold_expiry_delta: self.inner.config.hold_expiry_delta,
            synced_to_chain: info.warning_bitcoind_sync.is_none()
                && info.warning_lightningd_sync.is_none(),
        })
    }

    async fn create_invoice(
        &self,
        preimage: &Preimage,
        request: &InvoiceRequest,
    ) -> Result<CreatedInvoice, NodeError> {
        let hash = preimage.payment_hash();
        // CLN does not know the plugin's hashes (nor the plugin CLN's): refuse a reused hash here.
        if self.find(&hash).await?.is_some() {
            return Err(NodeError::AlreadyExists);
        }
        // An empty list is CLN's default (private channels only when it has no public one).
        let exposeprivatechannels = self
            .private_channels()
            .await?
            .into_iter()
            .map(|c| c.short_channel_id)
            .collect();
        let body = cln::InvoiceRequest {
            description: request.memo.clone(),
            exposeprivatechannels,
            label: wire::invoice_label(&hash),
            preimage: Some(preimage.0.to_vec()),
            cltv: request.cltv_expiry,
            expiry: Some(request.expiry.as_secs()),
            amount_msat: Some(cln::AmountOrAny {
                value: Some(cln::amount_or_any::Value::Amount(cln::Amount {
                    msat: request.amount_msat,
                })),
            }),
            ..Default::default()
        };
        let answer = match tokio::time::timeout(
            self.inner.config.timeout,
            self.inner.node.clone().invoice(body),
        )
        .await
        {
            Ok(Ok(answer)) => answer.into_inner(),
            // A channel closed or went offline between listing and invoicing: a retry lists again.
            Ok(Err(status)) if wire::is_hints_gave_no_routes(&status) => {
                return Err(NodeError::Unavailable(format!("cln: {}", status.message())));
            }
            Ok(Err(status)) => return Err(wire::status_error("cln", &status)),
            Err(_) => return Err(NodeError::Unavailable("cln: timed out".to_owned())),
        };
        // CLN derives the hash from our preimage; anything else means the invoice is not ours.
        if answer.payment_hash != hash.0 {
            return Err(NodeError::Rejected(
                "cln answered invoice with another payment hash".to_owned(),
            ));
        }
        Ok(CreatedInvoice {
            payment_hash: hash,
            payment_request: answer.bolt11,
        })
    }

    async fn create_hold_invoice(
        &self,
        hash: &PaymentHash,
        request: &InvoiceRequest,
    ) -> Result<CreatedInvoice, NodeError> {
        if self.find(hash).await?.is_some() {
            return Err(NodeError::AlreadyExists);
        }
        let body = hold::InvoiceRequest {
            payment_hash: hash.0.to_vec(),
            amount_msat: request.amount_msat,
            description: Some(hold::invoice_request::Description::Memo(
                request.memo.clone(),
            )),
            expiry: Some(request.expiry.as_secs()),
            min_final_cltv_expiry: request.cltv_expiry.map(u64::from),
            routing_hints: wire::hold_routing_hints(&self.private_channels().await?),
        };
        let answer = match tokio::time::timeout(
            self.inner.config.timeout,
            self.inner.hold.clone().invoice(body),
        )
        .await
        {
            Ok(Ok(answer)) => answer.into_inner(),
            Ok(Err(status)) if wire::is_duplicate_hash(&status) => {
                return Err(NodeError::AlreadyExists);
            }
            Ok(Err(status)) => return Err(wire::status_error("hold", &status)),
            Err(_) => return Err(NodeError::Unavailable("hold: timed out".to_owned())),
        };
        Ok(CreatedInvoice {
            payment_hash: *hash,
            payment_request: answer.bolt11,
        })
    }

    async fn settle(&self, preimage: &Preimage) -> Result<(), NodeError> {
        let hash = preimage.payment_hash();
        let settled = self
            .unary(
                "hold",
                self.inner.hold.clone().settle(hold::SettleRequest {
                    payment_preimage: preimage.0.to_vec(),
                }),
            )
            .await;
        let refusal = match settled {
            Ok(_) => return Ok(()),
            Err(e @ NodeError::Unavailable(_)) => return Err(e),
            Err(e) => e,
        };
        // The plugin says "no HTLCs to settle" for OPEN and CANCELLED alike: the state tells.
        match self.hold_invoice(&hash).await? {
            None => Err(NodeError::NotFound),
            Some(invoice) => match wire::hold_invoice_status(&invoice)?.state {
                InvoiceState::Settled => Ok(()),
                InvoiceState::Open => Err(NodeError::StillOpen),
                InvoiceState::Canceled => Err(NodeError::AlreadyCanceled),
                // Accepted but no HTLC in the plugin's memory: CLN restarted and has not
                // replayed the held HTLCs to the plugin yet. Retry later.
                InvoiceState::Accepted => Err(NodeError::Unavailable(format!(
                    "hold: the held HTLCs are not back yet after a restart ({refusal})"
                ))),
            },
        }
    }

    async fn cancel(&self, hash: &PaymentHash) -> Result<(), NodeError> {
        let cancelled = self
            .unary(
                "hold",
                self.inner.hold.clone().cancel(hold::CancelRequest {
                    payment_hash: hash.0.to_vec(),
                }),
            )
            .await;
        let refusal = match cancelled {
            Ok(_) => return Ok(()),
            Err(e @ NodeError::Unavailable(_)) => return Err(e),
            Err(e) => e,
        };
        match self.hold_invoice(hash).await? {
            None if self.cln_invoice(hash).await?.is_some() => Err(NodeError::Rejected(
                "cln: a normal invoice cannot be cancelled (only hold invoices)".to_owned(),
            )),
            None => Err(NodeError::NotFound),
            Some(invoice) => match wire::hold_invoice_status(&invoice)?.state {
                InvoiceState::Settled => Err(NodeError::AlreadySettled),
                InvoiceState::Canceled => Ok(()),
                InvoiceState::Open | InvoiceState::Accepted => Err(refusal),
            },
        }
    }

    async fn lookup(&self, hash: &PaymentHash) -> Result<InvoiceStatus, NodeError> {
        self.find(hash)
            .await?
            .map(|(_, status)| status)
            .ok_or(NodeError::NotFound)
    }

    async fn subscribe(&self, hash: &PaymentHash) -> Result<InvoiceUpdates, NodeError> {
        // The Track stream stays silent for an unknown hash: look up first, so the caller learns
        // NotFound and gets the current state first.
        let (kind, first) = self.find(hash).await?.ok_or(NodeError::NotFound)?;
        let node = self.clone();
        let hash = *hash;
        Ok(Box::pin(async_stream::stream! {
            let config = &node.inner.config;
            let mut last = first.clone();
            yield Ok(first);
            if last.state.is_final() {
                return;
            }
            let mut backoff = config.reconnect_min;
            loop {
                // Normal invoices have no stream: polling them is all there is.
                let stream = match kind {
                    Kind::Hold => match node.track(&hash).await {
                        Ok(stream) => Some(stream),
                        Err(e) => {
                            tracing::warn!(payment_hash = %hex::encode(hash.0), error = %e, retry_in = ?backoff, "hold: cannot open the Track stream");
                            None
                        }
                    },
                    Kind::Normal => None,
                };
                if let Some(mut stream) = stream {
                    loop {
                        let quiet = quiet_period(&last, config.clock.now(), config.stream_recheck);
                        let woke = tokio::select! {
                            message = stream.next() => match message {
                                Some(Ok(_)) => {
                                    backoff = config.reconnect_min;
                                    true
                                }
                                Some(Err(status)) => {
                                    tracing::warn!(payment_hash = %hex::encode(hash.0), error = %status.message(), "hold: Track stream broke; reconnecting");
                                    false
                                }
                                None => false,
                            },
                            // A quiet stream may be a dead one, or an unpaid invoice expiring.
                            () = tokio::time::sleep(quiet) => true,
                        };
                        // Track carries the state only; the lookup brings amounts and expiry.
                        match node.find(&hash).await {
                            Ok(Some((_, status))) => {
                                if is_news(&status, &last) {
                                    last = status.clone();
                                    yield Ok(status);
                                }
                                if last.state.is_final() {
                                    return;
                                }
                            }
                            Ok(None) => {
                                yield Err(NodeError::NotFound);
                                return;
                            }
                            Err(_) => break,
                        }
                        if !woke {
                            break;
                        }
                    }
                    // A stream that keeps ending at once (a plugin failing every Track) must not
                    // become a busy loop of calls.
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(config.reconnect_max);
                } else {
                    let wait = match kind {
                        Kind::Hold => backoff,
                        Kind::Normal => quiet_period(&last, config.clock.now(), config.stream_recheck),
                    };
                    tokio::time::sleep(wait).await;
                    if kind == Kind::Hold {
                        backoff = (backoff * 2).min(config.reconnect_max);
                    }
                    match node.find(&hash).await {
                        Ok(Some((_, status))) => {
                            if is_news(&status, &last) {
                                last = status.clone();
                                yield Ok(status);
                            }
                            if last.state.is_final() {
                                return;
                            }
                        }
                        Ok(None) => {
                            yield Err(NodeError::NotFound);
                            return;
                        }
                        Err(_) => {}
                    }
                }
            }
        }))
    }

    async fn pay(&self, bolt11: &str, max_fee_msat: u64) -> Result<PaymentOutcome, NodeError> {
        let hash = wire::bolt11_hash(bolt11)?;
        let timeout = self.inner.config.payment_timeout;
        let body = cln::XpayRequest {
            invstring: bolt11.trim().to_owned(),
            maxfee: Some(cln::Amount { msat: max_fee_msat }),
            retry_for: Some(u32::try_from(timeout.as_secs().max(1)).unwrap_or(u32::MAX)),
            ..Default::default()
        };
        let answer = tokio::time::timeout(
            timeout + self.inner.config.timeout,
            self.inner.node.clone().xpay(body),
        )
        .await;
        match answer {
            Ok(Ok(answer)) => Ok(wire::xpay_outcome(&answer.into_inner())),
            // The payment may have left: only listpays can say, later.
            Err(_) => Ok(PaymentOutcome::InFlight),
            Ok(Err(status)) => match wire::status_error("cln", &status) {
                NodeError::Unavailable(_) => Ok(PaymentOutcome::InFlight),
                refusal => match self.track_payment(&hash).await {
                    // xpay refuses an invoice that was already paid (code 219): it was.
                    Ok(outcome @ (PaymentOutcome::Succeeded { .. } | PaymentOutcome::InFlight)) => {
                        Ok(outcome)
                    }
                    Ok(PaymentOutcome::Failed { .. }) | Err(NodeError::NotFound) => {
                        Ok(PaymentOutcome::Failed {
                            reason: refusal.to_string(),
                        })
                    }
                    Err(_) => Ok(PaymentOutcome::InFlight),
                },
            },
        }
    }

    async fn track_payment(&self, hash: &PaymentHash) -> Result<PaymentOutcome, NodeError> {
        let request = cln::ListpaysRequest {
            payment_hash: Some(hash.0.to_vec()),
            ..Default::default()
        };
        let answer = self
            .unary("cln", self.inner.node.clone().list_pays(request))
            .await?;
        wire::pays_outcome(&answer.pays).ok_or(NodeError::NotFound)
    }
}

#[cfg(test)]
mod tests;
