//! `lightning-wall.yaml`: the operator's single source of truth (node, store, keys, listeners,
//! routes, limits). Parsing is strict (unknown fields are errors, so a typo never silently
//! disables a protection) and validation reports every problem with its field path and the fix.
//! Secrets are never read inline from this file: only through `file:` or `env:` references.

mod duration;
mod secret;
mod validate;
mod wall;
pub mod wall_text;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use secret::{SecretBytes, SecretError, SecretRef};
pub use wall::WallConfig;

/// One problem in the configuration: where it is and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Field path, e.g. `routes[2].deposit.amount_sat`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The YAML did not match the schema (unknown field, wrong type, bad duration…).
    #[error("{0}")]
    Parse(ConfigIssue),
    /// The YAML parsed but some values are not acceptable; every issue is listed.
    #[error("{} problem(s) in the configuration:\n{}", .0.len(), list(.0))]
    Invalid(Vec<ConfigIssue>),
}

fn list(issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(|i| format!("  - {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigError {
    /// Every issue, whatever the stage that found it.
    pub fn issues(&self) -> Vec<ConfigIssue> {
        match self {
            ConfigError::Read { path, source } => vec![ConfigIssue {
                path: String::new(),
                message: format!("reading {}: {source}", path.display()),
            }],
            ConfigError::Parse(issue) => vec![issue.clone()],
            ConfigError::Invalid(issues) => issues.clone(),
        }
    }
}

/// The whole file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where generated keys, the SQLite database and the dev node's key live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    pub node: NodeConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub keys: KeysConfig,
    #[serde(default)]
    pub listeners: ListenersConfig,
    #[serde(default)]
    pub deposits: DepositsConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Satoshi rewards granted by the upstream and claimed by LNURL-withdraw (docs/rewards.md).
    #[serde(default)]
    pub rewards: RewardsConfig,
    /// What the visitor reads: site name, language, texts (docs/configuration.md "wall").
    #[serde(default)]
    pub wall: WallConfig,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NodeBackend {
    /// Embedded development node: real BOLT11, fake money. Never for production.
    Dev,
    Lnd,
    /// Core Lightning with the hold plugin, both over gRPC (docs/node-backends.md).
    Cln,
    /// A wallet over Nostr Wallet Connect (NIP-47) with hold invoices, e.g. Alby Hub.
    Nwc,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub backend: NodeBackend,
    /// Required when `backend: lnd`.
    #[serde(default)]
    pub lnd: Option<LndConfig>,
    /// Options of the development node.
    #[serde(default)]
    pub dev: Option<DevNodeConfig>,
    /// Required when `backend: cln`.
    #[serde(default)]
    pub cln: Option<ClnConfig>,
    /// Required when `backend: nwc`.
    #[serde(default)]
    pub nwc: Option<NwcConfig>,
}

/// A wallet reached over Nostr Wallet Connect (docs/node-backends.md, `nwc`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NwcConfig {
    /// `nostr+walletconnect://<wallet pubkey>?relay=wss://…&secret=<hex>`, from a file or an
    /// environment variable: it holds the key the wallet obeys.
    pub connection: SecretRef,
    /// Refuse to start when the wallet reports another network (`get_info.network`).
    pub network: String,
    /// Blocks before the `settle_deadline` at which the wallet's node cancels a held payment
    /// itself (18: lnd's `holdexpirydelta`, under Alby Hub on LND).
    #[serde(default = "default_nwc_hold_expiry_delta")]
    pub hold_expiry_delta: u32,
    /// Pay reward payouts through the wallet (`pay_invoice`). NIP-47 cannot cap a payment's
    /// routing fee, so only the wallet connection's budget bounds it: off by default.
    #[serde(default)]
    pub payouts: bool,
}

fn default_nwc_hold_expiry_delta() -> u32 {
    18
}

/// Core Lightning: its grpc plugin for node info, normal invoices and payouts, the hold plugin
/// for hold invoices.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClnConfig {
    /// CLN's grpc plugin (`grpc-port`), with the certificates it wrote into
    /// `<lightning-dir>/<network>/`.
    pub grpc: ClnGrpcConfig,
    /// The hold plugin (`hold-grpc-port`, 9292 by default), with the certificates it wrote into
    /// `<lightning-dir>/<network>/hold/`.
    pub hold: ClnGrpcConfig,
    /// Refuse to start when CLN reports another network (CLN's `bitcoin` is `mainnet` here).
    pub network: String,
    /// The hold plugin's `hold-expiry-deadline` (3 by default).
    #[serde(default = "default_cln_hold_expiry_delta")]
    pub hold_expiry_delta: u32,
    /// Route hints to CLN's private channels in every invoice (as lnd's `private`): needed when
    /// CLN has only private channels, or nobody can pay its hold invoices.
    #[serde(default)]
    pub private: bool,
}

