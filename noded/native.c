/*
 * Native task groups (docs/jobspec.md): which group an allocation runs,
 * whether a spec is native, and the restart policy of failed tasks
 * (restart { attempts, interval, delay, mode }): at most attempts restarts
 * within interval, each after delay; when they are used up, mode fail
 * fails the allocation and mode delay waits for the interval to end. Pure
 * functions, tested on their own.
 */
#include <stdio.h>
#include <string.h>

#include "noded/noded.h"

int
native_restart_decide(const struct dv_restart *policy, struct restart_state *st,
                      double now, double *delay)
{
    double interval = (double)policy->interval;

    *delay = (double)policy->delay;
    if (st->window_start <= 0 ||
        (interval > 0 && now - st->window_start >= interval)) {
        /* The first failure of a new interval. */
        st->window_start = now;
        st->restarts = 0;
    }
    if (st->restarts < policy->attempts) {
        st->restarts++;
        return 1;
    }
    if (policy->mode != DV_RESTART_DELAY) {
        return 0;
    }
    /* Used up: wait for this interval to end, then a new one begins with
     * this restart. */
    if (interval > 0 && st->window_start + interval - now > *delay) {
        *delay = st->window_start + interval - now;
    }
    st->window_start = now + *delay;
    st->restarts = 1;
    return 1;
}

const struct dv_group *
native_group(const struct dv_job_spec *spec, int group_index, char *msg,
             size_t size)
{
    const struct dv_jobspec *n = spec->native;

    if (n == NULL) {
        snprintf(msg, size, "the job has no task groups");
        return NULL;
    }
    if (group_index < 0 || group_index >= n->ngroups) {
        snprintf(msg, size, "the job has no group %d (it has %d)", group_index,
                 n->ngroups);
        return NULL;
    }
    if (n->groups[group_index].ntasks == 0) {
        snprintf(msg, size, "group %s has no tasks",
                 n->groups[group_index].name != NULL
                     ? n->groups[group_index].name
                     : "?");
        return NULL;
    }
    return &n->groups[group_index];
}

int
native_spec_is(const json_t *spec)
{
    return json_is_object(spec) && json_object_get(spec, "groups") != NULL;
}
