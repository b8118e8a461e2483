//! The dev node end to end on a real SQLite file: payments, expiry, auto-cancel, restart.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use super::*;
use crate::node::InvoiceState;
use sha2::{Digest, Sha256};

fn config(dir: &std::path::Path) -> DevNodeConfig {
    DevNodeConfig {
        sweep_interval: None,
        ..DevNodeConfig::new(dir)
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

async fn open(dir: &std::path::Path) -> (DevNode, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_now());
    let node = DevNode::open_with_clock(config(dir), clock.clone())
        .await
        .unwrap();
    (node, clock)
}

/// The next streamed state; a missing update fails the test instead of hanging it.
async fn next_update(updates: &mut crate::node::InvoiceUpdates) -> InvoiceStatus {
    tokio::time::timeout(Duration::from_secs(5), updates.next())
        .await
        .expect("no update within 5 s")
        .expect("the stream ended early")
        .expect("the stream yielded an error")
}

async fn stream_ended(updates: &mut crate::node::InvoiceUpdates) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(5), updates.next()).await,
        Ok(None)
    )
}

fn hash_of(preimage: &Preimage) -> PaymentHash {
    PaymentHash(Sha256::digest(preimage.0).into())
}

#[tokio::test]
async fn paying_a_normal_invoice_settles_it_and_reveals_the_preimage() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let preimage = Preimage([5; 32]);
    let created = node
        .create_invoice(&preimage, &request(1_000))
        .await
        .unwrap();
    assert!(created.payment_request.starts_with("lnbcrt10n1"));
    assert_eq!(created.payment_hash, hash_of(&preimage));
    let paid = node
        .simulate_payment(&created.payment_request)
        .await
        .unwrap();
    assert_eq!(paid, DevPayment::Settled { preimage });
    let status = node.lookup(&created.payment_hash).await.unwrap();
    assert_eq!(status.state, InvoiceState::Settled);
    assert_eq!(status.amount_paid_msat, 1_000);
    let again = node.simulate_payment(&created.payment_request).await;
    assert!(matches!(
        again,
        Err(DevPayError::Refused(PayRefused::AlreadyPaid))
    ));
    assert_eq!(again.unwrap_err().code(), "invoice_already_paid");
}

#[tokio::test]
async fn held_payment_and_chain_height_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let hash = PaymentHash([8; 32]);
    let (node, clock) = open(dir.path()).await;
    let created = node
        .create_hold_invoice(&hash, &request(2_000))
        .await
        .unwrap();
    node.advance_blocks(3).await.unwrap();
    let height = node.height();
    let DevPayment::Held { htlc_expiry_height } = node
        .simulate_payment(&created.payment_request)
        .await
        .unwrap()
    else {
        panic!("a hold invoice must be held");
    };
    assert_eq!(htlc_expiry_height, height + 144);
    assert_eq!(
        DevPayment::Held { htlc_expiry_height }.to_json()["status"],
        "held"
    );
    let pubkey = node.pubkey();
    drop(node);

    let reopened = DevNode::open_with_clock(config(dir.path()), clock)
        .await
        .unwrap();
    assert_eq!(reopened.pubkey(), pubkey, "the node key is kept");
    assert_eq!(reopened.height(), height, "mined blocks are kept");
    let status = reopened.lookup(&hash).await.unwrap();
    assert_eq!(status.state, InvoiceState::Accepted);
    assert_eq!(status.htlc_expiry_height, Some(htlc_expiry_height));
    reopened.settle(&Preimage([1; 32])).await.unwrap_err();
}

#[tokio::test]
async fn height_follows_the_clock_at_the_block_interval() {
    let dir = tempfile::tempdir().unwrap();
    let (node, clock) = open(dir.path()).await;
    let start = node.height();
    clock.advance(Duration::from_secs(599));
    assert_eq!(node.height(), start);
    clock.advance(Duration::from_secs(1));
    assert_eq!(node.height(), start + 1);
    clock.advance(Duration::from_secs(6_000));
    assert_eq!(node.info().await.unwrap().block_height, start + 11);
}

