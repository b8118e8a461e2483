//! The operator dashboard on the admin listener, over real HTTP: who may see it (the admin
//! token, or the session cookie its login form sets — never the token itself in the cookie),
//! and the lookup of a visitor's deposit by the reference their wall page shows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use lightning_wall::deposit::{Deposit, DepositState, DepositTiming};
use lightning_wall::ids::{Preimage, Timestamp, TokenId};
use lightning_wall_e2e::Wall;
use serde_json::Value;

struct Answer {
    status: u16,
    set_cookie: Option<String>,
    location: Option<String>,
    content_type: String,
    body: String,
}

/// `GET`/`POST` on the admin listener without following redirects.
fn call(
    wall: &Wall,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let url = format!("{}{path}", wall.admin().0);
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let body = body.map(str::to_owned);
    wall.block_on(async move {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut request = client.request(method, url);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
        let r = request.send().await.unwrap();
        let get = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Answer {
            status: r.status().as_u16(),
            set_cookie: get("set-cookie"),
            location: get("location"),
            content_type: get("content-type").unwrap_or_default(),
            body: r.text().await.unwrap(),
        }
    })
}

/// Signs in through the form; the `Cookie` header value of the session.
fn sign_in(wall: &Wall) -> String {
    let token = wall.admin().1.to_owned();
    let a = call(
        wall,
        "POST",
        "/admin/login",
        &[],
        Some(&format!("token={token}")),
    );
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(a.location.as_deref(), Some("/admin/dashboard"));
    let set = a.set_cookie.expect("a session cookie");
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert!(set.contains("Path=/admin"), "{set}");
    assert!(!set.contains(&token), "the cookie is not the token");
    set.split(';').next().unwrap().to_owned()
}

fn bearer(wall: &Wall) -> String {
    format!("Bearer {}", wall.admin().1)
}

