"""Scheduling safety: two schedulers on one small node never overcommit it
and never grant one core twice; a scheduler that dies holding a lease loses
nothing (its evaluations are taken over after the lease) and doubles
nothing; blocked work starts when capacity frees."""

import signal
import threading
import time

from harness import check, cluster, run_tests, wait_until


def sample_overcommit(c, stop, problems):
    """Polls PostgreSQL for overcommitted nodes and shared cores."""
    over = ("SELECT n.name, n.total_cores, sum(a.ncpus) FROM allocations a "
            "JOIN nodes n ON n.id = a.node_id "
            "WHERE a.client_status IN ('pending','running') "
            "GROUP BY n.name, n.total_cores HAVING sum(a.ncpus) > n.total_cores")
    # every granted core, ranges ("0-3") expanded
    shared = ("WITH cores AS (SELECT a.node_id, g AS core FROM allocations a, "
              "unnest(string_to_array(a.cpuset, ',')) r, generate_series("
              "split_part(r, '-', 1)::int, coalesce(nullif(split_part(r, '-', 2), "
              "''), split_part(r, '-', 1))::int) g "
              "WHERE a.client_status IN ('pending','running')) "
              "SELECT node_id, core, count(*) FROM cores "
              "GROUP BY node_id, core HAVING count(*) > 1")
    while not stop.is_set():
        for q in (over, shared):
            rows = c.sql(q)
            if rows:
                problems.append(rows)
        time.sleep(0.05)


def test_two_schedulers_never_overcommit():
    with cluster("twosched", scheds=2, node_topology="pack:1 core:2 pu:1",
                 sched_args=["--batch", "2"]) as c:
        stop = threading.Event()
        problems = []
        t = threading.Thread(target=sample_overcommit, args=(c, stop, problems))
        t.start()
        try:
            ids = [c.submit(["-l", "ncpus=1", "--", "/bin/sleep", "0.5"])
                   for _ in range(16)]
            ids += [c.submit(["-l", "ncpus=2", "--", "/bin/sleep", "0.3"])
                    for _ in range(4)]
            for jid in ids:
                j = c.wait_state(jid, "finished", 120)
                check(j["exit_status"] == 0, "%s exit %r" % (jid, j["exit_status"]))
        finally:
            stop.set()
            t.join()
        check(not problems, "overcommit or shared cores seen: %r" % problems[:3])
        # each job placed exactly once
        rows = c.sql("SELECT job_id, count(*) FROM allocations "
                     "GROUP BY job_id HAVING count(*) <> 1")
        check(rows == [], "jobs placed more than once: %r" % rows)


def test_scheduler_dies_holding_lease():
    with cluster("lease", scheds=0, sched_args=["--lease", "2s"]) as c:
        jid = c.submit(["--", "/bin/true"])
        # A scheduler that leased the evaluation and died before planning.
        c.sql("UPDATE evaluations SET status = 'leased', lease_owner = 'dead/0', "
              "lease_deadline = clock_timestamp() + interval '2 seconds'")
        c.start_sched()
        time.sleep(1)
        check(c.job(jid)["state"] == "queued", "placed while leased elsewhere")
        j = c.wait_state(jid, "finished", 30)
        check(j["exit_status"] == 0 and j["run_count"] == 1, repr(j))


def test_scheduler_killed_mid_flight():
    with cluster("schedkill", scheds=1, node_topology="pack:1 core:4 pu:1",
                 sched_args=["--lease", "3s"]) as c:
        ids = [c.submit(["--", "/bin/sleep", "0.2"]) for _ in range(30)]
        time.sleep(0.3)
        c.scheds[0].kill()          # SIGKILL: no clean-up at all
        c.start_sched()
        for jid in ids:
            j = c.wait_state(jid, "finished", 120)
            check(j["exit_status"] == 0, "%s: %r" % (jid, j))
            check(j["run_count"] == 1, "%s ran %d times" % (jid, j["run_count"]))
        rows = c.sql("SELECT job_id FROM allocations GROUP BY job_id "
                     "HAVING count(*) > 1")
        check(rows == [], "doubled placements: %r" % rows)


