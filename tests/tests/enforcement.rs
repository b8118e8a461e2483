//! Deposit enforcement end to end: trap paths, per-token rate limits, upstream verdicts and
//! error storms forfeit the deposit (the hold invoice ends SETTLED on the dev node), and a
//! cookie request another page could have caused never does (refused, not served). Verdict
//! headers never reach the client. The attacker suite (`attack.rs`) tries every escape.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use lightning_wall::node::InvoiceState;
use lightning_wall_e2e::testing::Request;
use lightning_wall_e2e::{Wall, early_in_a_minute, header, status};
use lightning_wall_host::{HeaderMap, Message};

fn upstream(status: &str, extra: &[(&str, &str)]) -> Message {
    let mut headers = HeaderMap::from_pairs([(":status", status)]);
    for (k, v) in extra {
        headers.add(k.as_bytes(), v.as_bytes());
    }
    Message {
        headers,
        body: b"ok".to_vec(),
        trailers: HeaderMap::new(),
    }
}

fn forfeited_on_the_node(wall: &mut Wall, hash: &str, auth: &str) {
    // One tick carries the verdict to the sidecar, which settles the hold invoice.
    wall.tick_until_node_state(hash, InvoiceState::Settled);
    let ex = wall.send(&Request::get("/home").header("authorization", auth));
    assert_eq!(status(&ex), Some(402), "a forfeited deposit opens nothing");
}

#[test]
fn a_trap_path_forfeits_the_deposit_and_the_hold_invoice_is_settled() {
    let mut wall = Wall::start(1);
    let (credential, challenge) = wall.held_deposit("/home");
    let hash = challenge["payment_hash"].as_str().unwrap();
    let auth = format!("L402 {credential}");
    let ex = wall.send(&Request::get("/wp-login.php").header("authorization", &auth));
    assert_eq!(status(&ex), Some(403));
    assert_eq!(header(&ex, "x-lightning-wall-reason"), Some("forfeited"));
    assert!(ex.upstream_request.is_none());
    forfeited_on_the_node(&mut wall, hash, &auth);
    assert!(wall.host.metric("lightning_wall.forfeits").is_some());
}

#[test]
fn a_cross_site_trap_request_is_refused_and_the_deposit_stays_held() {
    let mut wall = Wall::start(1);
    let (credential, challenge) = wall.held_deposit("/home");
    let hash = challenge["payment_hash"].as_str().unwrap();
    let cookie = format!("lightning-wall={credential}");
    let ex = wall.send(
        &Request::get("/wp-login.php")
            .header("cookie", &cookie)
            .header("sec-fetch-site", "cross-site"),
    );
    assert_eq!(status(&ex), Some(403));
    assert_eq!(
        header(&ex, "x-lightning-wall-reason"),
        Some("cross_site_refused")
    );
    let ex = wall.send(
        &Request::get("/wp-login.php")
            .header("cookie", &cookie)
            .header("referer", "https://evil.example/"),
    );
    assert_eq!(
        header(&ex, "x-lightning-wall-reason"),
        Some("cross_site_refused")
    );
    wall.tick();
    wall.tick();
    assert_eq!(wall.node_state(hash), InvoiceState::Accepted);
    let ex = wall.send(&Request::get("/home").header("cookie", &cookie));
    assert_eq!(status(&ex), Some(200));
}

#[test]
fn exceeding_the_token_rate_limit_forfeits_the_deposit() {
    let mut wall = Wall::start(1);
    let (credential, challenge) = wall.held_deposit("/home");
    let hash = challenge["payment_hash"].as_str().unwrap();
    let auth = format!("L402 {credential}");
    for i in 0..20 {
        let ex = wall.send(&Request::get("/home").header("authorization", &auth));
        assert_eq!(status(&ex), Some(200), "request {i} is within 20/min");
    }
    let ex = wall.send(&Request::get("/home").header("authorization", &auth));
    assert_eq!(status(&ex), Some(429));
    assert_eq!(header(&ex, "x-lightning-wall-reason"), Some("forfeited"));
    forfeited_on_the_node(&mut wall, hash, &auth);
}

#[test]
fn an_upstream_forfeit_verdict_is_stripped_and_settles_the_deposit() {
    let mut wall = Wall::start(1);
    let (credential, challenge) = wall.held_deposit("/home");
    let hash = challenge["payment_hash"].as_str().unwrap();
    let auth = format!("L402 {credential}");
    let ex = wall.send_with(
        &Request::get("/comment").header("authorization", &auth),
        |_| {
            upstream(
                "200",
                &[
                    ("x-lightning-wall-verdict", "forfeit"),
                    ("x-lightning-wall-reward", "10"),
                ],
            )
        },
    );
    assert_eq!(status(&ex), Some(200));
    assert_eq!(header(&ex, "x-lightning-wall-verdict"), None);
    assert_eq!(header(&ex, "x-lightning-wall-reward"), None);
    forfeited_on_the_node(&mut wall, hash, &auth);
}

#[test]
fn an_upstream_refund_verdict_cancels_the_deposit() {
    let mut wall = Wall::start(1);
    let (credential, challenge) = wall.held_deposit("/home");
    let hash = challenge["payment_hash"].as_str().unwrap();
    let auth = format!("L402 {credential}");
    wall.send_with(
        &Request::get("/done").header("authorization", &auth),
        |_| upstream("200", &[("x-lightning-wall-verdict", "refund")]),
    );
    wall.tick_until_node_state(hash, InvoiceState::Canceled);
}

#[test]
fn an_error_storm_from_the_upstream_forfeits_the_deposit() {
    // A tick separates the fifth error from the sixth: both must fall in one minute's window.
    early_in_a_minute();
    let mut wall = Wall::start(1);
    let (credential, challenge) = wall.held_deposit("/home");
    let hash = challenge["payment_hash"].as_str().unwrap();
    let auth = format!("L402 {credential}");
    for _ in 0..5 {
        let ex = wall.send_with(
            &Request::get("/probe").header("authorization", &auth),
            |_| upstream("404", &[]),
        );
        assert_eq!(status(&ex), Some(404));
    }
    wall.tick();
    assert_eq!(
        wall.node_state(hash),
        InvoiceState::Accepted,
        "5 errors are allowed"
    );
    wall.send_with(
        &Request::get("/probe").header("authorization", &auth),
        |_| upstream("404", &[]),
    );
    forfeited_on_the_node(&mut wall, hash, &auth);
}
