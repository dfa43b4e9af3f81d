"""Nothing acknowledged is lost: qmgr restarted with jobs queued and
running, PostgreSQL restarted under load, a node daemon that dies (its
node is marked down after the heartbeat TTL and its job requeued)."""

import os
import signal
import subprocess
import time
import uuid

from harness import check, cluster, run_tests, wait_until


def test_qmgr_restart_loses_nothing():
    with cluster("qmgr-restart", node_topology="pack:1 core:2 pu:1") as c:
        running = [c.submit(["-l", "ncpus=1", "--", "/bin/sleep", "4"])
                   for _ in range(2)]
        for jid in running:
            c.wait_state(jid, "running", 20)
        queued = [c.submit(["--", "/bin/true"]) for _ in range(5)]
        c.qmgr.kill()                      # SIGKILL
        time.sleep(1)
        c.start_qmgr()
        for jid in running + queued:
            j = c.wait_state(jid, "finished", 60)
            check(j["exit_status"] == 0, "%s: %r" % (jid, j))
            check(j["run_count"] == 1, "%s ran %d times" % (jid, j["run_count"]))


def test_postgres_restart():
    with cluster("pg-restart") as c:
        before = c.submit(["--", "/bin/sleep", "3"])
        c.wait_state(before, "running", 20)
        c.restart_pg()
        # qmgr answers 503 or recovers; a submission retried by qsub lands once
        jid = c.submit(["--", "/bin/true"])
        j = c.wait_state(jid, "finished", 60)
        check(j["exit_status"] == 0)
        j = c.wait_state(before, "finished", 60)
        check(j["exit_status"] == 0, repr(j))
        rows = c.sql("SELECT count(*) FROM jobs")
        check(rows == [["2"]], rows)


def test_node_down_requeues_job():
    with cluster("node-down") as c:
        marker = "drover-nd-" + uuid.uuid4().hex[:8]
        jid = c.submit(["-N", "survivor", "--", "/bin/bash", "-c",
                        "echo run; exec -a %s sleep 2" % marker])
        c.wait_state(jid, "running", 20)
        c.nodeds[0].kill()                 # the node daemon dies...
        subprocess.run(["pkill", "-f", marker])  # ...and its job with it
        wait_until(lambda: c.sql("SELECT status FROM nodes") == [["down"]],
                   20, what="node marked down")
        j = c.wait_state(jid, "queued", 10)
        check(j["run_count"] == 1, repr(j))
        lost = c.sql("SELECT client_status FROM allocations")
        check(lost == [["lost"]], lost)
        c.nodeds.pop()
        c.start_noded("node1")
        j = c.wait_state(jid, "finished", 60)
        check(j["exit_status"] == 0 and j["run_count"] == 2, repr(j))




class SwallowFirstAnswer:
    """A TCP proxy in front of qmgr that forwards the first request whole,
    waits for qmgr's answer and then drops the client's connection without
    passing the answer on: the submission committed, the client never
    heard. Later connections are relayed normally."""

    def __init__(self, target_port):
        import socket
        import threading
        self.target = target_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.swallowed = 0
        self.threading = threading
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        import socket
        first = True
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            if first:
                first = False
                self.threading.Thread(target=self.swallow,
                                      args=(client, upstream),
                                      daemon=True).start()
            else:
                for a, b in ((client, upstream), (upstream, client)):
                    self.threading.Thread(target=self.pipe, args=(a, b),
                                          daemon=True).start()

    def swallow(self, client, upstream):
        data = b""
        client.settimeout(10)
        # read the whole request (headers + Content-Length body)
        while b"\r\n\r\n" not in data:
            data += client.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        while len(body) < length:
            body += client.recv(65536)
        upstream.sendall(head + b"\r\n\r\n" + body)
        upstream.settimeout(10)
        upstream.recv(65536)          # qmgr answered: the job exists
        self.swallowed += 1
        client.close()                # ...but the client never hears it
        upstream.close()

    @staticmethod
    def pipe(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(2)
                except OSError:
                    pass

    def close(self):
        self.sock.close()


def test_qsub_retry_after_lost_answer_makes_one_job():
    with cluster("lost-answer") as c:
        proxy = SwallowFirstAnswer(c.port)
        try:
            out = c.run("qsub", ["-N", "once", "--", "/bin/true"],
                        env={"DROVER_ADDR": "http://127.0.0.1:%d" % proxy.port})
        finally:
            proxy.close()
        check(proxy.swallowed == 1, "the first answer was not swallowed")
        check(out.returncode == 0, "qsub failed: %s" % out.stderr)
        rows = c.sql("SELECT id FROM jobs")
        check(len(rows) == 1, "jobs stored: %r" % rows)
        check(out.stdout.strip() == "%s.%s" % (rows[0][0], c.server),
              "qsub printed %r for job %r" % (out.stdout, rows))
        c.wait_state(rows[0][0], "finished", 30)


def main():
    return run_tests([test_qmgr_restart_loses_nothing,
                      test_postgres_restart,
                      test_node_down_requeues_job,
                      test_qsub_retry_after_lost_answer_makes_one_job])


if __name__ == "__main__":
    raise SystemExit(main())
