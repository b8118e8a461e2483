//! A proxy-wasm filter that exists only to test the host: each request path selects a scenario
//! that exercises one group of host functions and reports what the host answered (headers added
//! to the request, a local reply, logs). It is never deployed; it may panic and trap on purpose
//! (`/trap/*`), which is how the host's failure policy is tested.

mod scenarios;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType, MetricType, Status};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

// The two ABI functions the Rust SDK never calls; imported directly so the host's versions are
// exercised too (signatures from the ABI v0.2.1 spec).
#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_get_header_map_size(map_type: u32, size: *mut u32) -> u32;
    fn proxy_get_buffer_status(buffer_type: u32, length: *mut u32, flags: *mut u32) -> u32;
    // The SDK panics on statuses Envoy legitimately returns for these (NotFound), so the raw
    // calls are used to observe the status itself.
    fn proxy_done() -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key: *const u8,
        key_size: usize,
        value: *mut *mut u8,
        value_size: *mut usize,
    ) -> u32;
    fn proxy_dequeue_shared_queue(token: u32, data: *mut *mut u8, size: *mut usize) -> u32;
}

/// State shared between the root context and its http contexts (same VM, same thread).
#[derive(Default)]
struct Shared {
    config: RefCell<HashMap<String, String>>,
    queue: Cell<u32>,
    requests_metric: Cell<u32>,
    gauge_metric: Cell<u32>,
    histogram_metric: Cell<u32>,
    ticks_metric: Cell<u32>,
}

#[derive(Default)]
struct Root {
    shared: Rc<Shared>,
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Ok => "Ok",
        Status::NotFound => "NotFound",
        Status::BadArgument => "BadArgument",
        Status::SerializationFailure => "SerializationFailure",
        Status::ParseFailure => "ParseFailure",
        Status::Empty => "Empty",
        Status::CasMismatch => "CasMismatch",
        Status::InternalFailure => "InternalFailure",
        _ => "Other",
    }
}

fn result_name<T>(r: &Result<T, Status>) -> &'static str {
    match r {
        Ok(_) => "Ok",
        Err(s) => status_name(*s),
    }
}

fn log(level: LogLevel, msg: &str) {
    let _ = hostcalls::log(level, msg);
}

