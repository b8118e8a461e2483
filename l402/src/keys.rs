//! Key material: master keys in a key ring, per-token root keys, deposit receipts, preimages.
//! Secret types redact their `Debug` output and zeroize their bytes on drop; they must never
//! gain a `Display`, a `Serialize` or a non-constant-time equality.

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::hmac_sha256::KeyedHmac;
use crate::identifier::Identifier;

/// Constant-time equality of two 32-byte values (`subtle`), compared as four `u64` words: the
/// byte-wise `[u8]` impl puts an optimisation barrier on every byte, which showed up at a few
/// percent of a whole verification.
pub(crate) fn ct_eq_32(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut equal = subtle::Choice::from(1u8);
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let (mut xw, mut yw) = ([0u8; 8], [0u8; 8]);
        xw.copy_from_slice(x);
        yw.copy_from_slice(y);
        equal &= u64::from_ne_bytes(xw).ct_eq(&u64::from_ne_bytes(yw));
    }
    equal.into()
}

/// Longest key id accepted (it travels in every token as the `lw_key` caveat).
pub const MAX_KEY_ID_LEN: usize = 32;

macro_rules! secret_32 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps 32 secret bytes.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The secret bytes. Callers must not log them.
            pub fn expose_secret(&self) -> &[u8; 32] {
                &self.0
            }

            /// Lowercase hex of the secret, for the places that must hand it out (a credential).
            pub fn expose_secret_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Constant-time comparison (`subtle`): the time taken does not depend on where
            /// the two values differ.
            pub fn ct_eq(&self, other: &Self) -> bool {
                ct_eq_32(&self.0, &other.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                self.0.zeroize();
            }
        }
    };
}

secret_32!(
    /// A master key of the key ring: every token's root key is derived from one.
    MasterKey
);
secret_32!(
    /// A token's root key: HMAC-SHA256(master key, sha256(identifier)).
    RootKey
);
secret_32!(
    /// Proof that a deposit is held: HMAC-SHA256(master key, "deposit" || identifier). The
    /// sidecar reveals it only once the hold invoice is accepted.
    DepositReceipt
);
secret_32!(
    /// Proof that a pay token's invoice settled, for payers whose wallet never shows them the
    /// preimage: HMAC-SHA256(master key, "pay" || identifier). The sidecar reveals it only once
    /// the node reports the invoice settled. The tag keeps it apart from the deposit receipt.
    PayReceipt
);
secret_32!(
    /// The preimage of a payment hash: proof of payment in `pay` mode.
    Preimage
);
secret_32!(
    /// The 32 bytes a credential presents after the `:`: a preimage in `pay` mode, a deposit
    /// receipt in `deposit` mode. Which one is decided by the token's mode, never by the client.
    Proof
);

impl Preimage {
    /// sha256(preimage), the payment hash the invoice commits to (BOLT 11 `p` field).
    pub fn payment_hash(&self) -> PaymentHash {
        PaymentHash(crate::hmac_sha256::sha256(&self.0))
    }
}

/// Lowercase hex of 32 bytes. Not `hex::encode`: its char-by-char iterator cost ~5,200 wasm
/// instructions per call, and the filter formats a token id on every paid request (the header
/// it forwards upstream); this fills a fixed buffer, a digit per nibble, then copies it once.
fn hex_32(bytes: &[u8; 32]) -> String {
    fn digit(nibble: u8) -> u8 {
        if nibble < 10 {
            b'0' + nibble
        } else {
            b'a' + (nibble - 10)
        }
    }
    let mut out = [0u8; 64];
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        if let [high, low] = pair {
            *high = digit(b >> 4);
            *low = digit(b & 0x0f);
        }
    }
    // Only ASCII digits and letters were written: never an error.
    core::str::from_utf8(&out)
        .map(str::to_owned)
        .unwrap_or_default()
}

macro_rules! public_32 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Lowercase hex.
            pub fn to_hex(&self) -> String {
                hex_32(&self.0)
            }

            /// Parses 64 hex characters (either case).
            pub fn from_hex(s: &str) -> Result<Self, hex::FromHexError> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out)?;
                Ok(Self(out))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.to_hex())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
    };
}

public_32!(
    /// The payment hash of the token's invoice (public: it is in the invoice).
    PaymentHash
);
public_32!(
    /// The random token id chosen by the minter (public: it names the token in logs and headers).
    TokenId
);

