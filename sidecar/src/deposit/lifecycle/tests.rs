//! Lifecycle lifecycles against the `RecordingNode` test double and a real store (SQLite; the
//! replica tests on PostgreSQL). Each asserts the node calls, not just the recorded state.

use std::future::Future;

use super::commands::LIVE_COUNT_FOR;
use super::*;
use crate::deposit::machine::{Event, Outcome};
use crate::deposit::{DepositState, NodeAction, Trigger};
use crate::node::InvoiceState;
use crate::store::tests::fixtures;
use crate::testing::{Call, PATIENCE, RecordingNode};
use sha2::{Digest, Sha256};

pub(super) fn settings(replica: &str) -> LifecycleSettings {
    LifecycleSettings {
        invoice_expiry: Duration::from_secs(600),
        cltv_expiry: 144,
        safety_margin_blocks: 6,
        assumed_block_interval: Duration::from_secs(300),
        reconcile_interval: Duration::from_secs(3600),
        sweep_interval: Duration::from_millis(100),
        lease: Duration::from_secs(30),
        leave_grace: Duration::from_secs(1),
        max_held_deposits: 100,
        max_unpaid_deposits: 100,
        max_held_deposits_per_prefix: 3,
        max_unpaid_deposits_per_prefix: 5,
        replica_id: replica.into(),
    }
}

pub(super) fn new_deposit(prefix: &str) -> NewDeposit {
    NewDeposit {
        route_id: "articles".into(),
        client_prefix: prefix.into(),
        amount_msat: 1_000_000,
        idle_timeout: Duration::from_secs(300),
        session_cap: Duration::from_secs(3600),
        memo: "lightning-wall deposit".into(),
    }
}

struct Harness {
    lifecycle: Lifecycle,
    node: RecordingNode,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// Opens a deposit for a client of `prefix` now; a refusal fails the test.
    async fn open(&self, prefix: &str) -> OpenedDeposit {
        self.lifecycle
            .open_deposit(new_deposit(prefix), Timestamp::now())
            .await
            .unwrap()
    }
}

async fn harness(s: LifecycleSettings) -> Harness {
    let (store, dir) = fixtures::sqlite().await;
    let node = RecordingNode::new();
    let lifecycle = Lifecycle::new(store, Arc::new(node.clone()), s, Arc::new(Metrics::new()));
    Harness {
        lifecycle,
        node,
        _dir: dir,
    }
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

async fn state_of(lifecycle: &Lifecycle, hash: &PaymentHash) -> DepositState {
    lifecycle
        .deposit(hash)
        .await
        .unwrap()
        .unwrap()
        .deposit
        .state
}

async fn wait_state(lifecycle: &Lifecycle, hash: &PaymentHash, want: DepositState) {
    eventually(&format!("deposit {want:?}"), || async {
        state_of(lifecycle, hash).await == want
    })
    .await;
}

async fn wait_settled_on_node(lifecycle: &Lifecycle, hash: &PaymentHash) {
    eventually("no pending action", || async {
        lifecycle
            .deposit(hash)
            .await
            .unwrap()
            .unwrap()
            .deposit
            .pending
            .is_none()
    })
    .await;
}

fn count(node: &RecordingNode, hash: &PaymentHash, call: fn(PaymentHash) -> Call) -> usize {
    node.calls_for(hash)
        .into_iter()
        .filter(|c| *c == call(*hash))
        .count()
}

/// Opens a deposit and has the visitor pay it; returns once the lifecycle saw it held.
async fn held(h: &Harness) -> PaymentHash {
    let opened = h.open("203.0.113.0/24").await;
    let hash = opened.deposit.payment_hash;
    h.node.pay_hold(&hash, 144).unwrap();
    wait_state(&h.lifecycle, &hash, DepositState::Held).await;
    hash
}

#[tokio::test]
async fn an_invoice_is_handed_out_only_with_its_preimage_stored() {
    let h = harness(settings("a")).await;
    let opened = h.open("203.0.113.0/24").await;
    let hash = opened.deposit.payment_hash;
    let stored = h.lifecycle.store().deposit(&hash).await.unwrap().unwrap();
    assert_eq!(
        stored.payment_request.as_deref(),
        Some(opened.payment_request.as_str())
    );
    let preimage = h.lifecycle.store().preimage(&hash).await.unwrap().unwrap();
    assert_eq!(PaymentHash(Sha256::digest(preimage.0).into()), hash);
}

#[tokio::test]
async fn a_node_that_cannot_create_the_invoice_leaves_nothing_behind() {
    let h = harness(settings("a")).await;
    h.node.set_unavailable(true);
    let err = h
        .lifecycle
        .open_deposit(new_deposit("203.0.113.0/24"), Timestamp::now())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        LifecycleError::Node(NodeError::Unavailable(_))
    ));
    let [Call::CreateHold(hash)] = h.node.calls()[..] else {
        panic!("{:?}", h.node.calls())
    };
    assert!(h.lifecycle.store().deposit(&hash).await.unwrap().is_none());
    assert_eq!(
        h.lifecycle
            .store()
            .live_deposit_counts("203.0.113.0/24")
            .await
            .unwrap(),
        (0, 0)
    );
}

