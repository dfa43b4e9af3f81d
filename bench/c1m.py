#!/usr/bin/env python3
"""C1M: place a million allocations.

Starts a private PostgreSQL (durable settings: fsync and synchronous_commit
on), drover-qmgr, one drover-noded --simulate N (N virtual nodes, each
registering, heartbeating, long-polling and "running" its allocations as
timers), and one drover-sched process with W workers; submits J native
batch jobs of T one-core tasks each through the API, and measures the time
until all J*T allocations are committed. Then, on the same idle cluster
emptied again, the latency of placing one 100-task job, over R runs.

Prints progress on stderr and, last, one JSON line on stdout:
nodes, jobs, tasks, workers, placements, seconds_to_all_placed,
placements_per_s, plan_conflicts, conflict_rate, sched_rss_mb,
one_job_p50_ms, one_job_p99_ms.

    bench/c1m.py --nodes 5000 --jobs 1000 --tasks 1000 --workers 2
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")


def log(msg):
    print("c1m: %s" % msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(argv):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + argv
    return argv


class Bench:
    def __init__(self, args):
        self.args = args
        self.bin = os.path.join(TOP, args.bin)
        self.dir = tempfile.mkdtemp(prefix="drover-c1m-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.procs = []
        self.port = free_port()
        self.addr = "http://127.0.0.1:%d" % self.port
        self.metrics_port = free_port()
        self.pg_port = None
        self.conninfo = None

    # --- PostgreSQL, durable ---

    def start_pg(self):
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
        if self.args.pg_stats:
            opts += (" -c shared_preload_libraries=pg_stat_statements"
                     " -c pg_stat_statements.track=all")
        subprocess.run(as_postgres([os.path.join(PGBIN, "pg_ctl"), "start",
                                    "-D", data, "-w", "-t", "60", "-l",
                                    os.path.join(self.dir, "pg.log"),
                                    "-o", opts]),
                       check=True, capture_output=True, cwd="/")
        subprocess.run([os.path.join(PGBIN, "createdb"), "-h", sock, "-p",
                        str(self.pg_port), "-U", "postgres", "drover"],
                       check=True, capture_output=True)
        self.conninfo = ("host=%s port=%d dbname=drover user=postgres"
                         % (sock, self.pg_port))
        if self.args.pg_stats:
            self.psql("CREATE EXTENSION pg_stat_statements")

    def stop_pg(self):
        subprocess.run(as_postgres([os.path.join(PGBIN, "pg_ctl"), "stop",
                                    "-D", os.path.join(self.dir, "pg"),
                                    "-m", "fast"]),
                       capture_output=True, cwd="/")

    def psql(self, query):
        out = subprocess.run([os.path.join(PGBIN, "psql"), self.conninfo,
                              "-XAtq", "-c", query], capture_output=True,
                             text=True, check=True)
        return out.stdout.strip()

    # --- daemons ---

    def spawn(self, name, argv):
        logf = open(os.path.join(self.dir, name + ".log"), "ab")
        p = subprocess.Popen(argv, stdout=logf, stderr=logf,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        self.procs.append((name, p))
        return p

    def start_cluster(self):
        a = self.args
        subprocess.run([os.path.join(self.bin, "drover-qmgr"), "migrate",
                        "--database", self.conninfo, "--server-name", "c1m"],
                       check=True)
        self.qmgr = self.spawn("qmgr", [
            os.path.join(self.bin, "drover-qmgr"), "--database",
            self.conninfo, "--listen", "127.0.0.1:%d" % self.port,
            "--workers", str(a.qmgr_workers), "--node-ttl", "120s",
            "--log-level", "warn"] + list(getattr(a, "qmgr_args", [])))
        self.wait(lambda: self.api("GET", "/v1/status")[0] == 200, 30,
                  "qmgr")
        self.noded = self.spawn("noded", [
            os.path.join(self.bin, "drover-noded"), "--server", self.addr,
            "--name", "sim", "--data-dir", os.path.join(self.dir, "noded"),
            "--simulate", str(a.nodes), "--simulate-topology", a.topology,
            "--memory", a.node_memory, "--log-level", "warn",
            "--simulate-running=%s" % ("true" if a.sim_running else "false")])
        log("waiting for %d simulated nodes" % a.nodes)
        t0 = time.time()
        self.wait(lambda: int(self.psql(
            "SELECT count(*) FROM nodes WHERE status = 'ready'")) >= a.nodes,
            600, "nodes to register")
        log("%d nodes ready in %.1fs" % (a.nodes, time.time() - t0))
        self.sched = self.spawn("sched", [
            os.path.join(self.bin, "drover-sched"), "--database",
            self.conninfo, "--workers", str(a.workers), "--batch", "4",
            "--metrics-listen", "127.0.0.1:%d" % self.metrics_port,
            "--log-level", "warn"] + list(getattr(a, "sched_args", [])))

    def wait_sched(self):
        """The scheduler serves /metrics once its snapshot is loaded."""
        self.wait(lambda: self.metric("drover_sched_evaluations_total") >= 0,
                  120, "the scheduler")

    def cpu(self):
        """CPU seconds used so far by each component (PostgreSQL: the
        postmaster and all its backends)."""
        tick = os.sysconf("SC_CLK_TCK")

        def used(pid):
            try:
                with open("/proc/%d/stat" % pid) as f:
                    parts = f.read().rsplit(")", 1)[1].split()
                return (int(parts[11]) + int(parts[12])) / tick
            except OSError:
                return 0.0

        with open(os.path.join(self.dir, "pg", "postmaster.pid")) as f:
            postmaster = int(f.readline())
        pg = used(postmaster)
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open("/proc/%s/stat" % d) as f:
                        parts = f.read().rsplit(")", 1)[1].split()
                    if int(parts[1]) == postmaster:
                        pg += used(int(d))
                except OSError:
                    pass
        return {"postgres": pg, "sched": used(self.sched.pid),
                "qmgr": used(self.qmgr.pid), "noded": used(self.noded.pid)}

    def stop_cluster(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        self.stop_pg()

    def wait(self, fn, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if fn():
                    return
            except (OSError, subprocess.CalledProcessError, ValueError):
                pass
            time.sleep(0.2)
        raise SystemExit("c1m: timed out waiting for %s; logs in %s"
                         % (what, self.dir))

    def api(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.addr + path, data=data,
                                     method=method)
        req.add_header("Content-Type", "application/json")
        req.add_header("X-Drover-User", os.environ.get("USER", "root"))
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    # --- the runs ---

    def job(self, name, tasks):
        user = os.environ.get("USER", "root")
        return {
            "name": name, "type": "batch", "owner": user,
            "meta": {"drover.sim_runtime": "24h"},
            "groups": [{
                "name": "t", "count": tasks,
                "resources": {"cores": 1, "memory": "64mb"},
                "tasks": [{"name": "t", "command": "/bin/true"}]}]}

    def submit(self, jobs, tasks, prefix):
        """Submits jobs from 4 threads; returns the job ids."""
        ids = []
        lock = threading.Lock()
        errors = []

        def worker(start, step):
            for i in range(start, jobs, step):
                st, body = self.api("POST", "/v1/jobs",
                                    self.job("%s%d" % (prefix, i), tasks))
                if st not in (200, 201):
                    errors.append((st, body))
                    return
                with lock:
                    ids.append(body["id"])

        threads = [threading.Thread(target=worker, args=(k, 4))
                   for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise SystemExit("c1m: submission failed: %r" % (errors[0],))
        return ids

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

    def run_c1m(self):
        a = self.args
        base = int(self.psql("SELECT count(*) FROM allocations"))
        total = a.jobs * a.tasks
        log("submitting %d jobs x %d tasks" % (a.jobs, a.tasks))
        if a.pg_stats:
            self.psql("SELECT pg_stat_statements_reset()")
        before = self.metric("drover_sched_placements_total")
        cpu0 = self.cpu()
        t0 = time.time()
        self.submit(a.jobs, a.tasks, "c1m-")
        log("submitted in %.1fs" % (time.time() - t0))
        placed = 0
        last = 0
        while placed < total:
            # the scheduler's own counter: polling count(*) would load the
            # database being measured
            time.sleep(0.1)
            placed = int(self.metric("drover_sched_placements_total") - before)
            if time.time() - last > 5:
                log("%d of %d placed after %.1fs" % (placed, total,
                                                     time.time() - t0))
                last = time.time()
            if time.time() - t0 > a.timeout:
                raise SystemExit("c1m: only %d of %d placed after %ds"
                                 % (placed, total, a.timeout))
        seconds = time.time() - t0
        cpu1 = self.cpu()
        placed = int(self.psql("SELECT count(*) FROM allocations")) - base
        if placed < total:
            raise SystemExit("c1m: the scheduler counted %d placements but "
                             "the database holds %d" % (total, placed))
        if a.pg_stats:
            log("top statements by total time while placing:\n" + self.psql(
                "SELECT round(total_exec_time::numeric / 1000, 1) || ' s  ' "
                "|| calls || ' calls  ' || left(regexp_replace(query, "
                "'\\s+', ' ', 'g'), 110) FROM pg_stat_statements "
                "ORDER BY total_exec_time DESC LIMIT 12"))
        log("CPU seconds while placing: " + ", ".join(
            "%s %.1f" % (k, cpu1[k] - cpu0[k]) for k in sorted(cpu1)))
        conflicts = (self.metric("drover_sched_plan_conflicts_total") -
                     self.conflicts_before)
        return {
            "placements": placed,
            "seconds_to_all_placed": round(seconds, 2),
            "placements_per_s": round(placed / seconds),
            "plan_conflicts": int(conflicts),
            "conflict_rate": round(conflicts / placed, 5) if placed else 0,
            "sched_rss_mb": self.rss_mb(self.sched.pid),
        }

    def run_one_job(self, runs):
        """Latency to place one 100-task job, job after job."""
        lat = []
        for i in range(runs):
            t0 = time.time()
            st, body = self.api("POST", "/v1/jobs", self.job("one%d" % i, 100))
            if st not in (200, 201):
                raise SystemExit("c1m: submission failed: %r" % body)
            jid, index = body["id"], body["modify_index"]
            while True:
                st, j = self.api("GET", "/v1/jobs/%d?index=%d&wait=10s"
                                 % (jid, index))
                index = j["modify_index"]
                if j["state"] == "running":
                    break
            lat.append((time.time() - t0) * 1000)
        lat.sort()
        return {"one_job_p50_ms": round(lat[len(lat) // 2], 1),
                "one_job_p99_ms": round(lat[min(len(lat) - 1,
                                                int(len(lat) * 0.99))], 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--one-job-runs", type=int, default=100)
    ap.add_argument("--topology", default="pack:2 numa:2 core:64 pu:1")
    ap.add_argument("--node-memory", default="512gb")
    ap.add_argument("--qmgr-workers", type=int, default=4)
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--bin", default="bin")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--pg-stats", action="store_true",
                    help="report PostgreSQL's costliest statements")
    ap.add_argument("--no-sim-running", dest="sim_running",
                    action="store_false",
                    help="simulated nodes report only an allocation's end, "
                         "not that it started")
    args = ap.parse_args()
    b = Bench(args)
    result = {"nodes": args.nodes, "jobs": args.jobs, "tasks": args.tasks,
              "workers": args.workers}
    try:
        b.start_pg()
        b.start_cluster()
        b.wait_sched()
        if args.one_job_runs > 0:
            result.update(b.run_one_job(args.one_job_runs))
        b.conflicts_before = b.metric("drover_sched_plan_conflicts_total")
        result.update(b.run_c1m())
    finally:
        b.stop_cluster()
        if not args.keep:
            shutil.rmtree(b.dir, ignore_errors=True)
        else:
            log("kept %s" % b.dir)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
