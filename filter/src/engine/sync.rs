//! The filter's side of the sidecar contract (docs/internal-api.md): bootstrap once, load the
//! revocation snapshot once (`GET /v1/revocations/snapshot`), then every tick `GET /v1/sync`
//! (revocations since the snapshot's head, policy version) and `POST /v1/events` (activity,
//! verdicts).
//! A state machine with no I/O: it says which call to make and digests answers. A failed call
//! changes nothing but the reachability flag, and events are never lost to one (they are queued
//! again); a garbage answer is a failed call.

use lightning_wall_contract::events::Event;
pub use lightning_wall_contract::events::{Finding, Trigger, UsageKind, Verdict};
use lightning_wall_contract::paths;
use lightning_wall_contract::store_id::StoreId;
use lightning_wall_contract::sync::SyncAnswer;

use super::health;
use super::host::{Host, Level, Metric};
use super::outbox::{Outbox, events_call};
use super::policy::Policy;
use super::revocations::{self, Revocations};
use super::sidecar_call::{Call, CallKind};

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
