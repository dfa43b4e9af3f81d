"""Native JSON jobs (docs/jobspec.md): the examples in the docs are the
files in examples/jobs and are submitted with `drover job run`; stored
placement, totals and Resource_List; errors and exit statuses; the job
lifecycle driven through the database and the node status API (failed
instances rescheduled, batch jobs finishing, services stopped, lost
allocations); a job's allocations (API and `drover job status`); a qdel
whose COMMIT answer was lost; and end-to-end runs with the scheduler and
node daemons."""

import json
import os
import re
import socket
import struct
import threading
import time

from harness import TOP, check, cluster, run_tests, wait_until

EXAMPLES = os.path.join(TOP, "examples", "jobs")
DOC = os.path.join(TOP, "docs", "jobspec.md")
NAMES = ("batch", "service", "system", "constraints")

C = None  # the shared cluster without scheduler or node daemons


def example(name):
    with open(os.path.join(EXAMPLES, name + ".json")) as f:
        return f.read()


def doc_examples():
    """{file: text} of the ```json blocks that follow an
    "<!-- example: examples/jobs/X.json -->" line in docs/jobspec.md."""
    with open(DOC) as f:
        text = f.read()
    found = {}
    for m in re.finditer(r"<!-- example: (examples/jobs/[a-z]+\.json) -->\n"
                         r"```json\n(.*?)```\n", text, re.S):
        found[m.group(1)] = m.group(2)
    return found


def seq(jobid):
    return str(jobid).split(".")[0]


def run_job(c, text, expect_rc=0):
    out = c.run("drover", ["job", "run", "-"], input=text)
    check(out.returncode == expect_rc,
          "drover job run exited %d (want %d): %s%s"
          % (out.returncode, expect_rc, out.stdout, out.stderr))
    return out


def submit(c, text):
    jid = run_job(c, text).stdout.strip()
    check(jid.endswith("." + c.server), "drover job run printed %r" % jid)
    return jid


def native(groups, **kw):
    spec = {"name": kw.pop("name", "t"), "groups": groups}
    spec.update(kw)
    return json.dumps(spec)


def group(name="g", count=1, **kw):
    g = {"name": name, "count": count,
         "tasks": [{"name": "t", "command": "/bin/true"}]}
    g.update(kw)
    return g


# --- database-driven lifecycle helpers ---

def fake_node(c, name):
    """A ready node row that no daemon serves (heartbeat far ahead)."""
    rows = c.sql(
        "INSERT INTO nodes (name, status, total_cores, total_mem, free_cores, "
        "free_mem, free_cpuset, heartbeat_ttl, heartbeat_deadline, "
        "register_time, status_time, modify_index) VALUES ('%s', 'ready', 64, "
        "68719476736, 64, 68719476736, '0-63', 3600, now() + interval "
        "'1 day', now(), now(), nextval('modify_index_seq')) RETURNING id"
        % name)
    return int(rows[0][0])


def start_job(c, jid):
    """Marks a job running as a scheduler would, and retires its
    evaluations so that the test sees only the ones it causes."""
    c.sql("UPDATE jobs SET state = 'running', start_time = now(), "
          "run_count = 1, modify_index = nextval('modify_index_seq') "
          "WHERE id = %s" % seq(jid))
    c.sql("UPDATE evaluations SET status = 'complete' WHERE job_id = %s"
          % seq(jid))


def place(c, jid, node, group_index, instance, previous=None, rc=0,
          chunk=0):
    rows = c.sql(
        "INSERT INTO allocations (job_id, node_id, chunk_index, group_index, "
        "instance, ncpus, mem, cpuset, desired_status, client_status, "
        "create_time, modify_index, previous_alloc, reschedule_count) "
        "VALUES (%s, %d, %d, %d, %d, 1, 0, '%d', 'run', 'running', now(), "
        "nextval('modify_index_seq'), %s, %d) RETURNING id"
        % (seq(jid), node, chunk, group_index, instance, instance % 64,
           previous if previous is not None else "NULL", rc))
    return int(rows[0][0])


def report(c, node, alloc, status, exit_status=None):
    u = {"id": alloc, "client_status": status}
    if exit_status is not None:
        u["exit_status"] = exit_status
    st, body = c.api("POST", "/v1/nodes/%d/allocations/status" % node,
                     {"updates": [u]})
    check(st == 200, "status update: %s %r" % (st, body))


