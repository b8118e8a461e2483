//! The dev node's simulated clock and block height: blocks arrive every `block_interval` of wall
//! clock time from a persisted genesis, plus blocks that tests mine by hand. Pure arithmetic; it
//! must never go backwards for a given clock.

use std::time::Duration;

pub use crate::clock::{Clock, ManualClock, SystemClock};

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
