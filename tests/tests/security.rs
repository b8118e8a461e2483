//! Security tests through the real `.wasm` in the host with the real sidecar: spoofed
//! `x-lightning-wall-*` headers, oversized and repeated credential headers, tokens replayed on
//! another route, method or deployment, expired, revoked, forged and attenuated-wider tokens,
//! the admin API without its token, and a scan of every log line of a whole run for secrets.
//! Written against behaviour (HTTP in, HTTP out), not the filter's internals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use l402::{KeyRing, Macaroon, Mode, TokenId, TokenSpec};
use lightning_wall::node::InvoiceState;
use lightning_wall_e2e::testing::{Exchange, Request};
use lightning_wall_e2e::{Wall, header, status};
use lightning_wall_host::{HeaderMap, Message};
use serde_json::{Value, json};

fn reason(ex: &Exchange) -> Option<&str> {
    header(ex, "x-lightning-wall-reason")
}

/// No worker VM died: a trap would make Envoy fail every later request.
fn no_trap(wall: &Wall) {
    for w in 0..wall.host.worker_count() {
        assert!(!wall.host.is_failed(w), "worker {w} trapped");
    }
}

/// A paid `pay` token for `/v1/data`: (challenge, preimage hex, `<mac>:<preimage>`).
fn paid(wall: &mut Wall) -> (Value, String, String) {
    let challenge = wall.challenge("/v1/data");
    let paid = wall.dev_pay(challenge["invoice"].as_str().unwrap());
    let preimage = paid["preimage"].as_str().unwrap().to_owned();
    let credential = format!("{}:{preimage}", challenge["macaroon"].as_str().unwrap());
    (challenge, preimage, credential)
}

/// The holder appends a caveat (anyone holding a macaroon can).
fn attenuate(credential: &str, caveat: &str) -> String {
    let (mac, proof) = credential.split_once(':').unwrap();
    let mut m = Macaroon::from_base64(mac).unwrap();
    m.add_first_party_caveat(caveat.as_bytes()).unwrap();
    format!("{}:{proof}", m.to_base64())
}

/// The value of a caveat the token carries (`lw_key`, `services`…).
fn caveat(credential: &str, condition: &str) -> String {
    let mac = credential.split_once(':').unwrap().0;
    let m = Macaroon::from_base64(mac).unwrap();
    let prefix = format!("{condition}=");
    m.caveats()
        .filter_map(|c| std::str::from_utf8(c).ok())
        .find_map(|c| c.strip_prefix(&prefix).map(str::to_owned))
        .unwrap_or_else(|| panic!("no {condition} caveat"))
}

/// The sidecar's master keys (`<id>:<hex>` lines in `<data_dir>/keys`).
fn master_keys(wall: &Wall) -> Vec<(String, [u8; 32])> {
    let text = std::fs::read_to_string(wall.data_dir().join("keys")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (id, hex_key) = l.trim().split_once(':').unwrap();
            let mut key = [0u8; 32];
            hex::decode_to_slice(hex_key, &mut key).unwrap();
            (id.to_owned(), key)
        })
        .collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A pay token for route `api` minted with `master` under `key_id`, valid for a fresh preimage.
fn forge(key_id: &str, master: [u8; 32], service: &str) -> String {
    let preimage: [u8; 32] = std::array::from_fn(|i| i as u8 ^ 0x5a);
    let ring = KeyRing::from_keys([(key_id, master)]).unwrap();
    let hash = l402::Preimage::from_bytes(preimage).payment_hash();
    let m = ring
        .mint(
            key_id,
            &TokenSpec {
                service,
                mode: Mode::Pay,
                route: "api",
                methods: &["GET"],
                valid_until: unix_now() + 3600,
                payment_hash: hash,
                token_id: TokenId([7; 32]),
            },
        )
        .unwrap();
    format!("{}:{}", m.to_base64(), hex::encode(preimage))
}

fn get_with(wall: &mut Wall, path: &str, credential: &str) -> Exchange {
    wall.send(&Request::get(path).header("authorization", format!("L402 {credential}")))
}

