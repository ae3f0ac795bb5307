-- 0001_core.sql: awaitd's own tables. Every time is unix epoch milliseconds.
--
-- jobs: one row per job. state moves queued -> running -> succeeded |
-- failed (an attempt failed and a retry waits until run_at) | dead
-- (attempts spent) | cancelled. A running row carries the lease of the
-- claim and the epoch of the daemon that claimed it: completion is fenced
-- by the lease, and rows left running by an older epoch are orphans.
CREATE TABLE jobs (
  id           INTEGER PRIMARY KEY,
  name         TEXT    NOT NULL,
  -- (OR chains, not IN lists: SQLite evaluates an IN list through an
  -- ephemeral table on every write that checks it)
  state        TEXT    NOT NULL CHECK (state = 'queued' OR state = 'running'
                 OR state = 'succeeded' OR state = 'failed' OR state = 'dead'
                 OR state = 'cancelled'),
  args         TEXT,                       -- JSON
  key          TEXT    UNIQUE,             -- idempotency key
  priority     INTEGER NOT NULL DEFAULT 0, -- higher runs first
  attempt      INTEGER NOT NULL DEFAULT 0, -- attempts started
  max_attempts INTEGER NOT NULL DEFAULT 1,
  backoff_ms   INTEGER NOT NULL DEFAULT 1000,
  timeout_ms   INTEGER,                    -- overrides the script's timeout
  run_at       INTEGER NOT NULL,           -- not before
  created_at   INTEGER NOT NULL,
  started_at   INTEGER,
  finished_at  INTEGER,
  lease        INTEGER,
  epoch        INTEGER,
  result       TEXT,                       -- JSON
  error        TEXT,                       -- JSON {code, message}
  trace        TEXT                        -- spans for `awaitctl trace`: one JSON
                                           -- array per attempt, a line each
);

-- the claim: ready jobs of one name, best first
CREATE INDEX jobs_ready ON jobs (name, priority DESC, run_at, id)
  WHERE state = 'queued' OR state = 'failed';
-- listings newest first, by state
CREATE INDEX jobs_state ON jobs (state, id);
-- orphans at start-up
CREATE INDEX jobs_running ON jobs (epoch) WHERE state = 'running';
-- (no more: every index is written on each of a job's three transitions;
-- the next-due time is found per name through jobs_ready, pruning walks
-- the oldest ids)

-- the step journal: what a job already did, in order
CREATE TABLE steps (
  job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  seq    INTEGER NOT NULL,  -- 1, 2, ... in the order the job reached them
  name   TEXT    NOT NULL,
  kind   TEXT    NOT NULL CHECK (kind = 'tx' OR kind = 'step'),
  result TEXT    NOT NULL,  -- JSON array of the step's results
  at     INTEGER NOT NULL,
  PRIMARY KEY (job_id, seq),
  UNIQUE (job_id, name)
) WITHOUT ROWID;

-- cron schedules: the next fire of each scheduled script
CREATE TABLE schedules (
  name    TEXT    PRIMARY KEY,
  expr    TEXT    NOT NULL,
  next_at INTEGER NOT NULL
) WITHOUT ROWID;

-- the executor epoch: one row, incremented at every start
CREATE TABLE executor (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  epoch      INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  pid        INTEGER
);
INSERT INTO executor (id, epoch, started_at) VALUES (1, 0, 0);
