//! `lnd`: the production backend, lnd's REST API (grpc-gateway) over TLS pinned to `tls.cert`,
//! authenticated by a macaroon. Streams reconnect with backoff and reconcile by lookup, so a final
//! state is never missed. It must never log the macaroon or send a field lnd does not document.

mod ca_trust;
pub mod channels;
pub mod permissions;
mod pinned_cert;
pub mod wire;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::HeaderValue;
use reqwest::{Method, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use ca_trust::{CaRoots, CaTrustError, system_bundle};
pub use pinned_cert::PinError;

use super::{
    CreatedInvoice, InvoiceRequest, InvoiceStatus, InvoiceUpdates, Node, NodeError, NodeInfo,
    PaymentOutcome, is_news,
};
use crate::ids::{PaymentHash, Preimage};

/// How to reach lnd; the sidecar's YAML `node: {backend: lnd, ...}` maps onto it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LndConfig {
    /// REST endpoint, e.g. `https://127.0.0.1:8080`.
    pub url: String,
    /// How lnd's TLS certificate is trusted.
    pub tls: LndTrust,
    /// A macaroon baked with the recipe of docs/node-backends.md "Macaroon".
    pub macaroon: Macaroon,
    /// The network lnd must be on (`mainnet`, `testnet`, `testnet4`, `signet`, `regtest`,
    /// `simnet`).
    pub network: String,
    /// lnd's `holdexpirydelta` (18 in v0.21, 12 before): not exposed by getinfo.
    pub hold_expiry_delta: u32,
    /// Ask lnd for route hints to its private channels in every invoice (lnd's `private`). A
    /// node whose channels are all private issues invoices nobody can route to without them.
    pub private: bool,
    /// Bound on every unary call.
    pub timeout: Duration,
    /// While a stream is quiet, look the invoice up this often: lnd sends no keepalives and a
    /// stream can die silently behind a proxy.
    pub stream_recheck: Duration,
    /// Reconnect backoff for streams: doubles from `min` up to `max`.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// `timeout_seconds` of SendPaymentV2 (rewards).
    pub payment_timeout: Duration,
}

impl LndConfig {
    /// `macaroon`: a path (`PathBuf`, `&Path`) or a [`Macaroon`].
    pub fn new(
        url: impl Into<String>,
        tls_cert_path: impl Into<PathBuf>,
        macaroon: impl Into<Macaroon>,
        network: impl Into<String>,
    ) -> Self {
        Self {
            url: url.into(),
            tls: LndTrust::Pin(tls_cert_path.into()),
            macaroon: macaroon.into(),
            network: network.into(),
            hold_expiry_delta: 18,
            private: false,
            timeout: Duration::from_secs(10),
            stream_recheck: Duration::from_secs(30),
            reconnect_min: Duration::from_millis(250),
            reconnect_max: Duration::from_secs(30),
            payment_timeout: Duration::from_secs(60),
        }
    }
}

/// How the client trusts lnd's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LndTrust {
    /// lnd's own self-signed `tls.cert` (PEM), pinned byte for byte; re-read when lnd presents
    /// another certificate.
    Pin(PathBuf),
    /// A CA-signed certificate (hosted lnd), verified against these roots for the URL's host.
    Ca(CaRoots),
}

/// Where the macaroon comes from: lnd's file (binary, as `lncli bakemacaroon --save_to` writes
/// it), or its bytes already read (e.g. from an environment variable). Hex text is accepted in
/// both and decoded. `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub enum Macaroon {
    File(PathBuf),
    Value(Vec<u8>),
}

impl std::fmt::Debug for Macaroon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Value(_) => f.write_str("Value(<redacted>)"),
        }
    }
}

impl From<PathBuf> for Macaroon {
    fn from(path: PathBuf) -> Self {
        Self::File(path)
    }
}

impl From<&std::path::Path> for Macaroon {
    fn from(path: &std::path::Path) -> Self {
        Self::File(path.to_path_buf())
    }
}

