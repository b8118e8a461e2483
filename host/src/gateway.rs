//! The development gateway behind `lightning-wall-host serve`: a real HTTP/1.1 server (hyper)
//! that runs each request through the filter on one of N worker VMs (round-robin, like Envoy's
//! worker threads), forwards it to the upstream and runs the response back through the filter.
//! It is for local demos and benchmarks only; production runs the filter inside Envoy. Request
//! and response bodies are buffered whole (a development simplification).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::callout::{CallResponse, HttpClient, PendingCall, http_client, send_http};
use crate::clock::Clock;
use crate::headers::HeaderMap;
use crate::plugin::PluginConfig;
use crate::runtime::Runtime;
use crate::shared::HostShared;
use crate::state::VmEnv;
use crate::stream::{Message, StreamInfo};
use crate::vm::Vm;

/// How long a request may wait on the filter (paused, no progress) before the gateway gives up
/// with a 504, like Envoy's stream idle timeout.
const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    /// Base URL of the upstream (`http://127.0.0.1:3000`).
    pub upstream: String,
    /// Other upstreams by path prefix, first match wins, before `upstream`: Envoy's route table
    /// in its simplest form (the demo sends `/.well-known/lightning-wall/` to the sidecar).
    pub routes: Vec<(String, String)>,
    /// The filter; `None` forwards without one (the baseline for benchmarks).
    pub wasm: Option<PathBuf>,
    pub plugin: PluginConfig,
    /// Call-out clusters: name -> base URL.
    pub clusters: Vec<(String, String)>,
    pub workers: usize,
}

struct Worker {
    vm: Mutex<Vm>,
    /// Woken after every change to this worker's streams.
    progress: Notify,
    /// Woken when another worker enqueued for this one.
    inbox: Notify,
}

struct Gateway {
    workers: Vec<Arc<Worker>>,
    next: AtomicUsize,
    client: HttpClient,
    upstream: String,
    routes: Vec<(String, String)>,
    clusters: HashMap<String, String>,
    shared: Arc<HostShared>,
}

fn lock(w: &Worker) -> MutexGuard<'_, Vm> {
    // A guest trap is an Err, never a panic, so a poisoned lock only follows a host bug; the VM
    // state is still consistent between guest calls, so keep serving.
    w.vm.lock().unwrap_or_else(|e| e.into_inner())
}

type Body = Full<Bytes>;

/// A running gateway (tests and `serve`).
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<()>,
    /// What the worker VMs share (shared data, metrics), for inspection.
    pub shared: Arc<HostShared>,
}

impl RunningGateway {
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Loads the filter (if any), starts the worker VMs and serves on `config.listen`.
pub async fn start(config: GatewayConfig) -> anyhow::Result<RunningGateway> {
    let runtime = match &config.wasm {
        Some(path) => Some(Arc::new(Runtime::from_file(path)?)),
        None => None,
    };
    start_with(config, runtime).await
}

/// Like [`start`] with an already compiled module (`config.wasm` is then ignored).
pub async fn start_with(
    config: GatewayConfig,
    runtime: Option<Arc<Runtime>>,
) -> anyhow::Result<RunningGateway> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener
        .local_addr()
        .context("reading the listening address")?;
    let gw = Arc::new(build(&config, runtime.as_deref())?);
    for (w, worker) in gw.workers.iter().enumerate() {
        tokio::spawn(worker_loop(Arc::clone(&gw), w, Arc::clone(worker)));
    }
    if !gw.workers.is_empty() {
        let wakers: Vec<Arc<Worker>> = gw.workers.clone();
        gw.shared.set_waker(Arc::new(move |w| {
            if let Some(worker) = wakers.get(w) {
                worker.inbox.notify_one();
            }
        }));
    }
    let shared = Arc::clone(&gw.shared);
    let task = tokio::spawn(accept_loop(listener, gw));
    Ok(RunningGateway { addr, task, shared })
}

fn build(config: &GatewayConfig, runtime: Option<&Runtime>) -> anyhow::Result<Gateway> {
    let shared = HostShared::new(false);
    let mut workers = Vec::new();
    if let Some(runtime) = runtime {
        let env = VmEnv {
            plugin: Arc::new(config.plugin.clone()),
            shared: Arc::clone(&shared),
            clock: Clock::system(),
            clusters: Arc::new(config.clusters.iter().map(|(n, _)| n.clone()).collect()),
            call_time_limit: Duration::from_secs(1),
            memory_limit: crate::state::DEFAULT_MEMORY_LIMIT,
            semantics: Arc::new(crate::semantics::HostSemantics::envoy()),
        };
        for w in 0..config.workers.max(1) {
            let vm = Vm::start(runtime, w, env.clone())
                .with_context(|| format!("starting worker VM {w}"))?;
            workers.push(Arc::new(Worker {
                vm: Mutex::new(vm),
                progress: Notify::new(),
                inbox: Notify::new(),
            }));
        }
    }
    Ok(Gateway {
        workers,
        next: AtomicUsize::new(0),
        client: http_client(),
        upstream: config.upstream.trim_end_matches('/').to_string(),
        routes: config
            .routes
            .iter()
            .map(|(prefix, url)| (prefix.clone(), url.trim_end_matches('/').to_string()))
            .collect(),
        clusters: config.clusters.iter().cloned().collect(),
        shared,
    })
}

