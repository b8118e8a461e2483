//! `lightning-wall`: the sidecar binary. `serve` runs it; the other commands check a config
//! (`check-config`, and `doctor` against the node), pay a dev-node invoice, decode a token, and drive the admin API.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use lightning_wall::config::Config;
use serde_json::Value;

#[derive(Parser)]
#[command(
    name = "lightning-wall",
    version,
    about = "Lightning Network wall sidecar"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sidecar.
    Serve {
        #[arg(long, default_value = "lightning-wall.yaml")]
        config: PathBuf,
    },
    /// Validate a configuration file and list every problem.
    CheckConfig {
        #[arg(long, default_value = "lightning-wall.yaml")]
        config: PathBuf,
    },
    /// Check a configuration against the real world before traffic: secrets, the node (macaroon
    /// permissions, a 1-sat hold invoice created and cancelled, liquidity and HTLC slots) and
    /// the client addresses of recent deposits. Exit 0: all ok; 1: warnings; 2: a failure.
    Doctor {
        #[arg(long, default_value = "lightning-wall.yaml")]
        config: PathBuf,
    },
    /// Development node only.
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
    /// Tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The operator API (needs `listeners.admin` and its token).
    Admin {
        #[command(flatten)]
        target: AdminTarget,
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum DevCommand {
    /// Pay an invoice of the embedded development node (prints JSON).
    Pay {
        bolt11: String,
        /// Read the sidecar's internal address and token from this config.
        #[arg(long, conflicts_with = "sidecar")]
        config: Option<PathBuf>,
        /// The sidecar's internal listener (default: the one `make demo` starts).
        #[arg(long)]
        sidecar: Option<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Decode a credential (`L402 <b64>:<hex>`, a cookie value or a macaroon) without verifying.
    Inspect { credential: String },
}

#[derive(clap::Args)]
struct AdminTarget {
    /// Read the admin address and token from this config.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Admin listener URL, e.g. http://127.0.0.1:8083.
    #[arg(long, global = true)]
    url: Option<String>,
    /// Admin token (prefer LW_ADMIN_TOKEN or --config).
    #[arg(long, env = "LW_ADMIN_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// List deposits, newest first.
    List {
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        route: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// One deposit with its audit records.
    Show { payment_hash: String },
    /// Refund a held deposit now.
    Refund { payment_hash: String },
    /// Forfeit (settle) a held deposit.
    Forfeit { payment_hash: String },
    /// Revoke a token (and refund its deposit if held).
    Revoke {
        token_id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Stop minting on every replica, refund everything held, report (docs/operations.md).
    /// Exit status 0 when nothing is left held or unconfirmed, 2 when something is (the
    /// sidecar keeps retrying it; run `admin drain` again to see).
    Drain {
        /// Wait up to this many seconds for the node to confirm every cancel.
        #[arg(long, default_value_t = 30)]
        wait: u64,
    },
    /// End a drain: minting resumes.
    Undrain,
    /// Read the config file again now, as SIGHUP does (the sidecar also notices an edit by
    /// itself within seconds). Exit status 1 when the file is refused: the message names the
    /// field, or the sections that need a restart, and the old config stays.
    Reload,
}

const DEFAULT_SIDECAR: &str = "http://127.0.0.1:8081";

/// glibc gives threads that allocate their own heaps ("arenas", up to 8 per core), and each
/// keeps the memory freed in it. The sidecar's threads (tokio workers, and one per SQLite
/// connection in sqlx) made 10,000 held deposits cost 115 MB RSS with the default and 69 MB
/// with two arenas (`make bench-sidecar`). Rust's allocations now go to mimalloc (above);
/// SQLite's own still go to glibc. An explicit `MALLOC_ARENA_MAX` wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt(3) only sets an allocator tuning parameter (thread-safe, any time);
        // M_ARENA_MAX is a glibc parameter, and this is a glibc target.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

// mimalloc instead of glibc's malloc: a perf profile of deposit minting had 18-24 % of the
// sidecar's CPU in glibc malloc/free; with mimalloc deposit minting on PostgreSQL went from
// 2,699-3,527/s to 3,377-3,769/s (bench/RESULTS.md, issue 14 item 8). Built without
// transparent huge pages (`no_thp`): with them, 10,000 held deposits took 110-113 MB RSS
// instead of 84 MB, above the 100 MB the sidecar promises.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Serve { config } => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .init();
            let config = Config::load(&config)
                .with_context(|| format!("configuration {}", config.display()))?;
            let running = lightning_wall::serve::start(config).await?;
            shutdown_signal().await;
            tracing::info!("shutting down");
            running.shutdown().await;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::CheckConfig { config: path } => match Config::load(&path) {
            Ok(config) => {
                for warning in config.warnings() {
                    eprintln!("{}: warning: {warning}", path.display());
                }
                println!(
                    "{}: ok ({} routes, node {:?}, store {:?})",
                    path.display(),
                    config.routes.len(),
                    config.node.backend,
                    config.store_location()
                );
                Ok(std::process::ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                Ok(std::process::ExitCode::FAILURE)
            }
        },
        Command::Doctor { config } => {
            println!("lightning-wall doctor: {}", config.display());
            let report = lightning_wall::doctor::run(&config).await;
            println!("{report}");
            Ok(std::process::ExitCode::from(report.exit_code()))
        }
        Command::Dev {
            command:
                DevCommand::Pay {
                    bolt11,
                    config,
                    sidecar,
                },
        } => {
            let (url, token) = match (config, sidecar) {
                (Some(path), _) => {
                    let config = Config::load(&path)?;
                    let token = match &config.listeners.internal.token {
                        Some(t) => Some(String::from_utf8(t.read_text()?.0)?),
                        None => None,
                    };
                    (format!("http://{}", config.listeners.internal.bind), token)
                }
                (None, Some(url)) => (url, None),
                (None, None) => (DEFAULT_SIDECAR.to_owned(), None),
            };
            let body = serde_json::json!({"invoice": bolt11});
            let answer = call(
                reqwest::Method::POST,
                &format!("{url}/v1/dev/pay"),
                token.as_deref(),
                Some(body),
            )
            .await?;
            println!("{answer}");
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Token {
            command: TokenCommand::Inspect { credential },
        } => {
            let inspection = l402::inspect(&credential).context("decoding the credential")?;
            let identifier = match &inspection.identifier {
                Ok(id) => serde_json::json!({
                    "payment_hash": id.payment_hash.to_hex(),
                    "token_id": id.token_id.to_hex(),
                }),
                Err(e) => serde_json::json!({"error": e.to_string()}),
            };
            let caveats: Vec<Value> = inspection
                .caveats
                .iter()
                .map(|c| match &c.meaning {
                    Some(Ok(m)) => serde_json::json!({"caveat": c.text, "meaning": m}),
                    Some(Err(e)) => serde_json::json!({"caveat": c.text, "error": e.to_string()}),
                    None => serde_json::json!({"caveat": c.text}),
                })
                .collect();
            let out = serde_json::json!({
                "location": inspection.location,
                "identifier": identifier,
                "caveats": caveats,
                "macaroons": inspection.macaroons,
                "has_proof": inspection.has_proof,
                "verified": false,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Admin { target, command } => {
            let (url, token) = admin_target(target)?;
            let (method, path, body) = match command {
                AdminCommand::List {
                    state,
                    route,
                    limit,
                } => {
                    let mut q = format!("/admin/v1/deposits?limit={limit}");
                    if let Some(s) = state {
                        q.push_str(&format!("&state={s}"));
                    }
                    if let Some(r) = route {
                        q.push_str(&format!("&route={r}"));
                    }
                    (reqwest::Method::GET, q, None)
                }
                AdminCommand::Show { payment_hash } => (
                    reqwest::Method::GET,
                    format!("/admin/v1/deposits/{payment_hash}"),
                    None,
                ),
                AdminCommand::Refund { payment_hash } => (
                    reqwest::Method::POST,
                    format!("/admin/v1/deposits/{payment_hash}/refund"),
                    None,
                ),
                AdminCommand::Forfeit { payment_hash } => (
                    reqwest::Method::POST,
                    format!("/admin/v1/deposits/{payment_hash}/forfeit"),
                    None,
                ),
                AdminCommand::Drain { wait } => {
                    return drain(&url, &token, std::time::Duration::from_secs(wait)).await;
                }
                AdminCommand::Reload => return reload(&url, &token).await,
                AdminCommand::Undrain => {
                    (reqwest::Method::DELETE, "/admin/v1/drain".to_owned(), None)
                }
                AdminCommand::Revoke { token_id, reason } => (
                    reqwest::Method::POST,
                    "/admin/v1/revoke".to_owned(),
                    Some(serde_json::json!({"token_id": token_id, "reason": reason})),
                ),
            };
            let answer = call(method, &format!("{url}{path}"), Some(&token), body).await?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

/// `admin drain`: start (or repeat) the drain, then follow it until nothing is left or `wait`
/// is over. Prints each report; the exit status says whether everything was given back.
async fn drain(
    url: &str,
    token: &str,
    wait: std::time::Duration,
) -> anyhow::Result<std::process::ExitCode> {
    let deadline = std::time::Instant::now() + wait;
    let mut report = call(
        reqwest::Method::POST,
        &format!("{url}/admin/v1/drain"),
        Some(token),
        None,
    )
    .await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    while report["done"] != Value::Bool(true) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        report = call(
            reqwest::Method::GET,
            &format!("{url}/admin/v1/drain"),
            Some(token),
            None,
        )
        .await?;
    }
    if report["done"] == Value::Bool(true) {
        eprintln!("drained: nothing held, every cancel confirmed by the node");
        Ok(std::process::ExitCode::SUCCESS)
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
        eprintln!("not done yet: see `pending` and `still_live`; the sidecar keeps retrying");
        Ok(std::process::ExitCode::from(2))
    }
}

/// `admin reload`: `POST /admin/v1/config/reload`. A refusal (422) is the operator's answer, not
/// a failure to reach the sidecar: it is printed as a sentence, with exit status 1.
async fn reload(url: &str, token: &str) -> anyhow::Result<std::process::ExitCode> {
    let (status, answer) = call_status(
        reqwest::Method::POST,
        &format!("{url}/admin/v1/config/reload"),
        Some(token),
        None,
    )
    .await?;
    if status.is_success() {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if status == reqwest::StatusCode::UNPROCESSABLE_ENTITY {
        eprintln!(
            "reload refused: {}",
            answer["error"]["message"]
                .as_str()
                .unwrap_or("(no message)")
        );
        return Ok(std::process::ExitCode::FAILURE);
    }
    bail!("{status}: {answer}")
}

fn admin_target(target: AdminTarget) -> anyhow::Result<(String, String)> {
    let from_config = match &target.config {
        Some(path) => {
            let config = Config::load(path)?;
            let Some(admin) = config.listeners.admin else {
                bail!("{}: listeners.admin is not configured", path.display());
            };
            let token = String::from_utf8(admin.token.read_text()?.0)?;
            Some((format!("http://{}", admin.bind), token))
        }
        None => None,
    };
    let url = target
        .url
        .or_else(|| from_config.as_ref().map(|(u, _)| u.clone()))
        .context("give --config or --url")?;
    let token = target
        .token
        .or_else(|| from_config.map(|(_, t)| t))
        .context("give --config, --token or LW_ADMIN_TOKEN")?;
    Ok((url, token))
}

async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let (status, value) = call_status(method, url, token, body).await?;
    if !status.is_success() {
        bail!("{status}: {value}");
    }
    Ok(value)
}

/// One call to the sidecar: the status and the JSON answer, whatever the status.
async fn call_status(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<(reqwest::StatusCode, Value)> {
    let client = reqwest::Client::new();
    let mut request = client.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("reaching the sidecar at {url}"))?;
    let status = response.status();
    let value: Value = response
        .json()
        .await
        .context("reading the sidecar's answer")?;
    Ok((status, value))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
