"""Job dependencies end to end (qsub -W depend=..., issue 4 item 3) and
waiting for jobs (drover job wait, qsub -W block=true), with real daemons.

Targets are submitted held (-h) and released once their dependents are in,
so that no test depends on how fast anything runs."""

import signal
import subprocess
import threading
import time

from harness import BIN, check, cluster, run_tests, wait_until

C = None


def seq(jobid):
    return str(jobid).split(".")[0]


def full(jobid):
    return "%s.%s" % (seq(jobid), C.server)


def qstat_f(jobid):
    out = C.run("qstat", ["-x", "-f", "-w", jobid])
    check(out.returncode == 0, "qstat -f %s: %s" % (jobid, out.stderr))
    return out.stdout


def sh(cmd, *args):
    return list(args) + ["--", "/bin/sh", "-c", cmd]


def release(jobid):
    out = C.run("qrls", [jobid])
    check(out.returncode == 0, "qrls %s: %s" % (jobid, out.stderr))


def test_dependent_is_held_with_reason():
    a = C.submit(sh("exit 0", "-h"))
    b = C.submit(sh("exit 0", "-W", "depend=afterok:%s:%s,afterany:%s"
                    % (seq(a), a, seq(a))))
    j = C.job(b)
    check(j["state"] == "held" and j["hold_types"] == "s", j)
    f = qstat_f(b)
    for line in ("job_state = H", "Hold_Types = s",
                 "depend = afterok:%s@%s,afterany:%s@%s"
                 % (full(a), C.server, full(a), C.server),
                 "comment = Job held: waiting for its dependencies"):
        check(line in f, "qstat -f lacks %r:\n%s" % (line, f))
    # no evaluation: no scheduler looks at it until it is released
    rows = C.sql("SELECT count(*) FROM evaluations WHERE job_id = %s"
                 % seq(b))
    check(rows == [["0"]], rows)
    # a held job with a user hold too keeps it when its dependencies are met
    c = C.submit(sh("exit 0", "-h", "-W", "depend=afterany:%s,afterok:%s"
                    % (a, a)))
    check(C.job(c)["hold_types"] == "us", C.job(c))
    release(a)
    check(C.wait_state(b, "finished")["exit_status"] == 0)
    rows = C.sql("SELECT triggered_by FROM evaluations WHERE job_id = %s"
                 % seq(b))
    check(rows == [["job-depend"]], rows)
    # met dependencies leave the depend attribute, as in PBS
    check("depend =" not in qstat_f(b), qstat_f(b))
    j = C.job(c)
    check(j["state"] == "held" and j["hold_types"] == "u", j)
    check("depend =" not in qstat_f(c) and "comment =" not in qstat_f(c),
          qstat_f(c))
    release(c)
    C.wait_state(c, "finished")
    # one met, one left: only the one left is shown
    d = C.submit(sh("exit 0", "-h"))
    e = C.submit(sh("exit 0", "-W", "depend=afterok:%s:%s" % (a, d)))
    check("depend = afterok:%s@%s\n" % (full(d), C.server) in qstat_f(e),
          qstat_f(e))
    C.run("qdel", [d])


