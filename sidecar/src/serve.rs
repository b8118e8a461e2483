//! Wiring for `lightning-wall serve`: store, node, keys, lifecycle, start-up reconcile, the three
//! listeners, graceful shutdown. Also used by the HTTP tests to run the real thing on loopback.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, AppState};
use crate::config::{Config, NodeBackend, StoreLocation};
use crate::deposit::lifecycle::{Lifecycle, LifecycleSettings};
use crate::metrics::Metrics;
use crate::node::Node;
use crate::node::cln::{ClnConfig, ClnNode, GrpcEndpoint};
use crate::node::dev::{DevNode, DevNodeConfig};
use crate::node::lnd::{LndConfig, LndNode, Macaroon};
use crate::node::nwc::{ConnectionString as NwcConnection, NwcConfig, NwcNode};
use crate::store::Store;

/// A running sidecar: its bound addresses and a handle to stop it.
pub struct Running {
    pub internal: SocketAddr,
    pub public: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub lifecycle: Lifecycle,
    pub dev_node: Option<DevNode>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, stops the lifecycle loops.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    match config.store_location() {
        StoreLocation::Sqlite(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            Store::open_sqlite(&path)
                .await
                .with_context(|| format!("opening SQLite store {}", path.display()))
        }
        StoreLocation::Postgres(url) => {
            let password = match &config.store.password {
                Some(secret) => Some(
                    String::from_utf8(secret.read_text().context("store.password")?.0)
                        .context("store.password is not UTF-8")?,
                ),
                None => None,
            };
            Store::open_postgres(&url, password.as_deref())
                .await
                .context("connecting to PostgreSQL (store.url)")
        }
    }
}

pub async fn open_node(config: &Config) -> anyhow::Result<(Arc<dyn Node>, Option<DevNode>)> {
    match config.node.backend {
        NodeBackend::Dev => {
            let mut dev_config = DevNodeConfig::new(config.data_dir.join("dev-node"));
            if let Some(interval) = config.node.dev.as_ref().and_then(|d| d.block_interval) {
                dev_config.block_interval = interval;
            }
            // Every change to the dev node's invoices goes through this process (`dev pay`
            // reaches it over HTTP), so subscriptions are woken at once; the periodic re-read
            // only covers another process sharing the data dir, which the lifecycle's reconcile
            // covers too. At 2 s, 10,000 held deposits meant 5,000 reads a second for nothing.
            dev_config.subscription_recheck = std::time::Duration::from_secs(30);
            let node = DevNode::open(dev_config)
                .await
                .context("opening the development node")?;
            // DevNode::open announces itself as a development backend in the log.
            Ok((Arc::new(node.clone()), Some(node)))
        }
        NodeBackend::Lnd => {
            let Some(lnd) = &config.node.lnd else {
                bail!("node.lnd: required when node.backend is lnd");
            };
            let lnd_config = lnd_client_config(lnd)?;
            let node = LndNode::connect(lnd_config)
                .await
                .with_context(|| format!("connecting to lnd at {}", lnd.rest_url))?;
            Ok((Arc::new(node), None))
        }
        NodeBackend::Cln => {
            let Some(cln) = &config.node.cln else {
                bail!("node.cln: required when node.backend is cln");
            };
            let endpoint = |name: &str, grpc: &crate::config::ClnGrpcConfig, tls_name: &str| {
                anyhow::Ok(GrpcEndpoint {
                    url: grpc.url.clone(),
                    ca_cert: grpc.ca_cert_file.clone(),
                    client_cert: grpc.client_cert_file.clone(),
                    client_key: grpc
                        .client_key
                        .read_bytes()
                        .with_context(|| format!("node.cln.{name}.client_key"))?
                        .0,
                    tls_name: tls_name.to_owned(),
                })
            };
            let mut cln_config = ClnConfig::new(
                endpoint("grpc", &cln.grpc, "cln")?,
                endpoint("hold", &cln.hold, "hold")?,
                cln.network.clone(),
            );
            cln_config.hold_expiry_delta = cln.hold_expiry_delta;
            cln_config.private = cln.private;
            let node = ClnNode::connect(cln_config)
                .await
                .with_context(|| format!("connecting to Core Lightning at {}", cln.grpc.url))?;
            Ok((Arc::new(node), None))
        }
        NodeBackend::Nwc => {
            let Some(nwc) = &config.node.nwc else {
                bail!("node.nwc: required when node.backend is nwc");
            };
            let text = nwc.connection.read_text().context("node.nwc.connection")?;
            let connection = NwcConnection::parse(&String::from_utf8_lossy(&text.0))
                .context("node.nwc.connection")?;
            let relays = connection.relays.join(", ");
            let mut nwc_config = NwcConfig::new(connection, nwc.network.clone());
            nwc_config.hold_expiry_delta = nwc.hold_expiry_delta;
            nwc_config.payouts = nwc.payouts;
            let node = NwcNode::connect(nwc_config)
                .await
                .with_context(|| format!("connecting to the NWC wallet through {relays}"))?;
            Ok((Arc::new(node), None))
        }
    }
}

