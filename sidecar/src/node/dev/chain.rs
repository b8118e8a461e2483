//! The dev node's simulated clock and block height: blocks arrive every `block_interval` of wall
//! clock time from a persisted genesis, plus blocks that tests mine by hand. Pure arithmetic; it
//! must never go backwards for a given clock.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the dev node reads the time. Tests inject a [`ManualClock`].
pub trait Clock: Send + Sync + 'static {
    /// Time since the Unix epoch.
    fn now(&self) -> Duration;
}

/// The machine's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        // A clock before 1970 is a broken machine; treat it as the epoch rather than fail.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }
}

/// A clock that moves only when told to (tests, simulations).
#[derive(Debug)]
pub struct ManualClock(Mutex<Duration>);

impl ManualClock {
    pub fn new(start: Duration) -> Self {
        Self(Mutex::new(start))
    }

    /// Starts at the machine's current time, so BOLT11 timestamps look normal.
    pub fn starting_now() -> Self {
        Self::new(SystemClock.now())
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now = now.saturating_add(by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The persisted parameters of the simulated chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chain {
    /// Unix seconds at which the chain was at `start_height`.
    pub genesis_unix: u64,
    pub start_height: u32,
    /// Blocks mined by hand (`advance_blocks`) on top of the time-driven ones.
    pub extra_blocks: u32,
}

impl Chain {
    pub fn height_at(&self, now_unix: u64, block_interval: Duration) -> u32 {
        let interval = block_interval.as_secs().max(1);
        let mined = now_unix.saturating_sub(self.genesis_unix) / interval;
        let mined = u32::try_from(mined).unwrap_or(u32::MAX);
        self.start_height
            .saturating_add(mined)
            .saturating_add(self.extra_blocks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn height_advances_one_block_per_interval_plus_blocks_mined_by_hand() {
        let chain = Chain {
            genesis_unix: 1_000,
            start_height: 100,
            extra_blocks: 0,
        };
        let ten_min = Duration::from_secs(600);
        assert_eq!(chain.height_at(1_000, ten_min), 100);
        assert_eq!(chain.height_at(1_599, ten_min), 100);
        assert_eq!(chain.height_at(1_600, ten_min), 101);
        // A clock behind genesis (restored backup, NTP step) keeps the start height.
        assert_eq!(chain.height_at(10, ten_min), 100);
        let mined = Chain {
            extra_blocks: 5,
            ..chain
        };
        assert_eq!(mined.height_at(1_600, ten_min), 106);
    }

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::new(Duration::from_secs(50));
        assert_eq!(clock.now(), Duration::from_secs(50));
        clock.advance(Duration::from_secs(10));
        assert_eq!(clock.now(), Duration::from_secs(60));
    }
}
