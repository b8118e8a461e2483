//! The ledger's rules, with no I/O: whether a reward may be credited, what may be withdrawn, the
//! fee a payout may spend. The store applies them inside its transactions (and guards every
//! write with the same bounds, so a race between replicas cannot cross a limit either).

use std::fmt;

use crate::config::RewardsConfig;
use crate::ids::Timestamp;

/// The upstream's idempotency key: 1-64 characters of `[A-Za-z0-9._:-]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RewardId(String);

impl RewardId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(text: &str) -> Option<RewardId> {
        let ok = !text.is_empty()
            && text.len() <= Self::MAX_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        ok.then(|| RewardId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RewardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `rewards:` section in msat, the unit the ledger keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub enabled: bool,
    pub max_per_reward_msat: u64,
    pub max_per_token_msat: u64,
    pub max_per_day_msat: u64,
    pub withdraw_min_msat: u64,
    pub withdraw_max_msat: u64,
    pub fee_limit_ppm: u64,
    pub fee_limit_min_msat: u64,
    /// The fee limit's ceiling as a fraction of the amount (ppm), floor included.
    pub fee_limit_max_ppm: u64,
    /// Routing fees reserved or paid per UTC day, all payouts.
    pub max_fees_per_day_msat: u64,
    /// Payouts (not failed) per token.
    pub max_withdrawals_per_token: u32,
}

impl From<&RewardsConfig> for Limits {
    fn from(c: &RewardsConfig) -> Limits {
        let msat = |sat: u64| sat.saturating_mul(1000);
        Limits {
            enabled: c.enabled,
            max_per_reward_msat: msat(c.max_per_reward_sat),
            max_per_token_msat: msat(c.max_per_token_sat),
            max_per_day_msat: msat(c.max_per_day_sat),
            withdraw_min_msat: msat(c.withdraw_min_sat),
            withdraw_max_msat: msat(c.withdraw_max_sat),
            fee_limit_ppm: c.fee_limit_ppm,
            fee_limit_min_msat: msat(c.fee_limit_min_sat),
            fee_limit_max_ppm: c.fee_limit_max_ppm,
            max_fees_per_day_msat: msat(c.max_fees_per_day_sat),
            max_withdrawals_per_token: c.max_withdrawals_per_token,
        }
    }
}

/// Why a reward credited nothing. An event over a limit credits nothing at all (not "up to the
/// limit"): a partial reward would be a different reward from the one the site decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The kill switch (`rewards.enabled: false`).
    Disabled,
    Zero,
    OverPerReward,
    OverPerToken,
    OverPerDay,
}

impl Refusal {
    pub const ALL: [Refusal; 5] = [
        Refusal::Disabled,
        Refusal::Zero,
        Refusal::OverPerReward,
        Refusal::OverPerToken,
        Refusal::OverPerDay,
    ];

    /// Stable code, in event results, the audit trail and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Disabled => "disabled",
            Refusal::Zero => "zero_amount",
            Refusal::OverPerReward => "over_per_reward_limit",
            Refusal::OverPerToken => "over_per_token_limit",
            Refusal::OverPerDay => "over_per_day_limit",
        }
    }

    pub fn parse(code: &str) -> Option<Refusal> {
        Refusal::ALL.into_iter().find(|r| r.as_str() == code)
    }
}

/// What was credited so far, read in the crediting transaction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Credited {
    /// Everything this token was ever credited (payouts do not give limit room back).
    pub token_msat: u64,
    /// Everything credited today, all tokens.
    pub day_msat: u64,
}

/// Whether a reward of `amount_msat` may be credited on top of `so_far`.
pub fn check_credit(limits: &Limits, so_far: Credited, amount_msat: u64) -> Result<(), Refusal> {
    if !limits.enabled {
        return Err(Refusal::Disabled);
    }
    if amount_msat == 0 {
        return Err(Refusal::Zero);
    }
    if amount_msat > limits.max_per_reward_msat {
        return Err(Refusal::OverPerReward);
    }
    if so_far.token_msat.saturating_add(amount_msat) > limits.max_per_token_msat {
        return Err(Refusal::OverPerToken);
    }
    if so_far.day_msat.saturating_add(amount_msat) > limits.max_per_day_msat {
        return Err(Refusal::OverPerDay);
    }
    Ok(())
}

/// The UTC day a credit counts against.
pub fn utc_day(at: Timestamp) -> u64 {
    at.0 / 86_400
}

/// What an LNURL-withdraw may ask for, in msat (`minWithdrawable`, `maxWithdrawable`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Withdrawable {
    pub min_msat: u64,
    pub max_msat: u64,
}

/// The bounds for a balance; `None` when the balance is below the minimum withdrawal.
pub fn withdrawable(limits: &Limits, balance_msat: u64) -> Option<Withdrawable> {
    let max_msat = balance_msat.min(limits.withdraw_max_msat);
    let min_msat = limits.withdraw_min_msat.max(1);
    (max_msat >= min_msat).then_some(Withdrawable { min_msat, max_msat })
}

