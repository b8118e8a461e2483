//! The pay and deposit flows end to end: the real `.wasm` in the host, the real sidecar on
//! loopback with the `dev` node (real signed BOLT11, real hold invoices) and SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use lightning_wall::node::InvoiceState;
use lightning_wall_e2e::testing::Request;
use lightning_wall_e2e::{Wall, header, status};

#[test]
fn pay_flow_challenge_pay_then_access_with_the_preimage() {
    let mut wall = Wall::start(1);
    let ex = wall.send(&Request::get("/v1/data").header("accept", "application/json"));
    assert_eq!(status(&ex), Some(402));
    assert!(ex.upstream_request.is_none());
    let resp = ex.response.as_ref().unwrap();
    let www: Vec<&str> = resp
        .headers
        .get_all("www-authenticate")
        .into_iter()
        .map(|v| std::str::from_utf8(v).unwrap())
        .collect();
    assert_eq!(www.len(), 2, "{www:?}");
    assert!(www[0].starts_with("LSAT macaroon="));
    assert!(www[1].starts_with("L402 macaroon="));
    assert_eq!(header(&ex, "cache-control"), Some("no-store"));
    let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(body["mode"], "pay");
    assert_eq!(body["amount_sat"], 21);
    assert!(body["invoice"].as_str().unwrap().starts_with("lnbcrt"));

    let paid = wall.dev_pay(body["invoice"].as_str().unwrap());
    assert_eq!(paid["status"], "settled");
    let credential = format!(
        "L402 {}:{}",
        body["macaroon"].as_str().unwrap(),
        paid["preimage"].as_str().unwrap()
    );
    let forged = Request::get("/v1/data")
        .header("authorization", &credential)
        .header("x-lightning-wall-token", "forged")
        .header("x-lightning-wall-verdict", "refund");
    if wall.refuses_own_request_headers() {
        // nginx/nginx.conf answers 400 before the filter (docs/filter.md "Hosts").
        let ex = wall.send(&forged);
        assert_eq!(status(&ex), Some(400));
        assert!(ex.upstream_request.is_none());
    }
    let plain = Request::get("/v1/data").header("authorization", &credential);
    let ex = wall.send(if wall.refuses_own_request_headers() {
        &plain
    } else {
        &forged
    });
    assert_eq!(status(&ex), Some(200));
    let up = ex.upstream_request.unwrap();
    assert_eq!(
        up.headers.get("x-lightning-wall-token"),
        body["token_id"].as_str()
    );
    assert_eq!(up.headers.get("x-lightning-wall-mode"), Some("pay"));
    assert!(
        up.headers.get("x-lightning-wall-verdict").is_none(),
        "client verdicts are stripped"
    );
    assert_eq!(up.headers.get_all("x-lightning-wall-token").len(), 1);

    // A wrong preimage: 401 with the reason.
    let bad = format!(
        "L402 {}:{}",
        body["macaroon"].as_str().unwrap(),
        "00".repeat(32)
    );
    let ex = wall.send(&Request::get("/v1/data").header("authorization", &bad));
    assert_eq!(status(&ex), Some(401));
    assert_eq!(header(&ex, "x-lightning-wall-reason"), Some("bad_proof"));
    assert!(
        wall.host
            .logs()
            .iter()
            .all(|l| !l.message.contains(paid["preimage"].as_str().unwrap()))
    );
}

#[test]
fn pay_flow_without_the_preimage_gets_in_once_settled_and_an_unpaid_empty_proof_does_not() {
    // A custodial wallet pays but never shows the preimage: the client asks the payment
    // endpoint with the macaroon and gets a pay receipt the filter verifies locally.
    let mut wall = Wall::start(1);
    let payment_url = format!("{}/.well-known/lightning-wall/payment", wall.public_url());

    // The attacker: an empty proof, and the payment endpoint, for an invoice nobody paid.
    let unpaid = wall.challenge("/v1/data");
    let unpaid_mac = unpaid["macaroon"].as_str().unwrap();
    let unpaid_hash = unpaid["payment_hash"].as_str().unwrap();
    let ex =
        wall.send(&Request::get("/v1/data").header("authorization", format!("L402 {unpaid_mac}:")));
    assert_eq!(status(&ex), Some(401));
    assert_eq!(header(&ex, "x-lightning-wall-reason"), Some("not_paid"));
    assert!(ex.upstream_request.is_none());
    let (code, body) = wall.get_json(&payment_url, Some(&format!("L402 {unpaid_mac}:")));
    assert_eq!(code, 200);
    assert!(body.get("credential").is_none(), "{body}");
    assert_eq!(wall.node_state(unpaid_hash), InvoiceState::Open);

    // The honest payer.
    let c = wall.challenge("/v1/data");
    let mac = c["macaroon"].as_str().unwrap();
    let paid = wall.dev_pay(c["invoice"].as_str().unwrap());
    assert_eq!(paid["status"], "settled");
    let (code, body) = wall.get_json(&payment_url, Some(&format!("L402 {mac}:")));
    assert_eq!(code, 200);
    assert_eq!(body["state"], "settled");
    let credential = body["credential"].as_str().unwrap();
    assert!(!credential.ends_with(paid["preimage"].as_str().unwrap()));
    // A classic client that sends the empty proof: the filter asks the sidecar once, lets it
    // in, and hands back the same credential to use from then on.
    let ex = wall.send(&Request::get("/v1/data").header("authorization", format!("L402 {mac}:")));
    assert_eq!(status(&ex), Some(200));
    assert_eq!(header(&ex, "x-lightning-wall-credential"), Some(credential));
    let ex =
        wall.send(&Request::get("/v1/data").header("authorization", format!("L402 {credential}")));
    assert_eq!(status(&ex), Some(200));
    let up = ex.upstream_request.unwrap();
    assert_eq!(up.headers.get("x-lightning-wall-mode"), Some("pay"));
    // Its receipt does not open the unpaid token.
    let proof = credential.rsplit_once(':').unwrap().1;
    let ex = wall.send(
        &Request::get("/v1/data").header("authorization", format!("L402 {unpaid_mac}:{proof}")),
    );
    assert_eq!(status(&ex), Some(401));
    assert_eq!(header(&ex, "x-lightning-wall-reason"), Some("bad_proof"));
    assert_eq!(wall.node_state(unpaid_hash), InvoiceState::Open);
}

