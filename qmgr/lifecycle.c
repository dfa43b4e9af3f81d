/*
 * Job lifecycle: what happens to a job when one of its allocations reaches
 * a terminal state (complete, failed, lost), called from the allocation
 * status transaction and the liveness pass (db-nodes.c) with the node and
 * job rows already locked.
 *
 * PBS jobs end with their chunk 0, and a chunk lost with its node requeues
 * a rerunnable job (db_job_end, db.c), as before native jobs existed. Native
 * jobs (docs/jobspec.md, "Life of a native job") follow the rules the
 * schedulers reconcile with (sched/reconcile.c), so that both always agree on
 * which instances still need a placement:
 *   - A lost allocation is always replaced (not the job's fault): an
 *     evaluation 'alloc-lost', due now.
 *   - A failed allocation the servers still wanted (desired 'run') is
 *     replaced while its group's policy allows: unlimited, or its
 *     reschedule_count (replacements of the instance so far) below the
 *     policy's attempts: an evaluation 'alloc-failed', due after the
 *     policy's delay. Otherwise the instance failed for good.
 *   - An allocation the schedulers stopped (preempted) is replaced: an
 *     evaluation 'alloc-stopped', due now.
 *   - Service and system allocations that complete count as failed ones:
 *     such jobs keep their instances running.
 *   - A batch job finishes when none of its allocations is active and
 *     every instance completed or failed for good: exit status 0 when
 *     every instance completed, else that of the last instance that failed
 *     for good.
 *   - A stopped (exiting) job finishes when its last allocation ends.
 * At most one evaluation per job is pending: a second reason only moves
 * its due time earlier.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jobspec.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

/* What lifecycle_alloc_ended reads about the allocation and its job. */
struct ended {
    const struct job_end *e;
    int native;
    int chunk_index;
    int group_index;
    int instance;
    int reschedule_count;
    const char *desired;
    const char *state;
    const char *type;
    int priority;
    const char *comment;
    double stime;
    /* the group's reschedule policy (native jobs) */
    int attempts;
    int64_t delay;
    int unlimited;
};

static int64_t
duration_or(const char *text, int64_t def)
{
    int64_t v;

    if (text == NULL || dv_jobspec_parse_duration(text, &v) < 0) {
        return def;
    }
    return v;
}

/* Sets a job finished (it must be running or exiting); records the event
 * and cancels what would place it again. */
static int
finish_job(struct dv_db *db, const struct ended *x, int has_exit,
           int exit_status, const char *how, struct notify_set *ns,
           struct job_event **ev, int *nev, struct dv_err *err)
{
    static const char finish[] =
        "UPDATE jobs SET state = 'finished', exit_status = $2, "
        "end_time = to_timestamp($3), "
        "used_cput = (SELECT coalesce(sum(used_cput), 0) FROM allocations "
        "WHERE job_id = $1), used_walltime = $4, "
        "used_mem = (SELECT coalesce(max(used_mem), 0) FROM allocations "
        "WHERE job_id = $1), comment = $5, "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND state IN ('running', 'exiting')";
    const struct job_end *e = x->e;
    char b1[24], b2[24], b3[32], b4[24];
    char *comment = fmt_end_comment(x->comment, x->stime, how);
    int64_t wall =
        x->stime > 0 && e->when > x->stime ? (int64_t)(e->when - x->stime) : 0;
    const char *p[] = {dv_db_i64(b1, e->job_id),
                       has_exit ? dv_db_i64(b2, exit_status) : NULL,
                       dv_db_double(b3, e->when), dv_db_i64(b4, wall), comment};
    int64_t n = dv_db_exec_cmd(db, finish, 5, p, err);

    free(comment);
    if (n < 0 || db_cancel_evals(db, e->job_id, "job finished", err) < 0) {
        return -1;
    }
    if (n > 0) {
        db_add_event(ev, nev, e->job_id, "finished", 1,
                     has_exit ? exit_status : 0);
        notify_add_job(ns, e->job_id);
    }
    return 0;
}

static int
any_active(struct dv_db *db, int64_t job_id, struct dv_err *err)
{
    /* One probe of the partial index allocations_job_active. */
    static const char sql[] =
        "SELECT EXISTS (SELECT 1 FROM allocations WHERE job_id = $1 "
        "AND client_status IN " DB_ACTIVE " AND end_time IS NULL" ") AS active";
    char b1[24];
    const char *p[] = {dv_db_i64(b1, job_id)};
    PGresult *res = dv_db_exec(db, sql, 1, p, err);
    int active;

    if (res == NULL) {
        return -1;
    }
    active = dv_db_get_bool(res, 0, "active", 1);
    PQclear(res);
    return active;
}

/*
 * A native batch job with no active allocation: finished when every
 * instance 0..count-1 of every group either completed (an allocation of
 * it completed while wanted: one stopped by the servers, e.g. preempted,
 * did not finish its work, whatever noded reports) or failed for good (its latest allocation failed, was
 * wanted, and the group's policy allows no more replacements). An instance
 * without allocations, or whose latest allocation was lost, stopped by the
 * schedulers, or failed with attempts left, waits for the schedulers.
 */
