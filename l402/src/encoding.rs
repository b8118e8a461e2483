//! Base64 and hex as L402 uses them: emit standard padded base64 and lowercase hex; accept the
//! four base64 variants and hex in either case (docs/wire-format.md "Credential"). Decoding
//! must stay bounded and canonical (no trailing bits), so one value has one accepted spelling
//! per alphabet.

use core::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

const ANY_PADDING: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_encode_padding(true)
    .with_decode_padding_mode(DecodePaddingMode::Indifferent);
static STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, ANY_PADDING);
static URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, ANY_PADDING);

/// Why text is not base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base64Error {
    /// Decodes to more than the allowed bytes.
    TooLong,
    /// Mixes the standard (`+/`) and URL-safe (`-_`) alphabets, or is not base64.
    Invalid,
}

/// Standard alphabet, padded.
pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard or URL-safe base64, padded or not, refusing more than `max` output bytes
/// before decoding anything.
pub(crate) fn decode_base64_any(text: &[u8], max: usize) -> Result<Vec<u8>, Base64Error> {
    if text.len() / 4 * 3 > max + 3 {
        return Err(Base64Error::TooLong);
    }
    // Standard first (what we emit); URL-safe only when that fails and the text has one of its
    // two letters. Each alphabet rejects the other's two letters, so mixed text fails both.
    let bytes = match STANDARD.decode(text) {
        Ok(bytes) => bytes,
        Err(_) if text.iter().any(|b| matches!(b, b'-' | b'_')) => {
            URL_SAFE.decode(text).map_err(|_| Base64Error::Invalid)?
        }
        Err(_) => return Err(Base64Error::Invalid),
    };
    if bytes.len() > max {
        return Err(Base64Error::TooLong);
    }
    Ok(bytes)
}

/// Prints at most 8 bytes of hex of public binary data (identifiers) in `Debug` output.
pub(crate) struct HexPreview<'a>(pub(crate) &'a [u8]);

impl fmt::Debug for HexPreview<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.iter().take(8) {
            write!(f, "{b:02x}")?;
        }
        if self.0.len() > 8 {
            write!(f, "…({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn all_four_base64_variants_decode_to_the_same_bytes() {
        let bytes = [0xfb, 0xff, 0xfe, 0x01];
        for text in ["+//+AQ==", "+//+AQ", "-__-AQ==", "-__-AQ"] {
            assert_eq!(
                decode_base64_any(text.as_bytes(), 100),
                Ok(bytes.to_vec()),
                "{text}"
            );
        }
    }

    #[test]
    fn mixed_alphabets_and_non_canonical_trailing_bits_are_rejected() {
        assert_eq!(decode_base64_any(b"+_", 100), Err(Base64Error::Invalid));
        // "AB" has non-zero trailing bits ("AA" is the canonical spelling of one zero byte).
        assert_eq!(decode_base64_any(b"AB", 100), Err(Base64Error::Invalid));
        assert_eq!(decode_base64_any(b"AA AA", 100), Err(Base64Error::Invalid));
    }

    #[test]
    fn oversized_base64_is_refused() {
        assert_eq!(
            decode_base64_any(&[b'A'; 400], 100),
            Err(Base64Error::TooLong)
        );
        assert_eq!(
            decode_base64_any(&[b'A'; 136], 100),
            Err(Base64Error::TooLong)
        );
    }

    proptest! {
        #[test]
        fn base64_round_trips_in_every_variant(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let std = encode_base64(&bytes);
            let url = std.replace('+', "-").replace('/', "_");
            for text in [std.clone(), std.trim_end_matches('=').to_owned(), url.clone(), url.trim_end_matches('=').to_owned()] {
                prop_assert_eq!(decode_base64_any(text.as_bytes(), 200).unwrap(), bytes.clone());
            }
        }
    }
}
