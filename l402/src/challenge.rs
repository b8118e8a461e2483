//! The `WWW-Authenticate` challenge of a 402: `L402 macaroon="<b64>", invoice="<bolt11>"`, the
//! legacy `LSAT` form, and an optional `, version="0"` (docs/wire-format.md "Challenge"). It
//! must never emit `token=` alone: most clients in use match only `macaroon=` and `invoice=`.

use crate::credential::Scheme;
use crate::encoding;
use crate::macaroon::{MAX_MACAROON_LEN, Macaroon};

/// Longest invoice accepted in a challenge (BOLT 11 invoices with route hints run to a few KiB).
pub const MAX_INVOICE_LEN: usize = 7089;

/// Why a challenge cannot be built or parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// The invoice is empty, too long or has characters outside bech32's alphanumerics, so it
    /// could break out of the quoted string.
    #[error("invoice must be 1 to {MAX_INVOICE_LEN} ASCII letters and digits (bech32)")]
    BadInvoice,
    /// Not an `L402`/`LSAT` challenge.
    #[error("not an L402 or LSAT challenge")]
    NotL402,
    /// A parameter is missing, repeated or not a quoted string.
    #[error("challenge parameters are malformed or missing macaroon/invoice")]
    BadParameters,
    /// The macaroon parameter is not base64 or too large.
    #[error("challenge macaroon is not base64")]
    BadMacaroon,
}

fn is_invoice(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_INVOICE_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A 402 challenge: the macaroon (encoded once) and the invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    macaroon_b64: String,
    invoice: String,
}

impl Challenge {
    /// A challenge for `macaroon` and `invoice` (a BOLT 11 string).
    pub fn new(macaroon: &Macaroon, invoice: &str) -> Result<Self, ChallengeError> {
        if !is_invoice(invoice) {
            return Err(ChallengeError::BadInvoice);
        }
        Ok(Self {
            macaroon_b64: macaroon.to_base64(),
            invoice: invoice.to_owned(),
        })
    }

    /// The macaroon in standard padded base64.
    pub fn macaroon_base64(&self) -> &str {
        &self.macaroon_b64
    }

    /// The invoice.
    pub fn invoice(&self) -> &str {
        &self.invoice
    }

    /// `<scheme> macaroon="…", invoice="…"`, with `, version="0"` appended when asked (tolerated
    /// by the clients that ignore it, read by the newer spec's).
    pub fn header_value(&self, scheme: Scheme, with_version: bool) -> String {
        let mut out = format!(
            "{scheme} macaroon=\"{}\", invoice=\"{}\"",
            self.macaroon_b64, self.invoice
        );
        if with_version {
            out.push_str(", version=\"0\"");
        }
        out
    }

    /// The two values Aperture sends, in its order: `LSAT` first (old Loop/Pool clients read
    /// only the first header), then `L402`.
    pub fn header_values(&self) -> [String; 2] {
        [
            self.header_value(Scheme::Lsat, false),
            self.header_value(Scheme::L402, false),
        ]
    }
}

/// A challenge as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedChallenge {
    /// The scheme.
    pub scheme: Scheme,
    /// The macaroon's binary encoding.
    pub macaroon: Vec<u8>,
    /// The invoice.
    pub invoice: String,
    /// The `version` parameter, if present.
    pub version: Option<String>,
}

