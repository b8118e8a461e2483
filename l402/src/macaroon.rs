//! Macaroon V2 binary codec (libmacaroons / go-macaroon layout, docs/wire-format.md) with
//! first-party caveats only. Decoding bounds every length and the total size and rejects
//! trailing bytes; it must never accept a third-party caveat or panic on any input.

use core::fmt;

use crate::chain;
use crate::encoding;
use crate::keys::{KeyGenerator, RootKey};

/// Largest encoded macaroon accepted (ours are about 250 bytes; headers are capped near 8 KiB).
pub const MAX_MACAROON_LEN: usize = 4096;
/// Longest location accepted.
pub const MAX_LOCATION_LEN: usize = 256;
/// Longest identifier accepted by the codec (an L402 identifier is 66 bytes).
pub const MAX_IDENTIFIER_LEN: usize = 256;
/// Longest caveat accepted.
pub const MAX_CAVEAT_LEN: usize = 1024;
/// Most caveats accepted on one macaroon.
pub const MAX_CAVEATS: usize = 64;

/// The V2 binary format's version byte (libmacaroons `MACAROON_V2`).
const VERSION_V2: u8 = 2;
/// Field tags (libmacaroons v2.c): the end-of-section marker and the field types.
const EOS: u8 = 0;
const TAG_LOCATION: u8 = 1;
const TAG_IDENTIFIER: u8 = 2;
const TAG_VID: u8 = 4;
const TAG_SIGNATURE: u8 = 6;
const SIGNATURE_LEN: usize = 32;

/// Why bytes are not a macaroon we accept, or a macaroon cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MacaroonError {
    /// No bytes at all.
    #[error("macaroon is empty")]
    Empty,
    /// More than [`MAX_MACAROON_LEN`] bytes.
    #[error("macaroon is {len} bytes, more than the {MAX_MACAROON_LEN} allowed")]
    TooLarge {
        /// Length seen.
        len: usize,
    },
    /// The first byte is not 2 (V1 and JSON macaroons are not accepted).
    #[error("macaroon format version {version} is not supported (only the V2 binary format)")]
    UnsupportedFormat {
        /// First byte seen.
        version: u8,
    },
    /// The input ended inside a field or section.
    #[error("macaroon is truncated at byte {at}")]
    Truncated {
        /// Offset where more bytes were needed.
        at: usize,
    },
    /// A length varint is overlong, non-minimal or too large.
    #[error("bad length varint at byte {at}")]
    BadVarint {
        /// Offset of the varint.
        at: usize,
    },
    /// A field tag that is unknown or out of order in its section.
    #[error("unexpected field tag {tag} at byte {at}")]
    UnexpectedField {
        /// Tag seen.
        tag: u8,
        /// Offset of the tag.
        at: usize,
    },
    /// The header section has no identifier.
    #[error("macaroon has no identifier")]
    MissingIdentifier,
    /// The identifier is empty or longer than [`MAX_IDENTIFIER_LEN`].
    #[error("identifier length {len} is out of bounds (1..={MAX_IDENTIFIER_LEN})")]
    IdentifierLength {
        /// Length seen.
        len: usize,
    },
    /// The location is longer than [`MAX_LOCATION_LEN`] or not UTF-8.
    #[error("location is longer than {MAX_LOCATION_LEN} bytes or not UTF-8")]
    BadLocation,
    /// A caveat carries a verification id: it is a third-party caveat, which lightning-wall
    /// never issues and cannot discharge.
    #[error("caveat {index} is a third-party caveat, which is not supported")]
    ThirdPartyCaveat {
        /// Position of the caveat.
        index: usize,
    },
    /// A caveat is empty or longer than [`MAX_CAVEAT_LEN`].
    #[error("caveat {index} length {len} is out of bounds (1..={MAX_CAVEAT_LEN})")]
    CaveatLength {
        /// Position of the caveat.
        index: usize,
        /// Length seen.
        len: usize,
    },
    /// More than [`MAX_CAVEATS`] caveats.
    #[error("more than {MAX_CAVEATS} caveats")]
    TooManyCaveats,
    /// The signature field is missing or not 32 bytes.
    #[error("signature field missing or not {SIGNATURE_LEN} bytes")]
    BadSignatureField,
    /// Bytes follow the signature.
    #[error("{count} trailing bytes after the signature at byte {at}")]
    TrailingBytes {
        /// Offset of the first trailing byte.
        at: usize,
        /// How many bytes follow.
        count: usize,
    },
    /// Text that is not base64 in any of the accepted variants.
    #[error("macaroon is not valid base64")]
    Base64,
}

