/*
 * Scheduler metrics: lock-free counters and histograms updated by the
 * workers, exposed in Prometheus's text format on GET /metrics
 * (--metrics-listen) and summarised in the log every --stats-interval.
 */
#include <stdio.h>

#include "lib/mem.h"
#include "sched/sched.h"

const double metric_size_bounds[METRIC_BUCKETS] = {
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};
const double metric_seconds_bounds[METRIC_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,   0.25,   0.5,   1,    2.5};

void
histogram_observe(struct histogram *h, const double *bounds, double value)
{
    for (int i = 0; i < METRIC_BUCKETS; i++) {
        if (value <= bounds[i]) {
            atomic_fetch_add(&h->buckets[i], 1);
        }
    }
    atomic_fetch_add(&h->count, 1);
    atomic_fetch_add(&h->sum_micro, (uint64_t)(value * 1e6));
}

static void
counter(struct dv_buf *out, const char *name, const char *help,
        const char *scheduler, uint64_t v)
{
    dv_buf_printf(out,
                  "# HELP %s %s\n# TYPE %s counter\n%s{scheduler=\"%s\"} "
                  "%llu\n",
                  name, help, name, name, scheduler, (unsigned long long)v);
}

static void
histogram(struct dv_buf *out, const char *name, const char *help,
          const char *scheduler, const struct histogram *h,
          const double *bounds)
{
    dv_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help,
                  name);
    for (int i = 0; i < METRIC_BUCKETS; i++) {
        dv_buf_printf(out, "%s_bucket{scheduler=\"%s\",le=\"%g\"} %llu\n",
                      name, scheduler, bounds[i],
                      (unsigned long long)atomic_load(&h->buckets[i]));
    }
    dv_buf_printf(out,
                  "%s_bucket{scheduler=\"%s\",le=\"+Inf\"} %llu\n"
                  "%s_sum{scheduler=\"%s\"} %.6f\n"
                  "%s_count{scheduler=\"%s\"} %llu\n",
                  name, scheduler,
                  (unsigned long long)atomic_load(&h->count), name, scheduler,
                  (double)atomic_load(&h->sum_micro) / 1e6, name, scheduler,
                  (unsigned long long)atomic_load(&h->count));
}

void
metrics_format(const struct sched_metrics *m, const char *scheduler,
               struct dv_buf *out)
{
    counter(out, "drover_sched_evaluations_total",
            "Evaluations processed.", scheduler, atomic_load(&m->evals));
    counter(out, "drover_sched_placements_total",
            "Allocations placed (committed).", scheduler,
            atomic_load(&m->placements));
    counter(out, "drover_sched_plans_total", "Plans committed.", scheduler,
            atomic_load(&m->plans));
    counter(out, "drover_sched_plan_conflicts_total",
            "Placements refused at commit because a node no longer had "
            "room.",
            scheduler, atomic_load(&m->conflicts));
    counter(out, "drover_sched_plan_retries_total",
            "Re-plans after refused placements.", scheduler,
            atomic_load(&m->retries));
    counter(out, "drover_sched_blocked_total",
            "Evaluations blocked for lack of capacity.", scheduler,
            atomic_load(&m->blocked));
    counter(out, "drover_sched_stops_total",
            "Allocations asked to stop by reconciliation.", scheduler,
            atomic_load(&m->stops));
    counter(out, "drover_sched_preemptions_total",
            "Allocations preempted by higher-priority work.", scheduler,
            atomic_load(&m->preemptions));
    counter(out, "drover_sched_errors_total",
            "Evaluations that failed with an error.", scheduler,
            atomic_load(&m->errors));
    histogram(out, "drover_sched_plan_size", "Placements per plan.",
              scheduler, &m->plan_size, metric_size_bounds);
    histogram(out, "drover_sched_commit_seconds",
              "Time to commit one plan.", scheduler, &m->commit_seconds,
              metric_seconds_bounds);
    histogram(out, "drover_sched_plan_seconds",
              "Time to compute one plan.", scheduler, &m->plan_seconds,
              metric_seconds_bounds);
}
