-- pg_claim.sql: claims under per-key limits, rates, keyed pauses and fair_by
-- on the PostgreSQL store (STORE_CLAIM when the script has any of them, or a
-- key of it is paused). Installed with pg_funcs.sql; the same rules as the
-- SQLite store's store-limits.c, made to hold across daemons:
--
-- One claim of a script at a time, across all daemons: the claim takes the
-- transaction lock (24952, hashtext(name)) or, when another daemon's batch
-- holds it, claims nothing and asks to be called again in 20 ms (a try, not
-- a wait: two batches never wait on each other's locks). The counts it reads
-- (running jobs by value, starts in each rate window) are then exact until
-- its batch commits.
--
-- Counts live in a jsonb object keyed "slot:value": slots 1..4 the running
-- jobs of limit i, 5..8 the starts of limit i in its window.

-- The values of limit p_i that are full, and the paused values.
CREATE OR REPLACE FUNCTION awaitd_lim_full(p_cnt jsonb, p_i int, p_caps bigint[],
  p_rates bigint[], p_paused text[])
RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
  SELECT p_paused || coalesce(array_agg(substr(e.key, 3)), '{}')
  FROM jsonb_each_text(p_cnt) e
  WHERE (left(e.key, 2) = p_i || ':' AND p_caps[p_i] > 0 AND e.value::bigint >= p_caps[p_i])
     OR (left(e.key, 2) = (p_i + 4) || ':' AND p_rates[p_i] > 0
         AND e.value::bigint >= p_rates[p_i])
$$;

-- The full (and paused) values of each of the four limits.
CREATE OR REPLACE FUNCTION awaitd_lim_fulls(p_cnt jsonb, p_caps bigint[], p_rates bigint[],
  p_paused text[])
RETURNS TABLE (f1 text[], f2 text[], f3 text[], f4 text[]) LANGUAGE sql IMMUTABLE AS $$
  SELECT awaitd_lim_full(p_cnt, 1, p_caps, p_rates, p_paused),
    awaitd_lim_full(p_cnt, 2, p_caps, p_rates, p_paused),
    awaitd_lim_full(p_cnt, 3, p_caps, p_rates, p_paused),
    awaitd_lim_full(p_cnt, 4, p_caps, p_rates, p_paused)
$$;

-- Are none of a job's limit values among the full ones (f1..f4: limit i's)?
CREATE OR REPLACE FUNCTION awaitd_lim_clear(k1 text, k2 text, k3 text, k4 text, f1 text[],
  f2 text[], f3 text[], f4 text[])
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT (k1 IS NULL OR k1 <> ALL (f1)) AND (k2 IS NULL OR k2 <> ALL (f2))
     AND (k3 IS NULL OR k3 <> ALL (f3)) AND (k4 IS NULL OR k4 <> ALL (f4))
$$;

-- May a job with limit values p_keys start, given the counts?
CREATE OR REPLACE FUNCTION awaitd_lim_room(p_cnt jsonb, p_keys text[], p_caps bigint[],
  p_rates bigint[])
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT NOT EXISTS (
    SELECT 1 FROM generate_series(1, 4) i
    WHERE p_keys[i] IS NOT NULL
      AND ((p_caps[i] > 0 AND coalesce((p_cnt ->> (i || ':' || p_keys[i]))::bigint, 0)
                                >= p_caps[i])
        OR (p_rates[i] > 0 AND coalesce((p_cnt ->> ((i + 4) || ':' || p_keys[i]))::bigint, 0)
                                >= p_rates[i])))
$$;

-- A job with limit values p_keys starts now: the counts with it, and its
-- starts under rate limits recorded.
CREATE OR REPLACE FUNCTION awaitd_lim_take(p_cnt jsonb, p_name text, p_keys text[],
  p_caps bigint[], p_rates bigint[], p_now bigint)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v jsonb := p_cnt;
  v_k text;
