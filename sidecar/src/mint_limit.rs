//! How many challenges (invoices on the node) clients may mint: a token bucket per client
//! network — IPv4 /`ipv4_prefix_len`, IPv6 /64 and IPv6 /48, because an attacker owns every
//! address of their prefix — a share of the global budget per provider network (IPv6 /32,
//! IPv4 /16), and one global budget per second for this replica. The share is what keeps a
//! flood from thousands of /48s of one provider, each within its own limits, from spending the
//! whole budget: the rest of the Internet still gets challenges.
//!
//! Memory is bounded whatever the number of addresses seen: buckets live in [`SHARDS`]
//! least-recently-used tables of [`BUCKETS_PER_SHARD`] each, one short lock per lookup. When a
//! table is full its least recently used bucket is dropped; a dropped bucket starts full again,
//! so eviction only ever loosens the limit of a network that went quiet, never refuses anyone
//! because of someone else's traffic (the /48 limit and the global budget still hold).

use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::Instant;

use hashlink::LruCache;

use crate::config::{LimitsConfig, Rate};
use crate::mutex::lock;

/// Tables the buckets are spread over (by a keyed hash), so concurrent mints rarely share a lock.
pub const SHARDS: usize = 16;
/// Buckets per table (one more while a new one goes in): 16 x 4,096 = 65,536 networks
/// remembered, about 6 MiB at most.
pub const BUCKETS_PER_SHARD: usize = 4096;

/// A client network a mint limit applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MintNetwork {
    /// IPv4 network address and prefix length.
    V4(Ipv4Addr, u8),
    /// IPv6 /64 (first 64 bits): one subscriber's LAN, limited like one IPv4 address.
    V6Lan(u64),
    /// IPv6 /48 (first 48 bits): one site, with its own, larger limit.
    V6Site(u64),
    /// IPv6 /32 (first 32 bits): one provider's allocation, limited to its share of the budget.
    V6Provider(u32),
    /// IPv4 /16: the same for IPv4.
    V4Provider(u16),
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) count as the IPv4 address they carry.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The networks of `ip` that mint limits apply to (IPv4-mapped IPv6 counts as IPv4): the
/// network and the /16 for IPv4, the /64, the /48 and the /32 for IPv6.
pub fn mint_networks(ip: IpAddr, ipv4_prefix_len: u8) -> Vec<MintNetwork> {
    let ip = unmapped(ip);
    let provider = provider_network(ip);
    match ip {
        IpAddr::V4(v4) => {
            let len = ipv4_prefix_len.min(32);
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            vec![
                MintNetwork::V4(Ipv4Addr::from(u32::from(v4) & mask), len),
                provider,
            ]
        }
        IpAddr::V6(v6) => {
            let lan = (u128::from(v6) >> 64) as u64;
            vec![
                MintNetwork::V6Lan(lan),
                MintNetwork::V6Site(lan & !0xffff),
                provider,
            ]
        }
    }
}

/// The provider network of `ip` (IPv6 /32, IPv4 /16): what one provider's share of a global
/// bound is counted per — the mint budget here, the long-poll places
/// (deposit/waiters.rs) — because rotating addresses inside one allocation is free.
pub fn provider_network(ip: IpAddr) -> MintNetwork {
    match unmapped(ip) {
        IpAddr::V4(v4) => MintNetwork::V4Provider((u32::from(v4) >> 16) as u16),
        IpAddr::V6(v6) => MintNetwork::V6Provider((u128::from(v6) >> 96) as u32),
    }
}

