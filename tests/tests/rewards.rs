//! Satoshi rewards end to end: the real `.wasm` in the host, the real sidecar with the `dev`
//! node and SQLite, an upstream that grants rewards with `x-lightning-wall-reward` (as the demo
//! site's review form does), and a visitor's wallet — a second dev node, so its invoices are
//! real signed BOLT11 of another node — claiming over LNURL-withdraw (LUD-03).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use lightning_wall::ids::Preimage;
use lightning_wall::node::dev::{DevNode, DevNodeConfig};
use lightning_wall::node::{InvoiceRequest, Node};
use lightning_wall_e2e::testing::Request;
use lightning_wall_e2e::{Wall, header, status};
use lightning_wall_host::headers::HeaderMap;
use lightning_wall_host::stream::Message;
use serde_json::Value;

const REWARDS: &str = "/.well-known/lightning-wall/rewards";

/// The upstream's answer to a review: 200 with the reward headers.
fn grants(sats: &str, id: &str) -> impl FnOnce(&Message) -> Message {
    let (sats, id) = (sats.to_owned(), id.to_owned());
    move |_| Message {
        headers: HeaderMap::from_pairs([
            (":status", "200"),
            ("x-lightning-wall-reward", sats.as_str()),
            ("x-lightning-wall-reward-id", id.as_str()),
        ]),
        body: b"thanks for your review".to_vec(),
        trailers: HeaderMap::new(),
    }
}

/// The visitor's wallet: another node that invoices the withdrawal.
struct Wallet {
    node: DevNode,
    _dir: tempfile::TempDir,
}

impl Wallet {
    fn open(wall: &Wall) -> Wallet {
        let dir = tempfile::tempdir().unwrap();
        let node = wall
            .block_on(DevNode::open(DevNodeConfig::new(dir.path())))
            .unwrap();
        Wallet { node, _dir: dir }
    }

    fn invoice(&self, wall: &Wall, amount_msat: u64) -> String {
        let request = InvoiceRequest {
            amount_msat,
            memo: "withdraw".into(),
            expiry: Duration::from_secs(600),
            cltv_expiry: None,
        };
        wall.block_on(self.node.create_invoice(&Preimage(rand_bytes()), &request))
            .unwrap()
            .payment_request
    }
}

/// A fresh preimage (std's per-instance random hasher keys; the tests crate has no rand).
fn rand_bytes() -> [u8; 32] {
    use std::hash::{BuildHasher, Hasher};
    let mut b = [0u8; 32];
    for chunk in b.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(0);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    b
}

fn rewards(wall: &Wall, auth: &str) -> Value {
    let (code, body) = wall.get_json(&format!("{}{REWARDS}", wall.public_url()), Some(auth));
    assert_eq!(code, 200, "{body}");
    body
}

/// Decodes the LNURL (LUD-01) and GETs the withdrawRequest, as a wallet does.
fn withdraw_request(wall: &Wall, lnurl: &str) -> Value {
    let (hrp, data) = bech32::decode(lnurl).unwrap();
    assert_eq!(hrp.as_str(), "lnurl");
    let url = String::from_utf8(data).unwrap();
    assert!(url.starts_with(wall.public_url()), "{url}");
    let (code, body) = wall.get_json(&url, None);
    assert_eq!(code, 200);
    body
}

fn callback(wall: &Wall, request: &Value, pr: &str) -> Value {
    let url = format!(
        "{}?k1={}&pr={pr}",
        request["callback"].as_str().unwrap(),
        request["k1"].as_str().unwrap()
    );
    wall.get_json(&url, None).1
}

