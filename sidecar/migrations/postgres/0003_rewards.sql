-- Rewards: a ledger per token (credits, payouts, balance), single-use LNURL-withdraw k1s, the
-- payouts with their payment hash (stored before the node is asked to pay, so an unknown outcome
-- is tracked, never paid twice), a per-day total for the site-wide limit, and an append-only
-- audit trail. Amounts are msat; times unix seconds.

-- One row per (token, reward id): the idempotency key. A refused reward keeps its refusal, so
-- a retried response gets the same answer.
CREATE TABLE reward_credits (
    token_id      BYTEA NOT NULL,
    reward_id     TEXT NOT NULL,
    amount_msat   BIGINT NOT NULL,
    credited_msat BIGINT NOT NULL,
    refusal       TEXT,
    at            BIGINT NOT NULL,
    PRIMARY KEY (token_id, reward_id)
);

-- balance = credited - reserved - paid. Every change is one guarded UPDATE, so concurrent
-- claims and credits never overspend or exceed a limit, on either backend.
CREATE TABLE reward_accounts (
    token_id      BYTEA PRIMARY KEY NOT NULL,
    credited_msat BIGINT NOT NULL,
    reserved_msat BIGINT NOT NULL,
    paid_msat     BIGINT NOT NULL,
    CHECK (credited_msat >= reserved_msat + paid_msat)
);

-- Credited per UTC day (unix day number), all tokens together.
CREATE TABLE reward_days (
    day           BIGINT PRIMARY KEY NOT NULL,
    credited_msat BIGINT NOT NULL
);

-- LNURL-withdraw k1s, stored as sha256(k1): the k1 is a bearer claim on the balance.
CREATE TABLE reward_withdrawals (
    k1_hash    BYTEA PRIMARY KEY NOT NULL,
    token_id   BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

-- state: 'in_flight' -> 'succeeded' | 'failed'.
CREATE TABLE reward_payouts (
    payment_hash    BYTEA PRIMARY KEY NOT NULL,
    token_id        BYTEA NOT NULL,
    k1_hash         BYTEA NOT NULL,
    amount_msat     BIGINT NOT NULL,
    fee_limit_msat  BIGINT NOT NULL,
    payment_request TEXT NOT NULL,
    state           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    resolved_at     BIGINT,
    fee_msat        BIGINT,
    failure_reason  TEXT
);
CREATE INDEX reward_payouts_in_flight ON reward_payouts (created_at) WHERE state = 'in_flight';
CREATE INDEX reward_payouts_by_token ON reward_payouts (token_id);

-- kind: credit | credit_refused | payout_started | payout_succeeded | payout_failed.
CREATE TABLE reward_audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_id     BYTEA NOT NULL,
    kind         TEXT NOT NULL,
    -- The reward id (credits) or the payment hash in hex (payouts).
    reference    TEXT NOT NULL,
    amount_msat  BIGINT NOT NULL,
    detail       TEXT,
    at           BIGINT NOT NULL
);
CREATE INDEX reward_audit_by_token ON reward_audit (token_id);
