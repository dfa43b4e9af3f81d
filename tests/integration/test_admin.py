"""PBS management commands and conventions (issue 4 item 7, docs/cli.md):
qalter of a waiting job changes what the scheduler places and is refused
for a running one (but for walltime, which reaches the node), qsig delivers
a signal to the job's processes through the node protocol, qrerun requeues
a running job that runs again, qmove changes a waiting job's queue,
pbsnodes -o keeps new work off a node and -r brings it back, pbsnodes -a
and -l, and the PBS exit statuses: 256+N for a signal, -29 walltime, -27
memory.

One cluster of two 4-core nodes for every test."""

import json
import os
import time

from harness import (TEST_USER, check, cluster, ensure_test_user, run_tests,
                     wait_until)

C = None


def seq(jobid):
    return jobid.split(".")[0]


def allocs(jid):
    st, ans = C.api("GET", "/v1/jobs/%s/allocations" % seq(jid))
    check(st == 200, "allocations of %s: %s %r" % (jid, st, ans))
    return ans["allocations"]


def eval_states(jid):
    return [r[0] for r in C.sql("SELECT status FROM evaluations WHERE "
                                "job_id = %s ORDER BY id" % seq(jid))]


def run_ok(cmd, *args):
    out = C.run(cmd, list(args))
    check(out.returncode == 0, "%s %s: %d %s" % (cmd, " ".join(args),
                                                   out.returncode, out.stderr))
    return out


def wait_file(path, timeout=20):
    wait_until(lambda: os.path.exists(path), timeout, what=path)


# --- qalter ---

def test_qalter_queued_job_changes_placement():
    # 8 cores fit no node: the job waits with a blocked evaluation.
    jid = C.submit(["-l", "ncpus=8", "-N", "big", "--", "/bin/sleep", "0.2"])
    wait_until(lambda: "blocked" in eval_states(jid), 20,
               what="a blocked evaluation of %s" % jid)
    check(C.job(jid)["state"] == "queued")
    run_ok("qalter", "-l", "ncpus=3", "-N", "small", "-p", "7", jid)
    j = C.wait_state(jid, "finished", 30)
    check(j["exit_status"] == 0, "exit %r" % j["exit_status"])
    check(j["name"] == "small" and j["priority"] == 7, repr(j))
    check([a["cores"] for a in allocs(jid)] == [3],
          "placed with %r" % allocs(jid))
    out = run_ok("qstat", "-x", "-f", jid)
    check("Resource_List.ncpus = 3" in out.stdout, out.stdout)
    check("Priority = 7" in out.stdout, out.stdout)


def test_qalter_held_job_and_bad_values():
    jid = C.submit(["-h", "-l", "walltime=00:10:00", "--", "/bin/true"])
    run_ok("qalter", "-l", "walltime=00:20:00,mem=1gb", jid)
    out = run_ok("qstat", "-f", jid)
    check("Resource_List.walltime = 00:20:00" in out.stdout, out.stdout)
    check("Resource_List.mem = 1gb" in out.stdout, out.stdout)
    check("job_state = H" in out.stdout, out.stdout)
    # mtime is the alteration's time
    alter = C.sql("SELECT floor(extract(epoch FROM alter_time))::bigint "
                  "FROM jobs WHERE id = %s" % seq(jid))[0][0]
    check(str(C.job(jid)["mtime"]) == alter, "mtime %r, altered at %r"
          % (C.job(jid)["mtime"], alter))
    out = C.run("qalter", ["-l", "walltime=abc", jid])
    check(out.returncode == 166, "bad walltime: %d" % out.returncode)
    check(out.stderr == "qalter: Illegal attribute or resource value "
          "Resource_List.walltime %s\n" % jid, repr(out.stderr))
    out = C.run("qalter", ["-p", "5000", jid])
    check(out.returncode == 2 and "qalter: illegal -p value" in out.stderr,
          repr(out.stderr))
    out = C.run("qalter", ["-N", "x", "999999"])
    check(out.returncode == 153, "unknown job: %d" % out.returncode)
    check(out.stderr == "qalter: Unknown Job Id 999999.%s\n" % C.server,
          repr(out.stderr))
    run_ok("qdel", jid)


