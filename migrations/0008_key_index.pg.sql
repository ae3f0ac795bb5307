-- 0008_key_index.pg.sql (PostgreSQL only): idempotency keys unique through a
-- partial index, so the many jobs without a key cost no entry in it: each
-- state change of a job rewrites its index entries (an UPDATE that changes
-- the state cannot be HOT), and a NULL key had one of its own.
ALTER TABLE jobs DROP CONSTRAINT jobs_key_key;
CREATE UNIQUE INDEX jobs_key ON jobs (key) WHERE key IS NOT NULL;