const SPOOFED: &[(&str, &str)] = &[
    ("x-lightning-wall-token", "aa"),
    ("X-Lightning-Wall-Token", "bb"),
    ("x-lightning-wall-mode", "pay"),
    ("x-lightning-wall-verdict", "forfeit"),
    ("x-lightning-wall-reward", "100000"),
    ("x-lightning-wall-credential", "x:y"),
    ("x-lightning-wall-anything", "z"),
];

fn spoofed(mut req: Request, token_id: &str) -> Request {
    for (k, v) in SPOOFED {
        let v = if v.len() == 2 { token_id } else { v };
        req = req.header(k, v);
    }
    req
}

#[test]
fn spoofed_wall_headers_never_reach_the_upstream_and_never_grant_or_punish() {
    let mut wall = Wall::start(2);
    let (victim, victim_challenge) = wall.held_deposit("/home");
    let victim_token = victim_challenge["token_id"].as_str().unwrap().to_owned();
    let victim_hash = victim_challenge["payment_hash"]
        .as_str()
        .unwrap()
        .to_owned();

    // No credential on a protected route: the spoofed headers grant nothing.
    let ex = wall
        .send(&spoofed(Request::get("/home"), &victim_token).header("accept", "application/json"));
    assert_eq!(status(&ex), Some(402));
    assert!(ex.upstream_request.is_none());
    let ex = wall.send(&spoofed(Request::get("/v1/data"), &victim_token));
    assert_eq!(status(&ex), Some(402));
    assert!(ex.upstream_request.is_none());

    // A free route passes, stripped of every x-lightning-wall-* header.
    let ex = wall.send(&spoofed(Request::get("/healthz"), &victim_token));
    assert_eq!(status(&ex), Some(200));
    let up = ex.upstream_request.unwrap();
    let leaked: Vec<String> = up
        .headers
        .iter()
        .map(|(k, _)| String::from_utf8_lossy(k).to_ascii_lowercase())
        .filter(|k| k.starts_with("x-lightning-wall-"))
        .collect();
    assert!(leaked.is_empty(), "reached the upstream: {leaked:?}");

    // A valid credential with spoofed headers: the upstream sees only the filter's own token.
    let (challenge, _, credential) = paid(&mut wall);
    let req = spoofed(
        Request::get("/v1/data").header("authorization", format!("L402 {credential}")),
        &victim_token,
    );
    let ex = wall.send(&req);
    assert_eq!(status(&ex), Some(200));
    let up = ex.upstream_request.unwrap();
    assert_eq!(
        up.headers.get_all("x-lightning-wall-token"),
        vec![challenge["token_id"].as_str().unwrap().as_bytes()]
    );
    assert_eq!(
        up.headers.get_all("x-lightning-wall-mode"),
        vec![&b"pay"[..]]
    );
    for name in [
        "x-lightning-wall-verdict",
        "x-lightning-wall-reward",
        "x-lightning-wall-credential",
        "x-lightning-wall-anything",
    ] {
        assert!(
            up.headers.get(name).is_none(),
            "{name} reached the upstream"
        );
    }

    // Verdicts in requests naming the victim's token never reach the sidecar: still held.
    wall.tick();
    wall.tick();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(wall.node_state(&victim_hash), InvoiceState::Accepted);
    let ex = get_with(&mut wall, "/home", &victim);
    assert_eq!(
        status(&ex),
        Some(200),
        "the victim's deposit still opens the site"
    );
    no_trap(&wall);
}

