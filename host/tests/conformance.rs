//! Conformance of the host with Envoy's proxy-wasm semantics, checked with the conformance
//! filter (host/conformance-filter) built for wasm32-wasip1 and wasm32-unknown-unknown. Each
//! test names the Envoy behaviour it pins down.
// Test code: a failed expectation is reported by panicking.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lightning_wall_host::abi::LogLevel;
use lightning_wall_host::hostcalls::PROVIDED;
use lightning_wall_host::shared::MetricValue;
use lightning_wall_host::stream::Message;
use lightning_wall_host::testing::{Request, TestHost, TestHostBuilder, echo_upstream};
use lightning_wall_host::{CallRequest, CallResponse, FailurePolicy, HeaderMap, Runtime};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn host_with(runtime: Arc<Runtime>, config: &str) -> TestHostBuilder {
    TestHost::builder(runtime).configuration(config.to_string())
}

fn sidecar_ok(_: &CallRequest) -> CallResponse {
    CallResponse::new(200, &[("content-type", "text/plain")], "challenge-ok")
}

fn no_upstream(_: &Message) -> Message {
    panic!("the request must not reach the upstream")
}

fn no_critical_logs(host: &TestHost) {
    let bad: Vec<_> = host
        .logs()
        .into_iter()
        .filter(|l| l.level == LogLevel::Critical)
        .collect();
    assert!(bad.is_empty(), "critical guest logs: {bad:?}");
}

/// Every `env` function proxy-wasm Rust SDK 0.2.5 declares (src/hostcalls.rs), plus the two it
/// never calls (`proxy_get_header_map_size`, `proxy_get_buffer_status`).
const SDK_HOST_FUNCTIONS: &[&str] = &[
    "proxy_add_header_map_value",
    "proxy_call_foreign_function",
    "proxy_close_stream",
    "proxy_continue_stream",
    "proxy_define_metric",
    "proxy_dequeue_shared_queue",
    "proxy_done",
    "proxy_enqueue_shared_queue",
    "proxy_get_buffer_bytes",
    "proxy_get_current_time_nanoseconds",
    "proxy_get_header_map_pairs",
    "proxy_get_header_map_value",
    "proxy_get_log_level",
    "proxy_get_metric",
    "proxy_get_property",
    "proxy_get_shared_data",
    "proxy_get_status",
    "proxy_grpc_call",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_grpc_send",
    "proxy_grpc_stream",
    "proxy_http_call",
    "proxy_increment_metric",
    "proxy_log",
    "proxy_record_metric",
    "proxy_register_shared_queue",
    "proxy_remove_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_resolve_shared_queue",
    "proxy_send_local_response",
    "proxy_set_buffer_bytes",
    "proxy_set_effective_context",
    "proxy_set_header_map_pairs",
    "proxy_set_property",
    "proxy_set_shared_data",
    "proxy_set_tick_period_milliseconds",
    "proxy_get_header_map_size",
    "proxy_get_buffer_status",
];

#[test]
fn conformance_filter_imports_every_host_function_the_sdk_declares() {
    let imports = common::conformance().imports();
    for f in SDK_HOST_FUNCTIONS {
        assert!(PROVIDED.contains(f), "host does not provide {f}");
        assert!(
            imports.contains(&format!("env::{f}")),
            "conformance filter never calls {f}"
        );
    }
    for wasi in ["fd_write", "clock_time_get", "random_get"] {
        assert!(
            imports.contains(&format!("wasi_snapshot_preview1::{wasi}")),
            "wasip1 build does not exercise {wasi}: {imports:?}"
        );
    }
    let unknown = common::conformance_unknown().imports();
    assert!(
        unknown.iter().all(|i| i.starts_with("env::")),
        "{unknown:?}"
    );
}

#[test]
fn both_wasm_targets_start_and_read_their_configuration() {
    for runtime in [common::conformance(), common::conformance_unknown()] {
        let host = host_with(runtime, "tick_ms=0;x=1")
            .vm_configuration("vm-conf")
            .build()
            .unwrap();
        assert_eq!(host.logs_containing("vm_start vm_config=vm-conf").len(), 1);
        assert_eq!(
            host.logs_containing("configure size=13 config=tick_ms=0;x=1")
                .len(),
            1
        );
    }
}

