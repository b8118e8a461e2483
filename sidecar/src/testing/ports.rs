//! Free loopback ports for servers a test starts later (the sidecar's listeners, a private
//! PostgreSQL), bound by another process or after a restart.
//!
//! Drawn below the kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`, 32768
//! and up by default). A port from that range — what `bind(0)` returns — is also what the
//! kernel hands out as the source port of any outgoing connection, so between the draw and the
//! server's bind another test's client can take it ("Address already in use", seen in CI).
//! Below the range the kernel hands nothing out; a per-process random start and a counter keep
//! the draws of parallel tests and processes apart, and each port is checked free by binding
//! it, every port of one call held until the last is drawn. Where the range starts too low to
//! leave room, the kernel draws, as before.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

use rand::Rng;

/// The lowest port drawn: above the well-known and usual service ports.
const LOWEST: u32 = 10_000;

/// `N` distinct free loopback ports.
pub fn loopback_ports<const N: usize>() -> [u16; N] {
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let ephemeral_start = ephemeral_start();
    let room = ephemeral_start.saturating_sub(LOWEST);
    let draw = || -> TcpListener {
        if room < 1_000 {
            return TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        }
        let start = rand::rng().random_range(0..room);
        let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::SeqCst, Ordering::SeqCst);
        for _ in 0..room {
            let port = LOWEST + NEXT.fetch_add(1, Ordering::SeqCst) % room;
            if let Ok(port) = u16::try_from(port)
                && let Ok(l) = TcpListener::bind(("127.0.0.1", port))
            {
                return l;
            }
        }
        panic!("no free loopback port in {LOWEST}..{ephemeral_start}");
    };
    let held: [TcpListener; N] = std::array::from_fn(|_| draw());
    held.map(|l| l.local_addr().expect("a bound address").port())
}

/// The first port of the kernel's ephemeral range.
fn ephemeral_start() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768)
}

/// One free loopback port (see [`loopback_ports`]).
pub fn loopback_port() -> u16 {
    let [port] = loopback_ports::<1>();
    port
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_free_and_outside_the_ephemeral_range() {
        let ports = loopback_ports::<3>();
        assert!(ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2]);
        for port in ports {
            assert!(u32::from(port) < ephemeral_start(), "{port}");
            TcpListener::bind(("127.0.0.1", port)).expect("still free");
        }
    }
}