impl Macaroon {
    /// The macaroon's binary form.
    fn load(&self) -> Result<Vec<u8>, LndConnectError> {
        let raw = match self {
            Self::File(path) => {
                std::fs::read(path).map_err(|source| LndConnectError::Macaroon {
                    path: path.clone(),
                    source,
                })?
            }
            Self::Value(bytes) => bytes.clone(),
        };
        // A binary macaroon starts with a version byte (0x02 for V2), never an ASCII hex digit,
        // so hex text is told apart safely.
        let text = raw.trim_ascii();
        if !text.is_empty()
            && text.iter().all(u8::is_ascii_hexdigit)
            && let Ok(decoded) = hex::decode(text)
        {
            return Ok(decoded);
        }
        if raw.is_empty() {
            return Err(LndConnectError::EmptyMacaroon);
        }
        Ok(raw)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LndConnectError {
    #[error(transparent)]
    Cert(#[from] PinError),
    #[error(transparent)]
    CaTrust(#[from] CaTrustError),
    #[error("reading the lnd macaroon {path}: {source}")]
    Macaroon {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the lnd macaroon is empty")]
    EmptyMacaroon,
    #[error("building the HTTP client for lnd: {0}")]
    Client(String),
    #[error("lnd at {url} did not answer getinfo: {source}")]
    Unreachable { url: String, source: NodeError },
    #[error(
        "lnd at {url} is on {actual}, but node.lnd.network is {expected}: point the sidecar at a \
         {expected} node or change node.lnd.network"
    )]
    NetworkMismatch {
        url: String,
        expected: String,
        actual: String,
    },
}

/// The lnd backend. Cheap to clone.
#[derive(Clone)]
pub struct LndNode {
    inner: Arc<Inner>,
}

struct Inner {
    config: LndConfig,
    base: String,
    client: reqwest::Client,
    /// Hex of the macaroon file, marked sensitive so HTTP debug output hides it.
    macaroon: HeaderValue,
}

impl std::fmt::Debug for LndNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LndNode")
            .field("url", &self.inner.config.url)
            .field("macaroon", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl LndNode {
    /// Reads the cert and macaroon, calls getinfo, refuses a node on another network.
    pub async fn connect(config: LndConfig) -> Result<Self, LndConnectError> {
        let tls = match &config.tls {
            LndTrust::Pin(path) => pinned_cert::client_config(path)?,
            LndTrust::Ca(roots) => ca_trust::client_config(roots)?,
        };
        let macaroon = config.macaroon.load()?;
        let mut macaroon = HeaderValue::from_str(&hex::encode(macaroon))
            .map_err(|e| LndConnectError::Client(e.to_string()))?;
        macaroon.set_sensitive(true);
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| LndConnectError::Client(e.to_string()))?;
        let node = Self {
            inner: Arc::new(Inner {
                base: config.url.trim_end_matches('/').to_owned(),
                config,
                client,
                macaroon,
            }),
        };
        let info = node
            .info()
            .await
            .map_err(|source| LndConnectError::Unreachable {
                url: node.inner.config.url.clone(),
                source,
            })?;
        if info.network != node.inner.config.network {
            return Err(LndConnectError::NetworkMismatch {
                url: node.inner.config.url.clone(),
                expected: node.inner.config.network.clone(),
                actual: info.network,
            });
        }
        if !info.synced_to_chain {
            tracing::warn!(url = %node.inner.config.url, "lnd is not synced to chain yet; block heights may lag");
        }
        tracing::info!(
            url = %node.inner.config.url,
            pubkey = %info.pubkey,
            network = %info.network,
            block_height = info.block_height,
            "connected to lnd"
        );
        Ok(node)
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.inner
            .client
            .request(method, format!("{}{path}", self.inner.base))
            .header("Grpc-Metadata-macaroon", self.inner.macaroon.clone())
    }

    async fn call<T: DeserializeOwned, B: Serialize + Sync>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, NodeError> {
        let mut request = self
            .request(method, path)
            .timeout(self.inner.config.timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        wire::answer(path, status.as_u16(), &bytes)
    }

    /// Opens SubscribeSingleInvoice; the answer is the stream of its NDJSON lines.
    async fn open_subscription(
        &self,
        hash: &PaymentHash,
    ) -> Result<impl futures_core::Stream<Item = Result<InvoiceStatus, NodeError>> + use<>, NodeError>
    {
        let path = format!("/v2/invoices/subscribe/{}", wire::url_bytes(&hash.0));
        // Bound the wait for the response head only; the body is a stream that may stay quiet
        // for as long as the invoice does not change.
        let response = tokio::time::timeout(
            self.inner.config.timeout,
            self.request(Method::GET, &path).send(),
        )
        .await
        .map_err(|_| {
            NodeError::Unavailable("lnd: opening the invoice stream timed out".to_owned())
        })?
        .map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            let bytes = tokio::time::timeout(self.inner.config.timeout, response.bytes())
                .await
                .map_err(|_| {
                    NodeError::Unavailable("lnd: reading an error body timed out".to_owned())
                })?
                .map_err(transport)?;
            return Err(wire::map_error(status.as_u16(), &bytes));
        }
        Ok(ndjson::<wire::Invoice>(response)
            .map(|line| line.and_then(|i| wire::invoice_status(&i))))
    }
}

fn transport(e: reqwest::Error) -> NodeError {
    NodeError::Unavailable(format!("lnd: {e}"))
}

fn expiry_secs(request: &InvoiceRequest) -> String {
    request.expiry.as_secs().to_string()
}

/// An invoice with many HTLCs is a few kB; anything this large is not lnd talking.
const MAX_STREAM_LINE: usize = 4 << 20;

/// Sends a router request (`/v2/router/send`, `/v2/router/track/…`) and streams its payment
/// updates; a refusal before the stream starts is lnd's error.
async fn payment_stream(
    request: RequestBuilder,
) -> Result<impl futures_core::Stream<Item = Result<wire::Payment, NodeError>>, NodeError> {
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    if !status.is_success() {
        let bytes = response.bytes().await.map_err(transport)?;
        return Err(wire::map_error(status.as_u16(), &bytes));
    }
    Ok(ndjson::<wire::Payment>(response))
}

/// Splits a chunked HTTP body into NDJSON lines of `{"result": T}`; an `{"error": …}` line or a
/// broken body ends the stream with an error.
fn ndjson<T: DeserializeOwned + Send + 'static>(
    response: reqwest::Response,
) -> impl futures_core::Stream<Item = Result<T, NodeError>> + Send + use<T> {
    async_stream::stream! {
        let mut body = response.bytes_stream();
        let mut buffer: Vec<u8> = Vec::new();
        loop {
            while let Some(line) = wire::take_line(&mut buffer) {
                match wire::stream_line::<T>(&line) {
                    None => continue,
                    Some(Ok(item)) => yield Ok(item),
                    Some(Err(e)) => {
                        yield Err(e);
                        return;
                    }
                }
            }
            if buffer.len() > MAX_STREAM_LINE {
                yield Err(NodeError::Rejected(format!(
                    "lnd sent a stream line over {MAX_STREAM_LINE} bytes"
                )));
                return;
            }
            match body.next().await {
                Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    yield Err(transport(e));
                    return;
                }
                None => return,
            }
        }
    }
}

#[async_trait::async_trait]
impl Node for LndNode {
    async fn info(&self) -> Result<NodeInfo, NodeError> {
        let info: wire::GetInfo = self.call::<_, ()>(Method::GET, "/v1/getinfo", None).await?;
        Ok(wire::node_info(info, self.inner.config.hold_expiry_delta))
    }

