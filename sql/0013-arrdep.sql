-- Dependencies on job arrays and their subjobs (qsub -W
-- depend=afterok:124[] or afterok:124[7]; docs/internals/qmgr.md
-- "Dependencies"). Edges on a whole array are (124, -1, ...) and resolve
-- through the jobs trigger of sql/0005-depend.sql when the array's row
-- becomes running (a subjob began) or finished (with the array's
-- Exit_status 0, 1 or 2, as PBS's chk_array_doneness). Edges on a subjob
-- are (124, 7, ...) and resolve through the subjobs triggers below, in
-- the transaction that starts (a scheduler's commit) or ends (qmgr's
-- allocation end, qdel of subjobs, the array's end) the subjob.

-- drover_depend_resolve as in 0005, but the target is named as PBS
-- prints it ("124[].srv" for a whole array, "124[7].srv" for a subjob),
-- so that the comment of a job deleted because of it and the depend text
-- it is dropped from match; and an array that ends resolves the edges
-- left on its subjobs as deleted.
CREATE OR REPLACE FUNCTION drover_depend_resolve(p_target bigint, p_index integer,
                                      p_event text, p_exit integer,
                                      p_at timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    w_target bigint[] := ARRAY[p_target];
    w_index integer[] := ARRAY[p_index];
    w_event text[] := ARRAY[p_event];
    w_exit integer[] := ARRAY[p_exit];
    pos integer := 1;
    server text;
    tname text;
    dep bigint;
    changed bigint[] := '{}';
    evals boolean := false;
    n integer := 0;
    r record;
    i integer;
    dtext text;
    payload text;
BEGIN
    PERFORM set_config('drover.depend_resolving', 'on', true);
    SELECT name INTO server FROM cluster;
    WHILE pos <= cardinality(w_target) LOOP
        tname := w_target[pos]::text
            || CASE WHEN w_index[pos] >= 0 THEN '[' || w_index[pos] || ']'
                    WHEN EXISTS (SELECT 1 FROM job_arrays
                                 WHERE job_id = w_target[pos]) THEN '[]'
                    ELSE '' END
            || CASE WHEN server IS NULL THEN '' ELSE '.' || server END;
        -- An array that ended: edges left on its subjobs can never be
        -- decided by a subjob any more (it never ran: the array was
        -- deleted before it, or by a dependency), so they are resolved
        -- as deleted, after this entry.
        IF w_index[pos] = -1 AND w_event[pos] <> 'started' THEN
            FOR i IN
                SELECT DISTINCT d.target_index FROM job_depends d
                WHERE d.target = w_target[pos] AND d.target_index >= 0
                ORDER BY 1
            LOOP
                w_target := w_target || w_target[pos];
                w_index := w_index || i;
                w_event := w_event || 'deleted'::text;
                w_exit := w_exit || NULL::integer;
            END LOOP;
        END IF;
        -- Edges that can no longer be met: the dependent is deleted, with
        -- every edge it still had, and its dependents are resolved next.
        FOR dep IN
            SELECT DISTINCT d.dependent FROM job_depends d
            WHERE d.target = w_target[pos] AND d.target_index = w_index[pos]
              AND drover_depend_outcome(d.type, w_event[pos], w_exit[pos])
                  = 'unmet'
            ORDER BY 1
        LOOP
            DELETE FROM job_depends WHERE dependent = dep;
            UPDATE jobs SET state = 'finished', hold_types = '',
                end_time = p_at,
                comment = 'Job deleted as result of dependency on job '
                          || tname,
                modify_index = nextval('modify_index_seq')
            WHERE id = dep AND state IN ('queued', 'held');
            IF FOUND THEN
                UPDATE evaluations SET status = 'cancelled',
                    status_description = 'dependency can never be met',
                    modify_index = nextval('modify_index_seq')
                WHERE job_id = dep AND status IN ('pending', 'blocked');
                w_target := w_target || dep;
                w_index := w_index || -1;
                w_event := w_event || 'deleted'::text;
                w_exit := w_exit || NULL::integer;
                changed := changed || dep;
                n := n + 1;
            END IF;
        END LOOP;
        -- Edges met: gone; a dependent left with none (and no "on" count
        -- to wait for) loses its system hold, and is queued with its
        -- evaluation unless another hold remains.
        FOR r IN
            WITH met AS (
                DELETE FROM job_depends d
                WHERE d.target = w_target[pos]
                  AND d.target_index = w_index[pos]
                  AND drover_depend_outcome(d.type, w_event[pos],
                                            w_exit[pos]) = 'met'
                RETURNING d.dependent, d.type)
            SELECT dependent, array_agg(type) AS types FROM met
            GROUP BY dependent ORDER BY 1
        LOOP
            -- the met dependencies leave the depend attribute
            SELECT depend INTO dtext FROM jobs WHERE id = r.dependent;
            FOR i IN 1 .. cardinality(r.types) LOOP
                dtext := drover_depend_drop(dtext, r.types[i],
                    tname || CASE WHEN server IS NULL THEN ''
                                  ELSE '@' || server END);
            END LOOP;
            UPDATE jobs SET depend = dtext,
                spec = CASE WHEN dtext IS NULL THEN spec - 'depend'
                            ELSE jsonb_set(spec, '{depend}',
                                           to_jsonb(dtext)) END,
                modify_index = nextval('modify_index_seq')
            WHERE id = r.dependent AND depend IS DISTINCT FROM dtext;
            UPDATE jobs SET hold_types = replace(hold_types, 's', ''),
                state = CASE WHEN replace(hold_types, 's', '') = ''
                             THEN 'queued' ELSE state END,
                queue_time = CASE WHEN replace(hold_types, 's', '') = ''
                                  THEN p_at ELSE queue_time END,
                comment = NULL,
                modify_index = nextval('modify_index_seq')
            WHERE id = r.dependent AND state = 'held'
              AND strpos(hold_types, 's') > 0 AND depend_on <= 0
              AND NOT EXISTS (SELECT 1 FROM job_depends
                              WHERE dependent = r.dependent);
            IF FOUND THEN
                changed := changed || r.dependent;
                n := n + 1;
            END IF;
        END LOOP;
        pos := pos + 1;
    END LOOP;
    -- Released jobs get their evaluation here, in this transaction.
    WITH released AS (
        SELECT id, priority FROM jobs
        WHERE id = ANY(changed) AND state = 'queued')
    INSERT INTO evaluations (job_id, triggered_by, status, priority,
                             create_time, modify_index)
    SELECT id, 'job-depend', 'pending', priority, p_at,
           nextval('modify_index_seq') FROM released
    ON CONFLICT (job_id) WHERE status = 'pending' DO NOTHING;
    IF FOUND THEN
        evals := true;
    END IF;
    IF cardinality(changed) > 0 THEN
        payload := array_to_string(changed, ',');
        IF length(payload) > 7000 THEN
            payload := '';
        END IF;
        PERFORM pg_notify('jobs', payload);
    END IF;
    IF evals THEN
        PERFORM pg_notify('evals', '');
    END IF;
    PERFORM set_config('drover.depend_resolving', '', true);
    RETURN n;
END
$$;


-- A subjob that starts or finishes resolves the edges on it. Only
-- subjobs some job waits for pay more than the trigger's WHEN: one probe
-- of job_depends' primary key. A subjob that finished without running
-- (deleted while queued) or without an exit status is 'deleted'.
CREATE FUNCTION subjobs_depend_resolve() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('drover.depend_resolving', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM job_depends
                   WHERE target = NEW.job_id
                     AND target_index = NEW.array_index) THEN
        RETURN NULL;
    END IF;
    IF NEW.state = 'running' THEN
        PERFORM drover_depend_resolve(NEW.job_id, NEW.array_index,
                                      'started', NULL,
                                      coalesce(NEW.start_time,
                                               NEW.end_time));
    ELSE
        PERFORM drover_depend_resolve(NEW.job_id, NEW.array_index,
            CASE WHEN NEW.start_time IS NULL OR NEW.exit_status IS NULL
                 THEN 'deleted' ELSE 'ended' END,
            NEW.exit_status, coalesce(NEW.end_time, NEW.start_time));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER subjobs_depend_insert AFTER INSERT ON subjobs
    FOR EACH ROW WHEN (NEW.state IN ('running', 'finished'))
    EXECUTE FUNCTION subjobs_depend_resolve();
CREATE TRIGGER subjobs_depend_update AFTER UPDATE OF state ON subjobs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state
                       AND NEW.state IN ('running', 'finished'))
    EXECUTE FUNCTION subjobs_depend_resolve();

-- Queue running-job limits for arrays (docs/internals/sched.md "Queue
-- limits"): PBS's max_run and max_user_run count each running subjob as
-- a job, and an array itself as none. How many jobs of queue qname (of
-- owner who, when not NULL) run in that sense: plain jobs running or
-- exiting, plus the running or exiting subjobs of its arrays.
CREATE FUNCTION drover_queue_running(qname text, who text)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT (SELECT count(*) FROM jobs j
            WHERE j.queue = qname AND (who IS NULL OR j.owner = who)
              AND j.state IN ('running', 'exiting')
              AND NOT EXISTS (SELECT 1 FROM job_arrays a
                              WHERE a.job_id = j.id))
         + (SELECT count(*) FROM jobs j JOIN subjobs s ON s.job_id = j.id
            WHERE j.queue = qname AND (who IS NULL OR j.owner = who)
              AND j.state IN ('running', 'exiting')
              AND s.state IN ('running', 'exiting'))
$$;

-- The evaluation eval of job (leased by lessee) waits for a slot of queue
-- qname (of owner waiter, when not NULL): blocked with wait_queue, and
-- the job's comment says why (drover_queue_admit's side of 0006).
CREATE FUNCTION drover_queue_block(job bigint, eval bigint, lessee text,
                                   qname text, waiter text, why text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE evaluations e SET status = CASE WHEN EXISTS (SELECT 1
        FROM evaluations o WHERE o.job_id = e.job_id AND o.status = 'pending')
        THEN 'cancelled' ELSE 'blocked' END,
        wait_queue = qname, wait_owner = waiter, status_description = why,
        blocked_index = 0, need_cores = 0, need_mem = 0, need_gpus = 0,
        never = false, lease_owner = NULL, lease_deadline = NULL,
        modify_index = nextval('modify_index_seq')
        WHERE id = eval AND status = 'leased' AND e.lease_owner = lessee;
    UPDATE evaluations SET status = 'cancelled',
        status_description = 'superseded',
        modify_index = nextval('modify_index_seq')
        WHERE job_id = job AND status = 'blocked' AND id <> eval;
    UPDATE jobs SET comment = why, modify_index = nextval('modify_index_seq')
        WHERE id = job AND comment IS DISTINCT FROM why;
END
$$;

-- How many more subjobs of array job (locked by the caller, about to
-- place want of them) may start now under its queue's started flag and
-- running-job limits, counted under the queue's lock as
-- drover_queue_admit counts plain jobs: want when the queue is unlimited.
-- At 0 the evaluation (leased by lessee) is blocked waiting for the queue
-- or the user and the array's comment says why (PBS's scheduler texts),
-- as drover_queue_admit does; why is NULL otherwise.
CREATE FUNCTION drover_queue_array_room(job bigint, eval bigint, lessee text,
                                        want integer,
                                        OUT room integer, OUT why text)
LANGUAGE plpgsql AS $$
DECLARE
    qname text;
    who text;
    q record;
    waiter text;
BEGIN
    room := want;
    SELECT j.queue, j.owner INTO qname, who FROM jobs j WHERE j.id = job;
    IF qname IS NULL THEN
        RETURN;
    END IF;
    SELECT started, least(max_running, max_run_all) AS qmax,
           least(max_user_run, max_run_user) AS umax
        INTO q FROM queues WHERE name = qname;
    IF NOT FOUND OR (q.started AND q.qmax IS NULL AND q.umax IS NULL) THEN
        RETURN;
    END IF;
    PERFORM drover_queue_lock(qname, true);
    SELECT started, least(max_running, max_run_all) AS qmax,
           least(max_user_run, max_run_user) AS umax
        INTO q FROM queues WHERE name = qname;
    IF NOT q.started THEN
        room := 0;
        why := 'Not Running: Queue ' || qname || ' is not started';
    END IF;
    IF why IS NULL AND q.qmax IS NOT NULL THEN
        room := least(room, greatest(q.qmax
                                     - drover_queue_running(qname, NULL), 0));
        IF room = 0 THEN
            why := 'Not Running: Queue ' || qname
                   || ' job limit has been reached.';
        END IF;
    END IF;
    IF why IS NULL AND q.umax IS NOT NULL THEN
        room := least(room, greatest(q.umax
                                     - drover_queue_running(qname, who), 0));
        IF room = 0 THEN
            why := 'Not Running: User has reached queue ' || qname
                   || ' running job limit.';
            waiter := who;
        END IF;
    END IF;
    IF why IS NULL THEN
        RETURN;
    END IF;
    PERFORM drover_queue_block(job, eval, lessee, qname, waiter, why);
END
$$;

-- drover_queue_admit as in 0006, counting as PBS does
-- (drover_queue_running): a plain job does not start while an array's
-- running subjobs fill the queue's max_run.
CREATE OR REPLACE FUNCTION drover_queue_admit(job bigint, eval bigint, lessee text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    qname text;
    who text;
    q record;
    n bigint;
    why text;
    waiter text;
BEGIN
    SELECT j.queue, j.owner INTO qname, who FROM jobs j WHERE j.id = job;
    IF qname IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT started, least(max_running, max_run_all) AS qmax,
           least(max_user_run, max_run_user) AS umax
        INTO q FROM queues WHERE name = qname;
    IF NOT FOUND OR (q.started AND q.qmax IS NULL AND q.umax IS NULL) THEN
        RETURN NULL;
    END IF;
    PERFORM drover_queue_lock(qname, true);
    -- Read again under the lock: qmgr changes these under it.
    SELECT started, least(max_running, max_run_all) AS qmax,
           least(max_user_run, max_run_user) AS umax
        INTO q FROM queues WHERE name = qname;
    IF NOT q.started THEN
        why := 'Not Running: Queue ' || qname || ' is not started';
    ELSIF q.qmax IS NOT NULL THEN
        n := drover_queue_running(qname, NULL);
        IF n >= q.qmax THEN
            why := 'Not Running: Queue ' || qname
                   || ' job limit has been reached.';
        END IF;
    END IF;
    IF why IS NULL AND q.umax IS NOT NULL THEN
        n := drover_queue_running(qname, who);
        IF n >= q.umax THEN
            why := 'Not Running: User has reached queue ' || qname
                   || ' running job limit.';
            waiter := who;
        END IF;
    END IF;
    IF why IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM drover_queue_block(job, eval, lessee, qname, waiter, why);
    RETURN why;
END
$$;

-- drover_queue_wake as in 0006, but a begun array (running, B) blocked
-- at its queue's limit is woken too: its remaining subjobs wait for a
-- slot as a queued job does.
CREATE OR REPLACE FUNCTION drover_queue_wake(qname text, waiter text, wake_all boolean)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    WITH w AS (
        UPDATE evaluations SET status = 'pending',
            modify_index = nextval('modify_index_seq')
        WHERE id = ANY(ARRAY(
            SELECT b.id FROM evaluations b
            WHERE b.status = 'blocked' AND b.wait_queue = qname
            AND (wake_all OR b.wait_owner IS NOT DISTINCT FROM waiter)
            AND EXISTS (SELECT 1 FROM jobs j
                WHERE j.id = b.job_id AND (j.state = 'queued'
                    OR (j.state = 'running' AND EXISTS (SELECT 1
                        FROM job_arrays a WHERE a.job_id = j.id))))
            AND NOT EXISTS (SELECT 1 FROM evaluations o
                WHERE o.job_id = b.job_id AND o.status IN ('pending', 'leased'))
            ORDER BY b.queue_priority DESC, b.priority DESC, b.fairshare, b.id
            LIMIT CASE WHEN wake_all THEN NULL ELSE 1 END))
        RETURNING id)
    SELECT count(*) INTO n FROM w;
    IF n > 0 THEN
        PERFORM pg_notify('evals', '');
    END IF;
    RETURN n;
END
$$;

-- A subjob that stops running frees a slot of its queue and of its owner,
-- as a job does (jobs_queue_slot of 0006).
CREATE FUNCTION subjobs_queue_slot() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    qname text;
    who text;
    q record;
BEGIN
    SELECT j.queue, j.owner INTO qname, who FROM jobs j
        WHERE j.id = NEW.job_id;
    SELECT least(max_running, max_run_all) AS qmax,
           least(max_user_run, max_run_user) AS umax
        INTO q FROM queues WHERE name = qname;
    IF FOUND AND (q.qmax IS NOT NULL OR q.umax IS NOT NULL) THEN
        PERFORM drover_queue_lock(qname, false);
        PERFORM drover_queue_wake(qname, NULL, false);
        PERFORM drover_queue_wake(qname, who, false);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER subjobs_queue_slot AFTER UPDATE OF state ON subjobs
    FOR EACH ROW WHEN (OLD.state IN ('running', 'exiting')
                       AND NEW.state NOT IN ('running', 'exiting'))
    EXECUTE FUNCTION subjobs_queue_slot();
