//! **FakeCln — a test double of Core Lightning with the hold plugin**, for lightning-wall's tests
//! only. It is not a Lightning node: no real channels (only pretend ones a test sets), no chain, no money. It serves the two gRPC
//! services the `cln` backend talks to, generated from the same vendored protos
//! (`sidecar/proto/`), each with mutual TLS like the real plugins:
//!
//! - `hold.Hold` (github.com/BoltzExchange/hold at 14c3568d): Invoice, List, Settle, Cancel,
//!   Track, GetInfo, with the plugin's state rules, its error texts (`could not settle invoice:
//!   no HTLCs to settle`, `state paid is final`, the database's unique-constraint text for a
//!   reused hash), its Track behaviour (current state first, nothing for an unknown hash, ends
//!   after a final change, never ends when it starts final), its HTLC checks (state, CLTV,
//!   overpayment) and `hold-expiry-deadline` cancelling, and that it never expires an unpaid
//!   invoice by itself.
//! - `cln.Node` (cln-grpc, ElementsProject/lightning at 090f4b0e): Getinfo, Invoice (label and
//!   preimage uniqueness, codes 900/901), ListInvoices (EXPIRED by time), Xpay (code 219 for an
//!   already paid invoice) and ListPays, with cln-grpc's error rendering; ListPeerChannels with
//!   the channels a test sets (`set_channels`), whose route hints CLN's Invoice puts into its
//!   BOLT11 as lightningd does (`exposeprivatechannels`, code 902 when none of those is usable,
//!   private channels by default only on a node without public ones) and the plugin's Invoice
//!   as given (`routing_hints`, `invalid routing hint` for a bad public key).
//!
//! What it checks: the backend's requests are well-formed protobuf for these exact services, its
//! mutual TLS setup (the server refuses a client without a certificate from the CA), and its
//! handling of every state and error above, including across a restart (state kept, streams cut,
//! held HTLCs still held: CLN replays them to the plugin on start).
//! What it cannot: CLN's choice among several usable hints (by capacity, random or
//! round-robin: FakeCln puts in all of them) and its hints to public channels, the real
//! plugin's database and MPP timeouts, real HTLCs and routing, CLN's
//! JSON-RPC plumbing, `Inject`/`TrackAll`/`Clean`/onion messages (answered `unimplemented`), and
//! whether xpay's payments show in listpays on every CLN version (they do since xpay uses
//! `injectpaymentonion`, which records sendpays; checked against CLN's docs, not a node).

mod services;
mod state;
mod tls;

mod proto {
    #![allow(dead_code, clippy::all, clippy::pedantic)]
    pub mod cln {
        tonic::include_proto!("cln");
    }
    pub mod hold {
        tonic::include_proto!("hold");
    }
}

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

pub use state::{ChannelPolicy, ChannelState, HoldState, PeerChannel, XpayBehaviour};
pub use tls::ClientFiles;

use state::{Db, StateUpdate};
use tls::PluginCerts;

/// How a FakeCln starts.
#[derive(Clone, Debug)]
pub struct FakeClnOptions {
    /// `getinfo.network` (CLN's names: `bitcoin`, `testnet`, `signet`, `regtest`) and the BOLT11
    /// prefix.
    pub network: String,
    pub block_height: u32,
    /// The plugin's `hold-expiry-deadline` (3 by default; 0 disables it).
    pub expiry_deadline: u32,
}

impl Default for FakeClnOptions {
    fn default() -> Self {
        Self {
            network: "regtest".to_owned(),
            block_height: 200,
            expiry_deadline: 3,
        }
    }
}

pub(crate) struct Shared {
    db: Mutex<Db>,
    changes: broadcast::Sender<StateUpdate>,
    requests: Mutex<Vec<String>>,
}

impl Shared {
    pub(crate) fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn announce(&self, update: StateUpdate) {
        let _ = self.changes.send(update);
    }

    pub(crate) fn log(&self, call: &str) {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(call.to_owned());
    }
}

