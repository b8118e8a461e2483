//! The sync state machine and the outbox, answer by answer, without a host.
use super::*;
use crate::engine::host::memory::MemoryHost;
use crate::engine::policy::tests::bootstrap_json;

/// A snapshot body: `LWR1`, head, count, prefixes.
pub(crate) fn snapshot_body(head: u64, prefixes: &[u64]) -> Vec<u8> {
    let mut b = b"LWR1".to_vec();
    b.extend_from_slice(&head.to_be_bytes());
    b.extend_from_slice(&(prefixes.len() as u32).to_be_bytes());
    for p in prefixes {
        b.extend_from_slice(&p.to_be_bytes());
    }
    b
}

/// Bootstrapped, with an empty snapshot loaded and its follow-up sync answered.
fn bootstrapped(h: &MemoryHost, o: &mut Outbox) -> SyncState {
    let mut s = SyncState::new();
    let calls = s.on_tick(o);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].path, "/v1/bootstrap");
    let mut r = Revocations::default();
    let d = s.on_answer(
        CallKind::Bootstrap,
        Some(200),
        bootstrap_json().as_bytes(),
        h,
        o,
        &mut r,
    );
    assert!(d.policy.is_some());
    assert_eq!(d.follow_up.unwrap().kind, CallKind::Snapshot);
    let d = s.on_snapshot(Some(200), snapshot_body(0, &[]), h, &mut r);
    assert_eq!(d.follow_up.unwrap().path, "/v1/sync?since=0");
    let empty = br#"{"policy_version":"v1","revocations":[],"next_since":0,"more":false}"#;
    s.on_answer(CallKind::Sync, Some(200), empty, h, o, &mut r);
    s
}

#[test]
fn a_new_worker_loads_the_snapshot_right_after_bootstrap_and_syncs_from_its_head() {
    let h = MemoryHost::at(0);
    let mut o = Outbox::default();
    let mut r = Revocations::default();
    let mut s = SyncState::new();
    s.on_tick(&mut o);
    let d = s.on_answer(
        CallKind::Bootstrap,
        Some(200),
        bootstrap_json().as_bytes(),
        &h,
        &mut o,
        &mut r,
    );
    let call = d.follow_up.unwrap();
    assert_eq!(
        (call.kind, call.path.as_str()),
        (CallKind::Snapshot, "/v1/revocations/snapshot")
    );
    // In flight: a tick neither asks again nor syncs before it.
    assert!(s.on_tick(&mut o).is_empty());
    assert!(!r.ready());
    let d = s.on_snapshot(
        Some(200),
        snapshot_body(42, &[0xabab_abab_abab_abab]),
        &h,
        &mut r,
    );
    assert!(r.ready() && r.contains(&[0xab; 32]));
    assert_eq!(d.follow_up.unwrap().path, "/v1/sync?since=42");
    assert!(s.reachable);
}

#[test]
fn a_failed_or_garbage_snapshot_is_asked_for_again_and_no_sync_runs_before_it() {
    let h = MemoryHost::at(0);
    let mut o = Outbox::default();
    let mut r = Revocations::default();
    let mut s = SyncState::new();
    s.on_tick(&mut o);
    s.on_answer(
        CallKind::Bootstrap,
        Some(200),
        bootstrap_json().as_bytes(),
        &h,
        &mut o,
        &mut r,
    );
    s.on_snapshot(Some(503), Vec::new(), &h, &mut r);
    assert!(!s.reachable && !r.ready());
    let calls = s.on_tick(&mut o);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].kind, CallKind::Snapshot);
    s.on_snapshot(Some(200), b"LWR1 garbage".to_vec(), &h, &mut r);
    assert!(!r.ready());
    assert_eq!(h.metric(Metric::SyncFailures), 2);
    assert_eq!(s.on_tick(&mut o)[0].kind, CallKind::Snapshot);
    // A dispatch failure is a failed answer too.
    s.dispatch_failed(CallKind::Snapshot, &h, &mut o);
    assert_eq!(s.on_tick(&mut o)[0].kind, CallKind::Snapshot);
}

