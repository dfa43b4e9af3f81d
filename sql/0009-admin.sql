-- Management commands (issue 4 item 7): qsig, qrerun. (pbsnodes -o is the
-- nodes' existing eligibility: no column of its own.)
--
-- qsig: the signal a job's allocations are asked to deliver. signal_seq
-- counts requests (noded delivers each new one once); signal holds the
-- latest, as a name noded understands (a number, or suspend/resume).
ALTER TABLE allocations
    ADD COLUMN signal text,
    ADD COLUMN signal_seq integer NOT NULL DEFAULT 0;

-- qrerun: a job being stopped to run again. Its allocations end with
-- desired_status stop; db_job_end requeues it instead of finishing it.
ALTER TABLE jobs ADD COLUMN rerun_pending boolean NOT NULL DEFAULT false;

-- qalter, qmove: when the job's attributes last changed (PBS's mtime is the
-- latest of this and the job's state times).
ALTER TABLE jobs ADD COLUMN alter_time timestamptz;

