"""Placement with real daemons: native jobs submitted with `drover job run`
land where their constraints, affinities, spread, distinct_hosts, NUMA and
GPU requests say, and the exact cores and GPUs granted reach the tasks.

Nodes: two 8-core machines with 2 NUMA nodes of 4 cores, one in dc1 and
one in dc2 (class "big", meta rack=r2), and a GPU machine (the NVIDIA DGX-2 topology from
../shared/hwloc-xml, 16 GPUs) in dc1."""

import json
import os

from harness import check, cluster, run_tests, wait_until

SHARED = os.environ.get("DROVER_SHARED", os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared"))
DGX2 = os.path.join(SHARED, "hwloc-xml", "nvidiaDGX2.xml")
C = None


def expand(cpuset):
    out = set()
    for part in filter(None, cpuset.split(",")):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def run_job(spec):
    out = C.run("drover", ["job", "run", "-"], input=json.dumps(spec))
    check(out.returncode == 0, "drover job run: %s" % out.stderr)
    return out.stdout.strip()


def allocations(jobid, count, timeout=30):
    seq = jobid.split(".")[0]

    def placed():
        st, body = C.api("GET", "/v1/jobs/%s/allocations" % seq)
        check(st == 200, "allocations: %s %r" % (st, body))
        live = [a for a in body["allocations"]
                if a["desired_status"] == "run"]
        return live if len(live) >= count else None
    return wait_until(placed, timeout, what="%d allocations of %s"
                      % (count, jobid))


def job(name, group, count=1, **extra):
    g = {"name": "g", "count": count,
         "resources": {"cores": 1, "memory": "64mb"},
         "tasks": [{"name": "t", "command": "/bin/sleep", "args": ["30"]}]}
    g.update(group)
    spec = {"name": name, "type": "batch", "groups": [g]}
    spec.update(extra)
    return spec


def stop(jobid):
    C.run("drover", ["job", "stop", jobid])


def test_constraint_pins_to_datacenter():
    jid = run_job(job("pinned", {"constraints": [
        {"attribute": "${node.datacenter}", "operator": "=", "value": "dc2"}]},
        count=3))
    allocs = allocations(jid, 3)
    check({a["node"] for a in allocs} == {"n-dc2"}, repr(allocs))
    stop(jid)


def test_node_class_and_meta_constraints():
    """--node-class and --meta reach the database and the constraints."""
    st, body = C.api("GET", "/v1/nodes/n-dc2")
    check(st == 200, "node: %s %r" % (st, body))
    check(body["node_class"] == "big" and
          body["meta"] == {"rack": "r2", "os": "debian"}, repr(body))
    jid = run_job(job("labels", {"constraints": [
        {"attribute": "${meta.rack}", "operator": "=", "value": "r2"}]},
        count=2))
    check({a["node"] for a in allocations(jid, 2)} == {"n-dc2"}, jid)
    stop(jid)
    jid = run_job(job("cls", {"constraints": [
        {"attribute": "${node.class}", "operator": "!=", "value": "big"},
        {"attribute": "${meta.rack}", "operator": "is_not_set"}]}, count=2))
    check("n-dc2" not in {a["node"] for a in allocations(jid, 2)}, jid)
    stop(jid)


def test_job_datacenters_and_impossible_constraint():
    jid = run_job(job("dcs", {}, count=2, datacenters=["dc2"]))
    check({a["node"] for a in allocations(jid, 2)} == {"n-dc2"})
    stop(jid)
    never = run_job(job("never", {"constraints": [
        {"attribute": "${attr.arch}", "operator": "=", "value": "sparc"}]}))
    wait_until(lambda: (C.job(never.split(".")[0]).get("comment") or "")
               .startswith("Can Never Run"), 20, what="Can Never Run")
    st, body = C.api("GET", "/v1/jobs/%s/allocations" % never.split(".")[0])
    check(body["allocations"] == [], repr(body))
    stop(never)


def test_affinity_prefers_datacenter():
    jid = run_job(job("liked", {"affinities": [
        {"attribute": "${node.datacenter}", "operator": "=", "value": "dc2",
         "weight": 100}]}, count=2))
    check({a["node"] for a in allocations(jid, 2)} == {"n-dc2"})
    stop(jid)


def test_spread_and_distinct_hosts():
    jid = run_job(job("spread", {"spread": [
        {"attribute": "${node.datacenter}", "weight": 100}],
        "constraints": [{"attribute": "${attr.gpu.count}", "operator": "=",
                         "value": "0"}]}, count=4))
    per_dc = {}
    for a in allocations(jid, 4):
        per_dc[a["node"]] = per_dc.get(a["node"], 0) + 1
    check(per_dc == {"n-dc1": 2, "n-dc2": 2}, repr(per_dc))
    stop(jid)
    jid = run_job(job("distinct", {"constraints": [
        {"operator": "distinct_hosts"}]}, count=3))
    nodes = [a["node"] for a in allocations(jid, 3)]
    check(len(set(nodes)) == 3, repr(nodes))
    stop(jid)


def test_numa_compact_cores():
    # 3 cores fit one of the 4-core NUMA nodes of n-dc1 / n-dc2
    jid = run_job(job("numa", {
        "resources": {"cores": 3, "memory": "64mb", "numa": "require"},
        "constraints": [{"attribute": "${attr.gpu.count}", "operator": "=",
                         "value": "0"}]}, count=2))
    for a in allocations(jid, 2):
        cores = expand(a["cpuset"])
        check(len(cores) == 3, a["cpuset"])
        check(cores <= {0, 1, 2, 3} or cores <= {4, 5, 6, 7},
              "cores %s span NUMA nodes" % a["cpuset"])
    stop(jid)
    # 5 cores fit no NUMA node: "require" can never run, "prefer" spans
    never = run_job(job("numa-never", {
        "resources": {"cores": 5, "memory": "64mb", "numa": "require"},
        "constraints": [{"attribute": "${node.datacenter}", "operator": "=",
                         "value": "dc2"}]}))
    wait_until(lambda: "Not Running" in (C.job(never.split(".")[0])
                                         .get("comment") or "") or
               "Can Never" in (C.job(never.split(".")[0]).get("comment")
                               or ""), 20, what="unplaceable NUMA job")
    stop(never)
    jid = run_job(job("numa-span", {
        "resources": {"cores": 5, "memory": "64mb", "numa": "prefer"},
        "constraints": [{"attribute": "${node.datacenter}", "operator": "=",
                         "value": "dc2"}]}))
    check(len(expand(allocations(jid, 1)[0]["cpuset"])) == 5)
    stop(jid)


def test_gpus_granted_and_visible():
    out_dir = os.path.join(C.dir, "gpujob")
    os.makedirs(out_dir, exist_ok=True)
    spec = job("gpus", {
        "resources": {"cores": 1, "memory": "64mb", "gpus": 2},
        "tasks": [{"name": "t", "command": "/bin/sh", "args": [
            "-c", "echo $CUDA_VISIBLE_DEVICES > %s/visible; sleep 30"
            % out_dir]}]})
    jid = run_job(spec)
    a = allocations(jid, 1)[0]
    check(a["node"] == "n-gpu", repr(a))
    check(a["ngpus"] == 2 and len(expand(a["gpus"])) == 2, repr(a))
    path = os.path.join(out_dir, "visible")
    wait_until(lambda: os.path.exists(path) and open(path).read().strip(),
               20, what="the task's CUDA_VISIBLE_DEVICES")
    seen = expand(open(path).read().strip())
    check(seen == expand(a["gpus"]), "task saw GPUs %r, granted %r"
          % (seen, a["gpus"]))
    # two more jobs get other GPUs, never the same ones
    others = [run_job(job("gpus%d" % i, {
        "resources": {"cores": 1, "memory": "64mb", "gpus": 4}}))
        for i in range(2)]
    granted = expand(a["gpus"])
    for jid2 in others:
        g = expand(allocations(jid2, 1)[0]["gpus"])
        check(len(g) == 4 and not (g & granted), "GPUs granted twice")
        granted |= g
        stop(jid2)
    stop(jid)


def main():
    global C
    with cluster("placement", nodes=0, node_memory="16gb") as c:
        C = c
        c.start_noded("n-dc1", topology="pack:1 numa:2 core:4 pu:1")
        c.start_noded("n-dc2", ["--datacenter", "dc2", "--node-class", "big",
                                "--meta", "rack=r2,os=debian"],
                      topology="pack:1 numa:2 core:4 pu:1")
        c.start_noded("n-gpu", ["--memory", "64gb"], topology="xml:" + DGX2)
        c.wait_nodes_ready(3)
        return run_tests([test_constraint_pins_to_datacenter,
                          test_node_class_and_meta_constraints,
                          test_job_datacenters_and_impossible_constraint,
                          test_affinity_prefers_datacenter,
                          test_spread_and_distinct_hosts,
                          test_numa_compact_cores,
                          test_gpus_granted_and_visible])


if __name__ == "__main__":
    raise SystemExit(main())
