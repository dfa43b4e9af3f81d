/* Unit tests: backfill as pure functions of a snapshot (sched/backfill.c)
 * — which reservations bind a job, when a lower-ranked job may start
 * beside or before a reservation, the earliest start of a waiting job from
 * the estimated ends of running work, and the planner honouring all of it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"
#include "sched/sched.h"
#include "unit.h"

/* A rank in the default queue with no usage: (id, priority). */
#define RK(id, prio) (&(struct sched_rank){0, (prio), 0, (id)})

static void
job_init(struct sched_job *job, int64_t id, int priority, double walltime,
         int count, int cores)
{
    memset(job, 0, sizeof(*job));
    job->id = id;
    job->name = dv_xstrdup("j");
    job->type = dv_xstrdup("batch");
    job->state = dv_xstrdup("queued");
    job->pbs = 1;
    job->gang = 1;
    job->place = PLACE_SCATTER;
    job->priority = priority;
    job->walltime = walltime;
    job->ngroups = 1;
    job->groups = dv_xcalloc(1, sizeof(*job->groups));
    job->groups[0].name = dv_xstrdup("chunk0");
    job->groups[0].count = count;
    job->groups[0].cores = cores;
}

static void
set_free(struct snap_node *n, const char *cores)
{
    hwloc_bitmap_zero(n->db_cores);
    if (*cores != '\0') {
        hwloc_bitmap_list_sscanf(n->db_cores, cores);
    }
    snap_node_recompute(n);
}

static void
add_resv(struct snap_node *n, struct snap_resv r)
{
    n->resv = dv_xrealloc(n->resv, sizeof(*n->resv) * (size_t)(n->nresv + 1));
    n->resv[n->nresv++] = r;
}

static void
test_binds(void)
{
    struct snap_resv p = {.job_id = 5, .priority = 10,
                          .kind = RESV_PREEMPTION};
    struct snap_resv b = {.job_id = 5, .priority = 10, .kind = RESV_BACKFILL};

    CHECK_INT(backfill_binds(&p, RK(9, 10)), 1); /* equal priority: bound */
    CHECK_INT(backfill_binds(&p, RK(9, 11)), 0);
    CHECK_INT(backfill_binds(&p, RK(5, 0)), 0); /* never the holder */
    CHECK_INT(backfill_binds(&b, RK(9, 10)), 1); /* submitted later */
    CHECK_INT(backfill_binds(&b, RK(3, 10)), 0); /* submitted earlier */
    CHECK_INT(backfill_binds(&b, RK(3, 9)), 1);
    CHECK_INT(backfill_binds(&b, RK(9, 11)), 0);
    CHECK_INT(sched_resv_kind("fifo"), RESV_FIFO);
    CHECK_INT(sched_resv_kind("backfill"), RESV_BACKFILL);
    CHECK_INT(sched_resv_kind("preemption"), RESV_PREEMPTION);
}

/* The order of work: queue priority, then job priority, then fair share
 * (less usage first, none first of all), then age. */
static void
test_rank_order(void)
{
    struct sched_rank hiq = {10, 0, 5.0, 9}, loq = {0, 100, -INFINITY, 1};
    struct sched_rank light = {0, 0, 3.0, 9}, heavy = {0, 0, 7.0, 1};
    struct sched_rank fresh = {0, 0, -INFINITY, 9};
    struct sched_rank old = {0, 0, 3.0, 2};
    struct sched_eval e1 = {.id = 2, .queue_priority = 10},
                      e2 = {.id = 1, .priority = 100};

    CHECK(sched_rank_cmp(&hiq, &loq) < 0); /* queue before -p */
    CHECK(sched_rank_cmp(&loq, &hiq) > 0);
    CHECK(sched_rank_cmp(&light, &heavy) < 0); /* usage before age */
    CHECK(sched_rank_cmp(&fresh, &light) < 0); /* no usage first */
    CHECK(sched_rank_cmp(&old, &light) < 0); /* then age */
    CHECK_INT(sched_rank_cmp(&old, &old), 0);
    /* leasing compares the same keys (an evaluation's age is its id) */
    CHECK(sched_eval_order_cmp(&e1, &e2) < 0);
}