#[test]
fn a_fresh_worker_bootstraps_first_and_then_syncs_from_zero() {
    let h = MemoryHost::at(0);
    let mut o = Outbox::default();
    let mut s = bootstrapped(&h, &mut o);
    let calls = s.on_tick(&mut o);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].path, "/v1/sync?since=0");
    // Still in flight: the next tick does not pile up another one.
    assert!(s.on_tick(&mut o).is_empty());
}

#[test]
fn revocations_from_sync_land_in_shared_data_and_the_cursor_moves() {
    let h = MemoryHost::at(0);
    let mut o = Outbox::default();
    let mut r = Revocations::default();
    let mut s = bootstrapped(&h, &mut o);
    s.on_tick(&mut o);
    let id = "ab".repeat(32);
    let body = format!(
        r#"{{"policy_version":"v1","revocations":[{{"seq":7,"token_id":"{id}"}}],"next_since":7,"more":true}}"#
    );
    let d = s.on_answer(
        CallKind::Sync,
        Some(200),
        body.as_bytes(),
        &h,
        &mut o,
        &mut r,
    );
    assert!(r.contains(&[0xab; 32]));
    assert_eq!(d.follow_up.unwrap().path, "/v1/sync?since=7");
}

#[test]
fn a_sequence_that_restarts_is_followed_not_refused_forever() {
    let h = MemoryHost::at(0);
    let mut o = Outbox::default();
    let mut r = Revocations::default();
    let mut s = bootstrapped(&h, &mut o);
    s.on_tick(&mut o);
    let high = br#"{"policy_version":"v1","revocations":[],"next_since":900,"more":false}"#;
    s.on_answer(CallKind::Sync, Some(200), high, &h, &mut o, &mut r);
    assert_eq!(s.on_tick(&mut o)[0].path, "/v1/sync?since=900");
    let low = br#"{"policy_version":"v1","revocations":[],"next_since":3,"more":false}"#;
    s.on_answer(CallKind::Sync, Some(200), low, &h, &mut o, &mut r);
    assert!(s.reachable);
    assert_eq!(s.on_tick(&mut o)[0].path, "/v1/sync?since=3");
}

