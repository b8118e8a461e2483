//! Events waiting for the sidecar (`POST /v1/events`, docs/internal-api.md): deposit activity,
//! usage counts, verdicts, rewards and shadow findings, each bounded while the sidecar is away,
//! batched at the tick or sent at once for a verdict. No I/O: it hands out the call and digests
//! the answer; whatever the sidecar did not take is queued again.

use std::collections::{BTreeMap, BTreeSet};

use lightning_wall_contract::events::{
    Event, EventBatch, Finding, Trigger, UsageCount, UsageKind, Verdict,
};
use lightning_wall_contract::paths;

use super::host::{Host, Level, Metric};
use super::sidecar_call::{Call, CallKind};

/// Most events per batch (the sidecar refuses more).
pub const MAX_BATCH: usize = lightning_wall_contract::events::MAX_EVENTS;
/// Most verdicts kept while the sidecar is unreachable; beyond that the oldest are dropped (the
/// token is revoked locally anyway, and the sidecar's idle timeout refunds what it never hears).
const MAX_QUEUED_VERDICTS: usize = 10_000;
/// Most distinct tokens with pending activity.
const MAX_QUEUED_ACTIVITY: usize = 10_000;
/// Most usage counts waiting (token, kind, window); beyond, new ones are not reported, which
/// only loosens the limits across replicas (each instance still enforces its own count).
const MAX_QUEUED_USAGE: usize = 10_000;

/// Most shadow findings waiting (route, finding, trigger): routes come from the config, so this
/// is never reached by a sane one; beyond it, new keys are not counted. A flood of requests
/// only adds to existing counts.
pub const MAX_QUEUED_FINDINGS: usize = 1_000;

/// A usage count's key in the outbox: reporter, token (hex), kind, window start.
type UsageKey = (u64, String, UsageKind, u64);

/// A shadow finding's key in the outbox: route id, what would have happened, its trigger.
type FindingKey = (String, Finding, Option<Trigger>);

/// Events waiting for the next tick, or for the request that decided a verdict to send them.
#[derive(Debug, Default)]
pub struct Outbox {
    activity: BTreeSet<String>,
    /// Usage counts for the sidecar's sum across replicas, the highest seen per key.
    usage: BTreeMap<UsageKey, u32>,
    verdicts: Vec<Event>,
    /// Shadow findings since the last batch, counted (super::shadow).
    findings: BTreeMap<FindingKey, u64>,
    /// A verdict was queued since the last [`Outbox::flush`]: it must not wait for the tick.
    urgent: bool,
}

/// A `POST /v1/events` with the verdicts (and rewards) waiting, sent at once by the request
/// that decided a verdict rather than at the next tick: a leave sent right after the forfeit
/// must find it at the sidecar. The adapter holds that request's answer until the sidecar
/// answered, then hands the answer to [`Outbox::flushed`].
#[derive(Debug, PartialEq, Eq)]
pub struct Flush {
    /// The call to dispatch.
    pub call: Call,
    batch: Vec<Event>,
}

impl Outbox {
    /// Notes that a deposit token served a request (one event per token per batch).
    pub fn activity(&mut self, token_hex: &str) {
        if self.activity.len() < MAX_QUEUED_ACTIVITY || self.activity.contains(token_hex) {
            self.activity.insert(token_hex.to_owned());
        }
    }

    /// Notes an instance-wide count of a deposit token in a window (see [`Event::Usage`]).
    pub fn usage(
        &mut self,
        reporter: u64,
        token_hex: &str,
        kind: UsageKind,
        window_start: u64,
        count: u32,
    ) {
        use std::collections::btree_map::Entry;
        let queued = self.usage.len();
        match self
            .usage
            .entry((reporter, token_hex.to_owned(), kind, window_start))
        {
            Entry::Occupied(mut e) => *e.get_mut() = (*e.get()).max(count),
            Entry::Vacant(e) if queued < MAX_QUEUED_USAGE => {
                e.insert(count);
            }
            Entry::Vacant(_) => {}
        }
    }

    /// Counts one shadow finding for the next batch. Never urgent: a finding costs nobody.
    pub fn finding(&mut self, route_id: &str, finding: Finding, trigger: Option<Trigger>) {
        self.add_findings(route_id, finding, trigger, 1);
    }

    fn add_findings(&mut self, route_id: &str, finding: Finding, trigger: Option<Trigger>, n: u64) {
        let queued = self.findings.len();
        // Looked up by reference first: the hot path of a flood allocates nothing.
        if let Some(count) = self
            .findings
            .iter_mut()
            .find(|((r, f, t), _)| r == route_id && *f == finding && *t == trigger)
            .map(|(_, c)| c)
        {
            *count = count.saturating_add(n);
        } else if queued < MAX_QUEUED_FINDINGS {
            self.findings
                .insert((route_id.to_owned(), finding, trigger), n);
        }
    }

    /// Queues a verdict for the sidecar.
    pub fn verdict(&mut self, token_hex: &str, verdict: Verdict, trigger: Trigger) {
        if self.verdicts.len() >= MAX_QUEUED_VERDICTS {
            self.verdicts.remove(0);
        }
        self.urgent = true;
        self.verdicts.push(Event::Verdict {
            token_id: token_hex.to_owned(),
            verdict,
            trigger,
        });
    }

