//! What the `cln` backend does beyond the shared node contract, against FakeCln (the test double
//! of Core Lightning's and the hold plugin's gRPC): its own stream reconnecting across a CLN
//! restart, mutual TLS, the network check, an unreachable node, and reward payouts with xpay and
//! listpays — never paying an invoice twice.

mod support;

use std::time::Duration;

use fake_cln::{FakeCln, FakeClnOptions, XpayBehaviour};
use futures_util::StreamExt;
use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
use lightning_wall::ids::PaymentHash;
use lightning_wall::node::cln::{ClnConnectError, ClnNode};
use lightning_wall::node::{InvoiceRequest, InvoiceState, Node, NodeError, PaymentOutcome};
use sha2::{Digest, Sha256};
use support::cln::backend_config;

struct Setup {
    fake: FakeCln,
    credentials: fake_cln::Credentials,
    _dir: tempfile::TempDir,
}

async fn fake_with(options: FakeClnOptions) -> Setup {
    let fake = FakeCln::start_with(options).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let credentials = fake.write_credentials(dir.path()).unwrap();
    Setup {
        fake,
        credentials,
        _dir: dir,
    }
}

async fn connected() -> (Setup, ClnNode) {
    let setup = fake_with(FakeClnOptions::default()).await;
    let node = ClnNode::connect(backend_config(&setup.credentials))
        .await
        .unwrap();
    (setup, node)
}

fn request() -> InvoiceRequest {
    InvoiceRequest {
        amount_msat: 10_000,
        memo: "cln".to_owned(),
        expiry: Duration::from_secs(600),
        cltv_expiry: Some(144),
    }
}

/// A remote node's signed regtest invoice for `hash`.
fn regtest_invoice(hash: [u8; 32], amount_msat: u64) -> String {
    use bitcoin::hashes::{Hash as _, sha256};
    let key = bitcoin::secp256k1::SecretKey::from_slice(&[5; 32]).unwrap();
    InvoiceBuilder::new(Currency::Regtest)
        .description("reward".to_owned())
        .payment_hash(sha256::Hash::from_byte_array(hash))
        .payment_secret(PaymentSecret([1; 32]))
        .current_timestamp()
        .min_final_cltv_expiry_delta(18)
        .amount_milli_satoshis(amount_msat)
        .build_signed(|m| bitcoin::secp256k1::Secp256k1::new().sign_ecdsa_recoverable(m, &key))
        .unwrap()
        .to_string()
}

/// A remote node's invoice whose preimage FakeCln's xpay knows (a payable one).
fn remote_invoice(fake: &FakeCln, amount_msat: u64) -> (String, [u8; 32]) {
    let preimage: [u8; 32] = rand::random();
    fake.add_remote_preimage(preimage);
    (
        regtest_invoice(Sha256::digest(preimage).into(), amount_msat),
        preimage,
    )
}

#[tokio::test]
async fn a_subscription_reconnects_across_a_cln_restart_and_sees_the_payment() {
    let (setup, node) = connected().await;
    let (_, hash) = {
        let preimage: [u8; 32] = rand::random();
        (preimage, PaymentHash(Sha256::digest(preimage).into()))
    };
    let created = node.create_hold_invoice(&hash, &request()).await.unwrap();
    // Drive the subscription all the time, as the engine does, so its Track stream is open when
    // CLN restarts.
    let mut updates = node.subscribe(&hash).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(update) = updates.next().await {
            let _ = tx.send(update);
        }
    });
    assert_eq!(rx.recv().await.unwrap().unwrap().state, InvoiceState::Open);
    tokio::time::sleep(Duration::from_millis(300)).await;
    setup.fake.restart().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    setup.fake.pay_request(&created.payment_request).unwrap();
    // The backend's recheck is 30 s: only the reopened Track stream can bring this in time.
    let held = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no update within 10 s after the restart")
        .expect("the subscription ended before a final state")
        .unwrap();
    assert_eq!(held.state, InvoiceState::Accepted);
    assert_eq!(
        held.htlc_expiry_height,
        Some(setup.fake.block_height() + 144)
    );
}

#[tokio::test]
async fn a_client_without_the_services_certificate_is_refused() {
    let setup = fake_with(FakeClnOptions::default()).await;
    // The hold plugin's client certificate is from another CA than CLN's grpc plugin.
    let mut config = backend_config(&setup.credentials);
    config.node.client_cert = setup.credentials.hold.client_cert.clone();
    config.node.client_key = std::fs::read(&setup.credentials.hold.client_key).unwrap();
    let refused = ClnNode::connect(config).await.unwrap_err();
    assert!(
        matches!(
            refused,
            ClnConnectError::Unreachable {
                service: "Core Lightning",
                ..
            }
        ),
        "{refused}"
    );
    // A server certificate checked against the wrong CA fails too.
    let mut config = backend_config(&setup.credentials);
    config.hold.ca_cert = setup.credentials.node.ca.clone();
    let refused = ClnNode::connect(config).await.unwrap_err();
    assert!(
        matches!(
            refused,
            ClnConnectError::Unreachable {
                service: "the hold plugin",
                ..
            }
        ),
        "{refused}"
    );
    assert!(
        setup.fake.requests().iter().all(|c| c == "hold.GetInfo"),
        "{:?}",
        setup.fake.requests()
    );
}