    async fn create_invoice(
        &self,
        preimage: &Preimage,
        request: &InvoiceRequest,
    ) -> Result<CreatedInvoice, NodeError> {
        let hash = preimage.payment_hash();
        let body = wire::AddInvoice {
            memo: &request.memo,
            r_preimage: wire::body_bytes(&preimage.0),
            value_msat: request.amount_msat.to_string(),
            expiry: expiry_secs(request),
            cltv_expiry: request.cltv_expiry.map(|c| c.to_string()),
            private: self.inner.config.private,
        };
        let answer: wire::AddInvoiceAnswer =
            self.call(Method::POST, "/v1/invoices", Some(&body)).await?;
        // lnd derives r_hash from our preimage; anything else means the invoice is not ours.
        if wire::decode_hash(&answer.r_hash) != Some(hash.0) {
            return Err(NodeError::Rejected(
                "lnd answered AddInvoice with another payment hash".to_owned(),
            ));
        }
        Ok(CreatedInvoice {
            payment_hash: hash,
            payment_request: answer.payment_request,
        })
    }

    async fn create_hold_invoice(
        &self,
        hash: &PaymentHash,
        request: &InvoiceRequest,
    ) -> Result<CreatedInvoice, NodeError> {
        let body = wire::AddHoldInvoice {
            memo: &request.memo,
            hash: wire::body_bytes(&hash.0),
            value_msat: request.amount_msat.to_string(),
            expiry: expiry_secs(request),
            cltv_expiry: request.cltv_expiry.map(|c| c.to_string()),
            private: self.inner.config.private,
        };
        let answer: wire::AddHoldInvoiceAnswer = self
            .call(Method::POST, "/v2/invoices/hodl", Some(&body))
            .await?;
        Ok(CreatedInvoice {
            payment_hash: *hash,
            payment_request: answer.payment_request,
        })
    }

    async fn settle(&self, preimage: &Preimage) -> Result<(), NodeError> {
        let body = wire::SettleInvoice {
            preimage: wire::body_bytes(&preimage.0),
        };
        let _: wire::Empty = self
            .call(Method::POST, "/v2/invoices/settle", Some(&body))
            .await?;
        Ok(())
    }

    async fn cancel(&self, hash: &PaymentHash) -> Result<(), NodeError> {
        let body = wire::CancelInvoice {
            payment_hash: wire::body_bytes(&hash.0),
        };
        let _: wire::Empty = self
            .call(Method::POST, "/v2/invoices/cancel", Some(&body))
            .await?;
        Ok(())
    }

