//! The response phase: what the upstream's response says about the request's token — its
//! verdict (`x-lightning-wall-verdict`), a reward (`x-lightning-wall-reward` with
//! `-reward-id`), an error storm — applied to a request the request phase ([`super::decision`])
//! allowed. Only the upstream's headers on a response to a verified credential count here;
//! nothing a client sends can reach them (the adapter strips them from requests).

use lightning_wall_contract::RouteMode;
use lightning_wall_contract::events::{Trigger, UsageKind, Verdict};
use lightning_wall_contract::headers as header;

use super::decision::{forfeit, settle};
use super::grant::Grant;
use super::host::{Host, Level, Metric};
use super::limits::{self, Count};
use super::outbox::Outbox;
use super::policy::Policy;
use super::shadow;
use super::worker::WorkerState;

/// The upstream's response headers meant for the filter only: read, then removed, so they never
/// reach the client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamHeaders {
    /// `x-lightning-wall-verdict`.
    pub verdict: Option<Vec<u8>>,
    /// `x-lightning-wall-reward`.
    pub reward: Option<Vec<u8>>,
    /// `x-lightning-wall-reward-id`.
    pub reward_id: Option<Vec<u8>>,
}

impl UpstreamHeaders {
    /// Reads them with `get` (a header's value by name).
    pub fn read(get: impl Fn(&str) -> Option<Vec<u8>>) -> UpstreamHeaders {
        UpstreamHeaders {
            verdict: get(header::VERDICT),
            reward: get(header::REWARD),
            reward_id: get(header::REWARD_ID),
        }
    }

    /// The names of those the response carries (to remove).
    pub fn present(&self) -> impl Iterator<Item = &'static str> + '_ {
        [
            (header::VERDICT, &self.verdict),
            (header::REWARD, &self.reward),
            (header::REWARD_ID, &self.reward_id),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.is_some().then_some(name))
    }
}

/// What the upstream's response said about the token, read from its headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpstreamVerdict {
    /// `x-lightning-wall-verdict`: forfeit or refund (anything else is ignored).
    pub verdict: Option<Verdict>,
}

impl UpstreamVerdict {
    /// Parses the verdict header (value as sent by the upstream).
    pub fn parse(verdict: Option<&[u8]>) -> UpstreamVerdict {
        let verdict = match verdict.map(<[u8]>::trim_ascii) {
            Some(v) if v.eq_ignore_ascii_case(b"forfeit") => Some(Verdict::Forfeit),
            Some(v) if v.eq_ignore_ascii_case(b"refund") => Some(Verdict::Refund),
            _ => None,
        };
        UpstreamVerdict { verdict }
    }
}

/// Largest reward accepted from a header: all bitcoin in satoshis (the sidecar applies the
/// operator's real limits; this only keeps msat arithmetic in range).
const MAX_REWARD_SAT: u64 = 2_100_000_000_000_000;
/// Longest `x-lightning-wall-reward-id`.
const MAX_REWARD_ID: usize = 64;

/// `x-lightning-wall-reward: <sats>` with `x-lightning-wall-reward-id: <id>` from the upstream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum UpstreamReward {
    /// Neither header.
    #[default]
    Absent,
    /// Both, well formed.
    Grant {
        /// Satoshis, at least 1.
        sats: u64,
        /// The upstream's idempotency key: 1-64 of `[A-Za-z0-9._:-]`.
        id: String,
    },
    /// A reward without an id (no idempotency, so no payment), an id without a reward, or a
    /// value that is not well formed.
    Malformed,
}

