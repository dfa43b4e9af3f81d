"""Real sites' scripts (issue 4, items 6 and 8) end to end: -A -P -m -M -k
-S shown by qstat -f, job mail through a fake sendmail (our test double of
the local program: it records its arguments and standard input), -a
execution times (state W, then queued by qmgr's timer, across a qmgr
restart), custom resources declared by the operator, select=N, and the
accounting row written when each job ends."""

import os
import stat
import tempfile
import time

from harness import (BIN, Daemon, check, cluster, free_port, run_tests,
                     wait_until)

C = None
MAIL_LOG = None


def seq(jobid):
    return jobid.split(".")[0]


def qstat_f(jid, history=True):
    out = C.run("qstat", (["-x"] if history else []) + ["-f", "-w", jid])
    check(out.returncode == 0, "qstat -f %s: %s" % (jid, out.stderr))
    return out.stdout


def mails():
    if not os.path.exists(MAIL_LOG):
        return []
    with open(MAIL_LOG) as f:
        return [m for m in f.read().split("--END--\n") if m.strip()]


def mails_for(jid, words):
    return [m for m in mails() if "PBS Job Id: %s\n" % jid in m and words in m]


def exec_time(ahead):
    """qsub -a text for now + ahead seconds (CCYYMMDDhhmm.SS, local)."""
    t = int(time.time()) + ahead
    return time.strftime("%Y%m%d%H%M.%S", time.localtime(t)), t


def test_site_attributes_in_qstat_f():
    script = ("#!/bin/sh\n#PBS -A acct42\n#PBS -P climate\n#PBS -m be\n"
              "#PBS -M alice@example.org,bob\n#PBS -k oe\n"
              "####PBS -A not-a-directive\n"
              "#PBS -S /bin/bash@nohost,/bin/sh\ntrue\n#PBS -P ignored\n")
    jid = C.submit(["-A", "cmdline-wins"], script=script)
    C.wait_state(jid, "finished", 30)
    text = qstat_f(jid)
    for line in ("Account_Name = cmdline-wins", "project = climate",
                 "Mail_Points = be", "Mail_Users = alice@example.org,bob",
                 "Keep_Files = oe",
                 "Shell_Path_List = /bin/bash@nohost,/bin/sh"):
        check("    " + line + "\n" in text,
              "qstat -f lacks %r:\n%s" % (line, text))
    # PBS's defaults when qsub gave none
    jid = C.submit(["--", "/bin/true"])
    text = qstat_f(jid)
    for line in ("Keep_Files = n", "Mail_Points = a",
                 "project = _pbs_project_default"):
        check("    " + line + "\n" in text,
              "qstat -f lacks %r:\n%s" % (line, text))
    check("Account_Name" not in text and "Mail_Users" not in text, text)
    # client-side refusals, PBS's texts
    for args, msg in ((["-m", "abx"], "qsub: illegal -m value"),
                      (["-a", "2460"], "qsub: illegal -a value"),
                      (["-k", "x"], "qsub: illegal -k value"),
                      (["-m", "j"], "qsub: mail option 'j' can not be used "
                                    "without array job")):
        out = C.qsub(args + ["--", "/bin/true"])
        check(out.returncode == 2 and out.stderr.startswith(msg + "\n"),
              "%r: %d %r" % (args, out.returncode, out.stderr))


def test_shell_path_list_per_host():
    """-S path@host: the node named runs the job with its entry."""
    outs = []
    for spec in ("/bin/sh@nohost,/bin/bash@node1", "/bin/bash@nohost,/bin/sh"):
        jid = C.submit(["-S", spec, "-N", "shells"],
                       script="echo shell=${BASH_VERSION:+bash}\n")
        C.wait_state(jid, "finished", 30)
        path = os.path.join(C.dir, "shells.o" + seq(jid))
        wait_until(lambda: os.path.exists(path), 10, what=path)
        with open(path) as f:
            outs.append(f.read().strip())
    check(outs == ["shell=bash", "shell="], outs)


