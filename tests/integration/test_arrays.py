"""Job arrays end to end (qsub -J X-Y[:Z][%max]): every index runs with
PBS_ARRAY_INDEX and its own output files, %max caps concurrency even with
two schedulers, qdel of the array, of one subjob and of a range, qstat
-t/-J/-f/-F json, a 100,000-element array is one row until it runs, and a
lost subjob is requeued alone. Real PostgreSQL, real daemons."""

import json
import os
import socket

from harness import check, cluster, run_tests, wait_until

C = None
HOST = socket.gethostname()


def seq(jobid):
    return jobid.split("[")[0].split(".")[0]


def read(path, timeout=10):
    wait_until(lambda: os.path.exists(path), timeout, what=path)
    with open(path) as f:
        return f.read()


def subjobs(c, jid):
    """{index: (state, exit_status, run_count, start, end)} from the
    database, start and end as epoch seconds (floats) or None."""
    rows = c.sql("SELECT array_index, state, coalesce(exit_status::text, ''), "
                 "run_count, extract(epoch FROM start_time), "
                 "extract(epoch FROM end_time) FROM subjobs "
                 "WHERE job_id = %s ORDER BY array_index" % seq(jid))
    out = {}
    for r in rows:
        out[int(r[0])] = (r[1], r[2], int(r[3]),
                          float(r[4]) if r[4] else None,
                          float(r[5]) if r[5] else None)
    return out


def array_state(c, jid):
    return c.job(seq(jid))["state"]


def test_array_runs_every_index():
    script = ("#!/bin/sh\n#PBS -N arr\n#PBS -J 1-7:2\n"
              "echo idx=$PBS_ARRAY_INDEX id=$PBS_JOBID aid=$PBS_ARRAY_ID "
              "d=$DROVER_ARRAY_INDEX\n"
              "[ $PBS_ARRAY_INDEX = 5 ] && exit 3\nexit 0\n")
    jid = C.submit([], script=script)
    n = seq(jid)
    check(jid == "%s[].%s" % (n, C.server), "qsub printed %r" % jid)
    j = C.wait_state(n, "finished", 60)
    # PBS: 1 when a subjob exited non-zero
    check(j["exit_status"] == 1, "array exit status %r" % j["exit_status"])
    for i in (1, 3, 5, 7):
        text = read(os.path.join(C.dir, "arr.o%s.%d" % (n, i)))
        want = "idx=%d id=%s[%d].%s aid=%s[].%s d=%d" % (
            i, n, i, C.server, n, C.server, i)
        check(text.strip() == want, "output of %d: %r" % (i, text))
        check(os.path.exists(os.path.join(C.dir, "arr.e%s.%d" % (n, i))))
    check(not os.path.exists(os.path.join(C.dir, "arr.o%s.2" % n)))
    sj = subjobs(C, jid)
    check(sorted(sj) == [1, 3, 5, 7], "subjob rows %r" % sj)
    check(all(s[0] == "finished" for s in sj.values()), repr(sj))
    check(sj[5][1] == "3" and sj[1][1] == "0", repr(sj))

    out = C.run("qstat", ["-x", "-f", jid])
    check(out.returncode == 0, out.stderr)
    for line in ("Job Id: %s" % jid, "job_state = F", "array = True",
                 "array_indices_submitted = 1-7:2",
                 "array_state_count = Queued:0 Running:0 Exiting:0 "
                 "Expired:4", "Exit_status = 1",
                 "Output_Path = %s:%s/arr.o%s.^array_index^" % (HOST, C.dir, n)):
        check(line in out.stdout, "qstat -f lacks %r:\n%s" % (line, out.stdout))
    out = C.run("qstat", ["-x", "-f", "%s[5]" % n])
    check(out.returncode == 0, out.stderr)
    for line in ("Job Id: %s[5].%s" % (n, C.server), "job_state = X",
                 "array_id = %s[].%s" % (n, C.server), "array_index = 5",
                 "Exit_status = 3", "exec_host = node1/",
                 "exec_vnode = (node1:ncpus=1)",
                 "Output_Path = %s:%s/arr.o%s.5" % (HOST, C.dir, n)):
        check(line in out.stdout, "qstat -f of a subjob lacks %r:\n%s"
              % (line, out.stdout))
    # an index the array does not have
    out = C.run("qstat", ["-x", "%s[2]" % n])
    check(out.returncode == 153, "qstat of a missing index: %d %s"
          % (out.returncode, out.stderr))
    check(out.stderr.strip() == "qstat: Unknown Job Id %s[2].%s"
          % (n, C.server), out.stderr)