/// The id of a master key: 1 to 32 characters of `[A-Za-z0-9._-]`. Named by the `lw_key` caveat.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// Validates a key id.
    pub fn new(id: &str) -> Result<Self, KeyRingError> {
        if is_valid_key_id(id) {
            Ok(Self(id.to_owned()))
        } else {
            Err(KeyRingError::InvalidKeyId)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({:?})", self.0)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn is_valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Errors building a key ring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRingError {
    /// A key id outside `[A-Za-z0-9._-]{1,32}`.
    #[error("key id must be 1 to 32 characters of A-Z a-z 0-9 . _ -")]
    InvalidKeyId,
    /// The same key id was added twice.
    #[error("key id {0:?} is already in the key ring")]
    DuplicateKeyId(String),
}

/// The `HMAC("macaroons-key-generator", ·)` state, keyed once. go-macaroon and libmacaroons
/// derive the chain's first key as HMAC-SHA256(key = "macaroons-key-generator", msg = root key)
/// (docs/wire-format.md); keying HMAC costs two SHA-256 blocks, so we do it once.
#[derive(Clone)]
pub(crate) struct KeyGenerator(KeyedHmac);

impl KeyGenerator {
    pub(crate) fn new() -> Self {
        Self(KeyedHmac::new(b"macaroons-key-generator"))
    }

    /// HMAC-SHA256("macaroons-key-generator", root key): the key of the chain's first link.
    pub(crate) fn chain_key(&self, root: &RootKey) -> [u8; 32] {
        self.0.mac(&root.0)
    }
}

/// One master key and its keyed HMAC state (precomputed: every verification derives a root key).
#[derive(Clone)]
pub struct KeyEntry {
    id: KeyId,
    master: MasterKey,
    keyed: KeyedHmac,
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("id", &self.id)
            .field("master", &self.master)
            .finish_non_exhaustive()
    }
}

impl KeyEntry {
    fn new(id: KeyId, master: MasterKey) -> Self {
        let keyed = KeyedHmac::new(&master.0);
        Self { id, master, keyed }
    }

    /// The key id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The master key.
    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    /// The token's root key: HMAC-SHA256(master, sha256(identifier)) (docs/caveats.md "Keys"):
    /// every token gets its own key, as L402 requires, and stays verifiable without state.
    pub fn root_key(&self, identifier: &[u8]) -> RootKey {
        RootKey(self.keyed.mac(&crate::hmac_sha256::sha256(identifier)))
    }

    /// The deposit receipt of a token: HMAC-SHA256(master, "deposit" || identifier).
    pub fn deposit_receipt(&self, identifier: &Identifier) -> DepositReceipt {
        self.deposit_receipt_raw(&identifier.encode())
    }

    pub(crate) fn deposit_receipt_raw(&self, identifier: &[u8]) -> DepositReceipt {
        DepositReceipt(self.keyed.mac2(b"deposit", identifier))
    }

    /// The pay receipt of a token: HMAC-SHA256(master, "pay" || identifier).
    pub fn pay_receipt(&self, identifier: &Identifier) -> PayReceipt {
        self.pay_receipt_raw(&identifier.encode())
    }

    pub(crate) fn pay_receipt_raw(&self, identifier: &[u8]) -> PayReceipt {
        PayReceipt(self.keyed.mac2(b"pay", identifier))
    }
}

