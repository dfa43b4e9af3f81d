-- Drover's core tables: the cluster's name, queues, jobs, evaluations,
-- nodes and allocations. Every row change stamps modify_index from one
-- global sequence, so that "everything since index N" is one indexed read
-- (blocking queries, scheduler snapshots). Times are written by the
-- components from Drover's clock (lib/clock.h); now() decides nothing.

CREATE SEQUENCE modify_index_seq;
CREATE SEQUENCE job_id_seq MINVALUE 1 START 1;

-- One row: the server name shown in job ids ("123.<name>"), set by the
-- first `drover-qmgr migrate`.
CREATE TABLE cluster (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    name text NOT NULL
);

CREATE TABLE queues (
    name text PRIMARY KEY,
    priority integer NOT NULL DEFAULT 0,
    enabled boolean NOT NULL DEFAULT true,
    started boolean NOT NULL DEFAULT true,
    is_default boolean NOT NULL DEFAULT false,
    modify_index bigint NOT NULL DEFAULT nextval('modify_index_seq')
);
CREATE UNIQUE INDEX queues_one_default ON queues (is_default) WHERE is_default;
INSERT INTO queues (name, is_default) VALUES ('workq', true);

-- A job: the validated spec as jsonb plus the columns that queries filter,
-- sort or schedule on. state: queued (Q), held (H), running (R), exiting
-- (E: stopping after qdel or at its end), finished (F).
CREATE TABLE jobs (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    owner text NOT NULL,
    queue text NOT NULL REFERENCES queues (name),
    type text NOT NULL DEFAULT 'batch'
        CHECK (type IN ('batch', 'service', 'system')),
    priority integer NOT NULL DEFAULT 0,
    state text NOT NULL
        CHECK (state IN ('queued', 'held', 'running', 'exiting', 'finished')),
    hold_types text NOT NULL DEFAULT '',
    rerunnable boolean NOT NULL DEFAULT true,
    spec jsonb NOT NULL,
    ncpus integer NOT NULL,
    mem bigint NOT NULL DEFAULT 0,
    ngpus integer NOT NULL DEFAULT 0,
    nodect integer NOT NULL DEFAULT 1,
    walltime bigint NOT NULL DEFAULT 0,
    depend text,
    idempotency_key text,
    submit_time timestamptz NOT NULL,
    queue_time timestamptz NOT NULL,
    start_time timestamptz,
    end_time timestamptz,
    exit_status integer,
    exec_host text,
    comment text,
    run_count integer NOT NULL DEFAULT 0,
    used_cput bigint,
    used_walltime bigint,
    used_mem bigint,
    modify_index bigint NOT NULL,
    UNIQUE (owner, idempotency_key)
);
CREATE INDEX jobs_active ON jobs (state, id) WHERE state <> 'finished';
CREATE INDEX jobs_owner ON jobs (owner, id);
CREATE INDEX jobs_queue ON jobs (queue, id) WHERE state <> 'finished';
CREATE INDEX jobs_modify ON jobs (modify_index);
ALTER TABLE jobs SET (autovacuum_vacuum_scale_factor = 0.05,
                      autovacuum_analyze_scale_factor = 0.05);

-- Why a scheduler must look at a job again. pending -> leased (lease_owner,
-- lease_deadline) -> complete | blocked | failed; cancelled when superseded
-- or when the job no longer needs placing. A leased evaluation whose lease
-- expired is returned to pending. blocked_index is the highest node
-- capacity_index the planner had seen: capacity freed after it wakes the
-- evaluation.
CREATE TABLE evaluations (
    id bigserial PRIMARY KEY,
    job_id bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    triggered_by text NOT NULL,
    status text NOT NULL
        CHECK (status IN ('pending', 'leased', 'blocked', 'complete',
                          'failed', 'cancelled')),
    priority integer NOT NULL DEFAULT 0,
    lease_owner text,
    lease_deadline timestamptz,
    blocked_index bigint,
    status_description text,
    attempts integer NOT NULL DEFAULT 0,
    create_time timestamptz NOT NULL,
    modify_index bigint NOT NULL
);
CREATE INDEX evaluations_pending ON evaluations (priority DESC, id)
    WHERE status = 'pending';
CREATE INDEX evaluations_leased ON evaluations (lease_deadline)
    WHERE status = 'leased';
CREATE INDEX evaluations_blocked ON evaluations (blocked_index)
    WHERE status = 'blocked';
