//! **FakeNwc — a test double of a NIP-47 (Nostr Wallet Connect) wallet service with hold
//! invoices**, for lightning-wall's tests only. It is not a wallet: no channels, no chain, no
//! money. It runs a real Nostr relay on loopback (rust-nostr's `nostr-relay-builder`
//! `LocalRelay`, an in-memory NIP-01 relay) and a wallet service that talks to its clients only
//! through that relay, as NIP-47 (nostr-protocol/nips 47.md) writes it:
//!
//! - an info event (kind 13194, replaceable) listing its methods, `encryption: nip44_v2` and
//!   `notifications: payment_received hold_invoice_accepted`;
//! - requests (kind 23194) from the connection's client key only (others get `UNAUTHORIZED`),
//!   NIP-44 v2 encrypted, with the `encryption` tag (absent means NIP-04, answered
//!   `UNSUPPORTED_ENCRYPTION` in NIP-04, which it does not otherwise speak), ignored once past
//!   their `expiration` tag;
//! - responses (kind 23195) tagged `p` (the client) and `e` (the request), with `result_type`
//!   and either `result` or `error {code, message}` (`NOT_IMPLEMENTED` for an unknown method,
//!   `RESTRICTED` for a method not granted to the connection, `NOT_FOUND`, `INTERNAL`,
//!   `PAYMENT_FAILED`, `OTHER`);
//! - notifications (kind 23197, NIP-44) `hold_invoice_accepted` with `settle_deadline`, and
//!   `payment_received`.
//!
//! Methods: `get_info`, `make_hold_invoice`, `settle_hold_invoice`, `cancel_hold_invoice`,
//! `lookup_invoice` (by `payment_hash` or `invoice`), `pay_invoice`, `get_balance`. The wallet
//! behind them follows Alby Hub on LND: lnd's hold-invoice rules (settle and cancel are
//! idempotent, a hash is never reused, an unpaid invoice expires, a held one is cancelled
//! `hold_expiry_delta` blocks before its HTLC expires), lnd's error messages under `INTERNAL`,
//! and `settle_deadline` (the HTLC's expiry height) in lookups of held invoices, as Alby Hub adds.
//!
//! What it checks: that a client's events are what NIP-47 says (kinds, tags, signatures by the
//! connection key, NIP-44 payloads, JSON shapes), over a real relay's websocket.
//! What it cannot: a real wallet's routing, budgets and fee reserves, Alby Hub's exact error
//! texts beyond lnd's, relays that drop ephemeral events, NIP-04 clients, `make_invoice`,
//! keysend and `list_transactions` (answered `NOT_IMPLEMENTED`).

mod state;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nostr_relay_builder::prelude::{LocalRelay, RateLimit, RelayBuilder};
use nostr_sdk::prelude::*;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub use state::HoldState;
use state::{Notice, Wallet};

const KIND_INFO: u16 = 13194;
const KIND_REQUEST: u16 = 23194;
const KIND_RESPONSE: u16 = 23195;
const KIND_NOTIFICATION: u16 = 23197;

/// Every method the double implements.
pub const ALL_METHODS: [&str; 7] = [
    "get_info",
    "make_hold_invoice",
    "settle_hold_invoice",
    "cancel_hold_invoice",
    "lookup_invoice",
    "pay_invoice",
    "get_balance",
];

#[derive(Clone, Debug)]
pub struct FakeNwcOptions {
    /// `get_info.network` and the BOLT11 prefix.
    pub network: String,
    pub block_height: u32,
    /// Blocks before a held HTLC's expiry at which the wallet's node cancels it (lnd: 18).
    pub hold_expiry_delta: u32,
    /// Methods granted to the connection (`get_info.methods`); others answer `RESTRICTED`.
    pub granted: Vec<String>,
    /// Whether the info event offers NIP-44 (`encryption: nip44_v2`); without it the tag is
    /// absent, which NIP-47 reads as NIP-04 only.
    pub nip44: bool,
}

impl Default for FakeNwcOptions {
    fn default() -> Self {
        Self {
            network: "regtest".to_owned(),
            block_height: 800,
            hold_expiry_delta: 18,
            granted: ALL_METHODS.iter().map(|m| (*m).to_owned()).collect(),
            nip44: true,
        }
    }
}

struct Shared {
    wallet: Mutex<Wallet>,
    options: FakeNwcOptions,
    wallet_keys: Keys,
    client_pubkey: PublicKey,
    client: Client,
    requests: Mutex<Vec<String>>,
}

