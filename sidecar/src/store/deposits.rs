//! The deposits table: insert (preimage first), compare-and-swap transitions that write the
//! revocations and audit records of the same decision in one database transaction, timer and
//! pending-action scans, and leases that let exactly one replica act on a deposit at a time.

use std::time::Duration;

use sqlx::Row;

use super::{Store, StoreError, bytes32, dispatch, to_i64, to_u32, to_u64};
use crate::deposit::machine::{Action, Transition, next_due};
use crate::deposit::{
    Deposit, DepositState, DepositTiming, Hold, Leaving, NodeAction, Resolution, Trigger,
};
use crate::ids::{PaymentHash, Preimage};
use crate::ids::{Timestamp, TokenId};

/// A deposit with what only the store knows about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDeposit {
    pub deposit: Deposit,
    /// BOLT11; `None` while the node has not created the invoice yet.
    pub payment_request: Option<String>,
    pub version: i64,
    pub action_attempts: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyOutcome {
    Applied {
        version: i64,
        /// Whether the deposit's token was in the revocation log when the transition
        /// committed (read by the same statement; revocations the transition itself writes
        /// are not included). A long-poll answers from this instead of a read of its own.
        token_revoked: bool,
    },
    /// Someone else wrote the deposit since it was read: read again and re-decide.
    Stale,
}

#[derive(Clone, Debug, Default)]
pub struct DepositFilter {
    pub state: Option<DepositState>,
    pub route_id: Option<String>,
    /// Newest first; at most this many (capped at 1000).
    pub limit: u32,
}

const COLUMNS: &str = "payment_hash, token_id, payment_request, route_id, client_prefix, \
    amount_msat, state, created_at, invoice_expires_at, idle_timeout_s, session_cap_s, \
    safety_margin_blocks, block_interval_s, held_at, last_activity_at, htlc_expiry_height, \
    hold_expiry_delta, deadline_at, resolved_at, resolution_trigger, pending_action, \
    action_attempts, version, left_at, refund_at";

const LIVE: &str = "('awaiting_payment', 'held')";

/// Live deposits (of one client prefix, or all), by whether they are paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveCounts {
    pub held: u64,
    pub unpaid: u64,
}

fn from_row<R>(row: &R) -> Result<StoredDeposit, StoreError>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    const T: &str = "deposits";
    let corrupt = |problem: String| StoreError::Corrupt { table: T, problem };
    let i = |name: &str| -> Result<i64, StoreError> { Ok(row.try_get::<i64, _>(name)?) };
    let oi = |name: &str| -> Result<Option<i64>, StoreError> {
        Ok(row.try_get::<Option<i64>, _>(name)?)
    };
    let ts =
        |name: &str| -> Result<Timestamp, StoreError> { Ok(Timestamp(to_u64(i(name)?, T, name)?)) };
    let ots = |name: &str| -> Result<Option<Timestamp>, StoreError> {
        oi(name)?
            .map(|v| to_u64(v, T, name).map(Timestamp))
            .transpose()
    };
    let secs = |name: &str| -> Result<Duration, StoreError> {
        Ok(Duration::from_secs(to_u64(i(name)?, T, name)?))
    };

    let state_text: String = row.try_get("state")?;
    let state = DepositState::parse(&state_text)
        .ok_or_else(|| corrupt(format!("unknown state {state_text:?}")))?;
    let hold = match (
        ots("held_at")?,
        ots("last_activity_at")?,
        ots("deadline_at")?,
    ) {
        (Some(held_at), Some(last_activity_at), Some(deadline_at)) => Some(Hold {
            held_at,
            last_activity_at,
            htlc_expiry_height: oi("htlc_expiry_height")?
                .map(|h| to_u32(h, T, "htlc_expiry_height"))
                .transpose()?,
            hold_expiry_delta: to_u32(
                oi("hold_expiry_delta")?.unwrap_or(0),
                T,
                "hold_expiry_delta",
            )?,
            deadline_at,
            leaving: match (ots("left_at")?, ots("refund_at")?) {
                (Some(left_at), Some(refund_at)) => Some(Leaving { left_at, refund_at }),
                _ => None,
            },
        }),
        _ => None,
    };
    let resolution = match (
        ots("resolved_at")?,
        row.try_get::<Option<String>, _>("resolution_trigger")?,
    ) {
        (Some(at), Some(trigger)) => Some(Resolution {
            at,
            trigger: Trigger::parse(&trigger)
                .ok_or_else(|| corrupt(format!("unknown trigger {trigger:?}")))?,
        }),
        _ => None,
    };
    let pending = match row.try_get::<Option<String>, _>("pending_action")? {
        None => None,
        Some(a) => {
            Some(NodeAction::parse(&a).ok_or_else(|| corrupt(format!("unknown action {a:?}")))?)
        }
    };
    Ok(StoredDeposit {
        deposit: Deposit {
            payment_hash: PaymentHash(bytes32(row.try_get("payment_hash")?, T, "payment_hash")?),
            token_id: TokenId(bytes32(row.try_get("token_id")?, T, "token_id")?),
            route_id: row.try_get("route_id")?,
            client_prefix: row.try_get("client_prefix")?,
            amount_msat: to_u64(i("amount_msat")?, T, "amount_msat")?,
            state,
            created_at: ts("created_at")?,
            invoice_expires_at: ts("invoice_expires_at")?,
            timing: DepositTiming {
                idle_timeout: secs("idle_timeout_s")?,
                session_cap: secs("session_cap_s")?,
                safety_margin_blocks: to_u32(
                    i("safety_margin_blocks")?,
                    T,
                    "safety_margin_blocks",
                )?,
                assumed_block_interval: secs("block_interval_s")?,
            },
            hold,
            resolution,
            pending,
        },
        payment_request: row.try_get("payment_request")?,
        version: i("version")?,
        action_attempts: to_u32(i("action_attempts")?, T, "action_attempts")?,
    })
}

