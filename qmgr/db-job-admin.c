/*
 * The PBS management commands' changes to one job (docs/api.md "Jobs",
 * issue 4 item 7): qsig (the job's active allocations carry a signal to
 * their nodes), qrerun (stop a running job and requeue it), qmove (a
 * waiting job changes queue) and qalter (a waiting job's attributes and
 * resources change; a running job's walltime). Each runs in one
 * transaction under the job's row lock, with the evaluation the change
 * calls for; the rules of db.c apply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/depend.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

void
db_job_admin_clear(struct db_job_admin *a)
{
    db_jobs_clear(&a->out);
}

static int
waiting(const char *state)
{
    return strcmp(state, "queued") == 0 || strcmp(state, "held") == 0;
}

static int
bad_state(const char *state, struct dv_err *err)
{
    if (strcmp(state, "finished") == 0) {
        dv_err_set(err, DV_ECONFLICT, "job_finished", "Job has finished");
    } else {
        dv_err_set(err, DV_ECONFLICT, "bad_state",
                   "Request invalid for state of job");
    }
    return -1;
}

/* --- qsig --- */

static int
job_signal(struct dv_db *db, struct db_job_admin *a, PGresult *job,
           struct notify_set *ns, struct dv_err *err)
{
    /* Node rows first, in id order, as db_stop_allocs does: a node's long
     * poll must never read an index while a smaller one is to commit. */
    static const char lock_nodes[] =
        "SELECT id FROM nodes WHERE id IN (SELECT node_id FROM allocations "
        "WHERE job_id = $1 AND desired_status = 'run' "
        "AND client_status IN " DB_ACTIVE " AND end_time IS NULL"
        ") ORDER BY id FOR NO KEY UPDATE";
    static const char sql[] =
        "WITH i AS (SELECT nextval('modify_index_seq') AS v) "
        "UPDATE allocations SET signal = $2, signal_seq = signal_seq + 1, "
        "modify_index = i.v, alloc_modify_index = i.v FROM i "
        "WHERE job_id = $1 AND desired_status = 'run' "
        "AND client_status IN " DB_ACTIVE " AND end_time IS NULL"
        " RETURNING node_id";
    const char *state = dv_db_get(job, 0, "state");
    char b1[24];
    const char *p[] = {dv_db_i64(b1, a->id), a->signal};
    PGresult *res;
    int n;

    if (strcmp(state, "running") != 0) {
        return bad_state(state, err);
    }
    res = dv_db_exec(db, lock_nodes, 1, p, err);
    if (res == NULL) {
        return -1;
    }
    PQclear(res);
    res = dv_db_exec(db, sql, 2, p, err);
    if (res == NULL) {
        return -1;
    }
    n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        notify_add_node(ns, dv_db_get_i64(res, i, "node_id", 0));
    }
    PQclear(res);
    if (n == 0) {
        return bad_state(state, err); /* nothing runs it any more */
    }
    snprintf(a->what, sizeof(a->what), "signalled (%s)", a->signal);
    return 0;
}

/* --- qrerun --- */

static int
job_rerun(struct dv_db *db, struct db_job_admin *a, PGresult *job,
          struct notify_set *ns, struct dv_err *err)
{
    static const char mark[] = "UPDATE jobs SET rerun_pending = true, "
                               "modify_index = nextval('modify_index_seq') "
                               "WHERE id = $1 AND state = 'running'";
    static const char requeue[] =
        "UPDATE jobs SET state = 'queued', exec_host = NULL, "
        "rerun_pending = false, queue_time = to_timestamp($2), "
        "comment = 'Job requeued: rerun', "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND state = 'running'";
    const char *state = dv_db_get(job, 0, "state");
    char b1[24], b2[32];
    const char *p[] = {dv_db_i64(b1, a->id), dv_db_double(b2, a->now)};
    int n;