def test_qsub_rejects_bad_ranges():
    for bad in ("5", "3-3", "4-1", "1-5:0", "1-5%0", "x-y"):
        out = C.qsub(["-J", bad], script="#!/bin/sh\ntrue\n")
        check(out.returncode == 2, "-J %s: %d" % (bad, out.returncode))
        check(out.stderr.startswith("qsub: illegal -J value\n"), out.stderr)
        check("usage: qsub" in out.stderr, out.stderr)
    # an array deleted before it began: F, every subjob expired
    jid = C.submit(["-h", "-J", "1-3", "--", "/bin/true"])
    check(C.run("qdel", [jid]).returncode == 0)
    j = C.wait_state(seq(jid), "finished", 10)
    check(j["exit_status"] is None, repr(j))
    out = C.run("qstat", ["-x", "-f", jid])
    check("array_state_count = Queued:0 Running:0 Exiting:0 Expired:3 \n"
          in out.stdout and "array_indices_remaining = -\n" in out.stdout,
          out.stdout)
    out = C.qsub(["-J", "1-3", "-r", "n"], script="#!/bin/sh\ntrue\n")
    check(out.returncode == 2, "non-rerunnable array: %d" % out.returncode)
    check(out.stderr.startswith(
        "qsub:  cannot submit non-rerunable Array Job\n"), out.stderr)


def test_max_run_caps_concurrency():
    """Two schedulers of two workers each place an 8-subjob array with %2
    on 8 free cores: never more than 2 subjobs at once (from the recorded
    start and end times), started in index order."""
    with cluster("arrays-max", nodes=2, scheds=2,
                 sched_args=["--workers", "2"]) as c:
        jid = c.submit(["-J", "1-8%2", "--", "/bin/sleep", "1"])
        j = c.wait_state(seq(jid), "finished", 90)
        check(j["exit_status"] == 0, "exit %r" % j["exit_status"])
        sj = subjobs(c, jid)
        check(sorted(sj) == list(range(1, 9)), repr(sj))
        events = []
        for i, s in sj.items():
            check(s[3] is not None and s[4] is not None, repr(s))
            events.append((s[3], 1))
            events.append((s[4], -1))
        # ends before starts at the same instant: a slot freed is reused
        events.sort(key=lambda e: (e[0], e[1]))
        running = peak = 0
        for _, d in events:
            running += d
            peak = max(peak, running)
        check(peak == 2, "peak concurrency %d, want 2: %r" % (peak, sj))
        starts = [sj[i][3] for i in range(1, 9)]
        check(starts == sorted(starts), "not started in index order: %r"
              % starts)
        # every allocation is one subjob's, chunk 0
        rows = c.sql("SELECT count(*), count(DISTINCT array_index), "
                     "max(chunk_index) FROM allocations WHERE job_id = %s"
                     % seq(jid))
        check(rows == [["8", "8", "0"]], repr(rows))


