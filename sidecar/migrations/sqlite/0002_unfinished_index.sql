-- The reconciler pages through unfinished deposits in payment-hash order; this partial index
-- holds only those (finished deposits pile up forever and are never scanned), with the same
-- condition as the query so both SQLite and PostgreSQL use it.
CREATE INDEX deposits_unfinished ON deposits (payment_hash)
    WHERE state IN ('awaiting_payment', 'held') OR pending_action IS NOT NULL;