/// Polls the balance until `want` (the payout runs after the callback answered).
fn wait_balance(wall: &Wall, auth: &str, want: u64) -> Value {
    for _ in 0..200 {
        let body = rewards(wall, auth);
        if body["balance_sat"] == want && body["pending_sat"] == 0 {
            return body;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("balance never reached {want}: {}", rewards(wall, auth));
}

#[test]
fn a_review_reward_is_claimed_over_lnurl_withdraw_once_and_replays_credit_nothing() {
    let mut wall = Wall::start(1);
    let (credential, _) = wall.held_deposit("/home");
    let auth = format!("L402 {credential}");

    let ex = wall.send_with(
        &Request::post("/reviews", "great site").header("authorization", &auth),
        grants("40", "review-1"),
    );
    assert_eq!(status(&ex), Some(200));
    assert_eq!(header(&ex, "x-lightning-wall-reward"), None, "stripped");
    assert_eq!(header(&ex, "x-lightning-wall-reward-id"), None, "stripped");
    wall.tick();
    assert_eq!(rewards(&wall, &auth)["balance_sat"], 40);

    // A retried response with the same id, a reward over the per-reward limit, a reward with
    // no id, and reward headers forged by the visitor on a request: none credits anything.
    wall.send_with(
        &Request::post("/reviews", "again").header("authorization", &auth),
        grants("40", "review-1"),
    );
    wall.send_with(
        &Request::post("/reviews", "big").header("authorization", &auth),
        grants("101", "review-2"),
    );
    wall.send_with(
        &Request::post("/reviews", "no id").header("authorization", &auth),
        |_| Message {
            headers: HeaderMap::from_pairs([(":status", "200"), ("x-lightning-wall-reward", "5")]),
            body: Vec::new(),
            trailers: HeaderMap::new(),
        },
    );
    let forged = wall.send(
        &Request::get("/home")
            .header("authorization", &auth)
            .header("x-lightning-wall-reward", "50")
            .header("x-lightning-wall-reward-id", "forged-1"),
    );
    if wall.refuses_own_request_headers() {
        // nginx/nginx.conf answers 400 before the filter (docs/filter.md "Hosts").
        assert_eq!(forged.response.as_ref().and_then(|r| r.status()), Some(400));
        assert!(forged.upstream_request.is_none());
    } else {
        let up = forged.upstream_request.as_ref().unwrap();
        assert!(up.headers.get("x-lightning-wall-reward").is_none());
        assert!(up.headers.get("x-lightning-wall-reward-id").is_none());
    }
    wall.tick();
    let body = rewards(&wall, &auth);
    assert_eq!(body["balance_sat"], 40, "{body}");
    assert_eq!(body["credited_sat"], 40);
    let metrics = wall.sidecar_metrics();
    assert!(
        metrics.contains(r#"lightning_wall_reward_credits_total{result="credited"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"lightning_wall_reward_credits_total{result="duplicate"} 1"#));
    assert!(
        metrics
            .contains(r#"lightning_wall_reward_credits_total{result="over_per_reward_limit"} 1"#)
    );

    // Claim: LNURL -> withdrawRequest -> callback with the wallet's invoice -> OK, paid.
    let lnurl = body["lnurl"].as_str().unwrap().to_owned();
    let request = withdraw_request(&wall, &lnurl);
    assert_eq!(request["tag"], "withdrawRequest");
    assert_eq!(request["minWithdrawable"], 1_000);
    assert_eq!(request["maxWithdrawable"], 40_000);
    let wallet = Wallet::open(&wall);
    let too_much = callback(&wall, &request, &wallet.invoice(&wall, 41_000));
    assert_eq!(too_much["status"], "ERROR", "{too_much}");
    let ok = callback(&wall, &request, &wallet.invoice(&wall, 40_000));
    assert_eq!(ok, serde_json::json!({"status": "OK"}));
    let after = wait_balance(&wall, &auth, 0);
    assert_eq!(after["paid_sat"], 40);
    assert_eq!(after["lnurl"], Value::Null, "nothing left to withdraw");

    // The same k1 again: refused, nothing paid.
    let again = callback(&wall, &request, &wallet.invoice(&wall, 1_000));
    assert_eq!(again["status"], "ERROR");
    assert!(
        again["reason"].as_str().unwrap().contains("already used"),
        "{again}"
    );
    let metrics = wall.sidecar_metrics();
    assert!(
        metrics.contains(r#"lightning_wall_reward_payouts_total{result="succeeded"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("lightning_wall_reward_paid_msat_total 40000"));
    assert!(!metrics.contains(r#"result="failed""#));
    // The filter's own counters.
    assert!(
        wall.host.logs_containing("reward dropped").len() == 1,
        "the reward without an id"
    );
}

#[test]
fn a_visitor_who_leaves_is_refunded_and_can_still_claim_the_reward() {
    let mut wall = Wall::start(1);
    let (credential, _) = wall.held_deposit("/home");
    let auth = format!("L402 {credential}");
    wall.send_with(
        &Request::post("/survey", "answers").header("authorization", &auth),
        grants("25", "survey-2026"),
    );
    wall.tick();
    let left = wall.leave(&credential);
    assert_eq!(left["state"], "leaving", "{left}");
    assert_eq!(left["reward_balance_sat"], 25);
    let lnurl = left["reward_lnurl"].as_str().unwrap().to_owned();
    wall.tick();
    // Revoked for browsing…
    let ex = wall.send(&Request::get("/home").header("authorization", &auth));
    assert_ne!(status(&ex), Some(200));
    // …but the balance is still the visitor's.
    assert_eq!(rewards(&wall, &auth)["balance_sat"], 25);
    let request = withdraw_request(&wall, &lnurl);
    let wallet = Wallet::open(&wall);
    let ok = callback(&wall, &request, &wallet.invoice(&wall, 25_000));
    assert_eq!(ok["status"], "OK", "{ok}");
    wait_balance(&wall, &auth, 0);
}

#[test]
fn pay_tokens_earn_rewards_and_requests_without_a_credential_do_not() {
    let mut wall = Wall::start(1);
    let challenge = wall.challenge("/v1/data");
    let paid = wall.dev_pay(challenge["invoice"].as_str().unwrap());
    let auth = format!(
        "L402 {}:{}",
        challenge["macaroon"].as_str().unwrap(),
        paid["preimage"].as_str().unwrap()
    );
    wall.send_with(
        &Request::get("/v1/data").header("authorization", &auth),
        grants("7", "api-1"),
    );
    // A free route: no credential, so the reward is dropped (and still stripped).
    let ex = wall.send_with(&Request::get("/healthz"), grants("9", "free-1"));
    assert_eq!(header(&ex, "x-lightning-wall-reward"), None);
    wall.tick();
    assert_eq!(rewards(&wall, &auth)["balance_sat"], 7);
    // A browser gets the page with the LNURL's QR code.
    let page = wall.block_on(async {
        let r = reqwest::Client::new()
            .get(format!("{}{REWARDS}", wall.public_url()))
            .header("authorization", &auth)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
        r.text().await.unwrap()
    });
    assert!(page.contains("<strong>7 sat</strong>"), "{page}");
    assert!(
        page.contains("<svg") && page.contains("href=\"lightning:lnurl1"),
        "{page}"
    );
    // The macaroon alone (no preimage) does not open the balance.
    let macaroon_only = format!("L402 {}:", challenge["macaroon"].as_str().unwrap());
    let (code, _) = wall.get_json(
        &format!("{}{REWARDS}", wall.public_url()),
        Some(&macaroon_only),
    );
    assert_eq!(code, 401);
}

#[test]
fn a_forfeited_deposit_earns_nothing_more_but_keeps_what_it_was_owed() {
    let mut wall = Wall::start(1);
    let (credential, challenge) = wall.held_deposit("/home");
    let auth = format!("L402 {credential}");
    // Earned honestly first: owed, and it stays claimable.
    wall.send_with(
        &Request::post("/review", "a fair review").header("authorization", &auth),
        grants("20", "review-1"),
    );
    wall.tick();
    wait_balance(&wall, &auth, 20);
    // The spam response carries the site's forfeit verdict and a reward: the verdict goes
    // first, the reward is refused.
    wall.send_with(
        &Request::post("/review", "BUY NOW").header("authorization", &auth),
        |_| Message {
            headers: HeaderMap::from_pairs([
                (":status", "200"),
                ("x-lightning-wall-verdict", "forfeit"),
                ("x-lightning-wall-reward", "30"),
                ("x-lightning-wall-reward-id", "review-2"),
            ]),
            body: Vec::new(),
            trailers: HeaderMap::new(),
        },
    );
    if wall.response_verdicts_wait_for_the_tick() {
        wall.tick(); // nginx: no call-out from a response callback (docs/filter.md "Hosts")
    }
    wall.wait_node_state(
        challenge["payment_hash"].as_str().unwrap(),
        lightning_wall::node::InvoiceState::Settled,
    );
    wall.tick();
    wall.tick();
    let body = wait_balance(&wall, &auth, 20);
    assert_eq!(body["credited_sat"], 20, "{body}");
    assert!(
        wall.sidecar_metrics()
            .contains(r#"result="deposit_forfeited""#),
        "the refused credit is counted"
    );
}