def test_unknown_and_bad_targets_refused():
    out = C.qsub(sh("true", "-W", "depend=afterok:99999"))
    check(out.returncode == 153, "exit %d" % out.returncode)
    check(out.stderr == "qsub: Unknown Job Id 99999.%s\n" % C.server,
          repr(out.stderr))
    a = C.submit(sh("true", "-h"))
    # array syntax on a job that is no array (arrays: test_arrdep.py)
    for b in ("[]", "[3]"):
        out = C.qsub(sh("true", "-W", "depend=afterok:%s%s" % (seq(a), b)))
        check(out.returncode == 153, "%s: exit %d" % (b, out.returncode))
        check(out.stderr == "qsub: Unknown Job Id %s%s.%s\n"
              % (seq(a), b, C.server), repr(out.stderr))
    # syntax is qsub's own check, as PBS's
    out = C.qsub(sh("true", "-W", "depend=later:%s" % seq(a)))
    check(out.returncode == 2 and out.stderr.startswith(
        "qsub: illegal -W value\nusage: qsub"), (out.returncode, out.stderr))
    # and the server's, for other clients
    st, body = C.api("POST", "/v1/jobs", {"owner": "root", "argv": ["/bin/true"],
                                          "depend": "afterok:"},
                     {"X-Drover-User": "root"})
    check(st == 400 and body["error"]["code"] == "bad_depend", (st, body))
    st, body = C.api("POST", "/v1/jobs", {"owner": "root", "argv": ["/bin/true"],
                                          "depend": "afterok:99998"},
                     {"X-Drover-User": "root"})
    check(st == 404 and body["error"]["message"]
          == "Unknown Job Id 99998.%s" % C.server, (st, body))
    # a before type needs a target submitted with on:<count>
    out = C.qsub(sh("true", "-W", "depend=beforeok:%s" % seq(a)))
    check(out.returncode == 206, "exit %d %s" % (out.returncode, out.stderr))
    C.run("qdel", [a])


def test_afterok_chain_head_fails_deletes_dependents():
    a = C.submit(sh("exit 3", "-h"))
    b = C.submit(sh("exit 0", "-W", "depend=afterok:" + a))
    c = C.submit(sh("exit 0", "-W", "depend=afterok:" + b))
    d = C.submit(sh("exit 0", "-W", "depend=afterany:" + c))
    release(a)
    check(C.wait_state(a, "finished")["exit_status"] == 3)
    # resolved in the transaction that ended a: nothing left to wait for
    for dep, on in ((b, a), (c, b), (d, c)):
        j = C.job(dep)
        check(j["state"] == "finished", j)
        check(j["comment"] == "Job deleted as result of dependency on job %s"
              % full(on), j["comment"])
        check(j.get("exec_host") in (None, ""), j)
        f = qstat_f(dep)
        check("comment = Job deleted as result of dependency on job %s"
              % full(on) in f, f)
    rows = C.sql("SELECT count(*) FROM job_depends WHERE dependent IN "
                 "(%s, %s, %s)" % (seq(b), seq(c), seq(d)))
    check(rows == [["0"]], rows)


def test_afternotok_runs_on_failure_afterok_does_not():
    a = C.submit(sh("exit 2", "-h"))
    nok = C.submit(sh("exit 0", "-W", "depend=afternotok:" + a))
    ok = C.submit(sh("exit 0", "-W", "depend=afterok:" + a))
    release(a)
    check(C.wait_state(nok, "finished")["exit_status"] == 0)
    check(C.job(nok)["run_count"] == 1)
    j = C.job(ok)
    check(j["state"] == "finished" and j["run_count"] == 0, j)
    # and the other way round: success runs afterok, deletes afternotok
    a = C.submit(sh("exit 0", "-h"))
    nok = C.submit(sh("exit 0", "-W", "depend=afternotok:" + a))
    ok = C.submit(sh("exit 0", "-W", "depend=afterok:" + a))
    release(a)
    check(C.wait_state(ok, "finished")["run_count"] == 1)
    j = C.job(nok)
    check(j["state"] == "finished" and j["run_count"] == 0, j)


def test_afterany_runs_after_failure_and_success():
    a = C.submit(sh("exit 5", "-h"))
    b = C.submit(sh("exit 0", "-h"))
    c = C.submit(sh("exit 7", "-W", "depend=afterany:%s:%s" % (a, b)))
    release(a)
    C.wait_state(a, "finished")
    check(C.job(c)["state"] == "held", C.job(c))
    release(b)
    j = C.wait_state(c, "finished")
    check(j["exit_status"] == 7 and j["run_count"] == 1, j)