    if (strcmp(state, "running") != 0) {
        return bad_state(state, err);
    }
    if (dv_db_get_bool(job, 0, "native", 0)) {
        dv_err_set(err, DV_ECONFLICT, "bad_state",
                   "Request invalid for state of job");
        return -1;
    }
    if (!dv_db_get_bool(job, 0, "rerunnable", 1)) {
        dv_err_set(err, DV_ECONFLICT, "not_rerunnable",
                   "job is not rerunnable");
        return -1;
    }
    if (dv_db_exec_cmd(db, mark, 1, p, err) < 0) {
        return -1;
    }
    n = db_stop_allocs(db, a->id, 0, "rerun", ns, err);
    if (n < 0) {
        return -1;
    }
    if (n == 0 && (n = db_count_active(db, a->id, err)) < 0) {
        return -1;
    }
    if (n == 0) {
        /* Nothing runs it (its allocations are already stopping): no end
         * will be reported, requeue it now. */
        if (dv_db_exec_cmd(db, requeue, 2, p, err) < 0 ||
            db_insert_eval(db, a->id, "job-rerun",
                           (int)dv_db_get_i64(job, 0, "priority", 0), a->now,
                           err) < 0) {
            return -1;
        }
        ns->evals = 1;
    }
    notify_add_job(ns, a->id);
    snprintf(a->what, sizeof(a->what), "rerun");
    return 0;
}

/* --- qmove --- */

/* Cancels what the scheduler would do with the job's old requirements and
 * asks for a new look (queued jobs only; held ones have no evaluation). */
static int
reevaluate(struct dv_db *db, struct db_job_admin *a, const char *state,
           int priority, struct notify_set *ns, struct dv_err *err)
{
    if (strcmp(state, "queued") != 0) {
        return 0;
    }
    if (db_cancel_evals(db, a->id, "job updated", err) < 0 ||
        db_insert_eval(db, a->id, "job-update", priority, a->now, err) < 0) {
        return -1;
    }
    ns->evals = 1;
    return 0;
}

static int
job_move(struct dv_db *db, struct db_job_admin *a, PGresult *job,
         struct notify_set *ns, struct dv_err *err)
{
    /* FOR KEY SHARE: the queue cannot be deleted under the move
     * (sql/0006-queues.sql dropped the jobs -> queues foreign key). */
    static const char queue[] =
        "SELECT name, enabled FROM queues WHERE name = $1 FOR KEY SHARE";
    static const char move[] =
        "UPDATE jobs SET queue = $2, queue_time = to_timestamp($3), "
        "alter_time = to_timestamp($3), "
        "spec = jsonb_set(spec, '{queue}', to_jsonb($2::text)), "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND state IN ('queued', 'held', 'waiting')";
    const char *state = dv_db_get(job, 0, "state");
    char b1[24], b3[32];
    const char *p[] = {dv_db_i64(b1, a->id), a->queue,
                       dv_db_double(b3, a->now)};
    PGresult *res;

    /* PBS moves any job not yet running, W (qsub -a) included: it keeps
     * its execution time and stays W. */
    if (!waiting(state) && strcmp(state, "waiting") != 0) {
        return bad_state(state, err);
    }
    res = dv_db_exec(db, queue, 1, p + 1, err);
    if (res == NULL) {
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        dv_err_set(err, DV_EINVAL, "unknown_queue", "Unknown queue");
        return -1;
    }
    if (!dv_db_get_bool(res, 0, "enabled", 0)) {
        PQclear(res);
        dv_err_set(err, DV_ECONFLICT, "queue_disabled", "Queue is not enabled");
        return -1;
    }
    PQclear(res);
    if (strcmp(dv_db_get(job, 0, "queue"), a->queue) == 0) {
        return 0;
    }
    if (dv_db_exec_cmd(db, move, 3, p, err) < 0 ||
        reevaluate(db, a, state, (int)dv_db_get_i64(job, 0, "priority", 0), ns,
                   err) < 0) {
        return -1;
    }
    notify_add_job(ns, a->id);
    snprintf(a->what, sizeof(a->what), "moved from queue %s to %s",
             dv_db_get(job, 0, "queue"), a->queue);
    return 0;
}

/* --- qalter --- */

/* A running job may change only these resources (PBS: cput, walltime,
 * min_walltime, max_walltime). */
