/* Unit tests: the scheduler engine without a database — constraints,
 * versions, exact NUMA-aware cores and GPUs, reconciliation, placement
 * (best fit, sampling, spread, affinity, distinct hosts, gangs) and
 * preemption choice. */
#include <stdlib.h>
#include <string.h>

#include "lib/cpuset.h"
#include "lib/mem.h"
#include "sched/sched.h"
#include "unit.h"

/* 2 NUMA nodes x 4 cores, one package, GPUs 0-1 on NUMA 0, 2-3 on NUMA 1. */
static const char *const TOPO_2N =
    "{\"packages\": [{\"index\": 0, \"cores\": \"0-7\"}], "
    "\"numa\": [{\"index\": 0, \"cores\": \"0-3\"}, "
    "{\"index\": 1, \"cores\": \"4-7\"}], "
    "\"gpus\": [{\"index\": 0, \"numa\": 0}, {\"index\": 1, \"numa\": 0}, "
    "{\"index\": 2, \"numa\": 1}, {\"index\": 3, \"numa\": 1}]}";

static char *
set_text(hwloc_const_bitmap_t b)
{
    char *s = NULL, *c;

    if (hwloc_bitmap_iszero(b)) {
        return dv_xstrdup("");
    }
    hwloc_bitmap_list_asprintf(&s, b);
    c = dv_xstrdup(s);
    free(s);
    return c;
}

static void
set_free(struct snap_node *n, const char *cores)
{
    hwloc_bitmap_zero(n->free_cores);
    if (*cores != '\0') {
        hwloc_bitmap_list_sscanf(n->free_cores, cores);
    }
    n->nfree_cores = hwloc_bitmap_weight(n->free_cores);
}

static void
test_versions(void)
{
    CHECK(version_cmp("1.10.2", "1.9") > 0);
    CHECK(version_cmp("1.2", "1.2.0") == 0);
    CHECK(version_cmp("v2.0", "2") == 0);
    CHECK(version_cmp("5.10.0-21-amd64", "5.4") > 0);
    CHECK(version_cmp("1.2.0", "1.2.1") < 0);
    CHECK_INT(version_satisfies("1.5", ">= 1.2, < 2.0"), 1);
    CHECK_INT(version_satisfies("2.1", ">= 1.2, < 2.0"), 0);
    CHECK_INT(version_satisfies("6.1.0", "> 5.4"), 1);
    CHECK_INT(version_satisfies("1.0", "=1.0"), 1);
    CHECK_INT(version_satisfies("1.0", ">="), -1);
}

static struct sched_rule
rule(const char *attr, enum sched_op op, const char *value)
{
    struct sched_rule r;

    memset(&r, 0, sizeof(r));
    r.attr = dv_xstrdup(attr);
    r.op = op;
    r.value = dv_xstrdup(value);
    if (op == OP_REGEXP) {
        regcomp(&r.re, value, REG_EXTENDED | REG_NOSUB);
        r.have_re = 1;
    }
    return r;
}

static void
rule_free(struct sched_rule *r)
{
    free(r->attr);
    free(r->value);
    if (r->have_re) {
        regfree(&r->re);
    }
}

static void
test_rules(void)
{
    struct snap_node *n = snap_node_new(1, "n1", 8, 1LL << 30, 0, NULL);
    struct {
        const char *attr;
        enum sched_op op;
        const char *value;
        int want;
    } cases[] = {
        {"attr.kernel.name", OP_EQ, "linux", 1},
        {"attr.kernel.name", OP_NE, "linux", 0},
        {"attr.kernel.release", OP_VERSION, ">= 5.4", 1},
        {"attr.kernel.release", OP_VERSION, "< 5.0", 0},
        {"attr.cpu.numcores", OP_GT, "4", 1},
        {"attr.cpu.numcores", OP_LT, "10", 1},
        {"attr.cpu.numcores", OP_GE, "9", 0},
        {"attr.cpu.model", OP_REGEXP, "^Intel.*Xeon", 1},
        {"attr.cpu.model", OP_REGEXP, "^AMD", 0},
        {"meta.features", OP_SET_CONTAINS, "avx2, sse4", 1},
        {"meta.features", OP_SET_CONTAINS, "avx512", 0},
        {"meta.rack", OP_IS_SET, "", 0},
        {"meta.rack", OP_IS_NOT_SET, "", 1},
        {"meta.rack", OP_NE, "r1", 1}, /* unset satisfies only != */
        {"meta.rack", OP_EQ, "r1", 0},
        {"node.datacenter", OP_EQ, "dc1", 1},
        {"node.name", OP_EQ, "n1", 1},
    };

    snap_node_set_attr(n, "attr.kernel.name", "linux");
    snap_node_set_attr(n, "attr.kernel.release", "6.1.0-13-amd64");
    snap_node_set_attr(n, "attr.cpu.model", "Intel(R) Xeon(R) Gold 6230");
    snap_node_set_attr(n, "meta.features", "sse4,avx,avx2");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sched_rule r = rule(cases[i].attr, cases[i].op, cases[i].value);
        if (rule_matches(&r, n) != cases[i].want) {
            fprintf(stderr, "rule %s %d %s\n", cases[i].attr, cases[i].op,
                    cases[i].value);
        }
        CHECK_INT(rule_matches(&r, n), cases[i].want);
        rule_free(&r);
    }
    {
        char *k = sched_attr_key("${attr.kernel.name}");
        CHECK_STR(k, "attr.kernel.name");
        free(k);
        CHECK(sched_attr_key("attr.kernel.name") == NULL);
    }
    snap_node_free(n);
}

