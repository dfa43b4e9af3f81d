-- Queues as PBS has them (issue 4, item 4): resource defaults and per-job
-- limits, running-job limits per queue and per user, user and group ACLs;
-- the order in which schedulers lease work (queue priority, job priority,
-- fair share); per-user usage decayed with a half-life (Slurm's
-- priority/multifactor). docs/internals/sched.md, "Queues and order".

-- resources_default/max/min: {"walltime": "01:00:00", "mem": "1gb", ...}
-- (PBS text, canonical). max_running and max_user_run are PBS's old
-- attributes; max_run_all / max_run_user hold max_run = "[o:PBS_ALL=N]" /
-- "[u:PBS_GENERIC=N]". The effective caps are the smaller of each pair.
ALTER TABLE queues
    ADD COLUMN queue_type text NOT NULL DEFAULT 'Execution',
    ADD COLUMN resources_default jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN resources_max jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN resources_min jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN max_running integer CHECK (max_running >= 0),
    ADD COLUMN max_user_run integer CHECK (max_user_run >= 0),
    ADD COLUMN max_run_all integer CHECK (max_run_all >= 0),
    ADD COLUMN max_run_user integer CHECK (max_run_user >= 0),
    ADD COLUMN acl_user_enable boolean NOT NULL DEFAULT false,
    ADD COLUMN acl_users text[] NOT NULL DEFAULT '{}',
    ADD COLUMN acl_group_enable boolean NOT NULL DEFAULT false,
    ADD COLUMN acl_groups text[] NOT NULL DEFAULT '{}';
-- The default queue is created as PBS creates workq.
UPDATE queues SET enabled = true, started = true WHERE name = 'workq';

-- Running work per queue and user: what the limits count, under the lock
-- below. Bounded by the cluster's size, never by the queued backlog.
CREATE INDEX jobs_running ON jobs (queue, owner)
    WHERE state IN ('running', 'exiting');

-- Fair share. usage_log2 is log2 of the user's core-seconds, each amount
-- weighted by 2^(t / half_life) for the Drover time t it was recorded at:
-- the decayed usage at time T is 2^(usage_log2 - T / half_life), so
-- ordering users by usage_log2 is ordering them by decayed usage at any
-- moment, and nothing has to be rewritten as time passes. Logarithms keep
-- the weights finite however long the cluster runs.
ALTER TABLE cluster
    ADD COLUMN fairshare_half_life double precision NOT NULL DEFAULT 604800
        CHECK (fairshare_half_life > 0);
CREATE TABLE user_usage (
    owner text PRIMARY KEY,
    usage_log2 double precision NOT NULL,
    core_seconds double precision NOT NULL DEFAULT 0,
    update_time timestamptz NOT NULL
);

