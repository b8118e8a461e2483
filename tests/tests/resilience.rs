//! The sidecar going down and coming back, and several workers sharing limits and revocations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use lightning_wall::node::InvoiceState;
use lightning_wall_e2e::testing::Request;
use lightning_wall_e2e::{Wall, header, status};

#[test]
fn while_the_sidecar_is_down_issued_tokens_work_and_new_visitors_follow_the_failure_mode() {
    let mut wall = Wall::start(2);
    let (credential, _) = wall.held_deposit("/home");
    let auth = format!("L402 {credential}");
    wall.stop_sidecar();
    wall.tick();
    assert!(wall.host.metric("lightning_wall.sync_failures").is_some());
    for _ in 0..2 {
        let ex = wall.send(&Request::get("/home").header("authorization", &auth));
        assert_eq!(status(&ex), Some(200), "verification needs no sidecar");
    }
    // A new visitor on a fail-closed route: 503 with Retry-After.
    let ex = wall.send(&Request::get("/home"));
    assert_eq!(status(&ex), Some(503));
    assert!(header(&ex, "retry-after").is_some());
    assert!(ex.upstream_request.is_none());
    // On a fail-open route the request passes unprotected.
    let ex = wall.send(&Request::get("/open/x"));
    assert_eq!(status(&ex), Some(200));
    assert!(ex.upstream_request.is_some());

    wall.start_sidecar();
    wall.tick();
    wall.challenge("/home");
    let ex = wall.send(&Request::get("/home").header("authorization", &auth));
    assert_eq!(status(&ex), Some(200));
}

#[test]
fn a_refund_made_while_the_filter_could_not_sync_is_applied_once_it_can() {
    let mut wall = Wall::start(1);
    let (credential, challenge) = wall.held_deposit("/home");
    let hash = challenge["payment_hash"].as_str().unwrap().to_owned();
    let auth = format!("L402 {credential}");
    wall.leave(&credential);
    wall.wait_node_state(&hash, InvoiceState::Canceled);
    wall.stop_sidecar();
    wall.tick();
    // Not synced yet: the filter cannot know (documented: revocations arrive within a tick).
    wall.start_sidecar();
    wall.tick();
    let ex = wall.send(&Request::get("/home").header("authorization", &auth));
    assert_eq!(status(&ex), Some(402));
}

#[test]
fn four_workers_share_the_token_rate_limit() {
    let mut wall = Wall::start(4);
    let (credential, challenge) = wall.held_deposit("/home");
    let hash = challenge["payment_hash"].as_str().unwrap().to_owned();
    let auth = format!("L402 {credential}");
    // Round-robin over the 4 workers: 5 each, 20 in all, the limit.
    let mut workers = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let ex = wall.send(&Request::get("/home").header("authorization", &auth));
        assert_eq!(status(&ex), Some(200));
        workers.insert(ex.handle.worker);
    }
    assert_eq!(workers.len(), 4);
    let ex = wall.send(&Request::get("/home").header("authorization", &auth));
    assert_eq!(header(&ex, "x-lightning-wall-reason"), Some("forfeited"));
    wall.tick_until_node_state(&hash, InvoiceState::Settled);
}

#[test]
fn a_forfeit_on_one_worker_stops_the_token_on_every_worker_at_once() {
    let mut wall = Wall::start(4);
    let (credential, _) = wall.held_deposit("/home");
    let auth = format!("L402 {credential}");
    let h = wall.host.start_on(
        0,
        &Request::get("/wp-login.php").header("authorization", &auth),
        true,
    );
    let ex = wall.host.complete(h, None);
    assert_eq!(header(&ex, "x-lightning-wall-reason"), Some("forfeited"));
    for w in 1..4 {
        let h = wall.host.start_on(
            w,
            &Request::get("/home").header("authorization", &auth),
            true,
        );
        let ex = wall.host.complete(h, None);
        assert_eq!(
            status(&ex),
            Some(402),
            "worker {w} still served a forfeited token"
        );
    }
}

#[test]
fn a_refund_reaches_every_worker_within_one_tick() {
    let mut wall = Wall::start(4);
    let (credential, challenge) = wall.held_deposit("/home");
    let hash = challenge["payment_hash"].as_str().unwrap().to_owned();
    let auth = format!("L402 {credential}");
    wall.leave(&credential);
    wall.wait_node_state(&hash, InvoiceState::Canceled);
    wall.tick();
    for _ in 0..4 {
        let ex = wall.send(&Request::get("/home").header("authorization", &auth));
        assert_eq!(
            status(&ex),
            Some(402),
            "worker {} still served it",
            ex.handle.worker
        );
    }
}

#[test]
fn four_workers_share_the_per_ip_mint_limit() {
    // The sidecar allows 3 per minute per IP; the filter pre-limits with the same rate across
    // all workers, so the 4th challenge never reaches the sidecar.
    let mut wall = Wall::start_with(4, 3);
    for _ in 0..3 {
        wall.challenge("/home");
    }
    let ex = wall.send(&Request::get("/home"));
    assert_eq!(status(&ex), Some(429));
    assert!(header(&ex, "retry-after").is_some());
    let metrics = wall.sidecar_metrics();
    assert!(
        !metrics.contains(r#"kind="mint_rate""#),
        "the filter answered before calling the sidecar: {metrics}"
    );
}

/// A listener that accepts connections and never answers (a stalled sidecar), counting them.
struct Stalled {
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stalled {
    fn bind(addr: &str) -> Stalled {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (a, s) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        a.fetch_add(1, Ordering::SeqCst);
                        held.push(conn);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        Stalled {
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Stalled {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

#[test]
fn a_stalled_sidecar_costs_three_timeouts_then_every_worker_applies_the_failure_mode_at_once() {
    use std::time::{Duration, Instant};
    let mut wall = Wall::start(2);
    let (credential, _) = wall.held_deposit("/home");
    let auth = format!("L402 {credential}");
    wall.stop_sidecar();
    // Same port, but now it accepts and never answers; no tick yet: the filter does not know.
    let stalled = Stalled::bind(wall.internal_addr());
    // One late answer is not a stalled sidecar (a flood makes a busy one late now and then):
    // three in a row are (filter health.rs, TIMEOUTS_BEFORE_DOWN).
    for n in 1..=3 {
        let t = Instant::now();
        let ex = wall.send(&Request::get("/home"));
        assert_eq!(status(&ex), Some(503));
        assert!(
            t.elapsed() >= Duration::from_millis(900),
            "challenge {n} waited for the call-out timeout"
        );
        assert_eq!(stalled.accepted(), n);
    }
    // Every worker now answers new visitors at once with the route's failure mode, with no
    // call-out: fail-closed routes 503, fail-open routes pass.
    for _ in 0..4 {
        let t = Instant::now();
        let ex = wall.send(&Request::get("/home"));
        assert_eq!(status(&ex), Some(503));
        assert!(header(&ex, "retry-after").is_some());
        assert!(t.elapsed() < Duration::from_millis(500), "no timeout paid");
        let ex = wall.send(&Request::get("/open/x"));
        assert!(ex.upstream_request.is_some());
    }
    assert_eq!(
        stalled.accepted(),
        3,
        "no challenge call-out reached the stalled sidecar"
    );
    // Issued tokens keep working meanwhile.
    let ex = wall.send(&Request::get("/home").header("authorization", &auth));
    assert_eq!(status(&ex), Some(200));
    drop(stalled);
    // Back: the next tick's sync is answered and challenges are minted again.
    wall.start_sidecar();
    wall.tick();
    wall.challenge("/home");
}