/* Backfill and fifo reservations bind by the order of work, with the
 * holder's keys as stored; preemption ones by job priority alone. */
static void
test_binds_rank(void)
{
    struct snap_resv hiq = {.job_id = 5, .priority = 0, .queue_priority = 10,
                            .fairshare = 5.0, .kind = RESV_BACKFILL};
    struct snap_resv loq = {.job_id = 5, .priority = 100,
                            .fairshare = -INFINITY, .kind = RESV_FIFO};
    struct snap_resv heavy = {.job_id = 5, .fairshare = 7.0,
                              .kind = RESV_BACKFILL};
    struct snap_resv pre = {.job_id = 5, .priority = 5,
                            .kind = RESV_PREEMPTION};
    struct sched_rank hi_p = {0, 100, -INFINITY, 1};
    struct sched_rank in_hiq = {10, 0, 6.0, 9};
    struct sched_rank light = {0, 0, 3.0, 9}, heavier = {0, 0, 8.0, 1};
    struct sched_rank pre_hiq = {10, 5, -INFINITY, 9};

    /* a -p 100 job in a lower queue does not pass a high queue's holder */
    CHECK_INT(backfill_binds(&hiq, &hi_p), 1);
    CHECK_INT(backfill_binds(&hiq, &in_hiq), 1); /* more usage: bound */
    /* a low queue's holder holds nothing against the high queue */
    CHECK_INT(backfill_binds(&loq, &in_hiq), 0);
    /* less usage than the holder: ranked above it (and older or not) */
    CHECK_INT(backfill_binds(&heavy, &light), 0);
    CHECK_INT(backfill_binds(&heavy, &heavier), 1);
    /* preemption: job priority only, whatever the queue */
    CHECK_INT(backfill_binds(&pre, &pre_hiq), 1);
    CHECK_INT(backfill_binds(&pre, &hi_p), 0);
}

static void
test_allows(void)
{
    /* An 8-core node: 6 cores run until t=100, 2 free now. A top job
     * holds 4 cores from t=100. */
    struct bf_amount total = {8, 0, 0}, free = {2, 0, 0};
    struct bf_amount two = {2, 0, 0}, one = {1, 0, 0};
    struct snap_resv r = {.job_id = 1, .priority = 0, .kind = RESV_BACKFILL,
                          .start = 100, .cores = 4, .busy_cores = 0};

    /* Ends before the start: allowed, whatever it takes. */
    CHECK_INT(backfill_allows(&r, 1, &total, &free, &two, RK(9, 0), 10, 90), 1);
    /* Runs past it but fits beside: 0 busy + 4 held + 2 <= 8. */
    CHECK_INT(backfill_allows(&r, 1, &total, &free, &two, RK(9, 0), 10, 500), 1);
    CHECK_INT(backfill_allows(&r, 1, &total, &free, &two, RK(9, 0), 10, INFINITY),
              1);
    /* The running work holds 3 cores past t=100: 3 + 4 + 2 > 8. */
    r.busy_cores = 3;
    CHECK_INT(backfill_allows(&r, 1, &total, &free, &two, RK(9, 0), 10, 500), 0);
    CHECK_INT(backfill_allows(&r, 1, &total, &free, &one, RK(9, 0), 10, 500), 1);
    CHECK_INT(backfill_allows(&r, 1, &total, &free, &two, RK(9, 0), 10, 100), 1);
    /* A job ranked above the holder is not bound at all. */
    CHECK_INT(backfill_allows(&r, 1, &total, &free, &two, RK(9, 5), 10, 500), 1);
    /* Once the start has come, the reservation holds its cores now. */
    CHECK_INT(backfill_allows(&r, 1, &total, &free, &one, RK(9, 0), 100, 150), 0);
    free.cores = 5;
    CHECK_INT(backfill_allows(&r, 1, &total, &free, &one, RK(9, 0), 100, 150), 1);
    /* Strict order: nothing ranked lower starts. */
    r.kind = RESV_FIFO;
    CHECK_INT(backfill_allows(&r, 1, &total, &free, &one, RK(9, 0), 10, 20), 0);
    CHECK_INT(backfill_allows(&r, 1, &total, &free, &one, RK(0, 0), 10, 20), 1);
    /* Preemption reservations hold now, for lower or equal priority. */
    r.kind = RESV_PREEMPTION;
    r.start = 0;
    free.cores = 4;
    CHECK_INT(backfill_allows(&r, 1, &total, &free, &one, RK(9, 0), 10, 20), 0);
    CHECK_INT(backfill_allows(&r, 1, &total, &free, &one, RK(9, 1), 10, 20), 1);
}

