//! Shared data stays bounded: Envoy cannot delete shared-data keys, so thousands of distinct
//! client IPs and deposit tokens must land in a fixed set of keys (docs/filter.md "Shared data
//! keys"). The sidecar here is an in-process TEST DOUBLE answering bootstrap, sync, events and
//! challenges; tokens are minted with the real key ring.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

use lightning_wall_e2e::filter_runtime;
use lightning_wall_e2e::testing::{Request, TestHost, echo_upstream};
use lightning_wall_host::CallResponse;

const MASTER: [u8; 32] = [0x42; 32];
/// Slots per counter kind, `lw.rev` ring entries (filter/src/engine/limits.rs, revocations.rs).
const SLOTS: usize = 8192;
const RING: usize = 1024;

fn bootstrap() -> String {
    format!(
        r#"{{"policy":{{"version":"v1","service":"lightning-wall","challenge_mint_rate":{{"requests":100000,"per_s":60}},
"routes":[{{"id":"api","match":{{"host":null,"path":{{"prefix":"/v1/"}},"methods":[]}},"mode":"pay","failure_mode":"closed","amount_sat":21,"token_lifetime_s":3600}},
{{"id":"wall","match":{{"host":null,"path":null,"methods":[]}},"mode":"deposit","failure_mode":"open","amount_sat":1000,"token_lifetime_s":3600,
"deposit":{{"idle_timeout_s":300,"session_cap_s":3600,"rate_limit":{{"requests":100,"per_s":60}},"trap_paths":["/trap"],"error_storm":{{"errors":100,"within_s":60}}}}}}]}},
"keys":[{{"id":"k1","master_key":"{}"}}],"active_key_id":"k1","revocation_seq":0}}"#,
        "42".repeat(32)
    )
}

fn challenge_answer() -> String {
    let h = "ab".repeat(32);
    format!(
        r#"{{"mode":"pay","route_id":"api","macaroon":"AgEObGlnaHRuaW5nLXdhbGw=","invoice":"lnbcrt210n1pexample","payment_hash":"{h}","token_id":"{h}","amount_sat":21,"invoice_expires_at":1,"valid_until":2,"www_authenticate":["L402 macaroon=\"AgEObGlnaHRuaW5nLXdhbGw=\", invoice=\"lnbcrt210n1pexample\""]}}"#
    )
}

fn deposit_credential(ring: &l402::KeyRing, n: u32) -> String {
    let mut id = [3; 32];
    id[..4].copy_from_slice(&n.to_le_bytes());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mac = ring
        .mint(
            "k1",
            &l402::TokenSpec {
                service: "lightning-wall",
                mode: l402::Mode::Deposit,
                route: "wall",
                methods: &[],
                valid_until: now + 3600,
                payment_hash: l402::PaymentHash(id),
                token_id: l402::TokenId(id),
            },
        )
        .unwrap();
    let (_, receipt) = l402::deposit_receipt_for(ring, &mac.encode()).unwrap();
    format!(
        "L402 {}",
        l402::format_credential(&mac, Some(receipt.expose_secret()))
    )
}

/// A paid `api` credential (`<macaroon>:<preimage>`).
fn pay_token(ring: &l402::KeyRing, n: u32) -> String {
    let mut secret = [5; 32];
    secret[..4].copy_from_slice(&n.to_le_bytes());
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
                methods: &[],
                valid_until: now + 3600,
                payment_hash: preimage.payment_hash(),
                token_id: l402::TokenId(secret),
            },
        )
        .unwrap();
    l402::format_credential(&mac, Some(preimage.expose_secret()))
}

fn count(keys: &[String], prefix: &str) -> usize {
    keys.iter()
        .filter(|k| {
            k.strip_prefix(prefix)
                .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit()))
        })
        .count()
}

