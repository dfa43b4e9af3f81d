"""Status queries without full scans (issue 4, item 9): one owner's active
jobs (qstat -u, GET /v1/jobs?owner=) are read through the partial index
jobs_owner_active, and one queue's (qstat QUEUE, ?queue=) through
jobs_queue, page by page, and still list exactly those queued and held
jobs in id order, without the finished ones."""

from harness import check, cluster, run_tests, wait_until

C = None


def submit(owner, hold=False, queue=None):
    body = {"name": "st", "owner": owner, "argv": ["/bin/true"],
            "hold": hold}
    if queue is not None:
        body["queue"] = queue
    st, j = C.api("POST", "/v1/jobs", body, headers={"X-Drover-User": owner})
    check(st == 201, "submit as %s: %s %r" % (owner, st, j))
    return j["id"]


def index_scans(name):
    rows = C.sql("SELECT idx_scan FROM pg_stat_user_indexes "
                 "WHERE indexrelname = '%s'" % name)
    return int(rows[0][0]) if rows else -1


def owner_index_scans():
    return index_scans("jobs_owner_active")


def list_ids(path):
    st, body = C.api("GET", path)
    check(st == 200, "GET %s: %s %r" % (path, st, body))
    return [j["id"] for j in body["jobs"]], body["next_after"]


def test_owner_list_uses_index_and_pages():
    alice, bob = [], []
    for i in range(12):
        bob.append(submit("bob"))
        if i % 3 == 0:
            alice.append(submit("alice", hold=(i == 3)))
    done = submit("alice")
    st, _ = C.api("DELETE", "/v1/jobs/%d" % done,
                  headers={"X-Drover-User": "alice"})
    check(st in (200, 202), "qdel: %s" % st)
    check(C.job(done)["state"] == "finished", "deleted job not finished")

    before = owner_index_scans()
    ids, nxt = list_ids("/v1/jobs?owner=alice")
    check(ids == alice, "alice's jobs %r, expected %r" % (ids, alice))
    check(nxt is None, "one page expected, next_after %r" % nxt)
    for _ in range(6):
        list_ids("/v1/jobs?owner=bob")
    # pages of two, the held job included, in id order
    got, after = [], None
    while True:
        path = "/v1/jobs?owner=alice&limit=2"
        if after is not None:
            path += "&after=%d" % after
        ids, after = list_ids(path)
        check(len(ids) <= 2, "page of %d" % len(ids))
        got += ids
        if after is None:
            break
    check(got == alice, "paged %r, expected %r" % (got, alice))
    ids, _ = list_ids("/v1/jobs?owner=alice&state=held")
    check(ids == [alice[1]], "held: %r" % ids)
    ids, _ = list_ids("/v1/jobs?owner=alice&queue=workq")
    check(ids == alice, "queue filter: %r" % ids)
    ids, _ = list_ids("/v1/jobs?owner=nobody")
    check(ids == [], "nobody's jobs: %r" % ids)
    # history still lists the finished job (another access path)
    ids, _ = list_ids("/v1/jobs?owner=alice&history=true")
    check(ids == sorted(alice + [done]), "history: %r" % ids)

    out = C.run("qstat", ["-u", "bob"])
    check(out.returncode == 0, out.stderr)
    listed = [x for x in out.stdout.splitlines() if x[:1].isdigit()]
    check(len(listed) == len(bob), "qstat -u bob listed %d of %d"
          % (len(listed), len(bob)))
    # PostgreSQL publishes index statistics shortly after the statements
    wait_until(lambda: owner_index_scans() >= before + 9, 15,
               what="owner lists read through jobs_owner_active")


def test_queue_list_uses_index():
    out = C.run("qmgr", ["-c", "create queue short queue_type=e,enabled=t,"
                               "started=t"])
    check(out.returncode == 0, "qmgr: %s" % out.stderr)
    short = [submit("carol", queue="short") for _ in range(5)]
    for _ in range(8):
        submit("carol")
    done = submit("carol", queue="short")
    st, _ = C.api("DELETE", "/v1/jobs/%d" % done,
                  headers={"X-Drover-User": "carol"})
    check(st in (200, 202), "qdel: %s" % st)
    before = index_scans("jobs_queue")
    ids, nxt = list_ids("/v1/jobs?queue=short")
    check(ids == short and nxt is None, "short's jobs %r, expected %r"
          % (ids, short))
    ids, after = list_ids("/v1/jobs?queue=short&limit=3")
    check(ids == short[:3] and after == short[2], "page: %r %r" % (ids, after))
    out = C.run("qstat", ["short"])
    check(out.returncode == 0, out.stderr)
    listed = [x for x in out.stdout.splitlines() if x[:1].isdigit()]
    check(len(listed) == len(short), "qstat short listed %d of %d"
          % (len(listed), len(short)))
    wait_until(lambda: index_scans("jobs_queue") >= before + 3, 15,
               what="queue lists read through jobs_queue")


def main():
    global C
    # no node and no scheduler: every job stays queued (or held)
    with cluster("status-scale", nodes=0, scheds=0, start=False) as c:
        C = c
        c.start_pg()
        c.migrate()
        # qmgr's statements are prepared; a busy server soon runs their
        # generic plans, which cannot see the owner: check those
        c.env["PGOPTIONS"] = "-c plan_cache_mode=force_generic_plan"
        c.start_qmgr()
        return run_tests([test_owner_list_uses_index_and_pages,
                          test_queue_list_uses_index])


if __name__ == "__main__":
    raise SystemExit(main())
