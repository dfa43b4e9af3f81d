/*
 * Scheduler workers: each thread has its own database connection, leases a
 * batch of pending evaluations, and for each one reconciles the job with
 * its allocations, plans on the shared snapshot, commits, re-plans what
 * the commit refused (bounded), and blocks — or preempts — what fits
 * nowhere. Between batches it sleeps on the shared condition variable
 * until the main thread passes on a wake-up or the poll interval passes.
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

/* Writes what a commit read and wrote under its row locks back into the
 * snapshot (the freshest truth about those nodes) and lets go of what the
 * plan held, in one step. */
static void
snapshot_feedback(struct snapshot *s, const struct commit_result *r,
                  const struct plan *plan)
{
    pthread_rwlock_wrlock(&s->lock);
    for (int i = 0; r != NULL && i < r->nafter; i++) {
        const struct node_after *a = &r->after[i];
        struct snap_node *n = snapshot_find(s, a->id);
        if (n == NULL || a->modify_index < n->modify_index) {
            continue; /* a refresh already brought a newer row */
        }
        n->modify_index = a->modify_index;
        if (a->capacity_index > n->capacity_index) {
            n->capacity_index = a->capacity_index;
        }
        hwloc_bitmap_zero(n->db_cores);
        if (a->free_cpuset[0] != '\0') {
            hwloc_bitmap_list_sscanf(n->db_cores, a->free_cpuset);
        }
        hwloc_bitmap_zero(n->db_gpus);
        if (a->free_gpuset[0] != '\0') {
            hwloc_bitmap_list_sscanf(n->db_gpus, a->free_gpuset);
        }
        n->db_mem = a->free_mem;
        n->db_disk = a->free_disk;
        n->excl_job = a->excl_job;
        snap_node_recompute(n);
    }
    snapshot_hold(s, plan, -1);
    pthread_rwlock_unlock(&s->lock);
}

static int
refresh(struct sched_shared *sh, struct dv_db *db, struct dv_err *err)
{
    int full;

    pthread_rwlock_rdlock(&sh->snap.lock);
    full = sh->snap.want_full || sh->snap.n == 0 ||
           dv_now() - sh->snap.last_full > sh->cfg->full_refresh;
    pthread_rwlock_unlock(&sh->snap.lock);
    return snapshot_refresh(&sh->snap, db, full, err);
}

/* Placements of plan that were held in the snapshot but not committed
 * (refused, or the whole plan when nothing was written): another worker may
 * have blocked against that room, so its nodes wake blocked work. */
static void
wake_unused(struct dv_db *db, const struct plan *plan,
            const struct commit_result *cr, int none_written)
{
    int64_t *ids = dv_xcalloc((size_t)plan->nplacements + 1, sizeof(int64_t));
    int n = 0;
    struct dv_err err;

    if (none_written) {
        for (int i = 0; i < plan->nplacements; i++) {
            ids[n++] = plan->placements[i].pn->node->id;
        }
    } else {
        for (int i = 0; cr != NULL && i < cr->refused; i++) {
            ids[n++] = plan->placements[cr->refused_idx[i]].pn->node->id;
        }
    }
    if (n > 0 && db_wake_nodes(db, ids, n, &err) < 0) {
        log_warn("could not wake blocked work on %d nodes: %s", n, err.msg);
    }
    free(ids);
}

/* Tries preemption for the first unplaced instance; returns 1 when victims
 * were asked to stop (the evaluation is then blocked on them). */
