//! The sidecar's wall clock jumping: the deposit lifecycle (real SQLite store, the `RecordingNode`
//! test double, which records every node call) reads a `ManualClock` that the tests step 2 h
//! forward (a suspended VM resuming, NTP correcting a slow clock) and 2 h back (NTP stepping a
//! fast clock). Forward: idle and unpaid deposits end, with one cancel each and never a settle.
//! Back: nothing ends early, the chain deadline still holds, every decision acts exactly once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lightning_wall::clock::ManualClock;
use lightning_wall::deposit::lifecycle::{Lifecycle, LifecycleSettings, NewDeposit};
use lightning_wall::deposit::machine::{Event, Outcome};
use lightning_wall::deposit::{DepositState, Trigger};
use lightning_wall::ids::PaymentHash;
use lightning_wall::metrics::Metrics;
use lightning_wall::store::Store;
use lightning_wall::testing::{Call, PATIENCE, RecordingNode};

const HOUR: Duration = Duration::from_secs(3600);

struct Harness {
    lifecycle: Lifecycle,
    node: RecordingNode,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("lw.db")).await.unwrap();
    let node = RecordingNode::new();
    let clock = Arc::new(ManualClock::starting_now());
    let settings = LifecycleSettings {
        invoice_expiry: Duration::from_secs(600),
        cltv_expiry: 144,
        safety_margin_blocks: 6,
        // (144 - 18 - 6) blocks of 5 min: a wall-clock deadline 10 h after the payment.
        assumed_block_interval: Duration::from_secs(300),
        reconcile_interval: HOUR,
        sweep_interval: Duration::from_millis(100),
        lease: Duration::from_secs(30),
        leave_grace: Duration::from_secs(1),
        max_held_deposits: 100,
        max_unpaid_deposits: 100,
        max_held_deposits_per_prefix: 100,
        max_unpaid_deposits_per_prefix: 100,
        replica_id: "clock".into(),
    };
    let lifecycle = Lifecycle::with_clock(
        store,
        Arc::new(node.clone()),
        settings,
        Arc::new(Metrics::new()),
        clock.clone(),
    );
    Harness {
        lifecycle,
        node,
        clock,
        _dir: dir,
    }
}

impl Harness {
    async fn open(&self, idle_timeout: Duration, session_cap: Duration) -> PaymentHash {
        let new = NewDeposit {
            route_id: "wall".into(),
            client_prefix: "203.0.113.0/24".into(),
            amount_msat: 1_000_000,
            idle_timeout,
            session_cap,
            memo: "lightning-wall deposit".into(),
        };
        let opened = self
            .lifecycle
            .open_deposit(new, self.lifecycle.now())
            .await
            .unwrap();
        opened.deposit.payment_hash
    }

