"""The node protocol (docs/api.md "Nodes"): a node's own reports do not wake
its long poll, answers carry each job spec once and PBS_NODEFILE hosts only
for the allocation that runs the script (the current run's hosts only), a
status batch with an update that can never apply does not block the rest,
node routes refuse local users on the Unix socket, a down node must
register again (which makes evaluations for system jobs), a node daemon
that cannot heartbeat for a TTL stops its jobs, and a simulated cluster of
200 nodes runs PBS jobs.

Most tests drive the API as a node daemon would ("fake" nodes: rows made by
POST /v1/nodes/register whose heartbeat deadline is pushed far ahead), so
that they decide exactly what the node reports and when."""

import json
import os
import signal
import subprocess
import threading
import time
import uuid

from harness import (BIN, TEST_USER, check, cluster, ensure_test_user,
                     run_tests, wait_until)

C = None


def register(c, name, cores=4, gpus=0, disk=0):
    body = {"name": name, "resources": {"cores": cores, "memory": 8 << 30,
                                        "gpus": gpus, "disk": disk}}
    st, ans = c.api("POST", "/v1/nodes/register", body)
    check(st == 200, "register %s: %s %r" % (name, st, ans))
    return ans["node_id"]


def fake_node(c, cores=4, **kw):
    """A registered node that no daemon serves (deadline a day ahead)."""
    name = "fake-" + uuid.uuid4().hex[:8]
    nid = register(c, name, cores, **kw)
    c.sql("UPDATE nodes SET heartbeat_deadline = now() + interval '1 day' "
          "WHERE id = %d" % nid)
    return nid, name


def hide_nodes(c, keep):
    """Makes every node but keep ineligible, so the scheduler uses keep."""
    c.sql("UPDATE nodes SET eligible = (id = %d), "
          "modify_index = nextval('modify_index_seq')" % keep)


def poll(c, nid, index=None, wait=None, timeout=30):
    q = []
    if index is not None:
        q.append("index=%d" % index)
    if wait is not None:
        q.append("wait=%s" % wait)
    path = "/v1/nodes/%d/allocations%s" % (nid, "?" + "&".join(q) if q else "")
    st, body = c.api("GET", path, timeout=timeout)
    check(st == 200, "poll: %s %r" % (st, body))
    return body


def report(c, nid, updates):
    st, body = c.api("POST", "/v1/nodes/%d/allocations/status" % nid,
                     {"updates": updates})
    check(st == 200, "status: %s %r" % (st, body))
    return body


def wait_allocs(c, nid, n, timeout=20):
    def got():
        b = poll(c, nid)
        return b if len(b["allocations"]) >= n else None
    return wait_until(got, timeout, what="%d allocations on node %d" % (n, nid))


# --- the protocol ---

