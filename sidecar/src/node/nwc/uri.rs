//! The NWC connection string, `nostr+walletconnect://<wallet pubkey>?relay=<url>&secret=<hex>`
//! (NIP-47 "Nostr Wallet Connect URI"), parsed and checked before anything connects.
//!
//! The string holds the client's secret key, which signs every request the wallet obeys: it is a
//! secret (configured only from `{file:}`/`{env:}`), never logged, and no error repeats it.

use std::fmt;

/// A parsed connection string. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionString {
    /// The wallet service's public key (32 bytes, x-only, hex).
    pub wallet_pubkey: [u8; 32],
    /// Relays the wallet listens on, in the order given (at least one).
    pub relays: Vec<String>,
    /// The client's secret key (32 bytes).
    pub secret: [u8; 32],
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionString")
            .field("wallet_pubkey", &hex::encode(self.wallet_pubkey))
            .field("relays", &self.relays)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// What is wrong with a connection string; each message says how to fix it and none repeats
/// the secret.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error(
        "must start with nostr+walletconnect:// (copy the whole connection string from the wallet's \
         app connection page)"
    )]
    Scheme,
    #[error(
        "the wallet's public key after nostr+walletconnect:// must be 64 hex characters (got {got} \
         characters)"
    )]
    WalletPubkey { got: usize },
    #[error("names no relay: add relay=wss://… (the wallet's relay, URL-encoded)")]
    NoRelay,
    #[error("relay {relay:?} is not a ws:// or wss:// URL with a host")]
    RelayUrl { relay: String },
    #[error(
        "relay {relay:?} is plain ws:// to a host that is not loopback: requests and their \
         metadata would cross the network unencrypted; use wss:// (or ws:// to 127.0.0.1/localhost \
         for a relay on this machine)"
    )]
    PlainRelay { relay: String },
    #[error("has no secret=<64 hex characters> (the client key the wallet generated for this app)")]
    NoSecret,
    #[error("secret must be 64 hex characters")]
    SecretHex,
    #[error("has {name} twice")]
    Repeated { name: &'static str },
    #[error("query part {part:?} is not name=value")]
    Query { part: String },
}

const SCHEME: &str = "nostr+walletconnect://";

impl ConnectionString {
    pub fn parse(text: &str) -> Result<Self, UriError> {
        let text = text.trim();
        let rest = text
            .get(..SCHEME.len())
            .filter(|s| s.eq_ignore_ascii_case(SCHEME))
            .and_then(|_| text.get(SCHEME.len()..))
            .ok_or(UriError::Scheme)?;
        let (pubkey, query) = rest.split_once('?').unwrap_or((rest, ""));
        let pubkey = pubkey.trim_end_matches('/');
        let wallet_pubkey = hex32(pubkey).ok_or(UriError::WalletPubkey {
            got: pubkey.chars().count(),
        })?;
        let mut relays = Vec::new();
        let mut secret = None;
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').ok_or_else(|| UriError::Query {
                part: if part.len() > 40 {
                    "<long>".to_owned()
                } else {
                    part.to_owned()
                },
            })?;
            match name {
                "relay" => {
                    let relay = percent_decode(value);
                    check_relay(&relay)?;
                    relays.push(relay);
                }
                "secret" => {
                    if secret.is_some() {
                        return Err(UriError::Repeated { name: "secret" });
                    }
                    secret = Some(hex32(&percent_decode(value)).ok_or(UriError::SecretHex)?);
                }
                // lud16 and future parameters mean nothing to the sidecar.
                _ => {}
            }
        }
        if relays.is_empty() {
            return Err(UriError::NoRelay);
        }
        Ok(Self {
            wallet_pubkey,
            relays,
            secret: secret.ok_or(UriError::NoSecret)?,
        })
    }
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    (text.len() == 64)
        .then(|| hex::decode_to_slice(text, &mut out).ok())
        .flatten()
        .map(|()| out)
}