#[tokio::test]
async fn held_invoice_is_auto_canceled_hold_expiry_delta_blocks_before_the_htlc_expires() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let hash = PaymentHash([9; 32]);
    let created = node
        .create_hold_invoice(&hash, &request(2_000))
        .await
        .unwrap();
    node.simulate_payment(&created.payment_request)
        .await
        .unwrap();
    let mut updates = node.subscribe(&hash).await.unwrap();
    assert_eq!(
        next_update(&mut updates).await.state,
        InvoiceState::Accepted
    );
    // 144-block HTLC, delta 18: still held after 125 blocks, canceled at 126.
    node.advance_blocks(125).await.unwrap();
    assert_eq!(
        node.lookup(&hash).await.unwrap().state,
        InvoiceState::Accepted
    );
    node.advance_blocks(1).await.unwrap();
    let last = next_update(&mut updates).await;
    assert_eq!(last.state, InvoiceState::Canceled);
    assert!(
        stream_ended(&mut updates).await,
        "the stream ends after a final state"
    );
}

#[tokio::test]
async fn unpaid_invoice_expires_and_can_no_longer_be_paid() {
    let dir = tempfile::tempdir().unwrap();
    let (node, clock) = open(dir.path()).await;
    let created = node
        .create_hold_invoice(&PaymentHash([4; 32]), &request(2_000))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(600));
    assert!(matches!(
        node.simulate_payment(&created.payment_request).await,
        Err(DevPayError::Refused(PayRefused::Expired))
    ));
    assert_eq!(
        node.sweep().await.unwrap(),
        0,
        "expired on the payer's touch already"
    );
    assert_eq!(
        node.lookup(&created.payment_hash).await.unwrap().state,
        InvoiceState::Canceled
    );
}

#[tokio::test]
async fn sweep_expires_open_invoices_in_the_background_order() {
    let dir = tempfile::tempdir().unwrap();
    let (node, clock) = open(dir.path()).await;
    let hash = PaymentHash([6; 32]);
    node.create_hold_invoice(&hash, &request(2_000))
        .await
        .unwrap();
    let mut updates = node.subscribe(&hash).await.unwrap();
    assert_eq!(next_update(&mut updates).await.state, InvoiceState::Open);
    clock.advance(Duration::from_secs(599));
    assert_eq!(node.sweep().await.unwrap(), 0);
    clock.advance(Duration::from_secs(1));
    assert_eq!(node.sweep().await.unwrap(), 1);
    assert_eq!(
        next_update(&mut updates).await.state,
        InvoiceState::Canceled
    );
    assert!(stream_ended(&mut updates).await);
}

#[tokio::test]
async fn payer_refuses_invoices_of_other_nodes_and_networks_and_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let other_dir = tempfile::tempdir().unwrap();
    let (other, _) = open(other_dir.path()).await;
    let foreign = other
        .create_hold_invoice(&PaymentHash([2; 32]), &request(1_000))
        .await
        .unwrap();
    // Same hash on our node: the payer still refuses the other node's invoice.
    node.create_hold_invoice(&PaymentHash([2; 32]), &request(1_000))
        .await
        .unwrap();
    assert!(matches!(
        node.simulate_payment(&foreign.payment_request).await,
        Err(DevPayError::UnknownInvoice)
    ));
    assert!(matches!(
        node.simulate_payment("lnbcrt1garbage").await,
        Err(DevPayError::Malformed(_))
    ));
    let mainnet = mainnet_invoice();
    assert!(matches!(
        node.simulate_payment(&mainnet).await,
        Err(DevPayError::WrongNetwork(_))
    ));
}

#[tokio::test]
async fn a_hash_is_never_reused_even_after_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let hash = PaymentHash([3; 32]);
    node.create_hold_invoice(&hash, &request(1_000))
        .await
        .unwrap();
    node.cancel(&hash).await.unwrap();
    assert!(matches!(
        node.create_hold_invoice(&hash, &request(1_000)).await,
        Err(NodeError::AlreadyExists)
    ));
}

