//! Whether the sidecar answers, shared by every worker: a sidecar that accepts connections but
//! never answers would otherwise cost every new visitor the full call-out timeout. A call-out
//! with no answer (reset, timeout, connect failure) marks it down for all workers at once, and
//! new challenges then get their route's failure mode without a call-out. Each worker's sync,
//! once per tick, is the probe: the first one answered marks it up again.

use super::host::Host;

const KEY: &str = "lw.sidecar";
const DOWN: &[u8] = b"down";
const UP: &[u8] = b"up";

/// Whether a call-out got no answer from the sidecar itself: no response, or Envoy's own
/// 502/503/504 for a connect failure or a timeout.
pub fn no_answer(status: Option<u16>) -> bool {
    matches!(status, None | Some(502..=504))
}

/// Whether some worker saw the sidecar fail to answer since the last answered call.
pub fn is_down(host: &dyn Host) -> bool {
    host.shared_get(KEY).bytes == DOWN
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
}
