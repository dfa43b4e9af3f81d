/*
 * Choosing nodes. For each group the static-feasible nodes are found once
 * per plan. Each wanted instance then scores candidates and takes the best:
 * on a cluster with at most --sample-threshold feasible nodes, every one
 * that fits; on a bigger one, the nodes this plan already uses for the
 * group plus the next --sample nodes that fit from a per-plan random order
 * of the feasible list (so the cost of one placement does not grow with the
 * cluster, and parallel planners start from different nodes). Scores:
 * best-fit bin packing (fill nodes before opening new ones), affinities
 * and spread, averaged. Gang jobs (PBS chunks) place all or nothing, with
 * place=pack (one node), scatter (distinct nodes) or free.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/mem.h"
#include "lib/resources.h"
#include "sched/sched.h"

/* Per-plan state that does not outlive plan_job. */
struct place_ctx {
    struct planner *p;
    const struct snapshot *snap;
    const struct sched_job *job;
    struct plan *plan;
    struct plan_node **by_index; /* overlay per snapshot index, lazily */
    int **feasible;              /* per group: snapshot indexes */
    int *nfeasible;
    int *cursor;
    /* per group, per snapshot index: instances of this job there */
    int **on_node;
    /* per group, per spread stanza: instances per attribute value */
    struct spread_table **spread;
    hwloc_bitmap_t scratch;
    double now; /* Drover time of the plan */
    double end; /* when the job would end if placed now (INFINITY: never) */
};

/* Instances of a group per value of one spread attribute, over the values
 * its feasible nodes have. */
struct spread_table {
    const char **values; /* borrowed from snapshot nodes */
    int *counts;
    int n;
};

static int
spread_slot(struct spread_table *t, const char *value, int add)
{
    for (int i = 0; i < t->n; i++) {
        if (strcmp(t->values[i], value) == 0) {
            return i;
        }
    }
    if (!add) {
        return -1;
    }
    t->values = dv_xrealloc(t->values, sizeof(*t->values) * (size_t)(t->n + 1));
    t->counts = dv_xrealloc(t->counts, sizeof(*t->counts) * (size_t)(t->n + 1));
    t->values[t->n] = value;
    t->counts[t->n] = 0;
    return t->n++;
}

/* One more instance of group g on node n. */
static void
spread_count(struct place_ctx *c, int g, const struct snap_node *n)
{
    const struct sched_group *gr = &c->job->groups[g];

    for (int i = 0; i < gr->nspreads; i++) {
        const char *v = snap_node_attr(n, gr->spreads[i].attr);
        if (v != NULL) {
            c->spread[g][i].counts[spread_slot(&c->spread[g][i], v, 1)]++;
        }
    }
}

static struct plan_node *
overlay(struct place_ctx *c, int idx)
{
    struct plan_node *pn = c->by_index[idx];
    struct snap_node *n = c->snap->nodes[idx];

    if (pn != NULL) {
        return pn;
    }
    pn = dv_xcalloc(1, sizeof(*pn));
    pn->node = snap_node_clone(n);
    pn->free_cores = hwloc_bitmap_dup(n->free_cores);
    pn->nfree_cores = n->nfree_cores;
    pn->free_mem = n->free_mem;
    pn->free_gpus = hwloc_bitmap_dup(n->free_gpus);
    pn->free_disk = n->free_disk;
    c->by_index[idx] = pn;
    c->plan->nodes = dv_xrealloc(c->plan->nodes, sizeof(*c->plan->nodes) *
                                                     (size_t)(c->plan->nnodes + 1));
    c->plan->nodes[c->plan->nnodes++] = pn;
    return pn;
}

