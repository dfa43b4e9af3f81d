-- Native jobs (docs/jobspec.md): the job lifecycle asks, each time one of
-- a job's allocations ends, whether any other is still active. One probe
-- of this partial index answers it, however many allocations the job has
-- (qmgr/lifecycle.c).
CREATE INDEX allocations_job_active ON allocations (job_id)
    WHERE end_time IS NULL;
