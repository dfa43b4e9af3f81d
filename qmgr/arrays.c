/*
 * Array jobs (qsub -J) in qmgr: the array row at submit, what a subjob's
 * end means (finished, or requeued when lost or preempted), the array's
 * end, qdel of subjobs, and what the API shows of an array
 * (docs/internals/qmgr.md, "Arrays"). Every function runs inside the
 * caller's transaction, which holds the array's job row locked.
 *
 * Hooks for other parts of the queue: array_subjob_ended is called once
 * when a subjob finishes, array_ended once when the whole array does, both
 * inside the transaction that made it so. Dependencies on arrays and
 * subjobs resolve in the database (triggers on jobs and subjobs rows,
 * sql/0013-arrdep.sql), not here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

int
array_insert(struct dv_db *db, int64_t job_id, const char *text,
             struct dv_err *err)
{
    static const char sql[] =
        "INSERT INTO job_arrays (job_id, first_index, last_index, step, "
        "max_run, total, next_index, modify_index) "
        "VALUES ($1, $2, $3, $4, $5, $6, $2, nextval('modify_index_seq'))";
    struct dv_array a;
    char b1[24], b2[24], b3[24], b4[24], b5[24], b6[24];

    if (dv_array_parse(text, &a) < 0) {
        dv_err_set(err, DV_EINVAL, "bad_attribute_value",
                   "Illegal attribute or resource value "
                   "array_indices_submitted");
        return -1;
    }
    const char *p[] = {
        dv_db_i64(b1, job_id),    dv_db_i64(b2, a.first),
        dv_db_i64(b3, a.last),    dv_db_i64(b4, a.step),
        dv_db_i64(b5, a.max_run), dv_db_i64(b6, dv_array_count(&a))};
    return dv_db_exec_cmd(db, sql, 6, p, err) < 0 ? -1 : 0;
}

/* Wakes the schedulers for the array when subjobs are left to place. */
static int
wake_array(struct dv_db *db, int64_t job_id, const char *why, int priority,
           double now, struct notify_set *ns, struct dv_err *err)
{
    static const char left[] =
        "SELECT a.next_index <= a.last_index OR EXISTS (SELECT 1 FROM "
        "subjobs s WHERE s.job_id = a.job_id AND s.state = 'queued') AS more "
        "FROM job_arrays a JOIN jobs j ON j.id = a.job_id "
        "WHERE a.job_id = $1 AND j.state IN ('queued', 'running') "
        "AND j.hold_types = ''";
    char b1[24];
    const char *p[] = {dv_db_i64(b1, job_id)};
    PGresult *res = dv_db_exec(db, left, 1, p, err);
    int more;

    if (res == NULL) {
        return -1;
    }
    more = PQntuples(res) > 0 && dv_db_get_bool(res, 0, "more", 0);
    PQclear(res);
    if (!more) {
        return 0;
    }
    if (db_insert_eval(db, job_id, why, priority, now, err) < 0) {
        return -1;
    }
    ns->evals = 1;
    return 0;
}

int
array_subjob_ended(struct dv_db *db, int64_t job_id, int idx, int exit_status,
                   struct notify_set *ns, struct dv_err *err)
{
    /* The dependency engine's point of entry: "subjob idx of array job_id
     * ended with exit_status". Nothing more to do here yet. */
    (void)db;
    (void)err;
    log_debug("job %lld[%d] ended with status %d", (long long)job_id, idx,
              exit_status);
    notify_add_job(ns, job_id);
    return 0;
}

int
array_ended(struct dv_db *db, int64_t job_id, int has_exit, int exit_status,
            struct notify_set *ns, struct dv_err *err)
{
    /* The dependency engine's point of entry: "array job_id ended". */
    (void)db;
    (void)err;
    log_debug("job %lld[] ended%s with status %d", (long long)job_id,
              has_exit ? "" : " (deleted, no exit status)", exit_status);
    notify_add_job(ns, job_id);
    return 0;
}

/* The subjobs of a finished array that were not finished yet (requeued
 * ones, or rows of a deleted array) are closed as deleted. */