/// `%XX` escapes (relay URLs are URL-encoded inside the query); invalid escapes stay as they are.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = (b == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match escaped {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(if b == b'+' { b' ' } else { b });
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn check_relay(relay: &str) -> Result<(), UriError> {
    let bad = || UriError::RelayUrl {
        relay: relay.to_owned(),
    };
    let (plain, rest) = if let Some(rest) = relay.strip_prefix("wss://") {
        (false, rest)
    } else if let Some(rest) = relay.strip_prefix("ws://") {
        (true, rest)
    } else {
        return Err(bad());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    if plain && !is_loopback(host) {
        return Err(UriError::PlainRelay {
            relay: relay.to_owned(),
        });
    }
    Ok(())
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBKEY: &str = "b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4";
    const SECRET: &str = "71a8c14c1407c113601079c4302dab36460f0ccd0ad506f1f2dc73b5100e4f3c";

    #[test]
    fn the_nip47_example_parses() {
        let uri = ConnectionString::parse(&format!(
            "nostr+walletconnect://{PUBKEY}?relay=wss%3A%2F%2Frelay.damus.io&secret={SECRET}"
        ))
        .unwrap();
        assert_eq!(hex::encode(uri.wallet_pubkey), PUBKEY);
        assert_eq!(uri.relays, vec!["wss://relay.damus.io".to_owned()]);
        assert_eq!(hex::encode(uri.secret), SECRET);
    }

    #[test]
    fn several_relays_and_unknown_parameters() {
        let uri = ConnectionString::parse(&format!(
            "nostr+walletconnect://{PUBKEY}?relay=wss://a.example&lud16=me%40x.org&relay=ws://127.0.0.1:7777&secret={SECRET}"
        ))
        .unwrap();
        assert_eq!(uri.relays, vec!["wss://a.example", "ws://127.0.0.1:7777"]);
    }

    #[test]
    fn every_mistake_is_named() {
        let cases = [
            (
                format!("nostr+walletconnect:{PUBKEY}?relay=wss://r&secret={SECRET}"),
                UriError::Scheme,
            ),
            (
                format!("https://{PUBKEY}?relay=wss://r&secret={SECRET}"),
                UriError::Scheme,
            ),
            (
                format!("nostr+walletconnect://npub1xyz?relay=wss://r&secret={SECRET}"),
                UriError::WalletPubkey { got: 8 },
            ),
            (
                format!("nostr+walletconnect://{PUBKEY}?secret={SECRET}"),
                UriError::NoRelay,
            ),
            (
                format!("nostr+walletconnect://{PUBKEY}?relay=wss://r"),
                UriError::NoSecret,
            ),
            (
                format!("nostr+walletconnect://{PUBKEY}?relay=wss://r&secret=abc"),
                UriError::SecretHex,
            ),
            (
                format!("nostr+walletconnect://{PUBKEY}?relay=https://r&secret={SECRET}"),
                UriError::RelayUrl {
                    relay: "https://r".into(),
                },
            ),
            (
                format!("nostr+walletconnect://{PUBKEY}?relay=ws://relay.example&secret={SECRET}"),
                UriError::PlainRelay {
                    relay: "ws://relay.example".into(),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(ConnectionString::parse(&text), Err(expected), "{text}");
        }
    }

    #[test]
    fn plain_ws_is_fine_on_loopback() {
        for relay in ["ws://127.0.0.1:4869", "ws://localhost:1", "ws://[::1]:9"] {
            ConnectionString::parse(&format!(
                "nostr+walletconnect://{PUBKEY}?relay={relay}&secret={SECRET}"
            ))
            .unwrap();
        }
    }

    #[test]
    fn no_error_or_debug_shows_the_secret() {
        let uri = ConnectionString::parse(&format!(
            "nostr+walletconnect://{PUBKEY}?relay=wss://r&secret={SECRET}"
        ))
        .unwrap();
        assert!(!format!("{uri:?}").contains(SECRET));
        let err = ConnectionString::parse(&format!(
            "nostr+walletconnect://{PUBKEY}?relay=ws://far.example&secret={SECRET}"
        ))
        .unwrap_err();
        assert!(!err.to_string().contains(SECRET));
    }
}