fn opt_ts(t: Option<Timestamp>) -> Result<Option<i64>, StoreError> {
    t.map(|t| to_i64(t.0, "timestamp")).transpose()
}

/// The mutable columns of a deposit, in the order the UPDATE binds them ($1..$13).
pub(super) struct Mutable {
    pub(super) state: &'static str,
    pub(super) held_at: Option<i64>,
    pub(super) last_activity_at: Option<i64>,
    pub(super) htlc_expiry_height: Option<i64>,
    pub(super) hold_expiry_delta: Option<i64>,
    pub(super) deadline_at: Option<i64>,
    pub(super) resolved_at: Option<i64>,
    pub(super) resolution_trigger: Option<&'static str>,
    pub(super) pending_action: Option<&'static str>,
    pub(super) next_due_at: Option<i64>,
    pub(super) left_at: Option<i64>,
    pub(super) refund_at: Option<i64>,
}

impl Mutable {
    fn of(d: &Deposit) -> Result<Mutable, StoreError> {
        Ok(Mutable {
            state: d.state.as_str(),
            held_at: opt_ts(d.hold.map(|h| h.held_at))?,
            last_activity_at: opt_ts(d.hold.map(|h| h.last_activity_at))?,
            htlc_expiry_height: d.hold.and_then(|h| h.htlc_expiry_height).map(i64::from),
            hold_expiry_delta: d.hold.map(|h| i64::from(h.hold_expiry_delta)),
            deadline_at: opt_ts(d.hold.map(|h| h.deadline_at))?,
            resolved_at: opt_ts(d.resolution.map(|r| r.at))?,
            resolution_trigger: d.resolution.map(|r| r.trigger.as_str()),
            pending_action: d.pending.map(NodeAction::as_str),
            next_due_at: opt_ts(next_due(d))?,
            left_at: opt_ts(d.hold.and_then(|h| h.leaving).map(|l| l.left_at))?,
            refund_at: opt_ts(d.hold.and_then(|h| h.leaving).map(|l| l.refund_at))?,
        })
    }
}

/// A new deposit's columns, owned, ready to bind ($1..$16 of [`INSERT`]).
pub(super) struct NewRow {
    pub payment_hash: Vec<u8>,
    pub token_id: Vec<u8>,
    pub preimage: Vec<u8>,
    pub route_id: String,
    pub client_prefix: String,
    pub amount_msat: i64,
    pub state: &'static str,
    pub created_at: i64,
    pub invoice_expires_at: i64,
    pub idle_timeout_s: i64,
    pub session_cap_s: i64,
    pub safety_margin_blocks: i64,
    pub block_interval_s: i64,
    pub next_due_at: Option<i64>,
    pub pending_action: Option<&'static str>,
    pub payment_request: Option<String>,
}

