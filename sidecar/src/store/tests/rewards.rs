//! The rewards ledger on both backends: idempotent credits, every limit, single-use k1s,
//! reservations that cannot overspend, payouts that end once.

use std::sync::Arc;

use super::fixtures;
use crate::ids::PaymentHash;
use crate::ids::{Timestamp, TokenId};
use crate::rewards::{Limits, Refusal, RewardId};
use crate::store::{
    ClaimRefusal, CreditOutcome, NewPayout, PayoutResult, PayoutState, RewardAccount, Store,
};

const DAY: u64 = 20_000 * 86_400;

fn limits() -> Limits {
    Limits {
        enabled: true,
        max_per_reward_msat: 100_000,
        max_per_token_msat: 250_000,
        max_per_day_msat: 400_000,
        withdraw_min_msat: 1_000,
        withdraw_max_msat: 1_000_000,
        fee_limit_ppm: 10_000,
        fee_limit_min_msat: 1_000,
        fee_limit_max_ppm: 500_000,
        max_fees_per_day_msat: 1_000_000,
        max_withdrawals_per_token: 100,
    }
}

fn id(s: &str) -> RewardId {
    RewardId::parse(s).unwrap()
}

fn payout(n: u8, amount_msat: u64) -> NewPayout {
    NewPayout {
        payment_hash: PaymentHash([n; 32]),
        amount_msat,
        fee_limit_msat: 1_000,
        payment_request: format!("lnbcrt-test-{n}"),
    }
}

async fn credited(
    store: &Store,
    token: &TokenId,
    reward: &str,
    msat: u64,
    at: u64,
) -> CreditOutcome {
    store
        .credit_reward(token, &id(reward), msat, &limits(), Timestamp(at))
        .await
        .unwrap()
}

on_both_stores!(a_reward_id_credits_once_and_a_replay_changes_nothing);
async fn a_reward_id_credits_once_and_a_replay_changes_nothing(store: Store) {
    let token = TokenId([1; 32]);
    assert_eq!(
        credited(&store, &token, "review-1", 40_000, DAY).await,
        CreditOutcome::Credited {
            balance_msat: 40_000
        }
    );
    assert_eq!(
        credited(&store, &token, "review-1", 90_000, DAY + 5).await,
        CreditOutcome::Duplicate {
            credited_msat: 40_000,
            refusal: None
        }
    );
    // The same id on another token is another reward.
    assert!(matches!(
        credited(&store, &TokenId([2; 32]), "review-1", 40_000, DAY).await,
        CreditOutcome::Credited { .. }
    ));
    assert_eq!(
        store.reward_account(&token).await.unwrap(),
        RewardAccount {
            credited_msat: 40_000,
            reserved_msat: 0,
            paid_msat: 0
        }
    );
    let audit = store.reward_audit(&token, 10).await.unwrap();
    assert_eq!(audit.len(), 1, "a replay writes no audit record");
    assert_eq!(
        (
            audit[0].kind.as_str(),
            audit[0].reference.as_str(),
            audit[0].amount_msat
        ),
        ("credit", "review-1", 40_000)
    );
}