#[test]
fn deposit_flow_hold_access_leave_refund_and_refused_within_one_tick() {
    let mut wall = Wall::start(1);
    let (credential, challenge) = wall.held_deposit("/articles/1");
    let hash = challenge["payment_hash"].as_str().unwrap().to_owned();
    assert_eq!(
        challenge["status_url"],
        "/.well-known/lightning-wall/deposit"
    );
    assert_eq!(challenge["terms_url"], "/.well-known/lightning-wall/terms");
    // The terms the 402 points at (served by the sidecar's public listener) list this route.
    let (code, _, body) = wall.public_get("/.well-known/lightning-wall/terms");
    assert_eq!(code, 200);
    let terms: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        terms["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == challenge["route_id"] && r["deposit"]["refundable"] == true),
        "{terms}"
    );
    assert_eq!(wall.node_state(&hash), InvoiceState::Accepted);

    let auth = format!("L402 {credential}");
    let ex = wall.send(&Request::get("/articles/1").header("authorization", &auth));
    assert_eq!(status(&ex), Some(200));
    let up = ex.upstream_request.unwrap();
    assert_eq!(up.headers.get("x-lightning-wall-mode"), Some("deposit"));
    // The browser's way: the cookie.
    let ex = wall.send(
        &Request::get("/articles/2").header("cookie", format!("lightning-wall={credential}")),
    );
    assert_eq!(status(&ex), Some(200));

    let left = wall.leave(&credential);
    // The refund follows after the leave grace (a forfeit already decided would still win).
    assert_eq!(left["state"], "leaving");
    wall.wait_node_state(&hash, InvoiceState::Canceled);
    wall.tick();
    let ex = wall.send(&Request::get("/articles/1").header("authorization", &auth));
    assert_eq!(
        status(&ex),
        Some(402),
        "a refunded deposit's credential opens nothing"
    );
    assert!(ex.upstream_request.is_none());
}

#[test]
fn an_empty_proof_deposit_credential_is_accepted_once_held_and_gets_the_full_credential() {
    let mut wall = Wall::start(2);
    let challenge = wall.challenge("/home");
    let macaroon = challenge["macaroon"].as_str().unwrap();
    let auth = format!("L402 {macaroon}:");
    let ex = wall.send(&Request::get("/home").header("authorization", &auth));
    assert_eq!(status(&ex), Some(401), "not paid yet");
    assert_eq!(
        header(&ex, "x-lightning-wall-reason"),
        Some("deposit_not_held")
    );

    wall.dev_pay(challenge["invoice"].as_str().unwrap());
    let held = wall.deposit_status(macaroon);
    assert_eq!(held["state"], "held");
    let ex = wall.send(&Request::get("/home").header("authorization", &auth));
    assert_eq!(status(&ex), Some(200));
    assert_eq!(
        header(&ex, "x-lightning-wall-credential"),
        held["credential"].as_str(),
        "the response carries the full credential"
    );
    let token = challenge["token_id"].as_str().unwrap();
    // Cached in one of the bounded `lw.held.<slot>` keys, which names the token (stored as
    // `key NUL value`: every value carries its key, docs/filter.md "Hosts").
    assert!((0..4096).any(|slot| {
        let k = format!("lw.held.{slot}");
        let stored = wall.host.shared_data(&k);
        stored.as_deref() == Some([k.as_bytes(), b"\0", token.as_bytes()].concat().as_slice())
    }));
    // The other worker uses the cached confirmation.
    let ex = wall.send(&Request::get("/home").header("authorization", &auth));
    assert_eq!(status(&ex), Some(200));

    wall.leave(held["credential"].as_str().unwrap());
    wall.tick();
    let ex = wall.send(&Request::get("/home").header("authorization", &auth));
    assert_eq!(
        status(&ex),
        Some(402),
        "refunded: the cached confirmation is void"
    );
}