#[test]
fn oversized_and_repeated_credential_headers_are_refused_cleanly() {
    let mut wall = Wall::start(2);
    let (_, _, credential) = paid(&mut wall);
    let (_, _, other) = paid(&mut wall);
    let huge = "A".repeat(1 << 20);
    let cases: Vec<(&str, Request)> = vec![
        (
            "1 MiB macaroon",
            Request::get("/v1/data").header("authorization", format!("L402 {huge}:00")),
        ),
        (
            "1 MiB proof",
            Request::get("/v1/data").header(
                "authorization",
                format!(
                    "L402 {}:{}",
                    credential.split_once(':').unwrap().0,
                    "0".repeat(1 << 20)
                ),
            ),
        ),
        (
            "two different credentials",
            Request::get("/v1/data")
                .header("authorization", format!("L402 {credential}"))
                .header("authorization", format!("L402 {other}")),
        ),
        ("100 garbage Authorization headers", {
            let mut r = Request::get("/v1/data");
            for i in 0..100 {
                r = r.header("authorization", format!("L402 {i}{}:{i}", "x".repeat(500)));
            }
            r
        }),
        (
            "valid credential followed by garbage",
            Request::get("/v1/data")
                .header("authorization", format!("L402 {credential}"))
                .header("authorization", format!("L402 {huge}:")),
        ),
    ];
    for (what, req) in cases {
        let ex = wall.send(&req);
        let code = status(&ex).unwrap_or_else(|| panic!("{what}: no answer"));
        assert!((400..500).contains(&code), "{what}: {code}");
        assert_ne!(
            code, 402,
            "{what}: an invalid credential is refused, not re-challenged"
        );
        assert!(
            ex.upstream_request.is_none(),
            "{what}: reached the upstream"
        );
        no_trap(&wall);
    }

    // Cookies: unreadable, oversized or repeated ones get a fresh challenge, never access.
    let cookie_cases: Vec<(&str, Request)> = vec![
        (
            "1 MiB cookie",
            Request::get("/home").header("cookie", format!("lightning-wall={huge}")),
        ),
        ("200 Cookie headers", {
            let mut r = Request::get("/home");
            for i in 0..200 {
                r = r.header("cookie", format!("lightning-wall={i}:{i}; other={i}"));
            }
            r
        }),
        (
            "a pay credential as a deposit cookie",
            Request::get("/home").header("cookie", format!("lightning-wall={credential}")),
        ),
    ];
    for (what, req) in cookie_cases {
        let ex = wall.send(&req);
        assert_eq!(status(&ex), Some(402), "{what}");
        assert!(
            ex.upstream_request.is_none(),
            "{what}: reached the upstream"
        );
        no_trap(&wall);
    }

    // Every worker still serves a valid credential.
    for _ in 0..wall.host.worker_count() {
        let ex = get_with(&mut wall, "/v1/data", &credential);
        assert_eq!(status(&ex), Some(200));
    }
}

#[test]
fn a_token_replayed_on_another_route_method_or_deployment_is_refused() {
    let mut wall = Wall::start(1);
    let (_, _, credential) = paid(&mut wall);
    assert_eq!(
        status(&get_with(&mut wall, "/v1/data", &credential)),
        Some(200)
    );

    // Another pay route.
    let ex = get_with(&mut wall, "/open/x", &credential);
    assert_eq!(status(&ex), Some(401));
    assert_eq!(reason(&ex), Some("wrong_route"));
    assert!(ex.upstream_request.is_none());
    // Another method: POST /v1/ is not the GET-only pay route, it falls to the deposit wall.
    let ex = wall.send(
        &Request::post("/v1/data", "{}").header("authorization", format!("L402 {credential}")),
    );
    assert_eq!(status(&ex), Some(401));
    assert_eq!(reason(&ex), Some("wrong_mode"));
    assert!(ex.upstream_request.is_none());
    // A deposit credential on the pay route.
    let (deposit, _) = wall.held_deposit("/home");
    let ex = get_with(&mut wall, "/v1/data", &deposit);
    assert_eq!(status(&ex), Some(401));
    assert_eq!(reason(&ex), Some("wrong_mode"));

    // Another deployment (its own sidecar and master key, same key id): bad signature.
    let mut elsewhere = Wall::start(1);
    let (_, _, foreign) = paid(&mut elsewhere);
    assert_eq!(caveat(&foreign, "lw_key"), caveat(&credential, "lw_key"));
    let ex = get_with(&mut wall, "/v1/data", &foreign);
    assert_eq!(status(&ex), Some(401));
    assert_eq!(reason(&ex), Some("bad_signature"));
    // A token for another service, minted with this deployment's real master key.
    let (key_id, master) = master_keys(&wall).pop().unwrap();
    let ex = get_with(
        &mut wall,
        "/v1/data",
        &forge(&key_id, master, "other-service"),
    );
    assert_eq!(status(&ex), Some(401));
    assert_eq!(reason(&ex), Some("wrong_service"));
    // Control: the same forgery for the right service is accepted, so the refusal above is
    // the service check and nothing else.
    let ex = get_with(
        &mut wall,
        "/v1/data",
        &forge(&key_id, master, "lightning-wall"),
    );
    assert_eq!(status(&ex), Some(200));
    no_trap(&wall);
}

