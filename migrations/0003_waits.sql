-- 0003_waits.sql: durable waits (ctx.sleep, ctx.sleep_until,
-- ctx.wait_signal) and signals.
--
-- A job that waits is parked in the new state 'waiting': no concurrency
-- slot, no Lua state. run_at is when it is ready again (its wake time, a
-- signal wait's timeout, or now once a signal it waits for arrives);
-- wait_seq is the step number of the wait it parked at, wait_for the
-- signal's name (NULL for a sleep), wait_until the wake time or the
-- timeout (NULL: none), kept while the job runs again so that a replay
-- reaching that wait finds the same deadline. cancelling = 1: `cancel`
-- was asked while it waited; it wakes and is cancelled at the wait.
--
-- SQLite cannot change a CHECK constraint in place: jobs and steps are
-- rebuilt (steps first into a table that references the new jobs, so
-- dropping the old jobs cascades into nothing).
CREATE TABLE jobs_new (
  id           INTEGER PRIMARY KEY,
  name         TEXT    NOT NULL,
  state        TEXT    NOT NULL CHECK (state = 'queued' OR state = 'running'
                 OR state = 'succeeded' OR state = 'failed' OR state = 'dead'
                 OR state = 'cancelled' OR state = 'waiting'),
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
  cancelling   INTEGER NOT NULL DEFAULT 0
);
INSERT INTO jobs_new (id, name, state, args, key, priority, attempt, max_attempts,
  backoff_ms, timeout_ms, run_at, created_at, started_at, finished_at, lease, epoch,
  result, error, trace)
SELECT id, name, state, args, key, priority, attempt, max_attempts, backoff_ms,
  timeout_ms, run_at, created_at, started_at, finished_at, lease, epoch, result, error,
  trace FROM jobs;

-- kind: 'tx' (db:tx), 'step' (ctx.step), 'sleep', 'signal' (a wait that
-- ended: its result is what the wait returned). Names are unique per job
-- among tx and step (ctx.step_key depends on it); waits are named by what
-- they wait for and checked by their place in the order.
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
INSERT INTO steps_new (job_id, seq, name, kind, result, at)
SELECT job_id, seq, name, kind, result, at FROM steps;

DROP TABLE steps;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
ALTER TABLE steps_new RENAME TO steps;

CREATE UNIQUE INDEX steps_name ON steps (job_id, name) WHERE kind = 'tx' OR kind = 'step';
CREATE INDEX jobs_ready ON jobs (name, priority DESC, run_at, id)
  WHERE state = 'queued' OR state = 'failed' OR state = 'waiting';
CREATE INDEX jobs_state ON jobs (state, id);
CREATE INDEX jobs_running ON jobs (epoch) WHERE state = 'running';

-- signals: durable and buffered. A signal waits (taken NULL) until the job
-- reaches a wait for its name; the first wait takes the oldest. taken is
-- the step number of the wait that took it.
CREATE TABLE signals (
  id      INTEGER PRIMARY KEY,
  job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  name    TEXT    NOT NULL,
  payload TEXT    NOT NULL,  -- JSON
  at      INTEGER NOT NULL,
  taken   INTEGER
);
CREATE INDEX signals_job ON signals (job_id, name, id);
