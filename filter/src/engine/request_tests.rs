//! A request's course without a host: each call-out as a value, its answer, and what the
//! adapter is told to do. Tokens are minted with the real key ring (decision_tests.rs).
use super::*;
use crate::engine::callout::Cluster;
use crate::engine::config::PluginConfig;
use crate::engine::decision::tests::credential;
use crate::engine::host::memory::MemoryHost;
use crate::engine::policy::Policy;
use crate::engine::policy::tests::bootstrap_json;
use crate::engine::sync::tests::snapshot_body;
use l402::Mode;
use lightning_wall_contract::paths;

const NOW: u64 = 1_800_000_000;

/// A bootstrapped worker with its revocation snapshot; `extra` adds plugin configuration.
fn worker(extra: &str) -> Worker {
    let mut w = Worker::new();
    w.config = Some(
        PluginConfig::parse(
            format!(r#"{{"sidecar_cluster":"lw","retry_after_s":7{extra}}}"#).as_bytes(),
        )
        .unwrap(),
    );
    w.policy = Some(Policy::from_bootstrap(bootstrap_json().as_bytes()).unwrap());
    w.state
        .revocations
        .load_snapshot(snapshot_body(0, &[]))
        .unwrap();
    w
}

fn headers(path: &str, authorization: Option<&str>) -> Vec<(String, Vec<u8>)> {
    let mut h = vec![
        (":method".to_owned(), b"GET".to_vec()),
        (":path".to_owned(), path.as_bytes().to_vec()),
        (":authority".to_owned(), b"site.example".to_vec()),
    ];
    if let Some(a) = authorization {
        h.push(("Authorization".to_owned(), a.as_bytes().to_vec()));
    }
    h
}

fn reply(step: &Step) -> (u32, Option<&str>) {
    match step {
        Step::Reply(r) => (r.status, r.reason()),
        other => panic!("not a reply: {other:?}"),
    }
}

fn challenge_answer() -> String {
    format!(
        r#"{{"mode":"deposit","route_id":"wall","macaroon":"AgEO","invoice":"lnbcrt10u1pabc","payment_hash":"{h}","token_id":"{h}","amount_sat":1000,"invoice_expires_at":5,"valid_until":9,"www_authenticate":["L402 macaroon=\"AgEO\", invoice=\"lnbcrt10u1pabc\""]}}"#,
        h = "0a".repeat(32)
    )
}

#[test]
fn a_challenge_is_a_call_out_with_the_route_and_the_client_network_then_a_counted_402() {
    let h = MemoryHost::at(NOW);
    *h.client.borrow_mut() = Some("[2001:db8::7]:443".into());
    let mut w = worker("");
    let mut r = RequestState::default();
    let Step::CallOut(call) = r.on_request_headers(&headers("/", None), &mut w, &h) else {
        panic!("no call-out")
    };
    let out = call.outgoing();
    assert_eq!(
        (out.cluster, out.method, out.path, out.authorization),
        (Cluster::Sidecar, "POST", paths::CHALLENGE, None)
    );
    let body: serde_json::Value = serde_json::from_slice(out.body.unwrap()).unwrap();
    assert_eq!(body["route_id"], "wall");
    assert_eq!(body["client_ip"], "2001:db8::7");
    let answer = challenge_answer();
    let step = r.on_answer(
        call,
        &CallAnswer {
            status: Some(200),
            retry_after: None,
            body: answer.as_bytes(),
        },
        &mut w,
        &h,
    );
    assert_eq!(reply(&step).0, 402);
    assert_eq!(h.metric(Metric::Challenges), 1);
}

#[test]
fn a_client_without_an_address_is_minted_for_as_the_shared_unknown_network() {
    let h = MemoryHost::at(NOW);
    let mut w = worker("");
    let Step::CallOut(call) =
        RequestState::default().on_request_headers(&headers("/", None), &mut w, &h)
    else {
        panic!("no call-out")
    };
    let body: serde_json::Value = serde_json::from_slice(call.outgoing().body.unwrap()).unwrap();
    assert_eq!(body["client_ip"], "0.0.0.0");
}

#[test]
fn a_challenge_the_sidecar_does_not_answer_is_a_counted_503_and_marks_it_down() {
    let h = MemoryHost::at(NOW);
    let mut w = worker("");
    let mut r = RequestState::default();
    let Step::CallOut(call) = r.on_request_headers(&headers("/", None), &mut w, &h) else {
        panic!("no call-out")
    };
    let step = r.on_answer(call, &CallAnswer::default(), &mut w, &h);
    assert_eq!(reply(&step), (503, Some("unavailable")));
    let Step::Reply(sent) = &step else {
        unreachable!()
    };
    assert!(sent.headers.contains(&("retry-after", "7".into())));
    assert_eq!(h.metric(Metric::Denied("unavailable")), 1);
    assert!(health::is_down(&h));
    // The next visitor is not made to wait for a call-out timeout.
    let next = RequestState::default().on_request_headers(&headers("/", None), &mut w, &h);
    assert_eq!(reply(&next), (503, Some("unavailable")));
}

/// The soak's flood (docs/reliability.md "Soak"): one visitor's call-out timed out on a loaded
/// sidecar, another's was refused by the spent mint budget. Each gets its 503, but the next
/// (honest) visitor is not refused because of someone else's request.
#[test]
fn a_slow_or_refused_challenge_does_not_refuse_the_next_visitor() {
    let h = MemoryHost::at(NOW);
    let mut w = worker("");
    let budget = br#"{"error":{"code":"mint_budget_spent","message":"too many challenges"}}"#;
    let answers = [
        CallAnswer {
            status: Some(504),
            retry_after: None,
            body: b"upstream request timeout",
        },
        CallAnswer {
            status: Some(503),
            retry_after: Some(b"1"),
            body: budget,
        },
    ];
    for answer in &answers {
        let mut r = RequestState::default();
        let Step::CallOut(call) = r.on_request_headers(&headers("/", None), &mut w, &h) else {
            panic!("no call-out")
        };
        assert_eq!(reply(&r.on_answer(call, answer, &mut w, &h)).0, 503);
        assert!(!health::is_down(&h), "{:?}", answer.status);
        let next = RequestState::default().on_request_headers(&headers("/", None), &mut w, &h);
        // A call-out, or the client's own mint limit (429): never the sidecar-down 503.
        let unavailable = matches!(&next, Step::Reply(r) if r.status == 503);
        assert!(!unavailable, "{:?}: {next:?}", answer.status);
    }
}

#[test]
fn a_drained_or_budget_spent_sidecar_is_a_503_but_stays_up_so_the_next_challenge_asks_it() {
    for code in ["draining", "mint_budget_spent"] {
        let h = MemoryHost::at(NOW);
        let mut w = worker("");
        let mut r = RequestState::default();
        let Step::CallOut(call) = r.on_request_headers(&headers("/", None), &mut w, &h) else {
            panic!("no call-out")
        };
        let body = format!(r#"{{"error":{{"code":"{code}","message":"refused"}}}}"#);
        let answer = CallAnswer {
            status: Some(503),
            retry_after: Some(b"1"),
            body: body.as_bytes(),
        };
        let step = r.on_answer(call, &answer, &mut w, &h);
        assert_eq!(reply(&step).0, 503, "{code}");
        assert!(!health::is_down(&h), "{code}: the sidecar answered");
        // After `undrain` (or a second later, the budget refilled) the very next visitor is
        // minted for; and a fail-open route (`/v1/`) is not let through without asking.
        for path in ["/", "/v1/x"] {
            let next = RequestState::default().on_request_headers(&headers(path, None), &mut w, &h);
            assert!(
                matches!(next, Step::CallOut(CallOut::Challenge { .. })),
                "{code} {path}: {next:?}"
            );
        }
    }
}

#[test]
fn a_challenge_that_cannot_be_sent_follows_the_route_failure_mode() {
    let h = MemoryHost::at(NOW);
    let mut w = worker("");
    // `/v1/` is the fail-open pay route: the request goes through unprotected.
    let mut r = RequestState::default();
    let Step::CallOut(call) = r.on_request_headers(&headers("/v1/x", None), &mut w, &h) else {
        panic!("no call-out")
    };
    assert_eq!(r.not_sent(call, &mut w, &h), Step::Forward(Vec::new()));
    let Step::CallOut(call) = r.on_request_headers(&headers("/", None), &mut w, &h) else {
        panic!("no call-out")
    };
    assert_eq!(reply(&r.not_sent(call, &mut w, &h)).0, 503);
}

#[test]
fn the_sidecar_mint_limit_is_counted_as_rate_limited() {
    let h = MemoryHost::at(NOW);
    let mut w = worker("");
    let mut r = RequestState::default();
    let Step::CallOut(call) = r.on_request_headers(&headers("/", None), &mut w, &h) else {
        panic!("no call-out")
    };
    let answer = CallAnswer {
        status: Some(429),
        retry_after: Some(b"42"),
        body: b"",
    };
    let step = r.on_answer(call, &answer, &mut w, &h);
    assert_eq!(reply(&step), (429, Some("rate_limited")));
    assert_eq!(h.metric(Metric::Denied("rate_limited")), 1);
    assert_eq!(h.metric(Metric::Challenges), 0);
}

/// An empty-proof deposit credential's confirmation call-out, with the full credential.
fn confirm(h: &MemoryHost, w: &mut Worker, r: &mut RequestState, path: &str) -> (CallOut, String) {
    let full = credential(Mode::Deposit, "wall", 4, NOW + 60);
    let (mac, _) = full.split_once(':').unwrap();
    let auth = format!("L402 {mac}:");
    let Step::CallOut(call) = r.on_request_headers(&headers(path, Some(&auth)), w, h) else {
        panic!("no call-out")
    };
    let out = call.outgoing();
    assert_eq!(
        (out.cluster, out.method, out.path, out.body),
        (Cluster::Wall, "GET", paths::DEPOSIT_STATUS, None)
    );
    // The receipt never leaves the filter before the sidecar confirmed.
    assert_eq!(out.authorization, Some(auth.as_str()));
    (call, full)
}

fn status_answer(state: &str) -> String {
    format!(r#"{{"state":"{state}"}}"#)
}

#[test]
fn a_held_deposit_is_allowed_and_its_full_credential_handed_back_once() {
    let h = MemoryHost::at(NOW);
    let mut w = worker(r#","wall_cluster":"lw_wall""#);
    let mut r = RequestState::default();
    let (call, full) = confirm(&h, &mut w, &mut r, "/");
    let held = status_answer("held");
    let answer = CallAnswer {
        status: Some(200),
        retry_after: None,
        body: held.as_bytes(),
    };
    let Step::Forward(upstream) = r.on_answer(call, &answer, &mut w, &h) else {
        panic!("not forwarded")
    };
    assert!(upstream.contains(&(header::TOKEN, "04".repeat(32).into())));
    assert!(upstream.contains(&(header::MODE, "deposit".into())));
    assert_eq!(h.metric(Metric::Allowed), 1);
    assert_eq!(
        r.credential_headers(),
        [
            (header::CREDENTIAL, full),
            ("cache-control", "no-store".into())
        ]
    );
    assert!(r.credential_headers().is_empty());
}

#[test]
fn a_deposit_not_held_is_a_401_and_an_unanswered_confirmation_follows_the_failure_mode() {
    let h = MemoryHost::at(NOW);
    let mut w = worker(r#","wall_cluster":"lw_wall""#);
    let mut r = RequestState::default();
    let (call, _) = confirm(&h, &mut w, &mut r, "/");
    let waiting = status_answer("awaiting_payment");
    let answer = CallAnswer {
        status: Some(200),
        retry_after: None,
        body: waiting.as_bytes(),
    };
    let step = r.on_answer(call, &answer, &mut w, &h);
    assert_eq!(reply(&step), (401, Some("deposit_not_held")));
    assert_eq!(h.metric(Metric::Denied("deposit_not_held")), 1);
    assert!(r.credential_headers().is_empty());
    let (call, _) = confirm(&h, &mut w, &mut r, "/");
    let step = r.on_answer(call, &CallAnswer::default(), &mut w, &h);
    assert_eq!(reply(&step), (503, Some("unavailable")));
    let (call, _) = confirm(&h, &mut w, &mut r, "/");
    assert_eq!(
        reply(&r.not_sent(call, &mut w, &h)),
        (503, Some("unavailable"))
    );
}

#[test]
fn without_a_wall_cluster_an_empty_proof_is_refused_as_proof_missing() {
    let h = MemoryHost::at(NOW);
    let mut w = worker("");
    let full = credential(Mode::Deposit, "wall", 4, NOW + 60);
    let (mac, _) = full.split_once(':').unwrap();
    let auth = format!("L402 {mac}:");
    let step = RequestState::default().on_request_headers(&headers("/", Some(&auth)), &mut w, &h);
    assert_eq!(reply(&step), (401, Some("proof_missing")));
    assert_eq!(h.metric(Metric::Denied("proof_missing")), 1);
}

#[test]
fn a_held_deposit_on_a_trap_path_is_forfeited_and_the_sidecar_hears_it_before_the_client() {
    let h = MemoryHost::at(NOW);
    let mut w = worker(r#","wall_cluster":"lw_wall""#);
    let mut r = RequestState::default();
    let (call, _) = confirm(&h, &mut w, &mut r, "/trap");
    let held = status_answer("held");
    let answer = CallAnswer {
        status: Some(200),
        retry_after: None,
        body: held.as_bytes(),
    };
    let Step::CallOut(verdicts) = r.on_answer(call, &answer, &mut w, &h) else {
        panic!("the forfeit waits for the sidecar")
    };
    let out = verdicts.outgoing();
    assert_eq!(
        (out.cluster, out.method, out.path),
        (Cluster::Sidecar, "POST", paths::EVENTS)
    );
    let events = String::from_utf8(out.body.unwrap().to_vec()).unwrap();
    assert!(events.contains(r#""verdict":"forfeit""#), "{events}");
    assert!(
        r.credential_headers().is_empty(),
        "a forfeited deposit gets no credential"
    );
    let taken = CallAnswer {
        status: Some(200),
        ..CallAnswer::default()
    };
    let step = r.on_answer(verdicts, &taken, &mut w, &h);
    assert_eq!(reply(&step), (403, Some("forfeited")));
    assert!(w.state.outbox.is_empty());
}

#[test]
fn a_verdict_that_cannot_be_sent_is_queued_again_and_the_reply_still_goes_out() {
    let h = MemoryHost::at(NOW);
    let mut w = worker("");
    let auth = format!("L402 {}", credential(Mode::Deposit, "wall", 5, NOW + 60));
    let mut r = RequestState::default();
    let Step::CallOut(verdicts) = r.on_request_headers(&headers("/trap", Some(&auth)), &mut w, &h)
    else {
        panic!("the forfeit waits for the sidecar")
    };
    let step = r.not_sent(verdicts, &mut w, &h);
    assert_eq!(reply(&step), (403, Some("forfeited")));
    assert!(!w.state.outbox.is_empty(), "the tick sends it");
}

#[test]
fn an_upstream_forfeit_reaches_the_sidecar_before_the_response_where_the_host_allows_it() {
    for (extra, waits) in [("", true), (r#","request_callouts_only":true"#, false)] {
        let h = MemoryHost::at(NOW);
        let mut w = worker(extra);
        let auth = format!("L402 {}", credential(Mode::Deposit, "wall", 6, NOW + 60));
        let mut r = RequestState::default();
        let Step::Forward(_) = r.on_request_headers(&headers("/", Some(&auth)), &mut w, &h) else {
            panic!("not allowed")
        };
        let upstream = UpstreamHeaders {
            verdict: Some(b"forfeit".to_vec()),
            ..UpstreamHeaders::default()
        };
        let step = r.on_response_headers(&upstream, || Some(200), &mut w, &h);
        match step {
            Step::CallOut(call) => {
                assert!(waits, "{extra}");
                let events = String::from_utf8(call.outgoing().body.unwrap().to_vec()).unwrap();
                assert!(events.contains(r#""trigger":"upstream""#), "{events}");
                let taken = CallAnswer {
                    status: Some(200),
                    ..CallAnswer::default()
                };
                let resumed = r.on_answer(call, &taken, &mut w, &h);
                assert_eq!(resumed, Step::Forward(Vec::new()));
            }
            Step::Forward(_) => {
                assert!(!waits, "{extra}");
                assert!(
                    w.state.outbox.flush().is_some(),
                    "the verdict waits for the tick"
                );
            }
            Step::Reply(_) => panic!("the response phase never replies"),
        }
    }
}

#[test]
fn a_pay_grant_never_reads_the_response_status() {
    let h = MemoryHost::at(NOW);
    let mut w = worker("");
    let auth = format!("L402 {}", credential(Mode::Pay, "api", 7, NOW + 60));
    let mut r = RequestState::default();
    let Step::Forward(_) = r.on_request_headers(&headers("/v1/x", Some(&auth)), &mut w, &h) else {
        panic!("not allowed")
    };
    let step = r.on_response_headers(
        &UpstreamHeaders::default(),
        || panic!("status read"),
        &mut w,
        &h,
    );
    assert_eq!(step, Step::Forward(Vec::new()));
}

#[test]
fn own_headers_are_removed_or_on_a_host_that_forwards_them_refused() {
    let h = MemoryHost::at(NOW);
    let mut sent = headers("/", None);
    sent.push(("X-Lightning-Wall-Token".to_owned(), b"forged".to_vec()));
    let w = worker("");
    assert_eq!(
        own_headers(&sent, &w, &h).unwrap(),
        ["X-Lightning-Wall-Token"]
    );
    let w = worker(r#","refuse_own_headers":true"#);
    let refused = own_headers(&sent, &w, &h).unwrap_err();
    assert_eq!(
        (refused.status, refused.reason()),
        (400, Some("own_header"))
    );
    assert_eq!(h.metric(Metric::Denied("own_header")), 1);
    assert!(own_headers(&headers("/", None), &w, &h).unwrap().is_empty());
}
