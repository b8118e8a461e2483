//! `routes:` checks: ids, matchers, each route's pay or deposit policy against the node's
//! timing, trap paths inside the route's match.

use std::collections::HashSet;
use std::time::Duration;

use super::{ASSUMED_HOLD_EXPIRY_DELTA, Issues};
use crate::config::{Config, Mode, PathMatch, QueryValue, RouteConfig, RouteMatch};

pub(super) fn routes(config: &Config, issues: &mut Issues) {
    if config.routes.is_empty() {
        issues.push("routes", "add at least one route (id, match, mode)");
    }
    let mut ids = HashSet::new();
    for (i, route) in config.routes.iter().enumerate() {
        let at = format!("routes[{i}]");
        if !valid_route_id(&route.id) {
            issues.push(
                format!("{at}.id"),
                format!(
                    "must be 1-32 characters of a-z, 0-9, '_' or '-' (got {:?})",
                    route.id
                ),
            );
        } else if !ids.insert(route.id.as_str()) {
            issues.push(
                format!("{at}.id"),
                format!(
                    "{:?} is used by an earlier route; ids must be unique",
                    route.id
                ),
            );
        }
        route_match(route, &at, issues);
        route_policy(config, route, &at, issues);
        trap_paths(route, &at, issues);
    }
}

fn valid_route_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn route_match(route: &RouteConfig, at: &str, issues: &mut Issues) {
    let m = &route.matcher;
    if let Some(host) = &m.host {
        let ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !ok {
            issues.push(
                format!("{at}.match.host"),
                format!("must be a lower-case host name without scheme or port (got {host:?})"),
            );
        }
    }
    match &m.path {
        Some(PathMatch::Exact(p)) | Some(PathMatch::Prefix(p)) if !p.starts_with('/') => {
            let kind = if matches!(m.path, Some(PathMatch::Exact(_))) {
                "exact"
            } else {
                "prefix"
            };
            issues.push(
                format!("{at}.match.path.{kind}"),
                format!("must start with '/' (got {p:?})"),
            );
        }
        Some(PathMatch::Regex(r)) => {
            // Compiled here exactly as the filter compiles it (same engine, regex-lite, and
            // the same size limit): a pattern another engine accepts but the filter refuses
            // would pass this check and then leave every filter without a policy (the
            // `sidecar_config` fuzz target found `[az--9-]`). The limit keeps a route from
            // making every worker build a huge automaton.
            if let Err(e) = regex_lite::RegexBuilder::new(r).size_limit(1 << 16).build() {
                issues.push(
                    format!("{at}.match.path.regex"),
                    format!("does not compile: {e}"),
                );
            }
        }
        _ => {}
    }
    query_conditions(m, at, issues);
    for (j, method) in m.methods.iter().enumerate() {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            issues.push(
                format!("{at}.match.methods[{j}]"),
                format!("must be an upper-case HTTP method such as GET (got {method:?})"),
            );
        }
    }
}

/// Most query conditions one route may have (the filter refuses a policy with more).
const MAX_QUERY_CONDITIONS: usize = 8;

