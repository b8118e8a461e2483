//! Every reward payout path against FakeLnd (the test double of lnd's REST contract, including
//! `/v2/router/send` and `/v2/router/track`): success, failure (balance restored), a lost send
//! stream tracked to success (paid once) or to failure, a payout the node never started, and a
//! sidecar restart with a payout in flight, reconciled at start-up.

use std::sync::Arc;
use std::time::Duration;

use fake_lnd::{FakeLnd, PaymentBehaviour};
use lightning_wall::config::Config;
use lightning_wall::ids::{PaymentHash, Preimage};
use lightning_wall::ids::{Timestamp, TokenId};
use lightning_wall::metrics::Metrics;
use lightning_wall::node::lnd::{LndConfig, LndNode};
use lightning_wall::node::{InvoiceRequest, Node};
use lightning_wall::rewards::payouts::Payouts;
use lightning_wall::rewards::{Limits, RewardId};
use lightning_wall::serve::start;
use lightning_wall::store::{NewPayout, PayoutState, RewardAccount, Store};

struct Setup {
    fake: FakeLnd,
    node: Arc<dyn Node>,
    store: Store,
    payouts: Payouts,
    _dir: tempfile::TempDir,
}

const TOKEN: TokenId = TokenId([7; 32]);

fn limits() -> Limits {
    Limits {
        enabled: true,
        max_per_reward_msat: 100_000,
        max_per_token_msat: 100_000,
        max_per_day_msat: 1_000_000,
        withdraw_min_msat: 1_000,
        withdraw_max_msat: 100_000,
        fee_limit_ppm: 10_000,
        fee_limit_min_msat: 1_000,
        fee_limit_max_ppm: 500_000,
        max_fees_per_day_msat: 1_000_000,
        max_withdrawals_per_token: 100,
    }
}

async fn setup() -> Setup {
    let fake = FakeLnd::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, macaroon) = fake.write_credentials(dir.path()).unwrap();
    let config = LndConfig {
        timeout: Duration::from_secs(5),
        payment_timeout: Duration::from_secs(5),
        ..LndConfig::new(fake.url(), cert, macaroon, "regtest")
    };
    let node: Arc<dyn Node> = Arc::new(LndNode::connect(config).await.unwrap());
    let store = Store::open_sqlite(&dir.path().join("lw.db")).await.unwrap();
    let payouts = Payouts::new(store.clone(), node.clone(), Arc::new(Metrics::new()));
    Setup {
        fake,
        node,
        store,
        payouts,
        _dir: dir,
    }
}

/// Credits 50 sat, then records a 40 sat payout of a fresh invoice (as the LNURL callback
/// does); `payable`: the payee's preimage is known to FakeLnd, so a send can succeed.
async fn recorded_payout(s: &Setup, n: u8, payable: bool) -> NewPayout {
    credit_and_record(&s.store, s.node.as_ref(), &s.fake, n, payable).await
}

async fn credit_and_record(
    store: &Store,
    node: &dyn Node,
    fake: &FakeLnd,
    n: u8,
    payable: bool,
) -> NewPayout {
    let now = Timestamp::now();
    store
        .credit_reward(
            &TOKEN,
            &RewardId::parse(&format!("r{n}")).unwrap(),
            50_000,
            &limits(),
            now,
        )
        .await
        .unwrap();
    let preimage = Preimage([n; 32]);
    let request = InvoiceRequest {
        amount_msat: 40_000,
        memo: "withdraw".into(),
        expiry: Duration::from_secs(600),
        cltv_expiry: None,
    };
    let invoice = node.create_invoice(&preimage, &request).await.unwrap();
    if payable {
        fake.add_remote_preimage(preimage.0);
    }
    let k1 = [n.wrapping_add(100); 32];
    store
        .issue_withdrawal(&TOKEN, &k1, now, now.plus(Duration::from_secs(600)))
        .await
        .unwrap();
    let payout = NewPayout {
        payment_hash: invoice.payment_hash,
        amount_msat: 40_000,
        fee_limit_msat: 1_000,
        payment_request: invoice.payment_request,
    };
    store
        .start_payout(&k1, &payout, &limits(), now)
        .await
        .unwrap()
        .unwrap();
    payout
}

async fn state(store: &Store, hash: &PaymentHash) -> PayoutState {
    store.payout(hash).await.unwrap().unwrap().state
}

#[tokio::test]
async fn a_successful_payout_is_recorded_as_paid() {
    let s = setup().await;
    let payout = recorded_payout(&s, 1, true).await;
    let after = s.payouts.send(&payout).await.unwrap().unwrap();
    assert_eq!(after.state, PayoutState::Succeeded);
    assert_eq!(
        s.store.reward_account(&TOKEN).await.unwrap(),
        RewardAccount {
            credited_msat: 50_000,
            reserved_msat: 0,
            paid_msat: 40_000
        }
    );
    assert_eq!(s.fake.payment(payout.payment_hash.0).unwrap().attempts, 1);
    assert!(
        s.fake
            .requests()
            .contains(&"POST /v2/router/send".to_owned())
    );
}

