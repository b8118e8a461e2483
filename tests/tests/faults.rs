//! Faults end to end (the real `.wasm` in the host, the real sidecar, the dev node): decisions
//! the filter makes while the sidecar is down reach it once it is back, the filter's clock
//! jumping forward (a host resuming from suspend) expires tokens without breaking the limits'
//! windows or forfeiting anyone, and its wall clock stepped back (NTP, an operator) neither
//! forfeits anyone nor lets a revoked token back in; and a sidecar killed with SIGKILL (its own
//! process) loses no decision it acknowledged or the filter queued.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use lightning_wall::node::InvoiceState;
use lightning_wall_e2e::testing::{Exchange, Request};
use lightning_wall_e2e::{Wall, header, status};
use lightning_wall_host::{HeaderMap, Message};

fn verdict(v: &'static str) -> impl FnOnce(&Message) -> Message {
    move |_| Message {
        headers: HeaderMap::from_pairs([(":status", "200"), ("x-lightning-wall-verdict", v)]),
        body: b"ok".to_vec(),
        trailers: HeaderMap::new(),
    }
}

#[test]
fn decisions_made_while_the_sidecar_is_down_reach_it_when_it_returns() {
    let mut wall = Wall::start(2);
    let (trapped, c1) = wall.held_deposit("/home");
    let (judged, c2) = wall.held_deposit("/home");
    let (excused, c3) = wall.held_deposit("/home");
    let (browsing, c4) = wall.held_deposit("/home");
    let hash = |c: &serde_json::Value| c["payment_hash"].as_str().unwrap().to_owned();
    let auth = |credential: &str| format!("L402 {credential}");

    wall.stop_sidecar();
    wall.tick();
    // A trap path, an upstream forfeit and an upstream refund while the sidecar is away.
    let ex = wall.send(&Request::get("/wp-login.php").header("authorization", auth(&trapped)));
    assert_eq!(header(&ex, "x-lightning-wall-reason"), Some("forfeited"));
    let ex = wall.send_with(
        &Request::get("/home").header("authorization", auth(&judged)),
        verdict("forfeit"),
    );
    assert_eq!(status(&ex), Some(200));
    assert!(header(&ex, "x-lightning-wall-verdict").is_none());
    wall.send_with(
        &Request::get("/home").header("authorization", auth(&excused)),
        verdict("refund"),
    );
    // Locally those tokens stop at once on every worker; the untouched one keeps working.
    for credential in [&trapped, &judged, &excused] {
        for _ in 0..2 {
            let ex = wall.send(&Request::get("/home").header("authorization", auth(credential)));
            assert_ne!(status(&ex), Some(200));
            assert!(ex.upstream_request.is_none());
        }
    }
    for _ in 0..2 {
        let ex = wall.send(&Request::get("/home").header("authorization", auth(&browsing)));
        assert_eq!(status(&ex), Some(200));
    }
    // Several failed syncs: the queue is kept, not dropped.
    for _ in 0..3 {
        wall.tick();
    }
    assert!(wall.host.metric("lightning_wall.sync_failures").is_some());

    wall.start_sidecar();
    assert_eq!(wall.node_state(&hash(&c1)), InvoiceState::Accepted);
    wall.tick_until_node_state(&hash(&c1), InvoiceState::Settled);
    wall.wait_node_state(&hash(&c2), InvoiceState::Settled);
    wall.wait_node_state(&hash(&c3), InvoiceState::Canceled);
    // More ticks change nothing more; the visitor who did nothing is still held and served.
    wall.tick();
    wall.tick();
    assert_eq!(wall.node_state(&hash(&c3)), InvoiceState::Canceled);
    assert_eq!(wall.node_state(&hash(&c4)), InvoiceState::Accepted);
    let ex = wall.send(&Request::get("/home").header("authorization", auth(&browsing)));
    assert_eq!(status(&ex), Some(200));
}

/// A held deposit on `/home` (rate limit 20 per minute): its credential and payment hash.
fn held(wall: &mut Wall) -> (String, String) {
    let (credential, challenge) = wall.held_deposit("/home");
    let hash = challenge["payment_hash"].as_str().unwrap().to_owned();
    (credential, hash)
}

fn get(wall: &mut Wall, credential: &str) -> Exchange {
    wall.send(&Request::get("/home").header("authorization", format!("L402 {credential}")))
}

#[test]
fn a_forward_jump_of_the_filters_clock_keeps_rate_windows_working_and_forfeits_no_one() {
    let mut wall = Wall::start(2);
    let [(busy, busy_hash), (calm, calm_hash)] = [0, 1].map(|_| held(&mut wall));

    // 15 of the 20 allowed per minute, then the clock jumps 61 s (no tick in between): a new
    // window, so 20 more pass — and the 21st of that window still forfeits.
    for _ in 0..15 {
        assert_eq!(status(&get(&mut wall, &busy)), Some(200));
    }
    wall.host.clock().advance(Duration::from_secs(61));
    for n in 0..20 {
        assert_eq!(
            status(&get(&mut wall, &busy)),
            Some(200),
            "request {n} after the jump"
        );
    }
    let ex = get(&mut wall, &busy);
    assert_eq!(header(&ex, "x-lightning-wall-reason"), Some("forfeited"));
    wall.tick_until_node_state(&busy_hash, InvoiceState::Settled);

    // A jump of 30 min within the token's 1 h: still valid, still held, nothing settled.
    // After a jump Envoy fires the next tick once (the host's `advance` would replay every
    // missed period instead), so the ticks here are `tick_all`.
    wall.host.clock().advance(Duration::from_secs(1800));
    wall.host.tick_all();
    assert_eq!(status(&get(&mut wall, &calm)), Some(200));
    assert_eq!(wall.node_state(&calm_hash), InvoiceState::Accepted);

    // Past valid_until: a fresh challenge, not a forfeit; the deposit stays held (the sidecar's
    // own timers decide about it, on its own clock).
    wall.host.clock().advance(Duration::from_secs(2 * 3600));
    let ex = get(&mut wall, &calm);
    assert_eq!(status(&ex), Some(402));
    assert!(ex.upstream_request.is_none());
    wall.host.tick_all();
    wall.host.tick_all();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(wall.node_state(&calm_hash), InvoiceState::Accepted);
}

