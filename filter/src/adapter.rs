//! The thin proxy-wasm layer: reads headers (as bytes) and properties, hands them to the
//! [`engine`](crate::engine), and carries out what it decides (forward, local reply, call-out).
//! It must never decide anything itself and never call an SDK method that panics on a host
//! status (the `Context`/`HttpContext` convenience getters do): only `hostcalls` with results.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};

use lightning_wall_contract::challenge::ChallengeRequest;
use lightning_wall_contract::headers as header;
use lightning_wall_contract::paths;

use crate::engine::challenge::{self, Outcome};
use crate::engine::config::PluginConfig;
use crate::engine::decision::{self, Decision, Grant, PendingGrant, RequestFacts};
use crate::engine::health;
use crate::engine::host::{Host, Level, Metric, SharedValue, SharedWriteError};
use crate::engine::pages::{self, Browser};
use crate::engine::policy::{FailureMode, Policy, RouteMode};
use crate::engine::reply::Reply;
use crate::engine::response::{self, UpstreamReward, UpstreamVerdict};
use crate::engine::shared_data;
use crate::engine::sync::{Call, CallKind, Flush, SyncState};
use crate::engine::worker::WorkerState;
use crate::raw_shared_data::HostSharedData;

proxy_wasm::main! {{
    // set_log_level installs the SDK's panic hook, which unwraps the log call; ours replaces it.
    proxy_wasm::set_log_level(LogLevel::Info);
    std::panic::set_hook(Box::new(|info| {
        let _ = hostcalls::log(LogLevel::Critical, &format!("lightning-wall filter panicked: {info}"));
    }));
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(WallRoot::new()) });
}}

/// The host as the engine sees it, over proxy-wasm host calls.
#[derive(Clone, Default)]
struct WasmHost {
    /// Each metric's id with the increments not yet handed to the host.
    metrics: Rc<RefCell<HashMap<Metric, (u32, u64)>>>,
}

impl WasmHost {
    /// Hands the counted increments to the host (each worker's root tick). Counting in the
    /// worker and flushing once a tick keeps a host call off every request; Envoy's stats lag by
    /// at most one sync period (default 1 s, shorter than its 5 s stats flush).
    fn flush_metrics(&self) {
        let Ok(mut metrics) = self.metrics.try_borrow_mut() else {
            return;
        };
        for (id, pending) in metrics.values_mut() {
            if *pending > 0 {
                let _ =
                    hostcalls::increment_metric(*id, i64::try_from(*pending).unwrap_or(i64::MAX));
                *pending = 0;
            }
        }
    }
}

impl Host for WasmHost {
    fn now_unix(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs())
    }

    fn shared_get(&self, key: &str) -> SharedValue {
        shared_data::read(&HostSharedData, key)
    }

    fn shared_set(
        &self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), SharedWriteError> {
        shared_data::write(&HostSharedData, key, value, cas)
    }

    fn count(&self, metric: Metric) {
        let Ok(mut metrics) = self.metrics.try_borrow_mut() else {
            return;
        };
        // By the enum, not its name: the name is formatted once, when the metric is defined
        // (at once, so the counter shows from its first event; the increments follow on tick).
        match metrics.get_mut(&metric) {
            Some((_, pending)) => *pending += 1,
            None => {
                if let Ok(id) = hostcalls::define_metric(MetricType::Counter, &metric.name()) {
                    metrics.insert(metric, (id, 1));
                }
            }
        }
    }

    fn log(&self, level: Level, message: fmt::Arguments<'_>) {
        let level = match level {
            Level::Error => LogLevel::Error,
            Level::Warn => LogLevel::Warn,
            Level::Info => LogLevel::Info,
            Level::Debug => LogLevel::Debug,
        };
        let _ = hostcalls::log(level, &message.to_string());
    }
}

/// One worker VM's state, shared by its root context and its HTTP contexts.
struct Worker {
    config: Option<Rc<PluginConfig>>,
    policy: Option<Rc<Policy>>,
    sync: SyncState,
    state: WorkerState,
    /// Root call-outs in flight, by token.
    calls: HashMap<u32, CallKind>,
    /// Follow-up calls held for the next tick (`request_callouts_only`).
    deferred: Vec<Call>,
    /// This worker already logged that its host let an undecided request through.
    warned_undecided: bool,
}