def evals(c, jid):
    return c.sql("SELECT triggered_by, status, "
                 "coalesce(round(extract(epoch FROM wait_until - "
                 "create_time))::text, 'none') FROM evaluations "
                 "WHERE job_id = %s ORDER BY id" % seq(jid))


def alloc_row(c, alloc):
    return c.sql("SELECT desired_status, client_status, "
                 "coalesce(desired_description, '') FROM allocations "
                 "WHERE id = %d" % alloc)[0]


# --- tests: the format ---

def test_docs_include_the_example_files():
    found = doc_examples()
    for name in NAMES:
        key = "examples/jobs/%s.json" % name
        check(key in found, "docs/jobspec.md does not include %s" % key)
        check(found[key] == example(name),
              "docs/jobspec.md and %s differ" % key)


def test_examples_submit_and_store_placement():
    want = {
        "batch": ("batch", 4, 4, 600, 1 << 30),
        "service": ("service", 2, 2, 0, 1 << 28),
        "system": ("system", 1, 0, 0, 1 << 26),
        "constraints": ("batch", 4, 2, 3600, 1 << 31),
    }
    for name, text in sorted(doc_examples().items()):
        jtype, ncpus, nodect, wall, mem = want[name.split("/")[-1][:-5]]
        jid = submit(C, text)
        j = C.job(jid)
        check(j["type"] == jtype and j["state"] == "queued", repr(j))
        p = j["spec"]["placement"]
        check(p["gang"] is False and p["place"] == "free", repr(p))
        rows = C.sql("SELECT ncpus, nodect, walltime, mem, type FROM jobs "
                     "WHERE id = %s" % seq(jid))
        check(rows == [[str(ncpus), str(nodect), str(wall), str(mem),
                        jtype]], "%s: %r" % (name, rows))
        check(j["resource_list"]["ncpus"] == str(ncpus), repr(j))
        ev = C.sql("SELECT triggered_by, status FROM evaluations "
                   "WHERE job_id = %s" % seq(jid))
        check(ev == [["job-submit", "pending"]], repr(ev))
        # qstat shows native jobs like any other
        out = C.run("qstat", ["-f", jid])
        check(out.returncode == 0 and
              "Resource_List.ncpus = %d" % ncpus in out.stdout,
              out.stdout + out.stderr)
        C.api("DELETE", "/v1/jobs/%s" % seq(jid))
    # the constraints example: job rules merged into the group's
    jid = submit(C, example("constraints"))
    g = C.job(jid)["spec"]["placement"]["groups"][0]
    check([x["operator"] for x in g["constraints"]] ==
          ["=", "distinct_hosts", "regexp", "version", "is_not_set"],
          repr(g["constraints"]))
    check([x["weight"] for x in g["affinities"]] == [50, -20],
          repr(g["affinities"]))
    check(g["numa"] == "require" and g["memory"] == 1 << 30 and
          g["walltime"] == 3600, repr(g))
    p = C.job(submit(C, example("system")))["spec"]["placement"]
    check(p["pool"] is None, "node_pool all: %r" % p)


def test_pbs_jobs_get_placement_too():
    jid = C.submit(["-l", "select=2:ncpus=2:mem=1gb+1:ncpus=1",
                    "-l", "place=scatter", "-l", "walltime=00:30:00", "--",
                    "/bin/true"])
    spec = C.job(jid)["spec"]
    p = spec["placement"]
    check(p["gang"] is True and p["place"] == "scatter" and
          p["pool"] is None and p["datacenters"] == [], repr(p))
    check([(g["name"], g["count"], g["cores"], g["memory"], g["walltime"])
           for g in p["groups"]] ==
          [("chunk0", 2, 2, 1 << 30, 1800), ("chunk1", 1, 1, 0, 1800)],
          repr(p["groups"]))
    check(spec["resource_list"]["select"] == "2:ncpus=2:mem=1gb+1:ncpus=1")
    C.api("DELETE", "/v1/jobs/%s" % seq(jid))


