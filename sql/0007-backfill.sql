-- Backfill (issue 4): reservations gain a time dimension. A reservation
-- made for one of the highest-ranked waiting jobs holds capacity on its
-- nodes from start_time on (NULL: from now, as preemption's do). Every
-- commit reads them under the node row locks it already takes: a job
-- ranked lower may use that capacity only when it ends (start + walltime)
-- before start_time, or when it fits beside the reservation at start_time
-- given the estimated end of the work running there (sched/backfill.c).
-- kind: 'preemption' (held for jobs of higher or equal priority, as in
-- 0002), 'backfill' (EASY: held for jobs ranked higher — priority, then
-- submission order), 'fifo' (backfill off: the top job holds every node
-- and nothing ranked lower starts anywhere).
ALTER TABLE reservations
    ADD COLUMN start_time timestamptz,
    ADD COLUMN kind text NOT NULL DEFAULT 'preemption'
        CHECK (kind IN ('preemption', 'backfill', 'fifo'));
CREATE INDEX reservations_kind ON reservations (kind, job_id)
    WHERE kind <> 'preemption';

-- When the scheduler expects a waiting job to start (PBS's
-- estimated.start_time), written with its reservation, from Drover's
-- clock; shown only while the job is queued.
ALTER TABLE jobs ADD COLUMN estimated_start_time timestamptz;

-- A PBS job (placed whole, once; the only kind that gets backfill
-- reservations), without reading the spec (often TOASTed) in the queries
-- that rank the waiting jobs.
ALTER TABLE jobs ADD COLUMN pbs boolean
    GENERATED ALWAYS AS (NOT (spec ? 'groups')) STORED;


-- What the live allocations on a node still hold at a given time: those
-- whose start (or placement, before the node reports a start) plus their
-- job's walltime is later; work without walltime holds for ever. The
-- scheduler reads it with every reservation (snapshot) and under the node
-- row locks of every commit; the time is always passed in.
CREATE FUNCTION drover_busy_at(node bigint, at timestamptz,
                               OUT cores bigint, OUT mem bigint,
                               OUT gpus bigint)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(a.ncpus), 0), coalesce(sum(a.mem), 0),
           coalesce(sum(a.ngpus), 0)
    FROM allocations a JOIN jobs j ON j.id = a.job_id
    WHERE a.node_id = node AND a.end_time IS NULL
      AND (j.walltime <= 0 OR coalesce(a.start_time, a.create_time)
           + make_interval(secs => j.walltime) > at)
$$;

-- Waking nodes locks their rows in id order, as every commit does: with
-- reservations released and expired by several schedulers at once, an
-- UPDATE in scan order could deadlock with a commit.
CREATE OR REPLACE FUNCTION drover_wake_nodes(ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF ids IS NULL OR cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(4750001);
    PERFORM 1 FROM nodes WHERE id = ANY(ids) ORDER BY id FOR NO KEY UPDATE;
    UPDATE nodes SET capacity_index = nextval('modify_index_seq')
        WHERE id = ANY(ids);
    PERFORM pg_notify('capacity', '');
END
$$;

-- How many PBS batch jobs (native ones, with task groups, get no
-- reservations) waiting for a scheduler (an evaluation blocked,
-- pending or leased, that could fit some day) rank above a job — higher
-- priority, or the same and submitted earlier — counting up to lim: the
-- top lim waiting jobs are the ones that get backfill reservations.
CREATE FUNCTION drover_ranked_above(job bigint, prio integer, lim integer)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM (
        SELECT DISTINCT e.job_id FROM evaluations e
        JOIN jobs j ON j.id = e.job_id AND j.type = 'batch' AND j.pbs
        WHERE e.status IN ('blocked', 'pending', 'leased') AND NOT e.never
          AND e.job_id <> job
          AND (e.priority > prio OR (e.priority = prio AND e.job_id < job))
        LIMIT lim) x
$$;
