//! The paid hot path (a valid pay credential this worker verified before) as instruction counts
//! rather than seconds: seconds on a shared machine vary with its load, instructions do not.
//! `scripts/callgrind-paid-path.sh` runs this bench binary under callgrind with instrumentation
//! off through the set-up (compiling the `.wasm` under callgrind takes minutes), turns it on
//! when the binary says `ready`, and counts between [`start_marker`] and [`end_marker`]
//! (`--zero-before`, `--dump-before`: function entries, which callgrind sees reliably, where
//! it loses the call stack through wasmtime's trampolines). Divide by the request count.
//!
//! Scenarios: `paid` is the filter's hot path, `noop` the no-op conformance filter on the same
//! request (its baseline), `first_seen` a new credential every time (the full verification).
//! The same binary runs any commit's `.wasm` (`LIGHTNING_WALL_WASM_DIR`). Without
//! `LW_GO_FILE` it just runs the requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use lightning_wall_host::testing::{Request, TestHost, echo_upstream, wasm_file};
use lightning_wall_host::{LogLevel, Runtime};

fn runtime(file: &str) -> Arc<Runtime> {
    Arc::new(Runtime::from_file(&wasm_file(file).unwrap_or_else(|e| panic!("{e}"))).unwrap())
}

/// Callgrind zeroes its counters on entering this (`--zero-before`). The two markers differ in
/// their bodies: identical ones are folded into one function by the release build.
#[inline(never)]
fn start_marker(n: usize) -> usize {
    std::hint::black_box(n.wrapping_add(1))
}

/// Callgrind dumps its counters on entering this (`--dump-before`).
#[inline(never)]
fn end_marker(n: usize) -> usize {
    std::hint::black_box(n.wrapping_mul(3))
}

/// Says `ready` and waits for `$LW_GO_FILE` to exist (callgrind's instrumentation is on then).
fn wait_for_go() {
    let Some(go) = std::env::var_os("LW_GO_FILE") else {
        return;
    };
    println!("ready");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    while !std::path::Path::new(&go).exists() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn main() {
    // `cargo bench` passes `--bench`: only the bare arguments are ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let n: usize = args.first().map_or(100, |a| a.parse().expect("a count"));
    let scenario = args.get(1).map_or("paid", String::as_str);
    let paid = |credential: String| {
        Request::get("/v1/data")
            .header("accept", "application/json")
            .header("authorization", credential)
    };
    let (mut host, requests) = match scenario {
        "noop" => {
            let host = TestHost::builder(runtime("conformance_filter.wasm"))
                .configuration("noop=1")
                .plugin(|p| p.log_level = LogLevel::Warn)
                .build()
                .unwrap();
            (host, vec![paid(common::pay_credential(0)); n])
        }
        "paid" => (
            common::wall_host(runtime("lightning_wall_filter.wasm")),
            vec![paid(common::pay_credential(0)); n],
        ),
        "first_seen" => (
            common::wall_host(runtime("lightning_wall_filter.wasm")),
            (1..=n as u64)
                .map(|i| paid(common::pay_credential(i)))
                .collect(),
        ),
        other => panic!("unknown scenario {other}: noop, paid or first_seen"),
    };
    // The first request verifies the credential and fills the worker's cache; one more warms
    // whatever grows on first use (metric ids, maps).
    for _ in 0..2 {
        assert!(
            host.send(&paid(common::pay_credential(0)), echo_upstream)
                .upstream_request
                .is_some()
        );
    }
    wait_for_go();
    start_marker(n);
    let forwarded = requests
        .iter()
        .filter(|r| host.send(r, echo_upstream).upstream_request.is_some())
        .count();
    end_marker(forwarded);
    assert_eq!(forwarded, n, "every request forwarded");
    println!(
        "{scenario}: {n} requests forwarded (authorization: {} bytes)",
        common::pay_credential(0).len()
    );
}
