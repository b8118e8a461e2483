//! `routes:` — which requests are free, paid or behind a deposit, and their policies.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Rate, duration};

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Free,
    Pay,
    Deposit,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Free => "free",
            Mode::Pay => "pay",
            Mode::Deposit => "deposit",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    /// Sidecar unreachable: new visitors get 503 (existing tokens keep working).
    #[default]
    Closed,
    /// Sidecar unreachable: requests pass without a challenge.
    Open,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Stable name, bound into tokens (`[a-z0-9_-]`, at most 32).
    pub id: String,
    #[serde(rename = "match")]
    pub matcher: RouteMatch,
    pub mode: Mode,
    #[serde(default)]
    pub failure_mode: FailureMode,
    /// How long a token stays valid (pay: access period; deposit: upper bound of the session).
    #[serde(default = "default_token_lifetime", with = "duration")]
    pub token_lifetime: Duration,
    #[serde(default)]
    pub pay: Option<PayPolicy>,
    #[serde(default)]
    pub deposit: Option<DepositPolicy>,
    /// Shadow mode (pay and deposit routes): nothing is challenged, charged, forfeited or
    /// refused; the filter reports what it would have done (docs/operations.md "Shadow mode").
    #[serde(default)]
    pub shadow: bool,
}

fn default_token_lifetime() -> Duration {
    Duration::from_secs(3600)
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteMatch {
    /// Exact `Host`/`:authority` (without port); any host when absent.
    #[serde(default)]
    pub host: Option<String>,
    /// `{exact: /p}`, `{prefix: /p/}` or `{regex: "^/p/[0-9]+$"}`.
    #[serde(default, with = "serde_yaml_ng::with::singleton_map")]
    pub path: Option<PathMatch>,
    /// Upper-case methods; any method when absent or empty.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Query-string conditions, all of which must hold: `{wc-ajax: checkout}` (the key with
    /// this value) or `{preview: {present: true}}` (the key, any value). How they compare:
    /// docs/configuration.md "Query conditions".
    #[serde(default)]
    pub query: BTreeMap<String, QueryValue>,
}

/// What a query condition asks of its key.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum QueryValue {
    /// The key with this value.
    Is(String),
    /// `{present: true}`: the key, with any value.
    Present {
        /// Must be `true`.
        present: bool,
    },
}

impl QueryValue {
    /// The value asked for; `None` for any value.
    pub fn value(&self) -> Option<&str> {
        match self {
            QueryValue::Is(v) => Some(v),
            QueryValue::Present { .. } => None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum PathMatch {
    Exact(String),
    Prefix(String),
    Regex(String),
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PayPolicy {
    pub amount_sat: u64,
    /// Hand a pay receipt to payers whose wallet never shows them the preimage, once the node
    /// reports the invoice settled (`GET /.well-known/lightning-wall/payment`).
    #[serde(default = "default_true")]
    pub without_preimage: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DepositPolicy {
    pub amount_sat: u64,
    /// No request for this long: refund.
    #[serde(default = "default_idle_timeout", with = "duration")]
    pub idle_timeout: Duration,
    /// Held this long in total: refund, whatever the activity.
    #[serde(default = "default_session_cap", with = "duration")]
    pub session_cap: Duration,
    /// Per-token request rate above which the deposit is forfeited.
    #[serde(default)]
    pub rate_limit: Option<Rate>,
    /// Path prefixes no honest visitor requests (hidden links): one request forfeits.
    #[serde(default)]
    pub trap_paths: Vec<String>,
    /// Upstream 4xx/5xx answers per token that count as probing.
    #[serde(default)]
    pub error_storm: Option<ErrorStorm>,
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(300)
}
fn default_session_cap() -> Duration {
    Duration::from_secs(3600)
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ErrorStorm {
    pub errors: u32,
    #[serde(with = "duration")]
    pub within: Duration,
}

impl RouteConfig {
    /// Amount the route charges, in satoshis (0 for free routes).
    pub fn amount_sat(&self) -> u64 {
        match self.mode {
            Mode::Free => 0,
            Mode::Pay => self.pay.as_ref().map_or(0, |p| p.amount_sat),
            Mode::Deposit => self.deposit.as_ref().map_or(0, |d| d.amount_sat),
        }
    }
}
