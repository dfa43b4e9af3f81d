/*
 * Backfill (EASY, Lifka 1995; Mu'alem and Feitelson 2001) as pure
 * functions of a snapshot, shared by the planner (place.c), the commit
 * check (commit.c) and the worker that makes reservations (worker.c):
 *
 * - which reservations hold capacity against a job (rank: a reservation
 *   of kind backfill or fifo binds jobs ranked lower in the order of work
 *   that leasing uses — queue priority, job priority, fair share, age
 *   (sched_rank_cmp); a preemption reservation binds jobs of lower or
 *   equal job priority, as in issue 3);
 * - whether a job may use a node's capacity now without delaying the
 *   reservations on it: held from their start on, they let a job in when
 *   it ends (now + walltime) before the start, or when it fits beside them
 *   at the start given what the running work still holds then;
 * - the earliest time a waiting job fits, from the estimated ends of the
 *   running allocations (start + walltime) and the reservations of jobs
 *   ranked above it, and the nodes and amounts it would take.
 *
 * A job without walltime runs for ever as far as backfill can tell: it
 * never ends before a reservation, and running work without walltime never
 * frees what it holds in the estimate.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"
#include "sched/sched.h"

/* Candidate start times tried at most (an even sample beyond). */
#define BACKFILL_MAX_TIMES 256

enum resv_kind
sched_resv_kind(const char *text)
{
    if (text != NULL && strcmp(text, "backfill") == 0) {
        return RESV_BACKFILL;
    }
    if (text != NULL && strcmp(text, "fifo") == 0) {
        return RESV_FIFO;
    }
    return RESV_PREEMPTION;
}

int
sched_rank_cmp(const struct sched_rank *a, const struct sched_rank *b)
{
    if (a->queue_priority != b->queue_priority) {
        return a->queue_priority > b->queue_priority ? -1 : 1;
    }
    if (a->priority != b->priority) {
        return a->priority > b->priority ? -1 : 1;
    }
    if (a->fairshare != b->fairshare) {
        return a->fairshare < b->fairshare ? -1 : 1;
    }
    return a->id < b->id ? -1 : a->id > b->id;
}

struct sched_rank
sched_job_rank(const struct sched_job *job)
{
    struct sched_rank r = {.queue_priority = job->queue_priority,
                           .priority = job->priority,
                           .fairshare = job->fairshare,
                           .id = job->id};

    return r;
}

int
backfill_binds(const struct snap_resv *r, const struct sched_rank *job)
{
    struct sched_rank holder = {.queue_priority = r->queue_priority,
                                .priority = r->priority,
                                .fairshare = r->fairshare,
                                .id = r->job_id};

    if (r->job_id == job->id) {
        return 0;
    }
    if (r->kind == RESV_PREEMPTION) {
        return r->priority >= job->priority;
    }
    return sched_rank_cmp(&holder, job) < 0;
}

static int
immediate(const struct snap_resv *r, double now)
{
    return r->kind == RESV_PREEMPTION || r->start <= now;
}

static void
amount_add(struct bf_amount *a, int cores, int64_t mem, int gpus)
{
    a->cores += cores;
    a->mem += mem;
    a->gpus += gpus;
}

static int
amount_within(const struct bf_amount *a, const struct bf_amount *limit)
{
    return a->cores <= limit->cores && a->mem <= limit->mem &&
           a->gpus <= limit->gpus;
}

int
backfill_allows(const struct snap_resv *resv, int nresv,
                const struct bf_amount *total, const struct bf_amount *free,
                const struct bf_amount *use, const struct sched_rank *job,
                double now, double end)
{
    struct bf_amount held = {0, 0, 0}, avail;

    for (int i = 0; i < nresv; i++) {
        const struct snap_resv *r = &resv[i];
        if (!backfill_binds(r, job)) {
            continue;
        }
        if (r->kind == RESV_FIFO) {
            return 0; /* strict order: nothing ranked lower starts */
        }
        if (immediate(r, now)) {
            amount_add(&held, r->cores, r->mem, r->gpus);
        }
    }
    avail.cores = free->cores - held.cores;
    avail.mem = free->mem - held.mem;
    avail.gpus = free->gpus - held.gpus;
    if (!amount_within(use, &avail)) {
        return 0;
    }
    /* Reservations that start later: the job must be gone by then, or fit
     * beside them and everything still running at their start. */
    for (int i = 0; i < nresv; i++) {
        const struct snap_resv *r = &resv[i];
        struct bf_amount at;
        if (!backfill_binds(r, job) || immediate(r, now) ||
            end <= r->start) {
            continue;
        }
        at.cores = r->busy_cores + use->cores;
        at.mem = r->busy_mem + use->mem;
        at.gpus = r->busy_gpus + use->gpus;
        for (int k = 0; k < nresv; k++) {
            const struct snap_resv *o = &resv[k];
            if (backfill_binds(o, job) &&
                (immediate(o, now) || o->start <= r->start)) {
                amount_add(&at, o->cores, o->mem, o->gpus);
            }
        }
        if (!amount_within(&at, total)) {
            return 0;
        }
    }
    return 1;
}