def test_own_reports_do_not_wake_long_poll():
    nid, name = fake_node(C)
    hide_nodes(C, nid)
    jid = C.submit(["-l", "select=2:ncpus=1", "--", "/bin/sleep", "60"])
    full = wait_allocs(C, nid, 2)
    check(full["full"] is True, repr(full))
    allocs = sorted(full["allocations"], key=lambda a: a["chunk_index"])
    # each spec once, in "jobs"; hosts only on chunk 0
    check(list(full["jobs"].keys()) == [str(allocs[0]["job_id"])],
          repr(full["jobs"].keys()))
    check(all("job" not in a for a in allocs), "a spec inside an allocation")
    check([h["host"] for h in allocs[0]["hosts"]] == [name, name],
          repr(allocs[0].get("hosts")))
    check("hosts" not in allocs[1], "hosts on chunk 1: %r" % allocs[1])
    index = full["index"]
    # the node's own reports answer at once and wake nothing
    ans = report(C, nid, [{"id": a["id"], "client_status": "running"}
                          for a in allocs])
    check(ans["applied"] == 2 and ans["errors"] == [], repr(ans))
    t0 = time.time()
    b = poll(C, nid, index, "2s")
    took = time.time() - t0
    check(took >= 1.8, "a node's own report woke its poll after %.1fs" % took)
    check(b["allocations"] == [] and b["full"] is False and
          b["index"] == index, repr(b))
    # a change of the servers' (qdel) wakes it at once, with only the change
    result = {}

    def waiter():
        t = time.time()
        result["b"] = poll(C, nid, index, "20s")
        result["took"] = time.time() - t
    th = threading.Thread(target=waiter)
    th.start()
    time.sleep(0.5)
    check(C.run("qdel", [jid]).returncode == 0)
    th.join(25)
    check(result.get("took", 99) < 5, "qdel woke the poll after %r"
          % result.get("took"))
    b = result["b"]
    check(b["index"] > index and b["full"] is False, repr(b))
    check(sorted(a["desired_status"] for a in b["allocations"]) ==
          ["stop", "stop"], repr(b["allocations"]))
    check(b["jobs"] == {}, "a spec for allocations to stop: %r" % b["jobs"])
    report(C, nid, [{"id": a["id"], "client_status": "failed",
                     "exit_status": 271} for a in allocs])
    j = C.wait_state(jid, "finished", 10)
    check(j["exit_status"] == 271, repr(j))
    C.sql("UPDATE nodes SET eligible = false WHERE id = %d" % nid)


def test_hosts_of_the_current_run_only():
    nid, name = fake_node(C)
    nid2, name2 = fake_node(C, cores=1)
    C.sql("UPDATE nodes SET eligible = (id IN (%d, %d)), "
          "modify_index = nextval('modify_index_seq')" % (nid, nid2))
    jid = C.submit(["-r", "y", "-l", "select=1:ncpus=3+1:ncpus=1", "--",
                    "/bin/sleep", "60"])
    a = wait_allocs(C, nid, 1)["allocations"]
    first = wait_until(lambda: C.sql(
        "SELECT id, chunk_index, node_id FROM allocations WHERE job_id = %s "
        "ORDER BY chunk_index" % jid.split(".")[0]), 10, what="placement")
    check(len(first) == 2, repr(first))
    chunk0 = [x for x in a if x["chunk_index"] == 0][0]
    report(C, nid, [{"id": chunk0["id"], "client_status": "running"}])
    # chunk 0 lost: the job is requeued and placed again, while the old
    # chunk 1 is still being stopped
    report(C, nid, [{"id": chunk0["id"], "client_status": "lost"}])
    C.wait_state(jid, ("queued", "running"), 10)

    def new_run():
        rows = C.sql("SELECT id FROM allocations WHERE job_id = %s AND "
                     "chunk_index = 0 AND client_status = 'pending'"
                     % jid.split(".")[0])
        return rows
    wait_until(new_run, 20, what="the second run")
    b = poll(C, nid)
    new0 = [x for x in b["allocations"] if x["chunk_index"] == 0 and
            x["client_status"] == "pending"][0]
    hosts = [h["host"] for h in new0["hosts"]]
    want = [r[0] for r in C.sql(
        "SELECT n.name FROM allocations a JOIN nodes n ON n.id = a.node_id "
        "WHERE a.job_id = %s AND a.desired_status = 'run' AND "
        "a.client_status IN ('pending', 'running') ORDER BY a.chunk_index"
        % jid.split(".")[0])]
    stopping = C.sql("SELECT count(*) FROM allocations WHERE job_id = %s AND "
                     "desired_status = 'stop' AND client_status IN "
                     "('pending', 'running')" % jid.split(".")[0])
    check(stopping == [["1"]], "the first run's chunk 1: %r" % stopping)
    check(len(hosts) == 2 and hosts == want,
          "hosts %r, want %r (the stopped chunk of the first run listed?)"
          % (hosts, want))
    check(C.run("qdel", [jid]).returncode == 0)
    C.sql("UPDATE nodes SET eligible = false WHERE id IN (%d, %d)"
          % (nid, nid2))