type SharedWorker = Rc<RefCell<Worker>>;

/// Timeout of the revocation snapshot call-out (at least; `timeout_ms` when longer).
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(10);

fn dispatch(config: &PluginConfig, method: &str, path: &str, body: Option<&[u8]>) -> Option<u32> {
    dispatch_to(&config.sidecar_cluster, config, method, path, body, None)
}

fn dispatch_to(
    cluster: &str,
    config: &PluginConfig,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    authorization: Option<&str>,
) -> Option<u32> {
    let bearer = config.bearer_token.as_ref().map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        (":method", method),
        (":path", path),
        (":authority", config.sidecar_authority.as_str()),
    ];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    // The bearer token is for the internal listener only; the wall cluster gets the visitor's
    // empty-proof credential instead.
    match (authorization, bearer.as_deref()) {
        (Some(a), _) => headers.push(("authorization", a)),
        (None, Some(b)) => headers.push(("authorization", b)),
        (None, None) => {}
    }
    hostcalls::dispatch_http_call(cluster, headers, body, vec![], config.timeout).ok()
}

fn call_response_status() -> Option<u16> {
    hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten()
        .and_then(|s| std::str::from_utf8(&s).ok()?.parse().ok())
}

fn call_response_body(size: usize) -> Vec<u8> {
    hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, size)
        .ok()
        .flatten()
        .unwrap_or_default()
}

struct WallRoot {
    worker: SharedWorker,
    host: WasmHost,
}

impl WallRoot {
    fn new() -> WallRoot {
        WallRoot {
            worker: Rc::new(RefCell::new(Worker {
                config: None,
                policy: None,
                sync: SyncState::new(),
                state: WorkerState::default(),
                calls: HashMap::new(),
                deferred: Vec::new(),
                warned_undecided: false,
            })),
            host: WasmHost::default(),
        }
    }

    fn issue(&self, w: &mut Worker, calls: Vec<Call>) {
        let Some(config) = w.config.clone() else {
            return;
        };
        for call in calls {
            let sent = if call.kind == CallKind::Snapshot {
                // Megabytes read in one statement, once per worker, and deposit credentials
                // wait for it: more time than a sync gets.
                let patient = PluginConfig {
                    timeout: config.timeout.max(SNAPSHOT_TIMEOUT),
                    ..(*config).clone()
                };
                dispatch(&patient, call.method, &call.path, None)
            } else {
                dispatch(&config, call.method, &call.path, call.body.as_deref())
            };
            match sent {
                Some(token) => {
                    w.calls.insert(token, call.kind);
                }
                None => {
                    let Worker { sync, state, .. } = w;
                    sync.dispatch_failed(call.kind, &self.host, &mut state.outbox);
                }
            }
        }
    }

    fn tick(&self) {
        self.host.flush_metrics();
        let Ok(mut w) = self.worker.try_borrow_mut() else {
            return;
        };
        if w.config.is_none() {
            return;
        }
        w.state
            .revocations
            .refresh(&self.host, self.host.now_unix());
        let mut calls = std::mem::take(&mut w.deferred);
        calls.extend({
            let Worker { sync, state, .. } = &mut *w;
            sync.on_tick(&mut state.outbox)
        });
        self.issue(&mut w, calls);
    }
}

