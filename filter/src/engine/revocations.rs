//! The revocation set, one view per worker VM so the hot path asks memory, not the host.
//!
//! A new worker first loads a snapshot of every live revocation in one call-out
//! (docs/internal-api.md "GET /v1/revocations/snapshot"): until then it is not [`ready`], and
//! deposit credentials are refused. After that it learns revocations three ways: its own sync
//! with the sidecar from the snapshot's head (every worker syncs), its own verdicts (at once),
//! and other workers' verdicts through a ring of shared-data slots it reads each tick
//! (`lw.rev.head` counts writes; `lw.rev.<n mod RING>` holds the n-th). So a local forfeit
//! reaches every worker within one tick even while the sidecar is down, and the sidecar, which
//! hears the verdict too, sends it to every worker's sync anyway.
//!
//! A token is known by the first 8 bytes of its id (random, drawn by the sidecar): with a
//! million live revocations an honest token shares its prefix with one of them with probability
//! 10^6 / 2^64 ≈ 5·10^-14, and nobody can aim at another visitor's prefix. Bounded: the snapshot
//! is 8 bytes a revocation, loaded once and never grown; the ring has [`RING`] keys; an entry
//! learnt afterwards leaves once the token it names can no longer verify (its `valid_until` when
//! known; for a revocation from sync, which carries no expiry, the longest token lifetime of the
//! policy after it was learnt: a token is minted before it is revoked, so it expires within one
//! lifetime of the revocation).
//!
//! [`ready`]: Revocations::ready

use std::collections::HashMap;

use super::host::{Host, Level, SharedWriteError};

/// Slots of the cross-worker ring. More local verdicts than this within one tick overflow it;
/// a worker that misses one logs it and still gets it from its next sync with the sidecar.
pub const RING: u64 = 1024;
const HEAD_KEY: &str = "lw.rev.head";
const CAS_ATTEMPTS: u32 = 16;

/// Token ids are 32 bytes; hex in shared data and on the wire.
pub type TokenId = [u8; 32];

/// First bytes of a snapshot body (format version 1).
const SNAPSHOT_MAGIC: &[u8; 4] = b"LWR1";
/// Magic, head (u64 big-endian), count (u32 big-endian).
const SNAPSHOT_HEADER_LEN: usize = 16;

/// Why a snapshot body was refused (the worker stays not ready and asks again next tick).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Shorter than its header, or not starting with `LWR1`.
    #[error("not a revocation snapshot (bad header)")]
    BadHeader,
    /// The count does not match the body's length.
    #[error("snapshot says {count} revocations but carries {bytes} bytes of them")]
    LengthMismatch {
        /// Revocations announced.
        count: u64,
        /// Bytes after the header.
        bytes: usize,
    },
    /// Prefixes not strictly ascending (lookups would miss entries).
    #[error("snapshot prefixes not strictly ascending at entry {at}")]
    Unsorted {
        /// Index of the first entry out of order.
        at: usize,
    },
}

/// The 8-byte prefix a token is known by.
fn prefix(id: &TokenId) -> u64 {
    let mut p = [0u8; 8];
    p.copy_from_slice(&id[..8]);
    u64::from_be_bytes(p)
}

/// The snapshot's prefixes: the body as received, header removed, searched in place (no
/// second copy of up to megabytes).
#[derive(Debug, Default)]
struct Snapshot(Vec<u8>);

impl Snapshot {
    fn at(&self, i: usize) -> u64 {
        self.0
            .get(i * 8..i * 8 + 8)
            .and_then(|c| <[u8; 8]>::try_from(c).ok())
            .map_or(0, u64::from_be_bytes)
    }

    fn len(&self) -> usize {
        self.0.len() / 8
    }

    fn contains(&self, p: u64) -> bool {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.at(mid).cmp(&p) {
                core::cmp::Ordering::Equal => return true,
                core::cmp::Ordering::Less => lo = mid + 1,
                core::cmp::Ordering::Greater => hi = mid,
            }
        }
        false
    }

    /// Checks a body and keeps it; returns the snapshot and its head.
    fn parse(mut body: Vec<u8>) -> Result<(Snapshot, u64), SnapshotError> {
        let header = body
            .get(..SNAPSHOT_HEADER_LEN)
            .filter(|h| h.starts_with(SNAPSHOT_MAGIC))
            .ok_or(SnapshotError::BadHeader)?;
        let word = |r: core::ops::Range<usize>| header.get(r).map(<[u8]>::to_vec);
        let head = word(4..12)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes)
            .ok_or(SnapshotError::BadHeader)?;
        let count = word(12..16)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
            .ok_or(SnapshotError::BadHeader)?;
        let bytes = body.len() - SNAPSHOT_HEADER_LEN;
        if u64::from(count).checked_mul(8) != Some(bytes as u64) {
            return Err(SnapshotError::LengthMismatch {
                count: count.into(),
                bytes,
            });
        }
        body.drain(..SNAPSHOT_HEADER_LEN);
        let s = Snapshot(body);
        for i in 1..s.len() {
            if s.at(i - 1) >= s.at(i) {
                return Err(SnapshotError::Unsorted { at: i });
            }
        }
        Ok((s, head))
    }
}

