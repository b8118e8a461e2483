//! lnd faults through the whole sidecar (`serve` wiring, HTTP, engine, SQLite) with the `lnd`
//! backend against FakeLnd, the test double of lnd's REST contract: lnd down while decisions
//! arrive (they wait, then reach lnd exactly once), and invoice streams cut or silenced while a
//! payment arrives (the sidecar still sees the deposit held).

use std::time::{Duration, Instant};

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

/// A sidecar on FakeLnd whose reconciler runs every `reconcile_interval`.
async fn setup(reconcile_interval: &str) -> Setup {
    let fake = FakeLnd::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, macaroon) = fake.write_credentials(dir.path()).unwrap();
    let path = dir.path().join("lightning-wall.yaml");
    std::fs::write(
        &path,
        format!(
            r#"
data_dir: {data}
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
deposits: {{ reconcile_interval: {reconcile_interval} }}
routes:
  - id: wall
    match: {{}}
    mode: deposit
    deposit: {{ amount_sat: 1000, idle_timeout: 5m }}
"#,
            data = dir.path().join("data").display(),
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

fn hash_of(c: &Value) -> [u8; 32] {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(c["payment_hash"].as_str().unwrap(), &mut hash).unwrap();
    hash
}

impl Setup {
    async fn challenge(&self, ip: &str) -> reqwest::Response {
        self.http
            .post(format!("http://{}/v1/challenge", self.running.internal))
            .json(&json!({"route_id": "wall", "client_ip": ip}))
            .send()
            .await
            .unwrap()
    }

    async fn challenged(&self, ip: &str) -> Value {
        let r = self.challenge(ip).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// The deposit status endpoint, long-polling up to `wait` seconds.
    async fn status(&self, c: &Value, wait: u64) -> Value {
        self.http
            .get(format!(
                "http://{}/.well-known/lightning-wall/deposit?wait={wait}",
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

    /// Polls the status endpoint until the deposit is `want` (at most `within`).
    async fn wait_state(&self, c: &Value, want: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let status = self.status(c, 1).await;
            if status["state"] == want {
                return;
            }
            assert!(Instant::now() < deadline, "never {want}: {status}");
        }
    }

    async fn held_deposit(&self, ip: &str) -> Value {
        let c = self.challenged(ip).await;
        self.fake
            .pay_request(c["invoice"].as_str().unwrap())
            .unwrap();
        assert_eq!(self.status(&c, 10).await["state"], "held");
        c
    }

    async fn wait_lnd_state(&self, c: &Value, want: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.fake.invoice(hash_of(c)).map(|i| i.state) == Some(want) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "lnd never showed {want}: {:?}",
            self.fake.invoice(hash_of(c))
        );
    }

    fn calls_to(&self, path: &str) -> usize {
        self.fake
            .requests()
            .iter()
            .filter(|line| line.ends_with(path))
            .count()
    }

    /// Subscriptions FakeLnd has seen for this invoice (the sidecar's watcher).
    fn subscriptions(&self) -> usize {
        self.fake
            .requests()
            .iter()
            .filter(|line| line.contains("/v2/invoices/subscribe/"))
            .count()
    }

    async fn wait_subscriptions(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.subscriptions() < n {
            assert!(Instant::now() < deadline, "the sidecar never subscribed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn decisions_made_while_lnd_is_down_reach_it_exactly_once_when_it_returns() {
    let s = setup("1s").await;
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
    assert_eq!(s.status(&leaving, 0).await["state"], "refunded");
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
    let s = setup("1h").await;
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
    let s = setup("1s").await;
    let c = s.challenged("203.0.113.3").await;
    s.wait_subscriptions(1).await;
    // A proxy silently dropped the stream: no error, no more messages (lnd sends no keepalive).
    s.fake.silence_streams(true);
    s.fake.pay_request(c["invoice"].as_str().unwrap()).unwrap();
    s.wait_state(&c, "held", Duration::from_secs(15)).await;
    s.running.shutdown().await;
}
