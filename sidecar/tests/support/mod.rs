//! The whole sidecar (`serve` wiring, HTTP, lifecycle, SQLite) on a node test double — the `lnd`
//! backend against FakeLnd (the test double of lnd's REST contract), the `cln` backend against
//! FakeCln (`cln.rs`) — and the HTTP calls the integration tests make of it (`faults_lnd.rs`,
//! `lifecycle_lnd.rs`, `lifecycle_cln.rs`).
#![allow(dead_code)] // each test binary uses part of it

pub mod cln;
pub mod nwc;

use std::time::{Duration, Instant};

use fake_lnd::FakeLnd;
use lightning_wall::config::Config;
use lightning_wall::serve::{Running, start};
use serde_json::{Value, json};

/// A running sidecar and the node double `F` behind it.
pub struct Sidecar<F> {
    pub fake: F,
    pub running: Running,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub type LndSidecar = Sidecar<FakeLnd>;

/// Starts the sidecar with this `node:` section and one deposit route, `wall` (1,000 sat), whose
/// deposits go idle after `idle_timeout` and whose reconciler runs every `reconcile_interval`.
async fn start_sidecar<F>(
    fake: F,
    dir: tempfile::TempDir,
    node_yaml: &str,
    idle_timeout: &str,
    reconcile_interval: &str,
) -> Sidecar<F> {
    let path = dir.path().join("lightning-wall.yaml");
    std::fs::write(
        &path,
        format!(
            r#"
data_dir: {data}
{node_yaml}
listeners:
  internal: {{ bind: "127.0.0.1:0" }}
  public: {{ bind: "127.0.0.1:0" }}
deposits: {{ reconcile_interval: {reconcile_interval} }}
routes:
  - id: wall
    match: {{}}
    mode: deposit
    deposit: {{ amount_sat: 1000, idle_timeout: {idle_timeout} }}
"#,
            data = dir.path().join("data").display(),
        ),
    )
    .unwrap();
    let running = start(Config::load(&path).unwrap()).await.unwrap();
    Sidecar {
        fake,
        running,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

/// A payment hash from a challenge answer.
pub fn hash_of(c: &Value) -> [u8; 32] {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(c["payment_hash"].as_str().unwrap(), &mut hash).unwrap();
    hash
}

/// A deposit challenge's macaroon as a credential with the empty proof (`L402 <macaroon>:`).
fn empty_proof(c: &Value) -> String {
    format!("L402 {}:", c["macaroon"].as_str().unwrap())
}

impl LndSidecar {
    /// A sidecar on a fresh FakeLnd (see [`start_sidecar`]).
    pub async fn start(idle_timeout: &str, reconcile_interval: &str) -> LndSidecar {
        let fake = FakeLnd::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (cert, macaroon) = fake.write_credentials(dir.path()).unwrap();
        let node = format!(
            "node:
  backend: lnd
  lnd:
    rest_url: {url}
    tls_cert_file: {cert}
    macaroon: {{ file: {macaroon} }}
    network: regtest",
            url = fake.url(),
            cert = cert.display(),
            macaroon = macaroon.display(),
        );
        start_sidecar(fake, dir, &node, idle_timeout, reconcile_interval).await
    }

    /// A deposit paid on FakeLnd and reported held by the sidecar: its challenge.
    pub async fn held_deposit(&self, ip: &str) -> Value {
        let c = self.challenged(ip).await;
        self.fake
            .pay_request(c["invoice"].as_str().unwrap())
            .unwrap();
        assert_eq!(self.status(&c, 10).await["state"], "held");
        c
    }

    /// Waits until FakeLnd shows the invoice in `want` (at most `within`).
    pub async fn wait_lnd_state(&self, c: &Value, want: &str, within: Duration) {
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

    /// Requests FakeLnd has seen whose line ends with `path`.
    pub fn calls_to(&self, path: &str) -> usize {
        self.fake
            .requests()
            .iter()
            .filter(|line| line.ends_with(path))
            .count()
    }

    /// Invoice subscriptions FakeLnd has seen (the sidecar's watchers).
    pub fn subscriptions(&self) -> usize {
        self.fake
            .requests()
            .iter()
            .filter(|line| line.contains("/v2/invoices/subscribe/"))
            .count()
    }

    pub async fn wait_subscriptions(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.subscriptions() < n {
            assert!(Instant::now() < deadline, "the sidecar never subscribed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl<F> Sidecar<F> {
    /// `POST /v1/challenge` for the `wall` route.
    pub async fn challenge(&self, ip: &str) -> reqwest::Response {
        self.http
            .post(format!("http://{}/v1/challenge", self.running.internal))
            .json(&json!({"route_id": "wall", "client_ip": ip}))
            .send()
            .await
            .unwrap()
    }

    /// A challenge that must succeed: its answer.
    pub async fn challenged(&self, ip: &str) -> Value {
        let r = self.challenge(ip).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// The deposit status endpoint, long-polling up to `wait` seconds.
    pub async fn status(&self, c: &Value, wait: u64) -> Value {
        self.http
            .get(format!(
                "http://{}/.well-known/lightning-wall/deposit?wait={wait}",
                self.running.public
            ))
            .header("authorization", empty_proof(c))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Polls the status endpoint until the deposit is `want` (at most `within`).
    pub async fn wait_state(&self, c: &Value, want: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let status = self.status(c, 1).await;
            if status["state"] == want {
                return;
            }
            assert!(Instant::now() < deadline, "never {want}: {status}");
        }
    }

    /// `POST /v1/events` with these events; must succeed.
    pub async fn events(&self, events: Value) -> Value {
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

    /// `POST /.well-known/lightning-wall/leave` with the deposit's macaroon.
    pub async fn leave(&self, c: &Value) -> reqwest::Response {
        self.http
            .post(format!(
                "http://{}/.well-known/lightning-wall/leave",
                self.running.public
            ))
            .header("authorization", empty_proof(c))
            .send()
            .await
            .unwrap()
    }
}