static int
try_preempt(struct sched_worker *w, struct dv_db *db,
            const struct sched_eval *ev, const struct sched_job *job,
            const struct plan *plan)
{
    struct sched_shared *sh = w->shared;
    const struct sched_group *g =
        &job->groups[plan->rec->wants[plan->unplaced[0]].group];
    struct victim *cands = NULL, chosen[64];
    struct dv_err err;
    int ncands = 0, n;

    if (!job->can_preempt || plan->nfeasible == 0) {
        return 0;
    }
    /* Already waiting for victims it chose: do not evict more. */
    if (db_holds_reservation(db, job->id, 0, &err) != 0) {
        return 0;
    }
    if (db_load_victims(db, plan->feasible_ids, plan->nfeasible,
                        job->priority, &cands, &ncands, &err) < 0) {
        log_warn("job %lld: could not look for preemption victims: %s",
                 (long long)job->id, err.msg);
        return 0;
    }
    pthread_rwlock_rdlock(&sh->snap.lock);
    n = preempt_choose(&sh->snap, g, cands, ncands, chosen,
                       (int)(sizeof(chosen) / sizeof(chosen[0])));
    pthread_rwlock_unlock(&sh->snap.lock);
    free(cands);
    if (n == 0) {
        return 0;
    }
    if (db_preempt(db, w->owner, ev->id, plan, chosen, n, &err) < 0) {
        log_error("job %lld: preemption failed: %s", (long long)job->id,
                  err.msg);
        return 0;
    }
    atomic_fetch_add(&sh->metrics.preemptions, (uint64_t)n);
    return 1;
}

/* How long past its start a backfill reservation outlives the evaluation
 * that made it, at least (each evaluation of the job makes it again); four
 * leases when that is longer. */
#define BACKFILL_HOLD_SECONDS 300.0

/* EASY backfill: a PBS job that cannot start now, ranked among the top
 * --backfill-depth waiting jobs, gets a reservation from the earliest time
 * its unplaced instances fit (backfill.c) on the nodes they would take;
 * with --backfill=false the top job holds every node instead (strict
 * order). Ranking and pushing other holders out happen in db_reserve,
 * under its lock. */
static void
try_reserve(struct sched_worker *w, struct dv_db *db,
            const struct sched_job *job, const struct plan *plan)
{
    struct sched_shared *sh = w->shared;
    const struct sched_config *cfg = sh->cfg;
    struct bf_running *run = NULL;
    struct bf_slot *slots = NULL;
    int *groups = NULL, nrun = 0, nslots = 0, made = 0, above;
    double now = dv_now(), start;
    struct sched_rank rank = sched_job_rank(job);
    /* long enough for the job's next evaluation, even when a scaled clock
     * makes the scheduler's own latency many Drover seconds */
    double hold = cfg->lease * 4 > BACKFILL_HOLD_SECONDS
                      ? cfg->lease * 4
                      : BACKFILL_HOLD_SECONDS;
    struct dv_err err;

    /* PBS jobs (placed whole, once): a native batch job's instances are
     * placed one by one, as room appears. */
    if (cfg->backfill_depth <= 0 || plan->never || plan->nunplaced == 0 ||
        !job->pbs || strcmp(job->type, "batch") != 0) {
        return;
    }
    /* Only the top waiting jobs get one: a cheap look before reading the
     * running work (db_reserve checks again under its lock). */
    above = db_ranked_above(db, &rank, (int)cfg->backfill_depth, &err);
    if (above < 0) {
        log_warn("job %lld: could not rank it for backfill: %s",
                 (long long)job->id, err.msg);
        return;
    }
    if (above >= cfg->backfill_depth) {
        if (db_holds_reservation(db, job->id, 1, &err) == 1) {
            db_reserve(db, &rank, -1, now, NULL, 0,
                       cfg->backfill ? "backfill" : "fifo",
                       (int)cfg->backfill_depth, &made, &err);
        }
        return;
    }
    groups = dv_xcalloc((size_t)plan->nunplaced + 1, sizeof(int));
    for (int i = 0; i < plan->nunplaced; i++) {
        groups[i] = plan->rec->wants[plan->unplaced[i]].group;
    }
    if (db_load_running(db, plan->feasible_ids, plan->nfeasible, &run, &nrun,
                        &err) < 0) {
        log_warn("job %lld: could not read running work for backfill: %s",
                 (long long)job->id, err.msg);
        goto out;
    }
    pthread_rwlock_rdlock(&sh->snap.lock);
    start = backfill_earliest(&sh->snap, job, groups, plan->nunplaced, run,
                              nrun, now, &slots, &nslots);
    if (start >= 0 && !cfg->backfill) {
        /* Strict order: the top job holds every node. */
        free(slots);
        nslots = 0;
        slots = dv_xcalloc((size_t)sh->snap.n + 1, sizeof(*slots));
        for (int k = 0; k < sh->snap.n; k++) {
            const struct snap_node *n = sh->snap.nodes[k];
            slots[nslots].node_id = n->id;
            slots[nslots].a.cores = n->total_cores;
            slots[nslots].a.mem = n->total_mem;
            slots[nslots].a.gpus = n->total_gpus;
            nslots++;
        }
    }
    pthread_rwlock_unlock(&sh->snap.lock);
    if (start < 0) {
        nslots = 0; /* never fits as things stand: hold nothing */
    }
    if (db_reserve(db, &rank, start,
                   (start > now ? start : now) + hold, slots,
                   nslots, cfg->backfill ? "backfill" : "fifo",
                   (int)cfg->backfill_depth, &made, &err) < 0) {
        log_warn("job %lld: could not reserve: %s", (long long)job->id,
                 err.msg);
        goto out;
    }
    if (made) {
        char when[64];
        dv_clock_iso(start, when, sizeof(when));
        log_info("job %lld: top job, reserved from %s on %d node%s",
                 (long long)job->id, when, nslots, nslots == 1 ? "" : "s");
    }
out:
    free(groups);
    free(run);
    free(slots);
}