-- The order of work (one definition, used by leasing and by waking
-- limit-blocked work): queue priority, then job priority, then fair share
-- (lower decayed usage first), then age. Stamped on an evaluation each
-- time it becomes pending, so that leasing is one ordered index scan.
-- wait_queue/wait_owner: a blocked evaluation waits for a slot of that
-- queue (owner NULL: the queue's own limit, or the queue is stopped) or
-- of that user in that queue; capacity never wakes it.
ALTER TABLE evaluations
    ADD COLUMN queue_priority integer NOT NULL DEFAULT 0,
    ADD COLUMN fairshare double precision NOT NULL DEFAULT '-Infinity',
    ADD COLUMN wait_queue text,
    ADD COLUMN wait_owner text;
CREATE INDEX evaluations_pending_order ON evaluations
    (queue_priority DESC, priority DESC, fairshare, id)
    WHERE status = 'pending';
CREATE INDEX evaluations_wait_queue ON evaluations (wait_queue, wait_owner)
    WHERE status = 'blocked' AND wait_queue IS NOT NULL;

CREATE FUNCTION drover_eval_rank() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT coalesce(q.priority, 0), coalesce(u.usage_log2, '-Infinity')
        INTO NEW.queue_priority, NEW.fairshare
        FROM jobs j LEFT JOIN queues q ON q.name = j.queue
        LEFT JOIN user_usage u ON u.owner = j.owner
        WHERE j.id = NEW.job_id;
    NEW.queue_priority := coalesce(NEW.queue_priority, 0);
    NEW.fairshare := coalesce(NEW.fairshare, '-Infinity');
    NEW.wait_queue := NULL;
    NEW.wait_owner := NULL;
    RETURN NEW;
END
$$;
CREATE TRIGGER evaluations_rank BEFORE INSERT OR UPDATE OF status
    ON evaluations FOR EACH ROW WHEN (NEW.status = 'pending')
    EXECUTE FUNCTION drover_eval_rank();

-- An allocation that ended adds its core-seconds (from its start, or its
-- placement when no start was reported) to its owner's usage, in the
-- transaction that ends it.
CREATE FUNCTION drover_record_usage() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    who text;
    hl double precision;
    secs double precision;
    x double precision;
BEGIN
    secs := extract(epoch FROM NEW.end_time
                                - coalesce(NEW.start_time, NEW.create_time));
    IF secs IS NULL OR secs <= 0 OR NEW.ncpus <= 0 THEN
        RETURN NULL;
    END IF;
    SELECT owner INTO who FROM jobs WHERE id = NEW.job_id;
    SELECT fairshare_half_life INTO hl FROM cluster;
    IF who IS NULL THEN
        RETURN NULL;
    END IF;
    hl := coalesce(hl, 604800);
    x := ln(secs * NEW.ncpus) / ln(2.0)
         + extract(epoch FROM NEW.end_time) / hl;
    INSERT INTO user_usage AS u (owner, usage_log2, core_seconds, update_time)
        VALUES (who, x, secs * NEW.ncpus, NEW.end_time)
    ON CONFLICT (owner) DO UPDATE SET
        usage_log2 = CASE WHEN abs(u.usage_log2 - EXCLUDED.usage_log2) > 60
            THEN greatest(u.usage_log2, EXCLUDED.usage_log2)
            ELSE greatest(u.usage_log2, EXCLUDED.usage_log2)
                 + ln(1 + power(2.0::double precision,
                                -abs(u.usage_log2 - EXCLUDED.usage_log2)))
                   / ln(2.0) END,
        core_seconds = u.core_seconds + EXCLUDED.core_seconds,
        update_time = greatest(u.update_time, EXCLUDED.update_time);
    RETURN NULL;
END
$$;
CREATE TRIGGER allocations_usage AFTER UPDATE OF end_time ON allocations
    FOR EACH ROW WHEN (OLD.end_time IS NULL AND NEW.end_time IS NOT NULL)
    EXECUTE FUNCTION drover_record_usage();

-- The lock that makes running-job limits exact with parallel schedulers:
-- advisory (4750002, hashtext(queue)). A plan commit takes it exclusively
-- (after its node rows and its job row: the documented lock order) to
-- count and, at the limit, to block; a running job that ends takes it
-- shared before waking what waits for its slot; qmgr takes it exclusively
-- to change a queue's limits or started flag. So no start can slip past a
-- limit, and no wake-up can fall between a count and its "blocked".
CREATE FUNCTION drover_queue_lock(qname text, exclusive boolean)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF exclusive THEN
        PERFORM pg_advisory_xact_lock(4750002, hashtext(qname));
    ELSE
        PERFORM pg_advisory_xact_lock_shared(4750002, hashtext(qname));
    END IF;
END
$$;

-- May the job (locked by the caller, about to start) start now under its
-- queue's started flag and running-job limits? NULL: yes. Otherwise the
-- evaluation (leased by lessee) is blocked waiting for the queue or
-- the user, the job's comment says why (PBS's scheduler texts), and the
-- reason is returned. Unlimited, started queues take no lock.
CREATE FUNCTION drover_queue_admit(job bigint, eval bigint, lessee text)
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
        SELECT count(*) INTO n FROM jobs
            WHERE queue = qname AND state IN ('running', 'exiting');
        IF n >= q.qmax THEN
            why := 'Not Running: Queue ' || qname
                   || ' job limit has been reached.';
        END IF;
    END IF;
    IF why IS NULL AND q.umax IS NOT NULL THEN
        SELECT count(*) INTO n FROM jobs
            WHERE queue = qname AND owner = who
            AND state IN ('running', 'exiting');
        IF n >= q.umax THEN
            why := 'Not Running: User has reached queue ' || qname
                   || ' running job limit.';
            waiter := who;
        END IF;
    END IF;
    IF why IS NULL THEN
        RETURN NULL;
    END IF;
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
    RETURN why;