#[test]
fn configure_returning_false_is_a_start_error() {
    let err = host_with(common::conformance(), "fail_configure=1")
        .build()
        .err()
        .unwrap();
    assert!(err.to_string().contains("on_configure rejected"), "{err}");
}

#[test]
fn request_headers_are_added_replaced_removed_and_internal_ones_stripped() {
    for runtime in [common::conformance(), common::conformance_unknown()] {
        let mut host = host_with(runtime, "").build().unwrap();
        let req = Request::get("/headers")
            .header("x-one", "1")
            .header("x-lightning-wall-token", "forged")
            .header("x-lightning-wall-mode", "deposit")
            .header("x-conformance-replace", "old-1")
            .header("x-conformance-replace", "old-2")
            .header("x-conformance-remove", "bye");
        let ex = host.send(&req, |up| {
            let mut r = echo_upstream(up);
            r.headers.add(b"x-upstream-secret", b"s3cret");
            r
        });
        let up = ex.upstream_request.expect("forwarded");
        assert!(
            up.headers
                .iter()
                .all(|(k, _)| !k.starts_with(b"x-lightning-wall-"))
        );
        assert_eq!(up.headers.get("x-conformance-added"), Some("yes"));
        assert_eq!(
            up.headers.get_all("x-conformance-replace"),
            vec![b"replaced".as_slice()]
        );
        assert!(!up.headers.contains("x-conformance-remove"));
        assert_eq!(up.headers.get("x-one-seen"), Some("1"));
        assert_eq!(up.headers.get("x-missing"), Some("none"));
        let size = up.headers.get("x-map-size").unwrap();
        assert!(size.starts_with("0:") && size != "0:0", "{size}");
        let resp = ex.response.expect("answered");
        assert_eq!(resp.status(), Some(200));
        assert_eq!(resp.headers.get("x-conformance-response"), Some("yes"));
        assert_eq!(resp.headers.get("x-seen-status"), Some("200"));
        assert!(!resp.headers.contains("x-upstream-secret"));
        no_critical_logs(&host);
    }
}

#[test]
fn request_headers_are_gone_once_the_request_continued() {
    let mut host = host_with(common::conformance(), "").build().unwrap();
    let ex = host.send(&Request::get("/anything"), echo_upstream);
    // BadArgument (2): Envoy nulls request_headers_ when decodeHeaders returns Continue.
    let resp = ex.response.unwrap();
    assert_eq!(resp.headers.get("x-late-request-header-status"), Some("2"));
}

#[test]
fn replacing_the_whole_header_map_replaces_every_header() {
    let mut host = host_with(common::conformance(), "").build().unwrap();
    let ex = host.send(
        &Request::get("/replace-all").header("x-gone", "1"),
        echo_upstream,
    );
    let up = ex.upstream_request.unwrap();
    let names: Vec<String> = up.headers.iter().map(|(k, _)| text(k)).collect();
    assert_eq!(names, [":method", ":path", ":authority", "x-only"]);
    assert_eq!(up.headers.get(":path"), Some("/replaced"));
}

#[test]
fn local_reply_ignores_the_returned_action_and_never_reaches_the_upstream() {
    let mut host = host_with(common::conformance(), "").build().unwrap();
    // The filter returns Continue after send_http_response: Envoy must still stop, so the
    // request headers never leave the filter.
    let h = host.start(&Request::get("/local-reply"), true);
    assert!(!host.stream(h).unwrap().request_headers_forwarded());
    let ex = host.complete(h, None);
    assert!(ex.upstream_request.is_none());
    let reply = ex.local_reply.expect("local reply recorded");
    assert_eq!(reply.status, 402);
    let resp = ex.response.expect("client answered");
    assert_eq!(resp.status(), Some(402));
    assert_eq!(
        resp.headers.get("www-authenticate"),
        Some("L402 macaroon=\"m\", invoice=\"i\"")
    );
    assert_eq!(resp.headers.get("x-a"), Some("1"));
    assert_eq!(resp.headers.get("content-type"), Some("text/plain"));
    assert_eq!(resp.headers.get("content-length"), Some("16"));
    assert_eq!(text(&resp.body), "payment required");
    // Envoy encodes a local reply through the filter's own response callbacks.
    assert_eq!(resp.headers.get("x-seen-status"), Some("402"));
}

