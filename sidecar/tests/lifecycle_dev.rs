//! Deposit lifecycles end to end on the `dev` node (real signed BOLT11, lnd's rules, a simulated
//! chain) and SQLite: what the node ends up doing, not only what the store says.

use std::sync::Arc;
use std::time::Duration;

use lightning_wall::deposit::lifecycle::{Lifecycle, LifecycleSettings, NewDeposit};
use lightning_wall::deposit::machine::{Event, Outcome};
use lightning_wall::deposit::{DepositState, Trigger};
use lightning_wall::ids::PaymentHash;
use lightning_wall::ids::Timestamp;
use lightning_wall::metrics::Metrics;
use lightning_wall::node::dev::{DevNode, DevNodeConfig, DevPayment};
use lightning_wall::node::{InvoiceState, Node};
use lightning_wall::store::Store;
use tokio::sync::watch;

struct Setup {
    lifecycle: Lifecycle,
    node: DevNode,
    _dir: tempfile::TempDir,
}

async fn setup(change: impl FnOnce(&mut LifecycleSettings)) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = DevNodeConfig::new(dir.path().join("dev-node"));
    // Time passes only when the test says so (advance_blocks); the lifecycle does the cancelling.
    dev.sweep_interval = None;
    let node = DevNode::open(dev).await.unwrap();
    let store = Store::open_sqlite(&dir.path().join("lw.db")).await.unwrap();
    let mut settings = LifecycleSettings {
        invoice_expiry: Duration::from_secs(600),
        cltv_expiry: 144,
        safety_margin_blocks: 6,
        assumed_block_interval: Duration::from_secs(600),
        reconcile_interval: Duration::from_secs(3600),
        sweep_interval: Duration::from_millis(100),
        lease: Duration::from_secs(30),
        leave_grace: Duration::from_secs(1),
        max_held_deposits: 1000,
        max_unpaid_deposits: 1000,
        max_held_deposits_per_prefix: 1000,
        max_unpaid_deposits_per_prefix: 1000,
        replica_id: "test".into(),
    };
    change(&mut settings);
    let lifecycle = Lifecycle::new(
        store,
        Arc::new(node.clone()),
        settings,
        Arc::new(Metrics::new()),
    );
    Setup {
        lifecycle,
        node,
        _dir: dir,
    }
}

fn new_deposit(idle: Duration) -> NewDeposit {
    NewDeposit {
        route_id: "wall".into(),
        client_prefix: "203.0.113.0/24".into(),
        amount_msat: 1_000_000,
        idle_timeout: idle,
        session_cap: Duration::from_secs(3600),
        memo: "deposit".into(),
    }
}

async fn wait_for(lifecycle: &Lifecycle, hash: &PaymentHash, want: DepositState) -> Trigger {
    for _ in 0..400 {
        let d = lifecycle.deposit(hash).await.unwrap().unwrap().deposit;
        if d.state == want && d.pending.is_none() {
            return d.resolution.map_or(Trigger::Admin, |r| r.trigger);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("deposit never reached {want:?} with nothing pending");
}

async fn open_and_pay(s: &Setup, idle: Duration) -> PaymentHash {
    let opened = s
        .lifecycle
        .open_deposit(new_deposit(idle), Timestamp::now())
        .await
        .unwrap();
    let paid = s
        .node
        .simulate_payment(&opened.payment_request)
        .await
        .unwrap();
    assert!(matches!(paid, DevPayment::Held { .. }));
    let hash = opened.deposit.payment_hash;
    wait_for(&s.lifecycle, &hash, DepositState::Held).await;
    hash
}

#[tokio::test]
async fn held_then_left_is_cancelled_on_the_dev_node() {
    let s = setup(|_| {}).await;
    let hash = open_and_pay(&s, Duration::from_secs(300)).await;
    s.lifecycle.event(&hash, Event::VisitorLeft).await.unwrap();
    assert_eq!(
        wait_for(&s.lifecycle, &hash, DepositState::Refunded).await,
        Trigger::VisitorLeft
    );
    assert_eq!(
        s.node.lookup(&hash).await.unwrap().state,
        InvoiceState::Canceled
    );
}

#[tokio::test]
async fn held_then_forfeited_is_settled_on_the_dev_node() {
    let s = setup(|_| {}).await;
    let hash = open_and_pay(&s, Duration::from_secs(300)).await;
    let verdict = Event::Verdict {
        outcome: Outcome::Forfeit,
        trigger: Trigger::Upstream,
    };
    s.lifecycle.event(&hash, verdict).await.unwrap();
    assert_eq!(
        wait_for(&s.lifecycle, &hash, DepositState::Forfeited).await,
        Trigger::Upstream
    );
    assert_eq!(
        s.node.lookup(&hash).await.unwrap().state,
        InvoiceState::Settled
    );
}

#[tokio::test]
async fn an_idle_deposit_is_refunded_on_the_dev_node() {
    let s = setup(|_| {}).await;
    let hash = open_and_pay(&s, Duration::from_secs(1)).await;
    let (stop, stopped) = watch::channel(false);
    let runner = tokio::spawn(s.lifecycle.clone().run(stopped));
    assert_eq!(
        wait_for(&s.lifecycle, &hash, DepositState::Refunded).await,
        Trigger::IdleTimeout
    );
    assert_eq!(
        s.node.lookup(&hash).await.unwrap().state,
        InvoiceState::Canceled
    );
    stop.send(true).unwrap();
    runner.await.unwrap();
}

#[tokio::test]
async fn the_hard_deadline_refunds_before_the_dev_node_auto_cancels() {
    let s = setup(|_| {}).await;
    let hash = open_and_pay(&s, Duration::from_secs(3600)).await;
    let status = s.node.lookup(&hash).await.unwrap();
    let expiry = status.htlc_expiry_height.unwrap();
    let info = s.node.info().await.unwrap();
    // Mine to exactly the height where our margin is used up: expiry - delta - safety margin.
    // lnd (and the dev node) would auto-cancel only `safety margin` blocks later.
    let target = expiry - info.hold_expiry_delta - 6;
    s.node
        .advance_blocks(target - info.block_height)
        .await
        .unwrap();
    assert_eq!(
        s.node.lookup(&hash).await.unwrap().state,
        InvoiceState::Accepted,
        "the node has not auto-cancelled yet"
    );
    s.lifecycle.reconcile().await.unwrap(); // refreshes the block height and ticks every deposit
    assert_eq!(
        wait_for(&s.lifecycle, &hash, DepositState::Refunded).await,
        Trigger::HardDeadline
    );
    assert_eq!(
        s.node.lookup(&hash).await.unwrap().state,
        InvoiceState::Canceled
    );
}

#[tokio::test]
async fn an_unpaid_invoice_expires_and_cannot_be_paid_afterwards() {
    let s = setup(|settings| settings.invoice_expiry = Duration::from_secs(1)).await;
    let opened = s
        .lifecycle
        .open_deposit(new_deposit(Duration::from_secs(300)), Timestamp::now())
        .await
        .unwrap();
    let hash = opened.deposit.payment_hash;
    let (stop, stopped) = watch::channel(false);
    let runner = tokio::spawn(s.lifecycle.clone().run(stopped));
    assert_eq!(
        wait_for(&s.lifecycle, &hash, DepositState::Expired).await,
        Trigger::InvoiceExpired
    );
    assert!(
        s.node
            .simulate_payment(&opened.payment_request)
            .await
            .is_err()
    );
    stop.send(true).unwrap();
    runner.await.unwrap();
}