def test_qalter_users_only_lower():
    """PBS: a user may lower a job's resources, only root may raise them."""
    check(ensure_test_user() is not None, "no test user (not root)")
    jid = C.submit(["-h", "-l", "ncpus=2,walltime=00:10:00", "--",
                    "/bin/true"], user=TEST_USER, cwd="/tmp")
    out = C.run("qalter", ["-l", "ncpus=1,walltime=00:05:00", jid],
                user=TEST_USER, cwd="/tmp")
    check(out.returncode == 0, "lowering: %d %s" % (out.returncode,
                                                    out.stderr))
    for args in (["-l", "ncpus=3"], ["-l", "walltime=00:06:00"]):
        out = C.run("qalter", args + [jid], user=TEST_USER, cwd="/tmp")
        check(out.returncode == 159, "%r raised: %d" % (args,
                                                        out.returncode))
        check(out.stderr == "qalter: Unauthorized Request  %s\n" % jid,
              repr(out.stderr))
    out = C.run("qalter", ["-N", "mine", jid], user=TEST_USER, cwd="/tmp")
    check(out.returncode == 0, out.stderr)
    run_ok("qalter", "-l", "ncpus=4", jid)  # root may
    check(C.job(jid)["resource_list"]["ncpus"] in ("4", 4),
          repr(C.job(jid)["resource_list"]))
    run_ok("qdel", jid)


def test_qalter_running_job():
    jid = C.submit(["-l", "walltime=00:10:00", "--", "/bin/sleep", "60"])
    C.wait_state(jid, "running", 20)
    out = C.run("qalter", ["-l", "ncpus=2", jid])
    check(out.returncode == 167, "qalter -l ncpus of a running job: %d %s"
          % (out.returncode, out.stderr))
    check(out.stderr == "qalter: Cannot modify attribute while job running  "
          "Resource_List.ncpus %s\n" % jid, repr(out.stderr))
    out = C.run("qalter", ["-N", "renamed", jid])
    check(out.returncode == 167, "qalter -N of a running job: %d"
          % out.returncode)
    # walltime may change while it runs, and the node enforces the new one
    run_ok("qalter", "-l", "walltime=2", jid)
    j = C.wait_state(jid, "finished", 30)
    check(j["exit_status"] == -29, "exit %r" % j["exit_status"])
    check("exceeded resource walltime" in (j["comment"] or ""), repr(j))


# --- qsig ---

def test_qsig_reaches_trap():
    mark = os.path.join(C.dir, "sig-ready")
    got = os.path.join(C.dir, "sig-got")
    script = ("#!/bin/sh\ntrap 'echo usr1 > %s; exit 7' USR1\n"
              "touch %s\nsleep 60 &\nwait\nsleep 60 &\nwait\n" % (got, mark))
    jid = C.submit([], script=script)
    wait_file(mark)
    run_ok("qsig", "-s", "USR1", jid)
    j = C.wait_state(jid, "finished", 30)
    check(os.path.exists(got), "the trap did not run")
    check(j["exit_status"] == 7, "exit %r" % j["exit_status"])


def test_qsig_errors():
    jid = C.submit(["-h", "--", "/bin/true"])
    out = C.run("qsig", ["-s", "USR1", jid])
    check(out.returncode == 168, "qsig of a held job: %d" % out.returncode)
    check(out.stderr == "qsig: Request invalid for state of job %s\n" % jid,
          repr(out.stderr))
    out = C.run("qsig", ["-s", "NOSUCH", jid])
    check(out.returncode == 165, "bad signal: %d" % out.returncode)
    check(out.stderr == "qsig: Unknown/illegal signal name %s\n" % jid,
          repr(out.stderr))
    out = C.run("qsig", [])
    check(out.returncode == 2 and out.stderr.startswith("usage: qsig"),
          repr(out.stderr))
    run_ok("qdel", jid)


