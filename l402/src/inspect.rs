//! Decoding a credential or macaroon for humans (`lightning-wall token inspect`): identifier and
//! caveats, without verifying anything. It must never print the signature or the proof, and
//! its output must never be mistaken for a verification result.

use core::fmt;

use crate::caveat::{Caveat, CaveatError};
use crate::credential::{Credential, CredentialError};
use crate::encoding;
use crate::identifier::{Identifier, IdentifierError};
use crate::macaroon::{MAX_MACAROON_LEN, MacaroonError, MacaroonRef};

/// Why text cannot be inspected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    /// Not a credential (`[L402 ]<b64>:<hex>`) nor a base64 macaroon.
    #[error("credential: {0}")]
    Credential(#[from] CredentialError),
    /// Base64 of something that is not a macaroon.
    #[error("macaroon: {0}")]
    Macaroon(#[from] MacaroonError),
}

/// One caveat as written and as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectedCaveat {
    /// The caveat text (non-UTF-8 bytes replaced).
    pub text: String,
    /// What it means, or why it is malformed. `None` for conditions the verifier skips.
    pub meaning: Option<Result<String, CaveatError>>,
}

/// What a credential or macaroon contains. Nothing here has been verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The location hint.
    pub location: Option<String>,
    /// The identifier decoded as L402, or why it is not one.
    pub identifier: Result<Identifier, IdentifierError>,
    /// Identifier bytes in hex.
    pub identifier_hex: String,
    /// The caveats in order.
    pub caveats: Vec<InspectedCaveat>,
    /// How many macaroons the credential held.
    pub macaroons: usize,
    /// Whether a proof followed the `:` (its value is not shown).
    pub has_proof: bool,
}

/// Decodes `L402 <b64>:<hex>`, `<b64>:<hex>` (the cookie) or a bare base64 macaroon.
pub fn inspect(text: &str) -> Result<Inspection, InspectError> {
    let text = text.trim();
    let (bytes, macaroons, has_proof) =
        if let Some(credential) = Credential::parse_authorization(text.as_bytes())? {
            (
                credential.macaroon().to_vec(),
                credential.macaroon_count(),
                credential.proof().is_some(),
            )
        } else if text.contains(':') {
            let credential = Credential::parse_token(text.as_bytes())?;
            (
                credential.macaroon().to_vec(),
                credential.macaroon_count(),
                credential.proof().is_some(),
            )
        } else {
            let bytes = encoding::decode_base64_any(text.as_bytes(), MAX_MACAROON_LEN)
                .map_err(|_| MacaroonError::Base64)?;
            (bytes, 1, false)
        };
    let mac = MacaroonRef::decode(&bytes)?;
    let caveats = mac
        .caveats()
        .map(|raw| InspectedCaveat {
            text: String::from_utf8_lossy(raw).into_owned(),
            meaning: match Caveat::parse(raw) {
                Ok(Caveat::Unknown(_)) => None,
                Ok(c) => Some(Ok(describe(&c))),
                Err(e) => Some(Err(e)),
            },
        })
        .collect();
    Ok(Inspection {
        location: mac.location().map(str::to_owned),
        identifier: Identifier::decode(mac.identifier()),
        identifier_hex: hex::encode(mac.identifier()),
        caveats,
        macaroons,
        has_proof,
    })
}

fn describe(c: &Caveat<'_>) -> String {
    match c {
        Caveat::Services(list) => format!(
            "services: {}",
            list.iter()
                .map(|(n, t)| format!("{n} (tier {t})"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Caveat::ValidUntil { service, unix } => format!("{service}: valid until unix {unix}"),
        Caveat::Capabilities {
            service,
            capabilities,
        } => format!("{service}: capabilities [{}]", capabilities.as_str()),
        Caveat::Mode(m) => format!("mode: {m}"),
        Caveat::Route(r) => format!("route: {r}"),
        Caveat::Methods(m) => format!("methods: {}", m.as_str()),
        Caveat::KeyId(k) => format!("master key id: {k}"),
        Caveat::Unknown(_) => "unknown (skipped)".to_owned(),
    }
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "NOT VERIFIED: decoded only")?;
        writeln!(
            f,
            "location:     {}",
            self.location.as_deref().unwrap_or("(none)")
        )?;
        match &self.identifier {
            Ok(id) => {
                writeln!(f, "version:      0")?;
                writeln!(f, "payment hash: {}", id.payment_hash)?;
                writeln!(f, "token id:     {}", id.token_id)?;
            }
            Err(e) => writeln!(f, "identifier:   {} (not L402: {e})", self.identifier_hex)?,
        }
        if self.macaroons > 1 {
            writeln!(f, "macaroons:    {}", self.macaroons)?;
        }
        writeln!(
            f,
            "proof:        {}",
            if self.has_proof {
                "present (not shown)"
            } else {
                "none"
            }
        )?;
        writeln!(f, "caveats:      {}", self.caveats.len())?;
        for (i, c) in self.caveats.iter().enumerate() {
            match &c.meaning {
                None => writeln!(f, "  {i}: {}  (unknown, skipped)", c.text)?,
                Some(Ok(m)) => writeln!(f, "  {i}: {}  ({m})", c.text)?,
                Some(Err(e)) => writeln!(f, "  {i}: {}  (MALFORMED: {e})", c.text)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caveat::Mode;
    use crate::keys::{KeyRing, PaymentHash, TokenId};
    use crate::mint::TokenSpec;

    #[test]
    fn inspection_lists_identifier_and_caveats_without_the_proof() {
        let ring = KeyRing::from_keys([("k1", [1; 32])]).unwrap();
        let mut mac = ring
            .mint(
                "k1",
                &TokenSpec {
                    service: "wall",
                    mode: Mode::Pay,
                    route: "api",
                    methods: &[],
                    valid_until: 99,
                    payment_hash: PaymentHash([3; 32]),
                    token_id: TokenId([4; 32]),
                },
            )
            .unwrap();
        mac.add_first_party_caveat(b"ip=10.0.0.1").unwrap();
        let proof = [0xcd; 32];
        let credential = crate::format_credential(&mac, Some(&proof));
        for text in [
            format!("L402 {credential}"),
            credential.clone(),
            mac.to_base64(),
        ] {
            let i = inspect(&text).unwrap();
            assert_eq!(i.identifier.unwrap().token_id, TokenId([4; 32]));
            assert_eq!(i.caveats.len(), 6);
            assert_eq!(i.caveats[5].meaning, None);
            let shown = i.to_string();
            assert!(shown.contains("mode: pay"), "{shown}");
            assert!(shown.contains(&"04".repeat(32)), "{shown}");
            assert!(!shown.contains("cdcd"), "{shown}");
            assert!(!shown.contains(&hex::encode(mac.signature())), "{shown}");
        }
        assert!(inspect("not a macaroon").is_err());
    }
}
