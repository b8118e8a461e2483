-- The sweeper asks only for invoices that are due (expired OPEN ones, held ones at the
-- auto-cancel height), so its cost follows what changes, not how many invoices exist.
DROP INDEX IF EXISTS dev_invoices_live;
CREATE INDEX dev_invoices_open_expiry ON dev_invoices (created_at + expiry_secs) WHERE state = 'OPEN';
CREATE INDEX dev_invoices_held_expiry ON dev_invoices (htlc_expiry_height) WHERE state = 'ACCEPTED';
