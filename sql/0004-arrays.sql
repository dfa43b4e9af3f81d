-- Job arrays (qsub -J X-Y[:Z][%max]). An array is ONE jobs row (its
-- spec has "array") plus one job_arrays row: the range and the cap. No
-- row exists per subjob until it is placed: a subjob gets a subjobs row
-- when a scheduler places it (or when it is deleted before it ran), and
-- its chunks are allocations carrying its array_index. The queued
-- remainder is every index of the range without a row, plus rows put
-- back to 'queued' (a lost or preempted subjob). next_index is a cursor:
-- no index below it lacks a row, so the schedulers look for unplaced
-- indexes from there.
--
-- Subjob states: queued (Q: requeued), running (R), exiting (E: being
-- stopped), finished (X). The array's own jobs.state stays in the core
-- set: queued (Q) until a subjob starts, running while any has begun and
-- not all are done (shown B), finished (F) when every subjob is.
CREATE TABLE job_arrays (
    job_id bigint PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    first_index integer NOT NULL,
    last_index integer NOT NULL,
    step integer NOT NULL CHECK (step >= 1),
    max_run integer NOT NULL DEFAULT 0,
    total integer NOT NULL,
    next_index integer NOT NULL,
    -- counted as subjobs finish (the job row is locked meanwhile), so
    -- that an array's end costs no scan of its subjobs: how many are done
    -- (X), and whether one that ran (not deleted) exited non-zero or with
    -- a PBS error (negative): the array's Exit_status 0, 1 or 2.
    done integer NOT NULL DEFAULT 0,
    any_nonzero boolean NOT NULL DEFAULT false,
    any_error boolean NOT NULL DEFAULT false,
    modify_index bigint NOT NULL
);

CREATE TABLE subjobs (
    job_id bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    array_index integer NOT NULL,
    state text NOT NULL
        CHECK (state IN ('queued', 'running', 'exiting', 'finished')),
    exit_status integer,
    exec_host text,
    comment text,
    run_count integer NOT NULL DEFAULT 0,
    start_time timestamptz,
    end_time timestamptz,
    used_cput bigint,
    used_walltime bigint,
    used_mem bigint,
    deleted boolean NOT NULL DEFAULT false,
    modify_index bigint NOT NULL,
    PRIMARY KEY (job_id, array_index)
);
-- The %max check at commit and the requeued ones: active subjobs only.
CREATE INDEX subjobs_active ON subjobs (job_id, state)
    WHERE state <> 'finished';

-- The subjob an allocation belongs to (NULL: not an array job).
ALTER TABLE allocations ADD COLUMN array_index integer;
CREATE INDEX allocations_subjob ON allocations (job_id, array_index)
    WHERE array_index IS NOT NULL AND end_time IS NULL;
