//! **FakeLnd — a test double of lnd's REST API**, for lightning-wall's tests only. It is not a
//! Lightning node: no channels, no chain, no money. It reproduces the wire contract written down
//! in `docs/lnd-rest.md` (TLS with a CA-flagged self-signed cert, the
//! `Grpc-Metadata-macaroon` check, protobuf-JSON, lnd's error messages, NDJSON streams) and gives
//! tests the controls a real lnd cannot: pay an invoice, mine blocks, move time, cut streams,
//! restart on the same port with the same state, regenerate the TLS cert.

mod api;
mod macaroons;
mod state;
mod tls;
mod wire;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use state::Db;
use tls::LndLikeCert;
pub use tls::TestCa;

/// How a FakeLnd starts.
#[derive(Clone, Debug)]
pub struct FakeLndOptions {
    /// `chains[0].network` in getinfo and the BOLT11 prefix: `regtest`, `testnet`, `mainnet`…
    pub network: String,
    pub block_height: u32,
    /// lnd's `holdexpirydelta` (18 in v0.21).
    pub hold_expiry_delta: u32,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
}

impl Default for FakeLndOptions {
    fn default() -> Self {
        Self {
            network: "regtest".to_owned(),
            block_height: 500,
            hold_expiry_delta: 18,
            port: 0,
        }
    }
}

/// The invoice state as FakeLnd holds it, for assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeInvoiceView {
    pub state: &'static str,
    pub amt_paid_msat: u64,
    pub htlc_expiry_height: Option<u32>,
    /// Known once settled (hold invoices) or from creation (normal invoices).
    pub preimage: Option<[u8; 32]>,
}

/// A channel as ListChannels reports it (FakeLnd has no chain: these are just the numbers a test
/// wants the node to show).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeChannel {
    pub active: bool,
    pub private: bool,
    pub capacity_sat: u64,
    pub local_balance_sat: u64,
    /// The peer's balance: what can still be paid to this node over the channel.
    pub remote_balance_sat: u64,
    /// What the peer must keep (`remote_constraints.chan_reserve_sat`).
    pub remote_reserve_sat: u64,
    /// HTLCs the peer may offer at once (`remote_constraints.max_accepted_htlcs`; 483 at most).
    pub max_accepted_htlcs: u32,
}

impl Default for FakeChannel {
    /// One active public 2,000,000-sat channel, half of it inbound, lnd's default limits.
    fn default() -> Self {
        Self {
            active: true,
            private: false,
            capacity_sat: 2_000_000,
            local_balance_sat: 1_000_000,
            remote_balance_sat: 1_000_000,
            remote_reserve_sat: 20_000,
            max_accepted_htlcs: 483,
        }
    }
}

/// How SendPaymentV2 ends payments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PaymentBehaviour {
    /// At once: SUCCEEDED when the payee's preimage was registered, else FAILED (NO_ROUTE).
    #[default]
    Immediate,
    /// IN_FLIGHT until the test calls [`FakeLnd::settle_payment`] or [`FakeLnd::fail_payment`].
    Hold,
}

/// An outgoing payment as FakeLnd holds it, for assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakePaymentView {
    /// `IN_FLIGHT`, `SUCCEEDED` or `FAILED`.
    pub status: &'static str,
    /// SendPaymentV2 calls accepted for this hash.
    pub attempts: u32,
    /// Routing fee paid (meaningful once SUCCEEDED).
    pub fee_msat: u64,
}

