//! `deposits:` — how deposits are invoiced and how long they may be held.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;

/// How deposits are invoiced and how long they may be held.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DepositsConfig {
    /// BOLT11 expiry of deposit invoices: time to pay.
    #[serde(default = "default_invoice_expiry", with = "duration")]
    pub invoice_expiry: Duration,
    /// Final CLTV delta asked for hold invoices (blocks).
    #[serde(default = "default_cltv_expiry")]
    pub cltv_expiry: u32,
    /// Blocks kept between our own refund and the node's auto-cancel.
    #[serde(default = "default_safety_margin_blocks")]
    pub safety_margin_blocks: u32,
    /// Assumed time per block when turning the HTLC expiry into a wall-clock deadline. Shorter
    /// than the 10-minute average on purpose: blocks come early often.
    #[serde(default = "default_block_interval", with = "duration")]
    pub assumed_block_interval: Duration,
    /// How often the reconciler looks at every unfinished deposit.
    #[serde(default = "default_reconcile_interval", with = "duration")]
    pub reconcile_interval: Duration,
    /// How long a leave waits before the refund, during which a forfeit the filter already
    /// decided still wins (docs/reliability.md "A decided forfeit wins"). Whole seconds.
    #[serde(default = "default_leave_grace", with = "duration")]
    pub leave_grace: Duration,
}

impl Default for DepositsConfig {
    fn default() -> Self {
        DepositsConfig {
            invoice_expiry: default_invoice_expiry(),
            cltv_expiry: default_cltv_expiry(),
            safety_margin_blocks: default_safety_margin_blocks(),
            assumed_block_interval: default_block_interval(),
            reconcile_interval: default_reconcile_interval(),
            leave_grace: default_leave_grace(),
        }
    }
}

fn default_invoice_expiry() -> Duration {
    Duration::from_secs(600)
}
fn default_cltv_expiry() -> u32 {
    144
}
fn default_safety_margin_blocks() -> u32 {
    6
}
fn default_block_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_reconcile_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_leave_grace() -> Duration {
    Duration::from_secs(1)
}
