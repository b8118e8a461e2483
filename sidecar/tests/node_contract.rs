//! The node contract, one rule per function, run against every backend: the `dev` node, the
//! `lnd` backend talking to FakeLnd (the test double of lnd's REST API) and the `cln` backend
//! talking to FakeCln (the test double of Core Lightning's and the hold plugin's gRPC) and the
//! `nwc` backend talking to FakeNwc (a NIP-47 wallet service double) through a real Nostr relay
//! on loopback. The deposit lifecycle relies on exactly these rules, so a backend that breaks one cannot ship.

mod support;

use std::sync::Arc;
use std::time::Duration;

use fake_cln::{FakeCln, FakeClnOptions};
use fake_lnd::FakeLnd;
use fake_nwc::FakeNwc;
use futures_util::StreamExt;
use lightning_wall::ids::{PaymentHash, Preimage};
use lightning_wall::node::cln::{ClnConfig, ClnNode};
use lightning_wall::node::dev::{DevNode, DevNodeConfig, ManualClock};
use lightning_wall::node::lnd::{LndConfig, LndNode};
use lightning_wall::node::nwc::{ConnectionString, NwcConfig, NwcNode};
use lightning_wall::node::{
    CreatedInvoice, InvoiceRequest, InvoiceState, InvoiceStatus, InvoiceUpdates, Node, NodeError,
};
use sha2::{Digest, Sha256};

/// A backend plus the outside world the contract needs: a payer, a clock, a chain.
#[async_trait::async_trait]
trait Harness: Send + Sync {
    fn node(&self) -> &dyn Node;
    /// Pays the invoice in full, as a remote wallet would.
    async fn pay(&self, invoice: &CreatedInvoice);
    async fn advance_time(&self, by: Duration);
    async fn advance_blocks(&self, blocks: u32);
}

struct DevHarness {
    node: DevNode,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

#[async_trait::async_trait]
impl Harness for DevHarness {
    fn node(&self) -> &dyn Node {
        &self.node
    }
    async fn pay(&self, invoice: &CreatedInvoice) {
        self.node
            .simulate_payment(&invoice.payment_request)
            .await
            .unwrap();
    }
    async fn advance_time(&self, by: Duration) {
        self.clock.advance(by);
        self.node.sweep().await.unwrap();
    }
    async fn advance_blocks(&self, blocks: u32) {
        self.node.advance_blocks(blocks).await.unwrap();
    }
}

async fn dev() -> DevHarness {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let config = DevNodeConfig {
        sweep_interval: None,
        ..DevNodeConfig::new(dir.path())
    };
    let node = DevNode::open_with_clock(config, clock.clone())
        .await
        .unwrap();
    DevHarness {
        node,
        clock,
        _dir: dir,
    }
}

struct LndHarness {
    node: LndNode,
    fake: FakeLnd,
    _dir: tempfile::TempDir,
}

#[async_trait::async_trait]
impl Harness for LndHarness {
    fn node(&self) -> &dyn Node {
        &self.node
    }
    async fn pay(&self, invoice: &CreatedInvoice) {
        self.fake.pay_request(&invoice.payment_request).unwrap();
    }
    async fn advance_time(&self, by: Duration) {
        self.fake.advance_time(by);
    }
    async fn advance_blocks(&self, blocks: u32) {
        self.fake.advance_blocks(blocks);
    }
}

async fn lnd() -> LndHarness {
    let fake = FakeLnd::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, macaroon) = fake.write_credentials(dir.path()).unwrap();
    let config = LndConfig {
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        ..LndConfig::new(fake.url(), cert, macaroon, "regtest")
    };
    let node = LndNode::connect(config).await.unwrap();
    LndHarness {
        node,
        fake,
        _dir: dir,
    }
}