static void
test_cores_numa(void)
{
    struct snap_node *n = snap_node_new(1, "n1", 8, 1LL << 34, 4, TOPO_2N);
    hwloc_bitmap_t out = hwloc_bitmap_alloc();
    char *s;

    /* 3 cores fit one NUMA node: they come from one. */
    CHECK_INT(cores_pick(n, n->free_cores, 3, NUMA_NONE, out), 0);
    s = set_text(out);
    CHECK_STR(s, "0-2");
    free(s);
    /* The fullest NUMA node that fits wins: NUMA 1 has 2 free, NUMA 0 4. */
    set_free(n, "0-3,6-7");
    CHECK_INT(cores_pick(n, n->free_cores, 2, NUMA_PREFER, out), 0);
    s = set_text(out);
    CHECK_STR(s, "6-7");
    free(s);
    /* 6 cores span both NUMA nodes of the package, biggest first. */
    set_free(n, "0-7");
    CHECK_INT(cores_pick(n, n->free_cores, 6, NUMA_PREFER, out), 0);
    CHECK_INT(hwloc_bitmap_weight(out), 6);
    CHECK_INT(cores_pick(n, n->free_cores, 6, NUMA_REQUIRE, out), -1);
    /* 3 free on each NUMA node: 4 must span, or fail when required. */
    set_free(n, "1-3,5-7");
    CHECK_INT(cores_pick(n, n->free_cores, 4, NUMA_REQUIRE, out), -1);
    CHECK_INT(cores_pick(n, n->free_cores, 4, NUMA_NONE, out), 0);
    CHECK_INT(hwloc_bitmap_weight(out), 4);
    CHECK_INT(cores_pick(n, n->free_cores, 7, NUMA_NONE, out), -1);
    /* GPUs near the cores. */
    set_free(n, "0-7");
    hwloc_bitmap_zero(out);
    hwloc_bitmap_set_range(out, 4, 5);
    {
        hwloc_bitmap_t g = hwloc_bitmap_alloc();
        CHECK_INT(gpus_pick(n, n->free_gpus, 2, out, g), 0);
        s = set_text(g);
        CHECK_STR(s, "2-3");
        free(s);
        CHECK_INT(gpus_pick(n, n->free_gpus, 3, out, g), 0);
        s = set_text(g);
        CHECK_STR(s, "0,2-3");
        free(s);
        CHECK_INT(gpus_pick(n, n->free_gpus, 5, out, g), -1);
        hwloc_bitmap_free(g);
    }
    hwloc_bitmap_free(out);
    snap_node_free(n);
}

static void
job_init(struct sched_job *job, const char *type, int ngroups)
{
    memset(job, 0, sizeof(*job));
    job->id = 7;
    job->name = dv_xstrdup("j");
    job->type = dv_xstrdup(type);
    job->state = dv_xstrdup("running");
    job->ngroups = ngroups;
    job->groups = dv_xcalloc((size_t)ngroups, sizeof(*job->groups));
    for (int g = 0; g < ngroups; g++) {
        job->groups[g].name = dv_xasprintf("g%d", g);
        job->groups[g].count = 1;
        job->groups[g].cores = 1;
        job->groups[g].resched_attempts = 1;
        job->groups[g].numa = NUMA_PREFER;
    }
}

