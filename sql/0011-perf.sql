-- Status queries without full scans (issue 4, item 9).
--
-- qstat -u USER and GET /v1/jobs?owner=USER list one owner's active jobs
-- in id order. jobs_active (state, id) walks every queued job of every
-- user to find them, and jobs_owner (owner, id) walks the owner's finished
-- history too; this partial index holds only active jobs, by owner.
CREATE INDEX jobs_owner_active ON jobs (owner, id) WHERE state <> 'finished';