on_both_stores!(every_limit_is_enforced_and_a_refusal_is_remembered);
async fn every_limit_is_enforced_and_a_refusal_is_remembered(store: Store) {
    let a = TokenId([1; 32]);
    assert_eq!(
        credited(&store, &a, "big", 100_001, DAY).await,
        CreditOutcome::Refused(Refusal::OverPerReward)
    );
    assert_eq!(
        credited(&store, &a, "big", 1_000, DAY).await,
        CreditOutcome::Duplicate {
            credited_msat: 0,
            refusal: Some(Refusal::OverPerReward)
        },
        "a refused id stays refused"
    );
    for n in 0..2 {
        assert!(matches!(
            credited(&store, &a, &format!("r{n}"), 100_000, DAY).await,
            CreditOutcome::Credited { .. }
        ));
    }
    // 200_000 credited; the per-token limit is 250_000.
    assert_eq!(
        credited(&store, &a, "r2", 60_000, DAY).await,
        CreditOutcome::Refused(Refusal::OverPerToken)
    );
    assert_eq!(
        credited(&store, &a, "r3", 50_000, DAY).await,
        CreditOutcome::Credited {
            balance_msat: 250_000
        }
    );
    // Site-wide: 250_000 today; the day limit is 400_000.
    let b = TokenId([2; 32]);
    assert!(matches!(
        credited(&store, &b, "b1", 100_000, DAY).await,
        CreditOutcome::Credited { .. }
    ));
    assert_eq!(
        credited(&store, &b, "b2", 60_000, DAY + 100).await,
        CreditOutcome::Refused(Refusal::OverPerDay)
    );
    // The next UTC day starts from zero.
    assert!(matches!(
        credited(&store, &b, "b3", 60_000, DAY + 86_400).await,
        CreditOutcome::Credited { .. }
    ));
    let off = Limits {
        enabled: false,
        ..limits()
    };
    assert_eq!(
        store
            .credit_reward(&b, &id("b4"), 1, &off, Timestamp(DAY + 86_400))
            .await
            .unwrap(),
        CreditOutcome::Refused(Refusal::Disabled)
    );
    assert_eq!(
        store.reward_account(&a).await.unwrap().balance_msat(),
        250_000
    );
    let kinds: Vec<String> = store
        .reward_audit(&a, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "credit",
            "credit_refused",
            "credit",
            "credit",
            "credit_refused"
        ]
    );
}

on_both_stores!(concurrent_credits_never_cross_the_per_token_limit);
async fn concurrent_credits_never_cross_the_per_token_limit(store: Store) {
    let token = TokenId([3; 32]);
    let mut tasks = Vec::new();
    for n in 0..10 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .credit_reward(
                    &token,
                    &id(&format!("c{n}")),
                    100_000,
                    &limits(),
                    Timestamp(DAY),
                )
                .await
        }));
    }
    let mut credits = 0;
    for t in tasks {
        if let CreditOutcome::Credited { .. } = t.await.unwrap().unwrap() {
            credits += 1;
        }
    }
    assert_eq!(credits, 2, "250_000 / 100_000");
    assert_eq!(
        store.reward_account(&token).await.unwrap().credited_msat,
        200_000
    );
}

on_both_stores!(a_k1_starts_one_payout_and_the_balance_is_reserved_first);
async fn a_k1_starts_one_payout_and_the_balance_is_reserved_first(store: Store) {
    let token = TokenId([4; 32]);
    credited(&store, &token, "r", 50_000, DAY).await;
    let (k1, other_k1) = ([9; 32], [10; 32]);
    store
        .issue_withdrawal(&token, &k1, Timestamp(DAY), Timestamp(DAY + 600))
        .await
        .unwrap();
    store
        .issue_withdrawal(&token, &other_k1, Timestamp(DAY), Timestamp(DAY + 600))
        .await
        .unwrap();
    assert_eq!(
        store.usable_withdrawal(&k1, Timestamp(DAY)).await.unwrap(),
        Some(token)
    );
    assert_eq!(
        store
            .usable_withdrawal(&k1, Timestamp(DAY + 600))
            .await
            .unwrap(),
        None,
        "expired"
    );
    // More than the balance: refused, and the k1 stays usable.
    assert_eq!(
        store
            .start_payout(&k1, &payout(1, 50_001), &limits(), Timestamp(DAY))
            .await
            .unwrap(),
        Err(ClaimRefusal::InsufficientBalance)
    );
    assert_eq!(
        store
            .start_payout(&k1, &payout(1, 50_000), &limits(), Timestamp(DAY))
            .await
            .unwrap(),
        Ok(token)
    );
    assert_eq!(
        store
            .start_payout(&k1, &payout(2, 1_000), &limits(), Timestamp(DAY))
            .await
            .unwrap(),
        Err(ClaimRefusal::K1Unusable),
        "single use"
    );
    assert_eq!(
        store.reward_account(&token).await.unwrap(),
        RewardAccount {
            credited_msat: 50_000,
            reserved_msat: 50_000,
            paid_msat: 0
        }
    );
    // The same invoice again, even with a fresh k1 and balance: never paid twice.
    credited(&store, &token, "r2", 50_000, DAY).await;
    assert_eq!(
        store
            .start_payout(&other_k1, &payout(1, 50_000), &limits(), Timestamp(DAY))
            .await
            .unwrap(),
        Err(ClaimRefusal::AlreadyPaid)
    );
    let stored = store.payout(&PaymentHash([1; 32])).await.unwrap().unwrap();
    assert_eq!(
        (stored.state, stored.amount_msat, stored.token_id),
        (PayoutState::InFlight, 50_000, token)
    );
    assert_eq!(store.payouts_in_flight(10).await.unwrap().len(), 1);
}