static void
test_earliest(void)
{
    struct snapshot snap;
    struct sched_job job;
    struct bf_slot *slots = NULL;
    int nslots = 0, groups[] = {0, 0, 0};
    /* Three 4-core nodes, all busy: node 1 until 50, node 2 until 200,
     * node 3 until 100 (2 cores) and for ever (2 cores, no walltime). */
    struct bf_running run[] = {
        {.node_id = 1, .end = 50, .cores = 4},
        {.node_id = 2, .end = 200, .cores = 4},
        {.node_id = 3, .end = 100, .cores = 2},
        {.node_id = 3, .end = INFINITY, .cores = 2},
    };
    double t;

    snapshot_init(&snap);
    for (int i = 1; i <= 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%d", i);
        snapshot_put(&snap, snap_node_new(i, name, 4, 1LL << 30, 0, NULL));
        set_free(snap.nodes[i - 1], "");
    }
    /* Two whole nodes: when nodes 1 and 2 are both free. */
    job_init(&job, 7, 0, 60, 2, 4);
    t = backfill_earliest(&snap, &job, groups, 2, run, 4, 10, &slots,
                          &nslots);
    CHECK(t == 200);
    CHECK_INT(nslots, 2);
    CHECK_INT(slots[0].node_id + slots[1].node_id, 3);
    CHECK_INT(slots[0].a.cores, 4);
    free(slots);
    /* Two cores on two nodes: at 100 (node 1 and node 3's half). */
    sched_job_cleanup(&job);
    job_init(&job, 7, 0, 60, 2, 2);
    t = backfill_earliest(&snap, &job, groups, 2, run, 4, 10, &slots,
                          &nslots);
    CHECK(t == 100);
    CHECK_INT(nslots, 2);
    free(slots);
    /* Three whole nodes: never (node 3 is half held for ever). */
    sched_job_cleanup(&job);
    job_init(&job, 7, 0, 60, 3, 4);
    t = backfill_earliest(&snap, &job, groups, 3, run, 4, 10, &slots,
                          &nslots);
    CHECK(t < 0);
    CHECK_INT(nslots, 0);
    free(slots);
    /* A higher-ranked job's reservation of node 1 from 50 on pushes a
     * one-node job to node 2's end; the holder itself is not pushed. */
    sched_job_cleanup(&job);
    job_init(&job, 7, 0, 60, 1, 4);
    add_resv(snap.nodes[0], (struct snap_resv){.job_id = 3,
                                               .kind = RESV_BACKFILL,
                                               .start = 50, .cores = 4});
    t = backfill_earliest(&snap, &job, groups, 1, run, 4, 10, &slots,
                          &nslots);
    CHECK(t == 200);
    CHECK_INT(slots[0].node_id, 2);
    free(slots);
    job.id = 2; /* ranked above the holder (same priority, earlier) */
    t = backfill_earliest(&snap, &job, groups, 1, run, 4, 10, &slots,
                          &nslots);
    CHECK(t == 50);
    CHECK_INT(slots[0].node_id, 1);
    free(slots);
    /* Later but in a higher-priority queue: ranked above the holder too;
     * with less usage than the holder as well. */
    job.id = 7;
    job.queue_priority = 1;
    t = backfill_earliest(&snap, &job, groups, 1, run, 4, 10, &slots,
                          &nslots);
    CHECK(t == 50);
    free(slots);
    job.queue_priority = 0;
    job.fairshare = -1.0;
    t = backfill_earliest(&snap, &job, groups, 1, run, 4, 10, &slots,
                          &nslots);
    CHECK(t == 50);
    free(slots);
    /* More usage than the holder: pushed as before. */
    job.fairshare = 1.0;
    t = backfill_earliest(&snap, &job, groups, 1, run, 4, 10, &slots,
                          &nslots);
    CHECK(t == 200);
    free(slots);
    sched_job_cleanup(&job);
    snapshot_cleanup(&snap);
}

