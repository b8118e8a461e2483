-- Deposits, their pending node actions and leases, revocations, audit records, master keys.
-- Times are unix seconds; hashes, token ids, preimages and keys are raw bytes.

CREATE TABLE deposits (
    payment_hash         BLOB PRIMARY KEY NOT NULL,
    token_id             BLOB NOT NULL UNIQUE,
    -- Written before the invoice exists: a forfeit must always be collectable.
    preimage             BLOB NOT NULL,
    -- NULL until the node created the invoice.
    payment_request      TEXT,
    route_id             TEXT NOT NULL,
    client_prefix        TEXT NOT NULL,
    amount_msat          INTEGER NOT NULL,
    state                TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    invoice_expires_at   INTEGER NOT NULL,
    idle_timeout_s       INTEGER NOT NULL,
    session_cap_s        INTEGER NOT NULL,
    safety_margin_blocks INTEGER NOT NULL,
    block_interval_s     INTEGER NOT NULL,
    held_at              INTEGER,
    last_activity_at     INTEGER,
    htlc_expiry_height   INTEGER,
    hold_expiry_delta    INTEGER,
    deadline_at          INTEGER,
    resolved_at          INTEGER,
    resolution_trigger   TEXT,
    -- Decided and persisted, not yet confirmed by the node: 'cancel' | 'settle'.
    pending_action       TEXT,
    action_attempts      INTEGER NOT NULL DEFAULT 0,
    -- When the deposit next needs a timer tick (NULL: never).
    next_due_at          INTEGER,
    -- Optimistic concurrency: every transition is written WHERE version = the one read.
    version              INTEGER NOT NULL,
    -- Which replica may act on the node for this deposit, until when.
    lease_owner          TEXT,
    lease_until          INTEGER
);
CREATE INDEX deposits_by_state ON deposits (state, client_prefix);
CREATE INDEX deposits_pending ON deposits (pending_action) WHERE pending_action IS NOT NULL;
CREATE INDEX deposits_due ON deposits (next_due_at) WHERE next_due_at IS NOT NULL;
CREATE INDEX deposits_created ON deposits (created_at);

CREATE TABLE revocations (
    -- AUTOINCREMENT: sequence numbers are never reused, so the filter's "since" stays valid.
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id   BLOB NOT NULL UNIQUE,
    reason     TEXT NOT NULL,
    revoked_at INTEGER NOT NULL
);

CREATE TABLE audit_records (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_hash  BLOB NOT NULL,
    route_id      TEXT NOT NULL,
    client_prefix TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    trigger       TEXT NOT NULL,
    amount_msat   INTEGER NOT NULL,
    at            INTEGER NOT NULL
);
CREATE INDEX audit_by_hash ON audit_records (payment_hash);

CREATE TABLE master_keys (
    -- The key id named by tokens' lw_key caveat.
    id         TEXT PRIMARY KEY NOT NULL,
    key        BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
