//! A test API in the style of proxy-wasm-go-sdk's `proxytest`: build a host with a plugin
//! configuration and N worker VMs, a manual clock, call-out clusters; drive requests through
//! the filter step by step or in one call; inspect local replies, forwarded headers, logs,
//! metrics and shared data. Synchronous and deterministic: nothing happens between calls.

// A test API: a test that asks for a worker that does not exist, or a machine that cannot start
// a tokio runtime, is reported by panicking, as proxytest does.
#![allow(clippy::indexing_slicing, clippy::panic)]

mod builder;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::callout::{CallRequest, CallResponse, Cluster, PendingCall};
use crate::clock::Clock;
use crate::headers::HeaderMap;
use crate::runtime::Runtime;
use crate::shared::{HostShared, LogEntry, MetricValue};
use crate::state::VmEnv;
use crate::stream::{LocalReply, Message, StreamInfo, StreamState};
use crate::vm::Vm;

pub use builder::TestHostBuilder;

/// Where the built `.wasm` files are: `$LIGHTNING_WALL_WASM_DIR` or `<workspace>/target/wasm`.
pub fn wasm_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("LIGHTNING_WALL_WASM_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("wasm")
}

/// The path of a built module, or an error telling the reader to run `make wasm`.
pub fn wasm_file(name: &str) -> Result<PathBuf, String> {
    let p = wasm_dir().join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "{} not found: run `make wasm` first (or set LIGHTNING_WALL_WASM_DIR)",
            p.display()
        ))
    }
}

/// A request to send through the filter.
#[derive(Clone, Debug)]
pub struct Request {
    pub headers: HeaderMap,
    pub body_chunks: Vec<Vec<u8>>,
    pub trailers: Option<HeaderMap>,
    pub source: SocketAddr,
}

impl Request {
    pub fn new(method: &str, path: &str) -> Self {
        Request {
            headers: HeaderMap::from_pairs([
                (":method", method),
                (":path", path),
                (":authority", "example.com"),
                (":scheme", "http"),
            ]),
            body_chunks: Vec::new(),
            trailers: None,
            source: SocketAddr::from(([192, 0, 2, 10], 51000)),
        }
    }

    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    pub fn post(path: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::new("POST", path).body(body)
    }

    pub fn header(mut self, k: &str, v: impl AsRef<[u8]>) -> Self {
        self.headers.add(k.as_bytes(), v.as_ref());
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body_chunks = vec![body.into()];
        self
    }

    /// The body arrives in these chunks (each a separate `on_request_body`).
    pub fn chunks(mut self, chunks: Vec<Vec<u8>>) -> Self {
        self.body_chunks = chunks;
        self
    }

    pub fn from(mut self, source: SocketAddr) -> Self {
        self.source = source;
        self
    }
}

/// An in-flight request: which worker VM serves it and its context id there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamHandle {
    pub worker: usize,
    pub context: u32,
}

/// Everything one `send` observed.
#[derive(Debug)]
pub struct Exchange {
    pub handle: StreamHandle,
    /// The request as it reached the upstream (None if the filter answered or reset).
    pub upstream_request: Option<Message>,
    /// The response as the client got it (None if the stream was reset).
    pub response: Option<Message>,
    pub local_reply: Option<LocalReply>,
    pub reset: bool,
    /// The VM failed while serving this request.
    pub failed: bool,
}

pub struct TestHost {
    workers: Vec<Vm>,
    shared: Arc<HostShared>,
    clock: Clock,
    clusters: HashMap<String, Cluster>,
    next_worker: usize,
    next_tick: Vec<Option<(Duration, u64)>>,
    /// Call-outs to Manual clusters, waiting for the test.
    pending: Vec<PendingCall>,
    tokio: Option<tokio::runtime::Runtime>,
    env: VmEnv,
}

