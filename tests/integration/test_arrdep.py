"""Dependencies on job arrays and subjobs (qsub -W depend=afterok:124[] /
afterok:124[7]), arrays that depend on jobs, subjob ids in pbsnodes and
GET /v1/nodes, and queue limits counting subjobs (issue 4 items 2 and 3),
with real daemons.

Targets are submitted held (-h) and released once their dependents are in,
so that no test depends on how fast anything runs."""

from harness import check, cluster, run_tests, wait_until

C = None


def seq(jobid):
    return str(jobid).split("[")[0].split(".")[0]


def qstat_f(jobid):
    out = C.run("qstat", ["-x", "-f", "-w", jobid])
    check(out.returncode == 0, "qstat -f %s: %s" % (jobid, out.stderr))
    return out.stdout


def release(jobid):
    out = C.run("qrls", [jobid])
    check(out.returncode == 0, "qrls %s: %s" % (jobid, out.stderr))


def fails_on(idx):
    """An array body that exits 1 for subjob idx, 0 for the others."""
    return ["--", "/bin/sh", "-c",
            'test "$PBS_ARRAY_INDEX" != %d' % idx]


def times(jobid):
    rows = C.sql("SELECT extract(epoch FROM start_time), "
                 "extract(epoch FROM end_time) FROM jobs WHERE id = %s"
                 % seq(jobid))
    return float(rows[0][0]), float(rows[0][1])


def test_afterok_whole_array_that_succeeds():
    arr = C.submit(["-h", "-J", "1-3", "--", "/bin/true"])
    check(arr.endswith("[].%s" % C.server), arr)
    dep = C.submit(["-W", "depend=afterok:%s" % arr, "--", "/bin/true"])
    j = C.job(dep)
    check(j["state"] == "held" and j["hold_types"] == "s", j)
    line = "depend = afterok:%s[].%s@%s" % (seq(arr), C.server, C.server)
    check(line in qstat_f(dep), qstat_f(dep))
    # the array's bare number names the array as a whole
    bare = C.submit(["-W", "depend=afterok:%s" % seq(arr), "--", "/bin/true"])
    check(line in qstat_f(bare), qstat_f(bare))
    # before types register on their target: not on arrays
    out = C.qsub(["-W", "depend=beforeok:%s" % arr, "--", "/bin/true"])
    check(out.returncode == 206 and "Invalid Job Dependency" in out.stderr,
          (out.returncode, out.stderr))
    release(arr)
    j = C.wait_state(dep, "finished", 60)
    check(j["exit_status"] == 0, j)
    check(C.wait_state(bare, "finished", 60)["exit_status"] == 0)
    check("depend =" not in qstat_f(bare), qstat_f(bare))
    a = C.job(seq(arr))
    check(a["state"] == "finished" and a["exit_status"] == 0, a)
    # the dependent ran after the last subjob ended
    last_end = float(C.sql("SELECT extract(epoch FROM max(end_time)) "
                           "FROM subjobs WHERE job_id = %s" % seq(arr))[0][0])
    check(times(dep)[0] >= last_end, (times(dep), last_end))
    check("depend =" not in qstat_f(dep), qstat_f(dep))
    # submitted after the array ended: met at once, never held
    late = C.submit(["-W", "depend=afterok:%s" % arr, "--", "/bin/true"])
    check(C.wait_state(late, "finished")["exit_status"] == 0)


def test_afterok_whole_array_with_a_failing_subjob():
    arr = C.submit(["-h", "-J", "1-3"] + fails_on(2))
    ok = C.submit(["-W", "depend=afterok:%s" % arr, "--", "/bin/true"])
    notok = C.submit(["-W", "depend=afternotok:%s" % arr, "--",
                      "/bin/true"])
    release(arr)
    j = C.wait_state(ok, "finished", 60)
    comment = "Job deleted as result of dependency on job %s[].%s" % (
        seq(arr), C.server)
    check(j.get("comment") == comment, j)
    check("comment = %s" % comment in qstat_f(ok), qstat_f(ok))
    check(C.job(seq(arr))["exit_status"] == 1, C.job(seq(arr)))
    check(C.wait_state(notok, "finished", 60)["exit_status"] == 0)
    # submitted after the array failed: deleted at once, same comment
    late = C.submit(["-W", "depend=afterok:%s" % arr, "--", "/bin/true"])
    j = C.job(late)
    check(j["state"] == "finished" and j.get("comment") == comment, j)