def test_run_errors():
    out = run_job(C, native([group(resources={"cores": 1}),
                             group("h", resources={"cores": 0})]), 1)
    check(out.stderr == "drover job run: groups[1].resources.cores: must be "
          "an integer >= 1\n", out.stderr)
    out = run_job(C, native([group(count=100001)]), 1)
    check("groups[0].count: must be at most 100000" in out.stderr, out.stderr)
    out = run_job(C, '{"name": "x", "groups": [', 1)
    check(out.stderr.startswith("drover job run: standard input: not valid "
                                "JSON"), out.stderr)
    out = C.run("drover", ["job", "run", "/nonexistent/job.json"])
    check(out.returncode == 1 and "cannot open /nonexistent/job.json"
          in out.stderr, out.stderr)
    out = run_job(C, native([group()], queue="nosuch"), 170)
    check(out.stderr == "drover job run: Unknown queue\n", out.stderr)
    spec = json.loads(native([group()]))
    spec["script"] = "echo hi"
    out = run_job(C, json.dumps(spec), 1)
    check("not both" in out.stderr, out.stderr)
    # tasks run as the owner unless root submits
    spec = json.loads(native([group()]))
    spec["groups"][0]["tasks"][0]["user"] = "someone"
    st, body = C.api("POST", "/v1/jobs", spec,
                     headers={"X-Drover-User": "alice"})
    check(st == 403 and body["error"]["code"] == "forbidden" and
          "groups[0].tasks[0].user" in body["error"]["message"], repr(body))
    st, body = C.api("POST", "/v1/jobs", spec,
                     headers={"X-Drover-User": "root"})
    check(st == 201, "root may name the user: %s %r" % (st, body))
    out = C.run("drover", ["job"])
    check(out.returncode == 2 and "drover job run" in out.stderr, out.stderr)
    out = C.run("drover", ["job", "status", "999999"])
    check(out.returncode == 153 and "Unknown Job Id 999999" in out.stderr,
          out.stderr)
    out = C.run("drover", ["job", "stop", "x.y"])
    check(out.returncode != 0, "stop x.y")


def test_count_zero_finishes_at_once():
    jid = submit(C, native([group(count=0), group("h", count=0)]))
    j = C.job(jid)
    check(j["state"] == "finished" and j["exit_status"] == 0, repr(j))
    check("nothing to run" in j["comment"], j["comment"])
    check(C.sql("SELECT count(*) FROM evaluations WHERE job_id = %s"
                % seq(jid)) == [["0"]])


# --- tests: the lifecycle, driven through the database ---

def test_batch_failed_instance_is_rescheduled_then_finishes():
    node = fake_node(C, "fake-resched")
    jid = submit(C, example("batch"))   # 4 instances, 2 attempts, 10s delay
    start_job(C, jid)
    a = [place(C, jid, node, 0, i) for i in range(4)]
    report(C, node, a[0], "failed", 3)
    check(evals(C, jid)[-1] == ["alloc-failed", "pending", "10"],
          repr(evals(C, jid)))
    check(alloc_row(C, a[0])[:2] == ["run", "failed"],
          "a rescheduled allocation keeps desired run")
    for x in a[1:]:
        report(C, node, x, "complete", 0)
    check(C.job(jid)["state"] == "running", "instance 0 waits")
    # the scheduler's replacement
    r = place(C, jid, node, 0, 0, previous=a[0], rc=1)
    report(C, node, r, "complete", 0)
    j = C.job(jid)
    check(j["state"] == "finished" and j["exit_status"] == 0, repr(j))
    check("finished: 4 of 4 instances completed, 0 failed" in j["comment"],
          j["comment"])
    check(all(e[1] != "pending" for e in evals(C, jid)), repr(evals(C, jid)))
    # node capacity was given back
    check(C.sql("SELECT free_cores FROM nodes WHERE id = %d" % node) ==
          [["64"]])