def test_after_start():
    a = C.submit(sh("sleep 300", "-h"))
    b = C.submit(sh("exit 0", "-W", "depend=after:" + a))
    release(a)
    C.wait_state(b, "finished")
    # b ran while a was still running: released by a's start
    check(C.job(a)["state"] == "running", C.job(a))
    C.run("qdel", [a])
    C.wait_state(a, "finished")
    # a target already running satisfies "after" at submission
    a = C.submit(sh("sleep 300"))
    C.wait_state(a, "running")
    b = C.submit(sh("exit 0", "-W", "depend=after:" + a))
    check(C.job(b)["state"] in ("queued", "running", "finished"), C.job(b))
    C.wait_state(b, "finished")
    C.run("qdel", [a])
    C.wait_state(a, "finished")


def test_before_types_with_on_count():
    t = C.submit(sh("exit 0", "-W", "depend=on:2"))
    check(C.job(t)["state"] == "held", C.job(t))
    check("depend = on:2\n" in qstat_f(t), qstat_f(t))
    y1 = C.submit(sh("exit 0", "-h", "-W", "depend=beforeok:" + t))
    check("depend = on:1,afterok:%s@%s\n" % (full(y1), C.server)
          in qstat_f(t), qstat_f(t))
    y2 = C.submit(sh("exit 9", "-h", "-W", "depend=beforenotok:" + t))
    # the on count is used up: a third registration is refused
    out = C.qsub(sh("true", "-W", "depend=beforeany:" + t))
    check(out.returncode == 206, "exit %d %s" % (out.returncode, out.stderr))
    # t shows what it waits for: the mirror types of the registrations,
    # and no "on" left (PBS's register_dep)
    check("depend = afterok:%s@%s,afternotok:%s@%s\n"
          % (full(y1), C.server, full(y2), C.server) in qstat_f(t),
          qstat_f(t))
    check("depend = beforeok:%s@%s\n" % (full(t), C.server) in qstat_f(y1),
          qstat_f(y1))
    release(y1)
    C.wait_state(y1, "finished")
    check(C.job(t)["state"] == "held", C.job(t))
    check("depend = afternotok:%s@%s\n" % (full(y2), C.server)
          in qstat_f(t), qstat_f(t))
    release(y2)
    j = C.wait_state(t, "finished")
    check(j["run_count"] == 1 and j["exit_status"] == 0, j)
    rows = C.sql("SELECT (SELECT end_time FROM jobs WHERE id = %s) "
                 "<= start_time FROM jobs WHERE id = %s" % (seq(y2), seq(t)))
    check(rows == [["t"]], rows)
    # beforeok whose job fails: the target is deleted
    t = C.submit(sh("exit 0", "-W", "depend=on:1"))
    y = C.submit(sh("exit 1", "-W", "depend=beforeok:" + t))
    C.wait_state(y, "finished")
    j = C.job(t)
    check(j["state"] == "finished" and j["run_count"] == 0, j)
    check(j["comment"] == "Job deleted as result of dependency on job %s"
          % full(y), j)


def test_qdel_of_target_deletes_dependents_at_once():
    a = C.submit(sh("exit 0", "-h"))
    b = C.submit(sh("exit 0", "-W", "depend=afterany:" + a))
    c = C.submit(sh("exit 0", "-W", "depend=afterok:" + b))
    out = C.run("qdel", [a])
    check(out.returncode == 0, out.stderr)
    # qdel's transaction resolved them: no waiting here
    for dep, on in ((b, a), (c, b)):
        j = C.job(dep)
        check(j["state"] == "finished" and j["comment"]
              == "Job deleted as result of dependency on job %s" % full(on), j)
    # finished targets decide at submission
    out = C.qsub(sh("true", "-W", "depend=afterok:" + a))
    check(out.returncode == 0, out.stderr)
    j = C.job(out.stdout.strip())
    check(j["state"] == "finished" and "dependency on job %s" % full(a)
          in j["comment"], j)
    ok = C.submit(sh("exit 0"))
    C.wait_state(ok, "finished")
    b = C.submit(sh("exit 4", "-W", "depend=afterok:" + ok))
    check(C.wait_state(b, "finished")["exit_status"] == 4)


