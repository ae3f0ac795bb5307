-- pg_funcs.sql: the PostgreSQL store's functions, embedded in the binary and
-- installed (CREATE OR REPLACE) by every daemon at start-up under the
-- migration lock: they change with the driver (pg-ops.c), not with the
-- schema. Each job operation that takes more than one statement is one call,
-- so a batch never waits for a round trip between two of its statements.
-- 24951 is the advisory lock space of pg-int.h (PG_LOCK_SPACE_SQL).

-- A new node: its row, and its session lock, held while its connection lives.
-- Channels: awaitd_jobs (payload: a script's name, or '' for any) when jobs
-- become ready, awaitd_done (payload: ids of jobs, joined by commas) when jobs become final.
CREATE OR REPLACE FUNCTION awaitd_register(p_host text, p_pid bigint, p_now bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_id bigint;
BEGIN
  INSERT INTO awaitd_nodes (host, pid, started, seen_at)
    VALUES (p_host, p_pid, p_now, p_now) RETURNING id INTO v_id;
  PERFORM pg_advisory_lock(24951, v_id::int);
  -- what other daemons announce: work made ready, jobs made final
  EXECUTE 'LISTEN awaitd_jobs';
  EXECUTE 'LISTEN awaitd_done';
  RETURN v_id;
END $$;

-- A daemon back after losing its connection: a new node, and the jobs it still
-- runs (their leases) move to it, so reaping its old node leaves them alone
-- (reaped first by another daemon, they are queued again: their finish is then
-- fenced out, and they run once more, their journaled steps not repeated).
CREATE OR REPLACE FUNCTION awaitd_rejoin(p_host text, p_pid bigint, p_now bigint,
  p_old bigint, p_live bigint[])
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_id bigint;
BEGIN
  v_id := awaitd_register(p_host, p_pid, p_now);
  UPDATE jobs SET epoch = v_id
    WHERE state = 'running' AND epoch = p_old AND lease = ANY(p_live);
  RETURN v_id;
END $$;

-- The heartbeat: this node was seen; every other node whose lock can be taken
-- has lost its connection (its daemon died, or it lost PostgreSQL and will
-- come back as a new node): its running jobs are queued again, now, and its
-- row goes. Returns the jobs requeued.
CREATE OR REPLACE FUNCTION awaitd_beat(p_node bigint, p_now bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_node record;
  v_n bigint := 0;
  v_c bigint;
BEGIN
  UPDATE awaitd_nodes SET seen_at = p_now WHERE id = p_node;
  FOR v_node IN SELECT id FROM awaitd_nodes WHERE id <> p_node ORDER BY id LOOP
    IF pg_try_advisory_xact_lock(24951, v_node.id::int) THEN
      UPDATE jobs SET state = 'queued', run_at = p_now, lease = NULL
        WHERE state = 'running' AND epoch = v_node.id;
      GET DIAGNOSTICS v_c = ROW_COUNT;
      v_n := v_n + v_c;
      DELETE FROM awaitd_nodes WHERE id = v_node.id;
    END IF;
  END LOOP;
  IF v_n > 0 THEN
    PERFORM pg_notify('awaitd_jobs', '');
  END IF;
  RETURN v_n;
END $$;

-- {"code":"dependency_failed","message":"job P it waits for ended STATE"}
CREATE OR REPLACE FUNCTION awaitd_dep_error(p_parent bigint, p_state text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT json_build_object('code', 'dependency_failed',
    'message', format('job %s it waits for ended %s', p_parent, p_state))::text
$$;

-- Job p_parent ended p_state: its blocked dependents are queued when all their
-- jobs succeeded, or cancelled (and theirs in turn) when it did not. Rows:
-- ('queued', id) and ('cancelled', id) for each job changed.
CREATE OR REPLACE FUNCTION awaitd_deps_resolve(p_parent bigint, p_state text, p_now bigint)
RETURNS TABLE (kind text, id bigint) LANGUAGE plpgsql AS $$
DECLARE
  v_stack bigint[] := ARRAY[p_parent];
  v_state text := p_state;
  v_p bigint;
  v_id bigint;
BEGIN
  IF p_state = 'succeeded' THEN
    -- lock the dependents first: two parents finishing at once (two daemons) then
    -- take turns, and the second's UPDATE (a new snapshot) sees the first's commit
    PERFORM 1 FROM jobs j WHERE j.state = 'blocked' AND j.id IN
      (SELECT d.job_id FROM awaitd_deps d WHERE d.after_id = p_parent) ORDER BY j.id FOR UPDATE;
    FOR v_id IN
      UPDATE jobs j SET state = 'queued' WHERE j.state = 'blocked' AND j.id IN
        (SELECT d.job_id FROM awaitd_deps d WHERE d.after_id = p_parent)
        AND NOT EXISTS (SELECT 1 FROM awaitd_deps d JOIN jobs a ON a.id = d.after_id
                        WHERE d.job_id = j.id AND a.state <> 'succeeded')
        RETURNING j.id
    LOOP
      kind := 'queued'; id := v_id; RETURN NEXT;
      PERFORM pg_notify('awaitd_jobs', '');
    END LOOP;
    RETURN;
  END IF;
  IF p_state NOT IN ('dead', 'cancelled') THEN
    RETURN;
  END IF;
  WHILE array_length(v_stack, 1) > 0 LOOP
    v_p := v_stack[array_length(v_stack, 1)];
    v_stack := v_stack[1:array_length(v_stack, 1) - 1];
    FOR v_id IN
      UPDATE jobs j SET state = 'cancelled', finished_at = p_now,
        error = awaitd_dep_error(v_p, v_state)
        WHERE j.state = 'blocked' AND j.id IN
          (SELECT d.job_id FROM awaitd_deps d WHERE d.after_id = v_p)
        RETURNING j.id
    LOOP
      kind := 'cancelled'; id := v_id; RETURN NEXT;
      PERFORM pg_notify('awaitd_done', v_id::text);
      v_stack := v_stack || v_id;
    END LOOP;
    v_state := 'cancelled';
  END LOOP;
END $$;

-- ENQUEUE: one row (created, id, code, message); code NULL on success. With
-- p_after the job waits (blocked) until those succeeded, is queued at once
-- when they have, cancelled at once when one is dead or cancelled.
CREATE OR REPLACE FUNCTION awaitd_enqueue(p_name text, p_args text, p_key text,
  p_priority bigint, p_max_attempts bigint, p_backoff_ms bigint, p_timeout_ms bigint,
  p_run_at bigint, p_now bigint, p_lk1 text, p_lk2 text, p_lk3 text, p_lk4 text,
  p_fair_key text, p_after bigint[])
RETURNS TABLE (created int, id bigint, code text, message text) LANGUAGE plpgsql AS $$
DECLARE
  v_state text := 'queued';
  v_error text;
  v_a bigint;
  v_s text;
  v_id bigint;
BEGIN
  IF p_after IS NOT NULL THEN
    FOREACH v_a IN ARRAY p_after LOOP
      -- FOR SHARE: a finish of that job waits for this commit, then sees the edge
      SELECT j.state INTO v_s FROM jobs j WHERE j.id = v_a FOR SHARE;
      IF NOT FOUND THEN
        created := 0; id := NULL; code := 'invalid';
        message := format('after: no job %s to wait for', v_a);
        RETURN NEXT; RETURN;
      END IF;
      IF v_error IS NULL AND v_s IN ('dead', 'cancelled') THEN
        v_error := awaitd_dep_error(v_a, v_s);
      END IF;
      IF v_s <> 'succeeded' AND v_state = 'queued' THEN
        v_state := 'blocked';
      END IF;
    END LOOP;
    IF v_error IS NOT NULL THEN
      v_state := 'cancelled';
    END IF;
  END IF;
  INSERT INTO jobs (name, args, key, priority, max_attempts, backoff_ms, timeout_ms, run_at,
    created_at, limit_key1, limit_key2, limit_key3, limit_key4, state, fair_key, error,
    finished_at)
  VALUES (p_name, p_args, p_key, p_priority, greatest(p_max_attempts, 1), p_backoff_ms,
    p_timeout_ms, coalesce(p_run_at, p_now), p_now, p_lk1, p_lk2, p_lk3, p_lk4, v_state,
    p_fair_key, v_error, CASE WHEN v_error IS NULL THEN NULL ELSE p_now END)
  ON CONFLICT (key) WHERE key IS NOT NULL DO NOTHING
  RETURNING jobs.id INTO v_id;
  IF v_id IS NULL THEN
    created := 0; id := (SELECT j.id FROM jobs j WHERE j.key = p_key);
    RETURN NEXT; RETURN;
  END IF;
  IF v_state <> 'queued' THEN  -- cancelled at once keeps its edges too (see store-jobs.c)
    INSERT INTO awaitd_deps (job_id, after_id) SELECT v_id, unnest(p_after)
      ON CONFLICT DO NOTHING;
  ELSIF v_state = 'queued' AND coalesce(p_run_at, p_now) <= p_now THEN
    PERFORM pg_notify('awaitd_jobs', p_name);
  END IF;
  created := 1; id := v_id;
  RETURN NEXT;
END $$;

-- FINISH (not "waiting"): fenced by lease. Rows: ('changed', 1) when it
-- changed the job, then what its dependents became (awaitd_deps_resolve).
CREATE OR REPLACE FUNCTION awaitd_finish(p_id bigint, p_lease bigint, p_state text,
  p_text text, p_finished bigint, p_run_at bigint, p_trace text, p_now bigint)
RETURNS TABLE (kind text, id bigint) LANGUAGE plpgsql AS $$
DECLARE
  v_ok boolean := p_state = 'succeeded';
  v_name text;
  v_limited boolean;
BEGIN
  UPDATE jobs j SET state = p_state,
    result = CASE WHEN v_ok THEN p_text END, error = CASE WHEN v_ok THEN NULL ELSE p_text END,
    finished_at = p_finished, run_at = coalesce(p_run_at, j.run_at), lease = NULL,
    trace = CASE WHEN p_trace IS NULL THEN j.trace WHEN j.trace IS NULL THEN p_trace
                 ELSE j.trace || chr(10) || p_trace END
    WHERE j.id = p_id AND j.state = 'running' AND j.lease = p_lease
    RETURNING j.name, num_nonnulls(j.limit_key1, j.limit_key2, j.limit_key3, j.limit_key4) > 0
    INTO v_name, v_limited;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  IF v_limited THEN -- its values have room again: a daemon holding jobs back may claim
    PERFORM pg_notify('awaitd_jobs', v_name);
  END IF;
  kind := 'changed'; id := p_id; RETURN NEXT;
  IF p_state <> 'failed' THEN
    PERFORM pg_notify('awaitd_done', p_id::text);
    -- (one index probe: most jobs have nothing waiting for them)
    IF EXISTS (SELECT 1 FROM awaitd_deps d WHERE d.after_id = p_id) THEN
      RETURN QUERY SELECT * FROM awaitd_deps_resolve(p_id, p_state, p_now);
    END IF;
  END IF;
END $$;

-- CANCEL: queued, failed or blocked -> cancelled ('changed', 1) and its
-- dependents; waiting -> marked cancelling and made ready ('changed', 2).
CREATE OR REPLACE FUNCTION awaitd_cancel(p_id bigint, p_now bigint)
RETURNS TABLE (kind text, id bigint) LANGUAGE plpgsql AS $$
BEGIN
  UPDATE jobs j SET state = 'cancelled', finished_at = p_now, lease = NULL,
    error = '{"code":"cancelled","message":"cancelled by request"}'
    WHERE j.id = p_id AND j.state IN ('queued', 'failed', 'blocked');
  IF FOUND THEN
    kind := 'changed'; id := 1; RETURN NEXT;
    PERFORM pg_notify('awaitd_done', p_id::text);
    RETURN QUERY SELECT * FROM awaitd_deps_resolve(p_id, 'cancelled', p_now);
    RETURN;
  END IF;
  UPDATE jobs j SET cancelling = 1, run_at = p_now WHERE j.id = p_id AND j.state = 'waiting';
  IF FOUND THEN
    kind := 'changed'; id := 2; RETURN NEXT;
    PERFORM pg_notify('awaitd_jobs', (SELECT name FROM jobs WHERE jobs.id = p_id));
  END IF;
END $$;

-- RETRY: failed, dead or cancelled -> queued, or blocked again while a job it
-- waits for has not succeeded. One row (changed, code, message).
CREATE OR REPLACE FUNCTION awaitd_retry(p_id bigint, p_now bigint)
RETURNS TABLE (changed int, code text, message text) LANGUAGE plpgsql AS $$
DECLARE
  v_a record;
  v_name text;
BEGIN
  SELECT a.id, a.state INTO v_a FROM awaitd_deps d JOIN jobs a ON a.id = d.after_id
    WHERE d.job_id = p_id AND a.state IN ('dead', 'cancelled') LIMIT 1;
  IF FOUND THEN
    changed := 0; code := 'invalid';
    message := format('job %s waits for job %s, which is %s: retry that one first',
                      p_id, v_a.id, v_a.state);
    RETURN NEXT; RETURN;
  END IF;
  UPDATE jobs j SET state = CASE WHEN EXISTS (SELECT 1 FROM awaitd_deps d
      JOIN jobs a ON a.id = d.after_id WHERE d.job_id = p_id AND a.state <> 'succeeded')
      THEN 'blocked' ELSE 'queued' END,
    run_at = p_now, finished_at = NULL, max_attempts = greatest(j.max_attempts, j.attempt + 1),
    cancelling = 0
    WHERE j.id = p_id AND j.state IN ('failed', 'dead', 'cancelled')
    RETURNING j.name INTO v_name;
  changed := CASE WHEN v_name IS NULL THEN 0 ELSE 1 END;
  IF v_name IS NOT NULL THEN
    PERFORM pg_notify('awaitd_jobs', v_name);
  END IF;
  RETURN NEXT;
END $$;

-- FIRE: a cron fire happens once across all daemons: the schedule row moves
-- from this fire to the next one, and only the daemon that moved it enqueues.
CREATE OR REPLACE FUNCTION awaitd_fire(p_name text, p_at bigint, p_next bigint,
  p_max_attempts bigint, p_backoff_ms bigint, p_now bigint)
RETURNS TABLE (created int, id bigint, code text, message text) LANGUAGE plpgsql AS $$
BEGIN
  UPDATE schedules SET next_at = p_next WHERE name = p_name AND next_at = p_at;
  IF NOT FOUND THEN
    created := 0; id := 0; RETURN NEXT; RETURN;
  END IF;
  RETURN QUERY SELECT * FROM awaitd_enqueue(p_name, NULL, format('schedule:%s:%s', p_name, p_at),
    0, p_max_attempts, p_backoff_ms, NULL, p_now, p_now, NULL, NULL, NULL, NULL, NULL, NULL);
END $$;

-- Durable waits (store-waits.c is SQLite's version, with the same rules).
-- FINISH to "waiting": the running job parks at its wait; ready at once when a
-- signal it waits for came while it ran, or a cancel reached it. Returns the
-- rows changed (0: its lease is over).
CREATE OR REPLACE FUNCTION awaitd_park(p_id bigint, p_lease bigint, p_seq bigint, p_key text,
  p_until bigint, p_now bigint, p_trace text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_ready boolean;
  v_name text;
BEGIN
  -- the row first: a signal committing meanwhile is then seen by the UPDATE's snapshot
  PERFORM 1 FROM jobs j WHERE j.id = p_id AND j.state = 'running' AND j.lease = p_lease
    FOR UPDATE;
  UPDATE jobs j SET state = 'waiting', wait_seq = p_seq, wait_for = p_key, wait_until = p_until,
    run_at = CASE WHEN j.cancelling <> 0 OR EXISTS (SELECT 1 FROM signals s
      WHERE s.job_id = p_id AND s.name = p_key AND s.taken IS NULL) THEN p_now
      ELSE coalesce(p_until, 9223372036854775807) END,
    lease = NULL,
    trace = CASE WHEN p_trace IS NULL THEN j.trace WHEN j.trace IS NULL THEN p_trace
                 ELSE j.trace || chr(10) || p_trace END
    WHERE j.id = p_id AND j.state = 'running' AND j.lease = p_lease
    RETURNING j.run_at <= p_now, j.name INTO v_ready, v_name;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  IF v_ready THEN
    PERFORM pg_notify('awaitd_jobs', v_name);
  END IF;
  RETURN 1;
END $$;

-- A wait ends: what it returns, journaled as step p_seq of kind p_kind.
CREATE OR REPLACE FUNCTION awaitd_wait_end(p_job bigint, p_seq bigint, p_name text,
  p_kind text, p_key text, p_payload text, p_now bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  v_out text;
BEGIN
  IF p_payload IS NOT NULL THEN
    v_out := json_build_object('n', 1, 'v', json_build_array(p_payload::json))::text;
  ELSIF p_key IS NOT NULL THEN
    v_out := json_build_object('n', 2, 'v', json_build_array(NULL, json_build_object(
      'code', 'timeout',
      'message', format('no signal "%s" came before the wait''s timeout', p_key))))::text;
  ELSE
    v_out := '{"n":0,"v":[]}';
  END IF;
  INSERT INTO steps (job_id, seq, name, kind, result, at)
    VALUES (p_job, p_seq, p_name, p_kind, v_out, p_now);
  RETURN v_out;
END $$;

-- STORE_WAIT: one row (journaled, out_text, out_id, changed, code, message).
CREATE OR REPLACE FUNCTION awaitd_wait(p_job bigint, p_lease bigint, p_seq bigint,
  p_name text, p_key text, p_deadline bigint, p_now bigint)
RETURNS TABLE (journaled int, out_text text, out_id bigint, changed int, code text,
  message text) LANGUAGE plpgsql AS $$
DECLARE
  v_kind text := CASE WHEN p_key IS NULL THEN 'sleep' ELSE 'signal' END;
  v_step record;
  v_job record;
  v_deadline bigint := p_deadline;
  v_payload text;
BEGIN
  journaled := 0; out_text := NULL; out_id := 0; changed := 0; code := NULL; message := NULL;
  SELECT s.name, s.kind, s.result INTO v_step FROM steps s
    WHERE s.job_id = p_job AND s.seq = p_seq;
  IF FOUND THEN
    IF v_step.name <> p_name OR v_step.kind <> v_kind THEN
      code := 'nondeterministic';
      message := format('step %s (%s "%s"): the journal of job %s has %s "%s" there;'
        ' this run reached its steps in a different order', p_seq, v_kind, p_name, p_job,
        v_step.kind, v_step.name);
    ELSE
      journaled := 1; out_text := v_step.result;
    END IF;
    RETURN NEXT; RETURN;
  END IF;
  SELECT j.state, j.lease, j.cancelling, j.wait_seq, j.wait_for, j.wait_until INTO v_job
    FROM jobs j WHERE j.id = p_job;
  IF NOT FOUND THEN
    code := 'no_such_job'; message := format('no job %s', p_job);
    RETURN NEXT; RETURN;
  END IF;
  IF v_job.state <> 'running' OR v_job.lease IS DISTINCT FROM p_lease THEN
    code := 'invalid';
    message := format('job %s: the run that reached this wait is over (the job is %s)',
      p_job, v_job.state);
    RETURN NEXT; RETURN;
  END IF;
  IF v_job.cancelling <> 0 THEN
    changed := 1;
    RETURN NEXT; RETURN;
  END IF;
  IF v_job.wait_seq = p_seq THEN
    IF (v_job.wait_for IS NULL) <> (p_key IS NULL) OR v_job.wait_for <> p_key THEN
      code := 'nondeterministic';
      message := format('step %s: job %s waited there for %s; this run waits for %s', p_seq,
        p_job, CASE WHEN v_job.wait_for IS NULL THEN 'a sleep'
                    ELSE format('signal "%s"', v_job.wait_for) END,
        CASE WHEN p_key IS NULL THEN 'a sleep' ELSE format('signal "%s"', p_key) END);
      RETURN NEXT; RETURN;
    END IF;
    v_deadline := v_job.wait_until;
  END IF;
  IF p_key IS NOT NULL THEN
    UPDATE signals SET taken = p_seq WHERE id = (SELECT s.id FROM signals s
      WHERE s.job_id = p_job AND s.name = p_key AND s.taken IS NULL ORDER BY s.id LIMIT 1)
      RETURNING payload INTO v_payload;
    IF v_payload IS NOT NULL THEN
      journaled := 1;
      out_text := awaitd_wait_end(p_job, p_seq, p_name, v_kind, p_key, v_payload, p_now);
      RETURN NEXT; RETURN;
    END IF;
  END IF;
  IF v_deadline IS NOT NULL AND v_deadline <> 0 AND p_now >= v_deadline THEN
    journaled := 1;
    out_text := awaitd_wait_end(p_job, p_seq, p_name, v_kind, p_key, NULL, p_now);
    RETURN NEXT; RETURN;
  END IF;
  out_id := coalesce(v_deadline, 0);
  RETURN NEXT;
END $$;

-- STORE_SIGNAL: one row (changed, code, message); the job row is read after it.
CREATE OR REPLACE FUNCTION awaitd_signal(p_id bigint, p_name text, p_payload text,
  p_now bigint, p_max bigint)
RETURNS TABLE (changed int, code text, message text) LANGUAGE plpgsql AS $$
DECLARE
  v_state text;
  v_n bigint;
  v_job text;
BEGIN
  changed := 0; code := NULL; message := NULL;
  SELECT j.state, j.name INTO v_state, v_job FROM jobs j WHERE j.id = p_id FOR UPDATE;
  IF NOT FOUND OR v_state IN ('succeeded', 'dead', 'cancelled') THEN
    RETURN NEXT; RETURN;
  END IF;
  SELECT count(*) INTO v_n FROM (SELECT 1 FROM signals s WHERE s.job_id = p_id
    AND s.taken IS NULL LIMIT p_max) x;
  IF v_n >= p_max THEN
    code := 'too_large';
    message := format('job %s holds %s signals it has not taken yet; no more are stored'
      ' until it takes some', p_id, p_max);
    RETURN NEXT; RETURN;
  END IF;
  INSERT INTO signals (job_id, name, payload, at)
    VALUES (p_id, p_name, coalesce(p_payload, 'null'), p_now);
  UPDATE jobs j SET run_at = p_now WHERE j.id = p_id AND j.state = 'waiting'
    AND j.wait_for = p_name;
  IF FOUND THEN
    PERFORM pg_notify('awaitd_jobs', v_job);
  END IF;
  changed := 1;
  RETURN NEXT;
END $$;

-- The finishes of a batch (not parking) as one UPDATE: rows (n, kind, id), n the
-- place in the arrays, as awaitd_finish gives them for each. Set-based: a loop
-- over the rows in PL/pgSQL cost more than the UPDATE itself. The jobs made
-- final are announced in one notification per 300 (ids joined by commas:
-- at most 6,000 bytes, under NOTIFY's 8,000).
CREATE OR REPLACE FUNCTION awaitd_finish_many(p_ids bigint[], p_leases bigint[],
  p_states text[], p_texts text[], p_finished bigint[], p_run_at bigint[], p_traces text[],
  p_now bigint)
RETURNS TABLE (n bigint, kind text, id bigint) LANGUAGE plpgsql AS $$
DECLARE
  v_n bigint[];
  v_id bigint[];
  v_final bigint[];
  v_limited text[];
  v record;
BEGIN
  WITH u AS (
    UPDATE jobs j SET state = f.state,
      result = CASE WHEN f.state = 'succeeded' THEN f.text END,
      error = CASE WHEN f.state = 'succeeded' THEN NULL ELSE f.text END,
      finished_at = f.finished, run_at = coalesce(f.run_at, j.run_at), lease = NULL,
      trace = CASE WHEN f.trace IS NULL THEN j.trace WHEN j.trace IS NULL THEN f.trace
                   ELSE j.trace || chr(10) || f.trace END
    FROM unnest(p_ids, p_leases, p_states, p_texts, p_finished, p_run_at, p_traces)
      WITH ORDINALITY AS f(id, lease, state, text, finished, run_at, trace, n)
    WHERE j.id = f.id AND j.state = 'running' AND j.lease = f.lease
    RETURNING f.n AS n, j.id AS id, f.state AS state, j.name AS name,
      num_nonnulls(j.limit_key1, j.limit_key2, j.limit_key3, j.limit_key4) > 0 AS limited)
  SELECT array_agg(u.n ORDER BY u.n), array_agg(u.id ORDER BY u.n),
    array_agg(u.id) FILTER (WHERE u.state <> 'failed'),
    array_agg(DISTINCT u.name) FILTER (WHERE u.limited)
    INTO v_n, v_id, v_final, v_limited FROM u;
  IF v_id IS NULL THEN
    RETURN;
  END IF;
  RETURN QUERY SELECT x.n, 'changed'::text, x.id FROM unnest(v_n, v_id) AS x(n, id);
  -- (as in awaitd_finish: limited jobs' values have room again)
  PERFORM pg_notify('awaitd_jobs', x) FROM unnest(v_limited) x;
  IF v_final IS NULL THEN
    RETURN;
  END IF;
  PERFORM pg_notify('awaitd_done', string_agg(x.id::text, ',')) FROM
    (SELECT y.id, (y.k - 1) / 300 AS g FROM unnest(v_final) WITH ORDINALITY y(id, k)) x
    GROUP BY x.g;
  -- dependents: one index probe for the batch (most jobs have nothing waiting)
  FOR v IN SELECT x.n, x.id, j.state FROM unnest(v_n, v_id) AS x(n, id)
      JOIN jobs j ON j.id = x.id
      WHERE j.state <> 'failed' AND EXISTS (SELECT 1 FROM awaitd_deps d WHERE d.after_id = x.id)
      ORDER BY x.n LOOP
    RETURN QUERY SELECT v.n, r.kind, r.id FROM awaitd_deps_resolve(v.id, v.state, p_now) r;
  END LOOP;
END $$;

-- The enqueues of a batch with neither a key nor `after`, as one INSERT: rows
-- (n, id), n the place in the arrays. The ids are drawn first (the CTE f is
-- evaluated once), so each row knows its own.
CREATE OR REPLACE FUNCTION awaitd_enqueue_many(p_names text[], p_args text[],
  p_priorities bigint[], p_max_attempts bigint[], p_backoffs bigint[], p_timeouts bigint[],
  p_run_ats bigint[], p_nows bigint[], p_lk1 text[], p_lk2 text[], p_lk3 text[],
  p_lk4 text[], p_fair text[], p_now bigint)
RETURNS TABLE (n bigint, id bigint) LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('awaitd_jobs', x.name)
    FROM (SELECT DISTINCT u.name FROM unnest(p_names, p_run_ats) AS u(name, run_at)
          WHERE u.run_at <= p_now) x;
  RETURN QUERY
  WITH f AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('jobs', 'id')) AS id, u.*
    FROM unnest(p_names, p_args, p_priorities, p_max_attempts, p_backoffs, p_timeouts,
        p_run_ats, p_nows, p_lk1, p_lk2, p_lk3, p_lk4, p_fair)
      WITH ORDINALITY AS u(name, args, priority, max_attempts, backoff, timeout, run_at,
        created, lk1, lk2, lk3, lk4, fair, n)),
  ins AS (
    INSERT INTO jobs (id, name, args, priority, max_attempts, backoff_ms, timeout_ms, run_at,
      created_at, limit_key1, limit_key2, limit_key3, limit_key4, state, fair_key)
    SELECT f.id, f.name, f.args, f.priority, greatest(f.max_attempts, 1), f.backoff,
      f.timeout, f.run_at, f.created, f.lk1, f.lk2, f.lk3, f.lk4, 'queued', f.fair FROM f)
  SELECT f.n, f.id FROM f ORDER BY f.n;
END $$;
