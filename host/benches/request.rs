//! Per-request cost of the host itself: one GET through the no-op conformance filter (every
//! callback runs, no host call from the guest) and through the header-editing scenario, in
//! process with no HTTP. The filter benchmarks compare against the no-op figure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use lightning_wall_host::Runtime;
use lightning_wall_host::testing::{Request, TestHost, echo_upstream, wasm_file};

fn bench(c: &mut Criterion) {
    let path = wasm_file("conformance_filter.wasm").unwrap_or_else(|e| panic!("{e}"));
    let runtime = Arc::new(Runtime::from_file(&path).unwrap());
    let mut g = c.benchmark_group("request_through_host");
    for (name, config, path) in [
        ("noop_filter", "noop=1", "/bench"),
        ("header_edits", "", "/headers"),
    ] {
        let mut host = TestHost::builder(Arc::clone(&runtime))
            .configuration(config)
            .plugin(|p| p.log_level = lightning_wall_host::LogLevel::Warn)
            .build()
            .unwrap();
        let req = Request::get(path).header("x-one", "1");
        g.bench_function(name, |b| {
            b.iter(|| {
                let ex = host.send(&req, echo_upstream);
                assert!(ex.response.is_some());
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