#[test]
fn only_the_first_local_reply_of_a_stream_is_sent() {
    let mut host = host_with(common::conformance(), "").build().unwrap();
    let ex = host.send(&Request::get("/local-reply/twice"), no_upstream);
    let resp = ex.response.unwrap();
    assert_eq!(resp.status(), Some(401));
    assert_eq!(text(&resp.body), "first");
}

#[test]
fn call_out_is_answered_after_the_guest_returns_and_resumes_the_request() {
    for runtime in [common::conformance(), common::conformance_unknown()] {
        let seen = Arc::new(Mutex::new(Vec::<CallRequest>::new()));
        let s2 = Arc::clone(&seen);
        let mut host = host_with(runtime, "cluster=sidecar")
            .cluster_handler("sidecar", move |r| {
                s2.lock().unwrap().push(r.clone());
                sidecar_ok(r)
            })
            .build()
            .unwrap();
        let ex = host.send(&Request::get("/callout"), echo_upstream);
        // A re-entrant delivery (inside proxy_http_call) makes the SDK panic on a RefCell
        // borrow: the VM would fail and the client would get a 503.
        assert!(!ex.failed, "VM failed: {:?}", host.logs());
        let up = ex.upstream_request.expect("resumed and forwarded");
        assert_eq!(up.headers.get("x-callout-status"), Some("200"));
        assert_eq!(up.headers.get("x-callout-body"), Some("challenge-ok"));
        // get_buffer_bytes(0, 3) is a clamped read of the first three bytes.
        assert_eq!(up.headers.get("x-callout-prefix"), Some("cha"));
        let calls = seen.lock().unwrap();
        assert_eq!(calls.len(), 1);
        let c = &calls[0];
        assert_eq!((c.method(), c.path()), ("POST", "/internal/challenge"));
        assert_eq!(c.headers.get(":authority"), Some("sidecar"));
        assert_eq!(c.headers.get("content-length"), Some("12"));
        assert_eq!(c.body, b"callout-body");
        assert_eq!(c.timeout, Some(Duration::from_millis(500)));
        no_critical_logs(&host);
    }
}

#[test]
fn body_sent_while_headers_are_paused_waits_for_the_resume() {
    let mut host = host_with(common::conformance(), "cluster=sidecar")
        .cluster_manual("sidecar")
        .build()
        .unwrap();
    let h = host.start(&Request::post("/callout", ""), false);
    host.request_body(h, b"hello ", false);
    host.request_body(h, b"world", true);
    assert!(
        host.upstream_request(h).is_none(),
        "PAUSE from headers must stop everything"
    );
    assert_eq!(host.pending_calls().len(), 1);
    let token = host.pending_calls()[0].token;
    assert!(host.answer(
        h.worker,
        token,
        sidecar_ok(&host.pending_calls()[0].request.clone())
    ));
    let up = host
        .upstream_request(h)
        .expect("forwarded after the resume")
        .clone();
    assert_eq!(up.body, b"hello world");
    assert_eq!(up.headers.get("x-callout-status"), Some("200"));
    assert_eq!(
        host.logs_containing("request body after call-out: hello world")
            .len(),
        1
    );
    no_critical_logs(&host);
}

#[test]
fn call_out_to_an_unknown_cluster_is_a_bad_argument() {
    let mut host = host_with(common::conformance(), "cluster=sidecar")
        .cluster_handler("sidecar", sidecar_ok)
        .build()
        .unwrap();
    let ex = host.send(&Request::get("/callout/unknown-cluster"), no_upstream);
    assert_eq!(text(&ex.response.unwrap().body), "dispatch=BadArgument");
}

