#!/usr/bin/env python3
"""Backfill benchmark: replays a workload on simulated nodes under a scaled
clock, once in strict order (drover-sched --backfill=false: FIFO, the top
job holds every node) and once with EASY backfill (--backfill-depth 1),
and reports utilisation, mean and p95 wait, and mean bounded slowdown.

The workload is either
- a trace in the Standard Workload Format of the Parallel Workloads
  Archive (--swf FILE[.gz]; Feitelson et al., JPDC 74(10), 2014), fields
  used: 2 submit time, 4 run time, 5 allocated processors (8 requested
  processors when 5 is -1), 9 requested time (the walltime; the run time
  when -1); jobs with a run time <= 0 or no processors are skipped; or
- a generated one (--generate, the default), after Lublin and Feitelson,
  "The workload on parallel supercomputers: modeling the characteristics
  of rigid jobs", JPDC 63(11), 2003: 24% serial jobs, parallel sizes from
  a two-stage log-uniform distribution rounded to a power of two 75% of
  the time; log run time from their hyper-gamma (Gamma(4.2, 0.94) and
  Gamma(312, 0.03), the first chosen with probability
  -0.0054 * log2(size) + 0.78); gamma inter-arrival times (shape 10.23,
  scale 0.4871, in log seconds) stretched to the offered load asked for
  (--load; the daily cycle is left out). Walltimes (user estimates, which
  the model does not give) are the run time times a factor uniform in
  [1, 3], rounded up to the minute. Seeded (--seed).

--compress F divides every time of the workload (run times, walltimes,
arrivals; a trace's too) by F, so that 2,000 jobs replay in minutes at a
clock scale the daemons keep up with (the shapes of the distributions,
and the load, are unchanged). A trace's jobs wider than the simulated
cluster are cut to its size.

Jobs of up to one node's cores ask for select=1:ncpus=N, wider ones for
whole nodes (select=ceil(N/C):ncpus=C, place=scatter); a simulated job
"runs" for its run time (DROVER_SIM_RUNTIME) and is killed at its walltime.
Times are Drover's (DROVER_TIME_SCALE=k makes them pass k times faster);
the figures are computed from the times PostgreSQL recorded. Bounded
slowdown: max(1, (wait + run) / max(run, 10 s)) (Feitelson et al., "Theory
and practice in parallel job scheduling", JSSPP 1997).

Prints progress on stderr and one JSON line on stdout:
{"jobs", "nodes", "cores", "scale", "fifo": {...}, "backfill": {...}}.

    bench/replay.py --jobs 2000 --nodes 32 --cores 4 --compress 16 \
        --scale 100
"""

import argparse
import gzip
import json
import math
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from c1m import Bench, log  # noqa: E402  (PostgreSQL and daemons)


