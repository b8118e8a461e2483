//! Deposit lifecycles through the whole sidecar (`serve` wiring, HTTP, lifecycle, SQLite) with the
//! `lnd` backend against FakeLnd, the test double of lnd's REST contract: the decisions must
//! reach lnd as cancel or settle, including across an lnd restart.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{LndSidecar, hash_of};

/// Long enough for a decision to reach FakeLnd on a busy machine.
const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn leave_cancels_and_forfeit_settles_on_lnd_even_across_an_lnd_restart() {
    let s = LndSidecar::start("5m", "30s").await;
    let leaving = s.held_deposit("203.0.113.1").await;
    let abusing = s.held_deposit("198.51.100.1").await;
    s.fake.restart().await.unwrap(); // held invoices survive an lnd restart
    let r = s.leave(&leaving).await;
    assert_eq!(r.status(), 200);
    s.wait_lnd_state(&leaving, "CANCELED", PATIENCE).await;
    s.events(json!([{"type": "verdict", "token_id": abusing["token_id"],
        "verdict": "forfeit", "trigger": "error_storm"}]))
        .await;
    s.wait_lnd_state(&abusing, "SETTLED", PATIENCE).await;
    s.running.shutdown().await;
}

#[tokio::test]
async fn an_idle_deposit_is_cancelled_on_lnd() {
    let s = LndSidecar::start("1s", "30s").await;
    let c = s.held_deposit("203.0.113.2").await;
    s.wait_lnd_state(&c, "CANCELED", PATIENCE).await;
    s.running.shutdown().await;
}

#[tokio::test]
async fn the_hard_deadline_cancels_before_lnd_would() {
    let s = LndSidecar::start("5m", "30s").await;
    let c = s.held_deposit("203.0.113.3").await;
    let hash = hash_of(&c);
    let expiry = s.fake.invoice(hash).unwrap().htlc_expiry_height.unwrap();
    // Up to our deadline (expiry - 18 - 6); lnd itself would cancel 6 blocks later.
    s.fake
        .advance_blocks(expiry - 18 - 6 - s.fake.block_height());
    assert_eq!(s.fake.invoice(hash).unwrap().state, "ACCEPTED");
    s.running.lifecycle.reconcile().await.unwrap();
    s.wait_lnd_state(&c, "CANCELED", PATIENCE).await;
    s.running.shutdown().await;
}

#[tokio::test]
async fn an_unpaid_invoice_that_lnd_expires_ends_expired_and_cannot_be_paid() {
    let s = LndSidecar::start("5m", "30s").await;
    let c = s.challenged("203.0.113.4").await;
    assert_eq!(s.status(&c, 0).await["state"], "awaiting_payment");
    // lnd cancels an OPEN invoice once its BOLT11 expiry has passed.
    s.fake.advance_time(Duration::from_secs(601));
    s.wait_lnd_state(&c, "CANCELED", PATIENCE).await;
    let mut ended = Value::Null;
    for _ in 0..400 {
        ended = s.status(&c, 0).await;
        if ended["state"] == "expired" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(ended["state"], "expired", "{ended}");
    assert!(ended.get("credential").is_none(), "{ended}");
    assert!(s.fake.pay_request(c["invoice"].as_str().unwrap()).is_err());
    assert_eq!(s.calls_to("/v2/invoices/settle"), 0);
    s.running.shutdown().await;
}

#[tokio::test]
async fn duplicate_and_late_verdicts_change_nothing_on_lnd() {
    let s = LndSidecar::start("5m", "30s").await;
    let c = s.held_deposit("203.0.113.5").await;
    let forfeit = json!({"type": "verdict", "token_id": c["token_id"],
        "verdict": "forfeit", "trigger": "trap_path"});
    let first = s.events(json!([forfeit])).await;
    assert_eq!(first["results"][0]["result"], "applied", "{first}");
    s.wait_lnd_state(&c, "SETTLED", PATIENCE).await;
    let refund = json!({"type": "verdict", "token_id": c["token_id"],
        "verdict": "refund", "trigger": "upstream"});
    let activity = json!({"type": "activity", "token_id": c["token_id"]});
    let late = s.events(json!([forfeit, refund, activity])).await;
    for result in late["results"].as_array().unwrap() {
        assert_eq!(result["result"], "unchanged", "{late}");
        assert_eq!(result["state"], "forfeited", "{late}");
    }
    // A leave after the forfeit is late too: no cancel reaches lnd, the money stays settled.
    let r = s.leave(&c).await;
    let left: Value = r.json().await.unwrap();
    assert_eq!(left["changed"], false, "{left}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.wait_lnd_state(&c, "SETTLED", PATIENCE).await;
    assert_eq!(s.calls_to("/v2/invoices/settle"), 1);
    assert_eq!(s.calls_to("/v2/invoices/cancel"), 0);
    s.running.shutdown().await;
}
