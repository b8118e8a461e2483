//! Load generator for `make bench-sidecar` (scripts/bench-sidecar.sh starts the sidecar): challenge
//! minting rate on a pay and a deposit route, N deposits driven to HELD through the dev-only pay
//! endpoint with the sidecar's RSS, and M concurrent long-poll waiters answered after payment.
//! It only talks HTTP to a running sidecar; it must never be pointed at a production node.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};
use tokio::sync::Mutex;

#[derive(Parser, Debug)]
struct Args {
    /// The sidecar's internal listener, e.g. http://127.0.0.1:8081
    #[arg(long)]
    internal: String,
    /// The sidecar's public listener, e.g. http://127.0.0.1:8082
    #[arg(long)]
    public: String,
    /// The sidecar's process id (RSS from /proc/<pid>/status)
    #[arg(long)]
    pid: u32,
    /// Route ids of the pay and deposit routes in the sidecar's config
    #[arg(long, default_value = "api")]
    pay_route: String,
    #[arg(long, default_value = "articles")]
    deposit_route: String,
    /// Seconds of each minting measurement
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Alternating pay/deposit minting rounds (medians reported)
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Concurrent client connections while minting and paying
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Deposits to drive to HELD
    #[arg(long, default_value_t = 10_000)]
    held: usize,
    /// Concurrent long-poll waiters
    #[arg(long, default_value_t = 1_000)]
    waiters: usize,
    /// Pay the waiters' deposits at this many per second (0: as fast as `concurrency` allows,
    /// a burst that measures the store's write rate more than the wake-up)
    #[arg(long, default_value_t = 0)]
    waiter_pay_per_s: u32,
}

struct Minted {
    invoice: String,
    macaroon: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .timeout(Duration::from_secs(120))
        .build()?;
    let ctx = Arc::new(Ctx {
        client,
        args,
        next_ip: AtomicU64::new(1),
    });
    let a = &ctx.args;
    println!("rss at start: {}", rss(a.pid)?);

    // Alternate pay and deposit rounds so machine load hits both alike; report medians.
    let (mut pay_rates, mut dep_rates, mut pay_err, mut dep_err) = (vec![], vec![], 0, 0);
    let mut minted = Vec::new();
    for round in 1..=a.rounds {
        let (rate, err, _) = mint_for(&ctx, &a.pay_route, a.seconds, false).await?;
        pay_rates.push(rate);
        pay_err += err;
        let (drate, derr, kept) = mint_for(&ctx, &a.deposit_route, a.seconds, true).await?;
        dep_rates.push(drate);
        dep_err += derr;
        minted.extend(kept);
        println!("round {round}: pay {rate:.0}/s, deposit {drate:.0}/s");
    }
    let (pay_rate, dep_rate) = (median(&mut pay_rates), median(&mut dep_rates));