CREATE INDEX evaluations_job ON evaluations (job_id);
ALTER TABLE evaluations SET (autovacuum_vacuum_scale_factor = 0.02,
                             autovacuum_analyze_scale_factor = 0.02);

-- A node: identity, fingerprint, totals and free capacity. free_cpuset
-- lists the free core indexes in hwloc list syntax ("0-3,6"); free_cores
-- is its weight. status: ready, down. eligible: false when drained.
CREATE TABLE nodes (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    datacenter text NOT NULL DEFAULT 'dc1',
    pool text NOT NULL DEFAULT 'default',
    status text NOT NULL CHECK (status IN ('ready', 'down')),
    eligible boolean NOT NULL DEFAULT true,
    address text,
    attributes jsonb NOT NULL DEFAULT '{}',
    topology jsonb NOT NULL DEFAULT '{}',
    total_cores integer NOT NULL,
    total_mem bigint NOT NULL,
    total_gpus integer NOT NULL DEFAULT 0,
    free_cores integer NOT NULL,
    free_mem bigint NOT NULL,
    free_gpus integer NOT NULL DEFAULT 0,
    free_cpuset text NOT NULL,
    heartbeat_ttl double precision NOT NULL,
    heartbeat_deadline timestamptz NOT NULL,
    register_time timestamptz NOT NULL,
    status_time timestamptz NOT NULL,
    comment text,
    modify_index bigint NOT NULL,
    capacity_index bigint NOT NULL DEFAULT 0,
    CHECK (free_cores >= 0 AND free_cores <= total_cores),
    CHECK (free_mem >= 0 AND free_mem <= total_mem)
);
CREATE INDEX nodes_heartbeat ON nodes (heartbeat_deadline)
    WHERE status = 'ready';
CREATE INDEX nodes_modify ON nodes (modify_index);

-- capacity_index moves only when a node gains room (capacity freed, node
-- added, back up, made eligible, grown). Blocked evaluations compare their
-- blocked_index with max(capacity_index), so placements, which only take
-- capacity, never wake blocked work. A trigger, so that no writer of nodes
-- can forget it.
CREATE FUNCTION nodes_stamp_capacity() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT'
       OR NEW.free_cores > OLD.free_cores
       OR NEW.free_mem > OLD.free_mem
       OR NEW.free_gpus > OLD.free_gpus
       OR (NEW.status = 'ready' AND OLD.status <> 'ready')
       OR (NEW.eligible AND NOT OLD.eligible)
       OR NEW.total_cores <> OLD.total_cores
       OR NEW.total_mem <> OLD.total_mem THEN
        NEW.capacity_index := nextval('modify_index_seq');
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER nodes_capacity BEFORE INSERT OR UPDATE ON nodes
    FOR EACH ROW EXECUTE FUNCTION nodes_stamp_capacity();

-- One placement of one chunk of a job on one node, with the exact cores
-- granted (core indexes, hwloc list syntax). Chunk 0 runs the job script.
-- desired_status is what the servers want (run, stop); client_status what
-- the node reports (pending, running, complete, failed, lost).
CREATE TABLE allocations (
    id bigserial PRIMARY KEY,
    job_id bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    node_id bigint NOT NULL REFERENCES nodes (id),
    eval_id bigint,
    chunk_index integer NOT NULL DEFAULT 0,
    ncpus integer NOT NULL,
    mem bigint NOT NULL DEFAULT 0,
    ngpus integer NOT NULL DEFAULT 0,
    cpuset text NOT NULL,
    desired_status text NOT NULL CHECK (desired_status IN ('run', 'stop')),
    desired_description text,
    client_status text NOT NULL
        CHECK (client_status IN ('pending', 'running', 'complete', 'failed',
                                 'lost')),
    exit_status integer,
    message text,
    used_cput bigint,
    used_mem bigint,
    create_time timestamptz NOT NULL,
    start_time timestamptz,
    end_time timestamptz,
    modify_index bigint NOT NULL,
    CHECK ((end_time IS NULL) = (client_status IN ('pending', 'running')))
);
-- "Active" is end_time IS NULL (the CHECK makes it the same as client
-- status pending or running): a node's "running" report then changes no
-- column any index refers to, and can be a HOT update.
CREATE INDEX allocations_node_active ON allocations (node_id)
    WHERE end_time IS NULL;
CREATE INDEX allocations_job ON allocations (job_id);
ALTER TABLE allocations SET (autovacuum_vacuum_scale_factor = 0.05,
                             autovacuum_analyze_scale_factor = 0.05,
                             fillfactor = 50);
