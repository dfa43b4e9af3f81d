"""Operators' node changes (docs/api.md "Nodes", docs/cli.md "drover node"):
a drained or ineligible node gets no new work while the other node takes
it; work that fits only the drained node waits with a blocked evaluation
and runs as soon as the node is undrained (woken by NOTIFY capacity, not by
the scheduler's 30 s poll); work running on a node that gets drained runs
to completion; a system job reaches a node once it is undrained;
GET /v1/nodes/:id, the list, drover node status; only root
may make changes (Unix socket peer, X-Drover-User on TCP); unknown nodes
and bad bodies are refused.

One cluster for every test: "big" (4 cores) and "small" (2 cores)."""

import json
import os
import time

from harness import (TEST_USER, check, cluster, ensure_test_user, run_tests,
                     wait_until)

C = None
ROOT = {"X-Drover-User": "root"}


def drover(*args, **kw):
    return C.run("drover", list(args), **kw)


def set_flag(node, what, value, comment=None):
    body = {what: value}
    if comment is not None:
        body["comment"] = comment
    path = "/v1/nodes/%s/%s" % (node, "drain" if what == "drain"
                                else "eligibility")
    st, ans = C.api("POST", path, body, headers=ROOT)
    check(st == 200, "%s %s: %s %r" % (path, body, st, ans))
    return ans


def reset_nodes():
    for n in ("big", "small"):
        set_flag(n, "drain", False, "")
        set_flag(n, "eligible", True)


def alloc_nodes(jid):
    st, ans = C.api("GET", "/v1/jobs/%s/allocations" % jid.split(".")[0])
    check(st == 200, "allocations of %s: %s %r" % (jid, st, ans))
    return [a["node"] for a in ans["allocations"]]


def node(name):
    st, ans = C.api("GET", "/v1/nodes/%s" % name)
    check(st == 200, "GET node %s: %s %r" % (name, st, ans))
    return ans


def eval_states(jid):
    return [r[0] for r in C.sql("SELECT status FROM evaluations WHERE "
                                "job_id = %s ORDER BY id" % jid.split(".")[0])]


def only_small(flag_cmd):
    """Small jobs all go to small while big is drained or ineligible."""
    ids = [C.submit(["-l", "select=1:ncpus=1", "--", "/bin/sleep", "0.3"])
           for _ in range(4)]
    for jid in ids:
        j = C.wait_state(jid, "finished", 30)
        check(j["exit_status"] == 0, "%s: %r" % (jid, j))
        check(alloc_nodes(jid) == ["small"], "%s placed on %r with big %s"
              % (jid, alloc_nodes(jid), flag_cmd))


def blocked_until(jid, release):
    """jid fits only big: it waits with a blocked evaluation until release()
    makes big usable, then runs at once (not after the 30 s poll)."""
    wait_until(lambda: "blocked" in eval_states(jid), 15,
               what="a blocked evaluation of %s" % jid)
    time.sleep(0.5)
    check(C.job(jid)["state"] == "queued", "placed on an unusable node")
    t0 = time.time()
    release()
    C.wait_state(jid, ("running", "finished"), 10)
    took = time.time() - t0
    check(took < 8, "%s started %.1fs after big came back" % (jid, took))
    check(alloc_nodes(jid) == ["big"], repr(alloc_nodes(jid)))
    C.wait_state(jid, "finished", 20)


# --- placement ---

def test_drain_keeps_new_work_off():
    reset_nodes()
    before = C.sql("SELECT modify_index FROM nodes WHERE name = 'big'")[0][0]
    out = drover("node", "drain", "big", "-comment", "disk swap")
    check(out.returncode == 0, "drain: %d %s" % (out.returncode, out.stderr))
    check(out.stdout == 'Node "big" drained: no new work is placed on it\n',
          repr(out.stdout))
    n = node("big")
    check(n["drain"] is True and n["eligible"] is True and
          n["comment"] == "disk swap", repr(n))
    check(n["modify_index"] > int(before), "modify_index did not move")
    only_small("drained")


def test_blocked_work_wakes_on_undrain():
    reset_nodes()
    set_flag("big", "drain", True, "blocked test")
    shape = int(C.sql("SELECT shape_index FROM nodes WHERE name = 'big'")[0][0])
    jid = C.submit(["-l", "select=1:ncpus=4", "--", "/bin/sleep", "0.3"])

    def undrain():
        out = drover("node", "drain", "big", "-disable")
        check(out.returncode == 0 and out.stdout == 'Node "big" undrained\n',
              "undrain: %d %r %s" % (out.returncode, out.stdout, out.stderr))
    blocked_until(jid, undrain)
    rows = C.sql("SELECT shape_index, capacity_index, comment FROM nodes "
                 "WHERE name = 'big'")[0]
    check(int(rows[0]) > shape and int(rows[1]) >= int(rows[0]), repr(rows))
    check(rows[2] == "blocked test", "undrain without -comment changed the "
          "comment: %r" % rows)