#[test]
fn call_out_without_authority_is_a_bad_argument() {
    let mut host = host_with(common::conformance(), "cluster=sidecar")
        .cluster_handler("sidecar", sidecar_ok)
        .build()
        .unwrap();
    let ex = host.send(&Request::get("/callout/missing-authority"), no_upstream);
    assert_eq!(text(&ex.response.unwrap().body), "dispatch=BadArgument");
}

#[test]
fn reset_call_out_arrives_with_no_headers() {
    let mut host = host_with(common::conformance(), "cluster=sidecar")
        .cluster_handler("sidecar", |_| CallResponse::reset())
        .build()
        .unwrap();
    let ex = host.send(&Request::get("/callout"), no_upstream);
    let resp = ex.response.unwrap();
    assert_eq!(resp.status(), Some(503));
    // proxy_get_status: BrokenConnection (11) with message "reset", as Envoy's onHttpCallFailure.
    assert_eq!(
        text(&resp.body),
        "paid-content-needed:<none> status=11:reset"
    );
}

#[test]
fn local_reply_from_a_call_out_response_reaches_the_client() {
    let mut host = host_with(common::conformance(), "cluster=sidecar")
        .cluster_handler("sidecar", sidecar_ok)
        .build()
        .unwrap();
    let ex = host.send(&Request::get("/callout/reply"), no_upstream);
    let resp = ex.response.unwrap();
    assert_eq!(resp.status(), Some(402));
    assert_eq!(resp.headers.get("x-callout-body"), Some("challenge-ok"));
    assert_eq!(text(&resp.body), "paid-content-needed:challenge-ok");
}

#[test]
fn response_phase_call_out_resumes_the_response() {
    let mut host = host_with(common::conformance(), "cluster=sidecar")
        .cluster_manual("sidecar")
        .build()
        .unwrap();
    let h = host.start(&Request::get("/callout/response"), true);
    let up = host.upstream_request(h).unwrap().clone();
    host.respond(h, &echo_upstream(&up));
    assert!(
        host.downstream_response(h).is_none(),
        "response paused for the call-out"
    );
    host.answer_all(CallResponse::new(201, &[], "x"));
    let resp = host.downstream_response(h).unwrap();
    assert_eq!(resp.headers.get("x-callout-status"), Some("201"));
    assert_eq!(resp.body, b"/callout/response");
}

#[test]
fn local_reply_during_the_response_replaces_the_upstream_response() {
    let mut host = host_with(common::conformance(), "").build().unwrap();
    let ex = host.send(&Request::get("/response-local-reply"), echo_upstream);
    assert!(ex.upstream_request.is_some());
    let resp = ex.response.unwrap();
    assert_eq!(resp.status(), Some(418));
    assert_eq!(text(&resp.body), "teapot from response phase");
    assert!(!resp.headers.contains("x-upstream"));
}

#[test]
fn request_body_is_buffered_until_the_end_and_replaced() {
    let mut host = host_with(common::conformance(), "").build().unwrap();
    let req = Request::new("POST", "/body").chunks(vec![b"hel".to_vec(), b"lo".to_vec()]);
    let ex = host.send(&req, echo_upstream);
    assert_eq!(ex.upstream_request.unwrap().body, b"olleh");
    assert_eq!(host.logs_containing("request body 5 bytes").len(), 1);
}

#[test]
fn response_body_is_buffered_until_the_end_and_replaced() {
    let mut host = host_with(common::conformance(), "").build().unwrap();
    let h = host.start(&Request::get("/response-body"), true);
    host.response_headers(h, HeaderMap::from_pairs([(":status", "200")]), false);
    host.response_body(h, b"abc", false);
    assert!(host.downstream_response(h).is_none());
    host.response_body(h, b"def", true);
    assert_eq!(host.downstream_response(h).unwrap().body, b"ABCDEF");
}

