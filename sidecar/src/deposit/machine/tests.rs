use std::time::Duration;

use super::*;
use crate::deposit::{DepositTiming, NodeAction};
use crate::ids::PaymentHash;

const T0: Timestamp = Timestamp(1_700_000_000);
const BLOCK: u32 = 800_000;

fn at(secs: u64) -> Timestamp {
    Timestamp(T0.0 + secs)
}

fn unpaid() -> Deposit {
    Deposit {
        payment_hash: PaymentHash([7; 32]),
        token_id: TokenId([9; 32]),
        route_id: "articles".into(),
        client_prefix: "203.0.113.0/24".into(),
        amount_msat: 1_000_000,
        state: DepositState::AwaitingPayment,
        created_at: T0,
        invoice_expires_at: at(600),
        timing: DepositTiming {
            idle_timeout: Duration::from_secs(300),
            session_cap: Duration::from_secs(3600),
            safety_margin_blocks: 6,
            assumed_block_interval: Duration::from_secs(300),
        },
        hold: None,
        resolution: None,
        pending: None,
    }
}

/// 144 blocks of CLTV, lnd's 18-block auto-cancel margin.
fn accepted() -> Event {
    Event::NodeAccepted {
        amount_paid_msat: 1_000_000,
        htlc_expiry_height: Some(BLOCK + 144),
        block_height: BLOCK,
        hold_expiry_delta: 18,
    }
}

fn held() -> Deposit {
    step(&unpaid(), accepted(), at(10)).unwrap().next
}

fn apply(d: &Deposit, event: Event, now: Timestamp) -> Transition {
    step(d, event, now).unwrap()
}

fn node_actions(t: &Transition) -> Vec<NodeAction> {
    t.actions
        .iter()
        .filter_map(|a| match a {
            Action::Node(n) => Some(*n),
            Action::Revoke(_) => None,
        })
        .collect()
}

#[test]
fn full_payment_makes_the_deposit_held_with_no_action() {
    let t = apply(&unpaid(), accepted(), at(10));
    assert_eq!(t.next.state, DepositState::Held);
    assert!(t.actions.is_empty());
    assert_eq!(t.next.pending, None);
    let hold = t.next.hold.unwrap();
    assert_eq!(hold.held_at, at(10));
    assert_eq!(hold.last_activity_at, at(10));
}

#[test]
fn held_deposit_is_refunded_when_the_visitor_leaves() {
    let t = apply(&held(), Event::VisitorLeft, at(100));
    assert_eq!(t.next.state, DepositState::Refunded);
    assert_eq!(
        t.actions,
        [
            Action::Revoke(TokenId([9; 32])),
            Action::Node(NodeAction::Cancel)
        ]
    );
    assert_eq!(t.next.pending, Some(NodeAction::Cancel));
    assert_eq!(
        t.audit,
        Some(Audit {
            outcome: DepositState::Refunded,
            trigger: Trigger::VisitorLeft,
            at: at(100)
        })
    );
}

#[test]
fn held_deposit_is_forfeited_on_a_forfeit_verdict() {
    let verdict = Event::Verdict {
        outcome: Outcome::Forfeit,
        trigger: Trigger::TrapPath,
    };
    let t = apply(&held(), verdict, at(100));
    assert_eq!(t.next.state, DepositState::Forfeited);
    assert_eq!(node_actions(&t), [NodeAction::Settle]);
    assert!(t.actions.contains(&Action::Revoke(TokenId([9; 32]))));
    assert_eq!(t.next.resolution.unwrap().trigger, Trigger::TrapPath);
}

#[test]
fn a_refund_verdict_cancels() {
    let verdict = Event::Verdict {
        outcome: Outcome::Refund,
        trigger: Trigger::Upstream,
    };
    let t = apply(&held(), verdict, at(100));
    assert_eq!(t.next.state, DepositState::Refunded);
    assert_eq!(node_actions(&t), [NodeAction::Cancel]);
}

#[test]
fn settle_is_never_sent_for_an_unpaid_invoice() {
    let forfeit = Event::Verdict {
        outcome: Outcome::Forfeit,
        trigger: Trigger::RateLimit,
    };
    assert_eq!(
        step(&unpaid(), forfeit, at(1)),
        Err(Rejected::NotHeld(DepositState::AwaitingPayment))
    );
    // Nor after it expired, nor after a refund.
    let expired = apply(&unpaid(), Event::Tick { block_height: None }, at(600)).next;
    assert!(step(&expired, forfeit, at(700)).is_err());
    let refunded = apply(&held(), Event::VisitorLeft, at(20)).next;
    assert!(step(&refunded, forfeit, at(30)).is_err());
}