impl Context for WallRoot {
    fn on_http_call_response(&mut self, token: u32, _: usize, body_size: usize, _: usize) {
        let Ok(mut w) = self.worker.try_borrow_mut() else {
            return;
        };
        let Some(kind) = w.calls.remove(&token) else {
            return;
        };
        let status = call_response_status();
        let body = call_response_body(body_size);
        let digest = {
            let Worker { sync, state, .. } = &mut *w;
            if kind == CallKind::Snapshot {
                // Up to megabytes: handed over, not copied.
                sync.on_snapshot(status, body, &self.host, &mut state.revocations)
            } else {
                sync.on_answer(
                    kind,
                    status,
                    &body,
                    &self.host,
                    &mut state.outbox,
                    &mut state.revocations,
                )
            }
        };
        if let Some(policy) = digest.policy {
            w.state.installed(&policy);
            w.policy = Some(Rc::new(policy));
        }
        if let Some(call) = digest.follow_up {
            // nginx: a call-out from a root context's call-out answer crashes the worker
            // (ngx_wasm_module 3bed2783 dereferences the finished call's pool); the tick sends it.
            if w.config.as_ref().is_some_and(|c| c.request_callouts_only) {
                w.deferred.push(call);
            } else {
                self.issue(&mut w, vec![call]);
            }
        }
    }
}

impl RootContext for WallRoot {
    fn on_configure(&mut self, _: usize) -> bool {
        let raw = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        let config = match PluginConfig::parse(&raw) {
            Ok(c) => c,
            Err(e) => {
                // The error names the field; it never echoes the bearer token's value.
                let _ = hostcalls::log(LogLevel::Error, &format!("lightning-wall: {e}"));
                return false;
            }
        };
        let _ = hostcalls::set_tick_period(config.sync_period);
        match self.worker.try_borrow_mut() {
            Ok(mut w) => w.config = Some(Rc::new(config)),
            Err(_) => return false,
        }
        // No call-out here: the first tick bootstraps. nginx's ngx_wasm_module traps on a
        // call-out from on_configure, which kills the worker (docs/filter.md "Hosts").
        true
    }

    fn on_tick(&mut self) {
        self.tick();
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(WallRequest {
            worker: self.worker.clone(),
            host: self.host.clone(),
            grant: None,
            challenge: None,
            confirm: None,
            verdict: None,
            credential_out: None,
            browser: None,
            withheld: false,
        }))
    }
}

struct PendingChallenge {
    token: u32,
    failure_mode: FailureMode,
}

struct WallRequest {
    worker: SharedWorker,
    host: WasmHost,
    grant: Option<Grant>,
    challenge: Option<PendingChallenge>,
    /// A held-deposit confirmation in flight: call-out token and the grant it becomes.
    confirm: Option<(u32, PendingGrant)>,
    /// A verdict this request decided, on its way to the sidecar: call-out token, the events,
    /// and what the request does once the sidecar answered.
    verdict: Option<(u32, Flush, AfterVerdict)>,
    /// The full credential to return to a client that presented an empty proof.
    credential_out: Option<String>,
    /// Set when a browser navigates: local replies become pages (engine/pages.rs).
    browser: Option<Browser>,
    /// The upstream's response began while this request was still undecided: none of it may
    /// reach the client, and no reply is sent any more (see `withhold_if_undecided`).
    withheld: bool,
}

/// What a request that decided a verdict does once the sidecar has it: the client learns of
/// the forfeit (and can try to `leave`) only after the sidecar knows.
enum AfterVerdict {
    /// Send this local reply (a forfeit decided on the request).
    Reply(Reply),
    /// Let the upstream's response continue (a verdict read from it).
    ResumeResponse,
}

fn utf8(v: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(v)
}

/// `source.address` as reported, and parsed (client_addr.rs accepts every form hosts report).
fn client_ip() -> Option<(String, std::net::IpAddr)> {
    let addr = hostcalls::get_property(vec!["source", "address"]).ok()??;
    let addr = String::from_utf8(addr).ok()?;
    let ip = crate::engine::client_addr::parse(&addr)?;
    Some((addr, ip))
}

fn send_reply(reply: &Reply) {
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    let _ = hostcalls::send_http_response(reply.status, headers, Some(&reply.body));
}

impl WallRequest {
    /// Sends a local reply, as a page when a browser navigates.
    fn send(&self, reply: Reply) {
        let policy = self.worker.try_borrow().ok().and_then(|w| w.policy.clone());
        send_reply(&pages::for_browser(
            reply,
            policy.as_deref(),
            self.browser.as_ref(),
        ));
    }