static void
test_reconcile_batch(void)
{
    struct sched_job job;
    struct reconcile_result r;
    struct sched_alloc a[] = {
        {.id = 1, .group = 0, .instance = 0, .complete = 1},
        {.id = 2, .group = 0, .instance = 1, .failed = 1},
        {.id = 3, .group = 0, .instance = 2, .failed = 1,
         .reschedule_count = 1},
        {.id = 4, .group = 0, .instance = 3, .lost = 1, .reschedule_count = 1},
        {.id = 5, .group = 0, .instance = 4, .active = 1},
        {.id = 6, .group = 0, .instance = 5, .active = 1},
        {.id = 7, .group = 0, .instance = 0, .complete = 1, .stopping = 1},
    };

    job_init(&job, "batch", 1);
    job.groups[0].count = 5; /* instance 5 is beyond count now */
    reconcile(&job, a, 7, NULL, &r);
    /* 0's newest allocation was stopped by the servers (preempted; noded
     * reports that as complete): replaced without counting; 1 rescheduled
     * (count 0 < 1), 2 exhausted, 3 lost: replaced without counting, 4
     * running. */
    CHECK_INT(r.nwants, 3);
    CHECK_INT(r.wants[0].instance, 0);
    CHECK_INT(r.wants[0].previous_alloc, 7);
    CHECK_INT(r.wants[0].reschedule_count, 0);
    CHECK_INT(r.wants[1].instance, 1);
    CHECK_INT(r.wants[1].previous_alloc, 2);
    CHECK_INT(r.wants[1].reschedule_count, 1);
    CHECK_INT(r.wants[2].instance, 3);
    CHECK_INT(r.wants[2].reschedule_count, 1);
    CHECK_INT(r.nstops, 1);
    CHECK_INT(r.stops[0].alloc_id, 6);
    reconcile_cleanup(&r);
    /* A service replaces even what completed. */
    free(job.type);
    job.type = dv_xstrdup("service");
    job.groups[0].resched_unlimited = 1;
    reconcile(&job, a, 7, NULL, &r);
    CHECK_INT(r.nwants, 4); /* 0 (stopped), 1, 2 (unlimited), 3 */
    reconcile_cleanup(&r);
    /* A stopped job is not reconciled. */
    free(job.state);
    job.state = dv_xstrdup("exiting");
    reconcile(&job, a, 7, NULL, &r);
    CHECK_INT(r.nwants + r.nstops, 0);
    reconcile_cleanup(&r);
    sched_job_cleanup(&job);
}

static void
test_reconcile_pbs_and_system(void)
{
    struct sched_job job;
    struct reconcile_result r;
    struct snapshot snap;
    struct sched_alloc a[] = {{.id = 1, .node_id = 1, .active = 1}};

    job_init(&job, "batch", 2);
    job.pbs = 1;
    job.gang = 1;
    job.groups[0].count = 2;
    free(job.state);
    job.state = dv_xstrdup("queued");
    reconcile(&job, NULL, 0, NULL, &r);
    CHECK_INT(r.nwants, 3);
    CHECK_INT(r.wants[2].group, 1);
    reconcile_cleanup(&r);
    reconcile(&job, a, 1, NULL, &r); /* already placed */
    CHECK_INT(r.nwants, 0);
    reconcile_cleanup(&r);
    sched_job_cleanup(&job);

    snapshot_init(&snap);
    snapshot_put(&snap, snap_node_new(1, "a", 4, 1LL << 30, 0, NULL));
    snapshot_put(&snap, snap_node_new(2, "b", 4, 1LL << 30, 0, NULL));
    snapshot_put(&snap, snap_node_new(3, "c", 1, 1LL << 30, 0, NULL));
    job_init(&job, "system", 1);
    job.groups[0].cores = 2; /* c can never hold it */
    reconcile(&job, a, 1, &snap, &r);
    CHECK_INT(r.nwants, 1);
    CHECK_INT(r.wants[0].node_id, 2);
    reconcile_cleanup(&r);
    sched_job_cleanup(&job);
    snapshot_cleanup(&snap);
}

/* An array's candidates become wants in index order, each subjob's
 * chunks in chunk order; single-chunk subjobs are placed each on its own
 * (no gang), so that some may fit where others do not. */