/// Where a client finds both services and their credentials.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub node_url: String,
    pub node: ClientFiles,
    pub hold_url: String,
    pub hold: ClientFiles,
}

/// A hold invoice as the plugin stores it, for assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldInvoiceView {
    pub state: &'static str,
    pub amount_msat: u64,
    pub htlc_expiry_height: Option<u64>,
}

struct Server {
    addr: SocketAddr,
    certs: PluginCerts,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// A running FakeCln: CLN's gRPC and the hold plugin's gRPC on two loopback ports. Dropping it
/// stops both.
pub struct FakeCln {
    shared: Arc<Shared>,
    node: Server,
    hold: Server,
}

impl FakeCln {
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(FakeClnOptions::default()).await
    }

    pub async fn start_with(options: FakeClnOptions) -> std::io::Result<Self> {
        let (changes, _) = broadcast::channel(128);
        let shared = Arc::new(Shared {
            db: Mutex::new(Db::new(
                &options.network,
                options.block_height,
                options.expiry_deadline,
            )),
            changes,
            requests: Mutex::new(Vec::new()),
        });
        let node_listener = TcpListener::bind("127.0.0.1:0").await?;
        let hold_listener = TcpListener::bind("127.0.0.1:0").await?;
        let fake = Self {
            node: Server {
                addr: node_listener.local_addr()?,
                certs: PluginCerts::generate("cln", &["cln", "localhost"])
                    .map_err(std::io::Error::other)?,
                task: Mutex::new(None),
            },
            hold: Server {
                addr: hold_listener.local_addr()?,
                certs: PluginCerts::generate("Hold", &["hold", "localhost", "127.0.0.1"])
                    .map_err(std::io::Error::other)?,
                task: Mutex::new(None),
            },
            shared,
        };
        fake.serve(node_listener, hold_listener)?;
        Ok(fake)
    }

    /// Writes each service's `ca.pem`, `client.pem`, `client-key.pem` under `dir/cln` and
    /// `dir/hold`.
    pub fn write_credentials(&self, dir: &Path) -> std::io::Result<Credentials> {
        Ok(Credentials {
            node_url: format!("https://{}", self.node.addr),
            node: self.node.certs.write(&dir.join("cln"))?,
            hold_url: format!("https://{}", self.hold.addr),
            hold: self.hold.certs.write(&dir.join("hold"))?,
        })
    }

    /// A remote payer pays the invoice in full with the CLTV it asks for: the HTLC goes to the
    /// hold plugin's hook for a hold invoice, to CLN's invoices otherwise. The payment hash.
    pub fn pay_request(&self, bolt11: &str) -> Result<[u8; 32], String> {
        use bitcoin::hashes::Hash as _;
        let invoice: lightning_invoice::Bolt11Invoice =
            bolt11.trim().parse().map_err(|e| format!("{e:?}"))?;
        let hash = invoice.payment_hash().to_byte_array();
        let amount = invoice.amount_milli_satoshis().unwrap_or(0);
        let cltv = invoice.min_final_cltv_expiry_delta();
        let mut db = self.shared.db();
        if db.hold_invoice(&hash).is_some() {
            if let Some(update) = db.hold_htlc(&hash, amount, cltv)? {
                drop(db);
                self.shared.announce(update);
            }
        } else {
            db.cln_pay(&hash)?;
        }
        Ok(hash)
    }

    /// The plugin's record of a hold invoice.
    pub fn hold_invoice(&self, hash: [u8; 32]) -> Option<HoldInvoiceView> {
        let db = self.shared.db();
        let invoice = db.hold_invoice(&hash)?;
        Some(HoldInvoiceView {
            state: invoice.state.name(),
            amount_msat: invoice.amount_msat,
            htlc_expiry_height: invoice
                .htlcs
                .iter()
                .filter(|h| h.state == HoldState::Accepted)
                .map(|h| h.cltv_expiry)
                .min(),
        })
    }

    pub fn block_height(&self) -> u32 {
        self.shared.db().height
    }