#[tokio::test]
async fn an_invoice_whose_deposit_cannot_be_stored_is_canceled_and_never_handed_out() {
    let h = harness(settings("a")).await;
    h.lifecycle
        .store()
        .execute_for_test(
            "CREATE TRIGGER refuse BEFORE INSERT ON deposits \
             BEGIN SELECT RAISE(ABORT, 'disk full'); END",
        )
        .await;
    let err = h
        .lifecycle
        .open_deposit(new_deposit("203.0.113.0/24"), Timestamp::now())
        .await
        .unwrap_err();
    assert!(matches!(err, LifecycleError::Store(_)), "{err}");
    let [Call::CreateHold(hash), Call::Cancel(canceled)] = h.node.calls()[..] else {
        panic!("{:?}", h.node.calls())
    };
    assert_eq!(hash, canceled);
    assert_eq!(h.node.state(&hash), Some(InvoiceState::Canceled));
    assert!(h.lifecycle.store().deposit(&hash).await.unwrap().is_none());
}

#[tokio::test]
async fn held_deposit_is_refunded_when_the_visitor_leaves() {
    let h = harness(settings("a")).await;
    let hash = held(&h).await;
    let stepped = h.lifecycle.event(&hash, Event::VisitorLeft).await.unwrap();
    assert_eq!(stepped.deposit().state, DepositState::Refunded);
    wait_settled_on_node(&h.lifecycle, &hash).await;
    assert_eq!(h.node.state(&hash), Some(InvoiceState::Canceled));
    assert_eq!(count(&h.node, &hash, Call::Cancel), 1);
    assert_eq!(count(&h.node, &hash, Call::Settle), 0);
    let token = h
        .lifecycle
        .deposit(&hash)
        .await
        .unwrap()
        .unwrap()
        .deposit
        .token_id;
    assert!(h.lifecycle.store().is_revoked(&token).await.unwrap());
}

#[tokio::test]
async fn a_leave_revokes_at_once_and_cancels_only_after_the_grace() {
    let h = harness(settings("a")).await;
    let hash = held(&h).await;
    let stepped = h.lifecycle.leave(&hash).await.unwrap();
    let d = stepped.deposit();
    assert_eq!(d.public_state(), "leaving");
    assert!(h.lifecycle.store().is_revoked(&d.token_id).await.unwrap());
    assert_eq!(
        count(&h.node, &hash, Call::Cancel),
        0,
        "not during the grace"
    );
    // A second leave changes nothing and starts no second timer.
    assert!(matches!(
        h.lifecycle.leave(&hash).await.unwrap(),
        Stepped::Unchanged(..)
    ));
    wait_state(&h.lifecycle, &hash, DepositState::Refunded).await;
    wait_settled_on_node(&h.lifecycle, &hash).await;
    assert_eq!(h.node.state(&hash), Some(InvoiceState::Canceled));
    assert_eq!(count(&h.node, &hash, Call::Cancel), 1);
}

