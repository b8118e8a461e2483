//! HMAC-SHA256 (RFC 2104) over `sha2`'s block function, for the verifier's hot path: a keyed
//! state is two SHA-256 states that are copied, not rebuilt, and a short message costs exactly
//! two blocks. The generic `hmac` crate moves buffers around enough to cost ~70 ns per chain
//! link (measured: 230 ns vs 155 ns per link, 7 links per credential), a third of the 2 µs budget.
//! Its output is checked against the `hmac` crate in the tests below; it must never diverge.

use zeroize::Zeroize;

/// SHA-256 initial hash value (FIPS 180-4 §5.3.3).
const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];
const BLOCK: usize = 64;

fn compress(state: &mut [u32; 8], blocks: &[[u8; BLOCK]]) {
    for block in blocks {
        // A reference cast (generic-array's `From<&[T; 64]>`), not a copy: copying the block
        // into a fresh array right before the compression function reads it stalled on store
        // forwarding.
        let block: &sha2::digest::generic_array::GenericArray<u8, _> = block.into();
        sha2::compress256(state, core::slice::from_ref(block));
    }
}

/// Hashes the final part of a message whose first `prefix_len` bytes are already in `state`:
/// `tail` (any length), then the padding and the 64-bit big-endian bit length (FIPS 180-4 §5.1.1).
fn finish(mut state: [u32; 8], tail: &[u8], prefix_len: usize) -> [u8; 32] {
    let (blocks, rest) = tail.as_chunks::<BLOCK>();
    compress(&mut state, blocks);
    // `rest` is shorter than one block, so it, the 0x80 marker and the length fit in two.
    // (Slice copies, not byte loops: this runs twice per chain link.)
    let mut last = [0u8; 2 * BLOCK];
    let end = if rest.len() < BLOCK - 8 {
        BLOCK
    } else {
        2 * BLOCK
    };
    let total_bits = ((prefix_len + tail.len()) as u64).wrapping_mul(8);
    if let Some(dst) = last.get_mut(..rest.len()) {
        dst.copy_from_slice(rest);
    }
    if let Some(marker) = last.get_mut(rest.len()) {
        *marker = 0x80;
    }
    if let Some(dst) = last.get_mut(end - 8..end) {
        dst.copy_from_slice(&total_bits.to_be_bytes());
    }
    let (last_blocks, _) = last.as_chunks::<BLOCK>();
    compress(
        &mut state,
        last_blocks.get(..end / BLOCK).unwrap_or_default(),
    );
    let mut out = [0u8; 32];
    for (dst, word) in out.chunks_exact_mut(4).zip(state) {
        dst.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// SHA-256 of `data` (the same function as `sha2::Sha256::digest`, without its buffering).
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    finish(IV, data, 0)
}

/// HMAC-SHA256 for one message under a key used once: a chain link. Unlike [`KeyedHmac`] it
/// does not wipe its states: the key is the previous link's signature, which lives unwiped in
/// the caller's frame anyway, and wiping cost ~10 ns per link.
pub(crate) fn hmac_once(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let (inner, outer) = absorb_key(key);
    let inner_hash = finish(inner, message, BLOCK);
    finish(outer, &inner_hash, BLOCK)
}

/// The inner and outer states after the `key ^ ipad` and `key ^ opad` blocks (RFC 2104 §2:
/// keys longer than a block are hashed first, shorter ones are padded with zeros).
fn absorb_key(key: &[u8]) -> ([u32; 8], [u32; 8]) {
    let mut block = [0u8; BLOCK];
    let digest;
    let key = if key.len() > BLOCK {
        digest = sha256(key);
        &digest[..]
    } else {
        key
    };
    if let Some(dst) = block.get_mut(..key.len()) {
        dst.copy_from_slice(key);
    }
    let (mut ipad, mut opad) = ([0x36u8; BLOCK], [0x5cu8; BLOCK]);
    for ((i, o), k) in ipad.iter_mut().zip(opad.iter_mut()).zip(block) {
        *i ^= k;
        *o ^= k;
    }
    let (mut inner, mut outer) = (IV, IV);
    compress(&mut inner, &[ipad]);
    compress(&mut outer, &[opad]);
    (inner, outer)
}

/// HMAC-SHA256 with its key absorbed: the states after the `key ^ ipad` and `key ^ opad` blocks.
#[derive(Clone)]
pub(crate) struct KeyedHmac {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl KeyedHmac {
    /// Keys the HMAC (two SHA-256 blocks, done once per key).
    pub(crate) fn new(key: &[u8]) -> Self {
        let (inner, outer) = absorb_key(key);
        Self { inner, outer }
    }

    /// HMAC of `message`.
    pub(crate) fn mac(&self, message: &[u8]) -> [u8; 32] {
        let inner = finish(self.inner, message, BLOCK);
        finish(self.outer, &inner, BLOCK)
    }

    /// HMAC of `prefix || message` with a short prefix (at most 16 bytes) and a message of at
    /// most 256 bytes, concatenated on the stack.
    pub(crate) fn mac2(&self, prefix: &[u8], message: &[u8]) -> [u8; 32] {
        let mut buf = [0u8; 16 + 256];
        let len = prefix.len() + message.len();
        if len > buf.len() {
            // Not reached by callers (a fixed tag and a bounded identifier); stay correct anyway.
            let mut joined = prefix.to_vec();
            joined.extend_from_slice(message);
            return self.mac(&joined);
        }
        for (dst, src) in buf.iter_mut().zip(prefix.iter().chain(message)) {
            *dst = *src;
        }
        let mac = self.mac(buf.get(..len).unwrap_or_default());
        buf.zeroize();
        mac
    }
}

impl Drop for KeyedHmac {
    fn drop(&mut self) {
        // The states are as good as the key for computing MACs.
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    fn reference(key: &[u8], message: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    #[test]
    fn rfc_4231_test_case_2_matches() {
        let mac = KeyedHmac::new(b"Jefe").mac(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn every_padding_boundary_matches_the_hmac_crate() {
        for key_len in [0, 1, 23, 32, 63, 64, 65, 200] {
            let key = vec![0xa5u8; key_len];
            for len in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 300] {
                let message: Vec<u8> = (0..len).map(|i| i as u8).collect();
                assert_eq!(
                    KeyedHmac::new(&key).mac(&message),
                    reference(&key, &message),
                    "key {key_len} message {len}"
                );
            }
        }
    }

    #[test]
    fn the_two_part_form_is_the_concatenation() {
        let k = KeyedHmac::new(&[7; 32]);
        let long = vec![3u8; 400];
        for message in [&b"id"[..], &[9; 66], &[1; 256], &long] {
            let mut joined = b"deposit".to_vec();
            joined.extend_from_slice(message);
            assert_eq!(k.mac2(b"deposit", message), reference(&[7; 32], &joined));
        }
    }

    proptest! {
        #[test]
        fn sha256_matches_the_sha2_crate(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(&sha256(&data)[..], &Sha256::digest(&data)[..]);
        }

        #[test]
        fn a_one_shot_link_matches_the_hmac_crate(key in any::<[u8; 32]>(), message in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(hmac_once(&key, &message), reference(&key, &message));
        }

        #[test]
        fn matches_the_hmac_crate(key in proptest::collection::vec(any::<u8>(), 0..100), message in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(KeyedHmac::new(&key).mac(&message), reference(&key, &message));
        }
    }
}