def test_qdel_array_subjob_and_range_with_qstat():
    plain = C.submit(["-N", "plain", "--", "/bin/sleep", "60"])
    jid = C.submit(["-J", "0-9", "-N", "sleepy", "--", "/bin/sleep", "60"])
    n = seq(jid)
    # one node of 4 cores: the plain job and subjobs 0, 1, 2 run
    wait_until(lambda: sum(1 for s in subjobs(C, jid).values()
                           if s[0] == "running") == 3, 30,
               what="3 subjobs running")
    check(array_state(C, jid) == "running")
    # qstat shows the array B; -t its subjobs; -J only arrays
    out = C.run("qstat", [])
    rows = {l.split()[0]: l for l in out.stdout.splitlines()[2:]}
    check(rows["%s[].%s" % (n, C.server)].split()[4] == "B", out.stdout)
    check("%s[0].%s" % (n, C.server) not in rows, out.stdout)
    out = C.run("qstat", ["-t"])
    rows = {l.split()[0]: l for l in out.stdout.splitlines()[2:]}
    check(rows["%s[0].%s" % (n, C.server)].split()[4] == "R", out.stdout)
    check(rows["%s[9].%s" % (n, C.server)].split()[4] == "Q", out.stdout)
    check(seq(plain) + "." + C.server in rows, out.stdout)
    out = C.run("qstat", ["-J"])
    ids = [l.split()[0] for l in out.stdout.splitlines()[2:]]
    check(ids == ["%s[].%s" % (n, C.server)], out.stdout)
    out = C.run("qstat", ["-J", "-t"])
    ids = [l.split()[0] for l in out.stdout.splitlines()[2:]]
    check(len(ids) == 11 and ids[0] == "%s[].%s" % (n, C.server), out.stdout)
    out = C.run("qstat", ["-f", jid])
    check("array_state_count = Queued:7 Running:3 Exiting:0 Expired:0"
          in out.stdout, out.stdout)
    check("array_indices_remaining = 3-9" in out.stdout, out.stdout)
    out = C.run("qstat", ["-f", "-F", "json", jid])
    doc = json.loads(out.stdout)["Jobs"][jid]
    check(doc["array"] == "True" and doc["job_state"] == "B", repr(doc))
    check(doc["array_indices_submitted"] == "0-9", repr(doc))
    # PBS writes the counts each followed by a blank
    check(doc["array_state_count"]
          == "Queued:7 Running:3 Exiting:0 Expired:0 ", repr(doc))
    out = C.run("qstat", ["-f", "-F", "json", "%s[1]" % n])
    doc = json.loads(out.stdout)["Jobs"]["%s[1].%s" % (n, C.server)]
    check(doc["array_index"] == 1 and doc["job_state"] == "R", repr(doc))

    # a running subjob: stopped, X; its core goes to the next index (3)
    out = C.run("qdel", ["%s[1]" % n])
    check(out.returncode == 0, out.stderr)
    wait_until(lambda: subjobs(C, jid)[1][0] == "finished", 30,
               what="subjob 1 finished")
    wait_until(lambda: subjobs(C, jid).get(3, ("",))[0] == "running", 30,
               what="subjob 3 placed")
    # a queued subjob and a range of queued ones: X at once, never run
    check(C.run("qdel", ["%s[8]" % n]).returncode == 0)
    check(C.run("qdel", ["%s[5-6]" % n]).returncode == 0)
    sj = subjobs(C, jid)
    for i in (5, 6, 8):
        check(sj[i][0] == "finished" and sj[i][2] == 0, "%d: %r" % (i, sj))
    out = C.run("qstat", ["-t", "%s[]" % n])
    rows = {l.split()[0]: l.split()[4] for l in out.stdout.splitlines()[2:]}
    check(rows["%s[8].%s" % (n, C.server)] == "X", out.stdout)
    check(rows["%s[1].%s" % (n, C.server)] == "X", out.stdout)
    check(rows["%s[4].%s" % (n, C.server)] == "Q", out.stdout)
    out = C.run("qdel", ["%s[8]" % n])
    check(out.returncode == 55, "qdel of a finished subjob: %d %s"
          % (out.returncode, out.stderr))
    check(out.stderr.strip() == "qdel: Request invalid for finished array "
          "subjob %s[8].%s" % (n, C.server), out.stderr)
    out = C.run("qdel", ["%s[12]" % n])
    check(out.returncode == 153 and out.stderr.strip()
          == "qdel: Unknown Job Id %s[12].%s" % (n, C.server), out.stderr)
    # a range skips what is finished
    check(C.run("qdel", ["%s[7-8]" % n]).returncode == 0)
    out = C.run("qstat", ["-f", jid])
    check("array_indices_remaining = 4,9\n" in out.stdout, out.stdout)

    # the whole array: queued subjobs vanish, running ones are stopped
    check(C.run("qdel", [jid]).returncode == 0)
    j = C.wait_state(n, "finished", 30)
    sj = subjobs(C, jid)
    check(all(s[0] == "finished" for s in sj.values()), repr(sj))
    check(not any(i in sj and sj[i][2] > 0 for i in (4, 9)), repr(sj))
    act = C.sql("SELECT count(*) FROM allocations WHERE job_id = %s "
                "AND end_time IS NULL" % n)
    check(act == [["0"]], "active allocations left: %r" % act)
    check(C.run("qdel", [plain]).returncode == 0)
    C.wait_state(seq(plain), "finished", 30)


