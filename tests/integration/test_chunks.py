"""Chunks and multi-node jobs with real daemons: a gang job waits for
enough nodes and starts on all of them at once, several chunk kinds land
as asked, place=scatter|pack|free, -l nodes=N:ppn=C, PBS_NODEFILE (lines
per core or per mpiprocs, in chunk order), OMP_NUM_THREADS, exec_host and
exec_vnode, place=excl, and pbsdsh across the nodes of a job.

Nodes run on this host under different names (--name), each a synthetic
4-core machine with 8 GB; node2 joins only in the first test."""

import os
import time

from harness import (TEST_USER, check, cluster, ensure_test_user, run_tests,
                     wait_until)

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


def wait_file(path, timeout=30):
    wait_until(lambda: os.path.exists(path) and open(path).read(), timeout,
               what=path)
    time.sleep(0.2)  # the writer may still be appending
    return open(path).read()


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
    text = wait_file(out)
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
    text = wait_file(out)
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


def main():
    global C
    with cluster("chunks", nodes=1) as c:
        C = c
        return run_tests([test_gang_waits_for_second_node,
                          test_chunk_kinds_and_nodefile,
                          test_mpiprocs_ompthreads,
                          test_scatter_pack_free,
                          test_nodes_ppn])


if __name__ == "__main__":
    raise SystemExit(main())