static int
close_subjobs(struct dv_db *db, int64_t job_id, double when, struct dv_err *err)
{
    static const char sql[] =
        "UPDATE subjobs SET state = 'finished', end_time = to_timestamp($2), "
        "deleted = true, modify_index = nextval('modify_index_seq') "
        "WHERE job_id = $1 AND state <> 'finished'";
    char b1[24], b2[32];
    const char *p[] = {dv_db_i64(b1, job_id), dv_db_double(b2, when)};

    return dv_db_exec_cmd(db, sql, 2, p, err) < 0 ? -1 : 0;
}

/* Finishes the array (its row locked, running or exiting): Exit_status 0
 * when every subjob that ran exited 0, 1 when one exited non-zero (a
 * deleted running one: 271), 2 when one ended with a PBS error (negative),
 * as PBS's chk_array_doneness; subjobs not finished yet (deleted array)
 * are finished with it. */
static int
finish_array(struct dv_db *db, int64_t job_id, double when, const char *how,
             struct notify_set *ns, struct job_event **ev, int *nev,
             struct dv_err *err)
{
    static const char status[] =
        "SELECT CASE WHEN any_error THEN 2 WHEN any_nonzero THEN 1 ELSE 0 "
        "END AS st FROM job_arrays WHERE job_id = $1";
    static const char finish[] =
        "UPDATE jobs SET state = 'finished', exit_status = $2, "
        "end_time = to_timestamp($3), comment = coalesce(comment || ' and ' "
        "|| $4, 'Job Array ' || $4), "
        "used_cput = (SELECT coalesce(sum(used_cput), 0) FROM subjobs "
        "WHERE job_id = $1), used_walltime = (SELECT coalesce(sum("
        "used_walltime), 0) FROM subjobs WHERE job_id = $1), "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND state IN ('running', 'exiting', 'queued', 'held')";
    char b1[24], b2[24], b3[32];
    const char *p1[] = {dv_db_i64(b1, job_id)};
    PGresult *res = dv_db_exec(db, status, 1, p1, err);
    int st;
    int64_t n;

    if (res == NULL) {
        return -1;
    }
    st = PQntuples(res) > 0 ? (int)dv_db_get_i64(res, 0, "st", 0) : 0;
    PQclear(res);
    {
        const char *p[] = {b1, dv_db_i64(b2, st), dv_db_double(b3, when), how};
        n = dv_db_exec_cmd(db, finish, 4, p, err);
    }
    if (n < 0) {
        return -1;
    }
    if (close_subjobs(db, job_id, when, err) < 0 ||
        db_cancel_evals(db, job_id, "job finished", err) < 0) {
        return -1;
    }
    if (n > 0) {
        db_add_event(ev, nev, job_id, "finished", 1, st);
        return array_ended(db, job_id, 1, st, ns, err);
    }
    return 0;
}

/* Subjobs idx[0..n-1] finished (with exit_status when has_exit): counts
 * them, tells the hook of each, and finishes the array when they were the
 * last (or, for a deleted array, when nothing runs any more). */
static int
subjobs_done(struct dv_db *db, int64_t job_id, const int *idx, int n,
             int has_exit, int exit_status, const char *job_state, int priority,
             double when, double now, struct notify_set *ns,
             struct job_event **ev, int *nev, struct dv_err *err)
{
    static const char count[] =
        "UPDATE job_arrays SET done = done + $4, "
        "any_nonzero = any_nonzero OR ($2::boolean AND $3::int > 0), "
        "any_error = any_error OR ($2::boolean AND $3::int < 0), "
        "modify_index = nextval('modify_index_seq') "
        "WHERE job_id = $1 RETURNING done, total";
    char b1[24], b3[24], b4[24];
    const char *p[] = {dv_db_i64(b1, job_id), has_exit ? "true" : "false",
                       dv_db_i64(b3, exit_status), dv_db_i64(b4, n)};
    PGresult *res = dv_db_exec(db, count, 4, p, err);
    int all;

    if (res == NULL) {
        return -1;
    }
    all = PQntuples(res) > 0 &&
          dv_db_get_i64(res, 0, "done", 0) >= dv_db_get_i64(res, 0, "total", 1);
    PQclear(res);
    for (int i = 0; i < n; i++) {
        if (array_subjob_ended(db, job_id, idx[i], has_exit ? exit_status : 0,
                               ns, err) < 0) {
            return -1;
        }
    }
    if (all) {
        return finish_array(db, job_id, when, "finished", ns, ev, nev, err);
    }
    if (strcmp(job_state, "exiting") == 0) {
        int active = db_count_active(db, job_id, err);
        if (active < 0) {
            return -1;
        }
        return active == 0 ? finish_array(db, job_id, when, "terminated", ns,
                                          ev, nev, err)
                           : 0;
    }
    return wake_array(db, job_id, "subjob-ended", priority, now, ns, err);
}

