"""Nothing acknowledged is lost: qmgr restarted with jobs queued and
running, PostgreSQL restarted under load, a node daemon that dies (its
node is marked down after the heartbeat TTL and its job requeued)."""

import os
import signal
import subprocess
import time
import uuid

from harness import check, cluster, run_tests, wait_until


def test_qmgr_restart_loses_nothing():
    with cluster("qmgr-restart", node_topology="pack:1 core:2 pu:1") as c:
        running = [c.submit(["-l", "ncpus=1", "--", "/bin/sleep", "4"])
                   for _ in range(2)]
        for jid in running:
            c.wait_state(jid, "running", 20)
        queued = [c.submit(["--", "/bin/true"]) for _ in range(5)]
        c.qmgr.kill()                      # SIGKILL
        time.sleep(1)
        c.start_qmgr()
        for jid in running + queued:
            j = c.wait_state(jid, "finished", 60)
            check(j["exit_status"] == 0, "%s: %r" % (jid, j))
            check(j["run_count"] == 1, "%s ran %d times" % (jid, j["run_count"]))


def test_postgres_restart():
    with cluster("pg-restart") as c:
        before = c.submit(["--", "/bin/sleep", "3"])
        c.wait_state(before, "running", 20)
        c.restart_pg()
        # qmgr answers 503 or recovers; a submission retried by qsub lands once
        jid = c.submit(["--", "/bin/true"])
        j = c.wait_state(jid, "finished", 60)
        check(j["exit_status"] == 0)
        j = c.wait_state(before, "finished", 60)
        check(j["exit_status"] == 0, repr(j))
        rows = c.sql("SELECT count(*) FROM jobs")
        check(rows == [["2"]], rows)


def test_node_down_requeues_job():
    with cluster("node-down") as c:
        marker = "drover-nd-" + uuid.uuid4().hex[:8]
        jid = c.submit(["-N", "survivor", "--", "/bin/bash", "-c",
                        "echo run; exec -a %s sleep 2" % marker])
        c.wait_state(jid, "running", 20)
        c.nodeds[0].kill()                 # the node daemon dies...
        subprocess.run(["pkill", "-f", marker])  # ...and its job with it
        wait_until(lambda: c.sql("SELECT status FROM nodes") == [["down"]],
                   20, what="node marked down")
        j = c.wait_state(jid, "queued", 10)
        check(j["run_count"] == 1, repr(j))
        lost = c.sql("SELECT client_status FROM allocations")
        check(lost == [["lost"]], lost)
        c.nodeds.pop()
        c.start_noded("node1")
        j = c.wait_state(jid, "finished", 60)
        check(j["exit_status"] == 0 and j["run_count"] == 2, repr(j))


def main():
    return run_tests([test_qmgr_restart_loses_nothing,
                      test_postgres_restart,
                      test_node_down_requeues_job])


if __name__ == "__main__":
    raise SystemExit(main())