static int
alterable_running(const char *name)
{
    return strcmp(name, "walltime") == 0 || strcmp(name, "cput") == 0 ||
           strcmp(name, "min_walltime") == 0 ||
           strcmp(name, "max_walltime") == 0;
}

static void
set_str(char **to, const char *v)
{
    free(*to);
    *to = v != NULL ? dv_xstrdup(v) : NULL;
}

/* Applies a->alter to spec. */
static int
alter_apply(struct db_job_admin *a, struct dv_job_spec *s, struct dv_err *err)
{
    const struct job_alter *al = &a->alter;

    for (int i = 0; i < al->nresources; i++) {
        const char *name = al->resources[i].key;
        int select = 0;

        /* PBS: with a select, chunk resources go in the select only. */
        for (int k = 0; k < s->nresources; k++) {
            select |= strcmp(s->resources[k].key, "select") == 0;
        }
        if (select &&
            (strcmp(name, "ncpus") == 0 || strcmp(name, "mem") == 0 ||
             strcmp(name, "ngpus") == 0 || strcmp(name, "mpiprocs") == 0 ||
             strcmp(name, "ompthreads") == 0)) {
            dv_err_set(err, DV_EINVAL, "bad_resource_value",
                       "Resource must only appear in \"select\" specification "
                       "when select is used: %s",
                       name);
            return -1;
        }
        dv_job_spec_set_resource(s, name, al->resources[i].value);
    }
    if (al->name != NULL) {
        set_str(&s->name, al->name);
    }
    if (al->stdout_path != NULL) {
        set_str(&s->stdout_path, al->stdout_path);
    }
    if (al->stderr_path != NULL) {
        set_str(&s->stderr_path, al->stderr_path);
    }
    if (al->join != NULL) {
        set_str(&s->join, al->join);
    }
    if (al->depend != NULL) {
        set_str(&s->depend, al->depend[0] != '\0' ? al->depend : NULL);
    }
    if (al->has_priority) {
        s->priority = al->priority;
    }
    if (al->has_rerunnable) {
        s->rerunnable = al->rerunnable;
    }
    return 0;
}

/* PBS: users may only lower a job's resources; raising them is the
 * administrator's. A walltime of 0 is none (unlimited). */
static int
raises(const PGresult *job, const struct dv_resreq *req)
{
    int64_t wall = dv_db_get_i64(job, 0, "walltime", 0);

    return req->ncpus > dv_db_get_i64(job, 0, "ncpus", 0) ||
           req->mem > dv_db_get_i64(job, 0, "mem", 0) ||
           req->ngpus > dv_db_get_i64(job, 0, "ngpus", 0) ||
           req->nodect > dv_db_get_i64(job, 0, "nodect", 0) ||
           (wall > 0 && (req->walltime == 0 || req->walltime > wall));
}

static int
alter_running(struct db_job_admin *a, struct dv_err *err)
{
    const struct job_alter *al = &a->alter;
    const char *what = NULL;

    for (int i = 0; i < al->nresources && what == NULL; i++) {
        if (!alterable_running(al->resources[i].key)) {
            what = al->resources[i].key;
        }
    }
    if (what != NULL) {
        dv_err_set(err, DV_ECONFLICT, "modify_running",
                   "Cannot modify attribute while job running  "
                   "Resource_List.%s",
                   what);
        return -1;
    }
    if (al->name != NULL || al->stdout_path != NULL ||
        al->stderr_path != NULL || al->join != NULL || al->depend != NULL ||
        al->has_priority || al->has_rerunnable || al->hold_mask != 0) {
        dv_err_set(err, DV_ECONFLICT, "modify_running",
                   "Cannot modify attribute while job running ");
        return -1;
    }
    return 0;
}

/*
 * qalter -W depend on a waiting job (queued, held or W): the job's edges
 * are replaced, as PBS replaces the whole depend attribute. Its old edges,
 * on count and system hold go; the new list goes through db_depend_submit
 * (the same validation and target locks as a submission, taken after the
 * job's own row); the job is then held (H, hold type s) while anything is
 * left to wait for, else released: queued with an evaluation, or W while
 * its execution time is ahead. Only after types: before types and on:N
 * register on other jobs at submission (PBS's qalter has no way to undo a
 * registration either). A dependency that can never be met is refused
 * (bad_depend) rather than deleting the job, and the transaction rolls
 * back.
 */
