//! The judgements `doctor` makes, as pure functions of facts already gathered (no I/O): can the
//! node hold what the limits allow, may the macaroon do what the sidecar calls, do visitors
//! arrive with their own addresses. Each returns findings with the fix in the operator's words.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::{Finding, Level};
use crate::node::lnd::channels::InboundRoom;
use crate::node::lnd::permissions::{self, Need, Permissions, SIDECAR_RPCS};

/// The one macaroon recipe (docs/node-backends.md "Macaroon").
pub const MACAROON_RECIPE: &str = "lncli bakemacaroon invoices:read invoices:write info:read offchain:read --save_to lightning-wall.macaroon";
pub const MACAROON_RECIPE_REWARDS: &str = "lncli bakemacaroon invoices:read invoices:write info:read offchain:read offchain:write --save_to lightning-wall.macaroon";

/// What the configuration asks of the node's channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Demand {
    pub max_held_deposits: u32,
    /// The largest deposit of any route (sat); `None` without deposit routes.
    pub largest_deposit_sat: Option<u64>,
    /// The largest amount any route charges (sat), deposit or pay.
    pub largest_amount_sat: u64,
}

impl Demand {
    /// What `config` allows at once (the dashboard shows the same budget in use).
    pub fn of(config: &crate::config::Config) -> Demand {
        let amounts = |deposits_only: bool| {
            config
                .routes
                .iter()
                .filter(|r| !deposits_only || r.mode == crate::config::Mode::Deposit)
                .map(|r| r.amount_sat())
                .max()
        };
        Demand {
            max_held_deposits: config.limits.max_held_deposits,
            largest_deposit_sat: amounts(true),
            largest_amount_sat: amounts(false).unwrap_or(0),
        }
    }
}

/// One channel's usable inbound (sat) and free incoming HTLC slots; inactive channels have none.
fn usable(room: &InboundRoom) -> (u64, u64) {
    if !room.active {
        return (0, 0);
    }
    let mut inbound = room
        .remote_balance_sat
        .saturating_sub(room.remote_reserve_sat);
    if room.max_in_flight_msat > 0 {
        inbound = inbound.min(room.max_in_flight_msat / 1000);
    }
    let slots = u64::from(room.max_incoming_htlcs.saturating_sub(room.incoming_htlcs));
    (inbound, slots)
}

/// Compares what the limits allow to be held at once with the channels' inbound liquidity and
/// HTLC slots. Every held deposit keeps one incoming HTLC (more with multi-part payments) and
/// its amount on a channel until it is settled or cancelled (docs/lnd-rest.md "Hold-invoice
/// semantics and limits").
pub fn capacity(rooms: &[InboundRoom], demand: Demand) -> Vec<Finding> {
    let usable: Vec<(u64, u64)> = rooms.iter().map(usable).collect();
    let inbound: u64 = usable.iter().map(|(sat, _)| sat).sum();
    let slots: u64 = usable.iter().map(|(_, slots)| slots).sum();
    let active = rooms.iter().filter(|r| r.active).count();
    let mut findings = Vec::new();
    if inbound < demand.largest_amount_sat.max(1) {
        findings.push(Finding::new(
            Level::Fail,
            "node.inbound",
            format!(
                "{active} active channel(s) with {inbound} sat of inbound liquidity: nobody can \
                 pay {} sat to this node",
                demand.largest_amount_sat.max(1)
            ),
            "open a channel with inbound liquidity (buy it from an LSP, or ask a peer to open one \
             to you) or lower the routes' amounts",
        ));
        return findings;
    }
    let Some(deposit) = demand.largest_deposit_sat.filter(|d| *d > 0) else {
        findings.push(Finding::ok(
            "node.inbound",
            format!("{inbound} sat inbound on {active} active channel(s); no deposit routes"),
        ));
        return findings;
    };
    let wanted = u64::from(demand.max_held_deposits);
    // Deposits the channels can hold at once: each channel holds as many as both its
    // liquidity and its slots allow.
    let holdable: u64 = usable
        .iter()
        .map(|(sat, slots)| (sat / deposit).min(*slots))
        .sum();
    let needed_sat = wanted.saturating_mul(deposit);
    let suggestion = format!(
        "set limits.max_held_deposits to {holdable} or less, or add inbound liquidity and \
         channels (each channel takes at most {} incoming HTLCs)",
        rooms
            .iter()
            .map(|r| r.max_incoming_htlcs)
            .max()
            .unwrap_or(483)
    );
    if inbound < needed_sat {
        findings.push(Finding::new(
            Level::Warn,
            "node.inbound",
            format!(
                "limits.max_held_deposits × the largest deposit = {wanted} × {deposit} sat = \
                 {needed_sat} sat, but the node has {inbound} sat of inbound liquidity: about \
                 {holdable} deposits can be held at once, after which payments fail"
            ),
            &suggestion,
        ));
    } else {
        findings.push(Finding::ok(
            "node.inbound",
            format!(
                "{inbound} sat inbound covers {wanted} held deposits of {deposit} sat \
                 ({needed_sat} sat)"
            ),
        ));
    }
    if slots < wanted {
        findings.push(Finding::new(
            Level::Warn,
            "node.htlc_slots",
            format!(
                "limits.max_held_deposits is {wanted}, but the node's {active} active channel(s) \
                 have {slots} free incoming HTLC slots: each held deposit takes at least one"
            ),
            &suggestion,
        ));
    } else {
        findings.push(Finding::ok(
            "node.htlc_slots",
            format!("{slots} free incoming HTLC slots for {wanted} held deposits"),
        ));
    }
    findings
}

