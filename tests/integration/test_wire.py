"""Where issue 4's merged parts meet, with real daemons: dependencies and
execution times (a job released by its dependencies or by qrls while its
-a time is ahead is W, not Q; a W job given dependencies is H and the
execution-time timer leaves it alone), qalter -W depend replacing a job's
dependency edges, and a scheduler whose plan was computed before a qalter
committed (its commit refuses the stale plan).

Targets wait for a file the test creates, so that no test depends on how
fast anything runs; times ahead are checked against the rows' own times,
never against a sleep."""

import os
import subprocess
import time

from harness import PSQL, check, cluster, run_tests, wait_until

C = None


def seq(jobid):
    return str(jobid).split(".")[0]


def full(jobid):
    return "%s.%s" % (seq(jobid), C.server)


def qstat_f(jobid):
    out = C.run("qstat", ["-x", "-f", "-w", jobid])
    check(out.returncode == 0, "qstat -f %s: %s" % (jobid, out.stderr))
    return out.stdout


def exec_time(ahead):
    """qsub -a text for now + ahead seconds (CCYYMMDDhhmm.SS, local)."""
    t = int(time.time()) + ahead
    return time.strftime("%Y%m%d%H%M.%S", time.localtime(t)), t


def gate(name):
    """A path the test creates to let a target job end."""
    return os.path.join(C.dir, "gate-" + name)


def waiter(path, *args):
    """A job that runs until path exists, then exits 0."""
    return list(args) + ["--", "/bin/sh", "-c",
                         "while [ ! -e %s ]; do sleep 0.05; done" % path]


def open_gate(path):
    with open(path, "w"):
        pass


def run_ok(cmd, *args):
    out = C.run(cmd, list(args))
    check(out.returncode == 0, "%s %s: %d %s" % (cmd, " ".join(args),
                                                   out.returncode, out.stderr))
    return out


def edges(jid):
    return C.sql("SELECT target, type FROM job_depends WHERE dependent = %s "
                 "ORDER BY target, type" % seq(jid))


def started_at_or_after_exec_time(jid):
    rows = C.sql("SELECT start_time >= execution_time FROM jobs "
                 "WHERE id = %s" % seq(jid))
    return rows == [["t"]]


# --- 1. dependencies x execution times ---

def test_released_by_dependency_before_exec_time_is_waiting():
    g = gate("dep-w")
    a = C.submit(waiter(g))
    C.wait_state(a, "running", 30)
    when_text, when = exec_time(15)
    b = C.submit(["-a", when_text, "-W", "depend=afterok:%s" % a, "--",
                  "/bin/true"])
    # PBS: H while the dependency is unmet, whatever Execution_Time says
    j = C.job(b)
    check(j["state"] == "held" and j["hold_types"] == "s", j)
    f = qstat_f(b)
    check("job_state = H" in f and "Execution_Time = " in f, f)
    open_gate(g)
    C.wait_state(a, "finished", 30)
    # released by its dependency while the time is still ahead: W, not Q
    j = C.job(b)
    check(j["state"] == "waiting", "released into %r before its execution "
          "time (%d, now %.0f)" % (j["state"], when, time.time()))
    check(j["hold_types"] == "", j)
    rows = C.sql("SELECT count(*) FROM evaluations WHERE job_id = %s"
                 % seq(b))
    check(rows == [["0"]], "a W job has no evaluation: %r" % rows)
    check("job_state = W" in qstat_f(b), qstat_f(b))
    # the NOTIFY waiting armed a timer: it runs at its time, not before
    j = C.wait_state(b, "finished", 40)
    check(j["exit_status"] == 0, j)
    check(started_at_or_after_exec_time(b), "started before its -a time")


def test_released_by_dependency_after_exec_time_is_queued():
    g = gate("dep-q")
    a = C.submit(waiter(g))
    C.wait_state(a, "running", 30)
    past = time.strftime("%Y%m%d%H%M", time.localtime(time.time() - 3600))
    b = C.submit(["-a", past, "-W", "depend=afterok:%s" % a, "--",
                  "/bin/true"])
    check(C.job(b)["state"] == "held")
    open_gate(g)
    j = C.wait_state(b, "finished", 30)
    check(j["exit_status"] == 0, j)
    rows = C.sql("SELECT triggered_by FROM evaluations WHERE job_id = %s"
                 % seq(b))
    check(rows == [["job-depend"]], rows)


def test_qrls_of_system_hold_before_exec_time_is_waiting():
    when_text, _ = exec_time(3600)
    jid = C.submit(["-a", when_text, "--", "/bin/true"])
    check(C.job(jid)["state"] == "waiting")
    run_ok("qhold", "-h", "s", jid)
    check(C.job(jid)["state"] == "held")
    run_ok("qrls", "-h", "s", jid)
    check(C.job(jid)["state"] == "waiting", C.job(jid))
    run_ok("qdel", jid)


