-- Per-token request and upstream-error counts reported by every filter instance (issue #14
-- item 6): one row per (token, kind, window, reporting proxy instance) holding that instance's
-- count so far; the sum over instances is the token's global count in the window. Rows go once
-- their window has ended plus a grace (expires_at), so the table holds recent windows of held
-- deposits only.
CREATE TABLE usage_counts (
    token_id BLOB NOT NULL,
    kind TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    reporter TEXT NOT NULL,
    count BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (token_id, kind, window_start, reporter)
);
CREATE INDEX usage_counts_expiry ON usage_counts (expires_at);
