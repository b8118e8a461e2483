//! Shadow mode: on a shadow route nothing is challenged, charged, forfeited or refused, and
//! every would-be decision is counted (metric and finding), on tokens minted with the real key
//! ring.
use super::*;
use crate::engine::config::PluginConfig;
use crate::engine::decision::tests::credential;
use crate::engine::decision::{Decision, decide};
use crate::engine::facts::RequestFacts;
use crate::engine::grant::Grant;
use crate::engine::host::memory::MemoryHost;
use crate::engine::outbox::{MAX_BATCH, MAX_QUEUED_FINDINGS, Outbox};
use crate::engine::policy::tests::bootstrap_json;
use crate::engine::policy::{Policy, RouteMode};
use crate::engine::response::{UpstreamVerdict, on_response};
use crate::engine::sync::SyncState;
use l402::Mode;
use lightning_wall_contract::events::Event;

const NOW: u64 = 1_800_000_000;

/// The test policy with its pay route (`api`, index 1) and deposit route (`wall`, index 2) in
/// shadow.
fn shadow_policy() -> Policy {
    let json = bootstrap_json()
        .replace(r#""mode": "pay","#, r#""mode": "pay", "shadow": true,"#)
        .replace(
            r#""mode": "deposit","#,
            r#""mode": "deposit", "shadow": true,"#,
        );
    let p = Policy::from_bootstrap(json.as_bytes()).unwrap();
    assert!(p.routes[1].shadow && p.routes[2].shadow);
    p
}

fn run(p: &Policy, h: &MemoryHost, w: &mut WorkerState, f: &RequestFacts<'_>) -> Decision {
    if !w.revocations.ready() {
        w.revocations
            .load_snapshot(crate::engine::sync::tests::snapshot_body(0, &[]))
            .unwrap();
    }
    let config =
        PluginConfig::parse(br#"{"sidecar_cluster":"lw","failure_mode":"closed"}"#).unwrap();
    decide(Some(p), &config, f, h, w)
}

fn facts<'a>(path: &'a str, auth: Option<&'a str>) -> RequestFacts<'a> {
    RequestFacts {
        method: "GET",
        path,
        authority: "site.example",
        authorization: auth.map(str::as_bytes).into_iter().collect(),
        ..RequestFacts::default()
    }
}

fn hex(id: u8) -> String {
    format!("{id:02x}").repeat(32)
}

#[test]
fn an_unpaid_request_on_a_shadow_route_passes_and_counts_a_would_be_challenge() {
    let p = shadow_policy();
    let h = MemoryHost::at(NOW);
    let mut w = WorkerState::default();
    assert_eq!(run(&p, &h, &mut w, &facts("/v1/x", None)), Decision::Pass);
    assert_eq!(run(&p, &h, &mut w, &facts("/page", None)), Decision::Pass);
    assert_eq!(run(&p, &h, &mut w, &facts("/page", None)), Decision::Pass);
    assert_eq!(h.metric(Metric::WouldChallenge), 3);
    assert_eq!(h.metric(Metric::Challenges), 0);
    let q = |route| {
        w.outbox
            .queued_finding(route, Finding::WouldChallenge, None)
    };
    assert_eq!((q("api"), q("wall")), (1, 2));
    // Findings never hurry a batch: nothing here costs anybody anything.
    assert!(w.outbox.flush().is_none());
}

#[test]
fn a_trap_path_on_a_shadow_route_forfeits_nothing_and_counts_a_would_be_forfeit() {
    let p = shadow_policy();
    let h = MemoryHost::at(NOW);
    let mut w = WorkerState::default();
    let auth = format!("L402 {}", credential(Mode::Deposit, "wall", 5, NOW + 60));
    for _ in 0..2 {
        let d = run(&p, &h, &mut w, &facts("/trap", Some(&auth)));
        assert!(
            matches!(d, Decision::Allow(ref g) if g.token_id == [5; 32]),
            "{d:?}"
        );
    }
    assert!(!w.revocations.contains(&[5; 32]));
    assert_eq!(h.metric(Metric::Forfeits), 0);
    assert!(w.outbox.flush().is_none(), "no verdict was queued");
    assert_eq!(h.metric(Metric::WouldForfeit(Trigger::TrapPath)), 2);
    assert_eq!(
        w.outbox
            .queued_finding("wall", Finding::WouldForfeit, Some(Trigger::TrapPath)),
        2
    );
    // The credential keeps working: the visitor lost nothing.
    assert!(matches!(
        run(&p, &h, &mut w, &facts("/", Some(&auth))),
        Decision::Allow(_)
    ));
}

#[test]
fn a_shadow_rate_limit_counts_one_would_be_forfeit_per_window_and_reports_no_usage() {
    let p = shadow_policy();
    let h = MemoryHost::at(NOW);
    let mut w = WorkerState::default();
    let auth = format!("L402 {}", credential(Mode::Deposit, "wall", 7, NOW + 600));
    // 5 per 60 s: the 6th request would have forfeited; the 7th and 8th count nothing more.
    for _ in 0..8 {
        assert!(matches!(
            run(&p, &h, &mut w, &facts("/", Some(&auth))),
            Decision::Allow(_)
        ));
    }
    assert!(!w.revocations.contains(&[7; 32]));
    assert_eq!(h.metric(Metric::WouldForfeit(Trigger::RateLimit)), 1);
    // The sidecar sums usage against the route's budgets and would forfeit: none is sent.
    assert_eq!(w.outbox.queued_findings_and_usage(), (1, 0));
    h.now.set(NOW + 60);
    for _ in 0..6 {
        run(&p, &h, &mut w, &facts("/", Some(&auth)));
    }
    assert_eq!(h.metric(Metric::WouldForfeit(Trigger::RateLimit)), 2);
}

#[test]
fn a_bad_or_foreign_credential_on_a_shadow_route_passes_and_counts_a_would_be_denial() {
    let p = shadow_policy();
    let h = MemoryHost::at(NOW);
    let mut w = WorkerState::default();
    let cred = credential(Mode::Pay, "api", 1, NOW + 60);
    let (mac, _) = cred.split_once(':').unwrap();
    let wrong = format!("L402 {mac}:{}", "00".repeat(32));
    assert_eq!(
        run(&p, &h, &mut w, &facts("/v1/x", Some(&wrong))),
        Decision::Pass
    );
    let unproven = format!("L402 {mac}:");
    assert_eq!(
        run(&p, &h, &mut w, &facts("/v1/x", Some(&unproven))),
        Decision::Pass
    );
    assert_eq!(h.metric(Metric::WouldDeny("bad_proof")), 1);
    assert_eq!(h.metric(Metric::WouldDeny("proof_missing")), 1);
    assert_eq!(h.metric(Metric::Denied("bad_proof")), 0);
    // A valid pay credential is honoured as on an enforcing route.
    let good = format!("L402 {cred}");
    let d = run(&p, &h, &mut w, &facts("/v1/x", Some(&good)));
    assert!(
        matches!(d, Decision::Allow(ref g) if g.mode == RouteMode::Pay),
        "{d:?}"
    );
}

#[test]
fn upstream_verdicts_and_error_storms_on_a_shadow_route_only_count() {
    let p = shadow_policy();
    let h = MemoryHost::at(NOW);
    let mut w = WorkerState::default();
    let grant = Grant {
        token_id: [8; 32],
        token_hex: hex(8),
        valid_until: Some(NOW + 60),
        mode: RouteMode::Deposit,
        route: 2,
    };
    let forfeit = UpstreamVerdict::parse(Some(b"forfeit"));
    on_response(Some(&p), &grant, Some(200), forfeit, &h, &mut w);
    assert!(!w.revocations.contains(&[8; 32]));
    assert!(w.outbox.flush().is_none());
    assert_eq!(h.metric(Metric::WouldForfeit(Trigger::Upstream)), 1);
    // 3 errors per 60 s allowed: the 4th would have forfeited, the 5th counts nothing more.
    let none = UpstreamVerdict::default();
    for _ in 0..5 {
        on_response(Some(&p), &grant, Some(404), none, &h, &mut w);
    }
    assert!(!w.revocations.contains(&[8; 32]));
    assert_eq!(h.metric(Metric::Forfeits), 0);
    assert_eq!(h.metric(Metric::WouldForfeit(Trigger::ErrorStorm)), 1);
    assert_eq!(w.outbox.queued_findings_and_usage(), (2, 0));
}

#[test]
fn shadow_on_a_free_route_is_ignored() {
    let json = bootstrap_json().replace(r#""mode": "free","#, r#""mode": "free", "shadow": true,"#);
    let p = Policy::from_bootstrap(json.as_bytes()).unwrap();
    assert!(!p.routes[0].shadow);
}

#[test]
fn a_flood_of_findings_is_one_count_per_key_and_the_keys_are_bounded() {
    let mut outbox = Outbox::default();
    for _ in 0..200_000 {
        outbox.finding("wall", Finding::WouldChallenge, None);
    }
    assert_eq!(outbox.queued_findings_and_usage(), (1, 0));
    assert_eq!(
        outbox.queued_finding("wall", Finding::WouldChallenge, None),
        200_000
    );
    // Keys beyond the bound are not counted (a sane config never reaches it).
    for i in 0..MAX_QUEUED_FINDINGS + 50 {
        outbox.finding(&format!("r{i}"), Finding::WouldChallenge, None);
    }
    assert_eq!(outbox.queued_findings_and_usage().0, MAX_QUEUED_FINDINGS);
    assert_eq!(
        outbox.queued_finding("wall", Finding::WouldChallenge, None),
        200_000
    );
}

#[test]
fn findings_go_to_the_sidecar_as_counts_and_a_failed_batch_keeps_them() {
    let h = MemoryHost::at(NOW);
    let mut sync = SyncState::new();
    let mut outbox = Outbox::default();
    let mut revoked = crate::engine::revocations::Revocations::default();
    sync.on_answer(
        crate::engine::sidecar_call::CallKind::Bootstrap,
        Some(200),
        bootstrap_json().as_bytes(),
        &h,
        &mut outbox,
        &mut revoked,
    );
    for _ in 0..3 {
        outbox.finding("wall", Finding::WouldForfeit, Some(Trigger::TrapPath));
    }
    let events_call = |sync: &mut SyncState, outbox: &mut Outbox| {
        sync.on_tick(outbox)
            .into_iter()
            .find(|c| c.kind == crate::engine::sidecar_call::CallKind::Events)
            .unwrap()
    };
    let call = events_call(&mut sync, &mut outbox);
    let batch: lightning_wall_contract::events::EventBatch =
        serde_json::from_slice(call.body.as_deref().unwrap()).unwrap();
    assert!(batch.events.len() <= MAX_BATCH);
    assert_eq!(
        batch.events,
        vec![Event::Shadow {
            route_id: "wall".into(),
            finding: Finding::WouldForfeit,
            trigger: Some(Trigger::TrapPath),
            count: 3
        }]
    );
    // The call fails; one more finding meanwhile: the next batch carries both.
    outbox.finding("wall", Finding::WouldForfeit, Some(Trigger::TrapPath));
    sync.on_answer(
        crate::engine::sidecar_call::CallKind::Events,
        Some(503),
        b"",
        &h,
        &mut outbox,
        &mut revoked,
    );
    assert_eq!(
        outbox.queued_finding("wall", Finding::WouldForfeit, Some(Trigger::TrapPath)),
        4
    );
}
