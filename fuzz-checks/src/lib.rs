//! The properties every fuzz target checks, one function per target (named as the target).
//! `fuzz/fuzz_targets/<name>.rs` is a one-line call to the function here, so libFuzzer (nightly,
//! sanitizers) and the stable replay of the committed corpora (`tests/corpus.rs`, in `make
//! test`) drive exactly the same code. Each function feeds untrusted bytes to the real parser
//! that reads them in production, and panics only when a property is broken.

mod filter;
mod l402_targets;
mod lnd;
mod sidecar_config;

pub use filter::{filter_answers, filter_config};
pub use l402_targets::{caveat_parse, credential_header, macaroon_decode, verify};
pub use lnd::lnd_answers;
pub use sidecar_config::sidecar_config;

/// A target's checks: panics when a property is broken.
pub type Check = fn(&[u8]);

/// Every target by name (the names of `fuzz/Cargo.toml`'s `[[bin]]`s and `fuzz/corpus/` dirs).
pub const TARGETS: &[(&str, Check)] = &[
    ("caveat_parse", caveat_parse),
    ("credential_header", credential_header),
    ("filter_answers", filter_answers),
    ("filter_config", filter_config),
    ("lnd_answers", lnd_answers),
    ("macaroon_decode", macaroon_decode),
    ("sidecar_config", sidecar_config),
    ("verify", verify),
];
