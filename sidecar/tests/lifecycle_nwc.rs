//! Deposit lifecycles through the whole sidecar (`serve` wiring, HTTP, lifecycle, SQLite) with the
//! `nwc` backend against FakeNwc (a NIP-47 wallet service double on a real Nostr relay): every
//! decision must reach the wallet as `cancel_hold_invoice` or `settle_hold_invoice`, asserted on
//! the wallet's own state of the invoice.

mod support;

use std::time::Duration;

use fake_nwc::HoldState;
use serde_json::{Value, json};
use support::nwc::NwcSidecar;

/// Long enough for a decision to reach the wallet through the relay on a busy machine.
const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn leave_cancels_and_forfeit_settles_in_the_wallet() {
    let s = NwcSidecar::start("5m", "30s").await;
    let leaving = s.held_deposit("203.0.113.1").await;
    let abusing = s.held_deposit("198.51.100.1").await;
    assert_eq!(s.leave(&leaving).await.status(), 200);
    s.wait_wallet_state(&leaving, HoldState::Canceled, PATIENCE)
        .await;
    s.wait_state(&leaving, "refunded", PATIENCE).await;
    s.events(json!([{"type": "verdict", "token_id": abusing["token_id"],
        "verdict": "forfeit", "trigger": "error_storm"}]))
        .await;
    s.wait_wallet_state(&abusing, HoldState::Settled, PATIENCE)
        .await;
    s.wait_state(&abusing, "forfeited", PATIENCE).await;
    // The refunded payment was never taken, and each decision went out once.
    assert_eq!(s.wallet_state(&leaving), Some(HoldState::Canceled));
    assert_eq!(s.calls_to("settle_hold_invoice"), 1);
    s.running.shutdown().await;
}

#[tokio::test]
async fn an_idle_deposit_is_cancelled_in_the_wallet() {
    let s = NwcSidecar::start("1s", "30s").await;
    let c = s.held_deposit("203.0.113.2").await;
    s.wait_wallet_state(&c, HoldState::Canceled, PATIENCE).await;
    s.wait_state(&c, "refunded", PATIENCE).await;
    assert_eq!(s.calls_to("settle_hold_invoice"), 0);
    s.running.shutdown().await;
}

#[tokio::test]
async fn the_hard_deadline_cancels_before_the_wallet_would() {
    let s = NwcSidecar::start("5m", "30s").await;
    let c = s.held_deposit("203.0.113.3").await;
    let Some(HoldState::Accepted { htlc_expiry }) = s.wallet_state(&c) else {
        panic!("not held: {:?}", s.wallet_state(&c));
    };
    // Up to our deadline (settle_deadline - 18 - 6); the wallet itself would cancel 6 blocks
    // later.
    s.fake
        .advance_blocks(htlc_expiry - 18 - 6 - s.fake.height());
    assert!(matches!(
        s.wallet_state(&c),
        Some(HoldState::Accepted { .. })
    ));
    s.running.lifecycle.reconcile().await.unwrap();
    s.wait_wallet_state(&c, HoldState::Canceled, PATIENCE).await;
    s.wait_state(&c, "refunded", PATIENCE).await;
    s.running.shutdown().await;
}

#[tokio::test]
async fn an_unpaid_invoice_past_its_expiry_ends_expired_and_cannot_be_paid() {
    let s = NwcSidecar::start("5m", "1s").await;
    let c = s.challenged("203.0.113.4").await;
    s.fake.advance_time(Duration::from_secs(3_601));
    let mut ended = Value::Null;
    for _ in 0..600 {
        ended = s.status(&c, 0).await;
        if ended["state"] == "expired" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(ended["state"], "expired", "{ended}");
    assert!(ended.get("credential").is_none(), "{ended}");
    let late = s.fake.pay_request(c["invoice"].as_str().unwrap()).await;
    assert!(late.is_err(), "{late:?}");
    assert_eq!(s.calls_to("settle_hold_invoice"), 0);
    s.running.shutdown().await;
}

#[tokio::test]
async fn a_restart_in_the_middle_loses_no_deposit_and_sees_a_payment_made_meanwhile() {
    let s = NwcSidecar::start("5m", "1s").await;
    let held = s.held_deposit("203.0.113.5").await;
    let unpaid = s.challenged("198.51.100.5").await;
    let s = s.restart(Some(unpaid["invoice"].as_str().unwrap())).await;
    // The hold_invoice_accepted sent while no sidecar listened is gone: a lookup finds it.
    s.wait_state(&unpaid, "held", Duration::from_secs(30)).await;
    assert_eq!(s.leave(&held).await.status(), 200);
    s.wait_wallet_state(&held, HoldState::Canceled, PATIENCE)
        .await;
    s.events(json!([{"type": "verdict", "token_id": unpaid["token_id"],
        "verdict": "forfeit", "trigger": "trap_path"}]))
        .await;
    s.wait_wallet_state(&unpaid, HoldState::Settled, PATIENCE)
        .await;
    s.running.shutdown().await;
}
