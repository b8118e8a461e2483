//! The route table the sidecar serves at bootstrap, compiled for matching: host, path (exact,
//! prefix, regex), method and query conditions (query.rs); the first match wins (config
//! order). Matching must never allocate on the hot path beyond what the caller already holds:
//! the query string is parsed only when a route with query conditions is reached.

use lightning_wall_contract::{FailureMode, RouteMode};

use super::query::{Condition, Query};

/// How a route matches the path (`:path` without its query string).
#[derive(Clone, Debug)]
pub enum PathMatch {
    /// Any path.
    Any,
    /// The path equals this.
    Exact(String),
    /// The path starts with this.
    Prefix(String),
    /// The regex matches somewhere in the path (write `^…$` to anchor, as the sidecar's
    /// config documents: `{regex: "^/p/[0-9]+$"}`).
    Regex(regex_lite::Regex),
}

impl PathMatch {
    fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Any => true,
            PathMatch::Exact(p) => path == p,
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
            PathMatch::Regex(r) => r.is_match(path),
        }
    }
}

/// Rate: at most `requests` per `per_s` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed per window.
    pub requests: u32,
    /// Window length, seconds (≥ 1).
    pub per_s: u64,
}

/// Enforcement for a deposit route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepositRules {
    /// Requests per token; exceeding it forfeits the deposit.
    pub rate_limit: Option<Rate>,
    /// Paths (exact) no honest visitor requests; a request forfeits the deposit.
    pub trap_paths: Vec<String>,
    /// Upstream 4xx answers per token per window that forfeit the deposit.
    pub error_storm: Option<Rate>,
    /// Refund after this long without a request (what the wall page tells the visitor).
    pub idle_timeout_s: u64,
    /// The longest a deposit is held (what the wall page tells the visitor).
    pub session_cap_s: u64,
}

/// One compiled route.
#[derive(Clone, Debug)]
pub struct Route {
    /// Route id (the `lw_route` caveat).
    pub id: String,
    /// Host to match, lowercase, without port; `None` = any.
    pub host: Option<String>,
    /// Path matcher.
    pub path: PathMatch,
    /// Methods; empty = any.
    pub methods: Vec<String>,
    /// Query conditions, all of which must hold; empty = any query.
    pub query: Vec<Condition>,
    /// What the route asks of visitors.
    pub mode: RouteMode,
    /// What happens when the sidecar cannot mint a challenge.
    pub failure_mode: FailureMode,
    /// Price or deposit, satoshis (what the pages for browsers name).
    pub amount_sat: u64,
    /// Deposit enforcement (deposit routes only).
    pub deposit: Option<DepositRules>,
    /// Shadow mode (pay and deposit routes only): nothing is challenged, charged, forfeited or
    /// refused; what would have been is reported (super::shadow).
    pub shadow: bool,
}

/// Strips the port from an `:authority` and compares case-insensitively.
fn host_matches(want: &str, authority: &str) -> bool {
    let host = match authority.rsplit_once(':') {
        // `[::1]:8080` or `example.com:8080`; a bare IPv6 literal has no port outside brackets.
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => authority,
    };
    // `example.com.` is the same name as `example.com` (a fully qualified name, RFC 1034 §3.1)
    // and clients may send it: a host-restricted route must not be bypassed by a trailing dot.
    let host = host.strip_suffix('.').unwrap_or(host);
    host.eq_ignore_ascii_case(want.strip_suffix('.').unwrap_or(want))
}

impl Route {
    /// Whether the request matches this route (`path` without its query string).
    pub fn matches(&self, authority: &str, path: &str, method: &str, query: &Query<'_>) -> bool {
        self.host
            .as_deref()
            .is_none_or(|h| host_matches(h, authority))
            && (self.methods.is_empty() || self.methods.iter().any(|m| m == method))
            && self.path.matches(path)
            && query.meets_all(&self.query)
    }

    /// Whether `path` is one of this route's trap paths.
    pub fn is_trap(&self, path: &str) -> bool {
        self.deposit
            .as_ref()
            .is_some_and(|d| d.trap_paths.iter().any(|t| t == path))
    }
}