def test_afterok_on_one_subjob():
    arr = C.submit(["-h", "-J", "1-3"] + fails_on(3))
    s = seq(arr)
    on1 = C.submit(["-W", "depend=afterok:%s[1]" % s, "--", "/bin/true"])
    on3 = C.submit(["-W", "depend=afterok:%s[3]" % s, "--", "/bin/true"])
    line = "depend = afterok:%s[1].%s@%s" % (s, C.server, C.server)
    check(line in qstat_f(on1), qstat_f(on1))
    # an index the array does not have, or array syntax on a plain job
    out = C.qsub(["-W", "depend=afterok:%s[9]" % s, "--", "/bin/true"])
    check(out.returncode == 153 and out.stderr == "qsub: Unknown Job Id "
          "%s[9].%s\n" % (s, C.server), (out.returncode, out.stderr))
    plain = C.submit(["-h", "--", "/bin/true"])
    out = C.qsub(["-W", "depend=afterok:%s[]" % seq(plain), "--",
                  "/bin/true"])
    check(out.returncode != 0 and "Unknown Job Id" in out.stderr, out.stderr)
    C.run("qdel", [plain])
    release(arr)
    check(C.wait_state(on1, "finished", 60)["exit_status"] == 0)
    j = C.wait_state(on3, "finished", 60)
    check(j.get("comment") == "Job deleted as result of dependency on job "
          "%s[3].%s" % (s, C.server), j)
    # the dependent on subjob 1 ran after subjob 1 ended
    end1 = float(C.sql("SELECT extract(epoch FROM end_time) FROM subjobs "
                       "WHERE job_id = %s AND array_index = 1" % s)[0][0])
    check(times(on1)[0] >= end1, (times(on1), end1))
    # decided at submission once the subjob ended
    late1 = C.submit(["-W", "depend=afterok:%s[1]" % s, "--", "/bin/true"])
    check(C.wait_state(late1, "finished")["exit_status"] == 0)
    late3 = C.submit(["-W", "depend=afternotok:%s[3]" % s, "--",
                      "/bin/true"])
    check(C.wait_state(late3, "finished")["exit_status"] == 0)


def test_subjob_edges_of_a_deleted_array():
    """qdel of an array that never ran: dependents on its subjobs can
    never be satisfied, and are deleted with the subjob's id."""
    arr = C.submit(["-h", "-J", "1-3", "--", "/bin/true"])
    s = seq(arr)
    dep = C.submit(["-W", "depend=afterok:%s[2]" % s, "--", "/bin/true"])
    anyd = C.submit(["-W", "depend=afterany:%s[]" % s, "--", "/bin/true"])
    out = C.run("qdel", [arr])
    check(out.returncode == 0, out.stderr)
    j = C.wait_state(dep, "finished")
    check(j.get("comment") == "Job deleted as result of dependency on job "
          "%s[2].%s" % (s, C.server), j)
    j = C.wait_state(anyd, "finished")
    check(j.get("comment") == "Job deleted as result of dependency on job "
          "%s[].%s" % (s, C.server), j)


def test_qdel_of_a_queued_subjob_and_after_on_an_array():
    """qdel 124[2] before it ran: its dependents are deleted; after:124[]
    is met once a subjob begins, while the array still runs."""
    arr = C.submit(["-h", "-J", "1-3", "--", "/bin/sleep", "60"])
    s = seq(arr)
    on2 = C.submit(["-W", "depend=afterany:%s[2]" % s, "--", "/bin/true"])
    began = C.submit(["-W", "depend=after:%s[]" % s, "--", "/bin/true"])
    out = C.run("qdel", ["%s[2]" % s])
    check(out.returncode == 0, out.stderr)
    j = C.wait_state(on2, "finished")
    check(j.get("comment") == "Job deleted as result of dependency on job "
          "%s[2].%s" % (s, C.server), j)
    check(C.job(began)["state"] == "held", C.job(began))
    release(arr)
    check(C.wait_state(began, "finished", 60)["exit_status"] == 0)
    check(C.job(s)["state"] == "running", C.job(s))
    C.run("qdel", [arr])
    C.wait_state(s, "finished")


def test_array_held_by_a_dependency():
    first = C.submit(["-h", "--", "/bin/true"])
    arr = C.submit(["-J", "1-3", "-W", "depend=afterok:%s" % first, "--",
                    "/bin/true"])
    a = C.job(seq(arr))
    check(a["state"] == "held" and a["hold_types"] == "s", a)
    check("job_state = H" in qstat_f(arr), qstat_f(arr))
    check(C.sql("SELECT count(*) FROM subjobs WHERE job_id = %s"
                % seq(arr)) == [["0"]], "subjobs ran while held")
    release(first)
    a = C.wait_state(seq(arr), "finished", 60)
    check(a["exit_status"] == 0, a)
    rows = C.sql("SELECT array_index, exit_status FROM subjobs "
                 "WHERE job_id = %s ORDER BY 1" % seq(arr))
    check(rows == [["1", "0"], ["2", "0"], ["3", "0"]], rows)
    # a dependency that fails deletes the whole array
    bad = C.submit(["-h", "--", "/bin/false"])
    arr2 = C.submit(["-J", "1-3", "-W", "depend=afterok:%s" % bad, "--",
                     "/bin/true"])
    release(bad)
    a = C.wait_state(seq(arr2), "finished", 60)
    check(a.get("comment", "").startswith("Job deleted as result of "
                                          "dependency on job %s" % seq(bad)),
          a)


