"""Integration test harness: a throwaway cluster of real processes.

Starts a private PostgreSQL (tests/lib/pg.sh), applies migrations, and runs
the sanitizer builds of drover-qmgr, drover-sched and drover-noded from
$DROVER_BIN, each logging to its own file. Tests drive the cluster through
the real CLI (qsub, qstat, ...) and HTTP API, and check PostgreSQL with
psql. Each test prints "ok NAME" or "not ok NAME" (scripts/run-tests.sh
counts them). Python 3 standard library only.
"""

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("DROVER_BIN", os.path.join(TOP, "build", "test", "bin"))
PG_SH = os.path.join(TOP, "tests", "lib", "pg.sh")
PSQL = "/usr/lib/postgresql/15/bin/psql"
TEST_USER = "drover-test"

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "WARNING: ThreadSanitizer")


class TestFailure(Exception):
    pass


def check(cond, msg="check failed"):
    if not cond:
        raise TestFailure(msg)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(fn, timeout=30.0, interval=0.1, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise TestFailure("timed out after %.0fs waiting for %s (last: %r)"
                      % (timeout, what, last))


def ensure_test_user():
    """Creates the unprivileged user jobs run as in ownership tests."""
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        pass
    if os.geteuid() != 0:
        return None
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh",
                    TEST_USER], check=True, capture_output=True)
    return pwd.getpwnam(TEST_USER)


