#!/usr/bin/env python3
"""qstat at scale: status queries stay cheap with 100,000 queued jobs.

Starts a private PostgreSQL and drover-qmgr (no scheduler and no node, so
every job stays queued), submits one job per user through the API (so the
rows are what the API makes), then copies those rows in SQL until there
are --jobs queued jobs (each with its pending evaluation) spread over
--users owners; the measured user (--user, default alice) owns --mine of
them. Then, --runs times each, it times:

  qstat JOBID          qstat -f JOBID        qstat -u USER
  GET /v1/jobs?owner=USER (one page, keep-alive connection)

and prints the median and p95 in milliseconds. With --explain, PostgreSQL
runs with auto_explain (ANALYZE, BUFFERS) for the measured commands only,
and the plans of qmgr's statements are printed, with a check that none of
them scans the jobs table sequentially.

The last line on stdout is one JSON object.

    bench/qstat_scale.py [--jobs 100000] [--explain]
"""

import argparse
import http.client
import json
import os
import re
import subprocess
import time

import cluster

log = cluster.logger("qstat_scale")


def pct(xs, p):
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(len(xs) * p))], 2)


class Scale(cluster.Cluster):
    def __init__(self, args):
        super().__init__("qstat", bin=args.bin)
        self.args = args
        self.env = dict(os.environ, DROVER_ADDR=self.addr)

    def start(self):
        opts = ""
        if self.args.explain:
            opts = ("-c shared_preload_libraries=auto_explain "
                    "-c auto_explain.log_analyze=on "
                    "-c auto_explain.log_buffers=on "
                    "-c auto_explain.log_format=text")
        self.start_pg(extra_opts=opts)
        self.migrate("scale")
        self.start_qmgr(workers=2)

    def load(self):
        a = self.args
        users = [a.user] + ["user%04d" % i for i in range(a.users - 1)]
        job = {"name": "scale", "argv": ["/bin/true"], "join": "oe",
               "stdout": "/dev/null", "resources": {"walltime": "01:00:00"}}
        for u in users:
            st, body = self.api("POST", "/v1/jobs", dict(job, owner=u),
                                user=u)
            if st != 201:
                raise SystemExit("qstat_scale: submission failed: %r"
                                 % (body,))
        self.sample_id = body["id"]
        cols = self.psql(
            "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) "
            "FROM information_schema.columns WHERE table_name = 'jobs' "
            "AND column_name NOT IN ('id', 'owner', 'idempotency_key', "
            "'modify_index')").split(",")
        # the measured user gets a.mine jobs in all; the others share the
        # rest evenly, interleaved by id as real submissions would be
        rest = a.jobs - len(users)
        mine = max(0, a.mine - 1)
        t0 = time.time()
        self.psql(
            "INSERT INTO jobs (id, owner, idempotency_key, modify_index, %s) "
            "SELECT nextval('job_id_seq'), CASE WHEN g %% %d = 0 AND "
            "g / %d <= %d THEN t.owner ELSE 'user' || lpad(((g %% %d))::text, "
            "4, '0') END, 'bench-' || g, nextval('modify_index_seq'), %s "
            "FROM generate_series(1, %d) AS g, "
            "(SELECT * FROM jobs WHERE owner = '%s') AS t"
            % (",".join(cols), max(1, rest // max(1, mine)),
               max(1, rest // max(1, mine)), mine, max(1, a.users - 1),
               ",".join("t." + c for c in cols), rest, a.user))
        self.psql(
            "INSERT INTO evaluations (job_id, triggered_by, status, priority, "
            "create_time, modify_index) SELECT id, 'job-submit', 'pending', "
            "priority, submit_time, nextval('modify_index_seq') FROM jobs j "
            "WHERE NOT EXISTS (SELECT 1 FROM evaluations e "
            "WHERE e.job_id = j.id)")
        self.psql("VACUUM ANALYZE jobs")
        self.psql("VACUUM ANALYZE evaluations")
        n = self.psql("SELECT count(*), count(*) FILTER (WHERE owner = '%s') "
                      "FROM jobs WHERE state = 'queued'" % a.user)
        log("loaded in %.1fs: queued, of them %s's: %s"
            % (time.time() - t0, a.user, n))
        total, self.mine_n = (int(x) for x in n.split("|"))
        return total

    def timed(self, fn):
        lat = []
        for _ in range(self.args.runs):
            t0 = time.perf_counter()
            fn()
            lat.append((time.perf_counter() - t0) * 1000)
        return {"p50_ms": pct(lat, 0.5), "p95_ms": pct(lat, 0.95)}

    def qstat(self, *argv):
        out = subprocess.run([os.path.join(self.bin, "qstat")] + list(argv),
                             env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit("qstat_scale: qstat %s failed: %s"
                             % (" ".join(argv), out.stderr))
        return out.stdout

    def measure(self):
        a = self.args
        jid = str(self.sample_id)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        hdr = {"X-Drover-User": a.user}

        def api_owner():
            conn.request("GET", "/v1/jobs?owner=%s" % a.user, headers=hdr)
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                raise SystemExit("qstat_scale: GET failed: %s" % body[:200])
            return body

        lines = self.qstat("-u", a.user).splitlines()
        listed = sum(1 for x in lines if re.match(r"^\d+\.", x))
        if listed != self.mine_n:
            raise SystemExit("qstat_scale: qstat -u %s listed %d jobs, the "
                             "database holds %d" % (a.user, listed,
                                                    self.mine_n))
        res = {}
        cases = [("qstat_jobid", lambda: self.qstat(jid)),
                 ("qstat_f_jobid", lambda: self.qstat("-f", jid)),
                 ("qstat_u_user", lambda: self.qstat("-u", a.user)),
                 ("api_jobs_owner", api_owner)]
        for name, fn in cases:
            fn()   # warm: connections, caches
            res[name] = self.timed(fn)
            log("%s: %s" % (name, res[name]))
            if a.explain:
                res[name]["seq_scans"] = self.explain(name, fn)
        conn.close()
        return res

    def explain(self, name, fn):
        """Runs fn once with auto_explain logging every statement; prints
        the plans; returns how many scanned jobs or evaluations
        sequentially."""
        logf = os.path.join(self.dir, "pg.log")
        start = os.path.getsize(logf)
        self.psql("ALTER SYSTEM SET auto_explain.log_min_duration = 0")
        self.psql("SELECT pg_reload_conf()")
        time.sleep(0.5)   # the reload reaches qmgr's backends
        fn()
        self.psql("ALTER SYSTEM SET auto_explain.log_min_duration = -1")
        self.psql("SELECT pg_reload_conf()")
        time.sleep(0.5)
        with open(logf) as f:
            f.seek(start)
            text = f.read()
        plans = [p for p in re.split(r"\n(?=\S+ \S+ UTC \[\d+\] LOG:)", text)
                 if "duration:" in p and "Query Text" in p
                 and re.search(r"\bFROM (jobs|evaluations|allocations)\b", p)]
        print("==== %s: %d statements" % (name, len(plans)), flush=True)
        for p in plans:
            print(p.strip() + "\n", flush=True)
        return sum(len(re.findall(r"Seq Scan on (jobs|evaluations)\b", p))
                   for p in plans)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=100000)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--user", default="alice")
    ap.add_argument("--mine", type=int, default=50,
                    help="how many of the jobs the measured user owns")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--explain", action="store_true")
    ap.add_argument("--bin", default="bin")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    s = Scale(args)
    result = {"jobs": args.jobs, "users": args.users,
              "loadavg_start": os.getloadavg()[0]}
    try:
        s.start()
        result["queued"] = s.load()
        result["mine"] = s.mine_n
        result.update(s.measure())
    finally:
        s.stop()
        s.destroy(keep=args.keep)
    result["loadavg_end"] = os.getloadavg()[0]
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
