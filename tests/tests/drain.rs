//! `admin drain` end to end: the real `.wasm` in the host, the sidecar with the dev node (real
//! hold invoices) and SQLite. The assertions are on the money: each invoice's final state on the
//! node, not only what the API answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use lightning_wall::node::InvoiceState;
use lightning_wall_e2e::testing::Request;
use lightning_wall_e2e::{Wall, header, status};
use serde_json::Value;

/// An admin API call with the bearer token: status and JSON body.
fn admin(wall: &Wall, method: &str, path: &str) -> (u16, Value) {
    let (url, token) = wall.admin();
    let url = format!("{url}{path}");
    let token = token.to_owned();
    wall.block_on(async move {
        let client = reqwest::Client::new();
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = client
            .request(method, url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    })
}

/// A visitor without a credential asks for a walled page (API client: JSON answers).
fn unpaid_request(wall: &mut Wall) -> lightning_wall_e2e::testing::Exchange {
    wall.send(&Request::get("/home").header("accept", "application/json"))
}

fn assert_minting_refused(wall: &mut Wall) {
    let ex = unpaid_request(wall);
    assert_eq!(status(&ex), Some(503), "a drained wall mints nothing");
    assert!(
        header(&ex, "retry-after").is_some(),
        "503 says when to come back"
    );
    assert!(
        ex.upstream_request.is_none(),
        "nothing unpaid reaches the site"
    );
}

/// The dev node's pay endpoint, raw (a refused payment is not a test failure here).
fn try_pay(wall: &Wall, invoice: &str) -> u16 {
    let url = format!("http://{}/v1/dev/pay", wall.internal_addr());
    let body = serde_json::json!({ "invoice": invoice });
    wall.block_on(async move {
        reqwest::Client::new()
            .post(url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

#[test]
fn a_drain_cancels_every_held_deposit_and_unpaid_invoice_on_the_node_and_stops_minting() {
    let mut wall = Wall::start(1);
    let mut held = Vec::new();
    for _ in 0..3 {
        let (credential, challenge) = wall.held_deposit("/home");
        held.push((
            credential,
            challenge["payment_hash"].as_str().unwrap().to_owned(),
        ));
    }
    let unpaid = wall.challenge("/home");
    let unpaid_hash = unpaid["payment_hash"].as_str().unwrap().to_owned();
    for (_, hash) in &held {
        assert_eq!(wall.node_state(hash), InvoiceState::Accepted);
    }

    let (code, report) = admin(&wall, "POST", "/admin/v1/drain");
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["draining"], true);
    assert_eq!(report["refunded_held"], 3, "{report}");
    assert_eq!(report["refunded_sat"], 3000, "{report}");
    assert_eq!(report["cancelled_unpaid"], 1, "{report}");
    assert_eq!(report["still_live"], 0, "{report}");

    // The money: every held payment given back, the unpaid invoice no longer payable.
    for (_, hash) in &held {
        wall.wait_node_state(hash, InvoiceState::Canceled);
    }
    wall.wait_node_state(&unpaid_hash, InvoiceState::Canceled);
    assert_ne!(
        try_pay(&wall, unpaid["invoice"].as_str().unwrap()),
        200,
        "an invoice of a drained wall cannot be paid"
    );
    assert_eq!(wall.node_state(&unpaid_hash), InvoiceState::Canceled);
    let (_, status_now) = admin(&wall, "GET", "/admin/v1/drain");
    assert_eq!(status_now["done"], true, "{status_now}");
    // Same transitions and audit as a leave, with its own trigger.
    let (_, shown) = admin(&wall, "GET", &format!("/admin/v1/deposits/{}", held[0].1));
    assert_eq!(shown["state"], "refunded");
    assert_eq!(shown["trigger"], "drain");
    assert_eq!(shown["audit"][0]["trigger"], "drain");

    // The refunded visitors' credentials are revoked (next sync) and nobody gets a new one.
    wall.tick();
    let ex =
        wall.send(&Request::get("/home").header("authorization", format!("L402 {}", held[0].0)));
    assert_ne!(
        status(&ex),
        Some(200),
        "a refunded deposit's token no longer serves"
    );
    assert!(ex.upstream_request.is_none());
    assert_minting_refused(&mut wall);
    // Pay routes too: money taken now could not be served by a wall being taken down.
    let ex = wall.send(&Request::get("/v1/data").header("accept", "application/json"));
    assert_eq!(status(&ex), Some(503));
    assert!(ex.upstream_request.is_none());
    // A route the operator set to `failure_mode: open` lets visitors through when the wall
    // cannot challenge, a drain included (docs/operations.md "Drain").
    let ex = wall.send(&Request::get("/open/x").header("accept", "application/json"));
    assert!(
        ex.upstream_request.is_some(),
        "failure_mode: open is the operator's choice"
    );
    // The sidecar's answer to the filter, as documented.
    let (code, body) = wall.block_on({
        let url = format!("http://{}/v1/challenge", wall.internal_addr());
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .json(&serde_json::json!({"route_id": "wall", "client_ip": "203.0.113.9"}))
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    });
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["error"]["code"], "draining", "{body}");
}

#[test]
fn a_drain_survives_a_sidecar_restart_and_undrain_resumes_minting() {
    let mut wall = Wall::start(1);
    let (code, _) = admin(&wall, "POST", "/admin/v1/drain");
    assert_eq!(code, 200);
    assert_minting_refused(&mut wall);
    wall.stop_sidecar();
    wall.start_sidecar();
    wall.tick();
    assert_minting_refused(&mut wall);
    let (_, status_now) = admin(&wall, "GET", "/admin/v1/drain");
    assert_eq!(status_now["draining"], true, "{status_now}");

    let (code, body) = admin(&wall, "DELETE", "/admin/v1/drain");
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["was_draining"], true);
    // No tick: the drain's 503s (code `draining`) did not mark the sidecar down for the
    // filter's challenges, so the very next challenge after `undrain` is minted.
    let ex = unpaid_request(&mut wall);
    assert_eq!(status(&ex), Some(402), "minting resumed at once");
    // And a deposit can be held again.
    let (_, challenge) = wall.held_deposit("/home");
    assert_eq!(
        wall.node_state(challenge["payment_hash"].as_str().unwrap()),
        InvoiceState::Accepted
    );
}

#[test]
fn a_payment_arriving_during_the_drain_is_given_back() {
    let mut wall = Wall::start(1);
    // Minted by a replica that had not seen the drain yet: the flag is on in the store (another
    // replica's `admin drain`), this invoice is still open, and the visitor pays it now.
    let challenge = wall.challenge("/home");
    let hash = challenge["payment_hash"].as_str().unwrap().to_owned();
    let store = wall.store();
    wall.block_on(async {
        store
            .start_drain(lightning_wall::ids::Timestamp::now())
            .await
            .unwrap()
    });
    let code = try_pay(&wall, challenge["invoice"].as_str().unwrap());
    // Either the payment was taken and is given back by this replica's sweeper (every second
    // while drained), or the sweeper cancelled the invoice first and the payment failed:
    // both end with the invoice CANCELED on the node and nothing kept.
    std::thread::sleep(Duration::from_millis(100));
    wall.wait_node_state(&hash, InvoiceState::Canceled);
    // The node cancels before the lifecycle records that it did: wait for the record too.
    let mut shown = Value::Null;
    for _ in 0..100 {
        shown = admin(&wall, "GET", &format!("/admin/v1/deposits/{hash}")).1;
        if shown["pending_action"].is_null() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(shown["trigger"], "drain", "{shown}");
    assert_eq!(shown["pending_action"], Value::Null, "{shown}");
    assert!(code == 200 || shown["state"] == "expired", "{code} {shown}");
}
