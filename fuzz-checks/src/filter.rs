//! The filter's outside-facing parsers: its Envoy plugin configuration, and the sidecar's
//! answers as the engine digests them (bootstrap policy with route regexes and keys, sync,
//! challenge, deposit status) plus the upstream's verdict headers.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use lightning_wall_filter::engine::challenge::{self, Outcome};
use lightning_wall_filter::engine::config::PluginConfig;
use lightning_wall_filter::engine::held::held_from_status;
use lightning_wall_filter::engine::host::{SharedValue, SharedWriteError};
use lightning_wall_filter::engine::outbox::Outbox;
use lightning_wall_filter::engine::pages::Browser;
use lightning_wall_filter::engine::policy::{FailureMode, Policy};
use lightning_wall_filter::engine::query::Query;
use lightning_wall_filter::engine::response::{UpstreamReward, UpstreamVerdict};
use lightning_wall_filter::engine::sidecar_call::CallKind;
use lightning_wall_filter::engine::sync::SyncState;
use lightning_wall_filter::engine::{Host, Level, Metric, revocations, routes};
use serde_json::Value;

/// The plugin configuration Envoy hands the filter: whatever is accepted has its bounds, and
/// its `Debug` (what a log line could show) never contains the bearer token.
pub fn filter_config(data: &[u8]) {
    let Ok(config) = PluginConfig::parse(data) else {
        return;
    };
    assert!(!config.sidecar_cluster.is_empty());
    assert!((10..=60_000).contains(&config.timeout.as_millis()));
    assert!((100..=60_000).contains(&config.sync_period.as_millis()));
    assert!((1..=3600).contains(&config.retry_after_s));
    if let Some(token) = &config.bearer_token {
        // A short token can be part of what Debug always prints (`re` in `retry_after_s`):
        // only a token that the output without it does not already contain can leak.
        let without = PluginConfig {
            bearer_token: None,
            ..config.clone()
        };
        let baseline = format!("{without:?} Some(\"<redacted>\")");
        if !baseline.contains(token.as_str()) {
            assert!(!format!("{config:?}").contains(token.as_str()));
        }
    }
}

/// TEST DOUBLE of the filter's host (Envoy's shared data, metrics, logs) in memory: what
/// `SyncState` needs to record revocations.
#[derive(Default)]
struct FuzzHost {
    data: RefCell<HashMap<String, Vec<u8>>>,
}

impl Host for FuzzHost {
    fn now_unix(&self) -> u64 {
        1_800_000_000
    }
    fn shared_get(&self, key: &str) -> SharedValue {
        SharedValue {
            bytes: self.data.borrow().get(key).cloned().unwrap_or_default(),
            cas: None,
        }
    }
    fn shared_set(
        &self,
        key: &str,
        value: &[u8],
        _cas: Option<u32>,
    ) -> Result<(), SharedWriteError> {
        self.data
            .borrow_mut()
            .insert(key.to_owned(), value.to_vec());
        Ok(())
    }
    fn count(&self, _metric: Metric) {}
    fn log(&self, _level: Level, message: fmt::Arguments<'_>) {
        // Formatting is part of what runs in production; do it.
        let _ = message.to_string();
    }
    fn client_address(&self) -> Option<String> {
        None
    }
}

/// A valid bootstrap answer, for the sync target to start from.
const BOOTSTRAP: &str = r#"{"policy":{"version":"v1","service":"lightning-wall",
 "challenge_mint_rate":{"requests":3,"per_s":60},
 "routes":[{"id":"api","match":{"host":null,"path":{"prefix":"/v1/"},"methods":["GET"]},
  "mode":"pay","failure_mode":"open","amount_sat":21,"token_lifetime_s":3600}]},
 "keys":[{"id":"k1","master_key":"4242424242424242424242424242424242424242424242424242424242424242"}],
 "active_key_id":"k1","revocation_seq":0}"#;

/// Byte 0 picks the answer; the rest is its body (or header values):
/// 0 bootstrap, 1 sync (with bit 7 set: the revocation snapshot), 2 challenge, 3 deposit
/// status, 4 upstream verdict headers.
pub fn filter_answers(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 5 {
        0 => bootstrap(body),
        1 if selector & 0x80 != 0 => snapshot(body),
        1 => sync(body),
        2 => challenge_answer(body, selector & 0x80 != 0),
        3 => deposit_status(body),
        _ => upstream_verdict(body),
    }
}

/// A policy that installs matches requests without panicking (route regexes included), and its
/// `Debug` never shows a master key.
fn bootstrap(body: &[u8]) {
    let Ok(policy) = Policy::from_bootstrap(body) else {
        return;
    };
    let shown = format!("{policy:?}");
    for entry in policy.keys.entries() {
        assert!(!shown.contains(&entry.master().expose_secret_hex()));
    }
    let probe = String::from_utf8_lossy(body.get(..body.len().min(256)).unwrap_or_default());
    // The probe as a query string too: the routes' query conditions parse it (bounded).
    let query = Query::of(&probe);
    for path in ["/", "/v1/x", routes::path_only(&probe)] {
        for method in ["GET", "POST"] {
            let _ = routes::find(&policy.routes, "example.com:443", path, method, &query);
        }
    }
}

