//! Semantic checks of a parsed [`Config`]: every issue is collected (an operator fixes the file
//! once, not once per error) and each names the field path and what to write instead.

use std::collections::HashSet;
use std::time::Duration;

use super::{Config, ConfigIssue, Mode, NodeBackend, PathMatch, Rate, RouteConfig, SecretRef};

/// lnd's auto-cancel margin (`holdexpirydelta`, 18 blocks in v0.21): the config check assumes
/// the larger value; the engine uses the node's real one.
const ASSUMED_HOLD_EXPIRY_DELTA: u32 = 18;
/// lnd refuses `cltv_expiry` below 24 for hold invoices (v0.21).
const MIN_CLTV_EXPIRY: u32 = 24;
/// LDK senders cap the total CLTV at 1008 blocks; a larger final delta makes payments fail.
const MAX_CLTV_EXPIRY: u32 = 1008;

#[derive(Default)]
struct Issues(Vec<ConfigIssue>);

impl Issues {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigIssue {
            path: path.into(),
            message: message.into(),
        });
    }

    fn secret(&mut self, path: &str, secret: &SecretRef) {
        if let Some(problem) = secret.shape_issue() {
            self.push(path, problem);
        }
    }

    fn rate(&mut self, path: &str, rate: &Rate) {
        if rate.requests == 0 {
            self.push(
                format!("{path}.requests"),
                "must be at least 1 (remove the limit instead of setting 0)",
            );
        }
        if rate.per < Duration::from_secs(1) {
            self.push(format!("{path}.per"), "must be at least 1s");
        }
    }

    fn between(&mut self, path: String, value: u64, min: u64, max: u64) {
        if value < min || value > max {
            self.push(
                path,
                format!("must be between {min} and {max} (got {value})"),
            );
        }
    }
}

pub(super) fn validate(config: &Config) -> Vec<ConfigIssue> {
    let mut issues = Issues::default();
    if config.data_dir.as_os_str().is_empty() {
        issues.push("data_dir", "must name a directory (default ./data)");
    }
    node(config, &mut issues);
    store(config, &mut issues);
    if let Some(master) = &config.keys.master {
        issues.secret("keys.master", master);
    }
    listeners(config, &mut issues);
    deposits(config, &mut issues);
    limits(config, &mut issues);
    routes(config, &mut issues);
    rewards(config, &mut issues);
    for (path, message) in config.wall.issues() {
        issues.push(path, message);
    }
    issues.0
}