int
array_alloc_ended(struct dv_db *db, const struct job_end *e, int idx,
                  const char *desired, struct notify_set *ns,
                  struct job_event **ev, int *nev, struct dv_err *err)
{
    static const char read[] =
        "SELECT s.state, s.comment, j.state AS job_state, j.priority, "
        "extract(epoch FROM s.start_time)::float8 AS stime, "
        "(SELECT extract(epoch FROM create_time)::float8 FROM allocations "
        "WHERE id = $3) AS atime "
        "FROM subjobs s JOIN jobs j ON j.id = s.job_id "
        "WHERE s.job_id = $1 AND s.array_index = $2 FOR UPDATE OF s";
    static const char requeue[] =
        "UPDATE subjobs SET state = 'queued', exec_host = NULL, comment = $3, "
        "modify_index = nextval('modify_index_seq') "
        "WHERE job_id = $1 AND array_index = $2 AND state = 'running'";
    static const char finish[] =
        "UPDATE subjobs SET state = 'finished', exit_status = $3, "
        "end_time = to_timestamp($4), used_cput = $5, used_walltime = $6, "
        "used_mem = $7, comment = $8, deleted = $9, "
        "modify_index = nextval('modify_index_seq') "
        "WHERE job_id = $1 AND array_index = $2 "
        "AND state IN ('running', 'exiting')";
    char b1[24], b2[24], b3[24], b4[32], b5[24], b6[24], b7[24];
    const char *p[] = {dv_db_i64(b1, e->job_id), dv_db_i64(b2, idx),
                       dv_db_i64(b3, e->alloc_id)};
    PGresult *row = dv_db_exec(db, read, 3, p, err);
    const char *state, *job_state;
    int exiting, preempted, rc = -1, priority;
    double stime;
    char *comment = NULL;

    if (row == NULL) {
        return -1;
    }
    if (PQntuples(row) == 0) {
        rc = 0;
        goto out;
    }
    state = dv_db_get(row, 0, "state");
    job_state = dv_db_get(row, 0, "job_state");
    priority = (int)dv_db_get_i64(row, 0, "priority", 0);
    stime = dv_db_get_double(row, 0, "stime", 0);
    exiting =
        strcmp(state, "exiting") == 0 || strcmp(job_state, "exiting") == 0;
    preempted = strcmp(state, "running") == 0 && strcmp(desired, "stop") == 0 &&
                !exiting;
    if (strcmp(state, "running") != 0 && strcmp(state, "exiting") != 0) {
        rc = 0; /* requeued or finished already */
        goto out;
    }
    /* A chunk of an earlier run of the subjob says nothing about this one. */
    if (!exiting && !dv_db_is_null(row, 0, "atime") &&
        dv_db_get_double(row, 0, "atime", 0) + 0.0005 < stime) {
        rc = 0;
        goto out;
    }
    if (!exiting && (e->kind == END_LOST || preempted)) {
        /* Arrays are always rerunnable: the subjob, not the array, runs
         * again. */
        const char *pr[] = {
            b1, b2,
            preempted ? "Job requeued: preempted by higher-priority work"
                      : "Job requeued: its allocation was lost; waiting to "
                        "run again"};
        if (dv_db_exec_cmd(db, requeue, 3, pr, err) < 0 ||
            db_stop_subjob_allocs(db, e->job_id, idx, e->alloc_id,
                                  "job lost an allocation", ns, err) < 0 ||
            db_insert_eval(db, e->job_id,
                           preempted ? "alloc-stopped" : "alloc-lost", priority,
                           e->now, err) < 0) {
            goto out;
        }
        ns->evals = 1;
        notify_add_job(ns, e->job_id);
        log_notice("job %lld[%d] requeued: %s", (long long)e->job_id, idx,
                   preempted ? "preempted" : "allocation lost");
        rc = 0;
        goto out;
    }
    {
        int exit_status;
        int64_t walltime;
        const char *how;

        db_end_outcome(e, exiting, stime, &exit_status, &walltime, &how);
        comment = fmt_end_comment(dv_db_get(row, 0, "comment"), stime, how);
        const char *pf[] = {b1,
                            b2,
                            dv_db_i64(b3, exit_status),
                            dv_db_double(b4, e->when),
                            dv_db_i64(b5, e->has_used ? e->used_cput : 0),
                            dv_db_i64(b6, walltime),
                            dv_db_i64(b7, e->has_used ? e->used_mem : 0),
                            comment,
                            exiting ? "true" : "false"};
        if (dv_db_exec_cmd(db, finish, 9, pf, err) < 0 ||
            db_stop_subjob_allocs(db, e->job_id, idx, e->alloc_id, "job ended",
                                  ns, err) < 0 ||
            subjobs_done(db, e->job_id, &idx, 1, 1, exit_status, job_state,
                         priority, e->when, e->now, ns, ev, nev, err) < 0) {
            goto out;
        }
    }
    notify_add_job(ns, e->job_id);
    rc = 0;
out:
    free(comment);
    PQclear(row);
    return rc;
}

