//! The lnd backend against FakeLnd (the test double of lnd's REST contract): every call, every
//! error mapping, the pinned certificate, the macaroon, dropped streams and an lnd restart.

use std::time::Duration;

use fake_lnd::{FakeLnd, FakeLndOptions};
use futures_util::StreamExt;

use super::*;
use crate::node::InvoiceState;
use sha2::{Digest, Sha256};

struct Setup {
    fake: FakeLnd,
    node: LndNode,
    config: LndConfig,
    _dir: tempfile::TempDir,
}

fn config_for(fake: &FakeLnd, dir: &std::path::Path) -> LndConfig {
    let (cert, macaroon) = fake.write_credentials(dir).unwrap();
    LndConfig {
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        timeout: Duration::from_secs(5),
        ..LndConfig::new(fake.url(), cert, macaroon, "regtest")
    }
}

fn pinned(config: &LndConfig) -> &std::path::Path {
    match &config.tls {
        LndTrust::Pin(path) => path,
        LndTrust::Ca(_) => unreachable!("these tests pin"),
    }
}

async fn setup() -> Setup {
    let fake = FakeLnd::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(&fake, dir.path());
    let node = LndNode::connect(config.clone()).await.unwrap();
    Setup {
        fake,
        node,
        config,
        _dir: dir,
    }
}

fn request(amount_msat: u64) -> InvoiceRequest {
    InvoiceRequest {
        amount_msat,
        memo: "lightning-wall deposit".to_owned(),
        expiry: Duration::from_secs(600),
        cltv_expiry: Some(144),
    }
}

async fn next_update(updates: &mut InvoiceUpdates) -> InvoiceStatus {
    tokio::time::timeout(Duration::from_secs(10), updates.next())
        .await
        .expect("no update within 10 s")
        .expect("the stream ended early")
        .expect("the stream yielded an error")
}

async fn stream_ended(updates: &mut InvoiceUpdates) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(10), updates.next()).await,
        Ok(None)
    )
}

#[tokio::test]
async fn every_call_round_trips_through_lnds_rest_contract() {
    let Setup {
        fake, node, _dir, ..
    } = setup().await;
    let info = node.info().await.unwrap();
    assert_eq!(info.network, "regtest");
    assert_eq!(info.block_height, 500);
    assert_eq!(info.hold_expiry_delta, 18);
    assert_eq!(info.pubkey.len(), 66);

    let preimage = Preimage([0x11; 32]);
    let normal = node
        .create_invoice(&preimage, &request(3_000))
        .await
        .unwrap();
    assert!(normal.payment_request.starts_with("lnbcrt30n1"));
    assert_eq!(
        fake.invoice(normal.payment_hash.0).unwrap().preimage,
        Some(preimage.0)
    );

    let hash = PaymentHash([0x22; 32]);
    let hold = node
        .create_hold_invoice(&hash, &request(5_000))
        .await
        .unwrap();
    assert_eq!(hold.payment_hash, hash);
    let open = node.lookup(&hash).await.unwrap();
    assert_eq!(open.state, InvoiceState::Open);
    assert_eq!(open.amount_msat, 5_000);
    assert_eq!(open.expiry, Duration::from_secs(600));

    fake.pay_request(&hold.payment_request).unwrap();
    let held = node.lookup(&hash).await.unwrap();
    assert_eq!(held.state, InvoiceState::Accepted);
    assert_eq!(held.amount_paid_msat, 5_000);
    assert_eq!(held.htlc_expiry_height, Some(500 + 144));

    node.settle(&Preimage([0x33; 32])).await.unwrap_err();
    let hold_preimage = Preimage([0x44; 32]);
    let hash = PaymentHash(Sha256::digest(hold_preimage.0).into());
    node.create_hold_invoice(&hash, &request(1_000))
        .await
        .unwrap();
    fake.pay(hash.0).unwrap();
    node.settle(&hold_preimage).await.unwrap();
    assert_eq!(
        node.lookup(&hash).await.unwrap().state,
        InvoiceState::Settled
    );

    let calls = fake.requests();
    for expected in [
        "GET /v1/getinfo",
        "POST /v1/invoices",
        "POST /v2/invoices/hodl",
        "GET /v2/invoices/lookup",
        "POST /v2/invoices/settle",
    ] {
        assert!(
            calls.iter().any(|c| c == expected),
            "{expected} not called: {calls:?}"
        );
    }
}

