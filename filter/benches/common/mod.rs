//! The set-up both filter benches share: a policy with a free and a pay route served by an
//! in-process sidecar, and valid pay credentials for it (`request.rs` times it with criterion,
//! `paid_path.rs` runs it under callgrind).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use lightning_wall_host::testing::TestHost;
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
pub fn pay_credential(n: u64) -> String {
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

/// The filter in a one-worker host whose sidecar cluster answers in-process, bootstrapped.
pub fn wall_host(wall: Arc<Runtime>) -> TestHost {
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
    host
}
