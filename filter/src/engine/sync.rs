//! The filter's side of the sidecar contract (docs/internal-api.md): bootstrap once, load the
//! revocation snapshot once (`GET /v1/revocations/snapshot`), then every tick `GET /v1/sync`
//! (revocations since the snapshot's head, policy version) and `POST /v1/events` (activity,
//! verdicts).
//! A state machine with no I/O: it says which call to make and digests answers. A failed call
//! changes nothing but the reachability flag, and events are never lost to one (they are queued
//! again); a garbage answer is a failed call.

use std::collections::{BTreeMap, BTreeSet};

use lightning_wall_contract::events::{Event, EventBatch, UsageCount};
pub use lightning_wall_contract::events::{Finding, Trigger, UsageKind, Verdict};
use lightning_wall_contract::paths;
use lightning_wall_contract::store_id::StoreId;
use lightning_wall_contract::sync::SyncAnswer;

use super::health;
use super::host::{Host, Level, Metric};
use super::policy::Policy;
use super::revocations::{self, Revocations};

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
    fn digest_batch(
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
    fn take_batch(&mut self) -> Vec<Event> {
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

    fn put_back(&mut self, batch: Vec<Event>) {
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
fn events_call(events: Vec<Event>) -> (Call, Vec<Event>) {
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

/// Which call an answer belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// `GET /v1/bootstrap`.
    Bootstrap,
    /// `GET /v1/revocations/snapshot` (once per worker, before the first sync).
    Snapshot,
    /// `GET /v1/sync`.
    Sync,
    /// `POST /v1/events`.
    Events,
}

/// A call the adapter must dispatch to the sidecar cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// Which one.
    pub kind: CallKind,
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Path and query.
    pub path: String,
    /// JSON body (POST only).
    pub body: Option<Vec<u8>>,
}

/// What an answer changed.
#[derive(Debug, Default)]
pub struct Digest {
    /// A new policy to install.
    pub policy: Option<Policy>,
    /// A call to make at once (a sync with `more: true`, or a bootstrap on a version change).
    pub follow_up: Option<Call>,
}

/// The sync state of one worker VM.
#[derive(Debug, Default)]
pub struct SyncState {
    version: Option<String>,
    needs_bootstrap: bool,
    since: u64,
    bootstrap_in_flight: bool,
    /// Whether the revocation snapshot is loaded (syncs start from its head).
    snapshot_loaded: bool,
    snapshot_in_flight: bool,
    sync_in_flight: bool,
    /// The `since` the sync in flight was sent with: an answer to a sync sent before the
    /// snapshot was (re)loaded must not move the cursor the snapshot set.
    sync_sent_since: u64,
    /// The sidecar's store, from the last bootstrap (`None` from older sidecars).
    store: Option<StoreId>,
    events_in_flight: Option<Vec<Event>>,
    /// Whether the last call to the sidecar succeeded.
    pub reachable: bool,
}

impl SyncState {
    /// A worker that has not bootstrapped yet.
    pub fn new() -> SyncState {
        SyncState {
            needs_bootstrap: true,
            ..SyncState::default()
        }
    }

    /// Whether a policy is installed.
    pub fn bootstrapped(&self) -> bool {
        self.version.is_some()
    }

    fn bootstrap_call(&mut self) -> Call {
        self.bootstrap_in_flight = true;
        Call {
            kind: CallKind::Bootstrap,
            method: "GET",
            path: paths::BOOTSTRAP.into(),
            body: None,
        }
    }

    fn snapshot_call(&mut self) -> Call {
        self.snapshot_in_flight = true;
        Call {
            kind: CallKind::Snapshot,
            method: "GET",
            path: paths::REVOCATION_SNAPSHOT.into(),
            body: None,
        }
    }

    /// The revocation call due now: the snapshot until it is loaded, then syncs. `None` while
    /// one is in flight.
    fn revocation_call(&mut self) -> Option<Call> {
        if !self.snapshot_loaded {
            return (!self.snapshot_in_flight).then(|| self.snapshot_call());
        }
        (!self.sync_in_flight).then(|| self.sync_call())
    }

    fn sync_call(&mut self) -> Call {
        self.sync_in_flight = true;
        self.sync_sent_since = self.since;
        // The store we synced `since` in: a sidecar whose store is behind it knows its store
        // went back (docs/internal-api.md "GET /v1/sync").
        let path = match self.store {
            Some(store) => format!(
                "{}?since={}&store={}",
                paths::SYNC,
                self.since,
                store.to_hex()
            ),
            None => format!("{}?since={}", paths::SYNC, self.since),
        };
        Call {
            kind: CallKind::Sync,
            method: "GET",
            path,
            body: None,
        }
    }

    /// The calls due at a tick (none while the same kind is still in flight).
    pub fn on_tick(&mut self, outbox: &mut Outbox) -> Vec<Call> {
        let mut calls = Vec::new();
        if self.needs_bootstrap || self.version.is_none() {
            if !self.bootstrap_in_flight {
                calls.push(self.bootstrap_call());
            }
            // Revocations and events still flow while (re)bootstrapping: tokens keep verifying
            // under the old keys, and a forfeit must not wait for a policy change.
            if self.version.is_none() {
                return calls;
            }
        }
        calls.extend(self.revocation_call());
        if self.events_in_flight.is_none() && !outbox.is_empty() {
            let (call, batch) = events_call(outbox.take_batch());
            self.events_in_flight = Some(batch);
            calls.push(call);
        }
        calls
    }

    /// The adapter could not dispatch a call (unknown cluster…): as if it failed.
    pub fn dispatch_failed(&mut self, kind: CallKind, host: &dyn Host, outbox: &mut Outbox) {
        // A failed call carries no revocations: an empty set stands in for the worker's.
        self.on_answer(kind, None, &[], host, outbox, &mut Revocations::default());
    }

    /// Digests an answer: `status` is `None` for a reset/failed call.
    pub fn on_answer(
        &mut self,
        kind: CallKind,
        status: Option<u16>,
        body: &[u8],
        host: &dyn Host,
        outbox: &mut Outbox,
        revoked: &mut Revocations,
    ) -> Digest {
        let ok = status == Some(200);
        let digest = match kind {
            CallKind::Bootstrap => {
                self.bootstrap_in_flight = false;
                match ok.then(|| Policy::from_bootstrap(body)) {
                    Some(Ok(policy)) => {
                        host.log(
                            Level::Info,
                            format_args!(
                                "lightning-wall: policy {} installed ({} routes, {} keys)",
                                policy.version,
                                policy.routes.len(),
                                policy.keys.len()
                            ),
                        );
                        if self.version.is_some() && policy.store_id != self.store {
                            // Another store: its revocations arrive in its snapshot (which
                            // replaces the old store's; what was learnt since stays), and its
                            // sequence numbers are not the old store's.
                            host.log(
                                Level::Warn,
                                format_args!(
                                    "lightning-wall: the sidecar's store changed; loading its revocation snapshot"
                                ),
                            );
                            self.snapshot_loaded = false;
                        }
                        self.store = policy.store_id;
                        self.version = Some(policy.version.clone());
                        self.needs_bootstrap = false;
                        // A new worker loads its snapshot at once rather than a tick later:
                        // deposit credentials wait for it.
                        let follow_up = if self.snapshot_loaded {
                            None
                        } else {
                            self.revocation_call()
                        };
                        Ok(Digest {
                            policy: Some(policy),
                            follow_up,
                        })
                    }
                    Some(Err(e)) => Err(format!("bootstrap refused: {e}")),
                    None => Err(format!("bootstrap failed (status {status:?})")),
                }
            }
            CallKind::Snapshot => self.digest_snapshot(status, body.to_vec(), revoked),
            CallKind::Sync => {
                self.sync_in_flight = false;
                self.digest_sync(ok, status, body, host, revoked)
            }
            CallKind::Events => {
                let batch = self.events_in_flight.take().unwrap_or_default();
                outbox
                    .digest_batch(batch, status, host)
                    .map(|()| Digest::default())
            }
        };
        self.conclude(status, digest, host)
    }

    /// Digests the answer to the snapshot call, taking the body as received (up to megabytes:
    /// the adapter hands it over rather than a copy).
    pub fn on_snapshot(
        &mut self,
        status: Option<u16>,
        body: Vec<u8>,
        host: &dyn Host,
        revoked: &mut Revocations,
    ) -> Digest {
        let digest = self.digest_snapshot(status, body, revoked);
        self.conclude(status, digest, host)
    }

    fn digest_snapshot(
        &mut self,
        status: Option<u16>,
        body: Vec<u8>,
        revoked: &mut Revocations,
    ) -> Result<Digest, String> {
        self.snapshot_in_flight = false;
        if status != Some(200) {
            return Err(format!("revocation snapshot failed (status {status:?})"));
        }
        let head = revoked
            .load_snapshot(body)
            .map_err(|e| format!("revocation snapshot refused: {e}"))?;
        self.snapshot_loaded = true;
        self.since = head;
        // Then at once what was revoked since, and the policy version.
        Ok(Digest {
            policy: None,
            follow_up: self.revocation_call(),
        })
    }

    /// Records an answer's outcome: reachability, health, failures.
    fn conclude(
        &mut self,
        status: Option<u16>,
        digest: Result<Digest, String>,
        host: &dyn Host,
    ) -> Digest {
        if status == Some(200) {
            health::record(host, true);
        } else if health::no_answer(status) {
            health::record(host, false);
        }
        match digest {
            Ok(d) => {
                self.reachable = true;
                d
            }
            Err(message) => {
                self.reachable = false;
                host.count(Metric::SyncFailures);
                host.log(Level::Warn, format_args!("lightning-wall: {message}"));
                Digest::default()
            }
        }
    }

    fn digest_sync(
        &mut self,
        ok: bool,
        status: Option<u16>,
        body: &[u8],
        host: &dyn Host,
        revoked: &mut Revocations,
    ) -> Result<Digest, String> {
        if !ok {
            return Err(format!("sync failed (status {status:?})"));
        }
        let answer: SyncAnswer =
            serde_json::from_slice(body).map_err(|e| format!("sync answer refused: {e}"))?;
        let mut ids = Vec::with_capacity(answer.revocations.len());
        for (i, r) in answer.revocations.iter().enumerate() {
            match revocations::parse_token_hex(&r.token_id) {
                Some(id) => ids.push(id),
                None => return Err(format!("sync answer refused: revocations[{i}].token_id")),
            }
        }
        if answer.next_since < self.since {
            // The sidecar's sequence restarted (a new store): follow it rather than refuse
            // every answer from now on. Revocations already recorded stay recorded.
            host.log(
                Level::Warn,
                format_args!(
                    "lightning-wall: revocation sequence went back from {} to {}; following it",
                    self.since, answer.next_since
                ),
            );
        }
        let now = host.now_unix();
        for id in ids {
            revoked.learn(id, now);
        }
        // A sync sent before a snapshot (re)load leaves the cursor where the snapshot set it.
        let current = self.snapshot_loaded && self.sync_sent_since == self.since;
        if current {
            self.since = answer.next_since;
        }
        let mut digest = Digest::default();
        if self.version.as_deref() != Some(answer.policy_version.as_str()) {
            self.needs_bootstrap = true;
            if !self.bootstrap_in_flight {
                digest.follow_up = Some(self.bootstrap_call());
            }
        } else if answer.more && current {
            digest.follow_up = Some(self.sync_call());
        }
        Ok(digest)
    }
}

#[cfg(test)]
#[path = "sync_tests.rs"]
pub(crate) mod tests;
