//! Live reload of `lightning-wall.yaml` end to end: the real `.wasm` in the host, the sidecar
//! (dev node, SQLite) watching its file. The file is rewritten as an operator (or a Kubernetes
//! ConfigMap update) would; the sidecar notices it by itself, and the filter follows on its next
//! sync, with no restart of either. The money is read on the node.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use lightning_wall::node::InvoiceState;
use lightning_wall_e2e::testing::Request;
use lightning_wall_e2e::{Wall, status};
use serde_json::Value;

/// An admin API call with the bearer token: status and JSON body.
fn admin(wall: &Wall, method: &str, path: &str) -> (u16, Value) {
    let (url, token) = wall.admin();
    let url = format!("{url}{path}");
    let token = token.to_owned();
    wall.block_on(async move {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = reqwest::Client::new()
            .request(method, url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    })
}

/// The harness's config with the site-wide `wall` route (the last one) made free.
fn wall_free(original: &str) -> String {
    let at = original.find("  - id: wall\n").expect("the wall route");
    format!(
        "{}  - id: wall\n    match: {{ path: {{ prefix: / }} }}\n    mode: free\n",
        &original[..at]
    )
}

/// Waits (real time, the sidecar polls its file every 2 s) until `GET /admin/v1/config`
/// satisfies `done`; returns that answer.
fn wait_config(wall: &Wall, done: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let (code, body) = admin(wall, "GET", "/admin/v1/config");
        assert_eq!(code, 200, "{body}");
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < until, "the sidecar never reloaded: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Ticks the filter until an unpaid request for `/home` gets `want` (its sync brings the new
/// policy version, then it bootstraps again).
fn filter_follows(wall: &mut Wall, want: u16) {
    for _ in 0..5 {
        wall.tick();
        let ex = wall.send(&Request::get("/home").header("accept", "application/json"));
        if status(&ex) == Some(want) {
            return;
        }
    }
    panic!("the filter never answered {want} for /home");
}

#[test]
fn a_deposit_route_switched_to_free_and_back_is_followed_without_restart_and_keeps_the_money() {
    let mut wall = Wall::start(1);
    let original = std::fs::read_to_string(wall.config_path()).unwrap();
    let (_, started) = admin(&wall, "GET", "/admin/v1/config");
    assert_eq!(started["generation"], 1, "{started}");
    let (credential, challenge) = wall.held_deposit("/home");
    let hash = challenge["payment_hash"].as_str().unwrap().to_owned();

    std::fs::write(wall.config_path(), wall_free(&original)).unwrap();
    let now = wait_config(&wall, |c| c["generation"] == 2);
    assert!(now["last_refused"].is_null(), "{now}");
    filter_follows(&mut wall, 200);
    let ex = wall.send(&Request::get("/home").header("accept", "application/json"));
    assert!(ex.upstream_request.is_some(), "a free route passes");
    assert!(
        wall.sidecar_metrics()
            .contains("lightning_wall_config_generation 2"),
        "the metric shows the reload"
    );
    // The money: the visitor's deposit is still held, nothing settled or cancelled by the
    // reload; the normal rules end it (here: the visitor leaves).
    assert_eq!(wall.node_state(&hash), InvoiceState::Accepted);

    std::fs::write(wall.config_path(), &original).unwrap();
    wait_config(&wall, |c| c["generation"] == 3);
    filter_follows(&mut wall, 402);
    // The deposit held through both reloads still serves its visitor.
    let ex =
        wall.send(&Request::get("/home").header("authorization", format!("L402 {credential}")));
    assert_eq!(status(&ex), Some(200));
    assert_eq!(wall.node_state(&hash), InvoiceState::Accepted);
    let left = wall.leave(&credential);
    // Refunded after the leave grace, as without any reload.
    assert_eq!(left["state"], "leaving", "{left}");
    wall.wait_node_state(&hash, InvoiceState::Canceled);
}

#[test]
fn an_invalid_file_or_a_change_that_needs_a_restart_keeps_the_old_config() {
    let mut wall = Wall::start(1);
    let original = std::fs::read_to_string(wall.config_path()).unwrap();

    // Invalid: noticed by the poll, reported, the old config kept.
    let invalid = original.replace("amount_sat: 1000", "amount_sat: 0");
    assert_ne!(invalid, original);
    std::fs::write(wall.config_path(), &invalid).unwrap();
    let now = wait_config(&wall, |c| !c["last_refused"].is_null());
    assert_eq!(now["generation"], 1, "{now}");
    let reason = now["last_refused"]["reason"].as_str().unwrap();
    assert!(reason.contains("deposit.amount_sat"), "{reason}");
    // SIGHUP's twin on the admin API says the same.
    let (code, body) = admin(&wall, "POST", "/admin/v1/config/reload");
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["error"]["code"], "config_refused");
    wall.tick();
    let challenge = wall.challenge("/home");
    assert_eq!(challenge["amount_sat"], 1000, "the old price stands");

    // A section read only at start: named, restart needed, nothing applied (not even the
    // reloadable part changed with it).
    let moved = original
        .replace("amount_sat: 1000", "amount_sat: 2000")
        .replace("max_per_reward_sat: 100", "max_per_reward_sat: 90");
    std::fs::write(wall.config_path(), &moved).unwrap();
    let (code, body) = admin(&wall, "POST", "/admin/v1/config/reload");
    assert_eq!(code, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("changes rewards") && message.contains("restart needed"),
        "{message}"
    );
    let (_, now) = admin(&wall, "GET", "/admin/v1/config");
    assert_eq!(now["generation"], 1, "{now}");
    wall.tick();
    assert_eq!(wall.challenge("/home")["amount_sat"], 1000);
}