def test_blocked_job_starts_when_capacity_frees():
    with cluster("blocked", node_topology="pack:1 core:2 pu:1") as c:
        big = c.submit(["-l", "ncpus=2", "--", "/bin/sleep", "3"])
        c.wait_state(big, "running", 20)
        nxt = c.submit(["-l", "ncpus=2", "--", "/bin/true"])
        time.sleep(1.5)
        j = c.job(nxt)
        check(j["state"] == "queued", j["state"])
        check((j.get("comment") or "").startswith(
            "Not Running: Insufficient amount of resource: ncpus"), j.get("comment"))
        ev = c.sql("SELECT status FROM evaluations WHERE job_id = %s"
                   % nxt.split(".")[0])
        check(["blocked"] in ev, ev)
        j = c.wait_state(nxt, "finished", 30)
        check(j["exit_status"] == 0)
        never = c.submit(["-l", "ncpus=64", "--", "/bin/true"])
        wait_until(lambda: (c.job(never).get("comment") or "").startswith(
            "Can Never Run"), 10, what="Can Never Run comment")
        # Work that can never fit is not re-planned when capacity frees:
        # only a change of the cluster's shape could help it.
        tries = c.sql("SELECT sum(attempts) FROM evaluations WHERE job_id = %s"
                      % never.split(".")[0])
        for _ in range(3):
            j = c.submit(["-l", "ncpus=2", "--", "/bin/true"])
            c.wait_state(j, "finished", 30)
        time.sleep(1.5)
        again = c.sql("SELECT sum(attempts) FROM evaluations WHERE job_id = %s"
                      % never.split(".")[0])
        check(again == tries, "never-fit job re-planned: %r -> %r"
              % (tries, again))


def test_hold_release_while_leased_keeps_evaluations_unique():
    """A job held and released while a scheduler holds its evaluation gets a
    second one. With the node full, both end up blocked; when capacity
    frees, waking them must not trip over the one-pending-per-job rule and
    freeze every blocked job."""
    with cluster("evals-unique", scheds=0, node_topology="pack:1 core:1 pu:1",
                 sched_args=["--lease", "2s"]) as c:
        busy = c.submit(["--", "/bin/sleep", "4"])
        x = c.submit(["--", "/bin/true"])
        xid = x.split(".")[0]
        c.sql("UPDATE evaluations SET status = 'leased', "
              "lease_owner = 'ghost/0', "
              "lease_deadline = clock_timestamp() + interval '2 seconds' "
              "WHERE job_id = %s" % xid)
        check(c.run("qhold", [x]).returncode == 0)
        check(c.run("qrls", [x]).returncode == 0)
        rows = c.sql("SELECT status FROM evaluations WHERE job_id = %s "
                     "ORDER BY id" % xid)
        check(rows == [["leased"], ["pending"]], rows)
        c.start_sched()
        c.wait_state(busy, "running", 20)
        other = c.submit(["--", "/bin/true"])
        for jid in (x, other):
            j = c.wait_state(jid, "finished", 40)
            check(j["exit_status"] == 0 and j["run_count"] == 1, repr(j))
        rows = c.sql("SELECT job_id, count(*) FROM evaluations "
                     "WHERE status IN ('pending', 'leased', 'blocked') "
                     "GROUP BY job_id")
        check(rows == [], "evaluations left: %r" % rows)

def test_preemption_requeues_lower_priority_work():
    """A high-priority job in a queue that allows preemption evicts the
    fewest, lowest-priority allocations; the evicted PBS job is requeued,
    not lost, and runs again once there is room."""
    with cluster("preempt", node_topology="pack:1 core:2 pu:1") as c:
        c.sql("UPDATE queues SET preemption = true WHERE name = 'workq'")
        low = c.submit(["-p", "-10", "-l", "ncpus=1", "--", "/bin/sleep", "60"])
        lower = c.submit(["-p", "-20", "-l", "ncpus=1", "--", "/bin/sleep",
                          "60"])
        c.wait_state(low, "running", 20)
        c.wait_state(lower, "running", 20)
        high = c.submit(["-p", "100", "-l", "ncpus=1", "--", "/bin/sleep",
                         "1"])
        # the lowest priority one goes, the other keeps running
        c.wait_state(lower, "queued", 30)
        why = c.sql("SELECT triggered_by FROM evaluations WHERE job_id = %s "
                    "ORDER BY id" % lower.split(".")[0])
        check(["alloc-stopped"] in why, "not requeued by preemption: %r" % why)
        check(c.job(low)["state"] == "running", "the wrong victim")
        j = c.wait_state(high, "finished", 30)
        check(j["exit_status"] == 0, repr(j))
        j = c.wait_state(lower, "running", 30)
        check(j["run_count"] == 2, "requeued job did not run again: %r" % j)
        for jid in (low, lower):
            c.run("qdel", [jid])


def main():
    return run_tests([test_two_schedulers_never_overcommit,
                      test_scheduler_dies_holding_lease,
                      test_scheduler_killed_mid_flight,
                      test_blocked_job_starts_when_capacity_frees,
                      test_hold_release_while_leased_keeps_evaluations_unique,
                      test_preemption_requeues_lower_priority_work])


if __name__ == "__main__":
    raise SystemExit(main())