def test_bad_update_does_not_block_the_batch():
    nid, _ = fake_node(C)
    hide_nodes(C, nid)
    jids = [C.submit(["--", "/bin/sleep", "60"]) for _ in range(3)]
    allocs = wait_allocs(C, nid, 3)["allocations"]
    ids = sorted(a["id"] for a in allocs)
    # a row that can never be updated (a broken trigger, say)
    C.sql("CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS "
          "$$ BEGIN IF NEW.id = %d AND NEW.client_status = 'complete' THEN "
          "RAISE EXCEPTION 'poisoned row'; END IF; RETURN NEW; END $$"
          % ids[1])
    C.sql("CREATE TRIGGER test_poison BEFORE UPDATE ON allocations "
          "FOR EACH ROW EXECUTE FUNCTION test_poison()")
    try:
        ans = report(C, nid, [{"id": i, "client_status": "complete",
                               "exit_status": 0} for i in ids] +
                     [{"id": ids[0], "client_status": "bogus"}])
    finally:
        C.sql("DROP TRIGGER test_poison ON allocations")
        C.sql("DROP FUNCTION test_poison()")
    errs = sorted((e["pos"], e["id"], e["code"]) for e in ans["errors"])
    check(errs == [(1, ids[1], "internal_error"),
                   (3, ids[0], "invalid_request")], repr(ans))
    states = C.sql("SELECT id, client_status FROM allocations WHERE id IN "
                   "(%s) ORDER BY id" % ",".join(map(str, ids)))
    check([s[1] for s in states] == ["complete", "pending", "complete"],
          repr(states))
    # the rest of the node's work goes on
    report(C, nid, [{"id": ids[1], "client_status": "complete",
                     "exit_status": 0}])
    for jid in jids:
        C.wait_state(jid, "finished", 10)
    C.sql("UPDATE nodes SET eligible = false WHERE id = %d" % nid)


def test_down_node_registers_again():
    nid, name = fake_node(C, cores=8, gpus=4, disk=10 << 30)
    rows = C.sql("SELECT free_gpuset, free_disk FROM nodes WHERE id = %d"
                 % nid)
    check(rows == [["0-3", str(10 << 30)]], repr(rows))
    # an allocation holding GPU 1 and some disk: a new registration keeps
    # them out of the free capacity
    job = C.submit(["-h", "--", "/bin/true"])
    C.sql("INSERT INTO allocations (job_id, node_id, ncpus, cpuset, gpus, "
          "ngpus, disk, desired_status, client_status, create_time, "
          "modify_index) VALUES (%s, %d, 1, '0', '1', 1, 1073741824, 'run', "
          "'running', now(), nextval('modify_index_seq'))"
          % (job.split(".")[0], nid))
    # a system job: registering makes an evaluation for it
    st, body = C.api("POST", "/v1/jobs", {
        "name": "sys", "type": "system", "groups": [{
            "name": "g", "tasks": [{"name": "t", "command": "/bin/true"}]}]},
        headers={"X-Drover-User": "root"})
    check(st == 201, "system job: %s %r" % (st, body))
    sysid = body["id"]
    C.sql("UPDATE evaluations SET status = 'complete' WHERE job_id = %d"
          % sysid)
    C.sql("UPDATE jobs SET state = 'running' WHERE id = %d" % sysid)
    C.sql("UPDATE nodes SET status = 'down' WHERE id = %d" % nid)
    st, body = C.api("PUT", "/v1/nodes/%d/heartbeat" % nid)
    check(st == 404 and body["error"]["code"] == "node_not_found",
          "a heartbeat brought a down node back: %s %r" % (st, body))
    check(C.sql("SELECT status FROM nodes WHERE id = %d" % nid) ==
          [["down"]])
    check(register(C, name, cores=8, gpus=4, disk=10 << 30) == nid)
    rows = C.sql("SELECT status, free_gpuset, free_gpus, free_disk, "
                 "free_cpuset FROM nodes WHERE id = %d" % nid)
    check(rows == [["ready", "0,2-3", "3", str(9 << 30), "1-7"]], repr(rows))
    ev = C.sql("SELECT triggered_by FROM evaluations WHERE job_id = %d "
               "ORDER BY id" % sysid)
    check(ev[-1] == ["node-update"], repr(ev))
    C.sql("UPDATE jobs SET state = 'finished' WHERE id = %d" % sysid)
    C.sql("UPDATE evaluations SET status = 'cancelled' WHERE job_id = %d"
          % sysid)
    C.sql("UPDATE nodes SET eligible = false WHERE id = %d" % nid)


