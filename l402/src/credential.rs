//! The credential a client presents: `Authorization: L402 <b64 macaroon>[,<b64>…]:<hex proof>`
//! (also `LSAT`), or the `lightning-wall` cookie holding `<b64 macaroon>:<hex proof>`
//! (docs/wire-format.md "Credential"). Parsing is total: every input gives a value or a
//! typed error; nothing here may echo credential bytes into an error or a `Debug` string.

use core::fmt;

use subtle::ConstantTimeEq;

use crate::encoding;
use crate::keys::Proof;
use crate::macaroon::{MAX_MACAROON_LEN, Macaroon};

/// Longest header or cookie value parsed (Envoy's default header size limit is 60 KiB in total;
/// a credential is about 400 characters).
pub const MAX_CREDENTIAL_LEN: usize = 8192;
/// Longest credential token (`<macaroons>:<proof>`, in a header or the cookie). A token the
/// sidecar mints is a few hundred characters; the cap leaves room for caveats a client appends
/// and for long route and method lists, and bounds what one request can make a verifier hash
/// and check (every distinct valid token costs a full verification).
pub const MAX_TOKEN_LEN: usize = 4096;
/// Most macaroons in one credential.
pub const MAX_MACAROONS: usize = 4;
/// Name of the cookie that carries the credential for browsers (docs/credentials.md).
pub const COOKIE_NAME: &str = "lightning-wall";

/// The authorization scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `L402`, the current name.
    L402,
    /// `LSAT`, the legacy name still sent by older Loop/Pool clients.
    Lsat,
}