    // Top up to `held` deposits, then pay them all. The script runs this phase on a fresh
    // sidecar (`--rounds 0`), so exactly `held` deposits are live when RSS is read.
    let started = Instant::now();
    if minted.len() < a.held {
        let more = mint_count(&ctx, &a.deposit_route, a.held - minted.len()).await?;
        minted.extend(more);
    }
    minted.truncate(a.held);
    let top_up = started.elapsed();
    let held_before = deposits_in(&ctx, "held").await?;
    let started = Instant::now();
    let invoices: Vec<String> = minted.into_iter().map(|m| m.invoice).collect();
    let paid = pay_all(&ctx, invoices).await?.len();
    let pay_secs = started.elapsed().as_secs_f64();
    let target = held_before + paid as u64;
    let mut held_now = held_before;
    let wait_until = Instant::now() + Duration::from_secs(120);
    while held_now < target && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(500)).await;
        held_now = deposits_in(&ctx, "held").await?;
    }
    let all_held = started.elapsed().as_secs_f64();
    // Let the engine settle (watchers parked) before reading memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_held = rss(a.pid)?;

    // Long-poll waiters: park them, then pay each deposit.
    let waiters = if a.waiters > 0 {
        mint_count(&ctx, &a.deposit_route, a.waiters).await?
    } else {
        Vec::new()
    };
    let answered = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let poll_url = format!("{}/.well-known/lightning-wall/deposit?wait=60", a.public);
    for m in &waiters {
        let (ctx, url, answered) = (ctx.clone(), poll_url.clone(), answered.clone());
        let auth = format!("L402 {}:", m.macaroon);
        let invoice = m.invoice.clone();
        tasks.push(tokio::spawn(async move {
            let r = ctx
                .client
                .get(&url)
                .header("authorization", auth)
                .send()
                .await;
            let state = match r {
                Ok(r) if r.status().is_success() => r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["state"].as_str().map(str::to_owned)),
                _ => None,
            };
            if state.as_deref() == Some("held") {
                answered.fetch_add(1, Ordering::Relaxed);
            }
            (invoice, Instant::now())
        }));
    }
    if a.waiters > 0 {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let rss_waiting = rss(a.pid)?;
    let pay_started = Instant::now();
    let invoices: Vec<String> = waiters.into_iter().map(|m| m.invoice).collect();
    let paid_at: HashMap<String, Instant> = if a.waiter_pay_per_s > 0 {
        pay_paced(&ctx, invoices, a.waiter_pay_per_s).await?
    } else {
        pay_all(&ctx, invoices).await?
    }
    .into_iter()
    .collect();
    // Per waiter: from the node holding its payment (the dev pay call answered `held`) to its
    // status answer. An answer that beat the pay call's own reply counts as 0.
    let mut latencies = Vec::new();
    for t in tasks {
        let (invoice, answered_at) = t.await?;
        if let Some(paid) = paid_at.get(&invoice) {
            latencies.push(answered_at.saturating_duration_since(*paid).as_secs_f64() * 1000.0);
        }
    }
    let waiters_done = pay_started.elapsed();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(f64::NAN)
    };

    println!();
    println!("| measure | result |");
    println!("|---|---|");
    if a.rounds > 0 {
        println!(
            "| pay challenges minted | {pay_rate:.0}/s median of {} x {} s ({pay_err} errors, {} connections) |",
            a.rounds, a.seconds, a.concurrency
        );
        println!(
            "| deposit challenges minted | {dep_rate:.0}/s median of {} x {} s ({dep_err} errors, {} connections) |",
            a.rounds, a.seconds, a.concurrency
        );
    }
    if a.held > 0 {
        println!(
            "| deposits driven to held | {} of {} (minted in {:.1} s, paid in {pay_secs:.1} s, all held after {all_held:.1} s) |",
            held_now - held_before,
            a.held,
            top_up.as_secs_f64()
        );
        println!("| sidecar RSS with them held | {rss_held} |");
    }
    if a.waiters > 0 {
        println!(
            "| long-poll waiters answered `held` | {} of {} (RSS with them parked: {rss_waiting}; all answered {:.1} s after paying began) |",
            answered.load(Ordering::Relaxed),
            a.waiters,
            waiters_done.as_secs_f64()
        );
        println!(
            "| payment held → waiter answered | p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} waiters) |",
            pct(0.50),
            pct(0.99),
            pct(1.0),
            latencies.len()
        );
    }
    if held_now < target || answered.load(Ordering::Relaxed) < a.waiters as u64 {
        bail!("not every deposit reached held or not every waiter was answered");
    }
    Ok(())
}

struct Ctx {
    client: reqwest::Client,
    args: Args,
    next_ip: AtomicU64,
}

impl Ctx {
    /// A distinct client address per challenge (10.x.y.z): the mint-rate and per-network limits
    /// are per client, and the benchmark measures the sidecar, not those limits.
    fn client_ip(&self) -> IpAddr {
        let n = self.next_ip.fetch_add(1, Ordering::Relaxed) as u32;
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (n & 0x00ff_ffff)))
    }

    async fn mint(&self, route: &str) -> anyhow::Result<Minted> {
        let r = self
            .client
            .post(format!("{}/v1/challenge", self.args.internal))
            .json(&json!({"route_id": route, "client_ip": self.client_ip()}))
            .send()
            .await?;
        let status = r.status();
        let body: Value = r.json().await?;
        if !status.is_success() {
            bail!("challenge: {status} {body}");
        }
        Ok(Minted {
            invoice: body["invoice"].as_str().context("invoice")?.to_owned(),
            macaroon: body["macaroon"].as_str().context("macaroon")?.to_owned(),
        })
    }
}

