//! `POST /v1/events`: what the filter tells the sidecar about tokens — activity, usage counts,
//! verdicts and rewards. The sidecar refuses a batch with an unknown event type or field (400)
//! as a whole, so a version mismatch is loud rather than a verdict silently dropped.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

/// Most events the sidecar takes in one batch.
pub const MAX_EVENTS: usize = 1000;

/// The request body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    pub events: Vec<Event>,
}

/// One event. `token_id` is 64 hex everywhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// Requests were served with this deposit token (resets its idle timer).
    Activity { token_id: String },
    /// One proxy instance's count so far of a deposit token's requests or upstream errors in a
    /// window (a count, not an increment: the sidecar keeps the highest, so a re-sent batch
    /// counts once, and sums the instances for the route's budgets).
    Usage(UsageCount),
    /// A forfeit or refund decided by the filter (trap path, rate limit, error storm) or taken
    /// from the upstream's `x-lightning-wall-verdict` response header.
    Verdict {
        token_id: String,
        verdict: Verdict,
        trigger: Trigger,
    },
    /// A reward granted by the upstream (`x-lightning-wall-reward` and `-reward-id` on its
    /// response to a request with a valid credential); credited once per (token, reward id).
    Reward {
        token_id: String,
        sats: u64,
        reward_id: String,
    },
    /// What the filter would have done on a shadow route (docs/operations.md "Shadow mode"),
    /// counted per (route, finding, trigger) since the last batch: an increment, so a flood is
    /// one event per tick, never one per request. A re-sent batch may count twice; findings are
    /// statistics, never money.
    Shadow {
        route_id: String,
        finding: Finding,
        /// What would have forfeited (`would_forfeit` only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trigger: Option<Trigger>,
        count: u64,
    },
}

/// The body of [`Event::Usage`]: one count, built by the filter and checked by the sidecar.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageCount {
    pub token_id: String,
    /// The proxy instance (all its workers share one count), 16 hex digits.
    pub reporter: String,
    pub kind: UsageKind,
    pub window_start: u64,
    pub count: u32,
}

impl UsageCount {
    /// The reporter as the filter numbers it; `None` unless exactly 16 hex digits (the one
    /// rule both sides apply: the filter re-queues only what it can parse, the sidecar refuses
    /// the batch).
    pub fn reporter_id(&self) -> Option<u64> {
        let r = self.reporter.as_bytes();
        if r.len() != 16 || !r.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u64::from_str_radix(&self.reporter, 16).ok()
    }
}

/// What the filter would have done on a shadow route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// Answered 402: a request without a valid credential.
    WouldChallenge,
    /// Forfeited the request's deposit (the trigger says why).
    WouldForfeit,
}

impl Finding {
    /// As on the wire, in metrics and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Finding::WouldChallenge => "would_challenge",
            Finding::WouldForfeit => "would_forfeit",
        }
    }
}

/// What a usage count is of: requests served on a deposit token (its route's `rate_limit`) or
/// upstream 4xx answers to them (`error_storm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageKind {
    /// Requests served.
    Requests,
    /// Upstream 4xx answers.
    Errors,
}

/// What to do with a deposit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Settle: the site keeps the deposit.
    Forfeit,
    /// Cancel: the money goes back.
    Refund,
}

/// What decided a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A request to one of the route's trap paths.
    TrapPath,
    /// The token's request rate exceeded the route's limit.
    RateLimit,
    /// Too many 4xx answers from the upstream in a window.
    ErrorStorm,
    /// `x-lightning-wall-verdict` in the upstream's response.
    Upstream,
}

impl Trigger {
    /// As on the wire (and in metric names).
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::TrapPath => "trap_path",
            Trigger::RateLimit => "rate_limit",
            Trigger::ErrorStorm => "error_storm",
            Trigger::Upstream => "upstream",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "a1b2";