/// The first route matching the request, with its index. `path` is without its query string,
/// `query` the request's.
pub fn find<'r>(
    routes: &'r [Route],
    authority: &str,
    path: &str,
    method: &str,
    query: &Query<'_>,
) -> Option<(usize, &'r Route)> {
    routes
        .iter()
        .enumerate()
        .find(|(_, r)| r.matches(authority, path, method, query))
}

/// The path without query string or fragment (what routes and trap paths match against).
pub fn path_only(path: &str) -> &str {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    path.get(..end).unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(id: &str, host: Option<&str>, path: PathMatch, methods: &[&str]) -> Route {
        Route {
            id: id.into(),
            host: host.map(str::to_owned),
            path,
            methods: methods.iter().map(|m| (*m).to_owned()).collect(),
            query: Vec::new(),
            mode: RouteMode::Pay,
            failure_mode: FailureMode::Closed,
            amount_sat: 1,
            deposit: None,
            shadow: false,
        }
    }

    #[test]
    fn the_first_matching_route_wins_in_config_order() {
        let routes = vec![
            route("health", None, PathMatch::Exact("/healthz".into()), &[]),
            route(
                "api",
                Some("api.example.com"),
                PathMatch::Prefix("/v1/".into()),
                &["GET"],
            ),
            route(
                "items",
                None,
                PathMatch::Regex(regex_lite::Regex::new("^/items/[0-9]+$").unwrap()),
                &[],
            ),
            route("all", None, PathMatch::Any, &[]),
        ];
        let id = |a, p, m| find(&routes, a, p, m, &Query::of(p)).map(|(_, r)| r.id.as_str());
        assert_eq!(id("x", "/healthz", "GET"), Some("health"));
        assert_eq!(id("x", "/healthz/", "GET"), Some("all"));
        assert_eq!(id("API.example.com:443", "/v1/a", "GET"), Some("api"));
        assert_eq!(id("api.example.com", "/v1/a", "POST"), Some("all"));
        assert_eq!(id("other.example.com", "/v1/a", "GET"), Some("all"));
        assert_eq!(id("x", "/items/42", "GET"), Some("items"));
        assert_eq!(id("x", "/items/42x", "GET"), Some("all"));
    }

    #[test]
    fn no_route_means_no_match() {
        let routes = vec![route("a", None, PathMatch::Prefix("/a".into()), &[])];
        assert!(find(&routes, "x", "/b", "GET", &Query::of("/b")).is_none());
    }

    #[test]
    fn a_route_with_query_conditions_matches_only_when_they_hold_and_else_the_next_one_does() {
        let mut checkout = route("checkout", None, PathMatch::Prefix("/".into()), &["POST"]);
        checkout.query = vec![Condition::new("wc-ajax", Some("checkout")).unwrap()];
        let routes = vec![checkout, route("site", None, PathMatch::Any, &[])];
        let id = |target: &str| {
            find(&routes, "x", path_only(target), "POST", &Query::of(target))
                .map(|(_, r)| r.id.as_str())
        };
        assert_eq!(id("/?wc-ajax=checkout"), Some("checkout"));
        assert_eq!(id("/shop/?a=1&WC-AJAX=%63heckout"), Some("checkout"));
        assert_eq!(id("/?wc-ajax=add_to_cart"), Some("site"));
        assert_eq!(id("/"), Some("site"));
    }

    #[test]
    fn hosts_match_without_port_and_ipv6_literals_keep_their_colons() {
        assert!(host_matches("example.com", "example.com:8080"));
        assert!(host_matches("[::1]", "[::1]:80"));
        assert!(host_matches("[::1]", "[::1]"));
        assert!(!host_matches("example.com", "example.com.evil:80"));
    }

    #[test]
    fn a_trailing_dot_is_the_same_host() {
        assert!(host_matches("api.example.com", "api.example.com."));
        assert!(host_matches("api.example.com", "API.example.com.:443"));
        assert!(!host_matches("api.example.com", "api.example.com.."));
        assert!(!host_matches("api.example.com", "."));
    }

    #[test]
    fn the_query_string_is_not_part_of_the_path() {
        assert_eq!(path_only("/a?b=1"), "/a");
        assert_eq!(path_only("/a#x"), "/a");
        assert_eq!(path_only("/a"), "/a");
    }
}