#[tokio::test]
async fn a_forfeit_arriving_during_the_leave_grace_is_collected() {
    let h = harness(settings("a")).await;
    let hash = held(&h).await;
    h.lifecycle.leave(&hash).await.unwrap();
    let forfeit = Event::Verdict {
        outcome: Outcome::Forfeit,
        trigger: Trigger::RateLimit,
    };
    let stepped = h.lifecycle.event(&hash, forfeit).await.unwrap();
    assert_eq!(stepped.deposit().state, DepositState::Forfeited);
    wait_settled_on_node(&h.lifecycle, &hash).await;
    // Past the grace: the leave's timer found nothing to refund.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(h.node.state(&hash), Some(InvoiceState::Settled));
    assert_eq!(count(&h.node, &hash, Call::Cancel), 0);
    assert_eq!(state_of(&h.lifecycle, &hash).await, DepositState::Forfeited);
}

#[tokio::test]
async fn held_deposit_is_forfeited_on_a_verdict_and_settled_once() {
    let h = harness(settings("a")).await;
    let hash = held(&h).await;
    let forfeit = Event::Verdict {
        outcome: Outcome::Forfeit,
        trigger: Trigger::TrapPath,
    };
    h.lifecycle.event(&hash, forfeit).await.unwrap();
    wait_settled_on_node(&h.lifecycle, &hash).await;
    assert_eq!(h.node.state(&hash), Some(InvoiceState::Settled));
    assert_eq!(count(&h.node, &hash, Call::Settle), 1);
    // Duplicate and late events change nothing and call nothing.
    for late in [
        forfeit,
        Event::VisitorLeft,
        Event::Verdict {
            outcome: Outcome::Refund,
            trigger: Trigger::Upstream,
        },
    ] {
        let stepped = h.lifecycle.event(&hash, late).await.unwrap();
        assert!(matches!(stepped, Stepped::Unchanged(..)), "{late:?}");
    }
    assert_eq!(count(&h.node, &hash, Call::Settle), 1);
    assert_eq!(count(&h.node, &hash, Call::Cancel), 0);
    let audit = h
        .lifecycle
        .store()
        .audit_records(Some(&hash), 10)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].trigger, Trigger::TrapPath);
}

#[tokio::test]
async fn an_idle_deposit_is_refunded_by_the_sweeper() {
    let h = harness(settings("a")).await;
    let mut new = new_deposit("203.0.113.0/24");
    new.idle_timeout = Duration::from_secs(1);
    let opened = h
        .lifecycle
        .open_deposit(new, Timestamp::now())
        .await
        .unwrap();
    let hash = opened.deposit.payment_hash;
    h.node.pay_hold(&hash, 144).unwrap();
    wait_state(&h.lifecycle, &hash, DepositState::Held).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn(h.lifecycle.clone().run(stopped));
    wait_state(&h.lifecycle, &hash, DepositState::Refunded).await;
    wait_settled_on_node(&h.lifecycle, &hash).await;
    assert_eq!(h.node.state(&hash), Some(InvoiceState::Canceled));
    let d = h.lifecycle.deposit(&hash).await.unwrap().unwrap().deposit;
    assert_eq!(d.resolution.unwrap().trigger, Trigger::IdleTimeout);
    stop.send(true).unwrap();
    runner.await.unwrap();
}

