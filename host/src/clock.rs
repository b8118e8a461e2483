//! The host's notion of time: the system clock, or a manual clock that tests move forward
//! (`proxy_get_current_time_nanoseconds`, WASI clocks and tick scheduling all read it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug)]
pub enum Clock {
    System {
        started: Instant,
    },
    /// Nanoseconds since the Unix epoch, advanced only by [`Clock::advance`].
    Manual(Arc<AtomicU64>),
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
        Clock::Manual(Arc::new(AtomicU64::new(nanos)))
    }

    /// Wall-clock nanoseconds since the Unix epoch.
    pub fn now_nanos(&self) -> u64 {
        match self {
            Clock::System { .. } => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            Clock::Manual(n) => n.load(Ordering::SeqCst),
        }
    }

    /// Monotonic nanoseconds (WASI clock 1). For the manual clock, wall and monotonic coincide.
    pub fn monotonic_nanos(&self) -> u64 {
        match self {
            Clock::System { started } => started.elapsed().as_nanos() as u64,
            Clock::Manual(n) => n.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock forward; the system clock cannot be moved (returns false).
    pub fn advance(&self, by: Duration) -> bool {
        match self {
            Clock::System { .. } => false,
            Clock::Manual(n) => {
                n.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
                true
            }
        }
    }
}