def test_running_work_survives_drain():
    reset_nodes()
    jid = C.submit(["-l", "select=1:ncpus=4", "--", "/bin/sleep", "3"])
    C.wait_state(jid, "running", 15)
    check(alloc_nodes(jid) == ["big"], repr(alloc_nodes(jid)))
    out = drover("node", "drain", "big")
    check(out.returncode == 0, out.stderr)
    check("(1 allocation still running)" in out.stdout, repr(out.stdout))
    n = node("big")
    check(n["allocation_count"] == 1 and len(n["allocations"]) == 1, repr(n))
    a = n["allocations"][0]
    check(a["job_id"] == jid and a["cores"] == 4 and
          a["desired_status"] == "run", repr(a))
    time.sleep(1)
    check(C.job(jid)["state"] == "running", "drained work was stopped")
    j = C.wait_state(jid, "finished", 20)
    check(j["exit_status"] == 0, repr(j))
    rows = C.sql("SELECT desired_status, client_status FROM allocations "
                 "WHERE job_id = %s" % jid.split(".")[0])
    check(rows == [["run", "complete"]], repr(rows))


def test_ineligible_is_like_drain():
    reset_nodes()
    out = drover("node", "eligibility", "big", "-disable", "-comment", "hw")
    check(out.returncode == 0, out.stderr)
    check(out.stdout == 'Node "big" ineligible: no new work is placed on '
          'it\n', repr(out.stdout))
    n = node("big")
    check(n["eligible"] is False and n["drain"] is False and
          n["comment"] == "hw", repr(n))
    only_small("ineligible")
    jid = C.submit(["-l", "select=1:ncpus=4", "--", "/bin/true"])

    def enable():
        out = drover("node", "eligibility", "big", "-enable", "-comment", "")
        check(out.returncode == 0 and out.stdout == 'Node "big" eligible\n',
              "enable: %d %r %s" % (out.returncode, out.stdout, out.stderr))
    blocked_until(jid, enable)
    check(node("big")["comment"] is None, "-comment \"\" kept the comment")


def test_system_job_reaches_undrained_node():
    reset_nodes()
    set_flag("big", "drain", True)
    spec = {"name": "agent", "type": "system", "node_pool": "all",
            "groups": [{"name": "agent", "resources": {"cores": 1},
                        "tasks": [{"name": "agent", "command": "/bin/sleep",
                                   "args": ["3600"]}]}]}
    out = C.run("drover", ["job", "run", "-"], input=json.dumps(spec))
    check(out.returncode == 0, out.stderr)
    sid = out.stdout.strip()
    seq = sid.split(".")[0]

    def running_on():
        return sorted(r[0] for r in C.sql(
            "SELECT n.name FROM allocations a JOIN nodes n ON n.id = a.node_id "
            "WHERE a.job_id = %s AND a.client_status = 'running'" % seq))
    wait_until(lambda: running_on() == ["small"], 15,
               what="the system job on small only")
    t0 = time.time()
    set_flag("big", "drain", False)
    wait_until(lambda: running_on() == ["big", "small"], 10,
               what="the system job on big once undrained")
    check(time.time() - t0 < 8, "reached big after %.1fs" % (time.time() - t0))
    out = C.run("drover", ["job", "stop", sid])
    check(out.returncode == 0, out.stderr)
    C.wait_state(sid, "finished", 20)


# --- reading ---

def test_status_and_get():
    reset_nodes()
    set_flag("small", "drain", True, "maintenance")
    st, ans = C.api("GET", "/v1/nodes")
    check(st == 200, repr(ans))
    by = {n["name"]: n for n in ans["nodes"]}
    check(by["small"]["drain"] is True and
          by["small"]["comment"] == "maintenance" and
          by["big"]["eligible"] is True and by["big"]["comment"] is None,
          repr(by))
    # by id and by name, the same node
    n1, n2 = node(str(by["small"]["id"])), node("small")
    check(n1["name"] == "small" and n1["id"] == n2["id"] and
          n1["total_cores"] == 2 and n1["allocations"] == [], repr(n1))
    out = drover("node", "status")
    check(out.returncode == 0, out.stderr)
    lines = out.stdout.splitlines()
    check(lines[0].split() == ["Name", "ID", "Status", "Eligible", "Drain",
                               "Cores", "Memory", "GPUs", "Allocs"], lines[0])
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    check(rows["small"][2:7] == ["ready", "yes", "yes", "2/2", "8gb/8gb"],
          repr(rows))
    check(rows["big"][2:6] == ["ready", "yes", "no", "4/4"], repr(rows))
    out = drover("node", "status", "small")
    check(out.returncode == 0, out.stderr)
    check("Drain:       yes\n" in out.stdout and
          "Comment:     maintenance\n" in out.stdout and
          "Allocations\n" in out.stdout, out.stdout)


# --- refusals ---