static int
batch_maybe_finish(struct dv_db *db, const struct ended *x,
                   struct notify_set *ns, struct job_event **ev, int *nev,
                   struct dv_err *err)
{
    static const char tally[] =
        "WITH g AS (SELECT (x.o - 1)::int AS gi, "
        "greatest((x.g->>'count')::int, 0) AS cnt, "
        "coalesce((x.g->'reschedule'->>'attempts')::int, 0) AS attempts, "
        "coalesce((x.g->'reschedule'->>'unlimited')::boolean, false) "
        "AS unlimited FROM jobs j, "
        "jsonb_array_elements(j.spec->'groups') WITH ORDINALITY AS x(g, o) "
        "WHERE j.id = $1), "
        "inst AS (SELECT gi, attempts, unlimited, "
        "generate_series(0, cnt - 1) AS i FROM g), "
        "a AS (SELECT group_index, instance, id, client_status, "
        "desired_status, exit_status, end_time, reschedule_count, "
        "bool_or(client_status = 'complete' AND desired_status = 'run') "
        "OVER w AS completed, "
        "row_number() OVER (w ORDER BY id DESC) AS rn "
        "FROM allocations WHERE job_id = $1 "
        "WINDOW w AS (PARTITION BY group_index, instance)), "
        "s AS (SELECT inst.attempts, inst.unlimited, a.* FROM inst "
        "LEFT JOIN a ON a.group_index = inst.gi AND a.instance = inst.i "
        "AND a.rn = 1), "
        "f AS (SELECT * FROM s WHERE NOT coalesce(completed, false) "
        "AND client_status = 'failed' AND desired_status = 'run' "
        "AND NOT unlimited AND reschedule_count >= attempts) "
        "SELECT (SELECT count(*) FROM s) AS instances, "
        "(SELECT count(*) FROM s WHERE completed) AS completed, "
        "(SELECT count(*) FROM f) AS failed, "
        "(SELECT coalesce(f.exit_status, -1) FROM f "
        "ORDER BY f.end_time DESC NULLS LAST, f.id DESC LIMIT 1) AS last_exit";
    char b1[24];
    const char *p[] = {dv_db_i64(b1, x->e->job_id)};
    PGresult *res;
    int64_t instances, completed, failed;
    int exit_status, rc;
    char how[160];

    rc = any_active(db, x->e->job_id, err);
    if (rc != 0) {
        return rc < 0 ? -1 : 0;
    }
    res = dv_db_exec(db, tally, 1, p, err);
    if (res == NULL) {
        return -1;
    }
    instances = dv_db_get_i64(res, 0, "instances", 0);
    completed = dv_db_get_i64(res, 0, "completed", 0);
    failed = dv_db_get_i64(res, 0, "failed", 0);
    exit_status = failed > 0 ? (int)dv_db_get_i64(res, 0, "last_exit", -1) : 0;
    PQclear(res);
    if (completed + failed < instances) {
        return 0; /* some instance still waits for a (re)placement */
    }
    snprintf(how, sizeof(how),
             "finished: %lld of %lld instance%s completed, %lld failed",
             (long long)completed, (long long)instances,
             instances == 1 ? "" : "s", (long long)failed);
    return finish_job(db, x, 1, exit_status, how, ns, ev, nev, err);
}

/* Asks the schedulers to look at the job: an evaluation due after delay
 * seconds (0: now). */
static int
wake(struct dv_db *db, const struct ended *x, const char *why, int64_t delay,
     struct notify_set *ns, struct dv_err *err)
{
    /* At most one pending evaluation per job; when one already waits, the
     * earlier of the two due times wins (NULL: due now). */
    static const char insert_eval[] =
        "INSERT INTO evaluations (job_id, triggered_by, status, priority, "
        "create_time, wait_until, modify_index) "
        "VALUES ($1, $2, 'pending', $3, to_timestamp($4), to_timestamp($5), "
        "nextval('modify_index_seq')) "
        "ON CONFLICT (job_id) WHERE status = 'pending' DO UPDATE SET "
        "wait_until = CASE WHEN evaluations.wait_until IS NULL "
        "OR EXCLUDED.wait_until IS NULL THEN NULL "
        "ELSE least(evaluations.wait_until, EXCLUDED.wait_until) END, "
        "modify_index = EXCLUDED.modify_index";
    const struct job_end *e = x->e;
    char b1[24], b3[24], b4[32], b5[32];
    const char *p[] = {
        dv_db_i64(b1, e->job_id),
        why,
        dv_db_i64(b3, x->priority),
        dv_db_double(b4, e->now),
        delay > 0 ? dv_db_double(b5, e->now + (double)delay) : NULL,
    };

    if (dv_db_exec_cmd(db, insert_eval, 5, p, err) < 0) {
        return -1;
    }
    ns->evals = 1;
    notify_add_job(ns, e->job_id);
    return 0;
}