def test_mail_at_begin_and_end():
    jid = C.submit(["-m", "be", "-M", "someone@example.org", "-N", "mailer",
                    "--", "/bin/sh", "-c", "exit 4"])
    C.wait_state(jid, "finished", 30)
    begun = wait_until(lambda: mails_for(jid, "Begun execution"), 20,
                       what="the begin mail")
    ended = wait_until(lambda: mails_for(jid, "Execution terminated"), 20,
                       what="the end mail")
    check(len(begun) == 1 and len(ended) == 1, mails())
    check(begun[0].startswith("ARGS: -f adm someone@example.org\n"), begun[0])
    check("Subject: PBS JOB %s\n" % jid in begun[0], begun[0])
    check("Job Name:   mailer\n" in ended[0], ended[0])
    check("Exit_status=4\n" in ended[0], ended[0])
    # -m a (PBS's default): deleting a queued job is an abort; no other mail
    held = C.submit(["-h", "--", "/bin/true"])
    check(C.run("qdel", [held]).returncode == 0)
    aborted = wait_until(lambda: mails_for(held, "Aborted by PBS Server"),
                         20, what="the abort mail")
    check(aborted[0].startswith("ARGS: -f adm root\n")
          or "\nTo: " in aborted[0], aborted[0])
    # -m n: nothing at all
    quiet = C.submit(["-m", "n", "--", "/bin/true"])
    C.wait_state(quiet, "finished", 30)
    C.wait_state(C.submit(["-m", "e", "--", "/bin/true"]), "finished", 30)
    check(not [m for m in mails() if "PBS Job Id: %s\n" % quiet in m],
          mails())


def test_mail_logged_without_sendmail():
    """No --sendmail: the mail is logged at info level instead."""
    with cluster("site-nomail", nodes=0) as c:
        jid = c.submit(["-h", "-m", "a", "-M", "ops@example.org", "--",
                        "/bin/true"])
        check(c.run("qdel", [jid]).returncode == 0)
        log = os.path.join(c.dir, "qmgr.log")
        want = ("job %s: mail (a) to ops@example.org (no sendmail "
                "configured): Aborted by PBS Server" % jid)
        wait_until(lambda: want in open(log).read(), 20, what=want)


def test_exec_time_waits_then_runs():
    when_text, when = exec_time(5)
    jid = C.submit(["-a", when_text, "--", "/bin/true"])
    j = C.job(jid)
    check(j["state"] == "waiting", "state %r" % j["state"])
    out = C.run("qstat", [jid])
    row = [l for l in out.stdout.splitlines() if l.startswith(seq(jid))]
    check(row and " W " in row[0], "qstat shows W: %r" % out.stdout)
    check("Execution_Time = " in qstat_f(jid, history=False))
    j = C.wait_state(jid, "finished", 40)
    check(j["exit_status"] == 0, j)
    rows = C.sql("SELECT extract(epoch FROM start_time)::float8 >= "
                 "extract(epoch FROM execution_time)::float8, "
                 "extract(epoch FROM execution_time)::bigint FROM jobs "
                 "WHERE id = %d" % int(seq(jid)))
    check(rows[0][0] == "t", "started before its execution time: %r" % rows)
    check(int(rows[0][1]) == when, "execution time %r, want %d"
          % (rows, when))
    # a time already past: queued at once (a full date is kept as given)
    past = time.strftime("%Y%m%d%H%M", time.localtime(time.time() - 3600))
    jid = C.submit(["-a", past, "--", "/bin/true"])
    C.wait_state(jid, "finished", 30)


def test_waiting_job_hold_release_delete():
    when_text, _ = exec_time(3600)
    jid = C.submit(["-a", when_text, "--", "/bin/true"])
    check(C.job(jid)["state"] == "waiting")
    check(C.run("qhold", [jid]).returncode == 0)
    check(C.job(jid)["state"] == "held")
    check(C.run("qrls", [jid]).returncode == 0)
    check(C.job(jid)["state"] == "waiting", "qrls -> W while the time is "
          "ahead: %r" % C.job(jid)["state"])
    check(C.run("qdel", [jid]).returncode == 0)
    check(C.job(jid)["state"] == "finished")


