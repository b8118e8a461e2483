-- Deposits, their pending node actions and leases, revocations, audit records, master keys.
-- Times are unix seconds; hashes, token ids, preimages and keys are raw bytes.

CREATE TABLE deposits (
    payment_hash         BYTEA PRIMARY KEY NOT NULL,
    token_id             BYTEA NOT NULL UNIQUE,
    -- Written before the invoice exists: a forfeit must always be collectable.
    preimage             BYTEA NOT NULL,
    -- NULL until the node created the invoice.
    payment_request      TEXT,
    route_id             TEXT NOT NULL,
    client_prefix        TEXT NOT NULL,
    amount_msat          BIGINT NOT NULL,
    state                TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    invoice_expires_at   BIGINT NOT NULL,
    idle_timeout_s       BIGINT NOT NULL,
    session_cap_s        BIGINT NOT NULL,
    safety_margin_blocks BIGINT NOT NULL,
    block_interval_s     BIGINT NOT NULL,
    held_at              BIGINT,
    last_activity_at     BIGINT,
    htlc_expiry_height   BIGINT,
    hold_expiry_delta    BIGINT,
    deadline_at          BIGINT,
    resolved_at          BIGINT,
    resolution_trigger   TEXT,
    -- Decided and persisted, not yet confirmed by the node: 'cancel' | 'settle'.
    pending_action       TEXT,
    action_attempts      BIGINT NOT NULL DEFAULT 0,
    -- When the deposit next needs a timer tick (NULL: never).
    next_due_at          BIGINT,
    -- Optimistic concurrency: every transition is written WHERE version = the one read.
    version              BIGINT NOT NULL,
    -- Which replica may act on the node for this deposit, until when.
    lease_owner          TEXT,
    lease_until          BIGINT
);
CREATE INDEX deposits_by_state ON deposits (state, client_prefix);
CREATE INDEX deposits_pending ON deposits (pending_action) WHERE pending_action IS NOT NULL;
CREATE INDEX deposits_due ON deposits (next_due_at) WHERE next_due_at IS NOT NULL;
CREATE INDEX deposits_created ON deposits (created_at);

CREATE TABLE revocations (
    -- Identity values are never reused, and writers lock the table so they commit in seq order:
    -- a filter that synced "since N" never misses a revocation committed later with a lower seq.
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_id   BYTEA NOT NULL UNIQUE,
    reason     TEXT NOT NULL,
    revoked_at BIGINT NOT NULL
);

CREATE TABLE audit_records (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payment_hash  BYTEA NOT NULL,
    route_id      TEXT NOT NULL,
    client_prefix TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    trigger       TEXT NOT NULL,
    amount_msat   BIGINT NOT NULL,
    at            BIGINT NOT NULL
);
CREATE INDEX audit_by_hash ON audit_records (payment_hash);

CREATE TABLE master_keys (
    -- The key id named by tokens' lw_key caveat.
    id         TEXT PRIMARY KEY NOT NULL,
    key        BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
