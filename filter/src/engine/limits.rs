//! Fixed-window counters in shared data, so every worker VM counts against the same limit
//! (challenge minting per client IP, requests and upstream errors per deposit token).
//!
//! Shared data cannot delete keys, so counters live in a fixed number of slots per kind
//! (`<prefix>.<slot>`), never one key per token or IP. A slot holds its owner, window and count;
//! an owner looks in [`PROBES`] slots from `owner mod slots`, uses its own, else takes over one
//! whose window has ended. When every probed slot is another owner's live window the hit is
//! not counted ([`Count::Unknown`]): a crowded table makes limits looser, never stricter, so a
//! collision can never make an honest visitor lose a deposit.
//!
//! Writes use compare-and-swap; when contention persists the hit is let through uncounted, for
//! the same reason.

use super::host::{Host, Level, SharedWriteError};
use super::routes::Rate;

/// How often a contended counter update is retried before giving up.
const CAS_ATTEMPTS: u32 = 8;
/// Slots probed per owner.
pub const PROBES: u64 = 4;

/// A kind of counter: its key prefix and how many slots it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table {
    /// Key prefix (`lw.rl`…).
    pub prefix: &'static str,
    /// Number of slots, so of keys.
    pub slots: u64,
}

/// Per-token request counts of deposit routes.
pub const REQUESTS: Table = Table {
    prefix: "lw.rl",
    slots: 8192,
};
/// Per-token upstream 4xx counts (error storms).
pub const ERRORS: Table = Table {
    prefix: "lw.es",
    slots: 8192,
};
/// Challenges minted per client IP (keyed hash of the IP).
pub const MINTS: Table = Table {
    prefix: "lw.mint",
    slots: 8192,
};

/// Outcome of counting one hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// Within the limit; `n` hits in this window so far.
    Within(u32),
    /// Over the limit (this hit is the `n`-th in the window).
    Exceeded(u32),
    /// Could not count (contention, a full neighbourhood, host failure); treated as within.
    Unknown,
}

/// A slot's content: `<owner hex>,<window start>,<window end>,<count>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    owner: u64,
    start: u64,
    end: u64,
    n: u32,
}

fn parse(v: &[u8]) -> Option<Slot> {
    let s = core::str::from_utf8(v).ok()?;
    let mut it = s.split(',');
    let owner = u64::from_str_radix(it.next()?, 16).ok()?;
    let start = it.next()?.parse().ok()?;
    let end = it.next()?.parse().ok()?;
    let n = it.next()?.parse().ok()?;
    Some(Slot {
        owner,
        start,
        end,
        n,
    })
}

fn key(table: Table, owner: u64, probe: u64) -> String {
    let slot = owner.wrapping_add(probe) % table.slots.max(1);
    format!("{}.{slot}", table.prefix)
}

/// Start of the window of `rate` containing `now` (windows are aligned on multiples of
/// `per_s` since the epoch, so every instance and the sidecar agree on them up to clock skew).
pub fn window_start(rate: Rate, now: u64) -> u64 {
    let per = rate.per_s.max(1);
    now - now % per
}

/// Counts one hit of `owner` in `table` against `rate` at `now`.
pub fn hit(host: &dyn Host, table: Table, owner: u64, rate: Rate, now: u64) -> Count {
    let per = rate.per_s.max(1);
    let start = window_start(rate, now);
    for _ in 0..CAS_ATTEMPTS {
        // The owner's own slot wins over a free one: taking a free slot while an earlier probe
        // still counts this owner would restart its window.
        let mut free = None;
        let mut own = None;
        for probe in 0..PROBES.min(table.slots) {
            let k = key(table, owner, probe);
            let current = host.shared_get(&k);
            match parse(&current.bytes) {
                Some(s) if s.owner == owner => {
                    own = Some((k, current.cas, s));
                    break;
                }
                Some(s) if s.end > now => {}
                // Empty, garbage, or another owner's ended window: free to take.
                _ => {
                    if free.is_none() {
                        free = Some((k, current.cas));
                    }
                }
            }
        }
        let (k, cas, n) = match (own, free) {
            (Some((k, cas, s)), _) if s.start == start && s.end > now => {
                (k, cas, s.n.saturating_add(1))
            }
            (Some((k, cas, _)), _) => (k, cas, 1),
            (None, Some((k, cas))) => (k, cas, 1),
            (None, None) => return Count::Unknown,
        };
        let value = format!("{owner:x},{start},{},{n}", start.saturating_add(per));
        match host.shared_set(&k, value.as_bytes(), cas) {
            Ok(()) if n > rate.requests => return Count::Exceeded(n),
            Ok(()) => return Count::Within(n),
            Err(SharedWriteError::CasMismatch) => continue,
            Err(SharedWriteError::Failed) => break,
        }
    }
    host.log(
        Level::Warn,
        format_args!(
            "lightning-wall: could not update a {} counter",
            table.prefix
        ),
    );
    Count::Unknown
}

