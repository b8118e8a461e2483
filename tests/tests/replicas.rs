//! Limits across replicas (docs/deployment.md "Several Envoy replicas"): two Envoy instances —
//! two hosts, each loading the real `.wasm` with its own shared data — in front of one sidecar
//! and store. Each instance counts a deposit token's requests and upstream errors in its own
//! shared data and reports its counts with its events; the sidecar sums them. A bot spreading
//! its requests over both instances, under each one's budget, is forfeited once the *sum*
//! crosses the route's budget (the hold invoice ends SETTLED on the node); an honest visitor
//! spreading fewer is refunded when leaving (CANCELED).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use lightning_wall::node::InvoiceState;
use lightning_wall_e2e::testing::{Request, TestHost, echo_upstream};
use lightning_wall_e2e::{Wall, early_in_a_minute, status};
use lightning_wall_host::{HeaderMap, Message};

/// The sidecar and a second proxy instance in front of it, both bootstrapped with their
/// revocation snapshot loaded.
fn two_replicas() -> (Wall, TestHost) {
    early_in_a_minute();
    let wall = Wall::start(1);
    let mut replica = wall.replica(1, None);
    replica.advance(Duration::from_secs(1));
    replica.advance(Duration::from_secs(1));
    (wall, replica)
}

/// One sync period on both instances: their usage counts (and activity) reach the sidecar.
fn tick_both(wall: &mut Wall, replica: &mut TestHost) {
    wall.tick();
    replica.advance(Duration::from_secs(1));
}

fn get(auth: &str) -> Request {
    Request::get("/home").header("authorization", auth)
}

fn not_found(_: &Message) -> Message {
    Message {
        headers: HeaderMap::from_pairs([(":status", "404")]),
        body: b"no".to_vec(),
        trailers: HeaderMap::new(),
    }
}

#[test]
fn a_bot_spreading_requests_over_two_replicas_is_forfeited_once_the_sum_crosses_the_budget() {
    let (mut wall, mut replica) = two_replicas();
    let (credential, challenge) = wall.held_deposit("/home");
    let hash = challenge["payment_hash"].as_str().unwrap();
    let auth = format!("L402 {credential}");
    // The route allows 20 requests a minute. 10 on each instance: the sum is the budget.
    for i in 0..10 {
        assert_eq!(status(&wall.send(&get(&auth))), Some(200), "A {i}");
        let ex = replica.send(&get(&auth), echo_upstream);
        assert_eq!(status(&ex), Some(200), "B {i}");
    }
    tick_both(&mut wall, &mut replica);
    tick_both(&mut wall, &mut replica);
    assert_eq!(
        wall.node_state(hash),
        InvoiceState::Accepted,
        "20 requests in the minute are within the budget"
    );
    // The 21st, on either instance (each has counted only 10 and 11 of them), crosses it.
    assert_eq!(status(&replica.send(&get(&auth), echo_upstream)), Some(200));
    tick_both(&mut wall, &mut replica);
    wall.wait_node_state(hash, InvoiceState::Settled);
    // Both instances learn the revocation at their next sync: the token opens nothing more.
    tick_both(&mut wall, &mut replica);
    assert_eq!(status(&wall.send(&get(&auth))), Some(402));
    let ex = replica.send(&get(&auth), |_| panic!("forwarded"));
    assert_eq!(status(&ex), Some(402));
    let (admin, token) = wall.admin();
    let (_, ended) = wall.get_json(
        &format!("{admin}/admin/v1/deposits/{hash}"),
        Some(&format!("Bearer {token}")),
    );
    assert_eq!(ended["trigger"], "rate_limit", "{ended}");
}

#[test]
fn an_error_storm_spread_over_two_replicas_is_forfeited_once_the_sum_crosses_it() {
    let (mut wall, mut replica) = two_replicas();
    let (credential, challenge) = wall.held_deposit("/home");
    let hash = challenge["payment_hash"].as_str().unwrap();
    let auth = format!("L402 {credential}");
    // 5 upstream errors a minute are allowed: 3 on each instance make 6.
    for _ in 0..3 {
        assert_eq!(status(&wall.send_with(&get(&auth), not_found)), Some(404));
        assert_eq!(status(&replica.send(&get(&auth), not_found)), Some(404));
    }
    tick_both(&mut wall, &mut replica);
    wall.wait_node_state(hash, InvoiceState::Settled);
}

#[test]
fn an_honest_visitor_spreading_fewer_requests_over_two_replicas_is_refunded() {
    let (mut wall, mut replica) = two_replicas();
    let (credential, challenge) = wall.held_deposit("/home");
    let hash = challenge["payment_hash"].as_str().unwrap();
    let auth = format!("L402 {credential}");
    // 20 requests in the minute, 4 of them answered 404, spread over both instances: within
    // both budgets (20 requests, 5 errors), though either instance alone would allow it too.
    for _ in 0..8 {
        assert_eq!(status(&wall.send(&get(&auth))), Some(200));
        assert_eq!(status(&replica.send(&get(&auth), echo_upstream)), Some(200));
        tick_both(&mut wall, &mut replica);
    }
    for _ in 0..2 {
        assert_eq!(status(&wall.send_with(&get(&auth), not_found)), Some(404));
        assert_eq!(status(&replica.send(&get(&auth), not_found)), Some(404));
    }
    tick_both(&mut wall, &mut replica);
    tick_both(&mut wall, &mut replica);
    assert_eq!(wall.node_state(hash), InvoiceState::Accepted);
    assert_eq!(wall.leave(&credential)["state"], "leaving");
    wall.wait_node_state(hash, InvoiceState::Canceled);
}