/// Parses one `WWW-Authenticate` value of the form this module emits (auth-params with quoted
/// values; `token=` is accepted as a synonym of `macaroon=`, as in the newer spec text).
pub fn parse_challenge(value: &str) -> Result<ParsedChallenge, ChallengeError> {
    let value = value.trim_matches([' ', '\t']);
    let (scheme, params) = value.split_once(' ').ok_or(ChallengeError::NotL402)?;
    let scheme = Scheme::parse(scheme.as_bytes()).ok_or(ChallengeError::NotL402)?;
    let (mut macaroon, mut invoice, mut version) = (None, None, None);
    for param in params.split(',') {
        let (name, quoted) = param
            .trim_matches([' ', '\t'])
            .split_once('=')
            .ok_or(ChallengeError::BadParameters)?;
        let inner = quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .filter(|q| !q.contains(['"', '\\']))
            .ok_or(ChallengeError::BadParameters)?;
        let slot = match name.to_ascii_lowercase().as_str() {
            "macaroon" | "token" => &mut macaroon,
            "invoice" => &mut invoice,
            "version" => &mut version,
            _ => continue,
        };
        if slot.replace(inner).is_some() {
            return Err(ChallengeError::BadParameters);
        }
    }
    let (Some(macaroon), Some(invoice)) = (macaroon, invoice) else {
        return Err(ChallengeError::BadParameters);
    };
    if !is_invoice(invoice) {
        return Err(ChallengeError::BadInvoice);
    }
    let macaroon = encoding::decode_base64_any(macaroon.as_bytes(), MAX_MACAROON_LEN)
        .map_err(|_| ChallengeError::BadMacaroon)?;
    Ok(ParsedChallenge {
        scheme,
        macaroon,
        invoice: invoice.to_owned(),
        version: version.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::RootKey;
    use proptest::prelude::*;

    const INVOICE: &str =
        "lnbc10n1pjexample0qqsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs";

    fn mac() -> Macaroon {
        Macaroon::new(
            &RootKey::from_bytes([1; 32]),
            b"identifier",
            Some("lightning-wall"),
        )
        .unwrap()
    }

    #[test]
    fn the_challenge_uses_the_macaroon_and_invoice_parameters() {
        let c = Challenge::new(&mac(), INVOICE).unwrap();
        let b64 = mac().to_base64();
        assert_eq!(
            c.header_value(Scheme::L402, false),
            format!("L402 macaroon=\"{b64}\", invoice=\"{INVOICE}\"")
        );
        assert_eq!(
            c.header_value(Scheme::L402, true),
            format!("L402 macaroon=\"{b64}\", invoice=\"{INVOICE}\", version=\"0\"")
        );
        let [first, second] = c.header_values();
        assert!(first.starts_with("LSAT macaroon=\""));
        assert!(second.starts_with("L402 macaroon=\""));
    }

    #[test]
    fn invoices_that_could_break_the_quoting_are_refused() {
        for bad in [
            "",
            "lnbc\"",
            "lnbc, x=\"y",
            "lnbc 1",
            &"a".repeat(MAX_INVOICE_LEN + 1),
        ] {
            assert_eq!(Challenge::new(&mac(), bad), Err(ChallengeError::BadInvoice));
        }
    }

    #[test]
    fn emitted_challenges_parse_back() {
        let c = Challenge::new(&mac(), INVOICE).unwrap();
        for with_version in [false, true] {
            for scheme in [Scheme::L402, Scheme::Lsat] {
                let parsed = parse_challenge(&c.header_value(scheme, with_version)).unwrap();
                assert_eq!(parsed.scheme, scheme);
                assert_eq!(parsed.macaroon, mac().encode());
                assert_eq!(parsed.invoice, INVOICE);
                assert_eq!(parsed.version.is_some(), with_version);
            }
        }
        let token_form = format!(
            "L402 version=\"0\", token=\"{}\", invoice=\"{INVOICE}\"",
            mac().to_base64()
        );
        assert_eq!(
            parse_challenge(&token_form).unwrap().macaroon,
            mac().encode()
        );
    }

    #[test]
    fn malformed_challenges_are_rejected() {
        assert_eq!(
            parse_challenge("Bearer realm=\"x\""),
            Err(ChallengeError::NotL402)
        );
        assert_eq!(
            parse_challenge(&format!("L402 invoice=\"{INVOICE}\"")),
            Err(ChallengeError::BadParameters)
        );
        assert_eq!(
            parse_challenge(&format!(
                "L402 macaroon=\"AA\", macaroon=\"AA\", invoice=\"{INVOICE}\""
            )),
            Err(ChallengeError::BadParameters)
        );
        assert_eq!(
            parse_challenge(&format!("L402 macaroon=\"!!\", invoice=\"{INVOICE}\"")),
            Err(ChallengeError::BadMacaroon)
        );
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_challenges_never_panics(value in "\\PC{0,120}") {
            let _ = parse_challenge(&value);
        }
    }
}
