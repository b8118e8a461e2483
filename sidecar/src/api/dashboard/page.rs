//! The dashboard's HTML, rendered on the server from what the store knows (no script: the page
//! works with JavaScript off, and the CSP forbids any). Pure: data in, escaped HTML out; every
//! value that came from a visitor (route ids are config, client prefixes and references are
//! not) goes through `escape_html`.

use std::time::{Duration, UNIX_EPOCH};

use crate::doctor::rules::Demand;
use crate::ids::Timestamp;
use crate::store::{AuditRecord, MoneySummary, OutcomeDay, ShadowDay, StoredDeposit};
use lightning_wall_contract::wall_text::{defaults, escape_html, sats};

/// Days of refunds and forfeits the dashboard shows.
pub const HISTORY_DAYS: u64 = 14;

/// What a lookup by reference found.
pub enum Lookup {
    /// Not a reference: the reason, in the operator's words.
    Bad {
        text: String,
        reason: String,
    },
    NotFound {
        text: String,
    },
    /// Exactly one deposit, with its audit records.
    Found {
        deposit: Box<StoredDeposit>,
        audit: Vec<AuditRecord>,
    },
    /// Several deposits start with this reference: a longer one tells them apart.
    Ambiguous {
        text: String,
        matches: Vec<StoredDeposit>,
    },
}

pub struct Overview {
    pub now: Timestamp,
    pub draining_since: Option<Timestamp>,
    pub money: MoneySummary,
    pub demand: Demand,
    pub outcomes: Vec<OutcomeDay>,
    /// Routes in shadow mode now, in config order.
    pub shadow_routes: Vec<String>,
    /// Shadow findings of the last [`HISTORY_DAYS`] days.
    pub shadow: Vec<ShadowDay>,
    pub lookup: Option<Lookup>,
}

pub fn time(t: Timestamp) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t.0))
        .to_string()
        .replacen('T', " ", 1)
}

fn sat(msat: u64) -> String {
    sats(msat / 1000, defaults())
}

fn shell(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{title} · lightning-wall</title>\
         <link rel=\"stylesheet\" href=\"/admin/dashboard.css\"></head>\n<body>\n{body}</body></html>\n",
        title = escape_html(title),
    )
}

/// The login form. The token goes in a POST body (never a URL, so never in a log or the
/// browser's history).
pub fn login(problem: Option<&str>) -> String {
    let problem = problem
        .map(|p| format!("<p class=\"bad\" role=\"alert\">{}</p>\n", escape_html(p)))
        .unwrap_or_default();
    shell(
        "Sign in",
        &format!(
            "<main><h1>Operator dashboard</h1>\n{problem}\
             <form method=\"post\" action=\"/admin/login\">\
             <label for=\"token\">Admin token (<code>listeners.admin.token</code>)</label>\
             <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" \
             required>\
             <button type=\"submit\">Sign in</button></form>\n\
             <p class=\"hint\">Reach this listener through an SSH tunnel or a TLS proxy: it is \
             plain HTTP.</p></main>\n"
        ),
    )
}

/// A budget bar: `used` of `max` (no bar when no maximum is known), with the texts shown.
fn progress(id: &str, label: &str, used: u64, max: Option<u64>, texts: (String, String)) -> String {
    let (used_text, max_text) = texts;
    match max {
        Some(max) if max > 0 => format!(
            "<p><label for=\"{id}\">{label}</label> <progress id=\"{id}\" value=\"{used}\" \
             max=\"{max}\"></progress> <span data-k=\"{id}\">{used_text}</span> of {max_text} \
             ({pct}%)</p>\n",
            pct = used.saturating_mul(100) / max,
        ),
        _ => format!("<p>{label}: <span data-k=\"{id}\">{used_text}</span> (no limit known)</p>\n"),
    }
}