/// Invoices created at once are written together (new_invoices.rs): each is stored and
/// readable once its creation returns, and a hash created twice within one batch exists once,
/// the second creation refused, the rest of the batch stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoices_created_at_once_are_each_stored_and_a_duplicate_is_refused_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let mut creations = tokio::task::JoinSet::new();
    // 150 hashes (more than one batch), hash 7 twice.
    for i in (0..150u8).chain([7]) {
        let node = node.clone();
        creations.spawn(async move {
            let hash = PaymentHash([i; 32]);
            (i, node.create_hold_invoice(&hash, &request(1_000)).await)
        });
    }
    let mut refused = Vec::new();
    while let Some(done) = creations.join_next().await {
        match done.unwrap() {
            (_, Ok(created)) => {
                let status = node.lookup(&created.payment_hash).await.unwrap();
                assert_eq!(status.state, InvoiceState::Open);
            }
            (i, Err(NodeError::AlreadyExists)) => refused.push(i),
            (i, Err(e)) => panic!("invoice {i}: {e}"),
        }
    }
    assert_eq!(
        refused,
        [7],
        "exactly the second creation of hash 7 is refused"
    );
    for i in 0..150u8 {
        node.lookup(&PaymentHash([i; 32])).await.unwrap();
    }
}

#[tokio::test]
async fn cltv_expiry_below_lnds_minimum_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let too_low = InvoiceRequest {
        cltv_expiry: Some(MIN_CLTV_EXPIRY - 1),
        ..request(1_000)
    };
    assert!(matches!(
        node.create_hold_invoice(&PaymentHash([1; 32]), &too_low)
            .await,
        Err(NodeError::Rejected(_))
    ));
}

#[tokio::test]
async fn pay_settles_own_invoices_and_refuses_to_pay_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let other_dir = tempfile::tempdir().unwrap();
    let (wallet, _) = open(other_dir.path()).await;
    let own = node
        .create_invoice(&Preimage([11; 32]), &request(1_000))
        .await
        .unwrap();
    assert_eq!(
        node.pay(&own.payment_request, 10).await.unwrap(),
        PaymentOutcome::Succeeded {
            preimage_hex: hex::encode([11; 32]),
            fee_msat: 0
        }
    );
    let reward = wallet
        .create_invoice(&Preimage([12; 32]), &request(500))
        .await
        .unwrap();
    assert!(matches!(
        node.pay(&reward.payment_request, 10).await.unwrap(),
        PaymentOutcome::Succeeded { .. }
    ));
    assert!(matches!(
        node.pay(&reward.payment_request, 10).await,
        Err(NodeError::Rejected(_))
    ));
}

#[tokio::test]
async fn background_sweeper_cancels_expired_invoices_without_being_asked() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let node = DevNode::open_with_clock(
        DevNodeConfig {
            sweep_interval: Some(Duration::from_millis(20)),
            ..DevNodeConfig::new(dir.path())
        },
        clock.clone(),
    )
    .await
    .unwrap();
    let hash = PaymentHash([13; 32]);
    node.create_hold_invoice(&hash, &request(1_000))
        .await
        .unwrap();
    let mut updates = node.subscribe(&hash).await.unwrap();
    next_update(&mut updates).await;
    clock.advance(Duration::from_secs(601));
    let last = tokio::time::timeout(Duration::from_secs(5), updates.next())
        .await
        .expect("the sweeper must cancel within a few ticks")
        .unwrap()
        .unwrap();
    assert_eq!(last.state, InvoiceState::Canceled);
}