static int
alter_depend(struct dv_db *db, struct db_job_admin *a, struct dv_job_spec *spec,
             struct notify_set *ns, struct dv_err *err)
{
    static const char drop_edges[] =
        "DELETE FROM job_depends WHERE dependent = $1";
    static const char reset[] =
        "UPDATE jobs SET hold_types = replace(hold_types, 's', ''), "
        "depend_on = 0, depend = NULL, spec = spec - 'depend', "
        "comment = CASE WHEN strpos(hold_types, 's') > 0 THEN NULL "
        "ELSE comment END, modify_index = nextval('modify_index_seq') "
        "WHERE id = $1";
    static const char after[] =
        "SELECT state, hold_types, execution_time > to_timestamp($2) AS ahead, "
        "extract(epoch FROM execution_time)::float8 AS xtime "
        "FROM jobs WHERE id = $1";
    static const char release[] =
        "UPDATE jobs SET state = $2, queue_time = to_timestamp($3), "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND state = 'held' AND hold_types = ''";
    struct dv_depend d = {0};
    char b1[24], b2[32];
    const char *p[] = {dv_db_i64(b1, a->id), dv_db_double(b2, a->now)};
    PGresult *res = NULL;
    const char *state;
    int rc = -1;

    if (spec->depend != NULL) {
        if (dv_depend_parse(spec->depend, &d, err) < 0) {
            return -1;
        }
        for (int i = 0; i < d.nedges && d.on == 0; i++) {
            if (dv_depend_is_before(d.edges[i].type)) {
                d.on = -1;
            }
        }
        if (d.on != 0) {
            dv_err_set(err, DV_EINVAL, "bad_depend",
                       "Invalid Job Dependency: qalter takes after types "
                       "only (before types and on:<count> register at "
                       "submission)");
            goto out;
        }
    }
    if (dv_db_exec_cmd(db, drop_edges, 1, p, err) < 0 ||
        dv_db_exec_cmd(db, reset, 1, p, err) < 0) {
        goto out;
    }
    if (spec->depend != NULL &&
        db_depend_submit(db, a->id, spec, a->now, ns, err) < 0) {
        goto out;
    }
    res = dv_db_exec(db, after, 2, p, err);
    if (res == NULL) {
        goto out;
    }
    state = dv_db_get(res, 0, "state");
    if (strcmp(state, "finished") == 0) {
        dv_err_set(err, DV_EINVAL, "bad_depend",
                   "Invalid Job Dependency: a target has ended and the "
                   "dependency can never be met");
        goto out;
    }
    if (db_cancel_evals(db, a->id, "job updated", err) < 0) {
        goto out;
    }
    if (strcmp(state, "held") == 0 &&
        *dv_db_get(res, 0, "hold_types") == '\0') {
        /* nothing left to wait for: W while the time is ahead, else Q */
        int ahead = dv_db_get_bool(res, 0, "ahead", 0);
        const char *pr[] = {b1, ahead ? "waiting" : "queued", b2};

        if (dv_db_exec_cmd(db, release, 3, pr, err) < 0 ||
            (ahead && db_notify_waiting(
                          db, dv_db_get_double(res, 0, "xtime", 0), err) < 0)) {
            goto out;
        }
        state = ahead ? "waiting" : "queued";
    }
    if (strcmp(state, "queued") == 0) {
        if (db_insert_eval(db, a->id, "job-update", spec->priority, a->now,
                           err) < 0) {
            goto out;
        }
        ns->evals = 1;
    }
    rc = 0;
out:
    PQclear(res);
    dv_depend_cleanup(&d);
    return rc;
}