fn bootstrap_in_store(store: &str) -> String {
    bootstrap_json().replace(
        r#""revocation_seq": 0"#,
        &format!(r#""revocation_seq": 0, "store_id": "{store}""#),
    )
}

#[test]
fn a_bootstrap_naming_another_store_reloads_the_snapshot_and_syncs_from_its_head() {
    let h = MemoryHost::at(0);
    let mut o = Outbox::default();
    let mut r = Revocations::default();
    let mut s = SyncState::new();
    s.on_tick(&mut o);
    let first = bootstrap_in_store("0101010101010101");
    let d = s.on_answer(
        CallKind::Bootstrap,
        Some(200),
        first.as_bytes(),
        &h,
        &mut o,
        &mut r,
    );
    assert_eq!(d.follow_up.unwrap().kind, CallKind::Snapshot);
    let d = s.on_snapshot(
        Some(200),
        snapshot_body(900, &[0xabab_abab_abab_abab]),
        &h,
        &mut r,
    );
    assert_eq!(
        d.follow_up.unwrap().path,
        "/v1/sync?since=900&store=0101010101010101"
    );
    // The store was replaced: the sync answers a new policy version.
    let changed = br#"{"policy_version":"v2","revocations":[],"next_since":900,"more":false}"#;
    let d = s.on_answer(CallKind::Sync, Some(200), changed, &h, &mut o, &mut r);
    assert_eq!(d.follow_up.unwrap().kind, CallKind::Bootstrap);
    let second = bootstrap_in_store("0202020202020202");
    let d = s.on_answer(
        CallKind::Bootstrap,
        Some(200),
        second.as_bytes(),
        &h,
        &mut o,
        &mut r,
    );
    assert_eq!(d.follow_up.unwrap().kind, CallKind::Snapshot, "reloaded");
    let d = s.on_snapshot(Some(200), snapshot_body(3, &[]), &h, &mut r);
    assert_eq!(
        d.follow_up.unwrap().path,
        "/v1/sync?since=3&store=0202020202020202"
    );
    // The old store's snapshot is replaced (its deposit tokens are refused by their store
    // id now); what was learnt since stays.
    assert!(!r.contains(&[0xab; 32]));
    // The same store again (a policy change): no reload.
    let d = s.on_answer(
        CallKind::Bootstrap,
        Some(200),
        second.as_bytes(),
        &h,
        &mut o,
        &mut r,
    );
    assert!(d.follow_up.is_none());
}

#[test]
fn a_sync_sent_before_a_snapshot_reload_does_not_move_the_cursor_it_set() {
    let h = MemoryHost::at(0);
    let mut o = Outbox::default();
    let mut r = Revocations::default();
    let mut s = SyncState::new();
    s.on_tick(&mut o);
    let first = bootstrap_in_store("0101010101010101");
    s.on_answer(
        CallKind::Bootstrap,
        Some(200),
        first.as_bytes(),
        &h,
        &mut o,
        &mut r,
    );
    s.on_snapshot(Some(200), snapshot_body(900, &[]), &h, &mut r);
    // A sync at 900 is in flight when a bootstrap names a new store and its snapshot lands.
    let second = bootstrap_in_store("0202020202020202");
    s.on_answer(
        CallKind::Bootstrap,
        Some(200),
        second.as_bytes(),
        &h,
        &mut o,
        &mut r,
    );
    s.on_snapshot(Some(200), snapshot_body(3, &[]), &h, &mut r);
    let late = br#"{"policy_version":"v1","revocations":[],"next_since":900,"more":false}"#;
    s.on_answer(CallKind::Sync, Some(200), late, &h, &mut o, &mut r);
    // Syncing at 900 in the new store would tell it that it went back.
    assert_eq!(
        s.on_tick(&mut o)[0].path,
        "/v1/sync?since=3&store=0202020202020202"
    );
}

#[test]
fn a_new_policy_version_triggers_a_bootstrap() {
    let h = MemoryHost::at(0);
    let mut o = Outbox::default();
    let mut r = Revocations::default();
    let mut s = bootstrapped(&h, &mut o);
    s.on_tick(&mut o);
    let body = br#"{"policy_version":"v2","revocations":[],"next_since":0,"more":false}"#;
    let d = s.on_answer(CallKind::Sync, Some(200), body, &h, &mut o, &mut r);
    assert_eq!(d.follow_up.unwrap().kind, CallKind::Bootstrap);
}

#[test]
fn garbage_sync_answers_are_failures_that_change_nothing() {
    let h = MemoryHost::at(0);
    let mut o = Outbox::default();
    let mut r = Revocations::default();
    let mut s = bootstrapped(&h, &mut o);
    for body in [
        &br#"{"policy_version":"v1","revocations":[{"seq":1,"token_id":"../x"}],"next_since":1,"more":false}"#[..],
        b"{",
        b"",
    ] {
        s.on_tick(&mut o);
        s.on_answer(CallKind::Sync, Some(200), body, &h, &mut o, &mut r);
    }
    assert!(!s.reachable);
    assert!(h.metric(Metric::SyncFailures) >= 2);
    assert_eq!(s.on_tick(&mut o)[0].path, "/v1/sync?since=0");
}

#[test]
fn a_verdict_is_flushed_at_once_and_a_failed_flush_waits_for_the_tick() {
    let h = MemoryHost::at(0);
    let mut o = Outbox::default();
    let mut r = Revocations::default();
    let mut s = bootstrapped(&h, &mut o);
    let t = "ef".repeat(32);
    o.activity(&t);
    o.reward(&t, 5, "r-1");
    assert!(
        o.flush().is_none(),
        "activity and rewards wait for the tick"
    );
    o.verdict(&t, Verdict::Forfeit, Trigger::RateLimit);
    let flush = o.flush().unwrap();
    assert_eq!(flush.call.path, "/v1/events");
    let json = String::from_utf8(flush.call.body.clone().unwrap()).unwrap();
    assert_eq!(
        json,
        format!(
            r#"{{"events":[{{"type":"reward","token_id":"{t}","sats":5,"reward_id":"r-1"}},{{"type":"verdict","token_id":"{t}","verdict":"forfeit","trigger":"rate_limit"}}]}}"#
        )
    );
    assert!(o.flush().is_none(), "one flush per verdict");
    // The sidecar did not answer: the tick sends it again, with the activity.
    assert!(!o.flushed(flush, None, &h));
    let calls = s.on_tick(&mut o);
    let events = calls.iter().find(|c| c.kind == CallKind::Events).unwrap();
    let json = String::from_utf8(events.body.clone().unwrap()).unwrap();
    assert!(json.contains(r#""verdict":"forfeit""#), "{json}");
    s.on_answer(CallKind::Events, Some(200), b"{}", &h, &mut o, &mut r);
    assert!(o.is_empty());
    // A delivered flush leaves nothing behind.
    o.verdict(&t, Verdict::Refund, Trigger::Upstream);
    let flush = o.flush().unwrap();
    assert!(o.flushed(flush, Some(200), &h));
    assert!(o.is_empty());
}

#[test]
fn events_survive_a_failed_call_and_go_in_the_next_batch() {
    let h = MemoryHost::at(0);
    let mut o = Outbox::default();
    let mut r = Revocations::default();
    let mut s = bootstrapped(&h, &mut o);
    let t = "cd".repeat(32);
    o.activity(&t);
    o.activity(&t);
    o.verdict(&t, Verdict::Forfeit, Trigger::TrapPath);
    o.reward(&t, 21, "review-1");
    let calls = s.on_tick(&mut o);
    let events = calls.iter().find(|c| c.kind == CallKind::Events).unwrap();
    let json = String::from_utf8(events.body.clone().unwrap()).unwrap();
    assert_eq!(
        json,
        format!(
            r#"{{"events":[{{"type":"verdict","token_id":"{t}","verdict":"forfeit","trigger":"trap_path"}},{{"type":"reward","token_id":"{t}","sats":21,"reward_id":"review-1"}},{{"type":"activity","token_id":"{t}"}}]}}"#
        )
    );
    s.on_answer(CallKind::Events, None, b"", &h, &mut o, &mut r);
    assert!(!o.is_empty());
    s.on_answer(CallKind::Sync, Some(503), b"", &h, &mut o, &mut r);
    let again = s.on_tick(&mut o);
    let events2 = again.iter().find(|c| c.kind == CallKind::Events).unwrap();
    assert_eq!(events2.body, events.body);
    s.on_answer(
        CallKind::Events,
        Some(200),
        br#"{"results":[]}"#,
        &h,
        &mut o,
        &mut r,
    );
    assert!(o.is_empty());
}

#[test]
fn usage_counts_keep_the_highest_per_window_and_survive_a_failed_call() {
    let h = MemoryHost::at(0);
    let mut o = Outbox::default();
    let mut r = Revocations::default();
    let mut s = bootstrapped(&h, &mut o);
    let t = "ab".repeat(32);
    o.usage(0xfeed, &t, UsageKind::Requests, 60, 3);
    o.usage(0xfeed, &t, UsageKind::Requests, 60, 5);
    o.usage(0xfeed, &t, UsageKind::Requests, 60, 4); // another worker, later: not less
    o.usage(0xfeed, &t, UsageKind::Errors, 60, 1);
    let calls = s.on_tick(&mut o);
    let events = calls.iter().find(|c| c.kind == CallKind::Events).unwrap();
    let json = String::from_utf8(events.body.clone().unwrap()).unwrap();
    assert_eq!(
        json,
        format!(
            r#"{{"events":[{{"type":"usage","token_id":"{t}","reporter":"000000000000feed","kind":"requests","window_start":60,"count":5}},{{"type":"usage","token_id":"{t}","reporter":"000000000000feed","kind":"errors","window_start":60,"count":1}}]}}"#
        )
    );
    // Lost: queued again, merged with what was counted meanwhile.
    o.usage(0xfeed, &t, UsageKind::Requests, 60, 7);
    s.on_answer(CallKind::Events, None, b"", &h, &mut o, &mut r);
    s.on_answer(CallKind::Sync, Some(503), b"", &h, &mut o, &mut r);
    let again = s.on_tick(&mut o);
    let events = again.iter().find(|c| c.kind == CallKind::Events).unwrap();
    let json = String::from_utf8(events.body.clone().unwrap()).unwrap();
    assert!(
        json.contains(r#""kind":"requests","window_start":60,"count":7"#),
        "{json}"
    );
    assert!(
        json.contains(r#""kind":"errors","window_start":60,"count":1"#),
        "{json}"
    );
}