def test_waiting_survives_qmgr_restart():
    when_text, when = exec_time(8)
    jid = C.submit(["-a", when_text, "--", "/bin/true"])
    check(C.job(jid)["state"] == "waiting")
    C.qmgr.kill()  # SIGKILL: nothing of the timer survives but the row
    C.start_qmgr()
    check(C.job(jid)["state"] == "waiting", "W after the restart")
    j = C.wait_state(jid, "finished", 40)
    check(j["exit_status"] == 0, j)
    rows = C.sql("SELECT extract(epoch FROM start_time)::float8 >= %d "
                 "FROM jobs WHERE id = %d" % (when, int(seq(jid))))
    check(rows == [["t"]], rows)


def test_waiting_job_of_another_qmgr():
    """Two qmgrs: a W job accepted by the second, which then dies, is
    queued by the first at its time (NOTIFY waiting armed its timer)."""
    port = free_port()
    other = Daemon("qmgr2", [os.path.join(BIN, "drover-qmgr"), "--database",
                             C.conninfo, "--listen", "127.0.0.1:%d" % port],
                   os.path.join(C.dir, "qmgr2.log"), env=C.env).start()
    env = {"DROVER_ADDR": "http://127.0.0.1:%d" % port}
    wait_until(lambda: C.run("qstat", [], env=env).returncode == 0, 30,
               what="the second qmgr to answer")
    # the first qmgr has no earlier time armed: only the notification can
    when_text, when = exec_time(4)
    jid = C.submit(["-a", when_text, "--", "/bin/true"], env=env)
    check(C.job(jid)["state"] == "waiting")
    other.kill()
    j = C.wait_state(jid, "finished", 40)
    check(j["exit_status"] == 0, j)


def test_custom_resources():
    out = C.qsub(["-l", "software=gromacs", "--", "/bin/true"])
    check(out.returncode == 187, "undeclared: %d %r"
          % (out.returncode, out.stderr))
    check(out.stderr == "qsub: Unknown resource Resource_List.software\n",
          out.stderr)
    out = C.run("drover", ["resource", "create", "software", "--type",
                           "string", "--flag", "h"])
    check(out.returncode == 0, out.stderr)
    out = C.run("drover", ["resource", "create", "nfiles", "--type", "long"])
    check(out.returncode == 0, out.stderr)
    out = C.run("drover", ["resource", "create", "scratch", "--type",
                           "boolean"])
    check(out.returncode == 0, out.stderr)
    out = C.run("drover", ["resource", "create", "filesystems", "--type",
                           "string"])
    check(out.returncode == 0, out.stderr)
    out = C.run("drover", ["resource", "create", "software", "--type",
                           "long"])
    check(out.returncode != 0 and "Duplicate entry" in out.stderr, out.stderr)
    out = C.run("drover", ["resource", "create", "walltime", "--type",
                           "long"])
    check(out.returncode != 0, "a built-in resource cannot be declared")
    out = C.run("drover", ["resource", "list"])
    check(out.returncode == 0, out.stderr)
    check("software         string       h\n" in out.stdout, out.stdout)
    check("nfiles           long" in out.stdout, out.stdout)

    script = ("#!/bin/sh\n#PBS -l software=gromacs\n#PBS -l scratch=y\n"
              "#PBS -l filesystems=home:scratch\ntrue\n")
    jid = C.submit(["-l", "nfiles=12"], script=script)
    C.wait_state(jid, "finished", 30)
    text = qstat_f(jid)
    for line in ("Resource_List.software = gromacs",
                 "Resource_List.nfiles = 12", "Resource_List.scratch = True",
                 "Resource_List.filesystems = home:scratch"):
        check("    " + line + "\n" in text, "lacks %r:\n%s" % (line, text))
    out = C.qsub(["-l", "nfiles=many", "--", "/bin/true"])
    check(out.returncode == 166 and out.stderr ==
          "qsub: Illegal attribute or resource value Resource_List.nfiles\n",
          "%d %r" % (out.returncode, out.stderr))
    # in use by an unfinished job: PBS refuses to delete it
    held = C.submit(["-h", "-l", "software=vasp", "--", "/bin/true"])
    out = C.run("drover", ["resource", "delete", "software"])
    check(out.returncode != 0 and "Resource busy on job" in out.stderr,
          out.stderr)
    C.run("qdel", [held])
    out = C.run("drover", ["resource", "delete", "software"])
    check(out.returncode == 0, out.stderr)
    out = C.qsub(["-l", "software=gromacs", "--", "/bin/true"])
    check(out.returncode == 187, out.stderr)