def test_large_array_is_one_row_until_it_runs():
    before = C.sql("SELECT count(*) FROM jobs")[0][0]
    jid = C.submit(["-h", "-J", "1-100000", "--", "/bin/sleep", "60"])
    n = seq(jid)
    check(int(C.sql("SELECT count(*) FROM jobs")[0][0]) == int(before) + 1)
    rows = C.sql("SELECT (SELECT count(*) FROM job_arrays WHERE job_id = %s),"
                 " (SELECT count(*) FROM subjobs WHERE job_id = %s),"
                 " (SELECT count(*) FROM allocations WHERE job_id = %s),"
                 " (SELECT total FROM job_arrays WHERE job_id = %s)"
                 % (n, n, n, n))
    check(rows == [["1", "0", "0", "100000"]], repr(rows))
    out = C.run("qstat", ["-f", jid])
    check("array_indices_remaining = 1-100000" in out.stdout, out.stdout)
    check("job_state = H" in out.stdout, out.stdout)
    out = C.run("qstat", ["-t", "%s[2]" % n])
    check(out.stdout.splitlines()[2].split()[4] == "H", out.stdout)
    # released: rows appear only for what is placed (4 cores)
    check(C.run("qrls", [jid]).returncode == 0)
    wait_until(lambda: sum(1 for s in subjobs(C, jid).values()
                           if s[0] == "running") == 4, 30,
               what="4 subjobs running")
    rows = C.sql("SELECT (SELECT count(*) FROM subjobs WHERE job_id = %s),"
                 " (SELECT count(*) FROM allocations WHERE job_id = %s),"
                 " (SELECT max(array_index) FROM subjobs WHERE job_id = %s)"
                 % (n, n, n))
    check(rows == [["4", "4", "4"]], repr(rows))
    # a range of 50,001 queued subjobs is deleted in one request
    check(C.run("qdel", ["%s[50000-100000]" % n]).returncode == 0)
    out = C.run("qstat", ["-f", jid])
    check("array_indices_remaining = 5-49999\n" in out.stdout, out.stdout)
    check("array_state_count = Queued:49995 Running:4 Exiting:0 "
          "Expired:50001 \n" in out.stdout, out.stdout)
    check(C.run("qdel", [jid]).returncode == 0)
    C.wait_state(n, "finished", 30)


def test_hold_and_release_a_begun_array():
    """qhold 12[] of an array that has begun holds its queued remainder:
    the running subjobs end, nothing more starts, the array stays B with
    its queued subjobs H; qrls lets the rest run."""
    jid = C.submit(["-J", "1-6", "--", "/bin/sleep", "2"])
    n = seq(jid)
    wait_until(lambda: len(subjobs(C, jid)) == 4, 30, what="4 placed")
    check(C.run("qhold", [jid]).returncode == 0)
    check(C.job(n)["hold_types"] == "u")
    wait_until(lambda: [s[0] for s in subjobs(C, jid).values()]
               == ["finished"] * 4, 30, what="the 4 running ones ended")
    check(sorted(subjobs(C, jid)) == [1, 2, 3, 4], repr(subjobs(C, jid)))
    check(array_state(C, jid) == "running")
    out = C.run("qstat", ["-t", jid])
    rows = {l.split()[0]: l.split()[4] for l in out.stdout.splitlines()[2:]}
    check(rows["%s[].%s" % (n, C.server)] == "B", out.stdout)
    check(rows["%s[5].%s" % (n, C.server)] == "H", out.stdout)
    check(rows["%s[1].%s" % (n, C.server)] == "X", out.stdout)
    pend = C.sql("SELECT count(*) FROM evaluations WHERE job_id = %s AND "
                 "status IN ('pending', 'leased', 'blocked')" % n)
    check(pend == [["0"]], "a held array has no evaluation: %r" % pend)
    check(C.run("qrls", [jid]).returncode == 0)
    j = C.wait_state(n, "finished", 30)
    check(j["exit_status"] == 0, repr(j["exit_status"]))
    check(sorted(subjobs(C, jid)) == list(range(1, 7)))


