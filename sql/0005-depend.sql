-- Job dependencies (qsub -W depend=..., docs/internals/qmgr.md
-- "Dependencies"). A dependency is an edge: dependent waits for target
-- with one of the after types (the before types are registered on their
-- target as the matching after type). A job with edges left is held with
-- hold type 's' and has no evaluation. Edges are resolved in the
-- transaction that starts or ends their target (the trigger below, or a
-- direct call of drover_depend_resolve): met edges go away and a
-- dependent left with none is queued with its evaluation; a dependent
-- whose edge can no longer be met is deleted with a comment, and its own
-- dependents are resolved in turn, iteratively. No polling, no scan: one
-- probe of the primary key per ended target.

-- target_index: -1 for a job (or a whole array, "124[]"), else the subjob
-- index ("124[7]"): an array's subjobs resolve their edges by calling
-- drover_depend_resolve(array, index, ...).
CREATE TABLE job_depends (
    target bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    target_index integer NOT NULL DEFAULT -1,
    type text NOT NULL
        CHECK (type IN ('after', 'afterok', 'afternotok', 'afterany')),
    dependent bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    PRIMARY KEY (target, target_index, type, dependent)
);
CREATE INDEX job_depends_dependent ON job_depends (dependent);

-- depend_on: before-registrations the job still waits for (on:<count>).
-- has_dependents: some job has (or had) an edge on this one; the trigger
-- runs only for such jobs, so the job paths of every other job pay
-- nothing. Setting it does not move modify_index (nothing visible
-- changes).
ALTER TABLE jobs
    ADD COLUMN depend_on integer NOT NULL DEFAULT 0,
    ADD COLUMN has_dependents boolean NOT NULL DEFAULT false;

-- The rule (lib/depend.c dv_depend_outcome has the same table): what a
-- target's event ('started', 'ended' after it ran, 'deleted' before it
-- ran) means for an edge: 'met', 'unmet' or 'wait'.
CREATE FUNCTION drover_depend_outcome(dtype text, event text,
                                      exit_status integer)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN event = 'deleted' THEN 'unmet'
        WHEN event = 'started' THEN
            CASE WHEN dtype = 'after' THEN 'met' ELSE 'wait' END
        WHEN dtype IN ('after', 'afterany') THEN 'met'
        WHEN dtype = 'afterok' THEN
            CASE WHEN exit_status = 0 THEN 'met' ELSE 'unmet' END
        WHEN dtype = 'afternotok' THEN
            CASE WHEN exit_status = 0 THEN 'unmet' ELSE 'met' END
        ELSE 'wait'
    END
$$;

-- PBS's depend text without one met dependency: target (as printed,
-- "12.srv@srv") out of the group of type dtype; a group left without ids
-- goes, and NULL when nothing is left (qstat then shows no depend), as
-- PBS drops each dependency from the attribute when it is released.
CREATE FUNCTION drover_depend_drop(depend text, dtype text, target text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT string_agg(g, ',' ORDER BY o) FROM (
        SELECT t.o, CASE WHEN split_part(t.grp, ':', 1) = dtype THEN
            (SELECT string_agg(x, ':' ORDER BY i)
             FROM unnest(string_to_array(t.grp, ':'))
                  WITH ORDINALITY AS u(x, i)
             WHERE i = 1 OR x <> target)
            ELSE t.grp END AS g
        FROM unnest(string_to_array(depend, ',')) WITH ORDINALITY AS t(grp, o)
    ) s WHERE strpos(g, ':') > 0
$$;

-- PBS's depend text with target added to the group of type dtype (made
-- when missing): a before type registered on a job shows there as its
-- mirror after type, as PBS's register_dep records it.
CREATE FUNCTION drover_depend_add(depend text, dtype text, target text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN depend IS NULL OR depend = '' THEN dtype || ':' || target
        WHEN dtype = ANY(SELECT split_part(g, ':', 1)
                         FROM unnest(string_to_array(depend, ',')) AS g)
        THEN (SELECT string_agg(CASE WHEN split_part(g, ':', 1) = dtype
                                     THEN g || ':' || target ELSE g END,
                                ',' ORDER BY o)
              FROM unnest(string_to_array(depend, ','))
                   WITH ORDINALITY AS t(g, o))
        ELSE depend || ',' || dtype || ':' || target
    END
$$;

-- PBS's depend text with its on:<count> group set to n, or gone when n
-- is 0 (every registration it waited for came).
CREATE FUNCTION drover_depend_set_on(depend text, n integer)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT string_agg(CASE WHEN split_part(g, ':', 1) = 'on'
                           THEN 'on:' || n ELSE g END, ',' ORDER BY o)
    FROM unnest(string_to_array(depend, ',')) WITH ORDINALITY AS t(g, o)
    WHERE split_part(g, ':', 1) <> 'on' OR n > 0
$$;

-- Resolves the edges on (target, target_index) for the target's event,
-- with its exit status, at time at (Drover's clock: the target's start or
-- end time). Dependents deleted here are resolved in turn from a work
-- list (no recursion, whatever the chain's length). Returns how many
-- dependents were released or deleted. NOTIFYs 'evals' when work was
-- released and 'jobs' with the changed ids.
CREATE FUNCTION drover_depend_resolve(p_target bigint, p_index integer,
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
                    ELSE '' END
            || CASE WHEN server IS NULL THEN '' ELSE '.' || server END;
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

-- A job that starts or ends resolves the edges on it, whichever path
-- changed its state (qmgr's job end and qdel, a scheduler's placement).
-- The resolution's own changes to dependents are handled by its work
-- list, not by this trigger.
CREATE FUNCTION jobs_depend_resolve() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('drover.depend_resolving', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF NEW.state = 'running' THEN
        PERFORM drover_depend_resolve(NEW.id, -1, 'started', NULL,
                                      coalesce(NEW.start_time,
                                               NEW.queue_time));
    ELSE
        PERFORM drover_depend_resolve(NEW.id, -1,
            CASE WHEN NEW.start_time IS NULL THEN 'deleted' ELSE 'ended' END,
            NEW.exit_status, coalesce(NEW.end_time, NEW.queue_time));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_depend AFTER UPDATE OF state ON jobs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state
                       AND NEW.has_dependents
                       AND NEW.state IN ('running', 'finished'))
    EXECUTE FUNCTION jobs_depend_resolve();