/* Plans one chunk of cores for job (id, priority, walltime) at t=1000;
 * returns how many placements the plan made. */
static int
placed(const struct snapshot *snap, int64_t id, int priority, double wall,
       int cores)
{
    struct sched_job job;
    struct reconcile_result rec;
    struct plan plan;
    struct planner p = {.sample_threshold = 64, .seed = 1, .now = 1000};
    int n;

    job_init(&job, id, priority, wall, 1, cores);
    reconcile(&job, NULL, 0, snap, &rec);
    plan_job(&p, snap, &job, NULL, 0, &rec, &plan);
    n = plan.nplacements;
    plan_cleanup(&plan);
    reconcile_cleanup(&rec);
    sched_job_cleanup(&job);
    return n;
}

static void
test_plan_respects_reservations(void)
{
    struct snapshot snap;

    snapshot_init(&snap);
    snapshot_put(&snap, snap_node_new(1, "n1", 8, 1LL << 30, 0, NULL));
    set_free(snap.nodes[0], "0-3"); /* 4 free, 4 running */
    /* Job 1 holds all 8 cores from t=1100 (the running 4 end then). */
    add_resv(snap.nodes[0],
             (struct snap_resv){.job_id = 1, .kind = RESV_BACKFILL,
                                .start = 1100, .cores = 8,
                                .busy_cores = 0});
    /* Short (ends at 1050): starts now. */
    CHECK_INT(placed(&snap, 9, 0, 50, 2), 1);
    /* Long (ends at 1500): would delay job 1, waits. */
    CHECK_INT(placed(&snap, 9, 0, 500, 2), 0);
    /* No walltime: runs for ever, waits too. */
    CHECK_INT(placed(&snap, 9, 0, 0, 2), 0);
    /* The holder itself, and a job ranked above it, are not held back. */
    CHECK_INT(placed(&snap, 1, 0, 500, 2), 1);
    CHECK_INT(placed(&snap, 9, 5, 500, 2), 1);
    /* Held for a high-priority queue's job: a -p 5 job of the default
     * queue no longer passes it. */
    snap.nodes[0]->resv[0].queue_priority = 100;
    CHECK_INT(placed(&snap, 9, 5, 500, 2), 0);
    CHECK_INT(placed(&snap, 9, 5, 50, 2), 1); /* ends before: backfills */
    snap.nodes[0]->resv[0].queue_priority = 0;
    /* Job 1 needs only 4 cores at 1100: a long 4-core job fits beside. */
    snap.nodes[0]->resv[0].cores = 4;
    CHECK_INT(placed(&snap, 9, 0, 500, 4), 1);
    snapshot_cleanup(&snap);
}

int
main(void)
{
    RUN(test_binds);
    RUN(test_rank_order);
    RUN(test_binds_rank);
    RUN(test_allows);
    RUN(test_earliest);
    RUN(test_plan_respects_reservations);
    return unit_done();
}
