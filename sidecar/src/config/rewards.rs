//! `rewards:` — the limits and fees of upstream-granted satoshi rewards.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;

/// Rewards: the upstream credits a token's ledger; the visitor withdraws over LNURL. Every limit
/// is in satoshis. An event that would cross a limit credits nothing (never part of it).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RewardsConfig {
    /// The kill switch: off, reward events are refused (`disabled`) and no withdrawal starts;
    /// payouts already in flight are still reconciled.
    #[serde(default)]
    pub enabled: bool,
    /// Largest single reward.
    #[serde(default = "default_reward_max_per_reward")]
    pub max_per_reward_sat: u64,
    /// Most one token can ever be credited.
    #[serde(default = "default_reward_max_per_token")]
    pub max_per_token_sat: u64,
    /// Most credited per UTC day, all tokens together.
    #[serde(default = "default_reward_max_per_day")]
    pub max_per_day_sat: u64,
    /// Smallest and largest withdrawal (LNURL `minWithdrawable`/`maxWithdrawable`).
    #[serde(default = "default_reward_withdraw_min")]
    pub withdraw_min_sat: u64,
    #[serde(default = "default_reward_withdraw_max")]
    pub withdraw_max_sat: u64,
    /// Routing fee the node may spend on a payout, in parts per million of the amount, and at
    /// least `fee_limit_min_sat` (small payouts need a floor to route at all).
    #[serde(default = "default_reward_fee_ppm")]
    pub fee_limit_ppm: u64,
    #[serde(default = "default_reward_fee_min")]
    pub fee_limit_min_sat: u64,
    /// The fee limit never exceeds this fraction of the payout (ppm), the floor included: an
    /// attacker routing tiny withdrawals through their own high-fee channel earns at most this
    /// share on top of the rewards.
    #[serde(default = "default_reward_fee_max_ppm")]
    pub fee_limit_max_ppm: u64,
    /// Routing fees all payouts together may reserve per UTC day (fee limits of payouts in
    /// flight, fees of paid ones): part of the budget like the rewards themselves.
    #[serde(default = "default_reward_max_fees_per_day")]
    pub max_fees_per_day_sat: u64,
    /// Payouts one token may start (failed ones do not count).
    #[serde(default = "default_reward_max_withdrawals_per_token")]
    pub max_withdrawals_per_token: u32,
    /// How long an LNURL (its `k1`) may be used after it was shown.
    #[serde(default = "default_reward_lnurl_lifetime", with = "duration")]
    pub lnurl_lifetime: Duration,
    /// `https://site.example`: the origin wallets reach the wall endpoints at. Absent: taken
    /// from the request's `Host` (and `X-Forwarded-Proto`; plain http only on loopback).
    #[serde(default)]
    pub public_url: Option<String>,
}

impl Default for RewardsConfig {
    fn default() -> Self {
        RewardsConfig {
            enabled: false,
            max_per_reward_sat: default_reward_max_per_reward(),
            max_per_token_sat: default_reward_max_per_token(),
            max_per_day_sat: default_reward_max_per_day(),
            withdraw_min_sat: default_reward_withdraw_min(),
            withdraw_max_sat: default_reward_withdraw_max(),
            fee_limit_ppm: default_reward_fee_ppm(),
            fee_limit_min_sat: default_reward_fee_min(),
            fee_limit_max_ppm: default_reward_fee_max_ppm(),
            max_fees_per_day_sat: default_reward_max_fees_per_day(),
            max_withdrawals_per_token: default_reward_max_withdrawals_per_token(),
            lnurl_lifetime: default_reward_lnurl_lifetime(),
            public_url: None,
        }
    }
}

fn default_reward_max_per_reward() -> u64 {
    1_000
}
fn default_reward_max_per_token() -> u64 {
    5_000
}
fn default_reward_max_per_day() -> u64 {
    100_000
}
fn default_reward_withdraw_min() -> u64 {
    1
}
fn default_reward_withdraw_max() -> u64 {
    5_000
}
fn default_reward_fee_ppm() -> u64 {
    10_000
}
fn default_reward_fee_min() -> u64 {
    10
}
fn default_reward_fee_max_ppm() -> u64 {
    100_000
}
fn default_reward_max_fees_per_day() -> u64 {
    1_000
}
fn default_reward_max_withdrawals_per_token() -> u32 {
    10
}
fn default_reward_lnurl_lifetime() -> Duration {
    Duration::from_secs(600)
}