static void
test_reconcile_and_place_array(void)
{
    struct sched_job job;
    struct reconcile_result r;
    struct snapshot snap;
    struct plan plan;
    struct planner p = {.sample = 0, .sample_threshold = 64, .seed = 42};

    job_init(&job, "batch", 2);
    job.pbs = 1;
    job.groups[1].count = 2; /* chunks: g0, g1, g1 */
    job.array = dv_xcalloc(1, sizeof(*job.array));
    job.array->chunks = 3;
    job.array->cand = dv_xcalloc(2, sizeof(int));
    job.array->cand[0] = 4;
    job.array->cand[1] = 9;
    job.array->ncand = 2;
    reconcile(&job, NULL, 0, NULL, &r);
    CHECK_INT(r.nwants, 6);
    for (int i = 0; i < 6; i++) {
        CHECK_INT(r.wants[i].sub, 1);
        CHECK_INT(r.wants[i].array_index, i < 3 ? 4 : 9);
        CHECK_INT(r.wants[i].chunk, i % 3);
        CHECK_INT(r.wants[i].group, i % 3 == 0 ? 0 : 1);
    }
    reconcile_cleanup(&r);
    job.array->ncand = 0; /* nothing left to place now */
    reconcile(&job, NULL, 0, NULL, &r);
    CHECK_INT(r.nwants, 0);
    reconcile_cleanup(&r);
    sched_job_cleanup(&job);

    /* five single-chunk subjobs of 2 cores on one 4-core node: two fit */
    snapshot_init(&snap);
    snapshot_put(&snap, snap_node_new(1, "a", 4, 1LL << 30, 0, NULL));
    job_init(&job, "batch", 1);
    job.pbs = 1;
    job.groups[0].cores = 2;
    job.array = dv_xcalloc(1, sizeof(*job.array));
    job.array->chunks = 1;
    job.array->cand = dv_xcalloc(5, sizeof(int));
    for (int i = 0; i < 5; i++) {
        job.array->cand[i] = i + 1;
    }
    job.array->ncand = 5;
    reconcile(&job, NULL, 0, &snap, &r);
    plan_job(&p, &snap, &job, NULL, 0, &r, &plan);
    CHECK_INT(plan.nplacements, 2);
    CHECK_INT(plan.nunplaced, 3);
    CHECK_INT(r.wants[plan.placements[0].want].array_index, 1);
    CHECK_INT(r.wants[plan.placements[1].want].array_index, 2);
    plan_cleanup(&plan);
    reconcile_cleanup(&r);
    sched_job_cleanup(&job);
    snapshot_cleanup(&snap);
}

static void
plan_for(struct snapshot *snap, struct sched_job *job,
         struct reconcile_result *rec, struct plan *plan, int sample,
         int threshold)
{
    struct planner p = {.sample = sample, .sample_threshold = threshold,
                        .seed = 42};

    reconcile(job, NULL, 0, snap, rec);
    plan_job(&p, snap, job, NULL, 0, rec, plan);
}

static void
test_place_best_fit(void)
{
    struct snapshot snap;
    struct sched_job job;
    struct reconcile_result rec;
    struct plan plan;

    snapshot_init(&snap);
    snapshot_put(&snap, snap_node_new(1, "big", 16, 64LL << 30, 0, NULL));
    snapshot_put(&snap, snap_node_new(2, "half", 8, 32LL << 30, 0, NULL));
    snapshot_put(&snap, snap_node_new(3, "full", 8, 32LL << 30, 0, NULL));
    set_free(snap.nodes[1], "0-2");
    set_free(snap.nodes[2], "");
    job_init(&job, "batch", 1);
    job.groups[0].count = 5;
    plan_for(&snap, &job, &rec, &plan, 0, 64);
    /* Fills the fullest node that fits before opening the big one. */
    CHECK_INT(plan.nplacements, 5);
    CHECK_INT(plan.nunplaced, 0);
    for (int i = 0; i < 3; i++) {
        CHECK_STR(plan.placements[i].pn->node->name, "half");
    }
    CHECK_STR(plan.placements[3].pn->node->name, "big");
    CHECK_STR(plan.placements[4].pn->node->name, "big");
    /* Exact cores never repeat on a node. */
    CHECK(!hwloc_bitmap_intersects(plan.placements[3].cores,
                                   plan.placements[4].cores));
    plan_cleanup(&plan);
    reconcile_cleanup(&rec);
    /* Too big for anything: never. */
    job.groups[0].count = 1;
    job.groups[0].cores = 32;
    plan_for(&snap, &job, &rec, &plan, 0, 64);
    CHECK_INT(plan.nunplaced, 1);
    CHECK_INT(plan.never, 1);
    CHECK(strstr(plan.why, "Can Never Run: Insufficient amount of resource: "
                           "ncpus (R: 32") != NULL);
    plan_cleanup(&plan);
    reconcile_cleanup(&rec);
    /* Fits only when the full node frees: not now. */
    job.groups[0].cores = 8;
    set_free(snap.nodes[0], "0-3");
    plan_for(&snap, &job, &rec, &plan, 0, 64);
    CHECK_INT(plan.nunplaced, 1);
    CHECK_INT(plan.never, 0);
    CHECK(strstr(plan.why, "Not Running: Insufficient amount of resource: "
                           "ncpus (R: 8 A: 7 T: 32)") != NULL);
    CHECK_INT(plan.need_cores, 8);
    CHECK_INT(plan.nfeasible, 3);
    plan_cleanup(&plan);
    reconcile_cleanup(&rec);
    sched_job_cleanup(&job);
    snapshot_cleanup(&snap);
}

