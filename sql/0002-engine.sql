-- The placement engine (issue 3): task groups and instances on
-- allocations, exact GPUs and disk, node pools' attributes, a server-side
-- index for node long polls, and at most one pending evaluation per job.

-- An allocation is one instance (0..count-1) of one group of its job. For
-- PBS jobs the groups are the select's chunk kinds and chunk_index keeps
-- the chunk's order; instance 0 of group 0 runs the script.
-- alloc_modify_index moves only on server-side changes (placement,
-- desired_status, lost): node long polls wait on it, so a node's own
-- status reports never wake its own long poll.
ALTER TABLE allocations
    ADD COLUMN group_index integer NOT NULL DEFAULT 0,
    ADD COLUMN instance integer NOT NULL DEFAULT 0,
    ADD COLUMN gpus text NOT NULL DEFAULT '',
    ADD COLUMN disk bigint NOT NULL DEFAULT 0,
    ADD COLUMN previous_alloc bigint,
    ADD COLUMN reschedule_count integer NOT NULL DEFAULT 0,
    ADD COLUMN alloc_modify_index bigint;
UPDATE allocations SET alloc_modify_index = modify_index;
ALTER TABLE allocations
    ALTER COLUMN alloc_modify_index SET DEFAULT nextval('modify_index_seq'),
    ALTER COLUMN alloc_modify_index SET NOT NULL;
CREATE INDEX allocations_node_ami ON allocations (node_id, alloc_modify_index);

-- free_gpuset lists free GPU indexes (hwloc list syntax, like free_cpuset);
-- node_class and meta are operator-given labels for constraints.
ALTER TABLE nodes
    ADD COLUMN free_gpuset text NOT NULL DEFAULT '',
    ADD COLUMN total_disk bigint NOT NULL DEFAULT 0,
    ADD COLUMN free_disk bigint NOT NULL DEFAULT 0,
    ADD COLUMN node_class text,
    ADD COLUMN meta jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN drain boolean NOT NULL DEFAULT false;
ALTER TABLE nodes ADD CHECK (free_gpus >= 0 AND free_gpus <= total_gpus);
ALTER TABLE nodes ADD CHECK (free_disk >= 0 AND free_disk <= total_disk);

-- capacity_index: the node gained room (see 0001). shape_index: the node
-- joined, came back, was made eligible or undrained, grew, or changed its
-- labels — what "Can Never Run" work waits for; freed capacity never helps
-- it. Both are drawn while holding the shared advisory lock that the
-- schedulers take exclusively to block or wake evaluations: while they
-- hold it no such change is half done, so an index drawn after it is
-- greater than every index they could see.
ALTER TABLE nodes ADD COLUMN shape_index bigint NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION nodes_stamp_capacity() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    shape boolean;
BEGIN
    shape := TG_OP = 'INSERT'
       OR (NEW.status = 'ready' AND OLD.status <> 'ready')
       OR (NEW.eligible AND NOT OLD.eligible)
       OR (OLD.drain AND NOT NEW.drain)
       OR NEW.total_cores <> OLD.total_cores
       OR NEW.total_mem <> OLD.total_mem
       OR NEW.total_gpus <> OLD.total_gpus
       OR NEW.total_disk <> OLD.total_disk
       OR NEW.attributes IS DISTINCT FROM OLD.attributes
       OR NEW.meta IS DISTINCT FROM OLD.meta;
    IF shape
       OR NEW.free_cores > OLD.free_cores
       OR NEW.free_mem > OLD.free_mem
       OR NEW.free_gpus > OLD.free_gpus
       OR NEW.free_disk > OLD.free_disk THEN
        PERFORM pg_advisory_xact_lock_shared(4750001);
        NEW.capacity_index := nextval('modify_index_seq');
        IF shape THEN
            NEW.shape_index := NEW.capacity_index;
        END IF;
    END IF;
    RETURN NEW;
END
$$;

