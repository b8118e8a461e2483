//! The deposit state machine: `step(deposit, event, now)` says what the deposit becomes and what
//! must be done. Pure — no I/O, no clock, no async — so every money rule is a unit test. It must
//! never order a settle for an invoice that was not held, and never forget a cancel that money
//! still waits for.

use std::time::Duration;

use super::DepositState::*;
use super::{Deposit, DepositState, Hold, Leaving, NodeAction, Resolution, Trigger};
use crate::ids::{Timestamp, TokenId};

/// Something that happened to a deposit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The node holds the full payment (hold invoice ACCEPTED).
    NodeAccepted {
        amount_paid_msat: u64,
        htlc_expiry_height: Option<u32>,
        block_height: u32,
        hold_expiry_delta: u32,
    },
    NodeSettled,
    NodeCanceled,
    /// The visitor asked for their deposit back (leave endpoint): the token is revoked at
    /// once, the refund follows after `grace` unless a forfeit comes first.
    LeaveRequested {
        grace: Duration,
    },
    /// Refund the visitor now: the leave grace is over (sent by the replica that took the
    /// leave, after exactly the grace).
    VisitorLeft,
    /// A request was served with this deposit's token (resets the idle timer).
    Activity,
    Verdict {
        outcome: Outcome,
        trigger: Trigger,
    },
    /// Timers: invoice expiry, idle timeout, session cap, hard deadline. `block_height` when
    /// known checks the deadline against the chain too.
    Tick {
        block_height: Option<u32>,
    },
    /// The node confirmed the pending action (or answered that it was already done).
    ActionPerformed(NodeAction),
    /// The node answered that the pending action can never succeed (cancel after settle).
    ActionImpossible(NodeAction),
    /// The operator drains the wall: an unpaid invoice is cancelled so it can no longer be
    /// paid, a held deposit refunded (a leave in progress too: no need to wait for its grace,
    /// the refund is what it waits for).
    Drain,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Refund,
    Forfeit,
}

/// Side effects, in order. The lifecycle persists `next` with these, then performs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Tell the node (retried until confirmed: `next.pending` holds it).
    Node(NodeAction),
    /// Add the token to the revocation list the filter syncs.
    Revoke(TokenId),
}

/// A terminal decision worth an audit record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Audit {
    pub outcome: DepositState,
    pub trigger: Trigger,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub next: Deposit,
    pub actions: Vec<Action>,
    pub audit: Option<Audit>,
}

/// Why an event changed nothing. Not an error for the lifecycle: duplicate and late events are
/// normal (streams replay the current state, events race each other).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("the deposit is not held (state {0:?})")]
    NotHeld(DepositState),
    #[error("the deposit is already {0:?}")]
    AlreadyFinal(DepositState),
    #[error("already known")]
    Duplicate,
    #[error("nothing is due yet")]
    NothingDue,
    #[error("no such action is pending")]
    NoSuchAction,
    #[error("the visitor is leaving; the refund is on its way")]
    Leaving,
}

