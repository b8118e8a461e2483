//! Garbage never traps the VM: credentials, cookies and sidecar answers taken from the fuzz
//! corpora (fuzz/corpus/*) and deterministic mutations of them and of valid answers. A trap
//! would make Envoy fail every request on that worker, so every exchange must get an answer
//! and no worker may be marked failed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lightning_wall_e2e::filter_runtime;
use lightning_wall_e2e::testing::{Request, TestHost};
use lightning_wall_host::CallResponse;

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).expect("fuzz/corpus exists") {
        for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            out.push(std::fs::read(file.unwrap().path()).unwrap());
        }
    }
    assert!(out.len() >= 20, "corpus too small: {}", out.len());
    out
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => v.truncate(rng.below(v.len())),
            2 => {
                let i = rng.below(v.len() + 1);
                v.insert(i, rng.next() as u8);
            }
            3 if !v.is_empty() => {
                let i = rng.below(v.len());
                let j = rng.below(v.len());
                v.swap(i, j);
            }
            _ => v.extend_from_slice(input),
        }
    }
    v
}

const VALID_SYNC: &str = r#"{"policy_version":"v1","revocations":[],"next_since":0,"more":false}"#;
const MASTER: &str = "4242424242424242424242424242424242424242424242424242424242424242";

fn bootstrap() -> String {
    format!(
        r#"{{"policy":{{"version":"v1","service":"lightning-wall","challenge_mint_rate":{{"requests":100000,"per_s":60}},
"routes":[{{"id":"api","match":{{"host":null,"path":{{"prefix":"/v1/"}},"methods":[]}},"mode":"pay","failure_mode":"closed","amount_sat":21,"token_lifetime_s":3600}},
{{"id":"wall","match":{{"host":null,"path":null,"methods":[]}},"mode":"deposit","failure_mode":"open","amount_sat":1000,"token_lifetime_s":3600,
"deposit":{{"idle_timeout_s":300,"session_cap_s":3600,"rate_limit":{{"requests":3,"per_s":60}},"trap_paths":["/trap"],"error_storm":{{"errors":1,"within_s":60}}}}}}]}},
"keys":[{{"id":"k1","master_key":"{MASTER}"}}],"active_key_id":"k1","revocation_seq":0}}"#
    )
}