pub fn overview(o: &Overview) -> String {
    let m = &o.money;
    let mut body = format!(
        "<header><h1>Operator dashboard</h1><p class=\"hint\">As of {now} UTC · \
         <a href=\"/admin/dashboard\">refresh</a></p>\
         <form method=\"post\" action=\"/admin/logout\"><button type=\"submit\">Sign out</button>\
         </form></header>\n<main>\n",
        now = time(o.now),
    );
    if let Some(since) = o.draining_since {
        body.push_str(&format!(
            "<p class=\"bad\" role=\"status\" id=\"draining\">Draining since {} UTC: no new \
             deposits or invoices; everything held is being given back. \
             <code>lightning-wall admin undrain</code> resumes.</p>\n",
            time(since)
        ));
    }
    body.push_str(&format!(
        "<section><h2>Held now</h2>\n<p><strong data-k=\"held\">{held}</strong> deposits held, \
         <strong data-k=\"held_sat\">{held_sat}</strong>; {unpaid} invoices awaiting payment.</p>\n",
        held = m.held_count,
        held_sat = sat(m.held_msat),
        unpaid = m.awaiting_payment_count,
    ));
    if m.pending_actions > 0 {
        body.push_str(&format!(
            "<p class=\"bad\" data-k=\"pending\">{} decided refunds or forfeits are not confirmed \
             by the node yet (retried until they are).</p>\n",
            m.pending_actions
        ));
    }
    body.push_str("</section>\n<section><h2>Budget in use</h2>\n");
    let max_held = u64::from(o.demand.max_held_deposits);
    body.push_str(&progress(
        "slots",
        "HTLC slots (one per held deposit, of <code>limits.max_held_deposits</code>)",
        m.held_count,
        Some(max_held),
        (m.held_count.to_string(), max_held.to_string()),
    ));
    let liquidity = o
        .demand
        .largest_deposit_sat
        .map(|a| a.saturating_mul(max_held));
    body.push_str(&progress(
        "liquidity",
        "Inbound liquidity held (of max held × largest deposit)",
        m.held_msat / 1000,
        liquidity,
        (sat(m.held_msat), sats(liquidity.unwrap_or(0), defaults())),
    ));
    body.push_str(
        "<p class=\"hint\">What the node itself has free (channels, inbound, HTLC slots): \
         <code>lightning-wall doctor</code>.</p>\n</section>\n",
    );
    body.push_str(&format!(
        "<section><h2>Money</h2>\n<p>Forfeits collected: <strong data-k=\"revenue\">{revenue}\
         </strong> · rewards paid: <strong data-k=\"rewards\">{rewards}</strong> in {payouts} \
         payouts.</p>\n</section>\n",
        revenue = sat(m.forfeited_msat),
        rewards = sat(m.rewards_paid_msat),
        payouts = m.rewards_paid_count,
    ));
    body.push_str(&format!(
        "<section><h2>Refunds and forfeits, last {HISTORY_DAYS} days</h2>\n"
    ));
    if o.outcomes.is_empty() {
        body.push_str("<p>None yet.</p>\n");
    } else {
        body.push_str(
            "<table id=\"outcomes\"><thead><tr><th>Day (UTC)</th><th>Outcome</th>\
             <th>Trigger</th><th>Deposits</th><th>Amount</th></tr></thead><tbody>\n",
        );
        for d in &o.outcomes {
            body.push_str(&format!(
                "<tr><td>{day}</td><td>{outcome}</td><td>{trigger}</td><td>{count}</td>\
                 <td>{amount}</td></tr>\n",
                day = time(d.day).chars().take(10).collect::<String>(),
                outcome = d.outcome.as_str(),
                trigger = d.trigger.as_str(),
                count = d.count,
                amount = sat(d.amount_msat),
            ));
        }
        body.push_str("</tbody></table>\n");
    }
    body.push_str("</section>\n");
    body.push_str(&shadow_section(o));
    body.push_str(&lookup_section(o.lookup.as_ref()));
    body.push_str("</main>\n");
    shell("Dashboard", &body)
}

/// Days of the shorter shadow window (a week of shadow is what an operator watches first).
const SHADOW_SHORT_DAYS: u64 = 7;

