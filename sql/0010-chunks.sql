-- Multi-node PBS jobs: pbsdsh tasks and exclusive placement.

-- A pbsdsh task: a command started in a running PBS job on one of its
-- chunks (an allocation) through that node's daemon. qmgr inserts it and
-- moves the allocation's alloc_modify_index, so the node's blocking query
-- returns the allocation with its pending tasks; the daemon runs them as
-- the job owner and reports each end (exit status and captured output),
-- which moves the job's modify_index so that pbsdsh's blocking query on
-- the job returns (qmgr/api-tasks.c, noded/dsh.c).
CREATE TABLE tasks (
    id bigserial PRIMARY KEY,
    job_id bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    alloc_id bigint NOT NULL REFERENCES allocations (id) ON DELETE CASCADE,
    node_id bigint NOT NULL,
    node_index integer NOT NULL, -- PBS_NODENUM: the chunk it runs in
    tasknum integer NOT NULL,    -- PBS_TASKNUM
    argv text[] NOT NULL,
    requested_by text,
    state text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'exited')),
    exit_status integer,
    stdout text,
    stderr text,
    message text,
    create_time timestamptz NOT NULL,
    end_time timestamptz,
    modify_index bigint NOT NULL,
    CHECK ((state = 'exited') = (end_time IS NOT NULL))
);
CREATE INDEX tasks_job ON tasks (job_id, id);
-- What a node's long poll asks for every allocation it answers: one probe
-- of an index that is empty unless pbsdsh is waiting.
CREATE INDEX tasks_pending ON tasks (alloc_id) WHERE state = 'pending';

-- place=...:excl: the job that holds a node exclusively (NULL: none).
-- Set by the scheduler's commit under the node's row lock, which also
-- refuses an exclusive job on a node with any other work and any job on
-- a node held by another; cleared when the holder's last allocation on
-- the node ends (the trigger below, so that no path that ends
-- allocations can forget it). Allocations of exclusive jobs say so
-- (excl), so that the trigger runs only for them.
ALTER TABLE nodes ADD COLUMN excl_job bigint;
ALTER TABLE allocations ADD COLUMN excl boolean NOT NULL DEFAULT false;

CREATE FUNCTION allocations_release_excl() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE nodes SET excl_job = NULL,
           modify_index = nextval('modify_index_seq')
     WHERE id = NEW.node_id AND excl_job = NEW.job_id
       AND NOT EXISTS (SELECT 1 FROM allocations a
                        WHERE a.node_id = NEW.node_id
                          AND a.job_id = NEW.job_id
                          AND a.end_time IS NULL AND a.id <> NEW.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER allocations_excl AFTER UPDATE OF end_time ON allocations
    FOR EACH ROW
    WHEN (NEW.excl AND OLD.end_time IS NULL AND NEW.end_time IS NOT NULL)
    EXECUTE FUNCTION allocations_release_excl();
