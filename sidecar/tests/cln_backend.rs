//! What the `cln` backend does beyond the shared node contract, against FakeCln (the test double
//! of Core Lightning's and the hold plugin's gRPC): its own stream reconnecting across a CLN
//! restart, mutual TLS, the network check, an unreachable node, reward payouts with xpay and
//! listpays — never paying an invoice twice — and route hints to private channels (`private`).

mod support;

use std::time::Duration;

use fake_cln::{ChannelState, FakeCln, FakeClnOptions, PeerChannel, XpayBehaviour};
use futures_util::StreamExt;
use lightning_invoice::{
    Bolt11Invoice, Currency, InvoiceBuilder, PaymentSecret, RouteHint, RouteHintHop, RoutingFees,
};
use lightning_wall::ids::{PaymentHash, Preimage};
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
    // Drive the subscription all the time, as the lifecycle does, so its Track stream is open when
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

/// A node with `private` as given on a FakeCln holding `channels`.
async fn with_channels(private: bool, channels: Vec<PeerChannel>) -> (Setup, ClnNode) {
    let setup = fake_with(FakeClnOptions::default()).await;
    setup.fake.set_channels(channels);
    let mut config = backend_config(&setup.credentials);
    config.private = private;
    let node = ClnNode::connect(config).await.unwrap();
    (setup, node)
}

/// A hold invoice (deposit) and a normal one from `node`, decoded: their route hints.
async fn hints_of_both_kinds(node: &ClnNode) -> (Vec<RouteHint>, Vec<RouteHint>) {
    let hold = node
        .create_hold_invoice(&PaymentHash(rand::random()), &request())
        .await
        .unwrap();
    let normal = node
        .create_invoice(&Preimage(rand::random()), &request())
        .await
        .unwrap();
    let decode = |bolt11: &str| bolt11.parse::<Bolt11Invoice>().unwrap().route_hints();
    (
        decode(&hold.payment_request),
        decode(&normal.payment_request),
    )
}

/// The one hint a payer needs for `channel`: the peer's key, the channel's id, and the peer's
/// fee policy (not ours, which FakeCln sets differently).
fn hint_for(channel: &PeerChannel, scid: u64) -> RouteHint {
    let remote = channel.remote.unwrap();
    RouteHint(vec![RouteHintHop {
        src_node_id: channel.peer_id,
        short_channel_id: scid,
        fees: RoutingFees {
            base_msat: u32::try_from(remote.fee_base_msat).unwrap(),
            proportional_millionths: remote.fee_proportional_millionths,
        },
        cltv_expiry_delta: u16::try_from(remote.cltv_expiry_delta).unwrap(),
        htlc_minimum_msat: None,
        htlc_maximum_msat: None,
    }])
}

fn public(scid: &str) -> PeerChannel {
    PeerChannel {
        private: false,
        ..PeerChannel::private_normal(scid)
    }
}

#[tokio::test]
async fn private_puts_a_hint_to_the_private_channel_into_both_invoice_kinds() {
    let private = PeerChannel::private_normal("103x1x0");
    let aliased = PeerChannel {
        alias_local: Some("16000000x1x0".to_owned()),
        alias_remote: Some("15000000x2x1".to_owned()),
        ..PeerChannel::private_normal("105x1x0")
    };
    let (setup, node) = with_channels(
        true,
        vec![private.clone(), public("104x1x0"), aliased.clone()],
    )
    .await;
    let (hold, normal) = hints_of_both_kinds(&node).await;
    let expected = vec![
        hint_for(&private, 103 << 40 | 1 << 16),
        // The peer's alias, never the real id of an unannounced channel.
        hint_for(&aliased, 15_000_000 << 40 | 2 << 16 | 1),
    ];
    assert_eq!(hold, expected, "hold invoice");
    assert_eq!(normal, expected, "normal invoice");
    // Each invoice asked CLN for the channels once.
    let listed = setup.fake.requests();
    assert_eq!(
        listed
            .iter()
            .filter(|c| *c == "cln.ListPeerChannels")
            .count(),
        2
    );
    // The hinted hold invoice is still a deposit that can be paid and held.
    let deposit = node
        .create_hold_invoice(&PaymentHash(rand::random()), &request())
        .await
        .unwrap();
    let hash = setup.fake.pay_request(&deposit.payment_request).unwrap();
    assert_eq!(setup.fake.hold_invoice(hash).unwrap().state, "accepted");
}

#[tokio::test]
async fn without_private_no_invoice_names_a_private_channel() {
    let (setup, node) = with_channels(
        false,
        vec![PeerChannel::private_normal("103x1x0"), public("104x1x0")],
    )
    .await;
    let (hold, normal) = hints_of_both_kinds(&node).await;
    assert_eq!(hold, vec![]);
    assert_eq!(normal, vec![]);
    assert!(
        !setup
            .fake
            .requests()
            .iter()
            .any(|c| c == "cln.ListPeerChannels")
    );
}

#[tokio::test]
async fn without_private_cln_still_hints_its_private_channels_when_it_has_no_public_one() {
    // CLN's own default for its invoices; the plugin puts in only what it is given.
    let private = PeerChannel::private_normal("103x1x0");
    let (_setup, node) = with_channels(false, vec![private.clone()]).await;
    let (hold, normal) = hints_of_both_kinds(&node).await;
    assert_eq!(hold, vec![]);
    assert_eq!(normal, vec![hint_for(&private, 103 << 40 | 1 << 16)]);
}

#[tokio::test]
async fn private_on_a_node_without_usable_private_channels_adds_no_hint_and_no_error() {
    let offline = PeerChannel {
        peer_connected: false,
        ..PeerChannel::private_normal("106x1x0")
    };
    let opening = PeerChannel {
        state: ChannelState::ChanneldAwaitingLockin,
        short_channel_id: None,
        ..PeerChannel::private_normal("107x1x0")
    };
    for channels in [vec![], vec![public("104x1x0"), offline, opening]] {
        let (_setup, node) = with_channels(true, channels).await;
        let (hold, normal) = hints_of_both_kinds(&node).await;
        assert_eq!(hold, vec![]);
        assert_eq!(normal, vec![]);
    }
}

#[tokio::test]
async fn a_private_channel_gone_between_listing_and_invoicing_is_unavailable() {
    // CLN refuses exposeprivatechannels naming no usable channel (code 902): retry later.
    let (setup, node) = with_channels(true, vec![PeerChannel::private_normal("103x1x0")]).await;
    setup.fake.set_channels_after_listing(vec![]);
    let answer = node
        .create_invoice(&Preimage(rand::random()), &request())
        .await;
    assert!(
        matches!(answer, Err(NodeError::Unavailable(ref m)) if m.contains("None of those hints")),
        "{answer:?}"
    );
}
