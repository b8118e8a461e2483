//! L402 protocol core for lightning-wall: macaroon V2 codec and HMAC chain, the 66-byte
//! identifier, caveats and their attenuation rules, the `WWW-Authenticate`/`Authorization`
//! grammar, the key ring, per-token root keys and deposit receipts.
//!
//! Pure: no I/O, no clock, no randomness (callers pass `now` and random token ids), no
//! proxy-wasm; builds for wasm32 and native. It must never panic on any input and never put a
//! secret (key, preimage, receipt, macaroon signature, credential) in a `Debug` string or an
//! error message.
//!
//! The filter's hot path is [`verify()`] on a [`Credential`] parsed from `Authorization` values
//! ([`Credential::from_authorization_values`]) or the `lightning-wall` cookie
//! ([`Credential::from_cookie_headers`]) or Aperture's gRPC `Macaroon` header
//! ([`Credential::from_macaroon_header`]), or [`verify_authorization`] in one call; the sidecar
//! mints with
//! [`KeyRing::mint`], builds challenges with [`Challenge`], receipts with
//! [`KeyEntry::deposit_receipt`] (or [`deposit_receipt_for`] a presented macaroon) and
//! credential strings with [`format_credential`]; the
//! `token inspect` command uses [`inspect()`].
//!
//! Caveat namespace (`lw_`), see [`caveat`] and `docs/caveats.md`:
//! `lw_mode=pay|deposit`, `lw_route=<route id>`, `lw_methods=GET,HEAD`, `lw_key=<key id>`.
//!
//! ```
//! use l402::{KeyRing, Mode, Preimage, RequestContext, TokenId, TokenSpec};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Sidecar: mint a token for a pay route (token id and preimage come from a CSPRNG).
//! let ring = KeyRing::from_keys([("2026-11", [0x42; 32])])?;
//! let preimage = Preimage::from_bytes([7; 32]);
//! let macaroon = ring.mint("2026-11", &TokenSpec {
//!     service: "wall",
//!     mode: Mode::Pay,
//!     route: "api",
//!     methods: &["GET"],
//!     valid_until: 1_800_000_600,
//!     payment_hash: preimage.payment_hash(),
//!     token_id: TokenId([9; 32]),
//! })?;
//! let challenge = l402::Challenge::new(&macaroon, "lnbc10n1p3examplexyz")?;
//! let _www_authenticate = challenge.header_values(); // [LSAT …, L402 …]
//!
//! // Client, once paid: `Authorization: L402 <macaroon>:<preimage>`.
//! let header = format!("L402 {}", l402::format_credential(&macaroon, Some(preimage.expose_secret())));
//!
//! // Filter: verify with no call-out.
//! let ctx = RequestContext {
//!     service: "wall",
//!     now_unix: 1_800_000_000,
//!     route: "api",
//!     method: "GET",
//!     mode: Mode::Pay,
//!     capability: None,
//! };
//! let token = l402::verify_authorization(&ring, [header.as_bytes()], &ctx)?.ok_or("no L402")?;
//! assert_eq!(token.token_id.to_hex(), "09".repeat(32));
//!
//! // An expired (or otherwise refused) credential gives a stable reason.
//! let later = RequestContext { now_unix: 1_800_000_600, ..ctx };
//! let err = l402::verify_authorization(&ring, [header.as_bytes()], &later).unwrap_err();
//! assert_eq!(err.reason(), "expired");
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod caveat;
mod chain;
pub mod challenge;
pub mod credential;
mod encoding;
mod hmac_sha256;
pub mod identifier;
pub mod inspect;
pub mod keys;
pub mod macaroon;
pub mod mint;
pub mod verify;

pub use caveat::{Caveat, CaveatError, CaveatSet, Mode};
pub use challenge::{Challenge, ChallengeError, ParsedChallenge, parse_challenge};
pub use credential::{COOKIE_NAME, Credential, CredentialError, Scheme, format_credential};
pub use identifier::{IDENTIFIER_LEN, Identifier, IdentifierError};
pub use inspect::{InspectError, Inspection, inspect};
pub use keys::{
    DepositReceipt, KeyEntry, KeyId, KeyRing, KeyRingError, MasterKey, PayReceipt, PaymentHash,
    Preimage, Proof, RootKey, TokenId,
};
pub use macaroon::{Macaroon, MacaroonError, MacaroonRef};
pub use mint::{LOCATION, MintError, TokenSpec};
pub use verify::{
    RequestContext, VerifiedToken, VerifyError, check_request, check_signature,
    deposit_receipt_for, pay_receipt_for, verify, verify_authorization, verify_macaroon,
};
