"""Chunks and multi-node jobs with real daemons: a gang job waits for
enough nodes and starts on all of them at once, several chunk kinds land
as asked, place=scatter|pack|free, -l nodes=N:ppn=C, PBS_NODEFILE (lines
per core or per mpiprocs, in chunk order), OMP_NUM_THREADS, exec_host and
exec_vnode, place=excl, and pbsdsh across the nodes of a job.

Nodes run on this host under different names (--name), each a synthetic
4-core machine with 8 GB; node2 joins only in the first test."""

import os

import subprocess

from harness import (BIN, TEST_USER, check, cluster, ensure_test_user,
                     run_tests, wait_until)

PBSDSH = os.path.join(BIN, "pbsdsh")

C = None


def seq(jobid):
    return jobid.split(".")[0]


def allocs(jobid):
    """Live allocations of the job, in chunk order: (chunk, node, ncpus)."""
    rows = C.sql("SELECT a.chunk_index, n.name, a.ncpus, a.mem, a.ngpus "
                 "FROM allocations a JOIN nodes n ON n.id = a.node_id "
                 "WHERE a.job_id = %d AND a.end_time IS NULL "
                 "ORDER BY a.chunk_index" % int(seq(jobid)))
    return [(int(r[0]), r[1], int(r[2]), int(r[3]), int(r[4])) for r in rows]


def wait_running(jobid, timeout=30):
    C.wait_state(jobid, "running", timeout)
    return allocs(jobid)


def wait_file(path, marker="", timeout=30):
    """The file's text once it holds marker (a job still writing it may
    not have written everything yet)."""
    def done():
        text = open(path).read() if os.path.exists(path) else ""
        return text if text and marker in text else None
    return wait_until(done, timeout, what="%r in %s" % (marker, path))


def qdel(*jobids):
    for j in jobids:
        C.run("qdel", [j])
    for j in jobids:
        C.wait_state(j, "finished")


def test_gang_waits_for_second_node():
    jid = C.submit(["-l", "select=2:ncpus=2", "-l", "place=scatter", "--",
                    "/bin/sleep", "30"])
    wait_until(lambda: (C.job(jid).get("comment") or "").startswith(
        "Not Running") or C.job(jid).get("comment"), 20,
        what="a comment on the waiting gang")
    check(C.job(jid)["state"] == "queued", repr(C.job(jid)))
    check(allocs(jid) == [], "placed before node2 joined: %r" % allocs(jid))
    C.start_noded("node2")
    C.wait_nodes_ready(2)
    got = wait_running(jid)
    check(sorted(a[1] for a in got) == ["node1", "node2"], repr(got))
    # every allocation was created in one commit, after node2 registered
    rows = C.sql("SELECT count(DISTINCT a.create_time), "
                 "bool_and(a.create_time >= n2.register_time) "
                 "FROM allocations a, nodes n2 WHERE n2.name = 'node2' "
                 "AND a.job_id = %s" % seq(jid))
    check(rows == [["1", "t"]], "allocation times %r" % rows)
    # and both chunks reached running (the sister holds its cores)
    wait_until(lambda: C.sql("SELECT count(*) FROM allocations WHERE job_id "
                             "= %s AND client_status = 'running'"
                             % seq(jid)) == [["2"]], 20,
               what="both chunks running")
    # nodes report start times in whole seconds
    rows = C.sql("SELECT bool_and(a.start_time >= "
                 "date_trunc('second', n2.register_time)) "
                 "FROM allocations a, nodes n2 WHERE n2.name = 'node2' "
                 "AND a.job_id = %s" % seq(jid))
    check(rows == [["t"]], "a chunk started before node2 joined: %r" % rows)
    j = C.job(jid)
    check(j["exec_host"] is not None and
          [h.split("/")[0] for h in j["exec_host"].split("+")] ==
          [a[1] for a in got], "exec_host %r" % j["exec_host"])
    check(j["exec_vnode"] == "(%s:ncpus=2)+(%s:ncpus=2)" % (got[0][1],
                                                            got[1][1]),
          "exec_vnode %r" % j["exec_vnode"])
    qdel(jid)


def test_chunk_kinds_and_nodefile():
    out = os.path.join(C.dir, "kinds.out")
    jid = C.submit(["-l", "select=1:ncpus=3:mem=2gb+2:ncpus=1",
                    "-j", "oe", "-o", out, "--", "/bin/sh", "-c",
                    "cat $PBS_NODEFILE; echo omp=$OMP_NUM_THREADS "
                    "ncpus=$NCPUS; sleep 30"])
    got = wait_running(jid)
    check([(a[2], a[3]) for a in got] == [(3, 2 << 30), (1, 0), (1, 0)],
          repr(got))
    text = wait_file(out, "omp=")
    lines = text.splitlines()
    hosts = [a[1] for a in got]
    want = [hosts[0]] * 3 + [hosts[1]] + [hosts[2]]
    check(lines[:5] == want, "nodefile %r, want %r" % (lines, want))
    check("omp=3 ncpus=3" in text, text)
    j = C.job(jid)
    check(j["resource_list"]["select"] == "1:ncpus=3:mem=2gb+2:ncpus=1",
          repr(j["resource_list"]))
    check(j["resource_list"]["nodect"] == "3", repr(j["resource_list"]))
    qdel(jid)