/* "Unknown Job Id 124[7].srv" for the subjobs c names. */
static void
subjob_not_found(const struct db_job_change *c, struct dv_err *err)
{
    char jid[300];

    dv_array_id_format((long long)c->id, (enum dv_array_part)c->array_part,
                       c->array_lo, c->array_hi, c->server, jid, sizeof(jid));
    dv_err_set(err, DV_ENOTFOUND, "job_not_found", "Unknown Job Id %s", jid);
}

/* qdel of subjobs lo..hi (PBS's req_delete): running ones are stopped
 * (each finishes, terminated, when its chunk 0 ends); queued ones (no row,
 * or requeued) are finished at once, deleted, never to run. Set-based, so
 * that a range of a large array costs a few statements. */
static int
delete_range(struct dv_db *db, const struct db_job_change *c, int lo, int hi,
             const char *job_state, int priority, struct notify_set *ns,
             struct dv_err *err)
{
    static const char to_exiting[] =
        "UPDATE subjobs SET state = 'exiting', "
        "modify_index = nextval('modify_index_seq') "
        "WHERE job_id = $1 AND array_index BETWEEN $2 AND $3 "
        "AND state = 'running' RETURNING array_index";
    static const char gone[] =
        "INSERT INTO subjobs (job_id, array_index, state, comment, end_time, "
        "deleted, modify_index) SELECT $1, g.i, 'finished', 'Job deleted', "
        "to_timestamp($4), true, nextval('modify_index_seq') "
        "FROM job_arrays a, generate_series(a.first_index, a.last_index, "
        "a.step) AS g(i) WHERE a.job_id = $1 AND g.i BETWEEN $2 AND $3 "
        "ON CONFLICT (job_id, array_index) DO UPDATE SET state = 'finished', "
        "comment = 'Job deleted', end_time = EXCLUDED.end_time, "
        "deleted = true, modify_index = EXCLUDED.modify_index "
        "WHERE subjobs.state = 'queued' RETURNING array_index";
    char b1[24], b2[24], b3[24], b4[32];
    const char *p[] = {dv_db_i64(b1, c->id), dv_db_i64(b2, lo),
                       dv_db_i64(b3, hi), dv_db_double(b4, c->now)};
    struct job_event *ev = NULL;
    PGresult *res = dv_db_exec(db, to_exiting, 3, p, err);
    int *idx = NULL, n, nev = 0, rc = -1;

    if (res == NULL) {
        return -1;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        if (db_stop_subjob_allocs(db, c->id,
                                  (int)dv_db_get_i64(res, i, "array_index", 0),
                                  0, "deleted", ns, err) < 0) {
            goto out;
        }
    }
    PQclear(res);
    res = dv_db_exec(db, gone, 4, p, err);
    if (res == NULL) {
        goto out;
    }
    n = PQntuples(res);
    idx = dv_xcalloc((size_t)n + 1, sizeof(int));
    for (int i = 0; i < n; i++) {
        idx[i] = (int)dv_db_get_i64(res, i, "array_index", 0);
    }
    if (n > 0 && subjobs_done(db, c->id, idx, n, 0, 0, job_state, priority,
                              c->now, c->now, ns, &ev, &nev, err) < 0) {
        goto out;
    }
    rc = 0;
out:
    free(idx);
    free(ev);
    PQclear(res);
    return rc;
}

