-- 0006_limits.sql: per-key limits (a script's `limits`). limit_key1..4
-- hold the job's value of each limit's field of args, as text, computed
-- when it is enqueued (NULL: the job has no value there, that limit does
-- not apply). A claim counts the running jobs of the script by these.
ALTER TABLE jobs ADD COLUMN limit_key1 TEXT;
ALTER TABLE jobs ADD COLUMN limit_key2 TEXT;
ALTER TABLE jobs ADD COLUMN limit_key3 TEXT;
ALTER TABLE jobs ADD COLUMN limit_key4 TEXT;