#[tokio::test]
async fn lnds_error_messages_map_to_typed_errors() {
    let Setup {
        fake, node, _dir, ..
    } = setup().await;
    let preimage = Preimage([0x55; 32]);
    let hash = PaymentHash(Sha256::digest(preimage.0).into());
    node.create_hold_invoice(&hash, &request(1_000))
        .await
        .unwrap();
    assert!(matches!(
        node.settle(&preimage).await,
        Err(NodeError::StillOpen)
    ));
    assert!(matches!(
        node.create_hold_invoice(&hash, &request(1_000)).await,
        Err(NodeError::AlreadyExists)
    ));
    fake.pay(hash.0).unwrap();
    node.settle(&preimage).await.unwrap();
    node.settle(&preimage).await.unwrap();
    assert!(matches!(
        node.cancel(&hash).await,
        Err(NodeError::AlreadySettled)
    ));

    let other = PaymentHash([0x66; 32]);
    node.create_hold_invoice(&other, &request(1_000))
        .await
        .unwrap();
    node.cancel(&other).await.unwrap();
    node.cancel(&other).await.unwrap();

    let unknown = PaymentHash([0x77; 32]);
    assert!(matches!(
        node.lookup(&unknown).await,
        Err(NodeError::NotFound)
    ));
    assert!(matches!(
        node.cancel(&unknown).await,
        Err(NodeError::NotFound)
    ));
    assert!(matches!(
        node.settle(&Preimage([0x78; 32])).await,
        Err(NodeError::NotFound)
    ));
    assert!(matches!(
        node.subscribe(&unknown).await,
        Err(NodeError::NotFound)
    ));
    let too_low = InvoiceRequest {
        cltv_expiry: Some(10),
        ..request(1_000)
    };
    assert!(matches!(
        node.create_hold_invoice(&PaymentHash([0x79; 32]), &too_low).await,
        Err(NodeError::Rejected(m)) if m.contains("CLTV delta of 10 must be greater than minimum of 24")
    ));
}

#[tokio::test]
async fn hashes_with_url_unsafe_base64_are_looked_up_and_streamed() {
    // 0xfb… encodes to "+/…" in standard base64: the query and path need base64url.
    let Setup {
        fake, node, _dir, ..
    } = setup().await;
    let hash = PaymentHash([0xfb; 32]);
    node.create_hold_invoice(&hash, &request(1_000))
        .await
        .unwrap();
    assert_eq!(node.lookup(&hash).await.unwrap().payment_hash, hash);
    let mut updates = node.subscribe(&hash).await.unwrap();
    assert_eq!(next_update(&mut updates).await.state, InvoiceState::Open);
    fake.pay(hash.0).unwrap();
    assert_eq!(
        next_update(&mut updates).await.state,
        InvoiceState::Accepted
    );
}

#[tokio::test]
async fn stream_sends_current_state_first_then_changes_and_ends_after_a_final_state() {
    let Setup {
        fake, node, _dir, ..
    } = setup().await;
    let preimage = Preimage([0x12; 32]);
    let hash = PaymentHash(Sha256::digest(preimage.0).into());
    node.create_hold_invoice(&hash, &request(2_000))
        .await
        .unwrap();
    let mut updates = node.subscribe(&hash).await.unwrap();
    assert_eq!(next_update(&mut updates).await.state, InvoiceState::Open);
    fake.pay(hash.0).unwrap();
    let held = next_update(&mut updates).await;
    assert_eq!(held.state, InvoiceState::Accepted);
    assert_eq!(held.htlc_expiry_height, Some(644));
    node.settle(&preimage).await.unwrap();
    assert_eq!(next_update(&mut updates).await.state, InvoiceState::Settled);
    assert!(stream_ended(&mut updates).await);
}