impl Scheme {
    /// The scheme as it is written in headers.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scheme::L402 => "L402",
            Scheme::Lsat => "LSAT",
        }
    }

    /// Case-insensitive match (RFC 9110 §11.1: auth schemes are case-insensitive).
    pub fn parse(s: &[u8]) -> Option<Self> {
        if s.eq_ignore_ascii_case(b"L402") {
            Some(Scheme::L402)
        } else if s.eq_ignore_ascii_case(b"LSAT") {
            Some(Scheme::Lsat)
        } else {
            None
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a header or cookie value is not a credential. Variants never carry the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// Longer than [`MAX_CREDENTIAL_LEN`].
    #[error("credential is longer than {MAX_CREDENTIAL_LEN} bytes")]
    TooLong,
    /// The token (`<macaroons>:<proof>`) is longer than [`MAX_TOKEN_LEN`].
    #[error("credential token is {len} bytes, more than the {MAX_TOKEN_LEN} allowed")]
    TokenTooLong {
        /// The token's length.
        len: usize,
    },
    /// The scheme is not followed by a space and a token.
    #[error("L402 scheme without a token")]
    MissingToken,
    /// A control character, space or non-ASCII byte inside the token.
    #[error("credential contains a byte that is not printable ASCII at {at}")]
    BadCharacter {
        /// Offset in the token.
        at: usize,
    },
    /// No `:` between macaroons and proof.
    #[error("credential has no ':' between macaroon and proof")]
    MissingSeparator,
    /// More than one `:`.
    #[error("credential has more than one ':'")]
    ExtraSeparator,
    /// A macaroon slot is empty or not base64.
    #[error("macaroon {index} is empty or not base64")]
    BadBase64 {
        /// Position of the macaroon.
        index: usize,
    },
    /// A macaroon decodes to more than the codec accepts.
    #[error("macaroon {index} is larger than {MAX_MACAROON_LEN} bytes")]
    MacaroonTooLarge {
        /// Position of the macaroon.
        index: usize,
    },
    /// More than [`MAX_MACAROONS`] macaroons.
    #[error("more than {MAX_MACAROONS} macaroons")]
    TooManyMacaroons,
    /// The proof is neither empty nor 64 hex characters.
    #[error("proof must be empty or 64 hex characters")]
    BadProof,
    /// Several `Authorization` values carry different L402 credentials. Aperture keeps the
    /// last one, which makes the outcome depend on header order; we refuse instead.
    #[error("several Authorization headers carry different L402 credentials")]
    Conflicting,
    /// A `Macaroon` / `Grpc-Metadata-Macaroon` value that is not hex.
    #[error("macaroon header is not hex")]
    BadHex,
    /// A `Macaroon` / `Grpc-Metadata-Macaroon` value that is not a macaroon we accept.
    #[error("macaroon header: {0}")]
    Macaroon(#[from] crate::macaroon::MacaroonError),
    /// A `Macaroon` header macaroon without a well-formed `preimage=<64 hex>` caveat, or with
    /// two that differ.
    #[error("macaroon header has no single preimage=<64 hex> caveat")]
    PreimageCaveat,
}

/// A parsed credential: decoded macaroon bytes and the optional proof. The proof is empty for
/// a deposit credential whose receipt the client does not have yet (`L402 <mac>:`).
#[derive(Clone)]
pub struct Credential {
    first: Vec<u8>,
    rest: Vec<Vec<u8>>,
    proof: Option<Proof>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A credential is a bearer secret: show its shape only.
        f.debug_struct("Credential")
            .field("macaroons", &(1 + self.rest.len()))
            .field("proof", &self.proof.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl PartialEq for Credential {
    fn eq(&self, other: &Self) -> bool {
        let proofs_equal = match (&self.proof, &other.proof) {
            (Some(a), Some(b)) => a.ct_eq(b),
            (None, None) => true,
            _ => false,
        };
        proofs_equal
            && self.first.ct_eq(&other.first).into()
            && self.rest.len() == other.rest.len()
            && self
                .rest
                .iter()
                .zip(&other.rest)
                .all(|(a, b)| bool::from(a.ct_eq(b)))
    }
}

impl Eq for Credential {}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let Some((first, rest)) = s.split_first() {
        if !is_ows(*first) {
            break;
        }
        s = rest;
    }
    while let Some((last, rest)) = s.split_last() {
        if !is_ows(*last) {
            break;
        }
        s = rest;
    }
    s
}

impl Credential {
    /// Builds a credential from a macaroon and an optional proof.
    pub fn new(macaroon: &Macaroon, proof: Option<Proof>) -> Self {
        Self {
            first: macaroon.encode(),
            rest: Vec::new(),
            proof,
        }
    }

    /// Parses one `Authorization` value. `Ok(None)` when the scheme is not `L402`/`LSAT`
    /// (another scheme is not ours to judge).
    pub fn parse_authorization(value: &[u8]) -> Result<Option<Self>, CredentialError> {
        Ok(Self::parse_authorization_with_scheme(value)?.map(|(_, c)| c))
    }

    /// Like [`Credential::parse_authorization`], also returning the scheme used.
    pub fn parse_authorization_with_scheme(
        value: &[u8],
    ) -> Result<Option<(Scheme, Self)>, CredentialError> {
        if value.len() > MAX_CREDENTIAL_LEN {
            return Err(CredentialError::TooLong);
        }
        let value = trim_ows(value);
        let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
            Some(sp) => value.split_at(sp),
            None => (value, &[][..]),
        };
        let Some(scheme) = Scheme::parse(scheme) else {
            return Ok(None);
        };
        // RFC 9110 §11.4: `credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]`.
        let token = trim_ows(rest);
        if token.is_empty() {
            return Err(CredentialError::MissingToken);
        }
        Self::parse_token(token).map(|c| Some((scheme, c)))
    }

    /// Parses several `Authorization` values (a request may carry more than one). Values with
    /// other schemes are ignored; L402 values that differ are refused as conflicting.
    pub fn from_authorization_values<'v>(
        values: impl IntoIterator<Item = &'v [u8]>,
    ) -> Result<Option<Self>, CredentialError> {
        let mut found: Option<Self> = None;
        for value in values {
            if let Some(credential) = Self::parse_authorization(value)? {
                match &found {
                    Some(existing) if *existing != credential => {
                        return Err(CredentialError::Conflicting);
                    }
                    Some(_) => {}
                    None => found = Some(credential),
                }
            }
        }
        Ok(found)
    }

    /// Parses Aperture's gRPC form: `Macaroon: <hex macaroon>` (also sent as
    /// `Grpc-Metadata-Macaroon`), whose proof is in a `preimage=<64 hex>` caveat the client
    /// appended (docs/wire-format.md "Credential"). That caveat is an unknown condition to
    /// the verifier, so it is skipped there; the chain covers it like any other caveat.
    pub fn from_macaroon_header(value: &[u8]) -> Result<Self, CredentialError> {
        let value = trim_ows(value);
        if value.len() > 2 * MAX_MACAROON_LEN {
            return Err(CredentialError::TooLong);
        }
        let bytes = hex::decode(value).map_err(|_| CredentialError::BadHex)?;
        let macaroon = crate::macaroon::MacaroonRef::decode(&bytes)?;
        let mut preimage: Option<[u8; 32]> = None;
        for caveat in macaroon.caveats() {
            let Some(hex_text) = caveat.strip_prefix(b"preimage=") else {
                continue;
            };
            let mut found = [0u8; 32];
            hex::decode_to_slice(hex_text, &mut found)
                .map_err(|_| CredentialError::PreimageCaveat)?;
            if preimage.is_some_and(|p| p != found) {
                return Err(CredentialError::PreimageCaveat);
            }
            preimage = Some(found);
        }
        let proof = preimage.ok_or(CredentialError::PreimageCaveat)?;
        Ok(Self {
            first: bytes,
            rest: Vec::new(),
            proof: Some(Proof::from_bytes(proof)),
        })
    }

    /// Finds the `lightning-wall` cookie in `Cookie` header values (RFC 6265 §4.2:
    /// `name=value` pairs separated by `;`, the value optionally in double quotes) and parses
    /// it. `Ok(None)` without that cookie. The same cookie twice with different values is
    /// refused as conflicting, as for `Authorization`.
    pub fn from_cookie_headers<'v>(
        values: impl IntoIterator<Item = &'v [u8]>,
    ) -> Result<Option<Self>, CredentialError> {
        let mut found: Option<Self> = None;
        for header in values {
            if header.len() > MAX_CREDENTIAL_LEN {
                return Err(CredentialError::TooLong);
            }
            for pair in header.split(|&b| b == b';') {
                let pair = trim_ows(pair);
                let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                    continue;
                };
                let (name, value) = pair.split_at(eq);
                if trim_ows(name) != COOKIE_NAME.as_bytes() {
                    continue;
                }
                let value = trim_ows(value.get(1..).unwrap_or_default());
                let value = value
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(value);
                let credential = Self::parse_token(value)?;
                match &found {
                    Some(existing) if *existing != credential => {
                        return Err(CredentialError::Conflicting);
                    }
                    Some(_) => {}
                    None => found = Some(credential),
                }
            }
        }
        Ok(found)
    }

    /// Parses `<b64 macaroon>[,<b64>…]:<hex proof or nothing>`: the part after the scheme,
    /// and the `lightning-wall` cookie value.
    pub fn parse_token(token: &[u8]) -> Result<Self, CredentialError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(CredentialError::TokenTooLong { len: token.len() });
        }
        match Self::parse_single(token) {
            Some(credential) => Ok(credential),
            None => Self::parse_full(token),
        }
    }

    /// The hot path: one macaroon and an empty or 64-hex proof, found with one short scan from
    /// the end. The base64 and hex decoders reject every byte the full grammar rejects
    /// (controls, spaces, non-ASCII, `:` and `,`), so whatever they accept [`Self::parse_full`]
    /// accepts with the same result; anything else goes there for a precise error. (Separate
    /// scans for each rule cost about 1 ns per byte each, a quarter of the verify budget.)
    fn parse_single(token: &[u8]) -> Option<Self> {
        let colon = token.iter().rposition(|&b| b == b':')?;
        let b64 = token.get(..colon).filter(|b| !b.is_empty())?;
        let proof = match token.get(colon + 1..)? {
            [] => None,
            hex_text => {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(hex_text, &mut bytes).ok()?;
                Some(Proof::from_bytes(bytes))
            }
        };
        let first = encoding::decode_base64_any(b64, MAX_MACAROON_LEN).ok()?;
        Some(Self {
            first,
            rest: Vec::new(),
            proof,
        })
    }

    /// The full grammar, rule by rule, for the error that names what is wrong.
    fn parse_full(token: &[u8]) -> Result<Self, CredentialError> {
        if let Some(at) = token.iter().position(|b| !b.is_ascii_graphic()) {
            return Err(CredentialError::BadCharacter { at });
        }
        let mut parts = token.splitn(3, |&b| b == b':');
        let macaroons = parts.next().unwrap_or_default();
        let proof = parts.next().ok_or(CredentialError::MissingSeparator)?;
        if parts.next().is_some() {
            return Err(CredentialError::ExtraSeparator);
        }
        let proof = match proof {
            [] => None,
            hex_text => {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(hex_text, &mut bytes)
                    .map_err(|_| CredentialError::BadProof)?;
                Some(Proof::from_bytes(bytes))
            }
        };
        let mut first = None;
        let mut rest = Vec::new();
        for (index, b64) in macaroons.split(|&b| b == b',').enumerate() {
            if index >= MAX_MACAROONS {
                return Err(CredentialError::TooManyMacaroons);
            }
            if b64.is_empty() {
                return Err(CredentialError::BadBase64 { index });
            }
            let bytes =
                encoding::decode_base64_any(b64, MAX_MACAROON_LEN).map_err(|e| match e {
                    encoding::Base64Error::TooLong => CredentialError::MacaroonTooLarge { index },
                    encoding::Base64Error::Invalid => CredentialError::BadBase64 { index },
                })?;
            if first.is_none() {
                first = Some(bytes);
            } else {
                rest.push(bytes);
            }
        }
        let first = first.ok_or(CredentialError::BadBase64 { index: 0 })?;
        Ok(Self { first, rest, proof })
    }

    /// The first (for lightning-wall: the only) macaroon's binary encoding.
    pub fn macaroon(&self) -> &[u8] {
        &self.first
    }

    /// All macaroons' binary encodings (discharge macaroons would follow the first).
    pub fn macaroons(&self) -> impl Iterator<Item = &[u8]> {
        core::iter::once(self.first.as_slice()).chain(self.rest.iter().map(Vec::as_slice))
    }

    /// Number of macaroons.
    pub fn macaroon_count(&self) -> usize {
        1 + self.rest.len()
    }

    /// The proof, if one was given.
    pub fn proof(&self) -> Option<&Proof> {
        self.proof.as_ref()
    }

    /// The value format: `<standard padded b64>:<lowercase hex or nothing>` — what the cookie
    /// holds and what follows `L402 ` in `Authorization`.
    pub fn to_token_string(&self) -> String {
        let mut out = self
            .macaroons()
            .map(encoding::encode_base64)
            .collect::<Vec<_>>()
            .join(",");
        out.push(':');
        if let Some(proof) = &self.proof {
            out.push_str(&proof.expose_secret_hex());
        }
        out
    }

    /// `L402 <token string>` (or `LSAT …`), for clients and tests.
    pub fn to_authorization(&self, scheme: Scheme) -> String {
        format!("{scheme} {}", self.to_token_string())
    }
}

/// `<standard padded b64 macaroon>:<lowercase hex proof>`: the credential string the sidecar
/// hands a visitor (and puts in the cookie). `proof` is the preimage or the deposit receipt;
/// `None` gives the receipt-pending form `<b64>:`.
pub fn format_credential(macaroon: &Macaroon, proof: Option<&[u8; 32]>) -> String {
    let mut out = macaroon.to_base64();
    out.push(':');
    if let Some(proof) = proof {
        out.push_str(&hex::encode(proof));
    }
    out
}

#[cfg(test)]
#[path = "credential_tests.rs"]
mod tests;