/// A revocation snapshot is loaded only when well formed, and then revokes every token whose
/// prefix it lists.
fn snapshot(body: &[u8]) {
    let host = FuzzHost::default();
    let mut revoked = revocations::Revocations::default();
    let mut state = SyncState::new();
    let _ = state.on_snapshot(Some(200), body.to_vec(), &host, &mut revoked);
    if revoked.ready() {
        assert!(body.starts_with(b"LWR1"), "only a snapshot loads");
        for prefix in body.get(16..).unwrap_or_default().chunks_exact(8) {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(prefix);
            assert!(revoked.contains(&id));
        }
    }
}

/// A sync answer that is digested has recorded every revocation it listed.
fn sync(body: &[u8]) {
    let host = FuzzHost::default();
    let mut outbox = Outbox::default();
    let mut revoked = revocations::Revocations::default();
    let mut state = SyncState::new();
    let _ = state.on_tick(&mut outbox);
    let digest = state.on_answer(
        CallKind::Bootstrap,
        Some(200),
        BOOTSTRAP.as_bytes(),
        &host,
        &mut outbox,
        &mut revoked,
    );
    assert!(digest.policy.is_some(), "the fixed bootstrap installs");
    let _ = state.on_tick(&mut outbox);
    let _ = state.on_answer(
        CallKind::Sync,
        Some(200),
        body,
        &host,
        &mut outbox,
        &mut revoked,
    );
    if state.reachable
        && let Some(answer) = lossy_json(body)
    {
        for r in answer["revocations"].as_array().into_iter().flatten() {
            let id = r["token_id"].as_str().expect("token ids are strings");
            let id = revocations::parse_token_hex(&id.to_ascii_lowercase())
                .expect("a digested revocation names a token id");
            assert!(revoked.contains(&id));
        }
    }
}

/// A challenge answer becomes a 402 with usable headers and a JSON (or HTML) body, or the
/// failure mode's answer; a 429's `Retry-After` is bounded.
fn challenge_answer(body: &[u8], wants_html: bool) {
    let browser = Browser::of(Some(b"text/html"), "GET", "/", "site.example");
    let browser = browser.as_ref().filter(|_| wants_html).map(|b| (b, None));
    match challenge::outcome(Some(200), None, body, browser, FailureMode::Closed, 5) {
        Outcome::Reply(reply) if reply.status == 402 => {
            assert!(reply.headers.iter().any(|(n, _)| *n == "www-authenticate"));
            for (_, value) in &reply.headers {
                assert!(
                    value.bytes().all(|b| (0x20..0x7f).contains(&b)),
                    "a header value Envoy would refuse: {value:?}"
                );
            }
            if !wants_html {
                serde_json::from_slice::<Value>(&reply.body).expect("the 402 body is JSON");
            }
        }
        Outcome::Reply(reply) => assert_eq!(reply.status, 503),
        Outcome::Pass => panic!("a closed route never passes"),
    }
    let retry = String::from_utf8_lossy(body);
    if let Outcome::Reply(reply) =
        challenge::outcome(Some(429), Some(&*retry), b"", None, FailureMode::Open, 5)
    {
        let wait: u64 = reply
            .headers
            .iter()
            .find(|(n, _)| *n == "retry-after")
            .and_then(|(_, v)| v.parse().ok())
            .expect("a 429 carries Retry-After");
        assert!(wait <= 3600);
    }
}

/// A body the engine accepted, as a JSON value for the oracle. serde skips the fields it
/// ignores without checking all of their content, so an accepted body may hold, in a field
/// nothing reads: invalid UTF-8 in a string (the lossy copy keeps the structure), or a number
/// out of `f64`'s range such as `13e0360036` (`None`: this oracle cannot read such a body; the
/// engine reads it, which the run itself checks for panics).
fn lossy_json(body: &[u8]) -> Option<Value> {
    match serde_json::from_str(&String::from_utf8_lossy(body)) {
        Ok(value) => Some(value),
        Err(e) if e.to_string().starts_with("number out of range") => None,
        Err(e) => panic!("an accepted body is JSON: {e}"),
    }
}

/// "Held" only when the sidecar said exactly that.
fn deposit_status(body: &[u8]) {
    if held_from_status(Some(200), body) == Some(true)
        && let Some(answer) = lossy_json(body)
    {
        // serde also reads a struct from a sequence (`["held"]`): positional, but still "held".
        assert!(answer["state"] == "held" || answer[0] == "held", "{answer}");
    }
}

/// `x-lightning-wall-verdict`, `x-lightning-wall-reward` and `x-lightning-wall-reward-id`
/// (split at newlines): a granted reward came from both reward headers and has a valid id.
fn upstream_verdict(body: &[u8]) {
    let mut parts = body.splitn(3, |&b| b == b'\n');
    let verdict = parts.next();
    let reward = parts.next();
    let reward_id = parts.next();
    let _ = UpstreamVerdict::parse(verdict);
    if let UpstreamReward::Grant { sats, id } = UpstreamReward::parse(reward, reward_id) {
        assert!(reward.is_some() && reward_id.is_some());
        assert!(sats >= 1);
        assert!(
            (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".:_-".contains(&b)),
            "{id:?}"
        );
    }
}
