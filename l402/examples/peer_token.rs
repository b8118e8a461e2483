//! The token the peer comparison of `make bench` verifies (bench/peers/): the same shape as the
//! criterion benchmark's typical token (pay mode, 5 first-party caveats: services,
//! valid_until, lw_mode, lw_route, lw_key; master key `2026-11` = 0x42 × 32).
//!
//!   cargo run --release -p l402 --example peer_token              # the token as JSON
//!   cargo run --release -p l402 --example peer_token -- SECONDS   # + native verifications/s
//!
//! The rate is measured the way the peers measure theirs: one thread, a loop of complete
//! verifications of the `Authorization` value (parse, root key, MAC chain, caveat checks,
//! preimage) for SECONDS of wall-clock time.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use l402::{KeyRing, Mode, Preimage, RequestContext, TokenId, TokenSpec, verify_authorization};

const NOW: u64 = 1_800_000_000;
const MASTER: [u8; 32] = [0x42; 32];

fn main() {
    let ring = KeyRing::from_keys([("2026-11", MASTER), ("2026-10", [0x41; 32])]).expect("ring");
    let preimage = Preimage::from_bytes([7; 32]);
    let mac = ring
        .mint(
            "2026-11",
            &TokenSpec {
                service: "wall",
                mode: Mode::Pay,
                route: "api",
                methods: &[],
                valid_until: NOW + 3600,
                payment_hash: preimage.payment_hash(),
                token_id: TokenId([9; 32]),
            },
        )
        .expect("mint");
    let credential = l402::format_credential(&mac, Some(preimage.expose_secret()));
    let authorization = format!("L402 {credential}");
    let ctx = RequestContext {
        service: "wall",
        now_unix: NOW,
        route: "api",
        method: "GET",
        mode: Mode::Pay,
        capability: None,
    };
    assert!(matches!(
        verify_authorization(&ring, [authorization.as_bytes()], &ctx),
        Ok(Some(_))
    ));
    let mut out = serde_json::json!({
        "authorization": authorization,
        "master_keys": {"2026-11": hex::encode(MASTER), "2026-10": hex::encode([0x41u8; 32])},
        "service": "wall",
        "route": "api",
        "mode": "pay",
        "now": NOW,
        "caveats": mac.caveats().len(),
    });
    if let Some(seconds) = std::env::args().nth(1) {
        let seconds: f64 = seconds.parse().expect("SECONDS");
        let budget = Duration::from_secs_f64(seconds);
        let start = Instant::now();
        let mut n: u64 = 0;
        while start.elapsed() < budget {
            for _ in 0..1000 {
                let ok = verify_authorization(&ring, [black_box(authorization.as_bytes())], &ctx);
                assert!(matches!(ok, Ok(Some(_))));
            }
            n += 1000;
        }
        let rate = n as f64 / start.elapsed().as_secs_f64();
        if let Some(fields) = out.as_object_mut() {
            fields.insert("verifications_per_second".into(), rate.into());
        }
    }
    println!("{out}");
}
