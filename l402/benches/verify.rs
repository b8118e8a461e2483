//! Cost of verifying a typical credential on the filter's hot path, against the compute floor
//! (the bare HMAC chain). Target: median ≤ 2 µs native (issue 2, item 7).
//!
//! `cargo bench -p l402 --bench verify`

// Benchmark set-up, like a test, may stop at the first surprise (clippy.toml allows it in tests).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use criterion::{BatchSize, Criterion, black_box, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use l402::{
    Credential, KeyRing, Mode, Preimage, RequestContext, TokenId, TokenSpec, verify,
    verify_authorization,
};
use sha2::{Digest, Sha256};

const NOW: u64 = 1_800_000_000;

/// A pay-mode credential as the sidecar mints it for a route with a method list: identifier,
/// services, valid_until, lw_mode, lw_route, lw_methods, lw_key (6 caveats).
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

fn bench(c: &mut Criterion) {
    let (ring, header) = typical(&["GET", "HEAD"]);
    // Sanity: the benchmarked path succeeds (a failing verify would be cheaper and lie).
    let values = [header.as_bytes()];
    assert!(
        verify_authorization(&ring, values, &ctx())
            .expect("valid")
            .is_some()
    );

    c.bench_function("verify_authorization/6_caveats", |b| {
        b.iter(|| verify_authorization(&ring, [black_box(header.as_bytes())], &ctx()))
    });

    let (ring5, header5) = typical(&[]);
    c.bench_function("verify_authorization/5_caveats", |b| {
        b.iter(|| verify_authorization(&ring5, [black_box(header5.as_bytes())], &ctx()))
    });

    let credential = Credential::parse_authorization(header.as_bytes())
        .expect("parse")
        .expect("l402");
    c.bench_function("verify/parsed_credential_6_caveats", |b| {
        b.iter(|| verify(&ring, black_box(&credential), &ctx()))
    });

    c.bench_function("parse_authorization", |b| {
        b.iter(|| Credential::parse_authorization(black_box(header.as_bytes())))
    });

    // The compute floor: the same SHA-256 work with no parsing, no precomputed states.
    let identifier = [3u8; 66];
    let caveats: [&[u8]; 6] = [
        b"services=wall:0",
        b"wall_valid_until=1800003600",
        b"lw_mode=pay",
        b"lw_route=api",
        b"lw_methods=GET,HEAD",
        b"lw_key=2026-11",
    ];
    c.bench_function("floor/root_key+hmac_chain_6_caveats+preimage", |b| {
        b.iter_batched(
            || black_box([0x42u8; 32]),
            |master| {
                let root = hmac(&master, &Sha256::digest(identifier));
                let k = hmac(b"macaroons-key-generator", &root);
                let mut sig = hmac(&k, &identifier);
                for c in caveats {
                    sig = hmac(&sig, c);
                }
                (sig, Sha256::digest(black_box([7u8; 32])))
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
