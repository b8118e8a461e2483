//! `POST /v1/challenge`: the filter asks the sidecar to mint a challenge for an unpaid request;
//! the answer is everything the 402 needs.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::RouteMode;

/// The request body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    /// The matched route's id.
    pub route_id: String,
    /// The visitor's address as the proxy saw it (IPv4 or IPv6 text), for the sidecar's mint
    /// rate and per-network caps.
    pub client_ip: String,
}

/// The 200 answer: a minted challenge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeAnswer {
    /// `pay` or `deposit` (never `free`: nothing is minted for a free route).
    pub mode: RouteMode,
    pub route_id: String,
    /// Standard base64 with padding.
    pub macaroon: String,
    /// BOLT11.
    pub invoice: String,
    /// 64 hex.
    pub payment_hash: String,
    /// 64 hex.
    pub token_id: String,
    pub amount_sat: u64,
    /// Unix seconds after which the invoice can no longer be paid.
    pub invoice_expires_at: u64,
    /// Unix seconds the token is valid until (exclusive).
    pub valid_until: u64,
    /// Ready-made `WWW-Authenticate` values: LSAT first, then L402.
    pub www_authenticate: Vec<String>,
}

/// The sidecar's error code when its global mint budget is spent: the filter answers 503 with
/// the sidecar's `Retry-After` whatever the route's failure mode.
pub const MINT_BUDGET_SPENT: &str = "mint_budget_spent";

/// The sidecar's error code (503, with `Retry-After`) while its operator has drained the wall
/// (`admin drain`): the sidecar is up and refusing on purpose, so the filter does not mark it
/// down, and the route's failure mode decides the visitor's answer.
pub const DRAINING: &str = "draining";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_reads_as_documented_and_round_trips() {
        let sample = r#"{"route_id":"wall","client_ip":"203.0.113.9"}"#;
        let request = ChallengeRequest {
            route_id: "wall".into(),
            client_ip: "203.0.113.9".into(),
        };
        assert_eq!(serde_json::to_string(&request).unwrap(), sample);
        assert_eq!(
            serde_json::from_str::<ChallengeRequest>(sample).unwrap(),
            request
        );
        let unknown = r#"{"route_id":"wall","client_ip":"203.0.113.9","x":1}"#;
        assert!(serde_json::from_str::<ChallengeRequest>(unknown).is_err());
    }

    #[test]
    fn the_answer_reads_as_documented_and_round_trips() {
        let sample = r#"{"mode":"deposit","route_id":"wall","macaroon":"AgEO","invoice":"lnbcrt10u1p","payment_hash":"5f0c","token_id":"a1b2","amount_sat":1000,"invoice_expires_at":1767225600,"valid_until":1767229200,"www_authenticate":["LSAT macaroon=\"AgEO\", invoice=\"lnbcrt10u1p\"","L402 macaroon=\"AgEO\", invoice=\"lnbcrt10u1p\""]}"#;
        let answer = ChallengeAnswer {
            mode: RouteMode::Deposit,
            route_id: "wall".into(),
            macaroon: "AgEO".into(),
            invoice: "lnbcrt10u1p".into(),
            payment_hash: "5f0c".into(),
            token_id: "a1b2".into(),
            amount_sat: 1000,
            invoice_expires_at: 1_767_225_600,
            valid_until: 1_767_229_200,
            www_authenticate: alloc::vec![
                r#"LSAT macaroon="AgEO", invoice="lnbcrt10u1p""#.into(),
                r#"L402 macaroon="AgEO", invoice="lnbcrt10u1p""#.into(),
            ],
        };
        assert_eq!(serde_json::to_string(&answer).unwrap(), sample);
        assert_eq!(
            serde_json::from_str::<ChallengeAnswer>(sample).unwrap(),
            answer
        );
        // A newer sidecar may add fields; the filter reads on.
        let newer = sample.replacen('{', r#"{"later":true,"#, 1);
        assert_eq!(
            serde_json::from_str::<ChallengeAnswer>(&newer).unwrap(),
            answer
        );
    }
}