fn default_cln_hold_expiry_delta() -> u32 {
    3
}

/// One gRPC service with mutual TLS.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClnGrpcConfig {
    /// `https://host:port`.
    pub url: String,
    /// `ca.pem`: the CA that signed the server's certificate.
    pub ca_cert_file: PathBuf,
    /// `client.pem`.
    pub client_cert_file: PathBuf,
    /// `client-key.pem`, from a file or an environment variable.
    pub client_key: SecretRef,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LndConfig {
    /// `https://host:8080`: lnd's REST listener.
    pub rest_url: String,
    /// lnd's own self-signed `tls.cert`, pinned byte for byte. Set this or `tls_ca`.
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// Instead of a pin, for a CA-signed certificate that renews (hosted lnd): `system` (the
    /// system's CA store) or the path of a PEM CA bundle. The certificate must name the host of
    /// `rest_url`.
    #[serde(default)]
    pub tls_ca: Option<String>,
    /// The macaroon (binary file or hex in an env var) with `invoices:read invoices:write
    /// info:read`.
    pub macaroon: SecretRef,
    /// Refuse to start when lnd reports another network.
    pub network: String,
    /// lnd's `holdexpirydelta` (18 in v0.21, 12 before); getinfo does not report it.
    #[serde(default = "default_hold_expiry_delta")]
    pub hold_expiry_delta: u32,
    /// Route hints to lnd's private channels in every invoice (lnd's `private`): needed when
    /// lnd has only private channels, or nobody can pay its invoices.
    #[serde(default)]
    pub private: bool,
}