/// Whether the macaroon may call every RPC the sidecar uses. `granted` is `None` when the
/// macaroon's identifier is not lnd's (then only the live calls tell).
pub fn macaroon(
    granted: Option<&Permissions>,
    required: &BTreeMap<String, Permissions>,
    rewards_enabled: bool,
) -> Vec<Finding> {
    let Some(granted) = granted else {
        return vec![Finding::new(
            Level::Warn,
            "node.lnd.macaroon",
            "not an lnd macaroon this version of the sidecar can read: its permissions were not \
             checked (the test invoice below still exercises invoices:write)",
            format!("bake one: {MACAROON_RECIPE}"),
        )];
    };
    let mut missing_for: BTreeMap<Need, (BTreeSet<String>, Vec<&str>)> = BTreeMap::new();
    let mut unknown = Vec::new();
    for &(method, need) in SIDECAR_RPCS {
        if need == Need::Rewards && !rewards_enabled {
            continue;
        }
        let Some(needed) = required.get(method) else {
            unknown.push(method);
            continue;
        };
        if !permissions::allows(granted, method, needed) {
            let entry = missing_for.entry(need).or_default();
            entry.0.extend(needed.difference(granted).cloned());
            entry.1.push(method.rsplit('/').next().unwrap_or(method));
        }
    }
    let mut findings = Vec::new();
    for (need, (perms, methods)) in &missing_for {
        let perms = perms.iter().cloned().collect::<Vec<_>>().join(" ");
        let methods = methods.join(", ");
        let (level, what, recipe) = match need {
            Need::Always => (Level::Fail, "the sidecar cannot work", MACAROON_RECIPE),
            Need::Rewards => (
                Level::Fail,
                "rewards are enabled but cannot be paid",
                MACAROON_RECIPE_REWARDS,
            ),
            Need::Doctor => (
                Level::Warn,
                "doctor cannot read the channels, so liquidity is not checked",
                MACAROON_RECIPE,
            ),
        };
        findings.push(Finding::new(
            level,
            "node.lnd.macaroon",
            format!("lacks {perms} (needed by {methods}): {what}"),
            format!("bake a macaroon with exactly what the sidecar needs: {recipe}"),
        ));
    }
    if !unknown.is_empty() {
        findings.push(Finding::new(
            Level::Warn,
            "node.lnd.version",
            format!("lnd does not list {}", unknown.join(", ")),
            "run lnd 0.18.5 or newer, built with the invoicesrpc and routerrpc sub-servers",
        ));
    }
    if findings.is_empty() {
        let list = granted.iter().cloned().collect::<Vec<_>>().join(" ");
        findings.push(Finding::ok(
            "node.lnd.macaroon",
            format!("grants every permission the sidecar needs ({list})"),
        ));
        // Only the calls this configuration makes: without rewards, `offchain:write` (sending
        // payments, the one permission that can empty the node) is more than needed.
        let extra: Vec<&String> = granted
            .iter()
            .filter(|p| {
                !SIDECAR_RPCS
                    .iter()
                    .filter(|(_, need)| rewards_enabled || *need != Need::Rewards)
                    .filter_map(|(m, _)| required.get(*m))
                    .any(|needed| needed.contains(*p))
            })
            .collect();
        if !extra.is_empty() {
            findings.push(Finding::new(
                Level::Warn,
                "node.lnd.macaroon",
                format!(
                    "also grants {}: more than the sidecar needs (a stolen sidecar could use it)",
                    extra
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                format!("bake a narrower one: {MACAROON_RECIPE}"),
            ));
        }
    }
    findings
}

/// Deposits doctor needs to see before it judges the addresses.
pub const MIN_DEPOSITS_TO_JUDGE: usize = 10;

/// Looks at the client networks of recent deposits: when every one is a loopback or private
/// network, or they all are one network, visitors reach the sidecar as the address of a proxy
/// in front of Envoy, and the per-network limits (`max_held_deposits_per_prefix`, the mint rate)
/// cap the whole site as if it were one visitor.
pub fn client_addresses(recent_prefixes: &[String]) -> Finding {
    const CHECK: &str = "visitors.addresses";
    let n = recent_prefixes.len();
    if n < MIN_DEPOSITS_TO_JUDGE {
        return Finding::new(
            Level::Skip,
            CHECK,
            format!(
                "{n} deposit(s) in the store: too few to tell whether visitors arrive with their \
                 own addresses (run doctor again after some traffic)"
            ),
            "",
        );
    }
    let distinct: BTreeSet<&str> = recent_prefixes.iter().map(String::as_str).collect();
    let all_internal = distinct.iter().all(|p| is_internal(p));
    let fix = "tell Envoy how many proxies sit in front of it: `xff_num_trusted_hops: <n>` with \
               `use_remote_address: true` in its http_connection_manager (or PROXY protocol on \
               the load balancer), so that `source.address` is the visitor's (docs/going-live.md)";
    let shown = distinct
        .iter()
        .take(3)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if all_internal {
        Finding::new(
            Level::Warn,
            CHECK,
            format!(
                "the last {n} deposits all came from loopback or private networks ({shown}): \
                 visitors arrive as a proxy's address, so every per-network limit caps the whole \
                 site"
            ),
            fix,
        )
    } else if distinct.len() == 1 {
        Finding::new(
            Level::Warn,
            CHECK,
            format!(
                "the last {n} deposits all came from one network ({shown}): if that is a proxy, \
                 every per-network limit caps the whole site"
            ),
            fix,
        )
    } else {
        Finding::ok(
            CHECK,
            format!(
                "the last {n} deposits came from {} client networks",
                distinct.len()
            ),
        )
    }
}

/// `203.0.113.0/24`-style prefixes (api/auth.rs `client_prefix`) of loopback, private, shared
/// (CGNAT) or link-local networks; `::/48` is where `::1` lands.
fn is_internal(prefix: &str) -> bool {
    let Some(Ok(ip)) = prefix.split('/').next().map(str::parse::<IpAddr>) else {
        return false;
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_unspecified()
                || v6.is_loopback()
                || first & 0xfe00 == 0xfc00
                || first & 0xffc0 == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(remote_balance_sat: u64, max_incoming_htlcs: u32) -> InboundRoom {
        InboundRoom {
            active: true,
            remote_balance_sat,
            remote_reserve_sat: 10_000,
            max_in_flight_msat: 0,
            max_incoming_htlcs,
            incoming_htlcs: 0,
        }
    }

    fn demand(max_held_deposits: u32) -> Demand {
        Demand {
            max_held_deposits,
            largest_deposit_sat: Some(1_000),
            largest_amount_sat: 1_000,
        }
    }

    #[test]
    fn too_little_inbound_for_the_held_limit_is_a_warning_with_the_number_that_fits() {
        // 110,000 - 10,000 reserve = 100,000 sat: 100 deposits of 1,000 sat.
        let findings = capacity(&[room(110_000, 483)], demand(1_000));
        assert_eq!(findings[0].level, Level::Warn, "{findings:?}");
        assert!(
            findings[0].message.contains("about 100 deposits"),
            "{findings:?}"
        );
        assert!(
            findings[0].fix.contains("max_held_deposits to 100"),
            "{findings:?}"
        );
        assert_eq!(
            findings[1].level,
            Level::Warn,
            "483 slots < 1000: {findings:?}"
        );
        let fits = capacity(&[room(110_000, 483)], demand(100));
        assert!(fits.iter().all(|f| f.level == Level::Ok), "{fits:?}");
    }

    #[test]
    fn no_usable_inbound_fails_and_inactive_channels_do_not_count() {
        let mut inactive = room(5_000_000, 483);
        inactive.active = false;
        let findings = capacity(&[inactive, room(10_500, 483)], demand(10));
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].level, Level::Fail, "{findings:?}");
    }

    #[test]
    fn slots_in_use_are_not_free() {
        let mut busy = room(100_000_000, 483);
        busy.incoming_htlcs = 480;
        let findings = capacity(&[busy], demand(10));
        assert_eq!(findings[1].level, Level::Warn, "{findings:?}");
        assert!(findings[1].message.contains("3 free"), "{findings:?}");
    }

    #[test]
    fn loopback_only_addresses_are_a_warning_and_many_networks_are_fine() {
        let loopback = vec!["127.0.0.0/24".to_owned(); 12];
        assert_eq!(client_addresses(&loopback).level, Level::Warn);
        let lb: Vec<String> = (0..12).map(|i| format!("10.0.{i}.0/24")).collect();
        assert_eq!(client_addresses(&lb).level, Level::Warn);
        let one = vec!["203.0.113.0/24".to_owned(); 12];
        assert_eq!(client_addresses(&one).level, Level::Warn);
        let many: Vec<String> = (0..12).map(|i| format!("198.51.{i}.0/24")).collect();
        assert_eq!(client_addresses(&many).level, Level::Ok);
        assert_eq!(client_addresses(&loopback[..3]).level, Level::Skip);
        assert!(
            is_internal("::/48") && is_internal("fd00:1::/48") && !is_internal("2001:db8::/48")
        );
    }

    fn perms(items: &[&str]) -> Permissions {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn lnd_table() -> BTreeMap<String, Permissions> {
        SIDECAR_RPCS
            .iter()
            .map(|(m, _)| {
                let p = match *m {
                    "/lnrpc.Lightning/GetInfo" => "info:read",
                    "/invoicesrpc.Invoices/SubscribeSingleInvoice" => "invoices:read",
                    "/routerrpc.Router/SendPaymentV2" => "offchain:write",
                    "/routerrpc.Router/TrackPaymentV2" | "/lnrpc.Lightning/ListChannels" => {
                        "offchain:read"
                    }
                    _ => "invoices:write",
                };
                ((*m).to_owned(), perms(&[p]))
            })
            .collect()
    }

    #[test]
    fn the_recipe_passes_and_a_stock_invoice_macaroon_fails() {
        let table = lnd_table();
        let recipe = perms(&[
            "invoices:read",
            "invoices:write",
            "info:read",
            "offchain:read",
        ]);
        let ok = macaroon(Some(&recipe), &table, false);
        assert!(ok.iter().all(|f| f.level == Level::Ok), "{ok:?}");
        // lnd's invoice.macaroon: invoices:* and address:*, no info:read.
        let stock = perms(&[
            "invoices:read",
            "invoices:write",
            "address:read",
            "address:write",
        ]);
        let findings = macaroon(Some(&stock), &table, false);
        let fail = findings.iter().find(|f| f.level == Level::Fail).unwrap();
        assert!(fail.message.contains("lacks info:read"), "{fail:?}");
        assert!(fail.fix.contains("lncli bakemacaroon"), "{fail:?}");
        let rewards = macaroon(Some(&recipe), &table, true);
        assert!(
            rewards
                .iter()
                .any(|f| f.level == Level::Fail && f.message.contains("offchain:write")),
            "{rewards:?}"
        );
    }

    /// `offchain:write` sends payments: a stolen sidecar holding it could empty the node. Only
    /// rewards need it, so without rewards it is "more than the sidecar needs" (an
    /// `admin.macaroon` copied in place of the recipe shows it).
    #[test]
    fn offchain_write_without_rewards_is_more_than_the_sidecar_needs() {
        let table = lnd_table();
        let with_write = perms(&[
            "invoices:read",
            "invoices:write",
            "info:read",
            "offchain:read",
            "offchain:write",
        ]);
        let findings = macaroon(Some(&with_write), &table, false);
        let warn = findings
            .iter()
            .find(|f| f.level == Level::Warn)
            .unwrap_or_else(|| panic!("no warning: {findings:?}"));
        assert_eq!(
            warn.message,
            "also grants offchain:write: more than the sidecar needs (a stolen sidecar could use it)"
        );
        let rewards = macaroon(Some(&with_write), &table, true);
        assert!(rewards.iter().all(|f| f.level == Level::Ok), "{rewards:?}");
    }
}
