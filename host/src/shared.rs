//! State that Envoy keeps per process and all worker VMs see: shared data keyed by vm_id with one
//! monotonically increasing CAS, shared queues, metrics. Locks are held only for map operations,
//! never across a call into a guest.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::abi::{Status, metric};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the maps half-updated (every critical
    // section is a single map operation), so a poisoned lock is safe to keep using.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// proxy-wasm-cpp-host's `SharedData`: per-vm_id maps of (value, cas) with one counter for all;
/// with [`SharedDataRules`], another host's store.
#[derive(Default)]
pub struct SharedData {
    inner: Mutex<SharedDataInner>,
    rules: SharedDataRules,
}

/// How a host's shared-data store differs from Envoy's (all off: Envoy). See
/// [`crate::semantics::HostSemantics`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SharedDataRules {
    /// CAS 0 only creates a key (ngx_wasm_module).
    pub cas_zero_only_creates: bool,
    /// Keys are matched by their CRC32 alone (ngx_wasm_module).
    pub keys_by_crc32: bool,
    /// A new key past this many is refused with `InternalFailure` (`proxy-wasm-host`: 4,096).
    pub max_keys: Option<usize>,
}

/// key -> (value, cas) for one vm_id.
type VmData = HashMap<Vec<u8>, (Vec<u8>, u32)>;

#[derive(Default)]
struct SharedDataInner {
    next_cas: u32,
    by_vm: HashMap<String, VmData>,
}

impl SharedDataInner {
    fn next_cas(&mut self) -> u32 {
        // cpp-host starts at 1 and skips 0 on wrap: 0 means "no CAS" to the guest.
        self.next_cas = self.next_cas.wrapping_add(1);
        if self.next_cas == 0 {
            self.next_cas = 1;
        }
        self.next_cas
    }
}

impl SharedData {
    pub fn new(rules: SharedDataRules) -> Self {
        SharedData {
            inner: Mutex::default(),
            rules,
        }
    }