def test_waiting_job_given_dependencies_is_not_released_by_timer():
    g = gate("w-dep")
    a = C.submit(waiter(g))
    C.wait_state(a, "running", 30)
    when_text, when = exec_time(8)
    b = C.submit(["-a", when_text, "--", "/bin/true"])
    check(C.job(b)["state"] == "waiting")
    run_ok("qalter", "-W", "depend=afterok:%s" % a, b)
    j = C.job(b)
    check(j["state"] == "held" and j["hold_types"] == "s", j)
    # A later W job: once the timer has released it, it has passed b's
    # time too (it releases the due jobs earliest first).
    later_text, _ = exec_time(10)
    probe = C.submit(["-a", later_text, "--", "/bin/true"])
    C.wait_state(probe, "finished", 40)
    j = C.job(b)
    check(j["state"] == "held", "the timer released a job with unmet "
          "dependencies: %r" % j)
    open_gate(g)
    # its time is past now: released by the dependency straight to Q
    j = C.wait_state(b, "finished", 30)
    check(j["exit_status"] == 0, j)


# --- 2. qalter -W depend ---

def test_qalter_depend_adds_edges_to_queued_job():
    g = gate("alter-add")
    a = C.submit(waiter(g))
    C.wait_state(a, "running", 30)
    # queued, but too big for any node: it stays queued
    b = C.submit(["-l", "ncpus=8", "--", "/bin/true"])
    check(C.job(b)["state"] == "queued")
    run_ok("qalter", "-W", "depend=afterok:%s" % seq(a), b)
    j = C.job(b)
    check(j["state"] == "held" and j["hold_types"] == "s", j)
    check(edges(b) == [[seq(a), "afterok"]], edges(b))
    f = qstat_f(b)
    check("depend = afterok:%s@%s\n" % (full(a), C.server) in f, f)
    check("comment = Job held: waiting for its dependencies" in f, f)
    rows = C.sql("SELECT count(*) FROM evaluations WHERE job_id = %s "
                 "AND status IN ('pending', 'blocked')" % seq(b))
    check(rows == [["0"]], "a held job keeps no evaluation: %r" % rows)
    run_ok("qalter", "-l", "ncpus=1", b)  # fits once released
    open_gate(g)
    j = C.wait_state(b, "finished", 30)
    check(j["exit_status"] == 0, j)


def test_qalter_depend_replaces_edges():
    ga, gb = gate("rep-a"), gate("rep-b")
    a = C.submit(waiter(ga))
    b = C.submit(waiter(gb))
    C.wait_state(a, "running", 30)
    C.wait_state(b, "running", 30)
    d = C.submit(["-W", "depend=afterok:%s" % a, "--", "/bin/true"])
    check(edges(d) == [[seq(a), "afterok"]], edges(d))
    run_ok("qalter", "-W", "depend=afterany:%s" % b, d)
    check(edges(d) == [[seq(b), "afterany"]], "edges %r" % edges(d))
    check("depend = afterany:%s@%s\n" % (full(b), C.server) in qstat_f(d),
          qstat_f(d))
    # the old target's end no longer releases it
    open_gate(ga)
    C.wait_state(a, "finished", 30)
    j = C.job(d)
    check(j["state"] == "held", "released by a replaced dependency: %r" % j)
    open_gate(gb)
    j = C.wait_state(d, "finished", 30)
    check(j["exit_status"] == 0, j)


def test_qalter_depend_all_met_releases():
    done = C.submit(["--", "/bin/true"])
    C.wait_state(done, "finished", 30)
    g = gate("met")
    a = C.submit(waiter(g))
    C.wait_state(a, "running", 30)
    d = C.submit(["-W", "depend=afterok:%s" % a, "--", "/bin/true"])
    check(C.job(d)["state"] == "held")
    # every new dependency is met already: released and run
    run_ok("qalter", "-W", "depend=afterok:%s" % done, d)
    check(edges(d) == [], edges(d))
    j = C.wait_state(d, "finished", 30)
    check(j["exit_status"] == 0, j)
    check("depend =" not in qstat_f(d), qstat_f(d))
    # a user hold stays when the dependency hold goes
    e = C.submit(["-h", "-W", "depend=afterok:%s" % a, "--", "/bin/true"])
    check(C.job(e)["hold_types"] == "us", C.job(e))
    run_ok("qalter", "-W", "depend=afterany:%s" % done, e)
    j = C.job(e)
    check(j["state"] == "held" and j["hold_types"] == "u", j)
    # released with its -a time ahead: W
    when_text, _ = exec_time(3600)
    w = C.submit(["-a", when_text, "-W", "depend=afterok:%s" % a, "--",
                  "/bin/true"])
    check(C.job(w)["state"] == "held")
    run_ok("qalter", "-W", "depend=afterok:%s" % done, w)
    check(C.job(w)["state"] == "waiting", C.job(w))
    for jid in (e, w):
        run_ok("qdel", jid)
    open_gate(g)
    C.wait_state(a, "finished", 30)


