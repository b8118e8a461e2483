//! Deposits: a visitor's hold invoice from challenge to refund or forfeit. `machine` decides
//! (pure: no I/O, no clock), `lifecycle` persists each decision and then carries it out against the
//! node. Nothing else changes a deposit's state.

pub mod lifecycle;
pub mod machine;
pub mod reference;
pub mod waiters;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::{PaymentHash, Timestamp, TokenId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DepositState {
    /// Hold invoice handed out, not paid yet.
    AwaitingPayment,
    /// The node holds the visitor's HTLCs; the visitor browses.
    Held,
    /// Invoice cancelled (or being cancelled): the money goes back.
    Refunded,
    /// Invoice settled (or being settled): the site keeps the money.
    Forfeited,
    /// Never paid: the invoice expired or was abandoned.
    Expired,
}

impl DepositState {
    pub fn as_str(self) -> &'static str {
        match self {
            DepositState::AwaitingPayment => "awaiting_payment",
            DepositState::Held => "held",
            DepositState::Refunded => "refunded",
            DepositState::Forfeited => "forfeited",
            DepositState::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<DepositState> {
        Some(match s {
            "awaiting_payment" => DepositState::AwaitingPayment,
            "held" => DepositState::Held,
            "refunded" => DepositState::Refunded,
            "forfeited" => DepositState::Forfeited,
            "expired" => DepositState::Expired,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            DepositState::Refunded | DepositState::Forfeited | DepositState::Expired
        )
    }

    pub const ALL: [DepositState; 5] = [
        DepositState::AwaitingPayment,
        DepositState::Held,
        DepositState::Refunded,
        DepositState::Forfeited,
        DepositState::Expired,
    ];
}

/// What the node must still be told about a deposit: decided and persisted, not yet confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeAction {
    Cancel,
    Settle,
}

impl NodeAction {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeAction::Cancel => "cancel",
            NodeAction::Settle => "settle",
        }
    }

    pub fn parse(s: &str) -> Option<NodeAction> {
        match s {
            "cancel" => Some(NodeAction::Cancel),
            "settle" => Some(NodeAction::Settle),
            _ => None,
        }
    }
}

/// Why a deposit ended the way it did (kept in the audit record). Stable snake_case names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    VisitorLeft,
    IdleTimeout,
    SessionCap,
    HardDeadline,
    InvoiceExpired,
    /// The node cancelled by itself (auto-cancel near HTLC expiry, invoice expiry).
    NodeCanceled,
    /// The node reported SETTLED without a forfeit from us.
    NodeSettled,
    TrapPath,
    RateLimit,
    ErrorStorm,
    /// `x-lightning-wall-verdict` from the upstream's response.
    Upstream,
    /// An operator through the admin API or CLI.
    Admin,
    /// The operator's drain (`admin drain`): everything live is given back.
    Drain,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::VisitorLeft => "visitor_left",
            Trigger::IdleTimeout => "idle_timeout",
            Trigger::SessionCap => "session_cap",
            Trigger::HardDeadline => "hard_deadline",
            Trigger::InvoiceExpired => "invoice_expired",
            Trigger::NodeCanceled => "node_canceled",
            Trigger::NodeSettled => "node_settled",
            Trigger::TrapPath => "trap_path",
            Trigger::RateLimit => "rate_limit",
            Trigger::ErrorStorm => "error_storm",
            Trigger::Upstream => "upstream",
            Trigger::Admin => "admin",
            Trigger::Drain => "drain",
        }
    }

    pub fn parse(s: &str) -> Option<Trigger> {
        const ALL: [Trigger; 13] = [
            Trigger::VisitorLeft,
            Trigger::IdleTimeout,
            Trigger::SessionCap,
            Trigger::HardDeadline,
            Trigger::InvoiceExpired,
            Trigger::NodeCanceled,
            Trigger::NodeSettled,
            Trigger::TrapPath,
            Trigger::RateLimit,
            Trigger::ErrorStorm,
            Trigger::Upstream,
            Trigger::Admin,
            Trigger::Drain,
        ];
        ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Timers fixed when the deposit is created (from its route's policy), so a config reload never
/// changes the rules of a deposit already paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DepositTiming {
    pub idle_timeout: Duration,
    pub session_cap: Duration,
    /// Blocks kept between our refund and the node's own auto-cancel.
    pub safety_margin_blocks: u32,
    /// Time per block assumed when turning blocks into a deadline (shorter than average = safe).
    pub assumed_block_interval: Duration,
}

/// Facts about the hold, known once the node reports ACCEPTED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold {
    pub held_at: Timestamp,
    pub last_activity_at: Timestamp,
    /// Lowest HTLC `expiry_height`; the node auto-cancels `hold_expiry_delta` blocks before.
    pub htlc_expiry_height: Option<u32>,
    pub hold_expiry_delta: u32,
    /// Wall-clock form of the hard deadline, computed at accept time.
    pub deadline_at: Timestamp,
    /// The visitor asked to leave: the token is revoked, the refund waits out the leave grace
    /// so that a forfeit already decided (and on its way) still wins.
    pub leaving: Option<Leaving>,
}

/// A leave waiting out its grace (docs/reliability.md "A decided forfeit wins").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaving {
    pub left_at: Timestamp,
    /// When a timer tick refunds at the latest: `left_at + grace + 1 s`, because timestamps
    /// are whole seconds and the grace must never come out shorter than configured. The
    /// replica that took the leave refunds after exactly the grace (`Event::VisitorLeft`).
    pub refund_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub at: Timestamp,
    pub trigger: Trigger,
}

impl Deposit {
    /// The state as the wall endpoints report it: `leaving` from the visitor's leave until the
    /// node confirmed the cancel (the grace, then the cancel itself), so that a page showing
    /// "refunded" means the wallet has its sats back; else the machine's state.
    pub fn public_state(&self) -> &'static str {
        let left = self
            .resolution
            .is_some_and(|r| r.trigger == Trigger::VisitorLeft);
        match (self.state, self.hold.and_then(|h| h.leaving), self.pending) {
            (DepositState::Held, Some(_), _) => "leaving",
            (DepositState::Refunded, _, Some(NodeAction::Cancel)) if left => "leaving",
            (state, _, _) => state.as_str(),
        }
    }
}

/// One deposit as the machine sees it. Persisted whole by the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deposit {
    pub payment_hash: PaymentHash,
    pub token_id: TokenId,
    pub route_id: String,
    /// The client's /24 (IPv4) or /48 (IPv6), e.g. `203.0.113.0/24`.
    pub client_prefix: String,
    pub amount_msat: u64,
    pub state: DepositState,
    pub created_at: Timestamp,
    pub invoice_expires_at: Timestamp,
    pub timing: DepositTiming,
    pub hold: Option<Hold>,
    pub resolution: Option<Resolution>,
    pub pending: Option<NodeAction>,
}