    fn retry_after_s(&self) -> u32 {
        self.worker
            .try_borrow()
            .ok()
            .and_then(|w| w.config.as_ref().map(|c| c.retry_after_s))
            .unwrap_or(5)
    }

    fn unavailable(&self, failure_mode: FailureMode) -> Action {
        let retry = self.retry_after_s();
        match failure_mode {
            FailureMode::Open => Action::Continue,
            FailureMode::Closed => {
                self.host.count(Metric::Denied("unavailable"));
                self.send(Reply::unavailable(retry));
                Action::Pause
            }
        }
    }
}

impl WallRequest {
    /// Waiting for the sidecar before deciding this request (a challenge, a deposit check, a
    /// verdict that precedes a reply): the request must not have reached the upstream.
    fn undecided(&self) -> bool {
        self.challenge.is_some()
            || self.confirm.is_some()
            || matches!(self.verdict, Some((_, _, AfterVerdict::Reply(_))))
    }

    /// A response while the request is undecided means the host forwarded a request the
    /// filter had paused. ngx_wasm_module 3bed2783 does so in nginx's rewrite phase (its
    /// default) on a keep-alive connection, and then skips `on_http_response_headers`; only
    /// `proxy_wasm_request_headers_in_access on` makes the pause hold (docs/filter.md "Hosts").
    /// The upstream was reached, but the walled page must not be delivered: the filter
    /// withholds the whole response from then on. True when withholding.
    fn withhold_if_undecided(&mut self) -> bool {
        if self.withheld || !self.undecided() {
            return self.withheld;
        }
        self.withheld = true;
        self.host.count(Metric::Denied("undecided"));
        let first = self
            .worker
            .try_borrow_mut()
            .map(|mut w| !std::mem::replace(&mut w.warned_undecided, true))
            .unwrap_or(false);
        if first {
            self.host.log(
                Level::Error,
                format_args!(
                    "lightning-wall: the host forwarded a request the filter had paused; its response is withheld. In nginx set `proxy_wasm_request_headers_in_access on;` (docs/deployment.md \"nginx\")"
                ),
            );
        }
        true
    }
}

impl WallRequest {
    /// Dispatches the verdicts this request just decided (`POST /v1/events`) instead of
    /// leaving them for the tick. True when the call is on its way and `then` waits for its
    /// answer; false when there was nothing to send or the call could not be made (the events
    /// are queued again and the tick retries them).
    fn send_verdicts_then(&mut self, then: AfterVerdict) -> Result<(), AfterVerdict> {
        let Ok(mut w) = self.worker.try_borrow_mut() else {
            return Err(then);
        };
        let Some(flush) = w.state.outbox.flush() else {
            return Err(then);
        };
        let dispatched = w.config.clone().and_then(|config| {
            dispatch(
                &config,
                flush.call.method,
                &flush.call.path,
                flush.call.body.as_deref(),
            )
        });
        match dispatched {
            Some(token) => {
                self.verdict = Some((token, flush, then));
                Ok(())
            }
            None => {
                w.state.outbox.flushed(flush, None, &self.host);
                Err(then)
            }
        }
    }

    /// Answers locally, after the sidecar acknowledged any verdict this request decided.
    fn reply_after_verdicts(&mut self, reply: Reply) {
        if let Err(AfterVerdict::Reply(reply)) = self.send_verdicts_then(AfterVerdict::Reply(reply))
        {
            self.send(reply);
        }
    }

    /// The sidecar answered the verdict call.
    fn on_verdict_answer(&mut self, flush: Flush, then: AfterVerdict) {
        let status = call_response_status();
        if let Ok(mut w) = self.worker.try_borrow_mut() {
            w.state.outbox.flushed(flush, status, &self.host);
        }
        match then {
            // The response is already on its way to the client (and withheld).
            AfterVerdict::Reply(_) if self.withheld => {}
            AfterVerdict::Reply(reply) => self.send(reply),
            AfterVerdict::ResumeResponse => {
                let _ = hostcalls::resume_http_response();
            }
        }
    }