impl NewRow {
    fn of(
        d: &Deposit,
        preimage: &Preimage,
        payment_request: Option<&str>,
    ) -> Result<NewRow, StoreError> {
        let m = Mutable::of(d)?;
        Ok(NewRow {
            payment_hash: d.payment_hash.0.to_vec(),
            token_id: d.token_id.0.to_vec(),
            preimage: preimage.0.to_vec(),
            route_id: d.route_id.clone(),
            client_prefix: d.client_prefix.clone(),
            amount_msat: to_i64(d.amount_msat, "amount_msat")?,
            state: m.state,
            created_at: to_i64(d.created_at.0, "created_at")?,
            invoice_expires_at: to_i64(d.invoice_expires_at.0, "invoice_expires_at")?,
            idle_timeout_s: to_i64(d.timing.idle_timeout.as_secs(), "idle_timeout")?,
            session_cap_s: to_i64(d.timing.session_cap.as_secs(), "session_cap")?,
            safety_margin_blocks: i64::from(d.timing.safety_margin_blocks),
            block_interval_s: to_i64(d.timing.assumed_block_interval.as_secs(), "block_interval")?,
            next_due_at: m.next_due_at,
            pending_action: m.pending_action,
            payment_request: payment_request.map(str::to_owned),
        })
    }
}

/// The insert of `rows` new deposits in one statement, each row's 16 values bound in
/// [`bind_row!`]'s order. `ON CONFLICT DO NOTHING` (no target: either unique column),
/// understood by SQLite and PostgreSQL alike: a duplicate is skipped instead of aborting the
/// transaction, so one duplicate in a group commit does not fail the other rows; `RETURNING`
/// names the rows inserted.
pub(super) fn insert_rows(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO deposits (payment_hash, token_id, preimage, route_id, client_prefix, \
         amount_msat, state, created_at, invoice_expires_at, idle_timeout_s, session_cap_s, \
         safety_margin_blocks, block_interval_s, next_due_at, pending_action, payment_request, \
         version) VALUES ",
    );
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 1..=16 {
            sql.push_str(&format!("${}, ", r * 16 + c));
        }
        sql.push_str("1)");
    }
    sql.push_str(" ON CONFLICT DO NOTHING RETURNING payment_hash, token_id");
    sql
}

/// PostgreSQL's insert of a whole batch in one statement: the 16 columns of [`insert_rows`],
/// each bound as one array ($1..$16 in [`bind_row!`]'s order) and expanded row by row by
/// `UNNEST`; the same conflict rule and `RETURNING`.
pub(super) const INSERT_UNNEST: &str = "INSERT INTO deposits (payment_hash, token_id, preimage, \
     route_id, client_prefix, amount_msat, state, created_at, invoice_expires_at, idle_timeout_s, \
     session_cap_s, safety_margin_blocks, block_interval_s, next_due_at, pending_action, \
     payment_request, version) \
     SELECT *, 1 FROM UNNEST($1::bytea[], $2::bytea[], $3::bytea[], $4::text[], $5::text[], \
     $6::int8[], $7::text[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], \
     $13::int8[], $14::int8[], $15::text[], $16::text[]) \
     ON CONFLICT DO NOTHING RETURNING payment_hash, token_id";

/// Binds a [`NewRow`]'s 16 values to `$query`; a macro so it expands for either backend's
/// query type.
macro_rules! bind_row {
    ($query:expr, $row:expr) => {{
        let row: &$crate::store::deposits::NewRow = $row;
        $query
            .bind(&row.payment_hash)
            .bind(&row.token_id)
            .bind(&row.preimage)
            .bind(&row.route_id)
            .bind(&row.client_prefix)
            .bind(row.amount_msat)
            .bind(row.state)
            .bind(row.created_at)
            .bind(row.invoice_expires_at)
            .bind(row.idle_timeout_s)
            .bind(row.session_cap_s)
            .bind(row.safety_margin_blocks)
            .bind(row.block_interval_s)
            .bind(row.next_due_at)
            .bind(row.pending_action)
            .bind(row.payment_request.as_deref())
    }};
}
pub(super) use bind_row;

