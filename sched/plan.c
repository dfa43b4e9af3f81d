/*
 * Placement decisions on a snapshot of the nodes: best-fit bin packing of
 * each chunk, honouring place=pack|scatter|free. No I/O, so that the rules
 * are unit-tested directly (tests/unit/test-sched-plan.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cpuset.h"
#include "lib/mem.h"
#include "sched/sched.h"

void
plan_cleanup(struct plan *plan)
{
    free(plan->allocs);
    plan->allocs = NULL;
    plan->n = 0;
}

void
snapshot_cleanup(struct sched_snapshot *snap)
{
    for (int i = 0; i < snap->n; i++) {
        free(snap->nodes[i].name);
        free(snap->nodes[i].free_cpuset);
    }
    free(snap->nodes);
    memset(snap, 0, sizeof(*snap));
}

void
sched_job_cleanup(struct sched_job *job)
{
    free(job->name);
    free(job->state);
    memset(job, 0, sizeof(*job));
}

/* Index of the ready node that fits (ncpus, mem) with the least room left,
 * skipping nodes marked in used (may be NULL); -1 when none fits. */
static int
best_fit(const struct sched_snapshot *snap, const int *free_cores,
         const int64_t *free_mem, const char *used, int ncpus, int64_t mem)
{
    int best = -1;

    for (int i = 0; i < snap->n; i++) {
        if (!snap->nodes[i].ready || (used != NULL && used[i]) ||
            free_cores[i] < ncpus || free_mem[i] < mem) {
            continue;
        }
        if (best < 0 || free_cores[i] < free_cores[best] ||
            (free_cores[i] == free_cores[best] &&
             free_mem[i] < free_mem[best])) {
            best = i;
        }
    }
    return best;
}

static void
explain(const struct sched_snapshot *snap, const struct sched_job *job,
        int never, char *why, size_t whylen)
{
    long long free_cores = 0, total_cores = 0;
    long long free_mem = 0, total_mem = 0;
    int mem_short = 0;

    for (int i = 0; i < snap->n; i++) {
        if (!snap->nodes[i].ready) {
            continue;
        }
        free_cores += snap->nodes[i].free_cores;
        total_cores += snap->nodes[i].total_cores;
        free_mem += snap->nodes[i].free_mem;
        total_mem += snap->nodes[i].total_mem;
    }
    /* Name memory when cores would do but memory would not. */
    for (int k = 0; k < job->req.nkinds; k++) {
        const struct dv_chunk *c = &job->req.kinds[k];
        int cores_ok = 0, mem_ok = 0;
        for (int i = 0; i < snap->n; i++) {
            const struct sched_node *n = &snap->nodes[i];
            int cap_cores = never ? n->total_cores : n->free_cores;
            int64_t cap_mem = never ? n->total_mem : n->free_mem;
            if (!n->ready) {
                continue;
            }
            cores_ok |= cap_cores >= c->ncpus;
            mem_ok |= cap_cores >= c->ncpus && cap_mem >= c->mem;
        }
        if (cores_ok && !mem_ok) {
            mem_short = 1;
        }
    }
    if (mem_short) {
        char r[32], a[32], t[32];
        dv_format_size(job->req.mem, r, sizeof(r));
        dv_format_size(free_mem, a, sizeof(a));
        dv_format_size(total_mem, t, sizeof(t));
        snprintf(why, whylen,
                 "%s: Insufficient amount of resource: mem (R: %s A: %s T: "
                 "%s)",
                 never ? "Can Never Run" : "Not Running", r, a, t);
    } else {
        snprintf(why, whylen,
                 "%s: Insufficient amount of resource: ncpus (R: %d A: %lld "
                 "T: %lld)",
                 never ? "Can Never Run" : "Not Running", job->req.ncpus,
                 free_cores, total_cores);
    }
}