#[test]
fn an_underpaid_accept_is_cancelled_not_held() {
    let short = Event::NodeAccepted {
        amount_paid_msat: 999_999,
        htlc_expiry_height: Some(BLOCK + 144),
        block_height: BLOCK,
        hold_expiry_delta: 18,
    };
    let t = apply(&unpaid(), short, at(10));
    assert_ne!(t.next.state, DepositState::Held);
    assert_eq!(node_actions(&t), [NodeAction::Cancel]);
}

#[test]
fn an_idle_deposit_is_refunded() {
    let d = held();
    let tick = Event::Tick {
        block_height: Some(BLOCK + 1),
    };
    assert_eq!(step(&d, tick, at(10 + 299)), Err(Rejected::NothingDue));
    let t = apply(&d, tick, at(10 + 300));
    assert_eq!(t.next.state, DepositState::Refunded);
    assert_eq!(t.next.resolution.unwrap().trigger, Trigger::IdleTimeout);
    assert_eq!(node_actions(&t), [NodeAction::Cancel]);
}

#[test]
fn activity_postpones_the_idle_refund() {
    let d = apply(&held(), Event::Activity, at(200)).next;
    let tick = Event::Tick { block_height: None };
    assert_eq!(step(&d, tick, at(10 + 300)), Err(Rejected::NothingDue));
    assert_eq!(
        apply(&d, tick, at(200 + 300))
            .next
            .resolution
            .unwrap()
            .trigger,
        Trigger::IdleTimeout
    );
}

#[test]
fn the_session_cap_refunds_even_an_active_visitor() {
    let mut d = held();
    for s in (100..3600).step_by(100) {
        d = apply(&d, Event::Activity, at(s)).next;
    }
    let t = apply(&d, Event::Tick { block_height: None }, at(10 + 3600));
    assert_eq!(t.next.resolution.unwrap().trigger, Trigger::SessionCap);
    assert_eq!(node_actions(&t), [NodeAction::Cancel]);
}

#[test]
fn the_hard_deadline_refunds_before_the_node_auto_cancels() {
    // HTLC expiry only 40 blocks away: 40 - 18 - 6 = 16 blocks x 5 min = 80 min of hold.
    let near = Event::NodeAccepted {
        amount_paid_msat: 1_000_000,
        htlc_expiry_height: Some(BLOCK + 40),
        block_height: BLOCK,
        hold_expiry_delta: 18,
    };
    let mut d = apply(&unpaid(), near, at(0)).next;
    d.timing.session_cap = Duration::from_secs(86_400);
    d.timing.idle_timeout = Duration::from_secs(86_400);
    assert_eq!(d.hold.unwrap().deadline_at, at(16 * 300));
    // By time, with no block height known.
    let t = apply(&d, Event::Tick { block_height: None }, at(16 * 300));
    assert_eq!(t.next.resolution.unwrap().trigger, Trigger::HardDeadline);
    assert_eq!(node_actions(&t), [NodeAction::Cancel]);
    // By blocks, when they come faster than assumed: at height expiry - 18 - 6 the node would
    // cancel 6 blocks later; we cancel now.
    let early = Event::Tick {
        block_height: Some(BLOCK + 40 - 18 - 6),
    };
    let t = apply(&d, early, at(60));
    assert_eq!(t.next.resolution.unwrap().trigger, Trigger::HardDeadline);
    let not_yet = Event::Tick {
        block_height: Some(BLOCK + 40 - 18 - 7),
    };
    assert_eq!(step(&d, not_yet, at(60)), Err(Rejected::NothingDue));
}

#[test]
fn an_accept_too_close_to_the_htlc_expiry_is_refunded_at_once() {
    let too_near = Event::NodeAccepted {
        amount_paid_msat: 1_000_000,
        htlc_expiry_height: Some(BLOCK + 20),
        block_height: BLOCK,
        hold_expiry_delta: 18,
    };
    let t = apply(&unpaid(), too_near, at(5));
    assert_eq!(t.next.state, DepositState::Refunded);
    assert_eq!(t.next.resolution.unwrap().trigger, Trigger::HardDeadline);
    assert_eq!(node_actions(&t), [NodeAction::Cancel]);
}

#[test]
fn an_unpaid_invoice_expires_and_is_cancelled() {
    let tick = Event::Tick { block_height: None };
    assert_eq!(step(&unpaid(), tick, at(599)), Err(Rejected::NothingDue));
    let t = apply(&unpaid(), tick, at(600));
    assert_eq!(t.next.state, DepositState::Expired);
    assert_eq!(t.next.resolution.unwrap().trigger, Trigger::InvoiceExpired);
    assert_eq!(
        t.actions,
        [Action::Node(NodeAction::Cancel)],
        "no token to revoke"
    );
}

#[test]
fn the_node_cancelling_an_unpaid_invoice_expires_it_without_action() {
    let t = apply(&unpaid(), Event::NodeCanceled, at(600));
    assert_eq!(t.next.state, DepositState::Expired);
    assert!(t.actions.is_empty());
    assert_eq!(t.next.pending, None);
}