/// Master keys by id. Tokens name their key with the `lw_key` caveat, so keys rotate without
/// breaking live tokens; a forged key id only selects a key the signature then fails under.
#[derive(Clone)]
pub struct KeyRing {
    entries: Vec<KeyEntry>,
    pub(crate) generator: KeyGenerator,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field(
                "key_ids",
                &self.entries.iter().map(|e| &e.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for KeyRing {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyRing {
    /// An empty key ring.
    pub fn new() -> Self {
        Self {
            entries: Vec::new(),
            generator: KeyGenerator::new(),
        }
    }

    /// Adds a master key under a new id.
    pub fn insert(&mut self, id: KeyId, master: MasterKey) -> Result<(), KeyRingError> {
        if self.get(id.as_str()).is_some() {
            return Err(KeyRingError::DuplicateKeyId(id.0));
        }
        self.entries.push(KeyEntry::new(id, master));
        Ok(())
    }

    /// Builds a key ring from (id, 32-byte master key) pairs.
    pub fn from_keys<'a>(
        keys: impl IntoIterator<Item = (&'a str, [u8; 32])>,
    ) -> Result<Self, KeyRingError> {
        let mut ring = Self::new();
        for (id, bytes) in keys {
            ring.insert(KeyId::new(id)?, MasterKey::from_bytes(bytes))?;
        }
        Ok(ring)
    }

    /// The key with this id. A ring holds a handful of keys, so a linear scan beats hashing.
    pub fn get(&self, id: &str) -> Option<&KeyEntry> {
        self.entries.iter().find(|e| e.id.as_str() == id)
    }

    /// All keys, in insertion order.
    pub fn entries(&self) -> impl Iterator<Item = &KeyEntry> {
        self.entries.iter()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the ring has no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_hex_is_lowercase_hex_of_every_byte() {
        for start in [0u8, 32, 64, 96, 128, 160, 192, 224] {
            let mut bytes = [0u8; 32];
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = start.wrapping_add(u8::try_from(i).unwrap_or(0));
            }
            assert_eq!(TokenId(bytes).to_hex(), hex::encode(bytes));
        }
    }
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};

    type HmacSha256 = Hmac<Sha256>;

    #[test]
    fn constant_time_equality_sees_every_byte() {
        let a = [7u8; 32];
        assert!(ct_eq_32(&a, &a));
        for i in 0..32 {
            let mut b = a;
            b[i] ^= 0x80;
            assert!(!ct_eq_32(&a, &b), "byte {i}");
        }
    }

    #[test]
    fn secret_debug_output_is_redacted() {
        let k = MasterKey::from_bytes([0xab; 32]);
        let s = format!("{k:?}");
        assert_eq!(s, "MasterKey(<redacted>)");
        assert!(!format!("{:?}", Preimage::from_bytes([0xab; 32])).contains("ab"));
        let ring = KeyRing::from_keys([("k1", [0xab; 32])]).unwrap();
        let s = format!("{ring:?} {:?}", ring.get("k1").unwrap());
        assert!(!s.contains("abab"), "{s}");
        assert!(!s.contains("171"), "{s}");
    }

    #[test]
    fn root_key_is_hmac_of_master_over_sha256_of_identifier() {
        let ring = KeyRing::from_keys([("k1", [7; 32])]).unwrap();
        let id = b"some identifier";
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&[7; 32]).unwrap();
        mac.update(&Sha256::digest(id));
        let want: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(ring.get("k1").unwrap().root_key(id).expose_secret(), &want);
    }

    #[test]
    fn deposit_receipt_is_hmac_of_master_over_deposit_and_identifier() {
        let ring = KeyRing::from_keys([("k1", [7; 32])]).unwrap();
        let ident = Identifier::new(PaymentHash([1; 32]), TokenId([2; 32]));
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&[7; 32]).unwrap();
        mac.update(b"deposit");
        mac.update(&ident.encode());
        let want: [u8; 32] = mac.finalize().into_bytes().into();
        let got = ring.get("k1").unwrap().deposit_receipt(&ident);
        assert_eq!(got.expose_secret(), &want);
        assert!(got.ct_eq(&DepositReceipt::from_bytes(want)));
        assert!(!got.ct_eq(&DepositReceipt::from_bytes([0; 32])));
    }

    #[test]
    fn key_ids_are_validated_and_unique() {
        assert!(KeyId::new("2026-11.a_b").is_ok());
        for bad in ["", "a b", "a=b", "k,", &"x".repeat(33), "é"] {
            assert_eq!(KeyId::new(bad), Err(KeyRingError::InvalidKeyId), "{bad:?}");
        }
        let err = KeyRing::from_keys([("k", [1; 32]), ("k", [2; 32])]).unwrap_err();
        assert_eq!(err, KeyRingError::DuplicateKeyId("k".into()));
    }

    #[test]
    fn preimage_hashes_to_the_reference_payment_hash() {
        // docs/wire-format.md test vector.
        let hash = Preimage::from_bytes([1; 32]).payment_hash();
        assert_eq!(
            hash.to_hex(),
            "72cd6e8422c407fb6d098690f1130b7ded7ec2f7f5e1d30bd9d521f015363793"
        );
    }
}
