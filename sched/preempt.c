/*
 * Preemption: when an instance of a job whose queue allows preemption fits
 * nowhere, find the node where evicting the fewest allocations of
 * lower-priority jobs (then the lowest priorities) makes room. The victims
 * are asked to stop; the evaluation blocks until their capacity frees, so
 * node accounting never counts the same core twice.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"
#include "sched/sched.h"

static int
victim_cmp(const void *a, const void *b)
{
    const struct victim *x = a, *y = b;

    if (x->node_id != y->node_id) {
        return x->node_id < y->node_id ? -1 : 1;
    }
    if (x->priority != y->priority) {
        return x->priority < y->priority ? -1 : 1;
    }
    if (x->cores != y->cores) {
        return x->cores > y->cores ? -1 : 1; /* bigger first: fewer victims */
    }
    return x->alloc_id < y->alloc_id ? -1 : x->alloc_id > y->alloc_id;
}

int
preempt_choose(const struct snapshot *snap, const struct sched_group *g,
               const struct victim *cands, int ncands, struct victim *out,
               int max)
{
    struct victim *v = dv_xcalloc((size_t)ncands + 1, sizeof(*v));
    int best_start = -1, best_n = 0, best_top = 0;
    long long best_sum = 0;

    memcpy(v, cands, sizeof(*v) * (size_t)ncands);
    qsort(v, (size_t)ncands, sizeof(*v), victim_cmp);
    for (int i = 0; i < ncands;) {
        const struct snap_node *n = snapshot_find(snap, v[i].node_id);
        int j = i, cores, gpus, top = 0;
        int64_t mem;
        long long sum = 0;

        while (j < ncands && v[j].node_id == v[i].node_id) {
            j++;
        }
        if (n == NULL || !n->ready) {
            i = j;
            continue;
        }
        cores = n->nfree_cores;
        mem = n->free_mem;
        gpus = hwloc_bitmap_weight(n->free_gpus);
        for (int k = i; k < j; k++) {
            if (cores >= g->cores && mem >= g->mem && gpus >= g->gpus) {
                break;
            }
            cores += v[k].cores;
            mem += v[k].mem;
            gpus += v[k].gpus;
            sum += v[k].priority;
            top = v[k].priority;
            if (cores >= g->cores && mem >= g->mem && gpus >= g->gpus) {
                int count = k - i + 1;
                if (best_start < 0 || count < best_n ||
                    (count == best_n &&
                     (top < best_top || (top == best_top && sum < best_sum)))) {
                    best_start = i;
                    best_n = count;
                    best_top = top;
                    best_sum = sum;
                }
                break;
            }
        }
        i = j;
    }
    if (best_start < 0 || best_n > max) {
        free(v);
        return 0;
    }
    memcpy(out, &v[best_start], sizeof(*out) * (size_t)best_n);
    free(v);
    return best_n;
}
