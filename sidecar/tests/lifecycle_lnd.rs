//! Deposit lifecycles through the whole sidecar (`serve` wiring, HTTP, engine, SQLite) with the
//! `lnd` backend against FakeLnd, the test double of lnd's REST contract: the decisions must
//! reach lnd as cancel or settle, including across an lnd restart.

use std::time::Duration;

use fake_lnd::FakeLnd;
use lightning_wall::config::Config;
use lightning_wall::serve::{Running, start};
use serde_json::{Value, json};

struct Setup {
    fake: FakeLnd,
    running: Running,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn setup(idle_timeout: &str) -> Setup {
    let fake = FakeLnd::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, macaroon) = fake.write_credentials(dir.path()).unwrap();
    let path = dir.path().join("lightning-wall.yaml");
    std::fs::write(
        &path,
        format!(
            r#"
node:
  backend: lnd
  lnd:
    rest_url: {url}
    tls_cert_file: {cert}
    macaroon: {{ file: {macaroon} }}
    network: regtest
listeners:
  internal: {{ bind: "127.0.0.1:0" }}
  public: {{ bind: "127.0.0.1:0" }}
routes:
  - id: wall
    match: {{}}
    mode: deposit
    deposit: {{ amount_sat: 1000, idle_timeout: {idle_timeout} }}
"#,
            url = fake.url(),
            cert = cert.display(),
            macaroon = macaroon.display(),
        ),
    )
    .unwrap();
    let running = start(Config::load(&path).unwrap()).await.unwrap();
    Setup {
        fake,
        running,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Setup {
    async fn held_deposit(&self, ip: &str) -> Value {
        let c = self.challenge(ip).await;
        self.fake
            .pay_request(c["invoice"].as_str().unwrap())
            .unwrap();
        let status: Value = self
            .http
            .get(format!(
                "http://{}/.well-known/lightning-wall/deposit?wait=10",
                self.running.public
            ))
            .header(
                "authorization",
                format!("L402 {}:", c["macaroon"].as_str().unwrap()),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(status["state"], "held", "{status}");
        c
    }

    async fn wait_lnd_state(&self, c: &Value, want: &str) {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(c["payment_hash"].as_str().unwrap(), &mut hash).unwrap();
        for _ in 0..400 {
            if self.fake.invoice(hash).map(|i| i.state) == Some(want) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("lnd never showed {want}: {:?}", self.fake.invoice(hash));
    }
}

#[tokio::test]
async fn leave_cancels_and_forfeit_settles_on_lnd_even_across_an_lnd_restart() {
    let s = setup("5m").await;
    let leaving = s.held_deposit("203.0.113.1").await;
    let abusing = s.held_deposit("198.51.100.1").await;
    s.fake.restart().await.unwrap(); // held invoices survive an lnd restart
    let r = s.leave(&leaving).await;
    assert_eq!(r.status(), 200);
    s.wait_lnd_state(&leaving, "CANCELED").await;
    let events = json!({"events": [{"type": "verdict", "token_id": abusing["token_id"],
        "verdict": "forfeit", "trigger": "error_storm"}]});
    let r = s
        .http
        .post(format!("http://{}/v1/events", s.running.internal))
        .json(&events)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.wait_lnd_state(&abusing, "SETTLED").await;
    s.running.shutdown().await;
}

#[tokio::test]
async fn an_idle_deposit_is_cancelled_on_lnd() {
    let s = setup("1s").await;
    let c = s.held_deposit("203.0.113.2").await;
    s.wait_lnd_state(&c, "CANCELED").await;
    s.running.shutdown().await;
}

#[tokio::test]
async fn the_hard_deadline_cancels_before_lnd_would() {
    let s = setup("5m").await;
    let c = s.held_deposit("203.0.113.3").await;
    let mut hash = [0u8; 32];
    hex::decode_to_slice(c["payment_hash"].as_str().unwrap(), &mut hash).unwrap();
    let expiry = s.fake.invoice(hash).unwrap().htlc_expiry_height.unwrap();
    // Up to our deadline (expiry - 18 - 6); lnd itself would cancel 6 blocks later.
    s.fake
        .advance_blocks(expiry - 18 - 6 - s.fake.block_height());
    assert_eq!(s.fake.invoice(hash).unwrap().state, "ACCEPTED");
    s.running.engine.reconcile().await.unwrap();
    s.wait_lnd_state(&c, "CANCELED").await;
    s.running.shutdown().await;
}

impl Setup {
    async fn challenge(&self, ip: &str) -> Value {
        self.http
            .post(format!("http://{}/v1/challenge", self.running.internal))
            .json(&json!({"route_id": "wall", "client_ip": ip}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn status(&self, c: &Value) -> Value {
        self.http
            .get(format!(
                "http://{}/.well-known/lightning-wall/deposit",
                self.running.public
            ))
            .header(
                "authorization",
                format!("L402 {}:", c["macaroon"].as_str().unwrap()),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn events(&self, events: Value) -> Value {
        let r = self
            .http
            .post(format!("http://{}/v1/events", self.running.internal))
            .json(&json!({ "events": events }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    async fn leave(&self, c: &Value) -> reqwest::Response {
        self.http
            .post(format!(
                "http://{}/.well-known/lightning-wall/leave",
                self.running.public
            ))
            .header(
                "authorization",
                format!("L402 {}:", c["macaroon"].as_str().unwrap()),
            )
            .send()
            .await
            .unwrap()
    }

    fn calls_to(&self, path: &str) -> usize {
        self.fake
            .requests()
            .iter()
            .filter(|line| line.ends_with(path))
            .count()
    }
}

#[tokio::test]
async fn an_unpaid_invoice_that_lnd_expires_ends_expired_and_cannot_be_paid() {
    let s = setup("5m").await;
    let c = s.challenge("203.0.113.4").await;
    assert_eq!(s.status(&c).await["state"], "awaiting_payment");
    // lnd cancels an OPEN invoice once its BOLT11 expiry has passed.
    s.fake.advance_time(Duration::from_secs(601));
    s.wait_lnd_state(&c, "CANCELED").await;
    let mut ended = Value::Null;
    for _ in 0..400 {
        ended = s.status(&c).await;
        if ended["state"] == "expired" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(ended["state"], "expired", "{ended}");
    assert!(ended.get("credential").is_none(), "{ended}");
    assert!(s.fake.pay_request(c["invoice"].as_str().unwrap()).is_err());
    assert_eq!(s.calls_to("/v2/invoices/settle"), 0);
    s.running.shutdown().await;
}

#[tokio::test]
async fn duplicate_and_late_verdicts_change_nothing_on_lnd() {
    let s = setup("5m").await;
    let c = s.held_deposit("203.0.113.5").await;
    let forfeit = json!({"type": "verdict", "token_id": c["token_id"],
        "verdict": "forfeit", "trigger": "trap_path"});
    let first = s.events(json!([forfeit])).await;
    assert_eq!(first["results"][0]["result"], "applied", "{first}");
    s.wait_lnd_state(&c, "SETTLED").await;
    let refund = json!({"type": "verdict", "token_id": c["token_id"],
        "verdict": "refund", "trigger": "upstream"});
    let activity = json!({"type": "activity", "token_id": c["token_id"]});
    let late = s.events(json!([forfeit, refund, activity])).await;
    for result in late["results"].as_array().unwrap() {
        assert_eq!(result["result"], "unchanged", "{late}");
        assert_eq!(result["state"], "forfeited", "{late}");
    }
    // A leave after the forfeit is late too: no cancel reaches lnd, the money stays settled.
    let r = s.leave(&c).await;
    let left: Value = r.json().await.unwrap();
    assert_eq!(left["changed"], false, "{left}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.wait_lnd_state(&c, "SETTLED").await;
    assert_eq!(s.calls_to("/v2/invoices/settle"), 1);
    assert_eq!(s.calls_to("/v2/invoices/cancel"), 0);
    s.running.shutdown().await;
}
