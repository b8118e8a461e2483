//! How the cln backend reaches its two gRPC services: the endpoints and timeouts it is
//! configured with, the errors of connecting, and the mutual-TLS channel. The client key is read
//! once into memory and must never be printed (`Debug` redacts it).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::clock::{Clock, SystemClock};
use crate::node::NodeError;

/// One gRPC server with mutual TLS, as CLN's grpc plugin and the hold plugin set them up: a CA
/// (`ca.pem`), a client certificate it signed (`client.pem`) and the client's key
/// (`client-key.pem`).
#[derive(Clone, PartialEq, Eq)]
pub struct GrpcEndpoint {
    /// `https://host:port`.
    pub url: String,
    pub ca_cert: PathBuf,
    pub client_cert: PathBuf,
    /// The client key (PEM), already read from its secret reference. Never printed.
    pub client_key: Vec<u8>,
    /// The name the server certificate is checked against: the plugins issue theirs for `cln`
    /// (grpc plugin) and `hold` (hold plugin), whatever address they listen on.
    pub tls_name: String,
}

impl std::fmt::Debug for GrpcEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcEndpoint")
            .field("url", &self.url)
            .field("ca_cert", &self.ca_cert)
            .field("client_cert", &self.client_cert)
            .field("client_key", &"<redacted>")
            .field("tls_name", &self.tls_name)
            .finish()
    }
}

/// How to reach Core Lightning; the sidecar's YAML `node: {backend: cln, ...}` maps onto it.
#[derive(Clone)]
pub struct ClnConfig {
    /// CLN's grpc plugin (`grpc-port`).
    pub node: GrpcEndpoint,
    /// The hold plugin (`hold-grpc-port`, 9292 by default).
    pub hold: GrpcEndpoint,
    /// The network CLN must be on (`mainnet`, `testnet`, `testnet4`, `signet`, `regtest`).
    pub network: String,
    /// The plugin's `hold-expiry-deadline` (3 by default): it cancels a held invoice once the
    /// chain is this many blocks from the lowest HTLC expiry.
    pub hold_expiry_delta: u32,
    /// Bound on every unary call and on connecting.
    pub timeout: Duration,
    /// While a Track stream is quiet, look the invoice up this often (a stream can die silently
    /// behind a proxy), and poll normal invoices, which have no stream.
    pub stream_recheck: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// `retry_for` of xpay (rewards).
    pub payment_timeout: Duration,
    /// Route hints to the node's private channels in every invoice (the meaning of lnd's
    /// `private`): a node whose channels are all private issues hold invoices nobody can route
    /// to without them.
    pub private: bool,
    /// Where "now" comes from for the expiry of unpaid hold invoices.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ClnConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClnConfig")
            .field("node", &self.node)
            .field("hold", &self.hold)
            .field("network", &self.network)
            .field("hold_expiry_delta", &self.hold_expiry_delta)
            .field("private", &self.private)
            .finish_non_exhaustive()
    }
}

impl ClnConfig {
    pub fn new(node: GrpcEndpoint, hold: GrpcEndpoint, network: impl Into<String>) -> Self {
        Self {
            node,
            hold,
            network: network.into(),
            hold_expiry_delta: 3,
            timeout: Duration::from_secs(10),
            stream_recheck: Duration::from_secs(30),
            reconnect_min: Duration::from_millis(250),
            reconnect_max: Duration::from_secs(30),
            payment_timeout: Duration::from_secs(60),
            private: false,
            clock: Arc::new(SystemClock),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClnConnectError {
    #[error("reading {what} {path}: {source}")]
    File {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{service} at {url}: {message}")]
    Endpoint {
        service: &'static str,
        url: String,
        message: String,
    },
    #[error("{service} at {url} did not answer: {source}")]
    Unreachable {
        service: &'static str,
        url: String,
        source: NodeError,
    },
    #[error(
        "Core Lightning at {url} is on {actual}, but node.cln.network is {expected}: point the \
         sidecar at a {expected} node or change node.cln.network"
    )]
    NetworkMismatch {
        url: String,
        expected: String,
        actual: String,
    },
}

fn read(what: &'static str, path: &std::path::Path) -> Result<Vec<u8>, ClnConnectError> {
    std::fs::read(path).map_err(|source| ClnConnectError::File {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// A lazily connecting channel with mutual TLS; HTTP/2 keepalives find a dead connection (and so
/// a dead Track stream) within `2 * timeout` even when nothing is sent.
pub(super) fn channel(
    service: &'static str,
    e: &GrpcEndpoint,
    timeout: Duration,
) -> Result<Channel, ClnConnectError> {
    let bad = |message: String| ClnConnectError::Endpoint {
        service,
        url: e.url.clone(),
        message,
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(
            "the CA certificate",
            &e.ca_cert,
        )?))
        .identity(Identity::from_pem(
            read("the client certificate", &e.client_cert)?,
            &e.client_key,
        ))
        .domain_name(e.tls_name.clone());
    let endpoint = Endpoint::from_shared(e.url.clone())
        .map_err(|err| bad(format!("not a URL: {err}")))?
        .tls_config(tls)
        .map_err(|err| bad(format!("TLS setup: {err}")))?
        .connect_timeout(timeout)
        .http2_keep_alive_interval(timeout)
        .keep_alive_timeout(timeout)
        .keep_alive_while_idle(true);
    Ok(endpoint.connect_lazy())
}