def test_qsig_default_term_gives_271():
    mark = os.path.join(C.dir, "term-ready")
    jid = C.submit(["--", "/bin/sh", "-c", "touch %s; exec sleep 60" % mark])
    wait_file(mark)
    run_ok("qsig", jid)
    j = C.wait_state(jid, "finished", 30)
    check(j["exit_status"] == 271, "exit %r" % j["exit_status"])


# --- qrerun ---

def test_qrerun_requeues_and_runs_again():
    runs = os.path.join(C.dir, "reruns")
    script = ("#!/bin/sh\necho run >> %s\n"
              "if [ $(wc -l < %s) -ge 2 ]; then exit 0; fi\nsleep 60\n"
              % (runs, runs))
    jid = C.submit([], script=script)
    wait_file(runs)
    C.wait_state(jid, "running", 20)
    run_ok("qrerun", jid)
    j = C.wait_state(jid, "finished", 40)
    check(j["exit_status"] == 0, "exit %r" % j["exit_status"])
    check(j["run_count"] == 2, "run_count %r" % j["run_count"])
    with open(runs) as f:
        check(f.read() == "run\nrun\n", "runs")
    out = run_ok("qstat", "-x", "-f", jid)
    check("run_count = 2" in out.stdout, out.stdout)


def test_qrerun_refusals():
    mark = os.path.join(C.dir, "norerun-ready")
    jid = C.submit(["-r", "n", "--", "/bin/sh", "-c",
                    "touch %s; exec sleep 60" % mark])
    wait_file(mark)
    out = C.run("qrerun", [jid])
    check(out.returncode == 190, "qrerun -r n: %d %s" % (out.returncode,
                                                        out.stderr))
    check(out.stderr == "qrerun: job is not rerunnable %s\n" % jid,
          repr(out.stderr))
    run_ok("qdel", jid)
    held = C.submit(["-h", "--", "/bin/true"])
    out = C.run("qrerun", [held])
    check(out.returncode == 168, "qrerun of a held job: %d" % out.returncode)
    run_ok("qdel", held)


# --- qmove ---

def test_qmove():
    C.sql("INSERT INTO queues (name) VALUES ('second') "
          "ON CONFLICT DO NOTHING")
    jid = C.submit(["-h", "--", "/bin/true"])
    run_ok("qmove", "second", jid)
    out = run_ok("qstat", "-f", jid)
    check("queue = second" in out.stdout, out.stdout)
    out = C.run("qmove", ["nosuch", jid])
    check(out.returncode == 170, "unknown queue: %d" % out.returncode)
    check(out.stderr == "qmove: Unknown queue %s\n" % jid, repr(out.stderr))
    # a moved job runs from its new queue
    run_ok("qrls", jid)
    j = C.wait_state(jid, "finished", 30)
    check(j["queue"] == "second" and j["exit_status"] == 0, repr(j))
    out = C.run("qmove", ["workq", jid])
    check(out.returncode == 35, "qmove of a finished job: %d"
          % out.returncode)
    # a W job (qsub -a) moves and stays W
    w = C.submit(["-a", "2359", "--", "/bin/true"])
    check(C.job(w)["state"] == "waiting", repr(C.job(w)))
    run_ok("qmove", "second", w)
    j = C.job(w)
    check(j["queue"] == "second" and j["state"] == "waiting", repr(j))
    run_ok("qdel", w)


# --- pbsnodes ---

