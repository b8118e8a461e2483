//! The one way the sidecar takes a `std::sync::Mutex`.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, also after a panic elsewhere poisoned it: every value behind these mutexes
/// (maps, counters, caches) is consistent between statements, so a panic that unwound while
/// holding one left nothing half-written to refuse.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