def test_mpiprocs_ompthreads():
    out = os.path.join(C.dir, "mpi.out")
    jid = C.submit(["-l", "select=2:ncpus=2:mpiprocs=1:ompthreads=2",
                    "-l", "place=scatter", "-j", "oe", "-o", out, "--",
                    "/bin/sh", "-c", "cat $PBS_NODEFILE; "
                    "echo omp=$OMP_NUM_THREADS; sleep 30"])
    got = wait_running(jid)
    text = wait_file(out, "omp=")
    check(text.splitlines()[:3] == [got[0][1], got[1][1], "omp=2"], text)
    qdel(jid)


def test_scatter_pack_free():
    sc = C.submit(["-l", "select=2:ncpus=1", "-l", "place=scatter", "--",
                   "/bin/sleep", "30"])
    got = wait_running(sc)
    check(len({a[1] for a in got}) == 2, "scatter shared a node: %r" % got)
    qdel(sc)
    pk = C.submit(["-l", "select=2:ncpus=2", "-l", "place=pack", "--",
                   "/bin/sleep", "30"])
    got = wait_running(pk)
    check(len({a[1] for a in got}) == 1, "pack used two nodes: %r" % got)
    qdel(pk)
    # pack that no single 4-core node can hold never runs
    never = C.submit(["-l", "select=3:ncpus=2", "-l", "place=pack", "--",
                      "/bin/true"])
    wait_until(lambda: (C.job(never).get("comment") or "").startswith(
        "Can Never Run"), 20, what="Can Never Run for a pack of 6 cores")
    qdel(never)
    # free: chunks share nodes when they fit (3 chunks of 2 on 2 nodes)
    fr = C.submit(["-l", "select=3:ncpus=2", "-l", "place=free", "--",
                   "/bin/sleep", "30"])
    got = wait_running(fr)
    check(len(got) == 3 and len({a[1] for a in got}) == 2, repr(got))
    qdel(fr)


def test_nodes_ppn():
    out = os.path.join(C.dir, "nodes.out")
    jid = C.submit(["-l", "nodes=2:ppn=1", "-j", "oe", "-o", out, "--",
                    "/bin/sh", "-c", "cat $PBS_NODEFILE"])
    C.wait_state(jid, "finished")
    j = C.job(jid)
    check(j["exit_status"] == 0, repr(j))
    check(j["resource_list"]["select"] == "2:ncpus=1:mpiprocs=1" and
          j["resource_list"]["place"] == "scatter", repr(j["resource_list"]))
    lines = wait_file(out).splitlines()
    check(sorted(lines) == ["node1", "node2"], repr(lines))
    # too wide for two 4-core nodes: can never run
    wide = C.submit(["-l", "nodes=3:ppn=1", "--", "/bin/true"])
    wait_until(lambda: (C.job(wide).get("comment") or "").startswith(
        "Can Never Run"), 20, what="Can Never Run for nodes=3")
    qdel(wide)
    bad = C.qsub(["-l", "nodes=2:ppn=1", "-l", "select=1:ncpus=1", "--",
                  "/bin/true"])
    check(bad.returncode != 0, "nodes with select accepted")
    # host names: each host one chunk, on that node
    for spec, want in ((["-l", "nodes=node2:ppn=2+node1"]),
                       [("node2", 2), ("node1", 1)]), \
                      ((["-l", "select=1:ncpus=1:host=node1+1:ncpus=3:"
                         "host=node2"]), [("node1", 1), ("node2", 3)]):
        hj = C.submit(spec + ["--", "/bin/sleep", "30"])
        got = wait_running(hj)
        check([(a[1], a[2]) for a in got] == want, "%r: %r" % (spec, got))
        qdel(hj)


def excl_holders():
    return dict((r[0], r[1]) for r in C.sql(
        "SELECT name, coalesce(excl_job::text, '') FROM nodes"))