fn default_hold_expiry_delta() -> u32 {
    18
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DevNodeConfig {
    /// Simulated block interval of the development node's chain.
    #[serde(default, with = "duration::option")]
    pub block_interval: Option<Duration>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite:<path>` (default `sqlite:<data_dir>/lightning-wall.db`) or
    /// `postgres://user@host:port/db` (no password here: use `password`).
    #[serde(default)]
    pub url: Option<String>,
    /// The PostgreSQL password, from a file or an environment variable.
    #[serde(default)]
    pub password: Option<SecretRef>,
}

/// Where the store is, once defaults are applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    Sqlite(PathBuf),
    Postgres(String),
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// Master keys as `<id>:<64 hex>` lines (id: `[A-Za-z0-9._-]{1,32}`). Absent: generated on
    /// first run into `<data_dir>/keys` (mode 0600), or into the shared PostgreSQL store.
    #[serde(default)]
    pub master: Option<SecretRef>,
    /// Key id used for new tokens; default the last key listed (the newest).
    #[serde(default)]
    pub active_key_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListenersConfig {
    /// For the filter only (mint, bootstrap, sync, events). Loopback unless a token is set.
    #[serde(default = "default_internal")]
    pub internal: InternalListener,
    /// Wall endpoints under `/.well-known/lightning-wall/`, routed by Envoy.
    #[serde(default = "default_public")]
    pub public: Listener,
    /// Operator API; disabled when absent. Always requires a bearer token.
    #[serde(default)]
    pub admin: Option<AdminListener>,
}

impl Default for ListenersConfig {
    fn default() -> Self {
        ListenersConfig {
            internal: default_internal(),
            public: default_public(),
            admin: None,
        }
    }
}

fn default_internal() -> InternalListener {
    InternalListener {
        bind: SocketAddr::from(([127, 0, 0, 1], 8081)),
        token: None,
    }
}

fn default_public() -> Listener {
    Listener {
        bind: SocketAddr::from(([127, 0, 0, 1], 8082)),
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    pub bind: SocketAddr,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InternalListener {
    pub bind: SocketAddr,
    /// Bearer token the filter must send; required when `bind` is not loopback.
    #[serde(default)]
    pub token: Option<SecretRef>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminListener {
    pub bind: SocketAddr,
    pub token: SecretRef,
}

/// How deposits are invoiced and how long they may be held.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DepositsConfig {
    /// BOLT11 expiry of deposit invoices: time to pay.
    #[serde(default = "default_invoice_expiry", with = "duration")]
    pub invoice_expiry: Duration,
    /// Final CLTV delta asked for hold invoices (blocks).
    #[serde(default = "default_cltv_expiry")]
    pub cltv_expiry: u32,
    /// Blocks kept between our own refund and the node's auto-cancel.
    #[serde(default = "default_safety_margin_blocks")]
    pub safety_margin_blocks: u32,
    /// Assumed time per block when turning the HTLC expiry into a wall-clock deadline. Shorter
    /// than the 10-minute average on purpose: blocks come early often.
    #[serde(default = "default_block_interval", with = "duration")]
    pub assumed_block_interval: Duration,
    /// How often the reconciler looks at every unfinished deposit.
    #[serde(default = "default_reconcile_interval", with = "duration")]
    pub reconcile_interval: Duration,
    /// How long a leave waits before the refund, during which a forfeit the filter already
    /// decided still wins (docs/reliability.md "A decided forfeit wins"). Whole seconds.
    #[serde(default = "default_leave_grace", with = "duration")]
    pub leave_grace: Duration,
}

impl Default for DepositsConfig {
    fn default() -> Self {
        DepositsConfig {
            invoice_expiry: default_invoice_expiry(),
            cltv_expiry: default_cltv_expiry(),
            safety_margin_blocks: default_safety_margin_blocks(),
            assumed_block_interval: default_block_interval(),
            reconcile_interval: default_reconcile_interval(),
            leave_grace: default_leave_grace(),
        }
    }
}

fn default_invoice_expiry() -> Duration {
    Duration::from_secs(600)
}
fn default_cltv_expiry() -> u32 {
    144
}
fn default_safety_margin_blocks() -> u32 {
    6
}
fn default_block_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_reconcile_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_leave_grace() -> Duration {
    Duration::from_secs(1)
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Held deposits at once, all clients. Only held ones: unpaid invoices count toward
    /// `max_unpaid_deposits`.
    #[serde(default = "default_max_held")]
    pub max_held_deposits: u32,
    /// Deposits awaiting payment at once, all clients (rows in the store, invoices on the
    /// node, until they expire).
    #[serde(default = "default_max_unpaid")]
    pub max_unpaid_deposits: u32,
    /// Held deposits at once per client prefix (IPv4 /24, IPv6 /48). Only held ones: unpaid
    /// invoices count toward `max_unpaid_deposits_per_prefix`, so a burst of unpaid challenges
    /// cannot lock a whole office or carrier-grade NAT out until the invoices expire.
    #[serde(default = "default_max_held_per_prefix")]
    pub max_held_deposits_per_prefix: u32,
    /// Deposits awaiting payment at once per client prefix (IPv4 /24, IPv6 /48).
    #[serde(default = "default_max_unpaid_per_prefix")]
    pub max_unpaid_deposits_per_prefix: u32,
    /// Bounds every route's amount must respect.
    #[serde(default)]
    pub amount_sat: AmountBounds,
    /// Challenges one client network may mint: an IPv4 /`ipv4_prefix_len`, an IPv6 /64.
    #[serde(default = "default_mint_rate")]
    pub challenge_mint_rate: Rate,
    /// Challenges one IPv6 /48 may mint (a /64 rotation inside one site). Default:
    /// `MINT_RATE_IPV6_48_MULTIPLE` x `challenge_mint_rate`.
    #[serde(default)]
    pub challenge_mint_rate_ipv6_48: Option<Rate>,
    /// IPv4 prefix length the mint rate counts per: 32 (one address) to 24.
    #[serde(default = "default_ipv4_prefix_len")]
    pub ipv4_prefix_len: u8,
    /// Challenges all clients together may mint per second on this replica (invoices on the
    /// node); beyond it the filter answers 503 with `Retry-After`.
    #[serde(default = "default_mint_budget_per_s")]
    pub challenge_mint_budget_per_s: u32,
    /// Node lookups all clients together may cause per second on this replica by presenting a
    /// pay credential without its preimage (`GET /.well-known/lightning-wall/payment`, also
    /// what the filter asks); beyond it 503 with `Retry-After`.
    #[serde(default = "default_payment_lookups_per_s")]
    pub payment_lookups_per_s: u32,
    /// Deposit status long-polls (`?wait=N`) waiting at once on this replica; beyond, 503.
    #[serde(default = "default_max_long_polls")]
    pub max_long_polls: u32,
    /// Long-polls waiting at once on one deposit token; beyond, 429.
    #[serde(default = "default_max_long_polls_per_token")]
    pub max_long_polls_per_token: u32,
}

/// The default /48 mint rate, in /64 rates: 16 LANs of one site minting at full rate at once.
pub const MINT_RATE_IPV6_48_MULTIPLE: u32 = 16;

impl LimitsConfig {
    /// The /48 mint rate, explicit or the default multiple of the /64 rate.
    pub fn mint_rate_ipv6_48(&self) -> Rate {
        self.challenge_mint_rate_ipv6_48.unwrap_or(Rate {
            requests: self
                .challenge_mint_rate
                .requests
                .saturating_mul(MINT_RATE_IPV6_48_MULTIPLE),
            per: self.challenge_mint_rate.per,
        })
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_held_deposits: default_max_held(),
            max_unpaid_deposits: default_max_unpaid(),
            max_held_deposits_per_prefix: default_max_held_per_prefix(),
            max_unpaid_deposits_per_prefix: default_max_unpaid_per_prefix(),
            amount_sat: AmountBounds::default(),
            challenge_mint_rate: default_mint_rate(),
            challenge_mint_rate_ipv6_48: None,
            ipv4_prefix_len: default_ipv4_prefix_len(),
            challenge_mint_budget_per_s: default_mint_budget_per_s(),
            payment_lookups_per_s: default_payment_lookups_per_s(),
            max_long_polls: default_max_long_polls(),
            max_long_polls_per_token: default_max_long_polls_per_token(),
        }
    }
}

fn default_max_held() -> u32 {
    10_000
}
fn default_max_unpaid() -> u32 {
    100_000
}
fn default_max_held_per_prefix() -> u32 {
    4
}
fn default_max_unpaid_per_prefix() -> u32 {
    64
}
fn default_ipv4_prefix_len() -> u8 {
    32
}
fn default_max_long_polls() -> u32 {
    10_000
}
fn default_max_long_polls_per_token() -> u32 {
    4
}
fn default_mint_budget_per_s() -> u32 {
    1000
}
fn default_payment_lookups_per_s() -> u32 {
    200
}
fn default_mint_rate() -> Rate {
    Rate {
        requests: 10,
        per: Duration::from_secs(60),
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AmountBounds {
    pub min: u64,
    pub max: u64,
}

impl Default for AmountBounds {
    fn default() -> Self {
        AmountBounds {
            min: 1,
            max: 1_000_000,
        }
    }
}

/// `requests` per `per`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub requests: u32,
    #[serde(with = "duration")]
    pub per: Duration,
}

/// Rewards: the upstream credits a token's ledger; the visitor withdraws over LNURL. Every limit
/// is in satoshis. An event that would cross a limit credits nothing (never part of it).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RewardsConfig {
    /// The kill switch: off, reward events are refused (`disabled`) and no withdrawal starts;
    /// payouts already in flight are still reconciled.
    #[serde(default)]
    pub enabled: bool,
    /// Largest single reward.
    #[serde(default = "default_reward_max_per_reward")]
    pub max_per_reward_sat: u64,
    /// Most one token can ever be credited.
    #[serde(default = "default_reward_max_per_token")]
    pub max_per_token_sat: u64,
    /// Most credited per UTC day, all tokens together.
    #[serde(default = "default_reward_max_per_day")]
    pub max_per_day_sat: u64,
    /// Smallest and largest withdrawal (LNURL `minWithdrawable`/`maxWithdrawable`).
    #[serde(default = "default_reward_withdraw_min")]
    pub withdraw_min_sat: u64,
    #[serde(default = "default_reward_withdraw_max")]
    pub withdraw_max_sat: u64,
    /// Routing fee the node may spend on a payout, in parts per million of the amount, and at
    /// least `fee_limit_min_sat` (small payouts need a floor to route at all).
    #[serde(default = "default_reward_fee_ppm")]
    pub fee_limit_ppm: u64,
    #[serde(default = "default_reward_fee_min")]
    pub fee_limit_min_sat: u64,
    /// The fee limit never exceeds this fraction of the payout (ppm), the floor included: an
    /// attacker routing tiny withdrawals through their own high-fee channel earns at most this
    /// share on top of the rewards.
    #[serde(default = "default_reward_fee_max_ppm")]
    pub fee_limit_max_ppm: u64,
    /// Routing fees all payouts together may reserve per UTC day (fee limits of payouts in
    /// flight, fees of paid ones): part of the budget like the rewards themselves.
    #[serde(default = "default_reward_max_fees_per_day")]
    pub max_fees_per_day_sat: u64,
    /// Payouts one token may start (failed ones do not count).
    #[serde(default = "default_reward_max_withdrawals_per_token")]
    pub max_withdrawals_per_token: u32,
    /// How long an LNURL (its `k1`) may be used after it was shown.
    #[serde(default = "default_reward_lnurl_lifetime", with = "duration")]
    pub lnurl_lifetime: Duration,
    /// `https://site.example`: the origin wallets reach the wall endpoints at. Absent: taken
    /// from the request's `Host` (and `X-Forwarded-Proto`; plain http only on loopback).
    #[serde(default)]
    pub public_url: Option<String>,
}

impl Default for RewardsConfig {
    fn default() -> Self {
        RewardsConfig {
            enabled: false,
            max_per_reward_sat: default_reward_max_per_reward(),
            max_per_token_sat: default_reward_max_per_token(),
            max_per_day_sat: default_reward_max_per_day(),
            withdraw_min_sat: default_reward_withdraw_min(),
            withdraw_max_sat: default_reward_withdraw_max(),
            fee_limit_ppm: default_reward_fee_ppm(),
            fee_limit_min_sat: default_reward_fee_min(),
            fee_limit_max_ppm: default_reward_fee_max_ppm(),
            max_fees_per_day_sat: default_reward_max_fees_per_day(),
            max_withdrawals_per_token: default_reward_max_withdrawals_per_token(),
            lnurl_lifetime: default_reward_lnurl_lifetime(),
            public_url: None,
        }
    }
}

fn default_reward_max_per_reward() -> u64 {
    1_000
}
fn default_reward_max_per_token() -> u64 {
    5_000
}
fn default_reward_max_per_day() -> u64 {
    100_000
}
fn default_reward_withdraw_min() -> u64 {
    1
}
fn default_reward_withdraw_max() -> u64 {
    5_000
}
fn default_reward_fee_ppm() -> u64 {
    10_000
}
fn default_reward_fee_min() -> u64 {
    10
}
fn default_reward_fee_max_ppm() -> u64 {
    100_000
}
fn default_reward_max_fees_per_day() -> u64 {
    1_000
}
fn default_reward_max_withdrawals_per_token() -> u32 {
    10
}
fn default_reward_lnurl_lifetime() -> Duration {
    Duration::from_secs(600)
}

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

impl Config {
    /// Parses YAML text; does not validate values (see [`Config::validate`]).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            let inner = e.into_inner().to_string();
            // serde_yaml_ng already prefixes some messages with the path.
            let message = inner
                .strip_prefix(&format!("{path}: "))
                .map_or(inner.clone(), str::to_owned);
            ConfigError::Parse(ConfigIssue { path, message })
        })
    }

    /// Reads, parses and validates a file. Relative `data_dir` is taken from the config file's
    /// directory, so the same file works from any working directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_text(&text, path.parent())
    }

    /// What [`Config::load`] does once the file is read (and what the fuzz target drives):
    /// parse, take relative paths from `dir` (the file's directory), validate.
    pub fn from_text(text: &str, dir: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = Config::parse(text)?;
        if let Some(dir) = dir {
            config.resolve_relative_paths(dir);
        }
        config.validate()?;
        Ok(config)
    }

    /// Relative paths in the file (data dir, secret files, lnd's cert) are relative to the
    /// file's directory, so the config works from any working directory.
    fn resolve_relative_paths(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        let fix_secret = |s: &mut SecretRef| {
            if let Some(p) = s.file.as_mut()
                && p.is_relative()
            {
                *p = dir.join(&*p);
            }
        };
        fix(&mut self.data_dir);
        if let Some(lnd) = self.node.lnd.as_mut() {
            if let Some(cert) = lnd.tls_cert_file.as_mut() {
                fix(cert);
            }
            if let Some(ca) = lnd.tls_ca.as_mut()
                && ca != "system"
                && Path::new(ca.as_str()).is_relative()
            {
                *ca = dir.join(ca.as_str()).to_string_lossy().into_owned();
            }
            fix_secret(&mut lnd.macaroon);
        }
        if let Some(nwc) = self.node.nwc.as_mut() {
            fix_secret(&mut nwc.connection);
        }
        if let Some(cln) = self.node.cln.as_mut() {
            for grpc in [&mut cln.grpc, &mut cln.hold] {
                fix(&mut grpc.ca_cert_file);
                fix(&mut grpc.client_cert_file);
                fix_secret(&mut grpc.client_key);
            }
        }
        if let Some(password) = self.store.password.as_mut() {
            fix_secret(password);
        }
        if let Some(master) = self.keys.master.as_mut() {
            fix_secret(master);
        }
        if let Some(token) = self.listeners.internal.token.as_mut() {
            fix_secret(token);
        }
        if let Some(admin) = self.listeners.admin.as_mut() {
            fix_secret(&mut admin.token);
        }
    }

    /// Every semantic problem at once; `Ok` means the sidecar can start with this file (secrets
    /// are resolved later, when used).
    /// Valid settings that leave a hole or can cost an honest visitor (see `validate.rs`).
    pub fn warnings(&self) -> Vec<ConfigIssue> {
        validate::warnings(self)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let issues = validate::validate(self);
        if issues.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(issues))
        }
    }

    pub fn store_location(&self) -> StoreLocation {
        match &self.store.url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                StoreLocation::Postgres(url.clone())
            }
            Some(url) => {
                let path = PathBuf::from(url.trim_start_matches("sqlite:"));
                if path.is_relative() {
                    StoreLocation::Sqlite(self.data_dir.join(path))
                } else {
                    StoreLocation::Sqlite(path)
                }
            }
            None => StoreLocation::Sqlite(self.data_dir.join("lightning-wall.db")),
        }
    }

    pub fn route(&self, id: &str) -> Option<&RouteConfig> {
        self.routes.iter().find(|r| r.id == id)
    }
}

impl LndConfig {
    /// How lnd's certificate is trusted: pinned `tls.cert`, or CA roots (validation ensures
    /// exactly one is set; a pin when neither is, which validation refuses).
    pub fn trust(&self) -> crate::node::lnd::LndTrust {
        use crate::node::lnd::{CaRoots, LndTrust};
        match (&self.tls_ca, &self.tls_cert_file) {
            (Some(ca), _) if ca == "system" => LndTrust::Ca(CaRoots::System),
            (Some(ca), _) => LndTrust::Ca(CaRoots::File(PathBuf::from(ca))),
            (None, cert) => LndTrust::Pin(cert.clone().unwrap_or_default()),
        }
    }
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

#[cfg(test)]
mod tests;