BEGIN
  FOR i IN 1..4 LOOP
    CONTINUE WHEN p_keys[i] IS NULL;
    IF p_caps[i] > 0 THEN
      v_k := i || ':' || p_keys[i];
      v := v || jsonb_build_object(v_k, coalesce((v ->> v_k)::bigint, 0) + 1);
    END IF;
    IF p_rates[i] > 0 THEN
      v_k := (i + 4) || ':' || p_keys[i];
      v := v || jsonb_build_object(v_k, coalesce((v ->> v_k)::bigint, 0) + 1);
      INSERT INTO awaitd_limit_starts (name, lim, key, at) VALUES (p_name, i, p_keys[i], p_now);
    END IF;
  END LOOP;
  RETURN v;
END $$;

-- The first fair_by value after p_after (NULL: the first of all) with jobs
-- ready to run, NULL when none (a seek on jobs_fair per call).
CREATE OR REPLACE FUNCTION awaitd_fair_next(p_name text, p_after text)
RETURNS text LANGUAGE sql STABLE AS $$
  SELECT min(fair_key) FROM jobs
  WHERE name = p_name AND fair_key IS NOT NULL AND state IN ('queued', 'failed', 'waiting')
    AND (p_after IS NULL OR fair_key > p_after)
$$;

-- The claim: rows of the jobs taken (now running, leases p_base + 1, + 2...,
-- in that order; as pg-ops.c's plain claim returns them: the job, has_steps,
-- resumed), then, when the script should be claimed again at a set time (a
-- rate window gets room, a pause ends, the lock was busy), one row whose
-- o_id is NULL and o_wake that time.
CREATE OR REPLACE FUNCTION awaitd_claim_limited(p_name text, p_now bigint, p_n bigint,
  p_base bigint, p_node bigint, p_caps bigint[], p_rates bigint[], p_pers bigint[],
  p_fair boolean)