def test_unknown_nodes_and_bad_requests():
    for path in ("/v1/nodes/nope", "/v1/nodes/999"):
        st, ans = C.api("GET", path)
        check(st == 404 and ans["error"]["code"] == "node_not_found",
              "%s: %s %r" % (path, st, ans))
        st, ans = C.api("POST", path + "/drain", {"drain": True},
                        headers=ROOT)
        check(st == 404 and ans["error"]["code"] == "node_not_found",
              "%s: %s %r" % (path, st, ans))
    check(C.api("GET", "/v1/nodes/nope")[1]["error"]["message"] ==
          "Unknown node nope", "message")
    bad = [
        ("drain", None, "invalid_request", 'a body {"drain": true|false} is '
         'required'),
        ("drain", b"{", "invalid_json", None),
        ("drain", b"[]", "invalid_request", "the body must be a JSON object"),
        ("drain", b'{"drain": "yes"}', "invalid_request",
         'field "drain" must be true or false'),
        ("drain", b'{"eligible": true}', "invalid_request",
         'unknown field "eligible"'),
        ("eligibility", b'{"drain": true}', "invalid_request",
         'unknown field "drain"'),
        ("eligibility", b'{"comment": "x"}', "invalid_request",
         'field "eligible" is required (true or false)'),
        ("eligibility", b'{"eligible": true, "comment": 1}',
         "invalid_request", 'field "comment" must be a string'),
    ]
    for what, raw, code, msg in bad:
        st, ans = C.api("POST", "/v1/nodes/big/%s" % what, raw=raw,
                        headers=ROOT)
        check(st == 400 and ans["error"]["code"] == code and
              (msg is None or ans["error"]["message"] == msg),
              "%s %r: %s %r" % (what, raw, st, ans))
    st, ans = C.api("POST", "/v1/nodes/bad:name/drain", {"drain": True},
                    headers=ROOT)
    check(st == 400 and ans["error"]["code"] == "invalid_request", repr(ans))
    st, ans = C.api("GET", "/v1/nodes/big/drain")
    check(st == 405, "GET drain: %s %r" % (st, ans))
    # the CLI: unknown node, usage errors
    out = drover("node", "drain", "nope")
    check(out.returncode == 1 and
          out.stderr == "drover node drain: Unknown node nope\n",
          "%d %r" % (out.returncode, out.stderr))
    out = drover("node", "status", "999")
    check(out.returncode == 1 and "Unknown node id 999" in out.stderr,
          "%d %r" % (out.returncode, out.stderr))
    for args in (["node", "eligibility", "big"], ["node", "drain"],
                 ["node", "drain", "big", "-frob"], ["node", "frob"],
                 ["node", "eligibility", "big", "-enable", "-disable"]):
        out = drover(*args)
        check(out.returncode == 2 and "usage: drover node" in out.stderr,
              "%r: %d %r" % (args, out.returncode, out.stderr))
    check(node("big")["drain"] is False, "a refused request changed big")


def test_only_root_may_change():
    reset_nodes()
    st, ans = C.api("POST", "/v1/nodes/big/drain", {"drain": True},
                    headers={"X-Drover-User": "alice"})
    check(st == 403 and ans["error"]["code"] == "forbidden", repr(ans))
    st, ans = C.api("POST", "/v1/nodes/big/eligibility", {"eligible": False})
    check(st == 403, "no user: %s %r" % (st, ans))
    sock = os.path.join(C.dir, "qmgr.sock")
    unix = {"DROVER_ADDR": "unix:" + sock}
    out = drover("node", "drain", "big", env=unix)
    check(out.returncode == 0, "root on the socket: %s" % out.stderr)
    if ensure_test_user() is not None:
        for env in (unix, {}):
            out = drover("node", "drain", "big", "-disable", user=TEST_USER,
                         env=env)
            check(out.returncode == 159 and "Unauthorized Request" in
                  out.stderr, "%r: %d %r" % (env, out.returncode, out.stderr))
        out = drover("node", "status", "big", user=TEST_USER, env=unix)
        check(out.returncode == 0, "anyone may look: %s" % out.stderr)
    check(node("big")["drain"] is True, "a refused request changed big")


def main():
    global C
    # A long poll interval: only notifications wake the scheduler in time.
    with cluster("nodeadmin", sched_args=["--poll-interval", "30s"],
                 start=False) as c:
        C = c
        c.qmgr_args = ["--socket", os.path.join(c.dir, "qmgr.sock")]
        c.start_pg()
        c.migrate()
        c.start_qmgr()
        c.start_sched()
        c.start_noded("big", topology="pack:1 core:4 pu:1")
        c.start_noded("small", topology="pack:1 core:2 pu:1")
        c.wait_nodes_ready(2)
        rc = run_tests([test_drain_keeps_new_work_off,
                        test_blocked_work_wakes_on_undrain,
                        test_running_work_survives_drain,
                        test_ineligible_is_like_drain,
                        test_system_job_reaches_undrained_node,
                        test_status_and_get,
                        test_unknown_nodes_and_bad_requests,
                        test_only_root_may_change])
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