def test_batch_gives_up_after_its_attempts():
    node = fake_node(C, "fake-giveup")
    jid = submit(C, native([group(count=2, reschedule={
        "attempts": 1, "interval": "1h", "delay": "0s"})], name="fragile"))
    start_job(C, jid)
    a0, a1 = place(C, jid, node, 0, 0), place(C, jid, node, 0, 1)
    report(C, node, a0, "failed", 2)
    check(evals(C, jid)[-1][:2] == ["alloc-failed", "pending"])
    C.sql("UPDATE evaluations SET status = 'complete' WHERE job_id = %s"
          % seq(jid))
    r = place(C, jid, node, 0, 0, previous=a0, rc=1)
    report(C, node, r, "failed", 7)
    # no attempt left: no evaluation, the instance failed for good
    check(alloc_row(C, r) == ["run", "failed", ""], repr(alloc_row(C, r)))
    check(all(e[1] != "pending" for e in evals(C, jid)), repr(evals(C, jid)))
    check(C.job(jid)["state"] == "running", "instance 1 still runs")
    report(C, node, a1, "complete", 0)
    j = C.job(jid)
    check(j["state"] == "finished" and j["exit_status"] == 7, repr(j))
    check("1 of 2 instances completed, 1 failed" in j["comment"], j["comment"])


def test_service_reschedules_and_stops():
    node = fake_node(C, "fake-service")
    jid = submit(C, example("service"))   # 2 instances, unlimited, 5s
    start_job(C, jid)
    a = [place(C, jid, node, 0, i) for i in range(2)]
    report(C, node, a[0], "complete", 0)  # a service instance that ends
    check(evals(C, jid)[-1] == ["alloc-failed", "pending", "5"],
          repr(evals(C, jid)))
    r = place(C, jid, node, 0, 0, previous=a[0], rc=1)
    out = C.run("drover", ["job", "stop", jid])
    check(out.returncode == 0 and out.stdout == "", out.stderr)
    j = C.job(jid)
    check(j["state"] == "exiting", repr(j))
    rows = C.sql("SELECT desired_status FROM allocations WHERE job_id = %s "
                 "AND client_status = 'running' ORDER BY id" % seq(jid))
    check(rows == [["stop"], ["stop"]], repr(rows))
    check(all(e[1] != "pending" for e in evals(C, jid)),
          "stopping cancels evaluations: %r" % evals(C, jid))
    report(C, node, a[1], "failed", 271)
    check(C.job(jid)["state"] == "exiting", "one allocation still runs")
    report(C, node, r, "failed", 271)
    j = C.job(jid)
    check(j["state"] == "finished" and j["exit_status"] == 271, repr(j))
    out = C.run("drover", ["job", "stop", jid])
    check(out.returncode == 35 and "Job has finished" in out.stderr,
          out.stderr)


def test_lost_and_preempted_allocations_are_replaced_at_once():
    node = fake_node(C, "fake-lost")
    jid = submit(C, example("system"))
    start_job(C, jid)
    a = place(C, jid, node, 0, 0)
    report(C, node, a, "lost")
    check(evals(C, jid)[-1] == ["alloc-lost", "pending", "none"],
          repr(evals(C, jid)))
    check(C.job(jid)["state"] == "running", "system jobs end when stopped")
    # a batch instance with no attempt left is still replaced when lost,
    # and one a scheduler stopped (preempted) is placed again
    jid = submit(C, native([group(count=2, reschedule={"attempts": 0})],
                           name="evicted"))
    start_job(C, jid)
    a0, a1 = place(C, jid, node, 0, 0), place(C, jid, node, 0, 1)
    report(C, node, a0, "lost")
    check(evals(C, jid)[-1] == ["alloc-lost", "pending", "none"],
          repr(evals(C, jid)))
    C.sql("UPDATE evaluations SET status = 'complete' WHERE job_id = %s"
          % seq(jid))
    C.sql("UPDATE allocations SET desired_status = 'stop' WHERE id = %d" % a1)
    report(C, node, a1, "failed", 271)
    check(evals(C, jid)[-1] == ["alloc-stopped", "pending", "none"],
          repr(evals(C, jid)))
    check(C.job(jid)["state"] == "running", "both instances wait")


def test_pbs_jobs_end_with_chunk_zero():
    node = fake_node(C, "fake-pbs")
    jid = C.submit(["-l", "select=2:ncpus=1", "--", "/bin/true"])
    start_job(C, jid)
    c0 = place(C, jid, node, 0, 0, chunk=0)
    c1 = place(C, jid, node, 0, 1, chunk=1)
    report(C, node, c1, "lost")
    check(C.job(jid)["state"] == "running",
          "chunk 1 reported lost by a live node does not end the job")
    report(C, node, c0, "running")
    report(C, node, c0, "failed", 3)
    j = C.job(jid)
    check(j["state"] == "finished" and j["exit_status"] == 3, repr(j))


