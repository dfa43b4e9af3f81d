#!/usr/bin/env python3
"""Throughput: trivial jobs through the whole system, beside Slurm.

Starts a private PostgreSQL (durable settings, `track_commit_timestamp`
on), drover-qmgr, drover-sched and ONE real drover-noded (a synthetic
64-core topology, like the Slurm peer's 64 fake CPUs; jobs are real
processes), then runs N trivial jobs (`qsub -j oe -o /dev/null --
/bin/true`) in four phases:

  seq    N x `qsub` one after another (a bash loop, as Slurm's bench.sh)
  par8   the same from 8 bash loops at once (N/8 each)
  array  one `qsub -J 1-N` (reported as unavailable while -J is refused)
  sim    on a second cluster whose noded runs `--simulate` nodes: N x
         --sim-factor jobs through POST /v1/jobs from 8 keep-alive
         connections (no qsub process per job), end to end

For each phase: submit_s and submit_per_s (the submission step alone),
total_s and complete_per_s (first submission -> last job finished, from
the database: the jobs' submit_time and the commit timestamp of the
transaction that finished each job), and CPU seconds per job of every
component and of the qsub processes.

Then (unless --no-slurm) it runs ../shared/peers/slurm (up.sh,
bench.sh N, down.sh) and parses its figures; when Slurm cannot start it is
reported as unavailable. The last line on stdout is one JSON object with
every figure and the ratios Drover / Slurm.

    bench/throughput.py [--jobs 2000] [--phases seq,par8,array,sim]
"""

import argparse
import http.client
import json
import os
import re
import subprocess
import threading
import time

import cluster

log = cluster.logger("throughput")
SLURM_PEER = os.path.join(os.path.dirname(cluster.TOP), "shared", "peers",
                          "slurm")


