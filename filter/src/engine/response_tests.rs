//! The response phase: upstream verdicts, error storms and rewards for an allowed request.
use super::*;
use crate::engine::host::memory::MemoryHost;
use crate::engine::policy::tests::bootstrap_json;

const NOW: u64 = 1_800_000_000;

fn policy() -> Policy {
    Policy::from_bootstrap(bootstrap_json().as_bytes()).unwrap()
}

fn hex(id: u8) -> String {
    format!("{id:02x}").repeat(32)
}

#[test]
fn upstream_verdicts_and_error_storms_end_the_deposit() {
    let p = policy();
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let grant = |id: u8| Grant {
        token_id: [id; 32],
        token_hex: hex(id),
        valid_until: Some(NOW + 60),
        mode: RouteMode::Deposit,
        route: 2,
    };
    let forfeit = UpstreamVerdict::parse(Some(b" Forfeit "));
    on_response(Some(&p), &grant(8), Some(200), forfeit, &h, &mut o);
    assert!(o.revocations.contains(&[8; 32]));
    assert!(o.outbox.flush().is_some(), "sent at once, not at the tick");
    let refund = UpstreamVerdict::parse(Some(b"refund"));
    on_response(Some(&p), &grant(9), Some(200), refund, &h, &mut o);
    assert!(o.revocations.contains(&[9; 32]));
    assert_eq!(h.metric(Metric::Refunds), 1);
    // Error storm: 3 errors per 60 s allowed, the 4th forfeits; 5xx do not count.
    let none = UpstreamVerdict::default();
    for _ in 0..3 {
        on_response(Some(&p), &grant(10), Some(404), none, &h, &mut o);
        on_response(Some(&p), &grant(10), Some(500), none, &h, &mut o);
    }
    assert!(!o.revocations.contains(&[10; 32]));
    on_response(Some(&p), &grant(10), Some(403), none, &h, &mut o);
    assert!(o.revocations.contains(&[10; 32]));
    assert_eq!(h.metric(Metric::Forfeits), 2);
}

#[test]
fn unknown_verdicts_are_ignored() {
    assert_eq!(
        UpstreamVerdict::parse(Some(b"maybe")),
        UpstreamVerdict::default()
    );
}

#[test]
fn a_reward_needs_a_well_formed_amount_and_id() {
    let grant = |sats, id: &str| UpstreamReward::Grant {
        sats,
        id: id.to_owned(),
    };
    assert_eq!(UpstreamReward::parse(None, None), UpstreamReward::Absent);
    assert_eq!(
        UpstreamReward::parse(Some(b" 21 "), Some(b"review-7:a.b_c")),
        grant(21, "review-7:a.b_c")
    );
    let id64 = "x".repeat(64);
    assert_eq!(
        UpstreamReward::parse(Some(b"1"), Some(id64.as_bytes())),
        grant(1, &id64)
    );
    let long = "x".repeat(65);
    for (sats, id) in [
        (Some("21"), None),
        (None, Some("r1")),
        (Some("0"), Some("r1")),
        (Some("-1"), Some("r1")),
        (Some("+5"), Some("r1")),
        (Some("1.5"), Some("r1")),
        (Some("99999999999999999999999"), Some("r1")),
        (Some("2100000000000001"), Some("r1")),
        (Some(""), Some("r1")),
        (Some("5"), Some("")),
        (Some("5"), Some("has space")),
        (Some("5"), Some("slash/no")),
        (Some("5"), Some("\u{e9}")),
        (Some("5"), Some(long.as_str())),
    ] {
        let (sats, id) = (sats.map(str::as_bytes), id.map(str::as_bytes));
        assert_eq!(
            UpstreamReward::parse(sats, id),
            UpstreamReward::Malformed,
            "{sats:?} {id:?}"
        );
    }
}

#[test]
fn rewards_are_queued_only_for_a_valid_credential_and_dropped_otherwise() {
    let h = MemoryHost::at(NOW);
    let mut o = WorkerState::default();
    let pay = Grant {
        token_id: [3; 32],
        token_hex: hex(3),
        valid_until: Some(NOW + 60),
        mode: RouteMode::Pay,
        route: 0,
    };
    let good = UpstreamReward::Grant {
        sats: 21,
        id: "review-1".into(),
    };
    on_reward(Some(&pay), &good, &h, &mut o.outbox);
    on_reward(Some(&pay), &UpstreamReward::Absent, &h, &mut o.outbox);
    assert_eq!(h.metric(Metric::Rewards), 1);
    on_reward(None, &good, &h, &mut o.outbox);
    on_reward(Some(&pay), &UpstreamReward::Malformed, &h, &mut o.outbox);
    assert_eq!(h.metric(Metric::Rewards), 1);
    assert_eq!(h.metric(Metric::RewardsDropped), 2);
    let logs = h.logs.borrow();
    assert_eq!(logs.len(), 2);
    assert!(
        logs.iter()
            .all(|l| !l.contains("review-1") && !l.contains("21")),
        "{logs:?}"
    );
    drop(logs);
    assert!(!o.outbox.is_empty(), "the good reward is queued");
}