/// Routing fee a payout of `amount_msat` may spend: `fee_limit_ppm` of it, at least the floor,
/// never more than `fee_limit_max_ppm` of it (a floor above the amount would pay an attacker's
/// channel more than the withdrawal itself). Paid by the site, not taken from the balance.
pub fn fee_limit_msat(limits: &Limits, amount_msat: u64) -> u64 {
    let share = |ppm: u64| {
        u64::try_from(u128::from(amount_msat) * u128::from(ppm) / 1_000_000).unwrap_or(u64::MAX)
    };
    share(limits.fee_limit_ppm)
        .max(limits.fee_limit_min_msat)
        .min(share(limits.fee_limit_max_ppm))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            enabled: true,
            max_per_reward_msat: 100_000,
            max_per_token_msat: 250_000,
            max_per_day_msat: 1_000_000,
            withdraw_min_msat: 10_000,
            withdraw_max_msat: 200_000,
            fee_limit_ppm: 10_000,
            fee_limit_min_msat: 5_000,
            fee_limit_max_ppm: 500_000,
            max_fees_per_day_msat: 1_000_000,
            max_withdrawals_per_token: 100,
        }
    }

    #[test]
    fn a_reward_within_every_limit_is_credited() {
        assert_eq!(
            check_credit(&limits(), Credited::default(), 100_000),
            Ok(())
        );
        let so_far = Credited {
            token_msat: 150_000,
            day_msat: 900_000,
        };
        assert_eq!(
            check_credit(&limits(), so_far, 100_000),
            Ok(()),
            "limits are inclusive"
        );
    }

    #[test]
    fn the_kill_switch_refuses_everything() {
        let off = Limits {
            enabled: false,
            ..limits()
        };
        assert_eq!(
            check_credit(&off, Credited::default(), 1_000),
            Err(Refusal::Disabled)
        );
    }

    #[test]
    fn a_reward_over_any_limit_credits_nothing_and_says_which() {
        let l = limits();
        assert_eq!(check_credit(&l, Credited::default(), 0), Err(Refusal::Zero));
        assert_eq!(
            check_credit(&l, Credited::default(), 100_001),
            Err(Refusal::OverPerReward)
        );
        let token_full = Credited {
            token_msat: 200_000,
            day_msat: 0,
        };
        assert_eq!(
            check_credit(&l, token_full, 50_001),
            Err(Refusal::OverPerToken)
        );
        let day_full = Credited {
            token_msat: 0,
            day_msat: 950_000,
        };
        assert_eq!(check_credit(&l, day_full, 50_001), Err(Refusal::OverPerDay));
        let huge = Credited {
            token_msat: u64::MAX,
            day_msat: u64::MAX,
        };
        assert_eq!(
            check_credit(&l, huge, 1),
            Err(Refusal::OverPerToken),
            "no overflow"
        );
    }

    #[test]
    fn refusal_codes_round_trip() {
        for r in Refusal::ALL {
            assert_eq!(Refusal::parse(r.as_str()), Some(r));
        }
    }

    #[test]
    fn reward_ids_are_short_and_plain() {
        assert!(RewardId::parse("review-42:v1.2_x").is_some());
        assert!(RewardId::parse(&"a".repeat(64)).is_some());
        assert!(RewardId::parse(&"a".repeat(65)).is_none());
        assert!(RewardId::parse("").is_none());
        assert!(RewardId::parse("a b").is_none());
        assert!(RewardId::parse("é").is_none());
        assert!(RewardId::parse("a/b").is_none());
    }

    #[test]
    fn withdrawals_are_bounded_by_the_balance_and_the_limits() {
        let l = limits();
        assert_eq!(withdrawable(&l, 9_999), None, "below the minimum");
        assert_eq!(
            withdrawable(&l, 50_000),
            Some(Withdrawable {
                min_msat: 10_000,
                max_msat: 50_000
            })
        );
        assert_eq!(
            withdrawable(&l, 900_000),
            Some(Withdrawable {
                min_msat: 10_000,
                max_msat: 200_000
            })
        );
    }

    #[test]
    fn the_fee_limit_is_proportional_with_a_floor() {
        let l = limits();
        assert_eq!(fee_limit_msat(&l, 100_000), 5_000, "floor");
        assert_eq!(fee_limit_msat(&l, 10_000_000), 100_000, "1%");
        assert_eq!(fee_limit_msat(&l, u64::MAX), u64::MAX / 100, "no overflow");
    }

    #[test]
    fn the_fee_limit_never_exceeds_its_share_of_the_amount_even_with_the_floor() {
        let l = limits();
        // A 1 sat withdrawal: the 5 sat floor would be 5x the amount; 50% caps it.
        assert_eq!(fee_limit_msat(&l, 1_000), 500);
        assert_eq!(fee_limit_msat(&l, 0), 0);
    }

    #[test]
    fn days_are_utc_days() {
        assert_eq!(utc_day(Timestamp(86_399)), 0);
        assert_eq!(utc_day(Timestamp(86_400)), 1);
    }
}