/* Free capacity of snapshot node idx as this plan sees it. */
static void
view(const struct place_ctx *c, int idx, int *cores, int64_t *mem, int *gpus,
     int64_t *disk)
{
    const struct plan_node *pn = c->by_index[idx];
    const struct snap_node *n = c->snap->nodes[idx];

    if (pn != NULL) {
        *cores = pn->nfree_cores;
        *mem = pn->free_mem;
        *gpus = hwloc_bitmap_weight(pn->free_gpus);
        *disk = pn->free_disk;
    } else {
        *cores = n->nfree_cores;
        *mem = n->free_mem;
        *gpus = hwloc_bitmap_weight(n->free_gpus);
        *disk = n->free_disk;
    }
}

static int
fits(struct place_ctx *c, int g, int idx, int cores, int64_t mem, int gpus,
     int64_t disk)
{
    const struct sched_group *gr = &c->job->groups[g];
    const struct snap_node *sn = c->snap->nodes[idx];
    int fc, fg;
    int64_t fm, fd;

    /* place=excl: a node held by another job takes nothing; an exclusive
     * job takes only nodes where nothing else runs (its own chunks may
     * share one). */
    if (sn->excl_job != 0 && sn->excl_job != c->job->id) {
        return 0;
    }
    if (c->job->exclusive && !snap_node_empty(sn)) {
        return 0;
    }
    view(c, idx, &fc, &fm, &fg, &fd);
    if (fc < cores || fm < mem || fg < gpus || (disk > 0 && fd < disk)) {
        return 0;
    }
    if (c->snap->nodes[idx]->nresv > 0) {
        /* Reservations (preemption, backfill) on the node: what the plan
         * already put there counts as the job's share. */
        const struct snap_node *n = c->snap->nodes[idx];
        struct bf_amount total = {n->total_cores, n->total_mem,
                                  n->total_gpus};
        struct bf_amount free = {n->nfree_cores, n->free_mem,
                                 hwloc_bitmap_weight(n->free_gpus)};
        struct bf_amount use = {free.cores - fc + cores,
                                free.mem - fm + mem,
                                free.gpus - fg + gpus};
        struct sched_rank rank = sched_job_rank(c->job);
        if (!backfill_allows(n->resv, n->nresv, &total, &free, &use, &rank,
                             c->now, c->end)) {
            return 0;
        }
    }
    if (gr->distinct_hosts && c->on_node[g][idx] > 0) {
        return 0;
    }
    if (gr->numa == NUMA_REQUIRE && cores > 0) {
        const struct plan_node *pn = c->by_index[idx];
        const struct snap_node *n = c->snap->nodes[idx];
        return cores_pick(n, pn != NULL ? pn->free_cores : n->free_cores,
                          cores, NUMA_REQUIRE, c->scratch) == 0;
    }
    return 1;
}

double
score_binpack(const struct plan_node *pn, int cores, int64_t mem)
{
    const struct snap_node *n = pn->node;
    double free_cpu = n->total_cores > 0
                          ? (double)(pn->nfree_cores - cores) / n->total_cores
                          : 0;
    double free_mem =
        n->total_mem > 0 ? (double)(pn->free_mem - mem) / (double)n->total_mem
                         : 0;
    double s = 20.0 - (pow(10.0, free_cpu) + pow(10.0, free_mem));

    if (s < 0) {
        s = 0;
    }
    if (s > 18) {
        s = 18;
    }
    return s / 18.0;
}

static double
score_affinity(const struct sched_group *g, const struct snap_node *n)
{
    double sum = 0, total = 0;

    for (int i = 0; i < g->naffinities; i++) {
        const struct sched_rule *r = &g->affinities[i];
        total += fabs((double)r->weight);
        if (rule_matches(r, n)) {
            sum += r->weight;
        }
    }
    return total > 0 ? sum / total : 0;
}