static void
test_place_constraints_affinity_spread(void)
{
    struct snapshot snap;
    struct sched_job job;
    struct reconcile_result rec;
    struct plan plan;
    int in_dc[2] = {0, 0};

    snapshot_init(&snap);
    for (int i = 1; i <= 6; i++) {
        char name[16];
        struct snap_node *n;
        snprintf(name, sizeof(name), "n%d", i);
        n = snap_node_new(i, name, 8, 16LL << 30, 0, NULL);
        free(n->datacenter);
        n->datacenter = dv_xstrdup(i <= 3 ? "dc1" : "dc2");
        snap_node_set_attr(n, "node.datacenter", n->datacenter);
        snap_node_set_attr(n, "attr.arch", i == 6 ? "arm64" : "x86_64");
        snapshot_put(&snap, n);
    }
    /* Constraint: x86_64 only; distinct hosts; spread over datacenters. */
    job_init(&job, "service", 1);
    job.groups[0].count = 4;
    job.groups[0].constraints = dv_xcalloc(1, sizeof(struct sched_rule));
    job.groups[0].constraints[0] = rule("attr.arch", OP_EQ, "x86_64");
    job.groups[0].nconstraints = 1;
    job.groups[0].distinct_hosts = 1;
    job.groups[0].spreads = dv_xcalloc(1, sizeof(struct sched_spread));
    job.groups[0].spreads[0].attr = dv_xstrdup("node.datacenter");
    job.groups[0].spreads[0].weight = 100;
    job.groups[0].nspreads = 1;
    plan_for(&snap, &job, &rec, &plan, 0, 64);
    CHECK_INT(plan.nplacements, 4);
    for (int i = 0; i < plan.nplacements; i++) {
        const struct snap_node *n = plan.placements[i].pn->node;
        CHECK(n->id != 6);
        in_dc[strcmp(n->datacenter, "dc1") == 0 ? 0 : 1]++;
        for (int j = 0; j < i; j++) {
            CHECK(plan.placements[j].pn->node->id != n->id);
        }
    }
    CHECK_INT(in_dc[0], 2);
    CHECK_INT(in_dc[1], 2);
    plan_cleanup(&plan);
    reconcile_cleanup(&rec);
    /* Five distinct x86 hosts exist, six instances cannot all go. */
    job.groups[0].count = 6;
    plan_for(&snap, &job, &rec, &plan, 0, 64);
    CHECK_INT(plan.nplacements, 5);
    CHECK_INT(plan.nunplaced, 1);
    plan_cleanup(&plan);
    reconcile_cleanup(&rec);
    sched_job_cleanup(&job);

    /* Affinity pulls toward dc2 even though bin packing has no say. */
    job_init(&job, "batch", 1);
    job.groups[0].affinities = dv_xcalloc(1, sizeof(struct sched_rule));
    job.groups[0].affinities[0] = rule("node.datacenter", OP_EQ, "dc2");
    job.groups[0].affinities[0].weight = 100;
    job.groups[0].naffinities = 1;
    plan_for(&snap, &job, &rec, &plan, 0, 64);
    CHECK_INT(plan.nplacements, 1);
    CHECK_STR(plan.placements[0].pn->node->datacenter, "dc2");
    plan_cleanup(&plan);
    reconcile_cleanup(&rec);
    sched_job_cleanup(&job);
    snapshot_cleanup(&snap);
}

