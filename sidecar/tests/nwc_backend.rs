//! The `nwc` backend's own behaviour against FakeNwc on a real relay, beyond the node contract:
//! what it refuses at start-up (permissions, encryption), payouts (refused unless allowed, paid
//! once, tracked) and an unreachable wallet.

use std::time::{Duration, Instant};

use fake_nwc::{ALL_METHODS, FakeNwc, FakeNwcOptions};
use lightning_wall::ids::PaymentHash;
use lightning_wall::node::nwc::{ConnectionString, NwcConfig, NwcNode};
use lightning_wall::node::{InvoiceRequest, Node, NodeError, PaymentOutcome};

fn config(fake: &FakeNwc) -> NwcConfig {
    NwcConfig::new(
        ConnectionString::parse(&fake.connection_string()).unwrap(),
        "regtest",
    )
}

/// A BOLT11 invoice of another wallet, to pay out to.
async fn outside_invoice(other: &FakeNwc) -> (PaymentHash, String) {
    let node = NwcNode::connect(config(other)).await.unwrap();
    let hash = PaymentHash(rand::random());
    let created = node
        .create_hold_invoice(
            &hash,
            &InvoiceRequest {
                amount_msat: 21_000,
                memo: "reward".into(),
                expiry: Duration::from_secs(600),
                cltv_expiry: None,
            },
        )
        .await
        .unwrap();
    (hash, created.payment_request)
}

#[tokio::test]
async fn a_connection_without_a_needed_permission_is_refused_naming_it() {
    let fake = FakeNwc::start_with(FakeNwcOptions {
        granted: ALL_METHODS
            .iter()
            .filter(|m| **m != "settle_hold_invoice")
            .map(|m| (*m).to_owned())
            .collect(),
        ..FakeNwcOptions::default()
    })
    .await
    .unwrap();
    let Err(NodeError::Rejected(message)) = NwcNode::connect(config(&fake)).await else {
        panic!("connected without settle_hold_invoice");
    };
    assert!(message.contains("settle_hold_invoice"), "{message}");
    assert!(message.contains("grant"), "{message}");
}

#[tokio::test]
async fn a_wallet_without_nip44_is_refused() {
    let fake = FakeNwc::start_with(FakeNwcOptions {
        nip44: false,
        ..FakeNwcOptions::default()
    })
    .await
    .unwrap();
    let Err(NodeError::Rejected(message)) = NwcNode::connect(config(&fake)).await else {
        panic!("connected to a NIP-04-only wallet");
    };
    assert!(message.contains("nip44_v2"), "{message}");
}

#[tokio::test]
async fn payouts_are_refused_unless_allowed_and_then_paid_once_and_tracked() {
    let fake = FakeNwc::start().await.unwrap();
    let other = FakeNwc::start().await.unwrap();
    let (hash, bolt11) = outside_invoice(&other).await;

    let refusing = NwcNode::connect(config(&fake)).await.unwrap();
    let outcome = refusing.pay(&bolt11, 100).await.unwrap();
    assert!(
        matches!(&outcome, PaymentOutcome::Failed { reason } if reason.contains("payouts are off")),
        "{outcome:?}"
    );
    assert!(fake.payments().is_empty(), "no money may leave");

    let paying = NwcNode::connect(NwcConfig {
        payouts: true,
        ..config(&fake)
    })
    .await
    .unwrap();
    let outcome = paying.pay(&bolt11, 5_000).await.unwrap();
    assert!(
        matches!(&outcome, PaymentOutcome::Succeeded { fee_msat: 1_000, preimage_hex } if preimage_hex.len() == 64),
        "{outcome:?}"
    );
    let again = paying.pay(&bolt11, 5_000).await.unwrap();
    assert!(matches!(again, PaymentOutcome::Failed { .. }), "{again:?}");
    assert_eq!(fake.payments(), vec![(hash.0, 21_000)], "paid exactly once");
    assert_eq!(paying.track_payment(&hash).await.unwrap(), outcome);
    assert!(matches!(
        paying.track_payment(&PaymentHash(rand::random())).await,
        Err(NodeError::NotFound)
    ));
}

#[tokio::test]
async fn an_unreachable_wallet_is_unavailable_within_the_timeout() {
    let fake = FakeNwc::start().await.unwrap();
    let node = NwcNode::connect(NwcConfig {
        timeout: Duration::from_secs(2),
        ..config(&fake)
    })
    .await
    .unwrap();
    drop(fake); // the relay and the wallet service are gone
    let started = Instant::now();
    let answer = node.lookup(&PaymentHash(rand::random())).await;
    assert!(
        matches!(answer, Err(NodeError::Unavailable(_))),
        "{answer:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
