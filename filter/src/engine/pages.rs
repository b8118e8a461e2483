//! The pages a browser gets from the filter (a navigation with `Accept: text/html`): the wall
//! page (402) and, instead of JSON, a page for a forfeit (403/429), a rate limit (429) and an
//! unavailable payment service (503). Programs keep the JSON replies unchanged
//! (docs/programs.md). Pure: every text comes from the policy's `wall` (the sidecar's `wall:`
//! configuration, defaults included), every value is HTML-escaped, and nothing on a page can
//! cost the visitor anything (no link to a trap, the leave link opens a page, not the action).

use super::policy::{Policy, Wall};
use super::reply::{Page, REASON_HEADER, Reply};
use super::routes;
use super::sync::Trigger;

use super::wall_text::{self, duration, escape_html, fill, reference, sats, text};

/// Where the sidecar's public wall endpoints are routed (docs/internal-api.md).
pub use lightning_wall_contract::paths::WALL_PREFIX;

/// Whether the client prefers an HTML page (a browser navigating).
pub fn wants_html(accept: Option<&[u8]>) -> bool {
    accept.is_some_and(|a| a.windows(9).any(|w| w.eq_ignore_ascii_case(b"text/html")))
}

/// What the filter knows of a browser's request when it answers it with a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Browser {
    /// The host the visitor asked for (the site's name when none is configured).
    pub host: String,
    /// The request's path and query (where the no-JavaScript form continues to).
    pub path: String,
    /// A `GET` or `HEAD`: the page may simply be loaded again once the deposit is held.
    pub get: bool,
}

impl Browser {
    /// `Some` for a browser navigating (`Accept` names `text/html`), `None` for programs.
    pub fn of(accept: Option<&[u8]>, method: &str, path: &str, authority: &str) -> Option<Browser> {
        if !wants_html(accept) {
            return None;
        }
        let host = match authority.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
            _ => authority,
        };
        Some(Browser {
            host: host.to_owned(),
            path: path.to_owned(),
            get: method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD"),
        })
    }
}

/// Only the sidecar's same-origin assets; forms post to the site only; nothing may frame the
/// page (clickjacking a payment).
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn site<'a>(wall: &'a Wall, browser: &'a Browser) -> &'a str {
    wall.site_name.as_deref().unwrap_or(&browser.host)
}

/// A whole document: `title` is plain text, `main` is HTML built from escaped parts.
fn document(wall: &Wall, title: &str, site: &str, main_attrs: &str, main: &str) -> Vec<u8> {
    format!(
        "<!doctype html><html lang=\"{lang}\"><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · {site}</title><link rel=\"stylesheet\" href=\"{WALL_PREFIX}wall.css\">\n\
         <main{main_attrs}><p class=\"lw-site\">{site}</p><h1>{title}</h1>\n{main}</main>",
        lang = escape_html(&wall.lang),
        title = escape_html(title),
        site = escape_html(site),
    )
    .into_bytes()
}

/// `<p>` of a filled text.
fn para(texts: &wall_text::Texts, key: &str, values: &[(&str, &str)]) -> String {
    format!("<p>{}</p>\n", escape_html(&fill(text(texts, key), values)))
}

/// The texts wall.js shows, handed over as `data-t-<key>` attributes.
const SCRIPT_TEXTS: &[&str] = &[
    "waiting",
    "not_paid_yet",
    "held_continuing",
    "continue_form",
    "continue_link",
    "expired",
    "ended",
    "connection_lost",
    "copied",
];

/// The challenge data the wall page shows.
pub struct Challenge<'a> {
    /// A deposit (else a payment).
    pub deposit: bool,
    /// Route id.
    pub route_id: &'a str,
    /// The macaroon (base64).
    pub macaroon: &'a str,
    /// The BOLT11 invoice.
    pub invoice: &'a str,
    /// Satoshis.
    pub amount_sat: u64,
    /// Token id, hex.
    pub token_id: &'a str,
}

