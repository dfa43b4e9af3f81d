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
import threading
import time

import cluster

log = cluster.logger("c1m")


class Bench(cluster.Cluster):
    def __init__(self, args):
        super().__init__("c1m", bin=args.bin)
        self.args = args

    def start_cluster(self):
        a = self.args
        self.migrate("c1m")
        self.start_qmgr(workers=a.qmgr_workers,
                        extra=getattr(a, "qmgr_args", []))
        self.start_noded("sim", [
            "--simulate", str(a.nodes), "--simulate-topology", a.topology,
            "--memory", a.node_memory,
            "--simulate-running=%s" % ("true" if a.sim_running else "false")])
        log("waiting for %d simulated nodes" % a.nodes)
        t0 = time.time()
        self.wait_nodes(a.nodes)
        log("%d nodes ready in %.1fs" % (a.nodes, time.time() - t0))
        self.start_sched(workers=a.workers, batch=4,
                         extra=getattr(a, "sched_args", []))

    def cpu(self):
        c = super().cpu()
        c["noded"] = c.pop("sim")
        return c

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
            log("top statements by total time while placing:\n" +
                self.top_statements())
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
        b.start_pg(pg_stats=args.pg_stats)
        b.start_cluster()
        b.wait_sched()
        if args.one_job_runs > 0:
            result.update(b.run_one_job(args.one_job_runs))
        b.conflicts_before = b.metric("drover_sched_plan_conflicts_total")
        result.update(b.run_c1m())
    finally:
        b.stop()
        b.destroy(keep=args.keep)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
