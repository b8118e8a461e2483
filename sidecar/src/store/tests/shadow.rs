//! Shadow findings on both backends: counts add up per day and key, one row per key however
//! many requests, and days past the retention go.

use lightning_wall_contract::events::{Finding, Trigger};

use super::fixtures;

use crate::ids::Timestamp;
use crate::store::{SHADOW_RETENTION_DAYS, ShadowCount, ShadowDay, Store};

const DAY: u64 = 20_000 * 86_400;

fn count(route: &str, finding: Finding, trigger: Option<Trigger>, n: u64) -> ShadowCount {
    ShadowCount {
        route_id: route.into(),
        finding,
        trigger,
        count: n,
    }
}

on_both_stores!(findings_add_up_per_day_and_key_in_one_row_each);
async fn findings_add_up_per_day_and_key_in_one_row_each(store: Store) {
    let challenge = count("wall", Finding::WouldChallenge, None, 1_000_000);
    let trap = count("wall", Finding::WouldForfeit, Some(Trigger::TrapPath), 2);
    // A flood: many batches of the same keys on one day.
    for i in 0..50 {
        store
            .record_shadow(&[challenge.clone(), trap.clone()], Timestamp(DAY + i))
            .await
            .unwrap();
    }
    store
        .record_shadow(
            &[count("api", Finding::WouldChallenge, None, 7)],
            Timestamp(DAY + 86_400 + 5),
        )
        .await
        .unwrap();
    let found = store.shadow_findings(Timestamp(DAY)).await.unwrap();
    assert_eq!(
        found,
        [
            ShadowDay {
                day: Timestamp(DAY + 86_400),
                finding: count("api", Finding::WouldChallenge, None, 7),
            },
            ShadowDay {
                day: Timestamp(DAY),
                finding: count("wall", Finding::WouldChallenge, None, 50_000_000),
            },
            ShadowDay {
                day: Timestamp(DAY),
                finding: count("wall", Finding::WouldForfeit, Some(Trigger::TrapPath), 100),
            },
        ]
    );
    // `since` is a day: the later day only.
    assert_eq!(
        store
            .shadow_findings(Timestamp(DAY + 86_400 + 3_600))
            .await
            .unwrap()
            .len(),
        1
    );
}

on_both_stores!(days_past_the_retention_go_when_new_counts_arrive);
async fn days_past_the_retention_go_when_new_counts_arrive(store: Store) {
    let c = count("wall", Finding::WouldChallenge, None, 1);
    store
        .record_shadow(std::slice::from_ref(&c), Timestamp(DAY))
        .await
        .unwrap();
    let last_kept = DAY + SHADOW_RETENTION_DAYS * 86_400;
    store
        .record_shadow(std::slice::from_ref(&c), Timestamp(last_kept))
        .await
        .unwrap();
    assert_eq!(store.shadow_findings(Timestamp(0)).await.unwrap().len(), 2);
    store
        .record_shadow(&[c], Timestamp(last_kept + 86_400))
        .await
        .unwrap();
    let days: Vec<u64> = store
        .shadow_findings(Timestamp(0))
        .await
        .unwrap()
        .iter()
        .map(|d| d.day.0)
        .collect();
    assert_eq!(days, [last_kept + 86_400, last_kept]);
}
