//! Durable state of the dev node: `dev-node.sqlite` in its data dir (WAL), so invoices and held
//! payments survive a restart or a kill -9 like a real lnd's. Only reads and writes rows; the
//! rules live in `rules.rs`. It must never delete an invoice (hashes are never reused).

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::chain::Chain;
use super::rules::DevInvoice;
use crate::ids::{PaymentHash, Preimage};
use crate::node::InvoiceState;

pub const DB_FILE: &str = "dev-node.sqlite";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/node/dev/migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("dev node database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("dev node database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("dev node database holds a malformed row: {0}")]
    Corrupt(String),
    #[error("an invoice kept changing under {0} attempts to update it")]
    Contended(usize),
    /// The statement holding this invoice and others failed: none of them was stored.
    #[error("dev node database: a batched insert of {rows} invoices failed: {message}")]
    BatchFailed { rows: usize, message: String },
    #[error("the dev node's invoice writer has stopped (shutting down)")]
    WriterGone,
}

#[derive(Clone, Debug)]
pub struct DevStore {
    pool: SqlitePool,
}

impl DevStore {
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join(DB_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL loses no committed transaction when the process is killed (only
            // an OS crash can lose the last ones): https://www.sqlite.org/pragma.html#pragma_synchronous
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// The chain's parameters, set on first open from `genesis_unix`/`start_height`.
    pub async fn chain(&self, genesis_unix: u64, start_height: u32) -> Result<Chain, StoreError> {
        sqlx::query(
            "INSERT INTO dev_chain (id, genesis_unix, start_height, extra_blocks)
             VALUES (1, ?, ?, 0) ON CONFLICT (id) DO NOTHING",
        )
        .bind(to_i64(genesis_unix)?)
        .bind(i64::from(start_height))
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(
            "SELECT genesis_unix, start_height, extra_blocks FROM dev_chain WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Chain {
            genesis_unix: to_u64(row.try_get("genesis_unix")?)?,
            start_height: to_u32(row.try_get("start_height")?)?,
            extra_blocks: to_u32(row.try_get("extra_blocks")?)?,
        })
    }

    pub async fn add_blocks(&self, blocks: u32) -> Result<(), StoreError> {
        sqlx::query("UPDATE dev_chain SET extra_blocks = extra_blocks + ? WHERE id = 1")
            .bind(i64::from(blocks))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Inserts new invoices in one statement (at most `new_invoices::MAX_BATCH`); for each,
    /// whether it was inserted: `false` when its hash already exists (never overwritten, and
    /// the others still inserted). One statement, so all of them or none are stored.
    pub async fn insert_many(&self, invoices: &[&DevInvoice]) -> Result<Vec<bool>, StoreError> {
        if invoices.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = String::from(
            "INSERT INTO dev_invoices (payment_hash, preimage, is_hold, state, amount_msat,
                 amount_paid_msat, memo, created_at, expiry_secs, cltv_expiry, payment_request,
                 htlc_expiry_height, accept_height) VALUES ",
        );
        for i in 0..invoices.len() {
            sql.push_str(if i == 0 { "(" } else { ", (" });
            sql.push_str(&["?"; 13].join(", "));
            sql.push(')');
        }
        sql.push_str(" ON CONFLICT (payment_hash) DO NOTHING RETURNING payment_hash");
        let mut query = sqlx::query(&sql);
        for invoice in invoices {
            query = query
                .bind(invoice.payment_hash.0.as_slice())
                .bind(invoice.preimage.map(|p| p.0.to_vec()))
                .bind(invoice.is_hold)
                .bind(state_name(invoice.state))
                .bind(to_i64(invoice.amount_msat)?)
                .bind(to_i64(invoice.amount_paid_msat)?)
                .bind(&invoice.memo)
                .bind(to_i64(invoice.created_at)?)
                .bind(to_i64(invoice.expiry.as_secs())?)
                .bind(i64::from(invoice.cltv_expiry))
                .bind(&invoice.payment_request)
                .bind(invoice.htlc_expiry_height.map(i64::from))
                .bind(invoice.accept_height.map(i64::from));
        }
        let returned = query.fetch_all(&self.pool).await?;
        let mut inserted = returned
            .iter()
            .map(|row| row.try_get::<Vec<u8>, _>(0))
            .collect::<Result<Vec<_>, _>>()?;
        // Each inserted row comes back once; a hash given twice in one batch is inserted once.
        Ok(invoices
            .iter()
            .map(
                |invoice| match inserted.iter().position(|h| *h == invoice.payment_hash.0) {
                    Some(at) => {
                        inserted.swap_remove(at);
                        true
                    }
                    None => false,
                },
            )
            .collect())
    }

    /// Writes the mutable fields of an invoice that a rule changed, only if its stored state is
    /// still `expected` (every transition changes the state); `Ok(false)` otherwise.
    pub async fn update(
        &self,
        invoice: &DevInvoice,
        expected: InvoiceState,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE dev_invoices SET preimage = ?, state = ?, amount_paid_msat = ?,
                 htlc_expiry_height = ?, accept_height = ?
             WHERE payment_hash = ? AND state = ?",
        )
        .bind(invoice.preimage.map(|p| p.0.to_vec()))
        .bind(state_name(invoice.state))
        .bind(to_i64(invoice.amount_paid_msat)?)
        .bind(invoice.htlc_expiry_height.map(i64::from))
        .bind(invoice.accept_height.map(i64::from))
        .bind(invoice.payment_hash.0.as_slice())
        .bind(state_name(expected))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn get(&self, hash: &PaymentHash) -> Result<Option<DevInvoice>, StoreError> {
        let row = sqlx::query("SELECT * FROM dev_invoices WHERE payment_hash = ?")
            .bind(hash.0.as_slice())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(invoice_from_row).transpose()
    }

    /// Invoices that time may have changed: OPEN ones whose expiry has passed at `now_unix`,
    /// ACCEPTED ones whose HTLC expiry height is at most `cancel_height` (height + delta).
    pub async fn due(
        &self,
        now_unix: u64,
        cancel_height: u32,
    ) -> Result<Vec<DevInvoice>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM dev_invoices WHERE state = 'OPEN' AND created_at + expiry_secs <= ?
             UNION ALL
             SELECT * FROM dev_invoices WHERE state = 'ACCEPTED' AND htlc_expiry_height <= ?",
        )
        .bind(to_i64(now_unix)?)
        .bind(i64::from(cancel_height))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(invoice_from_row).collect()
    }

    /// Whether an outgoing payment of this hash was recorded.
    pub async fn payment_recorded(&self, hash: &PaymentHash) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 AS one FROM dev_payments WHERE payment_hash = ?")
            .bind(hash.0.as_slice())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Records an outgoing payment; `Ok(false)` when this invoice was already paid.
    pub async fn record_payment(
        &self,
        hash: &PaymentHash,
        payment_request: &str,
        amount_msat: u64,
        paid_at: u64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO dev_payments (payment_hash, payment_request, amount_msat, paid_at)
             VALUES (?, ?, ?, ?) ON CONFLICT (payment_hash) DO NOTHING",
        )
        .bind(hash.0.as_slice())
        .bind(payment_request)
        .bind(to_i64(amount_msat)?)
        .bind(to_i64(paid_at)?)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

