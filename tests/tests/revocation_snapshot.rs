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

/// The bench of bench/RESULTS.md "Revocation snapshot": a worker starting over 1,000,000
/// revocations against a `lightning-wall serve` binary (build it with `--release`), on SQLite or,
/// with `LW_BENCH_POSTGRES=postgres://…/` (a server URL without database), on a PostgreSQL
/// database of its own (created and dropped). Prints the snapshot call-out's time (sent to
/// answered), the time from sending it to the worker being ready (the answer parsed and checked,
/// the next call on its way), the body's size and the worker's memory growth.
/// `LW_BENCH_SIDECAR=$PWD/target/release/lightning-wall cargo test -p lightning-wall-e2e --test
/// revocation_snapshot -- --ignored --nocapture snapshot_bench`
#[test]
#[ignore = "a benchmark: needs LW_BENCH_SIDECAR (a release sidecar binary)"]
fn snapshot_bench() {
    let bin = std::env::var("LW_BENCH_SIDECAR").expect("LW_BENCH_SIDECAR: the sidecar binary");
    let postgres = std::env::var("LW_BENCH_POSTGRES").ok();
    let rounds: usize = std::env::var("LW_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let [port, public] = lightning_wall::testing::ports::loopback_ports::<2>();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let database = format!("lw_snapshot_bench_{}", std::process::id());
    let psql = |sql: &str| {
        let url = format!("{}postgres", postgres.as_deref().unwrap());
        let ok = std::process::Command::new("psql")
            .args(["-q", &url, "-c", sql])
            .status()
            .unwrap()
            .success();
        assert!(ok, "psql {sql}");
    };
    let store_line = match &postgres {
        Some(server) => {
            psql(&format!("CREATE DATABASE {database}"));
            format!("store: {{ url: '{server}{database}' }}")
        }
        None => String::new(),
    };
    // Filled before the sidecar starts, through the store's own bulk revocation.
    let fill = Instant::now();
    rt.block_on(async {
        let store = match &postgres {
            Some(server) => {
                lightning_wall::store::Store::open_postgres(&format!("{server}{database}"), None)
                    .await
                    .unwrap()
            }
            None => lightning_wall::store::Store::open_sqlite(&data.join("lightning-wall.db"))
                .await
                .unwrap(),
        };
        for chunk in token_ids(MILLION).chunks(100_000) {
            store
                .revoke_many(chunk, "bench", Timestamp(1))
                .await
                .unwrap();
        }
        store.close().await;
    });
    let fill = fill.elapsed();
    let config = dir.path().join("lightning-wall.yaml");
    std::fs::write(
        &config,
        format!(
            r#"data_dir: {data}
{store_line}
node: {{ backend: dev }}
listeners:
  internal: {{ bind: "127.0.0.1:{port}" }}
  public: {{ bind: "127.0.0.1:{public}" }}
routes:
  - id: wall
    match: {{ path: {{ prefix: / }} }}
    mode: deposit
    deposit: {{ amount_sat: 1000, idle_timeout: 5m, session_cap: 1h }}
"#,
            data = data.display(),
        ),
    )
    .unwrap();
    let mut sidecar = std::process::Command::new(&bin)
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let up = rt.block_on(async {
        for _ in 0..600 {
            if http.get(format!("{base}/healthz")).send().await.is_ok() {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    });
    assert!(up, "the sidecar never listened");

    let mut results = Vec::new();
    for _ in 0..rounds {
        let seen: Seen = Arc::default();
        let starts: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let inner =
            recording_forwarder(base.clone(), seen.clone(), Arc::new(AtomicBool::new(false)));
        let record = starts.clone();
        let handler: CallHandler = Arc::new(move |req| {
            record
                .lock()
                .unwrap()
                .push((req.path().to_owned(), Instant::now()));
            inner(req)
        });
        let builder =
            lightning_wall_e2e::testing::TestHost::builder(lightning_wall_e2e::filter_runtime())
                .configuration(lightning_wall_e2e::plugin_configuration(
                    &lightning_wall_host::HostSemantics::envoy(),
                ))
                .workers(1)
                .start_time(std::time::SystemTime::now())
                .cluster_handler(lightning_wall_e2e::CLUSTER, move |r| handler(r))
                .cluster_url(
                    lightning_wall_e2e::WALL_CLUSTER,
                    &format!("http://127.0.0.1:{public}"),
                );
        let mut host = builder.build().unwrap();
        let before = host.vm(0).memory_bytes();
        host.tick_all();
        let grown = host.vm(0).memory_bytes() - before;
        let starts = starts.lock().unwrap().clone();
        let snapshot_at = starts
            .iter()
            .position(|(p, _)| p == "/v1/revocations/snapshot")
            .expect("a snapshot call-out");
        let (_, sent) = starts[snapshot_at];
        // Ready: the answer digested and the follow-up sync dispatched.
        let (next, ready) = starts
            .get(snapshot_at + 1)
            .cloned()
            .expect("a call after it");
        assert!(next.starts_with("/v1/sync"), "{next}");
        let calls = seen.lock().unwrap().clone();
        let (_, bytes, callout_ms) = calls
            .iter()
            .find(|(p, ..)| p == "/v1/revocations/snapshot")
            .cloned()
            .unwrap();
        assert_eq!(bytes, 16 + 8 * MILLION);
        results.push((callout_ms, (ready - sent).as_millis(), grown));
    }
    let _ = sidecar.kill();
    let _ = sidecar.wait();
    if postgres.is_some() {
        psql(&format!("DROP DATABASE {database}"));
    }
    results.sort_by_key(|r| r.1);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "backend {}: {MILLION} revocations (filled in {:.1} s), body {} bytes",
        if postgres.is_some() {
            "postgres"
        } else {
            "sqlite"
        },
        fill.as_secs_f64(),
        16 + 8 * MILLION
    );
    for (callout, ready, grown) in &results {
        println!("  call-out {callout} ms, sent -> ready {ready} ms, worker memory +{grown} bytes");
    }
    let (callout, ready, grown) = results[results.len() / 2];
    println!(
        "median of {rounds}: call-out {callout} ms, sent -> ready {ready} ms, +{grown} bytes; load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}