#[tokio::test]
async fn the_hard_deadline_refunds_before_the_node_would_auto_cancel() {
    let mut s = settings("a");
    s.assumed_block_interval = Duration::from_secs(1);
    let h = harness(s).await;
    let opened = h.open("203.0.113.0/24").await;
    let hash = opened.deposit.payment_hash;
    // HTLCs expire 26 blocks out: lnd would auto-cancel at 26 - 18 = 8 blocks; we must refund
    // at 26 - 18 - 6 = 2 blocks, i.e. after ~2 s with the assumed 1 s blocks.
    h.node.pay_hold(&hash, 26).unwrap();
    wait_state(&h.lifecycle, &hash, DepositState::Held).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn(h.lifecycle.clone().run(stopped));
    wait_state(&h.lifecycle, &hash, DepositState::Refunded).await;
    let d = h.lifecycle.deposit(&hash).await.unwrap().unwrap().deposit;
    assert_eq!(d.resolution.unwrap().trigger, Trigger::HardDeadline);
    wait_settled_on_node(&h.lifecycle, &hash).await;
    assert_eq!(
        count(&h.node, &hash, Call::Cancel),
        1,
        "we cancelled, not the node"
    );
    stop.send(true).unwrap();
    runner.await.unwrap();
}

#[tokio::test]
async fn an_unpaid_invoice_expires_and_is_cancelled() {
    let mut s = settings("a");
    s.invoice_expiry = Duration::from_secs(1);
    let h = harness(s).await;
    let opened = h.open("203.0.113.0/24").await;
    let hash = opened.deposit.payment_hash;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn(h.lifecycle.clone().run(stopped));
    wait_state(&h.lifecycle, &hash, DepositState::Expired).await;
    wait_settled_on_node(&h.lifecycle, &hash).await;
    assert_eq!(h.node.state(&hash), Some(InvoiceState::Canceled));
    assert_eq!(count(&h.node, &hash, Call::Settle), 0);
    stop.send(true).unwrap();
    runner.await.unwrap();
}

#[tokio::test]
async fn a_cancel_that_failed_is_retried_until_the_node_confirms() {
    let h = harness(settings("a")).await;
    let hash = held(&h).await;
    h.node.set_unavailable(true);
    let stepped = h.lifecycle.event(&hash, Event::VisitorLeft).await.unwrap();
    assert_eq!(stepped.deposit().state, DepositState::Refunded);
    let d = h.lifecycle.deposit(&hash).await.unwrap().unwrap();
    assert_eq!(
        d.deposit.pending,
        Some(NodeAction::Cancel),
        "decided, persisted, not done"
    );
    assert_eq!(h.node.state(&hash), Some(InvoiceState::Accepted));
    h.node.set_unavailable(false);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn(h.lifecycle.clone().run(stopped));
    wait_settled_on_node(&h.lifecycle, &hash).await;
    assert_eq!(h.node.state(&hash), Some(InvoiceState::Canceled));
    stop.send(true).unwrap();
    runner.await.unwrap();
}

#[tokio::test]
async fn a_dropped_stream_is_resumed_and_the_payment_still_seen() {
    let h = harness(settings("a")).await;
    let opened = h.open("203.0.113.0/24").await;
    let hash = opened.deposit.payment_hash;
    eventually("watcher subscribed", || async {
        count(&h.node, &hash, Call::Subscribe) == 1
    })
    .await;
    h.node.drop_all_streams();
    h.node.pay_hold(&hash, 144).unwrap();
    wait_state(&h.lifecycle, &hash, DepositState::Held).await;
}

