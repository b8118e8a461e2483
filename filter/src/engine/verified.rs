//! Per-worker cache of credentials that passed full verification, so a returning visitor costs a
//! hash lookup instead of the HMAC chain. Found by a hash of the exact credential bytes and the
//! method, then confirmed by a constant-time comparison of the full bytes: the hash alone is
//! never trusted. A hit still answers to the request: route, mode, method and expiry are checked
//! again, and the caller checks revocation. A new policy (keys, service) empties the cache.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use super::decision::Source;
use super::policy::RouteMode;
use super::revocations::TokenId;

/// Most entries per worker (each holds a credential of a few hundred bytes).
pub const CAPACITY: usize = 4096;

/// What a verified credential granted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Token id.
    pub token_id: TokenId,
    /// Token id, lowercase hex (kept so a hit does not format it again).
    pub token_hex: String,
    /// Route the token is bound to.
    pub route: String,
    /// The route's mode when it was verified.
    pub mode: RouteMode,
    /// Expiry, unix seconds (exclusive).
    pub valid_until: u64,
}

#[derive(Debug)]
struct Entry {
    source: Source,
    credential: Box<[u8]>,
    method: Box<str>,
    verified: Verified,
}

/// Whether `a` and `b` are equal, in a time that depends only on their lengths.
///
/// Hand-written rather than `subtle`'s `ct_eq` or the `constant_time_eq` crate: both put an
/// optimisation barrier on every byte or word, which in wasm is a round trip through linear
/// memory, and this runs on every request over a few hundred bytes (it was the largest single
/// cost of the cached path). Here the differences are OR-ed into one word and only that word
/// passes a barrier before the single comparison. The bytes compared are only reached through
/// a keyed-hash match, so a timing difference would not be reachable anyway; this keeps the
/// comparison branch-free all the same.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail = a_words
        .remainder()
        .iter()
        .zip(b_words.remainder())
        .fold(0u64, |acc, (x, y)| acc | u64::from(x ^ y));
    let word = |c: &[u8]| <[u8; 8]>::try_from(c).map_or(0, u64::from_ne_bytes);
    let diff = a_words
        .zip(b_words)
        .fold(tail, |acc, (x, y)| acc | (word(x) ^ word(y)));
    core::hint::black_box(diff) == 0
}

/// The cache of one worker.
#[derive(Debug, Default)]
pub struct VerifiedCache {
    entries: HashMap<u64, Entry>,
    /// SipHash with this worker's random keys: a client cannot aim collisions.
    hasher: RandomState,
}

impl VerifiedCache {
    fn key(&self, source: Source, credential: &[u8], method: &str) -> u64 {
        self.hasher.hash_one((source, credential, method))
    }

    /// The cached grant of `credential` when it was verified for this route, mode and method
    /// and is still within its lifetime.
    pub fn get(
        &self,
        source: Source,
        credential: &[u8],
        method: &str,
        route: &str,
        mode: RouteMode,
        now: u64,
    ) -> Option<&Verified> {
        let e = self.entries.get(&self.key(source, credential, method))?;
        let same = same_bytes(&e.credential, credential);
        let v = &e.verified;
        (same
            && e.source == source
            && &*e.method == method
            && v.route == route
            && v.mode == mode
            && now < v.valid_until)
            .then_some(v)
    }

    /// Remembers a credential that just verified for `method`. When full, an arbitrary entry
    /// goes (the map's order is keyed by this worker's random hash keys).
    pub fn insert(&mut self, source: Source, credential: &[u8], method: &str, verified: Verified) {
        let key = self.key(source, credential, method);
        if self.entries.len() >= CAPACITY && !self.entries.contains_key(&key) {
            let victim = self.entries.keys().next().copied();
            if let Some(victim) = victim {
                self.entries.remove(&victim);
            }
        }
        self.entries.insert(
            key,
            Entry {
                source,
                credential: credential.into(),
                method: method.into(),
                verified,
            },
        );
    }

    /// Forgets everything (a new policy: keys may be gone).
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

    fn v(route: &str, until: u64) -> Verified {
        Verified {
            token_id: [1; 32],
            token_hex: "01".repeat(32),
            route: route.into(),
            mode: RouteMode::Pay,
            valid_until: until,
        }
    }

    #[test]
    fn a_hit_needs_the_same_bytes_method_route_mode_and_an_unexpired_token() {
        let mut c = VerifiedCache::default();
        c.insert(H, b"L402 abc:def", "GET", v("api", 100));
        assert!(
            c.get(H, b"L402 abc:def", "GET", "api", RouteMode::Pay, 99)
                .is_some()
        );
        assert!(
            c.get(H, b"L402 abc:deg", "GET", "api", RouteMode::Pay, 99)
                .is_none()
        );
        assert!(
            c.get(H, b"L402 abc:def", "POST", "api", RouteMode::Pay, 99)
                .is_none()
        );
        assert!(
            c.get(H, b"L402 abc:def", "GET", "other", RouteMode::Pay, 99)
                .is_none()
        );
        assert!(
            c.get(H, b"L402 abc:def", "GET", "api", RouteMode::Deposit, 99)
                .is_none()
        );
        assert!(
            c.get(H, b"L402 abc:def", "GET", "api", RouteMode::Pay, 100)
                .is_none()
        );
        assert!(
            c.get(
                Source::Cookie,
                b"L402 abc:def",
                "GET",
                "api",
                RouteMode::Pay,
                99
            )
            .is_none()
        );
    }

    #[test]
    fn same_bytes_compares_every_byte_and_the_length() {
        let a: Vec<u8> = (0..=255).collect();
        assert!(same_bytes(&a, &a.clone()));
        for i in 0..a.len() {
            let mut b = a.clone();
            b[i] ^= 0x80;
            assert!(!same_bytes(&a, &b), "a difference at byte {i}");
        }
        assert!(!same_bytes(&a, &a[..255]));
        assert!(same_bytes(b"", b""));
    }

    #[test]
    fn a_colliding_hash_never_grants_other_bytes() {
        let mut c = VerifiedCache::default();
        c.insert(H, b"real", "GET", v("api", 100));
        // Plant the entry under the hash of different bytes, as a collision would.
        let forged = c.key(H, b"forged", "GET");
        let real = c.key(H, b"real", "GET");
        let entry = c.entries.remove(&real).unwrap();
        c.entries.insert(forged, entry);
        assert!(
            c.get(H, b"forged", "GET", "api", RouteMode::Pay, 1)
                .is_none()
        );
    }

    #[test]
    fn the_cache_stays_bounded_and_clear_empties_it() {
        let mut c = VerifiedCache::default();
        for i in 0..(CAPACITY + 100) {
            c.insert(H, i.to_string().as_bytes(), "GET", v("api", 100));
        }
        assert_eq!(c.len(), CAPACITY);
        let last = (CAPACITY + 99).to_string();
        assert!(
            c.get(H, last.as_bytes(), "GET", "api", RouteMode::Pay, 1)
                .is_some()
        );
        c.clear();
        assert!(c.is_empty());
    }
}