static double
score_spread(struct place_ctx *c, int g, const struct snap_node *n)
{
    const struct sched_group *gr = &c->job->groups[g];
    double sum = 0, total = 0;

    for (int i = 0; i < gr->nspreads; i++) {
        const struct sched_spread *sp = &gr->spreads[i];
        const struct spread_table *t = &c->spread[g][i];
        const char *v = snap_node_attr(n, sp->attr);
        int slot = v != NULL ? spread_slot(&c->spread[g][i], v, 0) : -1;
        int have = slot >= 0 ? t->counts[slot] : 0;
        double s;

        total += sp->weight;
        if (v == NULL) {
            sum -= sp->weight;
            continue;
        }
        if (sp->ntargets > 0) {
            int percent = -1;
            double desired;
            for (int k = 0; k < sp->ntargets; k++) {
                if (strcmp(sp->targets[k].value, v) == 0) {
                    percent = sp->targets[k].percent;
                }
            }
            desired = percent > 0 ? ceil(percent / 100.0 * gr->count) : 0;
            s = desired > 0 ? (desired - have) / desired : -1;
        } else {
            /* Even spread: the least used values score highest. */
            int lo = -1, hi = 0;
            for (int k = 0; k < t->n; k++) {
                if (lo < 0 || t->counts[k] < lo) {
                    lo = t->counts[k];
                }
                if (t->counts[k] > hi) {
                    hi = t->counts[k];
                }
            }
            if (lo < 0) {
                lo = 0;
            }
            s = (double)(lo + 1 - have) / (double)(hi - lo + 1);
        }
        if (s > 1) {
            s = 1;
        }
        if (s < -1) {
            s = -1;
        }
        sum += s * sp->weight;
    }
    return total > 0 ? sum / total : 0;
}

static double
score(struct place_ctx *c, int g, int idx)
{
    const struct sched_group *gr = &c->job->groups[g];
    struct snap_node *n = c->snap->nodes[idx];
    struct plan_node tmp, *pn = c->by_index[idx];
    double s, parts = 1;

    tmp.node = n;
    if (pn == NULL) {
        tmp.nfree_cores = n->nfree_cores;
        tmp.free_mem = n->free_mem;
    } else {
        tmp.nfree_cores = pn->nfree_cores;
        tmp.free_mem = pn->free_mem;
    }
    s = score_binpack(&tmp, gr->cores, gr->mem);
    /* A node another worker of this process is committing to: its row lock
     * would make this plan wait; prefer others while they fit. */
    if (pn == NULL && n->pend_cores != NULL && !hwloc_bitmap_iszero(n->pend_cores)) {
        s -= 0.5;
    }
    if (gr->naffinities > 0) {
        s += score_affinity(gr, n);
        parts++;
    }
    if (gr->nspreads > 0) {
        s += score_spread(c, g, n);
        parts++;
    }
    return s / parts;
}

/* Records one instance of group g on snapshot node idx; -1 when the exact
 * cores or GPUs could not be chosen. */
static int
take(struct place_ctx *c, int want, int g, int idx)
{
    const struct sched_group *gr = &c->job->groups[g];
    struct plan_node *pn = overlay(c, idx);
    struct placement *pl;
    hwloc_bitmap_t cores = hwloc_bitmap_alloc();
    hwloc_bitmap_t gpus = hwloc_bitmap_alloc();

    if (cores_pick(pn->node, pn->free_cores, gr->cores, gr->numa, cores) < 0 ||
        gpus_pick(pn->node, pn->free_gpus, gr->gpus, cores, gpus) < 0) {
        hwloc_bitmap_free(cores);
        hwloc_bitmap_free(gpus);
        return -1;
    }
    hwloc_bitmap_andnot(pn->free_cores, pn->free_cores, cores);
    pn->nfree_cores -= gr->cores;
    pn->free_mem -= gr->mem;
    hwloc_bitmap_andnot(pn->free_gpus, pn->free_gpus, gpus);
    pn->free_disk -= gr->disk;
    pn->used++;
    c->on_node[g][idx]++;
    spread_count(c, g, c->snap->nodes[idx]);
    c->plan->placements =
        dv_xrealloc(c->plan->placements, sizeof(*c->plan->placements) *
                                             (size_t)(c->plan->nplacements + 1));
    pl = &c->plan->placements[c->plan->nplacements++];
    pl->want = want;
    pl->pn = pn;
    pl->cores = cores;
    pl->gpus = gpus;
    pl->mem = gr->mem;
    pl->disk = gr->disk;
    return 0;
}

