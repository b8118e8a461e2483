//! The rewards ledger: credits (idempotent by token and reward id), per-token accounts, the
//! site's daily total, single-use LNURL k1s and payouts. Every balance change is one guarded
//! `UPDATE … WHERE <the bound still holds>` inside the transaction that records why, so two
//! replicas (or two concurrent claims) can never overspend or cross a limit, and the same SQL
//! runs on SQLite and PostgreSQL. Every credit and payout step appends a `reward_audit` row.

use sqlx::Row;

use super::{Store, StoreError, bytes32, dispatch, to_i64, to_u64};
use crate::ids::PaymentHash;
use crate::ids::{Timestamp, TokenId};
use crate::rewards::ledger::{self, Credited, Limits, Refusal, RewardId};

/// Attempts when a guarded update lost a race (another writer moved the totals meanwhile).
const CREDIT_ATTEMPTS: usize = 5;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreditOutcome {
    Credited {
        balance_msat: u64,
    },
    Refused(Refusal),
    /// This (token, reward id) was seen before; nothing changed. Its first outcome.
    Duplicate {
        credited_msat: u64,
        refusal: Option<Refusal>,
    },
}

/// A token's ledger. `balance = credited - reserved - paid`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RewardAccount {
    pub credited_msat: u64,
    /// Payouts in flight.
    pub reserved_msat: u64,
    pub paid_msat: u64,
}

impl RewardAccount {
    pub fn balance_msat(&self) -> u64 {
        self.credited_msat
            .saturating_sub(self.reserved_msat)
            .saturating_sub(self.paid_msat)
    }
}

/// Why a claim was refused by the store (nothing changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimRefusal {
    /// Unknown, expired or already used.
    K1Unusable,
    InsufficientBalance,
    /// We already paid (or are paying) an invoice with this payment hash.
    AlreadyPaid,
    /// This token started `rewards.max_withdrawals_per_token` payouts already.
    TooManyWithdrawals,
    /// Today's routing fee budget (`rewards.max_fees_per_day_sat`) cannot cover this payout's
    /// fee limit.
    FeeBudgetSpent,
}

