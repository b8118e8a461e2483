//! lnd faults through the whole sidecar (`serve` wiring, HTTP, lifecycle, SQLite) with the `lnd`
//! backend against FakeLnd, the test double of lnd's REST contract: lnd down while decisions
//! arrive (they wait, then reach lnd exactly once), and invoice streams cut or silenced while a
//! payment arrives (the sidecar still sees the deposit held).

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{LndSidecar, hash_of};

#[tokio::test]
async fn decisions_made_while_lnd_is_down_reach_it_exactly_once_when_it_returns() {
    let s = LndSidecar::start("5m", "1s").await;
    let leaving = s.held_deposit("203.0.113.1").await;
    let abusing = s.held_deposit("198.51.100.1").await;
    let unpaid = s.challenged("192.0.2.1").await;

    s.fake.stop().await;
    // The visitor leaves and the filter reports an abuser: both are decided and answered now.
    let r = s
        .http
        .post(format!(
            "http://{}/.well-known/lightning-wall/leave",
            s.running.public
        ))
        .header(
            "authorization",
            format!("L402 {}:", leaving["macaroon"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .http
        .post(format!("http://{}/v1/events", s.running.internal))
        .json(
            &json!({"events": [{"type": "verdict", "token_id": abusing["token_id"],
            "verdict": "forfeit", "trigger": "trap_path"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let applied: Value = r.json().await.unwrap();
    assert_eq!(applied["results"][0]["result"], "applied", "{applied}");
    // Leaving at once; the refund is decided after the 1 s leave grace, lnd still down.
    assert_eq!(s.status(&leaving, 0).await["state"], "leaving");
    assert_eq!(s.status(&abusing, 0).await["state"], "forfeited");
    // A new visitor cannot get an invoice: a clean 503 with a JSON error, no panic.
    let r = s.challenge("192.0.2.2").await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "node_unavailable", "{body}");
    // The unpaid visitor pays while lnd is unreachable from the sidecar.
    s.fake
        .pay_request(unpaid["invoice"].as_str().unwrap())
        .unwrap();
    // Several retry rounds and reconcile passes fail meanwhile.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(s.fake.invoice(hash_of(&leaving)).unwrap().state, "ACCEPTED");
    assert_eq!(s.fake.invoice(hash_of(&abusing)).unwrap().state, "ACCEPTED");

    s.fake.resume().await.unwrap();
    let patience = Duration::from_secs(30);
    s.wait_lnd_state(&leaving, "CANCELED", patience).await;
    s.wait_lnd_state(&abusing, "SETTLED", patience).await;
    s.wait_state(&unpaid, "held", patience).await;
    // Further retry and reconcile rounds must not act again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(s.calls_to("/v2/invoices/cancel"), 1);
    assert_eq!(s.calls_to("/v2/invoices/settle"), 1);
    assert_eq!(
        s.fake.invoice(hash_of(&abusing)).unwrap().amt_paid_msat,
        1_000_000
    );
    // The deposit paid during the outage is an ordinary held deposit: leaving refunds it.
    let r = s
        .http
        .post(format!(
            "http://{}/.well-known/lightning-wall/leave",
            s.running.public
        ))
        .header(
            "authorization",
            format!("L402 {}:", unpaid["macaroon"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.wait_lnd_state(&unpaid, "CANCELED", patience).await;
    s.running.shutdown().await;
}

#[tokio::test]
async fn a_payment_made_while_the_stream_is_cut_is_still_seen() {
    let s = LndSidecar::start("5m", "1h").await;
    let c = s.challenged("203.0.113.2").await;
    s.wait_subscriptions(1).await;
    s.fake.drop_streams();
    s.fake.pay_request(c["invoice"].as_str().unwrap()).unwrap();
    // No reconcile pass runs within the test (1 h): the watcher's own resubscription finds it.
    assert_eq!(s.status(&c, 10).await["state"], "held");
    s.running.shutdown().await;
}

#[tokio::test]
async fn a_payment_made_while_the_stream_is_silent_is_still_seen_by_reconcile() {
    let s = LndSidecar::start("5m", "1s").await;
    let c = s.challenged("203.0.113.3").await;
    s.wait_subscriptions(1).await;
    // A proxy silently dropped the stream: no error, no more messages (lnd sends no keepalive).
    s.fake.silence_streams(true);
    s.fake.pay_request(c["invoice"].as_str().unwrap()).unwrap();
    s.wait_state(&c, "held", Duration::from_secs(15)).await;
    s.running.shutdown().await;
}
