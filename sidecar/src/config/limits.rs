//! `limits:` — caps on live deposits, mint rates and budgets, long-polls.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Held deposits at once, all clients. Only held ones: unpaid invoices count toward
    /// `max_unpaid_deposits`.
    #[serde(default = "default_max_held")]
    pub max_held_deposits: u32,
    /// Deposits awaiting payment at once, all clients (rows in the store, invoices on the
    /// node, until they expire).
    #[serde(default = "default_max_unpaid")]
    pub max_unpaid_deposits: u32,
    /// Held deposits at once per client prefix (IPv4 /24, IPv6 /48). Only held ones: unpaid
    /// invoices count toward `max_unpaid_deposits_per_prefix`, so a burst of unpaid challenges
    /// cannot lock a whole office or carrier-grade NAT out until the invoices expire.
    #[serde(default = "default_max_held_per_prefix")]
    pub max_held_deposits_per_prefix: u32,
    /// Deposits awaiting payment at once per client prefix (IPv4 /24, IPv6 /48).
    #[serde(default = "default_max_unpaid_per_prefix")]
    pub max_unpaid_deposits_per_prefix: u32,
    /// Bounds every route's amount must respect.
    #[serde(default)]
    pub amount_sat: AmountBounds,
    /// Challenges one client network may mint: an IPv4 /`ipv4_prefix_len`, an IPv6 /64.
    #[serde(default = "default_mint_rate")]
    pub challenge_mint_rate: Rate,
    /// Challenges one IPv6 /48 may mint (a /64 rotation inside one site). Default:
    /// `MINT_RATE_IPV6_48_MULTIPLE` x `challenge_mint_rate`.
    #[serde(default)]
    pub challenge_mint_rate_ipv6_48: Option<Rate>,
    /// IPv4 prefix length the mint rate counts per: 32 (one address) to 24.
    #[serde(default = "default_ipv4_prefix_len")]
    pub ipv4_prefix_len: u8,
    /// Challenges all clients together may mint per second on this replica (invoices on the
    /// node); beyond it the filter answers 503 with `Retry-After`.
    #[serde(default = "default_mint_budget_per_s")]
    pub challenge_mint_budget_per_s: u32,
    /// Percent of `challenge_mint_budget_per_s` one provider network (IPv6 /32, IPv4 /16) may
    /// mint: a flood from one provider's rotating addresses, within every /64 and /48 limit,
    /// cannot spend the whole budget and refuse everyone else (docs/reliability.md "Soak").
    #[serde(default = "default_mint_budget_share_pct")]
    pub challenge_mint_budget_share_pct: u8,
    /// Node lookups all clients together may cause per second on this replica by presenting a
    /// pay credential without its preimage (`GET /.well-known/lightning-wall/payment`, also
    /// what the filter asks); beyond it 503 with `Retry-After`.
    #[serde(default = "default_payment_lookups_per_s")]
    pub payment_lookups_per_s: u32,
    /// Deposit status long-polls (`?wait=N`) waiting at once on this replica; beyond, 503.
    #[serde(default = "default_max_long_polls")]
    pub max_long_polls: u32,
    /// Long-polls waiting at once on one deposit token; beyond, 429.
    #[serde(default = "default_max_long_polls_per_token")]
    pub max_long_polls_per_token: u32,
    /// Percent of `max_long_polls` the deposits of one provider network (IPv6 /32, IPv4 /16,
    /// as `challenge_mint_budget_share_pct`) may hold: one provider's unpaid macaroons cannot
    /// take every place (bench/RESULTS.md "Soak with release binaries").
    #[serde(default = "default_long_poll_share_pct")]
    pub long_poll_share_pct: u8,
}

/// The default /48 mint rate, in /64 rates: 16 LANs of one site minting at full rate at once.
pub const MINT_RATE_IPV6_48_MULTIPLE: u32 = 16;

impl LimitsConfig {
    /// What one provider network (IPv6 /32, IPv4 /16) may mint: its share of the global budget,
    /// at least one a second.
    pub fn mint_rate_provider(&self) -> Rate {
        let share = u64::from(self.challenge_mint_budget_per_s)
            * u64::from(self.challenge_mint_budget_share_pct.min(100))
            / 100;
        Rate {
            requests: u32::try_from(share).unwrap_or(u32::MAX).max(1),
            per: Duration::from_secs(1),
        }
    }

    /// Long-polls the deposits of one provider network may hold at once: its share of
    /// `max_long_polls`, at least one.
    pub fn max_long_polls_per_network(&self) -> u32 {
        let share =
            u64::from(self.max_long_polls) * u64::from(self.long_poll_share_pct.min(100)) / 100;
        u32::try_from(share).unwrap_or(u32::MAX).max(1)
    }

    /// The /48 mint rate, explicit or the default multiple of the /64 rate.
    pub fn mint_rate_ipv6_48(&self) -> Rate {
        self.challenge_mint_rate_ipv6_48.unwrap_or(Rate {
            requests: self
                .challenge_mint_rate
                .requests
                .saturating_mul(MINT_RATE_IPV6_48_MULTIPLE),
            per: self.challenge_mint_rate.per,
        })
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_held_deposits: default_max_held(),
            max_unpaid_deposits: default_max_unpaid(),
            max_held_deposits_per_prefix: default_max_held_per_prefix(),
            max_unpaid_deposits_per_prefix: default_max_unpaid_per_prefix(),
            amount_sat: AmountBounds::default(),
            challenge_mint_rate: default_mint_rate(),
            challenge_mint_rate_ipv6_48: None,
            ipv4_prefix_len: default_ipv4_prefix_len(),
            challenge_mint_budget_per_s: default_mint_budget_per_s(),
            challenge_mint_budget_share_pct: default_mint_budget_share_pct(),
            payment_lookups_per_s: default_payment_lookups_per_s(),
            max_long_polls: default_max_long_polls(),
            max_long_polls_per_token: default_max_long_polls_per_token(),
            long_poll_share_pct: default_long_poll_share_pct(),
        }
    }
}

fn default_max_held() -> u32 {
    10_000
}
fn default_max_unpaid() -> u32 {
    100_000
}
fn default_max_held_per_prefix() -> u32 {
    4
}
fn default_max_unpaid_per_prefix() -> u32 {
    64
}
fn default_ipv4_prefix_len() -> u8 {
    32
}
fn default_max_long_polls() -> u32 {
    10_000
}
fn default_max_long_polls_per_token() -> u32 {
    4
}
fn default_long_poll_share_pct() -> u8 {
    10
}
fn default_mint_budget_per_s() -> u32 {
    1000
}
fn default_mint_budget_share_pct() -> u8 {
    10
}
fn default_payment_lookups_per_s() -> u32 {
    200
}
fn default_mint_rate() -> Rate {
    Rate {
        requests: 10,
        per: Duration::from_secs(60),
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AmountBounds {
    pub min: u64,
    pub max: u64,
}

impl Default for AmountBounds {
    fn default() -> Self {
        AmountBounds {
            min: 1,
            max: 1_000_000,
        }
    }
}

/// `requests` per `per`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub requests: u32,
    #[serde(with = "duration")]
    pub per: Duration,
}
