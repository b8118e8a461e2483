//! `fake-lnd`: runs FakeLnd (a TEST DOUBLE of lnd's REST API, never a real node) as a process,
//! for end-to-end and crash tests that start the sidecar as a process too. It writes `tls.cert`
//! and `admin.macaroon` into `--dir`, prints one JSON line with the addresses, and serves a plain
//! HTTP control API on loopback for the test's payer, miner and chaos controls, and for what an
//! operator does with `lncli` on a real node (bake a macaroon; channels stand in for opened
//! ones), so docs/going-live.md can be walked on it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use fake_lnd::{FakeChannel, FakeLnd, FakeLndOptions};
use serde::Deserialize;
use serde_json::json;

#[derive(Parser)]
#[command(about = "FakeLnd: a test double of lnd's REST API (no channels, no money)")]
struct Args {
    /// Where to write tls.cert and admin.macaroon.
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, default_value = "regtest")]
    network: String,
    #[arg(long, default_value_t = 500)]
    block_height: u32,
    /// lnd REST port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Control API port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    control_port: u16,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)?;
    let fake = Arc::new(
        FakeLnd::start_with(FakeLndOptions {
            network: args.network,
            block_height: args.block_height,
            port: args.port,
            ..FakeLndOptions::default()
        })
        .await?,
    );
    let (cert, macaroon) = fake.write_credentials(&args.dir)?;
    let control = tokio::net::TcpListener::bind(("127.0.0.1", args.control_port)).await?;
    let control_addr: SocketAddr = control.local_addr()?;
    println!(
        "{}",
        json!({
            "url": fake.url(),
            "tls_cert": cert,
            "macaroon": macaroon,
            "control": format!("http://{control_addr}"),
        })
    );
    let app = Router::new()
        .route("/pay", post(pay))
        .route("/advance_blocks", post(advance_blocks))
        .route("/advance_time", post(advance_time))
        .route("/drop_streams", post(drop_streams))
        .route("/restart", post(restart))
        .route("/remote_preimage", post(remote_preimage))
        .route("/height", get(height))
        .route("/invoice/{hash}", get(invoice))
        .route("/bake_macaroon", post(bake_macaroon))
        .route("/channels", post(set_channels))
        .with_state(fake);
    axum::serve(control, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

type Fake = State<Arc<FakeLnd>>;

fn refused(message: impl Into<String>) -> Response {
    (StatusCode::CONFLICT, Json(json!({"error": message.into()}))).into_response()
}

#[derive(Deserialize)]
struct PayBody {
    payment_request: String,
}

async fn pay(State(fake): Fake, Json(body): Json<PayBody>) -> Response {
    match fake.pay_request(&body.payment_request) {
        Ok(hash) => Json(json!({"payment_hash": hex::encode(hash)})).into_response(),
        Err(e) => refused(e),
    }
}

#[derive(Deserialize)]
struct BlocksBody {
    blocks: u32,
}

async fn advance_blocks(State(fake): Fake, Json(body): Json<BlocksBody>) -> Response {
    fake.advance_blocks(body.blocks);
    Json(json!({"block_height": fake.block_height()})).into_response()
}

#[derive(Deserialize)]
struct TimeBody {
    seconds: u64,
}

async fn advance_time(State(fake): Fake, Json(body): Json<TimeBody>) -> Response {
    fake.advance_time(Duration::from_secs(body.seconds));
    Json(json!({})).into_response()
}

async fn drop_streams(State(fake): Fake) -> Response {
    fake.drop_streams();
    Json(json!({})).into_response()
}

async fn restart(State(fake): Fake) -> Response {
    match fake.restart().await {
        Ok(()) => Json(json!({})).into_response(),
        Err(e) => refused(e.to_string()),
    }
}

#[derive(Deserialize)]
struct PreimageBody {
    preimage: String,
}

async fn remote_preimage(State(fake): Fake, Json(body): Json<PreimageBody>) -> Response {
    match hex::decode(&body.preimage)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
    {
        Some(preimage) => {
            fake.add_remote_preimage(preimage);
            Json(json!({})).into_response()
        }
        None => refused("preimage must be 64 hex characters"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BakeBody {
    permissions: Vec<String>,
}

/// `lncli bakemacaroon <permissions…>`: the macaroon hex-encoded, as lncli prints it.
async fn bake_macaroon(State(fake): Fake, Json(body): Json<BakeBody>) -> Response {
    let permissions: Vec<&str> = body.permissions.iter().map(String::as_str).collect();
    Json(json!({"macaroon": hex::encode(fake.bake_macaroon(&permissions))})).into_response()
}

/// One channel; an absent field keeps [`FakeChannel::default`]'s value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelBody {
    active: Option<bool>,
    private: Option<bool>,
    capacity_sat: Option<u64>,
    local_balance_sat: Option<u64>,
    remote_balance_sat: Option<u64>,
    remote_reserve_sat: Option<u64>,
    max_accepted_htlcs: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelsBody {
    channels: Vec<ChannelBody>,
}

/// What ListChannels reports from now on (one default channel at start).
async fn set_channels(State(fake): Fake, Json(body): Json<ChannelsBody>) -> Response {
    let d = FakeChannel::default();
    let channels: Vec<FakeChannel> = body
        .channels
        .into_iter()
        .map(|c| FakeChannel {
            active: c.active.unwrap_or(d.active),
            private: c.private.unwrap_or(d.private),
            capacity_sat: c.capacity_sat.unwrap_or(d.capacity_sat),
            local_balance_sat: c.local_balance_sat.unwrap_or(d.local_balance_sat),
            remote_balance_sat: c.remote_balance_sat.unwrap_or(d.remote_balance_sat),
            remote_reserve_sat: c.remote_reserve_sat.unwrap_or(d.remote_reserve_sat),
            max_accepted_htlcs: c.max_accepted_htlcs.unwrap_or(d.max_accepted_htlcs),
        })
        .collect();
    let count = channels.len();
    fake.set_channels(channels);
    Json(json!({"channels": count})).into_response()
}

async fn height(State(fake): Fake) -> Response {
    Json(json!({"block_height": fake.block_height()})).into_response()
}

async fn invoice(State(fake): Fake, Path(hash): Path<String>) -> Response {
    let Some(hash) = hex::decode(&hash)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
    else {
        return refused("hash must be 64 hex characters");
    };
    match fake.invoice(hash) {
        Some(view) => Json(json!({
            "state": view.state,
            "amt_paid_msat": view.amt_paid_msat,
            "htlc_expiry_height": view.htlc_expiry_height,
        }))
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "unknown invoice"})),
        )
            .into_response(),
    }
}