    /// The key as the store matches it: itself, or its CRC32 where the host keys by that.
    fn stored_key<'k>(&self, key: &'k [u8]) -> std::borrow::Cow<'k, [u8]> {
        if self.rules.keys_by_crc32 {
            std::borrow::Cow::Owned(crc32fast::hash(key).to_be_bytes().to_vec())
        } else {
            std::borrow::Cow::Borrowed(key)
        }
    }

    pub fn get(&self, vm_id: &str, key: &[u8]) -> Option<(Vec<u8>, u32)> {
        let key = self.stored_key(key);
        let g = lock(&self.inner);
        g.by_vm
            .get(vm_id)
            .and_then(|m| m.get(key.as_ref()))
            .cloned()
    }

    /// Calls `f` with the value without copying it out of the lock.
    pub fn with<R>(&self, vm_id: &str, key: &[u8], f: impl FnOnce(Option<(&[u8], u32)>) -> R) -> R {
        let key = self.stored_key(key);
        let g = lock(&self.inner);
        f(g.by_vm
            .get(vm_id)
            .and_then(|m| m.get(key.as_ref()))
            .map(|(v, c)| (v.as_slice(), *c)))
    }

    /// cpp-host semantics: a non-zero `cas` must match the stored one, a missing key is created
    /// whatever `cas` says, and every successful write gets a fresh CAS. The rules change this:
    /// CAS 0 over an existing key is `CasMismatch`, a new key past `max_keys` is
    /// `InternalFailure`.
    pub fn set(&self, vm_id: &str, key: &[u8], value: &[u8], cas: u32) -> Status {
        let key = self.stored_key(key);
        let key = key.as_ref();
        let rules = self.rules;
        let mut g = lock(&self.inner);
        let next = g.next_cas();
        let map = g.by_vm.entry(vm_id.to_string()).or_default();
        if !map.contains_key(key) && rules.max_keys.is_some_and(|max| map.len() >= max) {
            return Status::InternalFailure;
        }
        match map.get_mut(key) {
            Some(entry) => {
                if (cas != 0 || rules.cas_zero_only_creates) && cas != entry.1 {
                    return Status::CasMismatch;
                }
                entry.0.clear();
                entry.0.extend_from_slice(value);
                entry.1 = next;
            }
            None => {
                map.insert(key.to_vec(), (value.to_vec(), next));
            }
        }
        Status::Ok
    }

    /// How many keys one vm_id holds and their size (keys plus values, in bytes).
    pub fn usage(&self, vm_id: &str) -> (usize, usize) {
        let g = lock(&self.inner);
        g.by_vm.get(vm_id).map_or((0, 0), |m| {
            (m.len(), m.iter().map(|(k, (v, _))| k.len() + v.len()).sum())
        })
    }

    /// Every key and value of one vm_id (for test inspection).
    /// (With CRC32 keys, the keys are the 4-byte big-endian CRC32s.)
    pub fn snapshot(&self, vm_id: &str) -> HashMap<Vec<u8>, Vec<u8>> {
        let g = lock(&self.inner);
        g.by_vm
            .get(vm_id)
            .map(|m| m.iter().map(|(k, (v, _))| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}

/// Where `on_queue_ready` must be delivered: the worker VM and root context that registered last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueOwner {
    pub worker: usize,
    pub context_id: u32,
}

/// proxy-wasm-cpp-host's `SharedQueue`, keyed by (vm_id, name).
#[derive(Default)]
pub struct SharedQueues {
    inner: Mutex<QueuesInner>,
}

#[derive(Default)]
struct QueuesInner {
    next_token: u32,
    tokens: HashMap<(String, Vec<u8>), u32>,
    queues: HashMap<u32, Queue>,
}

struct Queue {
    owner: QueueOwner,
    items: VecDeque<Vec<u8>>,
}

impl SharedQueues {
    /// Registers (or re-registers, keeping queued items) and returns the token.
    pub fn register(&self, vm_id: &str, name: &[u8], owner: QueueOwner) -> u32 {
        let mut g = lock(&self.inner);
        let key = (vm_id.to_string(), name.to_vec());
        let token = match g.tokens.get(&key) {
            Some(t) => *t,
            None => {
                let mut t;
                loop {
                    g.next_token = g.next_token.wrapping_add(1);
                    t = g.next_token;
                    if t != 0 && !g.queues.contains_key(&t) {
                        break;
                    }
                }
                g.tokens.insert(key, t);
                t
            }
        };
        let q = g.queues.entry(token).or_insert_with(|| Queue {
            owner,
            items: VecDeque::new(),
        });
        q.owner = owner;
        token
    }

    /// 0 when not registered (cpp-host: "zero indicates that the queue was not found").
    pub fn resolve(&self, vm_id: &str, name: &[u8]) -> u32 {
        let g = lock(&self.inner);
        g.tokens
            .get(&(vm_id.to_string(), name.to_vec()))
            .copied()
            .unwrap_or(0)
    }

    pub fn dequeue(&self, token: u32) -> Result<Vec<u8>, Status> {
        let mut g = lock(&self.inner);
        let q = g.queues.get_mut(&token).ok_or(Status::NotFound)?;
        q.items.pop_front().ok_or(Status::Empty)
    }

    /// Pushes and returns who must get `on_queue_ready`.
    pub fn enqueue(&self, token: u32, value: &[u8]) -> Result<QueueOwner, Status> {
        let mut g = lock(&self.inner);
        let q = g.queues.get_mut(&token).ok_or(Status::NotFound)?;
        q.items.push_back(value.to_vec());
        Ok(q.owner)
    }
}

/// One metric as Envoy's stats store keeps it; all workers defining the same name share it.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricValue {
    Counter(u64),
    Gauge(i64),
    Histogram(Vec<u64>),
}

/// Metric ids carry their type in the low two bits, like Envoy's `kMetricTypeMask`.
const TYPE_MASK: u32 = 0x3;

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<MetricsInner>,
}

#[derive(Default)]
struct MetricsInner {
    by_name: HashMap<String, u32>,
    values: Vec<(String, MetricValue)>,
}