static int
job_alter(struct dv_db *db, struct db_job_admin *a, PGresult *job,
          struct notify_set *ns, struct dv_err *err)
{
    static const char read_spec[] =
        "SELECT spec::text AS spec FROM jobs WHERE id = $1";
    static const char update[] =
        "UPDATE jobs SET name = $2, priority = $3, rerunnable = $4, "
        "spec = $5::jsonb, ncpus = $6, mem = $7, ngpus = $8, nodect = $9, "
        "walltime = $10, depend = $11, alter_time = to_timestamp($12), "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND state IN ('queued', 'held', 'waiting', 'running')";
    static const char hold[] =
        "UPDATE jobs SET state = 'held', hold_types = $2, "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND state IN ('queued', 'held', 'waiting')";
    /* A running job's new walltime reaches its node with the allocations
     * (the long poll reads jobs.walltime). */
    static const char lock_nodes[] =
        "SELECT id FROM nodes WHERE id IN (SELECT node_id FROM allocations "
        "WHERE job_id = $1 AND desired_status = 'run' "
        "AND client_status IN " DB_ACTIVE " AND end_time IS NULL"
        ") ORDER BY id FOR NO KEY UPDATE";
    static const char touch_allocs[] =
        "WITH i AS (SELECT nextval('modify_index_seq') AS v) "
        "UPDATE allocations SET modify_index = i.v, alloc_modify_index = i.v "
        "FROM i WHERE job_id = $1 AND desired_status = 'run' "
        "AND client_status IN " DB_ACTIVE " AND end_time IS NULL"
        " RETURNING node_id";
    const char *state = dv_db_get(job, 0, "state");
    int running = strcmp(state, "running") == 0;
    int w = strcmp(state, "waiting") == 0; /* W (qsub -a) */
    struct dv_job_spec spec;
    json_t *j = NULL, *stored = NULL;
    char *text = NULL;
    PGresult *res = NULL;
    char b1[24];
    const char *pid[] = {dv_db_i64(b1, a->id)};
    int rc = -1;

    dv_job_spec_init(&spec);
    if (!waiting(state) && !running && !w) {
        return bad_state(state, err);
    }
    if (dv_db_get_bool(job, 0, "native", 0)) {
        dv_err_set(err, DV_ECONFLICT, "bad_state",
                   "Request invalid for state of job");
        return -1;
    }
    if (running && alter_running(a, err) < 0) {
        return -1;
    }
    res = dv_db_exec(db, read_spec, 1, pid, err);
    if (res == NULL) {
        goto out;
    }
    j = json_loads(dv_db_get(res, 0, "spec"), 0, NULL);
    if (j == NULL || dv_job_spec_from_json(j, &spec, err) < 0) {
        if (err->kind == DV_OK) {
            dv_err_set(err, DV_EINTERNAL, NULL,
                       "job %lld: its stored spec does not parse",
                       (long long)a->id);
        }
        goto out;
    }
    if (alter_apply(a, &spec, err) < 0 ||
        dv_job_spec_normalize(&spec, err) < 0) {
        goto out;
    }
    if (!a->root && raises(job, &spec.req)) {
        dv_err_set(err, DV_EFORBIDDEN, "forbidden", "Unauthorized Request ");
        goto out;
    }
    stored = dv_job_spec_to_json(&spec);
    json_object_set_new(stored, "queue",
                        json_string(dv_db_get(job, 0, "queue")));
    text = json_dumps(stored, JSON_COMPACT);
    {
        char b3[24], b6[24], b7[24], b8[24], b9[24], b10[24], b12[32];
        const char *p[] = {
            b1,
            spec.name,
            dv_db_i64(b3, spec.priority),
            spec.rerunnable ? "true" : "false",
            text,
            dv_db_i64(b6, spec.req.ncpus),
            dv_db_i64(b7, spec.req.mem),
            dv_db_i64(b8, spec.req.ngpus),
            dv_db_i64(b9, spec.req.nodect),
            dv_db_i64(b10, spec.req.walltime),
            spec.depend,
            dv_db_double(b12, a->now),
        };
        if (dv_db_exec_cmd(db, update, 12, p, err) < 0) {
            goto out;
        }
    }
    if (a->alter.hold_mask != 0) {
        unsigned old = 0;
        const char *t = dv_db_get(job, 0, "hold_types");
        char types[4];
        const char *p[] = {b1, types};

        if (t != NULL && *t != '\0' && hold_types_parse(t, &old) < 0) {
            old = 1u;
        }
        hold_types_format(old | a->alter.hold_mask, types);
        if (dv_db_exec_cmd(db, hold, 2, p, err) < 0 ||
            (strcmp(state, "queued") == 0 &&
             db_cancel_evals(db, a->id, "job held", err) < 0)) {
            goto out;
        }
    } else if (!running && a->alter.depend == NULL &&
               reevaluate(db, a, state, spec.priority, ns, err) < 0) {
        goto out;
    }
    if (!running && a->alter.depend != NULL &&
        alter_depend(db, a, &spec, ns, err) < 0) {
        goto out;
    }
    if (running) {
        PQclear(res);
        res = dv_db_exec(db, lock_nodes, 1, pid, err);
        if (res == NULL) {
            goto out;
        }
        PQclear(res);
        res = dv_db_exec(db, touch_allocs, 1, pid, err);
        if (res == NULL) {
            goto out;
        }
        for (int i = 0; i < PQntuples(res); i++) {
            notify_add_node(ns, dv_db_get_i64(res, i, "node_id", 0));
        }
    }
    notify_add_job(ns, a->id);
    snprintf(a->what, sizeof(a->what), "altered");
    rc = 0;
out:
    PQclear(res);
    free(text);
    json_decref(stored);
    json_decref(j);
    dv_job_spec_cleanup(&spec);
    return rc;
}

