//! Crash test: the real `lightning-wall serve` process (dev node, SQLite) is killed with SIGKILL
//! at random moments while many deposit lifecycles run concurrently, and restarted. Afterwards
//! every deposit must have ended, its node invoice must agree with the decision (refunded or
//! expired -> CANCELED or never created, forfeited -> SETTLED: never both, never neither), no
//! preimage may be missing and nothing may still be held or pending.
//!
//! Scaled by environment (CI keeps the small default): `LW_CRASH_KILLS` (exact number of
//! SIGKILLs, default 5), `LW_CRASH_LIFECYCLES` (minimum number of deposits, default 48; visitors
//! keep arriving until the last kill), `LW_CRASH_STORE=postgres` (a fresh database next to
//! `LW_TEST_POSTGRES_URL` instead of SQLite). `make fault` runs 1,000 kills.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lightning_wall::deposit::DepositState;
use lightning_wall::ids::PaymentHash;
use lightning_wall::node::dev::{DevNode, DevNodeConfig};
use lightning_wall::node::{InvoiceState, Node, NodeError};
use lightning_wall::store::Store;
use lightning_wall::testing::ports::loopback_ports;
use rand::Rng;
use serde_json::{Value, json};

struct Sidecar {
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Sidecar {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_lightning-wall"))
            .args(["serve", "--config"])
            .arg(&self.config)
            // Everything the binary logs, scanned for secrets at the end.
            .env("RUST_LOG", "debug")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap(); // SIGKILL on Unix: no shutdown code runs
            child.wait().unwrap();
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        })
        .unwrap_or(default)
}

/// Where the sidecar keeps its deposits; the test reads them back directly.
enum StoreAt {
    Sqlite(PathBuf),
    /// The database's URL, and the server's admin URL (to drop it afterwards).
    Postgres(String, String),
}

impl StoreAt {
    /// SQLite in the data dir, or a fresh PostgreSQL database (`LW_CRASH_STORE=postgres`).
    async fn choose(dir: &Path) -> StoreAt {
        if std::env::var("LW_CRASH_STORE").as_deref() != Ok("postgres") {
            return StoreAt::Sqlite(dir.join("data/lightning-wall.db"));
        }
        let admin_url = std::env::var("LW_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("lw_crash_{}", hex::encode(rand::random::<[u8; 6]>()));
        let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let (server, _) = admin_url.rsplit_once('/').unwrap();
        StoreAt::Postgres(format!("{server}/{name}"), admin_url.clone())
    }

    fn config_line(&self) -> String {
        match self {
            StoreAt::Sqlite(_) => String::new(),
            StoreAt::Postgres(url, _) => format!("store: {{ url: \"{url}\" }}"),
        }
    }

    async fn open(&self) -> Store {
        match self {
            StoreAt::Sqlite(path) => Store::open_sqlite(path).await.unwrap(),
            StoreAt::Postgres(url, _) => Store::open_postgres(url, None).await.unwrap(),
        }
    }

    /// Every deposit's hash (the store's own listing stops at 1,000).
    async fn hashes(&self) -> Vec<PaymentHash> {
        let query = "SELECT payment_hash FROM deposits";
        let rows: Vec<Vec<u8>> = match self {
            StoreAt::Sqlite(path) => {
                let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
                    .await
                    .unwrap();
                let rows = sqlx::query_scalar(query).fetch_all(&pool).await.unwrap();
                pool.close().await;
                rows
            }
            StoreAt::Postgres(url, _) => {
                let pool = sqlx::PgPool::connect(url).await.unwrap();
                let rows = sqlx::query_scalar(query).fetch_all(&pool).await.unwrap();
                pool.close().await;
                rows
            }
        };
        rows.into_iter()
            .map(|h| PaymentHash(h.try_into().unwrap()))
            .collect()
    }

    /// Drops the test's PostgreSQL database (kept when the test fails, for inspection).
    async fn remove(&self) {
        if let StoreAt::Postgres(url, admin_url) = self {
            let (_, name) = url.rsplit_once('/').unwrap();
            let admin = sqlx::PgPool::connect(admin_url).await.unwrap();
            sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
        }
    }

    /// Deposits not yet final or with a node action still to perform.
    async fn open_count(&self) -> usize {
        let store = self.open().await;
        let mut open = 0;
        for hash in self.hashes().await {
            let d = store.deposit(&hash).await.unwrap().unwrap();
            if !d.deposit.state.is_final() || d.deposit.pending.is_some() {
                open += 1;
            }
        }
        store.close().await;
        open
    }
}

/// No preimage or master key (32 bytes each) in the binary's logs, as hex or base64. Every
/// 64- and 43-character window of the log's words is looked up in a set of the secrets' forms.
fn assert_no_secret_logged(log: &Path, secrets: &[Vec<u8>]) {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut forms = std::collections::HashSet::new();
    for secret in secrets {
        assert_eq!(secret.len(), 32);
        forms.insert(hex::encode(secret));
        forms.insert(hex::encode_upper(secret));
        forms.insert(STANDARD_NO_PAD.encode(secret));
        forms.insert(URL_SAFE_NO_PAD.encode(secret));
    }
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains("lightning_wall"), "the log caught nothing");
    let words = text.split(|c: char| !(c.is_ascii_alphanumeric() || "+/_-".contains(c)));
    for word in words.filter(|w| w.len() >= 43) {
        for len in [43, 64] {
            for at in 0..word.len().saturating_sub(len - 1) {
                assert!(
                    !forms.contains(&word[at..at + len]),
                    "a secret appears in the sidecar's log"
                );
            }
        }
    }
}

