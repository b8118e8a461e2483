//! The real LNbits (1.6.2 from PyPI, pinned in scripts/lnbits-requirements.txt) with its LND REST
//! funding source (`LndRestWallet`) pointed at FakeLnd: a second LND client, written by others,
//! must get from FakeLnd what it would get from lnd. It also pins down what LNbits' wallet API
//! tells a caller about a hold invoice, which decides whether lightning-wall can hold deposits
//! through LNbits (docs/node-backends.md, "LNbits"). LNbits runs on loopback from
//! target/lnbits-venv (scripts/lnbits-venv.sh installs it when missing); one LNbits serves the
//! whole test, each scenario uses its own LNbits wallet.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fake_lnd::FakeLnd;
use lightning_wall::testing::ports::loopback_port;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Long enough for LNbits' invoice listener to see a settle on a busy machine.
const PATIENCE: Duration = Duration::from_secs(20);

/// Kills LNbits even when an assertion fails first: its whole process group, since LNbits runs
/// its server in a child process (`lnbits/server.py`, multiprocessing) that would outlive it.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Lnbits {
    url: String,
    http: reqwest::Client,
    log: PathBuf,
    _process: KillOnDrop,
}

/// An LNbits wallet: the two keys LNbits gives every wallet (invoice key: create and read;
/// admin key: also settle, cancel and pay).
struct Wallet {
    invoice_key: String,
    admin_key: String,
}