/// Per route, what shadow mode would have done: challenges and forfeits by trigger over the
/// last week and the last [`HISTORY_DAYS`] days. Absent when no route is or was in shadow.
fn shadow_section(o: &Overview) -> String {
    if o.shadow_routes.is_empty() && o.shadow.is_empty() {
        return String::new();
    }
    let mut s = format!("<section><h2>Shadow findings, last {HISTORY_DAYS} days</h2>\n");
    if o.shadow_routes.is_empty() {
        s.push_str("<p>No route is in shadow now; these are from when one was.</p>\n");
    } else {
        let routes: Vec<String> = o
            .shadow_routes
            .iter()
            .map(|r| format!("<code>{}</code>", escape_html(r)))
            .collect();
        s.push_str(&format!(
            "<p id=\"shadow-routes\">In shadow now (nothing challenged or charged, only \
             counted): {}. Remove <code>shadow</code> to enforce.</p>\n",
            routes.join(", ")
        ));
    }
    if o.shadow.is_empty() {
        s.push_str("<p>Nothing found yet.</p>\n</section>\n");
        return s;
    }
    // Days are day starts: the short window is today and the six days before.
    let today = o.now.0 / 86_400 * 86_400;
    let short_since = today.saturating_sub((SHADOW_SHORT_DAYS - 1) * 86_400);
    let mut rows: Vec<(&str, &str, &str, u64, u64)> = Vec::new();
    for d in &o.shadow {
        let f = &d.finding;
        let key = (
            f.route_id.as_str(),
            f.finding.as_str(),
            f.trigger.map_or("", |t| t.as_str()),
        );
        let short = if d.day.0 >= short_since { f.count } else { 0 };
        match rows.iter_mut().find(|r| (r.0, r.1, r.2) == key) {
            Some(r) => {
                r.3 = r.3.saturating_add(short);
                r.4 = r.4.saturating_add(f.count);
            }
            None => rows.push((key.0, key.1, key.2, short, f.count)),
        }
    }
    rows.sort_unstable();
    s.push_str(&format!(
        "<table id=\"shadow\"><thead><tr><th>Route</th><th>Would have</th><th>Trigger</th>\
         <th>Last {SHADOW_SHORT_DAYS} days</th><th>Last {HISTORY_DAYS} days</th></tr></thead>\
         <tbody>\n"
    ));
    for (route, finding, trigger, short, long) in rows {
        let would = match finding {
            "would_challenge" => "challenged (402)",
            _ => "forfeited a deposit",
        };
        s.push_str(&format!(
            "<tr><td>{route}</td><td>{would}</td><td>{trigger}</td><td>{short}</td>\
             <td>{long}</td></tr>\n",
            route = escape_html(route),
            trigger = if trigger.is_empty() { "–" } else { trigger },
        ));
    }
    s.push_str(
        "</tbody></table>\n<p class=\"hint\">A would-be forfeit counts each request that \
         would have ended a deposit (a rate limit or error storm once per window). \
         <code>GET /admin/v1/shadow</code> lists them by day.</p>\n</section>\n",
    );
    s
}

fn lookup_section(lookup: Option<&Lookup>) -> String {
    let typed = match lookup {
        Some(Lookup::Bad { text, .. })
        | Some(Lookup::NotFound { text })
        | Some(Lookup::Ambiguous { text, .. }) => text.as_str(),
        _ => "",
    };
    let mut out = format!(
        "<section id=\"lookup\"><h2>Find a visitor's deposit</h2>\n\
         <form method=\"get\" action=\"/admin/dashboard#lookup\">\
         <label for=\"ref\">Reference from the wall page (or a payment hash)</label>\
         <input id=\"ref\" name=\"ref\" value=\"{}\" autocomplete=\"off\" spellcheck=\"false\" \
         required><button type=\"submit\">Find</button></form>\n",
        escape_html(typed)
    );
    match lookup {
        None => {}
        Some(Lookup::Bad { reason, .. }) => out.push_str(&format!(
            "<p class=\"bad\" role=\"alert\" id=\"lookup-result\">{}</p>\n",
            escape_html(reason)
        )),
        Some(Lookup::NotFound { text }) => out.push_str(&format!(
            "<p class=\"bad\" role=\"alert\" id=\"lookup-result\">No deposit has the reference \
             {}. Check it against the visitor's wall page (10 characters after \
             \"Reference:\").</p>\n",
            escape_html(text)
        )),
        Some(Lookup::Ambiguous { text, matches }) => {
            out.push_str(&format!(
                "<p class=\"bad\" role=\"alert\" id=\"lookup-result\">{} deposits start with {}: \
                 ask for more characters (the payment hash in the visitor's wallet is unique).\
                 </p>\n<ul>\n",
                matches.len(),
                escape_html(text)
            ));
            for s in matches {
                out.push_str(&format!(
                    "<li><code>{}</code> · {} · {}</li>\n",
                    hex::encode(s.deposit.token_id.0),
                    s.deposit.state.as_str(),
                    time(s.deposit.created_at)
                ));
            }
            out.push_str("</ul>\n");
        }
        Some(Lookup::Found { deposit, audit }) => out.push_str(&deposit_table(deposit, audit)),
    }
    out.push_str("</section>\n");
    out
}