fn mainnet_invoice() -> String {
    use bitcoin::hashes::{Hash, sha256};
    use bitcoin::secp256k1::{Secp256k1, SecretKey};
    use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
    let key = SecretKey::from_slice(&[0x42; 32]).unwrap();
    InvoiceBuilder::new(Currency::Bitcoin)
        .description("mainnet".to_owned())
        .payment_hash(sha256::Hash::from_byte_array([1; 32]))
        .payment_secret(PaymentSecret([2; 32]))
        .current_timestamp()
        .min_final_cltv_expiry_delta(144)
        .amount_milli_satoshis(1_000)
        .build_signed(|m| Secp256k1::new().sign_ecdsa_recoverable(m, &key))
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_finished_subscription_leaves_no_watcher_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let hash = PaymentHash([14; 32]);
    node.create_hold_invoice(&hash, &request(1_000))
        .await
        .unwrap();
    let first = node.subscribe(&hash).await.unwrap();
    let mut second = node.subscribe(&hash).await.unwrap();
    drop(first);
    assert_eq!(
        node.inner.watchers.lock().unwrap().len(),
        1,
        "one subscriber left"
    );
    next_update(&mut second).await;
    node.cancel(&hash).await.unwrap();
    assert_eq!(next_update(&mut second).await.state, InvoiceState::Canceled);
    assert!(stream_ended(&mut second).await);
    drop(second);
    assert!(node.inner.watchers.lock().unwrap().is_empty());
}

/// The first subscriber of a hold invoice created here is answered from memory (no read), and
/// that answer is never older than what this node did to the invoice or what time did to it.
#[tokio::test]
async fn a_first_subscriber_sees_what_happened_before_it_subscribed() {
    let dir = tempfile::tempdir().unwrap();
    let (node, clock) = open(dir.path()).await;
    let fresh = PaymentHash([21; 32]);
    node.create_hold_invoice(&fresh, &request(1_000))
        .await
        .unwrap();
    assert_eq!(node.inner.unread.lock().unwrap().len(), 1);
    let mut updates = node.subscribe(&fresh).await.unwrap();
    assert_eq!(next_update(&mut updates).await.state, InvoiceState::Open);
    assert!(node.inner.unread.lock().unwrap().is_empty(), "taken");

    let canceled = PaymentHash([22; 32]);
    node.create_hold_invoice(&canceled, &request(1_000))
        .await
        .unwrap();
    node.cancel(&canceled).await.unwrap();
    let mut updates = node.subscribe(&canceled).await.unwrap();
    assert_eq!(
        next_update(&mut updates).await.state,
        InvoiceState::Canceled
    );

    // Expired while nobody looked: nothing wrote it, time did.
    let expired = PaymentHash([23; 32]);
    node.create_hold_invoice(&expired, &request(1_000))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(600));
    let mut updates = node.subscribe(&expired).await.unwrap();
    assert_eq!(
        next_update(&mut updates).await.state,
        InvoiceState::Canceled
    );
}

#[tokio::test]
async fn hold_invoices_nobody_subscribes_to_are_kept_in_memory_up_to_a_bound() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    for i in 0..(MAX_UNREAD as u32 + 10) {
        let mut hash = [0u8; 32];
        hash[..4].copy_from_slice(&i.to_be_bytes());
        node.create_hold_invoice(&PaymentHash(hash), &request(1_000))
            .await
            .unwrap();
    }
    node.create_invoice(&Preimage([1; 32]), &request(1_000))
        .await
        .unwrap();
    assert_eq!(node.inner.unread.lock().unwrap().len(), MAX_UNREAD);
    // Beyond the bound, a subscriber reads the database.
    let mut last = [0u8; 32];
    last[..4].copy_from_slice(&(MAX_UNREAD as u32 + 9).to_be_bytes());
    let mut updates = node.subscribe(&PaymentHash(last)).await.unwrap();
    assert_eq!(next_update(&mut updates).await.state, InvoiceState::Open);
}