#[tokio::test]
async fn a_failed_payout_returns_the_amount_to_the_balance() {
    let s = setup().await;
    let payout = recorded_payout(&s, 2, false).await;
    let after = s.payouts.send(&payout).await.unwrap().unwrap();
    assert_eq!(after.state, PayoutState::Failed);
    assert_eq!(
        after.failure_reason.as_deref(),
        Some("FAILURE_REASON_NO_ROUTE")
    );
    assert_eq!(
        s.store.reward_account(&TOKEN).await.unwrap().balance_msat(),
        50_000
    );
}

#[tokio::test]
async fn a_lost_send_stream_is_tracked_to_success_and_paid_once() {
    let s = setup().await;
    s.fake.set_payment_behaviour(PaymentBehaviour::Hold);
    s.fake.lose_send_streams(true);
    let payout = recorded_payout(&s, 3, true).await;
    let hash = payout.payment_hash;
    let after = s.payouts.send(&payout).await.unwrap().unwrap();
    assert_eq!(
        after.state,
        PayoutState::InFlight,
        "outcome unknown after the lost stream"
    );
    assert_eq!(
        s.store.reward_account(&TOKEN).await.unwrap().reserved_msat,
        40_000,
        "still reserved"
    );
    // Still in flight at the node: tracking changes nothing yet.
    assert_eq!(s.payouts.reconcile().await.unwrap().resolved, 0);
    s.fake.settle_payment(hash.0).unwrap();
    let report = s.payouts.reconcile().await.unwrap();
    assert_eq!((report.examined, report.resolved), (1, 1));
    assert_eq!(state(&s.store, &hash).await, PayoutState::Succeeded);
    assert_eq!(
        s.store.reward_account(&TOKEN).await.unwrap().paid_msat,
        40_000
    );
    assert_eq!(
        s.fake.payment(hash.0).unwrap().attempts,
        1,
        "never sent twice"
    );
    assert!(
        s.fake
            .requests()
            .iter()
            .any(|r| r.starts_with("GET /v2/router/track/"))
    );
    // Sending it again (a retried task) is refused before reaching the node.
    s.payouts.send(&payout).await.unwrap();
    assert_eq!(s.fake.payment(hash.0).unwrap().attempts, 1);
}

#[tokio::test]
async fn a_lost_send_stream_is_tracked_to_failure_and_the_balance_restored() {
    let s = setup().await;
    s.fake.set_payment_behaviour(PaymentBehaviour::Hold);
    s.fake.lose_send_streams(true);
    let payout = recorded_payout(&s, 4, true).await;
    s.payouts.send(&payout).await.unwrap();
    s.fake
        .fail_payment(payout.payment_hash.0, "FAILURE_REASON_TIMEOUT")
        .unwrap();
    assert_eq!(s.payouts.reconcile().await.unwrap().resolved, 1);
    let p = s.store.payout(&payout.payment_hash).await.unwrap().unwrap();
    assert_eq!(
        (p.state, p.failure_reason.as_deref()),
        (PayoutState::Failed, Some("FAILURE_REASON_TIMEOUT"))
    );
    assert_eq!(
        s.store.reward_account(&TOKEN).await.unwrap().balance_msat(),
        50_000
    );
}

#[tokio::test]
async fn a_payout_the_node_never_started_fails_only_after_the_grace() {
    let s = setup().await;
    let payout = recorded_payout(&s, 5, true).await;
    // Recorded, then the process died before sending: lnd answers "payment isn't initiated".
    assert_eq!(
        s.payouts.reconcile().await.unwrap().resolved,
        0,
        "within the grace: wait"
    );
    assert_eq!(
        state(&s.store, &payout.payment_hash).await,
        PayoutState::InFlight
    );
    let impatient = s.payouts.clone().with_grace(Duration::ZERO);
    assert_eq!(impatient.reconcile().await.unwrap().resolved, 1);
    assert_eq!(
        state(&s.store, &payout.payment_hash).await,
        PayoutState::Failed
    );
    assert_eq!(
        s.store.reward_account(&TOKEN).await.unwrap().balance_msat(),
        50_000
    );
    assert!(
        s.fake.payment(payout.payment_hash.0).is_none(),
        "never sent"
    );
}