/// Parses 64 hex characters.
pub fn parse_token_hex(hex: &str) -> Option<TokenId> {
    l402::TokenId::from_hex(hex).ok().map(|t| t.0)
}

fn slot_key(n: u64) -> String {
    format!("lw.rev.{}", n % RING)
}

fn read_u64(host: &dyn Host, key: &str) -> (u64, Option<u32>) {
    let v = host.shared_get(key);
    let n = core::str::from_utf8(&v.bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (n, v.cas)
}

/// `<n>,<token hex>,<valid_until>`.
fn parse_slot(bytes: &[u8]) -> Option<(u64, TokenId, u64)> {
    let s = core::str::from_utf8(bytes).ok()?;
    let mut it = s.split(',');
    let n = it.next()?.parse().ok()?;
    let id = parse_token_hex(it.next()?)?;
    let until = it.next()?.parse().ok()?;
    Some((n, id, until))
}

/// One worker's view of the revoked tokens.
#[derive(Debug, Default)]
pub struct Revocations {
    /// Every revocation live when this worker started.
    snapshot: Snapshot,
    /// Whether the snapshot is loaded (until then the view is incomplete).
    ready: bool,
    /// Token prefix → when the entry may go (unix seconds), for revocations learnt since.
    live: HashMap<u64, u64>,
    /// Next ring entry to read; `None` before the first refresh.
    cursor: Option<u64>,
    /// A ring entry counted but not yet written, seen at the last refresh.
    stalled: Option<u64>,
    /// How long a revocation without a known expiry is kept: the longest token lifetime seen.
    horizon_s: u64,
}

impl Revocations {
    /// Whether the token is revoked.
    pub fn contains(&self, id: &TokenId) -> bool {
        let p = prefix(id);
        self.live.contains_key(&p) || self.snapshot.contains(p)
    }

    /// Entries held (for tests and docs: the bound is live revoked tokens).
    pub fn len(&self) -> usize {
        self.live.len() + self.snapshot.len()
    }

    /// Whether no token is revoked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the snapshot of the sidecar's revocations is loaded: before that, a revoked
    /// token may still look valid here.
    pub fn ready(&self) -> bool {
        self.ready
    }

    /// Loads the sidecar's snapshot (the body of `GET /v1/revocations/snapshot`, kept as
    /// received) and returns its head, the sequence number to sync from. Replaces an earlier
    /// snapshot; what was learnt since stays.
    pub fn load_snapshot(&mut self, body: Vec<u8>) -> Result<u64, SnapshotError> {
        // Free the old one first: two snapshots at once would double the peak.
        self.snapshot = Snapshot::default();
        let (snapshot, head) = Snapshot::parse(body)?;
        self.snapshot = snapshot;
        self.ready = true;
        Ok(head)
    }

    /// The longest token lifetime of the installed policy; never shrinks (tokens minted under
    /// an older, longer lifetime may still be out there).
    pub fn set_horizon(&mut self, lifetime_s: u64) {
        self.horizon_s = self.horizon_s.max(lifetime_s);
    }

    /// How long a revocation without a known expiry is kept, seconds.
    pub fn horizon_s(&self) -> u64 {
        self.horizon_s
    }

    /// A revocation from the sidecar's sync (no expiry known).
    pub fn learn(&mut self, id: TokenId, now: u64) {
        self.insert(id, now.saturating_add(self.horizon_s));
    }

    fn insert(&mut self, id: TokenId, until: u64) {
        let e = self.live.entry(prefix(&id)).or_insert(until);
        *e = (*e).max(until);
    }

    /// Revokes a token here at once and publishes it to the other workers. A failed publish is
    /// logged: the sidecar hears the verdict and every worker's sync brings it back.
    pub fn revoke(&mut self, host: &dyn Host, id: TokenId, valid_until: u64) {
        self.insert(id, valid_until);
        let hex = l402::TokenId(id).to_hex();
        for _ in 0..CAS_ATTEMPTS {
            let (n, cas) = read_u64(host, HEAD_KEY);
            let next = n.saturating_add(1).to_string();
            match host.shared_set(HEAD_KEY, next.as_bytes(), cas) {
                Ok(()) => {
                    let value = format!("{n},{hex},{valid_until}");
                    if host
                        .shared_set(&slot_key(n), value.as_bytes(), None)
                        .is_err()
                    {
                        break;
                    }
                    return;
                }
                Err(SharedWriteError::CasMismatch) => continue,
                Err(SharedWriteError::Failed) => break,
            }
        }
        host.log(
            Level::Warn,
            format_args!(
                "lightning-wall: could not publish a revocation to the other workers; they learn it from the sidecar"
            ),
        );
    }

    /// Reads the other workers' new revocations and forgets expired ones (each tick).
    pub fn refresh(&mut self, host: &dyn Host, now: u64) {
        let (head, _) = read_u64(host, HEAD_KEY);
        self.read_ring(host, head, true);
        self.live.retain(|_, until| *until > now);
    }

    /// Reads the other workers' new revocations if there are any: one shared-data read when
    /// there are none. For deposit requests, whose tokens other workers may have just forfeited.
    pub fn catch_up(&mut self, host: &dyn Host) {
        let (head, _) = read_u64(host, HEAD_KEY);
        if self.cursor != Some(head) {
            self.read_ring(host, head, false);
        }
    }

    /// Reads ring entries up to `head`. An entry counted but not written yet is waited for; at a
    /// tick (`may_skip`) one still missing since the last tick is given up on.
    fn read_ring(&mut self, host: &dyn Host, head: u64, may_skip: bool) {
        // A new worker reads what the ring still holds: verdicts of other workers that the
        // sidecar may not have heard yet.
        let mut n = self.cursor.unwrap_or(head.saturating_sub(RING));
        if head.saturating_sub(n) > RING {
            host.log(
                Level::Warn,
                format_args!(
                    "lightning-wall: {} revocations from other workers overflowed the ring; the sidecar's sync brings them",
                    head - n - RING
                ),
            );
            n = head - RING;
        }
        while n < head {
            match parse_slot(&host.shared_get(&slot_key(n)).bytes) {
                Some((seq, id, until)) if seq == n => self.insert(id, until),
                // Overwritten by a later round of the ring.
                Some((seq, ..)) if seq > n => {}
                // Not written yet (or abandoned by its writer).
                _ if may_skip && self.stalled == Some(n) => {}
                _ => {
                    if may_skip {
                        self.stalled = Some(n);
                    }
                    break;
                }
            }
            n += 1;
        }
        self.cursor = Some(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::host::memory::MemoryHost;

    fn id(b: u8) -> TokenId {
        [b; 32]
    }

    fn snapshot(head: u64, prefixes: &[u64]) -> Vec<u8> {
        let mut b = b"LWR1".to_vec();
        b.extend_from_slice(&head.to_be_bytes());
        b.extend_from_slice(&(prefixes.len() as u32).to_be_bytes());
        for p in prefixes {
            b.extend_from_slice(&p.to_be_bytes());
        }
        b
    }

    #[test]
    fn a_snapshot_makes_the_view_ready_and_revokes_every_token_it_names() {
        let mut r = Revocations::default();
        assert!(!r.ready());
        let ids: Vec<u64> = (1..=1000u64).map(|i| i * 7919).collect();
        assert_eq!(r.load_snapshot(snapshot(42, &ids)), Ok(42));
        assert!(r.ready());
        assert_eq!(r.len(), 1000);
        for &p in &ids {
            let mut id = [0xee; 32];
            id[..8].copy_from_slice(&p.to_be_bytes());
            assert!(r.contains(&id), "{p}");
            id[..8].copy_from_slice(&(p + 1).to_be_bytes());
            assert!(!r.contains(&id), "{}", p + 1);
        }
        assert!(!r.contains(&[0; 32]) && !r.contains(&[0xff; 32]));
        assert_eq!(r.load_snapshot(snapshot(7, &[])), Ok(7));
        assert!(r.is_empty() && r.ready());
    }

    #[test]
    fn a_malformed_snapshot_is_refused_and_leaves_the_view_not_ready() {
        let mut r = Revocations::default();
        assert_eq!(
            r.load_snapshot(b"LWR1".to_vec()),
            Err(SnapshotError::BadHeader)
        );
        let mut wrong_magic = snapshot(1, &[1]);
        wrong_magic[3] = b'2';
        assert_eq!(r.load_snapshot(wrong_magic), Err(SnapshotError::BadHeader));
        let mut short = snapshot(1, &[1, 2]);
        short.pop();
        assert!(matches!(
            r.load_snapshot(short),
            Err(SnapshotError::LengthMismatch {
                count: 2,
                bytes: 15
            })
        ));
        assert_eq!(
            r.load_snapshot(snapshot(1, &[5, 5])),
            Err(SnapshotError::Unsorted { at: 1 })
        );
        assert_eq!(
            r.load_snapshot(snapshot(1, &[6, 5])),
            Err(SnapshotError::Unsorted { at: 1 })
        );
        assert!(!r.ready());
    }

    #[test]
    fn a_revocation_is_seen_here_at_once_and_by_another_worker_after_its_refresh() {
        let h = MemoryHost::at(100);
        let (mut a, mut b, mut c) = (
            Revocations::default(),
            Revocations::default(),
            Revocations::default(),
        );
        b.refresh(&h, 100);
        c.refresh(&h, 100);
        a.revoke(&h, id(1), 500);
        assert!(a.contains(&id(1)));
        assert!(!b.contains(&id(1)));
        b.refresh(&h, 100);
        assert!(b.contains(&id(1)));
        assert!(!b.contains(&id(2)));
        c.catch_up(&h);
        assert!(c.contains(&id(1)), "or at once, when asked to catch up");
    }

    #[test]
    fn a_worker_started_later_reads_what_the_ring_still_holds() {
        let h = MemoryHost::at(100);
        let mut a = Revocations::default();
        a.revoke(&h, id(3), 500);
        let mut late = Revocations::default();
        late.refresh(&h, 100);
        assert!(late.contains(&id(3)));
    }

    #[test]
    fn entries_leave_once_their_token_cannot_verify_and_sync_ones_after_the_horizon() {
        let h = MemoryHost::at(100);
        let mut r = Revocations::default();
        r.set_horizon(3600);
        r.set_horizon(60);
        r.revoke(&h, id(1), 200);
        r.learn(id(2), 100);
        r.refresh(&h, 199);
        assert!(r.contains(&id(1)) && r.contains(&id(2)));
        r.refresh(&h, 200);
        assert!(!r.contains(&id(1)));
        assert!(r.contains(&id(2)), "the horizon never shrinks");
        r.refresh(&h, 3700);
        assert!(r.is_empty());
    }

    #[test]
    fn the_ring_stays_bounded_and_an_overflow_skips_ahead_without_stalling() {
        let h = MemoryHost::at(100);
        let mut reader = Revocations::default();
        reader.refresh(&h, 100);
        let mut writer = Revocations::default();
        for i in 0..(RING + 10) {
            writer.revoke(&h, [(i % 251) as u8; 32], 1000 + i);
        }
        reader.refresh(&h, 100);
        assert!(reader.contains(&[((RING + 9) % 251) as u8; 32]));
        assert!(
            h.logs.borrow().iter().any(|l| l.contains("overflowed")),
            "an overflow is logged"
        );
        assert!(h.shared_get(&format!("lw.rev.{RING}")).bytes.is_empty());
    }

    #[test]
    fn a_slot_counted_but_not_written_is_waited_for_once() {
        let h = MemoryHost::at(100);
        let mut r = Revocations::default();
        r.refresh(&h, 100);
        // Another worker took entry 0 and has not written it yet.
        h.shared_set(HEAD_KEY, b"1", None).unwrap();
        r.catch_up(&h);
        r.catch_up(&h);
        r.refresh(&h, 100);
        h.shared_set(
            "lw.rev.0",
            format!("0,{},900", "07".repeat(32)).as_bytes(),
            None,
        )
        .unwrap();
        r.refresh(&h, 100);
        assert!(r.contains(&id(7)));
        // One never written is skipped after a tick, and later entries still arrive.
        h.shared_set(HEAD_KEY, b"3", None).unwrap();
        h.shared_set(
            "lw.rev.2",
            format!("2,{},900", "08".repeat(32)).as_bytes(),
            None,
        )
        .unwrap();
        r.refresh(&h, 100);
        r.refresh(&h, 100);
        assert!(r.contains(&id(8)));
    }
}