def test_qalter_depend_refusals():
    failed = C.submit(["--", "/bin/false"])
    C.wait_state(failed, "finished", 30)
    g = gate("refuse")
    a = C.submit(waiter(g))
    C.wait_state(a, "running", 30)
    d = C.submit(["-h", "--", "/bin/true"])
    # can never be met: refused, the job left as it was (PBS's qsub would
    # delete a new job; qalter does not delete an existing one)
    out = C.run("qalter", ["-W", "depend=afterok:%s" % failed, d])
    check(out.returncode == 206 and
          out.stderr.startswith("qalter: Invalid Job Dependency"),
          "%d %r" % (out.returncode, out.stderr))
    j = C.job(d)
    check(j["state"] == "held" and j["hold_types"] == "u", j)
    out = C.run("qalter", ["-W", "depend=beforeok:%s" % a, d])
    check(out.returncode == 206, "%d %r" % (out.returncode, out.stderr))
    out = C.run("qalter", ["-W", "depend=afterok:999999", d])
    check(out.returncode == 153 and "Unknown Job Id" in out.stderr,
          "%d %r" % (out.returncode, out.stderr))
    out = C.run("qalter", ["-W", "depend=afterok:%s" % d, d])
    check(out.returncode == 206, "%d %r" % (out.returncode, out.stderr))
    check(edges(d) == [], edges(d))
    # a running job's dependencies cannot change (PBS)
    out = C.run("qalter", ["-W", "depend=afterok:%s" % d, a])
    check(out.returncode == 167, "%d %r" % (out.returncode, out.stderr))
    run_ok("qdel", d)
    open_gate(g)
    C.wait_state(a, "finished", 30)


# --- 3. qalter between a scheduler's plan and its commit ---

def test_qalter_between_plan_and_commit_replans():
    """A transaction holding the node's row makes the scheduler's commit
    wait after it has planned; qalter commits meanwhile (it locks only the
    job row); the commit must then refuse the stale plan."""
    lock = subprocess.Popen([PSQL, C.conninfo, "-XAtq"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lock.stdin.write("BEGIN;\nSELECT count(*) FROM (SELECT id FROM nodes "
                         "FOR UPDATE) s;\n")
        lock.stdin.flush()
        check(lock.stdout.readline().strip() == "1", "node rows locked")
        jid = C.submit(["-l", "ncpus=4", "--", "/bin/true"])

        def commit_waits():
            return C.sql("SELECT count(*) FROM pg_stat_activity "
                         "WHERE wait_event_type = 'Lock' "
                         "AND query LIKE '%free_cores = total_cores%'"
                         ) != [["0"]]
        wait_until(commit_waits, 30, what="the scheduler's commit to wait: "
                   + repr(C.sql("SELECT wait_event_type, left(query, 60) "
                                "FROM pg_stat_activity")))
        run_ok("qalter", "-l", "ncpus=1", jid)
        lock.stdin.write("ROLLBACK;\n")
        lock.stdin.close()
        lock.wait(30)
    finally:
        if lock.poll() is None:
            lock.kill()
            lock.wait()
    j = C.wait_state(jid, "finished", 30)
    check(j["exit_status"] == 0, j)
    st, ans = C.api("GET", "/v1/jobs/%s/allocations" % seq(jid))
    check(st == 200, ans)
    cores = [a["cores"] for a in ans["allocations"]]
    check(cores == [1], "placed with the old request: %r" % cores)
    rows = C.sql("SELECT status_description FROM evaluations "
                 "WHERE job_id = %s ORDER BY id" % seq(jid))
    check(["job altered since planned"] in rows, rows)


def main():
    global C
    with cluster("wire", nodes=1) as c:
        C = c
        return run_tests([
            test_released_by_dependency_before_exec_time_is_waiting,
            test_released_by_dependency_after_exec_time_is_queued,
            test_qrls_of_system_hold_before_exec_time_is_waiting,
            test_waiting_job_given_dependencies_is_not_released_by_timer,
            test_qalter_depend_adds_edges_to_queued_job,
            test_qalter_depend_replaces_edges,
            test_qalter_depend_all_met_releases,
            test_qalter_depend_refusals,
            test_qalter_between_plan_and_commit_replans,
        ])


if __name__ == "__main__":
    raise SystemExit(main())