impl Shared {
    fn wallet(&self) -> MutexGuard<'_, Wallet> {
        self.wallet.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running relay and wallet service. Dropping it stops both.
pub struct FakeNwc {
    relay: LocalRelay,
    relay_url: String,
    client_secret: SecretKey,
    shared: Arc<Shared>,
    service: JoinHandle<()>,
}

impl Drop for FakeNwc {
    fn drop(&mut self) {
        self.service.abort();
        self.relay.shutdown();
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl FakeNwc {
    pub async fn start() -> Result<Self, String> {
        Self::start_with(FakeNwcOptions::default()).await
    }

    pub async fn start_with(options: FakeNwcOptions) -> Result<Self, String> {
        let builder = RelayBuilder::default()
            .addr(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
            .rate_limit(RateLimit {
                max_reqs: 500,
                notes_per_minute: 100_000,
            });
        let relay = LocalRelay::new(builder);
        relay
            .run()
            .await
            .map_err(|e| format!("starting the relay: {e}"))?;
        let relay_url = relay.url().await.to_string();
        Self::serve(relay, relay_url, options).await
    }

    async fn serve(
        relay: LocalRelay,
        relay_url: String,
        options: FakeNwcOptions,
    ) -> Result<Self, String> {
        let wallet_keys = Keys::generate();
        let client_keys = Keys::generate();
        let client = Client::new(wallet_keys.clone());
        client
            .add_relay(relay_url.as_str())
            .await
            .map_err(|e| e.to_string())?;
        client.connect().await;
        client.wait_for_connection(Duration::from_secs(5)).await;
        let shared = Arc::new(Shared {
            wallet: Mutex::new(Wallet::new(
                &options.network,
                options.block_height,
                options.hold_expiry_delta,
            )),
            options,
            wallet_keys,
            client_pubkey: client_keys.public_key(),
            client,
            requests: Mutex::new(Vec::new()),
        });
        publish_info(&shared).await?;
        let filter = Filter::new()
            .kind(Kind::Custom(KIND_REQUEST))
            .pubkey(shared.wallet_keys.public_key())
            .since(Timestamp::from(unix_now().saturating_sub(5)));
        let notifications = shared.client.notifications();
        shared
            .client
            .subscribe(filter, None)
            .await
            .map_err(|e| e.to_string())?;
        let service = tokio::spawn(serve_requests(shared.clone(), notifications));
        Ok(Self {
            relay,
            relay_url,
            client_secret: client_keys.secret_key().clone(),
            shared,
            service,
        })
    }

    pub fn relay_url(&self) -> &str {
        &self.relay_url
    }

    pub fn wallet_pubkey(&self) -> String {
        self.shared.wallet_keys.public_key().to_hex()
    }

    /// `nostr+walletconnect://<wallet pubkey>?relay=<relay>&secret=<client secret>`.
    pub fn connection_string(&self) -> String {
        let relay: String = self
            .relay_url
            .trim_end_matches('/')
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        format!(
            "nostr+walletconnect://{}?relay={relay}&secret={}",
            self.wallet_pubkey(),
            self.client_secret.to_secret_hex()
        )
    }

    /// A remote payer pays a hold invoice of this wallet in full: the payment is held and the
    /// wallet sends `hold_invoice_accepted` (after the state changed, as a wallet would). The
    /// payment hash.
    pub async fn pay_request(&self, bolt11: &str) -> Result<[u8; 32], String> {
        let (hash, notice) = self.shared.wallet().pay_request(bolt11)?;
        notify(&self.shared, notice).await;
        Ok(hash)
    }

    pub fn advance_blocks(&self, blocks: u32) {
        self.shared.wallet().advance_blocks(blocks);
    }

    pub fn advance_time(&self, by: Duration) {
        self.shared.wallet().advance_time(by);
    }

    /// The wallet's clock (the real one plus `advance_time`).
    pub fn now(&self) -> Duration {
        self.shared.wallet().now()
    }

    pub fn height(&self) -> u32 {
        self.shared.wallet().height
    }

    /// The invoice's state in the wallet, for assertions on the money.
    pub fn invoice_state(&self, hash: &[u8; 32]) -> Option<HoldState> {
        self.shared.wallet().invoice(hash).map(|i| i.state)
    }

    /// Methods called so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Payments made with `pay_invoice`: `(payment hash, amount msat)`.
    pub fn payments(&self) -> Vec<([u8; 32], u64)> {
        self.shared
            .wallet()
            .payments
            .iter()
            .map(|p| (p.hash, p.amount_msat))
            .collect()
    }
}

async fn publish_info(shared: &Shared) -> Result<(), String> {
    let mut tags = vec![Tag::custom(
        TagKind::custom("notifications"),
        ["payment_received hold_invoice_accepted"],
    )];
    if shared.options.nip44 {
        tags.push(Tag::custom(TagKind::custom("encryption"), ["nip44_v2"]));
    }
    let content = format!("{} notifications", ALL_METHODS.join(" "));
    let event = EventBuilder::new(Kind::Custom(KIND_INFO), content)
        .tags(tags)
        .sign_with_keys(&shared.wallet_keys)
        .map_err(|e| e.to_string())?;
    shared
        .client
        .send_event(&event)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

async fn serve_requests(
    shared: Arc<Shared>,
    mut events: tokio::sync::broadcast::Receiver<RelayPoolNotification>,
) {
    let mut seen = std::collections::HashSet::new();
    loop {
        let event = match events.recv().await {
            Ok(RelayPoolNotification::Event { event, .. }) => event,
            Ok(_) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        if event.kind != Kind::Custom(KIND_REQUEST) || !seen.insert(event.id) {
            continue;
        }
        let shared = shared.clone();
        tokio::spawn(async move { answer(&shared, &event).await });
    }
}

/// One request: checks, decrypts, runs, answers.
async fn answer(shared: &Shared, request: &Event) {
    if request.verify().is_err() {
        return;
    }
    // NIP-47: "If the request is received after this timestamp, it should be ignored."
    if request
        .tags
        .expiration()
        .is_some_and(|at| at.as_secs() <= unix_now())
    {
        return;
    }
    let encryption = request
        .tags
        .iter()
        .find(|t| t.kind().to_string() == "encryption")
        .and_then(|t| t.content())
        .map(str::to_owned);
    let keys = &shared.wallet_keys;
    if encryption.as_deref() != Some("nip44_v2") {
        let body = json!({"result_type": "", "error": {"code": "UNSUPPORTED_ENCRYPTION",
            "message": "this wallet speaks nip44_v2 only"}});
        if let Ok(content) = nip04::encrypt(keys.secret_key(), &request.pubkey, body.to_string()) {
            respond(shared, request, content).await;
        }
        return;
    }
    let reply = |body: Value| {
        nip44::encrypt(
            keys.secret_key(),
            &request.pubkey,
            body.to_string(),
            nip44::Version::V2,
        )
    };
    if request.pubkey != shared.client_pubkey {
        if let Ok(content) = reply(json!({"result_type": "", "error": {"code": "UNAUTHORIZED",
            "message": "no wallet is connected to this public key"}}))
        {
            respond(shared, request, content).await;
        }
        return;
    }
    let Ok(plaintext) = nip44::decrypt(keys.secret_key(), &request.pubkey, &request.content) else {
        return;
    };
    let Ok(body) = serde_json::from_str::<Value>(&plaintext) else {
        return;
    };
    let method = body
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let params = body.get("params").cloned().unwrap_or(Value::Null);
    shared
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(method.clone());
    let (outcome, notice) = run(shared, &method, &params);
    let body = match outcome {
        Ok(result) => json!({"result_type": method, "error": null, "result": result}),
        Err((code, message)) => {
            json!({"result_type": method, "error": {"code": code, "message": message}, "result": null})
        }
    };
    if let Ok(content) = reply(body) {
        respond(shared, request, content).await;
    }
    if let Some(notice) = notice {
        notify(shared, notice).await;
    }
}

fn run(
    shared: &Shared,
    method: &str,
    params: &Value,
) -> (Result<Value, state::WalletError>, Option<Notice>) {
    if !ALL_METHODS.contains(&method) {
        return (
            Err(("NOT_IMPLEMENTED", format!("{method} is not implemented"))),
            None,
        );
    }
    if !shared.options.granted.iter().any(|m| m == method) {
        return (
            Err(("RESTRICTED", format!("this connection may not {method}"))),
            None,
        );
    }
    let mut wallet = shared.wallet();
    match method {
        "get_info" => {
            let granted: Vec<&str> = shared.options.granted.iter().map(String::as_str).collect();
            (
                Ok(wallet.get_info(&granted, &["payment_received", "hold_invoice_accepted"])),
                None,
            )
        }
        "make_hold_invoice" => (wallet.make_hold_invoice(params), None),
        "settle_hold_invoice" => match wallet.settle(params) {
            Ok((result, notice)) => (Ok(result), notice),
            Err(e) => (Err(e), None),
        },
        "cancel_hold_invoice" => (wallet.cancel(params), None),
        "lookup_invoice" => (wallet.lookup(params), None),
        "pay_invoice" => (wallet.pay(params), None),
        "get_balance" => (Ok(json!({"balance": 100_000_000u64})), None),
        _ => (
            Err(("NOT_IMPLEMENTED", format!("{method} is not implemented"))),
            None,
        ),
    }
}

async fn respond(shared: &Shared, request: &Event, content: String) {
    let event = EventBuilder::new(Kind::Custom(KIND_RESPONSE), content)
        .tags([Tag::public_key(request.pubkey), Tag::event(request.id)])
        .sign_with_keys(&shared.wallet_keys);
    if let Ok(event) = event {
        let _ = shared.client.send_event(&event).await;
    }
}

async fn notify(shared: &Shared, notice: Notice) {
    let (kind, tx) = match notice {
        Notice::HoldAccepted(tx) => ("hold_invoice_accepted", tx),
        Notice::Received(tx) => ("payment_received", tx),
    };
    let body = json!({"notification_type": kind, "notification": tx});
    let Ok(content) = nip44::encrypt(
        shared.wallet_keys.secret_key(),
        &shared.client_pubkey,
        body.to_string(),
        nip44::Version::V2,
    ) else {
        return;
    };
    let event = EventBuilder::new(Kind::Custom(KIND_NOTIFICATION), content)
        .tag(Tag::public_key(shared.client_pubkey))
        .sign_with_keys(&shared.wallet_keys);
    if let Ok(event) = event {
        let _ = shared.client.send_event(&event).await;
    }
}
