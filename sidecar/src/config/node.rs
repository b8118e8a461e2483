//! `node:` — which Lightning node backend, and how to reach it.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{SecretRef, duration};

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NodeBackend {
    /// Embedded development node: real BOLT11, fake money. Never for production.
    Dev,
    Lnd,
    /// Core Lightning with the hold plugin, both over gRPC (docs/node-backends.md).
    Cln,
    /// A wallet over Nostr Wallet Connect (NIP-47) with hold invoices, e.g. Alby Hub.
    Nwc,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub backend: NodeBackend,
    /// Required when `backend: lnd`.
    #[serde(default)]
    pub lnd: Option<LndConfig>,
    /// Options of the development node.
    #[serde(default)]
    pub dev: Option<DevNodeConfig>,
    /// Required when `backend: cln`.
    #[serde(default)]
    pub cln: Option<ClnConfig>,
    /// Required when `backend: nwc`.
    #[serde(default)]
    pub nwc: Option<NwcConfig>,
}

/// A wallet reached over Nostr Wallet Connect (docs/node-backends.md, `nwc`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NwcConfig {
    /// `nostr+walletconnect://<wallet pubkey>?relay=wss://…&secret=<hex>`, from a file or an
    /// environment variable: it holds the key the wallet obeys.
    pub connection: SecretRef,
    /// Refuse to start when the wallet reports another network (`get_info.network`).
    pub network: String,
    /// Blocks before the `settle_deadline` at which the wallet's node cancels a held payment
    /// itself (18: lnd's `holdexpirydelta`, under Alby Hub on LND).
    #[serde(default = "default_nwc_hold_expiry_delta")]
    pub hold_expiry_delta: u32,
    /// Pay reward payouts through the wallet (`pay_invoice`). NIP-47 cannot cap a payment's
    /// routing fee, so only the wallet connection's budget bounds it: off by default.
    #[serde(default)]
    pub payouts: bool,
}

fn default_nwc_hold_expiry_delta() -> u32 {
    18
}

/// Core Lightning: its grpc plugin for node info, normal invoices and payouts, the hold plugin
/// for hold invoices.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClnConfig {
    /// CLN's grpc plugin (`grpc-port`), with the certificates it wrote into
    /// `<lightning-dir>/<network>/`.
    pub grpc: ClnGrpcConfig,
    /// The hold plugin (`hold-grpc-port`, 9292 by default), with the certificates it wrote into
    /// `<lightning-dir>/<network>/hold/`.
    pub hold: ClnGrpcConfig,
    /// Refuse to start when CLN reports another network (CLN's `bitcoin` is `mainnet` here).
    pub network: String,
    /// The hold plugin's `hold-expiry-deadline` (3 by default).
    #[serde(default = "default_cln_hold_expiry_delta")]
    pub hold_expiry_delta: u32,
    /// Route hints to CLN's private channels in every invoice (as lnd's `private`): needed when
    /// CLN has only private channels, or nobody can pay its hold invoices.
    #[serde(default)]
    pub private: bool,
}

fn default_cln_hold_expiry_delta() -> u32 {
    3
}

/// One gRPC service with mutual TLS.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClnGrpcConfig {
    /// `https://host:port`.
    pub url: String,
    /// `ca.pem`: the CA that signed the server's certificate.
    pub ca_cert_file: PathBuf,
    /// `client.pem`.
    pub client_cert_file: PathBuf,
    /// `client-key.pem`, from a file or an environment variable.
    pub client_key: SecretRef,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LndConfig {
    /// `https://host:8080`: lnd's REST listener.
    pub rest_url: String,
    /// lnd's own self-signed `tls.cert`, pinned byte for byte. Set this or `tls_ca`.
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// Instead of a pin, for a CA-signed certificate that renews (hosted lnd): `system` (the
    /// system's CA store) or the path of a PEM CA bundle. The certificate must name the host of
    /// `rest_url`.
    #[serde(default)]
    pub tls_ca: Option<String>,
    /// The macaroon (binary file or hex in an env var) with `invoices:read invoices:write
    /// info:read`.
    pub macaroon: SecretRef,
    /// Refuse to start when lnd reports another network.
    pub network: String,
    /// lnd's `holdexpirydelta` (18 in v0.21, 12 before); getinfo does not report it.
    #[serde(default = "default_hold_expiry_delta")]
    pub hold_expiry_delta: u32,
    /// Route hints to lnd's private channels in every invoice (lnd's `private`): needed when
    /// lnd has only private channels, or nobody can pay its invoices.
    #[serde(default)]
    pub private: bool,
}

fn default_hold_expiry_delta() -> u32 {
    18
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DevNodeConfig {
    /// Simulated block interval of the development node's chain.
    #[serde(default, with = "duration::option")]
    pub block_interval: Option<Duration>,
}

impl LndConfig {
    /// How lnd's certificate is trusted: pinned `tls.cert`, or CA roots (validation ensures
    /// exactly one is set; a pin when neither is, which validation refuses).
    pub fn trust(&self) -> crate::node::lnd::LndTrust {
        use crate::node::lnd::{CaRoots, LndTrust};
        match (&self.tls_ca, &self.tls_cert_file) {
            (Some(ca), _) if ca == "system" => LndTrust::Ca(CaRoots::System),
            (Some(ca), _) => LndTrust::Ca(CaRoots::File(PathBuf::from(ca))),
            (None, cert) => LndTrust::Pin(cert.clone().unwrap_or_default()),
        }
    }
}