#[tokio::test]
async fn a_payout_in_flight_across_a_sidecar_restart_is_reconciled_at_start_up() {
    let fake = FakeLnd::start().await.unwrap();
    fake.set_payment_behaviour(PaymentBehaviour::Hold);
    let dir = tempfile::tempdir().unwrap();
    let (cert, macaroon) = fake.write_credentials(dir.path()).unwrap();
    let path = dir.path().join("lightning-wall.yaml");
    std::fs::write(
        &path,
        format!(
            r#"
node:
  backend: lnd
  lnd: {{ rest_url: "{url}", tls_cert_file: "{cert}", macaroon: {{ file: "{macaroon}" }}, network: regtest }}
listeners:
  internal: {{ bind: "127.0.0.1:0" }}
  public: {{ bind: "127.0.0.1:0" }}
rewards: {{ enabled: true }}
routes:
  - id: wall
    match: {{}}
    mode: deposit
    deposit: {{ amount_sat: 1000 }}
"#,
            url = fake.url(),
            cert = cert.display(),
            macaroon = macaroon.display(),
        ),
    )
    .unwrap();
    let running = start(Config::load(&path).unwrap()).await.unwrap();
    let store = running.lifecycle.store().clone();
    let node = running.lifecycle.node().clone();
    let payout = credit_and_record(&store, node.as_ref(), &fake, 6, true).await;
    let hash = payout.payment_hash;
    let payouts = Payouts::new(store.clone(), node, Arc::new(Metrics::new()));
    let sending = tokio::spawn(async move { payouts.send(&payout).await });
    for _ in 0..200 {
        if fake.payment(hash.0).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fake.payment(hash.0).unwrap().status, "IN_FLIGHT");
    // The sidecar dies with the payout in flight; the payment completes meanwhile.
    sending.abort();
    running.shutdown().await;
    assert_eq!(state(&store, &hash).await, PayoutState::InFlight);
    fake.settle_payment(hash.0).unwrap();
    let restarted = start(Config::load(&path).unwrap()).await.unwrap();
    let store = restarted.lifecycle.store().clone();
    assert_eq!(
        state(&store, &hash).await,
        PayoutState::Succeeded,
        "reconciled at start-up"
    );
    assert_eq!(
        store.reward_account(&TOKEN).await.unwrap().paid_msat,
        40_000
    );
    assert_eq!(fake.payment(hash.0).unwrap().attempts, 1);
    restarted.shutdown().await;
}

/// The fee drain: an attacker with a rewarded token withdraws 1 sat at a time to an invoice
/// routed through their own channel, which charges whatever fee the site allows. Whatever they
/// do, the routing fees the site pays stay within the fee budget and below the payouts'
/// fraction, and the number of payouts per token is capped.
#[tokio::test]
async fn many_one_sat_withdrawals_through_a_high_fee_route_cannot_drain_more_than_the_budget() {
    let s = setup().await;
    let limits = Limits {
        max_per_token_msat: 1_000_000,
        withdraw_min_msat: 1_000,
        // The old floor: 10 sat of fees allowed on any payout, 10x a 1 sat withdrawal.
        fee_limit_min_msat: 10_000,
        fee_limit_max_ppm: 500_000,
        max_fees_per_day_msat: 3_000,
        max_withdrawals_per_token: 8,
        ..limits()
    };
    let now = Timestamp::now();
    s.store
        .credit_reward(
            &TOKEN,
            &RewardId::parse("big").unwrap(),
            100_000,
            &limits,
            now,
        )
        .await
        .unwrap();
    // The attacker's channel asks for the whole 10 sat floor first, then exactly what is let
    // through.
    let mut fees_paid_msat = 0;
    let mut paid_msat = 0;
    let mut refusals = Vec::new();
    for (n, route_fee) in (0..30u8).zip([10_000u64, 500].into_iter().cycle()) {
        s.fake.set_route_fee_msat(route_fee);
        let preimage = Preimage([n.wrapping_add(50); 32]);
        let request = InvoiceRequest {
            amount_msat: 1_000,
            memo: "withdraw".into(),
            expiry: Duration::from_secs(600),
            cltv_expiry: None,
        };
        let invoice = s.node.create_invoice(&preimage, &request).await.unwrap();
        s.fake.add_remote_preimage(preimage.0);
        let k1 = [n.wrapping_add(150); 32];
        s.store
            .issue_withdrawal(&TOKEN, &k1, now, now.plus(Duration::from_secs(600)))
            .await
            .unwrap();
        let payout = NewPayout {
            payment_hash: invoice.payment_hash,
            amount_msat: 1_000,
            fee_limit_msat: lightning_wall::rewards::ledger::fee_limit_msat(&limits, 1_000),
            payment_request: invoice.payment_request,
        };
        match s
            .store
            .start_payout(&k1, &payout, &limits, now)
            .await
            .unwrap()
        {
            Ok(_) => {}
            Err(refusal) => {
                refusals.push(refusal);
                continue;
            }
        }
        let after = s.payouts.send(&payout).await.unwrap().unwrap();
        if after.state == PayoutState::Succeeded {
            let on_node = s.fake.payment(payout.payment_hash.0).unwrap();
            fees_paid_msat += on_node.fee_msat;
            paid_msat += payout.amount_msat;
        }
    }
    assert!(
        fees_paid_msat <= limits.max_fees_per_day_msat,
        "fees {fees_paid_msat} msat over the daily fee budget"
    );
    assert!(
        fees_paid_msat * 2 <= paid_msat,
        "fees {fees_paid_msat} msat more than half of the {paid_msat} msat paid out"
    );
    assert!(fees_paid_msat > 0, "the cheap route was used");
    assert!(
        refusals.contains(&lightning_wall::store::ClaimRefusal::FeeBudgetSpent),
        "{refusals:?}"
    );
    // Failed payouts (the 10 sat route) cost nothing and do not count; successful ones do.
    let account = s.store.reward_account(&TOKEN).await.unwrap();
    assert_eq!(account.paid_msat, paid_msat);
    assert!(paid_msat / 1_000 <= u64::from(limits.max_withdrawals_per_token));
}