#[tokio::test]
async fn a_node_on_another_network_is_refused_and_bitcoin_is_mainnet() {
    let setup = fake_with(FakeClnOptions {
        network: "bitcoin".to_owned(),
        ..FakeClnOptions::default()
    })
    .await;
    let refused = ClnNode::connect(backend_config(&setup.credentials))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ClnConnectError::NetworkMismatch { actual, .. } if actual == "mainnet"),
        "{refused}"
    );
    let mut config = backend_config(&setup.credentials);
    config.network = "mainnet".to_owned();
    ClnNode::connect(config).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_node_is_unavailable_then_back() {
    let (setup, node) = connected().await;
    let hash = PaymentHash(rand::random());
    setup.fake.stop().await;
    assert!(matches!(
        node.lookup(&hash).await,
        Err(NodeError::Unavailable(_))
    ));
    assert!(matches!(
        node.cancel(&hash).await,
        Err(NodeError::Unavailable(_))
    ));
    assert!(matches!(
        ClnNode::connect(backend_config(&setup.credentials)).await,
        Err(ClnConnectError::Unreachable { .. })
    ));
    setup.fake.resume().await.unwrap();
    assert!(matches!(node.lookup(&hash).await, Err(NodeError::NotFound)));
}

#[tokio::test]
async fn a_reward_is_paid_once_with_its_fee_and_tracked() {
    let (setup, node) = connected().await;
    let (bolt11, preimage) = remote_invoice(&setup.fake, 5_000);
    let paid = node.pay(&bolt11, 2_000).await.unwrap();
    assert_eq!(
        paid,
        PaymentOutcome::Succeeded {
            preimage_hex: hex::encode(preimage),
            fee_msat: 1_000
        }
    );
    let hash = PaymentHash(Sha256::digest(preimage).into());
    assert_eq!(node.track_payment(&hash).await.unwrap(), paid);
    // Paying again: xpay refuses (219, already paid) and nothing leaves twice.
    assert_eq!(node.pay(&bolt11, 2_000).await.unwrap(), paid);
    let xpays = setup
        .fake
        .requests()
        .iter()
        .filter(|c| *c == "cln.Xpay")
        .count();
    assert_eq!(xpays, 2);
    assert!(matches!(
        node.track_payment(&PaymentHash(rand::random())).await,
        Err(NodeError::NotFound)
    ));
}

#[tokio::test]
async fn a_reward_without_a_route_or_over_the_fee_limit_fails() {
    let (setup, node) = connected().await;
    let (bolt11, _) = remote_invoice(&setup.fake, 5_000);
    let too_dear = node.pay(&bolt11, 999).await.unwrap();
    assert!(
        matches!(&too_dear, PaymentOutcome::Failed { reason } if reason.contains("excessive cost")),
        "{too_dear:?}"
    );
    let nowhere = "lnbcrt1pn2s4u5pp5";
    assert!(node.pay(nowhere, 1_000).await.is_err());
    let (bolt11, _) = remote_invoice(&setup.fake, 5_000);
    setup
        .fake
        .set_xpay_behaviour(XpayBehaviour::Succeed { fee_msat: 10 });
    // An invoice nobody can route to: xpay fails and listpays agrees.
    let unknown = regtest_invoice([9; 32], 1_000);
    assert!(matches!(
        node.pay(&unknown, 1_000).await.unwrap(),
        PaymentOutcome::Failed { .. }
    ));
    assert!(matches!(
        node.pay(&bolt11, 1_000).await.unwrap(),
        PaymentOutcome::Succeeded { fee_msat: 10, .. }
    ));
}

#[tokio::test]
async fn a_stuck_reward_is_in_flight_and_never_paid_again() {
    let setup = fake_with(FakeClnOptions::default()).await;
    let mut config = backend_config(&setup.credentials);
    config.payment_timeout = Duration::from_secs(1);
    config.timeout = Duration::from_secs(1);
    let node = ClnNode::connect(config).await.unwrap();
    setup.fake.set_xpay_behaviour(XpayBehaviour::Hang);
    let (bolt11, preimage) = remote_invoice(&setup.fake, 5_000);
    assert_eq!(
        node.pay(&bolt11, 2_000).await.unwrap(),
        PaymentOutcome::InFlight
    );
    let hash = PaymentHash(Sha256::digest(preimage).into());
    assert_eq!(
        node.track_payment(&hash).await.unwrap(),
        PaymentOutcome::InFlight
    );
}