# --- who may call node routes ---

def unix_request(sock_path, method, path, body=None, user=None):
    """An HTTP request over the Unix socket, as user (runuser) or root."""
    code = (
        "import json, socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.connect(%r)\n"
        "b = %r.encode()\n"
        "s.sendall(('%s %s HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n"
        "Content-Type: application/json\\r\\nContent-Length: %%d\\r\\n\\r\\n'"
        " %% len(b)).encode() + b)\n"
        "out = b''\n"
        "while True:\n"
        "    d = s.recv(65536)\n"
        "    if not d: break\n"
        "    out += d\n"
        "sys.stdout.write(out.decode())\n"
        % (sock_path, json.dumps(body) if body is not None else "",
           method, path))
    argv = ["python3", "-c", code]
    if user is not None:
        argv = ["runuser", "-u", user, "--"] + argv
    out = subprocess.run(argv, capture_output=True, timeout=30)
    check(out.returncode == 0, out.stderr)
    head, _, text = out.stdout.decode().partition("\r\n\r\n")
    return int(head.split()[1]), (json.loads(text) if text else None)


def test_node_routes_refuse_local_users():
    pw = ensure_test_user()
    check(pw is not None, "cannot create the test user (not root)")
    nid, name = fake_node(C)
    reg = {"name": name, "resources": {"cores": 4, "memory": 1 << 30}}
    calls = [("POST", "/v1/nodes/register", reg),
             ("PUT", "/v1/nodes/%d/heartbeat" % nid, None),
             ("GET", "/v1/nodes/%d/allocations" % nid, None),
             ("POST", "/v1/nodes/%d/allocations/status" % nid,
              {"updates": []})]
    for method, path, body in calls:
        st, ans = unix_request(C.socket, method, path, body, user=TEST_USER)
        check(st == 403 and ans["error"]["code"] == "forbidden",
              "%s %s as %s: %s %r" % (method, path, TEST_USER, st, ans))
        st, ans = unix_request(C.socket, method, path, body)
        check(st == 200, "%s %s as root: %s %r" % (method, path, st, ans))
    # everything else stays open to local users
    st, _ = unix_request(C.socket, "GET", "/v1/status", user=TEST_USER)
    check(st == 200, "status as a user: %s" % st)
    # --node-uid lets the daemon's own user in
    sock2 = os.path.join(C.dir, "qmgr2.sock")
    port2 = __import__("harness").free_port()
    q2 = subprocess.Popen([os.path.join(BIN, "drover-qmgr"), "--database",
                           C.conninfo, "--listen", "127.0.0.1:%d" % port2,
                           "--socket", sock2, "--node-uid", str(pw.pw_uid)],
                          stdout=open(os.path.join(C.dir, "qmgr2.log"), "ab"),
                          stderr=subprocess.STDOUT, env=C.env)
    try:
        wait_until(lambda: os.path.exists(sock2), 20, what="second qmgr")
        st, ans = unix_request(sock2, "PUT", "/v1/nodes/%d/heartbeat" % nid,
                               user=TEST_USER)
        check(st == 200, "heartbeat as --node-uid: %s %r" % (st, ans))
    finally:
        q2.send_signal(signal.SIGTERM)
        q2.wait(20)
    check(q2.returncode == 0, "second qmgr exited %s" % q2.returncode)


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   capture_output=True, timeout=30)


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1, client ones for node-a
    and node-b (EC keys: fast)."""
    os.makedirs(d, exist_ok=True)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key",
            "-out", "ca.pem", "-days", "2", "-subj", "/CN=test-ca", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"),
                      ("node-a", None), ("node-b", None)):
        cn = "127.0.0.1" if name == "server" else name
        openssl("req", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn,
                cwd=d)
        args = ["x509", "-req", "-in", name + ".csr", "-CA", "ca.pem",
                "-CAkey", "ca.key", "-CAcreateserial", "-out", name + ".pem",
                "-days", "2"]
        if ext:
            with open(os.path.join(d, name + ".ext"), "w") as f:
                f.write(ext + "\n")
            args += ["-extfile", name + ".ext"]
        openssl(*args, cwd=d)


def tls_api(port, d, who, method, path, body=None):
    import ssl
    import urllib.error
    import urllib.request
    ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
    ctx.load_cert_chain(os.path.join(d, who + ".pem"),
                        os.path.join(d, who + ".key"))
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request("https://127.0.0.1:%d%s" % (port, path),
                                 data=data, method=method)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=20) as r:
            return r.status, json.loads(r.read().decode() or "null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode() or "null")


def test_node_routes_over_mutual_tls():
    """The client certificate's CN must be the node's name."""
    d = os.path.join(C.dir, "certs")
    make_certs(d)
    port = __import__("harness").free_port()
    q = subprocess.Popen([os.path.join(BIN, "drover-qmgr"), "--database",
                          C.conninfo, "--listen", "127.0.0.1:%d" % port,
                          "--tls-cert", os.path.join(d, "server.pem"),
                          "--tls-key", os.path.join(d, "server.key"),
                          "--tls-client-ca", os.path.join(d, "ca.pem")],
                         stdout=open(os.path.join(C.dir, "qmgr-tls.log"),
                                     "ab"),
                         stderr=subprocess.STDOUT, env=C.env)
    try:
        def up():
            try:
                return tls_api(port, d, "node-a", "GET", "/v1/status")[0]
            except OSError:
                return None
        wait_until(up, 20, what="qmgr over TLS")

        def reg(who, name):
            return tls_api(port, d, who, "POST", "/v1/nodes/register",
                           {"name": name, "resources": {"cores": 1,
                                                        "memory": 1 << 30}})
        st, a = reg("node-a", "node-a")
        check(st == 200, "node-a registers itself: %s %r" % (st, a))
        st, b = reg("node-b", "node-b")
        check(st == 200, "node-b registers itself: %s %r" % (st, b))
        st, ans = reg("node-a", "node-b")
        check(st == 403, "node-a registered node-b: %s %r" % (st, ans))
        ida, idb = a["node_id"], b["node_id"]
        for method, path, body in (
                ("PUT", "/v1/nodes/%d/heartbeat", None),
                ("GET", "/v1/nodes/%d/allocations", None),
                ("POST", "/v1/nodes/%d/allocations/status",
                 {"updates": []})):
            st, ans = tls_api(port, d, "node-a", method, path % ida, body)
            check(st == 200, "%s own: %s %r" % (method, st, ans))
            st, ans = tls_api(port, d, "node-a", method, path % idb, body)
            check(st == 403 and ans["error"]["code"] == "forbidden",
                  "%s as another node: %s %r" % (method, st, ans))
    finally:
        q.send_signal(signal.SIGTERM)
        q.wait(20)
    C.sql("UPDATE nodes SET eligible = false WHERE name IN ('node-a', "
          "'node-b')")


# --- fencing ---

def test_node_fences_itself():
    """qmgr gone for longer than the TTL (3 s): the node stops its jobs,
    which the servers will have requeued elsewhere."""
    C.sql("UPDATE nodes SET eligible = (name = 'node1'), "
          "modify_index = nextval('modify_index_seq')")
    pidfile = os.path.join(C.dir, "fence.pid")
    jid = C.submit(["--", "/bin/sh", "-c",
                    "echo $$ > %s; exec sleep 120" % pidfile])
    C.wait_state(jid, "running", 20)
    wait_until(lambda: os.path.exists(pidfile) and
               open(pidfile).read().strip(), 10, what="the job's pid")
    pid = int(open(pidfile).read())
    C.qmgr.kill()
    t0 = time.time()

    def gone():
        try:
            os.kill(pid, 0)
            return False
        except ProcessLookupError:
            return True
    wait_until(gone, 10, what="the job stopped by fencing")
    took = time.time() - t0
    check(1.8 <= took <= 9, "fenced after %.1fs (TTL 3s)" % took)
    log = open(os.path.join(C.dir, "node1.log")).read()
    check("no heartbeat reached" in log, "no fencing in the node's log")
    C.start_qmgr()
    j = C.wait_state(jid, ("finished", "queued", "running"), 20)
    check(j["state"] in ("finished", "queued", "running"), repr(j))
    C.run("qdel", [jid])


# --- a simulated cluster ---

def test_simulated_cluster():
    base = "sim" + uuid.uuid4().hex[:6]
    C.sql("UPDATE nodes SET eligible = false, "
          "modify_index = nextval('modify_index_seq')")
    sim = C.start_noded(base, extra=["--simulate", "200",
                                     "--simulate-topology",
                                     "pack:1 numa:2 core:4 pu:1",
                                     "--memory", "16gb"])
    wait_until(lambda: int(C.sql(
        "SELECT count(*) FROM nodes WHERE name LIKE '%s-%%' AND "
        "status = 'ready'" % base)[0][0]) == 200, 30,
        what="200 simulated nodes ready")
    names = C.sql("SELECT name, total_cores FROM nodes WHERE name IN "
                  "('%s-1', '%s-200') ORDER BY name" % (base, base))
    check(names == [[base + "-1", "8"], [base + "-200", "8"]], repr(names))
    # jobs "run" for their walltime; one without a walltime runs until
    # deleted (qdel: 271, as a real job killed by SIGTERM)
    jobs = [C.submit(["-l", "walltime=00:00:02", "-l", "ncpus=%d" % (1 + i % 4),
                      "--", "/bin/true"]) for i in range(60)]
    forever = C.submit(["-l", "select=2:ncpus=8", "--", "/bin/true"])
    C.wait_state(forever, "running", 20)
    for jid in jobs:
        j = C.wait_state(jid, "finished", 40)
        check(j["exit_status"] == 0, "%s: %r" % (jid, j))
    check(C.run("qdel", [forever]).returncode == 0)
    j = C.wait_state(forever, "finished", 20)
    check(j["exit_status"] == 271, repr(j))
    wait_until(lambda: C.sql(
        "SELECT count(*) FROM allocations a JOIN nodes n ON n.id = a.node_id "
        "WHERE n.name LIKE '%s-%%' AND a.client_status IN ('pending', "
        "'running')" % base) == [["0"]], 10,
        what="every simulated allocation ended")
    # heartbeats keep all 200 ready; SIGTERM stops the simulation cleanly
    check(int(C.sql("SELECT count(*) FROM nodes WHERE name LIKE '%s-%%' AND "
                    "status = 'ready'" % base)[0][0]) == 200)
    check(sim.stop() == 0, "the simulation did not exit 0")
    C.nodeds.remove(sim)


def main():
    global C
    sock = None
    with cluster("nodes", nodes=1, qmgr_args=[
            "--socket", "/tmp/drover-nodes-%s.sock" % uuid.uuid4().hex[:8]],
            node_topology="pack:1 core:2 pu:1") as c:
        C = c
        sock = c.qmgr_args[1]
        C.socket = sock
        try:
            return run_tests([test_own_reports_do_not_wake_long_poll,
                              test_hosts_of_the_current_run_only,
                              test_bad_update_does_not_block_the_batch,
                              test_down_node_registers_again,
                              test_node_routes_refuse_local_users,
                              test_node_routes_over_mutual_tls,
                              test_simulated_cluster,
                              test_node_fences_itself])
        finally:
            if sock is not None and os.path.exists(sock):
                os.unlink(sock)


if __name__ == "__main__":
    raise SystemExit(main())
