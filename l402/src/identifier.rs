//! The 66-byte L402 macaroon identifier: version (2 bytes, big-endian, 0), payment hash, token id
//! (docs/wire-format.md "Identifier"). It must never accept a version it does not know.

use crate::keys::{PaymentHash, TokenId};

/// Encoded length of a version-0 identifier.
pub const IDENTIFIER_LEN: usize = 66;

/// The only identifier version defined by L402 (Aperture `lsat.LatestVersion`).
pub const IDENTIFIER_VERSION: u16 = 0;

/// A decoded L402 identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Identifier {
    /// The payment hash of the invoice the token was issued with.
    pub payment_hash: PaymentHash,
    /// The random token id.
    pub token_id: TokenId,
}

/// Why bytes are not a valid identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// Shorter than the 2-byte version field.
    #[error("identifier is {len} bytes, too short to hold a version")]
    TooShort {
        /// Length seen.
        len: usize,
    },
    /// A version other than 0.
    #[error("identifier version {version} is not supported (only 0)")]
    UnknownVersion {
        /// Version seen.
        version: u16,
    },
    /// Version 0 but not 66 bytes.
    #[error("identifier is {len} bytes, version 0 has {IDENTIFIER_LEN}")]
    WrongLength {
        /// Length seen.
        len: usize,
    },
}

impl Identifier {
    /// An identifier for a new token.
    pub const fn new(payment_hash: PaymentHash, token_id: TokenId) -> Self {
        Self {
            payment_hash,
            token_id,
        }
    }

    /// The 66 wire bytes.
    pub fn encode(&self) -> [u8; IDENTIFIER_LEN] {
        let mut out = [0u8; IDENTIFIER_LEN];
        let (version, rest) = out.split_at_mut(2);
        let (hash, id) = rest.split_at_mut(32);
        version.copy_from_slice(&IDENTIFIER_VERSION.to_be_bytes());
        hash.copy_from_slice(&self.payment_hash.0);
        id.copy_from_slice(&self.token_id.0);
        out
    }

    /// Decodes wire bytes; the version is checked before the length so that a future version
    /// with another layout is reported as what it is.
    pub fn decode(bytes: &[u8]) -> Result<Self, IdentifierError> {
        let Some((version, rest)) = bytes.split_first_chunk::<2>() else {
            return Err(IdentifierError::TooShort { len: bytes.len() });
        };
        let version = u16::from_be_bytes(*version);
        if version != IDENTIFIER_VERSION {
            return Err(IdentifierError::UnknownVersion { version });
        }
        let Some((hash, id)) = rest.split_first_chunk::<32>() else {
            return Err(IdentifierError::WrongLength { len: bytes.len() });
        };
        let Ok(id) = <[u8; 32]>::try_from(id) else {
            return Err(IdentifierError::WrongLength { len: bytes.len() });
        };
        Ok(Self::new(PaymentHash(*hash), TokenId(id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn identifier_layout_is_version_then_hash_then_token_id() {
        let id = Identifier::new(PaymentHash([0xaa; 32]), TokenId([0xbb; 32]));
        let bytes = id.encode();
        assert_eq!(&bytes[..2], &[0, 0]);
        assert_eq!(&bytes[2..34], &[0xaa; 32]);
        assert_eq!(&bytes[34..], &[0xbb; 32]);
        assert_eq!(Identifier::decode(&bytes), Ok(id));
    }

    #[test]
    fn unknown_identifier_versions_are_rejected() {
        let mut bytes = Identifier::new(PaymentHash([1; 32]), TokenId([2; 32])).encode();
        bytes[1] = 1;
        assert_eq!(
            Identifier::decode(&bytes),
            Err(IdentifierError::UnknownVersion { version: 1 })
        );
    }

    #[test]
    fn identifiers_of_the_wrong_length_are_rejected() {
        let bytes = Identifier::new(PaymentHash([1; 32]), TokenId([2; 32])).encode();
        assert_eq!(
            Identifier::decode(&bytes[..65]),
            Err(IdentifierError::WrongLength { len: 65 })
        );
        let mut long = bytes.to_vec();
        long.push(0);
        assert_eq!(
            Identifier::decode(&long),
            Err(IdentifierError::WrongLength { len: 67 })
        );
        assert_eq!(
            Identifier::decode(&[0]),
            Err(IdentifierError::TooShort { len: 1 })
        );
    }

    proptest! {
        #[test]
        fn identifier_decoding_never_panics_and_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(id) = Identifier::decode(&bytes) {
                prop_assert_eq!(&id.encode()[..], &bytes[..]);
            }
        }
    }
}
