/*
 * Scheduler workers: each thread has its own database connection, leases a
 * batch of pending evaluations, plans and commits each, and sleeps on the
 * shared condition variable until the main thread passes on a wake-up
 * (NOTIFY evals) or the poll interval passes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "sched/sched.h"

void
shared_wake(struct sched_shared *shared)
{
    pthread_mutex_lock(&shared->lock);
    shared->generation++;
    pthread_cond_broadcast(&shared->wake);
    pthread_mutex_unlock(&shared->lock);
}

static void
count(struct sched_shared *shared, uint64_t *counter)
{
    pthread_mutex_lock(&shared->lock);
    (*counter)++;
    pthread_mutex_unlock(&shared->lock);
}

void
worker_process(struct sched_worker *w, struct dv_db *db,
               const struct sched_eval *ev)
{
    const struct sched_config *cfg = w->shared->cfg;
    struct sched_job job;
    struct dv_err err;
    char why[512] = "";
    int64_t snap_index = 0;
    int found;

    found = db_load_job(db, ev->job_id, &job, &err);
    if (found < 0) {
        log_error("evaluation %lld: could not load job %lld: %s",
                  (long long)ev->id, (long long)ev->job_id, err.msg);
        return; /* the lease expires and another attempt follows */
    }
    if (found == 0 || strcmp(job.state, "queued") != 0) {
        if (db_finish_eval(db, w->owner, ev->id, "complete",
                           "job no longer queued", &err) < 0) {
            log_error("evaluation %lld: %s", (long long)ev->id, err.msg);
        }
        if (found) {
            sched_job_cleanup(&job);
        }
        return;
    }
    for (int attempt = 0; attempt < cfg->max_attempts; attempt++) {
        struct sched_snapshot snap;
        struct plan plan = {0};
        enum plan_result pr;
        enum commit_outcome outcome;

        if (db_load_snapshot(db, &snap, &err) < 0) {
            log_error("evaluation %lld: could not read nodes: %s",
                      (long long)ev->id, err.msg);
            goto out;
        }
        snap_index = snap.capacity_index;
        pr = plan_job(&snap, &job, &plan, why, sizeof(why));
        if (pr != PLAN_PLACED) {
            snapshot_cleanup(&snap);
            int woken = 0;
            if (db_block_eval(db, w->owner, ev->id, job.id, snap_index, why,
                              &woken, &err) < 0) {
                log_error("evaluation %lld: could not block: %s",
                          (long long)ev->id, err.msg);
            } else if (woken) {
                log_debug("job %lld: capacity freed while planning; "
                          "evaluation %lld pending again",
                          (long long)job.id, (long long)ev->id);
                shared_wake(w->shared);
            } else {
                count(w->shared, &w->shared->blocked);
                log_info("job %lld blocked: %s", (long long)job.id, why);
            }
            goto out;
        }
        if (db_commit_plan(db, w->owner, ev->id, &job, &snap, &plan, &outcome,
                           &err) < 0) {
            log_error("evaluation %lld: plan commit failed: %s",
                      (long long)ev->id, err.msg);
            plan_cleanup(&plan);
            snapshot_cleanup(&snap);
            goto out;
        }
        if (outcome == COMMIT_PLACED) {
            count(w->shared, &w->shared->placed);
            log_notice("job %lld placed: %d chunk%s, first on %s",
                       (long long)job.id, plan.n, plan.n == 1 ? "" : "s",
                       snap.nodes[plan.allocs[0].node].name);
        }
        plan_cleanup(&plan);
        snapshot_cleanup(&snap);
        if (outcome != COMMIT_STALE) {
            goto out;
        }
        count(w->shared, &w->shared->conflicts);
        log_info("job %lld: plan refused at commit (attempt %d), re-planning",
                 (long long)job.id, attempt + 1);
    }
    /* Kept losing races: give the evaluation back for a later round. */
    if (db_finish_eval(db, w->owner, ev->id, "pending",
                       "plan conflicts, retrying", &err) < 0) {
        log_error("evaluation %lld: %s", (long long)ev->id, err.msg);
    }
out:
    sched_job_cleanup(&job);
}

static void
wait_for_work(struct sched_shared *shared, uint64_t seen, double seconds)
{
    struct timespec ts;
    double real = dv_clock_real_span(seconds);

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)real;
    ts.tv_nsec += (long)((real - (double)(time_t)real) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&shared->lock);
    while (!shared->stopping && shared->generation == seen) {
        if (pthread_cond_timedwait(&shared->wake, &shared->lock, &ts) ==
            ETIMEDOUT) {
            break;
        }
    }
    pthread_mutex_unlock(&shared->lock);
}

void *
worker_main(void *arg)
{
    struct sched_worker *w = arg;
    struct sched_shared *shared = w->shared;
    const struct sched_config *cfg = shared->cfg;
    struct dv_db *db = dv_db_new(cfg->database, "drover-sched");
    double backoff = 0.1;

    for (;;) {
        struct sched_eval *evals = NULL;
        struct dv_err err;
        uint64_t seen;
        int n = 0, stopping;

        pthread_mutex_lock(&shared->lock);
        stopping = shared->stopping;
        seen = shared->generation;
        pthread_mutex_unlock(&shared->lock);
        if (stopping) {
            break;
        }
        if (db_lease_evals(db, w->owner, dv_now() + cfg->lease,
                           (int)cfg->batch, &evals, &n, &err) < 0) {
            log_warn("worker %d: could not lease evaluations: %s", w->index,
                     err.msg);
            free(evals);
            wait_for_work(shared, seen, backoff);
            backoff = backoff * 2 > 5 ? 5 : backoff * 2;
            continue;
        }
        backoff = 0.1;
        if (n == 0) {
            free(evals);
            wait_for_work(shared, seen, cfg->poll_interval);
            continue;
        }
        log_debug("worker %d leased %d evaluations", w->index, n);
        for (int i = 0; i < n; i++) {
            pthread_mutex_lock(&shared->lock);
            stopping = shared->stopping;
            pthread_mutex_unlock(&shared->lock);
            if (stopping) {
                /* Give the rest back rather than wait for their leases. */
                if (db_finish_eval(db, w->owner, evals[i].id, "pending",
                                   "scheduler stopping", &err) < 0) {
                    log_warn("evaluation %lld: %s", (long long)evals[i].id,
                             err.msg);
                }
                continue;
            }
            worker_process(w, db, &evals[i]);
        }
        free(evals);
    }
    dv_db_free(db);
    return NULL;
}