/// Mints on `route` with `concurrency` connections for `seconds`; rate of successes.
async fn mint_for(
    ctx: &Arc<Ctx>,
    route: &str,
    seconds: f64,
    keep: bool,
) -> anyhow::Result<(f64, u64, Vec<Minted>)> {
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let kept = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..ctx.args.concurrency {
        let (ctx, route, kept) = (ctx.clone(), route.to_owned(), kept.clone());
        let (errors, ok) = (errors.clone(), ok.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                match ctx.mint(&route).await {
                    Ok(m) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        if keep {
                            kept.lock().await.push(m);
                        }
                    }
                    Err(e) => {
                        if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                            eprintln!("first minting error: {e:#}");
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let rate = ok.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let kept = std::mem::take(&mut *kept.lock().await);
    Ok((rate, errors.load(Ordering::Relaxed), kept))
}

/// Mints exactly `n` challenges on `route`.
async fn mint_count(ctx: &Arc<Ctx>, route: &str, n: usize) -> anyhow::Result<Vec<Minted>> {
    let left = Arc::new(AtomicU64::new(n as u64));
    let kept = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let mut tasks = Vec::new();
    for _ in 0..ctx.args.concurrency {
        let (ctx, route, kept, left) = (ctx.clone(), route.to_owned(), kept.clone(), left.clone());
        tasks.push(tokio::spawn(async move {
            while left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| l.checked_sub(1))
                .is_ok()
            {
                let m = ctx.mint(&route).await?;
                kept.lock().await.push(m);
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(std::mem::take(&mut *kept.lock().await))
}

/// Pays every invoice through the dev-only endpoint: each with the moment the node answered
/// that it holds the payment.
async fn pay_all(ctx: &Arc<Ctx>, invoices: Vec<String>) -> anyhow::Result<Vec<(String, Instant)>> {
    let queue = Arc::new(Mutex::new(invoices));
    let held = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..ctx.args.concurrency {
        let (ctx, queue, held) = (ctx.clone(), queue.clone(), held.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(invoice) = queue.lock().await.pop() else {
                    return anyhow::Ok(());
                };
                let r = ctx
                    .client
                    .post(format!("{}/v1/dev/pay", ctx.args.internal))
                    .json(&json!({ "invoice": invoice }))
                    .send()
                    .await?;
                let body: Value = r.json().await?;
                if body["status"] == "held" {
                    held.lock().await.push((invoice, Instant::now()));
                } else {
                    bail!("dev pay: {body}");
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(std::mem::take(&mut *held.lock().await))
}

/// Pays the invoices at `per_s` (one task each, started on a fixed schedule).
async fn pay_paced(
    ctx: &Arc<Ctx>,
    invoices: Vec<String>,
    per_s: u32,
) -> anyhow::Result<Vec<(String, Instant)>> {
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(per_s)));
    let mut tasks = Vec::new();
    for invoice in invoices {
        ticker.tick().await;
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            let body: Value = ctx
                .client
                .post(format!("{}/v1/dev/pay", ctx.args.internal))
                .json(&json!({ "invoice": invoice }))
                .send()
                .await?
                .json()
                .await?;
            if body["status"] != "held" {
                bail!("dev pay: {body}");
            }
            anyhow::Ok((invoice, Instant::now()))
        }));
    }
    let mut paid = Vec::new();
    for t in tasks {
        paid.push(t.await??);
    }
    Ok(paid)
}

/// `lightning_wall_deposits{state="…"}` from the sidecar's metrics.
async fn deposits_in(ctx: &Ctx, state: &str) -> anyhow::Result<u64> {
    let text = ctx
        .client
        .get(format!("{}/metrics", ctx.args.internal))
        .send()
        .await?
        .text()
        .await?;
    let needle = format!("lightning_wall_deposits{{state=\"{state}\"}} ");
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(&needle))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// VmRSS (now) and VmHWM (peak) of the sidecar.
fn rss(pid: u32) -> anyhow::Result<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    Ok(format!(
        "VmRSS {} (peak VmHWM {})",
        field("VmRSS:"),
        field("VmHWM:")
    ))
}
