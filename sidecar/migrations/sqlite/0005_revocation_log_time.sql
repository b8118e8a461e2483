-- When each revocation entered the log, by the store's own clock (not the sidecar's): the log is
-- compacted by this time, so a sidecar or filter host whose wall clock steps cannot make the
-- store drop a revocation early. Rows from before this migration take their revoked_at.
ALTER TABLE revocations ADD COLUMN logged_at BIGINT;
UPDATE revocations SET logged_at = revoked_at;
CREATE INDEX revocations_logged_at ON revocations (logged_at);