def test_job_allocations_api_and_status():
    node = fake_node(C, "fake-list")
    jid = submit(C, example("batch"))
    start_job(C, jid)
    a = [place(C, jid, node, 0, i) for i in range(4)]
    report(C, node, a[2], "failed", 9)
    st, body = C.api("GET", "/v1/jobs/%s/allocations" % seq(jid))
    check(st == 200, "%s %r" % (st, body))
    check([x["id"] for x in body["allocations"]] == a[::-1],
          "newest first: %r" % body)
    x = body["allocations"][1]
    check(x["group"] == "frames" and x["instance"] == 2 and
          x["client_status"] == "failed" and x["exit_status"] == 9 and
          x["node"] == "fake-list" and x["node_id"] == node and
          x["cores"] == 1 and x["reschedule_count"] == 0 and
          x["previous_alloc"] is None, repr(x))
    check(body["next_after"] is None and body["job_id"] == jid, repr(body))
    st, page = C.api("GET", "/v1/jobs/%s/allocations?limit=3" % seq(jid))
    check([x["id"] for x in page["allocations"]] == a[:0:-1] and
          page["next_after"] == a[1], repr(page))
    st, page = C.api("GET", "/v1/jobs/%s/allocations?limit=3&after=%d"
                     % (seq(jid), a[1]))
    check([x["id"] for x in page["allocations"]] == [a[0]] and
          page["next_after"] is None, repr(page))
    st, body = C.api("GET", "/v1/jobs/999999/allocations")
    check(st == 404 and body["error"]["code"] == "job_not_found", repr(body))
    st, body = C.api("GET", "/v1/jobs/%s/allocations?limit=0" % seq(jid))
    check(st == 400, repr(body))
    out = C.run("drover", ["job", "status", jid])
    check(out.returncode == 0, out.stderr)
    check("Job:        " + jid in out.stdout and
          "Type:       batch" in out.stdout and
          "Group:      frames count=4 cores=1 memory=256mb" in out.stdout,
          out.stdout)
    lines = [l.split() for l in out.stdout.splitlines()
             if l.split() and l.split()[0] in [str(x) for x in a]]
    check(len(lines) == 4 and lines[1][:7] ==
          [str(a[2]), "frames", "2", "fake-list", "run", "failed", "9"],
          out.stdout)


class CommitTrap:
    """A TCP proxy in front of PostgreSQL for qmgr. Armed, it lets the
    COMMIT of the first transaction that ran a statement containing
    `marker` reach the server, then drops the connection before the answer
    comes back: the commit landed, qmgr cannot know."""

    def __init__(self, pg_port, marker):
        self.pg_port = pg_port
        self.marker = marker.encode()
        self.armed = False
        self.trapped = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.pg_port))
            conn = {"swallow": False}
            threading.Thread(target=self.upstream, args=(client, server, conn),
                             daemon=True).start()
            threading.Thread(target=self.downstream,
                             args=(server, client, conn), daemon=True).start()

    @staticmethod
    def read(s, n):
        data = b""
        while len(data) < n:
            d = s.recv(n - len(data))
            if not d:
                raise OSError("closed")
            data += d
        return data

    def upstream(self, client, server, conn):
        stmts = {}
        marked = False
        trap = False
        try:
            # untyped messages: SSL/GSS requests, then the startup message
            while True:
                head = self.read(client, 8)
                length, code = struct.unpack("!ii", head)
                server.sendall(head + self.read(client, length - 8))
                if code not in (80877103, 80877104):
                    break
            while True:
                kind = self.read(client, 1)
                length = struct.unpack("!i", self.read(client, 4))[0]
                body = self.read(client, length - 4)
                if kind == b"P":
                    name, _, rest = body.partition(b"\0")
                    query = rest.partition(b"\0")[0]
                    stmts[name] = query
                    if query.startswith(b"BEGIN"):
                        marked = False
                    if (query == b"COMMIT" and marked and self.armed):
                        trap = True
                        self.armed = False
                        conn["swallow"] = True
                elif kind == b"B":
                    stmt = body.split(b"\0")[1]
                    if self.marker in stmts.get(stmt, b""):
                        marked = True
                server.sendall(kind + struct.pack("!i", length) + body)
                if trap and kind == b"S":
                    time.sleep(0.5)      # let the commit land
                    self.trapped += 1
                    break
        except OSError:
            pass
        for s in (client, server):
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    @staticmethod
    def downstream(server, client, conn):
        try:
            while True:
                d = server.recv(65536)
                if not d or conn["swallow"]:
                    break
                client.sendall(d)
        except OSError:
            pass

    def close(self):
        self.sock.close()


