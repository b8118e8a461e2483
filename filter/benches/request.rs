//! Per-request cost of the filter in the wasmtime host, against the no-op conformance filter in
//! the same run (`make bench-filter`; report the ratio, not the absolute figures: the host is
//! not V8). Scenarios: a valid pay credential seen before (the hot path: the worker's cache of
//! verified credentials, revocation lookup), a valid pay credential seen for the first time (the
//! full verification: parse, MAC chain, caveats, preimage), a free route, and the challenge path
//! with the sidecar answered in-process (no node, no HTTP). `abi_floor` makes only the host calls
//! the hot path needs (header map read, two headers set, three response headers read) and no
//! work of its own: the part of the hot path's cost no filter doing this job can avoid.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use lightning_wall_host::testing::{Request, TestHost, echo_upstream, wasm_file};
use lightning_wall_host::{LogLevel, Runtime};

fn bench(c: &mut Criterion) {
    let noop = Arc::new(
        Runtime::from_file(&wasm_file("conformance_filter.wasm").unwrap_or_else(|e| panic!("{e}")))
            .unwrap(),
    );
    let wall = Arc::new(
        Runtime::from_file(
            &wasm_file("lightning_wall_filter.wasm").unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap(),
    );
    let mut g = c.benchmark_group("filter_per_request");
    g.measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));

    let mut host = TestHost::builder(Arc::clone(&noop))
        .configuration("noop=1")
        .plugin(|p| p.log_level = LogLevel::Warn)
        .build()
        .unwrap();
    let req = Request::get("/v1/data").header("accept", "application/json");
    g.bench_function("noop_filter", |b| {
        b.iter(|| assert!(host.send(&req, echo_upstream).response.is_some()))
    });
    let shaped = Request::get("/v1/data")
        .header("accept", "application/json")
        .header("authorization", common::pay_credential(0));
    g.bench_function("noop_filter_paid_shape", |b| {
        b.iter(|| assert!(host.send(&shaped, echo_upstream).response.is_some()))
    });

    // The host calls the hot path cannot do without, and nothing else (the conformance filter's
    // `floor` mode), on a request shaped like the paid one.
    let mut host = TestHost::builder(noop)
        .configuration("floor=1")
        .plugin(|p| p.log_level = LogLevel::Warn)
        .build()
        .unwrap();
    g.bench_function("abi_floor", |b| {
        b.iter(|| assert!(host.send(&shaped, echo_upstream).upstream_request.is_some()))
    });

    let mut host = common::wall_host(wall);
    let paid = Request::get("/v1/data")
        .header("accept", "application/json")
        .header("authorization", common::pay_credential(0));
    assert_eq!(
        host.send(&paid, echo_upstream).response.unwrap().status(),
        Some(200)
    );
    g.bench_function("valid_pay_credential", |b| {
        b.iter(|| assert!(host.send(&paid, echo_upstream).upstream_request.is_some()))
    });
    let mut n = 0;
    g.bench_function("valid_pay_credential_first_seen", |b| {
        b.iter_batched(
            || {
                n += 1;
                Request::get("/v1/data")
                    .header("accept", "application/json")
                    .header("authorization", common::pay_credential(n))
            },
            |fresh| assert!(host.send(&fresh, echo_upstream).upstream_request.is_some()),
            BatchSize::SmallInput,
        )
    });
    let free = Request::get("/healthz").header("accept", "application/json");
    g.bench_function("free_route", |b| {
        b.iter(|| assert!(host.send(&free, echo_upstream).upstream_request.is_some()))
    });
    let unpaid = Request::get("/v1/data").header("accept", "application/json");
    assert_eq!(
        host.send(&unpaid, echo_upstream).response.unwrap().status(),
        Some(402)
    );
    g.bench_function("challenge_402_sidecar_in_process", |b| {
        b.iter(|| {
            let ex = host.send(&unpaid, echo_upstream);
            assert_eq!(ex.local_reply.map(|r| r.status), Some(402));
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
