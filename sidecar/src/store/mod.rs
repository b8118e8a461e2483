//! Durable state: deposits (with their preimages), pending node actions and leases, revocations,
//! audit records, master keys. SQLite (WAL) for one replica, PostgreSQL for several; the same SQL
//! and the same test suite run on both. It must never lose a preimage or let two writers apply
//! transitions over each other: every transition is a compare-and-swap on `version`.
//!
//! One type with an enum over two `sqlx` pools rather than a `dyn` trait: the queries are the same
//! text (`$N` parameters work in both), and `dispatch!` instantiates each body for both concrete
//! pools, so there is no generic-bound maze and no second copy of any query.

mod count_reads;
mod deposit_rows;
mod deposits;
mod group_commit;
mod identity;
mod operator;
mod records;
mod rewards;
mod shadow;
mod usage;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use deposit_rows::StoredDeposit;
pub use deposits::{ApplyOutcome, DepositFilter, LiveCounts, UnfinishedPages};
pub use operator::{MoneySummary, OutcomeDay};
pub use records::{AuditRecord, Revocation, RevocationSnapshot};
pub use rewards::{
    ClaimRefusal, CreditOutcome, NewPayout, Payout, PayoutResult, PayoutState, RewardAccount,
    RewardAuditRecord,
};
pub use shadow::{SHADOW_RETENTION_DAYS, ShadowCount, ShadowDay};
pub use usage::UsageReport;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row that this code cannot have written (manual edit, newer schema).
    #[error("corrupt row in {table}: {problem}")]
    Corrupt {
        table: &'static str,
        problem: String,
    },
    #[error("a deposit with this payment hash or token id already exists")]
    Duplicate,
    /// The transaction holding this row and others was rolled back: none of them was stored.
    #[error("database: a group commit of {rows} new deposits failed: {message}")]
    BatchFailed { rows: usize, message: String },
    #[error("the store's writer has stopped (shutting down)")]
    WriterGone,
    /// A batched read failed for every caller in it (count_reads.rs).
    #[error("database: a batched read failed: {message}")]
    ReadFailed { message: String },
    #[error("the operating system's random number generator failed")]
    Random,
}

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to the concrete pool of either backend.
macro_rules! dispatch {
    ($self:expr, $p:ident => $body:expr) => {
        match &$self.pool {
            $crate::store::Pool::Sqlite($p) => $body,
            $crate::store::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use dispatch;

#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    /// New deposits go through one writer task that commits them in batches.
    inserter: group_commit::Inserter,
    /// PostgreSQL: the per-network counts of concurrent mints are read in batches.
    prefix_counts: Option<count_reads::PrefixCounts>,
    /// The store's id as last read (identity.rs).
    identity: identity::CachedId,
}

impl Store {
    /// Opens (creating if needed) a SQLite database in WAL mode and migrates it.
    pub async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        // The database holds preimages: create it readable by its owner only (SQLite gives the
        // -wal and -shm files the database file's permissions).
        #[cfg(unix)]
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: with WAL, NORMAL may lose the last transactions on power loss — a preimage
            // or a decided refund must survive.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Store::with_pool(Pool::Sqlite(pool)).await
    }

    /// Connects to PostgreSQL (`password` from the config's secret reference, if any) and
    /// migrates (sqlx takes an advisory lock, so replicas starting together migrate once).
    pub async fn open_postgres(url: &str, password: Option<&str>) -> Result<Store, StoreError> {
        let mut options = PgConnectOptions::from_str(url)?;
        if let Some(password) = password {
            options = options.password(password);
        }
        Store::open_postgres_with(options).await
    }

    /// As [`Store::open_postgres`], with options built by the caller (tests use a fresh
    /// `search_path` schema each).
    pub async fn open_postgres_with(options: PgConnectOptions) -> Result<Store, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Store::with_pool(Pool::Postgres(pool)).await
    }

    /// The store on a migrated pool, its id read (or drawn, for a new store).
    async fn with_pool(pool: Pool) -> Result<Store, StoreError> {
        let prefix_counts = match &pool {
            Pool::Postgres(p) => Some(count_reads::PrefixCounts::start(p.clone())),
            Pool::Sqlite(_) => None,
        };
        let store = Store {
            inserter: group_commit::Inserter::start(pool.clone()),
            prefix_counts,
            pool,
            identity: identity::CachedId::default(),
        };
        store.store_id().await?;
        Ok(store)
    }

    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Connections the pool opens at most (the public endpoints may use half: api/store_gate.rs).
    pub fn max_connections(&self) -> u32 {
        dispatch!(self, p => p.options().get_max_connections())
    }

    /// Readiness: one round trip.
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, p => { sqlx::query("SELECT 1").execute(p).await?; });
        Ok(())
    }

    /// Runs raw SQL (tests that need a failing database, e.g. a trigger).
    #[cfg(test)]
    pub(crate) async fn execute_for_test(&self, sql: &str) {
        dispatch!(self, p => { sqlx::query(sql).execute(p).await.unwrap(); });
    }

    pub async fn close(&self) {
        dispatch!(self, p => p.close().await)
    }
}

fn to_i64(value: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt {
        table: "deposits",
        problem: format!("{what} {value} does not fit a database integer"),
    })
}

fn to_u64(value: i64, table: &'static str, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        table,
        problem: format!("negative {what}: {value}"),
    })
}

fn to_u32(value: i64, table: &'static str, what: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt {
        table,
        problem: format!("{what} out of range: {value}"),
    })
}

/// An audit record's `outcome` and `trigger` columns, as written by the lifecycle.
fn audit_outcome<R>(
    row: &R,
) -> Result<(crate::deposit::DepositState, crate::deposit::Trigger), StoreError>
where
    R: sqlx::Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let outcome: String = row.try_get("outcome")?;
    let trigger: String = row.try_get("trigger")?;
    let (outcome, trigger) = (outcome.as_str(), trigger.as_str());
    let corrupt = |what: &str, v: &str| StoreError::Corrupt {
        table: "audit_records",
        problem: format!("unknown {what} {v:?}"),
    };
    Ok((
        crate::deposit::DepositState::parse(outcome).ok_or_else(|| corrupt("outcome", outcome))?,
        crate::deposit::Trigger::parse(trigger).ok_or_else(|| corrupt("trigger", trigger))?,
    ))
}

fn bytes32(value: Vec<u8>, table: &'static str, what: &str) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(value.as_slice()).map_err(|_| StoreError::Corrupt {
        table,
        problem: format!("{what} is {} bytes, not 32", value.len()),
    })
}

#[cfg(test)]
pub(crate) mod tests;
