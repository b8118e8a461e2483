//! Cost of verifying a typical credential on the filter's hot path, against the compute floor
//! (the bare HMAC chain). Target: median ≤ 2 µs native (issue 2, item 7).
//!
//! `cargo bench -p l402 --bench verify`
//!
//! The `cpu/` benchmarks time the same calls in thread CPU time (`CLOCK_THREAD_CPUTIME_ID`)
//! instead of wall-clock time, so that a machine shared with other builds does not inflate
//! the figure with time the benchmark spent descheduled.

// Benchmark set-up, like a test, may stop at the first surprise (clippy.toml allows it in tests).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use l402::{
    Credential, KeyRing, Mode, Preimage, RequestContext, TokenId, TokenSpec, verify,
    verify_authorization,
};
use sha2::{Digest, Sha256};
use std::time::Duration;

const NOW: u64 = 1_800_000_000;

/// A pay-mode `Authorization` value as the sidecar mints it: identifier, services,
/// valid_until, lw_mode, lw_route, [lw_methods,] lw_key.
fn typical(methods: &'static [&'static str]) -> (KeyRing, String) {
    let ring =
        KeyRing::from_keys([("2026-11", [0x42; 32]), ("2026-10", [0x41; 32])]).expect("key ring");
    let preimage = Preimage::from_bytes([7; 32]);
    let mac = ring
        .mint(
            "2026-11",
            &TokenSpec {
                service: "wall",
                mode: Mode::Pay,
                route: "api",
                methods,
                valid_until: NOW + 3600,
                payment_hash: preimage.payment_hash(),
                token_id: TokenId([9; 32]),
            },
        )
        .expect("mint");
    let header = format!(
        "L402 {}",
        l402::format_credential(&mac, Some(preimage.expose_secret()))
    );
    (ring, header)
}

fn ctx() -> RequestContext<'static> {
    RequestContext {
        service: "wall",
        now_unix: NOW,
        route: "api",
        method: "GET",
        mode: Mode::Pay,
        capability: None,
    }
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Thread CPU time (Linux `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`).
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes to it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Criterion `iter_custom` body measuring `f` in thread CPU time.
fn cpu_time<O>(iters: u64, mut f: impl FnMut() -> O) -> Duration {
    let start = thread_cpu_time();
    for _ in 0..iters {
        black_box(f());
    }
    thread_cpu_time() - start
}

/// The caveats a typical token carries (as `KeyRing::mint` writes them), for the floor.
const CAVEATS_5: [&[u8]; 5] = [
    b"services=wall:0",
    b"wall_valid_until=1800003600",
    b"lw_mode=pay",
    b"lw_route=api",
    b"lw_key=2026-11",
];

/// The compute floor: the same SHA-256 work as a verification (root key derivation, the HMAC
/// chain over identifier and caveats, the preimage hash) with the `hmac` crate, and nothing
/// else: no parsing, no base64, no caveat checks, no precomputed states.
fn floor(identifier: &[u8; 66], caveats: &[&[u8]]) -> ([u8; 32], [u8; 32]) {
    let master = black_box([0x42u8; 32]);
    let root = hmac(&master, &Sha256::digest(identifier));
    let k = hmac(b"macaroons-key-generator", &root);
    let mut sig = hmac(&k, identifier);
    for c in caveats {
        sig = hmac(&sig, c);
    }
    (sig, Sha256::digest(black_box([7u8; 32])).into())
}

fn bench(c: &mut Criterion) {
    // Typical: a pay route without a method list, 5 caveats (services, valid_until, lw_mode,
    // lw_route, lw_key). With a method list: 6.
    let (ring, header) = typical(&[]);
    let (ring6, header6) = typical(&["GET", "HEAD"]);
    // Sanity: the benchmarked paths succeed (a failing verify would be cheaper and lie).
    for (ring, header) in [(&ring, &header), (&ring6, &header6)] {
        let token = verify_authorization(ring, [header.as_bytes()], &ctx()).expect("valid");
        assert_eq!(token.expect("l402").token_id, TokenId([9; 32]));
    }

    c.bench_function("verify_authorization/typical_5_caveats", |b| {
        b.iter(|| verify_authorization(&ring, [black_box(header.as_bytes())], &ctx()))
    });
    c.bench_function("verify_authorization/with_methods_6_caveats", |b| {
        b.iter(|| verify_authorization(&ring6, [black_box(header6.as_bytes())], &ctx()))
    });
    let credential = Credential::parse_authorization(header.as_bytes())
        .expect("parse")
        .expect("l402");
    c.bench_function("verify/parsed_credential_5_caveats", |b| {
        b.iter(|| verify(&ring, black_box(&credential), &ctx()))
    });
    c.bench_function("parse_authorization", |b| {
        b.iter(|| Credential::parse_authorization(black_box(header.as_bytes())))
    });

    let identifier = [3u8; 66];
    c.bench_function("floor/hmac_chain_5_caveats", |b| {
        b.iter(|| floor(&identifier, &CAVEATS_5))
    });

    // The same, in thread CPU time (robust to a shared machine).
    c.bench_function("cpu/verify_authorization/typical_5_caveats", |b| {
        b.iter_custom(|iters| {
            cpu_time(iters, || {
                verify_authorization(&ring, [black_box(header.as_bytes())], &ctx())
            })
        })
    });
    c.bench_function("cpu/verify_authorization/with_methods_6_caveats", |b| {
        b.iter_custom(|iters| {
            cpu_time(iters, || {
                verify_authorization(&ring6, [black_box(header6.as_bytes())], &ctx())
            })
        })
    });
    c.bench_function("cpu/floor/hmac_chain_5_caveats", |b| {
        b.iter_custom(|iters| cpu_time(iters, || floor(&identifier, &CAVEATS_5)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