#[derive(Clone, Debug)]
pub struct NewPayout {
    pub payment_hash: PaymentHash,
    pub amount_msat: u64,
    pub fee_limit_msat: u64,
    pub payment_request: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayoutState {
    InFlight,
    Succeeded,
    Failed,
}

impl PayoutState {
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutState::InFlight => "in_flight",
            PayoutState::Succeeded => "succeeded",
            PayoutState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<PayoutState> {
        [
            PayoutState::InFlight,
            PayoutState::Succeeded,
            PayoutState::Failed,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payout {
    pub payment_hash: PaymentHash,
    pub token_id: TokenId,
    pub amount_msat: u64,
    pub fee_limit_msat: u64,
    pub payment_request: String,
    pub state: PayoutState,
    pub created_at: Timestamp,
    pub fee_msat: Option<u64>,
    pub failure_reason: Option<String>,
}

/// How a payout ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayoutResult {
    Succeeded {
        fee_msat: u64,
    },
    /// The amount goes back to the balance.
    Failed {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewardAuditRecord {
    pub token_id: TokenId,
    /// `credit`, `credit_refused`, `payout_started`, `payout_succeeded`, `payout_failed`.
    pub kind: String,
    /// The reward id, or the payout's payment hash in hex.
    pub reference: String,
    pub amount_msat: u64,
    pub detail: Option<String>,
    pub at: Timestamp,
}

const INSERT_AUDIT: &str = "INSERT INTO reward_audit (token_id, kind, reference, amount_msat, detail, at) \
     VALUES ($1, $2, $3, $4, $5, $6)";

const PAYOUT_COLUMNS: &str = "payment_hash, token_id, amount_msat, fee_limit_msat, payment_request, \
     state, created_at, fee_msat, failure_reason";

/// Reads an integer column as u64 (any backend's row: used inside `dispatch!` bodies).
macro_rules! u64_of {
    ($row:expr, $column:literal) => {
        to_u64($row.try_get::<i64, _>($column)?, "rewards", $column)
    };
}

macro_rules! account_of {
    ($row:expr) => {
        RewardAccount {
            credited_msat: u64_of!($row, "credited_msat")?,
            reserved_msat: u64_of!($row, "reserved_msat")?,
            paid_msat: u64_of!($row, "paid_msat")?,
        }
    };
}

macro_rules! payout_of {
    ($row:expr) => {{
        let row = $row;
        let state: String = row.try_get("state")?;
        let fee: Option<i64> = row.try_get("fee_msat")?;
        Payout {
            payment_hash: PaymentHash(bytes32(
                row.try_get("payment_hash")?,
                "reward_payouts",
                "payment_hash",
            )?),
            token_id: TokenId(bytes32(
                row.try_get("token_id")?,
                "reward_payouts",
                "token_id",
            )?),
            amount_msat: u64_of!(row, "amount_msat")?,
            fee_limit_msat: u64_of!(row, "fee_limit_msat")?,
            payment_request: row.try_get("payment_request")?,
            state: PayoutState::parse(&state).ok_or_else(|| StoreError::Corrupt {
                table: "reward_payouts",
                problem: format!("unknown state {state:?}"),
            })?,
            created_at: Timestamp(u64_of!(row, "created_at")?),
            fee_msat: fee
                .map(|f| to_u64(f, "reward_payouts", "fee_msat"))
                .transpose()?,
            failure_reason: row.try_get("failure_reason")?,
        }
    }};
}

impl Store {
    /// Credits a reward once per (token, reward id), within `limits`.
    pub async fn credit_reward(
        &self,
        token: &TokenId,
        reward: &RewardId,
        amount_msat: u64,
        limits: &Limits,
        now: Timestamp,
    ) -> Result<CreditOutcome, StoreError> {
        let amount = to_i64(amount_msat, "amount_msat")?;
        let now_i = to_i64(now.0, "now")?;
        let day = to_i64(ledger::utc_day(now), "day")?;
        let max_token = to_i64(limits.max_per_token_msat, "max_per_token_msat")?;
        let max_day = to_i64(limits.max_per_day_msat, "max_per_day_msat")?;
        let token_b = token.0.to_vec();
        for _ in 0..CREDIT_ATTEMPTS {
            let outcome: Option<CreditOutcome> = dispatch!(self, p => {
                let mut tx = p.begin().await?;
                let fresh = sqlx::query(
                    "INSERT INTO reward_credits (token_id, reward_id, amount_msat, credited_msat, refusal, at) \
                     VALUES ($1, $2, $3, 0, NULL, $4) ON CONFLICT (token_id, reward_id) DO NOTHING")
                    .bind(token_b.clone()).bind(reward.as_str()).bind(amount).bind(now_i)
                    .execute(&mut *tx).await?.rows_affected() == 1;
                if !fresh {
                    let row = sqlx::query(
                        "SELECT credited_msat, refusal FROM reward_credits WHERE token_id = $1 AND reward_id = $2")
                        .bind(token_b.clone()).bind(reward.as_str())
                        .fetch_one(&mut *tx).await?;
                    tx.rollback().await?;
                    let refusal: Option<String> = row.try_get("refusal")?;
                    return Ok(CreditOutcome::Duplicate {
                        credited_msat: u64_of!(row, "credited_msat")?,
                        refusal: refusal.as_deref().and_then(Refusal::parse),
                    });
                }
                sqlx::query("INSERT INTO reward_accounts (token_id, credited_msat, reserved_msat, paid_msat) \
                             VALUES ($1, 0, 0, 0) ON CONFLICT (token_id) DO NOTHING")
                    .bind(token_b.clone()).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO reward_days (day, credited_msat) VALUES ($1, 0) ON CONFLICT (day) DO NOTHING")
                    .bind(day).execute(&mut *tx).await?;
                let account = sqlx::query("SELECT credited_msat FROM reward_accounts WHERE token_id = $1")
                    .bind(token_b.clone()).fetch_one(&mut *tx).await?;
                let today = sqlx::query("SELECT credited_msat FROM reward_days WHERE day = $1")
                    .bind(day).fetch_one(&mut *tx).await?;
                let so_far = Credited {
                    token_msat: u64_of!(account, "credited_msat")?,
                    day_msat: u64_of!(today, "credited_msat")?,
                };
                match ledger::check_credit(limits, so_far, amount_msat) {
                    Err(refusal) => {
                        sqlx::query("UPDATE reward_credits SET refusal = $3 WHERE token_id = $1 AND reward_id = $2")
                            .bind(token_b.clone()).bind(reward.as_str()).bind(refusal.as_str())
                            .execute(&mut *tx).await?;
                        sqlx::query(INSERT_AUDIT)
                            .bind(token_b.clone()).bind("credit_refused").bind(reward.as_str())
                            .bind(amount).bind(Some(refusal.as_str())).bind(now_i)
                            .execute(&mut *tx).await?;
                        tx.commit().await?;
                        Some(CreditOutcome::Refused(refusal))
                    }
                    Ok(()) => {
                        // The same bounds again, on the rows as they are now: a writer that
                        // committed since our reads makes these match nothing, and we retry.
                        let token_ok = sqlx::query(
                            "UPDATE reward_accounts SET credited_msat = credited_msat + $2 \
                             WHERE token_id = $1 AND credited_msat + $2 <= $3")
                            .bind(token_b.clone()).bind(amount).bind(max_token)
                            .execute(&mut *tx).await?.rows_affected() == 1;
                        let day_ok = token_ok && sqlx::query(
                            "UPDATE reward_days SET credited_msat = credited_msat + $2 \
                             WHERE day = $1 AND credited_msat + $2 <= $3")
                            .bind(day).bind(amount).bind(max_day)
                            .execute(&mut *tx).await?.rows_affected() == 1;
                        if day_ok {
                            sqlx::query("UPDATE reward_credits SET credited_msat = $3 WHERE token_id = $1 AND reward_id = $2")
                                .bind(token_b.clone()).bind(reward.as_str()).bind(amount)
                                .execute(&mut *tx).await?;
                            sqlx::query(INSERT_AUDIT)
                                .bind(token_b.clone()).bind("credit").bind(reward.as_str())
                                .bind(amount).bind(None::<String>).bind(now_i)
                                .execute(&mut *tx).await?;
                            let row = sqlx::query(
                                "SELECT credited_msat, reserved_msat, paid_msat FROM reward_accounts WHERE token_id = $1")
                                .bind(token_b.clone()).fetch_one(&mut *tx).await?;
                            tx.commit().await?;
                            Some(CreditOutcome::Credited {
                                balance_msat: account_of!(row).balance_msat(),
                            })
                        } else {
                            tx.rollback().await?;
                            None
                        }
                    }
                }
            });
            if let Some(outcome) = outcome {
                return Ok(outcome);
            }
        }
        Err(StoreError::Corrupt {
            table: "reward_accounts",
            problem: "the reward totals kept changing under the credit; giving up".to_owned(),
        })
    }

    pub async fn reward_account(&self, token: &TokenId) -> Result<RewardAccount, StoreError> {
        dispatch!(self, p => {
            let row = sqlx::query(
                "SELECT credited_msat, reserved_msat, paid_msat FROM reward_accounts WHERE token_id = $1")
                .bind(token.0.to_vec()).fetch_optional(p).await?;
            match row {
                Some(row) => Ok(account_of!(row)),
                None => Ok(RewardAccount::default()),
            }
        })
    }

    /// Records a k1 (by its hash) that may start one withdrawal for `token` until `expires_at`.
    pub async fn issue_withdrawal(
        &self,
        token: &TokenId,
        k1_hash: &[u8; 32],
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let now_i = to_i64(now.0, "now")?;
        let expires = to_i64(expires_at.0, "expires_at")?;
        dispatch!(self, p => sqlx::query(
            "INSERT INTO reward_withdrawals (k1_hash, token_id, created_at, expires_at, used_at) \
             VALUES ($1, $2, $3, $4, NULL)")
            .bind(k1_hash.to_vec()).bind(token.0.to_vec()).bind(now_i).bind(expires)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The token of a k1 that is still usable (known, unused, unexpired).
    pub async fn usable_withdrawal(
        &self,
        k1_hash: &[u8; 32],
        now: Timestamp,
    ) -> Result<Option<TokenId>, StoreError> {
        let now_i = to_i64(now.0, "now")?;
        dispatch!(self, p => {
            let row = sqlx::query(
                "SELECT token_id FROM reward_withdrawals \
                 WHERE k1_hash = $1 AND used_at IS NULL AND expires_at > $2")
                .bind(k1_hash.to_vec()).bind(now_i).fetch_optional(p).await?;
            match row {
                Some(row) => Ok(Some(TokenId(bytes32(row.try_get("token_id")?, "reward_withdrawals", "token_id")?))),
                None => Ok(None),
            }
        })
    }

    /// In one transaction: uses the k1, records the payout with its payment hash and reserves
    /// the amount from the balance. Any refusal changes nothing (the k1 stays usable).
    ///
    /// Fees are part of the budget: the payout's fee limit is reserved against today's fee
    /// budget (paid payouts count with their real fee, failed ones not at all), and a token may
    /// start at most `max_withdrawals_per_token` payouts that did not fail.
    pub async fn start_payout(
        &self,
        k1_hash: &[u8; 32],
        payout: &NewPayout,
        limits: &Limits,
        now: Timestamp,
    ) -> Result<Result<TokenId, ClaimRefusal>, StoreError> {
        let now_i = to_i64(now.0, "now")?;
        let day_start = to_i64(ledger::utc_day(now).saturating_mul(86_400), "day start")?;
        let max_fees = to_i64(limits.max_fees_per_day_msat, "max_fees_per_day_msat")?;
        let amount = to_i64(payout.amount_msat, "amount_msat")?;
        let fee_limit = to_i64(payout.fee_limit_msat, "fee_limit_msat")?;
        let hash_b = payout.payment_hash.0.to_vec();
        dispatch!(self, p => {
            let mut tx = p.begin().await?;
            let Some(row) = sqlx::query(
                "UPDATE reward_withdrawals SET used_at = $2 \
                 WHERE k1_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING token_id")
                .bind(k1_hash.to_vec()).bind(now_i).fetch_optional(&mut *tx).await? else {
                tx.rollback().await?;
                return Ok(Err(ClaimRefusal::K1Unusable));
            };
            let token_b: Vec<u8> = row.try_get("token_id")?;
            let token = TokenId(bytes32(token_b.clone(), "reward_withdrawals", "token_id")?);
            let started: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM reward_payouts WHERE token_id = $1 AND state <> 'failed'")
                .bind(token_b.clone()).fetch_one(&mut *tx).await?.try_get("n")?;
            if started >= i64::from(limits.max_withdrawals_per_token) {
                tx.rollback().await?;
                return Ok(Err(ClaimRefusal::TooManyWithdrawals));
            }
            // SUM of BIGINT is NUMERIC in PostgreSQL: cast back for one decoder on both stores.
            let fees: i64 = sqlx::query(
                "SELECT CAST(COALESCE(SUM(CASE WHEN state = 'succeeded' THEN COALESCE(fee_msat, 0) \
                 ELSE fee_limit_msat END), 0) AS BIGINT) AS fees \
                 FROM reward_payouts WHERE created_at >= $1 AND state <> 'failed'")
                .bind(day_start).fetch_one(&mut *tx).await?.try_get("fees")?;
            if fees.saturating_add(fee_limit) > max_fees {
                tx.rollback().await?;
                return Ok(Err(ClaimRefusal::FeeBudgetSpent));
            }
            let fresh = sqlx::query(
                "INSERT INTO reward_payouts (payment_hash, token_id, k1_hash, amount_msat, fee_limit_msat, \
                 payment_request, state, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'in_flight', $7) \
                 ON CONFLICT (payment_hash) DO NOTHING")
                .bind(hash_b.clone()).bind(token_b.clone()).bind(k1_hash.to_vec()).bind(amount)
                .bind(fee_limit).bind(payout.payment_request.as_str()).bind(now_i)
                .execute(&mut *tx).await?.rows_affected() == 1;
            if !fresh {
                tx.rollback().await?;
                return Ok(Err(ClaimRefusal::AlreadyPaid));
            }
            let reserved = sqlx::query(
                "UPDATE reward_accounts SET reserved_msat = reserved_msat + $2 \
                 WHERE token_id = $1 AND credited_msat - reserved_msat - paid_msat >= $2")
                .bind(token_b.clone()).bind(amount)
                .execute(&mut *tx).await?.rows_affected() == 1;
            if !reserved {
                tx.rollback().await?;
                return Ok(Err(ClaimRefusal::InsufficientBalance));
            }
            sqlx::query(INSERT_AUDIT)
                .bind(token_b).bind("payout_started").bind(hex::encode(&hash_b))
                .bind(amount).bind(None::<String>).bind(now_i)
                .execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(Ok(token))
        })
    }

    /// Ends an in-flight payout: paid for good, or the amount back to the balance. `false`
    /// when it had already ended (the result is then ignored: a payout ends once).
    pub async fn finish_payout(
        &self,
        hash: &PaymentHash,
        result: &PayoutResult,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let now_i = to_i64(now.0, "now")?;
        let (state, fee, reason, kind) = match result {
            PayoutResult::Succeeded { fee_msat } => (
                PayoutState::Succeeded,
                Some(to_i64(*fee_msat, "fee_msat")?),
                None,
                "payout_succeeded",
            ),
            PayoutResult::Failed { reason } => (
                PayoutState::Failed,
                None,
                Some(reason.chars().take(300).collect::<String>()),
                "payout_failed",
            ),
        };
        let account_update = match state {
            PayoutState::Succeeded => {
                "UPDATE reward_accounts SET reserved_msat = reserved_msat - $2, \
                 paid_msat = paid_msat + $2 WHERE token_id = $1"
            }
            _ => {
                "UPDATE reward_accounts SET reserved_msat = reserved_msat - $2 WHERE token_id = $1"
            }
        };
        dispatch!(self, p => {
            let mut tx = p.begin().await?;
            let Some(row) = sqlx::query(
                "UPDATE reward_payouts SET state = $2, resolved_at = $3, fee_msat = $4, failure_reason = $5 \
                 WHERE payment_hash = $1 AND state = 'in_flight' RETURNING token_id, amount_msat")
                .bind(hash.0.to_vec()).bind(state.as_str()).bind(now_i).bind(fee).bind(reason.clone())
                .fetch_optional(&mut *tx).await? else {
                tx.rollback().await?;
                return Ok(false);
            };
            let token_b: Vec<u8> = row.try_get("token_id")?;
            let amount: i64 = row.try_get("amount_msat")?;
            sqlx::query(account_update).bind(token_b.clone()).bind(amount).execute(&mut *tx).await?;
            sqlx::query(INSERT_AUDIT)
                .bind(token_b).bind(kind).bind(hex::encode(hash.0))
                .bind(amount).bind(reason).bind(now_i)
                .execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    pub async fn payout(&self, hash: &PaymentHash) -> Result<Option<Payout>, StoreError> {
        dispatch!(self, p => {
            let row = sqlx::query(&format!("SELECT {PAYOUT_COLUMNS} FROM reward_payouts WHERE payment_hash = $1"))
                .bind(hash.0.to_vec()).fetch_optional(p).await?;
            match row {
                Some(row) => Ok(Some(payout_of!(row))),
                None => Ok(None),
            }
        })
    }

    /// Payouts whose outcome is not known yet, oldest first.
    pub async fn payouts_in_flight(&self, limit: u32) -> Result<Vec<Payout>, StoreError> {
        dispatch!(self, p => {
            let rows = sqlx::query(&format!(
                "SELECT {PAYOUT_COLUMNS} FROM reward_payouts WHERE state = 'in_flight' ORDER BY created_at LIMIT $1"))
                .bind(i64::from(limit)).fetch_all(p).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(payout_of!(row));
            }
            Ok(out)
        })
    }

    /// A token's reward audit trail, newest first.
    pub async fn reward_audit(
        &self,
        token: &TokenId,
        limit: u32,
    ) -> Result<Vec<RewardAuditRecord>, StoreError> {
        dispatch!(self, p => {
            let rows = sqlx::query(
                "SELECT token_id, kind, reference, amount_msat, detail, at FROM reward_audit \
                 WHERE token_id = $1 ORDER BY id DESC LIMIT $2")
                .bind(token.0.to_vec()).bind(i64::from(limit.clamp(1, 1000))).fetch_all(p).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(RewardAuditRecord {
                    token_id: TokenId(bytes32(row.try_get("token_id")?, "reward_audit", "token_id")?),
                    kind: row.try_get("kind")?,
                    reference: row.try_get("reference")?,
                    amount_msat: u64_of!(row, "amount_msat")?,
                    detail: row.try_get("detail")?,
                    at: Timestamp(u64_of!(row, "at")?),
                });
            }
            Ok(out)
        })
    }
}
