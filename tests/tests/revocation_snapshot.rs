//! A filter worker that starts over a million revocations (issue #14 item 2): it loads all of
//! them in one call-out (`GET /v1/revocations/snapshot`), refuses deposit credentials until then,
//! refuses a refunded visitor's token from the moment it is ready, and keeps the set in 8 bytes a
//! revocation. The real sidecar and SQLite store, the real `.wasm` in the host; the second
//! filter host's call-outs go to the sidecar over real HTTP through a handler that records them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use lightning_wall::ids::{Timestamp, TokenId};
use lightning_wall::node::InvoiceState;
use lightning_wall_e2e::testing::Request;
use lightning_wall_e2e::{Wall, header, status};
use lightning_wall_host::callout::{self, CallHandler, CallResponse};

const MILLION: usize = 1_000_000;

/// A million distinct token ids (xorshift: random-looking prefixes, as the sidecar's are).
fn token_ids(n: usize) -> Vec<TokenId> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            let mut id = [0u8; 32];
            for chunk in id.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_be_bytes());
            }
            TokenId(id)
        })
        .collect()
}

/// Call-outs of the second host, as (path, response body bytes, milliseconds).
type Seen = Arc<Mutex<Vec<(String, usize, u128)>>>;

/// Forwards call-outs to the sidecar's internal listener over HTTP and records them; while
/// `hold_snapshot` is set, the snapshot call fails (503) as if the sidecar had not answered yet.
fn recording_forwarder(base: String, seen: Seen, hold_snapshot: Arc<AtomicBool>) -> CallHandler {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = callout::http_client();
    Arc::new(move |req| {
        let snapshot = req.path() == "/v1/revocations/snapshot";
        if snapshot && hold_snapshot.load(Ordering::SeqCst) {
            return CallResponse::new(503, &[], "");
        }
        let t = Instant::now();
        let resp = rt.block_on(callout::send_http(&client, &base, req));
        seen.lock().unwrap().push((
            req.path().to_owned(),
            resp.body.len(),
            t.elapsed().as_millis(),
        ));
        resp
    })
}

fn credential_request(credential: &str) -> Request {
    Request::get("/page")
        .header("accept", "application/json")
        .header("authorization", format!("L402 {credential}"))
}

#[test]
fn a_worker_started_over_a_million_revocations_is_ready_after_one_call_out() {
    let mut wall = Wall::start(1);
    // A visitor who left (refunded: the sidecar revoked the token in the same transaction) and
    // one whose deposit is still held.
    let (left, left_challenge) = wall.held_deposit("/page");
    let (held, _) = wall.held_deposit("/page");
    // Revoked at once; refunded on the node after the leave grace (docs/filter.md).
    assert_eq!(wall.leave(&left)["state"], "leaving");
    let left_hash = left_challenge["payment_hash"].as_str().unwrap();
    wall.wait_node_state(left_hash, InvoiceState::Canceled);
    let store = wall.store();
    let added = wall
        .block_on(store.revoke_many(&token_ids(MILLION - 1), "bulk", Timestamp(1)))
        .unwrap();
    assert_eq!(added as usize, MILLION - 1);
    let seen: Seen = Arc::default();
    let hold = Arc::new(AtomicBool::new(true));
    let forwarder = recording_forwarder(
        format!("http://{}", wall.internal_addr()),
        seen.clone(),
        hold.clone(),
    );
    let mut replica = wall.replica(1, Some(forwarder));
    // Bootstrapped, but its snapshot has not arrived: deposit credentials wait, whether held
    // or refunded; nothing reached the upstream.
    for credential in [&held, &left] {
        let ex = replica.send(&credential_request(credential), |_| panic!("forwarded"));
        assert_eq!(status(&ex), Some(503));
        assert!(header(&ex, "retry-after").is_some());
    }
    let memory_before = replica.vm(0).memory_bytes();

    hold.store(false, Ordering::SeqCst);
    replica.tick_all();
    let calls = seen.lock().unwrap().clone();
    let snapshots: Vec<_> = calls
        .iter()
        .filter(|(p, ..)| p == "/v1/revocations/snapshot")
        .collect();
    assert_eq!(snapshots.len(), 1, "one call-out: {calls:?}");
    assert_eq!(snapshots[0].1, 16 + 8 * MILLION, "8 bytes a revocation");
    let grown = replica.vm(0).memory_bytes() - memory_before;
    println!(
        "snapshot of {MILLION} revocations: {} bytes, call-out {} ms (debug build), guest memory +{grown} bytes",
        snapshots[0].1, snapshots[0].2
    );
    // The body is kept as received (8,000,000 bytes of prefixes): allow the allocator's
    // rounding, never a second copy.
    assert!(grown <= 9 << 20, "guest memory grew by {grown} bytes");

    // Ready: the refunded visitor's token is refused (a fresh 402, no access), the held one
    // served.
    let refused = replica.send(&credential_request(&left), |_| panic!("forwarded"));
    assert_eq!(status(&refused), Some(402));
    let served = replica.send(
        &credential_request(&held),
        lightning_wall_e2e::testing::echo_upstream,
    );
    assert_eq!(status(&served), Some(200));
    // And the money: the refunded deposit stays cancelled on the node.
    assert_eq!(wall.node_state(left_hash), InvoiceState::Canceled);
}