#[test]
fn shared_data_increments_are_never_lost_across_workers() {
    let mut host = host_with(common::conformance(), "")
        .workers(4)
        .build()
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..40 {
        let ex = host.send(&Request::get("/shared"), echo_upstream);
        let up = ex.upstream_request.unwrap();
        seen.push(up.headers.get("x-counter").unwrap().parse::<u64>().unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=40).collect::<Vec<_>>());
    assert_eq!(host.shared_data("counter").unwrap(), b"40");
}

#[test]
fn stale_cas_write_is_refused() {
    let mut host = host_with(common::conformance(), "").build().unwrap();
    let ex = host.send(&Request::get("/shared/stale-cas"), no_upstream);
    assert_eq!(
        text(&ex.response.unwrap().body),
        "first=Ok second=CasMismatch value=100 missing=none"
    );
}

#[test]
fn queued_messages_reach_the_registering_root_context_after_the_call() {
    let mut host = host_with(common::conformance(), "")
        .workers(2)
        .build()
        .unwrap();
    // Worker 1 registered last, so it owns the queue; enqueue from worker 0.
    let h = host.start_on(
        0,
        &Request::get("/queue").header("x-message", "hello"),
        true,
    );
    let up = host.upstream_request(h).unwrap().clone();
    assert_eq!(
        up.headers.get("x-queue"),
        Some("resolved=true same=true unknown=true enqueue=Ok bad_enqueue=NotFound bad_dequeue=1")
    );
    let logs = host.logs_containing("dequeued hello");
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].worker, 1);
    assert_eq!(host.shared_data("last_dequeued").unwrap(), b"hello");
}

#[test]
fn ticks_fire_on_every_worker_at_the_configured_period() {
    let mut host = host_with(common::conformance(), "tick_ms=100")
        .workers(2)
        .build()
        .unwrap();
    assert_eq!(host.tick_period(0), Some(Duration::from_millis(100)));
    host.advance(Duration::from_millis(999));
    assert_eq!(
        host.metric("conformance_ticks"),
        Some(MetricValue::Counter(18))
    );
    host.advance(Duration::from_millis(1));
    assert_eq!(
        host.metric("conformance_ticks"),
        Some(MetricValue::Counter(20))
    );
    assert_eq!(host.shared_data("ticks").unwrap(), b"20");
}

#[test]
fn tick_call_out_is_answered_on_the_root_context() {
    let mut host = host_with(
        common::conformance(),
        "tick_ms=100;tick_callout=1;cluster=sidecar",
    )
    .cluster_handler("sidecar", |_| CallResponse::new(200, &[], "tick-ok"))
    .build()
    .unwrap();
    host.advance(Duration::from_millis(100));
    assert_eq!(host.logs_containing("tick call-out dispatch: Ok").len(), 1);
    assert_eq!(host.logs_containing("status=200 body=tick-ok").len(), 1);
}

#[test]
fn properties_resolve_like_envoy() {
    let mut host = host_with(common::conformance(), "").build().unwrap();
    let source: SocketAddr = "198.51.100.7:4321".parse().unwrap();
    let ex = host.send(&Request::get("/properties").from(source), no_upstream);
    let body = text(&ex.response.unwrap().body);
    for line in [
        "source.address=198.51.100.7:4321",
        "request.path=/properties",
        "request.method=GET",
        "request.host=example.com",
        "request.scheme=http",
        "request.id=<none>",
        "plugin_root_id=lightning_wall",
        "plugin_name=lightning_wall",
        "plugin_vm_id=lightning_wall",
        "does.not.exist=<none>",
        "custom=<none>",
        "set_custom=Ok custom_after=value",
        "request.size_len=8",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing {line:?} in:\n{body}"
        );
    }
    assert!(!body.contains("request.headers_len=0"), "{body}");
}

#[test]
fn metrics_follow_envoys_rules() {
    let mut host = host_with(common::conformance(), "").build().unwrap();
    let ex = host.send(&Request::get("/metrics"), no_upstream);
    assert_eq!(
        text(&ex.response.unwrap().body),
        "inc=Ok gauge_up=Ok gauge_down=Ok record=Ok counter=Some(2) gauge=Some(3) \
         histogram=BadArgument unknown=NotFound negative_counter=BadArgument"
    );
    assert_eq!(
        host.metric("conformance_histogram"),
        Some(MetricValue::Histogram(vec![42]))
    );
    assert_eq!(
        host.metric("conformance_gauge"),
        Some(MetricValue::Gauge(3))
    );
}