/* --- the transaction --- */

static int
admin_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char lock[] =
        "SELECT id, owner, state, hold_types, priority, queue, rerunnable, "
        "ncpus, mem, ngpus, nodect, walltime, "
        "spec ? 'groups' AS native FROM jobs WHERE id = $1 FOR UPDATE";
    struct db_job_admin *a = arg;
    struct notify_set ns = {0};
    char b1[24];
    const char *p[] = {dv_db_i64(b1, a->id)};
    PGresult *job;
    int rc = -1;

    db_jobs_clear(&a->out);
    a->out.next_after = -1;
    a->what[0] = '\0';
    job = dv_db_exec(db, lock, 1, p, err);
    if (job == NULL) {
        goto out;
    }
    if (PQntuples(job) == 0) {
        db_job_not_found(a->server, a->id, err);
        goto out;
    }
    if (!may_change_job(dv_db_get(job, 0, "owner"), a->user, a->root) ||
        (a->op == JOB_ADMIN_RERUN && !a->root)) {
        /* qrerun is the operator's (PBS: operator or manager). */
        dv_err_set(err, DV_EFORBIDDEN, "forbidden", "Unauthorized Request ");
        goto out;
    }
    switch (a->op) {
    case JOB_ADMIN_SIGNAL:
        rc = job_signal(db, a, job, &ns, err);
        break;
    case JOB_ADMIN_RERUN:
        rc = job_rerun(db, a, job, &ns, err);
        break;
    case JOB_ADMIN_MOVE:
        rc = job_move(db, a, job, &ns, err);
        break;
    case JOB_ADMIN_ALTER:
        rc = job_alter(db, a, job, &ns, err);
        break;
    }
    if (rc < 0) {
        goto out;
    }
    rc = -1;
    if (db_notify_send(db, &ns, err) < 0 ||
        db_load_job(db, a->id, 0, &a->out, err) != 1) {
        if (err->kind == DV_OK) {
            db_job_not_found(a->server, a->id, err);
        }
        goto out;
    }
    rc = 0;
out:
    PQclear(job);
    notify_cleanup(&ns);
    return rc;
}

int
db_job_admin(struct dv_db *db, struct db_job_admin *a, struct dv_err *err)
{
    /* Every change is safe to rerun after a lost COMMIT except a signal,
     * which would be delivered twice: PBS's qsig gives no more promise. */
    return dv_db_tx(db, DV_DB_READ_COMMITTED, admin_tx, NULL, a,
                    QMGR_TX_ATTEMPTS, err);
}