int
array_delete_subjobs(struct dv_db *db, struct db_job_change *c, PGresult *job,
                     struct notify_set *ns, struct dv_err *err)
{
    static const char range[] =
        "SELECT first_index, last_index, step FROM job_arrays "
        "WHERE job_id = $1";
    static const char one[] =
        "SELECT state FROM subjobs WHERE job_id = $1 AND array_index = $2";
    char b1[24], b2[24];
    const char *p[] = {dv_db_i64(b1, c->id), dv_db_i64(b2, c->array_lo)};
    PGresult *res;
    struct dv_array a;
    const char *job_state = dv_db_get(job, 0, "state");
    int priority = (int)dv_db_get_i64(job, 0, "priority", 0);

    res = dv_db_exec(db, range, 1, p, err);
    if (res == NULL) {
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        subjob_not_found(c, err); /* not an array */
        return -1;
    }
    a.first = (int)dv_db_get_i64(res, 0, "first_index", 0);
    a.last = (int)dv_db_get_i64(res, 0, "last_index", 0);
    a.step = (int)dv_db_get_i64(res, 0, "step", 1);
    a.max_run = 0;
    PQclear(res);
    /* PBS: a subjob the array does not have, or a range that starts past
     * its last index, is an unknown job */
    if ((c->array_part == DV_ARRAY_ONE && !dv_array_has(&a, c->array_lo)) ||
        (c->array_part == DV_ARRAY_RANGE && c->array_lo > a.last)) {
        subjob_not_found(c, err);
        return -1;
    }
    if (strcmp(job_state, "finished") == 0) {
        dv_err_set(err, DV_ECONFLICT, "job_finished", "Job has finished");
        return -1;
    }
    if (c->array_part == DV_ARRAY_ONE) {
        /* one subjob: finished or exiting ones are errors (a range skips
         * them) */
        const char *st;
        int bad;

        res = dv_db_exec(db, one, 2, p, err);
        if (res == NULL) {
            return -1;
        }
        st = PQntuples(res) > 0 ? dv_db_get(res, 0, "state") : "queued";
        bad = strcmp(st, "finished") == 0  ? 1
              : strcmp(st, "exiting") == 0 ? 2
                                           : 0;
        PQclear(res);
        if (bad == 1) {
            dv_err_set(err, DV_ECONFLICT, "subjob_finished",
                       "Request invalid for finished array subjob");
            return -1;
        }
        if (bad == 2) {
            dv_err_set(err, DV_ECONFLICT, "bad_state",
                       "Request invalid for state of job");
            return -1;
        }
    }
    if (delete_range(db, c, c->array_lo, c->array_hi, job_state, priority, ns,
                     err) < 0) {
        return -1;
    }
    dv_strlcpy(c->new_state, job_state, sizeof(c->new_state));
    notify_add_job(ns, c->id);
    return 0;
}

int
array_deleted(struct dv_db *db, int64_t job_id, double now,
              struct notify_set *ns, struct dv_err *err)
{
    if (close_subjobs(db, job_id, now, err) < 0) {
        return -1;
    }
    return array_ended(db, job_id, 0, 0, ns, err);
}

int
array_begun(const PGresult *job)
{
    return dv_db_get_bool(job, 0, "is_array", 0) &&
           strcmp(dv_db_get(job, 0, "state"), "running") == 0;
}

int
array_hold(struct dv_db *db, struct db_job_change *c, PGresult *job,
           struct notify_set *ns, struct dv_err *err)
{
    static const char set_types[] =
        "UPDATE jobs SET hold_types = $2, "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND state = 'running'";
    const char *t = dv_db_get(job, 0, "hold_types");
    unsigned old = 0, now;
    char types[4], b1[24];
    const char *p[] = {dv_db_i64(b1, c->id), types};