/// A reader over the input that reports offsets in its errors.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn byte(&mut self) -> Result<u8, MacaroonError> {
        let b = self
            .peek()
            .ok_or(MacaroonError::Truncated { at: self.pos })?;
        self.pos += 1;
        Ok(b)
    }

    /// Unsigned LEB128 as go-macaroon writes it (`binary.PutUvarint`). Lengths are bounded by
    /// [`MAX_MACAROON_LEN`], so three bytes suffice; non-minimal encodings are rejected so that
    /// every accepted macaroon has exactly one encoding.
    fn varint(&mut self) -> Result<usize, MacaroonError> {
        let start = self.pos;
        let mut value: usize = 0;
        for shift in [0u32, 7, 14] {
            let b = self.byte()?;
            value |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                if b == 0 && shift > 0 {
                    return Err(MacaroonError::BadVarint { at: start });
                }
                return Ok(value);
            }
        }
        Err(MacaroonError::BadVarint { at: start })
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], MacaroonError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(MacaroonError::Truncated {
                at: self.bytes.len(),
            })?;
        let out = self
            .bytes
            .get(self.pos..end)
            .ok_or(MacaroonError::Truncated { at: self.pos })?;
        self.pos = end;
        Ok(out)
    }

    /// Reads one field's tag, or `None` at an end-of-section marker.
    fn tag(&mut self) -> Result<Option<(u8, usize)>, MacaroonError> {
        let at = self.pos;
        match self.byte()? {
            EOS => Ok(None),
            tag => Ok(Some((tag, at))),
        }
    }
}

/// A decoded macaroon borrowing the bytes it was decoded from: the verifier's zero-allocation
/// view. Caveats are located by offsets into those bytes.
#[derive(Clone)]
pub struct MacaroonRef<'a> {
    bytes: &'a [u8],
    location: Option<&'a str>,
    identifier: &'a [u8],
    caveat_spans: [(u16, u16); MAX_CAVEATS],
    caveat_count: usize,
    signature: [u8; SIGNATURE_LEN],
}

impl fmt::Debug for MacaroonRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The signature is what makes a macaroon a bearer credential: never print it.
        f.debug_struct("MacaroonRef")
            .field("location", &self.location)
            .field("identifier", &encoding::HexPreview(self.identifier))
            .field("caveats", &self.caveat_count)
            .finish_non_exhaustive()
    }
}

impl<'a> MacaroonRef<'a> {
    /// Decodes the V2 binary format.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, MacaroonError> {
        if bytes.is_empty() {
            return Err(MacaroonError::Empty);
        }
        if bytes.len() > MAX_MACAROON_LEN {
            return Err(MacaroonError::TooLarge { len: bytes.len() });
        }
        let mut r = Reader { bytes, pos: 0 };
        let version = r.byte()?;
        if version != VERSION_V2 {
            return Err(MacaroonError::UnsupportedFormat { version });
        }

        // Header section: [location] identifier EOS, tags strictly increasing.
        let mut location = None;
        let mut identifier = None;
        let mut last_tag = EOS;
        while let Some((tag, at)) = r.tag()? {
            if tag <= last_tag {
                return Err(MacaroonError::UnexpectedField { tag, at });
            }
            last_tag = tag;
            let len = r.varint()?;
            match tag {
                TAG_LOCATION => {
                    if len > MAX_LOCATION_LEN {
                        return Err(MacaroonError::BadLocation);
                    }
                    let raw = r.take(len)?;
                    location =
                        Some(core::str::from_utf8(raw).map_err(|_| MacaroonError::BadLocation)?);
                }
                TAG_IDENTIFIER => {
                    if len == 0 || len > MAX_IDENTIFIER_LEN {
                        return Err(MacaroonError::IdentifierLength { len });
                    }
                    identifier = Some(r.take(len)?);
                }
                _ => return Err(MacaroonError::UnexpectedField { tag, at }),
            }
        }
        let identifier = identifier.ok_or(MacaroonError::MissingIdentifier)?;