#[test]
fn a_backward_step_of_the_filters_wall_clock_forfeits_no_one_and_revives_no_revoked_token() {
    let mut wall = Wall::start(2);
    let [(busy, busy_hash), (calm, calm_hash)] = [0, 1].map(|_| held(&mut wall));

    // 15 of the 20 allowed per minute, then the wall clock steps back 1 h: the window the
    // counts belong to is not the current one, so counting starts again (a step back can only
    // loosen a limit, never push an honest visitor over it); the 21st of the new window still
    // forfeits.
    for _ in 0..15 {
        assert_eq!(status(&get(&mut wall, &busy)), Some(200));
    }
    assert!(wall.host.clock().step_wall(-3600));
    for n in 0..20 {
        assert_eq!(
            status(&get(&mut wall, &busy)),
            Some(200),
            "request {n} after the step"
        );
    }
    let ex = get(&mut wall, &busy);
    assert_eq!(header(&ex, "x-lightning-wall-reason"), Some("forfeited"));
    // Ticks run on the monotonic clock and still carry the verdict to the sidecar.
    wall.tick_until_node_state(&busy_hash, InvoiceState::Settled);

    // Another step back: the forfeited token stays revoked on every worker (its revocation is
    // kept until its expiry, which only moved further away), and the other visitor browses on.
    assert!(wall.host.clock().step_wall(-3600));
    wall.host.tick_all();
    for _ in 0..2 {
        let ex = get(&mut wall, &busy);
        assert_eq!(status(&ex), Some(402));
        assert!(ex.upstream_request.is_none());
    }
    assert_eq!(status(&get(&mut wall, &calm)), Some(200));
    assert_eq!(wall.node_state(&calm_hash), InvoiceState::Accepted);
}

/// Not a test: the entry point of the sidecar's child process in the kill -9 test below (this
/// binary re-executed with the sidecar's config in the environment; see `Wall::start_killable`).
#[test]
#[ignore = "runs only as the sidecar's child process of the kill -9 test"]
fn sidecar_child_process() {
    lightning_wall_e2e::serve_if_child();
}

#[test]
fn a_sidecar_killed_with_sigkill_loses_no_decision_and_tokens_keep_working() {
    let mut wall = Wall::start_killable(2, "sidecar_child_process");
    let [
        (trapped, trapped_hash),
        (excused, excused_hash),
        (browsing, browsing_hash),
    ] = [0, 1, 2].map(|_| held(&mut wall));

    // A trap path forfeits here and now; the next tick hands the verdict to the sidecar, which
    // answers once the decision is stored, and is killed the moment it has answered: before or
    // after it reached the node, the settle must happen exactly once.
    let ex = wall
        .send(&Request::get("/wp-login.php").header("authorization", format!("L402 {trapped}")));
    assert_eq!(header(&ex, "x-lightning-wall-reason"), Some("forfeited"));
    wall.tick();
    wall.kill_sidecar();

    // With the sidecar dead: issued tokens keep verifying locally, the forfeited one stays
    // refused, a new visitor gets the route's failure mode, and a refund verdict is queued.
    // (A refused token would get a fresh challenge, which needs the sidecar: the failure mode.)
    assert_eq!(status(&get(&mut wall, &browsing)), Some(200));
    let ex = get(&mut wall, &trapped);
    assert_eq!(status(&ex), Some(503));
    assert!(ex.upstream_request.is_none());
    let ex = wall.send(&Request::get("/home").header("accept", "application/json"));
    assert_eq!(status(&ex), Some(503));
    let ex = wall.send_with(
        &Request::get("/home").header("authorization", format!("L402 {excused}")),
        verdict("refund"),
    );
    assert_eq!(status(&ex), Some(200));
    assert!(get(&mut wall, &excused).upstream_request.is_none());
    wall.tick(); // fails: nothing listens

    // A new process on the same store and dev node: the acknowledged forfeit settles (at once
    // or by the start-up reconciler), the queued refund cancels, the idle visitor is untouched.
    wall.start_sidecar();
    wall.tick_until_node_state(&trapped_hash, InvoiceState::Settled);
    wall.wait_node_state(&excused_hash, InvoiceState::Canceled);
    assert_eq!(wall.node_state(&browsing_hash), InvoiceState::Accepted);
    assert_eq!(status(&get(&mut wall, &browsing)), Some(200));
    let ex = wall.send(&Request::get("/home").header("accept", "application/json"));
    assert_eq!(status(&ex), Some(402));
}