fn deposit_table(s: &StoredDeposit, audit: &[AuditRecord]) -> String {
    let d = &s.deposit;
    let opt = |t: Option<Timestamp>| t.map_or_else(|| "—".to_owned(), |t| time(t) + " UTC");
    let rows = [
        // As the wall page shows it (filter `wall_text::reference`).
        (
            "Reference",
            d.token_id.to_string().chars().take(10).collect(),
        ),
        ("State", d.state.as_str().to_owned()),
        ("Amount", sat(d.amount_msat)),
        ("Route", d.route_id.clone()),
        ("Client network", d.client_prefix.clone()),
        ("Created", opt(Some(d.created_at))),
        ("Held since", opt(d.hold.map(|h| h.held_at))),
        ("Last activity", opt(d.hold.map(|h| h.last_activity_at))),
        ("Ended", opt(d.resolution.map(|r| r.at))),
        (
            "Why it ended",
            d.resolution.map_or("—", |r| r.trigger.as_str()).to_owned(),
        ),
        (
            "Waiting for the node",
            d.pending.map_or("nothing", |a| a.as_str()).to_owned(),
        ),
        ("Payment hash", hex::encode(d.payment_hash.0)),
        ("Token id", d.token_id.to_string()),
    ];
    let mut out = String::from("<table id=\"lookup-result\"><tbody>\n");
    for (name, value) in rows {
        out.push_str(&format!(
            "<tr><th>{name}</th><td>{}</td></tr>\n",
            escape_html(&value)
        ));
    }
    out.push_str("</tbody></table>\n");
    if !audit.is_empty() {
        out.push_str("<h3>Decisions</h3><ul>\n");
        for a in audit {
            out.push_str(&format!(
                "<li>{} UTC: {} ({}), {}</li>\n",
                time(a.at),
                a.outcome.as_str(),
                a.trigger.as_str(),
                sat(a.amount_msat)
            ));
        }
        out.push_str("</ul>\n");
    }
    out.push_str(
        "<p class=\"hint\">Refund or forfeit by hand: <code>lightning-wall admin refund|forfeit \
         &lt;payment hash&gt;</code>.</p>\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deposit::{Deposit, DepositState, DepositTiming, Trigger};
    use crate::ids::{PaymentHash, TokenId};

    fn overview_with(lookup: Option<Lookup>, draining_since: Option<Timestamp>) -> String {
        overview(&Overview {
            now: Timestamp(1_800_000_000),
            draining_since,
            money: MoneySummary {
                held_count: 3,
                held_msat: 3_000_000,
                awaiting_payment_count: 2,
                pending_actions: 0,
                forfeited_msat: 21_000_000,
                rewards_paid_msat: 0,
                rewards_paid_count: 0,
            },
            demand: Demand {
                max_held_deposits: 100,
                largest_deposit_sat: Some(1_000),
                largest_amount_sat: 1_000,
            },
            outcomes: vec![OutcomeDay {
                day: Timestamp(1_799_971_200),
                outcome: DepositState::Refunded,
                trigger: Trigger::IdleTimeout,
                count: 7,
                amount_msat: 7_000_000,
            }],
            shadow_routes: Vec::new(),
            shadow: Vec::new(),
            lookup,
        })
    }

    fn stored(prefix: &str) -> StoredDeposit {
        StoredDeposit {
            deposit: Deposit {
                payment_hash: PaymentHash([0x5f; 32]),
                token_id: TokenId([0xa1; 32]),
                route_id: "wall".into(),
                client_prefix: prefix.into(),
                amount_msat: 1_000_000,
                state: DepositState::Held,
                created_at: Timestamp(1_800_000_000),
                invoice_expires_at: Timestamp(1_800_000_600),
                timing: DepositTiming {
                    idle_timeout: Duration::from_secs(300),
                    session_cap: Duration::from_secs(3600),
                    safety_margin_blocks: 6,
                    assumed_block_interval: Duration::from_secs(300),
                },
                hold: None,
                resolution: None,
                pending: None,
            },
            payment_request: None,
            version: 1,
            action_attempts: 0,
        }
    }

    #[test]
    fn the_overview_shows_held_money_budget_and_outcomes() {
        let page = overview_with(None, None);
        assert!(page.contains("<strong data-k=\"held\">3</strong> deposits held"));
        assert!(page.contains("3,000 sats"), "{page}");
        assert!(page.contains("value=\"3\" max=\"100\""), "{page}");
        assert!(page.contains("of 100,000 sats (3%)"), "{page}");
        assert!(page.contains("21,000 sats"), "{page}");
        assert!(
            page.contains("<td>2027-01-15</td><td>refunded</td><td>idle_timeout</td><td>7</td>"),
            "{page}"
        );
        assert!(!page.contains("Draining since"));
        assert!(overview_with(None, Some(Timestamp(1_800_000_000))).contains("Draining since"));
    }

    #[test]
    fn shadow_findings_show_per_route_over_a_week_and_two_and_only_when_there_are_some() {
        use crate::store::ShadowCount;
        use lightning_wall_contract::events::{Finding, Trigger as Wire};
        let page = overview_with(None, None);
        assert!(!page.contains("Shadow findings"), "{page}");
        // now = 1_800_000_000 is 2027-01-15; the week starts 2027-01-09.
        let today = 1_800_000_000 / 86_400 * 86_400;
        let day = |ago: u64, route: &str, finding, trigger, count| ShadowDay {
            day: Timestamp(today - ago * 86_400),
            finding: ShadowCount {
                route_id: route.into(),
                finding,
                trigger,
                count,
            },
        };
        let mut o = Overview {
            now: Timestamp(1_800_000_000),
            draining_since: None,
            money: MoneySummary::default(),
            demand: Demand {
                max_held_deposits: 100,
                largest_deposit_sat: None,
                largest_amount_sat: 0,
            },
            outcomes: Vec::new(),
            shadow_routes: vec!["wall".into()],
            shadow: vec![
                day(0, "wall", Finding::WouldChallenge, None, 40),
                day(6, "wall", Finding::WouldChallenge, None, 2),
                day(7, "wall", Finding::WouldChallenge, None, 100),
                day(3, "wall", Finding::WouldForfeit, Some(Wire::TrapPath), 3),
                day(10, "<old>", Finding::WouldForfeit, Some(Wire::RateLimit), 1),
            ],
            lookup: None,
        };
        let page = overview(&o);
        assert!(page.contains("Shadow findings, last 14 days"), "{page}");
        assert!(page.contains("In shadow now"), "{page}");
        assert!(
            page.contains(
                "<tr><td>wall</td><td>challenged (402)</td><td>–</td><td>42</td><td>142</td></tr>"
            ),
            "{page}"
        );
        assert!(
            page.contains(
                "<td>wall</td><td>forfeited a deposit</td><td>trap_path</td><td>3</td><td>3</td>"
            ),
            "{page}"
        );
        assert!(page.contains("<td>&lt;old&gt;</td>"), "{page}");
        assert!(!page.contains("<old>"), "{page}");
        // No route in shadow now, findings from before: still shown, and said so.
        o.shadow_routes.clear();
        assert!(overview(&o).contains("No route is in shadow now"));
    }

    #[test]
    fn what_a_visitor_or_the_operator_typed_is_escaped() {
        let found = Lookup::Found {
            deposit: Box::new(stored("<img src=x>")),
            audit: Vec::new(),
        };
        let page = overview_with(Some(found), None);
        assert!(!page.contains("<img src=x>"), "{page}");
        assert!(page.contains("&lt;img src=x&gt;"));
        assert!(
            page.contains("<td>a1a1a1a1a1</td>"),
            "the wall page's reference"
        );
        let bad = Lookup::NotFound {
            text: "\"><script>".into(),
        };
        let page = overview_with(Some(bad), None);
        assert!(!page.contains("<script>"), "{page}");
    }

    #[test]
    fn the_login_page_posts_the_token_in_the_body() {
        let page = login(Some("That is not the admin token."));
        assert!(page.contains("method=\"post\" action=\"/admin/login\""));
        assert!(page.contains("type=\"password\""));
        assert!(page.contains("role=\"alert\""));
    }
}
