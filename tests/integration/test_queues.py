"""Queues (issue 4, item 4): qmgr -c and drover queue create, change, list
and delete them; qstat -Q shows them in PBS's layouts; a submission gets
the queue's resource defaults and is refused over its limits, outside its
ACL or when it is disabled; a stopped queue holds its work; max_running and
max_user_run hold with two schedulers; queue priority orders queues and
fair share alternates two users' equal jobs."""

import json
import os
import threading
import time

from harness import (TEST_USER, check, cluster, ensure_test_user, run_tests,
                     wait_until)

C = None


def qmgr(c, directive, **kw):
    return c.run("qmgr", ["-c", directive], **kw)


def qmgr_ok(c, directive, **kw):
    out = qmgr(c, directive, **kw)
    check(out.returncode == 0, "qmgr -c %r: %d %s" % (directive, out.returncode,
                                                       out.stderr))
    return out.stdout


def user_dir(c):
    pw = ensure_test_user()
    check(pw is not None, "cannot create the test user (not root)")
    d = os.path.join(c.dir, "userdir")
    os.makedirs(d, exist_ok=True)
    os.chown(d, pw.pw_uid, pw.pw_gid)
    return d


# --- administration ---


def test_qmgr_create_set_list_delete():
    qmgr_ok(C, "create queue short priority=10,resources_max.walltime=1:00:00")
    qmgr_ok(C, "set queue short enabled = True, started = True")
    qmgr_ok(C, "set queue short max_run = '[o:PBS_ALL=4],[u:PBS_GENERIC=2]'")
    qmgr_ok(C, "set queue short acl_users = root, acl_users += alice")
    out = qmgr_ok(C, "list queue short")
    lines = out.splitlines()
    check(lines[0] == "Queue short", out)
    for want in ("    queue_type = Execution", "    Priority = 10",
                 "    total_jobs = 0",
                 "    state_count = Transit:0 Queued:0 Held:0 Waiting:0 "
                 "Running:0 Exiting:0 Begun:0 ",
                 "    resources_max.walltime = 01:00:00",
                 "    acl_users = root,alice",
                 "    enabled = True", "    started = True",
                 "    max_run = [o:PBS_ALL=4],[u:PBS_GENERIC=2]"):
        check(want in lines, "%r not in\n%s" % (want, out))
    check(out.endswith("\n\n"), "no blank line after the queue: %r" % out)
    out = qmgr_ok(C, "print queue short")
    check("create queue short\n" in out, out)
    check("set queue short Priority = 10\n" in out, out)
    check("set queue short acl_users = root\n"
          "set queue short acl_users += alice\n" in out, out)
    check('set queue short max_run = "[o:PBS_ALL=4],[u:PBS_GENERIC=2]"'
          in out, out)
    qmgr_ok(C, "unset queue short max_run")
    qmgr_ok(C, "set queue short acl_users -= alice")
    out = qmgr_ok(C, "list queue short")
    check("max_run" not in out and "acl_users = root\n" in out, out)
    # list of every queue
    out = qmgr_ok(C, "list queue @default")
    check("Queue short\n" in out and "Queue workq\n" in out, out)
    # drover queue, the native form
    out = C.run("drover", ["queue", "create", "batch", "Priority=5",
                           "enabled=true", "started=true",
                           "resources_default.walltime=30:00"])
    check(out.returncode == 0, out.stderr)
    out = C.run("drover", ["queue", "set", "batch", "max_user_run=3"])
    check(out.returncode == 0, out.stderr)
    out = C.run("drover", ["queue", "list"])
    check(out.returncode == 0, out.stderr)
    rows = {l.split()[0]: l.split() for l in out.stdout.splitlines()[1:]}
    check(rows["batch"][1] == "5" and rows["batch"][5] == "3", out.stdout)
    check(rows["workq"][-1] == "yes", out.stdout)
    st, body = C.api("GET", "/v1/queues/batch")
    check(st == 200 and body["resources_default"] == {"walltime": "00:30:00"}
          and body["max_user_run"] == 3, body)
    out = C.run("drover", ["queue", "delete", "batch"])
    check(out.returncode == 0, out.stderr)
    st, _ = C.api("GET", "/v1/queues/batch")
    check(st == 404, st)
    qmgr_ok(C, "delete queue short")


