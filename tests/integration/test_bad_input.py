"""Bad input gets a clear error and a non-zero exit, never a crash or a
hang: malformed scripts, bad options, bad resources, unknown queues and
jobs, malformed and oversized JSON, and unknown API paths."""

import os
import socket

from harness import check, cluster, run_tests

C = None


def test_qsub_bad_options():
    out = C.qsub(["-Y", "--", "/bin/true"])
    check(out.returncode == 2, "bad option exit %d" % out.returncode)
    check("usage: qsub" in out.stderr, out.stderr)
    out = C.qsub(["-j", "xy", "--", "/bin/true"])
    check(out.returncode == 2 and "illegal -j value" in out.stderr, out.stderr)
    out = C.qsub(["-l", "walltime=abc", "--", "/bin/true"])
    check(out.returncode == 166, "bad walltime exit %d" % out.returncode)
    check("qsub: Illegal attribute or resource value Resource_List.walltime"
          in out.stderr, out.stderr)
    out = C.qsub(["-l", "foo=1", "--", "/bin/true"])
    check(out.returncode == 187, "unknown resource exit %d" % out.returncode)
    check("qsub: Unknown resource Resource_List.foo" in out.stderr, out.stderr)
    out = C.qsub(["-q", "nosuch", "--", "/bin/true"])
    check(out.returncode == 170 and "qsub: Unknown queue" in out.stderr,
          "%d %s" % (out.returncode, out.stderr))


def test_qsub_bad_scripts():
    out = C.qsub([], script="#!/bin/sh\r\necho hi\r\n")
    check(out.returncode == 1 and "script contains cr, lf" in out.stderr,
          out.stderr)
    out = C.qsub([os.path.join(C.dir, "does-not-exist.sh")])
    check(out.returncode == 1 and "No such file or directory" in out.stderr,
          out.stderr)
    out = C.qsub([], script="#!/bin/sh\n#PBS -l ncpus=\necho\n")
    check(out.returncode != 0, "empty -l in a directive accepted")
    out = C.qsub([], script="#!/bin/sh\n#PBS -Y\necho\n")
    check(out.returncode == 1 and "directive error" in out.stderr, out.stderr)
    rows = C.sql("SELECT count(*) FROM jobs")
    check(rows == [["0"]], "rejected submissions stored: %r" % rows)


def test_qstat_errors():
    out = C.run("qstat", ["4242"])
    check(out.returncode == 153, "qstat unknown exit %d" % out.returncode)
    check(out.stderr.strip() == "qstat: Unknown Job Id 4242." + C.server,
          out.stderr)
    out = C.run("qstat", ["--bogus"])
    check(out.returncode == 2, "qstat bad option exit %d" % out.returncode)
    out = C.run("qdel", ["not-a-job"])
    check(out.returncode != 0 and "illegally formed job identifier" in out.stderr,
          out.stderr)


def test_api_bad_json():
    st, body = C.api("POST", "/v1/jobs", raw=b"{not json")
    check(st == 400 and body["error"]["code"] == "invalid_json", (st, body))
    st, body = C.api("POST", "/v1/jobs", {"owner": "root", "bogus": 1})
    check(st == 400 and body["error"]["code"] == "invalid_job", (st, body))
    st, body = C.api("POST", "/v1/jobs", raw=b"[1,2]")
    check(st == 400, (st, body))
    st, body = C.api("GET", "/v1/nope")
    check(st == 404 and body["error"]["code"] == "not_found", (st, body))
    st, body = C.api("PATCH", "/v1/jobs")
    check(st == 405, (st, body))
    st, body = C.api("GET", "/v1/jobs/xyz")
    check(st in (400, 404), (st, body))
    big = b'{"owner": "root", "script": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    try:
        st, body = C.api("POST", "/v1/jobs", raw=big)
        check(st == 413, "oversized body: %s" % st)
    except OSError:
        pass  # the server may close while we still send; it must not crash
    # garbage on the socket, then a normal request still works
    with socket.create_connection(("127.0.0.1", C.port), timeout=5) as s:
        s.sendall(b"\x00\x01garbage\r\n\r\n")
        data = s.recv(1024)
        check(data.startswith(b"HTTP/1.1 400"), data[:40])
    check(C.api("GET", "/v1/status")[0] == 200)
    check(C.qmgr.alive(), "qmgr died")


def main():
    global C
    with cluster("bad-input") as c:
        C = c
        return run_tests([test_qsub_bad_options, test_qsub_bad_scripts,
                          test_qstat_errors, test_api_bad_json])


if __name__ == "__main__":
    raise SystemExit(main())