def test_qdel_whose_commit_answer_was_lost():
    with cluster("jobspec-indoubt", nodes=0, scheds=0, start=False) as c:
        c.start_pg()
        c.migrate()
        real = c.conninfo
        pg_port = int(re.search(r"port=(\d+)", real).group(1))
        trap = CommitTrap(pg_port, "comment = 'Job deleted'")
        try:
            c.conninfo = ("host=127.0.0.1 port=%d dbname=drover "
                          "user=postgres" % trap.port)
            c.start_qmgr()
            c.conninfo = real
            jid = c.submit(["--", "/bin/true"])
            trap.armed = True
            st, body = c.api("DELETE", "/v1/jobs/%s" % seq(jid),
                             headers={"X-Drover-User": "root"})
            check(trap.trapped == 1, "the commit was not trapped")
            check(st == 200, "qdel after a lost commit answer: %s %r"
                  % (st, body))
            check(body["state"] == "finished", repr(body))
            check(c.sql("SELECT state, comment FROM jobs") ==
                  [["finished", "Job deleted"]])
        finally:
            trap.close()


# --- end to end: needs the scheduler (placement) and noded (tasks) ---

def test_e2e_batch_and_service():
    with cluster("jobspec-e2e", nodes=2) as c:
        jid = submit(c, example("batch"))
        j = c.wait_state(jid, "finished", 90)
        check(j["exit_status"] == 0, repr(j))
        rows = c.sql("SELECT count(*), count(DISTINCT instance) FROM "
                     "allocations WHERE job_id = %s AND client_status = "
                     "'complete'" % seq(jid))
        check(rows == [["4", "4"]], repr(rows))
        sid = submit(c, example("service"))
        wait_until(lambda: c.sql(
            "SELECT count(*) FROM allocations WHERE job_id = %s AND "
            "client_status = 'running'" % seq(sid)) == [["2"]], 60,
            what="2 running service instances")
        out = c.run("drover", ["job", "stop", sid])
        check(out.returncode == 0, out.stderr)
        c.wait_state(sid, "finished", 60)


def test_e2e_system_and_constraints():
    with cluster("jobspec-e2e2", nodes=2) as c:
        sid = submit(c, example("system"))
        wait_until(lambda: c.sql(
            "SELECT count(DISTINCT node_id) FROM allocations WHERE job_id = "
            "%s AND client_status = 'running'" % seq(sid)) == [["2"]], 60,
            what="one system instance per node")
        jid = submit(c, example("constraints"))
        j = c.wait_state(jid, "finished", 90)
        check(j["exit_status"] == 0, repr(j))
        rows = c.sql("SELECT count(DISTINCT node_id) FROM allocations "
                     "WHERE job_id = %s" % seq(jid))
        check(rows == [["2"]], "distinct_hosts: %r" % rows)
        out = c.run("drover", ["job", "stop", sid])
        check(out.returncode == 0, out.stderr)
        c.wait_state(sid, "finished", 60)


def main():
    global C
    shared = [test_docs_include_the_example_files,
              test_examples_submit_and_store_placement,
              test_pbs_jobs_get_placement_too,
              test_run_errors,
              test_count_zero_finishes_at_once,
              test_batch_failed_instance_is_rescheduled_then_finishes,
              test_batch_gives_up_after_its_attempts,
              test_service_reschedules_and_stops,
              test_lost_and_preempted_allocations_are_replaced_at_once,
              test_pbs_jobs_end_with_chunk_zero,
              test_job_allocations_api_and_status]
    rc = 0
    with cluster("jobspec", nodes=0, scheds=0) as c:
        C = c
        rc |= run_tests(shared)
    rc |= run_tests([test_qdel_whose_commit_answer_was_lost,
                     test_e2e_batch_and_service,
                     test_e2e_system_and_constraints])
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
