//! The sidecar over real HTTP on loopback, with the `dev` node (real signed regtest BOLT11) and
//! SQLite: the filter's API, the wall endpoints, the admin API, and bad input answered with a
//! 4xx JSON error that changes nothing. Credentials handed out are checked with `l402::verify`
//! against the key material the bootstrap endpoint serves, as the filter will.

use std::path::Path;
use std::time::Duration;

use lightning_wall::config::Config;
use lightning_wall::ids::PaymentHash;
use lightning_wall::node::{InvoiceState, Node};
use lightning_wall::serve::{Running, start};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const ADMIN_TOKEN: &str = "admin-token-for-tests";

struct Sidecar {
    running: Running,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn config_yaml(dir: &Path, limits: &str) -> String {
    format!(
        r#"
data_dir: {data}
node: {{ backend: dev }}
listeners:
  internal: {{ bind: "127.0.0.1:0" }}
  public: {{ bind: "127.0.0.1:0" }}
  admin: {{ bind: "127.0.0.1:0", token: {{ file: {token} }} }}
limits:
  challenge_mint_rate: {{ requests: 5, per: 1m }}
  {limits}
routes:
  - id: api
    match: {{ path: {{ prefix: /v1/ }}, methods: [GET] }}
    mode: pay
    pay: {{ amount_sat: 21 }}
  - id: wall
    match: {{ path: {{ prefix: / }} }}
    mode: deposit
    deposit: {{ amount_sat: 1000, idle_timeout: 5m, session_cap: 1h, trap_paths: [/trap] }}
  - id: open
    match: {{ path: {{ exact: /free }} }}
    mode: free
"#,
        data = dir.join("data").display(),
        token = dir.join("admin-token").display(),
    )
}

async fn sidecar() -> Sidecar {
    sidecar_with("").await
}

/// A sidecar with more `limits:` (one YAML line).
async fn sidecar_with(limits: &str) -> Sidecar {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("admin-token"), format!("{ADMIN_TOKEN}\n")).unwrap();
    let path = dir.path().join("lightning-wall.yaml");
    std::fs::write(&path, config_yaml(dir.path(), limits)).unwrap();
    let config = Config::load(&path).unwrap();
    let running = start(config).await.unwrap();
    Sidecar {
        running,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Sidecar {
    fn internal(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.internal)
    }
    fn public(&self, path: &str) -> String {
        format!(
            "http://{}/.well-known/lightning-wall{path}",
            self.running.public
        )
    }
    fn admin(&self, path: &str) -> String {
        format!("http://{}/admin/v1{path}", self.running.admin.unwrap())
    }

    async fn post(&self, url: String, body: Value) -> (u16, Value) {
        let r = self.http.post(url).json(&body).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn challenge(&self, route: &str, ip: &str) -> Value {
        let (status, body) = self
            .post(
                self.internal("/v1/challenge"),
                json!({"route_id": route, "client_ip": ip}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn dev_pay(&self, invoice: &str) -> Value {
        let (status, body) = self
            .post(self.internal("/v1/dev/pay"), json!({"invoice": invoice}))
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn status(&self, macaroon: &str, wait: u64) -> (Value, Option<String>) {
        let r = self
            .http
            .get(self.public(&format!("/deposit?wait={wait}")))
            .header("authorization", format!("L402 {macaroon}:"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let cookie = r
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned());
        (r.json().await.unwrap(), cookie)
    }

    async fn admin_get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(self.admin(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// The filter's key ring, from bootstrap.
    async fn ring(&self) -> l402::KeyRing {
        let boot: Value = self
            .http
            .get(self.internal("/v1/bootstrap"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let keys: Vec<(String, [u8; 32])> = boot["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                let mut key = [0u8; 32];
                hex::decode_to_slice(k["master_key"].as_str().unwrap(), &mut key).unwrap();
                (k["id"].as_str().unwrap().to_owned(), key)
            })
            .collect();
        l402::KeyRing::from_keys(keys.iter().map(|(id, k)| (id.as_str(), *k))).unwrap()
    }

    async fn node_state(&self, payment_hash: &str) -> InvoiceState {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(payment_hash, &mut hash).unwrap();
        let node = self.running.dev_node.as_ref().unwrap();
        node.lookup(&PaymentHash(hash)).await.unwrap().state
    }

    async fn wait_node_state(&self, payment_hash: &str, want: InvoiceState) {
        for _ in 0..200 {
            if self.node_state(payment_hash).await == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("node never reached {want:?}");
    }
}

fn verify(
    ring: &l402::KeyRing,
    credential: &str,
    route: &str,
    mode: l402::Mode,
) -> Result<l402::VerifiedToken, l402::VerifyError> {
    let credential = l402::Credential::parse_token(credential.as_bytes()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    l402::verify(
        ring,
        &credential,
        &l402::RequestContext {
            service: "lightning-wall",
            now_unix: now,
            route,
            method: "GET",
            mode,
            capability: None,
        },
    )
}

#[tokio::test]
async fn a_deposit_is_held_revealed_once_held_and_refunded_on_leave() {
    let s = sidecar().await;
    let c = s.challenge("wall", "203.0.113.9").await;
    assert_eq!(c["mode"], "deposit");
    let invoice = c["invoice"].as_str().unwrap();
    assert!(invoice.starts_with("lnbcrt"), "{invoice}");
    let parsed: lightning_invoice::Bolt11Invoice = invoice.parse().unwrap();
    assert_eq!(parsed.amount_milli_satoshis(), Some(1_000_000));
    assert_eq!(
        hex::encode(parsed.payment_hash().as_ref() as &[u8]),
        c["payment_hash"]
    );
    assert!(
        c["www_authenticate"][1]
            .as_str()
            .unwrap()
            .starts_with("L402 macaroon=\"")
    );
    let macaroon = c["macaroon"].as_str().unwrap();

    // Before payment: no credential, no cookie.
    let (before, cookie) = s.status(macaroon, 0).await;
    assert_eq!(before["state"], "awaiting_payment");
    assert!(before.get("credential").is_none());
    assert!(cookie.is_none());

    assert_eq!(s.dev_pay(invoice).await, json!({"status": "held"}));
    let (held, cookie) = s.status(macaroon, 10).await;
    assert_eq!(held["state"], "held", "{held}");
    let credential = held["credential"].as_str().unwrap();
    let cookie = cookie.expect("the wall cookie is set once held");
    assert!(cookie.starts_with(&format!("lightning-wall={credential};")));
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain http on loopback: {cookie}"
    );

    // The filter accepts it with the bootstrap key material, and only as a deposit token.
    let ring = s.ring().await;
    let token = verify(&ring, credential, "wall", l402::Mode::Deposit).unwrap();
    assert_eq!(token.token_id.to_hex(), c["token_id"]);
    assert!(verify(&ring, credential, "api", l402::Mode::Pay).is_err());

    // Leave, with the cookie from the same site: refunded, invoice cancelled, token revoked.
    let r = s
        .http
        .post(s.public("/leave"))
        .header("cookie", format!("lightning-wall={credential}"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    // Leaving: revoked now, refunded after the grace. No reward was granted (and rewards are
    // off): nothing to claim, no LNURL.
    assert_eq!(body["state"], "leaving", "{body}");
    assert_eq!(body["changed"], true);
    assert_eq!(body["reward_balance_sat"], 0);
    assert!(body.get("reward_lnurl").is_none());
    assert_eq!(
        body["status_credential"],
        format!("{}:", c["macaroon"].as_str().unwrap())
    );
    s.wait_node_state(c["payment_hash"].as_str().unwrap(), InvoiceState::Canceled)
        .await;
    let sync: Value = s
        .http
        .get(s.internal("/v1/sync?since=0"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sync["revocations"][0]["token_id"], c["token_id"]);
    // A second leave changes nothing.
    let again = s
        .http
        .post(s.public("/leave"))
        .header("authorization", format!("L402 {macaroon}:"))
        .send()
        .await
        .unwrap();
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["changed"], false);
    s.running.shutdown().await;
}

#[tokio::test]
async fn a_forfeit_verdict_from_the_filter_settles_and_is_audited() {
    let s = sidecar().await;
    let c = s.challenge("wall", "198.51.100.4").await;
    s.dev_pay(c["invoice"].as_str().unwrap()).await;
    let (held, _) = s.status(c["macaroon"].as_str().unwrap(), 10).await;
    assert_eq!(held["state"], "held");
    let token = c["token_id"].as_str().unwrap();
    let (status, body) = s
        .post(
            s.internal("/v1/events"),
            json!({"events": [
                {"type": "activity", "token_id": token},
                {"type": "verdict", "token_id": token, "verdict": "forfeit", "trigger": "trap_path"},
                {"type": "verdict", "token_id": token, "verdict": "refund", "trigger": "upstream"},
                {"type": "activity", "token_id": "00".repeat(32)},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["results"][1],
        json!({"result": "applied", "state": "forfeited"})
    );
    assert_eq!(
        body["results"][2]["result"], "unchanged",
        "late refund changes nothing"
    );
    assert_eq!(body["results"][3]["result"], "unknown_token");
    let hash = c["payment_hash"].as_str().unwrap();
    s.wait_node_state(hash, InvoiceState::Settled).await;
    let shown = s.admin_get(&format!("/deposits/{hash}")).await;
    assert_eq!(shown["state"], "forfeited");
    assert_eq!(shown["audit"][0]["trigger"], "trap_path");
    assert_eq!(shown["audit"][0]["client_prefix"], "198.51.100.0/24");
    assert_eq!(shown["audit"][0]["route_id"], "wall");
    s.running.shutdown().await;
}

#[tokio::test]
async fn a_pay_challenge_is_proven_by_the_preimage() {
    let s = sidecar().await;
    let c = s.challenge("api", "192.0.2.1").await;
    assert_eq!(c["mode"], "pay");
    let paid = s.dev_pay(c["invoice"].as_str().unwrap()).await;
    assert_eq!(paid["status"], "settled");
    let preimage = hex::decode(paid["preimage"].as_str().unwrap()).unwrap();
    assert_eq!(hex::encode(Sha256::digest(&preimage)), c["payment_hash"]);
    let ring = s.ring().await;
    let credential = format!(
        "{}:{}",
        c["macaroon"].as_str().unwrap(),
        hex::encode(&preimage)
    );
    verify(&ring, &credential, "api", l402::Mode::Pay).unwrap();
    let wrong = format!("{}:{}", c["macaroon"].as_str().unwrap(), "00".repeat(32));
    assert!(verify(&ring, &wrong, "api", l402::Mode::Pay).is_err());
    s.running.shutdown().await;
}

#[tokio::test]
async fn a_payer_without_the_preimage_gets_a_pay_receipt_only_once_the_invoice_settled() {
    let s = sidecar().await;
    let ring = s.ring().await;
    let payment = |mac: &str| {
        s.http
            .get(s.public("/payment"))
            .header("authorization", format!("L402 {mac}:"))
            .send()
    };
    let c = s.challenge("api", "192.0.2.7").await;
    let mac = c["macaroon"].as_str().unwrap();
    let hash = c["payment_hash"].as_str().unwrap();
    // Not paid: no credential, and nothing changed on the node.
    let r = payment(mac).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["state"], "open");
    assert!(body.get("credential").is_none(), "{body}");
    assert_eq!(s.node_state(hash).await, InvoiceState::Open);
    // Paid by a wallet that keeps the preimage to itself.
    s.dev_pay(c["invoice"].as_str().unwrap()).await;
    assert_eq!(s.node_state(hash).await, InvoiceState::Settled);
    let body: Value = payment(mac).await.unwrap().json().await.unwrap();
    assert_eq!(body["state"], "settled");
    let credential = body["credential"].as_str().unwrap();
    verify(&ring, credential, "api", l402::Mode::Pay).unwrap();
    // The receipt of one token proves nothing for another (unpaid) one.
    let other = s.challenge("api", "192.0.2.7").await;
    let proof = credential.rsplit_once(':').unwrap().1;
    let forged = format!("{}:{proof}", other["macaroon"].as_str().unwrap());
    assert!(verify(&ring, &forged, "api", l402::Mode::Pay).is_err());
    // A deposit token gets nothing here (its receipt comes from the deposit endpoint, once held).
    let d = s.challenge("wall", "192.0.2.7").await;
    let r = payment(d["macaroon"].as_str().unwrap()).await.unwrap();
    assert_eq!(r.status(), 401);
    s.running.shutdown().await;
}

#[tokio::test]
async fn payment_lookups_for_unpaid_macaroons_are_bounded_per_second() {
    // A client that never pays asks about its macaroon in a loop: the node is asked at most
    // `payment_lookups_per_s` times, then the answer is 503 with Retry-After, not a lookup.
    let s = sidecar_with("payment_lookups_per_s: 3").await;
    let c = s.challenge("api", "192.0.2.9").await;
    let mac = c["macaroon"].as_str().unwrap().to_owned();
    let mut answered = 0;
    let mut refused = 0;
    for _ in 0..20 {
        let r = s
            .http
            .get(s.public("/payment"))
            .header("authorization", format!("L402 {mac}:"))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => answered += 1,
            503 => {
                assert_eq!(r.headers()["retry-after"], "1");
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["error"]["code"], "lookup_budget_spent");
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    // 20 requests take far less than the seconds it would need to refill 17 lookups.
    assert!(answered <= 6, "{answered} lookups answered");
    assert!(refused >= 14, "{refused} refused");
    assert_eq!(
        s.node_state(c["payment_hash"].as_str().unwrap()).await,
        InvoiceState::Open
    );
    s.running.shutdown().await;
}

#[tokio::test]
async fn the_terms_list_the_priced_routes_and_hide_the_trap_paths() {
    let s = sidecar().await;
    let r = s.http.get(s.public("/terms")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.contains("/trap"), "trap paths stay secret: {text}");
    let terms: Value = serde_json::from_str(&text).unwrap();
    let routes = terms["routes"].as_array().unwrap();
    let ids: Vec<_> = routes.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["api", "wall"], "free routes are not listed");
    assert_eq!(routes[0]["mode"], "pay");
    assert_eq!(routes[0]["amount_sat"], 21);
    assert_eq!(routes[0]["token_lifetime_s"], 3600);
    let d = &routes[1]["deposit"];
    assert_eq!(routes[1]["amount_sat"], 1000);
    assert_eq!(d["idle_timeout_s"], 300);
    assert_eq!(d["session_cap_s"], 3600);
    assert_eq!(d["refund_within_s"], 3600);
    assert_eq!(d["forfeit_on"]["trap_paths"], true);
    assert_eq!(d["leave_url"], "/.well-known/lightning-wall/leave");
    let manifest: Value = s
        .http
        .get(s.public("/l402-services"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(manifest["routes"][0]["path"], "/v1/");
    assert_eq!(manifest["routes"][0]["price"]["amount_msat"], 21_000);
    s.running.shutdown().await;
}

async fn error_of(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    (status, body["error"]["code"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn bad_input_gets_a_4xx_json_error_and_changes_nothing() {
    let s = sidecar().await;
    let post_raw = |url: String, body: Vec<u8>| {
        s.http
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let challenge = s.internal("/v1/challenge");
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{not json".to_vec(), 400, "malformed_json"),
        (
            br#"{"route_id":"nope","client_ip":"192.0.2.1"}"#.to_vec(),
            404,
            "unknown_route",
        ),
        (
            br#"{"route_id":"open","client_ip":"192.0.2.1"}"#.to_vec(),
            409,
            "route_is_free",
        ),
        (
            br#"{"route_id":"wall","client_ip":"not-an-ip"}"#.to_vec(),
            400,
            "malformed_json",
        ),
        (
            br#"{"route_id":"wall","client_ip":"192.0.2.1","x":1}"#.to_vec(),
            400,
            "malformed_json",
        ),
        (vec![b' '; 300 * 1024], 413, "body_too_large"),
    ];
    for (body, status, code) in cases {
        let (got_status, got_code) =
            error_of(post_raw(challenge.clone(), body).await.unwrap()).await;
        assert_eq!((got_status, got_code.as_str()), (status, code));
    }
    let listed = s.admin_get("/deposits").await;
    assert_eq!(
        listed["deposits"].as_array().unwrap().len(),
        0,
        "no deposit was opened"
    );

    // A batch with one bad event is refused whole: the valid forfeit before it is not applied.
    let c = s.challenge("wall", "203.0.113.50").await;
    s.dev_pay(c["invoice"].as_str().unwrap()).await;
    let (held, _) = s.status(c["macaroon"].as_str().unwrap(), 10).await;
    assert_eq!(held["state"], "held");
    let batch = json!({"events": [
        {"type": "verdict", "token_id": c["token_id"], "verdict": "forfeit", "trigger": "trap_path"},
        {"type": "verdict", "token_id": "xyz", "verdict": "forfeit", "trigger": "trap_path"},
    ]});
    let r = s
        .http
        .post(s.internal("/v1/events"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (400, "bad_token_id".into()));
    let unknown_kind = json!({"events": [{"type": "teleport", "token_id": c["token_id"]}]});
    let r = s
        .http
        .post(s.internal("/v1/events"))
        .json(&unknown_kind)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (400, "malformed_json".into()));
    let (still, _) = s.status(c["macaroon"].as_str().unwrap(), 0).await;
    assert_eq!(still["state"], "held");

    // Wrong, missing or forged credentials.
    let admin_list = s.admin("/deposits");
    let r = s.http.get(&admin_list).send().await.unwrap();
    assert_eq!(error_of(r).await, (401, "unauthorized".into()));
    let r = s
        .http
        .get(&admin_list)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (401, "unauthorized".into()));
    let r = s
        .http
        .post(s.admin(&format!("/deposits/{}/refund", "ab".repeat(32))))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (404, "deposit_not_found".into()));
    let r = s.http.get(s.public("/deposit")).send().await.unwrap();
    assert_eq!(error_of(r).await, (401, "unauthorized".into()));
    // A macaroon signed by someone else's key.
    let forged = l402::KeyRing::from_keys([("k1", [9u8; 32])])
        .unwrap()
        .mint(
            "k1",
            &l402::TokenSpec {
                service: "lightning-wall",
                mode: l402::Mode::Deposit,
                route: "wall",
                methods: &[],
                valid_until: u64::MAX / 2,
                payment_hash: l402::PaymentHash([1; 32]),
                token_id: l402::TokenId([2; 32]),
            },
        )
        .unwrap();
    let r = s
        .http
        .get(s.public("/deposit"))
        .header("authorization", format!("L402 {}:", forged.to_base64()))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (401, "invalid_credential".into()));

    // A cookie-authenticated leave from another site is refused and refunds nothing.
    let (held, _) = s.status(c["macaroon"].as_str().unwrap(), 0).await;
    let credential = held["credential"].as_str().unwrap();
    let r = s
        .http
        .post(s.public("/leave"))
        .header("cookie", format!("lightning-wall={credential}"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (403, "cross_site_refused".into()));
    let (still, _) = s.status(c["macaroon"].as_str().unwrap(), 0).await;
    assert_eq!(still["state"], "held");
    s.running.shutdown().await;
}

#[tokio::test]
async fn challenge_minting_is_rate_limited_per_client_ip() {
    let s = sidecar().await;
    for _ in 0..5 {
        s.challenge("api", "192.0.2.77").await;
    }
    let r = s
        .http
        .post(s.internal("/v1/challenge"))
        .json(&json!({"route_id": "api", "client_ip": "192.0.2.77"}))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(error_of(r).await, (429, "mint_rate_limited".into()));
    s.challenge("api", "192.0.2.78").await;
    s.running.shutdown().await;
}

#[tokio::test]
async fn rotating_addresses_of_one_ipv6_64_share_one_mint_limit() {
    let s = sidecar().await;
    for host in 1..=5 {
        s.challenge("api", &format!("2001:db8:5:6::{host:x}")).await;
    }
    let r = s
        .http
        .post(s.internal("/v1/challenge"))
        .json(&json!({"route_id": "api", "client_ip": "2001:db8:5:6:dead:beef:1:2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (429, "mint_rate_limited".into()));
    s.challenge("api", "2001:db8:5:7::1").await;
    s.running.shutdown().await;
}

#[tokio::test]
async fn a_spent_global_mint_budget_is_a_503_with_retry_after_and_mints_nothing() {
    // The whole budget to one provider network: the global budget is under test, not the share.
    let s = sidecar_with("challenge_mint_budget_per_s: 3\n  challenge_mint_budget_share_pct: 100")
        .await;
    for n in 0..3 {
        s.challenge("api", &format!("198.51.100.{n}")).await;
    }
    let r = s
        .http
        .post(s.internal("/v1/challenge"))
        .json(&json!({"route_id": "wall", "client_ip": "203.0.113.50"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_eq!(error_of(r).await, (503, "mint_budget_spent".into()));
    let metrics = s
        .http
        .get(s.internal("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("lightning_wall_challenges_refused_total{kind=\"mint_budget\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("lightning_wall_challenges_total{mode=\"deposit\"}"),
        "no deposit invoice was created: {metrics}"
    );
    // The budget refills every second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.challenge("api", "198.51.100.9").await;
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_are_capped_per_token_and_in_total_and_paid_ones_answer() {
    // One provider network (192.0.2.x) may take every place here: the share is tested in
    // `long_poll_places_are_shared_per_provider_network_and_a_full_house_answers_at_once`.
    let s = sidecar_with(
        "max_long_polls: 3\n  max_long_polls_per_token: 2\n  long_poll_share_pct: 100",
    )
    .await;
    let a = s.challenge("wall", "192.0.2.10").await;
    let b = s.challenge("wall", "192.0.2.11").await;
    let c = s.challenge("wall", "192.0.2.12").await;
    let poll = |macaroon: &Value| {
        s.http
            .get(s.public("/deposit?wait=30"))
            .header(
                "authorization",
                format!("L402 {}:", macaroon.as_str().unwrap()),
            )
            .timeout(Duration::from_secs(20))
            .send()
    };
    let waiting_a: Vec<_> = (0..2).map(|_| tokio::spawn(poll(&a["macaroon"]))).collect();
    let waiting_b = tokio::spawn(poll(&b["macaroon"]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let third = poll(&a["macaroon"]).await.unwrap();
    assert_eq!(
        third
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_eq!(error_of(third).await, (429, "too_many_waiters".into()));
    // Every place taken: the state at once, to ask again in a second.
    let full = poll(&c["macaroon"]).await.unwrap();
    assert_eq!(full.status(), 200);
    assert_eq!(
        full.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let full: Value = full.json().await.unwrap();
    assert_eq!(full["state"], "awaiting_payment", "{full}");
    // A short status read (no wait) is never refused.
    let (now, _) = s.status(c["macaroon"].as_str().unwrap(), 0).await;
    assert_eq!(now["state"], "awaiting_payment");
    // Paying wakes a's waiters with the credential; their places are free again.
    s.dev_pay(a["invoice"].as_str().unwrap()).await;
    for w in waiting_a {
        let r = w.await.unwrap().unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["state"], "held", "{body}");
        assert!(body["credential"].is_string());
    }
    s.dev_pay(b["invoice"].as_str().unwrap()).await;
    let body: Value = waiting_b.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(body["state"], "held");
    let (c_state, _) = s.status(c["macaroon"].as_str().unwrap(), 1).await;
    assert_eq!(c_state["state"], "awaiting_payment", "c may wait again");
    s.running.shutdown().await;
}

/// A status read as the wall page makes it: `(status, Retry-After, body)` and how long the
/// answer took.
async fn timed_status(
    s: &Sidecar,
    macaroon: &Value,
    wait: u64,
) -> (u16, Option<String>, Value, Duration) {
    let started = std::time::Instant::now();
    let r = s
        .http
        .get(s.public(&format!("/deposit?wait={wait}")))
        .header(
            "authorization",
            format!("L402 {}:", macaroon.as_str().unwrap()),
        )
        .timeout(Duration::from_secs(40))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        status,
        retry_after,
        r.json().await.unwrap(),
        started.elapsed(),
    )
}

/// `lightning_wall_long_polls_waiting` now.
async fn long_polls_waiting(s: &Sidecar) -> u64 {
    let text = s
        .http
        .get(s.internal("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("lightning_wall_long_polls_waiting "))
        .map(|n| n.trim().parse().unwrap())
        .expect("the long-polls gauge")
}

/// Until `n` long-polls wait (10 s at most).
async fn waiting(s: &Sidecar, n: u64) {
    for _ in 0..1000 {
        if long_polls_waiting(s).await >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "{n} long-polls expected, {} waiting",
        long_polls_waiting(s).await
    );
}

/// The soak's finding (bench/RESULTS.md "Soak with release binaries"): 10,000 long-polls of one
/// provider's unpaid macaroons filled `max_long_polls`, and a visitor who had just paid got
/// 503 `waiters_full` for the status read that would have handed out the credential. Now one
/// provider network's deposits hold at most `long_poll_share_pct` of the places, so a visitor
/// from another network still waits; and a read that finds no place is answered at once with
/// the state (`Retry-After: 1`: the page asks again), so a full house delays a paid visitor by
/// a second, never refuses them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_places_are_shared_per_provider_network_and_a_full_house_answers_at_once() {
    // 4 places, 2 per provider network (IPv6 /32, IPv4 /16), 1 per token.
    let s =
        sidecar_with("max_long_polls: 4\n  max_long_polls_per_token: 1\n  long_poll_share_pct: 50")
            .await;
    let mut flood = Vec::new();
    for i in 1..=3 {
        flood.push(s.challenge("wall", &format!("2001:db8:{i}::1")).await);
    }
    let visitor = s.challenge("wall", "198.51.100.7").await;
    let third = s.challenge("wall", "192.0.2.1").await;
    let late = s.challenge("wall", "203.0.113.9").await;
    let poll = |c: &Value| {
        let url = s.public("/deposit?wait=30");
        let auth = format!("L402 {}:", c["macaroon"].as_str().unwrap());
        let http = s.http.clone();
        tokio::spawn(async move {
            let r = http
                .get(url)
                .header("authorization", auth)
                .timeout(Duration::from_secs(40))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        })
    };
    let flooding = [poll(&flood[0]), poll(&flood[1])];
    waiting(&s, 2).await;
    // The flood's network is at its share: its third deposit is answered at once, to ask
    // again in 5 s.
    let (status, retry_after, body, took) = timed_status(&s, &flood[2]["macaroon"], 30).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("awaiting_payment")),
        "{body}"
    );
    assert_eq!(retry_after.as_deref(), Some("5"));
    assert!(
        took < Duration::from_secs(5),
        "answered at once, took {took:?}"
    );
    // The per-token cap still holds: 429, not the immediate answer.
    let (status, body) = poll(&flood[0]).await.unwrap();
    assert_eq!(
        (status, &body["error"]["code"]),
        (429, &json!("too_many_waiters")),
        "{body}"
    );
    // A visitor from another network still waits: answered when paid, with the credential.
    let waiting_visitor = poll(&visitor);
    let waiting_third = poll(&third);
    waiting(&s, 4).await;
    assert!(
        !waiting_visitor.is_finished(),
        "the other network's read waits"
    );
    // A full house (4 of 4): a deposit of a fourth network, unpaid, is answered at once, to
    // ask again in a second…
    let (status, retry_after, body, took) = timed_status(&s, &late["macaroon"], 30).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("awaiting_payment")),
        "{body}"
    );
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert!(
        took < Duration::from_secs(5),
        "answered at once, took {took:?}"
    );
    // …and once paid, its reads (as the page makes them) hand out the credential at once,
    // while every place is still taken.
    s.dev_pay(late["invoice"].as_str().unwrap()).await;
    let mut held = None;
    for _ in 0..20 {
        let (status, retry_after, body, took) = timed_status(&s, &late["macaroon"], 30).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            took < Duration::from_secs(5),
            "answered at once, took {took:?}"
        );
        if body["state"] == "held" {
            held = Some(body);
            break;
        }
        let seconds: u64 = retry_after.expect("Retry-After").parse().unwrap();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
    }
    let held = held.expect("the paid deposit's read says held");
    assert!(held["credential"].is_string(), "{held}");
    assert_eq!(long_polls_waiting(&s).await, 4, "the house stayed full");
    s.dev_pay(visitor["invoice"].as_str().unwrap()).await;
    let (status, body) = waiting_visitor.await.unwrap();
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("held")),
        "{body}"
    );
    assert!(body["credential"].is_string(), "{body}");
    // The rest are paid too, so no long-poll outlives the test (shutdown lets them finish).
    for (c, w) in flood.iter().zip(flooding).chain([(&third, waiting_third)]) {
        s.dev_pay(c["invoice"].as_str().unwrap()).await;
        assert_eq!(w.await.unwrap().1["state"], "held");
    }
    s.running.shutdown().await;
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let s = sidecar().await;
    s.challenge("api", "192.0.2.5").await;
    let ready = s.http.get(s.internal("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = s
        .http
        .get(s.internal("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("lightning_wall_challenges_total{mode=\"pay\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lightning_wall_deposits{state=\"held\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lightning_wall_node_call_seconds"),
        "{metrics}"
    );
    let health = s
        .http
        .get(format!("http://{}/healthz", s.running.public))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_long_poll_waiters_are_all_answered_when_paid() {
    let s = sidecar().await;
    let waiters = 1000;
    let mut challenges = Vec::with_capacity(waiters);
    for i in 0..waiters {
        // Distinct client networks, 4 per provider network (/16): the per-network caps, mint
        // rate and budget share are not under test here.
        let ip = format!("10.{}.{}.1", i % 250, i / 250);
        challenges.push(s.challenge("wall", &ip).await);
    }
    let public = s.public("/deposit?wait=30");
    let mut polls = Vec::with_capacity(waiters);
    for c in &challenges {
        let http = reqwest::Client::new();
        let url = public.clone();
        let macaroon = c["macaroon"].as_str().unwrap().to_owned();
        polls.push(tokio::spawn(async move {
            let r = http
                .get(url)
                .header("authorization", format!("L402 {macaroon}:"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    let node = s.running.dev_node.clone().unwrap();
    for c in &challenges {
        node.simulate_payment(c["invoice"].as_str().unwrap())
            .await
            .unwrap();
    }
    for poll in polls {
        let answer = poll.await.unwrap();
        assert_eq!(answer["state"], "held", "{answer}");
        assert!(answer["credential"].is_string());
    }
    eprintln!(
        "{waiters} long-poll waiters answered {:?} after the payments started",
        started.elapsed()
    );
    s.running.shutdown().await;
}

/// Every route of the filter's API and of the operator's API refuses a caller without its token
/// (the `auth` extractors run before the handler), and lets one with it through.
#[tokio::test]
async fn every_internal_and_admin_route_refuses_a_caller_without_its_token() {
    const INTERNAL_TOKEN: &str = "internal-token-for-tests";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("admin-token"), format!("{ADMIN_TOKEN}\n")).unwrap();
    std::fs::write(
        dir.path().join("internal-token"),
        format!("{INTERNAL_TOKEN}\n"),
    )
    .unwrap();
    let yaml = config_yaml(dir.path(), "").replace(
        r#"internal: { bind: "127.0.0.1:0" }"#,
        &format!(
            r#"internal: {{ bind: "127.0.0.1:0", token: {{ file: {} }} }}"#,
            dir.path().join("internal-token").display()
        ),
    );
    assert!(yaml.contains("internal-token"), "{yaml}");
    let path = dir.path().join("lightning-wall.yaml");
    std::fs::write(&path, yaml).unwrap();
    let s = Sidecar {
        running: start(Config::load(&path).unwrap()).await.unwrap(),
        http: reqwest::Client::new(),
        _dir: dir,
    };
    use reqwest::Method;
    let hash = "ab".repeat(32);
    let internal = [
        (Method::POST, "/v1/challenge".to_owned()),
        (Method::GET, "/v1/bootstrap".to_owned()),
        (Method::GET, "/v1/sync".to_owned()),
        (Method::GET, "/v1/revocations/snapshot".to_owned()),
        (Method::POST, "/v1/events".to_owned()),
        (Method::POST, "/v1/dev/pay".to_owned()),
        (Method::GET, format!("/v1/dev/invoices/{hash}")),
    ]
    .map(|(m, p)| (m, s.internal(&p), INTERNAL_TOKEN));
    let admin = [
        (Method::GET, "/deposits".to_owned()),
        (Method::GET, format!("/deposits/{hash}")),
        (Method::POST, format!("/deposits/{hash}/refund")),
        (Method::POST, format!("/deposits/{hash}/forfeit")),
        (Method::POST, "/revoke".to_owned()),
        (Method::GET, "/audit".to_owned()),
    ]
    .map(|(m, p)| (m, s.admin(&p), ADMIN_TOKEN));
    for (method, url, token) in internal.iter().chain(admin.iter()) {
        for presented in [None, Some("wrong"), Some(*token)] {
            let mut request = s.http.request(method.clone(), url);
            if let Some(t) = presented {
                request = request.bearer_auth(t);
            }
            let r = request.send().await.unwrap();
            if presented == Some(*token) {
                assert_ne!(r.status(), 401, "{method} {url} with its token");
            } else {
                let got = error_of(r).await;
                assert_eq!(
                    got,
                    (401, "unauthorized".into()),
                    "{method} {url} {presented:?}"
                );
            }
        }
    }
    // Nothing was minted by any of it.
    let r = s
        .http
        .get(s.admin("/deposits"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await;
    let listed: Value = r.unwrap().json().await.unwrap();
    assert_eq!(listed["deposits"], json!([]));
    s.running.shutdown().await;
}

/// Found on the going-live walk: the leave page's form, posted by a browser without
/// JavaScript, was answered with the JSON meant for the page's script. A browser's form post
/// gets a page saying the deposit goes back; the refund is the same.
#[tokio::test]
async fn leaving_without_javascript_answers_a_page_and_refunds() {
    let s = sidecar().await;
    let c = s.challenge("wall", "203.0.113.9").await;
    let invoice = c["invoice"].as_str().unwrap();
    let macaroon = c["macaroon"].as_str().unwrap();
    assert_eq!(s.dev_pay(invoice).await, json!({"status": "held"}));
    let (held, _) = s.status(macaroon, 10).await;
    let credential = held["credential"].as_str().unwrap();

    // What a browser sends for `<form method="post">` without a script.
    let r = s
        .http
        .post(s.public("/leave"))
        .header("cookie", format!("lightning-wall={credential}"))
        .header("sec-fetch-site", "same-origin")
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{:?}",
        r.headers()
    );
    let cleared = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Deposit refunded") && page.contains("1,000 sats"),
        "{page}"
    );
    s.wait_node_state(c["payment_hash"].as_str().unwrap(), InvoiceState::Canceled)
        .await;
}