on_both_stores!(concurrent_claims_cannot_overspend);
async fn concurrent_claims_cannot_overspend(store: Store) {
    let token = TokenId([5; 32]);
    credited(&store, &token, "r", 100_000, DAY).await;
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for n in 0..8u8 {
        let k1 = [100 + n; 32];
        store
            .issue_withdrawal(&token, &k1, Timestamp(DAY), Timestamp(DAY + 600))
            .await
            .unwrap();
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .start_payout(&k1, &payout(n, 60_000), &limits(), Timestamp(DAY))
                .await
                .unwrap()
        }));
    }
    let mut started = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            started += 1;
        }
    }
    assert_eq!(started, 1);
    assert_eq!(
        store.reward_account(&token).await.unwrap().balance_msat(),
        40_000
    );
}

on_both_stores!(a_payout_ends_once_and_a_failure_restores_the_balance);
async fn a_payout_ends_once_and_a_failure_restores_the_balance(store: Store) {
    let token = TokenId([6; 32]);
    credited(&store, &token, "r", 90_000, DAY).await;
    for (n, k1) in [(1u8, [11; 32]), (2, [12; 32])] {
        store
            .issue_withdrawal(&token, &k1, Timestamp(DAY), Timestamp(DAY + 600))
            .await
            .unwrap();
        store
            .start_payout(&k1, &payout(n, 30_000), &limits(), Timestamp(DAY))
            .await
            .unwrap()
            .unwrap();
    }
    let (paid, failed) = (PaymentHash([1; 32]), PaymentHash([2; 32]));
    assert!(
        store
            .finish_payout(
                &paid,
                &PayoutResult::Succeeded { fee_msat: 7 },
                Timestamp(DAY + 1)
            )
            .await
            .unwrap()
    );
    let reason = PayoutResult::Failed {
        reason: "FAILURE_REASON_NO_ROUTE".into(),
    };
    assert!(
        store
            .finish_payout(&failed, &reason, Timestamp(DAY + 1))
            .await
            .unwrap()
    );
    // A late or repeated outcome changes nothing.
    assert!(
        !store
            .finish_payout(&paid, &reason, Timestamp(DAY + 2))
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish_payout(
                &failed,
                &PayoutResult::Succeeded { fee_msat: 0 },
                Timestamp(DAY + 2)
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store.reward_account(&token).await.unwrap(),
        RewardAccount {
            credited_msat: 90_000,
            reserved_msat: 0,
            paid_msat: 30_000
        }
    );
    let p = store.payout(&paid).await.unwrap().unwrap();
    assert_eq!((p.state, p.fee_msat), (PayoutState::Succeeded, Some(7)));
    let f = store.payout(&failed).await.unwrap().unwrap();
    assert_eq!(
        (f.state, f.failure_reason.as_deref()),
        (PayoutState::Failed, Some("FAILURE_REASON_NO_ROUTE"))
    );
    assert!(store.payouts_in_flight(10).await.unwrap().is_empty());
    let kinds: Vec<String> = store
        .reward_audit(&token, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "payout_failed",
            "payout_succeeded",
            "payout_started",
            "payout_started",
            "credit"
        ]
    );
}