/// The challenge values of a 402 for `path`, with its JSON body.
fn challenge_headers(wall: &mut Wall, path: &str) -> (Vec<String>, serde_json::Value) {
    let ex = wall.send(&Request::get(path).header("accept", "application/json"));
    assert_eq!(status(&ex), Some(402));
    let resp = ex.response.unwrap();
    let www = resp
        .headers
        .get_all("www-authenticate")
        .into_iter()
        .map(|v| std::str::from_utf8(v).unwrap().to_owned())
        .collect();
    (www, serde_json::from_slice(&resp.body).unwrap())
}

/// How the classic clients read a challenge (docs/wire-format.md "Challenge"), each answering
/// (macaroon, invoice): Aperture's Go client (one regex, `invoice=` right after `macaroon=`),
/// l402-requests, Fewsats' L402-python (two regexes with `[^ ]+`), lsat-js (split at commas,
/// the value after the first `=`, quotes removed), and the `l402` crate's own parser.
fn classic_client_readings(value: &str) -> Vec<(&'static str, String, String)> {
    use base64::Engine as _;
    let re = |p: &str| regex_lite::Regex::new(p).unwrap();
    let two = |name, c: Option<regex_lite::Captures>, m: usize, i: usize| {
        let c = c.unwrap_or_else(|| panic!("{name} does not match {value}"));
        (name, c[m].to_owned(), c[i].to_owned())
    };
    let aperture = re(r#"(LSAT|L402) macaroon="(.*?)", invoice="(.*?)""#).captures(value);
    let l402_requests =
        re(r#"(?i)(?:L402|LSAT)\s+macaroon="([^"]+)"\s*,\s*invoice="([^"]+)""#).captures(value);
    let fewsats_mac = re(r#"macaroon="([^ ]+)""#).captures(value).unwrap()[1].to_owned();
    let fewsats_inv = re(r#"invoice="([^ ]+)""#).captures(value).unwrap()[1].to_owned();
    let lsat_js = |key: &str| {
        let part = value.split(',').find(|p| p.contains(key)).unwrap();
        part[part.find('=').unwrap() + 1..].trim().replace('"', "")
    };
    let ours = l402::parse_challenge(value).unwrap();
    vec![
        two("aperture", aperture, 2, 3),
        two("l402-requests", l402_requests, 1, 2),
        ("L402-python", fewsats_mac, fewsats_inv),
        ("lsat-js", lsat_js("macaroon="), lsat_js("invoice=")),
        (
            "l402",
            base64::engine::general_purpose::STANDARD.encode(ours.macaroon),
            ours.invoice,
        ),
    ]
}

#[test]
fn a_deposit_challenge_says_deposit_after_macaroon_and_invoice_which_classic_clients_still_read() {
    let mut wall = Wall::start(1);
    let (www, body) = challenge_headers(&mut wall, "/articles/1");
    let (mac, inv) = (
        body["macaroon"].as_str().unwrap(),
        body["invoice"].as_str().unwrap(),
    );
    assert_eq!(www.len(), 2, "{www:?}");
    for (value, scheme) in www.iter().zip(["LSAT", "L402"]) {
        // `macaroon="…", invoice="…"` first and in that order, then what a program acts on.
        assert_eq!(
            *value,
            format!(
                "{scheme} macaroon=\"{mac}\", invoice=\"{inv}\", mode=\"deposit\", \
                 status_url=\"/.well-known/lightning-wall/deposit\", \
                 leave_url=\"/.well-known/lightning-wall/leave\", \
                 terms_url=\"/.well-known/lightning-wall/terms\""
            )
        );
        for (client, m, i) in classic_client_readings(value) {
            assert_eq!((m.as_str(), i.as_str()), (mac, inv), "{client} on {value}");
        }
    }
    // A pay route's challenge stays the classic one, byte for byte.
    let (www, body) = challenge_headers(&mut wall, "/v1/data");
    let (mac, inv) = (
        body["macaroon"].as_str().unwrap(),
        body["invoice"].as_str().unwrap(),
    );
    assert_eq!(
        www,
        [
            format!("LSAT macaroon=\"{mac}\", invoice=\"{inv}\""),
            format!("L402 macaroon=\"{mac}\", invoice=\"{inv}\"")
        ]
    );
    for (client, m, i) in classic_client_readings(&www[1]) {
        assert_eq!((m.as_str(), i.as_str()), (mac, inv), "{client}");
    }
}