/// A transition's writes, owned, for the store's writer: the compare-and-swap update of the
/// deposit ([`UPDATE_DEPOSIT`], bound by [`bind_update!`]), the tokens it revokes and its audit
/// record.
pub(super) struct TransitionRow {
    pub m: Mutable,
    pub payment_hash: Vec<u8>,
    pub read_version: i64,
    pub revoked: Vec<Vec<u8>>,
    pub revoke_reason: &'static str,
    pub now: i64,
    pub audit: Option<AuditRow>,
}

/// The audit record's columns ([`INSERT_AUDIT`]'s order).
pub(super) struct AuditRow {
    pub route_id: String,
    pub client_prefix: String,
    pub outcome: &'static str,
    pub trigger: &'static str,
    pub amount_msat: i64,
    pub at: i64,
}

impl TransitionRow {
    fn of(read_version: i64, t: &Transition, now: Timestamp) -> Result<TransitionRow, StoreError> {
        let d = &t.next;
        Ok(TransitionRow {
            m: Mutable::of(d)?,
            payment_hash: d.payment_hash.0.to_vec(),
            read_version,
            revoked: t
                .actions
                .iter()
                .filter_map(|a| match a {
                    Action::Revoke(token) => Some(token.0.to_vec()),
                    _ => None,
                })
                .collect(),
            revoke_reason: d.resolution.map_or("deposit_ended", |r| r.trigger.as_str()),
            now: to_i64(now.0, "now")?,
            audit: t
                .audit
                .as_ref()
                .map(|audit| {
                    Ok::<_, StoreError>(AuditRow {
                        route_id: d.route_id.clone(),
                        client_prefix: d.client_prefix.clone(),
                        outcome: audit.outcome.as_str(),
                        trigger: audit.trigger.as_str(),
                        amount_msat: to_i64(d.amount_msat, "amount_msat")?,
                        at: to_i64(audit.at.0, "at")?,
                    })
                })
                .transpose()?,
        })
    }
}

/// The compare-and-swap of a transition: changes nothing (returns no row) unless the row is
/// still at the version the decision was made on. Returns the new version and whether the
/// deposit's token is revoked, so that the engine can tell this replica's long-polls the whole
/// committed answer without their reading the store again (deposit/waiters.rs).
pub(super) const UPDATE_DEPOSIT: &str = "UPDATE deposits SET state = $1, held_at = $2, \
    last_activity_at = $3, htlc_expiry_height = $4, hold_expiry_delta = $5, deadline_at = $6, \
    resolved_at = $7, resolution_trigger = $8, pending_action = $9, next_due_at = $10, \
    version = version + 1, \
    action_attempts = CASE WHEN $9 IS NULL THEN 0 ELSE action_attempts END, \
    left_at = $13, refund_at = $14 \
    WHERE payment_hash = $11 AND version = $12 \
    RETURNING version, \
    EXISTS (SELECT 1 FROM revocations WHERE revocations.token_id = deposits.token_id)";

pub(super) const INSERT_AUDIT: &str = "INSERT INTO audit_records (payment_hash, route_id, \
    client_prefix, outcome, trigger, amount_msat, at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Binds a [`TransitionRow`] to [`UPDATE_DEPOSIT`].
macro_rules! bind_update {
    ($query:expr, $row:expr) => {{
        let row: &$crate::store::deposits::TransitionRow = $row;
        let m = &row.m;
        $query
            .bind(m.state)
            .bind(m.held_at)
            .bind(m.last_activity_at)
            .bind(m.htlc_expiry_height)
            .bind(m.hold_expiry_delta)
            .bind(m.deadline_at)
            .bind(m.resolved_at)
            .bind(m.resolution_trigger)
            .bind(m.pending_action)
            .bind(m.next_due_at)
            .bind(&row.payment_hash)
            .bind(row.read_version)
            .bind(m.left_at)
            .bind(m.refund_at)
    }};
}
pub(super) use bind_update;

impl Store {
    /// Stores a new deposit and its preimage. Must return before the invoice is handed out.
    pub async fn insert_deposit(&self, d: &Deposit, preimage: &Preimage) -> Result<(), StoreError> {
        self.insert_deposit_with_invoice(d, preimage, None).await
    }

