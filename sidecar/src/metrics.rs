//! Prometheus metrics (`/metrics`): challenges minted, deposit outcomes, node call latency and
//! errors, deposits by state (read from the store at scrape time, so every replica reports the
//! shared truth). Labels are bounded sets (modes, states, triggers, calls): never a token or IP.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use lightning_wall_contract::events::{Finding, Trigger};

use crate::deposit::DepositState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModeLabel {
    pub mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
    pub trigger: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabel {
    pub call: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

/// A shadow finding's labels: the route is one of the config's routes in shadow (the events
/// handler drops any other), so the set stays bounded.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShadowLabel {
    pub route: String,
    pub finding: &'static str,
    /// `none` for a would-be challenge.
    pub trigger: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub challenges: Family<ModeLabel, Counter>,
    pub challenges_refused: Family<ErrorLabel, Counter>,
    pub deposit_outcomes: Family<OutcomeLabel, Counter>,
    pub node_call_seconds: Family<CallLabel, Histogram>,
    pub errors: Family<ErrorLabel, Counter>,
    pub deposits: Family<StateLabel, Gauge>,
    /// Reward events by result: `credited`, `duplicate` or the refusal code.
    pub reward_credits: Family<ResultLabel, Counter>,
    pub reward_credited_msat: Counter,
    /// Payout steps: `started`, `succeeded`, `failed`, `unknown` (outcome left to tracking).
    pub reward_payouts: Family<ResultLabel, Counter>,
    pub reward_paid_msat: Counter,
    /// The config in force: 1 at start, one more per applied reload (`crate::reload`).
    pub config_generation: Gauge,
    /// When the config in force was loaded, Unix seconds.
    pub config_loaded_seconds: Gauge,
    /// Reloads by result: `applied` or `refused`.
    pub config_reloads: Family<ResultLabel, Counter>,
    /// What the filters would have done on routes in shadow (docs/operations.md "Shadow mode").
    pub shadow_findings: Family<ShadowLabel, Counter>,
    /// Deposit status long-polls waiting on this replica (set at scrape time).
    pub long_polls_waiting: Gauge,
    /// Long-polls that found no place, by cap: `per_token` (429), `network_share` and `full`
    /// (answered at once with the state, deposit/waiters.rs).
    pub long_polls_refused: Family<ResultLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("lightning_wall");
        let challenges = Family::<ModeLabel, Counter>::default();
        registry.register(
            "challenges",
            "Challenges (invoice + macaroon) minted",
            challenges.clone(),
        );
        let challenges_refused = Family::<ErrorLabel, Counter>::default();
        registry.register(
            "challenges_refused",
            "Challenges refused by a limit or an unavailable node",
            challenges_refused.clone(),
        );
        let deposit_outcomes = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "deposit_outcomes",
            "Deposits ended, by outcome and trigger",
            deposit_outcomes.clone(),
        );
        let node_call_seconds = Family::<CallLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        registry.register(
            "node_call_seconds",
            "Latency of calls to the Lightning node",
            node_call_seconds.clone(),
        );
        let errors = Family::<ErrorLabel, Counter>::default();
        registry.register("errors", "Errors by kind", errors.clone());
        let deposits = Family::<StateLabel, Gauge>::default();
        registry.register("deposits", "Deposits by state", deposits.clone());
        let reward_credits = Family::<ResultLabel, Counter>::default();
        registry.register(
            "reward_credits",
            "Reward events from the upstream, by result",
            reward_credits.clone(),
        );
        let reward_credited_msat = Counter::default();
        registry.register(
            "reward_credited_msat",
            "Rewards credited to visitors' balances",
            reward_credited_msat.clone(),
        );
        let reward_payouts = Family::<ResultLabel, Counter>::default();
        registry.register(
            "reward_payouts",
            "Reward payouts, by step and outcome",
            reward_payouts.clone(),
        );
        let reward_paid_msat = Counter::default();
        registry.register(
            "reward_paid_msat",
            "Rewards paid out (succeeded payouts)",
            reward_paid_msat.clone(),
        );
        let config_generation = Gauge::default();
        registry.register(
            "config_generation",
            "The configuration in force: 1 at start, one more per applied reload",
            config_generation.clone(),
        );
        let config_loaded_seconds = Gauge::default();
        registry.register(
            "config_loaded_timestamp_seconds",
            "When the configuration in force was loaded (Unix time)",
            config_loaded_seconds.clone(),
        );
        let config_reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "config_reloads",
            "Configuration reloads, applied or refused (the old config kept)",
            config_reloads.clone(),
        );
        let shadow_findings = Family::<ShadowLabel, Counter>::default();
        registry.register(
            "shadow_findings",
            "Requests on routes in shadow mode that would have been challenged, or deposits that \
             would have been forfeited, by route, finding and trigger",
            shadow_findings.clone(),
        );
        let long_polls_waiting = Gauge::default();
        registry.register(
            "long_polls_waiting",
            "Deposit status long-polls waiting on this replica",
            long_polls_waiting.clone(),
        );
        let long_polls_refused = Family::<ResultLabel, Counter>::default();
        registry.register(
            "long_polls_refused",
            "Deposit status long-polls that found no place, by cap (per_token: 429; \
             network_share, full: answered at once with the state)",
            long_polls_refused.clone(),
        );
        Metrics {
            long_polls_waiting,
            long_polls_refused,
            shadow_findings,
            registry,
            config_generation,
            config_loaded_seconds,
            config_reloads,
            challenges,
            challenges_refused,
            deposit_outcomes,
            node_call_seconds,
            errors,
            deposits,
            reward_credits,
            reward_credited_msat,
            reward_payouts,
            reward_paid_msat,
        }
    }

    pub fn reward_credit(&self, result: &'static str) {
        self.reward_credits
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    pub fn shadow_finding(
        &self,
        route: &str,
        finding: Finding,
        trigger: Option<Trigger>,
        count: u64,
    ) {
        self.shadow_findings
            .get_or_create(&ShadowLabel {
                route: route.to_owned(),
                finding: finding.as_str(),
                trigger: trigger.map_or("none", Trigger::as_str),
            })
            .inc_by(count);
    }

    pub fn long_poll_refused(&self, cap: &'static str) {
        self.long_polls_refused
            .get_or_create(&ResultLabel { result: cap })
            .inc();
    }

    pub fn reward_payout(&self, result: &'static str) {
        self.reward_payouts
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    pub fn observe_node_call(&self, call: &'static str, took: Duration) {
        self.node_call_seconds
            .get_or_create(&CallLabel { call })
            .observe(took.as_secs_f64());
    }

    /// A config is in force (at start or by a reload).
    pub fn config_loaded(&self, generation: u64, at: crate::ids::Timestamp) {
        self.config_generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
        self.config_loaded_seconds
            .set(i64::try_from(at.0).unwrap_or(i64::MAX));
    }

    /// A reload was `applied` or `refused`.
    pub fn config_reload(&self, result: &'static str) {
        self.config_reloads
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    pub fn error(&self, kind: &'static str) {
        self.errors.get_or_create(&ErrorLabel { kind }).inc();
    }

    pub fn set_deposit_counts(&self, counts: &[(DepositState, u64)]) {
        for state in DepositState::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| *s == state)
                .map_or(0, |(_, n)| *n);
            self.deposits
                .get_or_create(&StateLabel {
                    state: state.as_str(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            // Writing into a String cannot fail; keep the scrape alive regardless.
            out.clear();
        }
        out
    }
}