#[tokio::test]
async fn a_restarted_lifecycle_finishes_what_the_old_one_decided() {
    let h = harness(settings("a")).await;
    let hash = held(&h).await;
    h.node.set_unavailable(true);
    h.lifecycle
        .event(
            &hash,
            Event::Verdict {
                outcome: Outcome::Forfeit,
                trigger: Trigger::RateLimit,
            },
        )
        .await
        .unwrap();
    // "Restart": a new lifecycle on the same store and node; the old one is gone.
    let store = h.lifecycle.store().clone();
    drop(h.lifecycle);
    h.node.set_unavailable(false);
    let lifecycle = Lifecycle::new(
        store,
        Arc::new(h.node.clone()),
        settings("b"),
        Arc::new(Metrics::new()),
    );
    // The old replica's lease (none was taken: the node was down) does not block.
    let report = lifecycle.reconcile().await.unwrap();
    assert_eq!(report.examined, 1);
    wait_settled_on_node(&lifecycle, &hash).await;
    assert_eq!(h.node.state(&hash), Some(InvoiceState::Settled));
    assert_eq!(
        count(&h.node, &hash, Call::Settle),
        2,
        "one failed, one succeeded"
    );
}

#[tokio::test]
async fn reconcile_closes_a_deposit_whose_invoice_was_never_created() {
    let h = harness(settings("a")).await;
    let (d, preimage) = fixtures::deposit(1, "203.0.113.0/24");
    h.lifecycle
        .store()
        .insert_deposit(&d, &preimage)
        .await
        .unwrap();
    h.lifecycle.reconcile().await.unwrap();
    assert_eq!(
        state_of(&h.lifecycle, &d.payment_hash).await,
        DepositState::Expired
    );
}

#[tokio::test]
async fn reconcile_applies_an_accept_that_happened_while_down() {
    let h = harness(settings("a")).await;
    let opened = h.open("203.0.113.0/24").await;
    let hash = opened.deposit.payment_hash;
    let store = h.lifecycle.store().clone();
    drop(h.lifecycle); // watchers keep running in this runtime; use a fresh lifecycle to check
    let lifecycle = Lifecycle::new(
        store,
        Arc::new(h.node.clone()),
        settings("b"),
        Arc::new(Metrics::new()),
    );
    h.node.pay_hold(&hash, 144).unwrap();
    lifecycle.reconcile().await.unwrap();
    assert_eq!(state_of(&lifecycle, &hash).await, DepositState::Held);
}

#[tokio::test]
async fn the_global_unpaid_limit_holds_while_the_count_is_reused_and_frees_up_after() {
    let mut s = settings("a");
    s.max_unpaid_deposits = 5;
    let h = harness(s).await;
    // Opened back to back: the count is read once and this replica's openings are added.
    let mut opened = Vec::new();
    for n in 0..5 {
        let prefix = format!("198.51.{n}.0/24");
        opened.push(h.open(&prefix).await);
    }
    let err = h
        .lifecycle
        .open_deposit(new_deposit("192.0.2.0/24"), Timestamp::now())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            LifecycleError::LimitReached {
                max: 5,
                scope: "awaiting payment in total",
                ..
            }
        ),
        "{err}"
    );
    // One ends: its place is free once the count is read again.
    h.lifecycle
        .event(&opened[0].deposit.payment_hash, Event::NodeCanceled)
        .await
        .unwrap();
    tokio::time::sleep(LIVE_COUNT_FOR + Duration::from_millis(50)).await;
    h.open("192.0.2.0/24").await;
}

