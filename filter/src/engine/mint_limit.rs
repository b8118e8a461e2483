//! The filter's own limit on challenge minting per client network, checked before the
//! `POST /v1/challenge` call-out (the sidecar counts the same networks again). It only ever
//! answers 429; it never spends or changes a deposit.

use core::net::IpAddr;

use super::client_addr;
use super::host::{Host, Metric};
use super::limits::{self, Count};
use super::policy::Policy;
use super::reply::{Page, Reply};

/// The filter's own pre-limit on challenge minting (shared by all workers), checked before the
/// call-out: per IPv4 /`ipv4_prefix_len`, per IPv6 /64 and per IPv6 /48 (client_addr.rs). An
/// address the host did not report or that does not parse counts as `0.0.0.0`: one shared
/// budget, so garbage cannot mint without limit. `Some(reply)` when the client must wait.
pub fn mint_limited(
    policy: Option<&Policy>,
    client: Option<IpAddr>,
    host: &dyn Host,
) -> Option<Reply> {
    let policy = policy?;
    let now = host.now_unix();
    let ip = client.unwrap_or(IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED));
    let mut wait = None;
    let (networks, count) = client_addr::mint_networks(ip, policy.ipv4_prefix_len);
    for network in networks.iter().take(count) {
        let rate = if network.site {
            policy.challenge_mint_rate_ipv6_48
        } else {
            policy.challenge_mint_rate
        };
        let Some(owner) = limits::ip_owner(host, &network.key) else {
            continue;
        };
        if let Count::Exceeded(_) = limits::hit(host, limits::MINTS, owner, rate, now) {
            let left = limits::seconds_left(rate, now);
            wait = Some(wait.map_or(left, |w: u64| w.max(left)));
        }
    }
    let wait = wait?;
    host.count(Metric::Denied("rate_limited"));
    Some(
        Reply::error(429, "rate_limited", "too many challenges; retry later")
            .retry_after(wait)
            .with_page(Page::RateLimited),
    )
}

#[cfg(test)]
mod tests {
    //! The pre-limit per network, for addresses in every form a host reports.
    use super::*;
    use crate::engine::host::memory::MemoryHost;
    use crate::engine::policy::tests::bootstrap_json;

    const NOW: u64 = 1_800_000_000;

    fn policy() -> Policy {
        Policy::from_bootstrap(bootstrap_json().as_bytes()).unwrap()
    }

    /// The pre-limit for an address as the host reports it.
    fn mint_limited(p: Option<&Policy>, reported: &str, h: &MemoryHost) -> Option<Reply> {
        super::mint_limited(p, client_addr::parse(reported), h)
    }

    #[test]
    fn the_mint_pre_limit_is_per_client_ip() {
        let p = policy();
        let h = MemoryHost::at(NOW);
        for _ in 0..3 {
            assert!(mint_limited(Some(&p), "203.0.113.9", &h).is_none());
        }
        let r = mint_limited(Some(&p), "203.0.113.9", &h).unwrap();
        assert_eq!(r.status, 429);
        assert!(mint_limited(Some(&p), "203.0.113.10", &h).is_none());
    }

    #[test]
    fn rotating_addresses_inside_one_ipv6_64_share_its_mint_limit() {
        let p = policy();
        let h = MemoryHost::at(NOW);
        // Every challenge from a fresh address of the same /64, in each form a host reports.
        let forms = [
            "2001:db8:1:2::1",
            "[2001:db8:1:2::2]:443",
            "2001:db8:1:2:aaaa:bbbb:cccc:3",
        ];
        for ip in forms {
            assert!(mint_limited(Some(&p), ip, &h).is_none(), "{ip}");
        }
        let r = mint_limited(Some(&p), "[2001:db8:1:2:ffff::9]:50000", &h).unwrap();
        assert_eq!(r.status, 429);
        // Another /64 of the same /48 has its own budget.
        assert!(mint_limited(Some(&p), "2001:db8:1:3::1", &h).is_none());
    }

    #[test]
    fn rotating_64s_inside_one_48_meet_the_48_limit() {
        let p = policy();
        let h = MemoryHost::at(NOW);
        let site = p.challenge_mint_rate_ipv6_48.requests;
        // One challenge from each of `site` different /64s: all within both limits.
        for lan in 0..site {
            assert!(
                mint_limited(Some(&p), &format!("2001:db8:7:{lan:x}::1"), &h).is_none(),
                "{lan}"
            );
        }
        let r = mint_limited(Some(&p), "2001:db8:7:ffff::1", &h).unwrap();
        assert_eq!(r.status, 429);
        assert!(
            mint_limited(Some(&p), "2001:db8:8::1", &h).is_none(),
            "another /48"
        );
    }

    #[test]
    fn ipv4_counts_per_configured_prefix_and_garbage_shares_one_budget() {
        let mut p = policy();
        p.ipv4_prefix_len = 24;
        let h = MemoryHost::at(NOW);
        for last in 1..=3 {
            assert!(mint_limited(Some(&p), &format!("198.51.100.{last}:1234"), &h).is_none());
        }
        assert!(mint_limited(Some(&p), "198.51.100.200", &h).is_some());
        assert!(mint_limited(Some(&p), "198.51.101.1", &h).is_none());
        for _ in 0..3 {
            assert!(mint_limited(Some(&p), "not an address", &h).is_none());
        }
        assert!(mint_limited(Some(&p), "[garbage", &h).is_some());
    }
}