#[test]
fn remaining_host_calls_return_envoys_statuses() {
    let mut host = host_with(common::conformance(), "").build().unwrap();
    let ex = host.send(&Request::get("/misc"), no_upstream);
    assert_eq!(
        text(&ex.response.unwrap().body),
        "now=true std_now=true log_level=0 foreign=NotFound done=1 effective=BadArgument \
         buffer_status=1 grpc_call=ParseFailure grpc_stream=ParseFailure grpc_send=BadArgument \
         grpc_cancel=NotFound grpc_close=NotFound grpc_status=Some(0)"
    );
    let out = host.logs_containing("stdout line from the guest");
    assert_eq!(out[0].level, LogLevel::Info);
    let err = host.logs_containing("stderr line from the guest");
    assert_eq!(err[0].level, LogLevel::Error);
    for (level, name) in [(LogLevel::Trace, "trace"), (LogLevel::Critical, "critical")] {
        let l = host.logs_containing(&format!("level {name}"));
        assert_eq!(l[0].level, level);
    }
}

#[test]
fn time_comes_from_the_hosts_clock() {
    let start = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut host = host_with(common::conformance(), "")
        .start_time(start)
        .build()
        .unwrap();
    let ex = host.send(&Request::get("/properties"), no_upstream);
    assert!(ex.response.is_some());
    host.advance(Duration::from_secs(5));
    assert_eq!(host.clock().now_nanos(), 1_800_000_005 * 1_000_000_000);
}

#[test]
fn reset_closes_the_stream_without_a_response() {
    let mut host = host_with(common::conformance(), "").build().unwrap();
    let ex = host.send(&Request::get("/reset"), no_upstream);
    assert!(ex.reset);
    assert!(ex.response.is_none());
    assert!(ex.upstream_request.is_none());
}

#[test]
fn panicking_guest_fails_closed_and_the_other_workers_keep_serving() {
    let mut host = host_with(common::conformance(), "")
        .workers(2)
        .build()
        .unwrap();
    let ex = host.send(&Request::get("/trap/panic"), no_upstream);
    assert!(ex.failed);
    assert_eq!(ex.response.unwrap().status(), Some(503));
    assert!(host.is_failed(ex.handle.worker));
    // The failed VM answers every later request with 503 (fail-closed)...
    let h = host.start_on(ex.handle.worker, &Request::get("/headers"), true);
    assert_eq!(host.downstream_response(h).unwrap().status(), Some(503));
    // ...while the other worker's VM is untouched.
    let other = 1 - ex.handle.worker;
    let h = host.start_on(other, &Request::get("/headers"), true);
    let up = host.upstream_request(h).unwrap().clone();
    host.respond(h, &echo_upstream(&up));
    assert_eq!(host.downstream_response(h).unwrap().status(), Some(200));
}

#[test]
fn out_of_bounds_access_is_contained() {
    let mut host = host_with(common::conformance(), "").build().unwrap();
    let ex = host.send(&Request::get("/trap/oob"), no_upstream);
    assert!(ex.failed);
    assert_eq!(ex.response.unwrap().status(), Some(503));
    assert!(!host.logs_containing("VM failed").is_empty());
}