/* Could the job fit an empty cluster of the ready nodes? */
static int
fits_totals(const struct sched_snapshot *snap, const struct sched_job *job)
{
    const struct dv_resreq *rr = &job->req;

    if (rr->place == DV_PLACE_PACK) {
        for (int i = 0; i < snap->n; i++) {
            if (snap->nodes[i].ready &&
                snap->nodes[i].total_cores >= rr->ncpus &&
                snap->nodes[i].total_mem >= rr->mem) {
                return 1;
            }
        }
        return 0;
    }
    for (int k = 0; k < rr->nkinds; k++) {
        int hosts = 0;
        for (int i = 0; i < snap->n; i++) {
            if (snap->nodes[i].ready &&
                snap->nodes[i].total_cores >= rr->kinds[k].ncpus &&
                snap->nodes[i].total_mem >= rr->kinds[k].mem) {
                hosts++;
            }
        }
        if (hosts == 0 ||
            (rr->place == DV_PLACE_SCATTER && hosts < rr->kinds[k].count)) {
            return 0;
        }
    }
    return 1;
}

enum plan_result
plan_job(const struct sched_snapshot *snap, const struct sched_job *job,
         struct plan *plan, char *why, size_t whylen)
{
    const struct dv_resreq *rr = &job->req;
    int *free_cores = dv_xcalloc((size_t)snap->n + 1, sizeof(int));
    int64_t *free_mem = dv_xcalloc((size_t)snap->n + 1, sizeof(int64_t));
    char *used = dv_xcalloc((size_t)snap->n + 1, 1);
    enum plan_result result = PLAN_NO_FIT;
    int chunk = 0, pack_node = -1;

    plan->allocs = dv_xcalloc((size_t)rr->nodect + 1, sizeof(*plan->allocs));
    plan->n = 0;
    for (int i = 0; i < snap->n; i++) {
        free_cores[i] = snap->nodes[i].free_cores;
        free_mem[i] = snap->nodes[i].free_mem;
    }
    if (rr->place == DV_PLACE_PACK) {
        pack_node = best_fit(snap, free_cores, free_mem, NULL, rr->ncpus,
                             rr->mem);
        if (pack_node < 0) {
            goto out;
        }
    }
    for (int k = 0; k < rr->nkinds; k++) {
        const struct dv_chunk *c = &rr->kinds[k];
        for (int j = 0; j < c->count; j++, chunk++) {
            int node = pack_node;
            if (node < 0) {
                node = best_fit(snap, free_cores, free_mem,
                                rr->place == DV_PLACE_SCATTER ? used : NULL,
                                c->ncpus, c->mem);
            }
            if (node < 0) {
                goto out;
            }
            free_cores[node] -= c->ncpus;
            free_mem[node] -= c->mem;
            used[node] = 1;
            plan->allocs[plan->n++] = (struct plan_alloc){
                .node = node,
                .chunk_index = chunk,
                .ncpus = c->ncpus,
                .mem = c->mem,
            };
        }
    }
    result = PLAN_PLACED;
out:
    if (result != PLAN_PLACED) {
        if (!fits_totals(snap, job)) {
            result = PLAN_NEVER_FIT;
        }
        explain(snap, job, result == PLAN_NEVER_FIT, why, whylen);
        plan_cleanup(plan);
    }
    free(free_cores);
    free(free_mem);
    free(used);
    return result;
}

char *
plan_exec_host(const struct sched_snapshot *snap, const struct plan *plan,
               char *const *cpusets)
{
    struct dv_buf b;

    dv_buf_init(&b);
    for (int i = 0; i < plan->n; i++) {
        int first = 0;
        dv_cpuset_list(cpusets[i], &first, 1);
        dv_buf_printf(&b, "%s%s/%d*%d", i > 0 ? "+" : "",
                      snap->nodes[plan->allocs[i].node].name, first,
                      plan->allocs[i].ncpus);
    }
    return dv_buf_steal(&b);
}