    if (t != NULL && *t != '\0' && hold_types_parse(t, &old) < 0) {
        old = 1u;
    }
    now = c->op == JOB_OP_HOLD ? old | c->hold_mask : old & ~c->hold_mask;
    if (now == old) {
        return 0;
    }
    hold_types_format(now, types);
    if (dv_db_exec_cmd(db, set_types, 2, p, err) < 0) {
        return -1;
    }
    if (now != 0) {
        /* nothing more is placed; running subjobs go on */
        if (db_cancel_evals(db, c->id, "array held", err) < 0) {
            return -1;
        }
    } else if (wake_array(db, c->id, "job-release",
                          (int)dv_db_get_i64(job, 0, "priority", 0), c->now, ns,
                          err) < 0) {
        return -1;
    }
    dv_strlcpy(c->new_state, "running", sizeof(c->new_state));
    notify_add_job(ns, c->id);
    return 0;
}

/* --- what the API shows --- */

int
array_load(struct dv_db *db, struct db_jobs *r, struct dv_err *err)
{
    /* array_indices_remaining: the queued indexes (no row, or requeued)
     * as PBS's cvt_range writes them: runs of three or more "X-Y[:step]",
     * two "X,Y", none "-"; read only for full answers. */
    static const char arrays[] =
        "SELECT a.job_id, a.first_index, a.last_index, a.step, a.max_run, "
        "a.total, a.done, (SELECT count(*) FROM subjobs s WHERE "
        "s.job_id = a.job_id AND s.state = 'running') AS running, "
        "(SELECT count(*) FROM subjobs s WHERE s.job_id = a.job_id "
        "AND s.state = 'exiting') AS exiting, "
        "CASE WHEN $2::boolean THEN (SELECT coalesce(string_agg(CASE "
        "WHEN lo = hi THEN lo::text WHEN hi = lo + a.step "
        "THEN lo || ',' || hi ELSE lo || '-' || hi || CASE WHEN a.step > 1 "
        "THEN ':' || a.step ELSE '' END END, ',' ORDER BY lo), '-') FROM "
        "(SELECT min(i) AS lo, max(i) AS hi FROM (SELECT g.i, "
        "g.i - a.step * row_number() OVER (ORDER BY g.i) AS grp "
        "FROM generate_series(a.first_index, a.last_index, a.step) AS g(i) "
        "WHERE NOT EXISTS (SELECT 1 FROM subjobs s WHERE "
        "s.job_id = a.job_id AND s.array_index = g.i "
        "AND s.state <> 'queued')) x GROUP BY grp) runs) END AS remaining "
        "FROM job_arrays a WHERE a.job_id = ANY($1::bigint[]) "
        "ORDER BY a.job_id";
    /* exec_vnode's parts for one subjob (qstat -f 124[7]): the chunks of
     * its latest run, placed with its start_time */
    static const char subjobs[] =
        "SELECT s.job_id, s.array_index, s.state, s.exit_status, "
        "s.exec_host, s.comment, s.run_count, "
        "floor(extract(epoch FROM s.start_time))::bigint AS stime, "
        "floor(extract(epoch FROM s.end_time))::bigint AS end_time, "
        "s.used_cput, s.used_walltime, s.used_mem, "
        "CASE WHEN $2::int >= 0 THEN (SELECT json_agg(json_build_array("
        "n.name, a.ncpus, a.mem, a.ngpus) ORDER BY a.chunk_index, a.id) "
        "FROM allocations a JOIN nodes n ON n.id = a.node_id "
        "WHERE a.job_id = s.job_id AND a.array_index = s.array_index "
        "AND a.create_time = s.start_time AND a.client_status <> 'lost') "
        "END AS vnode FROM subjobs s "
        "WHERE s.job_id = ANY($1::bigint[]) AND ($2::int < 0 "
        "OR s.array_index = $2) ORDER BY s.job_id, s.array_index";
    struct dv_buf ids;
    int n = PQntuples(r->jobs), full = 0, fcol, rc = -1;
    char b2[24];

    PQclear(r->arrays);
    PQclear(r->subjobs);
    r->arrays = NULL;
    r->subjobs = NULL;
    fcol = PQfnumber(r->jobs, "spec");
    for (int i = 0; i < n && fcol >= 0 && !full; i++) {
        full = !PQgetisnull(r->jobs, i, fcol);
    }
    dv_buf_init(&ids);
    dv_buf_putc(&ids, '{');
    for (int i = 0; i < n; i++) {
        dv_buf_printf(&ids, "%s%s", i > 0 ? "," : "",
                      dv_db_get(r->jobs, i, "id"));
    }
    dv_buf_putc(&ids, '}');
    if (n == 0) {
        rc = 0;
        goto out;
    }
    {
        const char *p[] = {
            dv_buf_str(&ids),
            full || r->subjobs_want != DB_SUBJOBS_NONE ? "true" : "false"};
        r->arrays = dv_db_exec(db, arrays, 2, p, err);
    }
    if (r->arrays == NULL) {
        goto out;
    }
    if (PQntuples(r->arrays) > 0 && r->subjobs_want != DB_SUBJOBS_NONE) {
        const char *p[] = {dv_buf_str(&ids),
                           dv_db_i64(b2, r->subjobs_want == DB_SUBJOBS_ONE
                                             ? r->subjob_index
                                             : -1)};
        r->subjobs = dv_db_exec(db, subjobs, 2, p, err);
        if (r->subjobs == NULL) {
            goto out;
        }
    }
    rc = 0;
out:
    dv_buf_cleanup(&ids);
    return rc;
}

