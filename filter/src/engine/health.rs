//! Whether the sidecar answers, shared by every worker: a sidecar that accepts connections but
//! never answers would otherwise cost every new visitor the full call-out timeout. A sync with
//! no answer (reset, timeout, connect failure), a challenge whose connection failed, or
//! [`TIMEOUTS_BEFORE_DOWN`] challenges in a row that timed out mark it down for all workers at
//! once, and new challenges then get their route's failure mode without a call-out. Each
//! worker's sync, once per tick, is the probe: the first one answered marks it up again.
//!
//! One challenge that timed out does not: under a flood a sidecar busy minting answers some
//! call-outs late and most in time, and marking it down at the first late one refused every
//! honest visitor until the next sync (docs/reliability.md "Soak"). Nor does the sidecar's own
//! refusal (its JSON error: 503 `mint_budget_spent`, `draining`, `busy`): it answered.

use super::host::Host;

const KEY: &str = "lw.sidecar";
const DOWN: &[u8] = b"down";
const UP: &[u8] = b"up";
/// Followed by the number of challenge timeouts in a row (1 up to `TIMEOUTS_BEFORE_DOWN - 1`).
const SLOW: &[u8] = b"slow";

/// Challenge call-outs in a row (no answered call between them) that may time out before the
/// sidecar counts as down: a stalled sidecar costs this many visitors the call-out timeout.
pub const TIMEOUTS_BEFORE_DOWN: u8 = 3;

/// What a challenge call-out's answer says about the sidecar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// It answered (a challenge, or its own refusal).
    Answered,
    /// The call timed out (Envoy's 504): slow or stalled, the next ones tell.
    TimedOut,
    /// No connection: no response, or Envoy's own 502/503 for a connect failure or reset.
    Gone,
}

/// How every error body of the sidecar starts (`{"error":{"code":"…","message":"…"}}`);
/// Envoy's local replies never do.
const SIDECAR_ERROR: &[u8] = br#"{"error":{"code":""#;

/// Reads a challenge call-out's answer (see [`Seen`]).
pub fn seen(status: Option<u16>, body: &[u8]) -> Seen {
    match status {
        Some(502..=504) if body.starts_with(SIDECAR_ERROR) => Seen::Answered,
        None | Some(502 | 503) => Seen::Gone,
        Some(504) => Seen::TimedOut,
        Some(_) => Seen::Answered,
    }
}

/// Whether a call-out got no answer from the sidecar itself: no response, or Envoy's own
/// 502/503/504 for a connect failure or a timeout.
pub fn no_answer(status: Option<u16>) -> bool {
    matches!(status, None | Some(502..=504))
}

/// Whether some worker saw the sidecar fail to answer since the last answered call.
pub fn is_down(host: &dyn Host) -> bool {
    host.shared_get(KEY).bytes == DOWN
}

/// Records a challenge call-out's answer: down when gone or after [`TIMEOUTS_BEFORE_DOWN`]
/// timeouts in a row, up when answered. Concurrent workers may lose a count: the next timeout
/// counts again, and the sync still probes every tick.
pub fn record_challenge(host: &dyn Host, seen: Seen) {
    match seen {
        Seen::Answered => record(host, true),
        Seen::Gone => record(host, false),
        Seen::TimedOut => {
            let now = host.shared_get(KEY).bytes;
            let before = match now.strip_prefix(SLOW) {
                Some(n) => n.first().map_or(0, |d| d.saturating_sub(b'0')),
                None if now == DOWN => return,
                None => 0,
            };
            let run = before.saturating_add(1);
            if run >= TIMEOUTS_BEFORE_DOWN {
                record(host, false);
            } else {
                let mut slow = SLOW.to_vec();
                slow.push(b'0' + run);
                let _ = host.shared_set(KEY, &slow, None);
            }
        }
    }
}

/// Records the outcome of a call-out (written only when it changes).
pub fn record(host: &dyn Host, answered: bool) {
    let want = if answered { UP } else { DOWN };
    if host.shared_get(KEY).bytes != want {
        let _ = host.shared_set(KEY, want, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::host::memory::MemoryHost;

    #[test]
    fn one_unanswered_call_marks_it_down_for_everyone_until_one_is_answered() {
        let h = MemoryHost::at(0);
        assert!(!is_down(&h));
        record(&h, !no_answer(Some(504)));
        assert!(is_down(&h));
        record(&h, !no_answer(Some(200)));
        assert!(!is_down(&h));
        assert!(no_answer(None) && no_answer(Some(503)) && !no_answer(Some(429)));
    }

    #[test]
    fn challenges_mark_it_down_when_gone_or_after_timeouts_in_a_row() {
        let envoy_503 = b"upstream connect error or disconnect/reset before headers";
        let budget = br#"{"error":{"code":"mint_budget_spent","message":"too many"}}"#;
        assert_eq!(seen(None, b""), Seen::Gone);
        assert_eq!(seen(Some(503), envoy_503), Seen::Gone);
        assert_eq!(seen(Some(502), b""), Seen::Gone);
        assert_eq!(seen(Some(504), b"upstream request timeout"), Seen::TimedOut);
        assert_eq!(seen(Some(503), budget), Seen::Answered);
        assert_eq!(seen(Some(429), b""), Seen::Answered);

        let h = MemoryHost::at(0);
        record_challenge(&h, Seen::Gone);
        assert!(is_down(&h));
        record_challenge(&h, Seen::Answered);
        // Late answers between answered ones never add up to "down".
        for _ in 0..10 {
            for _ in 1..TIMEOUTS_BEFORE_DOWN {
                record_challenge(&h, Seen::TimedOut);
            }
            assert!(!is_down(&h));
            record_challenge(&h, Seen::Answered);
        }
        for _ in 0..TIMEOUTS_BEFORE_DOWN {
            assert!(!is_down(&h));
            record_challenge(&h, Seen::TimedOut);
        }
        assert!(is_down(&h), "a run of timeouts: stalled");
        record_challenge(&h, Seen::TimedOut);
        assert!(is_down(&h));
    }
}