fn rewards(config: &Config, issues: &mut Issues) {
    let r = &config.rewards;
    // 21M BTC in sat: no limit can sensibly be above it, and msat values must fit an i64.
    const ALL_SAT: u64 = 2_100_000_000_000_000;
    for (field, value) in [
        ("max_per_reward_sat", r.max_per_reward_sat),
        ("max_per_token_sat", r.max_per_token_sat),
        ("max_per_day_sat", r.max_per_day_sat),
        ("withdraw_min_sat", r.withdraw_min_sat),
        ("withdraw_max_sat", r.withdraw_max_sat),
    ] {
        issues.between(format!("rewards.{field}"), value, 1, ALL_SAT);
    }
    if r.max_per_reward_sat > r.max_per_token_sat {
        issues.push(
            "rewards.max_per_reward_sat",
            format!(
                "must not exceed rewards.max_per_token_sat ({}), got {}",
                r.max_per_token_sat, r.max_per_reward_sat
            ),
        );
    }
    if r.withdraw_min_sat > r.withdraw_max_sat {
        issues.push(
            "rewards.withdraw_max_sat",
            format!(
                "must be at least rewards.withdraw_min_sat ({}), got {}",
                r.withdraw_min_sat, r.withdraw_max_sat
            ),
        );
    }
    issues.between("rewards.fee_limit_ppm".into(), r.fee_limit_ppm, 0, 100_000);
    issues.between(
        "rewards.fee_limit_min_sat".into(),
        r.fee_limit_min_sat,
        0,
        100_000,
    );
    // Fees must stay below what they pay for: per payout and per day.
    if r.fee_limit_max_ppm >= 1_000_000 {
        issues.push(
            "rewards.fee_limit_max_ppm",
            format!(
                "must be below 1000000 (got {}): at 100% a payout's routing fee can be as large as the payout; 100000 (10%) is the default",
                r.fee_limit_max_ppm
            ),
        );
    } else if r.fee_limit_ppm > r.fee_limit_max_ppm {
        issues.push(
            "rewards.fee_limit_ppm",
            format!(
                "must not exceed rewards.fee_limit_max_ppm ({}), got {}",
                r.fee_limit_max_ppm, r.fee_limit_ppm
            ),
        );
    }
    if r.max_per_day_sat > 0 && r.max_fees_per_day_sat > r.max_per_day_sat {
        issues.push(
            "rewards.max_fees_per_day_sat",
            format!(
                "must not exceed rewards.max_per_day_sat ({}), got {}: routing fees could then cost more than the rewards they pay out",
                r.max_per_day_sat, r.max_fees_per_day_sat
            ),
        );
    }
    if r.max_withdrawals_per_token == 0 {
        issues.push(
            "rewards.max_withdrawals_per_token",
            "must be at least 1 (turn rewards off with rewards.enabled: false instead)",
        );
    }
    if r.lnurl_lifetime < Duration::from_secs(30) || r.lnurl_lifetime > Duration::from_secs(86_400)
    {
        issues.push(
            "rewards.lnurl_lifetime",
            format!(
                "must be between 30s and 24h (got {})",
                humantime::format_duration(r.lnurl_lifetime)
            ),
        );
    }
    if let Some(url) = &r.public_url {
        let origin = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        if origin.is_none_or(|o| o.is_empty() || o.contains('/') || o.contains('?')) {
            issues.push(
                "rewards.public_url",
                format!(
                    "must be an origin like https://site.example, without a path (got {url:?})"
                ),
            );
        }
    }
}

fn node(config: &Config, issues: &mut Issues) {
    match config.node.backend {
        NodeBackend::Lnd => match &config.node.lnd {
            None => issues.push(
                "node.lnd",
                "required when node.backend is lnd (rest_url, tls_cert_file or tls_ca, macaroon, network)",
            ),
            Some(lnd) => {
                if !lnd.rest_url.starts_with("https://") {
                    issues.push(
                        "node.lnd.rest_url",
                        format!(
                            "must start with https:// (lnd's REST listener is TLS; got {:?})",
                            lnd.rest_url
                        ),
                    );
                }
                issues.secret("node.lnd.macaroon", &lnd.macaroon);
                match (&lnd.tls_cert_file, &lnd.tls_ca) {
                    (Some(_), Some(_)) => issues.push(
                        "node.lnd.tls_ca",
                        "set only one of tls_cert_file (pin lnd's self-signed tls.cert) or tls_ca                          (a CA-signed certificate: `system` or a CA file)",
                    ),
                    (None, None) => issues.push(
                        "node.lnd.tls_cert_file",
                        "required: lnd's tls.cert to pin, or tls_ca (`system` or a CA file) for a                          CA-signed certificate (hosted lnd)",
                    ),
                    (None, Some(ca)) if ca.trim().is_empty() => issues.push(
                        "node.lnd.tls_ca",
                        "must be `system` or the path of a PEM CA bundle",
                    ),
                    _ => {}
                }
                issues.between(
                    "node.lnd.hold_expiry_delta".into(),
                    lnd.hold_expiry_delta.into(),
                    1,
                    144,
                );
                // lnd's getinfo names (lncfg.NormalizeNetwork): testnet3 is `testnet`, the 4th
                // testnet `testnet4`.
                const NETWORKS: [&str; 6] = [
                    "mainnet", "testnet", "testnet4", "signet", "regtest", "simnet",
                ];
                if !NETWORKS.contains(&lnd.network.as_str()) {
                    issues.push(
                        "node.lnd.network",
                        format!(
                            "must be one of {} (got {:?})",
                            NETWORKS.join(", "),
                            lnd.network
                        ),
                    );
                }
            }
        },
        NodeBackend::Cln => match &config.node.cln {
            None => issues.push(
                "node.cln",
                "required when node.backend is cln (grpc, hold, network)",
            ),
            Some(cln) => cln_node(cln, issues),
        },
        NodeBackend::Nwc => match &config.node.nwc {
            None => issues.push(
                "node.nwc",
                "required when node.backend is nwc (connection, network)",
            ),
            Some(nwc) => nwc_node(nwc, issues),
        },
        NodeBackend::Dev => {
            if let Some(dev) = &config.node.dev
                && dev.block_interval.is_some_and(|d| d.is_zero())
            {
                issues.push("node.dev.block_interval", "must be longer than 0s");
            }
        }
    }
}

