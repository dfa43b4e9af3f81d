-- One order of work for leasing and backfill (issue 4, items 4 and 5):
-- queue priority (higher first), job priority (higher first), fair share
-- (log2 of the owner's decayed usage, lower first), then age (the job's
-- id). 0006 stamps the first three on every evaluation that becomes
-- pending; 0007 ranked backfill's top jobs by job priority and id only.
--
-- A backfill or fifo reservation carries its holder's rank keys as they
-- were when it was made (from the evaluation that made it), so that every
-- commit check and every wake hint compares a waiting job with a holder
-- without re-deriving the holder's queue or usage. Preemption
-- reservations keep the defaults: they bind by job priority alone (PBS's
-- preemption levels), as in 0002.
ALTER TABLE reservations
    ADD COLUMN queue_priority integer NOT NULL DEFAULT 0,
    ADD COLUMN fairshare double precision NOT NULL DEFAULT '-Infinity';

-- Does job a rank above job b in the order of work? The one comparison
-- SQL makes between rows (sched_rank_cmp is the same in C).
CREATE FUNCTION drover_ranks_above(aq integer, ap integer,
                                   af double precision, aid bigint,
                                   bq integer, bp integer,
                                   bf double precision, bid bigint)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT (-aq::bigint, -ap::bigint, af, aid)
         < (-bq::bigint, -bp::bigint, bf, bid)
$$;

-- How many PBS batch jobs waiting for a scheduler (an evaluation blocked,
-- pending or leased, that could fit some day) rank above a job in the
-- order of work, counting up to lim: the top lim waiting jobs are the
-- ones that get backfill reservations. Replaces 0007's, which compared
-- job priority and id only.
DROP FUNCTION drover_ranked_above(bigint, integer, integer);
CREATE FUNCTION drover_ranked_above(job bigint, qprio integer, prio integer,
                                    fs double precision, lim integer)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM (
        SELECT DISTINCT e.job_id FROM evaluations e
        JOIN jobs j ON j.id = e.job_id AND j.type = 'batch' AND j.pbs
        WHERE e.status IN ('blocked', 'pending', 'leased') AND NOT e.never
          AND e.job_id <> job
          AND drover_ranks_above(e.queue_priority, e.priority, e.fairshare,
                                 e.job_id, qprio, prio, fs, job)
        LIMIT lim) x
$$;