async fn accept_loop(listener: TcpListener, gw: Arc<Gateway>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().unwrap_or(peer);
        let gw = Arc::clone(&gw);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let gw = Arc::clone(&gw);
                async move { handle(gw, req, peer, local).await }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

/// The stream was reset by the filter: hyper closes the connection without a response.
#[derive(Debug)]
struct StreamReset;

impl std::fmt::Display for StreamReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stream reset by the filter")
    }
}

impl std::error::Error for StreamReset {}

/// Connection-specific headers an HTTP proxy must not forward (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers not copied onto an outgoing message: hop-by-hop ones, and content-length, which hyper
/// recomputes from the buffered body (the filter may have changed it).
fn skip_outgoing(name: &[u8]) -> bool {
    name.first() == Some(&b':')
        || name.eq_ignore_ascii_case(b"content-length")
        || HOP_BY_HOP
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
}

fn request_headers(parts: &hyper::http::request::Parts) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.add(b":method", parts.method.as_str().as_bytes());
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    h.add(b":path", path.as_bytes());
    // Envoy's HTTP/1 codec turns Host into :authority.
    let authority = parts
        .headers
        .get(hyper::header::HOST)
        .map(|v| v.as_bytes().to_vec())
        .or_else(|| {
            parts
                .uri
                .authority()
                .map(|a| a.as_str().as_bytes().to_vec())
        })
        .unwrap_or_default();
    h.add(b":authority", &authority);
    h.add(b":scheme", b"http");
    for (k, v) in parts.headers.iter() {
        if k == hyper::header::HOST || HOP_BY_HOP.contains(&k.as_str()) {
            continue;
        }
        h.add(k.as_str().as_bytes(), v.as_bytes());
    }
    // What Envoy's connection manager adds before any filter runs.
    h.replace(b"x-forwarded-proto", b"http");
    if !h.contains("x-request-id") {
        let mut id = [0u8; 16];
        if getrandom::fill(&mut id).is_ok() {
            h.add(b"x-request-id", hex(&id).as_bytes());
        }
    }
    h
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn to_response(m: &Message) -> hyper::Response<Body> {
    let status = m.status().unwrap_or(502);
    let mut b = hyper::Response::builder().status(status);
    for (k, v) in m.headers.iter() {
        if !skip_outgoing(k) {
            b = b.header(k, v);
        }
    }
    b.body(Full::new(Bytes::from(m.body.clone())))
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "filter produced an invalid response; answering 502");
            let mut r = hyper::Response::new(Full::new(Bytes::from_static(b"invalid response\n")));
            *r.status_mut() = hyper::StatusCode::BAD_GATEWAY;
            r
        })
}

/// Sends the request that left the filter to the upstream. Failures become the 503 Envoy's
/// router answers with, so the filter sees them in its response callbacks as it would there.
async fn forward(gw: &Gateway, m: &Message) -> Message {
    let path = m.headers.get(":path").unwrap_or("/");
    let upstream = gw
        .routes
        .iter()
        .find(|(prefix, _)| path.starts_with(prefix.as_str()))
        .map_or(&gw.upstream, |(_, url)| url);
    let mut b = hyper::Request::builder()
        .method(m.headers.get(":method").unwrap_or("GET"))
        .uri(format!("{upstream}{path}"));
    if let Some(a) = m.headers.get_bytes(b":authority") {
        b = b.header(hyper::header::HOST, a);
    }
    for (k, v) in m.headers.iter() {
        if !skip_outgoing(k) {
            b = b.header(k, v);
        }
    }
    let failure = |why: &str| {
        tracing::debug!(why, "upstream request failed");
        let r = CallResponse::connect_failure();
        Message {
            headers: r.headers,
            body: r.body,
            trailers: HeaderMap::new(),
        }
    };
    let Ok(req) = b.body(Full::new(Bytes::from(m.body.clone()))) else {
        return failure("invalid request");
    };
    let Ok(resp) = gw.client.request(req).await else {
        return failure("connect");
    };
    let (parts, body) = resp.into_parts();
    let Ok(body) = body.collect().await else {
        return failure("body");
    };
    let mut headers = HeaderMap::new();
    headers.add(b":status", parts.status.as_str().as_bytes());
    for (k, v) in parts.headers.iter() {
        if HOP_BY_HOP.contains(&k.as_str()) {
            continue;
        }
        headers.add(k.as_str().as_bytes(), v.as_bytes());
    }
    Message {
        headers,
        body: body.to_bytes().to_vec(),
        trailers: HeaderMap::new(),
    }
}