fn cln_node(cln: &super::ClnConfig, issues: &mut Issues) {
    for (name, grpc, port_hint) in [
        (
            "grpc",
            &cln.grpc,
            "CLN's grpc-port, e.g. https://127.0.0.1:9736",
        ),
        (
            "hold",
            &cln.hold,
            "the hold plugin's hold-grpc-port, 9292 by default: https://127.0.0.1:9292",
        ),
    ] {
        let path = format!("node.cln.{name}");
        if let Err(problem) = grpc_authority(&grpc.url) {
            issues.push(
                format!("{path}.url"),
                format!("{problem} ({port_hint}; got {:?})", grpc.url),
            );
        }
        issues.secret(&format!("{path}.client_key"), &grpc.client_key);
    }
    if let (Ok(a), Ok(b)) = (grpc_authority(&cln.grpc.url), grpc_authority(&cln.hold.url))
        && a == b
    {
        issues.push(
            "node.cln.hold.url",
            "must differ from node.cln.grpc.url: the hold plugin serves its own port \
             (hold-grpc-port, 9292 by default)",
        );
    }
    issues.between(
        "node.cln.hold_expiry_delta".into(),
        cln.hold_expiry_delta.into(),
        1,
        144,
    );
    const NETWORKS: [&str; 5] = ["mainnet", "testnet", "testnet4", "signet", "regtest"];
    if cln.network == "bitcoin" {
        issues.push(
            "node.cln.network",
            "write mainnet (CLN calls it bitcoin; the sidecar uses one name for every backend)",
        );
    } else if !NETWORKS.contains(&cln.network.as_str()) {
        issues.push(
            "node.cln.network",
            format!(
                "must be one of {} (got {:?})",
                NETWORKS.join(", "),
                cln.network
            ),
        );
    }
}

fn nwc_node(nwc: &super::NwcConfig, issues: &mut Issues) {
    issues.secret("node.nwc.connection", &nwc.connection);
    // The connection string is checked here when it can be read (check-config on the machine
    // that runs the sidecar); an unreadable one is reported when the sidecar starts.
    if nwc.connection.shape_issue().is_none()
        && let Ok(text) = nwc.connection.read_text()
        && let Err(problem) =
            crate::node::nwc::ConnectionString::parse(&String::from_utf8_lossy(&text.0))
    {
        issues.push("node.nwc.connection", problem.to_string());
    }
    issues.between(
        "node.nwc.hold_expiry_delta".into(),
        nwc.hold_expiry_delta.into(),
        1,
        144,
    );
    // NIP-47 get_info names: mainnet, testnet, signet, regtest.
    const NETWORKS: [&str; 5] = ["mainnet", "testnet", "testnet4", "signet", "regtest"];
    if !NETWORKS.contains(&nwc.network.as_str()) {
        issues.push(
            "node.nwc.network",
            format!(
                "must be one of {} (got {:?})",
                NETWORKS.join(", "),
                nwc.network
            ),
        );
    }
}

