-- 0007_fanin.sql: jobs that wait for others (enqueue's `after`), and the
-- job's value of its script's fair_by field (fair_key).
--
-- A job enqueued after others is stored in the new state 'blocked' and
-- becomes 'queued' once every job it waits for has succeeded; when one of
-- them ends dead or cancelled it is cancelled, saying which. awaitd_deps
-- holds the edges (job_id waits for after_id); only existing jobs can be
-- named, so there is no cycle.
--
-- SQLite cannot change a CHECK constraint in place: jobs, steps and
-- signals are rebuilt as 0003_waits did, keeping every row.
CREATE TABLE jobs_new (
  id           INTEGER PRIMARY KEY,
  name         TEXT    NOT NULL,
  state        TEXT    NOT NULL CHECK (state = 'queued' OR state = 'running'
                 OR state = 'succeeded' OR state = 'failed' OR state = 'dead'
                 OR state = 'cancelled' OR state = 'waiting' OR state = 'blocked'),
  args         TEXT,
  key          TEXT    UNIQUE,
  priority     INTEGER NOT NULL DEFAULT 0,
  attempt      INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL DEFAULT 1,
  backoff_ms   INTEGER NOT NULL DEFAULT 1000,
  timeout_ms   INTEGER,
  run_at       INTEGER NOT NULL,
  created_at   INTEGER NOT NULL,
  started_at   INTEGER,
  finished_at  INTEGER,
  lease        INTEGER,
  epoch        INTEGER,
  result       TEXT,
  error        TEXT,
  trace        TEXT,
  wait_seq     INTEGER,
  wait_for     TEXT,
  wait_until   INTEGER,
  cancelling   INTEGER NOT NULL DEFAULT 0,
  progress     REAL CHECK (progress IS NULL OR (progress >= 0 AND progress <= 1)),
  progress_msg TEXT,
  limit_key1   TEXT,
  limit_key2   TEXT,
  limit_key3   TEXT,
  limit_key4   TEXT,
  fair_key     TEXT     -- fair_by: the job's value of that field (claims rotate over them)
);
INSERT INTO jobs_new SELECT id, name, state, args, key, priority, attempt, max_attempts,
  backoff_ms, timeout_ms, run_at, created_at, started_at, finished_at, lease, epoch,
  result, error, trace, wait_seq, wait_for, wait_until, cancelling, progress, progress_msg,
  limit_key1, limit_key2, limit_key3, limit_key4, NULL FROM jobs;

CREATE TABLE steps_new (
  job_id INTEGER NOT NULL REFERENCES jobs_new (id) ON DELETE CASCADE,
  seq    INTEGER NOT NULL,
  name   TEXT    NOT NULL,
  kind   TEXT    NOT NULL CHECK (kind = 'tx' OR kind = 'step' OR kind = 'sleep'
                   OR kind = 'signal'),
  result TEXT    NOT NULL,
  at     INTEGER NOT NULL,
  PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
INSERT INTO steps_new SELECT job_id, seq, name, kind, result, at FROM steps;

CREATE TABLE signals_new (
  id      INTEGER PRIMARY KEY,
  job_id  INTEGER NOT NULL REFERENCES jobs_new (id) ON DELETE CASCADE,
  name    TEXT    NOT NULL,
  payload TEXT    NOT NULL,  -- JSON
  at      INTEGER NOT NULL,
  taken   INTEGER
);
INSERT INTO signals_new SELECT id, job_id, name, payload, at, taken FROM signals;

DROP TABLE signals;
DROP TABLE steps;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
ALTER TABLE steps_new RENAME TO steps;
ALTER TABLE signals_new RENAME TO signals;

CREATE UNIQUE INDEX steps_name ON steps (job_id, name) WHERE kind = 'tx' OR kind = 'step';
CREATE INDEX jobs_ready ON jobs (name, priority DESC, run_at, id)
  WHERE state = 'queued' OR state = 'failed' OR state = 'waiting';
CREATE INDEX jobs_state ON jobs (state, id);
CREATE INDEX jobs_fair ON jobs (name, fair_key, priority DESC, run_at, id)
  WHERE (state = 'queued' OR state = 'failed' OR state = 'waiting') AND fair_key IS NOT NULL;
CREATE INDEX jobs_running ON jobs (epoch) WHERE state = 'running';
CREATE INDEX signals_job ON signals (job_id, name, id);

CREATE TABLE awaitd_deps (
  job_id   INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  after_id INTEGER NOT NULL,
  PRIMARY KEY (job_id, after_id)
) WITHOUT ROWID;
CREATE INDEX awaitd_deps_after ON awaitd_deps (after_id);

-- fair_by: where each script's round over its values (fair_key) stands.
CREATE TABLE awaitd_fair (
  name     TEXT PRIMARY KEY,
  last_key TEXT NOT NULL
) WITHOUT ROWID;
