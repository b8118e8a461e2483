//! `lightning-wall-host`: the development gateway (`serve`) and its benchmark helpers. Not for
//! production: production runs the filter inside Envoy.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use lightning_wall_host::gateway::{self, GatewayConfig};
use lightning_wall_host::{FailurePolicy, LogLevel, PluginConfig};

const ABOUT: &str = "proxy-wasm host on wasmtime: a DEVELOPMENT gateway for lightning-wall.\n\n\
This is not Envoy and must not face real traffic: production runs the filter inside Envoy \
(envoy.filters.http.wasm). This host copies Envoy's proxy-wasm semantics so the filter can be \
tested, benchmarked and demonstrated where Envoy is not installed.";

#[derive(Parser)]
#[command(name = "lightning-wall-host", version, about = ABOUT, long_about = ABOUT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the DEVELOPMENT gateway: HTTP/1.1 in, the filter, the upstream (not for production).
    Serve(ServeArgs),
    /// Fixed 200 "ok" server, the upstream for `make bench-gateway`.
    #[command(hide = true)]
    BenchUpstream {
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
    },
    /// Closed-loop HTTP/1.1 load generator; prints requests per second.
    #[command(hide = true)]
    Load {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 32)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// A request header, `NAME: VALUE` (repeatable).
        #[arg(long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// The filter (.wasm, proxy-wasm ABI v0.2.1). Without it requests are forwarded unfiltered.
    #[arg(long)]
    wasm: Option<PathBuf>,
    /// Plugin configuration: a file path, or the configuration itself (e.g. inline JSON).
    #[arg(long, default_value = "")]
    plugin_config: String,
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Base URL of the upstream service.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    upstream: String,
    /// Another upstream for a path prefix: PREFIX=http://127.0.0.1:PORT (repeatable, first
    /// match wins), e.g. the sidecar's public wall endpoints as Envoy routes them.
    #[arg(long = "route", value_name = "PREFIX=URL")]
    routes: Vec<String>,
    /// A call-out cluster the filter may use: NAME=http://127.0.0.1:PORT (repeatable).
    #[arg(long = "cluster", value_name = "NAME=URL")]
    clusters: Vec<String>,
    /// Worker VMs (Envoy: one per worker thread).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    #[arg(long, default_value = "fail-closed")]
    failure_policy: FailurePolicy,
    #[arg(long, default_value = "lightning_wall")]
    vm_id: String,
    #[arg(long, default_value = "lightning_wall")]
    root_id: String,
    /// Log level reported to the guest (trace|debug|info|warn|error|critical).
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Every second, write the size of the filter's shared data to this file as JSON
    /// (`{"shared_data_keys": N, "shared_data_bytes": M}`; the soak reads it).
    #[arg(long)]
    stats_file: Option<PathBuf>,
}

/// Writes the shared data's size to `path` every second (a temporary file renamed over it, so a
/// reader never sees half of it).
async fn write_stats(
    path: PathBuf,
    shared: std::sync::Arc<lightning_wall_host::shared::HostShared>,
    vm_id: String,
) {
    let tmp = path.with_extension("tmp");
    loop {
        let (keys, bytes) = shared.data.usage(&vm_id);
        let json = format!("{{\"shared_data_keys\": {keys}, \"shared_data_bytes\": {bytes}}}\n");
        if let Err(e) = std::fs::write(&tmp, json).and_then(|()| std::fs::rename(&tmp, &path)) {
            tracing::warn!(error = %e, path = %path.display(), "writing the stats file failed");
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

fn parse_level(s: &str) -> anyhow::Result<LogLevel> {
    Ok(match s {
        "trace" => LogLevel::Trace,
        "debug" => LogLevel::Debug,
        "info" => LogLevel::Info,
        "warn" => LogLevel::Warn,
        "error" => LogLevel::Error,
        "critical" => LogLevel::Critical,
        other => bail!("unknown log level {other:?}"),
    })
}

fn plugin_configuration(arg: &str) -> anyhow::Result<Vec<u8>> {
    let path = std::path::Path::new(arg);
    if !arg.is_empty() && !arg.trim_start().starts_with('{') && path.is_file() {
        return std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    }
    Ok(arg.as_bytes().to_vec())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut clusters = Vec::new();
    for c in &args.clusters {
        let (name, url) = c
            .split_once('=')
            .with_context(|| format!("--cluster {c:?}: expected NAME=http://HOST:PORT"))?;
        if !url.starts_with("http://") {
            bail!("--cluster {c:?}: only http:// URLs are supported");
        }
        clusters.push((name.to_string(), url.to_string()));
    }
    let mut routes = Vec::new();
    for r in &args.routes {
        let (prefix, url) = r
            .split_once('=')
            .with_context(|| format!("--route {r:?}: expected /PREFIX=http://HOST:PORT"))?;
        if !prefix.starts_with('/') || !url.starts_with("http://") {
            bail!("--route {r:?}: expected /PREFIX=http://HOST:PORT");
        }
        routes.push((prefix.to_string(), url.to_string()));
    }
    let vm_id = args.vm_id.clone();
    let plugin = PluginConfig {
        name: args.root_id.clone(),
        root_id: args.root_id,
        vm_id: args.vm_id,
        configuration: plugin_configuration(&args.plugin_config)?,
        vm_configuration: Vec::new(),
        failure_policy: args.failure_policy,
        log_level: parse_level(&args.log_level)?,
    };
    let config = GatewayConfig {
        listen: args.listen,
        upstream: args.upstream,
        routes,
        wasm: args.wasm,
        plugin,
        clusters,
        workers: args.workers,
    };
    let running = gateway::start(config.clone()).await?;
    if let Some(path) = args.stats_file {
        tokio::spawn(write_stats(path, running.shared.clone(), vm_id));
    }
    tracing::warn!(
        "lightning-wall-host: DEVELOPMENT gateway listening on http://{} -> {} ({}); \
         production runs the filter inside Envoy",
        running.addr,
        config.upstream,
        config
            .wasm
            .as_ref()
            .map_or("no filter".into(), |p| p.display().to_string()),
    );
    running.task.await.context("gateway task")?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::BenchUpstream { listen } => gateway::bench_upstream(listen).await,
            Command::Load {
                url,
                connections,
                seconds,
                headers,
            } => {
                let headers = headers
                    .iter()
                    .map(|h| {
                        h.split_once(':')
                            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                            .with_context(|| format!("--header {h:?}: expected NAME: VALUE"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let r = lightning_wall_host::load::run(
                    &url,
                    &headers,
                    connections,
                    Duration::from_secs(seconds),
                )
                .await?;
                println!(
                    "requests={} errors={} seconds={:.2} rps={:.0}",
                    r.requests,
                    r.errors,
                    r.elapsed.as_secs_f64(),
                    r.per_second()
                );
                Ok(())
            }
        }
    })
}