/// Reads the stream in the background, as the deposit lifecycle does, so the connection to lnd is
/// open while the test breaks it.
fn pump(mut updates: InvoiceUpdates) -> tokio::sync::mpsc::UnboundedReceiver<InvoiceStatus> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(update) = updates.next().await {
            if tx
                .send(update.expect("the stream yielded an error"))
                .is_err()
            {
                return;
            }
        }
    });
    rx
}

async fn received(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<InvoiceStatus>,
) -> Option<InvoiceStatus> {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("nothing within 10 s")
}

/// Waits until `count` SubscribeSingleInvoice requests reached FakeLnd.
async fn subscriptions_reach(fake: &FakeLnd, count: usize) {
    for _ in 0..500 {
        let seen = fake
            .requests()
            .iter()
            .filter(|r| r.starts_with("GET /v2/invoices/subscribe/"))
            .count();
        if seen >= count {
            // The request is logged before its stream starts; give it a moment to be served.
            tokio::time::sleep(Duration::from_millis(50)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {count} subscriptions reached FakeLnd");
}

#[tokio::test]
async fn a_stream_dropped_mid_way_reconnects_and_misses_no_state() {
    let Setup {
        fake, node, _dir, ..
    } = setup().await;
    let hash = PaymentHash([0x13; 32]);
    node.create_hold_invoice(&hash, &request(2_000))
        .await
        .unwrap();
    let mut updates = pump(node.subscribe(&hash).await.unwrap());
    assert_eq!(
        received(&mut updates).await.unwrap().state,
        InvoiceState::Open
    );
    // Cut the open stream, then change the state while it is down.
    subscriptions_reach(&fake, 1).await;
    fake.drop_streams();
    fake.pay(hash.0).unwrap();
    assert_eq!(
        received(&mut updates).await.unwrap().state,
        InvoiceState::Accepted
    );
    subscriptions_reach(&fake, 2).await;
    fake.drop_streams();
    fake.advance_blocks(144 - 18);
    assert_eq!(
        received(&mut updates).await.unwrap().state,
        InvoiceState::Canceled
    );
    assert_eq!(
        received(&mut updates).await,
        None,
        "the stream ends after a final state"
    );
}

#[tokio::test]
async fn lnd_restarting_mid_stream_loses_no_final_state() {
    let Setup {
        fake, node, _dir, ..
    } = setup().await;
    let hash = PaymentHash([0x14; 32]);
    node.create_hold_invoice(&hash, &request(2_000))
        .await
        .unwrap();
    let mut updates = pump(node.subscribe(&hash).await.unwrap());
    assert_eq!(
        received(&mut updates).await.unwrap().state,
        InvoiceState::Open
    );
    subscriptions_reach(&fake, 1).await;
    fake.stop().await;
    // While lnd is down: calls fail as unavailable, and the invoice is paid.
    assert!(matches!(
        node.lookup(&hash).await,
        Err(NodeError::Unavailable(_))
    ));
    fake.pay(hash.0).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    fake.restart().await.unwrap();
    assert_eq!(
        received(&mut updates).await.unwrap().state,
        InvoiceState::Accepted
    );
    node.cancel(&hash).await.unwrap();
    assert_eq!(
        received(&mut updates).await.unwrap().state,
        InvoiceState::Canceled
    );
    assert_eq!(received(&mut updates).await, None);
}

#[tokio::test]
async fn a_final_state_reached_while_lnd_was_down_is_delivered_by_reconciliation() {
    let Setup {
        fake, node, _dir, ..
    } = setup().await;
    let hash = PaymentHash([0x15; 32]);
    node.create_hold_invoice(&hash, &request(2_000))
        .await
        .unwrap();
    let mut updates = pump(node.subscribe(&hash).await.unwrap());
    assert_eq!(
        received(&mut updates).await.unwrap().state,
        InvoiceState::Open
    );
    subscriptions_reach(&fake, 1).await;
    fake.stop().await;
    fake.pay(hash.0).unwrap();
    fake.advance_blocks(200);
    fake.resume().await.unwrap();
    assert_eq!(
        received(&mut updates).await.unwrap().state,
        InvoiceState::Canceled
    );
    assert_eq!(received(&mut updates).await, None);
}

#[tokio::test]
async fn a_certificate_that_is_not_the_pinned_one_is_refused() {
    let fake = FakeLnd::start().await.unwrap();
    let impostor = FakeLnd::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for(&fake, dir.path());
    std::fs::write(pinned(&config), impostor.tls_cert_pem()).unwrap();
    let err = LndNode::connect(config.clone()).await.unwrap_err();
    assert!(
        matches!(
            err,
            LndConnectError::Unreachable {
                source: NodeError::Unavailable(_),
                ..
            }
        ),
        "{err}"
    );
    // The right cert at another lnd's address is refused too (the pin is the identity).
    std::fs::write(pinned(&config), fake.tls_cert_pem()).unwrap();
    config.url = impostor.url();
    assert!(LndNode::connect(config).await.is_err());
}

#[tokio::test]
async fn webpki_alone_rejects_lnds_ca_flagged_certificate() {
    // Why the pin exists: the same cert as a trust root is refused as a server leaf.
    let fake = FakeLnd::start().await.unwrap();
    let root = reqwest::Certificate::from_pem(fake.tls_cert_pem().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(root)
        .build()
        .unwrap();
    let err = client
        .get(format!("{}/v1/getinfo", fake.url()))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
}

#[tokio::test]
async fn a_regenerated_lnd_certificate_is_picked_up_from_the_file() {
    let Setup {
        fake,
        node,
        config,
        _dir,
        ..
    } = setup().await;
    fake.regenerate_cert().await.unwrap();
    assert!(matches!(node.info().await, Err(NodeError::Unavailable(_))));
    std::fs::write(pinned(&config), fake.tls_cert_pem()).unwrap();
    assert_eq!(node.info().await.unwrap().network, "regtest");
}

#[tokio::test]
async fn a_wrong_macaroon_is_refused_and_never_echoed() {
    let fake = FakeLnd::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(&fake, dir.path());
    // Another node's macaroon: well formed, signed with another root key.
    let wrong = FakeLnd::start().await.unwrap().macaroon();
    let Macaroon::File(path) = &config.macaroon else {
        unreachable!()
    };
    std::fs::write(path, &wrong).unwrap();
    let err = LndNode::connect(config).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("verification failed"), "{text}");
    assert!(!text.contains(&hex::encode(&wrong)));
    assert!(matches!(
        err,
        LndConnectError::Unreachable {
            source: NodeError::Rejected(_),
            ..
        }
    ));
}

#[tokio::test]
async fn the_macaroon_never_appears_in_debug_output() {
    let Setup {
        fake, node, _dir, ..
    } = setup().await;
    let debug = format!("{node:?}");
    assert!(!debug.contains(&hex::encode(fake.macaroon())), "{debug}");
}

#[tokio::test]
async fn a_node_on_another_network_is_refused_at_start_up() {
    let fake = FakeLnd::start_with(FakeLndOptions {
        network: "mainnet".to_owned(),
        ..FakeLndOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = LndNode::connect(config_for(&fake, dir.path()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LndConnectError::NetworkMismatch { expected, actual, .. }
            if expected == "regtest" && actual == "mainnet"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_lnd_is_reported_as_unavailable() {
    let Setup {
        fake, node, _dir, ..
    } = setup().await;
    fake.stop().await;
    assert!(matches!(node.info().await, Err(NodeError::Unavailable(_))));
    fake.resume().await.unwrap();
    node.info().await.unwrap();
}

#[tokio::test]
async fn pay_reports_success_with_the_preimage_failure_and_refuses_paying_twice() {
    let Setup {
        fake, node, _dir, ..
    } = setup().await;
    let remote = Preimage([0x21; 32]);
    let invoice = node.create_invoice(&remote, &request(1_000)).await.unwrap();
    fake.add_remote_preimage(remote.0);
    assert_eq!(
        node.pay(&invoice.payment_request, 100).await.unwrap(),
        PaymentOutcome::Succeeded {
            preimage_hex: hex::encode(remote.0),
            fee_msat: 0
        }
    );
    assert!(matches!(
        node.pay(&invoice.payment_request, 100).await,
        Err(NodeError::Rejected(m)) if m.contains("already paid")
    ));
    let unroutable = node
        .create_invoice(&Preimage([0x22; 32]), &request(1_000))
        .await
        .unwrap();
    assert!(matches!(
        node.pay(&unroutable.payment_request, 100).await.unwrap(),
        PaymentOutcome::Failed { .. }
    ));
}

#[tokio::test]
async fn fake_lnd_rejects_unknown_request_fields_like_lnd() {
    // Guards the double's fidelity: a client sending an undocumented field must fail here too.
    let Setup {
        fake, config, _dir, ..
    } = setup().await;
    let tls = pinned_cert::client_config(pinned(&config)).unwrap();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    let response = client
        .post(format!("{}/v2/invoices/hodl", fake.url()))
        .header("Grpc-Metadata-macaroon", hex::encode(fake.macaroon()))
        .json(&serde_json::json!({"hash": wire::body_bytes(&[1; 32]), "value_msat": "1000", "amount": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], 3);
    assert!(body["message"].as_str().unwrap().contains("unknown field"));
    assert_eq!(body["details"], serde_json::json!([]));
}

#[tokio::test]
async fn the_macaroon_can_be_given_as_bytes_or_hex_text() {
    let fake = FakeLnd::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(&fake, dir.path());
    let as_bytes = LndConfig {
        macaroon: Macaroon::Value(fake.macaroon()),
        ..config.clone()
    };
    LndNode::connect(as_bytes).await.unwrap();
    let as_hex = LndConfig {
        macaroon: Macaroon::Value(format!("{}\n", hex::encode(fake.macaroon())).into_bytes()),
        ..config.clone()
    };
    LndNode::connect(as_hex).await.unwrap();
    let hex_file = dir.path().join("macaroon.hex");
    std::fs::write(&hex_file, hex::encode(fake.macaroon())).unwrap();
    LndNode::connect(LndConfig {
        macaroon: Macaroon::File(hex_file),
        ..config.clone()
    })
    .await
    .unwrap();
    assert!(
        !format!("{:?}", Macaroon::Value(fake.macaroon())).contains(&hex::encode(fake.macaroon()))
    );
    assert!(matches!(
        LndNode::connect(LndConfig {
            macaroon: Macaroon::Value(Vec::new()),
            ..config
        })
        .await,
        Err(LndConnectError::EmptyMacaroon)
    ));
}

#[tokio::test]
async fn fake_lnd_refuses_standard_base64_in_a_query_and_calls_without_a_macaroon() {
    // Guards the double's fidelity on the two pitfalls the client must avoid.
    let Setup {
        fake,
        node,
        config,
        _dir,
        ..
    } = setup().await;
    let hash = PaymentHash([0xfb; 32]);
    node.create_hold_invoice(&hash, &request(1_000))
        .await
        .unwrap();
    let tls = pinned_cert::client_config(pinned(&config)).unwrap();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    let standard = wire::body_bytes(&hash.0);
    assert!(standard.contains('+') || standard.contains('/'));
    let response = client
        .get(format!(
            "{}/v2/invoices/lookup?payment_hash={standard}",
            fake.url()
        ))
        .header("Grpc-Metadata-macaroon", hex::encode(fake.macaroon()))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    let response = client
        .get(format!("{}/v1/getinfo", fake.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["message"], "expected 1 macaroon, got 0");
}

#[tokio::test]
async fn private_asks_lnd_for_route_hints_to_its_private_channels() {
    let fake = FakeLnd::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hints = |bolt11: &str| {
        bolt11
            .parse::<lightning_invoice::Bolt11Invoice>()
            .unwrap()
            .route_hints()
    };
    let public = LndNode::connect(config_for(&fake, dir.path()))
        .await
        .unwrap();
    let created = public
        .create_hold_invoice(&PaymentHash([0x61; 32]), &request(1_000))
        .await
        .unwrap();
    assert!(hints(&created.payment_request).is_empty());
    assert!(!fake.requests().is_empty());
    let private = LndNode::connect(LndConfig {
        private: true,
        ..config_for(&fake, dir.path())
    })
    .await
    .unwrap();
    let hold = private
        .create_hold_invoice(&PaymentHash([0x62; 32]), &request(1_000))
        .await
        .unwrap();
    let normal = private
        .create_invoice(&Preimage([0x63; 32]), &request(1_000))
        .await
        .unwrap();
    for created in [hold, normal] {
        let hints = hints(&created.payment_request);
        assert_eq!(hints.len(), 1, "{}", created.payment_request);
        assert_eq!(hints[0].0[0].short_channel_id, 128_642_860_515_328);
    }
}

/// A plain HTTP client that trusts FakeLnd's pinned certificate, for the fidelity checks below.
fn raw_client(config: &LndConfig) -> reqwest::Client {
    let tls = pinned_cert::client_config(pinned(config)).unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap()
}

#[tokio::test]
async fn fake_lnd_takes_only_padded_base64_in_a_path_like_lnds_gateway() {
    // grpc-gateway's runtime.Bytes: padded standard, then padded URL-safe base64; nothing else.
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let Setup {
        fake,
        node,
        config,
        _dir,
    } = setup().await;
    let hash = PaymentHash([0x11; 32]);
    node.create_hold_invoice(&hash, &request(1_000))
        .await
        .unwrap();
    let client = raw_client(&config);
    let get = |encoded: String| {
        client
            .get(format!("{}/v2/invoices/subscribe/{encoded}", fake.url()))
            .header("Grpc-Metadata-macaroon", hex::encode(fake.macaroon()))
            .send()
    };
    let unpadded = get(URL_SAFE_NO_PAD.encode(hash.0)).await.unwrap();
    assert_eq!(unpadded.status(), 400);
    let padded = get(wire::url_bytes(&hash.0)).await.unwrap();
    assert_eq!(padded.status(), 200);
}

#[tokio::test]
async fn fake_lnd_sends_no_stream_head_before_the_first_message_like_lnd() {
    // lnd waits silently on a hash it does not know; the head comes with the first message.
    let Setup {
        fake,
        node,
        config,
        _dir,
    } = setup().await;
    let hash = PaymentHash([0x22; 32]);
    let client = raw_client(&config);
    let pending = tokio::spawn(
        client
            .get(format!(
                "{}/v2/invoices/subscribe/{}",
                fake.url(),
                wire::url_bytes(&hash.0)
            ))
            .header("Grpc-Metadata-macaroon", hex::encode(fake.macaroon()))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pending.is_finished(), "a response head before any message");
    node.create_hold_invoice(&hash, &request(1_000))
        .await
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("the head with the first message")
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
    // The stream stays open (OPEN is not final): read only the first message.
    let mut response = response;
    let first = tokio::time::timeout(Duration::from_secs(5), response.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let line: serde_json::Value = serde_json::from_slice(first.trim_ascii()).unwrap();
    assert_eq!(line["result"]["state"], "OPEN", "{line}");
}

#[tokio::test]
async fn fake_lnd_wraps_a_streaming_rpcs_error_in_error_like_lnds_gateway() {
    let Setup {
        fake, config, _dir, ..
    } = setup().await;
    let response = raw_client(&config)
        .get(format!(
            "{}/v2/router/track/{}",
            fake.url(),
            wire::url_bytes(&[0x33; 32])
        ))
        .header("Grpc-Metadata-macaroon", hex::encode(fake.macaroon()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 5, "{body}");
    assert_eq!(
        body["error"]["message"], "payment isn't initiated",
        "{body}"
    );
    assert_eq!(body["error"]["details"], serde_json::json!([]), "{body}");
}

#[tokio::test]
async fn fake_lnd_takes_timeout_seconds_zero_as_lnds_default() {
    let Setup {
        fake,
        node,
        config,
        _dir,
    } = setup().await;
    let preimage = Preimage([0x44; 32]);
    let invoice = node
        .create_invoice(&preimage, &request(1_000))
        .await
        .unwrap();
    let response = raw_client(&config)
        .post(format!("{}/v2/router/send", fake.url()))
        .header("Grpc-Metadata-macaroon", hex::encode(fake.macaroon()))
        .json(
            &serde_json::json!({"payment_request": invoice.payment_request,
            "timeout_seconds": 0, "fee_limit_msat": "1000", "no_inflight_updates": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let line: serde_json::Value =
        serde_json::from_str(response.text().await.unwrap().lines().next().unwrap()).unwrap();
    // No route to this node's own invoice in the double: a payment outcome, not a refusal.
    assert_eq!(line["result"]["status"], "FAILED", "{line}");
}

#[tokio::test]
async fn fake_lnd_accepts_every_documented_invoice_field_in_add_invoice() {
    // AddInvoice takes a whole lnrpc.Invoice; LNbits sends the output-only `r_hash`.
    let Setup {
        fake, config, _dir, ..
    } = setup().await;
    let preimage = [0x55; 32];
    let hash: [u8; 32] = Sha256::digest(preimage).into();
    let response = raw_client(&config)
        .post(format!("{}/v1/invoices", fake.url()))
        .header("Grpc-Metadata-macaroon", hex::encode(fake.macaroon()))
        .json(&serde_json::json!({
            "memo": "all fields", "r_preimage": wire::body_bytes(&preimage),
            "r_hash": wire::body_bytes(&hash), "value": "1", "settled": false,
            "creation_date": "0", "settle_date": "0", "payment_request": "", "expiry": "600",
            "fallback_addr": "", "cltv_expiry": "40", "route_hints": [], "private": true,
            "add_index": "0", "settle_index": "0", "amt_paid": "0", "amt_paid_sat": "0",
            "amt_paid_msat": "0", "state": "OPEN", "htlcs": [], "features": {},
            "is_keysend": false, "payment_addr": "", "is_amp": false, "amp_invoice_state": {},
            "is_blinded": false, "blinded_path_config": null
        }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        wire::decode_hash(body["r_hash"].as_str().unwrap()),
        Some(hash)
    );
}

#[test]
fn a_stale_state_after_a_newer_one_is_not_news() {
    let at = |state| InvoiceStatus {
        payment_hash: PaymentHash([1; 32]),
        state,
        amount_msat: 1_000,
        amount_paid_msat: 0,
        htlc_expiry_height: None,
        created_at: 0,
        expiry: Duration::from_secs(600),
    };
    assert!(is_news(
        &at(InvoiceState::Accepted),
        &at(InvoiceState::Open)
    ));
    assert!(!is_news(
        &at(InvoiceState::Open),
        &at(InvoiceState::Accepted)
    ));
    assert!(!is_news(&at(InvoiceState::Open), &at(InvoiceState::Open)));
    assert!(is_news(
        &at(InvoiceState::Canceled),
        &at(InvoiceState::Accepted)
    ));
    assert!(!is_news(
        &at(InvoiceState::Settled),
        &at(InvoiceState::Canceled)
    ));
    let paid = InvoiceStatus {
        amount_paid_msat: 1_000,
        htlc_expiry_height: Some(700),
        ..at(InvoiceState::Accepted)
    };
    assert!(is_news(&paid, &at(InvoiceState::Accepted)));
}

#[tokio::test]
async fn a_stream_that_went_silent_is_caught_up_by_periodic_lookup() {
    let fake = FakeLnd::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = LndConfig {
        stream_recheck: Duration::from_millis(200),
        ..config_for(&fake, dir.path())
    };
    let node = LndNode::connect(config).await.unwrap();
    let hash = PaymentHash([0x16; 32]);
    node.create_hold_invoice(&hash, &request(2_000))
        .await
        .unwrap();
    let mut updates = pump(node.subscribe(&hash).await.unwrap());
    assert_eq!(
        received(&mut updates).await.unwrap().state,
        InvoiceState::Open
    );
    subscriptions_reach(&fake, 1).await;
    fake.silence_streams(true);
    fake.pay(hash.0).unwrap();
    assert_eq!(
        received(&mut updates).await.unwrap().state,
        InvoiceState::Accepted
    );
    node.cancel(&hash).await.unwrap();
    assert_eq!(
        received(&mut updates).await.unwrap().state,
        InvoiceState::Canceled
    );
    assert_eq!(received(&mut updates).await, None);
}

/// The names FakeLnd's certificates carry, as lnd's do.
const LOCAL: &[&str] = &["localhost", "127.0.0.1"];

fn trusting_ca(fake: &FakeLnd, dir: &std::path::Path, ca_pem: &str) -> LndConfig {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    LndConfig {
        tls: LndTrust::Ca(CaRoots::File(ca)),
        ..config_for(fake, dir)
    }
}

#[tokio::test]
async fn a_ca_signed_certificate_is_trusted_by_its_ca_and_still_after_it_is_renewed() {
    let fake = FakeLnd::start().await.unwrap();
    let ca = fake_lnd::TestCa::generate().unwrap();
    fake.serve_ca_signed(&ca, LOCAL).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = trusting_ca(&fake, dir.path(), &ca.pem());
    let node = LndNode::connect(config.clone()).await.unwrap();
    // The hosted lnd renews: new key, new certificate, same CA. Nothing is copied anywhere.
    let before = fake.tls_cert_pem();
    fake.serve_ca_signed(&ca, LOCAL).await.unwrap();
    assert_ne!(before, fake.tls_cert_pem());
    assert_eq!(node.info().await.unwrap().network, "regtest");
    // A pin of the old certificate would have broken here, which is what tls_ca is for.
    let old_pin = dir.path().join("old.pem");
    std::fs::write(&old_pin, before).unwrap();
    let pinned = LndConfig {
        tls: LndTrust::Pin(old_pin),
        ..config.clone()
    };
    assert!(LndNode::connect(pinned).await.is_err());
}

#[tokio::test]
async fn ca_trust_refuses_another_cas_certificate_and_lnds_self_signed_one() {
    let fake = FakeLnd::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // lnd's own tls.cert given as the CA: CA-flagged, refused as a server certificate.
    let config = trusting_ca(&fake, dir.path(), &fake.tls_cert_pem());
    let err = LndNode::connect(config).await.unwrap_err();
    assert!(matches!(err, LndConnectError::Unreachable { .. }), "{err}");
    // A certificate from another CA.
    let ours = fake_lnd::TestCa::generate().unwrap();
    let theirs = fake_lnd::TestCa::generate().unwrap();
    fake.serve_ca_signed(&theirs, LOCAL).await.unwrap();
    let config = trusting_ca(&fake, dir.path(), &ours.pem());
    assert!(LndNode::connect(config.clone()).await.is_err());
    // The right CA, but a certificate for another name than the URL's host: refused, the
    // name is part of the trust.
    fake.serve_ca_signed(&ours, &["lnd.example"]).await.unwrap();
    assert!(LndNode::connect(config.clone()).await.is_err());
    fake.serve_ca_signed(&ours, LOCAL).await.unwrap();
    LndNode::connect(config).await.unwrap();
}