    /// Sets the upstream headers of an allowed request and remembers the grant.
    fn allow(&mut self, grant: Grant) {
        let _ = hostcalls::set_map_value(
            MapType::HttpRequestHeaders,
            header::TOKEN,
            Some(&grant.token_hex),
        );
        let _ = hostcalls::set_map_value(
            MapType::HttpRequestHeaders,
            header::MODE,
            Some(grant.mode.as_str()),
        );
        self.grant = Some(grant);
    }

    /// The sidecar answered whether an empty-proof deposit is held.
    fn on_held_answer(&mut self, pending: PendingGrant, body_size: usize) {
        let held = decision::confirmed_from_status(
            pending.grant.mode,
            call_response_status(),
            &call_response_body(body_size),
        );
        let Ok(mut w) = self.worker.try_borrow_mut() else {
            self.unavailable(FailureMode::Closed);
            return;
        };
        let policy = w.policy.clone();
        let failure_mode = policy
            .as_ref()
            .and_then(|p| p.routes.get(pending.grant.route))
            .map_or(FailureMode::Closed, |r| r.failure_mode);
        match held {
            Some(true) => {
                decision::cache_held(&self.host, &pending.grant);
                let d = decision::admit(
                    policy.as_deref(),
                    pending.grant,
                    pending.trap,
                    &self.host,
                    &mut w.state,
                );
                drop(w);
                match d {
                    Decision::Allow(grant) => {
                        self.allow(grant);
                        self.credential_out = Some(pending.credential);
                        let _ = hostcalls::resume_http_request();
                    }
                    Decision::Reply(reply) => self.reply_after_verdicts(reply),
                    _ => {
                        self.unavailable(FailureMode::Closed);
                    }
                }
            }
            Some(false) => {
                drop(w);
                let (reason, message) = match pending.grant.mode {
                    RouteMode::Deposit | RouteMode::Free => (
                        "deposit_not_held",
                        "the deposit is not held: pay the invoice or request a new challenge",
                    ),
                    RouteMode::Pay => (
                        "not_paid",
                        "the invoice is not settled: pay it, or send the preimage",
                    ),
                };
                self.host.count(Metric::Denied(reason));
                self.send(Reply::error(401, reason, message));
            }
            None => {
                drop(w);
                if self.unavailable(failure_mode) == Action::Continue {
                    let _ = hostcalls::resume_http_request();
                }
            }
        }
    }
}

impl Context for WallRequest {
    fn on_http_call_response(&mut self, token: u32, _: usize, body_size: usize, _: usize) {
        if let Some((t, flush, then)) = self.verdict.take() {
            if t == token {
                self.on_verdict_answer(flush, then);
            } else {
                self.verdict = Some((t, flush, then));
            }
            return;
        }
        if let Some((t, pending)) = self.confirm.take() {
            if t == token && !self.withheld {
                self.on_held_answer(pending, body_size);
            }
            return;
        }
        let Some(pending) = self.challenge.take().filter(|p| p.token == token) else {
            return;
        };
        if self.withheld {
            // Too late to answer: the upstream's response has started (and is withheld).
            return;
        }
        let status = call_response_status();
        health::record(&self.host, !health::no_answer(status));
        let retry_after =
            hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, "retry-after")
                .ok()
                .flatten();
        let body = call_response_body(body_size);
        let (retry_s, policy) = self.worker.try_borrow().ok().map_or((5, None), |w| {
            let retry = w.config.as_ref().map_or(5, |c| c.retry_after_s);
            (retry, w.policy.clone())
        });
        let outcome = challenge::outcome(
            status,
            retry_after
                .as_deref()
                .and_then(|r| std::str::from_utf8(r).ok()),
            &body,
            self.browser.as_ref().map(|b| (b, policy.as_deref())),
            pending.failure_mode,
            retry_s,
        );
        match outcome {
            Outcome::Reply(reply) => {
                match reply.status {
                    402 => self.host.count(Metric::Challenges),
                    503 => {
                        self.host.count(Metric::Denied("unavailable"));
                        self.host.log(
                            Level::Warn,
                            format_args!("lightning-wall: challenge failed (status {status:?})"),
                        );
                    }
                    _ => self.host.count(Metric::Denied("rate_limited")),
                }
                self.send(reply);
            }
            Outcome::Pass => {
                let _ = hostcalls::resume_http_request();
            }
        }
    }
}