def test_excl_keeps_others_off():
    ex = C.submit(["-l", "select=1:ncpus=1", "-l", "place=excl", "--",
                   "/bin/sleep", "60"])
    got = wait_running(ex)
    held = got[0][1]
    other = "node2" if held == "node1" else "node1"
    check(excl_holders()[held] == seq(ex), repr(excl_holders()))
    check(C.job(ex)["resource_list"]["place"] == "free:excl",
          repr(C.job(ex)["resource_list"]))
    # a one-core job goes to the other node, though the held one has room
    small = [C.submit(["--", "/bin/sleep", "60"]) for _ in range(2)]
    for j in small:
        check(wait_running(j)[0][1] == other, "joined the held node")
    # a gang that needs both nodes waits while the node is held
    gang = C.submit(["-l", "select=2:ncpus=1", "-l", "place=scatter", "--",
                     "/bin/true"])
    wait_until(lambda: C.job(gang).get("comment"), 20,
               what="a comment on the waiting gang")
    check(C.job(gang)["state"] == "queued", repr(C.job(gang)))
    qdel(ex)
    wait_until(lambda: excl_holders()[held] == "", 20,
               what="the node to be released")
    C.wait_state(gang, "finished", 30)
    check(C.job(gang)["exit_status"] == 0, repr(C.job(gang)))
    qdel(*small)


def test_excl_waits_for_empty_nodes():
    busy = C.submit(["-l", "select=2:ncpus=1", "-l", "place=scatter", "--",
                     "/bin/sleep", "60"])
    wait_running(busy)
    ex = C.submit(["-l", "select=1:ncpus=1", "-l", "place=pack:excl", "--",
                   "/bin/sleep", "60"])
    wait_until(lambda: C.job(ex).get("comment"), 20,
               what="a comment on the waiting exclusive job")
    check(C.job(ex)["state"] == "queued" and allocs(ex) == [],
          "placed on a busy node: %r" % allocs(ex))
    qdel(busy)
    got = wait_running(ex)
    check(len(got) == 1, repr(got))
    # shared (the default) never sets a holder
    sh = C.submit(["-l", "select=1:ncpus=1", "-l", "place=scatter:shared",
                   "--", "/bin/sleep", "60"])
    got2 = wait_running(sh)
    check(got2[0][1] != got[0][1], "joined the exclusive job's node")
    check(excl_holders()[got2[0][1]] == "", repr(excl_holders()))
    qdel(ex, sh)


def pbsdsh_job(args, body, out):
    """A two-chunk job (one per node) whose script runs body; returns its
    id once finished, with the script's output."""
    script = "#!/bin/sh\n%s\n" % body.replace("pbsdsh ", PBSDSH + " ")
    jid = C.submit(["-l", "select=2:ncpus=1", "-l", "place=scatter", "-o",
                    out, "-e", out + ".err"] + list(args), script=script)
    C.wait_state(jid, "finished", 60)
    return jid, wait_file(out) if os.path.exists(out) else ""


def test_pbsdsh_runs_on_every_node():
    out = os.path.join(C.dir, "dsh.out")
    jid, text = pbsdsh_job([], "pbsdsh -- /bin/sh -c "
                           "'echo on $(cat /proc/sys/kernel/hostname) "
                           "node=$PBS_NODENUM task=$PBS_TASKNUM "
                           "job=$PBS_JOBID drover=$DROVER_NODE_NAME'; "
                           "echo rc=$?", out)
    j = C.job(jid)
    check(j["exit_status"] == 0, "job %r\n%s" % (j, text))
    lines = [ln for ln in text.splitlines() if ln.startswith("on ")]
    check(len(lines) == 2, "output %r" % text)
    nodes = sorted(ln.split("node=")[1].split()[0] for ln in lines)
    check(nodes == ["0", "1"], "PBS_NODENUM %r" % lines)
    names = sorted(ln.split("drover=")[1] for ln in lines)
    check(names == ["node1", "node2"], "ran on %r" % names)
    check(all(("job=" + jid) in ln for ln in lines), repr(lines))
    check("rc=0" in text, text)
    rows = C.sql("SELECT t.node_index, n.name, t.exit_status FROM tasks t "
                 "JOIN nodes n ON n.id = t.node_id WHERE t.job_id = %s "
                 "ORDER BY t.node_index" % seq(jid))
    check(rows == [["0", "node1", "0"], ["1", "node2", "0"]] or
          rows == [["0", "node2", "0"], ["1", "node1", "0"]], repr(rows))


