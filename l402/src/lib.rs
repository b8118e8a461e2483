//! L402 protocol core for lightning-wall: macaroon V2 codec and HMAC chain, the 66-byte
//! identifier, caveats and their attenuation rules, the `WWW-Authenticate`/`Authorization`
//! grammar, the key ring, per-token root keys and deposit receipts.
//!
//! Pure: no I/O, no clock, no randomness (callers pass `now` and random token ids), no
//! proxy-wasm; builds for wasm32 and native. It must never panic on any input and never put a
//! secret (key, preimage, receipt, macaroon signature, credential) in a `Debug` string or an
//! error message.
//!
//! The filter's hot path is [`verify`] (or [`verify_authorization`]); the sidecar mints with
//! [`KeyRing::mint`], builds challenges with [`Challenge`], receipts with
//! [`KeyEntry::deposit_receipt`] and credential strings with [`format_credential`]; the
//! `token inspect` command uses [`inspect()`].
//!
//! Caveat namespace (`lw_`), see [`caveat`] and `docs/caveats.md`:
//! `lw_mode=pay|deposit`, `lw_route=<route id>`, `lw_methods=GET,HEAD`, `lw_key=<key id>`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod caveat;
mod chain;
pub mod challenge;
pub mod credential;
mod encoding;
pub mod identifier;
pub mod inspect;
pub mod keys;
pub mod macaroon;
pub mod mint;
pub mod verify;

pub use caveat::{Caveat, CaveatError, CaveatSet, Mode};
pub use challenge::{Challenge, ChallengeError, ParsedChallenge, parse_challenge};
pub use credential::{Credential, CredentialError, Scheme, format_credential};
pub use identifier::{IDENTIFIER_LEN, Identifier, IdentifierError};
pub use inspect::{InspectError, Inspection, inspect};
pub use keys::{
    DepositReceipt, KeyEntry, KeyId, KeyRing, KeyRingError, MasterKey, PaymentHash, Preimage,
    Proof, RootKey, TokenId,
};
pub use macaroon::{Macaroon, MacaroonError, MacaroonRef};
pub use mint::{LOCATION, MintError, TokenSpec};
pub use verify::{
    RequestContext, VerifiedToken, VerifyError, check_request, check_signature, verify,
    verify_authorization, verify_macaroon,
};
