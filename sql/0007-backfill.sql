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
