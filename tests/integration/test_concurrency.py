"""Optimistic commits never overcommit: two scheduler processes with two
workers each place hundreds of random jobs (single- and multi-chunk, with
pack/scatter/free placement) on tens of small nodes while a sampler checks,
over and over, that no node's live allocations exceed its cores or memory
and no two live allocations share a core; at the end every job ran exactly
once and every node's free capacity is whole again."""

import random
import threading
import time

from harness import check, cluster, run_tests

OVERCOMMIT = (
    "SELECT n.name, n.total_cores, sum(a.ncpus), n.total_mem, sum(a.mem) "
    "FROM allocations a JOIN nodes n ON n.id = a.node_id "
    "WHERE a.client_status IN ('pending', 'running') "
    "GROUP BY n.name, n.total_cores, n.total_mem "
    "HAVING sum(a.ncpus) > n.total_cores OR sum(a.mem) > n.total_mem")
SHARED_CORES = (
    "WITH cores AS (SELECT a.node_id, g AS core FROM allocations a, "
    "unnest(string_to_array(a.cpuset, ',')) r, generate_series("
    "split_part(r, '-', 1)::int, coalesce(nullif(split_part(r, '-', 2), "
    "''), split_part(r, '-', 1))::int) g "
    "WHERE a.client_status IN ('pending', 'running')) "
    "SELECT node_id, core, count(*) FROM cores GROUP BY node_id, core "
    "HAVING count(*) > 1")
# free_cpuset and live allocations must partition each node's cores
ACCOUNTING = (
    "SELECT n.name, n.free_cores, n.total_cores - coalesce(sum(a.ncpus), 0) "
    "FROM nodes n LEFT JOIN allocations a ON a.node_id = n.id "
    "AND a.client_status IN ('pending', 'running') "
    "GROUP BY n.id HAVING n.free_cores <> n.total_cores - "
    "coalesce(sum(a.ncpus), 0)")


def sampler(c, stop, problems, samples):
    while not stop.is_set():
        for q in (OVERCOMMIT, SHARED_CORES):
            rows = c.sql(q)
            if rows:
                problems.append(rows)
        samples[0] += 1
        time.sleep(0.02)


def random_job(rng):
    kind = rng.random()
    if kind < 0.6:
        return ["-l", "ncpus=%d" % rng.randint(1, 4),
                "-l", "mem=%dmb" % rng.choice((0, 64, 256, 512))]
    chunks = rng.randint(2, 3)
    ncpus = rng.randint(1, 2)
    place = rng.choice(("pack", "scatter", "free"))
    if place == "pack" and chunks * ncpus > 4:  # must fit one 4-core node
        place = "free"
    return ["-l", "select=%d:ncpus=%d:mem=128mb" % (chunks, ncpus),
            "-l", "place=" + place]


def test_parallel_schedulers_never_overcommit():
    rng = random.Random(4750)
    with cluster("concurrency", nodes=12, scheds=2,
                 node_topology="pack:1 numa:2 core:2 pu:1",
                 node_memory="2gb",
                 sched_args=["--workers", "2", "--batch", "4"]) as c:
        stop = threading.Event()
        problems, samples = [], [0]
        t = threading.Thread(target=sampler, args=(c, stop, problems, samples))
        t.start()
        ids = []
        try:
            for i in range(240):
                args = random_job(rng) + ["--", "/bin/sleep",
                                          "%.2f" % rng.uniform(0.05, 0.4)]
                ids.append(c.submit(args))
            for jid in ids:
                j = c.wait_state(jid, "finished", 240)
                check(j["exit_status"] == 0,
                      "%s exit %r: %s" % (jid, j["exit_status"], j["comment"]))
        finally:
            stop.set()
            t.join()
        check(samples[0] > 20, "the sampler barely ran (%d)" % samples[0])
        check(not problems, "overcommit or shared cores: %r" % problems[:3])
        rows = c.sql("SELECT id, run_count FROM jobs WHERE run_count <> 1")
        check(rows == [], "jobs not run exactly once: %r" % rows)
        rows = c.sql("SELECT job_id, chunk_index, count(*) FROM allocations "
                     "GROUP BY job_id, chunk_index HAVING count(*) > 1")
        check(rows == [], "chunks placed twice: %r" % rows)
        check(c.sql(ACCOUNTING) == [], "node accounting drifted: %r"
              % c.sql(ACCOUNTING))
        full = c.sql("SELECT count(*) FROM nodes "
                     "WHERE free_cores <> total_cores OR free_mem <> total_mem")
        check(full == [["0"]], "capacity not given back: %r" % full)


def main():
    return run_tests([test_parallel_schedulers_never_overcommit])


if __name__ == "__main__":
    raise SystemExit(main())