    async fn lookup(&self, hash: &PaymentHash) -> Result<InvoiceStatus, NodeError> {
        let path = format!(
            "/v2/invoices/lookup?payment_hash={}",
            wire::url_bytes(&hash.0)
        );
        let invoice: wire::Invoice = self.call::<_, ()>(Method::GET, &path, None).await?;
        wire::invoice_status(&invoice)
    }

    async fn subscribe(&self, hash: &PaymentHash) -> Result<InvoiceUpdates, NodeError> {
        // lnd's stream waits silently for an unknown hash; look up first so the caller learns
        // NotFound, and so the first item is the current state even if the stream is slow.
        let first = self.lookup(hash).await?;
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
                match node.open_subscription(&hash).await {
                    Ok(lines) => {
                        let mut lines = std::pin::pin!(lines);
                        backoff = config.reconnect_min;
                        loop {
                            let next = tokio::select! {
                                line = lines.next() => line,
                                () = tokio::time::sleep(config.stream_recheck) => {
                                    // A quiet stream may be a dead one: check by lookup.
                                    match node.lookup(&hash).await {
                                        Ok(status) => Some(Ok(status)),
                                        Err(NodeError::NotFound) => Some(Err(NodeError::NotFound)),
                                        Err(_) => continue,
                                    }
                                }
                            };
                            match next {
                                Some(Ok(status)) => {
                                    if is_news(&status, &last) {
                                        last = status.clone();
                                        yield Ok(status);
                                    }
                                    if last.state.is_final() {
                                        return;
                                    }
                                }
                                Some(Err(NodeError::NotFound)) => {
                                    yield Err(NodeError::NotFound);
                                    return;
                                }
                                Some(Err(e)) => {
                                    tracing::warn!(payment_hash = %hex::encode(hash.0), error = %e, "lnd: invoice stream broke; reconnecting");
                                    break;
                                }
                                None => {
                                    tracing::warn!(payment_hash = %hex::encode(hash.0), "lnd: invoice stream closed before a final state; reconnecting");
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(payment_hash = %hex::encode(hash.0), error = %e, retry_in = ?backoff, "lnd: cannot open the invoice stream");
                    }
                }
                // Reconcile by lookup: whatever happened while we were not listening.
                match node.lookup(&hash).await {
                    Ok(status) => {
                        if is_news(&status, &last) {
                            last = status.clone();
                            yield Ok(status);
                        }
                        if last.state.is_final() {
                            return;
                        }
                    }
                    Err(NodeError::NotFound) => {
                        yield Err(NodeError::NotFound);
                        return;
                    }
                    Err(_) => {}
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(config.reconnect_max);
            }
        }))
    }

    async fn pay(&self, bolt11: &str, max_fee_msat: u64) -> Result<PaymentOutcome, NodeError> {
        let timeout = self.inner.config.payment_timeout;
        let body = wire::SendPayment {
            payment_request: bolt11,
            timeout_seconds: u32::try_from(timeout.as_secs().max(1)).unwrap_or(u32::MAX),
            fee_limit_msat: max_fee_msat.to_string(),
            no_inflight_updates: true,
        };
        let mut payments = std::pin::pin!(
            payment_stream(
                self.request(Method::POST, "/v2/router/send")
                    .timeout(timeout + self.inner.config.timeout)
                    .json(&body),
            )
            .await?
        );
        while let Some(update) = payments.next().await {
            let payment = match update {
                Ok(payment) => payment,
                // The payment was handed to lnd; only its outcome is unknown.
                Err(NodeError::Unavailable(_)) => return Ok(PaymentOutcome::InFlight),
                Err(e) => return Err(e),
            };
            if let Some(outcome) = wire::payment_outcome(payment) {
                return Ok(outcome);
            }
        }
        Ok(PaymentOutcome::InFlight)
    }

    async fn track_payment(&self, hash: &PaymentHash) -> Result<PaymentOutcome, NodeError> {
        // Without no_inflight_updates lnd sends the current state first, so one line answers.
        let path = format!("/v2/router/track/{}", wire::url_bytes(&hash.0));
        let timeout = self.inner.config.timeout;
        let first = tokio::time::timeout(timeout, async {
            let mut payments =
                std::pin::pin!(payment_stream(self.request(Method::GET, &path)).await?);
            payments.next().await.unwrap_or_else(|| {
                Err(NodeError::Unavailable(
                    "lnd: the payment stream ended before its first message".to_owned(),
                ))
            })
        })
        .await
        .map_err(|_| NodeError::Unavailable("lnd: tracking the payment timed out".to_owned()))??;
        Ok(wire::payment_outcome(first).unwrap_or(PaymentOutcome::InFlight))
    }
}

#[cfg(test)]
mod tests;