/// Whether `s` is 1-`max` characters of `A-Z a-z 0-9 . _ ~ -`: what the filter can compare
/// (filter `query.rs`).
fn plain(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

fn query_conditions(m: &RouteMatch, at: &str, issues: &mut Issues) {
    if m.query.len() > MAX_QUERY_CONDITIONS {
        issues.push(
            format!("{at}.match.query"),
            format!(
                "at most {MAX_QUERY_CONDITIONS} conditions (got {})",
                m.query.len()
            ),
        );
    }
    // Keys compare by their letters and digits without case: two keys that fold alike are one.
    let mut folded: Vec<(String, &str)> = Vec::new();
    for (key, want) in &m.query {
        let path = format!("{at}.match.query.{key}");
        if !plain(key, 64) || !key.bytes().any(|b| b.is_ascii_alphanumeric()) {
            issues.push(
                path.clone(),
                format!(
                    "a key must be 1-64 characters of A-Z a-z 0-9 . _ ~ - with a letter or digit \
                     (got {key:?})"
                ),
            );
            continue;
        }
        let fold: String = key
            .bytes()
            .filter(u8::is_ascii_alphanumeric)
            .map(|b| char::from(b.to_ascii_lowercase()))
            .collect();
        if let Some((_, earlier)) = folded.iter().find(|(f, _)| *f == fold) {
            issues.push(
                path.clone(),
                format!(
                    "is the same key as {earlier:?}: keys compare by letters and digits without \
                     case; keep one"
                ),
            );
        }
        folded.push((fold, key));
        match want {
            QueryValue::Is(v) if !plain(v, 128) => issues.push(
                path,
                format!(
                    "a value must be 1-128 characters of A-Z a-z 0-9 . _ ~ - (got {v:?}); for \
                     any value write {{present: true}}"
                ),
            ),
            QueryValue::Present { present: false } => issues.push(
                path,
                "`present: false` is not a condition: remove the key, or write {present: true}",
            ),
            _ => {}
        }
    }
}

fn route_policy(config: &Config, route: &RouteConfig, at: &str, issues: &mut Issues) {
    let bounds = config.limits.amount_sat;
    if route.token_lifetime < Duration::from_secs(1)
        || route.token_lifetime > Duration::from_secs(366 * 86_400)
    {
        issues.push(
            format!("{at}.token_lifetime"),
            "must be between 1s and 366 days",
        );
    }
    match route.mode {
        Mode::Free => {
            if route.shadow {
                issues.push(
                    format!("{at}.shadow"),
                    "a free route challenges nothing, so it has nothing to watch; remove it (or \
                     set the route's mode to pay or deposit)",
                );
            }
            if route.pay.is_some() {
                issues.push(
                    format!("{at}.pay"),
                    "only allowed with mode: pay; remove it",
                );
            }
            if route.deposit.is_some() {
                issues.push(
                    format!("{at}.deposit"),
                    "only allowed with mode: deposit; remove it",
                );
            }
        }
        Mode::Pay => {
            if route.deposit.is_some() {
                issues.push(
                    format!("{at}.deposit"),
                    "only allowed with mode: deposit; remove it",
                );
            }
            match &route.pay {
                None => issues.push(format!("{at}.pay"), "required with mode: pay (amount_sat)"),
                Some(pay) => issues.between(
                    format!("{at}.pay.amount_sat"),
                    pay.amount_sat,
                    bounds.min,
                    bounds.max,
                ),
            }
        }
        Mode::Deposit => {
            if route.pay.is_some() {
                issues.push(
                    format!("{at}.pay"),
                    "only allowed with mode: pay; remove it",
                );
            }
            match &route.deposit {
                None => issues.push(
                    format!("{at}.deposit"),
                    "required with mode: deposit (amount_sat, idle_timeout, session_cap)",
                ),
                Some(deposit) => deposit_policy(config, deposit, at, issues),
            }
        }
    }
}

fn deposit_policy(
    config: &Config,
    deposit: &crate::config::DepositPolicy,
    at: &str,
    issues: &mut Issues,
) {
    let bounds = config.limits.amount_sat;
    issues.between(
        format!("{at}.deposit.amount_sat"),
        deposit.amount_sat,
        bounds.min,
        bounds.max,
    );
    if deposit.idle_timeout < Duration::from_secs(1) {
        issues.push(format!("{at}.deposit.idle_timeout"), "must be at least 1s");
    }
    if deposit.idle_timeout > deposit.session_cap {
        issues.push(
            format!("{at}.deposit.idle_timeout"),
            format!(
                "must not exceed session_cap ({})",
                humantime::format_duration(deposit.session_cap)
            ),
        );
    }
    // A hold occupies an HTLC slot on every hop (jamming): the design keeps holds to minutes,
    // a day at the very most.
    if deposit.session_cap < Duration::from_secs(1)
        || deposit.session_cap > Duration::from_secs(86_400)
    {
        issues.push(
            format!("{at}.deposit.session_cap"),
            "must be between 1s and 24h",
        );
    } else {
        let d = &config.deposits;
        let usable_blocks = d
            .cltv_expiry
            .saturating_sub(ASSUMED_HOLD_EXPIRY_DELTA)
            .saturating_sub(d.safety_margin_blocks);
        let window = d.assumed_block_interval.saturating_mul(usable_blocks);
        if deposit.session_cap > window {
            issues.push(
                format!("{at}.deposit.session_cap"),
                format!(
                    "is longer than a hold can last ({} = (deposits.cltv_expiry {} - node \
                     auto-cancel margin {} - deposits.safety_margin_blocks {}) x \
                     deposits.assumed_block_interval); lower it or raise deposits.cltv_expiry",
                    humantime::format_duration(window),
                    d.cltv_expiry,
                    ASSUMED_HOLD_EXPIRY_DELTA,
                    d.safety_margin_blocks
                ),
            );
        }
    }
    if let Some(rate) = &deposit.rate_limit {
        issues.rate(&format!("{at}.deposit.rate_limit"), rate);
    }
    for (j, trap) in deposit.trap_paths.iter().enumerate() {
        if !trap.starts_with('/') {
            issues.push(
                format!("{at}.deposit.trap_paths[{j}]"),
                format!("must start with '/' (got {trap:?})"),
            );
        }
    }
    if let Some(storm) = &deposit.error_storm {
        if storm.errors == 0 {
            issues.push(
                format!("{at}.deposit.error_storm.errors"),
                "must be at least 1 (remove error_storm to disable it)",
            );
        }
        if storm.within < Duration::from_secs(1) {
            issues.push(
                format!("{at}.deposit.error_storm.within"),
                "must be at least 1s",
            );
        }
    }
}

/// Whether a path matcher matches `path` (as the filter matches it; a regex that does not
/// compile matches nothing — `validate` reports it).
pub(super) fn path_matches(m: &Option<PathMatch>, path: &str) -> bool {
    match m {
        None => true,
        Some(PathMatch::Exact(p)) => p == path,
        Some(PathMatch::Prefix(p)) => path.starts_with(p.as_str()),
        Some(PathMatch::Regex(r)) => regex_lite::Regex::new(r).is_ok_and(|re| re.is_match(path)),
    }
}

/// Whether `outer` matches every path `inner` matches (conservative: false when unsure).
pub(super) fn covers_all_of(outer: &Option<PathMatch>, inner: &Option<PathMatch>) -> bool {
    match (outer, inner) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(PathMatch::Prefix(o)), Some(PathMatch::Prefix(i) | PathMatch::Exact(i))) => {
            i.starts_with(o.as_str())
        }
        (Some(PathMatch::Exact(o)), Some(PathMatch::Exact(i))) => o == i,
        (Some(o), Some(i)) => o == i,
    }
}

/// Trap paths are checked only on requests the route matched: one outside the route's match
/// can never fire. (The filter compares the path without its query string, exactly.)
fn trap_paths(route: &RouteConfig, at: &str, issues: &mut Issues) {
    let Some(deposit) = &route.deposit else {
        return;
    };
    for (j, trap) in deposit.trap_paths.iter().enumerate() {
        if !path_matches(&route.matcher.path, trap) {
            issues.push(
                format!("{at}.deposit.trap_paths[{j}]"),
                format!(
                    "{trap:?} is outside this route's match.path, so a request there never \
                     reaches this route and never forfeits: widen match.path to cover it, or \
                     move the trap to a route whose path covers it"
                ),
            );
        }
    }
}