fn garbage_answers(corpus: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x5eed);
    let valid_sync = VALID_SYNC.as_bytes();
    let valid_challenge = format!(
        r#"{{"mode":"deposit","route_id":"wall","macaroon":"AgEO","invoice":"lnbcrt1","payment_hash":"{h}","token_id":"{h}","amount_sat":1,"invoice_expires_at":1,"valid_until":2,"www_authenticate":["L402 macaroon=\"AgEO\", invoice=\"lnbcrt1\""]}}"#,
        h = "ab".repeat(32)
    );
    let mut out: Vec<Vec<u8>> = corpus.to_vec();
    out.push(Vec::new());
    out.push(vec![0xff; 100]);
    out.push("[".repeat(100_000).into_bytes());
    out.push(vec![b'a'; 1 << 20]);
    out.push(br#"{"policy_version":"v1","revocations":[{"seq":1,"token_id":"zz"}],"next_since":1,"more":true}"#.to_vec());
    out.push(br#"{"policy_version":"v1","revocations":[],"next_since":18446744073709551615,"more":true}"#.to_vec());
    for base in [
        valid_sync,
        valid_challenge.as_bytes(),
        bootstrap().as_bytes(),
    ] {
        out.push(base.to_vec());
        for _ in 0..60 {
            out.push(mutate(&mut rng, base));
        }
    }
    out
}

fn assert_alive(host: &TestHost) {
    for w in 0..host.worker_count() {
        assert!(!host.is_failed(w), "worker {w} trapped: {:?}", host.logs());
    }
}

#[test]
fn garbage_credentials_and_cookies_never_trap_the_vm() {
    let boot = bootstrap();
    let mut host = TestHost::builder(filter_runtime())
        .configuration(r#"{"sidecar_cluster": "sidecar"}"#)
        .workers(2)
        .cluster_handler("sidecar", move |req| match req.path() {
            "/v1/bootstrap" => CallResponse::new(200, &[], boot.clone()),
            _ => CallResponse::new(503, &[], "down"),
        })
        .build()
        .unwrap();
    let corpus = corpus();
    let mut rng = Rng(42);
    let mut inputs = corpus.clone();
    for c in &corpus {
        for _ in 0..20 {
            inputs.push(mutate(&mut rng, c));
        }
    }
    let mut n = 0;
    let mut seen = std::collections::BTreeSet::new();
    for input in &inputs {
        let mut l402 = b"L402 ".to_vec();
        l402.extend_from_slice(input);
        let mut cookie = b"a=1; lightning-wall=".to_vec();
        cookie.extend_from_slice(input);
        let requests = [
            Request::get("/v1/x").header("authorization", &l402),
            Request::get("/v1/x").header("authorization", input),
            Request::get("/page").header("cookie", &cookie),
            // The filter reads the credential of a leave itself (revoked tokens never reach it).
            Request::post("/.well-known/lightning-wall/leave", "")
                .header("cookie", &cookie)
                .header("authorization", &l402),
            Request::get("/trap")
                .header("cookie", input)
                .header("authorization", &l402)
                .header("authorization", input)
                .header("sec-fetch-site", input)
                .header("origin", input)
                .header("referer", input)
                .header(":authority", input),
        ];
        for req in &requests {
            let ex = host.send(req, lightning_wall_e2e::testing::echo_upstream);
            assert!(!ex.failed, "VM failed on input {input:?}");
            assert!(ex.response.is_some() || ex.reset);
            seen.insert(ex.response.and_then(|r| r.status()));
            n += 1;
        }
    }
    assert_alive(&host);
    assert!(n > 1000, "only {n} exchanges");
    // The inputs reached the verifier (401), the challenge path (503: the sidecar is down
    // here) and fail-open passes (200), not just one early exit.
    for want in [200, 401, 503] {
        assert!(seen.contains(&Some(want)), "never saw {want}: {seen:?}");
    }
}

#[test]
fn garbage_sidecar_answers_never_trap_the_vm() {
    let answers = Arc::new(garbage_answers(&corpus()));
    // Each kind of call walks the whole list on its own counter, once per status in STATUSES
    // (0 = reset), so every answer reaches bootstrap, sync, events and challenge handling.
    const STATUSES: [u16; 7] = [200, 200, 429, 503, 404, 0, 200];
    let counters: Arc<[AtomicUsize; 4]> = Arc::new(Default::default());
    let phase2 = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (a, c, p2) = (answers.clone(), counters.clone(), phase2.clone());
    let mut host = TestHost::builder(filter_runtime())
        .configuration(r#"{"sidecar_cluster": "sidecar"}"#)
        .workers(2)
        .cluster_handler("sidecar", move |req| {
            let kind = match req.path() {
                "/v1/bootstrap" => 0,
                "/v1/events" => 1,
                "/v1/challenge" => 2,
                _ => 3,
            };
            // Phase 2: bootstrap and sync answer well, so the filter (reachable) makes
            // challenges, and the garbage goes to the challenge handling.
            if p2.load(Ordering::Relaxed) && kind != 2 {
                return match (kind, req.path()) {
                    (0, _) => CallResponse::new(200, &[], bootstrap()),
                    (_, "/v1/revocations/snapshot") => {
                        CallResponse::new(200, &[], lightning_wall_e2e::empty_snapshot())
                    }
                    _ => CallResponse::new(200, &[], VALID_SYNC),
                };
            }
            let k = c[kind].fetch_add(1, Ordering::Relaxed);
            let body = a[k % a.len()].clone();
            match STATUSES[(k / a.len()) % STATUSES.len()] {
                0 => CallResponse::reset(),
                status => CallResponse::new(status, &[("retry-after", "zz\u{7f}")], body),
            }
        })
        .build()
        .unwrap();
    // Sync answers drive the loop: challenges are only made while the last sync succeeded.
    let syncs = &counters[3];
    let mut seen = std::collections::BTreeSet::new();
    let round = |host: &mut TestHost, seen: &mut std::collections::BTreeSet<_>| {
        host.advance(Duration::from_secs(1));
        for path in ["/v1/x", "/page"] {
            let ex = host.send(
                &Request::get(path).header("accept", "text/html"),
                lightning_wall_e2e::testing::echo_upstream,
            );
            assert!(!ex.failed);
            seen.insert(ex.response.and_then(|r| r.status()));
        }
        assert_alive(host);
    };
    let target = answers.len() * STATUSES.len();
    let mut rounds = 0;
    while syncs.load(Ordering::Relaxed) < target && rounds < 10_000 {
        rounds += 1;
        round(&mut host, &mut seen);
    }
    phase2.store(true, Ordering::Relaxed);
    rounds = 0;
    while counters[2].load(Ordering::Relaxed) < target && rounds < 10_000 {
        rounds += 1;
        round(&mut host, &mut seen);
    }
    // Some answers were good enough to act on (a policy, a 402), most were not.
    for want in [200, 402, 429, 503] {
        assert!(seen.contains(&Some(want)), "never saw {want}: {seen:?}");
    }
}