#[test]
fn duplicate_and_late_events_change_nothing() {
    let d = held();
    assert_eq!(step(&d, accepted(), at(20)), Err(Rejected::Duplicate));
    let refunded = apply(&d, Event::VisitorLeft, at(30)).next;
    for late in [
        Event::VisitorLeft,
        Event::Activity,
        Event::Tick {
            block_height: Some(BLOCK + 200),
        },
        Event::Verdict {
            outcome: Outcome::Forfeit,
            trigger: Trigger::ErrorStorm,
        },
        Event::Verdict {
            outcome: Outcome::Refund,
            trigger: Trigger::Upstream,
        },
    ] {
        assert_eq!(
            step(&refunded, late, at(40)),
            Err(Rejected::AlreadyFinal(DepositState::Refunded)),
            "{late:?}"
        );
    }
    // The cancel is confirmed once; the second confirmation is a duplicate.
    let done = apply(&refunded, Event::NodeCanceled, at(41)).next;
    assert_eq!(done.pending, None);
    assert_eq!(done.state, DepositState::Refunded);
    assert_eq!(
        step(&done, Event::NodeCanceled, at(42)),
        Err(Rejected::Duplicate)
    );
    assert_eq!(
        step(&done, Event::ActionPerformed(NodeAction::Cancel), at(42)),
        Err(Rejected::NoSuchAction)
    );
}

#[test]
fn late_accept_after_refund_cancels_and_changes_nothing_else() {
    // The visitor left before paying; the payment lands afterwards.
    let abandoned = apply(&unpaid(), Event::VisitorLeft, at(5)).next;
    let confirmed = apply(&abandoned, Event::NodeCanceled, at(6)).next;
    let t = apply(&confirmed, accepted(), at(7));
    assert_eq!(t.actions, [Action::Node(NodeAction::Cancel)]);
    assert_eq!(t.next.pending, Some(NodeAction::Cancel));
    assert_eq!(t.audit, None);
    assert_eq!(
        Deposit {
            pending: None,
            ..t.next.clone()
        },
        confirmed,
        "state, resolution and hold unchanged"
    );
    // While that cancel is pending, a replayed accept adds nothing.
    assert_eq!(step(&t.next, accepted(), at(8)), Err(Rejected::Duplicate));
}

#[test]
fn a_forfeit_the_node_cancelled_first_is_recorded_as_refunded() {
    let verdict = Event::Verdict {
        outcome: Outcome::Forfeit,
        trigger: Trigger::RateLimit,
    };
    let forfeited = apply(&held(), verdict, at(50)).next;
    let t = apply(&forfeited, Event::NodeCanceled, at(51));
    assert_eq!(t.next.state, DepositState::Refunded);
    assert_eq!(t.next.pending, None);
    assert_eq!(t.audit.unwrap().trigger, Trigger::NodeCanceled);
    assert!(t.actions.is_empty());
}

#[test]
fn a_settled_forfeit_clears_the_pending_settle() {
    let verdict = Event::Verdict {
        outcome: Outcome::Forfeit,
        trigger: Trigger::Admin,
    };
    let forfeited = apply(&held(), verdict, at(50)).next;
    assert_eq!(forfeited.pending, Some(NodeAction::Settle));
    let done = apply(
        &forfeited,
        Event::ActionPerformed(NodeAction::Settle),
        at(51),
    )
    .next;
    assert_eq!(done.pending, None);
    assert_eq!(done.state, DepositState::Forfeited);
    assert_eq!(
        step(&done, Event::NodeSettled, at(52)),
        Err(Rejected::Duplicate)
    );
}

#[test]
fn next_due_is_the_earliest_timer() {
    assert_eq!(next_due(&unpaid()), Some(at(600)));
    assert_eq!(next_due(&held()), Some(at(10 + 300)));
    let refunded = apply(&held(), Event::VisitorLeft, at(30)).next;
    assert_eq!(next_due(&refunded), None);
}

#[test]
fn stale_activity_does_not_move_the_idle_timer_back() {
    let d = apply(&held(), Event::Activity, at(200)).next;
    assert_eq!(step(&d, Event::Activity, at(150)), Err(Rejected::Duplicate));
}

fn leaving() -> Deposit {
    apply(
        &held(),
        Event::LeaveRequested {
            grace: Duration::from_secs(1),
        },
        at(100),
    )
    .next
}