/// The provider network of a deposit's recorded [`client_prefix`] (`203.0.113.0/24`,
/// `2001:db8:1::/48`: both lie inside their /16 or /32). A prefix that does not parse (never
/// written by this sidecar) counts as `0.0.0.0`'s: one shared place, never a way around the
/// share.
pub fn provider_network_of_prefix(client_prefix: &str) -> MintNetwork {
    let address = client_prefix
        .split_once('/')
        .map_or(client_prefix, |(a, _)| a);
    provider_network(address.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets per client network, bounded in number (see the module comment).
pub struct MintLimiter {
    lan: Rate,
    site: Rate,
    provider: Rate,
    ipv4_prefix_len: u8,
    hasher: std::collections::hash_map::RandomState,
    shards: Box<[Mutex<LruCache<MintNetwork, Bucket>>]>,
}

impl MintLimiter {
    pub fn new(limits: &LimitsConfig) -> MintLimiter {
        MintLimiter::with_capacity(limits, BUCKETS_PER_SHARD)
    }

    /// With `per_shard` buckets per table (tests use small tables).
    pub fn with_capacity(limits: &LimitsConfig, per_shard: usize) -> MintLimiter {
        MintLimiter {
            lan: limits.challenge_mint_rate,
            site: limits.mint_rate_ipv6_48(),
            provider: limits.mint_rate_provider(),
            ipv4_prefix_len: limits.ipv4_prefix_len,
            hasher: std::collections::hash_map::RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::new(per_shard.max(1))))
                .collect(),
        }
    }

    fn rate(&self, network: MintNetwork) -> Rate {
        match network {
            MintNetwork::V4(..) | MintNetwork::V6Lan(_) => self.lan,
            MintNetwork::V6Site(_) => self.site,
            MintNetwork::V6Provider(_) | MintNetwork::V4Provider(_) => self.provider,
        }
    }

    fn shard(&self, network: &MintNetwork) -> &Mutex<LruCache<MintNetwork, Bucket>> {
        let i = (self.hasher.hash_one(network) as usize) % self.shards.len();
        &self.shards[i]
    }

    /// Takes one challenge for `ip` from every network it belongs to, or none of them:
    /// `Err(seconds)` until the emptiest has one again. A refused mint costs no token, so a
    /// /64 stays usable once its /48 refills.
    pub fn take(&self, ip: IpAddr, now: Instant) -> Result<(), u32> {
        let networks = mint_networks(ip, self.ipv4_prefix_len);
        let mut wait = 0u32;
        for network in &networks {
            let rate = self.rate(*network);
            let mut shard = lock(self.shard(network));
            let bucket = refilled(&mut shard, *network, rate, now);
            if bucket.tokens < 1.0 {
                wait = wait.max(seconds_until_one(bucket.tokens, rate));
            }
        }
        if wait > 0 {
            return Err(wait);
        }
        for network in &networks {
            let rate = self.rate(*network);
            let mut shard = lock(self.shard(network));
            // Another mint may have taken the last token since the check: the bucket goes
            // below zero (a debt repaid by the refill), never lets more through than one.
            refilled(&mut shard, *network, rate, now).tokens -= 1.0;
        }
        Ok(())
    }

    /// Networks remembered (at most `SHARDS x (per_shard + 1)`).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The network's bucket refilled up to `now` (created full when new, evicting the least
/// recently used bucket of a full table).
fn refilled(
    shard: &mut LruCache<MintNetwork, Bucket>,
    network: MintNetwork,
    rate: Rate,
    now: Instant,
) -> &mut Bucket {
    let capacity = f64::from(rate.requests);
    let per_second = capacity / rate.per.as_secs_f64().max(0.001);
    // `entry` evicts the least recently used bucket of a full table first (so a table holds
    // at most one more than its capacity); `or_insert` marks this one most recently used.
    let bucket = shard.entry(network).or_insert(Bucket {
        tokens: capacity,
        at: now,
    });
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
    bucket.at = now.max(bucket.at);
    bucket
}

fn seconds_until_one(tokens: f64, rate: Rate) -> u32 {
    let per_second = f64::from(rate.requests) / rate.per.as_secs_f64().max(0.001);
    let wait = ((1.0 - tokens) / per_second).ceil();
    if wait.is_finite() && wait >= 1.0 {
        wait.min(3600.0) as u32
    } else {
        1
    }
}

/// Work all clients together may cause per second on this replica: a token bucket holding one
/// second's budget. Used for challenges (a wave of fresh networks cannot turn into unbounded
/// invoices on the node) and for payment lookups (empty-proof pay credentials cannot turn into
/// unbounded lookups on the node). One lock, O(1) work.
pub struct PerSecondBudget {
    per_second: f64,
    state: Mutex<(f64, Instant)>,
}

impl PerSecondBudget {
    pub fn new(per_second: u32, now: Instant) -> PerSecondBudget {
        let per_second = f64::from(per_second.max(1));
        PerSecondBudget {
            per_second,
            state: Mutex::new((per_second, now)),
        }
    }

    /// Takes one unit from the budget; `Err(seconds)` (always 1: it refills every second) when
    /// spent.
    pub fn take(&self, now: Instant) -> Result<(), u32> {
        let mut state = lock(&self.state);
        let (tokens, at) = *state;
        let elapsed = now.saturating_duration_since(at).as_secs_f64();
        let tokens = (tokens + elapsed * self.per_second).min(self.per_second);
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now.max(at));
            Ok(())
        } else {
            *state = (tokens, now.max(at));
            Err(1)
        }
    }
}