impl HttpContext for WallRequest {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
        let refuse_own = self
            .worker
            .try_borrow()
            .ok()
            .and_then(|w| w.config.as_ref().map(|c| c.refuse_own_headers))
            .unwrap_or(false);
        // Names compared without case: nginx hands the map over as the client spelled it.
        for (name, _) in &headers {
            if name
                .get(..header::OWN_PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(header::OWN_PREFIX))
            {
                if refuse_own {
                    // This host forwards a removed header anyway: refuse the request.
                    self.host.count(Metric::Denied("own_header"));
                    send_reply(&Reply::error(
                        400,
                        "own_header",
                        "x-lightning-wall-* request headers are set by the wall only",
                    ));
                    return Action::Pause;
                }
                let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
            }
        }
        let one = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_slice())
        };
        let all = |n: &str| -> Vec<&[u8]> {
            headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_slice())
                .collect()
        };
        let method = utf8(one(":method").unwrap_or_default());
        let path = utf8(one(":path").unwrap_or_default());
        // The client's host: Envoy has it in `:authority` (HTTP/1.1's Host becomes it); nginx
        // puts its own `server_name:port` there and leaves the client's in `host`.
        let authority = utf8(one("host").or(one(":authority")).unwrap_or_default());
        let facts = RequestFacts {
            method: &method,
            path: &path,
            authority: &authority,
            authorization: all("authorization"),
            cookies: all("cookie"),
            sec_fetch_site: one("sec-fetch-site"),
            sec_fetch_mode: one("sec-fetch-mode"),
            origin: one("origin"),
            referer: one("referer"),
        };
        self.browser = Browser::of(one("accept"), &method, &path, &authority);
        let Ok(mut w) = self.worker.try_borrow_mut() else {
            return self.unavailable(FailureMode::Closed);
        };
        let policy = w.policy.clone();
        // The last sync failed: do not make every new visitor wait for a call-out timeout.
        let sidecar_down = w.sync.bootstrapped() && !w.sync.reachable;
        let Some(config) = w.config.clone() else {
            return self.unavailable(FailureMode::Closed);
        };
        let decision =
            decision::decide(policy.as_deref(), &config, &facts, &self.host, &mut w.state);
        drop(w);
        match decision {
            Decision::Pass => Action::Continue,
            Decision::Allow(grant) => {
                self.allow(grant);
                Action::Continue
            }
            Decision::ConfirmHeld(pending) => {
                let Some(cluster) = config.wall_cluster.as_deref() else {
                    self.host.count(Metric::Denied("proof_missing"));
                    self.send(Reply::error(
                        401,
                        "proof_missing",
                        "no proof yet: fetch the credential from the deposit or payment endpoint under /.well-known/lightning-wall/",
                    ));
                    return Action::Pause;
                };
                let macaroon = pending.credential.split(':').next().unwrap_or_default();
                let auth = format!("L402 {macaroon}:");
                match dispatch_to(
                    cluster,
                    &config,
                    "GET",
                    decision::confirm_url(pending.grant.mode),
                    None,
                    Some(&auth),
                ) {
                    Some(token) => {
                        self.confirm = Some((token, pending));
                        Action::Pause
                    }
                    None => {
                        let mode = policy
                            .as_ref()
                            .and_then(|p| p.routes.get(pending.grant.route))
                            .map_or(FailureMode::Closed, |r| r.failure_mode);
                        self.unavailable(mode)
                    }
                }
            }
            Decision::Reply(reply) => {
                self.reply_after_verdicts(reply);
                Action::Pause
            }
            Decision::Challenge(c) => {
                if sidecar_down || health::is_down(&self.host) {
                    return self.unavailable(c.failure_mode);
                }
                // Read here, not for every request: only a challenge needs the client's address.
                let client = client_ip();
                let ip = client.as_ref().map(|(_, ip)| *ip);
                if let Some(reply) = decision::mint_limited(policy.as_deref(), ip, &self.host) {
                    self.send(reply);
                    return Action::Pause;
                }
                // The sidecar counts the same networks; an unknown address is `0.0.0.0` there too.
                let ip = client.as_ref().map_or("0.0.0.0", |(addr, _)| {
                    crate::engine::client_addr::bare(addr)
                });
                let body = serde_json::to_vec(&ChallengeRequest {
                    route_id: c.route_id.clone(),
                    client_ip: ip.to_owned(),
                })
                .unwrap_or_default();
                match dispatch(&config, "POST", paths::CHALLENGE, Some(&body)) {
                    Some(token) => {
                        self.challenge = Some(PendingChallenge {
                            token,
                            failure_mode: c.failure_mode,
                        });
                        Action::Pause
                    }
                    None => self.unavailable(c.failure_mode),
                }
            }
        }
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        if self.withhold_if_undecided() {
            // Where the host asks (Envoy-like hosts), the upstream's response is replaced.
            self.send(Reply::unavailable(self.retry_after_s()));
            return Action::Pause;
        }
        let get = |n: &str| {
            hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, n)
                .ok()
                .flatten()
        };
        let verdict = get(header::VERDICT);
        let reward = get(header::REWARD);
        let reward_id = get(header::REWARD_ID);
        // Verdicts and rewards are for the filter only: never let them reach the client.
        for (name, present) in [
            (header::VERDICT, verdict.is_some()),
            (header::REWARD, reward.is_some()),
            (header::REWARD_ID, reward_id.is_some()),
        ] {
            if present {
                let _ = hostcalls::remove_map_value(MapType::HttpResponseHeaders, name);
            }
        }
        if let Some(credential) = self.credential_out.take() {
            let _ = hostcalls::set_map_value(
                MapType::HttpResponseHeaders,
                header::CREDENTIAL,
                Some(&credential),
            );
            let _ = hostcalls::set_map_value(
                MapType::HttpResponseHeaders,
                "cache-control",
                Some("no-store"),
            );
        }
        // The verdict before the reward: a response that forfeits the deposit earns nothing
        // (the sidecar refuses rewards for a forfeited deposit, and sees the verdict first).
        if let Some(grant) = self.grant.as_ref() {
            // Only deposit grants look at the status (error storms): pay requests skip the read.
            let status = if grant.mode == RouteMode::Deposit {
                get(":status").and_then(|s| std::str::from_utf8(&s).ok()?.parse().ok())
            } else {
                None
            };
            let upstream = UpstreamVerdict::parse(verdict.as_deref());
            if let Ok(mut w) = self.worker.try_borrow_mut() {
                let policy = w.policy.clone();
                response::on_response(
                    policy.as_deref(),
                    grant,
                    status,
                    upstream,
                    &self.host,
                    &mut w.state,
                );
            }
        }
        let reward = UpstreamReward::parse(reward.as_deref(), reward_id.as_deref());
        if reward != UpstreamReward::Absent
            && let Ok(mut w) = self.worker.try_borrow_mut()
        {
            response::on_reward(
                self.grant.as_ref(),
                &reward,
                &self.host,
                &mut w.state.outbox,
            );
        }
        // A verdict read from this response reaches the sidecar before the client sees the
        // response where the host allows a call-out here (Envoy); elsewhere the tick sends it.
        let request_callouts_only = self
            .worker
            .try_borrow()
            .ok()
            .and_then(|w| w.config.as_ref().map(|c| c.request_callouts_only))
            .unwrap_or(true);
        if request_callouts_only {
            return Action::Continue;
        }
        match self.send_verdicts_then(AfterVerdict::ResumeResponse) {
            Ok(()) => Action::Pause,
            Err(_) => Action::Continue,
        }
    }

    fn on_http_response_body(&mut self, body_size: usize, _: bool) -> Action {
        // ngx_wasm_module skips the headers callback of such a response but delivers its body:
        // the body is the walled page, so it goes no further (the client gets a cut response).
        if self.withhold_if_undecided() {
            let _ = crate::raw_response_body::empty_response_body(body_size);
        }
        Action::Continue
    }
}