struct ClnHarness {
    node: ClnNode,
    fake: FakeCln,
    /// The backend's clock, moved with FakeCln's (the backend expires unpaid hold invoices).
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

#[async_trait::async_trait]
impl Harness for ClnHarness {
    fn node(&self) -> &dyn Node {
        &self.node
    }
    async fn pay(&self, invoice: &CreatedInvoice) {
        self.fake.pay_request(&invoice.payment_request).unwrap();
    }
    async fn advance_time(&self, by: Duration) {
        self.fake.advance_time(by);
        self.clock.advance(by);
    }
    async fn advance_blocks(&self, blocks: u32) {
        self.fake.advance_blocks(blocks);
    }
}

/// The plugin started with `hold-expiry-deadline=18`, the delta the rules are written for.
async fn cln() -> ClnHarness {
    let fake = FakeCln::start_with(FakeClnOptions {
        expiry_deadline: 18,
        ..FakeClnOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let credentials = fake.write_credentials(dir.path()).unwrap();
    let clock = Arc::new(ManualClock::new(fake.now()));
    let config = ClnConfig {
        hold_expiry_delta: 18,
        clock: clock.clone(),
        ..support::cln::backend_config(&credentials)
    };
    let node = ClnNode::connect(config).await.unwrap();
    ClnHarness {
        node,
        fake,
        clock,
        _dir: dir,
    }
}

struct NwcHarness {
    node: NwcNode,
    fake: FakeNwc,
    /// The backend's clock, moved with the wallet's (it reads an unpaid invoice's expiry).
    clock: Arc<ManualClock>,
}

#[async_trait::async_trait]
impl Harness for NwcHarness {
    fn node(&self) -> &dyn Node {
        &self.node
    }
    async fn pay(&self, invoice: &CreatedInvoice) {
        self.fake
            .pay_request(&invoice.payment_request)
            .await
            .unwrap();
    }
    async fn advance_time(&self, by: Duration) {
        self.fake.advance_time(by);
        self.clock.advance(by);
    }
    async fn advance_blocks(&self, blocks: u32) {
        self.fake.advance_blocks(blocks);
    }
}

async fn nwc() -> NwcHarness {
    let fake = FakeNwc::start().await.unwrap();
    let clock = Arc::new(ManualClock::new(fake.now()));
    let config = NwcConfig {
        clock: clock.clone(),
        ..NwcConfig::new(
            ConnectionString::parse(&fake.connection_string()).unwrap(),
            "regtest",
        )
    };
    let node = NwcNode::connect(config).await.unwrap();
    NwcHarness { node, fake, clock }
}

fn request(amount_msat: u64) -> InvoiceRequest {
    InvoiceRequest {
        amount_msat,
        memo: "contract".to_owned(),
        expiry: Duration::from_secs(600),
        cltv_expiry: Some(144),
    }
}

/// A fresh preimage and its hash, as the sidecar makes them for every deposit.
fn fresh() -> (Preimage, PaymentHash) {
    let preimage = Preimage(rand::random());
    (preimage, PaymentHash(Sha256::digest(preimage.0).into()))
}

async fn hold(h: &dyn Harness) -> (Preimage, CreatedInvoice) {
    let (preimage, hash) = fresh();
    let created = h
        .node()
        .create_hold_invoice(&hash, &request(10_000))
        .await
        .unwrap();
    assert_eq!(created.payment_hash, hash);
    (preimage, created)
}

async fn state(h: &dyn Harness, hash: &PaymentHash) -> InvoiceState {
    h.node().lookup(hash).await.unwrap().state
}

async fn next(updates: &mut InvoiceUpdates) -> Option<InvoiceStatus> {
    tokio::time::timeout(Duration::from_secs(10), updates.next())
        .await
        .expect("no update within 10 s")
        .map(|update| update.expect("the stream yielded an error"))
}

// ---- the rules ----

async fn info_names_the_network_height_and_hold_delta(h: &dyn Harness) {
    let info = h.node().info().await.unwrap();
    assert_eq!(info.network, "regtest");
    assert_eq!(info.hold_expiry_delta, 18);
    let before = info.block_height;
    h.advance_blocks(3).await;
    assert_eq!(h.node().info().await.unwrap().block_height, before + 3);
}

async fn settle_on_an_open_invoice_fails_with_still_open(h: &dyn Harness) {
    let (preimage, created) = hold(h).await;
    assert!(matches!(
        h.node().settle(&preimage).await,
        Err(NodeError::StillOpen)
    ));
    assert_eq!(state(h, &created.payment_hash).await, InvoiceState::Open);
}

async fn held_invoice_settles_with_its_preimage_and_a_second_settle_succeeds(h: &dyn Harness) {
    let (preimage, created) = hold(h).await;
    h.pay(&created).await;
    let held = h.node().lookup(&created.payment_hash).await.unwrap();
    assert_eq!(held.state, InvoiceState::Accepted);
    assert_eq!(held.amount_paid_msat, 10_000);
    h.node().settle(&preimage).await.unwrap();
    h.node().settle(&preimage).await.unwrap();
    assert_eq!(state(h, &created.payment_hash).await, InvoiceState::Settled);
}

async fn held_invoice_is_refunded_by_cancel_and_a_second_cancel_succeeds(h: &dyn Harness) {
    let (preimage, created) = hold(h).await;
    h.pay(&created).await;
    h.node().cancel(&created.payment_hash).await.unwrap();
    h.node().cancel(&created.payment_hash).await.unwrap();
    assert_eq!(
        state(h, &created.payment_hash).await,
        InvoiceState::Canceled
    );
    assert!(matches!(
        h.node().settle(&preimage).await,
        Err(NodeError::AlreadyCanceled)
    ));
}

async fn cancel_after_settle_fails_with_already_settled(h: &dyn Harness) {
    let (preimage, created) = hold(h).await;
    h.pay(&created).await;
    h.node().settle(&preimage).await.unwrap();
    assert!(matches!(
        h.node().cancel(&created.payment_hash).await,
        Err(NodeError::AlreadySettled)
    ));
}

async fn a_payment_hash_is_never_reused_even_after_cancel(h: &dyn Harness) {
    let (preimage, created) = hold(h).await;
    h.node().cancel(&created.payment_hash).await.unwrap();
    assert!(matches!(
        h.node()
            .create_hold_invoice(&created.payment_hash, &request(1_000))
            .await,
        Err(NodeError::AlreadyExists)
    ));
    assert!(matches!(
        h.node().create_invoice(&preimage, &request(1_000)).await,
        Err(NodeError::AlreadyExists)
    ));
}

async fn an_unpaid_invoice_expires_to_canceled(h: &dyn Harness) {
    let (_, created) = hold(h).await;
    h.advance_time(Duration::from_secs(590)).await;
    assert_eq!(state(h, &created.payment_hash).await, InvoiceState::Open);
    h.advance_time(Duration::from_secs(20)).await;
    assert_eq!(
        state(h, &created.payment_hash).await,
        InvoiceState::Canceled
    );
}

async fn an_accepted_invoice_outlives_its_bolt11_expiry(h: &dyn Harness) {
    let (_, created) = hold(h).await;
    h.pay(&created).await;
    h.advance_time(Duration::from_secs(3_600)).await;
    assert_eq!(
        state(h, &created.payment_hash).await,
        InvoiceState::Accepted
    );
}

async fn a_held_invoice_is_auto_canceled_hold_expiry_delta_blocks_before_its_htlc_expires(
    h: &dyn Harness,
) {
    let (_, created) = hold(h).await;
    h.pay(&created).await;
    let height = h.node().info().await.unwrap().block_height;
    let held = h.node().lookup(&created.payment_hash).await.unwrap();
    assert_eq!(held.htlc_expiry_height, Some(height + 144));
    h.advance_blocks(144 - 18 - 1).await;
    assert_eq!(
        state(h, &created.payment_hash).await,
        InvoiceState::Accepted
    );
    h.advance_blocks(1).await;
    assert_eq!(
        state(h, &created.payment_hash).await,
        InvoiceState::Canceled
    );
}

async fn subscribe_sends_the_current_state_first_then_changes_and_ends_after_a_final_one(
    h: &dyn Harness,
) {
    let (preimage, created) = hold(h).await;
    let mut updates = h.node().subscribe(&created.payment_hash).await.unwrap();
    assert_eq!(next(&mut updates).await.unwrap().state, InvoiceState::Open);
    h.pay(&created).await;
    let held = next(&mut updates).await.unwrap();
    assert_eq!(held.state, InvoiceState::Accepted);
    assert!(held.htlc_expiry_height.is_some());
    h.node().settle(&preimage).await.unwrap();
    assert_eq!(
        next(&mut updates).await.unwrap().state,
        InvoiceState::Settled
    );
    assert_eq!(next(&mut updates).await, None);
    // Subscribing to a final invoice gives its state and ends at once.
    let mut again = h.node().subscribe(&created.payment_hash).await.unwrap();
    assert_eq!(next(&mut again).await.unwrap().state, InvoiceState::Settled);
    assert_eq!(next(&mut again).await, None);
}

async fn a_paid_normal_invoice_is_settled(h: &dyn Harness) {
    let (preimage, hash) = fresh();
    let created = h
        .node()
        .create_invoice(&preimage, &request(2_000))
        .await
        .unwrap();
    assert_eq!(created.payment_hash, hash);
    assert!(created.payment_request.starts_with("lnbcrt20n1"));
    h.pay(&created).await;
    let status = h.node().lookup(&hash).await.unwrap();
    assert_eq!(status.state, InvoiceState::Settled);
    assert_eq!(status.amount_paid_msat, 2_000);
}

async fn an_unknown_hash_is_not_found(h: &dyn Harness) {
    let (preimage, hash) = fresh();
    assert!(matches!(
        h.node().lookup(&hash).await,
        Err(NodeError::NotFound)
    ));
    assert!(matches!(
        h.node().cancel(&hash).await,
        Err(NodeError::NotFound)
    ));
    assert!(matches!(
        h.node().settle(&preimage).await,
        Err(NodeError::NotFound)
    ));
    assert!(matches!(
        h.node().subscribe(&hash).await,
        Err(NodeError::NotFound)
    ));
}

macro_rules! contract {
    ($($rule:ident),* $(,)?) => {
        mod dev_node {
            $(
                #[tokio::test]
                async fn $rule() {
                    let harness = super::dev().await;
                    super::$rule(&harness).await;
                }
            )*
        }
        mod lnd_on_fake_lnd {
            $(
                #[tokio::test]
                async fn $rule() {
                    let harness = super::lnd().await;
                    super::$rule(&harness).await;
                }
            )*
        }
        mod cln_on_fake_cln {
            $(
                #[tokio::test]
                async fn $rule() {
                    let harness = super::cln().await;
                    super::$rule(&harness).await;
                }
            )*
        }
        mod nwc_on_fake_nwc {
            $(
                #[tokio::test]
                async fn $rule() {
                    let harness = super::nwc().await;
                    super::$rule(&harness).await;
                }
            )*
        }
    };
}

contract!(
    info_names_the_network_height_and_hold_delta,
    settle_on_an_open_invoice_fails_with_still_open,
    held_invoice_settles_with_its_preimage_and_a_second_settle_succeeds,
    held_invoice_is_refunded_by_cancel_and_a_second_cancel_succeeds,
    cancel_after_settle_fails_with_already_settled,
    a_payment_hash_is_never_reused_even_after_cancel,
    an_unpaid_invoice_expires_to_canceled,
    an_accepted_invoice_outlives_its_bolt11_expiry,
    a_held_invoice_is_auto_canceled_hold_expiry_delta_blocks_before_its_htlc_expires,
    subscribe_sends_the_current_state_first_then_changes_and_ends_after_a_final_one,
    a_paid_normal_invoice_is_settled,
    an_unknown_hash_is_not_found,
);