#[test]
fn thousands_of_ips_and_tokens_use_a_bounded_number_of_shared_data_keys() {
    let boot = bootstrap();
    let answer = challenge_answer();
    let mut host = TestHost::builder(filter_runtime())
        .configuration(r#"{"sidecar_cluster": "sidecar"}"#)
        .workers(2)
        .start_time(SystemTime::now())
        .cluster_handler("sidecar", move |r| match r.path() {
            "/v1/bootstrap" => CallResponse::new(200, &[], boot.clone()),
            "/v1/challenge" => CallResponse::new(200, &[], answer.clone()),
            "/v1/events" => CallResponse::new(200, &[], r#"{"results":[]}"#),
            "/v1/revocations/snapshot" => {
                CallResponse::new(200, &[], lightning_wall_e2e::empty_snapshot())
            }
            _ => CallResponse::new(
                200,
                &[],
                r#"{"policy_version":"v1","revocations":[],"next_since":0,"more":false}"#,
            ),
        })
        .build()
        .unwrap();
    host.tick_all();

    // More client IPs than mint slots, all in one window.
    let ips = SLOTS + 500;
    for i in 0..ips as u32 {
        let ip = Ipv4Addr::from(0x0a00_0000 + i);
        let req = Request::get("/v1/data").from(SocketAddr::from((ip, 40000)));
        let ex = host.send(&req, echo_upstream);
        assert_eq!(ex.local_reply.map(|r| r.status), Some(402));
    }
    // More deposit tokens than request-counter slots, then more forfeits than ring entries.
    let ring = l402::KeyRing::from_keys([("k1", MASTER)]).unwrap();
    let tokens = SLOTS as u32 + 500;
    for n in 0..tokens {
        let req = Request::get("/page").header("authorization", deposit_credential(&ring, n));
        assert!(host.send(&req, echo_upstream).upstream_request.is_some());
    }
    for n in 0..(RING as u32 + 200) {
        let req = Request::get("/trap").header("authorization", deposit_credential(&ring, n));
        let ex = host.send(&req, echo_upstream);
        assert_eq!(ex.local_reply.map(|r| r.status), Some(403));
    }
    host.tick_all();

    let keys = host.shared_data_keys();
    let (mint, rl, rev) = (
        count(&keys, "lw.mint."),
        count(&keys, "lw.rl."),
        count(&keys, "lw.rev."),
    );
    assert!(mint > SLOTS / 2 && mint <= SLOTS, "lw.mint.*: {mint}");
    assert!(rl > SLOTS / 2 && rl <= SLOTS, "lw.rl.*: {rl}");
    assert_eq!(rev, RING, "lw.rev.*: the ring, full");
    // Everything else is a handful of fixed keys (ring head, IP key, sidecar health).
    let other = keys.len() - mint - rl - rev;
    assert!(other <= 8, "unexpected keys: {other} of {}", keys.len());
    // Forfeits stay refused on both workers though the ring went round: each deposit request
    // catches up with the ring, so no worker fell a whole round behind.
    for n in [0, RING as u32 + 199] {
        for _ in 0..2 {
            let req = Request::get("/page").header("authorization", deposit_credential(&ring, n));
            let ex = host.send(&req, echo_upstream);
            assert_eq!(ex.local_reply.map(|r| r.status), Some(402));
        }
    }
}

/// The worker's guest memory growth over 8,192 requests (twice the credential cache's
/// capacity, filter/src/engine/verified.rs) with one paid token and a different junk cookie
/// of `junk_len` bytes beside it on each: every one a new valid credential.
fn memory_growth_with_junk_cookies(junk_len: usize) -> usize {
    let boot = bootstrap();
    let mut host = TestHost::builder(filter_runtime())
        .configuration(r#"{"sidecar_cluster": "sidecar"}"#)
        .start_time(SystemTime::now())
        .cluster_handler("sidecar", move |r| match r.path() {
            "/v1/bootstrap" => CallResponse::new(200, &[], boot.clone()),
            "/v1/revocations/snapshot" => {
                CallResponse::new(200, &[], lightning_wall_e2e::empty_snapshot())
            }
            _ => CallResponse::new(
                200,
                &[],
                r#"{"policy_version":"v1","revocations":[],"next_since":0,"more":false}"#,
            ),
        })
        .build()
        .unwrap();
    host.tick_all();
    let ring = l402::KeyRing::from_keys([("k1", MASTER)]).unwrap();
    let token = pay_token(&ring, 1);
    let cookie = |i: usize| {
        let junk = format!("{i:08}").repeat(junk_len / 8);
        format!("lightning-wall={token}; junk={junk}")
    };
    let send = |host: &mut TestHost, i: usize| {
        let req = Request::get("/v1/data").header("cookie", cookie(i));
        assert!(
            host.send(&req, echo_upstream).upstream_request.is_some(),
            "request {i}"
        );
    };
    send(&mut host, 0);
    let before = host.vm(0).memory_bytes();
    for i in 1..=8192 {
        send(&mut host, i);
    }
    assert!(!host.is_failed(0));
    host.vm(0).memory_bytes() - before
}

/// Issue #14 item 4: one paid token with a different junk cookie beside it on every request is a
/// new valid credential each time (the cache is keyed by the whole `Cookie` header). The cache
/// keeps a fixed-size entry (a digest) per long credential, so filling it with 8 KB cookie
/// headers costs the worker what filling it with short ones does: under 2 MiB, not 4096 × 8 KB
/// (31 MiB measured before the entries became fixed-size).
#[test]
fn a_paid_token_with_junk_cookies_fills_the_credential_cache_with_fixed_size_entries() {
    // 7,200 bytes: the header stays under 8 KiB.
    let grown = memory_growth_with_junk_cookies(7200);
    println!("verified-credential cache full of 8 KB credentials: guest memory +{grown} bytes");
    // The table (8,192 buckets) while it grows coexists with its predecessor: 1.25 MiB measured.
    assert!(grown <= 2 << 20, "guest memory grew by {grown} bytes");
}

/// Short credentials are kept as bytes (no SHA-256 on each hit, issue #17), but only up to the
/// cache's byte budget (256 KiB per worker): past it they are digests, so a client presenting
/// thousands of distinct short valid credentials still grows the worker by at most the budget
/// plus the fixed-size table.
#[test]
fn a_paid_token_with_short_junk_cookies_keeps_at_most_the_byte_budget() {
    // ~600-byte cookie headers: under the 1 KiB kept as bytes.
    let grown = memory_growth_with_junk_cookies(160);
    println!("verified-credential cache full of short credentials: guest memory +{grown} bytes");
    assert!(grown <= 2 << 20, "guest memory grew by {grown} bytes");
}
