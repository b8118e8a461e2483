//! Fixed-window counters in shared data, so every worker VM counts against the same limit
//! (challenge minting per client IP, requests and upstream errors per deposit token). Writes
//! use compare-and-swap; when contention persists the hit is let through uncounted: a limit
//! here may decide a forfeit, and uncertainty must never cost a visitor money.

use super::host::{Host, Level, SharedWriteError};
use super::routes::Rate;

/// How often a contended counter update is retried before giving up.
const CAS_ATTEMPTS: u32 = 8;

/// Outcome of counting one hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// Within the limit; `n` hits in this window so far.
    Within(u32),
    /// Over the limit (this hit is the `n`-th in the window).
    Exceeded(u32),
    /// Could not count (contention or host failure); treated as within by callers.
    Unknown,
}

fn parse(v: &[u8]) -> Option<(u64, u32)> {
    let s = core::str::from_utf8(v).ok()?;
    let (start, n) = s.split_once(',')?;
    Some((start.parse().ok()?, n.parse().ok()?))
}

/// Counts one hit on `key` against `rate` at `now`.
pub fn hit(host: &dyn Host, key: &str, rate: Rate, now: u64) -> Count {
    let window = now - now % rate.per_s.max(1);
    for _ in 0..CAS_ATTEMPTS {
        let current = host.shared_get(key);
        let n = match parse(&current.bytes) {
            Some((start, n)) if start == window => n.saturating_add(1),
            _ => 1,
        };
        let value = format!("{window},{n}");
        match host.shared_set(key, value.as_bytes(), current.cas) {
            Ok(()) if n > rate.requests => return Count::Exceeded(n),
            Ok(()) => return Count::Within(n),
            Err(SharedWriteError::CasMismatch) => continue,
            Err(SharedWriteError::Failed) => break,
        }
    }
    host.log(
        Level::Warn,
        format_args!("lightning-wall: could not update counter {key}"),
    );
    Count::Unknown
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

    #[test]
    fn the_third_hit_in_a_window_of_two_exceeds_and_a_new_window_starts_over() {
        let h = MemoryHost::at(100);
        assert_eq!(hit(&h, "k", RATE, 100), Count::Within(1));
        assert_eq!(hit(&h, "k", RATE, 105), Count::Within(2));
        assert_eq!(hit(&h, "k", RATE, 109), Count::Exceeded(3));
        assert_eq!(hit(&h, "k", RATE, 110), Count::Within(1));
        assert_eq!(hit(&h, "other", RATE, 110), Count::Within(1));
    }

    #[test]
    fn a_write_lost_to_another_worker_is_retried_not_dropped() {
        let h = MemoryHost::at(0);
        h.conflicts.set(3);
        assert_eq!(hit(&h, "k", RATE, 0), Count::Within(1));
        assert_eq!(hit(&h, "k", RATE, 0), Count::Within(2));
    }

    #[test]
    fn persistent_contention_counts_as_unknown_never_as_exceeded() {
        let h = MemoryHost::at(0);
        h.conflicts.set(100);
        assert_eq!(hit(&h, "k", RATE, 0), Count::Unknown);
    }

    #[test]
    fn garbage_in_shared_data_restarts_the_window() {
        let h = MemoryHost::at(0);
        h.shared_set("k", b"\xff,zz", None).unwrap();
        assert_eq!(hit(&h, "k", RATE, 0), Count::Within(1));
    }

    #[test]
    fn retry_after_is_the_rest_of_the_window() {
        assert_eq!(seconds_left(RATE, 103), 7);
        assert_eq!(seconds_left(RATE, 110), 10);
    }
}