static int
snap_index_of(const struct snapshot *snap, int64_t id)
{
    int lo = 0, hi = snap->n - 1;

    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (snap->nodes[mid]->id == id) {
            return mid;
        }
        if (snap->nodes[mid]->id < id) {
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return -1;
}

/* The best node for one instance of group g; -1 when none fits. used
 * marks nodes excluded (scatter). */
static int
choose(struct place_ctx *c, int g, const char *used)
{
    const struct sched_group *gr = &c->job->groups[g];
    int nf = c->nfeasible[g], best = -1, seen = 0;
    double best_score = -1e9;
    int exhaustive = nf <= c->p->sample_threshold;
    /* --sample 0: max(2, log2 n), as Nomad scores services. */
    int sample = c->p->sample > 0
                     ? (int)c->p->sample
                     : (int)fmax(2.0, ceil(log2((double)(nf > 1 ? nf : 2))));

    /* Nodes this plan already fills for the group: packing candidates. */
    if (!exhaustive) {
        for (int i = 0; i < c->plan->nnodes; i++) {
            int idx = snap_index_of(c->snap, c->plan->nodes[i]->node->id);
            double s;
            if (idx < 0 || c->on_node[g][idx] == 0 ||
                (used != NULL && used[idx]) ||
                !fits(c, g, idx, gr->cores, gr->mem, gr->gpus, gr->disk)) {
                continue;
            }
            s = score(c, g, idx);
            if (s > best_score) {
                best_score = s;
                best = idx;
            }
        }
    }
    for (int step = 0; step < nf; step++) {
        int pos = exhaustive ? step : (c->cursor[g] + step) % nf;
        int idx = c->feasible[g][pos];
        double s;

        if ((used != NULL && used[idx]) ||
            !fits(c, g, idx, gr->cores, gr->mem, gr->gpus, gr->disk)) {
            continue;
        }
        s = score(c, g, idx);
        if (s > best_score ||
            (s == best_score && best >= 0 &&
             c->snap->nodes[idx]->id < c->snap->nodes[best]->id)) {
            best_score = s;
            best = idx;
        }
        if (!exhaustive && ++seen >= sample) {
            c->cursor[g] = (pos + 1) % nf;
            break;
        }
    }
    return best;
}

static void
shuffle(int *a, int n, unsigned int *seed)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rand_r(seed) % (unsigned)(i + 1));
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

