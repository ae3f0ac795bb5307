-- pg_funcs.sql: the PostgreSQL store's functions, embedded in the binary and
-- installed (CREATE OR REPLACE) by every daemon at start-up under the
-- migration lock: they change with the driver (pg-ops.c), not with the
-- schema. Each job operation that takes more than one statement is one call,
-- so a batch never waits for a round trip between two of its statements.
-- 24951 is the advisory lock space of pg-int.h (PG_LOCK_SPACE_SQL).

-- A new node: its row, and its session lock, held while its connection lives.
-- Channels: awaitd_jobs (payload: a script's name, or '' for any) when jobs
-- become ready, awaitd_done (payload: a job's id) when a job becomes final.
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
  v_todo bigint[] := ARRAY[p_parent];
  v_state text := p_state;
  v_p bigint;
  v_id bigint;
BEGIN
  IF p_state = 'succeeded' THEN
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
  WHILE array_length(v_todo, 1) > 0 LOOP
    v_p := v_todo[array_length(v_todo, 1)];
    v_todo := v_todo[1:array_length(v_todo, 1) - 1];
    FOR v_id IN
      UPDATE jobs j SET state = 'cancelled', finished_at = p_now,
        error = awaitd_dep_error(v_p, v_state)
        WHERE j.state = 'blocked' AND j.id IN
          (SELECT d.job_id FROM awaitd_deps d WHERE d.after_id = v_p)
        RETURNING j.id
    LOOP
      kind := 'cancelled'; id := v_id; RETURN NEXT;
      PERFORM pg_notify('awaitd_done', v_id::text);
      v_todo := v_todo || v_id;
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
      SELECT j.state INTO v_s FROM jobs j WHERE j.id = v_a;
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
  ON CONFLICT (key) DO NOTHING
  RETURNING jobs.id INTO v_id;
  IF v_id IS NULL THEN
    created := 0; id := (SELECT j.id FROM jobs j WHERE j.key = p_key);
    RETURN NEXT; RETURN;
  END IF;
  IF v_state = 'blocked' THEN
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
BEGIN
  UPDATE jobs j SET state = p_state,
    result = CASE WHEN v_ok THEN p_text END, error = CASE WHEN v_ok THEN NULL ELSE p_text END,
    finished_at = p_finished, run_at = coalesce(p_run_at, j.run_at), lease = NULL,
    trace = CASE WHEN p_trace IS NULL THEN j.trace WHEN j.trace IS NULL THEN p_trace
                 ELSE j.trace || chr(10) || p_trace END
    WHERE j.id = p_id AND j.state = 'running' AND j.lease = p_lease;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  kind := 'changed'; id := p_id; RETURN NEXT;
  IF p_state <> 'failed' THEN
    PERFORM pg_notify('awaitd_done', p_id::text);
    RETURN QUERY SELECT * FROM awaitd_deps_resolve(p_id, p_state, p_now);
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