fn invoice_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<DevInvoice, StoreError> {
    let hash: Vec<u8> = row.try_get("payment_hash")?;
    let preimage: Option<Vec<u8>> = row.try_get("preimage")?;
    let state: String = row.try_get("state")?;
    Ok(DevInvoice {
        payment_hash: PaymentHash(to_32(&hash)?),
        preimage: preimage.as_deref().map(to_32).transpose()?.map(Preimage),
        is_hold: row.try_get("is_hold")?,
        state: InvoiceState::from_lnd_str(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("invoice state {state:?}")))?,
        amount_msat: to_u64(row.try_get("amount_msat")?)?,
        amount_paid_msat: to_u64(row.try_get("amount_paid_msat")?)?,
        memo: row.try_get("memo")?,
        created_at: to_u64(row.try_get("created_at")?)?,
        expiry: Duration::from_secs(to_u64(row.try_get("expiry_secs")?)?),
        cltv_expiry: to_u32(row.try_get("cltv_expiry")?)?,
        payment_request: row.try_get("payment_request")?,
        htlc_expiry_height: row
            .try_get::<Option<i64>, _>("htlc_expiry_height")?
            .map(to_u32)
            .transpose()?,
        accept_height: row
            .try_get::<Option<i64>, _>("accept_height")?
            .map(to_u32)
            .transpose()?,
    })
}

fn state_name(state: InvoiceState) -> &'static str {
    state.as_lnd_str()
}

fn to_32(bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{}-byte hash or preimage", bytes.len())))
}

fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{value} exceeds SQLite's i64")))
}

fn to_u64(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative value {value}")))
}

fn to_u32(value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{value} is not a u32")))
}