def test_nodes_show_subjob_ids():
    arr = C.submit(["-J", "1-2", "--", "/bin/sleep", "60"])
    s = seq(arr)
    wait_until(lambda: C.sql("SELECT count(*) FROM subjobs WHERE job_id = %s "
                             "AND state = 'running'" % s) == [["2"]],
               30, what="both subjobs running")
    want = ["%s[%d].%s" % (s, i, C.server) for i in (1, 2)]
    st, body = C.api("GET", "/v1/nodes")
    check(st == 200, (st, body))
    ids = [j for n in body["nodes"] for j in n["jobs"]]
    check(sorted(ids) == want, ids)
    node = [n for n in body["nodes"] if n["jobs"]][0]
    st, one = C.api("GET", "/v1/nodes/%d" % node["id"])
    check(st == 200, (st, one))
    check(sorted(a["job_id"] for a in one["allocations"]) == want, one)
    out = C.run("pbsnodes", ["-a"])
    check(out.returncode == 0, out.stderr)
    for jid in want:
        check("%s/" % jid in out.stdout, out.stdout)
    check("%s.%s/" % (s, C.server) not in out.stdout, out.stdout)
    C.run("qdel", [arr])
    C.wait_state(s, "finished")


def peak(intervals):
    """The most intervals (start, end) open at once; an end before a start
    at the same instant (a slot freed is reused)."""
    events = []
    for a, b in intervals:
        check(a is not None and b is not None, repr(intervals))
        events += [(a, 1), (b, -1)]
    events.sort(key=lambda e: (e[0], e[1]))
    running = top = 0
    for _, d in events:
        running += d
        top = max(top, running)
    return top


def test_queue_max_run_counts_subjobs():
    """PBS's max_run counts each running subjob as a job: two schedulers
    of two workers each, 8 free cores, a queue with max_run 2 holding an
    8-subjob array and two plain jobs: never more than 2 at once (from the
    recorded start and end times), and the cap is reached."""
    with cluster("arrdep-queue", nodes=2, scheds=2,
                 sched_args=["--workers", "2"]) as c:
        out = c.run("qmgr", ["-c", "create queue cap2 enabled=True,"
                             "started=False"])
        check(out.returncode == 0, out.stderr)
        out = c.run("qmgr", ["-c", "set queue cap2 max_run = "
                             "'[o:PBS_ALL=2]'"])
        check(out.returncode == 0, out.stderr)
        arr = c.submit(["-q", "cap2", "-J", "1-8", "--", "/bin/sleep", "1"])
        plain = [c.submit(["-q", "cap2", "--", "/bin/sleep", "1"])
                 for _ in range(2)]
        out = c.run("qmgr", ["-c", "set queue cap2 started = True"])
        check(out.returncode == 0, out.stderr)
        for jid in [seq(arr)] + plain:
            j = c.wait_state(jid, "finished", 120)
            check(j["exit_status"] == 0, "%s: %r" % (jid, j))
        rows = c.sql("SELECT extract(epoch FROM start_time), "
                     "extract(epoch FROM end_time) FROM subjobs "
                     "WHERE job_id = %s UNION ALL "
                     "SELECT extract(epoch FROM start_time), "
                     "extract(epoch FROM end_time) FROM jobs "
                     "WHERE id IN (%s)" % (seq(arr), ",".join(
                         seq(p) for p in plain)))
        check(len(rows) == 10, rows)
        top = peak([(float(a), float(b)) for a, b in rows])
        check(top == 2, "peak %d, want 2: %r" % (top, rows))


def main():
    global C
    rc = 0
    with cluster("arrdep") as c:
        C = c
        rc |= run_tests([
            test_afterok_whole_array_that_succeeds,
            test_afterok_whole_array_with_a_failing_subjob,
            test_afterok_on_one_subjob,
            test_subjob_edges_of_a_deleted_array,
            test_qdel_of_a_queued_subjob_and_after_on_an_array,
            test_array_held_by_a_dependency,
            test_nodes_show_subjob_ids,
        ])
    rc |= run_tests([test_queue_max_run_counts_subjobs])
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
