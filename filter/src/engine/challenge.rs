//! Turning the sidecar's `POST /v1/challenge` answer into the 402 the client sees:
//! `WWW-Authenticate` (LSAT then L402), `Cache-Control: no-store`, and a JSON body for API
//! clients or an HTML page for browsers. The answer is untrusted input: anything that could
//! break a header or the page is refused, and a refused answer is treated as "sidecar down".

use lightning_wall_contract::challenge::{ChallengeAnswer as Answer, MINT_BUDGET_SPENT};
use lightning_wall_contract::paths::{
    DEPOSIT_STATUS as STATUS_URL, LEAVE as LEAVE_URL, TERMS as TERMS_URL,
};
use lightning_wall_contract::{FailureMode, RouteMode};
use serde::Serialize;

use super::pages::{self, Browser};
use super::policy::Policy;
use super::reply::{Page, Reply};

/// Appended to each `WWW-Authenticate` value of a deposit route, after the sidecar's
/// `macaroon="…", invoice="…"` (which stay first and in that order: clients in use match exactly
/// that, one with `invoice=` right after `macaroon=`; docs/wire-format.md "Challenge"). Quoted
/// auth-params (RFC 9110 §11.2) that a program acts on without a browser: the route takes a
/// refundable deposit, where to poll for the held credential, how to leave, where the terms are.
/// ", " between parameters and no space inside a value keep the parsers that read
/// `invoice="([^ ]+)"` exact.
fn deposit_params() -> String {
    format!(
        ", mode=\"deposit\", status_url=\"{STATUS_URL}\", leave_url=\"{LEAVE_URL}\", \
         terms_url=\"{TERMS_URL}\""
    )
}

#[derive(Serialize)]
struct Body<'a> {
    mode: &'a str,
    route_id: &'a str,
    amount_sat: u64,
    invoice: &'a str,
    macaroon: &'a str,
    payment_hash: &'a str,
    token_id: &'a str,
    expires_at: u64,
    valid_until: u64,
    terms_url: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_url: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    leave_url: Option<&'static str>,
}

/// What the filter does with the answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send this reply (402, 429, or 503).
    Reply(Reply),
    /// Fail open: let the request through unprotected.
    Pass,
}

