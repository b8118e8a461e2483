//! The wall clock behind a trait, so tests can move it: forward, and back as a stepped system
//! clock does. The deposit lifecycle's timers and the dev node's chain read it from here.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::mutex::lock;

/// Where the deposit lifecycle and the dev node read the wall clock. Tests inject a
/// [`ManualClock`].
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
        let mut now = lock(&self.0);
        *now = now.saturating_add(by);
    }

    /// Moves the clock back, as NTP stepping a fast clock does (fault tests).
    pub fn rewind(&self, by: Duration) {
        let mut now = lock(&self.0);
        *now = now.saturating_sub(by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        *lock(&self.0)
    }
}