RETURNS TABLE (o_id bigint, o_name text, o_state text, o_args text, o_key text,
  o_priority bigint, o_attempt bigint, o_max_attempts bigint, o_backoff_ms bigint,
  o_timeout_ms bigint, o_run_at bigint, o_created_at bigint, o_started_at bigint,
  o_finished_at bigint, o_lease bigint, o_result text, o_error text, o_wait_seq bigint,
  o_wait_for text, o_wait_until bigint, o_cancelling bigint, o_progress double precision,
  o_progress_msg text, o_has_steps boolean, o_resumed boolean, o_wake bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_cnt jsonb := '{}';
  v_old jsonb := '{}';   -- "slot:value" -> the oldest start in the window (rate slots)
  v_paused text[];
  v_wake bigint;
  v_ids bigint[] := '{}';
  v_skip bigint[] := '{}';  -- rows another transaction holds
  v_f1 text[]; v_f2 text[]; v_f3 text[]; v_f4 text[];
  c record;
  v_read int; v_took int; v_round int;
  v_start text; v_last text; v_first text; v_t text; v_next text; v_wraps int;
BEGIN
  IF NOT pg_try_advisory_xact_lock(24952, hashtext(p_name)) THEN
    o_wake := p_now + 20;
    RETURN NEXT;
    RETURN;
  END IF;
  -- pauses: the whole script claims nothing; paused values are left out like full ones
  SELECT p.until INTO c FROM awaitd_pauses p
    WHERE p.name = p_name AND p.key = '' AND (p.until IS NULL OR p.until > p_now);
  IF FOUND THEN
    IF c.until IS NOT NULL THEN
      o_wake := c.until;
      RETURN NEXT;
    END IF;
    RETURN;
  END IF;
  SELECT coalesce(array_agg(p.key), '{}'), min(p.until) INTO v_paused, v_wake
    FROM awaitd_pauses p
    WHERE p.name = p_name AND p.key <> '' AND (p.until IS NULL OR p.until > p_now);
  -- the running jobs by value, and the starts in each rate window by value
  FOR c IN SELECT s.i, s.k, count(*) AS n FROM jobs j
      CROSS JOIN LATERAL (VALUES (1, j.limit_key1), (2, j.limit_key2), (3, j.limit_key3),
                                 (4, j.limit_key4)) s(i, k)
      WHERE j.state = 'running' AND j.name = p_name AND s.k IS NOT NULL AND p_caps[s.i] > 0
      GROUP BY 1, 2 LOOP
    v_cnt := v_cnt || jsonb_build_object(c.i || ':' || c.k, c.n);
  END LOOP;
  FOR i IN 1..4 LOOP
    IF p_rates[i] > 0 THEN
      DELETE FROM awaitd_limit_starts s
        WHERE s.name = p_name AND s.lim = i AND s.at <= p_now - p_pers[i];
    END IF;
  END LOOP;
  FOR c IN SELECT s.lim, s.key, count(*) AS n, min(s.at) AS oldest FROM awaitd_limit_starts s
      WHERE s.name = p_name GROUP BY 1, 2 LOOP
    CONTINUE WHEN c.lim < 1 OR c.lim > 4 OR NOT p_rates[c.lim] > 0;
    v_cnt := v_cnt || jsonb_build_object((c.lim + 4) || ':' || c.key, c.n);
    v_old := v_old || jsonb_build_object((c.lim + 4) || ':' || c.key, c.oldest);
  END LOOP;

  -- fair_by: one job of each value in turn, starting after the value served
  -- last, round after round until p_n are taken or a round takes none
  IF p_fair THEN
    SELECT f.last_key INTO v_start FROM awaitd_fair f WHERE f.name = p_name;
    v_round := 0;
    WHILE cardinality(v_ids) < p_n LOOP
      v_took := 0;
      SELECT * INTO v_f1, v_f2, v_f3, v_f4 FROM awaitd_lim_fulls(v_cnt, p_caps, p_rates, v_paused);
      -- a round: the jobs without a value (enqueued before fair_by was set) once, then
      -- each value once, ascending from the one after the last served, wrapping past the
      -- greatest, until it comes back to the first or wraps twice
      v_t := NULL;
      v_first := awaitd_fair_next(p_name, v_start);
      v_wraps := 0;
      IF v_first IS NULL AND v_start IS NOT NULL THEN
        v_first := awaitd_fair_next(p_name, NULL);
      END IF;
      LOOP
        -- (two statements: a value's head is a seek on jobs_fair)
        IF v_t IS NULL THEN
          SELECT j.id, ARRAY[j.limit_key1, j.limit_key2, j.limit_key3, j.limit_key4] AS keys
            INTO c FROM jobs j
            WHERE j.name = p_name AND j.state IN ('queued', 'failed', 'waiting')
              AND j.fair_key IS NULL AND j.run_at <= p_now
              AND j.id <> ALL (v_ids) AND j.id <> ALL (v_skip)
              AND awaitd_lim_clear(j.limit_key1, j.limit_key2, j.limit_key3, j.limit_key4,
                                    v_f1, v_f2, v_f3, v_f4)
            ORDER BY j.priority DESC, j.run_at, j.id LIMIT 1;
        ELSE
          SELECT j.id, ARRAY[j.limit_key1, j.limit_key2, j.limit_key3, j.limit_key4] AS keys
            INTO c FROM jobs j
            WHERE j.name = p_name AND j.state IN ('queued', 'failed', 'waiting')
              AND j.fair_key IS NOT NULL AND j.fair_key = v_t AND j.run_at <= p_now
              AND j.fair_key <> ALL (v_paused)
              AND j.id <> ALL (v_ids) AND j.id <> ALL (v_skip)
              AND awaitd_lim_clear(j.limit_key1, j.limit_key2, j.limit_key3, j.limit_key4,
                                    v_f1, v_f2, v_f3, v_f4)
            ORDER BY j.priority DESC, j.run_at, j.id LIMIT 1;
        END IF;
        IF FOUND AND awaitd_lim_room(v_cnt, c.keys, p_caps, p_rates) THEN
          PERFORM 1 FROM jobs j WHERE j.id = c.id AND j.state IN ('queued', 'failed', 'waiting')
            AND j.run_at <= p_now FOR UPDATE SKIP LOCKED;  -- (still ready once locked)
          IF FOUND THEN
            v_ids := v_ids || c.id;
            v_cnt := awaitd_lim_take(v_cnt, p_name, c.keys, p_caps, p_rates, p_now);
            v_took := v_took + 1;
            IF v_t IS NOT NULL THEN
              v_last := v_t;
            END IF;
            SELECT * INTO v_f1, v_f2, v_f3, v_f4
              FROM awaitd_lim_fulls(v_cnt, p_caps, p_rates, v_paused);
          ELSE
            v_skip := v_skip || c.id;
          END IF;
        END IF;
        EXIT WHEN cardinality(v_ids) >= p_n;
        IF v_t IS NULL THEN
          v_next := v_first;
        ELSE
          v_next := awaitd_fair_next(p_name, v_t);
          IF v_next IS NULL THEN
            v_wraps := v_wraps + 1;
            v_next := awaitd_fair_next(p_name, NULL);
          END IF;
        END IF;
        EXIT WHEN v_next IS NULL OR v_wraps > 1 OR (v_t IS NOT NULL AND v_wraps = 1
                                                    AND v_next >= v_first);
        v_t := v_next;
      END LOOP;
      v_round := v_round + 1;
      EXIT WHEN v_took = 0 OR v_round > p_n;
    END LOOP;
    IF v_last IS NOT NULL THEN
      INSERT INTO awaitd_fair AS f (name, last_key) VALUES (p_name, v_last)
        ON CONFLICT (name) DO UPDATE SET last_key = excluded.last_key;
    END IF;
  END IF;

  -- passes over the queue in order, the full values left out; a value that
  -- fills during a pass leaves the rest of its rows to the next pass. Each
  -- pass takes its first row (its values had room) or skips it, so it ends.
  WHILE cardinality(v_ids) < p_n LOOP
    SELECT * INTO v_f1, v_f2, v_f3, v_f4 FROM awaitd_lim_fulls(v_cnt, p_caps, p_rates, v_paused);
    v_read := 0;
    v_took := 0;
    FOR c IN SELECT j.id, ARRAY[j.limit_key1, j.limit_key2, j.limit_key3, j.limit_key4] AS keys
        FROM jobs j
        WHERE j.name = p_name AND j.state IN ('queued', 'failed', 'waiting')
          AND j.run_at <= p_now AND j.id <> ALL (v_ids) AND j.id <> ALL (v_skip)
          AND (j.fair_key IS NULL OR j.fair_key <> ALL (v_paused))
          AND awaitd_lim_clear(j.limit_key1, j.limit_key2, j.limit_key3, j.limit_key4,
                                v_f1, v_f2, v_f3, v_f4)
        ORDER BY j.priority DESC, j.run_at, j.id LIMIT p_n - cardinality(v_ids) LOOP
      v_read := v_read + 1;
      CONTINUE WHEN NOT awaitd_lim_room(v_cnt, c.keys, p_caps, p_rates);
      PERFORM 1 FROM jobs j WHERE j.id = c.id AND j.state IN ('queued', 'failed', 'waiting')
        AND j.run_at <= p_now FOR UPDATE SKIP LOCKED;  -- (still ready once locked)
      IF NOT FOUND THEN
        v_skip := v_skip || c.id;
        CONTINUE;
      END IF;
      v_ids := v_ids || c.id;
      v_cnt := awaitd_lim_take(v_cnt, p_name, c.keys, p_caps, p_rates, p_now);
      v_took := v_took + 1;
    END LOOP;
    EXIT WHEN v_read = 0 OR v_took = v_read;
  END LOOP;

  -- taken: running, leased in the order taken
  RETURN QUERY
  UPDATE jobs j SET state = 'running',
    attempt = j.attempt + (CASE WHEN n.resumed THEN 0 ELSE 1 END), lease = p_base + n.k,
    epoch = p_node, started_at = p_now,
    progress = CASE WHEN n.resumed THEN j.progress END,
    progress_msg = CASE WHEN n.resumed THEN j.progress_msg END
  FROM (SELECT u.id, u.k, x.state = 'waiting' AS resumed
        FROM unnest(v_ids) WITH ORDINALITY AS u(id, k) JOIN jobs x ON x.id = u.id) n
  WHERE j.id = n.id AND j.state IN ('queued', 'failed', 'waiting')
  RETURNING j.id, j.name, j.state, j.args, j.key, j.priority, j.attempt, j.max_attempts,
    j.backoff_ms, j.timeout_ms, j.run_at, j.created_at, j.started_at, j.finished_at, j.lease,
    j.result, j.error, j.wait_seq, j.wait_for, j.wait_until, j.cancelling, j.progress,
    j.progress_msg, n.resumed OR EXISTS (SELECT 1 FROM steps s WHERE s.job_id = j.id),
    n.resumed, NULL::bigint;
  -- when a value held back by its rate has room again, or a pause ends
  SELECT least(v_wake, min(coalesce((v_old ->> e.key)::bigint, p_now)
                           + p_pers[substr(e.key, 1, 1)::int - 4]))
    INTO v_wake FROM jsonb_each_text(v_cnt) e
    WHERE substr(e.key, 1, 1)::int > 4
      AND e.value::bigint >= p_rates[substr(e.key, 1, 1)::int - 4];
  IF v_wake IS NOT NULL THEN
    o_id := NULL;
    o_wake := v_wake;
    RETURN NEXT;
  END IF;
END $$;

-- WHY: what job p_id waits behind, as JSON (NULL: nothing), with its
-- script's name: the jobs it was enqueued after (blocked); a pause of its
-- script or of one of its values; a full per-key limit or rate window.
-- The same answers as the SQLite store's store-why.c.
CREATE OR REPLACE FUNCTION awaitd_why(p_id bigint, p_now bigint, p_caps bigint[],
  p_rates bigint[], p_pers bigint[])
RETURNS TABLE (o_name text, o_why text) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  j record;
  p record;
  v_keys text[];
  v_n bigint;
  v_oldest bigint;
BEGIN
  SELECT x.name, x.state, x.fair_key, x.limit_key1, x.limit_key2, x.limit_key3, x.limit_key4
    INTO j FROM jobs x WHERE x.id = p_id;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  o_name := j.name;
  IF j.state = 'blocked' THEN
    SELECT json_build_object('kind', 'after', 'jobs',
        coalesce(json_agg(d.after_id ORDER BY d.after_id), '[]'))::text INTO o_why
      FROM awaitd_deps d JOIN jobs a ON a.id = d.after_id
      WHERE d.job_id = p_id AND a.state <> 'succeeded';
    RETURN NEXT;
    RETURN;
  END IF;
  IF j.state NOT IN ('queued', 'failed') THEN
    RETURN NEXT;
    RETURN;
  END IF;
  v_keys := ARRAY[j.limit_key1, j.limit_key2, j.limit_key3, j.limit_key4];
  -- a pause of the script, else of one of its values; "until": when they all have ended
  -- (the latest end; none while one lasts until resumed)
  SELECT x.key, CASE WHEN bool_or(x.until IS NULL) OVER () THEN NULL
                     ELSE max(x.until) OVER () END AS until INTO p FROM awaitd_pauses x
    WHERE x.name = j.name AND (x.until IS NULL OR x.until > p_now)
      AND (x.key = '' OR x.key = j.fair_key OR x.key = ANY (v_keys))
    ORDER BY x.key = '' DESC, x.key LIMIT 1;
  IF FOUND THEN
    o_why := json_build_object('kind', 'pause', 'key', nullif(p.key, ''),
                               'until', p.until)::text;
    RETURN NEXT;
    RETURN;
  END IF;
  FOR k IN 1..4 LOOP
    CONTINUE WHEN v_keys[k] IS NULL;
    IF p_caps[k] > 0 THEN
      SELECT count(*) INTO v_n FROM jobs x
        WHERE x.state = 'running' AND x.name = j.name
          AND (ARRAY[x.limit_key1, x.limit_key2, x.limit_key3, x.limit_key4])[k] = v_keys[k];
      IF v_n >= p_caps[k] THEN
        o_why := json_build_object('kind', 'limit', 'limit', k - 1, 'key', v_keys[k],
                                   'running', v_n, 'of', p_caps[k])::text;
        RETURN NEXT;
        RETURN;
      END IF;
    END IF;
    IF p_rates[k] > 0 THEN
      SELECT count(*), min(s.at) INTO v_n, v_oldest FROM awaitd_limit_starts s
        WHERE s.name = j.name AND s.key = v_keys[k] AND s.lim = k
          AND s.at > p_now - p_pers[k];
      IF v_n >= p_rates[k] THEN
        o_why := json_build_object('kind', 'rate', 'limit', k - 1, 'key', v_keys[k],
                                   'starts', v_n, 'of', p_rates[k], 'per', p_pers[k],
                                   'until', v_oldest + p_pers[k])::text;
        RETURN NEXT;
        RETURN;
      END IF;
    END IF;
  END LOOP;
  RETURN NEXT;
END $$;
