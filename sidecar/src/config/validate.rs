//! Semantic checks of a parsed [`Config`]: every issue is collected (an operator fixes the file
//! once, not once per error) and each names the field path and what to write instead.

use std::collections::HashSet;
use std::time::Duration;

use super::{Config, ConfigIssue, NodeBackend, Rate, SecretRef};

mod routes;
mod warnings;

use routes::routes;
pub(super) use warnings::warnings;

/// lnd's auto-cancel margin (`holdexpirydelta`, 18 blocks in v0.21): the config check assumes
/// the larger value; the lifecycle uses the node's real one.
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
    if !(1..=100).contains(&l.long_poll_share_pct) {
        issues.push(
            "limits.long_poll_share_pct",
            format!(
                "must be between 1 and 100 (got {}): the percent of max_long_polls the deposits \
                 of one IPv6 /32 or IPv4 /16 may hold",
                l.long_poll_share_pct
            ),
        );
    }
    if l.challenge_mint_budget_per_s == 0 {
        issues.push(
            "limits.challenge_mint_budget_per_s",
            "must be at least 1 (challenges per second the node may be asked for)",
        );
    }
    if !(1..=100).contains(&l.challenge_mint_budget_share_pct) {
        issues.push(
            "limits.challenge_mint_budget_share_pct",
            format!(
                "must be between 1 and 100 (got {}): the percent of the mint budget one IPv6 /32 \
                 or IPv4 /16 may take",
                l.challenge_mint_budget_share_pct
            ),
        );
    }
    if l.payment_lookups_per_s == 0 {
        issues.push(
            "limits.payment_lookups_per_s",
            "must be at least 1 (payment lookups per second the node may be asked for)",
        );
    }
}