/// The lnd client's settings from `node.lnd` (the macaroon read now when it comes from an
/// environment variable; a file is read by the client).
pub fn lnd_client_config(lnd: &crate::config::LndConfig) -> anyhow::Result<LndConfig> {
    let macaroon = match (&lnd.macaroon.file, &lnd.macaroon.env) {
        (Some(path), None) => Macaroon::File(path.clone()),
        _ => Macaroon::Value(lnd.macaroon.read_text().context("node.lnd.macaroon")?.0),
    };
    let mut lnd_config = LndConfig::new(
        lnd.rest_url.clone(),
        std::path::PathBuf::new(),
        macaroon,
        lnd.network.clone(),
    );
    lnd_config.tls = lnd.trust();
    lnd_config.hold_expiry_delta = lnd.hold_expiry_delta;
    lnd_config.private = lnd.private;
    Ok(lnd_config)
}

fn replica_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "sidecar".into());
    format!(
        "{host}-{}-{}",
        std::process::id(),
        hex::encode(rand::random::<[u8; 4]>())
    )
}

/// Opens everything, reconciles, binds the listeners and serves until [`Running::shutdown`].
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let config = Arc::new(config);
    for warning in config.warnings() {
        tracing::warn!(%warning, "configuration (see `lightning-wall check-config`)");
    }
    let store = open_store(&config).await?;
    let (node, dev_node) = open_node(&config).await?;
    let keys = crate::keys::load(&config, &store)
        .await
        .context("loading the master keys")?;
    tracing::info!(key_ids = ?keys.ring, active = %keys.active, "key ring loaded");
    let internal_token = match &config.listeners.internal.token {
        Some(secret) => Some(secret.read_text().context("listeners.internal.token")?),
        None => None,
    };
    let admin_token = match &config.listeners.admin {
        Some(admin) => Some(admin.token.read_text().context("listeners.admin.token")?),
        None => None,
    };
    let metrics = Arc::new(Metrics::new());
    let lifecycle = Lifecycle::new(
        store,
        node,
        LifecycleSettings::from_config(&config, replica_id()),
        metrics.clone(),
    );
    // Finish what a previous run decided before taking new work.
    let report = lifecycle.reconcile().await.context("start-up reconcile")?;
    tracing::info!(
        examined = report.examined,
        node_errors = report.node_errors,
        "start-up reconcile done"
    );

    let state = AppState::new(
        lifecycle.clone(),
        config.clone(),
        keys,
        metrics,
        internal_token,
        admin_token,
        dev_node.clone(),
    );
    // Reward payouts whose outcome a previous run never learnt: track them before new claims.
    let payouts = state.payouts.clone();
    let report = payouts
        .reconcile()
        .await
        .context("start-up reconcile of reward payouts")?;
    tracing::info!(
        examined = report.examined,
        resolved = report.resolved,
        node_errors = report.node_errors,
        "start-up reward payout reconcile done"
    );
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(lifecycle.clone().run(stopped.clone())));
    tasks.push(tokio::spawn(
        payouts.run(config.deposits.reconcile_interval, stopped.clone()),
    ));
    tasks.push(tokio::spawn(crate::revocations::run_compaction(
        state.store.clone(),
        crate::revocations::retention(&config),
        crate::revocations::COMPACT_EVERY,
        stopped.clone(),
    )));

    if config.source.is_some() {
        tasks.push(tokio::spawn(crate::reload::watch(
            state.live.clone(),
            stopped.clone(),
        )));
    }

    let bind = |addr: SocketAddr, what: &'static str| async move {
        TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the {what} listener on {addr}"))
    };
    let internal = bind(config.listeners.internal.bind, "internal").await?;
    let public = bind(config.listeners.public.bind, "public").await?;
    let admin = match &config.listeners.admin {
        Some(a) => Some(bind(a.bind, "admin").await?),
        None => None,
    };
    let internal_addr = internal.local_addr()?;
    let public_addr = public.local_addr()?;
    let admin_addr = admin.as_ref().map(TcpListener::local_addr).transpose()?;

    let serve =
        |listener: TcpListener, router: axum::Router, mut stopped: watch::Receiver<bool>| {
            tokio::spawn(async move {
                let result = axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async move {
                    let _ = stopped.changed().await;
                })
                .await;
                if let Err(e) = result {
                    tracing::error!(error = %e, "listener failed");
                }
            })
        };
    tasks.push(serve(
        internal,
        api::internal_router(state.clone()),
        stopped.clone(),
    ));
    tasks.push(serve(
        public,
        api::public_router(state.clone()),
        stopped.clone(),
    ));
    if let Some(admin) = admin {
        tasks.push(serve(
            admin,
            api::admin_router(state.clone()),
            stopped.clone(),
        ));
    }
    tracing::info!(%internal_addr, %public_addr, ?admin_addr, "lightning-wall sidecar serving");
    Ok(Running {
        internal: internal_addr,
        public: public_addr,
        admin: admin_addr,
        lifecycle,
        dev_node,
        stop,
        tasks,
    })
}