async fn handle(
    gw: Arc<Gateway>,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    local: SocketAddr,
) -> Result<hyper::Response<Body>, StreamReset> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(StreamReset),
    };
    let headers = request_headers(&parts);
    if gw.workers.is_empty() {
        let m = Message {
            headers,
            body: body.to_vec(),
            trailers: HeaderMap::new(),
        };
        return Ok(to_response(&forward(&gw, &m).await));
    }
    let w = gw.next.fetch_add(1, Ordering::Relaxed) % gw.workers.len();
    let Some(worker) = gw.workers.get(w).cloned() else {
        return Err(StreamReset);
    };
    let info = StreamInfo {
        source: peer,
        destination: local,
        start_nanos: Clock::system().now_nanos(),
        ..StreamInfo::default()
    };
    let id = {
        let mut vm = lock(&worker);
        let id = vm.create_stream(info);
        vm.request_headers(id, headers, body.is_empty());
        if !body.is_empty() {
            vm.request_body(id, &body, true);
        }
        after_op(&gw, w, &mut vm);
        id
    };
    let mut forwarded = false;
    loop {
        let progressed = worker.progress.notified();
        tokio::pin!(progressed);
        progressed.as_mut().enable();
        enum Next {
            Reset,
            Respond(hyper::Response<Body>),
            Forward(Message),
            Wait,
        }
        let next = {
            let mut vm = lock(&worker);
            match vm.stream(id) {
                None => Next::Reset,
                Some(s) if s.was_reset() => {
                    vm.finish_stream(id);
                    Next::Reset
                }
                Some(s) => match s.downstream_response() {
                    Some(m) => {
                        let r = to_response(m);
                        vm.finish_stream(id);
                        after_op(&gw, w, &mut vm);
                        Next::Respond(r)
                    }
                    None => match s.upstream_request() {
                        Some(m) if !forwarded && s.awaiting_upstream() => Next::Forward(m.clone()),
                        _ => Next::Wait,
                    },
                },
            }
        };
        match next {
            Next::Reset => return Err(StreamReset),
            Next::Respond(r) => return Ok(r),
            Next::Forward(m) => {
                forwarded = true;
                let resp = forward(&gw, &m).await;
                let mut vm = lock(&worker);
                vm.response_headers(id, resp.headers, resp.body.is_empty());
                if !resp.body.is_empty() {
                    vm.response_body(id, &resp.body, true);
                }
                after_op(&gw, w, &mut vm);
            }
            Next::Wait => {
                if tokio::time::timeout(STREAM_IDLE_TIMEOUT, progressed)
                    .await
                    .is_err()
                {
                    let mut vm = lock(&worker);
                    vm.finish_stream(id);
                    after_op(&gw, w, &mut vm);
                    let mut timeout = HeaderMap::new();
                    timeout.add(b":status", b"504");
                    let body = b"stream timeout\n".to_vec();
                    return Ok(to_response(&Message {
                        headers: timeout,
                        body,
                        ..Default::default()
                    }));
                }
            }
        }
    }
}

/// After any operation on a worker VM: start the call-outs it dispatched, deliver queue
/// notifications, and wake the requests waiting on it.
fn after_op(gw: &Arc<Gateway>, w: usize, vm: &mut Vm) {
    let mut ready = vm.take_queue_ready();
    ready.extend(gw.shared.take_inbox(w));
    for (ctx, token) in ready {
        vm.queue_ready(ctx, token);
    }
    for call in vm.take_pending_calls() {
        spawn_call(Arc::clone(gw), w, call);
    }
    if let Some(worker) = gw.workers.get(w) {
        // Notifications raised by those deliveries wait for the worker loop's next turn (like
        // posts to Envoy's dispatcher), so a guest that re-enqueues forever cannot pin us here.
        if vm.has_queue_ready() {
            worker.inbox.notify_one();
        }
        worker.progress.notify_waiters();
    }
}

fn spawn_call(gw: Arc<Gateway>, w: usize, call: PendingCall) {
    tokio::spawn(async move {
        let resp = match gw.clusters.get(&call.request.cluster) {
            Some(url) => send_http(&gw.client, url, &call.request).await,
            None => CallResponse::reset(),
        };
        let Some(worker) = gw.workers.get(w) else {
            return;
        };
        let mut vm = lock(worker);
        vm.deliver_call_response(call.token, resp);
        after_op(&gw, w, &mut vm);
    });
}

/// Fires ticks at the period the root context asked for and delivers queue notifications.
async fn worker_loop(gw: Arc<Gateway>, w: usize, worker: Arc<Worker>) {
    loop {
        let period = lock(&worker).tick_period();
        let wait = period.unwrap_or(Duration::from_millis(200));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {
                let mut vm = lock(&worker);
                if period.is_some() && vm.tick_period().is_some() {
                    vm.tick();
                }
                after_op(&gw, w, &mut vm);
            }
            _ = worker.inbox.notified() => {
                let mut vm = lock(&worker);
                after_op(&gw, w, &mut vm);
            }
        }
    }
}

/// A fixed-response HTTP server for benchmarks (`lightning-wall-host bench-upstream`).
pub async fn bench_upstream(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    loop {
        let (tcp, _) = listener.accept().await.context("accept")?;
        let _ = tcp.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|_req: hyper::Request<Incoming>| async {
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok\n"))))
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}