static void
test_place_gang(void)
{
    struct snapshot snap;
    struct sched_job job;
    struct reconcile_result rec;
    struct plan plan;

    snapshot_init(&snap);
    snapshot_put(&snap, snap_node_new(1, "a", 4, 8LL << 30, 0, NULL));
    snapshot_put(&snap, snap_node_new(2, "b", 4, 8LL << 30, 0, NULL));
    snapshot_put(&snap, snap_node_new(3, "c", 4, 8LL << 30, 0, NULL));
    job_init(&job, "batch", 1);
    job.pbs = 1;
    job.gang = 1;
    free(job.state);
    job.state = dv_xstrdup("queued");
    /* scatter: one chunk per host */
    job.place = PLACE_SCATTER;
    job.groups[0].count = 3;
    plan_for(&snap, &job, &rec, &plan, 0, 64);
    CHECK_INT(plan.nplacements, 3);
    CHECK(plan.placements[0].pn != plan.placements[1].pn &&
          plan.placements[1].pn != plan.placements[2].pn &&
          plan.placements[0].pn != plan.placements[2].pn);
    plan_cleanup(&plan);
    reconcile_cleanup(&rec);
    /* scatter of 4 on 3 hosts: nothing at all, and never */
    job.groups[0].count = 4;
    plan_for(&snap, &job, &rec, &plan, 0, 64);
    CHECK_INT(plan.nplacements, 0);
    CHECK_INT(plan.nunplaced, 4);
    CHECK_INT(plan.never, 1);
    plan_cleanup(&plan);
    reconcile_cleanup(&rec);
    /* pack: all on one node or nothing */
    job.place = PLACE_PACK;
    job.groups[0].count = 2;
    job.groups[0].cores = 2;
    plan_for(&snap, &job, &rec, &plan, 0, 64);
    CHECK_INT(plan.nplacements, 2);
    CHECK(plan.placements[0].pn == plan.placements[1].pn);
    plan_cleanup(&plan);
    reconcile_cleanup(&rec);
    job.groups[0].count = 3; /* 6 cores on one 4-core node: never */
    plan_for(&snap, &job, &rec, &plan, 0, 64);
    CHECK_INT(plan.nplacements, 0);
    CHECK_INT(plan.never, 1);
    plan_cleanup(&plan);
    reconcile_cleanup(&rec);
    /* free: a gang that does not fit now places nothing */
    job.place = PLACE_FREE;
    job.groups[0].count = 4;
    job.groups[0].cores = 3;
    set_free(snap.nodes[0], "0");
    plan_for(&snap, &job, &rec, &plan, 0, 64);
    CHECK_INT(plan.nplacements, 0);
    CHECK_INT(plan.nunplaced, 4);
    CHECK_INT(plan.never, 0);
    plan_cleanup(&plan);
    reconcile_cleanup(&rec);
    sched_job_cleanup(&job);
    snapshot_cleanup(&snap);
}

static void
test_gang_never_is_per_group(void)
{
    struct snapshot snap;
    struct sched_job job;
    struct reconcile_result rec;
    struct plan plan;

    snapshot_init(&snap);
    snapshot_put(&snap, snap_node_new(1, "gpu", 8, 16LL << 30, 1, NULL));
    snapshot_put(&snap, snap_node_new(2, "cpu1", 32, 64LL << 30, 0, NULL));
    snapshot_put(&snap, snap_node_new(3, "cpu2", 32, 64LL << 30, 0, NULL));
    set_free(snap.nodes[1], "");
    set_free(snap.nodes[2], "");
    /* select=1:ncpus=4:ngpus=1+2:ncpus=32: only the GPU node passes the
     * first chunk, the CPU nodes are busy: not now, but not never. */
    job_init(&job, "batch", 2);
    job.pbs = 1;
    job.gang = 1;
    free(job.state);
    job.state = dv_xstrdup("queued");
    job.groups[0].cores = 4;
    job.groups[0].gpus = 1;
    job.groups[1].count = 2;
    job.groups[1].cores = 32;
    job.groups[1].mem = 1LL << 30;
    plan_for(&snap, &job, &rec, &plan, 0, 64);
    CHECK_INT(plan.nplacements, 0);
    CHECK_INT(plan.never, 0);
    /* the smallest instance needs no memory: group 0 asks none */
    CHECK_INT(plan.need_mem, 0);
    CHECK_INT(plan.need_cores, 4);
    plan_cleanup(&plan);
    reconcile_cleanup(&rec);
    /* pack: no single node holds 68 cores */
    job.place = PLACE_PACK;
    plan_for(&snap, &job, &rec, &plan, 0, 64);
    CHECK_INT(plan.never, 1);
    plan_cleanup(&plan);
    reconcile_cleanup(&rec);
    sched_job_cleanup(&job);
    snapshot_cleanup(&snap);
}