    /// Stores a new deposit, its preimage and (when the node already created it) its BOLT11, in
    /// one durable commit shared with concurrent inserts (group commit). Returns once that
    /// commit is done: only then may the invoice be handed out.
    pub async fn insert_deposit_with_invoice(
        &self,
        d: &Deposit,
        preimage: &Preimage,
        payment_request: Option<&str>,
    ) -> Result<(), StoreError> {
        let row = NewRow::of(d, preimage, payment_request)?;
        self.inserter.insert(row).await
    }

    /// Records the BOLT11 once the node created the invoice.
    pub async fn set_payment_request(
        &self,
        hash: &PaymentHash,
        payment_request: &str,
    ) -> Result<(), StoreError> {
        dispatch!(self, p => sqlx::query(
            "UPDATE deposits SET payment_request = $1 WHERE payment_hash = $2")
            .bind(payment_request)
            .bind(hash.0.to_vec())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn deposit(&self, hash: &PaymentHash) -> Result<Option<StoredDeposit>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM deposits WHERE payment_hash = $1");
        dispatch!(self, p => {
            let row = sqlx::query(&sql).bind(hash.0.to_vec()).fetch_optional(p).await?;
            row.as_ref().map(from_row).transpose()
        })
    }

    /// Which of `hashes` are no longer awaiting payment (paid, expired or gone): one query for
    /// the whole list, so long-poll waiters cost the store O(1) reads per re-check however many
    /// there are (deposit/waiters.rs). Callers chunk the list (SQLite binds at most 32,766).
    pub async fn no_longer_awaiting(
        &self,
        hashes: &[PaymentHash],
    ) -> Result<Vec<PaymentHash>, StoreError> {
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=hashes.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT payment_hash FROM deposits WHERE state = 'awaiting_payment' \
             AND payment_hash IN ({})",
            placeholders.join(", ")
        );
        let still: std::collections::HashSet<Vec<u8>> = dispatch!(self, p => {
            let mut q = sqlx::query_scalar(&sql);
            for h in hashes {
                q = q.bind(h.0.to_vec());
            }
            q.fetch_all(p).await?.into_iter().collect()
        });
        Ok(hashes
            .iter()
            .filter(|h| !still.contains(h.0.as_slice()))
            .copied()
            .collect())
    }