fn venv() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(root.join("scripts/lnbits-venv.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("running scripts/lnbits-venv.sh");
    assert!(out.status.success(), "scripts/lnbits-venv.sh failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("lnbits.settings"))
        .collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

impl Lnbits {
    /// Starts LNbits on FakeLnd and waits until it answers and has connected to its funding source.
    async fn start(fake: &FakeLnd, dir: &Path) -> Lnbits {
        let venv = venv();
        let (cert, macaroon) = fake.write_credentials(dir).unwrap();
        let data = dir.join("lnbits-data");
        std::fs::create_dir_all(&data).unwrap();
        let port = loopback_port();
        let log = dir.join("lnbits.log");
        let site_packages = std::fs::read_dir(venv.join("lib"))
            .unwrap()
            .map(|e| e.unwrap().path().join("site-packages"))
            .find(|p| p.join("lnbits").is_dir())
            .expect("lnbits in the venv");
        let started = Instant::now();
        let process = KillOnDrop(
            Command::new(venv.join("bin/lnbits"))
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                // Its own process group, so that KillOnDrop reaches the server process too.
                .process_group(0)
                // LNbits serves its static files relative to the working directory.
                .current_dir(&site_packages)
                .env("LNBITS_DATA_FOLDER", &data)
                .env("LNBITS_BACKEND_WALLET_CLASS", "LndRestWallet")
                .env("LND_REST_ENDPOINT", fake.url())
                .env("LND_REST_CERT", &cert)
                .env(
                    "LND_REST_MACAROON",
                    hex::encode(std::fs::read(&macaroon).unwrap()),
                )
                .env("LNBITS_ADMIN_UI", "false")
                .env("LNBITS_EXTENSIONS_MANIFESTS", "[]")
                .env("LNBITS_WASM_EXTENSIONS_MANIFESTS", "[]")
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(Stdio::from(
                    std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
                ))
                .spawn()
                .expect("starting lnbits"),
        );
        let lnbits = Lnbits {
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            log,
            _process: process,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let up = lnbits
                .http
                .get(format!("{}/api/v1/health", lnbits.url))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if up {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "LNbits did not start:\n{}",
                log_tail(&lnbits.log)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // LNbits falls back to its VoidWallet when the funding source fails its status check.
        let log = std::fs::read_to_string(&lnbits.log).unwrap_or_default();
        assert!(
            !log.contains("Fallback to VoidWallet"),
            "LNbits refused FakeLnd as its funding source:\n{}",
            log_tail(&lnbits.log)
        );
        eprintln!("LNbits started in {:?}", started.elapsed());
        lnbits
    }

    async fn wallet(&self, name: &str) -> Wallet {
        let r = self
            .http
            .post(format!("{}/api/v1/account", self.url))
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", log_tail(&self.log));
        let wallet: Value = r.json().await.unwrap();
        Wallet {
            invoice_key: wallet["inkey"].as_str().unwrap().to_owned(),
            admin_key: wallet["adminkey"].as_str().unwrap().to_owned(),
        }
    }

    async fn post(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .header("X-Api-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, key: &str, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .header("X-Api-Key", key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "GET {path}: {}", log_tail(&self.log));
        r.json().await.unwrap()
    }

    /// `POST /api/v1/payments` for a hold invoice on `hash`: the payment LNbits records.
    async fn hold_invoice(&self, wallet: &Wallet, hash: &[u8; 32], amount_sat: u64) -> Value {
        let (status, payment) = self
            .post(
                &wallet.invoice_key,
                "/api/v1/payments",
                json!({"out": false, "amount": amount_sat, "unit": "sat",
                    "memo": "deposit", "payment_hash": hex::encode(hash)}),
            )
            .await;
        assert_eq!(status, 201, "{payment} {}", log_tail(&self.log));
        payment
    }

    /// `GET /api/v1/payments/{hash}` with the wallet's key, reduced to what it says about
    /// the money: `paid`, `status` and the recorded payment's `status`.
    async fn payment_state(&self, wallet: &Wallet, hash: &[u8; 32]) -> Value {
        let answer = self
            .get(
                &wallet.invoice_key,
                &format!("/api/v1/payments/{}", hex::encode(hash)),
            )
            .await;
        json!({"paid": answer["paid"], "status": answer["status"],
            "details.status": answer["details"]["status"]})
    }

    /// Waits until the wallet's balance is `msat`. `GET /api/v1/wallet` does not ask lnd about
    /// pending payments (`GET /api/v1/payments/{hash}` does), so only LNbits' invoice listener on
    /// SubscribeInvoices can credit the wallet here.
    async fn wait_balance(&self, wallet: &Wallet, msat: u64) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let answer = self.get(&wallet.invoice_key, "/api/v1/wallet").await;
            if answer["balance"] == msat {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "LNbits never credited the settle: {answer}\n{}",
                log_tail(&self.log)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn fresh() -> ([u8; 32], [u8; 32]) {
    let preimage: [u8; 32] = rand::random();
    (preimage, Sha256::digest(preimage).into())
}

// ---- the scenarios ----

/// LndRestWallet.create_hold_invoice → AddHoldInvoice with `value` in sat and `private: true`.
async fn a_hold_invoice_from_lnbits_is_an_open_hold_invoice_on_lnd(
    lnbits: &Lnbits,
    fake: &FakeLnd,
) {
    let wallet = lnbits.wallet("hold-open").await;
    let (_, hash) = fresh();
    let payment = lnbits.hold_invoice(&wallet, &hash, 10).await;
    assert_eq!(payment["payment_hash"], hex::encode(hash));
    let on_lnd = fake.invoice(hash).expect("the hold invoice on lnd");
    assert_eq!(on_lnd.state, "OPEN");
    assert!(
        fake.requests()
            .iter()
            .any(|r| r == "POST /v2/invoices/hodl")
    );
    assert_eq!(
        lnbits.payment_state(&wallet, &hash).await,
        json!({"paid": false, "status": "pending", "details.status": "pending"})
    );
}

/// The finding that keeps LNbits from holding deposits: its wallet API reports a hold invoice
/// whose HTLC is held (lnd ACCEPTED) exactly as one nobody paid (lnd OPEN).
async fn lnbits_reports_a_held_hold_invoice_exactly_like_an_unpaid_one(
    lnbits: &Lnbits,
    fake: &FakeLnd,
) {
    let wallet = lnbits.wallet("held-unseen").await;
    let (_, hash) = fresh();
    let payment = lnbits.hold_invoice(&wallet, &hash, 10).await;
    let unpaid = lnbits.payment_state(&wallet, &hash).await;
    fake.pay_request(payment["bolt11"].as_str().unwrap())
        .unwrap();
    assert_eq!(fake.invoice(hash).unwrap().state, "ACCEPTED");
    let held = lnbits.payment_state(&wallet, &hash).await;
    assert_eq!(held, unpaid);
    let full = lnbits
        .get(
            &wallet.invoice_key,
            &format!("/api/v1/payments/{}", hex::encode(hash)),
        )
        .await;
    let text = full.to_string();
    assert!(
        !text.contains("ACCEPTED") && !text.contains("accepted") && !text.contains("held"),
        "LNbits now reports the held state; revisit docs/node-backends.md: {full}"
    );
}

/// Settle with the admin key: SettleInvoice on lnd; LNbits learns SETTLED from SubscribeInvoices
/// and credits the wallet.
async fn lnbits_settles_a_held_invoice_on_lnd_with_the_admin_key(lnbits: &Lnbits, fake: &FakeLnd) {
    let wallet = lnbits.wallet("hold-settle").await;
    let (preimage, hash) = fresh();
    let payment = lnbits.hold_invoice(&wallet, &hash, 10).await;
    fake.pay_request(payment["bolt11"].as_str().unwrap())
        .unwrap();
    // The invoice key may create but not settle: nothing reaches lnd.
    let (status, _) = lnbits
        .post(
            &wallet.invoice_key,
            "/api/v1/payments/settle",
            json!({"preimage": hex::encode(preimage)}),
        )
        .await;
    assert!(status == 401 || status == 403, "{status}");
    assert_eq!(fake.invoice(hash).unwrap().state, "ACCEPTED");
    let (status, answer) = lnbits
        .post(
            &wallet.admin_key,
            "/api/v1/payments/settle",
            json!({"preimage": hex::encode(preimage)}),
        )
        .await;
    assert_eq!(status, 200, "{answer} {}", log_tail(&lnbits.log));
    let on_lnd = fake.invoice(hash).unwrap();
    assert_eq!(on_lnd.state, "SETTLED");
    assert_eq!(on_lnd.amt_paid_msat, 10_000);
    assert_eq!(on_lnd.preimage, Some(preimage));
    lnbits.wait_balance(&wallet, 10_000).await;
    assert_eq!(lnbits.payment_state(&wallet, &hash).await["paid"], true);
}

/// Cancel with the admin key: CancelInvoice on lnd (the payer's HTLC is failed back), and LNbits
/// records the payment as failed.
async fn lnbits_cancels_a_held_invoice_on_lnd_with_the_admin_key(lnbits: &Lnbits, fake: &FakeLnd) {
    let wallet = lnbits.wallet("hold-cancel").await;
    let (_, hash) = fresh();
    let payment = lnbits.hold_invoice(&wallet, &hash, 10).await;
    fake.pay_request(payment["bolt11"].as_str().unwrap())
        .unwrap();
    let (status, _) = lnbits
        .post(
            &wallet.invoice_key,
            "/api/v1/payments/cancel",
            json!({"payment_hash": hex::encode(hash)}),
        )
        .await;
    assert!(status == 401 || status == 403, "{status}");
    assert_eq!(fake.invoice(hash).unwrap().state, "ACCEPTED");
    let (status, answer) = lnbits
        .post(
            &wallet.admin_key,
            "/api/v1/payments/cancel",
            json!({"payment_hash": hex::encode(hash)}),
        )
        .await;
    assert_eq!(status, 200, "{answer} {}", log_tail(&lnbits.log));
    assert_eq!(fake.invoice(hash).unwrap().state, "CANCELED");
    assert_eq!(lnbits.payment_state(&wallet, &hash).await["paid"], false);
    assert_eq!(
        lnbits.payment_state(&wallet, &hash).await["status"],
        "failed"
    );
}

/// lnd refuses to settle an OPEN invoice ("invoice still open"); LNbits passes the refusal on
/// and the invoice stays open.
async fn settling_an_unpaid_hold_invoice_is_refused_by_lnd_through_lnbits(
    lnbits: &Lnbits,
    fake: &FakeLnd,
) {
    let wallet = lnbits.wallet("hold-open-settle").await;
    let (preimage, hash) = fresh();
    lnbits.hold_invoice(&wallet, &hash, 10).await;
    let (status, answer) = lnbits
        .post(
            &wallet.admin_key,
            "/api/v1/payments/settle",
            json!({"preimage": hex::encode(preimage)}),
        )
        .await;
    assert!(status >= 400, "{status} {answer}");
    assert!(
        answer.to_string().contains("invoice still open"),
        "{answer}"
    );
    assert_eq!(fake.invoice(hash).unwrap().state, "OPEN");
}

/// A normal invoice: LNbits picks the preimage itself (AddInvoice with its own `r_preimage`),
/// and learns that it was paid from SubscribeInvoices.
async fn a_normal_invoice_from_lnbits_is_settled_on_lnd_and_seen_paid(
    lnbits: &Lnbits,
    fake: &FakeLnd,
) {
    let wallet = lnbits.wallet("normal").await;
    let (status, payment) = lnbits
        .post(
            &wallet.invoice_key,
            "/api/v1/payments",
            json!({"out": false, "amount": 2, "unit": "sat", "memo": "pay"}),
        )
        .await;
    assert_eq!(status, 201, "{payment} {}", log_tail(&lnbits.log));
    let hash = fake
        .pay_request(payment["bolt11"].as_str().unwrap())
        .unwrap();
    assert_eq!(payment["payment_hash"], hex::encode(hash));
    let on_lnd = fake.invoice(hash).unwrap();
    assert_eq!(on_lnd.state, "SETTLED");
    assert_eq!(on_lnd.amt_paid_msat, 2_000);
    lnbits.wait_balance(&wallet, 2_000).await;
    assert_eq!(lnbits.payment_state(&wallet, &hash).await["paid"], true);
}

/// A BOLT11 invoice of another (simulated) regtest node, for `preimage`'s hash.
fn outside_invoice(preimage: &[u8; 32], amount_msat: u64) -> String {
    use bitcoin::hashes::{Hash, sha256};
    use bitcoin::secp256k1::{Secp256k1, SecretKey};
    use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
    let key = SecretKey::from_slice(&rand::random::<[u8; 32]>()).unwrap();
    let secp = Secp256k1::new();
    InvoiceBuilder::new(Currency::Regtest)
        .description("reward".to_owned())
        .payment_hash(sha256::Hash::hash(preimage))
        .payment_secret(PaymentSecret(rand::random()))
        .current_timestamp()
        .min_final_cltv_expiry_delta(80)
        .amount_milli_satoshis(amount_msat)
        .build_signed(|m| secp.sign_ecdsa_recoverable(m, &key))
        .unwrap()
        .to_string()
}

/// Paying out (what rewards need): LNbits pays an outside invoice through SendPaymentV2 with
/// the admin key, reads the outcome from the stream's one line, and debits the wallet.
async fn lnbits_pays_an_outside_invoice_through_send_payment_v2(lnbits: &Lnbits, fake: &FakeLnd) {
    let wallet = lnbits.wallet("payer").await;
    let (status, funding) = lnbits
        .post(
            &wallet.invoice_key,
            "/api/v1/payments",
            json!({"out": false, "amount": 20, "unit": "sat", "memo": "funding"}),
        )
        .await;
    assert_eq!(status, 201, "{funding}");
    fake.pay_request(funding["bolt11"].as_str().unwrap())
        .unwrap();
    lnbits.wait_balance(&wallet, 20_000).await;
    let (preimage, hash) = fresh();
    fake.add_remote_preimage(preimage);
    let bolt11 = outside_invoice(&preimage, 5_000);
    // The invoice key cannot pay: nothing reaches lnd.
    let (status, _) = lnbits
        .post(
            &wallet.invoice_key,
            "/api/v1/payments",
            json!({"out": true, "bolt11": bolt11}),
        )
        .await;
    assert!(status == 401 || status == 403, "{status}");
    assert!(fake.payment(hash).is_none());
    let (status, paid) = lnbits
        .post(
            &wallet.admin_key,
            "/api/v1/payments",
            json!({"out": true, "bolt11": bolt11}),
        )
        .await;
    assert_eq!(status, 201, "{paid} {}", log_tail(&lnbits.log));
    assert_eq!(paid["status"], "success", "{paid}");
    assert_eq!(paid["preimage"], hex::encode(preimage), "{paid}");
    let on_lnd = fake.payment(hash).expect("a SendPaymentV2 on lnd");
    assert_eq!((on_lnd.status, on_lnd.attempts), ("SUCCEEDED", 1));
    lnbits.wait_balance(&wallet, 15_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lnbits_1_6_2_runs_on_fake_lnd_as_its_lnd_rest_funding_source() {
    let fake = FakeLnd::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lnbits = Lnbits::start(&fake, dir.path()).await;
    a_hold_invoice_from_lnbits_is_an_open_hold_invoice_on_lnd(&lnbits, &fake).await;
    lnbits_reports_a_held_hold_invoice_exactly_like_an_unpaid_one(&lnbits, &fake).await;
    lnbits_settles_a_held_invoice_on_lnd_with_the_admin_key(&lnbits, &fake).await;
    lnbits_cancels_a_held_invoice_on_lnd_with_the_admin_key(&lnbits, &fake).await;
    settling_an_unpaid_hold_invoice_is_refused_by_lnd_through_lnbits(&lnbits, &fake).await;
    a_normal_invoice_from_lnbits_is_settled_on_lnd_and_seen_paid(&lnbits, &fake).await;
    lnbits_pays_an_outside_invoice_through_send_payment_v2(&lnbits, &fake).await;
}