/// The wall page (402 for a browser). Without JavaScript it still shows everything and its
/// form asks the sidecar whether the deposit is held, which then continues to `browser.path`
/// (a GET: a form that was posted is never sent again).
pub fn wall_page(c: &Challenge<'_>, policy: Option<&Policy>, browser: &Browser) -> Vec<u8> {
    let fallback = Wall::default();
    let wall = policy.map_or(&fallback, |p| &p.wall);
    let t = &wall.text;
    let site = site(wall, browser);
    let amount = sats(c.amount_sat, t);
    let (title, intro) = if c.deposit {
        ("deposit_title", "deposit_intro")
    } else {
        ("pay_title", "pay_intro")
    };
    let mut main = para(t, intro, &[("site", site), ("amount", &amount)]);
    main.push_str(&format!(
        "<p class=\"lw-amount\">{}</p>\n",
        escape_html(&amount)
    ));
    let route = policy.and_then(|p| p.routes.iter().find(|r| r.id == c.route_id));
    // Once held, the page continues to where the visitor was going: loaded again for a GET;
    // a link for anything else (a posted form is never sent again); the home page instead of
    // a trap path (someone else's link to it must not cost the deposit just paid).
    let trap = route.is_some_and(|r| r.is_trap(routes::path_only(&browser.path)));
    let to = if trap { "/" } else { browser.path.as_str() };
    let reload = browser.get && !trap;
    let rules = route.and_then(|r| r.deposit.as_ref());
    if let (true, Some(rules)) = (c.deposit, rules) {
        main.push_str("<ul class=\"lw-rules\">");
        for (key, name, value) in [
            ("hold_time", "session_cap", rules.session_cap_s),
            ("idle_refund", "idle", rules.idle_timeout_s),
        ] {
            let value = duration(value, t);
            main.push_str(&format!(
                "<li>{}</li>",
                escape_html(&fill(text(t, key), &[(name, &value)]))
            ));
        }
        main.push_str(&format!(
            "<li>{}</li></ul>\n",
            escape_html(text(t, "abuse"))
        ));
    }
    let invoice = escape_html(c.invoice);
    let macaroon = escape_html(c.macaroon);
    main.push_str(&format!(
        "<img class=\"lw-qr\" src=\"{WALL_PREFIX}qr.svg?invoice={invoice}\" alt=\"{qr_alt}\" \
         width=\"288\" height=\"288\">\n<p><a class=\"lw-button\" href=\"lightning:{invoice}\">\
         {open}</a><button id=\"lw-webln\" type=\"button\" hidden>{webln}</button>\
         <button id=\"lw-copy\" type=\"button\" hidden>{copy}</button></p>\n\
         <label for=\"lw-invoice\">{label}</label><textarea id=\"lw-invoice\" readonly>{invoice}\
         </textarea>\n",
        qr_alt = escape_html(text(t, "qr_alt")),
        open = escape_html(text(t, "open_wallet")),
        webln = escape_html(text(t, "webln")),
        copy = escape_html(text(t, "copy")),
        label = escape_html(text(t, "invoice_label")),
    ));
    if c.deposit {
        main.push_str(&format!(
            "<form id=\"lw-check\" method=\"post\" action=\"{WALL_PREFIX}continue\">\
             <input type=\"hidden\" name=\"macaroon\" value=\"{macaroon}\">\
             <input type=\"hidden\" name=\"to\" value=\"{to}\">\
             <button type=\"submit\">{check}</button></form>\n<noscript><p>{noscript}</p>\
             </noscript>\n",
            to = escape_html(to),
            check = escape_html(text(t, "check_payment")),
            noscript = escape_html(text(t, "noscript")),
        ));
    }
    main.push_str(&format!(
        "<p id=\"lw-status\" class=\"lw-status\" role=\"status\" aria-live=\"polite\"></p>\n\
         <p class=\"lw-hint\">{leave}<a href=\"{WALL_PREFIX}terms\">{terms}</a> · {reference}</p>\
         <script src=\"{WALL_PREFIX}wall.js\"></script>\n",
        // The leave link opens the leave page (a page; leaving is its button, same-origin only).
        leave = if c.deposit {
            format!(
                "<a href=\"{WALL_PREFIX}leave\">{}</a> · ",
                escape_html(text(t, "leave_link"))
            )
        } else {
            String::new()
        },
        terms = escape_html(text(t, "terms")),
        reference = escape_html(&fill(
            text(t, "reference"),
            &[("ref", reference(c.token_id))]
        )),
    ));
    let mut attrs = format!(
        " id=\"lw-wall\" data-mode=\"{mode}\" data-macaroon=\"{macaroon}\" \
         data-invoice=\"{invoice}\" data-reload=\"{reload}\" data-continue=\"{to}\" \
         data-post=\"{post}\"",
        mode = if c.deposit { "deposit" } else { "pay" },
        reload = u8::from(reload),
        post = u8::from(!browser.get),
        to = escape_html(to),
    );
    for key in SCRIPT_TEXTS {
        attrs.push_str(&format!(" data-t-{key}=\"{}\"", escape_html(text(t, key))));
    }
    document(wall, text(t, title), site, &attrs, &main)
}