pub(crate) struct Shared {
    db: Mutex<Db>,
    /// The root key every macaroon of this node is signed with.
    root_key: [u8; 32],
    /// `admin.macaroon`: every permission.
    macaroon: Vec<u8>,
    channels: Mutex<Vec<FakeChannel>>,
    changes: broadcast::Sender<[u8; 32]>,
    kill_streams: watch::Sender<u64>,
    silenced: std::sync::atomic::AtomicBool,
    requests: Mutex<Vec<String>>,
    payment_behaviour: Mutex<PaymentBehaviour>,
    lose_send_streams: std::sync::atomic::AtomicBool,
    route_fee_msat: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn channels(&self) -> Vec<FakeChannel> {
        self.channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn announce(&self, hashes: &[[u8; 32]]) {
        for hash in hashes {
            let _ = self.changes.send(*hash);
        }
    }

    fn route_fee_msat(&self) -> u64 {
        self.route_fee_msat
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn payment_behaviour(&self) -> PaymentBehaviour {
        *self
            .payment_behaviour
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn log_request(&self, line: &str) {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line.to_owned());
    }
}

/// A running FakeLnd on `127.0.0.1:<port>`. Dropping it stops the server.
pub struct FakeLnd {
    shared: Arc<Shared>,
    addr: SocketAddr,
    cert: Mutex<LndLikeCert>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl FakeLnd {
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(FakeLndOptions::default()).await
    }

    pub async fn start_with(options: FakeLndOptions) -> std::io::Result<Self> {
        let cert = LndLikeCert::generate().map_err(std::io::Error::other)?;
        let listener = TcpListener::bind(("127.0.0.1", options.port)).await?;
        let addr = listener.local_addr()?;
        let (changes, _) = broadcast::channel(4096);
        let (kill_streams, _) = watch::channel(0);
        let root_key: [u8; 32] = rand::random();
        let admin: Vec<String> = macaroons::admin_permissions();
        let admin: Vec<&str> = admin.iter().map(String::as_str).collect();
        let shared = Arc::new(Shared {
            db: Mutex::new(Db::new(
                &options.network,
                options.block_height,
                options.hold_expiry_delta,
            )),
            root_key,
            macaroon: macaroons::bake(&root_key, &admin),
            channels: Mutex::new(vec![FakeChannel::default()]),
            changes,
            kill_streams,
            silenced: std::sync::atomic::AtomicBool::new(false),
            requests: Mutex::new(Vec::new()),
            payment_behaviour: Mutex::new(PaymentBehaviour::default()),
            lose_send_streams: std::sync::atomic::AtomicBool::new(false),
            route_fee_msat: std::sync::atomic::AtomicU64::new(0),
        });
        let fake = Self {
            shared,
            addr,
            cert: Mutex::new(cert),
            server: Mutex::new(None),
        };
        fake.serve(listener)?;
        Ok(fake)
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PEM of the current `tls.cert`.
    pub fn tls_cert_pem(&self) -> String {
        self.cert
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pem
            .clone()
    }

    /// `admin.macaroon`'s bytes (clients send them hex-encoded): every permission.
    pub fn macaroon(&self) -> Vec<u8> {
        self.shared.macaroon.clone()
    }

    /// A macaroon with only these permissions (`entity:action` or `uri:<full method>`), as
    /// `lncli bakemacaroon` makes them.
    pub fn bake_macaroon(&self, permissions: &[&str]) -> Vec<u8> {
        macaroons::bake(&self.shared.root_key, permissions)
    }

    /// What ListChannels reports from now on (one default channel at start).
    pub fn set_channels(&self, channels: Vec<FakeChannel>) {
        *self
            .shared
            .channels
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = channels;
    }

    /// Writes `tls.cert` and `admin.macaroon` into `dir`, as lnd does in its data dir.
    pub fn write_credentials(&self, dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
        let cert = dir.join("tls.cert");
        let macaroon = dir.join("admin.macaroon");
        std::fs::write(&cert, self.tls_cert_pem())?;
        std::fs::write(&macaroon, &self.shared.macaroon)?;
        Ok((cert, macaroon))
    }

    /// A payer pays the invoice in full now: a hold invoice becomes ACCEPTED with its HTLC
    /// expiring `cltv_expiry` blocks from the current height; a normal invoice SETTLED.
    pub fn pay(&self, payment_hash: [u8; 32]) -> Result<(), String> {
        let changed = self.shared.db().pay(payment_hash)?;
        self.shared.announce(&changed);
        Ok(())
    }

    /// Pays an invoice by its BOLT11 string (must be one of this FakeLnd's).
    pub fn pay_request(&self, bolt11: &str) -> Result<[u8; 32], String> {
        use bitcoin::hashes::Hash;
        let invoice: lightning_invoice::Bolt11Invoice =
            bolt11.parse().map_err(|e| format!("{e}"))?;
        let hash = invoice.payment_hash().to_byte_array();
        self.pay(hash)?;
        Ok(hash)
    }

    pub fn invoice(&self, payment_hash: [u8; 32]) -> Option<FakeInvoiceView> {
        let db = self.shared.db();
        db.invoices.get(&payment_hash).map(|i| FakeInvoiceView {
            state: i.state.name(),
            amt_paid_msat: i.amt_paid_msat,
            htlc_expiry_height: i.htlc.map(|h| h.expiry_height),
            preimage: i.preimage,
        })
    }

    pub fn block_height(&self) -> u32 {
        self.shared.db().height
    }

    /// Mines blocks; held invoices within `hold_expiry_delta` of their HTLC expiry are canceled.
    pub fn advance_blocks(&self, blocks: u32) {
        let changed = {
            let mut db = self.shared.db();
            db.height = db.height.saturating_add(blocks);
            db.sweep()
        };
        self.shared.announce(&changed);
    }

    /// Moves FakeLnd's clock forward; OPEN invoices past their expiry are canceled.
    pub fn advance_time(&self, by: Duration) {
        let changed = {
            let mut db = self.shared.db();
            db.time_offset += by;
            db.sweep()
        };
        self.shared.announce(&changed);
    }

    /// Lets `SendPaymentV2` pay invoices with this preimage's hash (a simulated remote payee).
    pub fn add_remote_preimage(&self, preimage: [u8; 32]) {
        use sha2::Digest;
        let hash: [u8; 32] = sha2::Sha256::digest(preimage).into();
        self.shared.db().remote_preimages.insert(hash, preimage);
    }

    /// The routing fee of every route to a payee from now on (0 by default), e.g. an attacker's
    /// own channel charging as much as the payer allows. A payment whose `fee_limit` is below
    /// it fails with NO_ROUTE, as lnd finds no route within the limit.
    pub fn set_route_fee_msat(&self, fee_msat: u64) {
        self.shared
            .route_fee_msat
            .store(fee_msat, std::sync::atomic::Ordering::Relaxed);
    }

    /// How SendPaymentV2 ends the payments it starts from now on.
    pub fn set_payment_behaviour(&self, behaviour: PaymentBehaviour) {
        *self
            .shared
            .payment_behaviour
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = behaviour;
    }

    /// SendPaymentV2 streams are cut before the payment's final state (after IN_FLIGHT, if
    /// sent); the payment itself goes on and TrackPaymentV2 reports it.
    pub fn lose_send_streams(&self, lose: bool) {
        self.shared
            .lose_send_streams
            .store(lose, std::sync::atomic::Ordering::SeqCst);
    }

    /// Ends an IN_FLIGHT payment as SUCCEEDED (its payee's preimage must be registered).
    pub fn settle_payment(&self, payment_hash: [u8; 32]) -> Result<(), String> {
        {
            let mut db = self.shared.db();
            let preimage = db.remote_preimages.get(&payment_hash).copied();
            let payment = db
                .payments
                .get_mut(&payment_hash)
                .filter(|p| p.status == state::PaymentStatus::InFlight)
                .ok_or("no payment in flight with this hash")?;
            payment.preimage = Some(preimage.ok_or("the payee's preimage is not registered")?);
            payment.status = state::PaymentStatus::Succeeded;
        }
        self.shared.announce(&[payment_hash]);
        Ok(())
    }

    /// Ends an IN_FLIGHT payment as FAILED with lnd's `failure_reason` (e.g.
    /// `FAILURE_REASON_NO_ROUTE`, `FAILURE_REASON_TIMEOUT`).
    pub fn fail_payment(&self, payment_hash: [u8; 32], reason: &'static str) -> Result<(), String> {
        {
            let mut db = self.shared.db();
            let payment = db
                .payments
                .get_mut(&payment_hash)
                .filter(|p| p.status == state::PaymentStatus::InFlight)
                .ok_or("no payment in flight with this hash")?;
            payment.status = state::PaymentStatus::Failed(reason);
        }
        self.shared.announce(&[payment_hash]);
        Ok(())
    }

    pub fn payment(&self, payment_hash: [u8; 32]) -> Option<FakePaymentView> {
        self.shared
            .db()
            .payments
            .get(&payment_hash)
            .map(|p| FakePaymentView {
                status: p.status.name(),
                attempts: p.attempts,
                fee_msat: p.fee_msat,
            })
    }

    /// Cuts every open stream mid-way (no final chunk), as a proxy timeout would.
    pub fn drop_streams(&self) {
        self.shared.kill_streams.send_modify(|n| *n += 1);
    }

    /// Open streams go quiet without closing (a proxy that dropped them silently; lnd sends no
    /// keepalives, so the client cannot tell). New streams send their first message, then go
    /// quiet too. `drop_streams` still cuts them.
    pub fn silence_streams(&self, silenced: bool) {
        self.shared
            .silenced
            .store(silenced, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every request seen, as `"<METHOD> <path>"`, oldest first.
    pub fn requests(&self) -> Vec<String> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops serving: the port closes and every connection is cut. State is kept.
    pub async fn stop(&self) {
        let task = self.server.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Serves again on the same port with the same state (after [`FakeLnd::stop`]).
    pub async fn resume(&self) -> std::io::Result<()> {
        self.stop().await;
        let listener = TcpListener::bind(self.addr).await?;
        self.serve(listener)
    }

    /// lnd restarting: stop, then serve again on the same port with the same invoices.
    pub async fn restart(&self) -> std::io::Result<()> {
        self.stop().await;
        self.resume().await
    }

    /// lnd regenerating `tls.cert` (e.g. after its expiry) and restarting with it.
    pub async fn regenerate_cert(&self) -> std::io::Result<()> {
        let cert = LndLikeCert::generate().map_err(std::io::Error::other)?;
        *self.cert.lock().unwrap_or_else(|e| e.into_inner()) = cert;
        self.restart().await
    }

    /// A hosted lnd renewing its CA-signed certificate: a new key and a certificate from `ca`
    /// for `names` (e.g. `["localhost", "127.0.0.1"]`), served after a restart (connections
    /// are cut, so clients handshake again).
    pub async fn serve_ca_signed(&self, ca: &TestCa, names: &[&str]) -> std::io::Result<()> {
        let cert = LndLikeCert::signed_by(ca, names).map_err(std::io::Error::other)?;
        *self.cert.lock().unwrap_or_else(|e| e.into_inner()) = cert;
        self.restart().await
    }

    fn serve(&self, listener: TcpListener) -> std::io::Result<()> {
        let config = self
            .cert
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .server_config()
            .map_err(std::io::Error::other)?;
        let acceptor = TlsAcceptor::from(config);
        let router = api::router(self.shared.clone());
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            // Owned by this task: aborting it (stop) aborts every connection with it.
            let mut connections = JoinSet::new();
            let mut sweep = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((tcp, _)) = accepted else { continue };
                        let acceptor = acceptor.clone();
                        let service = TowerToHyperService::new(router.clone());
                        connections.spawn(async move {
                            let Ok(tls) = acceptor.accept(tcp).await else { return };
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(tls), service)
                                .await;
                        });
                    }
                    _ = sweep.tick() => {
                        let changed = shared.db().sweep();
                        shared.announce(&changed);
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        *self.server.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        Ok(())
    }
}

impl Drop for FakeLnd {
    fn drop(&mut self) {
        if let Some(task) = self.server.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}
