-- 0006_limits.sql: per-key limits (a script's `limits`). limit_key1..4
-- hold the job's value of each limit's field of args, as text, computed
-- when it is enqueued (NULL: the job has no value there, that limit does
-- not apply). A claim counts the running jobs of the script by these.
ALTER TABLE jobs ADD COLUMN limit_key1 TEXT;
ALTER TABLE jobs ADD COLUMN limit_key2 TEXT;
ALTER TABLE jobs ADD COLUMN limit_key3 TEXT;
ALTER TABLE jobs ADD COLUMN limit_key4 TEXT;

-- Rate limits (rate = N, per = MS): each start of a job under one, by
-- limit (1..4) and value, kept for `per` ms; a claim counts the starts of
-- a value in the last `per` ms and prunes the older ones.
CREATE TABLE awaitd_limit_starts (
  name TEXT    NOT NULL,
  lim  INTEGER NOT NULL,
  key  TEXT    NOT NULL,
  at   INTEGER NOT NULL
);
CREATE INDEX awaitd_limit_starts_key ON awaitd_limit_starts (name, lim, key, at);

-- Pauses (`awaitctl pause NAME [--key VALUE]`, jobs.pause): no job of the
-- script starts while its name is paused with key '' (the whole script),
-- nor a job one of whose limit values is a paused key. until: when the
-- pause ends by itself (epoch ms), NULL: when resumed.
CREATE TABLE awaitd_pauses (
  name  TEXT    NOT NULL,
  key   TEXT    NOT NULL DEFAULT '',
  until INTEGER,
  PRIMARY KEY (name, key)
);
