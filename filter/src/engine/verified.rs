//! Per-worker cache of credentials that passed full verification, so a returning visitor costs a
//! keyed hash, a comparison and a lookup instead of the HMAC chain. An entry is found by a
//! hash seeded at random per worker ([`lookup_hash`]) of where the credential came from, the
//! method and the exact credential bytes, and then *identified* by those same bytes: either kept
//! in the entry and compared in full, in constant time, or — for a long credential, or once the
//! bytes kept reach [`KEPT_BYTES`] — by their SHA-256, computed again on each hit. The lookup hash
//! alone is never trusted: two credentials sharing it only displace each other. So memory is
//! bounded by [`CAPACITY`] fixed-size entries plus [`KEPT_BYTES`] (docs/filter.md
//! "Verified-credential cache"), and the common credential (a few hundred bytes) is found
//! without a SHA-256 on every request, the paid hot path's largest cost when every entry was a
//! digest (bench/RESULTS.md "The paid hot path's regression"). A hit still answers to the
//! request: route, mode and expiry are checked again, and the caller checks revocation. A new
//! policy (keys, service, routes) empties the cache.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

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

/// Longest credential kept as bytes (with its source and method); a longer one is kept as its
/// digest. A credential in an `Authorization` header is ~400 bytes; a cookie header carries the
/// site's other cookies too.
pub const KEPT_MAX: usize = 1024;

/// Most credential bytes kept per worker, over all entries: past it new entries are digests,
/// so a client presenting many distinct valid credentials (caveats appended to one paid token)
/// cannot grow the cache past this plus the fixed-size entries.
pub const KEPT_BYTES: usize = 256 * 1024;

/// What a credential is found by and identified by: the bytes a digest would be computed over
/// (a source tag, the method's length and the method, then the credential), with their keyed
/// lookup hash.
#[derive(Clone, Copy, Debug)]
pub struct Presented<'a> {
    tag: u8,
    method: &'a str,
    credential: &'a [u8],
    lookup: u64,
}

impl Presented<'_> {
    /// Length of the identifying bytes.
    fn len(&self) -> usize {
        PREFIX + self.method.len() + self.credential.len()
    }

    /// The method's length as it is spelled in the identifying bytes. Length-prefixed so that
    /// no (method, credential) pair can spell another.
    fn method_len(&self) -> [u8; 4] {
        u32::try_from(self.method.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes()
    }

    /// The identifying bytes, to keep.
    fn to_bytes(self) -> Box<[u8]> {
        let mut bytes = Vec::with_capacity(self.len());
        bytes.push(self.tag);
        bytes.extend_from_slice(&self.method_len());
        bytes.extend_from_slice(self.method.as_bytes());
        bytes.extend_from_slice(self.credential);
        bytes.into_boxed_slice()
    }

    /// SHA-256 of the identifying bytes.
    fn digest(&self) -> [u8; 32] {
        sha2::Sha256::new()
            .chain_update([self.tag])
            .chain_update(self.method_len())
            .chain_update(self.method.as_bytes())
            .chain_update(self.credential)
            .finalize()
            .into()
    }

    /// Whether `kept` are this credential's identifying bytes, in a time that depends only on
    /// the lengths.
    fn is(&self, kept: &[u8]) -> bool {
        if kept.len() != self.len() {
            return false;
        }
        let Some((head, rest)) = kept.split_at_checked(PREFIX) else {
            return false;
        };
        let Some((method, credential)) = rest.split_at_checked(self.method.len()) else {
            return false;
        };
        let len = self.method_len();
        let prefix = [self.tag, len[0], len[1], len[2], len[3]];
        let diff = differences(head, &prefix)
            | differences(method, self.method.as_bytes())
            | differences(credential, self.credential);
        core::hint::black_box(diff) == 0
    }
}

/// Bytes before the method in the identifying bytes: the source tag and the method's length.
const PREFIX: usize = 5;

