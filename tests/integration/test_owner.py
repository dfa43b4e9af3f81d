"""A job submitted by an unprivileged user runs as that user (uid, gid,
home directory), writes its output as that user, and may not be deleted by
another user."""

import os
import pwd

from harness import (TEST_USER, check, cluster, ensure_test_user, run_tests,
                     wait_until)

C = None


def test_job_runs_as_owner():
    pw = ensure_test_user()
    check(pw is not None, "cannot create the test user (not root)")
    workdir = os.path.join(C.dir, "userdir")
    os.makedirs(workdir, exist_ok=True)
    os.chown(workdir, pw.pw_uid, pw.pw_gid)
    script = "#!/bin/sh\n#PBS -N whoami\nid -u\nid -g\npwd\necho $HOME $USER\n"
    jid = C.submit([], script=script, user=TEST_USER, cwd=workdir)
    j = C.wait_state(jid, "finished", 30)
    check(j["owner"] == TEST_USER, j["owner"])
    check(j["exit_status"] == 0, "exit %r" % j["exit_status"])
    out = os.path.join(workdir, "whoami.o" + jid.split(".")[0])
    wait_until(lambda: os.path.exists(out), 10, what=out)
    st = os.stat(out)
    check(st.st_uid == pw.pw_uid, "output owned by uid %d" % st.st_uid)
    lines = open(out).read().split()
    check(lines[0] == str(pw.pw_uid) and lines[1] == str(pw.pw_gid), lines)
    check(lines[2] == pw.pw_dir, "job started in %s, not home" % lines[2])
    check(lines[3] == pw.pw_dir and lines[4] == TEST_USER, lines)


def test_other_user_cannot_delete():
    ensure_test_user()
    jid = C.submit(["-h", "--", "/bin/true"])  # owned by root
    out = C.run("qdel", [jid], user=TEST_USER)
    check(out.returncode != 0, "another user deleted root's job")
    check("Unauthorized Request" in out.stderr, out.stderr)
    check(C.job(jid)["state"] == "held")
    check(C.run("qdel", [jid]).returncode == 0)


def main():
    global C
    with cluster("owner") as c:
        C = c
        return run_tests([test_job_runs_as_owner,
                          test_other_user_cannot_delete])


if __name__ == "__main__":
    raise SystemExit(main())
