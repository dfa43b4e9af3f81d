"""Shared helpers of the benchmarks under bench/: a private PostgreSQL
with durable settings, the Drover daemons as real processes, the API, the
scheduler's /metrics and CPU accounting per component.

    import cluster
    c = cluster.Cluster("tput", bin="bin")
    c.start_pg()
    c.migrate("tput")
    c.start_qmgr(workers=4)
    ...
    c.stop()            # daemons in reverse order, then PostgreSQL
    c.destroy()         # removes the temporary directory
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")


def logger(prefix):
    """Returns a function that prints 'prefix: msg' on stderr."""
    def log(msg):
        print("%s: %s" % (prefix, msg), file=sys.stderr, flush=True)
    return log


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(argv):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + argv
    return argv


def proc_cpu(pid):
    """User + system CPU seconds of one process (0 when it is gone)."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        with open("/proc/%d/stat" % pid) as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / tick
    except OSError:
        return 0.0


def children_cpu():
    """CPU seconds of this process's reaped children (qsub runs)."""
    t = os.times()
    return t.children_user + t.children_system


def _sigterm(signum, frame):
    raise SystemExit(128 + signum)


class Cluster:
    def __init__(self, prefix, bin="bin"):
        # so that a benchmark stopped with SIGTERM still stops its daemons
        signal.signal(signal.SIGTERM, _sigterm)
        self.prefix = prefix
        self.log = logger(prefix)
        self.bin = os.path.join(TOP, bin)
        self.dir = tempfile.mkdtemp(prefix="drover-%s-" % prefix, dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.procs = []
        self.port = free_port()
        self.addr = "http://127.0.0.1:%d" % self.port
        self.metrics_port = free_port()
        self.pg_port = None
        self.conninfo = None
        self.pg_up = False

    # --- PostgreSQL, durable (fsync and synchronous_commit on) ---

    def start_pg(self, pg_stats=False, extra_opts=""):
        data = os.path.join(self.dir, "pg")
        sock = os.path.join(self.dir, "sock")
        os.makedirs(sock)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            shutil.chown(sock, "postgres")
        subprocess.run(as_postgres([os.path.join(PGBIN, "initdb"), "-D", data,
                                    "-U", "postgres", "--auth=trust",
                                    "--no-sync", "-E", "UTF8"]),
                       check=True, capture_output=True, cwd="/")
        self.pg_port = free_port()
        opts = ("-c listen_addresses=127.0.0.1 -p %d -k %s "
                "-c max_connections=300 -c shared_buffers=1GB "
                "-c max_wal_size=8GB -c checkpoint_timeout=30min "
                "-c wal_buffers=64MB -c autovacuum_naptime=10s"
                % (self.pg_port, sock))
        if pg_stats:
            opts += (" -c shared_preload_libraries=pg_stat_statements"
                     " -c pg_stat_statements.track=all")
        if extra_opts:
            opts += " " + extra_opts
        subprocess.run(as_postgres([os.path.join(PGBIN, "pg_ctl"), "start",
                                    "-D", data, "-w", "-t", "60", "-l",
                                    os.path.join(self.dir, "pg.log"),
                                    "-o", opts]),
                       check=True, capture_output=True, cwd="/")
        self.pg_up = True
        subprocess.run([os.path.join(PGBIN, "createdb"), "-h", sock, "-p",
                        str(self.pg_port), "-U", "postgres", "drover"],
                       check=True, capture_output=True)
        self.conninfo = ("host=%s port=%d dbname=drover user=postgres"
                         % (sock, self.pg_port))
        if pg_stats:
            self.psql("CREATE EXTENSION pg_stat_statements")

    def stop_pg(self):
        if not self.pg_up:
            return
        subprocess.run(as_postgres([os.path.join(PGBIN, "pg_ctl"), "stop",
                                    "-D", os.path.join(self.dir, "pg"),
                                    "-m", "fast"]),
                       capture_output=True, cwd="/")
        self.pg_up = False

    def psql(self, query, stdin=None):
        out = subprocess.run([os.path.join(PGBIN, "psql"), self.conninfo,
                              "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", query],
                             capture_output=True, text=True, check=True,
                             input=stdin)
        return out.stdout.strip()

    def top_statements(self, n=12):
        """PostgreSQL's costliest statements (needs start_pg(pg_stats=True)),
        as text lines: total seconds, calls, the statement's start."""
        return self.psql(
            "SELECT round(total_exec_time::numeric / 1000, 1) || ' s  ' "
            "|| calls || ' calls  ' || left(regexp_replace(query, "
            "'\\s+', ' ', 'g'), 110) FROM pg_stat_statements "
            "ORDER BY total_exec_time DESC LIMIT %d" % n)

    def pg_cpu(self):
        """CPU seconds of the postmaster and all its backends (live ones;
        a backend that exited took its figure with it)."""
        with open(os.path.join(self.dir, "pg", "postmaster.pid")) as f:
            postmaster = int(f.readline())
        total = proc_cpu(postmaster)
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open("/proc/%s/stat" % d) as f:
                        parts = f.read().rsplit(")", 1)[1].split()
                    if int(parts[1]) == postmaster:
                        total += proc_cpu(int(d))
                except OSError:
                    pass
        return total

    # --- daemons ---

    def spawn(self, name, argv, env=None):
        logf = open(os.path.join(self.dir, name + ".log"), "ab")
        p = subprocess.Popen(argv, stdout=logf, stderr=logf,
                             stdin=subprocess.DEVNULL, start_new_session=True,
                             env=env)
        logf.close()
        self.procs.append((name, p))
        return p

    def migrate(self, server_name):
        subprocess.run([os.path.join(self.bin, "drover-qmgr"), "migrate",
                        "--database", self.conninfo, "--server-name",
                        server_name], check=True)
        self.server_name = server_name

    def start_qmgr(self, workers=4, extra=()):
        self.qmgr = self.spawn("qmgr", [
            os.path.join(self.bin, "drover-qmgr"), "--database",
            self.conninfo, "--listen", "127.0.0.1:%d" % self.port,
            "--workers", str(workers), "--node-ttl", "120s",
            "--log-level", "warn"] + list(extra))
        self.wait(lambda: self.api("GET", "/v1/status")[0] == 200, 30,
                  "qmgr")
        return self.qmgr

    def start_noded(self, name, extra=()):
        self.noded = self.spawn(name, [
            os.path.join(self.bin, "drover-noded"), "--server", self.addr,
            "--name", name, "--data-dir", os.path.join(self.dir, name),
            "--log-level", "warn"] + list(extra))
        return self.noded

    def wait_nodes(self, n, timeout=600):
        self.wait(lambda: int(self.psql(
            "SELECT count(*) FROM nodes WHERE status = 'ready'")) >= n,
            timeout, "%d nodes to register" % n)

    def start_sched(self, workers=1, batch=None, extra=()):
        """batch None: the scheduler's default (--batch 16)."""
        argv = [os.path.join(self.bin, "drover-sched"), "--database",
                self.conninfo, "--workers", str(workers),
                "--metrics-listen", "127.0.0.1:%d" % self.metrics_port,
                "--log-level", "warn"]
        if batch is not None:
            argv += ["--batch", str(batch)]
        self.sched = self.spawn("sched", argv + list(extra))
        return self.sched

    def wait_sched(self):
        """The scheduler serves /metrics once its snapshot is loaded."""
        self.wait(lambda: self.metric("drover_sched_evaluations_total") >= 0,
                  120, "the scheduler")

    def cpu(self):
        """CPU seconds used so far by each component."""
        out = {"postgres": self.pg_cpu()}
        for name, p in self.procs:
            out[name] = proc_cpu(p.pid)
        return out

    def stop(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(45)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        self.procs = []
        self.stop_pg()

    def destroy(self, keep=False):
        if keep:
            self.log("kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def wait(self, fn, timeout, what, interval=0.2):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if fn():
                    return
            except (OSError, subprocess.CalledProcessError, ValueError):
                pass
            time.sleep(interval)
        raise SystemExit("%s: timed out waiting for %s; logs in %s"
                         % (self.prefix, what, self.dir))

    def api(self, method, path, body=None, timeout=60, user=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.addr + path, data=data,
                                     method=method)
        req.add_header("Content-Type", "application/json")
        req.add_header("X-Drover-User",
                       user or os.environ.get("USER", "root"))
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metric(self, name):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics"
                                    % self.metrics_port, timeout=10) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + "{"):
                    return float(line.rsplit(" ", 1)[1])
        return 0.0

    def rss_mb(self, pid):
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
        return 0.0