/// The OR of the XOR of `a` and `b` (same length), word by word: zero when they are equal.
/// Branch-free over the contents; only the result passes a barrier, once, in [`Presented::is`]
/// (a barrier on every byte, as `subtle` puts, is a round trip through linear memory in wasm).
fn differences(a: &[u8], b: &[u8]) -> u64 {
    let (a_words, b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail = a_words
        .remainder()
        .iter()
        .zip(b_words.remainder())
        .fold(0u64, |acc, (x, y)| acc | u64::from(x ^ y));
    let word = |c: &[u8]| <[u8; 8]>::try_from(c).map_or(0, u64::from_ne_bytes);
    a_words
        .zip(b_words)
        .fold(tail, |acc, (x, y)| acc | (word(x) ^ word(y)))
}

/// How an entry identifies its credential.
#[derive(Debug)]
enum Identity {
    /// The identifying bytes themselves.
    Kept(Box<[u8]>),
    /// Their SHA-256: two different credentials share it only through a collision.
    Digest([u8; 32]),
}

impl Identity {
    fn kept_len(&self) -> usize {
        match self {
            Identity::Kept(bytes) => bytes.len(),
            Identity::Digest(_) => 0,
        }
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

#[derive(Debug)]
struct Entry {
    identity: Identity,
    verified: Verified,
}

/// The lookup hash of the identifying bytes: word at a time, from a seed random per worker.
/// It only finds an entry, never identifies one, so it need not resist a client: credentials
/// made to share it only displace each other (one entry per lookup hash), aiming at another
/// visitor's entry needs that visitor's credential, and the map hashes it again with its own
/// random keys (SipHash), so probe chains cannot be aimed either. SipHash over the whole
/// credential cost ~2,800 wasm instructions per request; this is a multiply and a shift per
/// 8 bytes. Two inputs of one length that differ in one word never share it (each step is a
/// bijection of the state).
fn lookup_hash(seed: u64, tag: u8, method: &str, credential: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let step = |h: u64, word: u64| {
        let h = (h ^ word).wrapping_mul(K);
        h ^ (h >> 32)
    };
    let len = u64::try_from(method.len() ^ (credential.len() << 16)).unwrap_or(u64::MAX);
    let mut h = step(seed ^ u64::from(tag), len);
    for part in [method.as_bytes(), credential] {
        let words = part.chunks_exact(8);
        let tail = words.remainder();
        for w in words {
            h = step(h, <[u8; 8]>::try_from(w).map_or(0, u64::from_le_bytes));
        }
        let mut last = [0u8; 8];
        if let Some(dst) = last.get_mut(..tail.len()) {
            dst.copy_from_slice(tail);
        }
        h = step(h, u64::from_le_bytes(last));
    }
    step(h, seed)
}

/// The cache of one worker.
#[derive(Debug)]
pub struct VerifiedCache {
    /// By lookup hash ([`lookup_hash`]), which the map hashes again with its own random keys.
    entries: HashMap<u64, Entry>,
    /// This worker's [`lookup_hash`] seed.
    seed: u64,
    /// Credential bytes kept over all entries (at most [`KEPT_BYTES`]).
    kept: usize,
}

impl Default for VerifiedCache {
    fn default() -> Self {
        VerifiedCache {
            entries: HashMap::new(),
            // The standard library's per-process random keys (the host's random_get).
            seed: RandomState::new().hash_one(0x6c77_u16),
            kept: 0,
        }
    }
}

impl VerifiedCache {
    /// The credential `credential` presented through `source` for `method`, with its lookup
    /// hash.
    pub fn presented<'a>(
        &self,
        source: Source,
        credential: &'a [u8],
        method: &'a str,
    ) -> Presented<'a> {
        let tag: u8 = match source {
            Source::Header => 1,
            Source::Cookie => 2,
        };
        Presented {
            tag,
            method,
            credential,
            lookup: lookup_hash(self.seed, tag, method, credential),
        }
    }

    /// The cached grant of `presented` when exactly these bytes (source, method, credential)
    /// were verified for this route and mode and the token is still within its lifetime.
    pub fn get(
        &self,
        presented: &Presented<'_>,
        route: usize,
        mode: RouteMode,
        now: u64,
    ) -> Option<Verified> {
        let e = self.entries.get(&presented.lookup)?;
        let same = match &e.identity {
            Identity::Kept(bytes) => presented.is(bytes),
            Identity::Digest(digest) => differences(&presented.digest(), digest) == 0,
        };
        let v = e.verified;
        (same && v.route == route && v.mode == mode && now < v.valid_until).then_some(v)
    }

    /// Remembers a credential that just verified. When full, an arbitrary entry goes (the map's
    /// order follows this worker's random hash keys); an entry under the same lookup hash (the
    /// same credential, or a collision) is replaced.
    pub fn insert(&mut self, presented: &Presented<'_>, verified: Verified) {
        if let Some(old) = self.entries.remove(&presented.lookup) {
            self.kept = self.kept.saturating_sub(old.identity.kept_len());
        }
        if self.entries.len() >= CAPACITY {
            let victim = self.entries.keys().next().copied();
            if let Some(old) = victim.and_then(|k| self.entries.remove(&k)) {
                self.kept = self.kept.saturating_sub(old.identity.kept_len());
            }
        }
        let len = presented.len();
        let identity = if len <= KEPT_MAX && self.kept.saturating_add(len) <= KEPT_BYTES {
            self.kept += len;
            Identity::Kept(presented.to_bytes())
        } else {
            Identity::Digest(presented.digest())
        };
        self.entries
            .insert(presented.lookup, Entry { identity, verified });
    }

    /// Forgets everything (a new policy: keys may be gone, routes renumbered).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.kept = 0;
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Credential bytes kept over all entries.
    pub fn kept_bytes(&self) -> usize {
        self.kept
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

    fn insert(c: &mut VerifiedCache, credential: &[u8], method: &str, verified: Verified) {
        let p = c.presented(H, credential, method);
        c.insert(&p, verified);
    }

    fn hit(c: &VerifiedCache, credential: &[u8], method: &str) -> bool {
        c.get(&c.presented(H, credential, method), 0, RouteMode::Pay, 1)
            .is_some()
    }

    #[test]
    fn a_hit_needs_the_same_bytes_source_method_route_mode_and_an_unexpired_token() {
        let mut c = VerifiedCache::default();
        insert(&mut c, b"L402 abc:def", "GET", v(0, 100));
        let hit = |source, credential: &[u8], method, route, mode, now| {
            c.get(&c.presented(source, credential, method), route, mode, now)
                .is_some()
        };
        assert!(hit(H, b"L402 abc:def", "GET", 0, RouteMode::Pay, 99));
        assert!(!hit(H, b"L402 abc:deg", "GET", 0, RouteMode::Pay, 99));
        assert!(!hit(H, b"L402 abc:def", "POST", 0, RouteMode::Pay, 99));
        assert!(!hit(H, b"L402 abc:def", "GET", 1, RouteMode::Pay, 99));
        assert!(!hit(H, b"L402 abc:def", "GET", 0, RouteMode::Deposit, 99));
        assert!(!hit(H, b"L402 abc:def", "GET", 0, RouteMode::Pay, 100));
        assert!(!hit(
            Source::Cookie,
            b"L402 abc:def",
            "GET",
            0,
            RouteMode::Pay,
            99
        ));
    }

    #[test]
    fn the_method_and_the_credential_cannot_spell_each_other() {
        let c = VerifiedCache::default();
        let bytes = |credential: &[u8], method| c.presented(H, credential, method).to_bytes();
        assert_ne!(bytes(b"Tx", "GE"), bytes(b"x", "GET"));
        assert_ne!(bytes(b"", "GET"), bytes(b"GET", ""));
        let kept = bytes(b"x", "GET");
        assert!(c.presented(H, b"x", "GET").is(&kept));
        assert!(!c.presented(H, b"Tx", "GE").is(&kept));
        assert!(!c.presented(Source::Cookie, b"x", "GET").is(&kept));
    }

    #[test]
    fn the_lookup_hash_sees_every_byte_the_method_the_source_and_the_seed() {
        let credential: Vec<u8> = (0..=255).collect();
        let h = |c: &[u8]| lookup_hash(7, 1, "GET", c);
        let base = h(&credential);
        for i in 0..credential.len() {
            let mut other = credential.clone();
            other[i] ^= 0x01;
            assert_ne!(h(&other), base, "a difference at byte {i}");
        }
        assert_ne!(h(&credential[..255]), base);
        assert_ne!(lookup_hash(7, 1, "POST", &credential), base);
        assert_ne!(lookup_hash(7, 2, "GET", &credential), base);
        assert_ne!(lookup_hash(8, 1, "GET", &credential), base);
        assert_ne!(
            lookup_hash(7, 1, "GE", b"Tx"),
            lookup_hash(7, 1, "GET", b"x")
        );
    }

    #[test]
    fn a_kept_credential_is_compared_in_full_every_byte() {
        let c = VerifiedCache::default();
        let credential: Vec<u8> = (0..=255).collect();
        let kept = c.presented(H, &credential, "GET").to_bytes();
        assert!(c.presented(H, &credential, "GET").is(&kept));
        for i in 0..credential.len() {
            let mut other = credential.clone();
            other[i] ^= 0x80;
            assert!(
                !c.presented(H, &other, "GET").is(&kept),
                "a difference at byte {i}"
            );
        }
        assert!(!c.presented(H, &credential[..255], "GET").is(&kept));
    }

    /// Plants `real`'s entry under the lookup hash of `forged`, as a collision of the lookup
    /// hash would: the entry must not grant `forged`, kept as bytes or as a digest.
    fn colliding_entry_grants(real: &[u8], forged: &[u8]) -> bool {
        let mut c = VerifiedCache::default();
        insert(&mut c, real, "GET", v(0, 100));
        assert!(hit(&c, real, "GET"));
        let real_key = c.presented(H, real, "GET").lookup;
        let forged_key = c.presented(H, forged, "GET").lookup;
        let entry = c.entries.remove(&real_key).unwrap();
        c.entries.insert(forged_key, entry);
        hit(&c, forged, "GET")
    }

    #[test]
    fn a_colliding_lookup_hash_never_grants_other_bytes() {
        // Short: kept as bytes.
        assert!(!colliding_entry_grants(
            b"L402 real:proof",
            b"L402 forged:proof"
        ));
        // Longer than KEPT_MAX: kept as a digest.
        let real = vec![b'r'; KEPT_MAX + 1];
        let forged = vec![b'f'; KEPT_MAX + 1];
        assert!(!colliding_entry_grants(&real, &forged));
    }

    #[test]
    fn long_credentials_are_kept_as_digests_and_still_found() {
        let mut c = VerifiedCache::default();
        let long = vec![b'x'; KEPT_MAX + 1];
        insert(&mut c, &long, "GET", v(0, 100));
        assert_eq!(c.kept_bytes(), 0, "a digest, not the bytes");
        assert!(hit(&c, &long, "GET"));
        let mut other = long.clone();
        other[KEPT_MAX] = b'y';
        assert!(!hit(&c, &other, "GET"));
    }

    #[test]
    fn kept_bytes_stay_within_their_budget_then_entries_are_digests() {
        let mut c = VerifiedCache::default();
        let credential = |i: usize| format!("{i:0>1000}");
        let each = c.presented(H, credential(0).as_bytes(), "GET").len();
        let fit = KEPT_BYTES / each;
        for i in 0..fit + 100 {
            insert(&mut c, credential(i).as_bytes(), "GET", v(0, 100));
            assert!(c.kept_bytes() <= KEPT_BYTES);
        }
        assert_eq!(c.kept_bytes(), fit * each);
        // Past the budget: digests, found all the same.
        for i in [0, fit - 1, fit, fit + 99] {
            assert!(hit(&c, credential(i).as_bytes(), "GET"), "credential {i}");
        }
        // Replacing an entry counts its bytes once.
        insert(&mut c, credential(0).as_bytes(), "GET", v(0, 100));
        assert_eq!(c.kept_bytes(), fit * each);
        c.clear();
        assert_eq!(c.kept_bytes(), 0);
        assert!(c.is_empty());
    }

    #[test]
    fn the_cache_stays_bounded_and_eviction_returns_kept_bytes() {
        let mut c = VerifiedCache::default();
        for i in 0..(CAPACITY + 100) {
            insert(&mut c, i.to_string().as_bytes(), "GET", v(0, 100));
        }
        assert_eq!(c.len(), CAPACITY);
        let kept: usize = c.entries.values().map(|e| e.identity.kept_len()).sum();
        assert_eq!(
            c.kept_bytes(),
            kept,
            "evicted entries' bytes are given back"
        );
        let last = (CAPACITY + 99).to_string();
        assert!(hit(&c, last.as_bytes(), "GET"));
        c.clear();
        assert!(c.is_empty());
    }
}