/// Throughput of hold-invoice creation (sign + durable insert). Run in release:
/// `cargo test --release -p lightning-wall dev_node_mints -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a throughput measurement: run in release mode"]
async fn dev_node_mints_at_least_2000_hold_invoices_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let count = 10_000u32;
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8u32 {
        let node = node.clone();
        tasks.spawn(async move {
            for i in (worker..count).step_by(8) {
                let mut hash = [0u8; 32];
                hash[..4].copy_from_slice(&i.to_be_bytes());
                node.create_hold_invoice(&PaymentHash(hash), &request(1_000))
                    .await
                    .unwrap();
            }
        });
    }
    tasks.join_all().await;
    let per_second = f64::from(count) / started.elapsed().as_secs_f64();
    println!("dev node: {per_second:.0} hold invoices/s");
    assert!(per_second >= 2_000.0, "{per_second:.0}/s");
}

/// Two nodes on one data dir stand for two sidecar processes sharing one dev node.
async fn open_twice(dir: &std::path::Path) -> (DevNode, DevNode) {
    let clock = Arc::new(ManualClock::starting_now());
    let shared = DevNodeConfig {
        subscription_recheck: Duration::from_millis(50),
        ..config(dir)
    };
    let a = DevNode::open_with_clock(shared.clone(), clock.clone())
        .await
        .unwrap();
    let b = DevNode::open_with_clock(shared, clock).await.unwrap();
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sharing_a_dev_node_never_both_act_on_one_invoice() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = open_twice(dir.path()).await;
    let mut races = tokio::task::JoinSet::new();
    for i in 0..40u8 {
        let preimage = Preimage([i; 32]);
        let hash = hash_of(&preimage);
        let created = a.create_hold_invoice(&hash, &request(1_000)).await.unwrap();
        b.simulate_payment(&created.payment_request).await.unwrap();
        let (a, b) = (a.clone(), b.clone());
        races.spawn(async move {
            let (settled, canceled) = tokio::join!(a.settle(&preimage), b.cancel(&hash));
            assert!(
                settled.is_ok() != canceled.is_ok(),
                "exactly one must win: settle {settled:?}, cancel {canceled:?}"
            );
            let expected = if settled.is_ok() {
                InvoiceState::Settled
            } else {
                InvoiceState::Canceled
            };
            assert_eq!(a.lookup(&hash).await.unwrap().state, expected);
            assert_eq!(b.lookup(&hash).await.unwrap().state, expected);
        });
    }
    while let Some(race) = races.join_next().await {
        race.unwrap();
    }
}

#[tokio::test]
async fn a_subscriber_sees_changes_made_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = open_twice(dir.path()).await;
    let hash = PaymentHash([15; 32]);
    let created = a.create_hold_invoice(&hash, &request(1_000)).await.unwrap();
    let mut updates = a.subscribe(&hash).await.unwrap();
    assert_eq!(next_update(&mut updates).await.state, InvoiceState::Open);
    b.simulate_payment(&created.payment_request).await.unwrap();
    assert_eq!(
        next_update(&mut updates).await.state,
        InvoiceState::Accepted
    );
    b.advance_blocks(7).await.unwrap();
    a.sweep().await.unwrap();
    assert_eq!(
        a.height(),
        b.height(),
        "blocks mined by one are seen by the other"
    );
}

const CHILD_DIR: &str = "LIGHTNING_WALL_DEV_NODE_CHILD_DIR";

/// The victim of the kill -9 test below: creates and pays hold invoices forever, printing each
/// one only after the dev node acknowledged the payment. Does nothing unless started by it.
#[tokio::test]
#[ignore = "run only as the child process of held_payments_survive_kill_9"]
async fn dev_node_child_process() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let node = DevNode::open(config(std::path::Path::new(&dir)))
        .await
        .unwrap();
    loop {
        let hash = PaymentHash(rand::random());
        let created = node
            .create_hold_invoice(&hash, &request(1_000))
            .await
            .unwrap();
        node.simulate_payment(&created.payment_request)
            .await
            .unwrap();
        println!("held {}", hex::encode(hash.0));
    }
}

