//! `GET /v1/sync?since=<seq>&limit=<n>`: the revocations since a sequence number, and the
//! policy version (a different one means "bootstrap again").

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

/// The answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncAnswer {
    pub policy_version: String,
    /// In sequence order.
    pub revocations: Vec<Revocation>,
    /// Ask with `since=` this next.
    pub next_since: u64,
    /// More than `limit` were waiting: ask again at once.
    pub more: bool,
}

/// A revoked token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub seq: u64,
    /// 64 hex.
    pub token_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_answer_parses_and_round_trips() {
        let sample = r#"{"policy_version":"3f9a0c1d2e4b5a69","revocations":[{"seq":41,"token_id":"a1b2"},{"seq":42,"token_id":"c3d4"}],"next_since":42,"more":false}"#;
        let answer = SyncAnswer {
            policy_version: "3f9a0c1d2e4b5a69".into(),
            revocations: alloc::vec![
                Revocation {
                    seq: 41,
                    token_id: "a1b2".into()
                },
                Revocation {
                    seq: 42,
                    token_id: "c3d4".into()
                },
            ],
            next_since: 42,
            more: false,
        };
        assert_eq!(serde_json::to_string(&answer).unwrap(), sample);
        assert_eq!(serde_json::from_str::<SyncAnswer>(sample).unwrap(), answer);
    }
}