static void
explain(struct place_ctx *c, int g)
{
    const struct sched_group *gr = &c->job->groups[g];
    const struct sched_job *job = c->job;
    long long free_cores = 0, total_cores = 0, free_mem = 0, total_mem = 0;
    int never = c->nfeasible[g] == 0;
    int mem_short = 1, cores_ok = 0, gpu_short = gr->gpus > 0;
    char r[32], a[32], t[32];
    const char *label;

    if (job->gang) {
        /* Could the whole gang fit the ready nodes if they were empty? */
        never = 0;
        for (int k = 0; k < job->ngroups && !never; k++) {
            never = c->nfeasible[k] == 0 ||
                    (job->place == PLACE_SCATTER &&
                     c->nfeasible[k] < job->groups[k].count);
        }
        if (!never && job->place == PLACE_PACK) {
            int64_t cores = 0, mem = 0, gpus = 0;
            int any = 0;
            for (int k = 0; k < job->ngroups; k++) {
                cores += (int64_t)job->groups[k].count * job->groups[k].cores;
                mem += job->groups[k].count * job->groups[k].mem;
                gpus += (int64_t)job->groups[k].count * job->groups[k].gpus;
            }
            for (int i = 0; i < c->snap->n && !any; i++) {
                const struct snap_node *n = c->snap->nodes[i];
                int all = n->total_cores >= cores && n->total_mem >= mem &&
                          n->total_gpus >= gpus;
                for (int k = 0; k < job->ngroups && all; k++) {
                    all = feasible_static(job, &job->groups[k], n);
                }
                any = all;
            }
            never = !any;
        }
    }
    for (int k = 0; k < c->snap->n; k++) {
        const struct snap_node *n = c->snap->nodes[k];
        if (!n->ready) {
            continue;
        }
        free_cores += n->nfree_cores;
        total_cores += n->total_cores;
        free_mem += n->free_mem;
        total_mem += n->total_mem;
        if ((never ? n->total_cores : n->nfree_cores) >= gr->cores) {
            cores_ok = 1;
            if ((never ? n->total_mem : n->free_mem) >= gr->mem) {
                mem_short = 0;
            }
        }
        if ((never ? n->total_gpus : hwloc_bitmap_weight(n->free_gpus)) >=
            gr->gpus) {
            gpu_short = 0;
        }
    }
    c->plan->never = never;
    label = never ? "Can Never Run" : "Not Running";
    if (gpu_short) {
        snprintf(c->plan->why, sizeof(c->plan->why),
                 "%s: Insufficient amount of resource: ngpus (R: %d)", label,
                 gr->gpus);
    } else if (gr->mem > 0 && mem_short && cores_ok) {
        dv_format_size(gr->mem, r, sizeof(r));
        dv_format_size(free_mem, a, sizeof(a));
        dv_format_size(total_mem, t, sizeof(t));
        snprintf(c->plan->why, sizeof(c->plan->why),
                 "%s: Insufficient amount of resource: mem (R: %s A: %s T: "
                 "%s)",
                 label, r, a, t);
    } else {
        int req = gr->cores;
        if (job->gang) {
            req = 0;
            for (int k = 0; k < job->ngroups; k++) {
                req += job->groups[k].count * job->groups[k].cores;
            }
        }
        snprintf(c->plan->why, sizeof(c->plan->why),
                 "%s: Insufficient amount of resource: ncpus (R: %d A: %lld "
                 "T: %lld)",
                 label, req, free_cores, total_cores);
    }
}

static void
unplaced(struct place_ctx *c, int want, int g)
{
    struct plan *plan = c->plan;

    if (plan->nunplaced == 0) {
        explain(c, g);
    }
    plan->unplaced = dv_xrealloc(plan->unplaced, sizeof(*plan->unplaced) *
                                                     (size_t)(plan->nunplaced + 1));
    plan->unplaced[plan->nunplaced++] = want;
}

/* Gang: every want placed, or none. */
static void
place_gang(struct place_ctx *c, const struct reconcile_result *rec)
{
    const struct sched_job *job = c->job;
    char *used = dv_xcalloc((size_t)c->snap->n + 1, 1);
    int ok = 1, pack = -1;

    if (job->place == PLACE_PACK) {
        /* One node that passes every group's checks and holds the sum. */
        int need_c = 0, need_g = 0;
        int64_t need_m = 0, need_d = 0;
        double best = -1e9;
        for (int w = 0; w < rec->nwants; w++) {
            const struct sched_group *gr = &job->groups[rec->wants[w].group];
            need_c += gr->cores;
            need_m += gr->mem;
            need_g += gr->gpus;
            need_d += gr->disk;
        }
        for (int k = 0; k < c->nfeasible[0]; k++) {
            int idx = c->feasible[0][k], all = 1;
            double s;
            for (int g = 1; g < job->ngroups && all; g++) {
                all = feasible_static(job, &job->groups[g],
                                      c->snap->nodes[idx]);
            }
            if (!all || !fits(c, 0, idx, need_c, need_m, need_g, need_d)) {
                continue;
            }
            s = score(c, 0, idx);
            if (s > best) {
                best = s;
                pack = idx;
            }
        }
        ok = pack >= 0;
    }
    for (int w = 0; w < rec->nwants && ok; w++) {
        int g = rec->wants[w].group;
        int idx = pack >= 0 ? pack
                            : choose(c, g,
                                     job->place == PLACE_SCATTER ? used : NULL);
        if (idx < 0 || take(c, w, g, idx) < 0) {
            ok = 0;
            break;
        }
        used[idx] = 1;
    }
    if (!ok) {
        /* Nothing of a gang is kept. */
        for (int i = 0; i < c->plan->nplacements; i++) {
            hwloc_bitmap_free(c->plan->placements[i].cores);
            hwloc_bitmap_free(c->plan->placements[i].gpus);
        }
        c->plan->nplacements = 0;
        for (int w = 0; w < rec->nwants; w++) {
            unplaced(c, w, rec->wants[w].group);
        }
    }
    free(used);
}

