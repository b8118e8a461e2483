//! The scenarios a request path selects, each exercising one group of host functions and
//! reporting what the host answered: headers, properties, shared data, queues, metrics and the
//! rest. Reports go to request headers or a local reply; nothing here is ever deployed.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, LogLevel, MapType};

use crate::{
    Stream, cas_increment, log, proxy_dequeue_shared_queue, proxy_done, proxy_get_buffer_status,
    proxy_get_header_map_size, result_name, status_name, text,
};

impl Stream {
    pub(crate) fn headers_scenario(&mut self) -> Action {
        // Client-supplied internal headers must never reach the upstream.
        let names: Vec<String> = self
            .get_http_request_headers_bytes()
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with("x-lightning-wall-"))
            .collect();
        for name in names {
            self.remove_http_request_header(&name);
        }
        let one = self.get_http_request_header_bytes("x-one");
        self.add_http_request_header("x-one-seen", &text(one));
        self.add_http_request_header("x-conformance-added", "yes");
        self.set_http_request_header("x-conformance-replace", Some("replaced"));
        self.set_http_request_header("x-conformance-remove", None);
        let missing = self.get_http_request_header_bytes("x-not-sent");
        self.add_http_request_header("x-missing", if missing.is_none() { "none" } else { "some" });
        let mut size = 0u32;
        // SAFETY: `size` is a valid out-pointer for the duration of the call.
        let st =
            unsafe { proxy_get_header_map_size(MapType::HttpRequestHeaders as u32, &mut size) };
        self.add_http_request_header("x-map-size", &format!("{st}:{size}"));
        Action::Continue
    }

    pub(crate) fn properties_scenario(&mut self) -> Action {
        let mut out = Vec::new();
        for path in [
            vec!["source", "address"],
            vec!["request", "path"],
            vec!["request", "method"],
            vec!["request", "host"],
            vec!["request", "scheme"],
            vec!["request", "id"],
            vec!["plugin_root_id"],
            vec!["plugin_name"],
            vec!["plugin_vm_id"],
            vec!["does", "not", "exist"],
            vec!["custom"],
        ] {
            let v = hostcalls::get_property(path.clone());
            let shown = match &v {
                Ok(Some(b)) => String::from_utf8_lossy(b).into_owned(),
                Ok(None) => "<none>".into(),
                Err(e) => status_name(*e).into(),
            };
            out.push(format!("{}={}", path.join("."), shown));
        }
        let set = hostcalls::set_property(vec!["custom"], Some(b"value"));
        let back = text(hostcalls::get_property(vec!["custom"]).ok().flatten());
        out.push(format!(
            "set_custom={} custom_after={back}",
            result_name(&set)
        ));
        let size = hostcalls::get_property(vec!["request", "size"])
            .ok()
            .flatten();
        out.push(format!("request.size_len={}", size.map_or(0, |b| b.len())));
        let headers = hostcalls::get_property(vec!["request", "headers"])
            .ok()
            .flatten();
        out.push(format!(
            "request.headers_len={}",
            headers.map_or(0, |b| b.len())
        ));
        self.reply(200, &out.join("\n"));
        Action::Pause
    }

    pub(crate) fn shared_scenario(&mut self) -> Action {
        let (n, mismatches) = cas_increment("counter");
        self.add_http_request_header("x-counter", &n.to_string());
        self.add_http_request_header("x-cas-mismatches", &mismatches.to_string());
        Action::Continue
    }

    pub(crate) fn stale_cas_scenario(&mut self) -> Action {
        let (_, cas) = self.get_shared_data("counter");
        let first = self.set_shared_data("counter", Some(b"100"), cas);
        let second = self.set_shared_data("counter", Some(b"200"), cas);
        let (value, _) = self.get_shared_data("counter");
        let missing = self.get_shared_data("never-set");
        self.reply(
            200,
            &format!(
                "first={} second={} value={} missing={}",
                result_name(&first),
                result_name(&second),
                text(value),
                if missing.0.is_none() && missing.1.is_none() {
                    "none"
                } else {
                    "some"
                }
            ),
        );
        Action::Pause
    }

    pub(crate) fn queue_scenario(&mut self) -> Action {
        let vm_id = text(hostcalls::get_property(vec!["plugin_vm_id"]).ok().flatten());
        let resolved = self.resolve_shared_queue(&vm_id, "conformance_queue");
        let unknown = self.resolve_shared_queue(&vm_id, "no_such_queue");
        let msg = text(self.get_http_request_header_bytes("x-message"));
        let enq = match resolved {
            Some(q) => result_name(&hostcalls::enqueue_shared_queue(q, Some(msg.as_bytes()))),
            None => "unresolved",
        };
        let last = text(self.get_shared_data("last_dequeued").0);
        self.add_http_request_header("x-last-dequeued", &last);
        let bad = hostcalls::enqueue_shared_queue(0xdead, Some(b"x"));
        let (mut p, mut n) = (std::ptr::null_mut::<u8>(), 0usize);
        // SAFETY: valid out-pointers; nothing is returned for an unknown token.
        let deq_bad = unsafe { proxy_dequeue_shared_queue(0xdead, &mut p, &mut n) };
        self.add_http_request_header(
            "x-queue",
            &format!(
                "resolved={} same={} unknown={} enqueue={enq} bad_enqueue={} bad_dequeue={deq_bad}",
                resolved.is_some(),
                resolved == Some(self.shared.queue.get()),
                unknown.is_none(),
                result_name(&bad),
            ),
        );
        Action::Continue
    }

    pub(crate) fn metrics_scenario(&mut self) -> Action {
        let s = &self.shared;
        let inc = hostcalls::increment_metric(s.requests_metric.get(), 1);
        let gauge_up = hostcalls::increment_metric(s.gauge_metric.get(), 5);
        let gauge_down = hostcalls::increment_metric(s.gauge_metric.get(), -2);
        let rec = hostcalls::record_metric(s.histogram_metric.get(), 42);
        let counter = hostcalls::get_metric(s.requests_metric.get());
        let gauge = hostcalls::get_metric(s.gauge_metric.get());
        let hist = hostcalls::get_metric(s.histogram_metric.get());
        let unknown = hostcalls::get_metric(0x7fff_fff0);
        let negative_counter = hostcalls::increment_metric(s.requests_metric.get(), -1);
        self.reply(
            200,
            &format!(
                "inc={} gauge_up={} gauge_down={} record={} counter={:?} gauge={:?} histogram={} \
                 unknown={} negative_counter={}",
                result_name(&inc),
                result_name(&gauge_up),
                result_name(&gauge_down),
                result_name(&rec),
                counter.ok(),
                gauge.ok(),
                result_name(&hist),
                result_name(&unknown),
                result_name(&negative_counter),
            ),
        );
        Action::Pause
    }

    pub(crate) fn misc_scenario(&mut self) -> Action {
        let now = self
            .get_current_time()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        // std's clock and hashing go through WASI (clock_time_get, random_get) on wasip1.
        let std_now = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut m = HashMap::new();
        m.insert(1, 2);
        println!("stdout line from the guest");
        eprintln!("stderr line from the guest");
        let level = hostcalls::get_log_level().map_or(99, |l| l as u32);
        for (l, name) in [
            (LogLevel::Trace, "trace"),
            (LogLevel::Debug, "debug"),
            (LogLevel::Info, "info"),
            (LogLevel::Warn, "warn"),
            (LogLevel::Error, "error"),
            (LogLevel::Critical, "critical"),
        ] {
            log(l, &format!("level {name}"));
        }
        let foreign = hostcalls::call_foreign_function("no_such_function", Some(b"x"));
        // SAFETY: no arguments.
        let done = unsafe { proxy_done() };
        let effective = hostcalls::set_effective_context(0xfff_fff);
        let mut len = 0u32;
        let mut flags = 0u32;
        // SAFETY: valid out-pointers for the duration of the call.
        let buf = unsafe {
            proxy_get_buffer_status(BufferType::PluginConfiguration as u32, &mut len, &mut flags)
        };
        let grpc = hostcalls::dispatch_grpc_call(
            "no_such_cluster",
            "svc",
            "Method",
            vec![],
            None,
            Duration::from_secs(1),
        );
        let grpc_stream = hostcalls::open_grpc_stream("no_such_cluster", "svc", "Method", vec![]);
        let grpc_send = hostcalls::send_grpc_stream_message(77, Some(b"m"), false);
        let grpc_cancel = hostcalls::cancel_grpc_call(77);
        let grpc_close = hostcalls::close_grpc_stream(77);
        let grpc_status = hostcalls::get_grpc_status().map(|(c, _)| c);
        self.reply(
            200,
            &format!(
                "now={} std_now={} log_level={level} foreign={} done={done} effective={} \
                 buffer_status={buf} grpc_call={} grpc_stream={} grpc_send={} grpc_cancel={} \
                 grpc_close={} grpc_status={:?}",
                now > 0,
                std_now > 0,
                result_name(&foreign),
                result_name(&effective),
                result_name(&grpc),
                result_name(&grpc_stream),
                result_name(&grpc_send),
                result_name(&grpc_cancel),
                result_name(&grpc_close),
                grpc_status.ok(),
            ),
        );
        Action::Pause
    }
}