static int
native_ended(struct dv_db *db, const struct ended *x, struct notify_set *ns,
             struct job_event **ev, int *nev, struct dv_err *err)
{
    const struct job_end *e = x->e;
    int batch = strcmp(x->type, "batch") == 0;
    int failed;

    if (strcmp(x->state, "exiting") == 0) {
        /* Stopped: finished once nothing of it runs any more. */
        int active = any_active(db, e->job_id, err);
        if (active != 0) {
            return active < 0 ? -1 : 0;
        }
        return finish_job(db, x, e->has_exit || e->kind == END_LOST,
                          e->kind == END_LOST ? -20 : e->exit_status,
                          "terminated", ns, ev, nev, err);
    }
    if (strcmp(x->state, "running") != 0) {
        return 0; /* finished already, or an old run's allocation */
    }
    failed = strcmp(e->client_status, "failed") == 0 ||
             (!batch && strcmp(e->client_status, "complete") == 0);
    if (e->kind == END_LOST) {
        return wake(db, x, "alloc-lost", 0, ns, err);
    }
    if (strcmp(x->desired, "run") != 0) {
        /* Stopped by a scheduler (preempted): placed again. */
        return wake(db, x, "alloc-stopped", 0, ns, err);
    }
    if (failed) {
        if (x->unlimited || x->reschedule_count < x->attempts) {
            return wake(db, x, "alloc-failed", x->delay, ns, err);
        }
        /* failed for good */
    }
    if (!batch) {
        return 0; /* services and system jobs end only when stopped */
    }
    return batch_maybe_finish(db, x, ns, ev, nev, err);
}

int
lifecycle_alloc_ended(struct dv_db *db, const struct job_end *e,
                      struct notify_set *ns, struct job_event **ev, int *nev,
                      struct dv_err *err)
{
    static const char read_alloc[] =
        "SELECT a.chunk_index, a.group_index, a.instance, a.desired_status, "
        "a.array_index, "
        "a.reschedule_count, (SELECT n.status = 'down' FROM nodes n "
        "WHERE n.id = a.node_id) AS node_down, "
        "j.state, j.type, j.priority, j.comment, "
        "j.spec ? 'groups' AS native, "
        "extract(epoch FROM j.start_time)::float8 AS stime, "
        "(r.p->>'attempts')::int AS attempts, r.p->>'delay' AS delay, "
        "(r.p->>'unlimited')::boolean AS unlimited "
        "FROM allocations a JOIN jobs j ON j.id = a.job_id "
        "CROSS JOIN LATERAL (SELECT "
        "j.spec->'groups'->a.group_index->'reschedule' AS p) r "
        "WHERE a.id = $1";
    char b1[24];
    const char *p[] = {dv_db_i64(b1, e->alloc_id)};
    PGresult *res = dv_db_exec(db, read_alloc, 1, p, err);
    struct ended x;
    int rc = 0;

    if (res == NULL) {
        return -1;
    }
    if (PQntuples(res) == 0) {
        goto out;
    }
    memset(&x, 0, sizeof(x));
    x.e = e;
    x.native = dv_db_get_bool(res, 0, "native", 0);
    x.chunk_index = (int)dv_db_get_i64(res, 0, "chunk_index", 0);
    x.desired = dv_db_get(res, 0, "desired_status");
    if (!x.native) {
        /* PBS: chunk 0 is the job; any chunk lost with its node (the
         * liveness pass) requeues it. A chunk other than 0 that a live
         * node reports holds no process of the job: nothing changes. */
        if (x.chunk_index == 0 ||
            (e->kind == END_LOST && dv_db_get_bool(res, 0, "node_down", 0))) {
            rc = dv_db_is_null(res, 0, "array_index")
                     ? db_job_end(db, e, x.desired, ns, ev, nev, err)
                     : array_alloc_ended(
                           db, e, (int)dv_db_get_i64(res, 0, "array_index", 0),
                           x.desired, ns, ev, nev, err);
        }
        goto out;
    }
    x.group_index = (int)dv_db_get_i64(res, 0, "group_index", 0);
    x.instance = (int)dv_db_get_i64(res, 0, "instance", 0);
    x.state = dv_db_get(res, 0, "state");
    x.type = dv_db_get(res, 0, "type");
    x.priority = (int)dv_db_get_i64(res, 0, "priority", 0);
    x.comment = dv_db_get(res, 0, "comment");
    x.stime = dv_db_get_double(res, 0, "stime", 0);
    x.reschedule_count = (int)dv_db_get_i64(res, 0, "reschedule_count", 0);
    x.attempts = (int)dv_db_get_i64(res, 0, "attempts", 0);
    x.delay = duration_or(dv_db_get(res, 0, "delay"), 0);
    x.unlimited = dv_db_get_bool(res, 0, "unlimited", 0);
    rc = native_ended(db, &x, ns, ev, nev, err);
out:
    PQclear(res);
    return rc;
}