impl UpstreamReward {
    /// Parses the two headers (values as sent by the upstream).
    pub fn parse(sats: Option<&[u8]>, id: Option<&[u8]>) -> UpstreamReward {
        let (sats, id) = match (sats, id) {
            (None, None) => return UpstreamReward::Absent,
            (Some(sats), Some(id)) => (sats.trim_ascii(), id.trim_ascii()),
            _ => return UpstreamReward::Malformed,
        };
        let sats = (!sats.is_empty() && sats.iter().all(u8::is_ascii_digit))
            .then(|| core::str::from_utf8(sats).ok()?.parse::<u64>().ok())
            .flatten()
            .filter(|s| (1..=MAX_REWARD_SAT).contains(s));
        let id_ok = !id.is_empty()
            && id.len() <= MAX_REWARD_ID
            && id
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        match (sats, id_ok, core::str::from_utf8(id)) {
            (Some(sats), true, Ok(id)) => UpstreamReward::Grant {
                sats,
                id: id.to_owned(),
            },
            _ => UpstreamReward::Malformed,
        }
    }
}

/// The response phase for any request: a well-formed reward on the response to a request with
/// a valid credential (`grant`) is queued for the sidecar; any other reward is dropped, counted
/// and logged without its values.
pub fn on_reward(
    grant: Option<&Grant>,
    reward: &UpstreamReward,
    host: &dyn Host,
    outbox: &mut Outbox,
) {
    let why = match (reward, grant) {
        (UpstreamReward::Absent, _) => return,
        (UpstreamReward::Grant { sats, id }, Some(grant)) => {
            outbox.reward(&grant.token_hex, *sats, id);
            host.count(Metric::Rewards);
            return;
        }
        (UpstreamReward::Grant { .. }, None) => "the request carried no valid credential",
        (UpstreamReward::Malformed, _) => "malformed or without a reward id",
    };
    host.count(Metric::RewardsDropped);
    host.log(
        Level::Warn,
        format_args!("lightning-wall: upstream reward dropped: {why}"),
    );
}

/// The response phase for an allowed deposit request: the upstream's verdict and error storms.
/// On a shadow route a forfeit is only counted (an upstream's refund still gives the money
/// back: it costs the visitor nothing).
pub fn on_response(
    policy: Option<&Policy>,
    grant: &Grant,
    status: Option<u16>,
    upstream: UpstreamVerdict,
    host: &dyn Host,
    w: &mut WorkerState,
) {
    if grant.mode != RouteMode::Deposit {
        return;
    }
    let route = policy.and_then(|p| p.routes.get(grant.route));
    let shadow_of = route.filter(|r| r.shadow).map(|r| r.id.as_str());
    match upstream.verdict {
        Some(Verdict::Forfeit) => {
            match shadow_of {
                Some(route_id) => shadow::would_forfeit(host, w, route_id, Trigger::Upstream),
                None => forfeit(host, w, grant, Trigger::Upstream),
            }
            return;
        }
        Some(Verdict::Refund) => {
            settle(host, w, grant, Verdict::Refund, Trigger::Upstream);
            host.count(Metric::Refunds);
            return;
        }
        None => {}
    }
    let Some(rule) = route
        .and_then(|r| r.deposit.as_ref())
        .and_then(|d| d.error_storm)
    else {
        return;
    };
    if !status.is_some_and(|s| (400..500).contains(&s)) {
        return;
    }
    let owner = limits::token_owner(&grant.token_id);
    let now = host.now_unix();
    match (
        limits::hit(host, limits::ERRORS, owner, rule, now),
        shadow_of,
    ) {
        // Once per window: enforcing, the crossing answer would have ended the deposit.
        (Count::Exceeded(n), Some(route_id)) => {
            if n == rule.requests.saturating_add(1) {
                shadow::would_forfeit(host, w, route_id, Trigger::ErrorStorm);
            }
        }
        (Count::Exceeded(_), None) => forfeit(host, w, grant, Trigger::ErrorStorm),
        // Shadow counts stay here (the sidecar's budgets would forfeit).
        (Count::Within(_), Some(_)) => {}
        (Count::Within(n), None) => {
            let start = limits::window_start(rule, now);
            w.report_usage(host, &grant.token_hex, UsageKind::Errors, start, n);
        }
        (Count::Unknown, _) => {}
    }
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