#[tokio::test]
async fn unpaid_deposits_never_use_up_the_global_held_cap() {
    let mut s = settings("a");
    s.max_held_deposits = 2;
    let h = harness(s).await;
    // Many more unpaid deposits than the held cap: all open.
    let mut opened = Vec::new();
    for n in 0..6 {
        let prefix = format!("198.51.{n}.0/24");
        opened.push(h.open(&prefix).await);
    }
    // Two of them are paid: the held cap is reached and the next deposit is refused.
    for o in &opened[..2] {
        h.node.pay_hold(&o.deposit.payment_hash, 144).unwrap();
        wait_state(&h.lifecycle, &o.deposit.payment_hash, DepositState::Held).await;
    }
    tokio::time::sleep(LIVE_COUNT_FOR + Duration::from_millis(50)).await;
    let err = h
        .lifecycle
        .open_deposit(new_deposit("192.0.2.0/24"), Timestamp::now())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            LifecycleError::LimitReached {
                max: 2,
                scope: "held in total",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn two_replicas_on_one_postgres_never_act_twice_on_a_deposit() {
    let schema = fixtures::postgres_schema().await;
    let node = RecordingNode::new();
    let metrics = Arc::new(Metrics::new());
    let a = Lifecycle::new(
        fixtures::postgres_in(&schema).await,
        Arc::new(node.clone()),
        settings("replica-a"),
        metrics.clone(),
    );
    let b = Lifecycle::new(
        fixtures::postgres_in(&schema).await,
        Arc::new(node.clone()),
        settings("replica-b"),
        metrics,
    );
    let mut hashes = Vec::new();
    for i in 0..10u8 {
        let prefix = format!("10.0.{i}.0/24");
        let opened = a
            .open_deposit(new_deposit(&prefix), Timestamp::now())
            .await
            .unwrap();
        let hash = opened.deposit.payment_hash;
        node.pay_hold(&hash, 144).unwrap();
        b.watch(hash);
        hashes.push(hash);
    }
    for hash in &hashes {
        wait_state(&a, hash, DepositState::Held).await;
    }
    // Both replicas receive every decision at once, forfeit on even deposits, leave on odd.
    let mut tasks = Vec::new();
    for (i, hash) in hashes.iter().enumerate() {
        let event = if i % 2 == 0 {
            Event::Verdict {
                outcome: Outcome::Forfeit,
                trigger: Trigger::ErrorStorm,
            }
        } else {
            Event::VisitorLeft
        };
        for lifecycle in [a.clone(), b.clone()] {
            let hash = *hash;
            tasks.push(tokio::spawn(async move {
                lifecycle.event(&hash, event).await.unwrap();
                lifecycle.sweep().await.unwrap();
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    for (i, hash) in hashes.iter().enumerate() {
        wait_settled_on_node(&a, hash).await;
        let settles = count(&node, hash, Call::Settle);
        let cancels = count(&node, hash, Call::Cancel);
        if i % 2 == 0 {
            assert_eq!((settles, cancels), (1, 0), "deposit {i}");
            assert_eq!(node.state(hash), Some(InvoiceState::Settled));
        } else {
            assert_eq!((settles, cancels), (0, 1), "deposit {i}");
            assert_eq!(node.state(hash), Some(InvoiceState::Canceled));
        }
        assert_eq!(
            a.store().audit_records(Some(hash), 10).await.unwrap().len(),
            1,
            "one decision recorded"
        );
    }
}

/// Unpaid invoices cost an attacker nothing: if they counted toward the held cap, a burst of
/// them would lock a whole office or carrier-grade NAT out until they expire.
#[tokio::test]
async fn unpaid_invoices_never_lock_a_network_out_of_the_held_cap() {
    let h = harness(settings("a")).await;
    let prefix = "203.0.113.0/24";
    let mut opened = Vec::new();
    for n in 0..5 {
        let o = h
            .lifecycle
            .open_deposit(new_deposit(prefix), Timestamp::now())
            .await
            .unwrap_or_else(|e| panic!("unpaid deposit {n} refused: {e}"));
        opened.push(o.deposit.payment_hash);
    }
    // The unpaid ones are bounded on their own.
    let err = h
        .lifecycle
        .open_deposit(new_deposit(prefix), Timestamp::now())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            LifecycleError::LimitReached {
                max: 5,
                scope: "awaiting payment for this client network",
                ..
            }
        ),
        "{err}"
    );
    // Held ones count toward the held cap (3): once three are held, no new deposit opens.
    for hash in &opened[..3] {
        h.node.pay_hold(hash, 144).unwrap();
        h.lifecycle.reconcile().await.unwrap();
        wait_state(&h.lifecycle, hash, DepositState::Held).await;
    }
    let err = h
        .lifecycle
        .open_deposit(new_deposit(prefix), Timestamp::now())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            LifecycleError::LimitReached {
                max: 3,
                scope: "held for this client network",
                ..
            }
        ),
        "{err}"
    );
    h.open("198.51.100.0/24").await;
}

#[tokio::test]
async fn a_drain_whose_cancels_the_node_refuses_keeps_them_pending_until_it_confirms() {
    let h = harness(settings("a")).await;
    let first = held(&h).await;
    let second = held(&h).await;
    h.node.set_unavailable(true);
    let report = h.lifecycle.drain().await.unwrap();
    assert!(report.started_at.is_some());
    assert_eq!(report.refunded_held, 2);
    assert_eq!(report.refunded_msat, 2_000_000);
    assert_eq!(report.still_live, 0, "decided: nothing live any more");
    assert_eq!(report.pending.len(), 2, "{report:?}");
    assert!(
        report
            .pending
            .iter()
            .all(|p| p.action == NodeAction::Cancel)
    );
    for hash in [first, second] {
        assert_eq!(h.node.state(&hash), Some(InvoiceState::Accepted));
        let d = h.lifecycle.deposit(&hash).await.unwrap().unwrap().deposit;
        assert_eq!(d.state, DepositState::Refunded);
        assert_eq!(d.resolution.unwrap().trigger, Trigger::Drain);
    }
    // The node comes back: the sweeper finishes both cancels; nothing was dropped.
    h.node.set_unavailable(false);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn(h.lifecycle.clone().run(stopped));
    for hash in [first, second] {
        wait_settled_on_node(&h.lifecycle, &hash).await;
        assert_eq!(h.node.state(&hash), Some(InvoiceState::Canceled));
    }
    let status = h.lifecycle.drain_status().await.unwrap();
    assert!(
        status.pending.is_empty() && status.still_live == 0,
        "{status:?}"
    );
    stop.send(true).unwrap();
    runner.await.unwrap();
}

#[tokio::test]
async fn while_drained_the_sweeper_gives_back_a_deposit_paid_after_the_drain_pass() {
    let h = harness(settings("a")).await;
    // Minted by a replica that had not seen the flag yet: open, then the drain starts on
    // another replica (the flag only, no pass here), then the visitor pays.
    let opened = h.open("203.0.113.0/24").await;
    let hash = opened.deposit.payment_hash;
    h.lifecycle
        .store()
        .start_drain(Timestamp::now())
        .await
        .unwrap();
    h.node.pay_hold(&hash, 144).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn(h.lifecycle.clone().run(stopped));
    eventually("the paid invoice cancelled on the node", || async {
        h.node.state(&hash) == Some(InvoiceState::Canceled)
    })
    .await;
    let d = h.lifecycle.deposit(&hash).await.unwrap().unwrap().deposit;
    assert_eq!(d.resolution.unwrap().trigger, Trigger::Drain);
    assert!(
        matches!(d.state, DepositState::Refunded | DepositState::Expired),
        "{d:?}"
    );
    stop.send(true).unwrap();
    runner.await.unwrap();
}

#[tokio::test]
async fn undrain_ends_the_drain_for_every_lifecycle_on_the_store() {
    let h = harness(settings("a")).await;
    let other = Lifecycle::new(
        h.lifecycle.store().clone(),
        Arc::new(h.node.clone()),
        settings("b"),
        Arc::new(Metrics::new()),
    );
    assert_eq!(other.draining().await.unwrap(), None);
    h.lifecycle.drain().await.unwrap();
    // The other replica read "not draining" just now; it sees the drain within the recheck.
    tokio::time::sleep(super::drain::DRAIN_RECHECK).await;
    assert!(other.draining().await.unwrap().is_some());
    assert!(h.lifecycle.undrain().await.unwrap());
    tokio::time::sleep(super::drain::DRAIN_RECHECK).await;
    assert_eq!(other.draining().await.unwrap(), None);
    assert!(
        !h.lifecycle.undrain().await.unwrap(),
        "nothing to end twice"
    );
}