fn write_config(dir: &Path, internal: u16, public: u16, store: &StoreAt) -> PathBuf {
    let path = dir.join("lightning-wall.yaml");
    std::fs::write(
        &path,
        format!(
            r#"
data_dir: ./data
{store}
node: {{ backend: dev }}
listeners:
  internal: {{ bind: "127.0.0.1:{internal}" }}
  public: {{ bind: "127.0.0.1:{public}" }}
deposits: {{ invoice_expiry: 1m, reconcile_interval: 2s }}
limits:
  max_held_deposits_per_prefix: 1000
  challenge_mint_rate: {{ requests: 10000, per: 1s }}
routes:
  - id: wall
    match: {{ path: {{ prefix: / }} }}
    mode: deposit
    deposit: {{ amount_sat: 1000, idle_timeout: 3s, session_cap: 1h }}
"#,
            store = store.config_line(),
        ),
    )
    .unwrap();
    path
}

/// Retries a call until the sidecar answers (it may be dead or restarting); returns the answer.
async fn call(
    http: &reqwest::Client,
    url: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut request = match &body {
            Some(b) => http.post(url).json(b),
            None => http.get(url),
        };
        if let Some(macaroon) = auth {
            request = request.header("authorization", format!("L402 {macaroon}:"));
        }
        if let Ok(r) = request.timeout(Duration::from_secs(5)).send().await {
            let status = r.status().as_u16();
            if let Ok(v) = r.json::<Value>().await
                && status != 503
            {
                return (status, v);
            }
        }
        assert!(
            Instant::now() < deadline,
            "sidecar unreachable for 60 s: {url}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One visitor: challenge, maybe pay, then leave, get forfeited, or go idle.
async fn visitor(http: reqwest::Client, internal: String, public: String, n: usize) {
    let (status, c) = call(
        &http,
        &format!("{internal}/v1/challenge"),
        None,
        Some(json!({"route_id": "wall", "client_ip": format!("10.{}.0.1", n % 250)})),
    )
    .await;
    assert_eq!(status, 200, "{c}");
    let macaroon = c["macaroon"].as_str().unwrap().to_owned();
    let token = c["token_id"].as_str().unwrap().to_owned();
    match n % 4 {
        // Never pays, leaves: expired.
        0 => {
            call(
                &http,
                &format!("{public}/.well-known/lightning-wall/leave"),
                Some(&macaroon),
                Some(json!({})),
            )
            .await;
            return;
        }
        _ => {
            // 400 payment_refused on a retry after a crash means it was paid already.
            call(
                &http,
                &format!("{internal}/v1/dev/pay"),
                None,
                Some(json!({"invoice": c["invoice"]})),
            )
            .await;
        }
    }
    // As a browser does: wait until the deposit is held (and the receipt revealed).
    let status_url = format!("{public}/.well-known/lightning-wall/deposit?wait=5");
    loop {
        let (status, body) = call(&http, &status_url, Some(&macaroon), None).await;
        assert_eq!(status, 200, "{body}");
        if body["state"] == "held" {
            break;
        }
        // Held, then idle for longer than the idle timeout while the sidecar (or its store)
        // was down: refunded before this visitor saw it held.
        if body["state"] == "refunded" && body["reason"] == "idle_timeout" {
            return;
        }
        assert_eq!(body["state"], "awaiting_payment", "{body}");
    }
    match n % 4 {
        1 => {
            call(
                &http,
                &format!("{public}/.well-known/lightning-wall/leave"),
                Some(&macaroon),
                Some(json!({})),
            )
            .await;
        }
        2 => {
            let event = json!({"events": [
                {"type": "verdict", "token_id": token, "verdict": "forfeit", "trigger": "rate_limit"}
            ]});
            call(&http, &format!("{internal}/v1/events"), None, Some(event)).await;
        }
        _ => {} // goes idle: refunded by the idle timer
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_at_random_points_loses_nothing_and_never_acts_twice() {
    let planned_kills = env_usize("LW_CRASH_KILLS", 5);
    let min_lifecycles = env_usize("LW_CRASH_LIFECYCLES", 48);
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let store_at = StoreAt::choose(dir.path()).await;
    let [internal_port, public_port] = loopback_ports::<2>();
    let mut sidecar = Sidecar {
        config: write_config(dir.path(), internal_port, public_port, &store_at),
        log: dir.path().join("sidecar.log"),
        child: None,
    };
    sidecar.start();
    let internal = format!("http://127.0.0.1:{internal_port}");
    let public = format!("http://127.0.0.1:{public_port}");
    let http = reqwest::Client::new();

    let killer_done = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicUsize::new(0));
    let done = killer_done.clone();
    let killer = tokio::task::spawn_blocking(move || {
        let mut rng = rand::rng();
        for _ in 0..planned_kills {
            std::thread::sleep(Duration::from_millis(rng.random_range(150..700)));
            sidecar.kill9();
            std::thread::sleep(Duration::from_millis(rng.random_range(0..200)));
            sidecar.start();
        }
        done.store(true, Ordering::SeqCst);
        sidecar
    });
    // Visitors keep arriving (at most 32 at a time) until the last kill and the minimum count.
    let slots = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::new();
    let mut n = 0;
    while n < min_lifecycles || !killer_done.load(Ordering::SeqCst) {
        let slot = slots.clone().acquire_owned().await.unwrap();
        let (http, internal, public) = (http.clone(), internal.clone(), public.clone());
        let finished = finished.clone();
        tasks.push(tokio::spawn(async move {
            visitor(http, internal, public, n).await;
            finished.fetch_add(1, Ordering::SeqCst);
            drop(slot);
        }));
        n += 1;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let visitors = n;
    for t in tasks {
        t.await.unwrap();
    }
    let mut sidecar = killer.await.unwrap();
    assert_eq!(finished.load(Ordering::SeqCst), visitors);

    // Let the last run finish everything: idle timers, pending actions, start-up reconcile.
    // Up to the 1-minute invoice expiry of invoices whose challenge answer a crash swallowed.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let open = store_at.open_count().await;
        if open == 0 && store_at.hashes().await.len() >= visitors {
            break;
        }
        assert!(Instant::now() < deadline, "{open} deposits never finished");
    }
    sidecar.kill9();

    // Compare every deposit with the node's own record.
    let store = store_at.open().await;
    let mut dev = DevNodeConfig::new(dir.path().join("data/dev-node"));
    dev.sweep_interval = None;
    let node = DevNode::open(dev).await.unwrap();
    let hashes = store_at.hashes().await;
    let mut by_state = std::collections::BTreeMap::new();
    let mut secrets = Vec::new();
    for hash in &hashes {
        let d = store.deposit(hash).await.unwrap().unwrap();
        let preimage = store.preimage(hash).await.unwrap().expect("preimage lost");
        secrets.push(preimage.0.to_vec());
        let on_node = match node.lookup(hash).await {
            Ok(status) => Some(status.state),
            Err(NodeError::NotFound) => None,
            Err(e) => panic!("{e}"),
        };
        match d.deposit.state {
            DepositState::Forfeited => assert_eq!(on_node, Some(InvoiceState::Settled), "{d:?}"),
            DepositState::Refunded => assert_eq!(on_node, Some(InvoiceState::Canceled), "{d:?}"),
            // Expired: cancelled, or never created when the crash came between storing the
            // preimage and creating the invoice.
            DepositState::Expired => assert!(
                matches!(on_node, None | Some(InvoiceState::Canceled)),
                "{d:?} is {on_node:?} on the node"
            ),
            other => panic!("deposit still {other:?}"),
        }
        assert!(d.deposit.pending.is_none(), "{d:?}");
        *by_state.entry(d.deposit.state.as_str()).or_insert(0) += 1;
    }
    store.close().await;
    if let Ok(keys) = std::fs::read_to_string(dir.path().join("data/keys")) {
        for line in keys
            .lines()
            .filter(|l| l.contains(':') && !l.starts_with('#'))
        {
            secrets.push(hex::decode(line.trim().split_once(':').unwrap().1).unwrap());
        }
    }
    assert_no_secret_logged(&sidecar.log, &secrets);
    eprintln!(
        "crash test ({}): {planned_kills} kills, {visitors} visitors, {} deposits: {by_state:?} in {:.0?}",
        store.backend(),
        hashes.len(),
        started.elapsed()
    );
    assert!(by_state.get("forfeited").copied().unwrap_or(0) > 0);
    assert!(by_state.get("refunded").copied().unwrap_or(0) > 0);
    assert!(by_state.get("expired").copied().unwrap_or(0) > 0);
    store_at.remove().await;
}