def test_select_n_gives_n_chunks():
    jid = C.submit(["-l", "select=3", "--", "/bin/sh", "-c",
                    "wc -l < $PBS_NODEFILE"])
    j = C.wait_state(jid, "finished", 30)
    check(j["exit_status"] == 0, j)
    check(j["resource_list"].get("nodect") == "3", j["resource_list"])
    check(j["resource_list"].get("select") == "3:ncpus=1",
          j["resource_list"])
    rows = C.sql("SELECT count(*), sum(ncpus) FROM allocations "
                 "WHERE job_id = %d" % int(seq(jid)))
    check(rows == [["3", "3"]], "allocations %r" % rows)


def test_accounting_row_per_job():
    jid = C.submit(["-A", "acct7", "-P", "proj7", "-l", "walltime=00:10:00",
                    "-l", "select=2:ncpus=1:mem=64mb", "--", "/bin/sh", "-c",
                    "exit 3"])
    j = C.wait_state(jid, "finished", 30)
    check(j["exit_status"] == 3, j)
    rows = C.sql(
        "SELECT owner, queue, account, project, ncpus, ngpus, nodect, "
        "mem_requested, walltime_requested, exit_status, run_count, "
        "submit_time <= eligible_time, eligible_time <= start_time, "
        "date_trunc('second', start_time) <= end_time, "
        "walltime_used IS NOT NULL, "
        "cput_used IS NOT NULL, mem_used IS NOT NULL, group_name IS NOT NULL, "
        "job_name FROM job_accounting WHERE job_id = %d" % int(seq(jid)))
    check(len(rows) == 1, "one row per job end: %r" % rows)
    r = rows[0]
    check(r[:11] == ["root", "workq", "acct7", "proj7", "2", "0", "2",
                     str(128 * 1024 * 1024), "600", "3", "1"], r)
    check(r[11:18] == ["t"] * 7, r)
    # a job deleted before it ran: a row too, never started
    held = C.submit(["-h", "--", "/bin/true"])
    C.run("qdel", [held])
    rows = C.sql("SELECT start_time IS NULL, exit_status IS NULL, "
                 "end_time IS NOT NULL FROM job_accounting "
                 "WHERE job_id = %d" % int(seq(held)))
    check(rows == [["t", "t", "t"]], rows)
    # append-only
    rows = C.sql("SELECT count(*) FROM job_accounting")
    check(int(rows[0][0]) >= 2, rows)
    try:
        C.sql("DELETE FROM job_accounting")
        check(False, "job_accounting allowed a DELETE")
    except Exception as e:  # noqa: BLE001 - psql's failure is the point
        check("append-only" in str(e), str(e))


def main():
    global C, MAIL_LOG
    fake = tempfile.mkdtemp(prefix="drover-site-mail-", dir="/tmp")
    os.chmod(fake, 0o755)
    MAIL_LOG = os.path.join(fake, "mail.log")
    sendmail = os.path.join(fake, "sendmail")
    with open(sendmail, "w") as f:
        f.write("#!/bin/sh\n{ echo \"ARGS: $*\"; cat; echo --END--; } >> %s\n"
                % MAIL_LOG)
    os.chmod(sendmail, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP
             | stat.S_IROTH | stat.S_IXOTH)
    try:
        with cluster("site", qmgr_args=["--sendmail", sendmail]) as c:
            C = c
            return run_tests([
                test_site_attributes_in_qstat_f,
                test_shell_path_list_per_host,
                test_mail_at_begin_and_end,
                test_mail_logged_without_sendmail,
                test_exec_time_waits_then_runs,
                test_waiting_job_hold_release_delete,
                test_waiting_survives_qmgr_restart,
                test_waiting_job_of_another_qmgr,
                test_custom_resources,
                test_select_n_gives_n_chunks,
                test_accounting_row_per_job,
            ])
    finally:
        for name in ("mail.log", "sendmail"):
            try:
                os.unlink(os.path.join(fake, name))
            except OSError:
                pass
        os.rmdir(fake)


if __name__ == "__main__":
    raise SystemExit(main())
