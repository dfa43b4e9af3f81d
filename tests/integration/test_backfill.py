#!/usr/bin/env python3
"""Backfill with real daemons under a scaled clock (DROVER_TIME_SCALE=20:
one Drover second is 50 ms), on simulated nodes whose jobs "run" for
DROVER_SIM_RUNTIME, and two scheduler processes:

- a wide high-priority job that cannot start gets a reservation and an
  estimated start time (qstat -f estimated.start_time, qstat -T);
- a short low-priority job that ends before the reservation starts at once;
- a long one that would delay the reserved job does not start before it;
- the reserved job starts at about its estimated time, not later;
- the reservation is honoured by both schedulers (whichever evaluates the
  long job refuses it) and, with --backfill=false, nothing lower starts;
- reservations follow the order of work that leasing uses: the wide job of
  a high-priority queue holds it although a wide job in a low-priority
  queue has a higher -p (and a short job still backfills around it), and
  of two users' equal wide jobs the one whose owner used less holds it.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TEST_USER, check, cluster, ensure_test_user,  # noqa: E402
                     run_tests, wait_until)

SCALE = 20.0
# Four simulated nodes of 4 cores.
NODES = 4


def start_sim(c):
    c.start_noded("sim", extra=["--simulate", str(NODES),
                                "--simulate-topology", "pack:1 core:4 pu:1",
                                "--memory", "8gb"])
    c.wait_nodes_ready(NODES)


def qsub(c, select, walltime, runtime, prio=0, queue=None, **kw):
    return c.submit((["-q", queue] if queue else []) +
                    ["-l", "select=%s" % select, "-l", "walltime=%d" % walltime,
                     "-p", str(prio), "-v", "DROVER_SIM_RUNTIME=%d" % runtime,
                     "--", "/bin/true"], **kw)


def wait_blocked(c, jid, what):
    wait_until(lambda: c.sql(
        "SELECT count(*) FROM evaluations WHERE job_id = %s AND "
        "status = 'blocked'" % jid.split(".")[0]) == [["1"]], 20, what=what)
    check(c.job(jid)["state"] == "queued")


def est_start(c, jid):
    j = c.job(jid)
    return j.get("estimated_start_time")


def test_easy_backfill():
    with cluster("backfill", nodes=0, scheds=2,
                 sched_args=["--backfill-depth", "1"]) as c:
        start_sim(c)
        # A holds three whole nodes for 100 s; the fourth is free.
        a = qsub(c, "3:ncpus=4", 100, 100)
        ja = c.wait_state(a, "running", 20)
        # W needs all four: it cannot start before A ends.
        w = qsub(c, "4:ncpus=4", 100, 60, prio=10)
        est = wait_until(lambda: est_start(c, w), 20,
                         what="an estimated start time for the wide job")
        check(c.job(w)["state"] == "queued")
        # A's end as the scheduler estimates it: its allocations' start
        # (reported by the node, a few Drover seconds after the job's) plus
        # its walltime.
        check(ja["stime"] + 100 <= est <= ja["stime"] + 115,
              "estimated %s, A started %s" % (est, ja["stime"]))
        rows = c.sql("SELECT count(*), min(kind), sum(cores) FROM "
                     "reservations WHERE job_id = %s" % w.split(".")[0])
        check(rows == [["4", "backfill", "16"]], repr(rows))
        # qstat -f shows it (ctime(3) text), qstat -T the Est Start column.
        out = c.run("qstat", ["-f", w])
        check("    estimated.start_time = " in out.stdout, out.stdout)
        out = c.run("qstat", ["-T"])
        check(out.returncode == 0 and "Est" in out.stdout and
              "Start" in out.stdout, out.stdout + out.stderr)
        # S ends long before: starts now, beside A, on the free node.
        s = qsub(c, "1:ncpus=2", 20, 10)
        js = c.wait_state(s, ("running", "finished"), 20)
        check(js["stime"] < est, "short job started at %s, reservation %s"
              % (js["stime"], est))
        # Long jobs would still run at W's start: they wait, whichever of
        # the two schedulers looks at them.
        longs = [qsub(c, "1:ncpus=2", 500, 20) for _ in range(3)]
        for lj in longs:
            wait_blocked(c, lj, "a long job blocked")
        jw = c.wait_state(w, ("running", "finished"), 30)
        # W starts at about its estimate, not later (one Drover second is
        # 50 ms: allow the node's report and a scheduler round).
        check(jw["stime"] <= est + 15,
              "reserved job started at %s, estimated %s" % (jw["stime"], est))
        for lj in longs:
            jl = c.wait_state(lj, ("running", "finished"), 60)
            check(jl["stime"] >= jw["stime"],
                  "long job started %s before the reserved one %s"
                  % (jl["stime"], jw["stime"]))
        # Both schedulers took part.
        for i in (1, 2):
            log = open(os.path.join(c.dir, "sched%d.log" % i)).read()
            check("placed" in log or "blocked" in log,
                  "scheduler %d evaluated nothing" % i)


def test_strict_order_without_backfill():
    with cluster("fifo", nodes=0, scheds=1,
                 sched_args=["--backfill=false"]) as c:
        start_sim(c)
        a = qsub(c, "3:ncpus=4", 60, 60)
        c.wait_state(a, "running", 20)
        w = qsub(c, "4:ncpus=4", 100, 10, prio=10)
        wait_until(lambda: est_start(c, w), 20,
                   what="an estimated start time for the top job")
        rows = c.sql("SELECT count(*), min(kind) FROM reservations "
                     "WHERE job_id = %s" % w.split(".")[0])
        check(rows == [["4", "fifo"]], repr(rows))
        # Short and small, but strictly behind W: it waits.
        s = qsub(c, "1:ncpus=1", 10, 5)
        wait_blocked(c, s, "the small job blocked")
        jw = c.wait_state(w, ("running", "finished"), 30)
        js = c.wait_state(s, ("running", "finished"), 30)
        check(js["stime"] >= jw["stime"], "%r %r" % (js, jw))


def holders(c, *jids):
    """Reservation rows (backfill or fifo) held by each of jids."""
    return [int(c.sql("SELECT count(*) FROM reservations WHERE job_id = %s "
                      "AND kind <> 'preemption'" % j.split(".")[0])[0][0])
            for j in jids]


def qmgr_ok(c, directive):
    out = c.run("qmgr", ["-c", directive])
    check(out.returncode == 0, "qmgr -c %r: %s" % (directive, out.stderr))


def test_queue_priority_holds_reservation():
    with cluster("bfqueue", nodes=0, scheds=2,
                 sched_args=["--backfill-depth", "1"]) as c:
        start_sim(c)
        qmgr_ok(c, "create queue lo enabled=True,started=True,Priority=1")
        qmgr_ok(c, "create queue hi enabled=True,started=True,Priority=100")
        a = qsub(c, "3:ncpus=4", 100, 100)
        c.wait_state(a, "running", 20)
        # Two wide jobs: the low queue's is older and has the higher -p,
        # the high queue's ranks first all the same (queue priority before
        # job priority, as leasing orders them).
        wlo = qsub(c, "4:ncpus=4", 100, 10, prio=50, queue="lo")
        whi = qsub(c, "4:ncpus=4", 100, 10, prio=0, queue="hi")
        wait_until(lambda: holders(c, whi, wlo) == [4, 0], 20,
                   what="the high queue's wide job holding the reservation")
        est = wait_until(lambda: est_start(c, whi), 20,
                         what="an estimated start for the high queue's job")
        check(c.job(wlo).get("estimated_start_time") is None,
              repr(c.job(wlo)))
        # The reservation row carries the holder's rank keys.
        rows = c.sql("SELECT DISTINCT queue_priority, priority FROM "
                     "reservations WHERE job_id = %s" % whi.split(".")[0])
        check(rows == [["100", "0"]], repr(rows))
        # A short job (default queue, ranked below both) still backfills
        # on the free node: it ends before the reservation starts.
        s = qsub(c, "1:ncpus=2", 20, 10)
        js = c.wait_state(s, ("running", "finished"), 20)
        check(js["stime"] < est, "short job started at %s, reservation %s"
              % (js["stime"], est))
        # The holder starts first; the -p 50 job of the low queue after it.
        jhi = c.wait_state(whi, ("running", "finished"), 30)
        check(jhi["stime"] <= est + 15,
              "reserved job started at %s, estimated %s" % (jhi["stime"], est))
        jlo = c.wait_state(wlo, ("running", "finished"), 60)
        check(jlo["stime"] >= jhi["stime"], "low queue's job started %s, "
              "high queue's %s" % (jlo["stime"], jhi["stime"]))


def test_fair_share_holds_reservation():
    pw = ensure_test_user()
    check(pw is not None, "cannot create the test user (not root)")
    with cluster("bffair", nodes=0, scheds=2,
                 sched_args=["--backfill-depth", "1"]) as c:
        d = os.path.join(c.dir, "userdir")
        os.makedirs(d, exist_ok=True)
        os.chown(d, pw.pw_uid, pw.pw_gid)
        start_sim(c)
        # root has used the cluster (a large decayed usage); the test user
        # never has.
        c.sql("DELETE FROM user_usage")
        c.sql("INSERT INTO user_usage (owner, usage_log2, core_seconds, "
              "update_time) VALUES ('root', 1e6, 1e6, now())")
        a = qsub(c, "3:ncpus=4", 100, 100)
        c.wait_state(a, "running", 20)
        # Equal wide jobs, root's submitted first: the test user's ranks
        # above it (less usage before age) and holds the reservation.
        wroot = qsub(c, "4:ncpus=4", 100, 10)
        wuser = qsub(c, "4:ncpus=4", 100, 10, user=TEST_USER, cwd=d)
        wait_until(lambda: holders(c, wuser, wroot) == [4, 0], 20,
                   what="the lighter user's wide job holding the reservation")
        ju = c.wait_state(wuser, ("running", "finished"), 30)
        jr = c.wait_state(wroot, ("running", "finished"), 60)
        check(jr["stime"] >= ju["stime"], "root's job started %s, the test "
              "user's %s" % (jr["stime"], ju["stime"]))


def main():
    os.environ["DROVER_TIME_SCALE"] = str(SCALE)
    return run_tests([test_easy_backfill, test_strict_order_without_backfill,
                      test_queue_priority_holds_reservation,
                      test_fair_share_holds_reservation])


if __name__ == "__main__":
    sys.exit(main())