class Daemon:
    def __init__(self, name, argv, log, env=None):
        self.name = name
        self.argv = argv
        self.log = log
        self.env = env
        self.proc = None

    def start(self):
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=logf, stderr=logf,
                                     stdin=subprocess.DEVNULL, env=self.env,
                                     start_new_session=True)
        logf.close()
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self, timeout=20):
        """SIGTERM, then SIGKILL; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise TestFailure("%s did not stop within %ss of SIGTERM"
                                  % (self.name, timeout))
        return self.proc.returncode

    def kill(self):
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class Cluster:
    """PostgreSQL + qmgr + schedulers + node daemons, all real processes."""

    def __init__(self, name, nodes=1, scheds=1, sched_args=(), node_args=(),
                 qmgr_args=(), node_topology="pack:1 core:4 pu:1",
                 node_memory="8gb", start=True):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="drover-%s-" % name, dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.addr = "http://127.0.0.1:%d" % self.port
        self.conninfo = None
        self.qmgr = None
        self.scheds = []
        self.nodeds = []
        self.sched_args = list(sched_args)
        self.node_args = list(node_args)
        self.qmgr_args = list(qmgr_args)
        self.node_topology = node_topology
        self.node_memory = node_memory
        self.env = dict(os.environ)
        self.env["DROVER_ADDR"] = self.addr
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        self.server = None
        if start:
            self.start_pg()
            self.migrate()
            self.start_qmgr()
            for _ in range(scheds):
                self.start_sched()
            for i in range(nodes):
                self.start_noded("node%d" % (i + 1))
            if nodes:
                self.wait_nodes_ready(nodes)

    # --- processes ---

    def start_pg(self):
        out = subprocess.run([PG_SH, "start", os.path.join(self.dir, "pg")],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise TestFailure("could not start PostgreSQL: %s%s"
                              % (out.stdout, out.stderr))
        self.conninfo = out.stdout.strip().splitlines()[-1]

    def stop_pg(self):
        subprocess.run([PG_SH, "stop", os.path.join(self.dir, "pg")],
                       capture_output=True, timeout=60)

    def restart_pg(self):
        """Restarts PostgreSQL on the same port and data."""
        subprocess.run([PG_SH, "restart", os.path.join(self.dir, "pg")],
                       capture_output=True, timeout=120, check=True)

    def migrate(self):
        out = subprocess.run([os.path.join(BIN, "drover-qmgr"), "migrate",
                              "--database", self.conninfo,
                              "--server-name", "testsrv"],
                             capture_output=True, text=True, env=self.env,
                             timeout=60)
        if out.returncode != 0:
            raise TestFailure("migrate failed: %s" % out.stderr)
        self.server = "testsrv"

    def start_qmgr(self, extra=()):
        self.qmgr = Daemon("qmgr", [os.path.join(BIN, "drover-qmgr"),
                                    "--database", self.conninfo,
                                    "--listen", "127.0.0.1:%d" % self.port,
                                    "--node-ttl", "3s"]
                           + self.qmgr_args + list(extra),
                           os.path.join(self.dir, "qmgr.log"),
                           env=self.env).start()
        wait_until(lambda: self.api_ok("GET", "/v1/status"), 30,
                   what="qmgr to answer")
        return self.qmgr

    def start_sched(self, extra=()):
        i = len(self.scheds) + 1
        d = Daemon("sched%d" % i, [os.path.join(BIN, "drover-sched"),
                                   "--database", self.conninfo,
                                   "--poll-interval", "1s",
                                   "--name", "sched%d" % i]
                   + self.sched_args + list(extra),
                   os.path.join(self.dir, "sched%d.log" % i),
                   env=self.env).start()
        self.scheds.append(d)
        return d

    def start_noded(self, name, extra=(), topology=None):
        data = os.path.join(self.dir, "noded-" + name)
        os.makedirs(data, exist_ok=True)
        topo = topology or self.node_topology
        # "xml:PATH" loads a real machine's hwloc XML export instead
        topo_args = (["--topology-xml", topo[4:]] if topo.startswith("xml:")
                     else ["--topology-synthetic", topo])
        argv = [os.path.join(BIN, "drover-noded"), "--server", self.addr,
                "--name", name, "--data-dir", data, "--allow-root",
                "--kill-grace", "2s"] + topo_args + [
                "--memory", self.node_memory] + self.node_args + list(extra)
        d = Daemon(name, argv, os.path.join(self.dir, name + ".log"),
                   env=self.env).start()
        self.nodeds.append(d)
        return d

    def wait_nodes_ready(self, n, timeout=30):
        def ready():
            st, body = self.api("GET", "/v1/nodes")
            if st != 200:
                return False
            return sum(1 for x in body["nodes"] if x["status"] == "ready") >= n
        wait_until(ready, timeout, what="%d ready nodes" % n)

    def daemons(self):
        return ([self.qmgr] if self.qmgr else []) + self.scheds + self.nodeds

    def stop(self):
        problems = []
        for d in reversed(self.daemons()):
            try:
                rc = d.stop()
                if rc not in (0, None, -signal.SIGKILL):
                    problems.append("%s exited with status %s" % (d.name, rc))
            except TestFailure as e:
                problems.append(str(e))
        self.stop_pg()
        problems += self.sanitizer_reports()
        return problems

    def sanitizer_reports(self):
        found = []
        for f in os.listdir(self.dir):
            if not f.endswith(".log"):
                continue
            with open(os.path.join(self.dir, f), errors="replace") as fh:
                text = fh.read()
            for mark in SANITIZER_MARKS:
                if mark in text:
                    found.append("%s: %s" % (f, mark))
        return found

    def destroy(self):
        subprocess.run([PG_SH, "destroy", os.path.join(self.dir, "pg")],
                       capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self, tail=40):
        out = []
        for f in sorted(os.listdir(self.dir)):
            if f.endswith(".log"):
                with open(os.path.join(self.dir, f), errors="replace") as fh:
                    lines = fh.read().splitlines()[-tail:]
                out.append("--- %s ---\n%s" % (f, "\n".join(lines)))
        return "\n".join(out)

    # --- HTTP API ---

    def api(self, method, path, body=None, headers=None, raw=None,
            timeout=30):
        data = raw if raw is not None else (
            json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.addr + path, data=data,
                                     method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                text = r.read().decode()
                return r.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            try:
                return e.code, json.loads(text)
            except ValueError:
                return e.code, text

    def api_ok(self, method, path):
        try:
            return self.api(method, path, timeout=5)[0] == 200
        except OSError:
            return False

    def job(self, jobid):
        st, body = self.api("GET", "/v1/jobs/%s" % str(jobid).split(".")[0])
        check(st == 200, "GET job %s: %s %r" % (jobid, st, body))
        return body

    def wait_state(self, jobid, states, timeout=30):
        if isinstance(states, str):
            states = (states,)
        return wait_until(lambda: (lambda j: j if j["state"] in states
                                   else None)(self.job(jobid)),
                          timeout, what="job %s in %s" % (jobid, states))

    # --- CLI ---

    def run(self, cmd, args=(), input=None, user=None, cwd=None, env=None,
            timeout=60):
        argv = [os.path.join(BIN, cmd)] + list(args)
        e = dict(self.env)
        e.update(env or {})
        if user is not None:
            # runuser keeps the environment we pass with --preserve-environment
            argv = ["runuser", "-u", user, "--"] + argv
            e["HOME"] = pwd.getpwnam(user).pw_dir
            e["USER"] = e["LOGNAME"] = user
        return subprocess.run(argv, input=input, capture_output=True,
                              text=True, cwd=cwd or self.dir, env=e,
                              timeout=timeout)

    def qsub(self, args=(), script=None, **kw):
        out = self.run("qsub", args, input=script, **kw)
        return out

    def submit(self, args=(), script=None, **kw):
        """qsub that must succeed; returns the job id text."""
        out = self.qsub(args, script, **kw)
        check(out.returncode == 0, "qsub %s failed (%d): %s"
              % (" ".join(args), out.returncode, out.stderr))
        jobid = out.stdout.strip()
        check(jobid.endswith("." + self.server),
              "qsub printed %r" % out.stdout)
        return jobid

    # --- SQL ---

    def sql(self, query):
        out = subprocess.run([PSQL, self.conninfo, "-XAtq", "-F", "|", "-c",
                              query], capture_output=True, text=True,
                             timeout=60)
        if out.returncode != 0:
            raise TestFailure("psql failed: %s" % out.stderr)
        return [line.split("|") for line in out.stdout.splitlines() if line]


def run_tests(tests):
    """Runs test functions; each gets a fresh context it may ignore."""
    failed = 0
    only = os.environ.get("TEST_ONLY")
    for fn in tests:
        if only and only not in fn.__name__:
            continue
        start = time.time()
        try:
            fn()
            print("ok %s (%.1fs)" % (fn.__name__, time.time() - start))
        except Exception as e:  # noqa: BLE001 - report every failure
            failed += 1
            print("not ok %s: %s" % (fn.__name__, e))
            traceback.print_exc(file=sys.stdout)
        sys.stdout.flush()
    return 1 if failed else 0


class cluster:
    """with cluster("name", ...) as c: ... — stops and checks the logs."""

    def __init__(self, name, **kw):
        self.name = name
        self.kw = kw
        self.c = None

    def __enter__(self):
        try:
            self.c = Cluster(self.name, **self.kw)
        except Exception:
            if self.c is not None:
                self.c.stop()
            raise
        return self.c

    def __exit__(self, et, ev, tb):
        c = self.c
        problems = c.stop()
        if et is not None or problems:
            print(c.logs())
        keep = os.environ.get("KEEP_CLUSTER")
        if not keep:
            c.destroy()
        if et is None and problems:
            raise TestFailure("; ".join(problems))
        return False