void
plan_job(struct planner *p, const struct snapshot *snap,
         const struct sched_job *job, const struct sched_alloc *allocs,
         int nallocs, const struct reconcile_result *rec, struct plan *plan)
{
    struct place_ctx c;
    int ng = job->ngroups;
    char *in_feasible = dv_xcalloc((size_t)snap->n + 1, 1);

    memset(plan, 0, sizeof(*plan));
    memset(&c, 0, sizeof(c));
    plan->job = job;
    plan->rec = rec;
    c.p = p;
    c.snap = snap;
    c.job = job;
    c.plan = plan;
    c.scratch = hwloc_bitmap_alloc();
    c.now = p->now > 0 ? p->now : dv_now();
    c.end = job->walltime > 0 ? c.now + job->walltime : INFINITY;
    c.by_index = dv_xcalloc((size_t)snap->n + 1, sizeof(*c.by_index));
    c.feasible = dv_xcalloc((size_t)ng, sizeof(*c.feasible));
    c.nfeasible = dv_xcalloc((size_t)ng, sizeof(int));
    c.cursor = dv_xcalloc((size_t)ng, sizeof(int));
    c.on_node = dv_xcalloc((size_t)ng, sizeof(*c.on_node));
    c.spread = dv_xcalloc((size_t)ng, sizeof(*c.spread));
    plan->need_cores = -1;
    for (int g = 0; g < ng; g++) {
        const struct sched_group *gr = &job->groups[g];
        c.feasible[g] = dv_xcalloc((size_t)snap->n + 1, sizeof(int));
        c.on_node[g] = dv_xcalloc((size_t)snap->n + 1, sizeof(int));
        for (int k = 0; k < snap->n; k++) {
            if (feasible_static(job, gr, snap->nodes[k])) {
                c.feasible[g][c.nfeasible[g]++] = k;
                in_feasible[k] = 1;
            }
        }
        c.spread[g] = dv_xcalloc((size_t)gr->nspreads + 1, sizeof(**c.spread));
        for (int i = 0; i < gr->nspreads; i++) {
            for (int k = 0; k < c.nfeasible[g]; k++) {
                const char *v = snap_node_attr(snap->nodes[c.feasible[g][k]],
                                               gr->spreads[i].attr);
                if (v != NULL) {
                    spread_slot(&c.spread[g][i], v, 1);
                }
            }
        }
        if (c.nfeasible[g] > p->sample_threshold) {
            shuffle(c.feasible[g], c.nfeasible[g], &p->seed);
        }
    }
    for (int i = 0; i < nallocs; i++) {
        int idx;
        if (!allocs[i].active || allocs[i].group < 0 || allocs[i].group >= ng) {
            continue;
        }
        idx = snap_index_of(snap, allocs[i].node_id);
        if (idx >= 0) {
            c.on_node[allocs[i].group][idx]++;
            spread_count(&c, allocs[i].group, snap->nodes[idx]);
        }
    }
    for (int w = 0; w < rec->nwants; w++) {
        const struct sched_group *gr = &job->groups[rec->wants[w].group];
        if (w == 0 || gr->cores < plan->need_cores) {
            plan->need_cores = gr->cores;
        }
        if (w == 0 || gr->mem < plan->need_mem) {
            plan->need_mem = gr->mem;
        }
        if (w == 0 || gr->gpus < plan->need_gpus) {
            plan->need_gpus = gr->gpus;
        }
    }
    if (plan->need_cores < 0) {
        plan->need_cores = 0;
    }
    /* The nodes a blocked evaluation must watch: all of them (one that
     * was not usable may become so), with what the snapshot held. */
    plan->nnodes_seen = snap->n;
    plan->node_ids = dv_xcalloc((size_t)snap->n + 1, sizeof(int64_t));
    plan->node_ci = dv_xcalloc((size_t)snap->n + 1, sizeof(int64_t));
    plan->node_feasible = dv_xcalloc((size_t)snap->n + 1, 1);
    plan->feasible_ids = dv_xcalloc((size_t)snap->n + 1, sizeof(int64_t));
    for (int k = 0; k < snap->n; k++) {
        plan->node_ids[k] = snap->nodes[k]->id;
        plan->node_ci[k] = snap->nodes[k]->capacity_index;
        plan->node_feasible[k] = in_feasible[k];
        if (in_feasible[k]) {
            plan->feasible_ids[plan->nfeasible++] = snap->nodes[k]->id;
        }
        if (snap->nodes[k]->id > plan->max_node_id) {
            plan->max_node_id = snap->nodes[k]->id;
        }
    }

    if (job->gang && rec->nwants > 0) {
        place_gang(&c, rec);
    } else {
        /* Instances of a group are alike: once one finds no node, the
         * rest of the group will not either (node-pinned ones excepted). */
        char *failed = dv_xcalloc((size_t)ng + 1, 1);
        for (int w = 0; w < rec->nwants; w++) {
            const struct sched_want *want = &rec->wants[w];
            int g = want->group, idx;
            if (want->node_id == 0 && failed[g]) {
                unplaced(&c, w, g);
                continue;
            }
            if (want->node_id != 0) {
                const struct sched_group *gr = &job->groups[g];
                idx = snap_index_of(snap, want->node_id);
                if (idx >= 0 &&
                    !fits(&c, g, idx, gr->cores, gr->mem, gr->gpus, gr->disk)) {
                    idx = -1;
                }
            } else {
                idx = choose(&c, g, NULL);
            }
            if (idx < 0 || take(&c, w, g, idx) < 0) {
                failed[g] |= want->node_id == 0;
                unplaced(&c, w, g);
            }
        }
        free(failed);
    }

    for (int g = 0; g < ng; g++) {
        free(c.feasible[g]);
        free(c.on_node[g]);
        for (int i = 0; i < job->groups[g].nspreads; i++) {
            free(c.spread[g][i].values);
            free(c.spread[g][i].counts);
        }
        free(c.spread[g]);
    }
    free(c.spread);
    free(c.feasible);
    free(c.nfeasible);
    free(c.cursor);
    free(c.on_node);
    free(c.by_index);
    free(in_feasible);
    hwloc_bitmap_free(c.scratch);
}

void
plan_cleanup(struct plan *plan)
{
    for (int i = 0; i < plan->nplacements; i++) {
        hwloc_bitmap_free(plan->placements[i].cores);
        hwloc_bitmap_free(plan->placements[i].gpus);
    }
    free(plan->placements);
    for (int i = 0; i < plan->nnodes; i++) {
        hwloc_bitmap_free(plan->nodes[i]->free_cores);
        hwloc_bitmap_free(plan->nodes[i]->free_gpus);
        snap_node_free(plan->nodes[i]->node);
        free(plan->nodes[i]);
    }
    free(plan->nodes);
    free(plan->unplaced);
    free(plan->node_ids);
    free(plan->node_ci);
    free(plan->node_feasible);
    free(plan->feasible_ids);
    memset(plan, 0, sizeof(*plan));
}