def test_lost_subjob_is_requeued_alone():
    """Two one-core nodes run subjobs 1 and 2; node1's daemon dies and
    comes back: its subjob is lost and placed again (run_count 2), the other
    runs on untouched, and the array never leaves B until both finish."""
    with cluster("arrays-lost", nodes=2, node_topology="pack:1 core:1 pu:1") \
            as c:
        jid = c.submit(["-J", "1-2", "--", "/bin/sleep", "6"])
        wait_until(lambda: c.sql("SELECT count(*) FROM allocations WHERE "
                                 "client_status = 'running'") == [["2"]],
                   30, what="both running on their nodes")
        on1 = c.sql("SELECT a.array_index FROM allocations a JOIN nodes n "
                    "ON n.id = a.node_id WHERE n.name = 'node1' "
                    "AND a.job_id = %s" % seq(jid))[0][0]
        other = 3 - int(on1)
        c.nodeds[0].kill()
        c.start_noded("node1")  # kills what its last run left: lost
        wait_until(lambda: subjobs(c, jid)[int(on1)][2] == 2, 30,
                   what="subjob %s placed again" % on1)
        check(array_state(c, jid) == "running")
        j = c.wait_state(seq(jid), "finished", 60)
        check(j["exit_status"] == 0, "exit %r" % j["exit_status"])
        sj = subjobs(c, jid)
        check(sj[int(on1)][2] == 2 and sj[other][2] == 1, repr(sj))
        check(sj[int(on1)][1] == "0" and sj[other][1] == "0", repr(sj))
        lost = c.sql("SELECT count(*) FROM allocations WHERE job_id = %s "
                     "AND client_status = 'lost'" % seq(jid))
        check(lost == [["1"]], repr(lost))


def test_subjob_chunks_are_a_gang():
    """-J 1-3 -l select=2:ncpus=1 -l place=scatter on two 1-core nodes:
    each subjob takes both nodes at once (its chunks are a gang), so the
    subjobs run one after another; chunk 0 runs the script with a
    PBS_NODEFILE of the subjob's two hosts only."""
    with cluster("arrays-gang", nodes=2,
                 node_topology="pack:1 core:1 pu:1") as c:
        jid = c.submit(["-J", "1-3", "-N", "gang", "-l", "select=2:ncpus=1",
                        "-l", "place=scatter"],
                       script="#!/bin/sh\nsort $PBS_NODEFILE | tr '\\n' ' '\n"
                              "echo $PBS_ARRAY_INDEX\nsleep 1\n")
        n = seq(jid)
        j = c.wait_state(n, "finished", 60)
        check(j["exit_status"] == 0, "exit %r" % j["exit_status"])
        for i in (1, 2, 3):
            text = read(os.path.join(c.dir, "gang.o%s.%d" % (n, i)))
            check(text.split() == ["node1", "node2", str(i)],
                  "subjob %d: %r" % (i, text))
        rows = c.sql("SELECT array_index, count(*), "
                     "string_agg(chunk_index::text, ',' ORDER BY chunk_index), "
                     "count(DISTINCT node_id) FROM allocations "
                     "WHERE job_id = %s GROUP BY array_index "
                     "ORDER BY array_index" % n)
        check(rows == [[str(i), "2", "0,1", "2"] for i in (1, 2, 3)],
              repr(rows))
        sj = subjobs(c, jid)
        for i in (1, 2):
            check(sj[i][4] <= sj[i + 1][3] + 0.001,
                  "subjobs %d and %d overlapped: %r" % (i, i + 1, sj))
        out = c.run("qstat", ["-x", "-f", "%s[2]" % n])
        check("exec_host = node" in out.stdout and "+node" in out.stdout,
              out.stdout)


def main():
    global C
    rc = 0
    with cluster("arrays") as c:
        C = c
        rc |= run_tests([
            test_array_runs_every_index,
            test_qsub_rejects_bad_ranges,
            test_qdel_array_subjob_and_range_with_qstat,
            test_large_array_is_one_row_until_it_runs,
            test_hold_and_release_a_begun_array,
        ])
    rc |= run_tests([test_max_run_caps_concurrency,
                     test_subjob_chunks_are_a_gang,
                     test_lost_subjob_is_requeued_alone])
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
