//! A deposit as a row of the deposits table, both ways: the columns read back into a
//! [`StoredDeposit`], and the owned column sets (with their SQL) that the store's writer binds for
//! new deposits, transitions and their audit records. Pure mapping: no query runs here.

use std::time::Duration;

use sqlx::Row;

use super::{StoreError, bytes32, to_i64, to_u32, to_u64};
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

/// Every column [`from_row`] reads, for `SELECT`.
pub(super) const COLUMNS: &str = "payment_hash, token_id, payment_request, route_id, client_prefix, \
    amount_msat, state, created_at, invoice_expires_at, idle_timeout_s, session_cap_s, \
    safety_margin_blocks, block_interval_s, held_at, last_activity_at, htlc_expiry_height, \
    hold_expiry_delta, deadline_at, resolved_at, resolution_trigger, pending_action, \
    action_attempts, version, left_at, refund_at";

pub(super) fn from_row<R>(row: &R) -> Result<StoredDeposit, StoreError>
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
    pub(super) fn of(
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
        let row: &$crate::store::deposit_rows::NewRow = $row;
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
    pub(super) fn of(
        read_version: i64,
        t: &Transition,
        now: Timestamp,
    ) -> Result<TransitionRow, StoreError> {
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
/// deposit's token is revoked, so that the lifecycle can tell this replica's long-polls the whole
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
        let row: &$crate::store::deposit_rows::TransitionRow = $row;
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