        // Caveat sections until an empty section (EOS right away).
        let mut caveat_spans = [(0u16, 0u16); MAX_CAVEATS];
        let mut caveat_count = 0;
        while let Some((tag, at)) = r.tag()? {
            let index = caveat_count;
            // A first-party caveat is exactly one identifier field. A location (1) before it
            // or a verification id (4) after it marks a third-party caveat.
            match tag {
                TAG_IDENTIFIER => {}
                TAG_LOCATION => return Err(MacaroonError::ThirdPartyCaveat { index }),
                _ => return Err(MacaroonError::UnexpectedField { tag, at }),
            }
            let len = r.varint()?;
            if len == 0 || len > MAX_CAVEAT_LEN {
                return Err(MacaroonError::CaveatLength { index, len });
            }
            let start = r.pos;
            r.take(len)?;
            match r.tag()? {
                None => {}
                Some((TAG_VID, _)) => return Err(MacaroonError::ThirdPartyCaveat { index }),
                Some((tag, at)) => return Err(MacaroonError::UnexpectedField { tag, at }),
            }
            let slot = caveat_spans
                .get_mut(index)
                .ok_or(MacaroonError::TooManyCaveats)?;
            // Offsets fit in u16: the whole input is at most MAX_MACAROON_LEN (4096) bytes.
            *slot = (
                u16::try_from(start).map_err(|_| MacaroonError::TooLarge { len: bytes.len() })?,
                u16::try_from(len).map_err(|_| MacaroonError::TooLarge { len: bytes.len() })?,
            );
            caveat_count += 1;
        }

        // Signature section: exactly one 32-byte signature field, then nothing.
        match r.tag()? {
            Some((TAG_SIGNATURE, _)) => {}
            Some((tag, at)) => return Err(MacaroonError::UnexpectedField { tag, at }),
            None => return Err(MacaroonError::BadSignatureField),
        }
        if r.varint()? != SIGNATURE_LEN {
            return Err(MacaroonError::BadSignatureField);
        }
        let signature: [u8; SIGNATURE_LEN] = r
            .take(SIGNATURE_LEN)?
            .try_into()
            .map_err(|_| MacaroonError::BadSignatureField)?;
        if r.pos != bytes.len() {
            return Err(MacaroonError::TrailingBytes {
                at: r.pos,
                count: bytes.len() - r.pos,
            });
        }
        Ok(Self {
            bytes,
            location,
            identifier,
            caveat_spans,
            caveat_count,
            signature,
        })
    }

    /// The location hint (not covered by the signature: never trust it).
    pub fn location(&self) -> Option<&'a str> {
        self.location
    }

    /// The identifier bytes.
    pub fn identifier(&self) -> &'a [u8] {
        self.identifier
    }

    /// Number of caveats.
    pub fn caveat_count(&self) -> usize {
        self.caveat_count
    }

    /// The caveats, in order.
    pub fn caveats(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + Clone + '_ {
        let bytes = self.bytes;
        self.caveat_spans
            .iter()
            .take(self.caveat_count)
            .map(move |&(start, len)| {
                let start = usize::from(start);
                // Spans were checked in `decode`; an empty slice here would be a bug, and it
                // would fail the signature rather than skip a caveat silently.
                bytes.get(start..start + usize::from(len)).unwrap_or(&[])
            })
    }

    /// The signature (the bearer secret of the macaroon: do not log it).
    pub fn signature(&self) -> &[u8; 32] {
        &self.signature
    }

    /// Whether the signature is the HMAC chain of `root` over identifier and caveats, compared
    /// in constant time.
    pub fn verify_signature(&self, root: &RootKey) -> bool {
        self.verify_signature_with(&KeyGenerator::new(), root)
    }

    pub(crate) fn verify_signature_with(&self, generator: &KeyGenerator, root: &RootKey) -> bool {
        let expected = chain::signature(generator, root, self.identifier, self.caveats());
        chain::signatures_match(&expected, &self.signature)
    }

    /// An owned copy.
    pub fn to_owned_macaroon(&self) -> Macaroon {
        Macaroon {
            location: self.location.map(str::to_owned),
            identifier: self.identifier.to_vec(),
            caveats: self.caveats().map(<[u8]>::to_vec).collect(),
            signature: self.signature,
        }
    }
}

/// An owned macaroon: what the minter builds, attenuates and encodes. Its `==` is not
/// constant-time (it is for tests and tools); verification uses [`Macaroon::verify_signature`].
#[derive(Clone, PartialEq, Eq)]
pub struct Macaroon {
    location: Option<String>,
    identifier: Vec<u8>,
    caveats: Vec<Vec<u8>>,
    signature: [u8; SIGNATURE_LEN],
}