/// A token's owner id in the tables: token ids are random (drawn by the sidecar) and unknown to
/// other visitors, so their first bytes spread tokens evenly and cannot be aimed at another's.
pub fn token_owner(token_id: &[u8; 32]) -> u64 {
    let [a, b, c, d, e, f, g, h, ..] = *token_id;
    u64::from_le_bytes([a, b, c, d, e, f, g, h])
}

/// Shared-data key of the random key that hashes client IPs (one per plugin VM id, drawn by the
/// first worker that needs it).
const IP_KEY: &str = "lw.ipkey";

/// The shared IP-hashing key, created when missing. Read back after writing: when two workers
/// race to create it, both end up with whichever write landed last.
fn ip_key(host: &dyn Host) -> Option<[u8; 32]> {
    let parse = |v: &[u8]| l402::TokenId::from_hex(core::str::from_utf8(v).ok()?).ok();
    if let Some(k) = parse(&host.shared_get(IP_KEY).bytes) {
        return Some(k.0);
    }
    // std seeds `RandomState` from the OS (WASI `random_get` inside Envoy); four of its keyed
    // hashes make a 256-bit key without another crate in the .wasm.
    let seed = std::collections::hash_map::RandomState::new();
    let mut key = [0u8; 32];
    for (i, chunk) in key.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&std::hash::BuildHasher::hash_one(&seed, i).to_le_bytes());
    }
    let _ = host.shared_set(IP_KEY, l402::TokenId(key).to_hex().as_bytes(), None);
    parse(&host.shared_get(IP_KEY).bytes).map(|k| k.0)
}

/// A client network's owner id in [`MINTS`] (its key from client_addr.rs): SHA-256 of the shared random key and the IP, so nobody
/// can pick addresses that land in another client's slots. (A secret prefix is enough here: the
/// digest is never shown, so length extension has nothing to extend; sha2 is already in the
/// .wasm through l402.)
pub fn ip_owner(host: &dyn Host, network: &[u8]) -> Option<u64> {
    use sha2::Digest;
    let key = ip_key(host)?;
    let out: [u8; 32] = sha2::Sha256::new()
        .chain_update(key)
        .chain_update(network)
        .finalize()
        .into();
    Some(token_owner(&out))
}

/// This proxy instance's id in usage reports (the sidecar sums counts over instances): derived
/// from the shared random key, so every worker of the instance reports under the same id (they
/// share one count) and another instance, with its own shared data, under another.
pub fn instance_id(host: &dyn Host) -> Option<u64> {
    ip_owner(host, b"lightning-wall usage reporter")
}

