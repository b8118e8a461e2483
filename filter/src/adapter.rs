//! The thin proxy-wasm layer: reads headers (as bytes) and properties, hands them to the
//! [`engine`](crate::engine), and carries out what it decides (forward, local reply, call-out).
//! It must never decide anything itself and never call an SDK method that panics on a host
//! status (the `Context`/`HttpContext` convenience getters do): only `hostcalls` with results.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType};

use crate::engine::callout::{CallAnswer, CallOut, Cluster, Outgoing};
use crate::engine::config::PluginConfig;
use crate::engine::reply::Reply;
use crate::engine::request::{self, RequestState, Step};
use crate::engine::response::UpstreamHeaders;
use crate::engine::sidecar_call::{Call, CallKind};
use crate::engine::worker::Worker;
use crate::wasm_host::WasmHost;

proxy_wasm::main! {{
    // set_log_level installs the SDK's panic hook, which unwraps the log call; ours replaces it.
    proxy_wasm::set_log_level(LogLevel::Info);
    std::panic::set_hook(Box::new(|info| {
        let _ = hostcalls::log(LogLevel::Critical, &format!("lightning-wall filter panicked: {info}"));
    }));
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(WallRoot {
            worker: Rc::new(RefCell::new(Worker::new())),
            host: WasmHost::default(),
            calls: HashMap::new(),
        })
    });
}}

type SharedWorker = Rc<RefCell<Worker>>;

/// Dispatches a call-out; `None` when the host refused it (unknown cluster…).
fn dispatch(config: &PluginConfig, call: &Outgoing<'_>, timeout: Duration) -> Option<u32> {
    let cluster = match call.cluster {
        Cluster::Sidecar => config.sidecar_cluster.as_str(),
        Cluster::Wall => config.wall_cluster.as_deref()?,
    };
    // The bearer token is for the internal listener only: never sent to the public one.
    let bearer = match call.cluster {
        Cluster::Sidecar => config.bearer_token.as_ref().map(|t| format!("Bearer {t}")),
        Cluster::Wall => None,
    };
    let mut headers = vec![
        (":method", call.method),
        (":path", call.path),
        (":authority", config.sidecar_authority.as_str()),
    ];
    if call.body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    if let Some(authorization) = call.authorization.or(bearer.as_deref()) {
        headers.push(("authorization", authorization));
    }
    hostcalls::dispatch_http_call(cluster, headers, call.body, vec![], timeout).ok()
}

fn call_response_header(name: &str) -> Option<Vec<u8>> {
    hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, name)
        .ok()
        .flatten()
}

fn call_response_body(size: usize) -> Vec<u8> {
    hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, size)
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn status(value: Option<Vec<u8>>) -> Option<u16> {
    std::str::from_utf8(&value?).ok()?.parse().ok()
}

struct WallRoot {
    worker: SharedWorker,
    host: WasmHost,
    /// Root call-outs in flight, by token.
    calls: HashMap<u32, CallKind>,
}

impl WallRoot {
    fn issue(&mut self, w: &mut Worker, calls: Vec<Call>) {
        for call in calls {
            let timeout = w.call_timeout(call.kind);
            let sent = w
                .config
                .as_ref()
                .and_then(|c| dispatch(c, &call.outgoing(), timeout));
            match sent {
                Some(token) => {
                    self.calls.insert(token, call.kind);
                }
                None => w.call_failed(call.kind, &self.host),
            }
        }
    }
}

impl Context for WallRoot {
    fn on_http_call_response(&mut self, token: u32, _: usize, body_size: usize, _: usize) {
        let Some(kind) = self.calls.remove(&token) else {
            return;
        };
        let worker = self.worker.clone();
        let Ok(mut w) = worker.try_borrow_mut() else {
            return;
        };
        let status = status(call_response_header(":status"));
        let calls = w.on_answer(kind, status, call_response_body(body_size), &self.host);
        self.issue(&mut w, calls);
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
            Ok(mut w) => w.config = Some(config),
            Err(_) => return false,
        }
        // No call-out here: the first tick bootstraps. nginx's ngx_wasm_module traps on a
        // call-out from on_configure, which kills the worker (docs/filter.md "Hosts").
        true
    }

    fn on_tick(&mut self) {
        self.host.flush_metrics();
        let worker = self.worker.clone();
        let Ok(mut w) = worker.try_borrow_mut() else {
            return;
        };
        let calls = w.tick(&self.host);
        self.issue(&mut w, calls);
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(WallRequest {
            worker: self.worker.clone(),
            host: self.host.clone(),
            request: RequestState::default(),
            waiting: None,
        }))
    }
}

/// Which phase of a request a call-out paused.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Request,
    Response,
}