/// The network a deposit is recorded under (the held caps count per network):
/// `203.0.113.0/24` or `2001:db8:1::/48`. IPv4-mapped IPv6 addresses count as IPv4.
pub fn client_prefix(ip: IpAddr) -> String {
    match unmapped(ip) {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            format!("{net}/48")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn prefixes_group_a_subscriber_network() {
        assert_eq!(
            client_prefix("203.0.113.77".parse().unwrap()),
            "203.0.113.0/24"
        );
        assert_eq!(
            client_prefix("2001:db8:1:2:3::9".parse().unwrap()),
            "2001:db8:1::/48"
        );
        assert_eq!(
            client_prefix("::ffff:198.51.100.7".parse().unwrap()),
            "198.51.100.0/24"
        );
    }

    /// A deposit's recorded prefix falls in the same provider network as the address it was
    /// minted for, the network the mint budget share counted it under.
    #[test]
    fn a_recorded_prefix_is_in_the_provider_network_of_its_address() {
        for address in [
            "203.0.113.77",
            "::ffff:198.51.100.7",
            "2001:db8:1:2:3::9",
            "2001:db8:ffff:ffff::1",
        ] {
            let ip: IpAddr = address.parse().unwrap();
            let provider = provider_network_of_prefix(&client_prefix(ip));
            assert_eq!(provider, provider_network(ip), "{address}");
            assert_eq!(Some(&provider), mint_networks(ip, 32).last(), "{address}");
        }
        assert_eq!(
            provider_network_of_prefix("2001:db8:1::/48"),
            MintNetwork::V6Provider(0x2001_0db8)
        );
        assert_eq!(
            provider_network_of_prefix("203.0.113.0/24"),
            MintNetwork::V4Provider(0xcb00)
        );
        assert_eq!(
            provider_network_of_prefix("garbage"),
            MintNetwork::V4Provider(0)
        );
    }

    fn limits(requests: u32, prefix: u8) -> LimitsConfig {
        LimitsConfig {
            challenge_mint_rate: Rate {
                requests,
                per: Duration::from_secs(10),
            },
            ipv4_prefix_len: prefix,
            ..LimitsConfig::default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_bucket_allows_a_burst_then_refills() {
        let limiter = MintLimiter::new(&limits(2, 32));
        let t0 = Instant::now();
        assert!(limiter.take(ip("192.0.2.1"), t0).is_ok());
        assert!(limiter.take(ip("192.0.2.1"), t0).is_ok());
        assert_eq!(limiter.take(ip("192.0.2.1"), t0), Err(5));
        assert!(
            limiter.take(ip("192.0.2.2"), t0).is_ok(),
            "per address at /32"
        );
        assert!(
            limiter
                .take(ip("192.0.2.1"), t0 + Duration::from_secs(5))
                .is_ok()
        );
    }

    #[test]
    fn ipv4_counts_per_configured_prefix() {
        let limiter = MintLimiter::new(&limits(2, 24));
        let t0 = Instant::now();
        assert!(limiter.take(ip("198.51.100.1"), t0).is_ok());
        assert!(limiter.take(ip("::ffff:198.51.100.2"), t0).is_ok());
        assert!(limiter.take(ip("198.51.100.3"), t0).is_err());
        assert!(limiter.take(ip("198.51.101.3"), t0).is_ok());
    }

    #[test]
    fn rotating_addresses_inside_one_ipv6_64_share_its_bucket() {
        let limiter = MintLimiter::new(&limits(3, 32));
        let t0 = Instant::now();
        for host in 1..=3u16 {
            let addr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, host, 7, 7, host);
            assert!(limiter.take(IpAddr::V6(addr), t0).is_ok());
        }
        assert!(limiter.take(ip("2001:db8:1:2:ffff::1"), t0).is_err());
        assert!(limiter.take(ip("2001:db8:1:3::1"), t0).is_ok(), "next /64");
    }

    #[test]
    fn rotating_64s_inside_one_48_meet_its_limit_and_a_refusal_costs_nothing() {
        let config = LimitsConfig {
            challenge_mint_rate_ipv6_48: Some(Rate {
                requests: 4,
                per: Duration::from_secs(10),
            }),
            ..limits(3, 32)
        };
        let limiter = MintLimiter::new(&config);
        let t0 = Instant::now();
        for lan in 0..4u16 {
            let addr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 9, lan, 0, 0, 0, 1);
            assert!(limiter.take(IpAddr::V6(addr), t0).is_ok(), "{lan}");
        }
        assert!(limiter.take(ip("2001:db8:9:ff::1"), t0).is_err());
        assert!(limiter.take(ip("2001:db8:a::1"), t0).is_ok(), "next /48");
        // The refused /64 kept its tokens: once the /48 refills it mints at once.
        let later = t0 + Duration::from_secs(3);
        assert!(limiter.take(ip("2001:db8:9:ff::1"), later).is_ok());
    }

    /// The soak's flood (docs/reliability.md "Soak"): one provider's /32, a fresh /64 for every
    /// request and 100 /64s per /48, so no /64 or /48 limit ever bites. It gets its share of
    /// the budget, no more; a visitor from elsewhere is still minted for.
    #[test]
    fn a_flood_from_one_provider_takes_only_its_share_of_the_budget() {
        let config = LimitsConfig {
            challenge_mint_budget_per_s: 1000,
            challenge_mint_budget_share_pct: 10,
            ..limits(120, 32)
        };
        let limiter = MintLimiter::new(&config);
        let t0 = Instant::now();
        let minted = (0..1700u32)
            .filter(|i| {
                let addr = std::net::Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    (i / 100) as u16,
                    (i % 100) as u16,
                    0,
                    0,
                    0,
                    1,
                );
                limiter.take(IpAddr::V6(addr), t0).is_ok()
            })
            .count();
        assert_eq!(minted, 100, "the /32's share of one second's budget");
        assert_eq!(limiter.take(ip("2001:db8:ffff:1::1"), t0), Err(1));
        assert!(limiter.take(ip("127.0.0.1"), t0).is_ok(), "another network");
        assert!(
            limiter.take(ip("2001:db9::1"), t0).is_ok(),
            "another provider"
        );
        assert!(
            limiter
                .take(ip("2001:db8:ffff:1::1"), t0 + Duration::from_millis(10))
                .is_ok(),
            "refills at its share per second"
        );
        // IPv4: a /16 the same.
        let v4_minted = (0..300u32)
            .filter(|i| {
                let addr = Ipv4Addr::new(198, 51, (i / 250) as u8, (i % 250) as u8);
                limiter.take(IpAddr::V4(addr), t0).is_ok()
            })
            .count();
        assert_eq!(v4_minted, 100);
    }

    #[test]
    fn memory_is_bounded_and_a_busy_network_keeps_its_count() {
        let per_shard = 8;
        let limiter = MintLimiter::with_capacity(&limits(2, 32), per_shard);
        let t0 = Instant::now();
        let busy = ip("203.0.113.7");
        assert!(limiter.take(busy, t0).is_ok());
        assert!(limiter.take(busy, t0).is_ok());
        for i in 0..100_000u32 {
            let addr = std::net::Ipv6Addr::from(u128::from(i) << 64 | 1);
            let _ = limiter.take(IpAddr::V6(addr), t0);
            if i % 4 == 0 {
                // Still refused: a bucket in use is the last one evicted.
                assert!(limiter.take(busy, t0).is_err(), "{i}");
            }
        }
        assert!(
            limiter.len() <= SHARDS * (per_shard + 1),
            "{}",
            limiter.len()
        );
    }

    #[test]
    fn the_global_budget_refuses_beyond_its_rate_and_refills_every_second() {
        let t0 = Instant::now();
        let budget = PerSecondBudget::new(3, t0);
        for _ in 0..3 {
            assert!(budget.take(t0).is_ok());
        }
        assert_eq!(budget.take(t0), Err(1));
        assert!(budget.take(t0 + Duration::from_millis(400)).is_ok());
        assert_eq!(budget.take(t0 + Duration::from_millis(400)), Err(1));
        let t1 = t0 + Duration::from_secs(5);
        for _ in 0..3 {
            assert!(budget.take(t1).is_ok());
        }
        assert!(
            budget.take(t1).is_err(),
            "never more than one second's budget"
        );
    }
}