    /// A deposit the visitor paid (the lifecycle saw it held).
    async fn held(&self, idle_timeout: Duration, session_cap: Duration) -> PaymentHash {
        let hash = self.open(idle_timeout, session_cap).await;
        self.node.pay_hold(&hash, 144).unwrap();
        let deadline = Instant::now() + PATIENCE;
        while self.state(&hash).await != DepositState::Held {
            assert!(Instant::now() < deadline, "never held");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        hash
    }

    async fn state(&self, hash: &PaymentHash) -> DepositState {
        self.lifecycle
            .deposit(hash)
            .await
            .unwrap()
            .unwrap()
            .deposit
            .state
    }

    async fn trigger(&self, hash: &PaymentHash) -> Option<Trigger> {
        let d = self.lifecycle.deposit(hash).await.unwrap().unwrap().deposit;
        assert!(d.pending.is_none(), "an action still pending: {d:?}");
        d.resolution.map(|r| r.trigger)
    }

    fn count(&self, hash: &PaymentHash, call: fn(PaymentHash) -> Call) -> usize {
        self.node
            .calls_for(hash)
            .into_iter()
            .filter(|c| *c == call(*hash))
            .count()
    }

    /// Several timer passes, as the sweeper runs them every second.
    async fn sweeps(&self, n: usize) {
        for _ in 0..n {
            self.lifecycle.sweep().await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_jump_forward_refunds_idle_deposits_and_expires_unpaid_ones_but_settles_nothing() {
    let h = harness().await;
    let idle = h.held(Duration::from_secs(300), 24 * HOUR).await;
    let long = h
        .held(Duration::from_secs(86_400), Duration::from_secs(172_800))
        .await;
    let unpaid = h.open(Duration::from_secs(300), HOUR).await;
    h.sweeps(2).await;
    assert_eq!(h.state(&idle).await, DepositState::Held);

    h.clock.advance(2 * HOUR);
    h.sweeps(3).await;
    assert_eq!(h.state(&idle).await, DepositState::Refunded);
    assert_eq!(h.trigger(&idle).await, Some(Trigger::IdleTimeout));
    assert_eq!(h.state(&unpaid).await, DepositState::Expired);
    assert_eq!(h.trigger(&unpaid).await, Some(Trigger::InvoiceExpired));
    // 2 h is short of its 1-day idle timeout and of the 10 h hard deadline: still held.
    assert_eq!(h.state(&long).await, DepositState::Held);
    for hash in [&idle, &unpaid] {
        assert_eq!(h.count(hash, Call::Cancel), 1);
        assert_eq!(h.count(hash, Call::Settle), 0);
    }

    // Past the hard deadline (10 h after the payment): refunded before lnd would cancel.
    h.clock.advance(9 * HOUR);
    h.sweeps(3).await;
    assert_eq!(h.state(&long).await, DepositState::Refunded);
    assert_eq!(h.trigger(&long).await, Some(Trigger::HardDeadline));
    assert_eq!(h.count(&long, Call::Cancel), 1);
    assert_eq!(h.count(&long, Call::Settle), 0);
    // A forfeit that arrives after the jump's refund changes nothing.
    let late = h
        .lifecycle
        .event(
            &idle,
            Event::Verdict {
                outcome: Outcome::Forfeit,
                trigger: Trigger::RateLimit,
            },
        )
        .await
        .unwrap();
    assert_eq!(late.deposit().state, DepositState::Refunded);
    assert_eq!(h.count(&idle, Call::Settle), 0);
}

#[tokio::test]
async fn a_jump_back_ends_nothing_early_and_every_decision_acts_once() {
    let h = harness().await;
    let leaving = h.held(Duration::from_secs(300), HOUR).await;
    let abusing = h.held(Duration::from_secs(300), HOUR).await;
    let near_deadline = h
        .held(Duration::from_secs(86_400), Duration::from_secs(172_800))
        .await;
    let unpaid = h.open(Duration::from_secs(300), HOUR).await;

    h.clock.rewind(2 * HOUR);
    h.sweeps(3).await;
    h.lifecycle.reconcile().await.unwrap();
    for hash in [&leaving, &abusing, &near_deadline] {
        assert_eq!(h.state(hash).await, DepositState::Held);
    }
    assert_eq!(h.state(&unpaid).await, DepositState::AwaitingPayment);
    assert!(
        h.node
            .calls()
            .iter()
            .all(|c| !matches!(c, Call::Cancel(_) | Call::Settle(_))),
        "a node action after a jump back: {:?}",
        h.node.calls()
    );
    // Activity with the clock behind is accepted and keeps the deposit.
    h.lifecycle.event(&leaving, Event::Activity).await.unwrap();

    // The visitor leaves, the filter reports an abuser: one cancel, one settle.
    h.lifecycle
        .event(&leaving, Event::VisitorLeft)
        .await
        .unwrap();
    h.lifecycle
        .event(
            &abusing,
            Event::Verdict {
                outcome: Outcome::Forfeit,
                trigger: Trigger::TrapPath,
            },
        )
        .await
        .unwrap();
    // The chain does not care about the wall clock: at the deadline height the deposit is
    // refunded although the (rewound) clock says the 10 h deadline is far away.
    h.node.set_block_height(1_000 + 144 - 18 - 6);
    h.lifecycle.reconcile().await.unwrap();
    h.sweeps(3).await;
    // The clock comes back; more passes find nothing more to do.
    h.clock.advance(2 * HOUR);
    h.sweeps(3).await;
    h.lifecycle.reconcile().await.unwrap();

    assert_eq!(h.state(&leaving).await, DepositState::Refunded);
    assert_eq!(h.trigger(&leaving).await, Some(Trigger::VisitorLeft));
    assert_eq!(h.state(&abusing).await, DepositState::Forfeited);
    assert_eq!(h.trigger(&abusing).await, Some(Trigger::TrapPath));
    assert_eq!(h.state(&near_deadline).await, DepositState::Refunded);
    assert_eq!(h.trigger(&near_deadline).await, Some(Trigger::HardDeadline));
    assert_eq!(h.count(&leaving, Call::Cancel), 1);
    assert_eq!(h.count(&leaving, Call::Settle), 0);
    assert_eq!(h.count(&abusing, Call::Settle), 1);
    assert_eq!(h.count(&abusing, Call::Cancel), 0);
    assert_eq!(h.count(&near_deadline, Call::Cancel), 1);
    assert_eq!(h.count(&near_deadline, Call::Settle), 0);
    // The unpaid invoice expires 10 min after its creation; the clock is back at that moment.
    assert_eq!(h.state(&unpaid).await, DepositState::AwaitingPayment);
    assert_eq!(h.count(&unpaid, Call::Cancel), 0);
}