    /// Queues an upstream reward (kept like verdicts: never dropped by a failed call).
    pub fn reward(&mut self, token_hex: &str, sats: u64, reward_id: &str) {
        if self.verdicts.len() >= MAX_QUEUED_VERDICTS {
            self.verdicts.remove(0);
        }
        self.verdicts.push(Event::Reward {
            token_id: token_hex.to_owned(),
            sats,
            reward_id: reward_id.to_owned(),
        });
    }

    /// The call that sends a verdict queued since the last flush at once (with whatever else
    /// waits besides activity), or `None` when no verdict was queued.
    pub fn flush(&mut self) -> Option<Flush> {
        if !std::mem::take(&mut self.urgent) || self.verdicts.is_empty() {
            return None;
        }
        let n = self.verdicts.len().min(MAX_BATCH);
        let (call, batch) = events_call(self.verdicts.drain(..n).collect());
        Some(Flush { call, batch })
    }

    /// Digests the answer to a [`Flush`] (`None`: the call failed or could not be made).
    /// Whatever the sidecar did not take is queued again for the tick. True when delivered.
    pub fn flushed(&mut self, flush: Flush, status: Option<u16>, host: &dyn Host) -> bool {
        match self.digest_batch(flush.batch, status, host) {
            Ok(()) => true,
            Err(message) => {
                host.count(Metric::SyncFailures);
                host.log(Level::Warn, format_args!("lightning-wall: {message}"));
                false
            }
        }
    }

    /// What the answer to a batch means: taken (200), refused for good (400/413: resending
    /// would fail forever, so dropped and logged), or failed (queued again).
    pub(super) fn digest_batch(
        &mut self,
        batch: Vec<Event>,
        status: Option<u16>,
        host: &dyn Host,
    ) -> Result<(), String> {
        match status {
            Some(200) => Ok(()),
            Some(400 | 413) => {
                host.log(
                    Level::Error,
                    format_args!(
                        "lightning-wall: sidecar refused an event batch of {} (status {status:?}); dropped",
                        batch.len()
                    ),
                );
                Ok(())
            }
            _ => {
                self.put_back(batch);
                Err(format!("events failed (status {status:?})"))
            }
        }
    }

    /// The shadow count waiting for (route, finding, trigger) (tests).
    #[cfg(test)]
    pub(crate) fn queued_finding(
        &self,
        route_id: &str,
        finding: Finding,
        trigger: Option<Trigger>,
    ) -> u64 {
        self.findings
            .get(&(route_id.to_owned(), finding, trigger))
            .copied()
            .unwrap_or(0)
    }

    /// How many shadow keys and usage counts wait (tests).
    #[cfg(test)]
    pub(crate) fn queued_findings_and_usage(&self) -> (usize, usize) {
        (self.findings.len(), self.usage.len())
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.activity.is_empty()
            && self.verdicts.is_empty()
            && self.usage.is_empty()
            && self.findings.is_empty()
    }

    /// Takes up to [`MAX_BATCH`] events: verdicts first, then usage counts, then activity.
    pub(super) fn take_batch(&mut self) -> Vec<Event> {
        let n = self.verdicts.len().min(MAX_BATCH);
        let mut batch: Vec<Event> = self.verdicts.drain(..n).collect();
        while batch.len() < MAX_BATCH {
            let Some(((reporter, token_id, kind, window_start), count)) = self.usage.pop_first()
            else {
                break;
            };
            batch.push(Event::Usage(UsageCount {
                token_id,
                reporter: format!("{reporter:016x}"),
                kind,
                window_start,
                count,
            }));
        }
        while batch.len() < MAX_BATCH {
            let Some(((route_id, finding, trigger), count)) = self.findings.pop_first() else {
                break;
            };
            batch.push(Event::Shadow {
                route_id,
                finding,
                trigger,
                count,
            });
        }
        while batch.len() < MAX_BATCH {
            let Some(token_id) = self.activity.pop_first() else {
                break;
            };
            batch.push(Event::Activity { token_id });
        }
        batch
    }

    pub(super) fn put_back(&mut self, batch: Vec<Event>) {
        let mut verdicts = Vec::new();
        for e in batch {
            match e {
                Event::Activity { token_id } => {
                    self.activity.insert(token_id);
                }
                Event::Usage(u) => {
                    if let Some(reporter) = u.reporter_id() {
                        self.usage(reporter, &u.token_id, u.kind, u.window_start, u.count);
                    }
                }
                Event::Shadow {
                    route_id,
                    finding,
                    trigger,
                    count,
                } => self.add_findings(&route_id, finding, trigger, count),
                kept @ (Event::Verdict { .. } | Event::Reward { .. }) => verdicts.push(kept),
            }
        }
        verdicts.append(&mut self.verdicts);
        self.verdicts = verdicts;
        if self.verdicts.len() > MAX_QUEUED_VERDICTS {
            let extra = self.verdicts.len() - MAX_QUEUED_VERDICTS;
            self.verdicts.drain(..extra);
        }
    }
}

/// The `POST /v1/events` of a batch, and the batch back (kept until the answer says whether
/// the sidecar took it).
pub(super) fn events_call(events: Vec<Event>) -> (Call, Vec<Event>) {
    let batch = EventBatch { events };
    let body = serde_json::to_vec(&batch).unwrap_or_default();
    let call = Call {
        kind: CallKind::Events,
        method: "POST",
        path: paths::EVENTS.into(),
        body: Some(body),
    };
    (call, batch.events)
}