#[test]
fn held_payments_survive_kill_9() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged = Vec::new();
    for round in 0..3 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "node::dev::tests::dev_node_child_process",
                "--ignored",
                "--nocapture",
            ])
            .env(CHILD_DIR, dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut held_this_round = 0;
        for line in lines {
            if let Some(hash) = line.unwrap().strip_prefix("held ") {
                acknowledged.push(hash.to_owned());
                held_this_round += 1;
                // Kill at a different point each round, mid-way through the next payment.
                if held_this_round == 20 + 17 * round {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL on Unix: no destructors, no flush.
        child.wait().unwrap();
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let node = DevNode::open(config(dir.path())).await.unwrap();
        for hash in &acknowledged {
            let hash = PaymentHash(hex::decode(hash).unwrap().try_into().unwrap());
            let status = node.lookup(&hash).await.unwrap();
            assert_eq!(status.state, InvoiceState::Accepted, "{hash:?} lost");
            assert!(status.htlc_expiry_height.is_some());
        }
        assert_eq!(acknowledged.len(), 20 + 37 + 54);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_subscribers_each_see_their_own_invoice_change_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = open(dir.path()).await;
    let mut invoices = Vec::new();
    let mut waiters = tokio::task::JoinSet::new();
    for i in 0..1_000u32 {
        let mut hash = [0u8; 32];
        hash[..4].copy_from_slice(&i.to_be_bytes());
        let hash = PaymentHash(hash);
        let created = node
            .create_hold_invoice(&hash, &request(1_000))
            .await
            .unwrap();
        let mut updates = node.subscribe(&hash).await.unwrap();
        assert_eq!(next_update(&mut updates).await.state, InvoiceState::Open);
        waiters.spawn(async move {
            let held = tokio::time::timeout(Duration::from_secs(60), updates.next())
                .await
                .expect("no update within 60 s")
                .unwrap()
                .unwrap();
            (hash, held)
        });
        invoices.push(created);
    }
    for created in &invoices {
        node.simulate_payment(&created.payment_request)
            .await
            .unwrap();
    }
    let mut seen = 0;
    while let Some(waiter) = waiters.join_next().await {
        let (hash, held) = waiter.unwrap();
        assert_eq!(
            held.payment_hash, hash,
            "a subscriber got another invoice's update"
        );
        assert_eq!(held.state, InvoiceState::Accepted);
        seen += 1;
    }
    assert_eq!(seen, 1_000);
}

/// The dev node's share of a deposit challenge (issue 14 item 8), measured alone: per deposit,
/// what the lifecycle asks of the node (create the hold invoice, then subscribe to it and read its
/// first state, the stream kept open as the lifecycle's watcher keeps it), from 32 concurrent
/// callers as `scripts/bench-sidecar.sh` mints, without HTTP or the sidecar's store. Run in
/// release: `cargo test --release -p lightning-wall --lib node_mint_path -- --ignored
/// --nocapture`. Prints invoices/s, the ceiling of the whole sidecar's deposit minting with
/// this node, whichever store it uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a throughput measurement: run in release mode"]
async fn node_mint_path_throughput() {
    const CALLERS: u32 = 32;
    const PER_CALLER: u32 = 300;
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::open(DevNodeConfig {
        subscription_recheck: Duration::from_secs(30),
        ..DevNodeConfig::new(dir.path())
    })
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for caller in 0..CALLERS {
        let node = node.clone();
        tasks.spawn(async move {
            let mut streams = Vec::with_capacity(PER_CALLER as usize);
            for i in 0..PER_CALLER {
                let n = caller * PER_CALLER + i;
                let mut hash = [0u8; 32];
                hash[..4].copy_from_slice(&n.to_be_bytes());
                let hash = PaymentHash(hash);
                node.create_hold_invoice(&hash, &request(1_000_000))
                    .await
                    .unwrap();
                let mut updates = node.subscribe(&hash).await.unwrap();
                assert_eq!(next_update(&mut updates).await.state, InvoiceState::Open);
                streams.push(updates);
            }
            streams
        });
    }
    let streams = tasks.join_all().await;
    let per_second = f64::from(CALLERS * PER_CALLER) / started.elapsed().as_secs_f64();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "dev node mint path: {per_second:.0} invoices/s (load average {})",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    drop(streams);
}
