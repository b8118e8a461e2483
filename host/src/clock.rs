//! The host's notion of time: the system clock, or a manual clock that tests move forward
//! (`proxy_get_current_time_nanoseconds`, WASI clocks and tick scheduling all read it).
//! As in Envoy, the wall clock (`proxy_get_current_time_nanoseconds`, WASI clock 0) can be
//! stepped either way, as NTP or an operator does, while the monotonic clock (WASI clock 1,
//! tick timers) only moves forward.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug)]
pub enum Clock {
    System {
        started: Instant,
    },
    /// Advanced only by [`Clock::advance`]; the wall clock also by [`Clock::step_wall`].
    Manual(Arc<ManualTime>),
}

#[derive(Debug)]
pub struct ManualTime {
    /// Monotonic time, as nanoseconds since the Unix epoch at the start.
    monotonic: AtomicU64,
    /// Wall time minus monotonic time, in nanoseconds (changed by wall-clock steps).
    wall_offset: AtomicI64,
}

impl Clock {
    pub fn system() -> Self {
        Clock::System {
            started: Instant::now(),
        }
    }

    /// A manual clock starting at `start` (wall time).
    pub fn manual(start: SystemTime) -> Self {
        let nanos = start
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Clock::Manual(Arc::new(ManualTime {
            monotonic: AtomicU64::new(nanos),
            wall_offset: AtomicI64::new(0),
        }))
    }

    /// Wall-clock nanoseconds since the Unix epoch.
    pub fn now_nanos(&self) -> u64 {
        match self {
            Clock::System { .. } => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            Clock::Manual(t) => t
                .monotonic
                .load(Ordering::SeqCst)
                .saturating_add_signed(t.wall_offset.load(Ordering::SeqCst)),
        }
    }

    /// Monotonic nanoseconds (WASI clock 1). For the manual clock, the wall time it started at
    /// plus every [`Clock::advance`].
    pub fn monotonic_nanos(&self) -> u64 {
        match self {
            Clock::System { started } => started.elapsed().as_nanos() as u64,
            Clock::Manual(t) => t.monotonic.load(Ordering::SeqCst),
        }
    }

    /// Steps a manual wall clock by `by_secs` (negative: back), leaving the monotonic clock and
    /// timers alone; the system clock cannot be stepped (returns false).
    pub fn step_wall(&self, by_secs: i64) -> bool {
        match self {
            Clock::System { .. } => false,
            Clock::Manual(t) => {
                t.wall_offset
                    .fetch_add(by_secs.saturating_mul(1_000_000_000), Ordering::SeqCst);
                true
            }
        }
    }

    /// Moves a manual clock forward; the system clock cannot be moved (returns false).
    pub fn advance(&self, by: Duration) -> bool {
        match self {
            Clock::System { .. } => false,
            Clock::Manual(t) => {
                t.monotonic
                    .fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
                true
            }
        }
    }
}
