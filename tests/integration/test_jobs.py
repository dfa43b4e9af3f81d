"""Jobs end to end: qsub -> Q -> R -> F with exit status and output files,
command jobs, environment, qstat formats, qdel, walltime, hold/release and
idempotent submission, on a real PostgreSQL with real daemons."""

import os
import subprocess
import time
import uuid

from harness import TestFailure, check, cluster, run_tests, wait_until

C = None


def seq(jobid):
    return jobid.split(".")[0]


def read(path, timeout=10):
    wait_until(lambda: os.path.exists(path), timeout, what=path)
    with open(path) as f:
        return f.read()


def test_script_runs_to_finished_with_output():
    script = ("#!/bin/sh\n#PBS -N hello\n#PBS -l walltime=00:05:00\n"
              "echo out-$PBS_JOBID\necho err-line >&2\nsleep 2\nexit 3\n")
    jid = C.submit([], script=script)
    check(C.job(jid)["state"] in ("queued", "running"))
    C.wait_state(jid, "running", 20)
    out = C.run("qstat", [jid])
    check(out.returncode == 0, out.stderr)
    row = [l for l in out.stdout.splitlines() if l.startswith(seq(jid))]
    check(row and " R " in row[0], "qstat shows R: %r" % out.stdout)
    j = C.wait_state(jid, "finished", 30)
    check(j["exit_status"] == 3, "exit status %r" % j["exit_status"])
    check(read(os.path.join(C.dir, "hello.o" + seq(jid))).strip()
          == "out-" + jid)
    check(read(os.path.join(C.dir, "hello.e" + seq(jid))).strip()
          == "err-line")
    # finished jobs need -x, with PBS's message and exit status 35
    out = C.run("qstat", [jid])
    check(out.returncode == 35, "qstat of finished job: %d" % out.returncode)
    check("Job has finished, use -x or -H" in out.stderr, out.stderr)
    out = C.run("qstat", ["-x", "-f", jid])
    check(out.returncode == 0, out.stderr)
    check("Job Id: " + jid in out.stdout, out.stdout)
    for line in ("job_state = F", "Exit_status = 3", "Job_Name = hello",
                 "queue = workq", "Resource_List.walltime = 00:05:00"):
        check(line in out.stdout, "qstat -f lacks %r:\n%s" % (line, out.stdout))


def test_command_job_environment_and_join():
    jid = C.submit(["-N", "envjob", "-j", "oe", "-v", "FOO=bar,BAZ=qux", "--",
                    "/bin/sh", "-c",
                    "echo $FOO $BAZ $PBS_JOBNAME $PBS_QUEUE $NCPUS $PBS_O_QUEUE; "
                    "echo dir=$PBS_O_WORKDIR; echo id=$PBS_JOBID; "
                    "echo nodefile=$(cat $PBS_NODEFILE | wc -l); echo e >&2"])
    j = C.wait_state(jid, "finished", 30)
    check(j["exit_status"] == 0, "exit %r" % j["exit_status"])
    text = read(os.path.join(C.dir, "envjob.o" + seq(jid)))
    check("bar qux envjob workq 1 workq" in text, text)
    check("dir=" + C.dir in text, text)
    check("id=" + jid in text, text)
    check("nodefile=1" in text, text)
    check("e\n" in text, "stderr joined into stdout: %r" % text)
    check(not os.path.exists(os.path.join(C.dir, "envjob.e" + seq(jid))))


def test_script_file_and_paths():
    path = os.path.join(C.dir, "job.sh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n#PBS -o %s/custom.out\n#PBS -e %s/custom.err\n"
                "echo from-file\n" % (C.dir, C.dir))
    jid = C.submit([path])
    j = C.wait_state(jid, "finished", 30)
    check(j["name"] == "job.sh", j["name"])
    check(read(os.path.join(C.dir, "custom.out")).strip() == "from-file")


def test_exit_status_by_signal():
    jid = C.submit(["--", "/bin/sh", "-c", "kill -9 $$"])
    j = C.wait_state(jid, "finished", 30)
    check(j["exit_status"] == 265, "killed by SIGKILL: %r" % j["exit_status"])