def test_sql_rule_matches_lib():
    # the same table as tests/unit/test-depend.c test_outcome
    want = {
        "after": ("met", "met", "met", "met", "unmet"),
        "afterok": ("wait", "met", "unmet", "unmet", "unmet"),
        "afternotok": ("wait", "unmet", "met", "met", "unmet"),
        "afterany": ("wait", "met", "met", "met", "unmet"),
    }
    for t, row in want.items():
        got = C.sql(
            "SELECT drover_depend_outcome('%s', 'started', NULL), "
            "drover_depend_outcome('%s', 'ended', 0), "
            "drover_depend_outcome('%s', 'ended', 3), "
            "drover_depend_outcome('%s', 'ended', NULL), "
            "drover_depend_outcome('%s', 'deleted', NULL)" % ((t,) * 5))
        check(tuple(got[0]) == row, (t, got))
    got = C.sql("SELECT drover_depend_add('on:2', 'afterok', '3.s@s'), "
                "drover_depend_add('afterok:1.s@s,on:2', 'afterok', '3.s@s'), "
                "drover_depend_add(NULL, 'after', '3.s@s'), "
                "drover_depend_set_on('afterok:1.s@s,on:2', 1), "
                "drover_depend_set_on('on:1,afterok:1.s@s', 0), "
                "drover_depend_set_on('on:1', 0) IS NULL")
    check(got == [["on:2,afterok:3.s@s", "afterok:1.s@s:3.s@s,on:2",
                   "after:3.s@s", "afterok:1.s@s,on:1", "afterok:1.s@s",
                   "t"]], got)
    got = C.sql("SELECT drover_depend_drop('afterok:1.s@s:2.s@s,afterany:"
                "1.s@s,on:1', 'afterok', '1.s@s'), drover_depend_drop("
                "'afterok:1.s@s', 'afterok', '1.s@s') IS NULL")
    check(got == [["afterok:2.s@s,afterany:1.s@s,on:1", "t"]], got)


def test_subjob_edge_resolved_by_direct_call():
    # what the job arrays' "subjob ended" point calls: an edge on subjob 7
    # of a target is resolved by (target, 7, event, exit status)
    a = C.submit(sh("exit 0", "-h"))
    b = C.submit(sh("exit 0", "-h"))
    C.sql("BEGIN; UPDATE jobs SET state = 'held', hold_types = 's' "
          "WHERE id = %s; INSERT INTO job_depends VALUES (%s, 7, 'afterok', "
          "%s); COMMIT" % (seq(b), seq(a), seq(b)))
    rows = C.sql("SELECT drover_depend_resolve(%s, 6, 'ended', 0, now())"
                 % seq(a))
    check(rows == [["0"]], rows)
    check(C.job(b)["state"] == "held")
    rows = C.sql("SELECT drover_depend_resolve(%s, 7, 'ended', 0, now())"
                 % seq(a))
    check(rows == [["1"]], rows)
    check(C.wait_state(b, "finished")["exit_status"] == 0)
    C.run("qdel", [a])


def test_block_true_exit_status():
    out = C.qsub(sh("exit 7", "-W", "block=true"))
    check(out.returncode == 7, "exit %d: %s" % (out.returncode, out.stderr))
    jid = out.stdout.strip()
    check(C.job(jid)["exit_status"] == 7)
    # a job that ends without running: 3, with its reason
    bad = C.submit(sh("exit 1"))
    C.wait_state(bad, "finished")
    out = C.qsub(sh("exit 0", "-W", "block=true", "-W",
                    "depend=afterok:" + bad))
    check(out.returncode == 3, "exit %d" % out.returncode)
    jid = out.stdout.strip()
    check(out.stderr == "qsub: %s Job deleted as result of dependency on "
          "job %s\n" % (jid, full(bad)), repr(out.stderr))
    # in a directive too; -z prints no id but still waits
    out = C.qsub(["-z"], script="#!/bin/sh\n#PBS -W block=true\nexit 4\n")
    check(out.returncode == 4 and out.stdout == "",
          (out.returncode, out.stdout))


