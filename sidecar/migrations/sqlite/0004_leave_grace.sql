-- A held deposit whose visitor left: the token is revoked at once, the refund waits out the
-- leave grace (deposits.leave_grace) so that a forfeit decided just before still wins.
-- Both NULL unless the visitor is leaving; unix seconds.
ALTER TABLE deposits ADD COLUMN left_at INTEGER;
ALTER TABLE deposits ADD COLUMN refund_at INTEGER;
