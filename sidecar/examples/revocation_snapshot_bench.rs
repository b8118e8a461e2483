//! `make bench` section "revocation snapshot": what a new filter worker waits for when the store
//! holds 1,000,000 live revocations. Fills a fresh store (SQLite in a temporary directory, or the
//! PostgreSQL database at `--postgres`, in a schema of its own that is dropped after), then
//! times `GET /v1/revocations/snapshot`'s work (the one statement reading head and prefixes,
//! and the encoding) several times and reports the median.
//! The filter's side (checking the 8 MB body's order) is in the e2e test and costs milliseconds.

use std::time::{Duration, Instant};

use clap::Parser;
use lightning_wall::ids::{Timestamp, TokenId};
use lightning_wall::store::Store;

#[derive(Parser, Debug)]
struct Args {
    /// Revocations in the store
    #[arg(long, default_value_t = 1_000_000)]
    revocations: usize,
    /// Timed snapshot reads (median reported)
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// PostgreSQL URL (e.g. postgres://postgres@127.0.0.1:5432/test); SQLite without it
    #[arg(long)]
    postgres: Option<String>,
}

fn token_ids(n: usize) -> Vec<TokenId> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            let mut id = [0u8; 32];
            for chunk in id.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_be_bytes());
            }
            TokenId(id)
        })
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let schema = format!("lw_bench_snapshot_{}", std::process::id());
    let store = match &args.postgres {
        None => Store::open_sqlite(&dir.path().join("bench.db")).await?,
        Some(url) => {
            use std::str::FromStr;
            let admin = sqlx::PgPool::connect(url).await?;
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&admin)
                .await?;
            let options = sqlx::postgres::PgConnectOptions::from_str(url)?
                .options([("search_path", schema.as_str())]);
            Store::open_postgres_with(options).await?
        }
    };
    let t = Instant::now();
    let ids = token_ids(args.revocations);
    for chunk in ids.chunks(100_000) {
        store.revoke_many(chunk, "bench", Timestamp(1)).await?;
    }
    let fill = t.elapsed();
    // The default token lifetime (1 h) plus the clock margin.
    let retention = Duration::from_secs(3600) + lightning_wall::revocations::CLOCK_MARGIN;
    let mut times: Vec<Duration> = Vec::new();
    let mut bytes = 0;
    for _ in 0..args.rounds {
        let t = Instant::now();
        let snapshot = store.revocation_snapshot(retention).await?;
        bytes = lightning_wall::revocations::encode_snapshot(&snapshot).len();
        times.push(t.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    let backend = store.backend();
    println!("| measure | result |");
    println!("|---|---|");
    println!(
        "| {backend}: revocations in the store | {} (filled in {:.1} s) |",
        args.revocations,
        fill.as_secs_f64()
    );
    println!("| {backend}: snapshot body | {bytes} bytes |");
    println!(
        "| {backend}: snapshot read + encode, median of {} | {:.0} ms |",
        args.rounds,
        median.as_secs_f64() * 1000.0
    );
    store.close().await;
    if let Some(url) = &args.postgres {
        let admin = sqlx::PgPool::connect(url).await?;
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&admin)
            .await?;
    }
    Ok(())
}
