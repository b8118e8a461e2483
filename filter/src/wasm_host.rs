//! The host as the engine sees it ([`Host`]), over proxy-wasm host calls: the clock, shared
//! data, metrics (counted here, handed to the host once a tick), logs and the client's address.
//! Only `hostcalls` with results: never an SDK getter that panics on a host status.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, MetricType};

use crate::engine::host::{Host, Level, Metric, SharedValue, SharedWriteError};
use crate::engine::shared_data;
use crate::raw_shared_data::HostSharedData;

/// The host as the engine sees it, over proxy-wasm host calls.
#[derive(Clone, Default)]
pub struct WasmHost {
    /// Each metric's id with the increments not yet handed to the host.
    metrics: Rc<RefCell<HashMap<Metric, (u32, u64)>>>,
}

impl WasmHost {
    /// Hands the counted increments to the host (each worker's root tick). Counting in the
    /// worker and flushing once a tick keeps a host call off every request; Envoy's stats lag by
    /// at most one sync period (default 1 s, shorter than its 5 s stats flush).
    pub fn flush_metrics(&self) {
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

    fn client_address(&self) -> Option<String> {
        let address = hostcalls::get_property(vec!["source", "address"]).ok()??;
        String::from_utf8(address).ok()
    }
}