static void
test_place_sampling(void)
{
    struct snapshot snap;
    struct sched_job job;
    struct reconcile_result rec;
    struct plan plan;
    int nodes_used = 0;

    snapshot_init(&snap);
    for (int i = 1; i <= 500; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%d", i);
        snapshot_put(&snap, snap_node_new(i, name, 32, 64LL << 30, 0, NULL));
    }
    job_init(&job, "batch", 1);
    job.groups[0].count = 100;
    plan_for(&snap, &job, &rec, &plan, 0, 64);
    CHECK_INT(plan.nplacements, 100);
    /* The plan's own nodes are always candidates: 100 one-core instances
     * pack onto few 32-core nodes despite sampling. */
    nodes_used = plan.nnodes;
    CHECK(nodes_used <= 8);
    plan_cleanup(&plan);
    reconcile_cleanup(&rec);
    sched_job_cleanup(&job);
    snapshot_cleanup(&snap);
}

static void
test_preempt_choose(void)
{
    struct snapshot snap;
    struct sched_group g = {.cores = 4};
    struct victim out[8];
    struct victim c[] = {
        {.alloc_id = 1, .node_id = 1, .priority = 5, .cores = 1},
        {.alloc_id = 2, .node_id = 1, .priority = 5, .cores = 1},
        {.alloc_id = 3, .node_id = 1, .priority = 5, .cores = 1},
        {.alloc_id = 4, .node_id = 1, .priority = 5, .cores = 1},
        {.alloc_id = 5, .node_id = 2, .priority = 10, .cores = 4},
        {.alloc_id = 6, .node_id = 3, .priority = 1, .cores = 2},
        {.alloc_id = 7, .node_id = 3, .priority = 1, .cores = 2},
    };

    snapshot_init(&snap);
    for (int i = 1; i <= 3; i++) {
        snapshot_put(&snap, snap_node_new(i, "n", 4, 8LL << 30, 0, NULL));
        set_free(snap.nodes[i - 1], "");
    }
    /* Fewest victims: node 2's single allocation. */
    CHECK_INT(preempt_choose(&snap, &g, c, 7, out, 8), 1);
    CHECK_INT(out[0].alloc_id, 5);
    /* Without it, node 3's two lowest-priority ones beat node 1's four. */
    CHECK_INT(preempt_choose(&snap, &g, c, 4, out, 8), 4);
    {
        struct victim d[] = {c[0], c[1], c[2], c[3], c[5], c[6]};
        CHECK_INT(preempt_choose(&snap, &g, d, 6, out, 8), 2);
        CHECK_INT(out[0].node_id, 3);
    }
    /* Nothing frees enough. */
    CHECK_INT(preempt_choose(&snap, &g, c, 3, out, 8), 0);
    snapshot_cleanup(&snap);
}

/* A batch's lease is renewed before an evaluation only once half of it is
 * gone (a write per evaluation saved while it is fresh). */
static void
test_lease_stale(void)
{
    /* leased at 1000 for 30 s: due at 1030 */
    CHECK(!worker_lease_stale(1030, 1000, 30));
    CHECK(!worker_lease_stale(1030, 1014.9, 30));
    CHECK(worker_lease_stale(1030, 1015.1, 30));
    CHECK(worker_lease_stale(1030, 1031, 30));
}

int
main(void)
{
    RUN(test_versions);
    RUN(test_rules);
    RUN(test_cores_numa);
    RUN(test_reconcile_batch);
    RUN(test_reconcile_pbs_and_system);
    RUN(test_reconcile_and_place_array);
    RUN(test_place_best_fit);
    RUN(test_place_constraints_affinity_spread);
    RUN(test_place_gang);
    RUN(test_gang_never_is_per_group);
    RUN(test_place_sampling);
    RUN(test_preempt_choose);
    RUN(test_lease_stale);
    return unit_done();
}