END
$$;

-- Wakes the best evaluation waiting for a slot of (qname, waiter) (waiter
-- NULL: the queue's own), or every one when all is set (a queue's limits
-- or started flag changed). Returns how many.
CREATE FUNCTION drover_queue_wake(qname text, waiter text, wake_all boolean)
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
                WHERE j.id = b.job_id AND j.state = 'queued')
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

-- A job that stops running frees a slot of its queue and of its owner.
CREATE FUNCTION jobs_queue_slot() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    q record;
BEGIN
    IF OLD.state IN ('running', 'exiting')
       AND NEW.state NOT IN ('running', 'exiting') THEN
        SELECT least(max_running, max_run_all) AS qmax,
               least(max_user_run, max_run_user) AS umax
            INTO q FROM queues WHERE name = NEW.queue;
        IF FOUND AND (q.qmax IS NOT NULL OR q.umax IS NOT NULL) THEN
            PERFORM drover_queue_lock(NEW.queue, false);
            PERFORM drover_queue_wake(NEW.queue, NULL, false);
            PERFORM drover_queue_wake(NEW.queue, NEW.owner, false);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_queue_slot AFTER UPDATE OF state ON jobs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION jobs_queue_slot();

-- A job of a limited queue that blocked for capacity does not use the
-- slot it was woken for: pass it on to the next one waiting, so that a
-- job that cannot fit never keeps a smaller one from a free slot (each
-- hand-on either starts a job, blocks one for capacity, or stops at the
-- limit: a chain, never a storm).
CREATE FUNCTION drover_queue_pass_on(job bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    qname text;
    who text;
    q record;
    n bigint;
BEGIN
    SELECT j.queue, j.owner INTO qname, who FROM jobs j WHERE j.id = job;
    SELECT started, least(max_running, max_run_all) AS qmax,
           least(max_user_run, max_run_user) AS umax
        INTO q FROM queues WHERE name = qname;
    IF NOT FOUND OR NOT q.started
       OR (q.qmax IS NULL AND q.umax IS NULL) THEN
        RETURN;
    END IF;
    -- Only a slot that is free is handed on (no churn at the limit).
    SELECT count(*) INTO n FROM jobs
        WHERE queue = qname AND state IN ('running', 'exiting');
    IF q.qmax IS NOT NULL AND n >= q.qmax THEN
        RETURN;
    END IF;
    PERFORM drover_queue_wake(qname, NULL, false);
    IF q.umax IS NOT NULL THEN
        SELECT count(*) INTO n FROM jobs
            WHERE queue = qname AND owner = who
            AND state IN ('running', 'exiting');
        IF n < q.umax THEN
            PERFORM drover_queue_wake(qname, who, false);
        END IF;
    END IF;
END
$$;

-- A queue that held jobs can be deleted once they are finished (PBS refuses
-- only a queue with jobs in it); finished jobs keep its name. Submissions
-- read the queue row FOR KEY SHARE, as the foreign key's check did, so a
-- queue cannot vanish under one.
ALTER TABLE jobs DROP CONSTRAINT jobs_queue_fkey;