impl Metrics {
    pub fn define(&self, kind: i32, name: &str) -> Result<u32, Status> {
        let initial = match kind {
            metric::COUNTER => MetricValue::Counter(0),
            metric::GAUGE => MetricValue::Gauge(0),
            metric::HISTOGRAM => MetricValue::Histogram(Vec::new()),
            _ => return Err(Status::BadArgument),
        };
        let mut g = lock(&self.inner);
        if let Some(id) = g
            .by_name
            .get(name)
            .filter(|id| (**id & TYPE_MASK) as i32 == kind)
        {
            return Ok(*id);
        }
        let index = g.values.len() as u32;
        let id = (index << 2) | kind as u32;
        g.values.push((name.to_string(), initial));
        g.by_name.insert(name.to_string(), id);
        Ok(id)
    }

    fn slot(g: &mut MetricsInner, id: u32) -> Option<&mut MetricValue> {
        g.values.get_mut((id >> 2) as usize).map(|(_, v)| v)
    }

    /// Envoy: counters only go up (offset must be > 0); gauges move either way; histograms
    /// cannot be incremented.
    pub fn increment(&self, id: u32, offset: i64) -> Status {
        let mut g = lock(&self.inner);
        let kind = (id & TYPE_MASK) as i32;
        if kind != metric::COUNTER && kind != metric::GAUGE {
            return Status::BadArgument;
        }
        match Self::slot(&mut g, id) {
            Some(MetricValue::Counter(c)) if kind == metric::COUNTER => {
                if offset > 0 {
                    *c = c.saturating_add(offset as u64);
                    Status::Ok
                } else {
                    Status::BadArgument
                }
            }
            Some(MetricValue::Gauge(v)) if kind == metric::GAUGE => {
                *v = v.saturating_add(offset);
                Status::Ok
            }
            _ => Status::NotFound,
        }
    }

    pub fn record(&self, id: u32, value: u64) -> Status {
        let mut g = lock(&self.inner);
        let kind = (id & TYPE_MASK) as i32;
        match Self::slot(&mut g, id) {
            Some(MetricValue::Counter(c)) if kind == metric::COUNTER => {
                *c = c.saturating_add(value);
                Status::Ok
            }
            Some(MetricValue::Gauge(v)) if kind == metric::GAUGE => {
                *v = value as i64;
                Status::Ok
            }
            Some(MetricValue::Histogram(h)) if kind == metric::HISTOGRAM => {
                h.push(value);
                Status::Ok
            }
            _ => Status::NotFound,
        }
    }

    /// Envoy cannot read a histogram back (BadArgument).
    pub fn get(&self, id: u32) -> Result<u64, Status> {
        let mut g = lock(&self.inner);
        let kind = (id & TYPE_MASK) as i32;
        if kind != metric::COUNTER && kind != metric::GAUGE {
            return Err(Status::BadArgument);
        }
        match Self::slot(&mut g, id) {
            Some(MetricValue::Counter(c)) if kind == metric::COUNTER => Ok(*c),
            Some(MetricValue::Gauge(v)) if kind == metric::GAUGE => Ok(*v as u64),
            _ => Err(Status::NotFound),
        }
    }

    pub fn by_name(&self, name: &str) -> Option<MetricValue> {
        let g = lock(&self.inner);
        let id = g.by_name.get(name)?;
        g.values.get((id >> 2) as usize).map(|(_, v)| v.clone())
    }

    pub fn all(&self) -> Vec<(String, MetricValue)> {
        lock(&self.inner).values.clone()
    }
}

/// A log line written by a guest (proxy_log or WASI stdout/stderr).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub worker: usize,
    pub level: crate::abi::LogLevel,
    pub message: String,
}

/// Everything the workers of one plugin share.
#[derive(Default)]
pub struct HostShared {
    pub data: SharedData,
    pub queues: SharedQueues,
    pub metrics: Metrics,
    pub logs: Mutex<Vec<LogEntry>>,
    /// Keep guest log lines in memory for inspection (tests); the gateway only traces them.
    pub capture_logs: bool,
    /// Queue notifications for other workers than the one that enqueued.
    inbox: Mutex<Vec<(QueueOwner, u32)>>,
    /// Wakes a worker that has inbox items (set by the gateway; tests poll).
    waker: Mutex<Option<Waker>>,
}