def test_block_true_interrupted():
    a = C.submit(sh("exit 0", "-h"))
    p = subprocess.Popen([BIN + "/qsub", "-W", "block=true", "-W",
                          "depend=afterok:" + a, "--", "/bin/true"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=C.env, cwd=C.dir)
    jid = p.stdout.readline().strip()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    check(p.returncode == 2, "exit %d" % p.returncode)
    check(err == "qsub: wait for job %s interrupted by signal 2\n" % jid,
          repr(err))
    C.run("qdel", [a])


def test_job_wait_several():
    a = C.submit(sh("exit 0", "-h"))
    b = C.submit(sh("exit 4", "-h"))
    d = C.submit(sh("exit 0", "-W", "depend=afterok:" + b))
    p = subprocess.Popen([BIN + "/drover", "job", "wait", a, seq(b), d],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=C.env)
    release(a)
    release(b)
    out, err = p.communicate(timeout=120)
    check(p.returncode == 4, "exit %d: %s" % (p.returncode, err))
    check(out == "%s 0\n%s 4\n%s - Job deleted as result of dependency on "
          "job %s\n" % (full(a), full(b), full(d), full(b)), repr(out))
    out = C.run("drover", ["job", "wait", "99999"])
    check(out.returncode == 153, out.returncode)
    check("Unknown Job Id 99999.%s" % C.server in out.stderr, out.stderr)


def test_block_true_survives_qmgr_restart():
    a = C.submit(sh("exit 0", "-h"))
    p = subprocess.Popen([BIN + "/qsub", "-W", "block=true", "-W",
                          "depend=afterok:" + a, "--", "/bin/sh", "-c",
                          "exit 5"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=C.env,
                         cwd=C.dir)
    jid = p.stdout.readline().strip()
    check(jid.endswith("." + C.server), jid)
    log = C.dir + "/qmgr.log"
    C.qmgr.stop()
    with open(log) as f:
        before = len(f.read().splitlines())
    C.start_qmgr(["--log-level", "debug"])

    def waiter_back():
        with open(log) as f:
            lines = f.read().splitlines()[before:]
        return [l for l in lines if "GET /v1/jobs/%s" % seq(jid) in l]
    wait_until(waiter_back, 60, what="qsub's blocking query after restart")
    release(a)
    out, err = p.communicate(timeout=120)
    check(p.returncode == 5, "exit %d: %s" % (p.returncode, err))
    # one blocking query per change of the job (released, started,
    # finished), not a polling loop
    n = len(waiter_back())
    check(n <= 10, "%d queries for one job" % n)


def test_concurrent_dependents_of_one_target():
    a = C.submit(sh("exit 0", "-h"))
    results = []

    def submit_one():
        results.append(C.api("POST", "/v1/jobs",
                             {"owner": "root", "argv": ["/bin/true"],
                              "workdir": C.dir,
                              "depend": "afterany:%s" % seq(a)},
                             {"X-Drover-User": "root"}))
    threads = [threading.Thread(target=submit_one) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(len(results) == 40 and all(st == 201 for st, _ in results),
          [st for st, _ in results])
    ids = [str(j["id"]) for _, j in results]
    rows = C.sql("SELECT count(*) FROM job_depends WHERE target = %s"
                 % seq(a))
    check(rows == [["40"]], rows)
    release(a)
    wait_until(lambda: C.sql(
        "SELECT count(*) FROM jobs WHERE id IN (%s) AND state = 'finished' "
        "AND run_count = 1" % ",".join(ids)) == [["40"]], 120, 0.2,
        "40 dependents to run")


def chain(n, head_exit):
    """A held head and n-1 jobs each afterok on the one before."""
    head = C.submit(sh("exit %d" % head_exit, "-h"))
    ids = [int(seq(head))]
    for _ in range(n - 1):
        st, j = C.api("POST", "/v1/jobs",
                      {"owner": "root", "argv": ["/bin/true"],
                       "workdir": C.dir, "name": "link",
                       "depend": "afterok:%d" % ids[-1]},
                      {"X-Drover-User": "root"})
        check(st == 201, (st, j))
        ids.append(int(seq(j["id"])))
    return head, ids


def test_chain_of_1000_head_fails_in_one_transaction():
    head, ids = chain(1000, 1)
    rest = ",".join(str(i) for i in ids[1:])
    rows = C.sql("SELECT count(*) FROM jobs WHERE id IN (%s) AND state = "
                 "'held' AND hold_types = 's'" % rest)
    check(rows == [["999"]], rows)
    release(head)
    C.wait_state(head, "finished")
    # every link was deleted by the one transaction that ended the head:
    # one xmin, no polling pass, no scan
    rows = C.sql("SELECT count(*), count(DISTINCT xmin::text) FROM jobs "
                 "WHERE id IN (%s) AND state = 'finished' AND comment LIKE "
                 "'Job deleted as result of dependency on job %%'" % rest)
    check(rows == [["999", "1"]], rows)
    rows = C.sql("SELECT count(*) FROM job_depends")
    check(rows == [["0"]], rows)


def test_chain_of_1000_runs_in_order_without_polling():
    head, ids = chain(1000, 0)
    release(head)
    wait_until(lambda: C.job(ids[-1])["state"] == "finished", 280, 0.5,
               "the chain's last job")
    rows = C.sql("SELECT count(*) FROM jobs WHERE id IN (%s) AND "
                 "exit_status = 0 AND run_count = 1"
                 % ",".join(str(i) for i in ids))
    check(rows == [["1000"]], rows)
    # each link was released exactly once, by its target's end: its only
    # evaluation was made in the transaction that ended the one before (the
    # target's end time is the evaluation's creation time)
    rows = C.sql(
        "SELECT count(*) FROM jobs j JOIN jobs p ON p.id = (SELECT max(id) "
        "FROM jobs WHERE id < j.id AND id IN (%s)) "
        "JOIN evaluations e ON e.job_id = j.id "
        "WHERE j.id IN (%s) AND e.triggered_by = 'job-depend' "
        "AND e.create_time = p.end_time AND p.end_time <= j.start_time"
        % (",".join(str(i) for i in ids), ",".join(str(i) for i in ids[1:])))
    check(rows == [["999"]], rows)
    rows = C.sql("SELECT count(*) FROM evaluations WHERE job_id IN (%s)"
                 % ",".join(str(i) for i in ids[1:]))
    check(rows == [["999"]], rows)


def main():
    global C
    with cluster("depend", nodes=1) as c:
        C = c
        return run_tests([
            test_dependent_is_held_with_reason,
            test_unknown_and_bad_targets_refused,
            test_afterok_chain_head_fails_deletes_dependents,
            test_afternotok_runs_on_failure_afterok_does_not,
            test_afterany_runs_after_failure_and_success,
            test_after_start,
            test_before_types_with_on_count,
            test_qdel_of_target_deletes_dependents_at_once,
            test_sql_rule_matches_lib,
            test_concurrent_dependents_of_one_target,
            test_block_true_exit_status,
            test_block_true_interrupted,
            test_job_wait_several,
            test_block_true_survives_qmgr_restart,
            test_subjob_edge_resolved_by_direct_call,
            test_chain_of_1000_head_fails_in_one_transaction,
            test_chain_of_1000_runs_in_order_without_polling,
        ])


if __name__ == "__main__":
    raise SystemExit(main())