def test_qmgr_errors():
    out = qmgr(C, "create queue workq")
    check(out.returncode == 177, "%d %s" % (out.returncode, out.stderr))
    check(out.stderr == "qmgr obj=workq svr=default: Queue already exists\n"
          "qmgr: Error (15025) returned from server\n", out.stderr)
    out = qmgr(C, "set queue nosuch enabled = True")
    check(out.returncode == 170, out.stderr)
    check("qmgr obj=nosuch svr=default: Unknown queue\n" in out.stderr,
          out.stderr)
    out = qmgr(C, "set queue workq bogus = 1")
    check(out.returncode == 154, "%d %s" % (out.returncode, out.stderr))
    out = qmgr(C, "set queue workq Priority = high")
    check(out.returncode == 166, "%d %s" % (out.returncode, out.stderr))
    out = qmgr(C, "frobnicate queue workq")
    check(out.returncode == 1 and out.stderr ==
          "qmgr: Illegal operation: frobnicate\n"
          "Try 'help' if you are having trouble.\n", out.stderr)
    out = qmgr(C, "set widget workq")
    check(out.returncode == 2 and
          out.stderr == "qmgr: Illegal object type: widget.\n", out.stderr)
    out = qmgr(C, "set queue workq Priority =")
    check(out.returncode == 3 and out.stderr == "qmgr: Syntax error\n",
          out.stderr)
    ensure_test_user()
    out = qmgr(C, "set queue workq Priority = 3", user=TEST_USER)
    check(out.returncode == 159, "%d %s" % (out.returncode, out.stderr))
    check("Unauthorized Request" in out.stderr, out.stderr)
    # a queue with jobs cannot be deleted
    qmgr_ok(C, "create queue busy enabled=True,started=False")
    jid = C.submit(["-q", "busy", "--", "/bin/true"])
    out = qmgr(C, "delete queue busy")
    check(out.returncode == 179, "%d %s" % (out.returncode, out.stderr))
    check("Cannot delete busy queue" in out.stderr, out.stderr)
    check(C.run("qdel", [jid]).returncode == 0)
    C.wait_state(jid, "finished")
    qmgr_ok(C, "delete queue busy")
    # directives on stdin, ";" and comments; the last failure's status
    out = C.run("qmgr", [], input="create queue s1 # a comment\n"
                "set queue s1 enabled = True; set queue s1 nosuch = 1\n"
                "list queue s1\ndelete queue s1\n")
    check(out.returncode == 154 and "Queue s1\n" in out.stdout
          and "    enabled = True\n" in out.stdout, out.stdout + out.stderr)
    check("Undefined attribute nosuch" in out.stderr, out.stderr)
    out = C.run("qmgr", ["-a"], input="set queue nosuch enabled = T\n"
                "create queue s2\n")
    check(out.returncode == 170, "%d %s" % (out.returncode, out.stderr))
    st, _ = C.api("GET", "/v1/queues/s2")
    check(st == 404, "qmgr -a went on after an error")


def test_qstat_queues():
    qmgr_ok(C, "create queue qq enabled=True,started=False,max_running=7")
    jid = C.submit(["-q", "qq", "--", "/bin/true"])
    out = C.run("qstat", ["-Q"])
    check(out.returncode == 0, out.stderr)
    lines = out.stdout.splitlines()
    check(lines[0] == "Queue              Max   Tot Ena Str   Que   Run   Hld "
          "  Wat   Trn   Ext Type", lines)
    row = [l for l in lines if l.startswith("qq ")]
    check(row == ["qq                   7     1 yes  no     1     0     0 "
                  "    0     0     0 Exe*"], lines)
    out = C.run("qstat", ["-Qf", "qq"])
    check(out.stdout.startswith("Queue: qq\n    queue_type = Execution\n"),
          out.stdout)
    check("    max_running = 7\n" in out.stdout, out.stdout)
    out = C.run("qstat", ["-Qf", "-F", "json", "qq"])
    check(out.returncode == 0, out.stderr)
    j = json.loads(out.stdout)
    check(j["Queue"]["qq"]["max_running"] == 7 and
          j["Queue"]["qq"]["started"] == "False", j)
    out = C.run("qstat", ["-Q", "nosuch"])
    check(out.returncode == 170, out.stderr)
    check(C.run("qdel", [jid]).returncode == 0)
    C.wait_state(jid, "finished")
    qmgr_ok(C, "delete queue qq")


def test_server_default_queue():
    qmgr_ok(C, "create queue dq enabled=True,started=True")
    qmgr_ok(C, "set server default_queue = dq")
    out = qmgr_ok(C, "list server")
    check("    default_queue = dq\n" in out, out)
    jid = C.submit(["--", "/bin/true"])
    check(C.job(jid)["queue"] == "dq", C.job(jid))
    C.wait_state(jid, "finished")
    out = qmgr(C, "set server default_queue = nosuch")
    check(out.returncode == 170, "%d %s" % (out.returncode, out.stderr))
    qmgr_ok(C, "set server default_queue = workq")
    out = qmgr_ok(C, "print server")
    check("set server default_queue = workq\n" in out, out)
    check("create queue dq\n" in out, out)
    qmgr_ok(C, "delete queue dq")