def test_pbsdsh_worst_exit_status_and_n():
    out = os.path.join(C.dir, "dshfail.out")
    # node 1 fails with 3, node 0 with 1: pbsdsh exits 3
    jid, text = pbsdsh_job([], "pbsdsh -v -- /bin/sh -c "
                           "'exit $((PBS_NODENUM * 2 + 1))'; echo rc=$?; "
                           "pbsdsh -n 1 -- /bin/sh -c "
                           "'echo only node=$PBS_NODENUM'; echo rc1=$?; "
                           "pbsdsh -n 5 -- /bin/true; echo rc5=$?; "
                           "pbsdsh -s /bin/sh -c 'echo serial=$PBS_NODENUM'; "
                           "echo rcs=$?; "
                           "pbsdsh -c 3 /bin/sh -c 'echo copy=$PBS_NODENUM'",
                           out)
    check("rc=3" in text, text)
    check("rc1=0" in text and text.count("only node=") == 1 and
          "only node=1" in text, text)
    check("rc5=1" in text, text)
    # -s: one node after the other, in order; options end at the program
    serial = [ln for ln in text.splitlines() if ln.startswith("serial=")]
    check(serial == ["serial=0", "serial=1"] and "rcs=0" in text, text)
    # -c 3: three copies over the two nodes, round-robin
    copies = [ln for ln in text.splitlines() if ln.startswith("copy=")]
    check(copies == ["copy=0", "copy=1", "copy=0"], text)
    err = open(out + ".err").read()
    check("exit status 3" in err and "exit status 1" in err, err)
    check("out of range" in err, err)


def test_pbsdsh_refused_to_others():
    if ensure_test_user() is None:
        print("# no test user: skipped")
        return
    jid = C.submit(["-l", "select=2:ncpus=1", "-l", "place=scatter", "--",
                    "/bin/sleep", "30"])
    C.wait_state(jid, "running")
    out = C.run("pbsdsh", ["--", "/bin/true"], user=TEST_USER,
                env={"PBS_JOBID": jid})
    check(out.returncode != 0, "pbsdsh by another user ran: %r" % (out,))
    check("Unauthorized Request" in out.stderr, out.stderr)
    check(C.sql("SELECT count(*) FROM tasks WHERE job_id = %s"
                % seq(jid)) == [["0"]], "a task was recorded")
    # the owner (root here) may, from outside the job too
    ok = C.run("pbsdsh", ["-n", "0", "--", "/bin/true"],
               env={"PBS_JOBID": jid})
    check(ok.returncode == 0, "owner's pbsdsh: %r" % (ok,))
    qdel(jid)


def test_pbsdsh_tasks_die_with_the_job():
    jid = C.submit(["-l", "select=2:ncpus=1", "-l", "place=scatter", "--",
                    "/bin/sleep", "60"])
    C.wait_state(jid, "running")
    marker = os.path.join(C.dir, "dsh-long")
    env = dict(C.env)
    env["PBS_JOBID"] = jid
    proc = subprocess.Popen([PBSDSH, "--", "/bin/sh", "-c",
                             "echo $$ >> %s; exec sleep 300" % marker],
                            env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_until(lambda: os.path.exists(marker) and
               len(open(marker).read().split()) == 2, 20,
               what="both tasks running")
    pids = [int(x) for x in open(marker).read().split()]
    C.run("qdel", [jid])
    out, err = proc.communicate(timeout=60)
    check(proc.returncode != 0, "pbsdsh exit %r" % proc.returncode)
    for pid in pids:
        wait_until(lambda: not os.path.exists("/proc/%d" % pid), 20,
                   what="task %d to die with the job" % pid)
    C.wait_state(jid, "finished")


def test_pbsdsh_tasks_die_at_walltime():
    marker = os.path.join(C.dir, "dsh-wall")
    jid = C.submit(["-l", "select=2:ncpus=1", "-l", "place=scatter", "-l",
                    "walltime=00:00:03"],
                   script="#!/bin/sh\n%s -- /bin/sh -c 'echo $$ >> %s; "
                   "exec sleep 300'\n" % (PBSDSH, marker))
    wait_until(lambda: os.path.exists(marker) and
               len(open(marker).read().split()) == 2, 20,
               what="both tasks running")
    pids = [int(x) for x in open(marker).read().split()]
    j = C.wait_state(jid, "finished", 30)
    check(j["exit_status"] == -29, repr(j))
    for pid in pids:
        wait_until(lambda: not os.path.exists("/proc/%d" % pid), 20,
                   what="task %d to die at the job's walltime" % pid)


def main():
    global C
    with cluster("chunks", nodes=1) as c:
        C = c
        return run_tests([test_gang_waits_for_second_node,
                          test_chunk_kinds_and_nodefile,
                          test_mpiprocs_ompthreads,
                          test_scatter_pack_free,
                          test_nodes_ppn,
                          test_excl_keeps_others_off,
                          test_excl_waits_for_empty_nodes,
                          test_pbsdsh_runs_on_every_node,
                          test_pbsdsh_worst_exit_status_and_n,
                          test_pbsdsh_refused_to_others,
                          test_pbsdsh_tasks_die_with_the_job,
                          test_pbsdsh_tasks_die_at_walltime])


if __name__ == "__main__":
    raise SystemExit(main())
