//! The macaroon signature chain (go-macaroon / libmacaroons key derivation, docs/wire-format.md
//! "Signature chain"). Signatures are compared only in constant time; nothing here may log.

use crate::hmac_sha256::hmac_once;
use crate::keys::{KeyGenerator, RootKey};

/// HMAC-SHA256 keyed with the previous link, over `data`.
fn link(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    hmac_once(key, data)
}

/// sig0 = HMAC(HMAC("macaroons-key-generator", root), identifier); sig_i = HMAC(sig_i-1, caveat_i).
pub(crate) fn signature<'c>(
    generator: &KeyGenerator,
    root: &RootKey,
    identifier: &[u8],
    caveats: impl Iterator<Item = &'c [u8]>,
) -> [u8; 32] {
    let mut sig = link(&generator.chain_key(root), identifier);
    for caveat in caveats {
        sig = link(&sig, caveat);
    }
    sig
}

/// Extends a chain by one first-party caveat (attenuation needs no root key).
pub(crate) fn extend(signature: &[u8; 32], caveat: &[u8]) -> [u8; 32] {
    link(signature, caveat)
}

/// Constant-time equality (`subtle`), so timing does not reveal how many bytes matched.
pub(crate) fn signatures_match(a: &[u8; 32], b: &[u8; 32]) -> bool {
    crate::keys::ct_eq_32(a, b)
}
