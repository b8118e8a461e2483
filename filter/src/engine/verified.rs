//! Per-worker cache of credentials that passed full verification, so a returning visitor costs
//! one digest and a lookup instead of the HMAC chain. Keyed by SHA-256 of the exact credential
//! bytes, where they came from and the method: two different credentials share a key only
//! through a SHA-256 collision, so the key alone identifies the bytes and nothing else is kept
//! of them. Entries are fixed-size whatever the credential's length, so the cache's memory is
//! bounded by [`CAPACITY`] alone (docs/filter.md "Verified-credential cache"). A hit still
//! answers to the request: route, mode and expiry are checked again, and the caller checks
//! revocation. A new policy (keys, service, routes) empties the cache.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;

use sha2::Digest;

use super::policy::RouteMode;
use super::revocations::TokenId;

/// Where the credential came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// `Authorization: L402|LSAT …`.
    Header,
    /// The `lightning-wall` cookie.
    Cookie,
}

/// Most entries per worker.
pub const CAPACITY: usize = 4096;

/// SHA-256 of (source, method, credential bytes): what a cache entry is found by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// The key of `credential` presented through `source` for `method`. The method is
    /// length-prefixed so that no (method, credential) pair can spell another.
    pub fn of(source: Source, credential: &[u8], method: &str) -> CacheKey {
        let tag: u8 = match source {
            Source::Header => 1,
            Source::Cookie => 2,
        };
        let method_len = u32::try_from(method.len()).unwrap_or(u32::MAX);
        CacheKey(
            sha2::Sha256::new()
                .chain_update([tag])
                .chain_update(method_len.to_be_bytes())
                .chain_update(method.as_bytes())
                .chain_update(credential)
                .finalize()
                .into(),
        )
    }
}

/// What a verified credential granted: a fixed-size value (no copy of the credential).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Token id.
    pub token_id: TokenId,
    /// Index of the route the token was verified for, in the policy in force (the cache is
    /// emptied when the policy changes, so the index stays meaningful).
    pub route: usize,
    /// The route's mode when it was verified.
    pub mode: RouteMode,
    /// Expiry, unix seconds (exclusive).
    pub valid_until: u64,
}

/// The cache of one worker.
#[derive(Debug, Default)]
pub struct VerifiedCache {
    /// The map's own hash of the key is SipHash with this worker's random keys: a client who
    /// grinds credentials for digests with equal low bits cannot pile them into one probe chain.
    entries: HashMap<CacheKey, Verified, RandomState>,
}

impl VerifiedCache {
    /// The cached grant of the credential behind `key` when it was verified for this route and
    /// mode and is still within its lifetime.
    pub fn get(&self, key: &CacheKey, route: usize, mode: RouteMode, now: u64) -> Option<Verified> {
        let v = self.entries.get(key)?;
        (v.route == route && v.mode == mode && now < v.valid_until).then_some(*v)
    }

    /// Remembers a credential that just verified. When full, an arbitrary entry goes (the map's
    /// order follows this worker's random hash keys).
    pub fn insert(&mut self, key: CacheKey, verified: Verified) {
        if self.entries.len() >= CAPACITY && !self.entries.contains_key(&key) {
            let victim = self.entries.keys().next().copied();
            if let Some(victim) = victim {
                self.entries.remove(&victim);
            }
        }
        self.entries.insert(key, verified);
    }

    /// Forgets everything (a new policy: keys may be gone, routes renumbered).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Source = Source::Header;

    fn v(route: usize, until: u64) -> Verified {
        Verified {
            token_id: [1; 32],
            route,
            mode: RouteMode::Pay,
            valid_until: until,
        }
    }

    fn key(credential: &[u8], method: &str) -> CacheKey {
        CacheKey::of(H, credential, method)
    }

    #[test]
    fn a_hit_needs_the_same_bytes_source_method_route_mode_and_an_unexpired_token() {
        let mut c = VerifiedCache::default();
        c.insert(key(b"L402 abc:def", "GET"), v(0, 100));
        let hit = |k: CacheKey, route, mode, now| c.get(&k, route, mode, now).is_some();
        assert!(hit(key(b"L402 abc:def", "GET"), 0, RouteMode::Pay, 99));
        assert!(!hit(key(b"L402 abc:deg", "GET"), 0, RouteMode::Pay, 99));
        assert!(!hit(key(b"L402 abc:def", "POST"), 0, RouteMode::Pay, 99));
        assert!(!hit(key(b"L402 abc:def", "GET"), 1, RouteMode::Pay, 99));
        assert!(!hit(key(b"L402 abc:def", "GET"), 0, RouteMode::Deposit, 99));
        assert!(!hit(key(b"L402 abc:def", "GET"), 0, RouteMode::Pay, 100));
        let cookie = CacheKey::of(Source::Cookie, b"L402 abc:def", "GET");
        assert!(!hit(cookie, 0, RouteMode::Pay, 99));
    }

    #[test]
    fn the_method_and_the_credential_cannot_spell_each_other() {
        assert_ne!(key(b"Tx", "GE"), key(b"x", "GET"));
        assert_ne!(key(b"", "GET"), key(b"GET", ""));
    }

    #[test]
    fn the_cache_stays_bounded_and_clear_empties_it() {
        let mut c = VerifiedCache::default();
        for i in 0..(CAPACITY + 100) {
            c.insert(key(i.to_string().as_bytes(), "GET"), v(0, 100));
        }
        assert_eq!(c.len(), CAPACITY);
        let last = (CAPACITY + 99).to_string();
        assert!(
            c.get(&key(last.as_bytes(), "GET"), 0, RouteMode::Pay, 1)
                .is_some()
        );
        c.clear();
        assert!(c.is_empty());
    }
}
