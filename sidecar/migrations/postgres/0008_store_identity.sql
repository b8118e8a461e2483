-- The store's identity (docs/filter.md "A replaced store"): a random id drawn by the sidecar
-- the first time it opens this store, written into every token id it mints. A store replaced
-- under a running proxy has another id (an empty one at once; one restored from a backup as soon
-- as a filter reports its revocation log behind what it had synced), so the deposit credentials
-- minted before are refused. One row.
CREATE TABLE store_identity (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    id BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
