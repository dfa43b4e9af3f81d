/* Unit tests: sched/plan.c placement decisions. */
#include <stdlib.h>
#include <string.h>

#include "lib/cpuset.h"
#include "lib/mem.h"
#include "sched/sched.h"
#include "unit.h"

static void
add_node(struct sched_snapshot *s, const char *name, int cores, int free,
         int64_t mem, int64_t free_mem)
{
    struct sched_node *n;

    s->nodes = dv_xrealloc(s->nodes, sizeof(*n) * (size_t)(s->n + 1));
    n = &s->nodes[s->n];
    memset(n, 0, sizeof(*n));
    n->id = s->n + 1;
    n->name = dv_xstrdup(name);
    n->ready = 1;
    n->total_cores = cores;
    n->free_cores = free;
    n->total_mem = mem;
    n->free_mem = free_mem;
    n->free_cpuset = dv_cpuset_first_n(free);
    s->n++;
}

static void
job_select(struct sched_job *job, const char *select, enum dv_place place)
{
    struct dv_err err;

    memset(job, 0, sizeof(*job));
    job->id = 1;
    CHECK_INT(dv_select_parse(select, &job->req, &err), 0);
    job->req.place = place;
}

static void
test_best_fit(void)
{
    struct sched_snapshot s = {0};
    struct sched_job job;
    struct plan p;
    char why[256];

    add_node(&s, "big", 16, 16, 64LL << 30, 64LL << 30);
    add_node(&s, "half", 8, 3, 32LL << 30, 32LL << 30);
    add_node(&s, "full", 8, 0, 32LL << 30, 32LL << 30);
    job_select(&job, "1:ncpus=2", DV_PLACE_PACK);
    CHECK_INT(plan_job(&s, &job, &p, why, sizeof(why)), PLAN_PLACED);
    CHECK_INT(p.n, 1);
    CHECK_INT(p.allocs[0].node, 1); /* the fullest node that fits */
    plan_cleanup(&p);
    job_select(&job, "1:ncpus=4", DV_PLACE_PACK);
    CHECK_INT(plan_job(&s, &job, &p, why, sizeof(why)), PLAN_PLACED);
    CHECK_INT(p.allocs[0].node, 0);
    plan_cleanup(&p);
    snapshot_cleanup(&s);
}

static void
test_memory_and_no_fit(void)
{
    struct sched_snapshot s = {0};
    struct sched_job job;
    struct plan p;
    char why[256];

    add_node(&s, "n1", 4, 4, 1LL << 30, 1LL << 30);
    job_select(&job, "1:ncpus=1:mem=2gb", DV_PLACE_PACK);
    CHECK_INT(plan_job(&s, &job, &p, why, sizeof(why)), PLAN_NEVER_FIT);
    CHECK(strstr(why, "Can Never Run: Insufficient amount of resource: mem") !=
          NULL);
    job_select(&job, "1:ncpus=8", DV_PLACE_PACK);
    CHECK_INT(plan_job(&s, &job, &p, why, sizeof(why)), PLAN_NEVER_FIT);
    CHECK_STR(why, "Can Never Run: Insufficient amount of resource: ncpus "
                   "(R: 8 A: 4 T: 4)");
    s.nodes[0].free_cores = 1;
    job_select(&job, "1:ncpus=2", DV_PLACE_PACK);
    CHECK_INT(plan_job(&s, &job, &p, why, sizeof(why)), PLAN_NO_FIT);
    CHECK_STR(why, "Not Running: Insufficient amount of resource: ncpus "
                   "(R: 2 A: 1 T: 4)");
    s.nodes[0].ready = 0;
    s.nodes[0].free_cores = 4;
    job_select(&job, "1:ncpus=1", DV_PLACE_PACK);
    CHECK(plan_job(&s, &job, &p, why, sizeof(why)) != PLAN_PLACED);
    snapshot_cleanup(&s);
}

static void
test_chunks(void)
{
    struct sched_snapshot s = {0};
    struct sched_job job;
    struct plan p;
    char why[256];

    add_node(&s, "a", 4, 4, 0, 0);
    add_node(&s, "b", 4, 4, 0, 0);
    add_node(&s, "c", 4, 4, 0, 0);
    /* scatter: one chunk per host */
    job_select(&job, "3:ncpus=1", DV_PLACE_SCATTER);
    CHECK_INT(plan_job(&s, &job, &p, why, sizeof(why)), PLAN_PLACED);
    CHECK_INT(p.n, 3);
    CHECK(p.allocs[0].node != p.allocs[1].node &&
          p.allocs[1].node != p.allocs[2].node &&
          p.allocs[0].node != p.allocs[2].node);
    CHECK_INT(p.allocs[2].chunk_index, 2);
    plan_cleanup(&p);
    /* free: chunks fill a node before opening the next */
    job_select(&job, "3:ncpus=2", DV_PLACE_FREE);
    CHECK_INT(plan_job(&s, &job, &p, why, sizeof(why)), PLAN_PLACED);
    CHECK_INT(p.allocs[0].node, p.allocs[1].node);
    CHECK(p.allocs[2].node != p.allocs[0].node);
    plan_cleanup(&p);
    /* pack: all on one node or nothing */
    job_select(&job, "2:ncpus=3", DV_PLACE_PACK);
    CHECK_INT(plan_job(&s, &job, &p, why, sizeof(why)), PLAN_NEVER_FIT);
    job_select(&job, "4:ncpus=1", DV_PLACE_SCATTER);
    CHECK_INT(plan_job(&s, &job, &p, why, sizeof(why)), PLAN_NEVER_FIT);
    snapshot_cleanup(&s);
}

static void
test_exec_host(void)
{
    struct sched_snapshot s = {0};
    struct plan p = {0};
    struct plan_alloc a[2] = {{.node = 0, .ncpus = 2}, {.node = 1, .ncpus = 1}};
    char *cpusets[] = {(char *)"4-5", (char *)"0"};
    char *eh;

    add_node(&s, "n1", 8, 8, 0, 0);
    add_node(&s, "n2", 8, 8, 0, 0);
    p.allocs = a;
    p.n = 2;
    eh = plan_exec_host(&s, &p, cpusets);
    CHECK_STR(eh, "n1/4*2+n2/0*1");
    free(eh);
    snapshot_cleanup(&s);
}

int
main(void)
{
    RUN(test_best_fit);
    RUN(test_memory_and_no_fit);
    RUN(test_chunks);
    RUN(test_exec_host);
    return unit_done();
}
