//! A store replaced under a running proxy (docs/filter.md "A replaced store"), as an attacker
//! would use it: a visitor leaves (refunded: CANCELED on the node), the sidecar is restarted on
//! an empty store, or on one restored from an older backup, while the proxy keeps running, and
//! the visitor keeps sending the refunded credential. The master key outlives the store (it
//! comes from the config), so the macaroon still verifies: only the store's identity tells the
//! filter that the deposit behind it is unknown. The real sidecar and SQLite store, the real
//! `.wasm` in the host; the money is asserted on the dev node.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use lightning_wall::node::InvoiceState;
use lightning_wall_e2e::testing::{Request, TestHost, echo_upstream};
use lightning_wall_e2e::{Wall, status};

fn page(credential: &str) -> Request {
    Request::get("/page")
        .header("accept", "application/json")
        .header("authorization", format!("L402 {credential}"))
}

/// The status a credential gets through the running proxy and through a proxy worker started
/// after the replacement (which knows only what the new store tells it).
fn through_both(wall: &mut Wall, fresh: &mut TestHost, credential: &str) -> [Option<u16>; 2] {
    let running = status(&wall.send(&page(credential)));
    let new = status(&fresh.send(&page(credential), echo_upstream));
    [running, new]
}

/// A proxy worker started now: bootstrapped and its revocation snapshot loaded.
fn fresh_worker(wall: &Wall) -> TestHost {
    let mut fresh = wall.replica(1, None);
    for _ in 0..2 {
        fresh.advance(std::time::Duration::from_secs(1));
    }
    fresh
}

/// Ticks until the running worker has followed the sidecar (bootstrap, snapshot, sync).
fn settle(wall: &mut Wall) {
    for _ in 0..4 {
        wall.tick();
    }
}

#[test]
fn a_refunded_credential_stays_refused_when_the_store_is_replaced_by_an_empty_one() {
    let mut wall = Wall::start(1);
    let (left, left_challenge) = wall.held_deposit("/page");
    let (held, held_challenge) = wall.held_deposit("/page");
    assert_eq!(status(&wall.send(&page(&left))), Some(200));
    // The visitor leaves; the sidecar stops before any worker has synced the revocation (what
    // was seen by hand in nginx).
    assert_eq!(wall.leave(&left)["state"], "leaving");
    let left_hash = left_challenge["payment_hash"].as_str().unwrap().to_owned();
    wall.wait_node_state(&left_hash, InvoiceState::Canceled);
    wall.stop_sidecar();
    wall.replace_store(None);
    wall.start_sidecar();
    settle(&mut wall);
    let mut fresh = fresh_worker(&wall);

    // The refunded credential: a fresh 402 everywhere, never the page.
    assert_eq!(through_both(&mut wall, &mut fresh, &left), [Some(402); 2]);
    assert_eq!(wall.node_state(&left_hash), InvoiceState::Canceled);
    // A credential whose deposit is still held in the old store: the new store does not know
    // it (it could not refund or forfeit it), so it is not honoured either...
    assert_eq!(through_both(&mut wall, &mut fresh, &held), [Some(402); 2]);
    // ...and the visitor loses nothing: the invoice is still only held, never settled, and the
    // node cancels it itself before its HTLC expires (lnd's auto-cancel, mirrored by the dev
    // node), which returns the money.
    let held_hash = held_challenge["payment_hash"].as_str().unwrap().to_owned();
    assert_eq!(wall.node_state(&held_hash), InvoiceState::Accepted);
    wall.advance_blocks(1000);
    assert_eq!(wall.node_state(&held_hash), InvoiceState::Canceled);

    // The wall still works: a new deposit in the new store is served.
    let (again, _) = wall.held_deposit("/page");
    assert_eq!(through_both(&mut wall, &mut fresh, &again), [Some(200); 2]);
}

#[test]
fn a_refunded_credential_stays_refused_when_the_store_is_restored_from_an_older_backup() {
    let mut wall = Wall::start(1);
    // The operator's backup, taken before the visitors came.
    let backup = tempfile::tempdir().unwrap();
    wall.stop_sidecar();
    wall.back_up_store(backup.path());
    wall.start_sidecar();
    settle(&mut wall);

    let (left, left_challenge) = wall.held_deposit("/page");
    let (held, held_challenge) = wall.held_deposit("/page");
    assert_eq!(wall.leave(&left)["state"], "leaving");
    let left_hash = left_challenge["payment_hash"].as_str().unwrap().to_owned();
    wall.wait_node_state(&left_hash, InvoiceState::Canceled);
    // The running worker syncs the revocation (so its cursor is past the backup's head).
    settle(&mut wall);
    assert_eq!(status(&wall.send(&page(&left))), Some(402));

    wall.stop_sidecar();
    wall.replace_store(Some(backup.path()));
    wall.start_sidecar();
    // The running worker's next sync tells the sidecar that its store went back.
    settle(&mut wall);
    let mut fresh = fresh_worker(&wall);

    assert_eq!(through_both(&mut wall, &mut fresh, &left), [Some(402); 2]);
    assert_eq!(wall.node_state(&left_hash), InvoiceState::Canceled);
    assert_eq!(through_both(&mut wall, &mut fresh, &held), [Some(402); 2]);
    let held_hash = held_challenge["payment_hash"].as_str().unwrap().to_owned();
    assert_eq!(wall.node_state(&held_hash), InvoiceState::Accepted);

    let (again, _) = wall.held_deposit("/page");
    assert_eq!(through_both(&mut wall, &mut fresh, &again), [Some(200); 2]);
}

#[test]
fn a_held_credential_keeps_working_across_a_restart_on_the_same_store() {
    let mut wall = Wall::start(1);
    let (held, _) = wall.held_deposit("/page");
    wall.stop_sidecar();
    wall.start_sidecar();
    settle(&mut wall);
    let mut fresh = fresh_worker(&wall);
    assert_eq!(through_both(&mut wall, &mut fresh, &held), [Some(200); 2]);
}