/* What node n has left at time t for a job of rank job:
 * its totals minus the running work still there at t (run: the node's
 * own allocations) and the reservations binding the job that have begun
 * by t (held from their start on). */
static struct bf_amount
left_at(const struct snap_node *n, const struct bf_running *run, int nrun,
        const struct sched_rank *job, double now, double t)
{
    struct bf_amount a = {n->total_cores, n->total_mem, n->total_gpus};

    for (int i = 0; i < nrun; i++) {
        if (run[i].end > t) {
            amount_add(&a, -run[i].cores, -run[i].mem, -run[i].gpus);
        }
    }
    for (int i = 0; i < n->nresv; i++) {
        const struct snap_resv *r = &n->resv[i];
        if (backfill_binds(r, job) &&
            (immediate(r, now) || r->start <= t)) {
            amount_add(&a, -r->cores, -r->mem, -r->gpus);
        }
    }
    return a;
}

/* The least n has left over [t, until): running work only ends, so only
 * the starts of reservations inside the span can lower it. */
static struct bf_amount
left_over(const struct snap_node *n, const struct bf_running *run, int nrun,
          const struct sched_rank *job, double now, double t, double until)
{
    struct bf_amount least = left_at(n, run, nrun, job, now, t);

    for (int i = 0; i < n->nresv; i++) {
        const struct snap_resv *r = &n->resv[i];
        struct bf_amount a;
        if (!backfill_binds(r, job) || immediate(r, now) ||
            r->start <= t || r->start >= until) {
            continue;
        }
        a = left_at(n, run, nrun, job, now, r->start);
        least.cores = a.cores < least.cores ? a.cores : least.cores;
        least.mem = a.mem < least.mem ? a.mem : least.mem;
        least.gpus = a.gpus < least.gpus ? a.gpus : least.gpus;
    }
    return least;
}

static int
run_cmp(const void *a, const void *b)
{
    const struct bf_running *x = a, *y = b;

    return x->node_id < y->node_id ? -1 : x->node_id > y->node_id;
}

static int
dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static int
slot_add(struct bf_slot **slots, int *n, int64_t node_id, int cores,
         int64_t mem, int gpus)
{
    for (int i = 0; i < *n; i++) {
        if ((*slots)[i].node_id == node_id) {
            amount_add(&(*slots)[i].a, cores, mem, gpus);
            return i;
        }
    }
    *slots = dv_xrealloc(*slots, sizeof(**slots) * (size_t)(*n + 1));
    (*slots)[*n].node_id = node_id;
    (*slots)[*n].a.cores = cores;
    (*slots)[*n].a.mem = mem;
    (*slots)[*n].a.gpus = gpus;
    return (*n)++;
}

/* Places wants (group indexes) on what the nodes have left (left[k] for
 * snapshot node k; -1 cores: unusable), honouring place=pack|scatter and
 * distinct_hosts. Returns 0 with slots filled, or -1. */
static int
fit_wants(const struct snapshot *snap, const struct sched_job *job,
          const int *groups, int ngroups_wanted, struct bf_amount *left,
          const char *const *ok, struct bf_slot **slots, int *nslots)
{
    char *used = dv_xcalloc((size_t)snap->n + 1, 1);
    char *used_group = dv_xcalloc((size_t)snap->n + 1, 1);
    int rc = -1;

    *nslots = 0;
    if (job->place == PLACE_PACK && job->gang) {
        struct bf_amount need = {0, 0, 0};
        int best = -1;
        for (int w = 0; w < ngroups_wanted; w++) {
            const struct sched_group *g = &job->groups[groups[w]];
            amount_add(&need, g->cores, g->mem, g->gpus);
        }
        for (int k = 0; k < snap->n; k++) {
            int all = 1;
            for (int w = 0; w < ngroups_wanted && all; w++) {
                all = ok[groups[w]][k];
            }
            if (all && amount_within(&need, &left[k]) &&
                (best < 0 || left[k].cores < left[best].cores)) {
                best = k;
            }
        }
        if (best >= 0) {
            slot_add(slots, nslots, snap->nodes[best]->id, need.cores,
                     need.mem, need.gpus);
            rc = 0;
        }
        goto out;
    }
    for (int w = 0; w < ngroups_wanted; w++) {
        const struct sched_group *g = &job->groups[groups[w]];
        struct bf_amount need = {g->cores, g->mem, g->gpus};
        int best = -1;
        if (w == 0 || groups[w] != groups[w - 1]) {
            memset(used_group, 0, (size_t)snap->n);
        }
        for (int k = 0; k < snap->n; k++) {
            if (!ok[groups[w]][k] || !amount_within(&need, &left[k]) ||
                (job->place == PLACE_SCATTER && used[k]) ||
                (g->distinct_hosts && used_group[k])) {
                continue;
            }
            /* best fit: the node left fullest */
            if (best < 0 || left[k].cores < left[best].cores) {
                best = k;
            }
        }
        if (best < 0) {
            goto out;
        }
        amount_add(&left[best], -need.cores, -need.mem, -need.gpus);
        used[best] = 1;
        used_group[best] = 1;
        slot_add(slots, nslots, snap->nodes[best]->id, need.cores, need.mem,
                 need.gpus);
    }
    rc = 0;
out:
    free(used);
    free(used_group);
    return rc;
}

