/*
 * Exact resources: which cores and GPUs of a node an instance gets. Cores
 * are compact: from one NUMA node when one can hold them (the fullest that
 * fits, keeping big holes for big requests), else from one package NUMA
 * node by NUMA node, else from wherever they are; lowest indexes first
 * inside each. GPUs prefer the NUMA nodes of the cores granted.
 */
#include <stdlib.h>

#include "lib/mem.h"
#include "sched/sched.h"

/* Moves the lowest n indexes of from into out; returns how many moved. */
static int
take_lowest(hwloc_bitmap_t from, int n, hwloc_bitmap_t out)
{
    int i, got = 0;

    if (n <= 0) {
        return 0;
    }
    hwloc_bitmap_foreach_begin(i, from)
    {
        hwloc_bitmap_set(out, (unsigned)i);
        if (++got == n) {
            break;
        }
    }
    hwloc_bitmap_foreach_end();
    hwloc_bitmap_andnot(from, from, out);
    return got;
}

/* Index of the set in sets[0..n) whose intersection with free is the
 * smallest that still holds want; -1 when none does. */
static int
fullest_fit(hwloc_bitmap_t *sets, int n, hwloc_const_bitmap_t free, int want,
            hwloc_bitmap_t scratch)
{
    int best = -1, best_w = 0;

    for (int k = 0; k < n; k++) {
        int w;
        hwloc_bitmap_and(scratch, sets[k], free);
        w = hwloc_bitmap_weight(scratch);
        if (w >= want && (best < 0 || w < best_w)) {
            best = k;
            best_w = w;
        }
    }
    return best;
}

/* Takes n cores from the NUMA nodes inside within (all of them when within
 * is NULL), the NUMA node with the most free cores first. */
static int
take_by_numa(const struct snap_node *node, hwloc_bitmap_t avail,
             hwloc_const_bitmap_t within, int n, hwloc_bitmap_t out)
{
    hwloc_bitmap_t part = hwloc_bitmap_alloc();
    char *done = dv_xcalloc((size_t)node->nnuma + 1, 1);
    int got = 0;

    while (got < n) {
        int best = -1, best_w = 0;
        for (int k = 0; k < node->nnuma; k++) {
            int w;
            if (done[k]) {
                continue;
            }
            hwloc_bitmap_and(part, node->numa_cores[k], avail);
            if (within != NULL) {
                hwloc_bitmap_and(part, part, within);
            }
            w = hwloc_bitmap_weight(part);
            if (w > best_w) {
                best = k;
                best_w = w;
            }
        }
        if (best < 0) {
            break;
        }
        done[best] = 1;
        hwloc_bitmap_and(part, node->numa_cores[best], avail);
        if (within != NULL) {
            hwloc_bitmap_and(part, part, within);
        }
        got += take_lowest(part, n - got, out);
        hwloc_bitmap_andnot(avail, avail, out);
    }
    hwloc_bitmap_free(part);
    free(done);
    return got;
}

int
cores_pick(const struct snap_node *n, hwloc_const_bitmap_t free, int ncores,
           enum sched_numa numa, hwloc_bitmap_t out)
{
    hwloc_bitmap_t avail, scratch;
    int k, rc = -1;

    hwloc_bitmap_zero(out);
    if (ncores <= 0) {
        return 0;
    }
    if (hwloc_bitmap_weight(free) < ncores) {
        return -1;
    }
    avail = hwloc_bitmap_dup(free);
    scratch = hwloc_bitmap_alloc();
    k = fullest_fit(n->numa_cores, n->nnuma, avail, ncores, scratch);
    if (k >= 0) {
        hwloc_bitmap_and(scratch, n->numa_cores[k], avail);
        take_lowest(scratch, ncores, out);
        rc = 0;
        goto out;
    }
    if (numa == NUMA_REQUIRE) {
        goto out;
    }
    k = fullest_fit(n->pkg_cores, n->npkg, avail, ncores, scratch);
    if (k >= 0 &&
        take_by_numa(n, avail, n->pkg_cores[k], ncores, out) == ncores) {
        rc = 0;
        goto out;
    }
    hwloc_bitmap_zero(out);
    hwloc_bitmap_copy(avail, free);
    {
        int got = take_by_numa(n, avail, NULL, ncores, out);
        /* Cores the topology did not place in any NUMA node. */
        if (got < ncores) {
            got += take_lowest(avail, ncores - got, out);
        }
        rc = got == ncores ? 0 : -1;
    }
out:
    if (rc < 0) {
        hwloc_bitmap_zero(out);
    }
    hwloc_bitmap_free(avail);
    hwloc_bitmap_free(scratch);
    return rc;
}

int
gpus_pick(const struct snap_node *n, hwloc_const_bitmap_t free, int ngpus,
          hwloc_const_bitmap_t cores, hwloc_bitmap_t out)
{
    hwloc_bitmap_t near = hwloc_bitmap_alloc();
    hwloc_bitmap_t avail = hwloc_bitmap_dup(free);
    int got;

    hwloc_bitmap_zero(out);
    if (ngpus <= 0) {
        hwloc_bitmap_free(near);
        hwloc_bitmap_free(avail);
        return 0;
    }
    /* GPUs attached to the NUMA nodes of the granted cores first. */
    for (int g = 0; g < n->ngpu_numa; g++) {
        int k = n->gpu_numa[g];
        if (k >= 0 && k < n->nnuma && hwloc_bitmap_isset(avail, (unsigned)g) &&
            hwloc_bitmap_intersects(n->numa_cores[k], cores)) {
            hwloc_bitmap_set(near, (unsigned)g);
        }
    }
    got = take_lowest(near, ngpus, out);
    hwloc_bitmap_andnot(avail, avail, out);
    got += take_lowest(avail, ngpus - got, out);
    hwloc_bitmap_free(near);
    hwloc_bitmap_free(avail);
    if (got < ngpus) {
        hwloc_bitmap_zero(out);
        return -1;
    }
    return 0;
}
