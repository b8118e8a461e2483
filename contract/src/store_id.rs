//! Which store a deposit token belongs to. A store draws a random 8-byte id when it is created
//! and keeps it; the sidecar writes it into the last 8 bytes of every token id it mints (the
//! first 24 stay random: the filter knows a revoked token by its first 8). The identifier is
//! signed, so nobody can move a token to another store, and a filter refuses a deposit token
//! whose deposit lives in a store other than the one it syncs with: a store replaced under a
//! running proxy cannot revive a refunded deposit's credential (docs/filter.md "A replaced
//! store").

/// Bytes of a store id.
pub const LEN: usize = 8;

/// A store's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StoreId(pub [u8; LEN]);

impl StoreId {
    /// The store a token id names (its last 8 bytes).
    pub fn of_token(token_id: &[u8; 32]) -> StoreId {
        let mut id = [0u8; LEN];
        id.copy_from_slice(&token_id[32 - LEN..]);
        StoreId(id)
    }

    /// Writes this store into a token id's last 8 bytes.
    pub fn stamp(self, token_id: &mut [u8; 32]) {
        token_id[32 - LEN..].copy_from_slice(&self.0);
    }

    /// Whether `token_id` was minted in this store.
    pub fn minted(self, token_id: &[u8; 32]) -> bool {
        StoreId::of_token(token_id) == self
    }

    /// As on the wire: 16 lowercase hex characters.
    pub fn to_hex(self) -> alloc::string::String {
        let mut s = alloc::string::String::with_capacity(2 * LEN);
        for b in self.0 {
            for nibble in [b >> 4, b & 0xf] {
                s.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
            }
        }
        s
    }

    /// Parses 16 hex characters (either case); `None` otherwise.
    pub fn from_hex(hex: &str) -> Option<StoreId> {
        let bytes = hex.as_bytes();
        if bytes.len() != 2 * LEN {
            return None;
        }
        let mut id = [0u8; LEN];
        for (out, pair) in id.iter_mut().zip(bytes.chunks_exact(2)) {
            let digit = |b: u8| char::from(b).to_digit(16);
            let [hi, lo] = pair else { return None };
            let (hi, lo) = (digit(*hi)?, digit(*lo)?);
            *out = u8::try_from(hi * 16 + lo).ok()?;
        }
        Some(StoreId(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamped_token_names_its_store_and_keeps_its_first_24_bytes() {
        let store = StoreId([1, 2, 3, 4, 5, 6, 7, 0xff]);
        let mut token = [0xaa; 32];
        store.stamp(&mut token);
        assert!(store.minted(&token));
        assert!(!StoreId([0; 8]).minted(&token));
        assert_eq!(token[..24], [0xaa; 24]);
        assert_eq!(StoreId::of_token(&token), store);
    }

    #[test]
    fn hex_round_trips_and_anything_else_is_refused() {
        let store = StoreId([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        assert_eq!(store.to_hex(), "0123456789abcdef");
        assert_eq!(StoreId::from_hex("0123456789abcdef"), Some(store));
        assert_eq!(StoreId::from_hex("0123456789ABCDEF"), Some(store));
        for bad in [
            "",
            "0123456789abcde",
            "0123456789abcdef0",
            "0123456789abcdeg",
            "+123456789abcdef",
        ] {
            assert_eq!(StoreId::from_hex(bad), None, "{bad}");
        }
    }
}