/// The one transition function.
pub fn step(d: &Deposit, event: Event, now: Timestamp) -> Result<Transition, Rejected> {
    match (d.state, event) {
        (_, Event::ActionPerformed(action)) | (_, Event::ActionImpossible(action)) => {
            if d.pending != Some(action) {
                return Err(Rejected::NoSuchAction);
            }
            Ok(unchanged_but(d, |n| n.pending = None))
        }

        // --- awaiting payment -------------------------------------------------------------
        (
            AwaitingPayment,
            Event::NodeAccepted {
                amount_paid_msat,
                htlc_expiry_height,
                block_height,
                hold_expiry_delta,
            },
        ) => {
            // lnd accepts only once the full amount arrived, but the amount is money: check.
            if amount_paid_msat < d.amount_msat {
                return Ok(finish(
                    d,
                    Refunded,
                    Trigger::NodeCanceled,
                    now,
                    Some(NodeAction::Cancel),
                ));
            }
            let deadline_at =
                hard_deadline(d, htlc_expiry_height, block_height, hold_expiry_delta, now);
            let hold = Hold {
                held_at: now,
                last_activity_at: now,
                htlc_expiry_height,
                hold_expiry_delta,
                deadline_at,
                leaving: None,
            };
            if deadline_at <= now {
                // Accepted too close to the HTLC expiry to be usable: give it back at once.
                let mut t = finish(
                    d,
                    Refunded,
                    Trigger::HardDeadline,
                    now,
                    Some(NodeAction::Cancel),
                );
                t.next.hold = Some(hold);
                return Ok(t);
            }
            Ok(unchanged_but(d, |n| {
                n.state = Held;
                n.hold = Some(hold);
            }))
        }
        // Nobody but us knows the preimage, so this means our own settle; take the node's word.
        (AwaitingPayment, Event::NodeSettled) => {
            Ok(finish(d, Forfeited, Trigger::NodeSettled, now, None))
        }
        (AwaitingPayment, Event::NodeCanceled) => {
            let trigger = if now >= d.invoice_expires_at {
                Trigger::InvoiceExpired
            } else {
                Trigger::NodeCanceled
            };
            Ok(finish(d, Expired, trigger, now, None))
        }
        // Cancel so that an abandoned invoice can no longer be paid.
        (AwaitingPayment, Event::VisitorLeft | Event::LeaveRequested { .. }) => Ok(finish(
            d,
            Expired,
            Trigger::VisitorLeft,
            now,
            Some(NodeAction::Cancel),
        )),
        (AwaitingPayment, Event::Tick { .. }) => {
            if now >= d.invoice_expires_at {
                Ok(finish(
                    d,
                    Expired,
                    Trigger::InvoiceExpired,
                    now,
                    Some(NodeAction::Cancel),
                ))
            } else {
                Err(Rejected::NothingDue)
            }
        }
        (AwaitingPayment, Event::Drain) => Ok(finish(
            d,
            Expired,
            Trigger::Drain,
            now,
            Some(NodeAction::Cancel),
        )),
        (AwaitingPayment, Event::Activity) | (AwaitingPayment, Event::Verdict { .. }) => {
            Err(Rejected::NotHeld(AwaitingPayment))
        }

        // --- held --------------------------------------------------------------------------
        (Held, Event::NodeAccepted { .. }) => Err(Rejected::Duplicate),
        (Held, Event::NodeSettled) => Ok(finish(d, Forfeited, Trigger::NodeSettled, now, None)),
        (Held, Event::NodeCanceled) => Ok(finish(d, Refunded, Trigger::NodeCanceled, now, None)),
        // Revoke now (no worker serves the token any more) and refund after the grace: a
        // forfeit the filter decided just before or with this leave is still on its way.
        (Held, Event::LeaveRequested { grace }) => {
            let Some(hold) = d.hold else {
                return Err(Rejected::NotHeld(Held));
            };
            if hold.leaving.is_some() {
                return Err(Rejected::Duplicate);
            }
            let mut t = unchanged_but(d, |n| {
                n.hold = Some(Hold {
                    leaving: Some(Leaving {
                        left_at: now,
                        refund_at: now.plus(grace).plus(Duration::from_secs(1)),
                    }),
                    ..hold
                });
            });
            t.actions.push(Action::Revoke(d.token_id));
            Ok(t)
        }
        (Held, Event::VisitorLeft) => Ok(finish(
            d,
            Refunded,
            Trigger::VisitorLeft,
            now,
            Some(NodeAction::Cancel),
        )),
        (Held, Event::Activity) => {
            let Some(hold) = d.hold else {
                return Err(Rejected::NotHeld(Held));
            };
            if hold.leaving.is_some() {
                // In flight before the leave; the token is revoked.
                return Err(Rejected::Leaving);
            }
            if now <= hold.last_activity_at {
                return Err(Rejected::Duplicate);
            }
            Ok(unchanged_but(d, |n| {
                n.hold = Some(Hold {
                    last_activity_at: now,
                    ..hold
                });
            }))
        }
        (Held, Event::Verdict { outcome, trigger }) => Ok(match outcome {
            Outcome::Refund => finish(d, Refunded, trigger, now, Some(NodeAction::Cancel)),
            Outcome::Forfeit => finish(d, Forfeited, trigger, now, Some(NodeAction::Settle)),
        }),
        (Held, Event::Drain) => Ok(finish(
            d,
            Refunded,
            Trigger::Drain,
            now,
            Some(NodeAction::Cancel),
        )),
        (Held, Event::Tick { block_height }) => match due_refund(d, block_height, now) {
            Some(trigger) => Ok(finish(d, Refunded, trigger, now, Some(NodeAction::Cancel))),
            None => Err(Rejected::NothingDue),
        },

        // --- final states: only confirmations, and cancels that money still waits for ------
        (Refunded | Expired, Event::NodeAccepted { .. }) => {
            // A payment that arrived after we gave up must go back, whatever else happened.
            if d.pending == Some(NodeAction::Cancel) {
                return Err(Rejected::Duplicate);
            }
            Ok(Transition {
                next: Deposit {
                    pending: Some(NodeAction::Cancel),
                    ..d.clone()
                },
                actions: vec![Action::Node(NodeAction::Cancel)],
                audit: None,
            })
        }
        (Refunded | Expired, Event::NodeCanceled) => confirm(d, NodeAction::Cancel),
        (Forfeited, Event::NodeSettled) => confirm(d, NodeAction::Settle),
        // The node gave the money back before our settle landed (auto-cancel at the HTLC
        // deadline, or the visitor's node failed the HTLC): the forfeit was not collected.
        (Forfeited, Event::NodeCanceled) => {
            let mut t = finish_from_final(d, Refunded, Trigger::NodeCanceled, now);
            t.next.pending = None;
            Ok(t)
        }
        // Cannot follow from our decisions (we settle only forfeits); if the node says so
        // anyway, the record must show where the money went.
        (Refunded | Expired, Event::NodeSettled) => {
            let mut t = finish_from_final(d, Forfeited, Trigger::NodeSettled, now);
            t.next.pending = None;
            Ok(t)
        }
        (Forfeited, Event::NodeAccepted { .. }) => Err(Rejected::Duplicate),
        (state @ (Refunded | Forfeited | Expired), _) => Err(Rejected::AlreadyFinal(state)),
    }
}

