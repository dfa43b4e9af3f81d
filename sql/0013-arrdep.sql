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
