//! Per-request cost of the filter in the wasmtime host, against the no-op conformance filter in
//! the same run (`make bench-filter`; report the ratio, not the absolute figures: the host is
//! not V8). Scenarios: a valid pay credential seen before (the hot path: the worker's cache of
//! verified credentials, revocation lookup), a valid pay credential seen for the first time (the
//! full verification: parse, MAC chain, caveats, preimage), a free route, and the challenge path
//! with the sidecar answered in-process (no node, no HTTP). `abi_floor` makes only the host calls
//! the hot path needs (header map read, two headers set, three response headers read) and no
//! work of its own: the part of the hot path's cost no filter doing this job can avoid.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use lightning_wall_host::testing::{Request, TestHost, echo_upstream, wasm_file};
use lightning_wall_host::{CallResponse, LogLevel, Runtime};

/// The bootstrap below serves this key as `"42" * 32` in hex.
const MASTER: [u8; 32] = [0x42; 32];

fn bootstrap() -> String {
    format!(
        r#"{{"policy":{{"version":"v1","service":"lightning-wall","challenge_mint_rate":{{"requests":4000000000,"per_s":60}},
"routes":[{{"id":"health","match":{{"host":null,"path":{{"exact":"/healthz"}},"methods":[]}},"mode":"free","failure_mode":"closed","amount_sat":0,"token_lifetime_s":3600}},
{{"id":"api","match":{{"host":null,"path":{{"prefix":"/v1/"}},"methods":["GET"]}},"mode":"pay","failure_mode":"closed","amount_sat":21,"token_lifetime_s":3600}}]}},
"keys":[{{"id":"k1","master_key":"{}"}}],"active_key_id":"k1","revocation_seq":0}}"#,
        "42".repeat(32)
    )
}

fn challenge_answer() -> String {
    let h = "ab".repeat(32);
    format!(
        r#"{{"mode":"pay","route_id":"api","macaroon":"AgEObGlnaHRuaW5nLXdhbGw=","invoice":"lnbcrt210n1pexample","payment_hash":"{h}","token_id":"{h}","amount_sat":21,"invoice_expires_at":1,"valid_until":2,"www_authenticate":["LSAT macaroon=\"AgEObGlnaHRuaW5nLXdhbGw=\", invoice=\"lnbcrt210n1pexample\"","L402 macaroon=\"AgEObGlnaHRuaW5nLXdhbGw=\", invoice=\"lnbcrt210n1pexample\""]}}"#
    )
}

/// A valid pay credential; `n` makes its token id and preimage distinct.
fn pay_credential(n: u64) -> String {
    let ring = l402::KeyRing::from_keys([("k1", MASTER)]).unwrap();
    let mut secret = [7; 32];
    secret[..8].copy_from_slice(&n.to_le_bytes());
    let preimage = l402::Preimage::from_bytes(secret);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mac = ring
        .mint(
            "k1",
            &l402::TokenSpec {
                service: "lightning-wall",
                mode: l402::Mode::Pay,
                route: "api",
                methods: &["GET"],
                valid_until: now + 86_400,
                payment_hash: preimage.payment_hash(),
                token_id: l402::TokenId(secret),
            },
        )
        .unwrap();
    format!(
        "L402 {}",
        l402::format_credential(&mac, Some(preimage.expose_secret()))
    )
}

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
        .header("authorization", pay_credential(0));
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

    let boot = bootstrap();
    let answer = challenge_answer();
    let mut host = TestHost::builder(wall)
        .configuration(r#"{"sidecar_cluster": "sidecar"}"#)
        .plugin(|p| p.log_level = LogLevel::Warn)
        .start_time(SystemTime::now())
        .cluster_handler("sidecar", move |r| match r.path() {
            "/v1/bootstrap" => CallResponse::new(200, &[], boot.clone()),
            "/v1/challenge" => CallResponse::new(200, &[], answer.clone()),
            // The revocation snapshot: `LWR1`, head 0, no revocation (docs/internal-api.md).
            "/v1/revocations/snapshot" => {
                CallResponse::new(200, &[], [&b"LWR1"[..], &[0; 12]].concat())
            }
            _ => CallResponse::new(
                200,
                &[],
                r#"{"policy_version":"v1","revocations":[],"next_since":0,"more":false}"#,
            ),
        })
        .build()
        .unwrap();
    // The first tick bootstraps (no call-out from on_configure: docs/filter.md "Hosts").
    host.tick_all();
    let paid = Request::get("/v1/data")
        .header("accept", "application/json")
        .header("authorization", pay_credential(0));
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
                    .header("authorization", pay_credential(n))
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