class Tput(cluster.Cluster):
    def __init__(self, args, prefix):
        super().__init__(prefix, bin=args.bin)
        self.args = args
        self.env = dict(os.environ, DROVER_ADDR=self.addr)

    def start_cluster(self, node_args):
        a = self.args
        self.start_pg(pg_stats=a.pg_stats,
                      extra_opts="-c track_commit_timestamp=on")
        self.migrate("tput")
        self.start_qmgr(workers=a.qmgr_workers)
        self.start_noded("node1", node_args)
        self.wait_nodes(a.sim_nodes if "--simulate" in node_args else 1)
        self.start_sched(workers=a.sched_workers)
        self.wait_sched()

    def active(self):
        return int(self.psql("SELECT count(*) FROM jobs "
                             "WHERE state <> 'finished'"))

    def wait_done(self, name, n, t0, exact=True):
        """Waits until the phase's n jobs are finished; returns the
        database's figures (seconds from the first submit_time to the
        last finishing commit, and how many failed). exact: the phase made
        exactly n rows (an array may store its subjobs otherwise)."""
        deadline = t0 + self.args.timeout
        while True:
            if self.active() == 0:
                break
            if time.time() > deadline:
                raise SystemExit("throughput: %d jobs still active after "
                                 "%ds; logs in %s" % (self.active(),
                                                      self.args.timeout,
                                                      self.dir))
            time.sleep(0.1)
        row = self.psql(
            "SELECT count(*), count(*) FILTER (WHERE exit_status <> 0 "
            "OR exit_status IS NULL), "
            "extract(epoch FROM max(pg_xact_commit_timestamp(xmin)) "
            "- min(submit_time)) FROM jobs WHERE name = '%s'" % name)
        count, bad, secs = row.split("|")
        if exact and int(count) != n:
            raise SystemExit("throughput: phase %s: %s jobs in the database, "
                             "expected %d" % (name, count, n))
        return float(secs), int(bad)

    def qsub_loops(self, name, n, loops):
        """n qsub runs split over `loops` bash loops run at once."""
        qsub = os.path.join(self.bin, "qsub")
        per = [n // loops + (1 if i < n % loops else 0) for i in range(loops)]
        script = ("set -e; for ((i = 0; i < $1; i++)); do "
                  "%s -N %s -j oe -o /dev/null -- /bin/true >/dev/null; done"
                  % (qsub, name))
        procs = [subprocess.Popen(["bash", "-c", script, "loop", str(k)],
                                  env=self.env, cwd=self.dir,
                                  stderr=subprocess.PIPE, text=True)
                 for k in per]
        errs = []
        for p in procs:
            _, err = p.communicate()
            if p.returncode != 0:
                errs.append(err.strip())
        if errs:
            raise SystemExit("throughput: qsub failed: %s" % errs[0])

    def qsub_array(self, name, n):
        out = subprocess.run([os.path.join(self.bin, "qsub"), "-N", name,
                              "-J", "1-%d" % n, "-j", "oe", "-o", "/dev/null",
                              "--", "/bin/true"], env=self.env, cwd=self.dir,
                             capture_output=True, text=True)
        if out.returncode != 0:
            lines = out.stderr.strip().splitlines()
            return lines[0] if lines else "exit %d" % out.returncode
        return None

    def api_loops(self, name, n, conns):
        """n PBS-style jobs through POST /v1/jobs over `conns` keep-alive
        connections (simulated runtime 0)."""
        body = json.dumps({
            "name": name, "argv": ["/bin/true"], "stdout": "/dev/null",
            "join": "oe", "env": ["DROVER_SIM_RUNTIME=0s"],
            "owner": os.environ.get("USER", "root")}).encode()
        hdr = {"Content-Type": "application/json",
               "X-Drover-User": os.environ.get("USER", "root")}
        errs = []

        def worker(count):
            c = http.client.HTTPConnection("127.0.0.1", self.port,
                                           timeout=60)
            for _ in range(count):
                c.request("POST", "/v1/jobs", body, hdr)
                r = c.getresponse()
                data = r.read()
                if r.status != 201:
                    errs.append((r.status, data[:200]))
                    return
            c.close()

        per = [n // conns + (1 if i < n % conns else 0) for i in range(conns)]
        threads = [threading.Thread(target=worker, args=(k,)) for k in per]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errs:
            raise SystemExit("throughput: submission failed: %r" % (errs[0],))

    def phase(self, name, n, submit, exact=True):
        """Runs one phase; submit() submits, returns None or why the phase
        is unavailable."""
        log("phase %s: %d jobs" % (name, n))
        if self.args.pg_stats:
            self.psql("SELECT pg_stat_statements_reset()")
        cpu0, cc0 = self.cpu(), cluster.children_cpu()
        t0 = time.time()
        why = submit()
        t1 = time.time()
        cc1 = cluster.children_cpu()
        if why is not None:
            log("phase %s unavailable: %s" % (name, why))
            return {"available": False, "why": why}
        total, bad = self.wait_done(name, n, t0, exact)
        cpu1 = self.cpu()
        res = {
            "available": True, "jobs": n,
            "submit_s": round(t1 - t0, 3),
            "submit_per_s": round(n / (t1 - t0), 1),
            "total_s": round(total, 3),
            "complete_per_s": round(n / total, 1),
            "failed": bad,
            "cpu_ms_per_job": {k: round((cpu1[k] - cpu0.get(k, 0)) * 1000 / n,
                                        3) for k in cpu1},
        }
        res["cpu_ms_per_job"]["qsub"] = round((cc1 - cc0) * 1000 / n, 3)
        if self.args.pg_stats:
            log("phase %s: top statements by total time:\n%s"
                % (name, self.top_statements()))
        log("phase %s: %s" % (name, json.dumps(res)))
        return res


def run_drover(args, result):
    real = [p for p in args.phases if p in ("seq", "par8", "array")]
    if real:
        c = Tput(args, "tput")
        try:
            c.start_cluster(["--allow-root", "--topology-synthetic",
                             args.topology, "--memory", "256gb"])
            n = args.jobs
            for p in real:
                if p == "seq":
                    result["seq"] = c.phase("tput-seq", n, lambda: c.qsub_loops(
                        "tput-seq", n, 1))
                elif p == "par8":
                    result["par8"] = c.phase("tput-par8", n,
                                             lambda: c.qsub_loops(
                                                 "tput-par8", n, 8))
                elif p == "array":
                    result["array"] = c.phase("tput-array", n,
                                              lambda: c.qsub_array(
                                                  "tput-array", n),
                                              exact=False)
        finally:
            c.stop()
            c.destroy(keep=args.keep)
    if "sim" in args.phases:
        c = Tput(args, "tput-sim")
        try:
            c.start_cluster(["--simulate", str(args.sim_nodes),
                             "--simulate-topology", args.topology,
                             "--memory", "256gb",
                             "--simulate-running=false"])
            n = args.jobs * args.sim_factor
            result["sim"] = c.phase("tput-sim", n,
                                    lambda: c.api_loops("tput-sim", n, 8))
        finally:
            c.stop()
            c.destroy(keep=args.keep)


SLURM_LINE = re.compile(r"^(single|array)\s+N=(\d+)\s+submit_s=([\d.]+)\s+"
                        r"submit_jobs_per_s=([\d.]+)\s+total_s=([\d.]+)\s+"
                        r"complete_jobs_per_s=([\d.]+)")
SLURM_CPU = re.compile(r"peer_ms_per_job=([\d.]+|n/a)\s+"
                       r"client_ms_per_job=([\d.]+)")


def run_slurm(args):
    """Slurm's figures from its peer scripts, or {"available": False}."""
    if not os.path.isdir(SLURM_PEER):
        return {"available": False, "why": "no %s" % SLURM_PEER}
    log("starting the Slurm peer")
    up = subprocess.run(["bash", os.path.join(SLURM_PEER, "up.sh")],
                        capture_output=True, text=True, timeout=600)
    if up.returncode != 0:
        why = (up.stderr.strip() or up.stdout.strip()).splitlines()
        if "already running" not in up.stderr:
            # stop what this up.sh started; a peer someone else runs is
            # left alone
            subprocess.run(["bash", os.path.join(SLURM_PEER, "down.sh")],
                           capture_output=True, timeout=120)
        return {"available": False,
                "why": "up.sh failed: %s" % (why[-1] if why else "")}
    try:
        log("running Slurm's bench.sh %d" % args.jobs)
        out = subprocess.run(["bash", os.path.join(SLURM_PEER, "bench.sh"),
                              str(args.jobs)], capture_output=True, text=True,
                             timeout=3600)
    finally:
        subprocess.run(["bash", os.path.join(SLURM_PEER, "down.sh")],
                       capture_output=True, timeout=120)
    if out.returncode != 0:
        return {"available": False, "why": "bench.sh failed: %s"
                % out.stderr.strip()[-300:]}
    res = {"available": True}
    last = None
    for line in out.stdout.splitlines():
        m = SLURM_LINE.match(line)
        if m:
            last = m.group(1)
            res[last] = {"jobs": int(m.group(2)),
                         "submit_s": float(m.group(3)),
                         "submit_per_s": float(m.group(4)),
                         "total_s": float(m.group(5)),
                         "complete_per_s": float(m.group(6))}
            continue
        m = SLURM_CPU.search(line)
        if m and last is not None:
            res[last]["cpu_ms_per_job"] = {
                "peer": None if m.group(1) == "n/a" else float(m.group(1)),
                "sbatch": float(m.group(2))}
    log("slurm: %s" % json.dumps(res))
    return res


def ratios(result):
    """Drover / Slurm for the comparable figures."""
    s = result.get("slurm", {})
    out = {}
    if not s.get("available"):
        return out
    pairs = [("seq", "single"), ("array", "array")]
    for mine, theirs in pairs:
        d, t = result.get(mine), s.get(theirs)
        if not d or not d.get("available") or not t:
            continue
        for k in ("submit_per_s", "complete_per_s"):
            if t.get(k):
                out["%s_%s" % (mine, k)] = round(d[k] / t[k], 2)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--phases", default="seq,par8,array,sim",
                    help="comma-separated: seq, par8, array, sim")
    ap.add_argument("--sim-factor", type=int, default=10,
                    help="the sim phase runs jobs x this (default 10)")
    ap.add_argument("--sim-nodes", type=int, default=100)
    ap.add_argument("--topology", default="pack:1 core:64 pu:1",
                    help="the node's (and each simulated node's) synthetic "
                         "hwloc topology")
    ap.add_argument("--qmgr-workers", type=int, default=4)
    ap.add_argument("--sched-workers", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--bin", default="bin")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--no-slurm", action="store_true")
    ap.add_argument("--pg-stats", action="store_true",
                    help="print PostgreSQL's costliest statements per phase")
    args = ap.parse_args()
    args.phases = [p for p in args.phases.split(",") if p]
    result = {"jobs": args.jobs, "phases": args.phases,
              "loadavg_start": os.getloadavg()[0]}
    run_drover(args, result)
    if args.no_slurm:
        result["slurm"] = {"available": False, "why": "--no-slurm"}
    else:
        try:
            result["slurm"] = run_slurm(args)
        except (OSError, subprocess.SubprocessError) as e:
            result["slurm"] = {"available": False, "why": str(e)}
    result["ratio_drover_to_slurm"] = ratios(result)
    result["loadavg_end"] = os.getloadavg()[0]
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