def test_qdel_running_and_queued():
    marker = "drover-sleep-" + uuid.uuid4().hex[:8]
    jid = C.submit(["-N", "longrun", "--", "/bin/bash", "-c",
                    "exec -a %s sleep 300" % marker])
    C.wait_state(jid, "running", 20)
    wait_until(lambda: subprocess.run(["pgrep", "-f", marker],
                                      capture_output=True).returncode == 0,
               10, what="job process")
    out = C.run("qdel", [jid])
    check(out.returncode == 0 and out.stdout == "", out.stderr)
    j = C.wait_state(jid, "finished", 30)
    check(j["exit_status"] == 271, "SIGTERM exit status %r" % j["exit_status"])
    check(subprocess.run(["pgrep", "-f", marker],
                         capture_output=True).returncode != 0,
          "the job's process survived qdel")
    held = C.submit(["-h", "--", "/bin/true"])
    check(C.job(held)["state"] == "held")
    check(C.run("qdel", [held]).returncode == 0)
    j = C.wait_state(held, "finished", 10)
    check(j["exit_status"] is None and j["run_count"] == 0, repr(j))
    out = C.run("qdel", [held])
    check(out.returncode == 35 and "Job has finished" in out.stderr,
          "qdel finished: %d %s" % (out.returncode, out.stderr))
    out = C.run("qdel", ["99999"])
    check(out.returncode == 153, "qdel unknown: %d" % out.returncode)
    check(out.stderr.strip() == "qdel: Unknown Job Id 99999." + C.server,
          out.stderr)


def test_walltime_kill():
    start = time.time()
    jid = C.submit(["-l", "walltime=00:00:02", "--", "/bin/sleep", "120"])
    j = C.wait_state(jid, "finished", 40)
    check(j["exit_status"] == -29, "walltime exit status %r" % j["exit_status"])
    check(time.time() - start < 30, "walltime kill took too long")
    check("walltime" in (j.get("comment") or ""), j.get("comment"))


def test_hold_and_release():
    # fill the node's 4 cores so that the next job queues
    blocker = C.submit(["-l", "ncpus=4", "--", "/bin/sleep", "4"])
    C.wait_state(blocker, "running", 20)
    queued = C.submit(["-l", "ncpus=4", "--", "/bin/true"])
    time.sleep(1)
    check(C.job(queued)["state"] == "queued")
    check(C.run("qhold", [queued]).returncode == 0)
    check(C.job(queued)["state"] == "held")
    out = C.run("qstat", [queued])
    check(" H " in out.stdout, out.stdout)
    C.wait_state(blocker, "finished", 30)
    time.sleep(2)
    check(C.job(queued)["state"] == "held", "held job ran")
    check(C.run("qrls", [queued]).returncode == 0)
    j = C.wait_state(queued, "finished", 30)
    check(j["exit_status"] == 0)
    out = C.run("qhold", [queued])
    check(out.returncode != 0, "qhold of a finished job succeeded")


def test_idempotent_submission():
    key = uuid.uuid4().hex
    body = {"owner": "root", "name": "idem", "argv": ["/bin/true"],
            "workdir": C.dir}
    st1, j1 = C.api("POST", "/v1/jobs", body, {"Idempotency-Key": key,
                                               "X-Drover-User": "root"})
    st2, j2 = C.api("POST", "/v1/jobs", body, {"Idempotency-Key": key,
                                               "X-Drover-User": "root"})
    check(st1 == 201 and st2 == 200, "statuses %s %s" % (st1, st2))
    check(j1["id"] == j2["id"], "two jobs for one key")
    rows = C.sql("SELECT count(*) FROM jobs WHERE idempotency_key = '%s'"
                 % key)
    check(rows == [["1"]], rows)
    C.wait_state(j1["id"], "finished", 30)


def test_qstat_listing():
    jid = C.submit(["-h", "-N", "a_very_long_job_name_here", "--", "/bin/true"])
    out = C.run("qstat", [])
    lines = out.stdout.splitlines()
    check(lines[0].startswith("Job id            Name             User"),
          out.stdout)
    check(lines[1].startswith("----------------  ---------------- "),
          out.stdout)
    row = [l for l in lines if l.startswith(seq(jid) + ".")][0]
    check(" a_very_long_job* " in row, row)  # 15 characters and a star
    out = C.run("qstat", ["-F", "json", "-f", jid])
    check(out.returncode == 0, out.stderr)
    import json
    doc = json.loads(out.stdout)
    check(jid in doc["Jobs"], out.stdout)
    check(doc["Jobs"][jid]["job_state"] == "H", out.stdout)
    C.run("qdel", [jid])


def main():
    global C
    with cluster("jobs") as c:
        C = c
        return run_tests([
            test_script_runs_to_finished_with_output,
            test_command_job_environment_and_join,
            test_script_file_and_paths,
            test_exit_status_by_signal,
            test_qdel_running_and_queued,
            test_walltime_kill,
            test_hold_and_release,
            test_idempotent_submission,
            test_qstat_listing,
        ])


if __name__ == "__main__":
    raise SystemExit(main())
