//! The short reference a visitor reads off the wall page ("Reference: 0123456789", the first ten
//! hex characters of the token id, filter `wall_text::reference`) or copies from a wallet (the
//! payment hash). The operator types it into the dashboard; this turns it into the range of
//! 32-byte ids it can stand for. Pure; never guesses: too short a reference is refused rather
//! than matched against thousands of deposits.

/// The fewest hex characters accepted: 8 (32 bits) makes an accidental match between two live
/// deposits unlikely below tens of thousands, and the page shows 10.
pub const MIN_HEX: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("a reference is {MIN_HEX} to 64 hex characters (the wall page shows 10); got {0}")]
    Length(usize),
    #[error("a reference is hex characters only (0-9, a-f)")]
    NotHex,
}

/// Every 32-byte id starting with the reference: `low..=high` in byte order (the order SQLite
/// and PostgreSQL compare BLOB/BYTEA in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReferenceRange {
    pub low: [u8; 32],
    pub high: [u8; 32],
}

/// Parses a reference as typed: surrounding spaces and a `Reference:` label copied along are
/// dropped, case is ignored.
pub fn parse(text: &str) -> Result<ReferenceRange, ReferenceError> {
    let text = text.trim();
    let text = text
        .strip_prefix("Reference:")
        .or_else(|| text.strip_prefix("reference:"))
        .unwrap_or(text)
        .trim();
    if !(MIN_HEX..=64).contains(&text.len()) {
        return Err(ReferenceError::Length(text.len()));
    }
    let nibbles = text
        .chars()
        .map(|c| {
            c.to_digit(16)
                .map(|d| d as u8)
                .ok_or(ReferenceError::NotHex)
        })
        .collect::<Result<Vec<u8>, _>>()?;
    let mut low = [0u8; 32];
    let mut high = [0xffu8; 32];
    // Two hex characters per byte; an odd last character fixes only the byte's high nibble.
    for ((l, h), pair) in low.iter_mut().zip(high.iter_mut()).zip(nibbles.chunks(2)) {
        match *pair {
            [hi, lo] => (*l, *h) = ((hi << 4) | lo, (hi << 4) | lo),
            [hi] => (*l, *h) = (hi << 4, (hi << 4) | 0x0f),
            _ => {}
        }
    }
    Ok(ReferenceRange { low, high })
}

impl ReferenceRange {
    /// Whether `id` starts with the reference.
    pub fn contains(&self, id: &[u8; 32]) -> bool {
        self.low <= *id && *id <= self.high
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ten_character_reference_covers_exactly_the_ids_starting_with_it() {
        let r = parse("0123456789").unwrap();
        let mut id = [0u8; 32];
        id[..5].copy_from_slice(&[0x01, 0x23, 0x45, 0x67, 0x89]);
        assert!(r.contains(&id));
        id[31] = 0xff;
        assert!(r.contains(&id));
        id[4] = 0x8a;
        assert!(!r.contains(&id));
        id[4] = 0x88;
        assert!(!r.contains(&id));
    }

    #[test]
    fn an_odd_length_reference_fixes_the_high_nibble_only() {
        let r = parse("ABCDEF012").unwrap();
        assert_eq!(r.low[..5], [0xab, 0xcd, 0xef, 0x01, 0x20]);
        assert_eq!(r.high[..5], [0xab, 0xcd, 0xef, 0x01, 0x2f]);
        assert!(r.high[5..].iter().all(|b| *b == 0xff));
        assert!(r.low[5..].iter().all(|b| *b == 0));
    }

    #[test]
    fn a_full_id_is_a_range_of_one() {
        let hex = "11".repeat(32);
        let r = parse(&format!("  Reference: {hex} ")).unwrap();
        assert_eq!(r.low, r.high);
        assert_eq!(r.low, [0x11; 32]);
    }

    #[test]
    fn too_short_too_long_and_non_hex_are_refused() {
        assert_eq!(parse("0123456"), Err(ReferenceError::Length(7)));
        assert_eq!(parse(""), Err(ReferenceError::Length(0)));
        assert_eq!(parse(&"0".repeat(65)), Err(ReferenceError::Length(65)));
        assert_eq!(parse("0123456g"), Err(ReferenceError::NotHex));
        assert_eq!(parse("01234567é"), Err(ReferenceError::NotHex));
    }
}