pub type Waker = Arc<dyn Fn(usize) + Send + Sync>;

impl HostShared {
    pub fn new(capture_logs: bool) -> Arc<Self> {
        Self::with_rules(capture_logs, SharedDataRules::default())
    }

    /// A host whose shared data follows `rules` (another host than Envoy).
    pub fn with_rules(capture_logs: bool, rules: SharedDataRules) -> Arc<Self> {
        Arc::new(HostShared {
            capture_logs,
            data: SharedData::new(rules),
            ..Default::default()
        })
    }

    pub fn push_log(&self, entry: LogEntry) {
        if self.capture_logs {
            lock(&self.logs).push(entry);
        }
    }

    pub fn logs(&self) -> Vec<LogEntry> {
        lock(&self.logs).clone()
    }

    pub fn set_waker(&self, waker: Waker) {
        *lock(&self.waker) = Some(waker);
    }

    /// Records that `owner` must get `on_queue_ready(token)` and wakes its worker.
    pub fn notify_queue(&self, owner: QueueOwner, token: u32) {
        lock(&self.inbox).push((owner, token));
        let waker = lock(&self.waker).clone();
        if let Some(w) = waker {
            w(owner.worker);
        }
    }

    /// Takes the queue notifications addressed to `worker`: (context id, token).
    pub fn take_inbox(&self, worker: usize) -> Vec<(u32, u32)> {
        let mut g = lock(&self.inbox);
        let mut mine = Vec::new();
        g.retain(|(o, t)| {
            if o.worker == worker {
                mine.push((o.context_id, *t));
                false
            } else {
                true
            }
        });
        mine
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_is_checked_and_every_write_gets_a_fresh_one() {
        let d = SharedData::default();
        assert_eq!(d.set("vm", b"k", b"1", 0), Status::Ok);
        let (_, c1) = d.get("vm", b"k").unwrap();
        assert_eq!(d.set("vm", b"k", b"2", c1), Status::Ok);
        let (v, c2) = d.get("vm", b"k").unwrap();
        assert_eq!(v, b"2");
        assert!(c2 > c1);
        assert_eq!(d.set("vm", b"k", b"3", c1), Status::CasMismatch);
        assert_eq!(d.get("vm", b"k").unwrap().0, b"2");
        assert!(d.get("other-vm", b"k").is_none());
    }

    #[test]
    fn nginx_rules_cas_zero_creates_only_keys_alias_by_crc32_and_a_full_store_refuses() {
        let d = SharedData::new(SharedDataRules {
            cas_zero_only_creates: true,
            keys_by_crc32: true,
            max_keys: Some(2),
        });
        assert_eq!(d.set("vm", b"k", b"1", 0), Status::Ok);
        assert_eq!(d.set("vm", b"k", b"2", 0), Status::CasMismatch);
        let (_, cas) = d.get("vm", b"k").unwrap();
        assert_eq!(d.set("vm", b"k", b"2", cas), Status::Ok);
        // "plumless" and "buckeroo" share their CRC32 (0x4ddb0c25).
        assert_eq!(crc32fast::hash(b"plumless"), crc32fast::hash(b"buckeroo"));
        assert_eq!(d.set("vm", b"plumless", b"p", 0), Status::Ok);
        assert_eq!(d.get("vm", b"buckeroo").unwrap().0, b"p");
        assert_eq!(d.set("vm", b"third", b"x", 0), Status::InternalFailure);
        assert!(d.get("vm", b"third").is_none());
    }

    #[test]
    fn counters_refuse_to_go_down_and_histograms_cannot_be_read() {
        let m = Metrics::default();
        let c = m.define(metric::COUNTER, "c").unwrap();
        let h = m.define(metric::HISTOGRAM, "h").unwrap();
        assert_eq!(m.increment(c, -1), Status::BadArgument);
        assert_eq!(m.increment(c, 2), Status::Ok);
        assert_eq!(m.get(c), Ok(2));
        assert_eq!(m.get(h), Err(Status::BadArgument));
        assert_eq!(m.define(metric::COUNTER, "c"), Ok(c));
        assert_eq!(m.get(c + 4 * 100), Err(Status::NotFound));
    }
}
