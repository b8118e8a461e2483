-- The dev node's own state (a development stand-in for lnd's channel.db): invoices and the
-- simulated chain. Hashes are never deleted, so a payment hash can never be reused.
CREATE TABLE dev_invoices (
    payment_hash       BLOB PRIMARY KEY NOT NULL,
    preimage           BLOB,
    is_hold            INTEGER NOT NULL,
    state              TEXT NOT NULL,
    amount_msat        INTEGER NOT NULL,
    amount_paid_msat   INTEGER NOT NULL,
    memo               TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    expiry_secs        INTEGER NOT NULL,
    cltv_expiry        INTEGER NOT NULL,
    payment_request    TEXT NOT NULL,
    htlc_expiry_height INTEGER,
    accept_height      INTEGER
);

-- The sweeper only looks at invoices that time can still change.
CREATE INDEX dev_invoices_live ON dev_invoices (state) WHERE state IN ('OPEN', 'ACCEPTED');

CREATE TABLE dev_chain (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    genesis_unix INTEGER NOT NULL,
    start_height INTEGER NOT NULL,
    extra_blocks INTEGER NOT NULL
);

-- Outgoing payments the dev node simulated (rewards): an invoice is paid at most once.
CREATE TABLE dev_payments (
    payment_hash BLOB PRIMARY KEY NOT NULL,
    payment_request TEXT NOT NULL,
    amount_msat INTEGER NOT NULL,
    paid_at INTEGER NOT NULL
);
