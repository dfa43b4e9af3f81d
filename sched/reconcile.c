/*
 * Reconciliation: from a job's groups and its allocations, what must be
 * placed and what must stop. PBS jobs are placed whole, once per run, when
 * queued. Native jobs keep `count` instances per group: batch instances
 * that completed are done, failed ones are replaced while the group's
 * reschedule policy allows, lost ones always; service instances are
 * replaced whenever they end; system jobs keep one instance on every ready
 * node that passes the group's constraints.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"
#include "sched/sched.h"

void
reconcile_cleanup(struct reconcile_result *r)
{
    free(r->wants);
    free(r->stops);
    memset(r, 0, sizeof(*r));
}

static void
add_want(struct reconcile_result *r, int *cap, struct sched_want w)
{
    if (r->nwants == *cap) {
        *cap = *cap == 0 ? 16 : *cap * 2;
        r->wants = dv_xrealloc(r->wants, sizeof(*r->wants) * (size_t)*cap);
    }
    r->wants[r->nwants++] = w;
}

static void
add_stop(struct reconcile_result *r, int *cap, const struct sched_alloc *a,
         const char *why)
{
    if (r->nstops == *cap) {
        *cap = *cap == 0 ? 8 : *cap * 2;
        r->stops = dv_xrealloc(r->stops, sizeof(*r->stops) * (size_t)*cap);
    }
    r->stops[r->nstops++] =
        (struct sched_stop){.alloc_id = a->id, .node_id = a->node_id, .why = why};
}

static void
reconcile_pbs(const struct sched_job *job, const struct sched_alloc *allocs,
              int nallocs, struct reconcile_result *out, int *wcap)
{
    if (strcmp(job->state, "queued") != 0) {
        return;
    }
    for (int i = 0; i < nallocs; i++) {
        if (allocs[i].active) {
            return; /* this run is already placed */
        }
    }
    for (int g = 0; g < job->ngroups; g++) {
        for (int i = 0; i < job->groups[g].count; i++) {
            add_want(out, wcap,
                     (struct sched_want){.group = g, .instance = i});
        }
    }
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static void
reconcile_system(const struct sched_job *job, int g,
                 const struct sched_alloc *allocs, int nallocs,
                 const struct snapshot *snap, struct reconcile_result *out,
                 int *wcap, int *scap)
{
    const struct sched_group *gr = &job->groups[g];
    int64_t *have = dv_xcalloc((size_t)nallocs + 1, sizeof(int64_t));
    int nhave = 0;

    /* Nodes that already run an instance, sorted for lookups. */
    for (int i = 0; i < nallocs; i++) {
        if (allocs[i].group == g && allocs[i].active) {
            have[nhave++] = allocs[i].node_id;
        }
    }
    qsort(have, (size_t)nhave, sizeof(*have), cmp_i64);
    for (int k = 0; k < snap->n; k++) {
        const struct snap_node *n = snap->nodes[k];
        if (!feasible_static(job, gr, n)) {
            continue;
        }
        if (bsearch(&n->id, have, (size_t)nhave, sizeof(*have), cmp_i64) ==
            NULL) {
            add_want(out, wcap,
                     (struct sched_want){.group = g, .node_id = n->id});
        }
    }
    for (int i = 0; i < nallocs; i++) {
        const struct snap_node *n;
        if (allocs[i].group != g || !allocs[i].active) {
            continue;
        }
        n = snapshot_find(snap, allocs[i].node_id);
        if (n != NULL && !n->ready) {
            continue; /* a down node's allocations are lost by qmgr */
        }
        if (n == NULL || !feasible_static(job, gr, n)) {
            add_stop(out, scap, &allocs[i], "node no longer eligible");
        }
    }
    free(have);
}

/* The newest allocation of each instance of group g (NULL: none). */
static void
latest_per_instance(const struct sched_alloc *allocs, int nallocs, int g,
                    const struct sched_alloc **latest, int count)
{
    for (int i = 0; i < nallocs; i++) {
        const struct sched_alloc *a = &allocs[i];
        if (a->group != g || a->instance < 0 || a->instance >= count) {
            continue;
        }
        if (latest[a->instance] == NULL || latest[a->instance]->id < a->id) {
            latest[a->instance] = a;
        }
    }
}

static void
reconcile_group(const struct sched_job *job, int g,
                const struct sched_alloc *allocs, int nallocs,
                struct reconcile_result *out, int *wcap, int *scap)
{
    const struct sched_group *gr = &job->groups[g];
    const struct sched_alloc **latest =
        dv_xcalloc((size_t)gr->count + 1, sizeof(*latest));
    int service = strcmp(job->type, "service") == 0;

    latest_per_instance(allocs, nallocs, g, latest, gr->count);
    for (int i = 0; i < gr->count; i++) {
        const struct sched_alloc *a = latest[i];
        struct sched_want w = {.group = g, .instance = i};

        if (a == NULL) {
            add_want(out, wcap, w);
            continue;
        }
        if (a->active) {
            continue;
        }
        w.previous_alloc = a->id;
        w.reschedule_count = a->reschedule_count;
        if (a->stopping || a->lost) {
            /* Stopped by the servers (preempted: noded reports that as
             * complete) or lost with its node: not the job's fault, and
             * not done. qmgr's lifecycle counts an instance completed
             * only when it completed with desired_status run. */
            add_want(out, wcap, w);
        } else if (a->complete && !service) {
            continue; /* a batch instance that finished */
        } else if (gr->resched_unlimited ||
                   a->reschedule_count < gr->resched_attempts) {
            w.reschedule_count = a->reschedule_count + 1;
            add_want(out, wcap, w);
        }
    }
    /* Instances beyond count (the count went down). */
    for (int i = 0; i < nallocs; i++) {
        if (allocs[i].group == g && allocs[i].active &&
            allocs[i].instance >= gr->count) {
            add_stop(out, scap, &allocs[i], "count reduced");
        }
    }
    free(latest);
}

void
reconcile(const struct sched_job *job, const struct sched_alloc *allocs,
          int nallocs, const struct snapshot *snap,
          struct reconcile_result *out)
{
    int wcap = 0, scap = 0;

    memset(out, 0, sizeof(*out));
    if (job->array != NULL) {
        reconcile_array(job, out);
        return;
    }
    if (job->pbs) {
        reconcile_pbs(job, allocs, nallocs, out, &wcap);
        return;
    }
    if (strcmp(job->state, "queued") != 0 &&
        strcmp(job->state, "running") != 0) {
        return;
    }
    for (int g = 0; g < job->ngroups; g++) {
        if (strcmp(job->type, "system") == 0) {
            reconcile_system(job, g, allocs, nallocs, snap, out, &wcap, &scap);
        } else {
            reconcile_group(job, g, allocs, nallocs, out, &wcap, &scap);
        }
    }
}
