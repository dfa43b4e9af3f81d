-- Where dependencies and execution times meet (issue 4; docs/internals/
-- qmgr.md "Dependencies and execution times"). PBS: a job held (by its
-- dependencies or otherwise) shows H whatever its Execution_Time; when its
-- last hold goes it is W while Execution_Time is still ahead, else Q.
--
-- Every path that releases a held job into 'queued' (drover_depend_resolve
-- when the last dependency is met, qrls, qalter) sets queue_time to the
-- release's time (Drover's clock, never now()). This trigger turns such a
-- release into 'waiting' when the execution time is later than that, and
-- sends the NOTIFY waiting that arms the qmgrs' timers. A W job therefore
-- never has dependency edges (they keep it held), and the timer, which
-- only reads 'waiting' rows, never releases a job whose dependencies are
-- unmet. The releasing path sees the state it wrote change: the
-- evaluation drover_depend_resolve inserts is for 'queued' rows only.
-- Not a replacement of drover_depend_resolve, so that other changes to
-- that function merge without conflict.
CREATE FUNCTION jobs_release_waiting() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.state := 'waiting';
    PERFORM pg_notify('waiting',
                      extract(epoch FROM NEW.execution_time)::text);
    RETURN NEW;
END
$$;
CREATE TRIGGER jobs_release_waiting BEFORE UPDATE OF state ON jobs
    FOR EACH ROW WHEN (OLD.state = 'held' AND NEW.state = 'queued'
                       AND NEW.execution_time > NEW.queue_time)
    EXECUTE FUNCTION jobs_release_waiting();