    /// Mines `blocks` blocks one by one; the plugin's expiry cancel runs after each.
    pub fn advance_blocks(&self, blocks: u32) {
        for _ in 0..blocks {
            let updates = self.shared.db().add_block();
            for update in updates {
                self.shared.announce(update);
            }
        }
    }

    /// Moves the node's clock (CLN invoice expiry, BOLT11 timestamps).
    pub fn advance_time(&self, by: Duration) {
        self.shared.db().advance_time(by);
    }

    /// Moves the node's clock back: invoices created next carry older timestamps (an invoice
    /// whose expiry has already passed by the sidecar's clock).
    pub fn rewind_time(&self, by: Duration) {
        self.shared.db().rewind_time(by);
    }

    /// The node's clock, Unix time.
    pub fn now(&self) -> Duration {
        self.shared.db().now()
    }

    /// A remote node's invoice that xpay can pay: it knows the preimage.
    pub fn add_remote_preimage(&self, preimage: [u8; 32]) {
        use sha2::Digest as _;
        let hash: [u8; 32] = sha2::Sha256::digest(preimage).into();
        self.shared.db().remote_preimages.insert(hash, preimage);
    }

    /// The node's channels from now on (`listpeerchannels`, and the route hints of CLN's own
    /// invoices).
    pub fn set_channels(&self, channels: Vec<PeerChannel>) {
        self.shared.db().channels = channels;
    }

    /// The channels from just after the next `listpeerchannels` on: they change between a
    /// client's listing and its next call.
    pub fn set_channels_after_listing(&self, channels: Vec<PeerChannel>) {
        self.shared.db().channels_after_listing = Some(channels);
    }

    pub fn set_xpay_behaviour(&self, behaviour: XpayBehaviour) {
        self.shared.db().xpay_behaviour = behaviour;
    }

    /// Calls served so far, as `service.Method` (`hold.Settle`, `cln.Xpay`).
    pub fn requests(&self) -> Vec<String> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops both services: ports close, every connection and stream is cut. State is kept.
    pub async fn stop(&self) {
        for server in [&self.node, &self.hold] {
            let task = server.task.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(task) = task {
                task.abort();
                let _ = task.await;
            }
        }
    }

    /// CLN restarting with the plugin: both services stop and serve again on the same ports
    /// with the same invoices; held HTLCs stay held (CLN replays them to the plugin's hook).
    pub async fn restart(&self) -> std::io::Result<()> {
        self.stop().await;
        self.resume().await
    }

    /// Serves again after [`FakeCln::stop`].
    pub async fn resume(&self) -> std::io::Result<()> {
        let node = TcpListener::bind(self.node.addr).await?;
        let hold = TcpListener::bind(self.hold.addr).await?;
        self.serve(node, hold)
    }

    fn serve(&self, node: TcpListener, hold: TcpListener) -> std::io::Result<()> {
        let node_routes = tonic::service::Routes::new(proto::cln::node_server::NodeServer::new(
            services::NodeService(self.shared.clone()),
        ));
        let hold_routes = tonic::service::Routes::new(proto::hold::hold_server::HoldServer::new(
            services::HoldService(self.shared.clone()),
        ));
        for (server, listener, routes) in [
            (&self.node, node, node_routes),
            (&self.hold, hold, hold_routes),
        ] {
            let config = server
                .certs
                .server_config()
                .map_err(std::io::Error::other)?;
            let task = tokio::spawn(accept_loop(listener, TlsAcceptor::from(config), routes));
            *server.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        }
        Ok(())
    }
}

/// Accepts TLS connections and serves gRPC over HTTP/2 on each. The connections are owned by
/// this task, so aborting it (stop, restart) cuts every one of them and their streams.
async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, routes: tonic::service::Routes) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let acceptor = acceptor.clone();
                let service = TowerToHyperService::new(routes.clone());
                connections.spawn(async move {
                    // A client without a certificate from the CA fails here.
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

impl Drop for FakeCln {
    fn drop(&mut self) {
        for server in [&self.node, &self.hold] {
            if let Some(task) = server.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
                task.abort();
            }
        }
    }
}