/// `host:port` of a gRPC URL: both plugins serve TLS only, on a port of their own, so the
/// scheme is https and the port is explicit (an implied 443 is never theirs).
fn grpc_authority(url: &str) -> Result<&str, &'static str> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err("must start with https:// (the plugin serves gRPC over TLS only)");
    };
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') || authority.contains('?') {
        return Err("must be https://host:port, without a path");
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(authority)
        }
        _ => Err("must name the port"),
    }
}

fn store(config: &Config, issues: &mut Issues) {
    let Some(url) = &config.store.url else {
        if config.store.password.is_some() {
            issues.push(
                "store.password",
                "only used with a postgres:// url; remove it or set store.url",
            );
        }
        return;
    };
    let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if postgres {
        // userinfo is between "://" and the first "@" before the path.
        let rest = url.split_once("://").map_or("", |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && userinfo.contains(':')
        {
            issues.push(
                "store.url",
                "must not contain a password; move it to store.password (file: or env:)",
            );
        }
        if url.contains("password=") {
            issues.push(
                "store.url",
                "must not contain a password parameter; use store.password (file: or env:)",
            );
        }
        if let Some(password) = &config.store.password {
            issues.secret("store.password", password);
        }
    } else if let Some(path) = url.strip_prefix("sqlite:") {
        if path.trim().is_empty() {
            issues.push(
                "store.url",
                "sqlite: needs a path, e.g. sqlite:lightning-wall.db",
            );
        }
        if config.store.password.is_some() {
            issues.push(
                "store.password",
                "only used with a postgres:// url; remove it",
            );
        }
    } else {
        issues.push(
            "store.url",
            format!("must start with sqlite: or postgres:// (got {url:?})"),
        );
    }
}

fn listeners(config: &Config, issues: &mut Issues) {
    let l = &config.listeners;
    if let Some(token) = &l.internal.token {
        issues.secret("listeners.internal.token", token);
    } else if !l.internal.bind.ip().is_loopback() {
        issues.push(
            "listeners.internal.token",
            format!(
                "required when listeners.internal.bind is not loopback (got {}): the internal \
                 API mints invoices and hands out key material",
                l.internal.bind
            ),
        );
    }
    let mut binds = vec![
        ("listeners.internal.bind", l.internal.bind),
        ("listeners.public.bind", l.public.bind),
    ];
    if let Some(admin) = &l.admin {
        issues.secret("listeners.admin.token", &admin.token);
        binds.push(("listeners.admin.bind", admin.bind));
    }
    let mut seen = HashSet::new();
    for (path, addr) in binds {
        if addr.port() != 0 && !seen.insert(addr) {
            issues.push(path, format!("{addr} is already used by another listener"));
        }
    }
}

fn deposits(config: &Config, issues: &mut Issues) {
    let d = &config.deposits;
    if d.invoice_expiry < Duration::from_secs(60) || d.invoice_expiry > Duration::from_secs(86_400)
    {
        issues.push(
            "deposits.invoice_expiry",
            format!(
                "must be between 1m and 24h (got {})",
                humantime::format_duration(d.invoice_expiry)
            ),
        );
    }
    issues.between(
        "deposits.cltv_expiry".into(),
        d.cltv_expiry.into(),
        MIN_CLTV_EXPIRY.into(),
        MAX_CLTV_EXPIRY.into(),
    );
    if d.safety_margin_blocks == 0 {
        issues.push(
            "deposits.safety_margin_blocks",
            "must be at least 1: refunding at the node's own auto-cancel height races it",
        );
    }
    if d.assumed_block_interval < Duration::from_secs(1) {
        issues.push("deposits.assumed_block_interval", "must be at least 1s");
    }
    if d.reconcile_interval < Duration::from_secs(1) {
        issues.push("deposits.reconcile_interval", "must be at least 1s");
    }
    // At least a second: a verdict sent at once reaches the sidecar in milliseconds, and a
    // tick-delayed one within the filter's sync period (1 s). At most 10 s: an honest
    // visitor's refund waits this long.
    if d.leave_grace < Duration::from_secs(1)
        || d.leave_grace > Duration::from_secs(10)
        || d.leave_grace.subsec_nanos() != 0
    {
        issues.push(
            "deposits.leave_grace",
            format!(
                "must be whole seconds between 1s and 10s (got {:?})",
                d.leave_grace
            ),
        );
    }
}

fn limits(config: &Config, issues: &mut Issues) {
    let l = &config.limits;
    if l.max_held_deposits == 0 {
        issues.push("limits.max_held_deposits", "must be at least 1");
    }
    if l.max_held_deposits_per_prefix == 0 {
        issues.push("limits.max_held_deposits_per_prefix", "must be at least 1");
    } else if l.max_held_deposits_per_prefix > l.max_held_deposits {
        issues.push(
            "limits.max_held_deposits_per_prefix",
            format!(
                "must not exceed limits.max_held_deposits ({}), got {}",
                l.max_held_deposits, l.max_held_deposits_per_prefix
            ),
        );
    }
    if l.amount_sat.min == 0 {
        issues.push("limits.amount_sat.min", "must be at least 1");
    }
    if l.amount_sat.min > l.amount_sat.max {
        issues.push(
            "limits.amount_sat.max",
            format!(
                "must be at least limits.amount_sat.min ({}), got {}",
                l.amount_sat.min, l.amount_sat.max
            ),
        );
    }
    // 21M BTC in sat: anything above cannot be an amount.
    if l.amount_sat.max > 2_100_000_000_000_000 {
        issues.push("limits.amount_sat.max", "is more than all bitcoin");
    }
    if l.max_unpaid_deposits_per_prefix == 0 {
        issues.push(
            "limits.max_unpaid_deposits_per_prefix",
            "must be at least 1",
        );
    }
    if l.max_unpaid_deposits == 0 {
        issues.push("limits.max_unpaid_deposits", "must be at least 1");
    } else if l.max_unpaid_deposits_per_prefix > l.max_unpaid_deposits {
        issues.push(
            "limits.max_unpaid_deposits_per_prefix",
            format!(
                "must not exceed limits.max_unpaid_deposits ({}), got {}",
                l.max_unpaid_deposits, l.max_unpaid_deposits_per_prefix
            ),
        );
    }
    issues.rate("limits.challenge_mint_rate", &l.challenge_mint_rate);
    if let Some(r) = &l.challenge_mint_rate_ipv6_48 {
        issues.rate("limits.challenge_mint_rate_ipv6_48", r);
    }
    if !(24..=32).contains(&l.ipv4_prefix_len) {
        issues.push(
            "limits.ipv4_prefix_len",
            format!(
                "must be between 24 and 32 (got {}); 32 counts each address, 24 a whole /24",
                l.ipv4_prefix_len
            ),
        );
    }
    if l.max_long_polls == 0 {
        issues.push("limits.max_long_polls", "must be at least 1");
    }
    if l.max_long_polls_per_token == 0 {
        issues.push("limits.max_long_polls_per_token", "must be at least 1");
    }
    if l.challenge_mint_budget_per_s == 0 {
        issues.push(
            "limits.challenge_mint_budget_per_s",
            "must be at least 1 (challenges per second the node may be asked for)",
        );
    }
    if l.payment_lookups_per_s == 0 {
        issues.push(
            "limits.payment_lookups_per_s",
            "must be at least 1 (payment lookups per second the node may be asked for)",
        );
    }
}

fn routes(config: &Config, issues: &mut Issues) {
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

pub(crate) fn valid_route_id(id: &str) -> bool {
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
    for (j, method) in m.methods.iter().enumerate() {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            issues.push(
                format!("{at}.match.methods[{j}]"),
                format!("must be an upper-case HTTP method such as GET (got {method:?})"),
            );
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

fn deposit_policy(config: &Config, deposit: &super::DepositPolicy, at: &str, issues: &mut Issues) {
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

/// Settings that are valid but leave a hole or can cost an honest visitor: `check-config`
/// prints them and `serve` logs them. Each names the field and the fix.
pub(super) fn warnings(config: &Config) -> Vec<ConfigIssue> {
    let mut w = Issues::default();
    for (i, route) in config.routes.iter().enumerate() {
        let at = format!("routes[{i}]");
        let later = &config.routes[i + 1..];
        // A later route without host and method restrictions that covers this route's paths
        // catches what this one lets through.
        let caught_later = |needs_any_host: bool, needs_any_method: bool| {
            later.iter().any(|l| {
                l.mode != Mode::Free
                    && (!needs_any_host || l.matcher.host.is_none())
                    && (!needs_any_method || l.matcher.methods.is_empty())
                    && covers_all_of(&l.matcher.path, &route.matcher.path)
            })
        };
        if route.mode != Mode::Free
            && !route.matcher.methods.is_empty()
            && !caught_later(false, true)
        {
            w.push(
                format!("{at}.match.methods"),
                format!(
                    "only {} pay here: any other method on the same paths matches no route and \
                     passes free. Remove `methods`, or add a later route for the same paths \
                     without `methods`",
                    route.matcher.methods.join(", ")
                ),
            );
        }
        if route.mode != Mode::Free
            && let Some(host) = &route.matcher.host
            && !caught_later(true, false)
        {
            w.push(
                format!("{at}.match.host"),
                format!(
                    "only requests for {host} pay here: the same paths under any other Host \
                     header (an IP address, another name pointing at this proxy) match no route \
                     and pass free. Make the proxy answer only for {host}, or add a later route \
                     for the same paths without `host`"
                ),
            );
        }
        if let Some(storm) = route.deposit.as_ref().and_then(|d| d.error_storm) {
            let first_asset = ASSET_PATHS.iter().find(|p| {
                path_matches(&route.matcher.path, p)
                    && !config.routes[..i]
                        .iter()
                        .any(|e| e.matcher.host.is_none() && path_matches(&e.matcher.path, p))
            });
            if let Some(asset) = first_asset {
                w.push(
                    format!("{at}.deposit.error_storm"),
                    format!(
                        "counts every 4xx answer on this route, including 404s for files \
                         browsers fetch on their own ({asset}): {} of them would forfeit an \
                         honest visitor's deposit. Put a free route for those paths before this \
                         one, or raise error_storm.errors well above what a page can cause",
                        storm.errors
                    ),
                );
            }
        }
    }
    if config.wall.site_name.is_none() && config.routes.iter().any(|r| r.mode != Mode::Free) {
        w.push(
            "wall.site_name",
            "not set: the wall page names the site by its host name only and the wallet memo \
             says \"lightning-wall\"; set the name visitors know the site by (a page that names \
             no site looks like phishing)",
        );
    }
    w.0
}

/// Paths a browser requests on its own, which many sites answer with 404.
const ASSET_PATHS: &[&str] = &[
    "/favicon.ico",
    "/apple-touch-icon.png",
    "/apple-touch-icon-precomposed.png",
    "/robots.txt",
];

/// Whether a path matcher matches `path` (as the filter matches it; a regex that does not
/// compile matches nothing — `validate` reports it).
fn path_matches(m: &Option<PathMatch>, path: &str) -> bool {
    match m {
        None => true,
        Some(PathMatch::Exact(p)) => p == path,
        Some(PathMatch::Prefix(p)) => path.starts_with(p.as_str()),
        Some(PathMatch::Regex(r)) => regex_lite::Regex::new(r).is_ok_and(|re| re.is_match(path)),
    }
}

/// Whether `outer` matches every path `inner` matches (conservative: false when unsure).
fn covers_all_of(outer: &Option<PathMatch>, inner: &Option<PathMatch>) -> bool {
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