static int
find_row(const PGresult *res, const char *col, int64_t id)
{
    for (int i = 0; res != NULL && i < PQntuples(res); i++) {
        if (dv_db_get_i64(res, i, col, -1) == id) {
            return i;
        }
    }
    return -1;
}

static void
set_int_col(json_t *o, const char *key, const PGresult *res, int row,
            const char *col)
{
    json_object_set_new(o, key,
                        dv_db_is_null(res, row, col)
                            ? json_null()
                            : json_integer(dv_db_get_i64(res, row, col, 0)));
}

static void
set_str_col(json_t *o, const char *key, const PGresult *res, int row,
            const char *col)
{
    const char *v = dv_db_get(res, row, col);

    json_object_set_new(o, key, v != NULL ? json_string(v) : json_null());
}

/* exec_vnode from the parts [[host, ncpus, mem, ngpus], ...] as JSON text
 * (NULL: not read). */
static void
set_exec_vnode(json_t *o, const char *parts_json)
{
    json_t *parts = parts_json != NULL ? json_loads(parts_json, 0, NULL) : NULL;
    struct vnode_part *v;
    struct dv_buf b;
    size_t n = json_array_size(parts), i;
    json_t *e;

    if (n == 0) {
        json_decref(parts);
        return;
    }
    v = dv_xcalloc(n, sizeof(*v));
    json_array_foreach (parts, i, e) {
        v[i].host = json_string_value(json_array_get(e, 0));
        v[i].ncpus = (int)json_integer_value(json_array_get(e, 1));
        v[i].mem = (int64_t)json_integer_value(json_array_get(e, 2));
        v[i].ngpus = (int)json_integer_value(json_array_get(e, 3));
        if (v[i].host == NULL) {
            v[i].host = "";
        }
    }
    dv_buf_init(&b);
    fmt_exec_vnode(v, (int)n, &b);
    json_object_set_new(o, "exec_vnode", json_string(dv_buf_str(&b)));
    dv_buf_cleanup(&b);
    free(v);
    json_decref(parts);
}

/* A subjob as the API shows it: from its row, or queued (row < 0; held
 * while the array is held). */
static json_t *
subjob_json(int64_t id, int idx, const PGresult *res, int row,
            const char *server, const char *queued)
{
    json_t *o = json_object();
    char jid[300];

    dv_array_id_format((long long)id, DV_ARRAY_ONE, idx, idx, server, jid,
                       sizeof(jid));
    json_object_set_new(o, "index", json_integer(idx));
    json_object_set_new(o, "job_id", json_string(jid));
    if (row < 0) {
        json_object_set_new(o, "state", json_string(queued));
        return o;
    }
    set_str_col(o, "state", res, row, "state");
    set_int_col(o, "exit_status", res, row, "exit_status");
    set_str_col(o, "exec_host", res, row, "exec_host");
    set_exec_vnode(o, dv_db_get(res, row, "vnode"));
    set_str_col(o, "comment", res, row, "comment");
    set_int_col(o, "run_count", res, row, "run_count");
    set_int_col(o, "stime", res, row, "stime");
    set_int_col(o, "end_time", res, row, "end_time");
    if (!dv_db_is_null(res, row, "used_walltime")) {
        json_object_set_new(
            o, "resources_used",
            json_pack(
                "{s:I, s:I, s:I}", "cput",
                (json_int_t)dv_db_get_i64(res, row, "used_cput", 0), "walltime",
                (json_int_t)dv_db_get_i64(res, row, "used_walltime", 0), "mem",
                (json_int_t)dv_db_get_i64(res, row, "used_mem", 0)));
    } else if (!dv_db_is_null(res, row, "stime")) {
        /* running: what is known so far, as for a job */
        int64_t wall = (int64_t)dv_now() - dv_db_get_i64(res, row, "stime", 0);
        json_object_set_new(
            o, "resources_used",
            json_pack("{s:I, s:I, s:I}", "cput", (json_int_t)0, "walltime",
                      (json_int_t)(wall > 0 ? wall : 0), "mem", (json_int_t)0));
    }
    return o;
}