def test_pbsnodes_offline_and_clear():
    out = run_ok("pbsnodes", "-o", "-C", "disk swap", "node1")
    check(out.stdout == "", repr(out.stdout))
    out = run_ok("pbsnodes", "-l")
    check(out.stdout == "%-20s %s %s\n" % ("node1", "offline", "disk swap"),
          repr(out.stdout))
    ids = [C.submit(["-l", "ncpus=1", "--", "/bin/sleep", "0.2"])
           for _ in range(4)]
    for jid in ids:
        C.wait_state(jid, "finished", 30)
        check([a["node"] for a in allocs(jid)] == ["node2"],
              "%s ran on %r with node1 offline" % (jid, allocs(jid)))
    # node1 back, node2 offline: new work goes to node1
    run_ok("pbsnodes", "-r", "node1")
    run_ok("pbsnodes", "-o", "node2")
    out = run_ok("pbsnodes", "-l")
    check(out.stdout.startswith("node2 ") and "node1" not in out.stdout,
          repr(out.stdout))
    jid = C.submit(["-l", "ncpus=4", "--", "/bin/true"])
    C.wait_state(jid, "finished", 30)
    check([a["node"] for a in allocs(jid)] == ["node1"], repr(allocs(jid)))
    run_ok("pbsnodes", "-r", "node2")
    out = run_ok("pbsnodes", "-l")
    check(out.stdout == "", repr(out.stdout))
    out = C.run("pbsnodes", ["-o", "nosuch"])
    check(out.returncode == 1, "unknown node: %d" % out.returncode)
    check(out.stderr == "Node: nosuch,  Error: Unknown node \n",
          repr(out.stderr))
    out = C.run("pbsnodes", [])
    check(out.returncode == 1 and out.stderr.startswith("usage:"),
          repr(out.stderr))


def test_pbsnodes_a_and_json():
    mark = os.path.join(C.dir, "pbsnodes-ready")
    run_ok("pbsnodes", "-o", "node2")
    try:
        jid = C.submit(["-l", "ncpus=4", "--", "/bin/sh", "-c",
                        "touch %s; exec sleep 60" % mark])
        wait_file(mark)
        out = run_ok("pbsnodes", "-a")
        blocks = out.stdout.split("\n\n")
        n1 = [b for b in blocks if b.startswith("node1\n")]
        check(n1, repr(out.stdout))
        lines = n1[0].splitlines()
        check(lines[1] == "     Mom = node1", repr(lines))
        for want in ("     ntype = PBS", "     state = job-busy",
                     "     pcpus = 4",
                     "     jobs = %s/0, %s/1, %s/2, %s/3" % ((jid,) * 4),
                     "     resources_available.host = node1",
                     "     resources_available.mem = 8388608kb",
                     "     resources_available.ncpus = 4",
                     "     resources_assigned.ncpus = 4"):
            check(want in lines, "pbsnodes -a lacks %r:\n%s" % (want, n1[0]))
        n2 = [b for b in blocks if b.startswith("node2\n")][0]
        check("     state = offline" in n2.splitlines(), n2)
        out = run_ok("pbsnodes", "-a", "-F", "json")
        check(out.stdout.startswith("{\n\t\"timestamp\":\t"), out.stdout)
        j = json.loads(out.stdout)
        check(j["pbs_server"] == C.server, repr(j))
        n = j["nodes"]["node1"]
        check(n["state"] == "job-busy" and n["pcpus"] == 4, repr(n))
        check(n["jobs"] == [jid], repr(n))
        check(n["resources_available"]["ncpus"] == 4, repr(n))
        check(n["resources_assigned"] == {"ncpus": 4}, repr(n))
        check(j["nodes"]["node2"]["resources_assigned"] == {}, repr(j))
        run_ok("qdel", jid)
        C.wait_state(jid, "finished", 30)
    finally:
        run_ok("pbsnodes", "-r", "node2")


# --- exit statuses ---

def test_exit_status_killed_by_signal():
    jid = C.submit(["--", "/bin/sh", "-c", "kill -9 $$"])
    j = C.wait_state(jid, "finished", 30)
    check(j["exit_status"] == 265, "exit %r" % j["exit_status"])
    out = run_ok("qstat", "-x", "-f", jid)
    check("Exit_status = 265" in out.stdout, out.stdout)


def test_exit_status_walltime():
    jid = C.submit(["-l", "walltime=1", "--", "/bin/sleep", "60"])
    j = C.wait_state(jid, "finished", 30)
    check(j["exit_status"] == -29, "exit %r" % j["exit_status"])


