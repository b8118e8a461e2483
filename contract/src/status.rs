//! The deposit and payment status endpoints (`GET` [`crate::paths::DEPOSIT_STATUS`] and
//! [`crate::paths::PAYMENT_STATUS`]) answer browsers and clients with more, but the filter
//! asks them one thing when a credential arrives with an empty proof: the `state`.

use alloc::string::String;

use serde::{Deserialize, Serialize};

/// The part of both status answers the filter reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusState {
    pub state: String,
}

/// A deposit's state once its hold invoice is held (and not revoked).
pub const HELD: &str = "held";
/// An invoice's state once paid (the node's `SETTLED`, lower case).
pub const SETTLED: &str = "settled";

/// `GET` [`crate::paths::PAYMENT_STATUS`]: the node's view of a pay token's invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentStatus {
    /// `open`, `settled` or `canceled`.
    pub state: String,
    /// 64 hex.
    pub payment_hash: String,
    /// `<macaroon>:<pay receipt hex>`, only when settled and the token is not revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payment_status_reads_as_documented_and_the_filter_finds_its_state() {
        let sample = r#"{"state":"settled","payment_hash":"5f0c","credential":"AgEO:99"}"#;
        let status = PaymentStatus {
            state: SETTLED.into(),
            payment_hash: "5f0c".into(),
            credential: Some("AgEO:99".into()),
        };
        assert_eq!(serde_json::to_string(&status).unwrap(), sample);
        assert_eq!(
            serde_json::from_str::<PaymentStatus>(sample).unwrap(),
            status
        );
        let open = r#"{"state":"open","payment_hash":"5f0c"}"#;
        let status = PaymentStatus {
            state: "open".into(),
            payment_hash: "5f0c".into(),
            credential: None,
        };
        assert_eq!(serde_json::to_string(&status).unwrap(), open);
        assert_eq!(
            serde_json::from_str::<StatusState>(sample).unwrap().state,
            SETTLED
        );
        let deposit = r#"{"state":"held","payment_hash":"5f0c","token_id":"a1b2","held_since":1}"#;
        assert_eq!(
            serde_json::from_str::<StatusState>(deposit).unwrap().state,
            HELD
        );
    }
}