int
array_json_add(const struct db_jobs *r, int64_t id, const char *server,
               json_t *o)
{
    int row = find_row(r->arrays, "job_id", id);
    const PGresult *a = r->arrays;
    struct dv_array rng;
    struct dv_buf b;
    json_t *arr, *counts;
    const char *st;
    char jid[300];
    int64_t total, done, running, exiting;

    if (row < 0) {
        return 0;
    }
    dv_array_id_format((long long)id, DV_ARRAY_WHOLE, 0, 0, server, jid,
                       sizeof(jid));
    json_object_set_new(o, "job_id", json_string(jid));
    rng.first = (int)dv_db_get_i64(a, row, "first_index", 0);
    rng.last = (int)dv_db_get_i64(a, row, "last_index", 0);
    rng.step = (int)dv_db_get_i64(a, row, "step", 1);
    rng.max_run = (int)dv_db_get_i64(a, row, "max_run", 0);
    total = dv_db_get_i64(a, row, "total", 0);
    done = dv_db_get_i64(a, row, "done", 0);
    running = dv_db_get_i64(a, row, "running", 0);
    exiting = dv_db_get_i64(a, row, "exiting", 0);
    arr = json_object();
    dv_buf_init(&b);
    dv_array_format(&rng, &b);
    json_object_set_new(arr, "indices_submitted", json_string(dv_buf_str(&b)));
    dv_buf_cleanup(&b);
    set_str_col(arr, "indices_remaining", a, row, "remaining");
    json_object_set_new(arr, "max_run",
                        rng.max_run > 0 ? json_integer(rng.max_run)
                                        : json_null());
    st = json_string_value(json_object_get(o, "state"));
    if (st != NULL && strcmp(st, "finished") == 0) {
        /* a finished array: whatever never ran was deleted with it */
        done = total;
        running = exiting = 0;
        if (!dv_db_is_null(a, row, "remaining")) {
            json_object_set_new(arr, "indices_remaining", json_string("-"));
        }
    }
    counts = json_pack("{s:I, s:I, s:I, s:I}", "queued",
                       (json_int_t)(total - done - running - exiting),
                       "running", (json_int_t)running, "exiting",
                       (json_int_t)exiting, "expired", (json_int_t)done);
    json_object_set_new(arr, "state_count", counts);
    if (r->subjobs_want != DB_SUBJOBS_NONE) {
        const PGresult *s = r->subjobs;
        json_t *list = json_array();
        int ns = s != NULL ? PQntuples(s) : 0, k = 0;
        const char *ht = json_string_value(json_object_get(o, "hold_types"));
        const char *queued = ht != NULL && *ht != '\0' ? "held" : "queued";

        /* the rows of this job, in index order */
        while (k < ns && dv_db_get_i64(s, k, "job_id", 0) != id) {
            k++;
        }
        if (r->subjobs_want == DB_SUBJOBS_ONE) {
            if (dv_array_has(&rng, r->subjob_index)) {
                json_array_append_new(list, subjob_json(id, r->subjob_index, s,
                                                        k < ns ? k : -1, server,
                                                        queued));
            }
        } else {
            for (int64_t i = rng.first; i <= rng.last; i += rng.step) {
                int have = k < ns && dv_db_get_i64(s, k, "job_id", 0) == id &&
                           dv_db_get_i64(s, k, "array_index", -1) == i;
                json_array_append_new(
                    list,
                    subjob_json(id, (int)i, s, have ? k : -1, server, queued));
                if (have) {
                    k++;
                }
            }
        }
        json_object_set_new(arr, "subjobs", list);
    }
    json_object_set_new(o, "array", arr);
    return 1;
}