#[test]
fn without_the_token_the_dashboard_is_a_sign_in_page_and_its_data_401() {
    let wall = Wall::start(1);
    let page = call(&wall, "GET", "/admin/dashboard", &[], None);
    assert_eq!(page.status, 401);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    assert!(
        page.body.contains("action=\"/admin/login\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("deposits held"));
    for path in ["/admin/v1/dashboard", "/admin/v1/lookup?ref=0123456789"] {
        assert_eq!(call(&wall, "GET", path, &[], None).status, 401, "{path}");
        let wrong = [("authorization", "Bearer wrong")];
        assert_eq!(call(&wall, "GET", path, &wrong, None).status, 401, "{path}");
    }
    let wrong = call(
        &wall,
        "POST",
        "/admin/login",
        &[],
        Some("token=not-the-token"),
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.set_cookie.is_none());
    assert!(wrong.body.contains("not the admin token"), "{}", wrong.body);
    // A forged or stale session is no session.
    let forged = [("cookie", "lw_admin_session=1800000000.00")];
    assert_eq!(
        call(&wall, "GET", "/admin/dashboard", &forged, None).status,
        401
    );
}

#[test]
fn a_session_shows_the_dashboard_but_cannot_move_money() {
    let mut wall = Wall::start(1);
    let (_, challenge) = wall.held_deposit("/home");
    let cookie = sign_in(&wall);
    let page = call(
        &wall,
        "GET",
        "/admin/dashboard",
        &[("cookie", &cookie)],
        None,
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("<strong data-k=\"held\">1</strong> deposits held"),
        "{}",
        page.body
    );
    assert!(page.body.contains("1,000 sats"), "{}", page.body);
    // The cookie is for looking; refunds, forfeits and drains need the token itself.
    let hash = challenge["payment_hash"].as_str().unwrap();
    for (method, path) in [
        ("POST", format!("/admin/v1/deposits/{hash}/refund")),
        ("POST", "/admin/v1/drain".to_owned()),
        ("GET", "/admin/v1/deposits".to_owned()),
    ] {
        let a = call(&wall, method, &path, &[("cookie", &cookie)], None);
        assert_eq!(a.status, 401, "{method} {path}");
    }
    // Signed out: the cookie is cleared.
    let out = call(&wall, "POST", "/admin/logout", &[("cookie", &cookie)], None);
    assert_eq!(out.status, 303);
    assert!(out.set_cookie.unwrap().contains("Max-Age=0"));
}

#[test]
fn the_reference_on_the_wall_page_finds_the_visitors_deposit() {
    let mut wall = Wall::start(1);
    let (_, challenge) = wall.held_deposit("/home");
    let hash = challenge["payment_hash"].as_str().unwrap();
    let token_id = challenge["token_id"].as_str().unwrap();
    // What the wall page shows: "Reference: " and the first 10 hex characters of the token id.
    let reference = &token_id[..10];
    let auth = bearer(&wall);
    let a = call(
        &wall,
        "GET",
        &format!("/admin/v1/lookup?ref={reference}"),
        &[("authorization", &auth)],
        None,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let found: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(found["payment_hash"], hash);
    assert_eq!(found["state"], "held");

    let cookie = sign_in(&wall);
    let page = call(
        &wall,
        "GET",
        &format!("/admin/dashboard?ref=Reference:%20{reference}"),
        &[("cookie", &cookie)],
        None,
    );
    assert_eq!(page.status, 200);
    assert!(page.body.contains(hash), "{}", page.body);
    assert!(
        page.body.contains(&format!("<td>{reference}</td>")),
        "{}",
        page.body
    );

    // Unknown and malformed references are clear answers, not errors.
    let unknown = call(
        &wall,
        "GET",
        "/admin/v1/lookup?ref=0000000000",
        &[("authorization", &auth)],
        None,
    );
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.body.contains("reference_not_found"),
        "{}",
        unknown.body
    );
    let short = call(
        &wall,
        "GET",
        "/admin/v1/lookup?ref=abc",
        &[("authorization", &auth)],
        None,
    );
    assert_eq!(short.status, 400);
    assert!(short.body.contains("bad_reference"), "{}", short.body);
    let page = call(
        &wall,
        "GET",
        "/admin/dashboard?ref=0000000000",
        &[("cookie", &cookie)],
        None,
    );
    assert!(
        page.body
            .contains("No deposit has the reference 0000000000"),
        "{}",
        page.body
    );
    let page = call(
        &wall,
        "GET",
        "/admin/dashboard?ref=%3Cscript%3E",
        &[("cookie", &cookie)],
        None,
    );
    assert!(page.body.contains("hex characters"), "{}", page.body);
    assert!(
        !page.body.contains("<script>"),
        "what the operator typed is escaped"
    );
}

/// Two deposits whose token ids share the first 10 hex characters (one in 2^40 by chance;
/// written straight to the store here).
#[test]
fn a_reference_two_deposits_share_is_answered_as_ambiguous() {
    let wall = Wall::start(1);
    let store = wall.store();
    wall.block_on(async {
        for n in 1u8..=2 {
            let preimage = Preimage([n; 32]);
            let mut token = [0xab; 32];
            token[31] = n;
            let d = Deposit {
                payment_hash: preimage.payment_hash(),
                token_id: TokenId(token),
                route_id: "wall".into(),
                client_prefix: "203.0.113.0/24".into(),
                amount_msat: 1_000_000,
                state: DepositState::AwaitingPayment,
                created_at: Timestamp::now(),
                invoice_expires_at: Timestamp(Timestamp::now().0 + 600),
                timing: DepositTiming {
                    idle_timeout: std::time::Duration::from_secs(300),
                    session_cap: std::time::Duration::from_secs(3600),
                    safety_margin_blocks: 6,
                    assumed_block_interval: std::time::Duration::from_secs(300),
                },
                hold: None,
                resolution: None,
                pending: None,
            };
            store.insert_deposit(&d, &preimage).await.unwrap();
        }
    });
    let auth = bearer(&wall);
    let a = call(
        &wall,
        "GET",
        "/admin/v1/lookup?ref=abababab",
        &[("authorization", &auth)],
        None,
    );
    assert_eq!(a.status, 409, "{}", a.body);
    let body: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(body["error"]["code"], "reference_ambiguous");
    assert_eq!(body["matches"].as_array().unwrap().len(), 2);
    // The full token id tells them apart.
    let one = format!("{}01", "ab".repeat(31));
    let a = call(
        &wall,
        "GET",
        &format!("/admin/v1/lookup?ref={one}"),
        &[("authorization", &auth)],
        None,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let cookie = sign_in(&wall);
    let page = call(
        &wall,
        "GET",
        "/admin/dashboard?ref=abababab",
        &[("cookie", &cookie)],
        None,
    );
    assert!(
        page.body.contains("2 deposits start with abababab"),
        "{}",
        page.body
    );
}
