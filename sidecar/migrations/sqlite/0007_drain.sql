-- The operator's drain (issue #19 item 3): while this row exists no replica mints a challenge and
-- every replica's sweeper refunds what is still live. In the store, not in memory, so a
-- restarted or second sidecar honours it. At most one row.
CREATE TABLE drain (
    id         INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    started_at INTEGER NOT NULL
);