/// `reply` as a browser should see it: a page when the reply has one and the request came
/// from a browser navigating, the reply unchanged otherwise. Status, reason and
/// `Retry-After` stay.
pub fn for_browser(reply: Reply, policy: Option<&Policy>, browser: Option<&Browser>) -> Reply {
    let (Some(page), Some(browser)) = (&reply.page, browser) else {
        return reply;
    };
    let fallback = Wall::default();
    let wall = policy.map_or(&fallback, |p| &p.wall);
    let t = &wall.text;
    let site = site(wall, browser);
    let retry = reply
        .headers
        .iter()
        .find(|(k, _)| *k == "retry-after")
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .unwrap_or(5);
    let retry = duration(retry, t);
    let home = format!(
        "<p><a href=\"/\">{}</a></p>\n",
        escape_html(text(t, "home"))
    );
    let (title, main) = match page {
        Page::Forfeited {
            route,
            token_hex,
            trigger,
        } => {
            let amount = policy
                .and_then(|p| p.routes.get(*route))
                .map_or(0, |r| r.amount_sat);
            let why = match trigger {
                Trigger::RateLimit => "trigger_rate_limit",
                _ => "trigger_trap_path",
            };
            let amount = sats(amount, t);
            let main = para(
                t,
                "forfeited_body",
                &[
                    ("amount", &amount),
                    ("site", site),
                    ("trigger", text(t, why)),
                ],
            ) + &para(
                t,
                "ended_contact",
                &[("site", site), ("ref", reference(token_hex))],
            ) + &home;
            ("forfeited_title", main)
        }
        Page::RateLimited => (
            "rate_limited_title",
            para(t, "rate_limited_body", &[("retry", &retry)]) + &home,
        ),
        Page::Unavailable => (
            "unavailable_title",
            para(t, "unavailable_body", &[("site", site), ("retry", &retry)]) + &home,
        ),
    };
    let mut headers: Vec<(&'static str, String)> = reply
        .headers
        .into_iter()
        .filter(|(k, _)| matches!(*k, REASON_HEADER | "retry-after"))
        .collect();
    headers.push(("content-type", "text/html; charset=utf-8".into()));
    headers.push(("cache-control", "no-store".into()));
    headers.push(("content-security-policy", PAGE_CSP.into()));
    Reply {
        status: reply.status,
        headers,
        body: document(wall, text(t, title), site, "", &main),
        page: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn browser(get: bool) -> Browser {
        Browser::of(
            Some(b"text/html,application/xhtml+xml"),
            if get { "GET" } else { "POST" },
            "/members/?a=1&b=<x>",
            "shop.example:8080",
        )
        .unwrap()
    }

    fn policy() -> Policy {
        let body = format!(
            r#"{{"policy":{{"version":"v","service":"lightning-wall","challenge_mint_rate":{{"requests":5,"per_s":60}},
            "routes":[{{"id":"wall","match":{{"host":null,"path":{{"prefix":"/members/"}},"methods":[]}},"mode":"deposit","failure_mode":"closed","amount_sat":21000,"token_lifetime_s":3600,
            "deposit":{{"idle_timeout_s":300,"session_cap_s":3600,"rate_limit":null,"trap_paths":["/trap"],"error_storm":null}}}}],
            "wall":{{"site_name":"Bäckerei <Müller>","lang":"de","text":{{"deposit_title":"Kaution","thousands_separator":"."}}}}}},
            "keys":[{{"id":"k1","master_key":"{}"}}],"active_key_id":"k1","revocation_seq":0}}"#,
            "11".repeat(32)
        );
        Policy::from_bootstrap(body.as_bytes()).unwrap()
    }

    fn challenge() -> Challenge<'static> {
        Challenge {
            deposit: true,
            route_id: "wall",
            macaroon: "AgEO+/=",
            invoice: "lnbcrt210u1pabc",
            amount_sat: 21000,
            token_id: "0123456789abcdef",
        }
    }

    #[test]
    fn programs_get_no_page() {
        assert_eq!(
            Browser::of(Some(b"application/json"), "GET", "/", "h"),
            None
        );
        assert_eq!(Browser::of(None, "GET", "/", "h"), None);
        let reply = Reply::unavailable(7);
        assert_eq!(for_browser(reply.clone(), None, None), reply);
    }

    #[test]
    fn the_wall_page_names_the_site_the_amount_the_hold_time_the_idle_refund_and_the_way_out() {
        let policy = policy();
        let page =
            String::from_utf8(wall_page(&challenge(), Some(&policy), &browser(true))).unwrap();
        assert!(page.contains("<html lang=\"de\">"), "{page}");
        assert!(
            page.contains("<title>Kaution · Bäckerei &lt;Müller&gt;</title>"),
            "{page}"
        );
        assert!(
            page.contains("<p class=\"lw-site\">Bäckerei &lt;Müller&gt;</p>"),
            "{page}"
        );
        assert!(page.contains("<h1>Kaution</h1>"), "{page}");
        assert!(
            page.contains("<p class=\"lw-amount\">21.000 sats</p>"),
            "{page}"
        );
        assert!(page.contains("for 1 h at most"), "{page}");
        assert!(page.contains("after 5 min without a visit"), "{page}");
        assert!(page.contains("Only abuse costs the deposit"), "{page}");
        assert!(
            page.contains(
                "href=\"/.well-known/lightning-wall/leave\">Leave and get my deposit back</a>"
            ),
            "{page}"
        );
        assert!(page.contains("Reference: 0123456789"), "{page}");
        // The no-JavaScript way on: a form to the sidecar carrying where to continue to.
        assert!(
            page.contains("action=\"/.well-known/lightning-wall/continue\""),
            "{page}"
        );
        assert!(
            page.contains("name=\"to\" value=\"/members/?a=1&amp;b=&lt;x&gt;\""),
            "{page}"
        );
        assert!(
            page.contains("name=\"macaroon\" value=\"AgEO+/=\""),
            "{page}"
        );
        assert!(page.contains("<noscript>"), "{page}");
        assert!(page.contains("data-reload=\"1\""), "{page}");
        assert!(
            page.contains("data-t-not_paid_yet=\"No payment has arrived yet."),
            "{page}"
        );
        assert!(!page.contains("<script>"), "no inline script");
        assert!(!page.contains("/trap"), "never a link to a trap");
        let post =
            String::from_utf8(wall_page(&challenge(), Some(&policy), &browser(false))).unwrap();
        assert!(post.contains("data-reload=\"0\""));
        assert!(post.contains("data-continue=\"/members/?a=1&amp;b=&lt;x&gt;\""));
        // A wall met on a trap path never continues there.
        let trap = Browser::of(Some(b"text/html"), "GET", "/trap", "h").unwrap();
        let page = String::from_utf8(wall_page(&challenge(), Some(&policy), &trap)).unwrap();
        assert!(page.contains("name=\"to\" value=\"/\""), "{page}");
        assert!(
            page.contains("data-reload=\"0\" data-continue=\"/\""),
            "{page}"
        );
        // No policy yet or an older sidecar: the English defaults and the host name.
        let page = String::from_utf8(wall_page(&challenge(), None, &browser(true))).unwrap();
        assert!(
            page.contains("<p class=\"lw-site\">shop.example</p>"),
            "{page}"
        );
        assert!(page.contains("<h1>Refundable deposit</h1>"), "{page}");
        assert!(page.contains("21,000 sats"), "{page}");
    }

    #[test]
    fn a_forfeit_is_a_page_with_the_amount_and_a_reference_for_a_browser() {
        let policy = policy();
        let reply =
            Reply::error(403, "forfeited", "deposit forfeited").with_page(Page::Forfeited {
                route: 0,
                token_hex: "abcdef0123456789".into(),
                trigger: Trigger::TrapPath,
            });
        let json = for_browser(reply.clone(), Some(&policy), None);
        assert_eq!(json.body, reply.body, "programs keep the JSON");
        let page = for_browser(reply, Some(&policy), Some(&browser(true)));
        assert_eq!(page.status, 403);
        assert_eq!(page.reason(), Some("forfeited"));
        assert!(
            page.headers
                .contains(&("content-type", "text/html; charset=utf-8".into()))
        );
        let body = String::from_utf8(page.body).unwrap();
        assert!(body.contains("<h1>Deposit forfeited</h1>"), "{body}");
        assert!(body.contains("Your deposit of 21.000 sats was kept by Bäckerei &lt;Müller&gt;: an address meant only for bots was opened."), "{body}");
        assert!(body.contains("the reference abcdef0123."), "{body}");
    }

    #[test]
    fn rate_limits_and_an_unavailable_service_are_pages_with_the_wait() {
        let page = for_browser(Reply::unavailable(120), None, Some(&browser(true)));
        assert_eq!(page.status, 503);
        assert!(page.headers.contains(&("retry-after", "120".into())));
        let body = String::from_utf8(page.body).unwrap();
        assert!(body.contains("shop.example cannot take deposits right now. Try again in 2 min. Nothing was charged."), "{body}");
        let limited = Reply::error(429, "rate_limited", "m")
            .retry_after(30)
            .with_page(Page::RateLimited);
        let body =
            String::from_utf8(for_browser(limited, None, Some(&browser(true))).body).unwrap();
        assert!(body.contains("<h1>Too many requests</h1>"), "{body}");
        assert!(body.contains("Try again in 30 s."), "{body}");
    }
}