/// When the deposit next needs a `Tick`, if ever.
pub fn next_due(d: &Deposit) -> Option<Timestamp> {
    match d.state {
        AwaitingPayment => Some(d.invoice_expires_at),
        Held => {
            let hold = d.hold?;
            let due = hold
                .deadline_at
                .min(hold.held_at.plus(d.timing.session_cap))
                .min(hold.last_activity_at.plus(d.timing.idle_timeout));
            Some(hold.leaving.map_or(due, |l| due.min(l.refund_at)))
        }
        Refunded | Forfeited | Expired => None,
    }
}

/// The latest time we may still cancel safely: the HTLC expiry height minus the node's
/// auto-cancel margin minus our safety margin, turned into time with the (deliberately short)
/// assumed block interval. lnd auto-cancels at `block_height + holdexpirydelta >= expiry_height`.
pub fn hard_deadline(
    d: &Deposit,
    htlc_expiry_height: Option<u32>,
    block_height: u32,
    hold_expiry_delta: u32,
    now: Timestamp,
) -> Timestamp {
    let Some(expiry) = htlc_expiry_height else {
        // Unknown HTLC expiry (a backend that cannot say): the session cap is all we have.
        return now.plus(d.timing.session_cap);
    };
    let blocks_left = expiry
        .saturating_sub(hold_expiry_delta)
        .saturating_sub(d.timing.safety_margin_blocks)
        .saturating_sub(block_height);
    now.plus(d.timing.assumed_block_interval.saturating_mul(blocks_left))
}

fn due_refund(d: &Deposit, block_height: Option<u32>, now: Timestamp) -> Option<Trigger> {
    let hold = d.hold?;
    let chain_deadline_reached = match (block_height, hold.htlc_expiry_height) {
        (Some(height), Some(expiry)) => {
            height
                .saturating_add(hold.hold_expiry_delta)
                .saturating_add(d.timing.safety_margin_blocks)
                >= expiry
        }
        _ => false,
    };
    if chain_deadline_reached || now >= hold.deadline_at {
        Some(Trigger::HardDeadline)
    } else if hold.leaving.is_some_and(|l| now >= l.refund_at) {
        Some(Trigger::VisitorLeft)
    } else if now >= hold.held_at.plus(d.timing.session_cap) {
        Some(Trigger::SessionCap)
    } else if now >= hold.last_activity_at.plus(d.timing.idle_timeout) {
        Some(Trigger::IdleTimeout)
    } else {
        None
    }
}

fn unchanged_but(d: &Deposit, change: impl FnOnce(&mut Deposit)) -> Transition {
    let mut next = d.clone();
    change(&mut next);
    Transition {
        next,
        actions: Vec::new(),
        audit: None,
    }
}

/// From a live state to a final one: record why, revoke a held deposit's token, and queue the
/// node action.
fn finish(
    d: &Deposit,
    state: DepositState,
    trigger: Trigger,
    now: Timestamp,
    action: Option<NodeAction>,
) -> Transition {
    let mut actions = Vec::new();
    if d.state == Held {
        actions.push(Action::Revoke(d.token_id));
    }
    if let Some(a) = action {
        actions.push(Action::Node(a));
    }
    Transition {
        next: Deposit {
            state,
            resolution: Some(Resolution { at: now, trigger }),
            pending: action,
            ..d.clone()
        },
        actions,
        audit: Some(Audit {
            outcome: state,
            trigger,
            at: now,
        }),
    }
}

fn finish_from_final(
    d: &Deposit,
    state: DepositState,
    trigger: Trigger,
    now: Timestamp,
) -> Transition {
    Transition {
        next: Deposit {
            state,
            resolution: Some(Resolution { at: now, trigger }),
            ..d.clone()
        },
        actions: Vec::new(),
        audit: Some(Audit {
            outcome: state,
            trigger,
            at: now,
        }),
    }
}

/// The node reports the final state we asked for: the pending action is done.
fn confirm(d: &Deposit, action: NodeAction) -> Result<Transition, Rejected> {
    if d.pending == Some(action) {
        Ok(unchanged_but(d, |n| n.pending = None))
    } else {
        Err(Rejected::Duplicate)
    }
}

#[cfg(test)]
mod tests;