impl fmt::Debug for Macaroon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Macaroon")
            .field("location", &self.location)
            .field("identifier", &encoding::HexPreview(&self.identifier))
            .field(
                "caveats",
                &self
                    .caveats
                    .iter()
                    .map(|c| String::from_utf8_lossy(c))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Macaroon {
    /// A new macaroon with no caveats, signed with `root`.
    pub fn new(
        root: &RootKey,
        identifier: &[u8],
        location: Option<&str>,
    ) -> Result<Self, MacaroonError> {
        if identifier.is_empty() || identifier.len() > MAX_IDENTIFIER_LEN {
            return Err(MacaroonError::IdentifierLength {
                len: identifier.len(),
            });
        }
        if location.is_some_and(|l| l.len() > MAX_LOCATION_LEN) {
            return Err(MacaroonError::BadLocation);
        }
        let signature =
            chain::signature(&KeyGenerator::new(), root, identifier, core::iter::empty());
        Ok(Self {
            location: location.map(str::to_owned),
            identifier: identifier.to_vec(),
            caveats: Vec::new(),
            signature,
        })
    }

    /// Adds a first-party caveat, extending the signature chain. Anyone holding the macaroon
    /// can do this (attenuation); it can only restrict what the macaroon allows.
    pub fn add_first_party_caveat(&mut self, caveat: &[u8]) -> Result<(), MacaroonError> {
        let index = self.caveats.len();
        if index >= MAX_CAVEATS {
            return Err(MacaroonError::TooManyCaveats);
        }
        if caveat.is_empty() || caveat.len() > MAX_CAVEAT_LEN {
            return Err(MacaroonError::CaveatLength {
                index,
                len: caveat.len(),
            });
        }
        let len = self.encoded_len() + caveat.len() + 5;
        if len > MAX_MACAROON_LEN {
            return Err(MacaroonError::TooLarge { len });
        }
        self.signature = chain::extend(&self.signature, caveat);
        self.caveats.push(caveat.to_vec());
        Ok(())
    }

    /// Decodes the V2 binary format.
    pub fn decode(bytes: &[u8]) -> Result<Self, MacaroonError> {
        MacaroonRef::decode(bytes).map(|m| m.to_owned_macaroon())
    }

    /// Decodes base64 in any of the four variants (standard or URL-safe, padded or not).
    pub fn from_base64(text: &str) -> Result<Self, MacaroonError> {
        let bytes = encoding::decode_base64_any(text.as_bytes(), MAX_MACAROON_LEN)
            .map_err(|_| MacaroonError::Base64)?;
        Self::decode(&bytes)
    }

    /// The V2 binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(VERSION_V2);
        if let Some(location) = &self.location {
            put_field(&mut out, TAG_LOCATION, location.as_bytes());
        }
        put_field(&mut out, TAG_IDENTIFIER, &self.identifier);
        out.push(EOS);
        for caveat in &self.caveats {
            put_field(&mut out, TAG_IDENTIFIER, caveat);
            out.push(EOS);
        }
        out.push(EOS);
        put_field(&mut out, TAG_SIGNATURE, &self.signature);
        out
    }

    /// Standard base64 with padding, the form L402 clients expect in `macaroon="…"`.
    pub fn to_base64(&self) -> String {
        encoding::encode_base64(&self.encode())
    }

    fn encoded_len(&self) -> usize {
        let field = |len: usize| 1 + varint_len(len) + len;
        1 + self.location.as_ref().map_or(0, |l| field(l.len()))
            + field(self.identifier.len())
            + 1
            + self
                .caveats
                .iter()
                .map(|c| field(c.len()) + 1)
                .sum::<usize>()
            + 1
            + field(SIGNATURE_LEN)
    }

    /// The location hint.
    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }

    /// The identifier bytes.
    pub fn identifier(&self) -> &[u8] {
        &self.identifier
    }

    /// The caveats, in order.
    pub fn caveats(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.caveats.iter().map(Vec::as_slice)
    }

    /// The signature (the bearer secret of the macaroon: do not log it).
    pub fn signature(&self) -> &[u8; 32] {
        &self.signature
    }

    /// Whether the signature is the HMAC chain of `root`, compared in constant time.
    pub fn verify_signature(&self, root: &RootKey) -> bool {
        let expected =
            chain::signature(&KeyGenerator::new(), root, &self.identifier, self.caveats());
        chain::signatures_match(&expected, &self.signature)
    }
}

fn varint_len(mut value: usize) -> usize {
    let mut n = 1;
    while value >= 0x80 {
        value >>= 7;
        n += 1;
    }
    n
}

fn put_field(out: &mut Vec<u8>, tag: u8, data: &[u8]) {
    out.push(tag);
    let mut len = data.len();
    while len >= 0x80 {
        out.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(data);
}

#[cfg(test)]
#[path = "macaroon_tests.rs"]
mod tests;