def test_exit_status_memory():
    prog = ("import time\nx = b'x' * (400 * 1024 * 1024)\n"
            "time.sleep(30)\n")
    path = os.path.join(C.dir, "eatmem.py")
    with open(path, "w") as f:
        f.write(prog)
    jid = C.submit(["-l", "mem=64mb", "--", "/usr/bin/python3", path])
    j = C.wait_state(jid, "finished", 40)
    check(j["exit_status"] == -27, "exit %r" % j["exit_status"])
    check("exceeded resource mem" in (j["comment"] or ""), repr(j))


def test_qstat_full_pbs_fields():
    jid = C.submit(["-l", "ncpus=2", "--", "/bin/true"])
    C.wait_state(jid, "finished", 30)
    out = run_ok("qstat", "-x", "-f", jid)
    lines = [l.strip() for l in out.stdout.splitlines()]
    names = [l.split(" = ")[0] for l in lines[1:] if " = " in l]
    for want in ("resources_used.cput", "resources_used.mem",
                 "resources_used.ncpus", "resources_used.walltime", "ctime",
                 "mtime", "qtime", "stime", "substate", "comment", "etime",
                 "run_count", "Exit_status"):
        check(want in names, "qstat -f lacks %s:\n%s" % (want, out.stdout))
    # PBS's order: comment, etime, run_count, Exit_status
    check(names.index("comment") < names.index("etime")
          < names.index("run_count") < names.index("Exit_status"), names)
    check("resources_used.ncpus = 2" in lines, out.stdout)
    check("substate = 92" in lines, out.stdout)
    out = run_ok("qstat", "-x", "-f", "-F", "json", jid)
    j = json.loads(out.stdout)["Jobs"][jid]
    check(j["resources_used"]["ncpus"] == 2, repr(j))
    check(isinstance(j["resources_used"]["walltime"], str), repr(j))
    check(j["Exit_status"] == 0 and j["substate"] == 92, repr(j))
    check(j["job_state"] == "F" and "etime" in j, repr(j))


def test_exit_status_memory_sampled():
    """Without the cgroup (memory-cgroup off, or no usable controller)
    noded samples the job's RSS: -27 all the same. Runs last: it adds
    node3 and keeps the others offline meanwhile."""
    C.start_noded("node3", extra=["--memory-cgroup=false"])
    C.wait_nodes_ready(3)
    run_ok("pbsnodes", "-o", "node1", "node2")
    try:
        path = os.path.join(C.dir, "eatmem2.py")
        with open(path, "w") as f:
            f.write("import time\nx = b'x' * (300 * 1024 * 1024)\n"
                    "time.sleep(30)\n")
        jid = C.submit(["-l", "mem=64mb", "--", "/usr/bin/python3", path])
        j = C.wait_state(jid, "finished", 40)
        check([a["node"] for a in allocs(jid)] == ["node3"], repr(allocs(jid)))
        check(j["exit_status"] == -27, "exit %r" % j["exit_status"])
        with open(os.path.join(C.dir, "node3.log")) as f:
            log = f.read()
        check("memory-cgroup is off: enforcing job memory by sampling" in log,
              log)
    finally:
        run_ok("pbsnodes", "-r", "node1", "node2")


def main():
    global C
    with cluster("admin", nodes=2) as c:
        C = c
        rc = run_tests([test_qalter_queued_job_changes_placement,
                        test_qalter_held_job_and_bad_values,
                        test_qalter_users_only_lower,
                        test_qalter_running_job,
                        test_qsig_reaches_trap,
                        test_qsig_errors,
                        test_qsig_default_term_gives_271,
                        test_qrerun_requeues_and_runs_again,
                        test_qrerun_refusals,
                        test_qmove,
                        test_pbsnodes_offline_and_clear,
                        test_pbsnodes_a_and_json,
                        test_exit_status_killed_by_signal,
                        test_exit_status_walltime,
                        test_exit_status_memory,
                        test_qstat_full_pbs_fields,
                        test_exit_status_memory_sampled])
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