#[test]
fn infinite_loop_is_stopped_by_the_time_limit() {
    let mut host = host_with(common::conformance(), "")
        .call_time_limit(Duration::from_millis(100))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let ex = host.send(&Request::get("/trap/loop"), no_upstream);
    assert!(ex.failed);
    assert_eq!(ex.response.unwrap().status(), Some(503));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn fail_open_lets_requests_through_after_a_trap() {
    let mut host = host_with(common::conformance(), "")
        .failure_policy(FailurePolicy::FailOpen)
        .build()
        .unwrap();
    let ex = host.send(
        &Request::get("/trap/panic").header("x-k", "v"),
        echo_upstream,
    );
    assert!(ex.failed);
    let up = ex.upstream_request.expect("passed through");
    assert_eq!(up.headers.get("x-k"), Some("v"));
    assert_eq!(ex.response.unwrap().status(), Some(200));
    // Later requests skip the failed filter entirely.
    let ex = host.send(&Request::get("/headers"), echo_upstream);
    assert!(
        !ex.upstream_request
            .unwrap()
            .headers
            .contains("x-conformance-added")
    );
    assert!(
        !ex.response
            .unwrap()
            .headers
            .contains("x-conformance-response")
    );
}

#[test]
fn call_out_answered_after_its_stream_ended_is_still_delivered_harmlessly() {
    let mut host = host_with(common::conformance(), "cluster=sidecar")
        .cluster_manual("sidecar")
        .build()
        .unwrap();
    let h = host.start(&Request::get("/callout"), true);
    let token = host.pending_calls()[0].token;
    host.finish(h); // the client went away while the call-out was in flight
    // Envoy still answers the root context; the SDK finds no context and drops it.
    assert!(host.answer(h.worker, token, CallResponse::new(200, &[], "late")));
    assert!(!host.is_failed(h.worker), "{:?}", host.logs());
    let ex = host.send(&Request::get("/headers"), echo_upstream);
    assert_eq!(ex.response.unwrap().status(), Some(200));
}

/// A loopback server that accepts connections and never answers.
fn silent_server() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    addr
}

#[test]
fn call_out_timeout_reaches_the_guest_as_envoys_504() {
    let silent = silent_server();
    let mut host = host_with(common::conformance(), "cluster=sidecar")
        .cluster_url("sidecar", &format!("http://{silent}"))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let ex = host.send(&Request::get("/callout/reply"), no_upstream);
    let resp = ex.response.unwrap();
    assert_eq!(
        resp.headers.get("x-callout-body"),
        Some("upstream request timeout")
    );
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "the guest asked for 500 ms"
    );
}

#[test]
fn call_out_to_a_closed_port_reaches_the_guest_as_envoys_503() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut host = host_with(common::conformance(), "cluster=sidecar")
        .cluster_url("sidecar", &format!("http://{closed}"))
        .build()
        .unwrap();
    let ex = host.send(&Request::get("/callout"), echo_upstream);
    let up = ex.upstream_request.unwrap();
    assert_eq!(up.headers.get("x-callout-status"), Some("503"));
    assert!(
        up.headers
            .get("x-callout-body")
            .unwrap()
            .starts_with("upstream connect error")
    );
}

#[test]
fn trailers_end_the_request_and_release_a_buffered_body() {
    let mut host = host_with(common::conformance(), "").build().unwrap();
    for (path, body) in [("/plain", "abc"), ("/body", "abc")] {
        let mut req = Request::post(path, body);
        req.trailers = Some(HeaderMap::from_pairs([("x-trailer", "1")]));
        let ex = host.send(&req, echo_upstream);
        let up = ex
            .upstream_request
            .unwrap_or_else(|| panic!("{path} never reached upstream"));
        // /body buffers until end of stream, which only the trailers bring: it never saw it.
        assert_eq!(up.body, b"abc", "{path}");
        assert_eq!(up.trailers.get("x-trailer"), Some("1"));
        assert_eq!(ex.response.unwrap().status(), Some(200));
    }
}

#[test]
fn a_guest_that_exhausts_its_memory_limit_traps_instead_of_the_host() {
    let mut host = host_with(common::conformance(), "")
        .memory_limit(64 << 20)
        .build()
        .unwrap();
    let ex = host.send(&Request::get("/trap/oom"), no_upstream);
    assert!(ex.failed);
    // The SDK's allocator gets no memory and aborts: an `unreachable` trap, not a host failure.
    let failure = host.logs_containing("VM failed");
    assert!(failure[0].message.contains("unreachable"), "{failure:?}");
    assert_eq!(ex.response.unwrap().status(), Some(503));
}