fn text(bytes: Option<Vec<u8>>) -> String {
    bytes.map_or_else(
        || "<none>".to_string(),
        |b| String::from_utf8_lossy(&b).into_owned(),
    )
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, n_headers: usize, body: usize, _: usize) {
        // Root-issued call-outs (from on_tick) land here after set_effective_context(root).
        let status = self.get_http_call_response_header(":status");
        let body = self.get_http_call_response_body(0, body);
        log(
            LogLevel::Info,
            &format!(
                "root call-out {token}: headers={n_headers} status={} body={}",
                status.unwrap_or_default(),
                text(body)
            ),
        );
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _: usize) -> bool {
        let vm = text(self.get_vm_configuration());
        log(LogLevel::Info, &format!("vm_start vm_config={vm}"));
        true
    }

    fn on_configure(&mut self, size: usize) -> bool {
        let raw = text(self.get_plugin_configuration());
        log(
            LogLevel::Info,
            &format!("configure size={size} config={raw}"),
        );
        let mut config = HashMap::new();
        for part in raw.split(';').filter(|p| !p.is_empty()) {
            if let Some((k, v)) = part.split_once('=') {
                config.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        if config.get("fail_configure").is_some_and(|v| v == "1") {
            log(LogLevel::Error, "configure rejected on purpose");
            return false;
        }
        if let Some(ms) = config.get("tick_ms").and_then(|v| v.parse::<u64>().ok()) {
            self.set_tick_period(Duration::from_millis(ms));
        }
        let s = &self.shared;
        s.requests_metric.set(
            hostcalls::define_metric(MetricType::Counter, "conformance_requests").unwrap_or(0),
        );
        s.gauge_metric
            .set(hostcalls::define_metric(MetricType::Gauge, "conformance_gauge").unwrap_or(0));
        s.histogram_metric.set(
            hostcalls::define_metric(MetricType::Histogram, "conformance_histogram").unwrap_or(0),
        );
        s.ticks_metric
            .set(hostcalls::define_metric(MetricType::Counter, "conformance_ticks").unwrap_or(0));
        s.queue.set(self.register_shared_queue("conformance_queue"));
        // Initialise shared keys here: creating a key is never race-free (the CAS of a missing
        // key is not checked by Envoy).
        if self.get_shared_data("counter").0.is_none() {
            let _ = self.set_shared_data("counter", Some(b"0"), None);
        }
        *s.config.borrow_mut() = config;
        true
    }

    fn on_tick(&mut self) {
        let _ = hostcalls::increment_metric(self.shared.ticks_metric.get(), 1);
        cas_increment("ticks");
        if self
            .shared
            .config
            .borrow()
            .get("tick_callout")
            .is_some_and(|v| v == "1")
        {
            let cluster = self
                .shared
                .config
                .borrow()
                .get("cluster")
                .cloned()
                .unwrap_or_default();
            let r = self.dispatch_http_call(
                &cluster,
                vec![
                    (":method", "GET"),
                    (":path", "/tick"),
                    (":authority", "sidecar"),
                ],
                None,
                vec![],
                Duration::from_secs(1),
            );
            log(
                LogLevel::Info,
                &format!("tick call-out dispatch: {}", result_name(&r)),
            );
        }
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        loop {
            match self.dequeue_shared_queue(queue_id) {
                Ok(Some(msg)) => {
                    let msg = String::from_utf8_lossy(&msg).into_owned();
                    log(LogLevel::Info, &format!("dequeued {msg}"));
                    let _ = self.set_shared_data("last_dequeued", Some(msg.as_bytes()), None);
                }
                Ok(None) => break,
                Err(e) => {
                    log(
                        LogLevel::Error,
                        &format!("dequeue failed: {}", status_name(e)),
                    );
                    break;
                }
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let mode = |key: &str| {
            self.shared
                .config
                .borrow()
                .get(key)
                .is_some_and(|v| v == "1")
        };
        if mode("noop") {
            return Some(Box::new(Noop));
        }
        if mode("floor") {
            return Some(Box::new(AbiFloor));
        }
        Some(Box::new(Stream {
            id: context_id,
            shared: Rc::clone(&self.shared),
            path: String::new(),
            callout_done: false,
        }))
    }
}

/// An http context that makes no host call at all: the baseline for measuring the host's own
/// per-request cost (`make bench-gateway`).
struct Noop;

impl Context for Noop {}

impl HttpContext for Noop {}

/// An http context that makes exactly the host calls the lightning-wall filter needs on its hot
/// path (a request with a credential it verified before) and computes nothing: read the request
/// header map, set the token and mode headers, read the verdict and reward headers of the
/// response. `make bench-filter` measures it to split the filter's cost into what the ABI costs
/// any filter doing this job and what the filter's own logic adds.
struct AbiFloor;

impl Context for AbiFloor {}

impl HttpContext for AbiFloor {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
        let _ = hostcalls::get_current_time();
        let _ = std::hint::black_box(headers);
        let token = "00".repeat(32);
        let _ = hostcalls::set_map_value(
            MapType::HttpRequestHeaders,
            "x-lightning-wall-token",
            Some(&token),
        );
        let _ = hostcalls::set_map_value(
            MapType::HttpRequestHeaders,
            "x-lightning-wall-mode",
            Some("pay"),
        );
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        for name in [
            "x-lightning-wall-verdict",
            "x-lightning-wall-reward",
            "x-lightning-wall-reward-id",
        ] {
            let _ = std::hint::black_box(hostcalls::get_map_value_bytes(
                MapType::HttpResponseHeaders,
                name,
            ));
        }
        Action::Continue
    }
}

/// Reads `key`, adds one, writes it back with the CAS it read; retries on a mismatch.
fn cas_increment(key: &str) -> (u64, u32) {
    let mut mismatches = 0;
    loop {
        let (value, cas) = hostcalls::get_shared_data(key).unwrap_or((None, None));
        let n: u64 = value
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let next = (n + 1).to_string();
        match hostcalls::set_shared_data(key, Some(next.as_bytes()), cas) {
            Ok(()) => return (n + 1, mismatches),
            Err(Status::CasMismatch) => mismatches += 1,
            Err(_) => return (0, mismatches),
        }
    }
}

struct Stream {
    id: u32,
    shared: Rc<Shared>,
    path: String,
    callout_done: bool,
}

impl Stream {
    fn cluster(&self) -> String {
        self.shared
            .config
            .borrow()
            .get("cluster")
            .cloned()
            .unwrap_or_default()
    }

    fn reply(&self, status: u32, body: &str) {
        self.send_http_response(
            status,
            vec![("content-type", "text/plain")],
            Some(body.as_bytes()),
        );
    }

    fn callout(&mut self, cluster: &str, with_authority: bool) -> Result<u32, Status> {
        let mut headers = vec![(":method", "POST"), (":path", "/internal/challenge")];
        if with_authority {
            headers.push((":authority", "sidecar"));
        }
        headers.push(("x-from", "conformance"));
        self.dispatch_http_call(
            cluster,
            headers,
            Some(b"callout-body"),
            vec![],
            Duration::from_millis(500),
        )
    }
}

impl Context for Stream {
    fn on_http_call_response(&mut self, token: u32, n_headers: usize, body_size: usize, _: usize) {
        self.callout_done = true;
        let status = self
            .get_http_call_response_header(":status")
            .unwrap_or_default();
        let body = text(self.get_http_call_response_body(0, usize::MAX));
        let body_prefix = text(self.get_http_call_response_body(0, 3));
        log(
            LogLevel::Info,
            &format!(
                "call-out {token} answered: headers={n_headers} status={status} size={body_size}"
            ),
        );
        if self.path.starts_with("/callout/reply") || n_headers == 0 {
            let code = if n_headers == 0 { 503 } else { 402 };
            // Envoy reports why a call-out failed through proxy_get_status.
            let why = match (n_headers, hostcalls::get_grpc_status()) {
                (0, Ok((c, m))) => format!(" status={c}:{}", m.unwrap_or_default()),
                _ => String::new(),
            };
            self.send_http_response(
                code,
                vec![("www-authenticate", "L402 test"), ("x-callout-body", &body)],
                Some(format!("paid-content-needed:{body}{why}").as_bytes()),
            );
            return;
        }
        if self.path.starts_with("/callout/response") {
            self.set_http_response_header("x-callout-status", Some(&status));
            self.resume_http_response();
            return;
        }
        self.add_http_request_header("x-callout-status", &status);
        self.add_http_request_header("x-callout-body", &body);
        self.add_http_request_header("x-callout-prefix", &body_prefix);
        self.resume_http_request();
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        self.path = self.get_http_request_header(":path").unwrap_or_default();
        let _ = hostcalls::increment_metric(self.shared.requests_metric.get(), 1);
        let path = self.path.clone();
        match path.as_str() {
            p if p.starts_with("/headers") => self.headers_scenario(),
            "/replace-all" => {
                self.set_http_request_headers(vec![
                    (":method", "GET"),
                    (":path", "/replaced"),
                    (":authority", "example"),
                    ("x-only", "1"),
                ]);
                Action::Continue
            }
            "/properties" => self.properties_scenario(),
            "/shared" => self.shared_scenario(),
            "/shared/stale-cas" => self.stale_cas_scenario(),
            "/queue" => self.queue_scenario(),
            "/metrics" => self.metrics_scenario(),
            "/misc" => self.misc_scenario(),
            "/local-reply" => {
                self.send_http_response(
                    402,
                    vec![
                        ("www-authenticate", "L402 macaroon=\"m\", invoice=\"i\""),
                        ("x-a", "1"),
                    ],
                    Some(b"payment required"),
                );
                // Envoy ignores the returned action after a local reply.
                Action::Continue
            }
            "/local-reply/twice" => {
                self.reply(401, "first");
                self.reply(403, "second");
                Action::Pause
            }
            "/reset" => {
                self.reset_http_request();
                Action::Pause
            }
            p if p.starts_with("/callout/unknown-cluster") => {
                let r = self.callout("no_such_cluster", true);
                self.reply(500, &format!("dispatch={}", result_name(&r)));
                Action::Pause
            }
            p if p.starts_with("/callout/missing-authority") => {
                let cluster = self.cluster();
                let r = self.callout(&cluster, false);
                self.reply(500, &format!("dispatch={}", result_name(&r)));
                Action::Pause
            }
            p if p.starts_with("/callout/response") => Action::Continue,
            p if p.starts_with("/callout") => {
                let cluster = self.cluster();
                match self.callout(&cluster, true) {
                    Ok(_) => Action::Pause,
                    Err(e) => {
                        self.reply(500, &format!("dispatch={}", status_name(e)));
                        Action::Pause
                    }
                }
            }
            "/body" => Action::Continue,
            "/trap/panic" => panic!("conformance filter panics on purpose"),
            "/trap/oob" => {
                // SAFETY: deliberately unsound: reads past the end of linear memory to make the
                // VM trap (the host must contain it).
                let v = unsafe { std::ptr::read_volatile(0xffff_fff0usize as *const u8) };
                self.add_http_request_header("x-unreachable", &v.to_string());
                Action::Continue
            }
            "/trap/loop" => {
                let mut i: u64 = 0;
                loop {
                    i = std::hint::black_box(i.wrapping_add(1));
                }
            }
            "/trap/oom" => {
                // Grows memory (touching every page) until the host refuses more.
                let mut hog: Vec<Vec<u8>> = Vec::new();
                loop {
                    hog.push(vec![1u8; 1 << 20]);
                    self.add_http_request_header("x-hog", &hog.len().to_string());
                }
            }
            "/response-local-reply" | "/response-body" => Action::Continue,
            _ => {
                self.add_http_request_header("x-conformance-default", "1");
                Action::Continue
            }
        }
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        if self.path.starts_with("/callout") && !self.callout_done {
            // Envoy stops all iteration while the headers callback is paused; a body delivered
            // before the call-out answered would mean the host broke that rule.
            log(
                LogLevel::Critical,
                "request body delivered while headers were paused",
            );
        }
        if self.path == "/body" {
            if !end_of_stream {
                return Action::Pause; // buffer until the whole body is here
            }
            let body = self.get_http_request_body(0, size).unwrap_or_default();
            let mut reversed = body.clone();
            reversed.reverse();
            self.set_http_request_body(0, size, &reversed);
            log(
                LogLevel::Info,
                &format!("request body {} bytes", body.len()),
            );
        }
        if self.path.starts_with("/callout") {
            let body = text(self.get_http_request_body(0, size));
            log(
                LogLevel::Info,
                &format!("request body after call-out: {body}"),
            );
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        let status = self.get_http_response_header(":status").unwrap_or_default();
        self.add_http_response_header("x-conformance-response", "yes");
        self.add_http_response_header("x-seen-status", &status);
        self.set_http_response_header("x-upstream-secret", None);
        // Envoy drops the request headers once the request has continued: reading them now
        // returns BadArgument (which the SDK turns into a panic), so only the raw call is used.
        let (mut p, mut n) = (std::ptr::null_mut::<u8>(), 0usize);
        let key = b":path";
        // SAFETY: valid key and out-pointers for the duration of the call.
        let late = unsafe {
            proxy_get_header_map_value(
                MapType::HttpRequestHeaders as u32,
                key.as_ptr(),
                key.len(),
                &mut p,
                &mut n,
            )
        };
        self.add_http_response_header("x-late-request-header-status", &late.to_string());
        if self.path == "/response-local-reply" {
            self.send_http_response(418, vec![], Some(b"teapot from response phase"));
            return Action::Pause;
        }
        if self.path.starts_with("/callout/response") {
            let cluster = self.cluster();
            return match self.callout(&cluster, true) {
                Ok(_) => Action::Pause,
                Err(_) => Action::Continue,
            };
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        if self.path == "/response-body" {
            if !end_of_stream {
                return Action::Pause;
            }
            let body = self.get_http_response_body(0, size).unwrap_or_default();
            let upper = body.to_ascii_uppercase();
            self.set_http_response_body(0, size, &upper);
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        log(LogLevel::Debug, &format!("on_log context {}", self.id));
    }
}
