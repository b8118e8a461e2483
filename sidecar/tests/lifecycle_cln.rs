//! Deposit lifecycles through the whole sidecar (`serve` wiring, HTTP, lifecycle, SQLite) with the
//! `cln` backend against FakeCln, the test double of Core Lightning's and the hold plugin's
//! gRPC: the decisions must reach the plugin as Cancel or Settle, including across a CLN restart.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::cln::ClnSidecar;
use support::hash_of;

/// Long enough for a decision to reach FakeCln on a busy machine.
const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn leave_cancels_and_forfeit_settles_on_the_plugin_even_across_a_cln_restart() {
    let s = ClnSidecar::start("5m", "30s").await;
    let leaving = s.held_deposit("203.0.113.1").await;
    let abusing = s.held_deposit("198.51.100.1").await;
    s.fake.restart().await.unwrap(); // held HTLCs survive: CLN replays them to the plugin
    let r = s.leave(&leaving).await;
    assert_eq!(r.status(), 200);
    s.wait_plugin_state(&leaving, "cancelled", PATIENCE).await;
    s.events(json!([{"type": "verdict", "token_id": abusing["token_id"],
        "verdict": "forfeit", "trigger": "error_storm"}]))
        .await;
    s.wait_plugin_state(&abusing, "paid", PATIENCE).await;
    // The refunded payment cannot be taken after all.
    assert_eq!(
        s.fake.hold_invoice(hash_of(&leaving)).unwrap().state,
        "cancelled"
    );
    s.running.shutdown().await;
}

#[tokio::test]
async fn a_payment_is_seen_held_through_the_track_stream_after_a_restart() {
    let s = ClnSidecar::start("5m", "30s").await;
    let c = s.challenged("203.0.113.6").await;
    assert_eq!(s.status(&c, 0).await["state"], "awaiting_payment");
    // The stream the sidecar opened dies with the restart; the reopened one must carry the news
    // (the reconciler runs only every 30 s, longer than the status wait below).
    s.fake.restart().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.fake.pay_request(c["invoice"].as_str().unwrap()).unwrap();
    assert_eq!(s.status(&c, 10).await["state"], "held");
    s.running.shutdown().await;
}

#[tokio::test]
async fn an_idle_deposit_is_cancelled_on_the_plugin() {
    let s = ClnSidecar::start("1s", "30s").await;
    let c = s.held_deposit("203.0.113.2").await;
    s.wait_plugin_state(&c, "cancelled", PATIENCE).await;
    s.running.shutdown().await;
}

#[tokio::test]
async fn the_hard_deadline_cancels_before_the_plugin_would() {
    let s = ClnSidecar::start("5m", "30s").await;
    let c = s.held_deposit("203.0.113.3").await;
    let expiry = s
        .fake
        .hold_invoice(hash_of(&c))
        .unwrap()
        .htlc_expiry_height
        .unwrap();
    let expiry = u32::try_from(expiry).unwrap();
    // Up to our deadline (expiry - 3 - 6); the plugin itself would cancel 6 blocks later.
    s.fake
        .advance_blocks(expiry - 3 - 6 - s.fake.block_height());
    assert_eq!(s.fake.hold_invoice(hash_of(&c)).unwrap().state, "accepted");
    s.running.lifecycle.reconcile().await.unwrap();
    s.wait_plugin_state(&c, "cancelled", PATIENCE).await;
    s.running.shutdown().await;
}

#[tokio::test]
async fn an_unpaid_invoice_past_its_expiry_is_cancelled_by_the_backend_and_cannot_be_paid() {
    let s = ClnSidecar::start("5m", "30s").await;
    // The plugin never expires an unpaid invoice itself; make one that is born expired.
    s.fake.rewind_time(Duration::from_secs(601));
    let c = s.challenged("203.0.113.4").await;
    s.wait_plugin_state(&c, "cancelled", PATIENCE).await;
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
    let late = s.fake.pay_request(c["invoice"].as_str().unwrap());
    assert!(late.is_err(), "{late:?}");
    assert_eq!(s.calls_to("hold.Settle"), 0);
    s.running.shutdown().await;
}

#[tokio::test]
async fn duplicate_and_late_verdicts_change_nothing_on_the_plugin() {
    let s = ClnSidecar::start("5m", "30s").await;
    let c = s.held_deposit("203.0.113.5").await;
    let forfeit = json!({"type": "verdict", "token_id": c["token_id"],
        "verdict": "forfeit", "trigger": "trap_path"});
    let first = s.events(json!([forfeit])).await;
    assert_eq!(first["results"][0]["result"], "applied", "{first}");
    s.wait_plugin_state(&c, "paid", PATIENCE).await;
    let refund = json!({"type": "verdict", "token_id": c["token_id"],
        "verdict": "refund", "trigger": "upstream"});
    let activity = json!({"type": "activity", "token_id": c["token_id"]});
    let late = s.events(json!([forfeit, refund, activity])).await;
    for result in late["results"].as_array().unwrap() {
        assert_eq!(result["result"], "unchanged", "{late}");
        assert_eq!(result["state"], "forfeited", "{late}");
    }
    let r = s.leave(&c).await;
    let left: Value = r.json().await.unwrap();
    assert_eq!(left["changed"], false, "{left}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.wait_plugin_state(&c, "paid", PATIENCE).await;
    assert_eq!(s.calls_to("hold.Settle"), 1);
    assert_eq!(s.calls_to("hold.Cancel"), 0);
    s.running.shutdown().await;
}

#[tokio::test]
async fn decisions_made_while_cln_is_down_reach_the_plugin_exactly_once_when_it_returns() {
    let s = ClnSidecar::start("5m", "1s").await;
    let leaving = s.held_deposit("203.0.113.7").await;
    let abusing = s.held_deposit("198.51.100.7").await;
    let unpaid = s.challenged("192.0.2.7").await;

    s.fake.stop().await;
    assert_eq!(s.leave(&leaving).await.status(), 200);
    let applied = s
        .events(json!([{"type": "verdict", "token_id": abusing["token_id"],
            "verdict": "forfeit", "trigger": "trap_path"}]))
        .await;
    assert_eq!(applied["results"][0]["result"], "applied", "{applied}");
    // The leave is taken (token revoked, refund decided after the grace) but the cancel waits
    // for the node: the deposit says `leaving` until the plugin confirms it.
    assert_eq!(s.status(&leaving, 0).await["state"], "leaving");
    assert_eq!(s.status(&abusing, 0).await["state"], "forfeited");
    // A new visitor cannot get an invoice: a clean 503, no panic.
    let r = s.challenge("192.0.2.8").await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "node_unavailable", "{body}");
    // The unpaid visitor pays while CLN is unreachable from the sidecar.
    s.fake
        .pay_request(unpaid["invoice"].as_str().unwrap())
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        s.fake.hold_invoice(hash_of(&leaving)).unwrap().state,
        "accepted"
    );
    assert_eq!(
        s.fake.hold_invoice(hash_of(&abusing)).unwrap().state,
        "accepted"
    );

    s.fake.resume().await.unwrap();
    let patience = Duration::from_secs(30);
    s.wait_plugin_state(&leaving, "cancelled", patience).await;
    s.wait_state(&leaving, "refunded", patience).await;
    s.wait_plugin_state(&abusing, "paid", patience).await;
    s.wait_state(&unpaid, "held", patience).await;
    // Further retry and reconcile rounds must not act again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(s.calls_to("hold.Cancel"), 1);
    assert_eq!(s.calls_to("hold.Settle"), 1);
    s.running.shutdown().await;
}