#[test]
fn expired_revoked_unknown_key_and_attenuated_wider_tokens_are_refused() {
    let mut wall = Wall::start(1);
    let (challenge, _, credential) = paid(&mut wall);
    let service = caveat(&credential, "services")
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    let valid_until: u64 = caveat(&credential, &format!("{service}_valid_until"))
        .parse()
        .unwrap();

    // Attenuation that narrows is honoured (control for the widening cases).
    let narrower = attenuate(
        &credential,
        &format!("{service}_valid_until={}", valid_until - 60),
    );
    assert_eq!(
        status(&get_with(&mut wall, "/v1/data", &narrower)),
        Some(200)
    );
    let widening = [
        format!("{service}_valid_until={}", valid_until + 86_400),
        "lw_route=open-api".to_owned(),
        "lw_methods=GET,POST".to_owned(),
        format!("services={service}:0,other:0"),
        format!("services={service}:1"),
        "lw_mode=deposit".to_owned(),
        "lw_key=another".to_owned(),
    ];
    for caveat in &widening {
        let ex = get_with(&mut wall, "/v1/data", &attenuate(&credential, caveat));
        assert_eq!(status(&ex), Some(401), "{caveat}");
        assert_eq!(reason(&ex), Some("widened_caveat"), "{caveat}");
        assert!(ex.upstream_request.is_none());
    }
    // A caveat appended without re-signing (a forged extension): the chain breaks.
    let (mac, proof) = credential.split_once(':').unwrap();
    let tampered = {
        let mut m = Macaroon::from_base64(mac).unwrap();
        m.add_first_party_caveat(b"lw_route=api").unwrap();
        let mut bytes = m.encode();
        let last = bytes.len() - 1;
        bytes[last] ^= 1; // flip a bit of the signature
        format!("{}:{proof}", Macaroon::decode(&bytes).unwrap().to_base64())
    };
    let ex = get_with(&mut wall, "/v1/data", &tampered);
    assert_eq!(status(&ex), Some(401));
    assert!(
        matches!(reason(&ex), Some("bad_signature" | "malformed")),
        "{:?}",
        reason(&ex)
    );

    // A key id the ring does not have.
    let ex = get_with(
        &mut wall,
        "/v1/data",
        &forge("retired-2020", [9; 32], &service),
    );
    assert_eq!(status(&ex), Some(401));
    assert_eq!(reason(&ex), Some("unknown_key"));

    // Revoked by the operator: refused (a fresh challenge) from the next sync on.
    let (admin, token) = wall.admin();
    let (admin, token) = (admin.to_owned(), token.to_owned());
    let revoked = wall.block_on(async {
        reqwest::Client::new()
            .post(format!("{admin}/admin/v1/revoke"))
            .bearer_auth(&token)
            .json(&json!({"token_id": challenge["token_id"], "reason": "security test"}))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(revoked, 200);
    wall.tick();
    let ex = get_with(&mut wall, "/v1/data", &credential);
    assert_eq!(status(&ex), Some(402));
    assert!(ex.upstream_request.is_none());

    // Expired: the filter's clock jumps past valid_until (no tick in between).
    let (_, _, fresh) = paid(&mut wall);
    assert_eq!(status(&get_with(&mut wall, "/v1/data", &fresh)), Some(200));
    let fresh_until: u64 = caveat(&fresh, &format!("{service}_valid_until"))
        .parse()
        .unwrap();
    let host_now = wall.host.clock().now_nanos() / 1_000_000_000;
    wall.host
        .clock()
        .advance(Duration::from_secs(fresh_until - host_now + 1));
    let ex = get_with(&mut wall, "/v1/data", &fresh);
    assert_eq!(
        status(&ex),
        Some(402),
        "an expired token gets a fresh challenge"
    );
    assert!(ex.upstream_request.is_none());
    no_trap(&wall);
}

#[test]
fn the_admin_api_refuses_requests_without_the_right_token_and_changes_nothing() {
    let mut wall = Wall::start(1);
    let (credential, challenge) = wall.held_deposit("/home");
    let hash = challenge["payment_hash"].as_str().unwrap().to_owned();
    let (admin, token) = wall.admin();
    let (admin, token) = (admin.to_owned(), token.to_owned());
    let http = reqwest::Client::new();
    let last = if token.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &token[..token.len() - 1]);
    assert_ne!(wrong, token);
    let attempts = [
        None,
        Some("".to_owned()),
        Some(wrong),
        Some(token.to_uppercase()),
    ];
    let calls = [
        ("GET", format!("{admin}/admin/v1/deposits"), Value::Null),
        (
            "GET",
            format!("{admin}/admin/v1/deposits/{hash}"),
            Value::Null,
        ),
        (
            "POST",
            format!("{admin}/admin/v1/deposits/{hash}/forfeit"),
            json!({}),
        ),
        (
            "POST",
            format!("{admin}/admin/v1/deposits/{hash}/refund"),
            json!({}),
        ),
        (
            "POST",
            format!("{admin}/admin/v1/revoke"),
            json!({"token_id": challenge["token_id"]}),
        ),
        ("GET", format!("{admin}/admin/v1/audit"), Value::Null),
    ];
    for bearer in &attempts {
        for (method, url, body) in &calls {
            let (code, answer) = wall.block_on(async {
                let mut r = if *method == "GET" {
                    http.get(url)
                } else {
                    http.post(url).json(body)
                };
                if let Some(b) = bearer {
                    r = r.header("authorization", format!("Bearer {b}"));
                }
                let r = r.send().await.unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            });
            assert_eq!(code, 401, "{method} {url} with {bearer:?}: {answer}");
            assert!(answer["error"]["code"].is_string(), "{answer}");
            assert!(!answer.to_string().contains(&hash), "{answer}");
        }
    }
    // Nothing changed: still held, still opens the site, not revoked.
    wall.tick();
    assert_eq!(wall.node_state(&hash), InvoiceState::Accepted);
    let ex = get_with(&mut wall, "/home", &credential);
    assert_eq!(status(&ex), Some(200));
    // With the token, the same API works (the refusals above were about the token).
    let code = wall.block_on(async {
        http.get(format!("{admin}/admin/v1/deposits/{hash}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(code, 200);
}

/// Everything the sidecar logs in this test binary, at debug level.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || Capture(sink.clone()))
            .init();
        buffer
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every printable form of a secret's bytes a log line could carry.
fn forms(bytes: &[u8]) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    vec![
        hex::encode(bytes),
        hex::encode_upper(bytes),
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
    ]
}

fn upstream_verdict(verdict: &str) -> impl FnOnce(&Message) -> Message {
    let verdict = verdict.to_owned();
    move |_| Message {
        headers: HeaderMap::from_pairs([
            (":status", "200"),
            ("x-lightning-wall-verdict", verdict.as_str()),
        ]),
        body: b"ok".to_vec(),
        trailers: HeaderMap::new(),
    }
}

#[test]
fn no_secret_appears_in_any_log_line_of_a_whole_run() {
    let logs = captured_logs();
    let mut wall = Wall::start(2);
    let mut secrets: Vec<(String, Vec<u8>)> = Vec::new();
    let mut credentials = Vec::new();

    // Pay: challenge, pay, use, a wrong preimage, a replay elsewhere.
    let (c, preimage, credential) = paid(&mut wall);
    secrets.push(("pay preimage".into(), hex::decode(&preimage).unwrap()));
    credentials.push(credential.clone());
    assert_eq!(
        status(&get_with(&mut wall, "/v1/data", &credential)),
        Some(200)
    );
    let mac = c["macaroon"].as_str().unwrap();
    get_with(&mut wall, "/v1/data", &format!("{mac}:{}", "00".repeat(32)));
    get_with(&mut wall, "/open/x", &credential);

    // Deposits: held, used by header, cookie and empty proof; forfeited by a trap, by the
    // upstream; refunded by leaving.
    let mut hashes = Vec::new();
    for (n, ending) in ["trap", "upstream", "leave"].iter().enumerate() {
        let (credential, challenge) = wall.held_deposit("/home");
        hashes.push(challenge["payment_hash"].as_str().unwrap().to_owned());
        credentials.push(credential.clone());
        let mac = challenge["macaroon"].as_str().unwrap();
        let ex = get_with(&mut wall, "/home", &credential);
        assert_eq!(status(&ex), Some(200), "deposit {n}");
        wall.send(&Request::get("/home").header("cookie", format!("lightning-wall={credential}")));
        wall.send(&Request::get("/about").header("authorization", format!("L402 {mac}:")));
        match *ending {
            "trap" => {
                get_with(&mut wall, "/wp-login.php", &credential);
            }
            "upstream" => {
                let req =
                    Request::get("/home").header("authorization", format!("L402 {credential}"));
                wall.send_with(&req, upstream_verdict("forfeit"));
            }
            _ => {
                wall.leave(&credential);
            }
        }
        wall.tick();
    }
    for hash in &hashes[..2] {
        wall.wait_node_state(hash, InvoiceState::Settled);
    }
    wall.wait_node_state(&hashes[2], InvoiceState::Canceled);

    // The admin API, with and without its token; an operator revocation.
    let (admin, token) = wall.admin();
    let (admin, token) = (admin.to_owned(), token.to_owned());
    secrets.push(("admin bearer token".into(), token.as_bytes().to_vec()));
    wall.block_on(async {
        let http = reqwest::Client::new();
        for bearer in [token.as_str(), "wrong-token"] {
            http.get(format!("{admin}/admin/v1/deposits"))
                .bearer_auth(bearer)
                .send()
                .await
                .unwrap();
            http.get(format!("{admin}/admin/v1/audit"))
                .bearer_auth(bearer)
                .send()
                .await
                .unwrap();
        }
        http.post(format!("{admin}/admin/v1/revoke"))
            .bearer_auth(&token)
            .json(&json!({"token_id": c["token_id"]}))
            .send()
            .await
            .unwrap();
    });
    // A restart: start-up loads the keys and reconciles.
    wall.stop_sidecar();
    wall.tick();
    wall.start_sidecar();
    wall.tick();
    get_with(&mut wall, "/v1/data", &credential);

    // Collect the secrets of the run: proofs, macaroons, master keys, deposit preimages.
    for credential in &credentials {
        let (mac, proof) = credential.split_once(':').unwrap();
        secrets.push(("macaroon".into(), mac.as_bytes().to_vec()));
        secrets.push(("proof".into(), hex::decode(proof).unwrap()));
        let raw = Macaroon::from_base64(mac).unwrap().encode();
        secrets.push(("macaroon bytes".into(), raw));
    }
    for (id, key) in master_keys(&wall) {
        secrets.push((format!("master key {id}"), key.to_vec()));
    }
    let store_path = wall.data_dir().join("lightning-wall.db");
    let deposit_preimages: Vec<Vec<u8>> = wall.block_on(async {
        let store = lightning_wall::store::Store::open_sqlite(&store_path)
            .await
            .unwrap();
        let mut out = Vec::new();
        for hash in &hashes {
            let mut h = [0u8; 32];
            hex::decode_to_slice(hash, &mut h).unwrap();
            let p = store
                .preimage(&lightning_wall::ids::PaymentHash(h))
                .await
                .unwrap()
                .unwrap();
            out.push(p.0.to_vec());
        }
        store.close().await;
        out
    });
    for p in deposit_preimages {
        secrets.push(("deposit preimage".into(), p));
    }

    let mut text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    for entry in wall.host.logs() {
        text.push_str(&entry.message);
        text.push('\n');
    }
    // The capture works: the run's events are there, by their public ids.
    assert!(text.contains("deposit ended"), "sidecar logs not captured");
    assert!(text.contains("forfeited"), "filter logs not captured");
    assert!(text.lines().count() > 20, "{text}");
    for (what, bytes) in &secrets {
        let mut needles = forms(bytes);
        if let Ok(s) = std::str::from_utf8(bytes) {
            needles.push(s.to_owned());
        }
        for needle in needles {
            // Short encodings could occur by chance; every secret here is ≥ 32 bytes.
            assert!(needle.len() >= 32);
            assert!(!text.contains(&needle), "{what} appears in the logs");
        }
    }
    eprintln!(
        "log scan: {} lines, {} secrets in {} forms each, none found",
        text.lines().count(),
        secrets.len(),
        6
    );
}
