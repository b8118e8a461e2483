//! End to end against the demo stack: `make clients-test` starts it (scripts/demo.sh: the
//! filter's .wasm in the proxy in front of the demo site, the sidecar with the dev node) and
//! runs these with `--ignored`. The wallet pays with the dev node; the money is read from the
//! node itself (`GET /v1/dev/invoices/{hash}`, docs/internal-api.md).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Mutex;
use std::time::Duration;

use lightning_wall_client::{Challenge, Mode, Preimage, WallClient, Wallet, WalletError};
use serde_json::{Value, json};

fn site() -> String {
    std::env::var("LW_DEMO_URL").expect("LW_DEMO_URL: run through make clients-test")
}

fn internal() -> String {
    std::env::var("LW_DEMO_INTERNAL").unwrap_or_else(|_| "http://127.0.0.1:8081".into())
}

/// Pays with the dev node; keeps the preimage to itself when told to (a custodial wallet).
struct DevWallet {
    show_preimage: bool,
    paid: Mutex<Vec<(Challenge, String)>>,
}

impl DevWallet {
    fn new(show_preimage: bool) -> Self {
        Self {
            show_preimage,
            paid: Mutex::new(Vec::new()),
        }
    }
}

impl Wallet for DevWallet {
    async fn pay(&self, invoice: &str, c: &Challenge) -> Result<Option<Preimage>, WalletError> {
        let res = reqwest::Client::new()
            .post(format!("{}/v1/dev/pay", internal()))
            .header("content-type", "application/json")
            .body(json!({ "invoice": invoice }).to_string())
            .send()
            .await?;
        let answer: Value = serde_json::from_slice(&res.bytes().await?)?;
        let status = answer["status"].as_str().unwrap_or_default().to_owned();
        self.paid.lock().unwrap().push((c.clone(), status));
        Ok(answer["preimage"]
            .as_str()
            .filter(|_| self.show_preimage)
            .and_then(Preimage::from_hex))
    }
}

async fn node_state(hash: &str) -> String {
    let res = reqwest::get(format!("{}/v1/dev/invoices/{hash}", internal()))
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    v["state"].as_str().unwrap().to_owned()
}

async fn wait_node_state(hash: &str, want: &str) {
    let mut seen = String::new();
    for _ in 0..100 {
        seen = node_state(hash).await;
        if seen == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the hold invoice is {seen} on the node, not {want}");
}

fn only_payment(wallet: &DevWallet) -> (Challenge, String) {
    let paid = wallet.paid.lock().unwrap();
    assert_eq!(paid.len(), 1, "paid once");
    paid[0].clone()
}

#[tokio::test]
#[ignore = "needs the demo stack: make clients-test"]
async fn deposit_held_used_left_refunded() {
    let wall = WallClient::new(DevWallet::new(true));
    let res = wall.get(&format!("{}/members/", site())).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Members area"));
    let res = wall.get(&format!("{}/members/", site())).await.unwrap();
    assert_eq!(res.status(), 200, "used again");
    let (c, status) = only_payment(wall.wallet());
    assert_eq!((c.mode, status.as_str()), (Mode::Deposit, "held"));
    let hash = c.payment_hash.unwrap();
    assert_eq!(node_state(&hash).await, "ACCEPTED");
    let answers = wall.leave().await.unwrap();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0]["state"], "leaving");
    wait_node_state(&hash, "CANCELED").await;
}

#[tokio::test]
#[ignore = "needs the demo stack: make clients-test"]
async fn deposit_trap_path_forfeits() {
    let wall = WallClient::new(DevWallet::new(true));
    let res = wall.get(&format!("{}/members/", site())).await.unwrap();
    assert_eq!(res.status(), 200);
    let trap = wall.get(&format!("{}/wp-login.php", site())).await.unwrap();
    assert_eq!(trap.status(), 403);
    assert_eq!(
        trap.headers()["x-lightning-wall-reason"].to_str().unwrap(),
        "forfeited"
    );
    let (c, _) = only_payment(wall.wallet());
    wait_node_state(&c.payment_hash.unwrap(), "SETTLED").await;
}

#[tokio::test]
#[ignore = "needs the demo stack: make clients-test"]
async fn pay_route_with_and_without_the_preimage() {
    for show in [true, false] {
        let wall = WallClient::new(DevWallet::new(show));
        let res = wall.get(&format!("{}/api/quote", site())).await.unwrap();
        assert_eq!(res.status(), 200, "show_preimage {show}");
        let body: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
        assert_eq!(body["paid"], true);
        let res = wall.get(&format!("{}/api/quote", site())).await.unwrap();
        assert_eq!(res.status(), 200, "the credential is reused");
        let (c, _) = only_payment(wall.wallet());
        assert_eq!(c.mode, Mode::Pay);
        assert_eq!(node_state(&c.payment_hash.unwrap()).await, "SETTLED");
    }
}
