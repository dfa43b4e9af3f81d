#!/usr/bin/env python3
"""Scale of the node protocol: N simulated nodes (drover-noded --simulate)
against one qmgr and a throwaway PostgreSQL, no scheduler.

Measures, and prints as one JSON line at the end:
  - registration: seconds until all N nodes are ready;
  - idle: CPU (percent of one core) and RSS (MiB) of drover-noded, qmgr and
    PostgreSQL over --idle seconds with N nodes heartbeating and long
    polling;
  - wake: one allocation placed on every node in one transaction (one
    NOTIFY naming every node, or an empty one when the list is too long):
    seconds until qmgr answered every long poll, i.e. until every node
    reported its allocation running (minus nothing: the nodes batch their
    updates for 0.25 s, which is included);
  - stop: the same allocations set to desired stop: seconds until every
    node reported them ended.

Usage: bench/sim-nodes.py [--nodes 5000] [--idle 30] [--bin bin]
(release binaries from `make`; run as root or as a user that can start
PostgreSQL through tests/lib/pg.sh).
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_SH = os.path.join(TOP, "tests", "lib", "pg.sh")
PSQL = "/usr/lib/postgresql/15/bin/psql"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sql(conninfo, q):
    out = subprocess.run([PSQL, conninfo, "-XAtq", "-c", q],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total


def rss_mib(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024.0


def wait(fn, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if fn():
            return
        time.sleep(0.2)
    raise SystemExit("timed out waiting for %s" % what)


def flood(a, conninfo, job, res, noded, qmgr):
    """a.flood allocations in a.waves transactions (each one NOTIFY for
    every node, as a storm of scheduler commits would make), spread over
    every node; then how long until the nodes run them all, and the CPU
    the node daemons and qmgr used meanwhile."""
    per_wave = a.flood // a.waves
    nodes = int(sql(conninfo, "SELECT count(*) FROM nodes"))
    c0 = (cpu_ticks(noded), cpu_ticks(qmgr))
    t0 = time.time()
    for w in range(a.waves):
        sql(conninfo,
            "BEGIN; SELECT id FROM nodes ORDER BY id FOR NO KEY UPDATE; "
            "WITH i AS (SELECT nextval('modify_index_seq') AS v) "
            "INSERT INTO allocations (job_id, node_id, chunk_index, ncpus, "
            "cpuset, desired_status, client_status, create_time, "
            "modify_index, alloc_modify_index) SELECT %d, 1 + g %% %d, "
            "1 + g, 1, '0', 'run', 'pending', now(), i.v, i.v FROM i, "
            "generate_series(%d, %d) g; SELECT pg_notify('allocs', ''); "
            "COMMIT" % (job, nodes, w * per_wave, (w + 1) * per_wave - 1))
    res["flood_insert_s"] = round(time.time() - t0, 2)
    total = per_wave * a.waves
    wait(lambda: int(sql(conninfo, "SELECT count(*) FROM allocations WHERE "
                         "client_status = 'running'")) >= total, 900,
         "%d allocations running" % total)
    took = time.time() - t0
    res["flood_allocs"] = total
    res["flood_all_running_s"] = round(took, 2)
    res["flood_cpu_s_noded"] = round((cpu_ticks(noded) - c0[0]) / TICKS, 1)
    res["flood_cpu_s_qmgr"] = round((cpu_ticks(qmgr) - c0[1]) / TICKS, 1)
    res["flood_rss_mib_noded"] = round(rss_mib(noded), 1)
    res["flood_rss_mib_qmgr"] = round(rss_mib(qmgr), 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--idle", type=float, default=30)
    ap.add_argument("--bin", default=os.path.join(TOP, "bin"))
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--flood", type=int, default=0,
                    help="then this many allocations (e.g. 1000000)")
    ap.add_argument("--waves", type=int, default=100)
    a = ap.parse_args()

    d = tempfile.mkdtemp(prefix="drover-simbench-")
    os.chmod(d, 0o755)
    procs = []
    res = {"nodes": a.nodes}
    try:
        out = subprocess.run([PG_SH, "start", os.path.join(d, "pg")],
                             capture_output=True, text=True, check=True)
        conninfo = out.stdout.strip().splitlines()[-1]
        subprocess.run([os.path.join(a.bin, "drover-qmgr"), "migrate",
                        "--database", conninfo, "--server-name", "bench"],
                       check=True)
        port = free_port()
        addr = "http://127.0.0.1:%d" % port
        qlog = open(os.path.join(d, "qmgr.log"), "ab")
        qmgr = subprocess.Popen([os.path.join(a.bin, "drover-qmgr"),
                                 "--database", conninfo, "--listen",
                                 "127.0.0.1:%d" % port, "--workers",
                                 str(a.workers), "--log-level", os.environ.get("QMGR_LOG", "notice")],
                                stdout=qlog, stderr=qlog)
        procs.append(qmgr)
        time.sleep(0.5)
        nlog = open(os.path.join(d, "noded.log"), "ab")
        t0 = time.time()
        noded = subprocess.Popen([os.path.join(a.bin, "drover-noded"),
                                  "--server", addr, "--name", "sim",
                                  "--data-dir", os.path.join(d, "data"),
                                  "--simulate", str(a.nodes),
                                  "--simulate-mix", "--allow-root"],
                                 stdout=nlog, stderr=nlog)
        procs.append(noded)
        wait(lambda: int(sql(conninfo, "SELECT count(*) FROM nodes WHERE "
                             "status = 'ready'")) == a.nodes, 120,
             "%d ready nodes" % a.nodes)
        res["register_s"] = round(time.time() - t0, 2)
        res["heartbeat_ttl_s"] = float(sql(conninfo, "SELECT "
                                           "max(heartbeat_ttl) FROM nodes"))
        time.sleep(5)  # let every node park its first long poll
        pgp = [int(x) for x in sql(conninfo, "SELECT pid FROM "
                                   "pg_stat_activity WHERE pid <> "
                                   "pg_backend_pid()").split()]
        groups = {"noded": [noded.pid], "qmgr": [qmgr.pid], "postgres": pgp}
        before = {k: cpu_ticks(v) for k, v in groups.items()}
        time.sleep(a.idle)
        for k, v in groups.items():
            used = (cpu_ticks(v) - before[k]) / TICKS
            res["idle_cpu_pct_" + k] = round(100.0 * used / a.idle, 1)
            res["rss_mib_" + k] = round(rss_mib(v), 1)

        # one allocation on every node at once
        job = json.loads(subprocess.run(
            ["curl", "-s", "-X", "POST", addr + "/v1/jobs", "-H",
             "X-Drover-User: root", "-d",
             json.dumps({"name": "wake", "owner": "root", "hold": True,
                         "argv": ["/bin/true"]})],
            capture_output=True, text=True, check=True).stdout)["id"]
        t0 = time.time()
        res["wake_at"] = t0
        sql(conninfo,
            "BEGIN; SELECT id FROM nodes ORDER BY id FOR NO KEY UPDATE; "
            "WITH i AS (SELECT nextval('modify_index_seq') AS v) "
            "INSERT INTO allocations (job_id, node_id, chunk_index, ncpus, "
            "cpuset, desired_status, client_status, create_time, "
            "modify_index, alloc_modify_index) SELECT %d, n.id, n.id, 1, "
            "'0', 'run', 'pending', now(), i.v, i.v FROM nodes n, i; "
            "SELECT pg_notify('allocs', ''); COMMIT" % job)
        wait(lambda: int(sql(conninfo, "SELECT count(*) FROM allocations "
                             "WHERE client_status = 'running'")) == a.nodes,
             300, "every node running its allocation")
        res["wake_all_s"] = round(time.time() - t0, 2)
        t0 = time.time()
        sql(conninfo,
            "BEGIN; SELECT id FROM nodes ORDER BY id FOR NO KEY UPDATE; "
            "WITH i AS (SELECT nextval('modify_index_seq') AS v) "
            "UPDATE allocations SET desired_status = 'stop', "
            "modify_index = i.v, alloc_modify_index = i.v FROM i; "
            "SELECT pg_notify('allocs', ''); COMMIT")
        wait(lambda: int(sql(conninfo, "SELECT count(*) FROM allocations "
                             "WHERE client_status IN ('pending', "
                             "'running')")) == 0, 300,
             "every allocation ended")
        res["stop_all_s"] = round(time.time() - t0, 2)
        if a.flood > 0:
            flood(a, conninfo, job, res, [noded.pid], [qmgr.pid])
        res["noded_rss_mib_after"] = round(rss_mib([noded.pid]), 1)
        res["qmgr_rss_mib_after"] = round(rss_mib([qmgr.pid]), 1)
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run([PG_SH, "destroy", os.path.join(d, "pg")],
                       capture_output=True)
        if not a.keep:
            shutil.rmtree(d, ignore_errors=True)
        else:
            print("kept %s" % d, file=sys.stderr)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