def read_swf(path, limit):
    opener = gzip.open if path.endswith(".gz") else open
    jobs = []
    with opener(path, "rt", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(";"):
                continue
            v = line.split()
            if len(v) < 9:
                continue
            submit, run = float(v[1]), float(v[3])
            procs = int(v[4]) if int(v[4]) > 0 else int(v[7])
            req = float(v[8]) if float(v[8]) > 0 else run
            if run <= 0 or procs <= 0:
                continue
            jobs.append({"submit": submit, "run": run, "procs": procs,
                         "walltime": max(req, run)})
            if len(jobs) >= limit:
                break
    t0 = jobs[0]["submit"] if jobs else 0
    for j in jobs:
        j["submit"] -= t0
    return jobs


def lublin_feitelson(n, max_procs, load, seed, max_run, compress=1.0):
    rng = random.Random(seed)
    top = math.log2(max_procs)
    jobs = []
    for _ in range(n):
        if rng.random() < 0.24 or max_procs < 2:
            procs = 1
        else:
            # two-stage uniform over log2(size): most jobs are small
            lo, mid = 1.0, 1.0 + 0.86 * (top - 1.0)
            x = (rng.uniform(lo, mid) if rng.random() < 0.86
                 else rng.uniform(mid, top))
            if rng.random() < 0.75:
                x = round(x)
            procs = max(2, min(max_procs, int(round(2 ** x))))
        p = -0.0054 * math.log2(procs) + 0.78
        shape, scale = (4.2, 0.94) if rng.random() < p else (312.0, 0.03)
        run = min(max_run, max(1.0, math.exp(rng.gammavariate(shape, scale))))
        wall = math.ceil(run * rng.uniform(1.0, 3.0) / 60.0) * 60.0
        jobs.append({"run": round(run), "procs": procs,
                     "walltime": max(wall, 60.0)})
    # arrivals: gamma inter-arrival (log seconds), stretched to the load
    gaps = [math.exp(rng.gammavariate(10.23, 0.4871)) for _ in range(n)]
    work = sum(j["run"] * j["procs"] for j in jobs)
    span = work / (load * max_procs)
    k = span / sum(gaps)
    t = 0.0
    for j, g in zip(jobs, gaps):
        j["submit"] = t / compress
        j["run"] = max(1, round(j["run"] / compress))
        j["walltime"] = max(float(j["run"]), j["walltime"] / compress)
        t += g * k
    return jobs


class Replay(Bench):
    def resources(self, j):
        c = self.args.cores
        if j["procs"] <= c:
            sel = "1:ncpus=%d" % j["procs"]
            place = "pack"
        else:
            sel = "%d:ncpus=%d" % (math.ceil(j["procs"] / c), c)
            place = "scatter"
        return {"select": sel, "place": place,
                "walltime": int(math.ceil(j["walltime"]))}

    def submit_all(self, jobs):
        scale = self.args.scale
        start = time.time()
        errors = []

        def body(i, j):
            return {"name": "r%d" % i, "argv": ["/bin/true"],
                    "resources": self.resources(j),
                    "env": ["DROVER_SIM_RUNTIME=%d" % max(1, int(j["run"]))]}

        for i, j in enumerate(jobs):
            delay = start + j["submit"] / scale - time.time()
            if delay > 0:
                time.sleep(delay)
            st, ans = self.api("POST", "/v1/jobs", body(i, j))
            if st not in (200, 201):
                errors.append("%s %s" % (st, ans))
        return errors

    def figures(self, njobs):
        rows = self.psql(
            "SELECT extract(epoch FROM submit_time), "
            "extract(epoch FROM start_time), extract(epoch FROM end_time), "
            "ncpus FROM jobs WHERE state = 'finished' "
            "AND start_time IS NOT NULL")
        recs = []
        for line in rows.splitlines():
            s, st, e, n = line.split("|")
            recs.append((float(s), float(st), float(e), int(n)))
        waits = sorted(st - s for s, st, e, n in recs)
        first = min(s for s, st, e, n in recs)
        last = max(e for s, st, e, n in recs)
        used = sum((e - st) * n for s, st, e, n in recs)
        total = self.args.nodes * self.args.cores
        bsld = [max(1.0, (st - s + e - st) / max(e - st, 10.0))
                for s, st, e, n in recs]
        return {
            "finished": len(recs),
            "makespan_s": round(last - first, 1),
            "utilisation": round(used / (total * (last - first)), 4),
            "mean_wait_s": round(sum(waits) / len(waits), 1),
            "p95_wait_s": round(waits[min(len(waits) - 1,
                                          int(0.95 * len(waits)))], 1),
            "mean_bounded_slowdown": round(sum(bsld) / len(bsld), 2),
        }

    def run_mode(self, jobs, sched_args):
        a = self.args
        os.environ["DROVER_TIME_SCALE"] = str(a.scale)
        self.start_pg()
        # Options in Drover seconds, stretched so that in real time they
        # stay near what they are at scale 1 (a 30 s lease would be 15 ms
        # at 2000x), within their ranges.
        def span(seconds, most):
            return "%ds" % min(most, seconds * a.scale)
        a.qmgr_args = ["--node-ttl", span(10, 3600),
                       "--liveness-interval", span(1, 600)]
        a.sched_args = ["--lease", span(30, 3600),
                        "--poll-interval", span(5, 600),
                        "--full-refresh", span(10, 3600),
                        "--stats-interval", span(60, 3600)] + sched_args
        self.start_cluster()
        t0 = time.time()
        errors = []
        th = threading.Thread(target=lambda: errors.extend(
            self.submit_all(jobs)))
        th.start()
        th.join()
        self.wait(lambda: int(self.psql(
            "SELECT count(*) FROM jobs WHERE state = 'finished'"))
            >= len(jobs), a.timeout, "every job to finish")
        real = time.time() - t0
        fig = self.figures(len(jobs))
        fig["real_seconds"] = round(real, 1)
        fig["submit_errors"] = len(errors)
        self.stop_cluster()
        self.procs = []
        return fig


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--swf", help="Standard Workload Format trace (.gz ok)")
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--nodes", type=int, default=32)
    ap.add_argument("--cores", type=int, default=4)
    ap.add_argument("--load", type=float, default=0.85,
                    help="offered load of the generated workload")
    ap.add_argument("--max-run", type=float, default=4 * 3600,
                    help="longest generated run time, seconds")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--compress", type=float, default=1.0,
                    help="divide the generated times by this")
    ap.add_argument("--scale", type=float, default=100,
                    help="DROVER_TIME_SCALE")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--modes", default="fifo,backfill")
    ap.add_argument("--bin", default="bin")
    a = ap.parse_args()
    # what c1m's cluster start-up reads
    a.qmgr_workers = 2
    a.topology = "pack:1 core:%d pu:1" % a.cores
    a.node_memory = "64gb"
    a.sim_running = True
    a.pg_stats = False
    total = a.nodes * a.cores
    if a.swf:
        jobs = read_swf(a.swf, a.jobs)
        for j in jobs:
            j["procs"] = min(j["procs"], total)
            j["submit"] /= a.compress
            j["run"] = max(1, round(j["run"] / a.compress))
            j["walltime"] = max(float(j["run"]), j["walltime"] / a.compress)
    else:
        jobs = lublin_feitelson(a.jobs, total, a.load, a.seed, a.max_run,
                                a.compress)
    log("%d jobs over %.1f h of submissions, %d nodes x %d cores, scale %g"
        % (len(jobs), jobs[-1]["submit"] / 3600, a.nodes, a.cores, a.scale))
    out = {"jobs": len(jobs), "nodes": a.nodes, "cores": total,
           "scale": a.scale, "workload": a.swf or
           "lublin-feitelson seed %d compress %g" % (a.seed, a.compress)}
    modes = {"fifo": ["--backfill=false"],
             "backfill": ["--backfill-depth", "1"]}
    for m in a.modes.split(","):
        r = Replay(a)
        try:
            out[m] = r.run_mode(jobs, modes[m])
        finally:
            r.stop_cluster()
        log("%s: %s" % (m, json.dumps(out[m])))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