-- At most one pending evaluation per job: a new reason to look at a job
-- that already waits for a scheduler adds nothing (INSERT ... ON CONFLICT
-- DO NOTHING), so a storm of events is not a storm of work.
UPDATE evaluations e SET status = 'cancelled',
    status_description = 'superseded'
WHERE status = 'pending' AND EXISTS (
    SELECT 1 FROM evaluations o WHERE o.job_id = e.job_id
    AND o.status = 'pending' AND o.id > e.id);
CREATE UNIQUE INDEX evaluations_one_pending ON evaluations (job_id)
    WHERE status = 'pending';

-- A queue may let its jobs preempt lower-priority work.
ALTER TABLE queues ADD COLUMN preemption boolean NOT NULL DEFAULT false;

-- A rescheduling evaluation may wait (the reschedule policy's delay):
-- schedulers lease it only once wait_until has passed.
ALTER TABLE evaluations ADD COLUMN wait_until timestamptz;

-- What the smallest instance of a blocked evaluation's job needs: only
-- capacity freed on a node that could hold it wakes the evaluation.
-- "never" marks work no ready node could hold even empty: it wakes only
-- on a change of shape_index.
ALTER TABLE evaluations
    ADD COLUMN need_cores integer NOT NULL DEFAULT 0,
    ADD COLUMN need_mem bigint NOT NULL DEFAULT 0,
    ADD COLUMN need_gpus integer NOT NULL DEFAULT 0,
    ADD COLUMN never boolean NOT NULL DEFAULT false;
CREATE INDEX nodes_capacity ON nodes (capacity_index);
CREATE INDEX nodes_shape ON nodes (shape_index);

-- Capacity held for a job: preemption reserves what it evicts for the
-- preemptor, so that the evicted work (requeued at once) cannot take it
-- back first. Every commit leaves reserved capacity alone for jobs of
-- lower or equal priority than the holder; the holder's own placement
-- drops its reservations; they expire on their own.
CREATE TABLE reservations (
    id bigserial PRIMARY KEY,
    job_id bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    node_id bigint NOT NULL REFERENCES nodes (id),
    priority integer NOT NULL,
    cores integer NOT NULL DEFAULT 0,
    mem bigint NOT NULL DEFAULT 0,
    gpus integer NOT NULL DEFAULT 0,
    reason text NOT NULL,
    create_time timestamptz NOT NULL,
    expire_time timestamptz NOT NULL
);
CREATE INDEX reservations_node ON reservations (node_id);
CREATE INDEX reservations_job ON reservations (job_id);

-- Capacity that was not counted as free although it was (held by a plan
-- that never committed, reserved for a job that no longer needs it) wakes
-- blocked work like freed capacity does: a new capacity_index drawn under
-- the shared advisory lock (the trigger keeps an explicitly set value) and
-- NOTIFY capacity.
CREATE FUNCTION drover_wake_nodes(ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF ids IS NULL OR cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(4750001);
    UPDATE nodes SET capacity_index = nextval('modify_index_seq')
        WHERE id = ANY(ids);
    PERFORM pg_notify('capacity', '');
END
$$;

-- Drops a job's reservations (it finished, was deleted, or was placed) and
-- wakes what they held back.
CREATE FUNCTION drover_release_reservations(job bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    freed bigint[];
BEGIN
    WITH gone AS (DELETE FROM reservations WHERE job_id = job
                  RETURNING node_id)
    SELECT array_agg(DISTINCT node_id) INTO freed FROM gone;
    PERFORM drover_wake_nodes(freed);
END
$$;

-- A job that stops waiting for placement (finished, deleted, held) lets go
-- of its reservations, whichever path changed its state.
CREATE FUNCTION jobs_release_reservations() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state NOT IN ('queued', 'running') THEN
        PERFORM drover_release_reservations(NEW.id);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_reservations AFTER UPDATE OF state ON jobs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION jobs_release_reservations();