impl TestHost {
    pub fn builder(runtime: Arc<Runtime>) -> TestHostBuilder {
        TestHostBuilder::new(runtime)
    }

    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    pub fn vm(&self, worker: usize) -> &Vm {
        &self.workers[worker]
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    // ---- driving a stream step by step ----

    /// Creates a context on the next worker (round-robin) and delivers the request headers.
    pub fn start(&mut self, req: &Request, end_stream: bool) -> StreamHandle {
        let w = self.next_worker % self.workers.len();
        self.next_worker = self.next_worker.wrapping_add(1);
        self.start_on(w, req, end_stream)
    }

    pub fn start_on(&mut self, worker: usize, req: &Request, end_stream: bool) -> StreamHandle {
        let info = StreamInfo {
            source: req.source,
            start_nanos: self.clock.now_nanos(),
            ..StreamInfo::default()
        };
        let vm = &mut self.workers[worker];
        let context = vm.create_stream(info);
        vm.request_headers(context, req.headers.clone(), end_stream);
        self.pump();
        StreamHandle { worker, context }
    }

    pub fn request_body(&mut self, h: StreamHandle, chunk: &[u8], end_stream: bool) {
        self.workers[h.worker].request_body(h.context, chunk, end_stream);
        self.pump();
    }

    pub fn request_trailers(&mut self, h: StreamHandle, trailers: HeaderMap) {
        self.workers[h.worker].request_trailers(h.context, trailers);
        self.pump();
    }

    pub fn response_headers(&mut self, h: StreamHandle, headers: HeaderMap, end_stream: bool) {
        self.workers[h.worker].response_headers(h.context, headers, end_stream);
        self.pump();
    }

    pub fn response_body(&mut self, h: StreamHandle, chunk: &[u8], end_stream: bool) {
        self.workers[h.worker].response_body(h.context, chunk, end_stream);
        self.pump();
    }

    /// The upstream answers with `resp` (headers must include `:status`).
    pub fn respond(&mut self, h: StreamHandle, resp: &Message) {
        let no_body = resp.body.is_empty() && resp.trailers.is_empty();
        self.response_headers(h, resp.headers.clone(), no_body);
        if !resp.body.is_empty() {
            self.response_body(h, &resp.body, resp.trailers.is_empty());
        }
        if !resp.trailers.is_empty() {
            self.workers[h.worker].response_trailers(h.context, resp.trailers.clone());
            self.pump();
        }
    }

    pub fn stream(&self, h: StreamHandle) -> Option<&StreamState> {
        self.workers[h.worker].stream(h.context)
    }

    /// The request as it left the filter, once it has completely.
    pub fn upstream_request(&self, h: StreamHandle) -> Option<&Message> {
        self.stream(h).and_then(StreamState::upstream_request)
    }

    /// The response as the client gets it, once complete.
    pub fn downstream_response(&self, h: StreamHandle) -> Option<&Message> {
        self.stream(h).and_then(StreamState::downstream_response)
    }

    /// Ends the stream (`on_log`, `on_done`, `on_delete`) and returns its final state.
    pub fn finish(&mut self, h: StreamHandle) -> Option<StreamState> {
        let s = self.workers[h.worker].finish_stream(h.context);
        self.pump();
        s
    }

    // ---- call-outs ----

    /// Call-outs waiting for the test (Manual clusters).
    pub fn pending_calls(&self) -> &[PendingCall] {
        &self.pending
    }

    /// Answers a pending call-out by token.
    pub fn answer(&mut self, worker: usize, token: u32, response: CallResponse) -> bool {
        let Some(i) = self
            .pending
            .iter()
            .position(|p| p.worker == worker && p.token == token)
        else {
            return false;
        };
        self.pending.remove(i);
        self.workers[worker].deliver_call_response(token, response);
        self.pump();
        true
    }

    /// Answers every pending call-out with `response`.
    pub fn answer_all(&mut self, response: CallResponse) {
        for p in std::mem::take(&mut self.pending) {
            self.workers[p.worker].deliver_call_response(p.token, response.clone());
        }
        self.pump();
    }

    /// Delivers queue notifications and answers call-outs of Handler/Url clusters until nothing
    /// is left to do. Every delivery happens here, outside any guest call.
    fn pump(&mut self) {
        for _ in 0..100_000 {
            let mut progressed = false;
            for w in 0..self.workers.len() {
                let mut ready = self.workers[w].take_queue_ready();
                ready.extend(self.shared.take_inbox(w));
                for (ctx, token) in ready {
                    self.workers[w].queue_ready(ctx, token);
                    progressed = true;
                }
                for call in self.workers[w].take_pending_calls() {
                    progressed = true;
                    match self.clusters.get(&call.request.cluster).cloned() {
                        Some(Cluster::Handler(h)) => {
                            let resp = h(&call.request);
                            self.workers[w].deliver_call_response(call.token, resp);
                        }
                        Some(Cluster::Url(url)) => {
                            let resp = self.http(&url, &call.request);
                            self.workers[w].deliver_call_response(call.token, resp);
                        }
                        Some(Cluster::Manual) | None => self.pending.push(call),
                    }
                }
            }
            self.sync_ticks();
            if !progressed {
                return;
            }
        }
        panic!("test host: the guest keeps queueing work (queue notifications or call-outs)");
    }

    fn http(&mut self, url: &str, req: &CallRequest) -> CallResponse {
        let rt = self.tokio.get_or_insert_with(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("test host: cannot start a tokio runtime: {e}"))
        });
        let client = crate::callout::http_client();
        rt.block_on(crate::callout::send_http(&client, url, req))
    }

    // ---- time ----

    // Tick timers run on the monotonic clock, as Envoy's do: a wall-clock step moves none.
    fn sync_ticks(&mut self) {
        let now = self.clock.monotonic_nanos();
        for (w, vm) in self.workers.iter().enumerate() {
            let period = vm.tick_period();
            let slot = &mut self.next_tick[w];
            match (period, *slot) {
                (None, _) => *slot = None,
                (Some(p), Some((old, _))) if old == p => {}
                (Some(p), _) => *slot = Some((p, now + p.as_nanos() as u64)),
            }
        }
    }

    /// Moves the manual clock forward, firing every tick that falls due, in time order.
    pub fn advance(&mut self, by: Duration) {
        let target = self.clock.monotonic_nanos() + by.as_nanos() as u64;
        loop {
            self.sync_ticks();
            let due = self
                .next_tick
                .iter()
                .enumerate()
                .filter_map(|(w, t)| t.map(|(p, at)| (at, w, p)))
                .filter(|(at, _, _)| *at <= target)
                .min();
            let Some((at, w, p)) = due else { break };
            let now = self.clock.monotonic_nanos();
            if at > now {
                self.clock.advance(Duration::from_nanos(at - now));
            }
            self.next_tick[w] = Some((p, at + p.as_nanos() as u64));
            self.workers[w].tick();
            self.pump();
        }
        let now = self.clock.monotonic_nanos();
        if target > now {
            self.clock.advance(Duration::from_nanos(target - now));
        }
    }

    /// Fires `on_tick` once on every worker now.
    pub fn tick_all(&mut self) {
        for w in 0..self.workers.len() {
            self.workers[w].tick();
        }
        self.pump();
    }

    // ---- one-call exchange ----

    /// Sends `req` through the filter; if it reaches the upstream, `upstream` answers it.
    pub fn send(&mut self, req: &Request, upstream: impl FnOnce(&Message) -> Message) -> Exchange {
        let no_body = req.body_chunks.is_empty() && req.trailers.is_none();
        let h = self.start(req, no_body);
        let n = req.body_chunks.len();
        for (i, chunk) in req.body_chunks.iter().enumerate() {
            let last = i + 1 == n && req.trailers.is_none();
            self.request_body(h, chunk, last);
        }
        if let Some(t) = &req.trailers {
            self.request_trailers(h, t.clone());
        }
        let upstream_request = self.upstream_request(h).cloned();
        if let Some(up) = upstream_request
            .as_ref()
            .filter(|_| self.stream(h).is_some_and(StreamState::awaiting_upstream))
        {
            let resp = upstream(up);
            self.respond(h, &resp);
        }
        self.complete(h, upstream_request)
    }

    /// Finishes `h` and reports what happened (for streams driven step by step).
    pub fn complete(&mut self, h: StreamHandle, upstream_request: Option<Message>) -> Exchange {
        let upstream_request = upstream_request.or_else(|| self.upstream_request(h).cloned());
        let s = self.finish(h);
        let (response, local_reply, reset, failed) = match &s {
            Some(s) => (
                s.downstream_response().cloned(),
                s.local_reply().cloned(),
                s.was_reset(),
                s.failed(),
            ),
            None => (None, None, false, false),
        };
        Exchange {
            handle: h,
            upstream_request,
            response,
            local_reply,
            reset,
            failed,
        }
    }

    // ---- inspection ----

    pub fn logs(&self) -> Vec<LogEntry> {
        self.shared.logs()
    }

    /// Log messages containing `needle`.
    pub fn logs_containing(&self, needle: &str) -> Vec<LogEntry> {
        self.logs()
            .into_iter()
            .filter(|l| l.message.contains(needle))
            .collect()
    }

    pub fn metric(&self, name: &str) -> Option<MetricValue> {
        self.shared.metrics.by_name(name)
    }

    pub fn shared_data(&self, key: &str) -> Option<Vec<u8>> {
        self.shared
            .data
            .get(&self.env.plugin.vm_id, key.as_bytes())
            .map(|(v, _)| v)
    }

    /// Every shared-data key of this plugin's vm_id (Envoy cannot delete them, so tests check
    /// that a filter keeps their number bounded).
    pub fn shared_data_keys(&self) -> Vec<String> {
        self.shared
            .data
            .snapshot(&self.env.plugin.vm_id)
            .into_keys()
            .map(|k| String::from_utf8_lossy(&k).into_owned())
            .collect()
    }

    pub fn set_shared_data(&self, key: &str, value: &[u8]) {
        self.shared
            .data
            .set(&self.env.plugin.vm_id, key.as_bytes(), value, 0);
    }

    pub fn is_failed(&self, worker: usize) -> bool {
        self.workers[worker].is_failed()
    }

    pub fn tick_period(&self, worker: usize) -> Option<Duration> {
        self.workers[worker].tick_period()
    }
}

/// A plain upstream for tests: 200 with the request's path as body and `x-upstream: 1`.
pub fn echo_upstream(req: &Message) -> Message {
    let mut headers = HeaderMap::from_pairs([(":status", "200"), ("x-upstream", "1")]);
    headers.add(b"content-type", b"text/plain");
    Message {
        headers,
        body: req.headers.get_bytes(b":path").unwrap_or_default().to_vec(),
        trailers: HeaderMap::new(),
    }
}