    pub async fn deposit_by_token(
        &self,
        token: &TokenId,
    ) -> Result<Option<StoredDeposit>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM deposits WHERE token_id = $1");
        dispatch!(self, p => {
            let row = sqlx::query(&sql).bind(token.0.to_vec()).fetch_optional(p).await?;
            row.as_ref().map(from_row).transpose()
        })
    }

    /// Deposits whose token id or payment hash lies in `[low, high]` (a reference the visitor
    /// read off the wall page, see `deposit::reference`), newest first, at most `limit`. Both
    /// columns are indexed (primary key, unique), so this is two range seeks.
    pub async fn deposits_in_reference_range(
        &self,
        low: &[u8; 32],
        high: &[u8; 32],
        limit: u32,
    ) -> Result<Vec<StoredDeposit>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM deposits WHERE (token_id BETWEEN $1 AND $2) \
             OR (payment_hash BETWEEN $1 AND $2) ORDER BY created_at DESC LIMIT $3"
        );
        dispatch!(self, p => {
            let rows = sqlx::query(&sql)
                .bind(low.to_vec())
                .bind(high.to_vec())
                .bind(i64::from(limit.clamp(1, 100)))
                .fetch_all(p)
                .await?;
            rows.iter().map(from_row).collect()
        })
    }

    /// The preimage, only for settling a forfeit. Never log it.
    pub async fn preimage(&self, hash: &PaymentHash) -> Result<Option<Preimage>, StoreError> {
        dispatch!(self, p => {
            let row = sqlx::query("SELECT preimage FROM deposits WHERE payment_hash = $1")
                .bind(hash.0.to_vec())
                .fetch_optional(p)
                .await?;
            match row {
                None => Ok(None),
                Some(row) => Ok(Some(Preimage(bytes32(row.try_get("preimage")?, "deposits", "preimage")?))),
            }
        })
    }

    /// Writes a transition if the deposit is still at `read_version`, together with the
    /// revocations and the audit record it carries, atomically. Node actions are not performed
    /// here: they are now pending on the row, for the engine (or, after a crash, the reconciler).
    /// Committed by the store's writer with the other writes queued meanwhile (group commit):
    /// returns once the commit holding it is done.
    pub async fn apply(
        &self,
        read_version: i64,
        t: &Transition,
        now: Timestamp,
    ) -> Result<ApplyOutcome, StoreError> {
        let row = TransitionRow::of(read_version, t, now)?;
        self.inserter.apply(row).await
    }

    pub async fn list_deposits(
        &self,
        filter: &DepositFilter,
    ) -> Result<Vec<StoredDeposit>, StoreError> {
        let limit = i64::from(filter.limit.clamp(1, 1000));
        let sql = format!(
            "SELECT {COLUMNS} FROM deposits WHERE ($1 IS NULL OR state = $1) \
             AND ($2 IS NULL OR route_id = $2) ORDER BY created_at DESC, payment_hash LIMIT $3"
        );
        let state = filter.state.map(DepositState::as_str);
        dispatch!(self, p => {
            let rows = sqlx::query(&sql)
                .bind(state)
                .bind(filter.route_id.as_deref())
                .bind(limit)
                .fetch_all(p)
                .await?;
            rows.iter().map(from_row).collect()
        })
    }

    /// Deposits whose timer is due at `now`.
    pub async fn due_deposits(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<StoredDeposit>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM deposits WHERE next_due_at IS NOT NULL AND next_due_at <= $1 \
             ORDER BY next_due_at LIMIT $2"
        );
        let now_i = to_i64(now.0, "now")?;
        dispatch!(self, p => {
            let rows = sqlx::query(&sql).bind(now_i).bind(i64::from(limit)).fetch_all(p).await?;
            rows.iter().map(from_row).collect()
        })
    }

    /// Deposits with a node action decided but not confirmed, whose lease is free.
    pub async fn pending_deposits(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<StoredDeposit>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM deposits WHERE pending_action IS NOT NULL \
             AND (lease_until IS NULL OR lease_until < $1) ORDER BY created_at LIMIT $2"
        );
        let now_i = to_i64(now.0, "now")?;
        dispatch!(self, p => {
            let rows = sqlx::query(&sql).bind(now_i).bind(i64::from(limit)).fetch_all(p).await?;
            rows.iter().map(from_row).collect()
        })
    }

    /// Every deposit not settled for good: live states or a pending action. The reconciler
    /// compares each with the node.
    pub async fn unfinished_deposits(&self) -> Result<Vec<StoredDeposit>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM deposits WHERE state IN {LIVE} OR pending_action IS NOT NULL"
        );
        dispatch!(self, p => {
            let rows = sqlx::query(&sql).fetch_all(p).await?;
            rows.iter().map(from_row).collect()
        })
    }

    /// One page of [`Store::unfinished_deposits`] in payment-hash order, after `after`: the
    /// reconciler walks them page by page so its memory does not grow with the number held.
    pub async fn unfinished_deposits_after(
        &self,
        after: Option<&PaymentHash>,
        limit: u32,
    ) -> Result<Vec<StoredDeposit>, StoreError> {
        // Same condition as the `deposits_unfinished` partial index (migration 0002).
        let unfinished = format!("(state IN {LIVE} OR pending_action IS NOT NULL)");
        let limit = i64::from(limit.max(1));
        dispatch!(self, p => {
            let rows = match after {
                None => sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM deposits WHERE {unfinished} \
                     ORDER BY payment_hash LIMIT $1"))
                    .bind(limit)
                    .fetch_all(p)
                    .await?,
                Some(after) => sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM deposits WHERE {unfinished} AND payment_hash > $1 \
                     ORDER BY payment_hash LIMIT $2"))
                    .bind(after.0.to_vec())
                    .bind(limit)
                    .fetch_all(p)
                    .await?,
            };
            rows.iter().map(from_row).collect()
        })
    }

    /// Live deposits (awaiting payment or held): all, and those of one client prefix. Two
    /// counts rather than one pass with a CASE per row: both are answered from the
    /// `(state, client_prefix)` index, the second by a seek to the prefix. Runs on every mint.
    pub async fn live_deposit_counts(&self, client_prefix: &str) -> Result<(u64, u64), StoreError> {
        let sql = format!(
            "SELECT (SELECT COUNT(*) FROM deposits WHERE state IN {LIVE}) AS total, \
             (SELECT COUNT(*) FROM deposits WHERE state IN {LIVE} AND client_prefix = $1) AS prefix"
        );
        dispatch!(self, p => {
            let row = sqlx::query(&sql).bind(client_prefix).fetch_one(p).await?;
            let total: i64 = row.try_get("total")?;
            let prefix: i64 = row.try_get("prefix")?;
            Ok((to_u64(total, "deposits", "count")?, to_u64(prefix, "deposits", "count")?))
        })
    }

    /// Held and unpaid deposits in total: two walks of the `(state, client_prefix)` index, so
    /// callers on a hot path cache it (see the engine's `LiveCount`).
    pub async fn global_deposit_counts(&self) -> Result<LiveCounts, StoreError> {
        let sql = "SELECT \
             (SELECT COUNT(*) FROM deposits WHERE state = 'held') AS held, \
             (SELECT COUNT(*) FROM deposits WHERE state = 'awaiting_payment') AS unpaid";
        dispatch!(self, p => {
            let row = sqlx::query(sql).fetch_one(p).await?;
            Ok(LiveCounts {
                held: to_u64(row.try_get("held")?, "deposits", "count")?,
                unpaid: to_u64(row.try_get("unpaid")?, "deposits", "count")?,
            })
        })
    }

    /// Held and unpaid deposits of one client prefix: two seeks in the `(state, client_prefix)`
    /// index, cheap on every mint.
    pub async fn prefix_deposit_counts(
        &self,
        client_prefix: &str,
    ) -> Result<LiveCounts, StoreError> {
        let sql = "SELECT \
             (SELECT COUNT(*) FROM deposits WHERE state = 'held' AND client_prefix = $1) AS held, \
             (SELECT COUNT(*) FROM deposits WHERE state = 'awaiting_payment' AND client_prefix = $1) \
             AS unpaid";
        dispatch!(self, p => {
            let row = sqlx::query(sql).bind(client_prefix).fetch_one(p).await?;
            Ok(LiveCounts {
                held: to_u64(row.try_get("held")?, "deposits", "count")?,
                unpaid: to_u64(row.try_get("unpaid")?, "deposits", "count")?,
            })
        })
    }

    pub async fn count_by_state(&self) -> Result<Vec<(DepositState, u64)>, StoreError> {
        dispatch!(self, p => {
            let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM deposits GROUP BY state")
                .fetch_all(p)
                .await?;
            let mut out = Vec::new();
            for row in rows {
                let state: String = row.try_get("state")?;
                let n: i64 = row.try_get("n")?;
                if let Some(s) = DepositState::parse(&state) {
                    out.push((s, to_u64(n, "deposits", "count")?));
                }
            }
            Ok(out)
        })
    }

    /// Takes (or renews) the right to act on the node for this deposit until `now + lease`.
    /// True for exactly one caller while the lease runs, whatever the number of replicas.
    pub async fn claim(
        &self,
        hash: &PaymentHash,
        owner: &str,
        now: Timestamp,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let now_i = to_i64(now.0, "now")?;
        let until = to_i64(now.plus(lease).0, "lease_until")?;
        let done = dispatch!(self, p => sqlx::query(
            "UPDATE deposits SET lease_owner = $1, lease_until = $2 WHERE payment_hash = $3 \
             AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < $4)")
            .bind(owner)
            .bind(until)
            .bind(hash.0.to_vec())
            .bind(now_i)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    pub async fn release(&self, hash: &PaymentHash, owner: &str) -> Result<(), StoreError> {
        dispatch!(self, p => sqlx::query(
            "UPDATE deposits SET lease_owner = NULL, lease_until = NULL \
             WHERE payment_hash = $1 AND lease_owner = $2")
            .bind(hash.0.to_vec())
            .bind(owner)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Counts a failed attempt at the pending action (for backoff and alerts).
    pub async fn record_action_attempt(&self, hash: &PaymentHash) -> Result<u32, StoreError> {
        dispatch!(self, p => {
            let row = sqlx::query(
                "UPDATE deposits SET action_attempts = action_attempts + 1 \
                 WHERE payment_hash = $1 RETURNING action_attempts")
                .bind(hash.0.to_vec())
                .fetch_optional(p)
                .await?;
            match row {
                None => Ok(0),
                Some(row) => to_u32(row.try_get("action_attempts")?, "deposits", "action_attempts"),
            }
        })
    }
}