#[test]
fn a_leave_revokes_at_once_and_refunds_only_after_the_grace() {
    let t = apply(
        &held(),
        Event::LeaveRequested {
            grace: Duration::from_secs(1),
        },
        at(100),
    );
    assert_eq!(t.next.state, DepositState::Held);
    assert_eq!(t.next.public_state(), "leaving");
    assert_eq!(t.actions, vec![Action::Revoke(TokenId([9; 32]))]);
    assert_eq!(t.next.pending, None, "no node action yet");
    // Whole seconds: a tick refunds no earlier than grace + 1 s after the leave's second.
    assert_eq!(next_due(&t.next), Some(at(102)));
    let d = t.next;
    assert_eq!(
        step(&d, Event::Tick { block_height: None }, at(101)),
        Err(Rejected::NothingDue)
    );
    let refunded = apply(&d, Event::Tick { block_height: None }, at(102));
    assert_eq!(refunded.next.state, DepositState::Refunded);
    assert_eq!(node_actions(&refunded), vec![NodeAction::Cancel]);
    assert_eq!(
        refunded.next.resolution.map(|r| r.trigger),
        Some(Trigger::VisitorLeft)
    );
    // The replica that took the leave refunds after exactly the grace.
    let refunded = apply(&d, Event::VisitorLeft, at(101));
    assert_eq!(refunded.next.state, DepositState::Refunded);
    assert_eq!(node_actions(&refunded), vec![NodeAction::Cancel]);
    // The page says "refunded" only once the node confirmed the cancel.
    assert_eq!(refunded.next.public_state(), "leaving");
    let done = apply(
        &refunded.next,
        Event::ActionPerformed(NodeAction::Cancel),
        at(101),
    );
    assert_eq!(done.next.public_state(), "refunded");
}

#[test]
fn a_forfeit_during_the_leave_grace_wins() {
    let t = apply(
        &leaving(),
        Event::Verdict {
            outcome: Outcome::Forfeit,
            trigger: Trigger::TrapPath,
        },
        at(100),
    );
    assert_eq!(t.next.state, DepositState::Forfeited);
    assert_eq!(node_actions(&t), vec![NodeAction::Settle]);
    // The grace's end finds nothing to refund.
    assert_eq!(
        step(&t.next, Event::VisitorLeft, at(101)),
        Err(Rejected::AlreadyFinal(DepositState::Forfeited))
    );
}

#[test]
fn a_second_leave_or_late_activity_changes_nothing_while_leaving() {
    let d = leaving();
    let again = Event::LeaveRequested {
        grace: Duration::from_secs(1),
    };
    assert_eq!(step(&d, again, at(100)), Err(Rejected::Duplicate));
    assert_eq!(step(&d, Event::Activity, at(101)), Err(Rejected::Leaving));
    // An unpaid deposit just ends: nothing is held, nothing to wait for.
    let t = apply(&unpaid(), again, at(5));
    assert_eq!(t.next.state, DepositState::Expired);
}

#[test]
fn a_drain_refunds_a_held_deposit_like_a_leave() {
    let t = apply(&held(), Event::Drain, at(100));
    assert_eq!(t.next.state, DepositState::Refunded);
    assert_eq!(
        t.actions,
        [
            Action::Revoke(TokenId([9; 32])),
            Action::Node(NodeAction::Cancel)
        ]
    );
    assert_eq!(
        t.audit,
        Some(Audit {
            outcome: DepositState::Refunded,
            trigger: Trigger::Drain,
            at: at(100)
        })
    );
}

#[test]
fn a_drain_refunds_a_leaving_deposit_without_waiting_for_the_grace() {
    let leaving = apply(
        &held(),
        Event::LeaveRequested {
            grace: Duration::from_secs(5),
        },
        at(50),
    )
    .next;
    let t = apply(&leaving, Event::Drain, at(51));
    assert_eq!(t.next.state, DepositState::Refunded);
    assert_eq!(node_actions(&t), [NodeAction::Cancel]);
}

#[test]
fn a_drain_cancels_an_unpaid_invoice_so_it_can_no_longer_be_paid() {
    let t = apply(&unpaid(), Event::Drain, at(100));
    assert_eq!(t.next.state, DepositState::Expired);
    assert_eq!(t.next.pending, Some(NodeAction::Cancel));
    assert_eq!(node_actions(&t), [NodeAction::Cancel]);
    assert_eq!(t.next.resolution.unwrap().trigger, Trigger::Drain);
    // Paid after the drain cancelled it: the payment goes back too.
    let done = apply(&t.next, Event::ActionPerformed(NodeAction::Cancel), at(101)).next;
    let late = apply(&done, accepted(), at(102));
    assert_eq!(late.next.pending, Some(NodeAction::Cancel));
}

#[test]
fn a_drain_changes_nothing_already_decided() {
    let forfeit = Event::Verdict {
        outcome: Outcome::Forfeit,
        trigger: Trigger::TrapPath,
    };
    let forfeited = apply(&held(), forfeit, at(100)).next;
    assert_eq!(
        step(&forfeited, Event::Drain, at(101)),
        Err(Rejected::AlreadyFinal(DepositState::Forfeited))
    );
}