    fn sample() -> EventBatch {
        EventBatch {
            events: alloc::vec![
                Event::Activity { token_id: T.into() },
                Event::Usage(UsageCount {
                    token_id: T.into(),
                    reporter: "00112233aabbccdd".into(),
                    kind: UsageKind::Requests,
                    window_start: 1_767_225_600,
                    count: 7,
                }),
                Event::Usage(UsageCount {
                    token_id: T.into(),
                    reporter: "00112233aabbccdd".into(),
                    kind: UsageKind::Errors,
                    window_start: 1_767_225_600,
                    count: 2,
                }),
                Event::Verdict {
                    token_id: T.into(),
                    verdict: Verdict::Forfeit,
                    trigger: Trigger::TrapPath,
                },
                Event::Verdict {
                    token_id: T.into(),
                    verdict: Verdict::Forfeit,
                    trigger: Trigger::RateLimit,
                },
                Event::Verdict {
                    token_id: T.into(),
                    verdict: Verdict::Forfeit,
                    trigger: Trigger::ErrorStorm,
                },
                Event::Verdict {
                    token_id: T.into(),
                    verdict: Verdict::Refund,
                    trigger: Trigger::Upstream,
                },
                Event::Reward {
                    token_id: T.into(),
                    sats: 21,
                    reward_id: "review-42".into(),
                },
                Event::Shadow {
                    route_id: "wall".into(),
                    finding: Finding::WouldChallenge,
                    trigger: None,
                    count: 1200,
                },
                Event::Shadow {
                    route_id: "wall".into(),
                    finding: Finding::WouldForfeit,
                    trigger: Some(Trigger::TrapPath),
                    count: 3,
                },
            ],
        }
    }

    const SAMPLE: &str = r#"{"events":[{"type":"activity","token_id":"a1b2"},{"type":"usage","token_id":"a1b2","reporter":"00112233aabbccdd","kind":"requests","window_start":1767225600,"count":7},{"type":"usage","token_id":"a1b2","reporter":"00112233aabbccdd","kind":"errors","window_start":1767225600,"count":2},{"type":"verdict","token_id":"a1b2","verdict":"forfeit","trigger":"trap_path"},{"type":"verdict","token_id":"a1b2","verdict":"forfeit","trigger":"rate_limit"},{"type":"verdict","token_id":"a1b2","verdict":"forfeit","trigger":"error_storm"},{"type":"verdict","token_id":"a1b2","verdict":"refund","trigger":"upstream"},{"type":"reward","token_id":"a1b2","sats":21,"reward_id":"review-42"},{"type":"shadow","route_id":"wall","finding":"would_challenge","count":1200},{"type":"shadow","route_id":"wall","finding":"would_forfeit","trigger":"trap_path","count":3}]}"#;

    #[test]
    fn every_event_reads_as_documented_and_round_trips() {
        assert_eq!(serde_json::to_string(&sample()).unwrap(), SAMPLE);
        assert_eq!(
            serde_json::from_str::<EventBatch>(SAMPLE).unwrap(),
            sample()
        );
    }

    #[test]
    fn an_unknown_type_or_field_refuses_the_batch() {
        for bad in [
            r#"{"events":[{"type":"teleport","token_id":"a1b2"}]}"#,
            r#"{"events":[{"type":"activity","token_id":"a1b2","extra":1}]}"#,
            r#"{"events":[],"extra":1}"#,
            r#"{"events":[{"type":"verdict","token_id":"a1b2","verdict":"forfeit","trigger":"whim"}]}"#,
            r#"{"events":[{"type":"shadow","route_id":"w","finding":"would_smile","count":1}]}"#,
            r#"{"events":[{"type":"usage","token_id":"a1b2","reporter":"00112233aabbccdd","kind":"requests","window_start":1,"count":7,"extra":1}]}"#,
        ] {
            assert!(serde_json::from_str::<EventBatch>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_reporter_is_exactly_sixteen_hex_digits() {
        let count = |reporter: &str| UsageCount {
            token_id: T.into(),
            reporter: reporter.into(),
            kind: UsageKind::Requests,
            window_start: 0,
            count: 1,
        };
        assert_eq!(
            count("00112233aabbccdd").reporter_id(),
            Some(0x0011_2233_aabb_ccdd)
        );
        assert_eq!(
            count("00112233AABBCCDD").reporter_id(),
            Some(0x0011_2233_aabb_ccdd)
        );
        // from_str_radix alone would take a sign or a short number.
        for bad in [
            "+0112233aabbccdd",
            "112233aabbccdd",
            "00112233aabbccdd0",
            "0011223 aabbccdd",
            "",
        ] {
            assert_eq!(count(bad).reporter_id(), None, "{bad:?}");
        }
    }
}
