-- Real sites' job attributes (issue 4, items 6 and 8): the W state and the
-- execution time that ends it (qsub -a), the operator's custom resources
-- (drover resource create), and the append-only accounting of every job
-- end. Account, project, mail and keep-files settings live in jobs.spec.

-- W (waiting for its execution time, qsub -a): a waiting job has no
-- evaluation; a qmgr timer armed at the earliest execution_time makes it
-- queued (docs/internals/qmgr.md, "Execution times").
ALTER TABLE jobs DROP CONSTRAINT jobs_state_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_state_check
    CHECK (state IN ('queued', 'held', 'running', 'exiting', 'finished',
                     'waiting'));
ALTER TABLE jobs ADD COLUMN execution_time timestamptz;
CREATE INDEX jobs_waiting ON jobs (execution_time) WHERE state = 'waiting';

-- Custom resources declared by the operator (PBS `qmgr -c 'create resource
-- software type=string,flag=h'`). A job may request only built-in
-- resources and these; values are checked against the type at submission.
CREATE TABLE resource_defs (
    name text PRIMARY KEY CHECK (name ~ '^[A-Za-z][A-Za-z0-9_.-]{0,63}$'),
    type text NOT NULL
        CHECK (type IN ('string', 'long', 'float', 'size', 'boolean',
                        'string_array')),
    flags text NOT NULL DEFAULT '',
    create_time timestamptz NOT NULL,
    modify_index bigint NOT NULL
);

-- One row per job end, written by the trigger below in the transaction
-- that sets the job finished, whichever path finishes it (end of its
-- chunk 0, qdel, node lost, nothing to run). Append-only: rows are never
-- updated or deleted. Requested amounts are the job's totals over its
-- chunks; used ones are what the node daemons reported (memory: the
-- largest chunk's peak). eligible_time is when the job last became
-- eligible to run (PBS etime: queued after submission, a release, the end
-- of its -a wait or a requeue).
CREATE TABLE job_accounting (
    id bigserial PRIMARY KEY,
    job_id bigint NOT NULL,
    job_name text NOT NULL,
    owner text NOT NULL,
    group_name text,
    queue text NOT NULL,
    account text,
    project text,
    ncpus integer NOT NULL,
    ngpus integer NOT NULL,
    nodect integer NOT NULL,
    mem_requested bigint NOT NULL,
    walltime_requested bigint NOT NULL,
    mem_used bigint,
    cput_used bigint,
    walltime_used bigint,
    exit_status integer,
    run_count integer NOT NULL,
    exec_host text,
    submit_time timestamptz NOT NULL,
    eligible_time timestamptz,
    start_time timestamptz,
    end_time timestamptz NOT NULL
);
CREATE INDEX job_accounting_end ON job_accounting (end_time);
CREATE INDEX job_accounting_owner ON job_accounting (owner, end_time);
CREATE INDEX job_accounting_account ON job_accounting (account, end_time)
    WHERE account IS NOT NULL;
CREATE INDEX job_accounting_project ON job_accounting (project, end_time)
    WHERE project IS NOT NULL;
CREATE INDEX job_accounting_queue ON job_accounting (queue, end_time);
CREATE INDEX job_accounting_job ON job_accounting (job_id);

CREATE FUNCTION jobs_account_end() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_accounting (job_id, job_name, owner, group_name, queue,
        account, project, ncpus, ngpus, nodect, mem_requested,
        walltime_requested, mem_used, cput_used, walltime_used, exit_status,
        run_count, exec_host, submit_time, eligible_time, start_time,
        end_time)
    VALUES (NEW.id, NEW.name, NEW.owner, NEW.spec->>'group', NEW.queue,
        NEW.spec->>'account', NEW.spec->>'project', NEW.ncpus, NEW.ngpus,
        NEW.nodect, NEW.mem, NEW.walltime, NEW.used_mem, NEW.used_cput,
        NEW.used_walltime, NEW.exit_status, NEW.run_count, NEW.exec_host,
        NEW.submit_time, NEW.queue_time, NEW.start_time,
        coalesce(NEW.end_time, NEW.queue_time));
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_accounting AFTER UPDATE OF state ON jobs
    FOR EACH ROW WHEN (NEW.state = 'finished'
                       AND OLD.state IS DISTINCT FROM 'finished')
    EXECUTE FUNCTION jobs_account_end();

CREATE FUNCTION job_accounting_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'job_accounting is append-only';
END
$$;
CREATE TRIGGER job_accounting_append_only
    BEFORE UPDATE OR DELETE ON job_accounting
    FOR EACH ROW EXECUTE FUNCTION job_accounting_append_only();
