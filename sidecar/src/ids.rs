//! The identifiers every part of the sidecar shares: an invoice's payment hash and preimage, a
//! token's id, a point in time. Here, below the node and the deposit rules, so that the pure
//! rules (`deposit::machine`) need not import the node to name a deposit.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// sha256 of a preimage; identifies an invoice on the node.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PaymentHash(pub [u8; 32]);

/// The secret that settles an invoice. Never logged: `Debug` is redacted.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Preimage(pub [u8; 32]);

impl Preimage {
    /// The hash the invoice this preimage settles is known by.
    pub fn payment_hash(&self) -> PaymentHash {
        use sha2::{Digest, Sha256};
        PaymentHash(Sha256::digest(self.0).into())
    }
}

impl fmt::Debug for PaymentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PaymentHash({})", hex::encode(self.0))
    }
}

impl fmt::Debug for Preimage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Preimage(<redacted>)")
    }
}

/// Unix time in seconds. The machine never reads a clock: callers pass `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub fn now() -> Timestamp {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Timestamp(secs)
    }

    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.as_secs()))
    }
}

/// The random half of the L402 identifier; names a token (and its deposit) in revocations.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId(pub [u8; 32]);

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenId({})", hex::encode(self.0))
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}