/// Seconds until the window of `rate` containing `now` ends (for `Retry-After`).
pub fn seconds_left(rate: Rate, now: u64) -> u64 {
    let per = rate.per_s.max(1);
    per - now % per
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::host::memory::MemoryHost;

    const RATE: Rate = Rate {
        requests: 2,
        per_s: 10,
    };
    const T: Table = Table {
        prefix: "t",
        slots: 16,
    };

    #[test]
    fn the_third_hit_in_a_window_of_two_exceeds_and_a_new_window_starts_over() {
        let h = MemoryHost::at(100);
        assert_eq!(hit(&h, T, 1, RATE, 100), Count::Within(1));
        assert_eq!(hit(&h, T, 1, RATE, 105), Count::Within(2));
        assert_eq!(hit(&h, T, 1, RATE, 109), Count::Exceeded(3));
        assert_eq!(hit(&h, T, 1, RATE, 110), Count::Within(1));
        assert_eq!(hit(&h, T, 2, RATE, 110), Count::Within(1));
    }

    #[test]
    fn a_live_collision_probes_on_and_counts_each_owner_apart() {
        let h = MemoryHost::at(100);
        // Owners 1 and 17 share slot 1 of 16.
        assert_eq!(hit(&h, T, 1, RATE, 100), Count::Within(1));
        assert_eq!(hit(&h, T, 17, RATE, 100), Count::Within(1));
        assert_eq!(hit(&h, T, 17, RATE, 100), Count::Within(2));
        assert_eq!(hit(&h, T, 1, RATE, 100), Count::Within(2));
        assert_eq!(hit(&h, T, 17, RATE, 100), Count::Exceeded(3));
        assert!(
            !h.shared_get("t.2").bytes.is_empty(),
            "17 went to the next slot"
        );
    }

    #[test]
    fn a_full_neighbourhood_never_counts_against_a_newcomer() {
        let h = MemoryHost::at(100);
        for owner in [1, 2, 3, 4] {
            for _ in 0..3 {
                hit(&h, T, owner, RATE, 100);
            }
        }
        // Owner 17 probes slots 1..=4, all live windows of others: uncounted, never exceeded.
        for _ in 0..10 {
            assert_eq!(hit(&h, T, 17, RATE, 101), Count::Unknown);
        }
    }

    #[test]
    fn an_ended_window_of_another_owner_is_taken_over() {
        let h = MemoryHost::at(100);
        for _ in 0..3 {
            hit(&h, T, 1, RATE, 100);
        }
        assert_eq!(hit(&h, T, 17, RATE, 110), Count::Within(1));
        assert!(
            core::str::from_utf8(&h.shared_get("t.1").bytes)
                .unwrap()
                .starts_with("11,"),
            "17 (0x11) owns slot 1 now"
        );
        // The previous owner starts afresh elsewhere: its old count is gone, not inherited.
        assert_eq!(hit(&h, T, 1, RATE, 110), Count::Within(1));
    }

    #[test]
    fn the_number_of_keys_is_the_number_of_slots() {
        let h = MemoryHost::at(100);
        for owner in 0..1000 {
            hit(&h, T, owner, RATE, 100);
        }
        assert!(h.shared_get("t.16").bytes.is_empty());
        assert!((0..16).all(|s| !h.shared_get(&format!("t.{s}")).bytes.is_empty()));
    }

    #[test]
    fn a_write_lost_to_another_worker_is_retried_not_dropped() {
        let h = MemoryHost::at(0);
        h.conflicts.set(3);
        assert_eq!(hit(&h, T, 1, RATE, 0), Count::Within(1));
        assert_eq!(hit(&h, T, 1, RATE, 0), Count::Within(2));
    }

    #[test]
    fn persistent_contention_counts_as_unknown_never_as_exceeded() {
        let h = MemoryHost::at(0);
        h.conflicts.set(100);
        assert_eq!(hit(&h, T, 1, RATE, 0), Count::Unknown);
    }

    #[test]
    fn garbage_in_shared_data_is_a_free_slot() {
        let h = MemoryHost::at(0);
        h.shared_set("t.1", b"\xff,zz", None).unwrap();
        assert_eq!(hit(&h, T, 1, RATE, 0), Count::Within(1));
    }

    #[test]
    fn ip_owners_are_stable_across_workers_and_keyed_by_a_shared_random_key() {
        let h = MemoryHost::at(0);
        let a = ip_owner(&h, b"203.0.113.9").unwrap();
        assert_eq!(ip_owner(&h, b"203.0.113.9"), Some(a));
        assert_ne!(ip_owner(&h, b"203.0.113.10"), Some(a));
        let other_vm = MemoryHost::at(0);
        assert_ne!(ip_owner(&other_vm, b"203.0.113.9"), Some(a));
    }

    #[test]
    fn an_instance_has_one_reporter_id_for_all_its_workers_and_another_has_its_own() {
        let h = MemoryHost::at(0);
        let a = instance_id(&h).unwrap();
        assert_eq!(instance_id(&h), Some(a));
        assert_ne!(instance_id(&MemoryHost::at(0)), Some(a));
        assert_eq!(window_start(RATE, 109), 100);
    }

    #[test]
    fn retry_after_is_the_rest_of_the_window() {
        assert_eq!(seconds_left(RATE, 103), 7);
        assert_eq!(seconds_left(RATE, 110), 10);
    }
}