struct WallRequest {
    worker: SharedWorker,
    host: WasmHost,
    request: RequestState,
    /// The call-out this request waits on: its token, the call, the phase it paused.
    waiting: Option<(u32, CallOut, Phase)>,
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
    /// Carries out the engine's step in `phase`; `paused` when the host waits for a resume
    /// (the step follows a call-out answer) rather than for the callback's return value.
    fn carry_out(&mut self, step: Step, phase: Phase, paused: bool) -> Action {
        if self.request.withheld() && !matches!(step, Step::CallOut(_)) {
            // The response is already on its way to the client, withheld.
            return Action::Continue;
        }
        match step {
            Step::Forward(headers) => {
                let map = match phase {
                    Phase::Request => MapType::HttpRequestHeaders,
                    Phase::Response => MapType::HttpResponseHeaders,
                };
                for (name, value) in &headers {
                    let _ = hostcalls::set_map_value(map, name, Some(value.as_ref()));
                }
                match (paused, phase) {
                    (false, _) => {}
                    (true, Phase::Request) => {
                        let _ = hostcalls::resume_http_request();
                    }
                    (true, Phase::Response) => {
                        let _ = hostcalls::resume_http_response();
                    }
                }
                Action::Continue
            }
            Step::Reply(reply) => {
                send_reply(&reply);
                Action::Pause
            }
            Step::CallOut(call) => {
                let worker = self.worker.clone();
                let Ok(mut w) = worker.try_borrow_mut() else {
                    let busy = self.request.worker_busy(&self.host);
                    return self.carry_out(busy, phase, paused);
                };
                let sent = w
                    .config
                    .as_ref()
                    .and_then(|c| dispatch(c, &call.outgoing(), c.timeout));
                if let Some(token) = sent {
                    self.waiting = Some((token, call, phase));
                    return Action::Pause;
                }
                let step = self.request.not_sent(call, &mut w, &self.host);
                drop(w);
                self.carry_out(step, phase, paused)
            }
        }
    }
}

impl WallRequest {
    /// Whether the upstream's response must be withheld: it began while this request still
    /// waited on a call-out of its request phase (`RequestState::withhold`).
    fn withholding(&mut self) -> Option<Option<Reply>> {
        let undecided = matches!(self.waiting, Some((_, _, Phase::Request)));
        if !undecided && !self.request.withheld() {
            return None;
        }
        let mut worker = self.worker.try_borrow_mut().ok();
        Some(self.request.withhold(worker.as_deref_mut(), &self.host))
    }
}

impl Context for WallRequest {
    fn on_http_call_response(&mut self, token: u32, _: usize, body_size: usize, _: usize) {
        let Some((t, call, phase)) = self.waiting.take() else {
            return;
        };
        if t != token {
            self.waiting = Some((t, call, phase));
            return;
        }
        let retry_after = call_response_header("retry-after");
        let body = call_response_body(body_size);
        let answer = CallAnswer {
            status: status(call_response_header(":status")),
            retry_after: retry_after.as_deref(),
            body: &body,
        };
        let step = match self.worker.try_borrow_mut() {
            Ok(mut w) => self.request.on_answer(call, &answer, &mut w, &self.host),
            Err(_) => self.request.worker_busy(&self.host),
        };
        self.carry_out(step, phase, true);
    }
}

impl HttpContext for WallRequest {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
        let step = match self.worker.try_borrow_mut() {
            Ok(mut w) => match request::own_headers(&headers, &w, &self.host) {
                Ok(own) => {
                    for name in own {
                        let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
                    }
                    self.request
                        .on_request_headers(&headers, &mut w, &self.host)
                }
                Err(refused) => Step::Reply(refused),
            },
            Err(_) => self.request.worker_busy(&self.host),
        };
        self.carry_out(step, Phase::Request, false)
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        if let Some(reply) = self.withholding() {
            // Where the host asks (Envoy-like hosts), the upstream's response is replaced.
            if let Some(reply) = reply {
                send_reply(&reply);
            }
            return Action::Pause;
        }
        let get = |n: &str| {
            hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, n)
                .ok()
                .flatten()
        };
        let upstream = UpstreamHeaders::read(get);
        // Verdicts and rewards are for the filter only: never let them reach the client.
        for name in upstream.present() {
            let _ = hostcalls::remove_map_value(MapType::HttpResponseHeaders, name);
        }
        for (name, value) in self.request.credential_headers() {
            let _ = hostcalls::set_map_value(MapType::HttpResponseHeaders, name, Some(&value));
        }
        let step = match self.worker.try_borrow_mut() {
            Ok(mut w) => self.request.on_response_headers(
                &upstream,
                || status(get(":status")),
                &mut w,
                &self.host,
            ),
            Err(_) => return Action::Continue,
        };
        self.carry_out(step, Phase::Response, false)
    }

    fn on_http_response_body(&mut self, body_size: usize, _: bool) -> Action {
        // ngx_wasm_module skips the headers callback of such a response but delivers its body:
        // the body is the walled page, so it goes no further (the client gets a cut response).
        if self.withholding().is_some() {
            let _ = crate::raw_response_body::empty_response_body(body_size);
        }
        Action::Continue
    }
}
