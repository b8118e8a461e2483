//! HTTP: the internal API for the filter (`internal`), the public wall endpoints (`wall`), the
//! operator API (`admin`), each on its own listener, plus health, readiness and metrics. Handlers
//! are thin: parse, authorise (the `auth` extractors), call a service (the deposit lifecycle, the
//! minter, the store), answer JSON. Every error is `{"error": {"code", "message"}}` with a
//! documented code (docs/internal-api.md).

pub mod admin;
pub mod auth;
pub mod credential;
pub mod dashboard;
pub mod error;
pub mod internal;
pub mod payment;
pub mod policy;
pub mod rewards;
pub mod store_gate;
pub mod terms;
pub mod wall;
pub mod wall_page;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::config::{Config, SecretBytes};
use crate::deposit::lifecycle::Lifecycle;
use crate::deposit::waiters::Waiters;
use crate::keys::Keys;
use crate::metrics::Metrics;
use crate::mint::ChallengeMinter;
use crate::mint_limit::PerSecondBudget;
use crate::node::Node;
use crate::node::dev::DevNode;
use crate::reload::Live;
use crate::rewards::payouts::Payouts;
use crate::store::Store;

/// Largest request body accepted anywhere (event batches are the biggest).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// How often long-poll waiters are re-checked against the store for changes another replica
/// made (this replica's lifecycle wakes its own waiters at once).
const WAITERS_RECHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Everything a handler may need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Deposit commands (open, event, leave); the only way a deposit changes.
    pub lifecycle: Lifecycle,
    /// Reads, revocations, rewards and usage: what needs no deposit transition.
    pub store: Store,
    pub node: Arc<dyn Node>,
    /// The config in force and the filters' policy built from it, swapped whole by a reload
    /// (reload.rs): read it once per request with [`AppState::config`] / [`AppState::policy`].
    pub live: Arc<Live>,
    pub keys: Arc<Keys>,
    pub metrics: Arc<Metrics>,
    pub internal_token: Option<Arc<SecretBytes>>,
    pub admin_token: Option<Arc<SecretBytes>>,
    /// Challenges: the per-network rate, the global budget, invoices and macaroons.
    pub minter: Arc<ChallengeMinter>,
    /// Node lookups for pay credentials without a preimage (api/payment.rs).
    pub payment_lookups: Arc<PerSecondBudget>,
    /// Deposit status long-polls waiting on this replica.
    pub waiters: Arc<Waiters>,
    /// The public endpoints' share of the store (the rest is the filter's: store_gate.rs).
    pub public_store: Arc<store_gate::StoreGate>,
    /// The development node, when `node.backend: dev` (enables the dev-only pay endpoint).
    pub dev_node: Option<DevNode>,
    /// Sends reward payouts (and tracks them when their outcome is unknown).
    pub payouts: Payouts,
}

impl AppState {
    pub fn new(
        lifecycle: Lifecycle,
        config: Arc<Config>,
        keys: Keys,
        metrics: Arc<Metrics>,
        internal_token: Option<SecretBytes>,
        admin_token: Option<SecretBytes>,
        dev_node: Option<DevNode>,
    ) -> AppState {
        let store = lifecycle.store().clone();
        let node = lifecycle.node().clone();
        let payouts = Payouts::new(store.clone(), node.clone(), metrics.clone());
        let waiters = Waiters::new(
            config.limits.max_long_polls as usize,
            config.limits.max_long_polls_per_token as usize,
            config.limits.max_long_polls_per_network() as usize,
        );
        waiters.clone().relay(lifecycle.changes());
        let recheck_store = store.clone();
        waiters.recheck(WAITERS_RECHECK, move |hashes| {
            let store = recheck_store.clone();
            async move { store.no_longer_awaiting(&hashes).await }
        });
        let keys = Arc::new(keys);
        let live = Arc::new(Live::new(config.clone(), keys.clone(), metrics.clone()));
        let minter = Arc::new(ChallengeMinter::new(
            lifecycle.clone(),
            live.clone(),
            keys.clone(),
            metrics.clone(),
        ));
        AppState {
            minter,
            public_store: Arc::new(store_gate::StoreGate::for_pool(store.max_connections())),
            waiters,
            payouts,
            payment_lookups: Arc::new(PerSecondBudget::new(
                config.limits.payment_lookups_per_s,
                Instant::now(),
            )),
            lifecycle,
            store,
            node,
            live,
            keys,
            metrics,
            internal_token: internal_token.map(Arc::new),
            admin_token: admin_token.map(Arc::new),
            dev_node,
        }
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.live.current().config.clone()
    }

    /// The filters' policy in force.
    pub fn policy(&self) -> Arc<policy::FilterPolicy> {
        self.live.current().policy.clone()
    }
}

/// Internal listener: the filter's API, health, readiness, metrics, and the dev-only pay
/// endpoint when the node is the development node.
pub fn internal_router(state: AppState) -> Router {
    Router::new()
        .merge(internal::routes())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Public listener: the wall endpoints Envoy routes to us. Their store use passes the gate
/// (store_gate.rs): per request, except the deposit status long-poll, which passes it per
/// read so that it holds no place while it waits.
pub fn public_router(state: AppState) -> Router {
    Router::new()
        .merge(wall::routes())
        .merge(rewards::routes())
        .merge(wall_page::routes())
        .merge(terms::routes())
        .merge(payment::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            store_gate::gated,
        ))
        .merge(wall::status_routes())
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .with_state(state)
}

/// Admin listener: always behind the admin token (the dashboard: the token, or the session its
/// login form starts).
pub fn admin_router(state: AppState) -> Router {
    Router::new()
        .merge(admin::routes())
        .merge(dashboard::routes())
        .layer(DefaultBodyLimit::max(16 * 1024))
        .with_state(state)
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// Ready when the store answers and the node answers.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.store.ping().await.is_ok();
    let node = state.node.info().await.is_ok();
    let status = if store && node {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(serde_json::json!({"store": store, "node": node})),
    )
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    if let Ok(counts) = state.store.count_by_state().await {
        state.metrics.set_deposit_counts(&counts);
    }
    state
        .metrics
        .long_polls_waiting
        .set(i64::try_from(state.waiters.len()).unwrap_or(i64::MAX));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