# --- submission ---


def test_limits_defaults_acl():
    qmgr_ok(C, "create queue lim enabled=True,started=True,"
            "resources_max.walltime=01:00:00,resources_max.ncpus=2,"
            "resources_default.walltime=00:10:00")
    out = C.qsub(["-q", "lim", "-l", "walltime=2:00:00", "--", "/bin/true"])
    check(out.returncode == 188, "%d %s" % (out.returncode, out.stderr))
    check(out.stderr ==
          "qsub: Job violates queue and/or server resource limits\n",
          out.stderr)
    out = C.qsub(["-q", "lim", "-l", "select=1:ncpus=3", "--", "/bin/true"])
    check(out.returncode == 188, out.stderr)
    # the default walltime is the job's
    jid = C.submit(["-q", "lim", "--", "/bin/true"])
    out = C.run("qstat", ["-x", "-f", jid])
    check("    Resource_List.walltime = 00:10:00\n" in out.stdout, out.stdout)
    C.wait_state(jid, "finished")
    # ACL
    d = user_dir(C)
    qmgr_ok(C, "set queue lim acl_user_enable = True, acl_users = root")
    out = C.qsub(["-q", "lim", "--", "/bin/true"], user=TEST_USER, cwd=d)
    check(out.returncode == 174, "%d %s" % (out.returncode, out.stderr))
    check(out.stderr == "qsub: Access to queue is denied\n", out.stderr)
    qmgr_ok(C, "set queue lim acl_users += %s" % TEST_USER)
    jid = C.submit(["-q", "lim", "--", "/bin/true"], user=TEST_USER, cwd=d)
    C.wait_state(jid, "finished")
    # disabled
    qmgr_ok(C, "set queue lim enabled = False")
    out = C.qsub(["-q", "lim", "--", "/bin/true"])
    check(out.returncode == 173 and
          out.stderr == "qsub: Queue is not enabled\n", out.stderr)


def test_stopped_queue_holds_work():
    qmgr_ok(C, "create queue stop enabled=True,started=False")
    jid = C.submit(["-q", "stop", "--", "/bin/true"])
    wait_until(lambda: (C.job(jid).get("comment") or "").startswith(
        "Not Running"), 30, what="the stopped queue's comment")
    j = C.job(jid)
    check(j["state"] == "queued", j["state"])
    check(j["comment"] == "Not Running: Queue stop is not started",
          j["comment"])
    rows = C.sql("SELECT count(*) FROM allocations WHERE job_id = %s"
                 % jid.split(".")[0])
    check(rows == [["0"]], rows)
    qmgr_ok(C, "set queue stop started = True")
    C.wait_state(jid, "finished", 30)


# --- running-job limits with two schedulers ---


def watch_running(c, queue, stop, peaks):
    """Samples the running jobs of queue, in total and per owner."""
    while not stop.is_set():
        rows = c.sql("SELECT owner, count(*) FROM jobs WHERE queue = '%s' "
                     "AND state IN ('running', 'exiting') GROUP BY owner"
                     % queue)
        total = sum(int(r[1]) for r in rows)
        peaks["total"] = max(peaks.get("total", 0), total)
        for owner, n in rows:
            peaks[owner] = max(peaks.get(owner, 0), int(n))
        if len(rows) == 2:
            peaks["both"] = True
        time.sleep(0.02)