void
worker_process(struct sched_worker *w, struct dv_db *db,
               const struct sched_eval *ev)
{
    struct sched_shared *sh = w->shared;
    const struct sched_config *cfg = sh->cfg;
    struct sched_job job;
    struct dv_err err;
    int found;

    atomic_fetch_add(&sh->metrics.evals, 1);
    found = db_load_job(db, ev->job_id, &job, &err);
    if (found < 0) {
        atomic_fetch_add(&sh->metrics.errors, 1);
        if (err.kind == DV_EINVAL) {
            log_error("evaluation %lld: %s", (long long)ev->id, err.msg);
            db_finish_eval(db, w->owner, ev->id, "failed", err.msg, &err);
        } else {
            log_error("evaluation %lld: could not load job %lld: %s",
                      (long long)ev->id, (long long)ev->job_id, err.msg);
        }
        return; /* a retryable failure: the lease expires, another try */
    }
    if (found == 0) {
        db_finish_eval(db, w->owner, ev->id, "complete", "job gone", &err);
        return;
    }
    /* its place in the order of work, as leasing saw it (backfill ranks
     * by the same keys) */
    job.queue_priority = ev->queue_priority;
    job.fairshare = ev->fairshare;
    for (int attempt = 0; attempt < cfg->max_attempts; attempt++) {
        struct sched_alloc *allocs = NULL;
        struct reconcile_result rec;
        struct plan plan;
        struct commit_result cr;
        int nallocs = 0, woken = 0;
        double t0;

        if ((job.array != NULL
                 ? (attempt > 0 ? db_load_array(db, &job, &err) : 0)
                 : db_load_allocs(db, job.id, &allocs, &nallocs, &err)) < 0 ||
            refresh(sh, db, &err) < 0) {
            log_error("evaluation %lld: %s", (long long)ev->id, err.msg);
            atomic_fetch_add(&sh->metrics.errors, 1);
            free(allocs);
            goto out;
        }
        t0 = dv_now();
        /* Workers of one process plan one at a time (planning is cheap next
         * to committing) and mark what they placed in the shared snapshot
         * at once, so that they do not plan onto the same room; the
         * commit's feedback then writes the truth. */
        pthread_rwlock_wrlock(&sh->snap.lock);
        reconcile(&job, allocs, nallocs, &sh->snap, &rec);
        if (rec.nwants == 0 && rec.nstops == 0) {
            pthread_rwlock_unlock(&sh->snap.lock);
            free(allocs);
            reconcile_cleanup(&rec);
            db_finish_eval(db, w->owner, ev->id, "complete", "nothing to do",
                           &err);
            goto out;
        }
        plan_job(&w->planner, &sh->snap, &job, allocs, nallocs, &rec, &plan);
        snapshot_hold(&sh->snap, &plan, 1);
        pthread_rwlock_unlock(&sh->snap.lock);
        free(allocs);
        histogram_observe(&sh->metrics.plan_seconds, metric_seconds_bounds,
                          (dv_now() - t0) / dv_clock_scale());

        memset(&cr, 0, sizeof(cr));
        if (plan.nplacements > 0 || rec.nstops > 0) {
            /* An array's evaluation ends only when a reconcile finds
             * nothing more to place now (below). */
            if (commit_plan(db, w->owner, ev->id, &plan,
                            plan.nunplaced == 0 && job.array == NULL,
                            cfg->lease, &cr, &err) < 0) {
                log_error("evaluation %lld: plan commit failed: %s",
                          (long long)ev->id, err.msg);
                atomic_fetch_add(&sh->metrics.errors, 1);
                snapshot_feedback(&sh->snap, NULL, &plan);
                wake_unused(db, &plan, NULL, 1);
                plan_cleanup(&plan);
                reconcile_cleanup(&rec);
                goto out;
            }
            snapshot_feedback(&sh->snap, &cr, &plan);
            atomic_fetch_add(&sh->metrics.plans, 1);
            atomic_fetch_add(&sh->metrics.placements, (uint64_t)cr.placed);
            atomic_fetch_add(&sh->metrics.conflicts, (uint64_t)cr.refused);
            atomic_fetch_add(&sh->metrics.stops, (uint64_t)cr.stopped);
            histogram_observe(&sh->metrics.plan_size, metric_size_bounds,
                              cr.placed);
            histogram_observe(&sh->metrics.commit_seconds,
                              metric_seconds_bounds, cr.seconds);
            if (cr.placed > 0) {
                log_info("job %lld: placed %d allocation%s on %d node%s",
                         (long long)job.id, cr.placed,
                         cr.placed == 1 ? "" : "s", plan.nnodes,
                         plan.nnodes == 1 ? "" : "s");
                /* The next job in line (strict order), or the next top
                 * job (it held a reservation), may go now. */
                if ((!cfg->backfill || (cr.released &&
                                        cfg->backfill_depth > 0)) &&
                    db_unblock(db, !cfg->backfill, (int)cfg->backfill_depth,
                               &err) < 0) {
                    log_warn("could not wake the next job: %s", err.msg);
                }
            }
        }
        if (cr.outcome != COMMIT_DONE) {
            wake_unused(db, &plan, &cr, 1);
            if (cr.outcome == COMMIT_LEASE_LOST) {
                log_warn("evaluation %lld: lease lost to another scheduler; "
                         "its plan was dropped",
                         (long long)ev->id);
            } else if (cr.outcome == COMMIT_QUEUE_WAIT) {
                /* blocked by the commit until a slot of its queue frees */
                atomic_fetch_add(&sh->metrics.blocked, 1);
                log_info("job %lld waits for its queue: %s",
                         (long long)job.id, cr.why);
            } else if (cr.outcome == COMMIT_ALTERED) {
                /* qalter/qmove queued a new evaluation with the change */
                log_info("job %lld: altered since planned; plan dropped",
                         (long long)job.id);
                db_finish_eval(db, w->owner, ev->id, "complete",
                               "job altered since planned", &err);
            } else if (plan.nunplaced > 0 || job.array != NULL) {
                /* the commit finishes it only when it placed everything
                 * (never for arrays) */
                db_finish_eval(db, w->owner, ev->id, "complete",
                               "job no longer needs placing", &err);
            }
            commit_result_cleanup(&cr);
            plan_cleanup(&plan);
            reconcile_cleanup(&rec);
            goto out;
        }
        if (cr.refused > 0) {
            wake_unused(db, &plan, &cr, 0);
            /* Another scheduler took room the plan counted on: re-plan the
             * rest on fresher nodes (the commit already fed back what it
             * saw under its locks). */
            atomic_fetch_add(&sh->metrics.retries, 1);
            log_info("job %lld: %d placement%s refused at commit (attempt "
                     "%d), re-planning",
                     (long long)job.id, cr.refused, cr.refused == 1 ? "" : "s",
                     attempt + 1);
            commit_result_cleanup(&cr);
            plan_cleanup(&plan);
            reconcile_cleanup(&rec);
            continue;
        }
        if (job.array != NULL && plan.nunplaced == 0 && cr.placed > 0) {
            /* Subjobs were placed: look for the next ones (the cap and
             * the cursor are read again); not a retry. */
            commit_result_cleanup(&cr);
            plan_cleanup(&plan);
            reconcile_cleanup(&rec);
            attempt = 0;
            continue;
        }
        commit_result_cleanup(&cr);
        if (plan.nunplaced == 0) {
            plan_cleanup(&plan); /* the commit finished the evaluation */
            reconcile_cleanup(&rec);
            goto out;
        }
        if (try_preempt(w, db, ev, &job, &plan)) {
            plan_cleanup(&plan);
            reconcile_cleanup(&rec);
            goto out;
        }
        try_reserve(w, db, &job, &plan);
        if (db_block_eval(db, w->owner, ev->id, job.id, &plan, &woken, &err) <
            0) {
            log_error("evaluation %lld: could not block: %s",
                      (long long)ev->id, err.msg);
            atomic_fetch_add(&sh->metrics.errors, 1);
        } else if (woken) {
            log_debug("job %lld: capacity freed while planning; evaluation "
                      "%lld pending again",
                      (long long)job.id, (long long)ev->id);
            /* The snapshot missed something: read every node next time. */
            pthread_rwlock_wrlock(&sh->snap.lock);
            sh->snap.want_full = 1;
            pthread_rwlock_unlock(&sh->snap.lock);
            shared_wake(sh);
        } else {
            atomic_fetch_add(&sh->metrics.blocked, 1);
            log_info("job %lld blocked: %s", (long long)job.id, plan.why);
        }
        plan_cleanup(&plan);
        reconcile_cleanup(&rec);
        goto out;
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

static int
is_stopping(struct sched_shared *shared)
{
    int s;

    pthread_mutex_lock(&shared->lock);
    s = shared->stopping;
    pthread_mutex_unlock(&shared->lock);
    return s;
}

int
worker_lease_stale(double deadline, double now, double lease)
{
    return deadline - now < lease / 2;
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
        double deadline;
        int n = 0;

        pthread_mutex_lock(&shared->lock);
        seen = shared->generation;
        pthread_mutex_unlock(&shared->lock);
        if (is_stopping(shared)) {
            break;
        }
        deadline = dv_now() + cfg->lease;
        if (db_lease_evals(db, w->owner, deadline, (int)cfg->batch, &evals,
                           &n, &err) < 0) {
            log_warn("worker %d: could not lease evaluations: %s", w->index,
                     err.msg);
            db_evals_free(evals, n);
            wait_for_work(shared, seen, backoff);
            backoff = backoff * 2 > 5 ? 5 : backoff * 2;
            continue;
        }
        backoff = 0.1;
        if (n == 0) {
            db_evals_free(evals, n);
            wait_for_work(shared, seen, cfg->poll_interval);
            continue;
        }
        log_debug("worker %d leased %d evaluations", w->index, n);
        for (int i = 0; i < n; i++) {
            if (is_stopping(shared)) {
                /* Give the rest back rather than wait for their leases. */
                if (db_finish_eval(db, w->owner, evals[i].id, "pending",
                                   "scheduler stopping", &err) < 0) {
                    log_warn("evaluation %lld: %s", (long long)evals[i].id,
                             err.msg);
                }
                continue;
            }
            /* The batch shares one deadline: once half of it is gone,
             * renew each before handling it, and skip those taken over by
             * another scheduler meanwhile (a write per evaluation saved
             * while the lease is fresh: docs/internals/sched.md). */
            if (worker_lease_stale(deadline, dv_now(), cfg->lease) &&
                db_renew_lease(db, w->owner, evals[i].id,
                               dv_now() + cfg->lease, &err) != 1) {
                continue;
            }
            worker_process(w, db, &evals[i]);
        }
        db_evals_free(evals, n);
    }
    dv_db_free(db);
    return NULL;
}