double
backfill_earliest(const struct snapshot *snap, const struct sched_job *job,
                  const int *groups, int nwanted, const struct bf_running *run,
                  int nrun, double now, struct bf_slot **slots, int *nslots)
{
    int ntimes = 0;
    double *times = dv_xcalloc((size_t)nrun + 2, sizeof(double));
    double found = -1;
    double span = job->walltime > 0 ? job->walltime : INFINITY;
    char **ok = dv_xcalloc((size_t)job->ngroups + 1, sizeof(char *));
    struct bf_amount *left = dv_xcalloc((size_t)snap->n + 1, sizeof(*left));
    struct bf_running *byn = dv_xcalloc((size_t)nrun + 1, sizeof(*byn));
    int *first = dv_xcalloc((size_t)snap->n + 1, sizeof(int));
    int *count = dv_xcalloc((size_t)snap->n + 1, sizeof(int));
    struct sched_rank rank = sched_job_rank(job);

    *slots = NULL;
    *nslots = 0;
    for (int g = 0; g < job->ngroups; g++) {
        ok[g] = dv_xcalloc((size_t)snap->n + 1, 1);
        for (int k = 0; k < snap->n; k++) {
            ok[g][k] = feasible_static(job, &job->groups[g], snap->nodes[k]);
        }
    }
    /* The running work grouped by node (both sorted by id). */
    memcpy(byn, run, sizeof(*run) * (size_t)nrun);
    qsort(byn, (size_t)nrun, sizeof(*byn), run_cmp);
    for (int k = 0, i = 0; k < snap->n; k++) {
        while (i < nrun && byn[i].node_id < snap->nodes[k]->id) {
            i++;
        }
        first[k] = i;
        while (i < nrun && byn[i].node_id == snap->nodes[k]->id) {
            i++;
        }
        count[k] = i - first[k];
    }
    /* Candidate starts: now and every estimated end of running work
     * (capacity only grows at those instants); on a big cluster an even
     * sample of them, the last always kept (a later start found this way
     * is still one where the job fits). */
    times[ntimes++] = now;
    for (int i = 0; i < nrun; i++) {
        if (isfinite(run[i].end) && run[i].end > now) {
            times[ntimes++] = run[i].end;
        }
    }
    qsort(times, (size_t)ntimes, sizeof(double), dbl_cmp);
    if (ntimes > BACKFILL_MAX_TIMES) {
        int step = (ntimes + BACKFILL_MAX_TIMES - 1) / BACKFILL_MAX_TIMES;
        int kept = 0;
        for (int t = 0; t < ntimes; t += step) {
            times[kept++] = times[t];
        }
        times[kept++] = times[ntimes - 1];
        ntimes = kept;
    }
    for (int t = 0; t < ntimes && found < 0; t++) {
        if (t > 0 && times[t] == times[t - 1]) {
            continue;
        }
        for (int k = 0; k < snap->n; k++) {
            const struct snap_node *n = snap->nodes[k];
            if (!n->ready) {
                left[k].cores = -1;
                left[k].mem = -1;
                left[k].gpus = -1;
                continue;
            }
            left[k] = left_over(n, byn + first[k], count[k], &rank, now,
                                times[t], times[t] + span);
        }
        free(*slots);
        *slots = NULL;
        if (fit_wants(snap, job, groups, nwanted, left,
                      (const char *const *)ok, slots, nslots) == 0) {
            found = times[t];
        }
    }
    if (found < 0) {
        free(*slots);
        *slots = NULL;
        *nslots = 0;
    }
    for (int g = 0; g < job->ngroups; g++) {
        free(ok[g]);
    }
    free(ok);
    free(left);
    free(times);
    free(byn);
    free(first);
    free(count);
    return found;
}