def test_running_limits_two_schedulers():
    with cluster("queuelimits", nodes=2, scheds=2,
                 sched_args=["--workers", "2", "--batch", "4"]) as c:
        d = user_dir(c)
        # The jobs wait in a stopped queue and start together: without the
        # limits all 8 cores would run at once.
        qmgr_ok(c, "create queue capped enabled=True,started=False,"
                "max_running=3")
        qmgr_ok(c, "create queue peruser enabled=True,started=False")
        qmgr_ok(c, "set queue peruser max_run = '[u:PBS_GENERIC=2]'")
        for queue, users, cap in (("capped", ["root"], {"total": 3}),
                                  ("peruser", ["root", TEST_USER],
                                   {"root": 2, TEST_USER: 2})):
            stop = threading.Event()
            peaks = {}
            t = threading.Thread(target=watch_running,
                                 args=(c, queue, stop, peaks))
            t.start()
            try:
                ids = []
                for i in range(16):
                    user = users[i % len(users)]
                    ids.append(c.submit(
                        ["-q", queue, "--", "/bin/sleep", "1"],
                        user=None if user == "root" else user,
                        cwd=d))
                qmgr_ok(c, "set queue %s started = True" % queue)
                for jid in ids:
                    j = c.wait_state(jid, "finished", 120)
                    check(j["exit_status"] == 0, "%s: %r" % (jid, j))
            finally:
                stop.set()
                t.join()
            for k, v in cap.items():
                check(peaks.get(k, 0) <= v,
                      "%s: %s ran %d at once (limit %d): %r"
                      % (queue, k, peaks.get(k, 0), v, peaks))
                check(peaks.get(k, 0) == v,
                      "%s: %s never reached its limit %d: %r"
                      % (queue, k, v, peaks))
            if len(users) == 2:
                check(peaks.get("both"), "the two users never ran together")


# --- order ---


def start_order(c, ids):
    rows = c.sql("SELECT id FROM jobs WHERE id IN (%s) ORDER BY start_time, id"
                 % ",".join(j.split(".")[0] for j in ids))
    return [r[0] for r in rows]


def test_queue_priority_and_fair_share():
    with cluster("queueorder", node_topology="pack:1 core:1 pu:1") as c:
        d = user_dir(c)
        qmgr_ok(c, "create queue lo enabled=True,started=True,Priority=1")
        qmgr_ok(c, "create queue hi enabled=True,started=True,Priority=100")
        # queue priority: the hi jobs run before the lo ones submitted first
        blocker = c.submit(["--", "/bin/sleep", "3"])
        c.wait_state(blocker, "running")
        lo = [c.submit(["-q", "lo", "--", "/bin/true"]) for _ in range(2)]
        hi = [c.submit(["-q", "hi", "--", "/bin/true"]) for _ in range(2)]
        for jid in lo + hi:
            c.wait_state(jid, "finished", 60)
        order = start_order(c, lo + hi)
        check(order == [j.split(".")[0] for j in hi + lo],
              "start order %r, hi %r lo %r" % (order, hi, lo))
        # job priority orders within a queue
        blocker = c.submit(["--", "/bin/sleep", "3"])
        c.wait_state(blocker, "running")
        low = c.submit(["-p", "-5", "--", "/bin/true"])
        high = c.submit(["-p", "5", "--", "/bin/true"])
        for jid in (low, high):
            c.wait_state(jid, "finished", 60)
        check(start_order(c, [low, high]) ==
              [high.split(".")[0], low.split(".")[0]], "-p ignored")
        c.wait_state(blocker, "finished", 60)
        # fair share: equal jobs of two users alternate on one core. The
        # jobs wait in a stopped queue, all of one user's first, and start
        # together; a short half-life so that the order does not hang on
        # how long each two-second job measured.
        qmgr_ok(c, "set server fairshare_half_life = 2")
        c.sql("DELETE FROM user_usage")
        qmgr_ok(c, "create queue fs enabled=True,started=False")
        a = [c.submit(["-q", "fs", "--", "/bin/sleep", "2"]) for _ in range(3)]
        b = [c.submit(["-q", "fs", "--", "/bin/sleep", "2"], user=TEST_USER,
                      cwd=d) for _ in range(3)]
        qmgr_ok(c, "set queue fs started = True")
        for jid in a + b:
            c.wait_state(jid, "finished", 120)
        rows = c.sql("SELECT owner FROM jobs WHERE id IN (%s) "
                     "ORDER BY start_time, id"
                     % ",".join(j.split(".")[0] for j in a + b))
        owners = [r[0] for r in rows]
        want = ["root", TEST_USER] * 3
        check(owners == want, "run order %r, want %r" % (owners, want))
        st, body = c.api("GET", "/v1/server")
        check(st == 200 and body["fairshare_half_life"] == 2, body)
        users = sorted(u["user"] for u in body["fairshare"])
        check(users == sorted([TEST_USER, "root"]), body)
        out = c.run("drover", ["queue", "fairshare"])
        check(out.returncode == 0 and TEST_USER in out.stdout, out.stdout)


def main():
    global C
    with cluster("queues") as c:
        C = c
        rc = run_tests([test_qmgr_create_set_list_delete, test_qmgr_errors,
                        test_qstat_queues, test_server_default_queue,
                        test_limits_defaults_acl,
                        test_stopped_queue_holds_work])
    rc |= run_tests([test_running_limits_two_schedulers,
                     test_queue_priority_and_fair_share])
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