fn printable(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

fn alnum(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn base64ish(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 8192
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

fn hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn valid(a: &Answer) -> bool {
    matches!(a.mode, RouteMode::Pay | RouteMode::Deposit)
        && printable(&a.route_id, 128)
        && base64ish(&a.macaroon)
        && alnum(&a.invoice, 7089)
        && hex64(&a.payment_hash)
        && hex64(&a.token_id)
        && !a.www_authenticate.is_empty()
        && a.www_authenticate.len() <= 4
        && a.www_authenticate.iter().all(|h| printable(h, 16_384))
}

/// Whether a sidecar error body carries `code` (`{"error":{"code":"…",…}}`). A search for the
/// quoted code, not a JSON parse: the codes are fixed ASCII words no message contains quoted,
/// and a parser for one field costs the .wasm more than it checks.
fn has_error_code(body: &[u8], code: &str) -> bool {
    let quoted = format!("\"{code}\"");
    body.windows(quoted.len()).any(|w| w == quoted.as_bytes())
}

/// Builds the reply for a challenge answer. `status` is `None` when the call failed;
/// `browser` is `Some` for a browser navigating, which gets the wall page (pages.rs).
pub fn outcome(
    status: Option<u16>,
    retry_after: Option<&str>,
    body: &[u8],
    browser: Option<(&Browser, Option<&Policy>)>,
    failure_mode: FailureMode,
    retry_after_s: u32,
) -> Outcome {
    let unavailable = || match failure_mode {
        FailureMode::Closed => Outcome::Reply(Reply::unavailable(retry_after_s)),
        FailureMode::Open => Outcome::Pass,
    };
    let wait = || {
        retry_after
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(u64::from(retry_after_s))
            .min(3600)
    };
    match status {
        Some(200) => {}
        Some(429) => {
            return Outcome::Reply(
                Reply::error(429, "rate_limited", "too many challenges; retry later")
                    .retry_after(wait())
                    .with_page(Page::RateLimited),
            );
        }
        // The sidecar's global mint budget is spent: the sidecar is up and refusing on
        // purpose, so even a fail-open route answers 503 (letting it through would make a bot
        // wave that spends the budget free to pass).
        Some(503) if has_error_code(body, MINT_BUDGET_SPENT) => {
            return Outcome::Reply(
                Reply::error(503, "mint_budget_spent", "too many challenges; retry later")
                    .retry_after(wait())
                    .with_page(Page::Unavailable),
            );
        }
        _ => return unavailable(),
    }
    let Ok(a) = serde_json::from_slice::<Answer>(body) else {
        return unavailable();
    };
    if !valid(&a) {
        return unavailable();
    }
    let deposit = a.mode == RouteMode::Deposit;
    let params = deposit.then(deposit_params);
    let mut headers: Vec<(&'static str, String)> = a
        .www_authenticate
        .iter()
        .map(|h| match &params {
            Some(p) => ("www-authenticate", format!("{h}{p}")),
            None => ("www-authenticate", h.clone()),
        })
        .collect();
    headers.push(("cache-control", "no-store".into()));
    let body = if let Some((browser, policy)) = browser {
        headers.push(("content-type", "text/html; charset=utf-8".into()));
        headers.push(("content-security-policy", pages::PAGE_CSP.into()));
        let challenge = pages::Challenge {
            deposit,
            route_id: &a.route_id,
            macaroon: &a.macaroon,
            invoice: &a.invoice,
            amount_sat: a.amount_sat,
            token_id: &a.token_id,
        };
        pages::wall_page(&challenge, policy, browser)
    } else {
        headers.push(("content-type", "application/json".into()));
        serde_json::to_vec(&Body {
            mode: a.mode.as_str(),
            route_id: &a.route_id,
            amount_sat: a.amount_sat,
            invoice: &a.invoice,
            macaroon: &a.macaroon,
            payment_hash: &a.payment_hash,
            token_id: &a.token_id,
            expires_at: a.invoice_expires_at,
            valid_until: a.valid_until,
            terms_url: TERMS_URL,
            status_url: deposit.then_some(STATUS_URL),
            leave_url: deposit.then_some(LEAVE_URL),
        })
        .unwrap_or_default()
    };
    Outcome::Reply(Reply {
        status: 402,
        headers,
        body,
        page: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(mode: &str) -> String {
        format!(
            r#"{{"mode":"{mode}","route_id":"wall","macaroon":"AgEO+/=","invoice":"lnbcrt10u1pabc","payment_hash":"{h}","token_id":"{h}","amount_sat":1000,"invoice_expires_at":5,"valid_until":9,"www_authenticate":["LSAT macaroon=\"AgEO+/=\", invoice=\"lnbcrt10u1pabc\"","L402 macaroon=\"AgEO+/=\", invoice=\"lnbcrt10u1pabc\""]}}"#,
            h = "0a".repeat(32)
        )
    }

    #[test]
    fn a_deposit_challenge_is_a_402_with_both_schemes_lsat_first_and_the_wall_urls() {
        let Outcome::Reply(r) = outcome(
            Some(200),
            None,
            answer("deposit").as_bytes(),
            None,
            FailureMode::Closed,
            5,
        ) else {
            panic!("no reply")
        };
        assert_eq!(r.status, 402);
        let www: Vec<_> = r
            .headers
            .iter()
            .filter(|(k, _)| *k == "www-authenticate")
            .collect();
        assert!(www[0].1.starts_with("LSAT "));
        assert!(www[1].1.starts_with("L402 "));
        // The sidecar's `macaroon="…", invoice="…"` first and unchanged, then the deposit's own
        // parameters.
        for (scheme, (_, value)) in ["LSAT", "L402"].iter().zip(&www) {
            assert_eq!(
                value,
                &format!(
                    "{scheme} macaroon=\"AgEO+/=\", invoice=\"lnbcrt10u1pabc\", mode=\"deposit\", \
                     status_url=\"{STATUS_URL}\", leave_url=\"{LEAVE_URL}\", \
                     terms_url=\"{TERMS_URL}\""
                )
            );
        }
        assert!(r.headers.contains(&("cache-control", "no-store".into())));
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["mode"], "deposit");
        assert_eq!(body["amount_sat"], 1000);
        assert_eq!(body["status_url"], STATUS_URL);
        assert_eq!(body["leave_url"], LEAVE_URL);
        assert_eq!(body["terms_url"], TERMS_URL);
        assert_eq!(body["expires_at"], 5);
    }

    #[test]
    fn browsers_get_an_html_page_and_pay_routes_have_no_wall_urls() {
        let browser = Browser::of(Some(b"text/html"), "GET", "/api/", "h").unwrap();
        let Outcome::Reply(r) = outcome(
            Some(200),
            None,
            answer("pay").as_bytes(),
            Some((&browser, None)),
            FailureMode::Closed,
            5,
        ) else {
            panic!("no reply")
        };
        assert!(
            r.headers
                .contains(&("content-type", "text/html; charset=utf-8".into()))
        );
        assert!(
            r.headers
                .iter()
                .any(|(k, v)| *k == "content-security-policy" && v.contains("script-src 'self'"))
        );
        let page = String::from_utf8(r.body).unwrap();
        assert!(page.contains(r#"href="lightning:lnbcrt10u1pabc""#));
        assert!(
            page.contains(r#"src="/.well-known/lightning-wall/qr.svg?invoice=lnbcrt10u1pabc""#)
        );
        assert!(page.contains(r#"<script src="/.well-known/lightning-wall/wall.js"></script>"#));
        assert!(!page.contains("<script>"), "no inline script");
        assert!(page.contains("1,000 sats"));
        assert!(page.contains(r#"<a href="/.well-known/lightning-wall/terms">Terms</a>"#));
        assert!(page.contains(r#"data-mode="pay""#));
        assert!(page.contains(r#"data-macaroon="AgEO+/=""#));
        let Outcome::Reply(r) = outcome(
            Some(200),
            None,
            answer("pay").as_bytes(),
            None,
            FailureMode::Closed,
            5,
        ) else {
            panic!("no reply")
        };
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert!(body.get("status_url").is_none());
        // A pay route's challenge is the classic one, byte for byte as the sidecar made it.
        let www: Vec<_> = r
            .headers
            .iter()
            .filter(|(k, _)| *k == "www-authenticate")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            www,
            [
                r#"LSAT macaroon="AgEO+/=", invoice="lnbcrt10u1pabc""#,
                r#"L402 macaroon="AgEO+/=", invoice="lnbcrt10u1pabc""#
            ]
        );
        assert!(pages::wants_html(Some(b"text/html,application/xhtml+xml")));
        assert!(!pages::wants_html(Some(b"application/json")));
    }

    #[test]
    fn a_sidecar_failure_follows_the_route_failure_mode() {
        for status in [None, Some(503), Some(500), Some(404), Some(200)] {
            let closed = outcome(status, None, b"{}", None, FailureMode::Closed, 7);
            let Outcome::Reply(r) = closed else { panic!() };
            assert_eq!(r.status, 503);
            assert!(r.headers.contains(&("retry-after", "7".into())));
            assert_eq!(
                outcome(status, None, b"{}", None, FailureMode::Open, 7),
                Outcome::Pass
            );
        }
    }

    #[test]
    fn the_sidecar_mint_limit_becomes_a_429_with_its_retry_after() {
        let Outcome::Reply(r) = outcome(Some(429), Some("42"), b"", None, FailureMode::Open, 7)
        else {
            panic!()
        };
        assert_eq!(r.status, 429);
        assert!(r.headers.contains(&("retry-after", "42".into())));
    }

    #[test]
    fn a_spent_mint_budget_is_a_503_with_its_retry_after_even_on_a_fail_open_route() {
        let spent = br#"{"error": {"code": "mint_budget_spent", "message": "m"}}"#;
        for mode in [FailureMode::Open, FailureMode::Closed] {
            let Outcome::Reply(r) = outcome(Some(503), Some("1"), spent, None, mode, 7) else {
                panic!("{mode:?} passed")
            };
            assert_eq!(r.status, 503);
            assert!(r.headers.contains(&("retry-after", "1".into())));
        }
        // Any other 503 (node or store down) still follows the route's failure mode.
        let down = br#"{"error": {"code": "node_unavailable", "message": "m"}}"#;
        assert_eq!(
            outcome(Some(503), Some("5"), down, None, FailureMode::Open, 7),
            Outcome::Pass
        );
    }

    #[test]
    fn a_drained_or_budget_spent_sidecar_is_up_and_envoys_own_503_is_not() {
        use super::super::health::{Seen, seen};
        let drained = br#"{"error":{"code":"draining","message":"drained"}}"#;
        let spent = br#"{"error":{"code":"mint_budget_spent","message":"m"}}"#;
        assert_eq!(seen(Some(503), drained), Seen::Answered);
        assert_eq!(seen(Some(503), spent), Seen::Answered);
        assert_eq!(seen(Some(429), b""), Seen::Answered);
        // Envoy's own answers for an unreachable sidecar, and a failed call.
        assert_eq!(seen(Some(503), b"no healthy upstream"), Seen::Gone);
        assert_eq!(
            seen(
                Some(503),
                b"upstream connect error or disconnect/reset before headers"
            ),
            Seen::Gone
        );
        assert_eq!(seen(None, drained), Seen::Gone);
        // A drained wall still answers per the route's failure mode.
        let Outcome::Reply(r) = outcome(
            Some(503),
            Some("300"),
            drained,
            None,
            FailureMode::Closed,
            7,
        ) else {
            panic!("closed passed")
        };
        assert_eq!(r.status, 503);
        assert_eq!(
            outcome(Some(503), Some("300"), drained, None, FailureMode::Open, 7),
            Outcome::Pass
        );
    }

    #[test]
    fn an_answer_that_could_break_a_header_or_the_page_is_refused() {
        for (from, to) in [
            ("L402 macaroon", "L402\r\nset-cookie: x\r\n macaroon"),
            ("lnbcrt10u1pabc\",\"payment", "lnbc<script>\",\"payment"),
            ("\"mode\":\"deposit\"", "\"mode\":\"free\""),
        ] {
            let bad = answer("deposit").replacen(from, to, 1);
            assert_ne!(bad, answer("deposit"), "{from}");
            let Outcome::Reply(r) = outcome(
                Some(200),
                None,
                bad.as_bytes(),
                None,
                FailureMode::Closed,
                5,
            ) else {
                panic!()
            };
            assert_eq!(r.status, 503, "{to}");
        }
    }
}
