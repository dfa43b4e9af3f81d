/*
 * The jobs' SQL: submission (with its idempotency key and in-doubt check),
 * lists and reads, and qdel, qhold, qrls. Rules of db.c apply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

/* --- submit --- */

static int
find_by_key(struct dv_db *db, struct db_submit *s, struct dv_err *err)
{
    static const char sql[] = "SELECT j.id FROM jobs j "
                              "WHERE j.owner = $1 AND j.idempotency_key = $2";
    const char *p[] = {s->spec->owner, s->key};
    PGresult *res = dv_db_exec(db, sql, 2, p, err);
    int64_t id;
    int rc;

    if (res == NULL) {
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    id = dv_db_get_i64(res, 0, "id", 0);
    PQclear(res);
    rc = db_load_job(db, id, 0, &s->out, err);
    return rc;
}

/* A native batch or service job whose groups all have count 0. */
static int
nothing_to_run(const struct dv_job_spec *spec)
{
    return spec->native != NULL && spec->req.nodect == 0 &&
           strcmp(spec->type, "system") != 0;
}

/* The job's queue (lib/queue.h): it must exist and be enabled, let the
 * owner in, fill its resource defaults and hold the job within its
 * limits. Sets s->queue_used. */
static int
submit_queue(struct dv_db *db, struct db_submit *s, struct dv_err *err)
{
    struct dv_job_spec *spec = s->spec;
    struct dv_queue q;
    int found, changed, rc = -1;

    dv_queue_init(&q);
    found = db_queue_for_submit(db, spec->queue, &q, err);
    if (found < 0) {
        goto out;
    }
    if (found == 0) {
        if (spec->queue == NULL) {
            dv_err_set(err, DV_EINVAL, "no_default_queue",
                       "No default queue specified");
        } else {
            dv_err_set(err, DV_EINVAL, "unknown_queue", "Unknown queue");
        }
        goto out;
    }
    if (!q.enabled) {
        dv_err_set(err, DV_ECONFLICT, "queue_disabled", "Queue is not enabled");
        goto out;
    }
    if (!dv_queue_acl_allows(&q, spec->owner, spec->group)) {
        dv_err_set(err, DV_EFORBIDDEN, "queue_denied",
                   "Access to queue is denied");
        goto out;
    }
    if (dv_queue_apply_defaults(&q, spec, &changed, err) < 0 ||
        dv_queue_check_limits(&q, &spec->req, err) < 0) {
        goto out;
    }
    s->queue_used = dv_xstrdup(q.name);
    rc = 0;
out:
    dv_queue_cleanup(&q);
    return rc;
}

static int
submit_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char next_id[] = "SELECT nextval('job_id_seq') AS id";
    static const char insert_job[] =
        "INSERT INTO jobs (id, name, owner, queue, type, priority, state, "
        "hold_types, rerunnable, spec, ncpus, mem, ngpus, nodect, walltime, "
        "depend, idempotency_key, submit_time, queue_time, modify_index, "
        "execution_time) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, "
        "$13, $14, $15, $16, $17, to_timestamp($18), to_timestamp($18), "
        "nextval('modify_index_seq'), to_timestamp($19))";
    static const char insert_eval[] =
        "INSERT INTO evaluations (job_id, triggered_by, status, priority, "
        "create_time, modify_index) VALUES ($1, 'job-submit', 'pending', $2, "
        "to_timestamp($3), nextval('modify_index_seq')) "
        "ON CONFLICT (job_id) WHERE status = 'pending' DO NOTHING";
    static const char finish_empty[] =
        "UPDATE jobs SET state = 'finished', hold_types = '', exit_status = 0, "
        "end_time = to_timestamp($2), "
        "comment = 'Job finished: nothing to run (every group has count 0)', "
        "modify_index = nextval('modify_index_seq') WHERE id = $1";
    struct db_submit *s = arg;
    struct dv_job_spec *spec = s->spec;
    struct notify_set ns = {0};
    struct db_custom custom = {0};
    PGresult *res = NULL;
    json_t *stored = NULL;
    char *text = NULL;
    const char *state;
    int64_t id;
    int rc = -1, found, waits = 0;

    db_jobs_clear(&s->out);
    s->replay = 0;
    s->waiting_until = 0;
    free(s->queue_used);
    s->queue_used = NULL;

    found = find_by_key(db, s, err);
    if (found != 0) {
        s->replay = found == 1;
        return found < 0 ? -1 : 0;
    }
    res = dv_db_exec(db, next_id, 0, NULL, err);
    if (res == NULL) {
        goto out;
    }
    id = dv_db_get_i64(res, 0, "id", 0);
    PQclear(res);
    res = NULL;
    if (db_custom_check(db, spec, &custom, err) < 0) {
        goto out;
    }

    if (submit_queue(db, s, err) < 0) {
        goto out;
    }

    stored = stored_spec_json(spec, s->queue_used, (long long)id);
    stored_spec_custom(stored, spec, custom.canon);
    text = json_dumps(stored, JSON_COMPACT);
    /* PBS: a held job stays H; otherwise W until a future -a time. */
    state = spec->hold                          ? "held"
            : spec->execution_time > s->now ? "waiting"
                                                : "queued";
    if (strcmp(state, "waiting") == 0) {
        s->waiting_until = (double)spec->execution_time;
    }
    {
        char b1[24], b6[24], b11[24], b12[24], b13[24], b14[24], b15[24],
            b18[32], b19[24];
        const char *p[] = {
            dv_db_i64(b1, id),
            spec->name,
            spec->owner,
            s->queue_used,
            spec->type,
            dv_db_i64(b6, spec->priority),
            state,
            spec->hold ? "u" : "",
            spec->rerunnable ? "true" : "false",
            text,
            dv_db_i64(b11, spec->req.ncpus),
            dv_db_i64(b12, spec->req.mem),
            dv_db_i64(b13, spec->req.ngpus),
            dv_db_i64(b14, spec->req.nodect),
            dv_db_i64(b15, spec->req.walltime),
            spec->depend,
            s->key,
            dv_db_double(b18, s->now),
            spec->execution_time > 0 ? dv_db_i64(b19, spec->execution_time)
                                     : NULL,
        };
        if (dv_db_exec_cmd(db, insert_job, 19, p, err) < 0) {
            goto out;
        }
    }
    if (spec->array != NULL && array_insert(db, id, spec->array, err) < 0) {
        goto out;
    }
    if (spec->depend != NULL) {
        waits = db_depend_submit(db, id, spec, s->now, &ns, err);
        if (waits < 0) {
            goto out;
        }
    }
    if (waits) {
        /* held by its dependencies, or deleted because of them */
    } else if (nothing_to_run(spec)) {
        /* Accepted and finished at once (docs/jobspec.md). */
        char b1[24], b2[32];
        const char *p[] = {dv_db_i64(b1, id), dv_db_double(b2, s->now)};
        if (dv_db_exec_cmd(db, finish_empty, 2, p, err) < 0) {
            goto out;
        }
    } else if (strcmp(state, "waiting") == 0) {
        if (db_notify_waiting(db, s->waiting_until, err) < 0) {
            goto out;
        }
    } else if (strcmp(state, "queued") == 0) {
        char b1[24], b2[24], b3[32];
        const char *p[] = {dv_db_i64(b1, id), dv_db_i64(b2, spec->priority),
                           dv_db_double(b3, s->now)};
        if (dv_db_exec_cmd(db, insert_eval, 3, p, err) < 0) {
            goto out;
        }
        ns.evals = 1;
    }
    notify_add_job(&ns, id);
    if (db_notify_send(db, &ns, err) < 0) {
        goto out;
    }
    if (db_load_job(db, id, 0, &s->out, err) != 1) {
        if (err->kind == DV_OK) {
            dv_err_set(err, DV_EINTERNAL, NULL, "job %lld vanished",
                       (long long)id);
        }
        goto out;
    }
    rc = 0;
out:
    PQclear(res);
    free(text);
    json_decref(stored);
    notify_cleanup(&ns);
    db_custom_clear(&custom);
    return rc;
}

/* After a lost COMMIT: the job is there if its key is. */
static int
submit_in_doubt(struct dv_db *db, void *arg, struct dv_err *err)
{
    struct db_submit *s = arg;

    db_jobs_clear(&s->out);
    s->replay = 0;
    return find_by_key(db, s, err);
}

static int
find_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    struct db_submit *s = arg;
    int rc;

    rc = find_by_key(db, s, err);
    if (rc == 0) {
        /* The duplicate we collided with is gone: let the caller retry. */
        dv_err_set(err, DV_ESERIAL, NULL,
                   "a submission with the same idempotency key vanished");
        return -1;
    }
    return rc < 0 ? -1 : 0;
}

int
db_job_submit(struct dv_db *db, struct db_submit *s, struct dv_err *err)
{
    s->out.next_after = -1;
    if (dv_db_tx(db, DV_DB_READ_COMMITTED, submit_tx, submit_in_doubt, s,
                 QMGR_TX_ATTEMPTS, err) == 0) {
        return 0;
    }
    if (err->kind != DV_ECONFLICT || strcmp(err->code, "duplicate") != 0) {
        return -1;
    }
    /* A concurrent submission with the same key won the unique index. */
    dv_err_clear(err);
    if (dv_db_tx(db, DV_DB_READ_COMMITTED, find_tx, NULL, s, QMGR_TX_ATTEMPTS,
                 err) < 0) {
        return -1;
    }
    s->replay = 1;
    return 0;
}

/* --- lists and reads --- */

struct list_tx {
    const struct db_job_list *f;
    struct db_jobs *out;
};

static int
list_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    /*
     * One statement per access path, so that a generic plan (statements are
     * prepared) still uses the right index. Active jobs: one ordered scan
     * of the partial index jobs_active (state, id) per wanted state, merged,
     * so that neither finished history nor an owner's old jobs are walked.
     * One owner's active jobs: jobs_owner_active (owner, id), partial on
     * state <> 'finished' (the literal predicate lets a generic plan use
     * it), so that qstat -u stays cheap however many jobs others queue;
     * one queue's, likewise, through jobs_queue (queue, id).
     * With finished jobs: jobs_owner (owner, id), or the primary key.
     */
/* clang-format off */
#define ACTIVE_ARM(st)                                                         \
    "(SELECT id FROM jobs WHERE state = '" st "' "                             \
    "AND $2::text[] @> '{" st "}' AND id > $1 "                                \
    "AND ($3::text IS NULL OR owner = $3) "                                    \
    "AND ($4::text IS NULL OR queue = $4) ORDER BY id LIMIT $6)"
    static const char active[] =
        "SELECT " DB_JOB_COLUMNS ", "
        "CASE WHEN $5::boolean THEN j.spec END AS spec "
        "FROM jobs j WHERE j.id = ANY(ARRAY(SELECT id FROM ("
        ACTIVE_ARM("queued") " UNION ALL " ACTIVE_ARM("held") " UNION ALL "
        ACTIVE_ARM("running") " UNION ALL " ACTIVE_ARM("exiting")
        " UNION ALL " ACTIVE_ARM("waiting") ") AS s ORDER BY id LIMIT $6)) ORDER BY j.id";
/* clang-format on */
#undef ACTIVE_ARM
    static const char active_owner[] =
        "SELECT " DB_JOB_COLUMNS
        ", CASE WHEN $5::boolean THEN j.spec END AS spec "
        "FROM jobs j WHERE j.owner = $3 AND j.state <> 'finished' "
        "AND j.id > $1 AND j.state = ANY($2::text[]) "
        "AND ($4::text IS NULL OR j.queue = $4) ORDER BY j.id LIMIT $6";
    /* One queue's active jobs (qstat QUEUE): jobs_queue (queue, id),
     * partial on state <> 'finished', as for owners. */
    static const char active_queue[] =
        "SELECT " DB_JOB_COLUMNS
        ", CASE WHEN $5::boolean THEN j.spec END AS spec "
        "FROM jobs j WHERE j.queue = $4 AND j.state <> 'finished' "
        "AND j.id > $1 AND j.state = ANY($2::text[]) "
        "AND ($3::text IS NULL OR j.owner = $3) ORDER BY j.id LIMIT $6";
    static const char by_owner[] =
        "SELECT " DB_JOB_COLUMNS
        ", CASE WHEN $5::boolean THEN j.spec END AS spec "
        "FROM jobs j WHERE j.owner = $1 AND j.id > $2 "
        "AND j.state = ANY($3::text[]) AND ($4::text IS NULL OR j.queue = $4) "
        "ORDER BY j.id LIMIT $6";
    static const char history[] =
        "SELECT " DB_JOB_COLUMNS
        ", CASE WHEN $4::boolean THEN j.spec END AS spec "
        "FROM jobs j WHERE j.id > $1 AND j.state = ANY($2::text[]) "
        "AND ($3::text IS NULL OR j.queue = $3) ORDER BY j.id LIMIT $5";
    struct list_tx *t = arg;
    const struct db_job_list *f = t->f;
    char states[80], after[24], limit[24];
    const char *full = f->full ? "true" : "false";
    int n;

    db_jobs_clear(t->out);
    state_list_array(f->states, states, sizeof(states));
    dv_db_i64(after, f->after);
    dv_db_i64(limit, (int64_t)f->limit + 1);
    if (!(f->states & (1u << DV_JOB_FINISHED))) {
        const char *p[] = {after, states, f->owner, f->queue, full, limit};
        const char *sql = f->owner != NULL   ? active_owner
                          : f->queue != NULL ? active_queue
                                             : active;

        t->out->jobs = dv_db_exec(db, sql, 6, p, err);
    } else if (f->owner != NULL) {
        const char *p[] = {f->owner, after, states, f->queue, full, limit};
        t->out->jobs = dv_db_exec(db, by_owner, 6, p, err);
    } else {
        const char *p[] = {after, states, f->queue, full, limit};
        t->out->jobs = dv_db_exec(db, history, 5, p, err);
    }
    if (t->out->jobs == NULL) {
        return -1;
    }
    n = PQntuples(t->out->jobs);
    if (n > f->limit) {
        /* The extra row only tells that there is another page; it is not
         * rendered (api_jobs_list stops at f->limit). */
        t->out->next_after = dv_db_get_i64(t->out->jobs, f->limit - 1, "id", 0);
    }
    return db_load_vnodes(db, t->out, err);
}

int
db_job_list(struct dv_db *db, const struct db_job_list *f, struct db_jobs *out,
            struct dv_err *err)
{
    struct list_tx t = {f, out};

    out->next_after = -1;
    return dv_db_tx(db, DV_DB_REPEATABLE_READ, list_tx, NULL, &t,
                    QMGR_TX_ATTEMPTS, err);
}

struct get_tx {
    const char *server;
    int64_t id;
    int64_t min_index;
    struct db_jobs *out;
    int moved;
    int64_t index;
};

static int
get_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char peek[] = "SELECT modify_index FROM jobs WHERE id = $1";
    struct get_tx *t = arg;
    char b1[24];
    const char *p[] = {dv_db_i64(b1, t->id)};
    PGresult *res;
    int rc;

    db_jobs_clear(t->out);
    t->moved = 0;
    t->index = 0;
    if (t->min_index >= 0) {
        /* A blocking query's cheap check first. */
        res = dv_db_exec(db, peek, 1, p, err);
        if (res == NULL) {
            return -1;
        }
        if (PQntuples(res) == 0) {
            PQclear(res);
            db_job_not_found(t->server, t->id, err);
            return -1;
        }
        t->index = dv_db_get_i64(res, 0, "modify_index", 0);
        PQclear(res);
        if (t->index <= t->min_index) {
            return 0;
        }
    }
    rc = db_load_job(db, t->id, 1, t->out, err);
    if (rc < 0) {
        return -1;
    }
    if (rc == 0) {
        db_job_not_found(t->server, t->id, err);
        return -1;
    }
    t->index = dv_db_get_i64(t->out->jobs, 0, "modify_index", 0);
    t->moved = 1;
    return 0;
}

int
db_job_get(struct dv_db *db, const char *server, int64_t id, int64_t min_index,
           struct db_jobs *out, int *moved, int64_t *index, struct dv_err *err)
{
    struct get_tx t = {server, id, min_index, out, 0, 0};

    out->next_after = -1;
    if (dv_db_tx(db, DV_DB_REPEATABLE_READ, get_tx, NULL, &t, QMGR_TX_ATTEMPTS,
                 err) < 0) {
        return -1;
    }
    *moved = t.moved;
    *index = t.index;
    return 0;
}

/* --- qdel, qhold, qrls --- */

static int
job_delete(struct dv_db *db, struct db_job_change *c, PGresult *job,
           struct notify_set *ns, struct dv_err *err)
{
    static const char finish_waiting[] =
        "UPDATE jobs SET state = 'finished', comment = 'Job deleted', "
        "end_time = to_timestamp($2), "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND state IN ('queued', 'held', 'waiting')";
    static const char to_exiting[] =
        "UPDATE jobs SET state = 'exiting', "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND state = 'running'";
    static const char finish_running[] =
        "UPDATE jobs SET state = 'finished', comment = $3, "
        "end_time = to_timestamp($2), "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND state IN ('running', 'exiting')";
    const char *state = dv_db_get(job, 0, "state");
    int native = dv_db_get_bool(job, 0, "native", 0);
    int array = dv_db_get_bool(job, 0, "is_array", 0);
    char b1[24], b2[32];
    const char *p[] = {dv_db_i64(b1, c->id), dv_db_double(b2, c->now), NULL};
    int n;

    if (strcmp(state, "finished") == 0) {
        dv_err_set(err, DV_ECONFLICT, "job_finished", "Job has finished");
        return -1;
    }
    if (strcmp(state, "queued") == 0 || strcmp(state, "held") == 0 ||
        strcmp(state, "waiting") == 0) {
        if (dv_db_exec_cmd(db, finish_waiting, 2, p, err) < 0 ||
            db_cancel_evals(db, c->id, "job deleted", err) < 0) {
            return -1;
        }
        dv_strlcpy(c->new_state, "finished", sizeof(c->new_state));
        notify_add_job(ns, c->id);
        return 0;
    }
    if (strcmp(state, "exiting") == 0) {
        return 0; /* already being stopped */
    }
    n = db_stop_allocs(db, c->id, 0, native ? "stopped" : "deleted", ns, err);
    if (n < 0) {
        return -1;
    }
    /* A native job may wait for replacements: nothing is placed any more
     * (PBS jobs that run have no evaluation left). */
    if ((native || array) &&
        db_cancel_evals(db, c->id, "job stopped", err) < 0) {
        return -1;
    }
    if (n == 0) {
        n = db_count_active(db, c->id, err);
        if (n < 0) {
            return -1;
        }
    }
    if (n > 0) {
        if (dv_db_exec_cmd(db, to_exiting, 1, p, err) < 0) {
            return -1;
        }
        dv_strlcpy(c->new_state, "exiting", sizeof(c->new_state));
    } else {
        /* Nothing runs it any more: nobody would report its end. */
        char *comment = fmt_end_comment(
            dv_db_get(job, 0, "comment"),
            (double)dv_db_get_i64(job, 0, "stime", 0), "terminated");
        p[2] = comment;
        n = (int)dv_db_exec_cmd(db, finish_running, 3, p, err);
        free(comment);
        if (n < 0) {
            return -1;
        }
        dv_strlcpy(c->new_state, "finished", sizeof(c->new_state));
    }
    notify_add_job(ns, c->id);
    return 0;
}

static int
job_hold(struct dv_db *db, struct db_job_change *c, PGresult *job,
         struct notify_set *ns, struct dv_err *err)
{
    static const char hold[] =
        "UPDATE jobs SET state = 'held', hold_types = $2, "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND state IN ('queued', 'held', 'waiting')";
    const char *state = dv_db_get(job, 0, "state");
    unsigned old = 0;
    char types[4], b1[24];
    const char *p[] = {dv_db_i64(b1, c->id), types};

    if (strcmp(state, "queued") != 0 && strcmp(state, "held") != 0 &&
        strcmp(state, "waiting") != 0) {
        dv_err_set(err, DV_ECONFLICT, "bad_state",
                   "Request invalid for state of job");
        return -1;
    }
    if (strcmp(state, "held") == 0) {
        const char *t = dv_db_get(job, 0, "hold_types");
        if (t != NULL && *t != '\0' && hold_types_parse(t, &old) < 0) {
            old = 1u;
        }
        if ((old | c->hold_mask) == old) {
            return 0;
        }
    }
    hold_types_format(old | c->hold_mask, types);
    if (dv_db_exec_cmd(db, hold, 2, p, err) < 0) {
        return -1;
    }
    if (strcmp(state, "queued") == 0 &&
        db_cancel_evals(db, c->id, "job held", err) < 0) {
        return -1;
    }
    dv_strlcpy(c->new_state, "held", sizeof(c->new_state));
    notify_add_job(ns, c->id);
    return 0;
}

static int
job_release(struct dv_db *db, struct db_job_change *c, PGresult *job,
            struct notify_set *ns, struct dv_err *err)
{
    static const char requeue[] =
        "UPDATE jobs SET state = 'queued', hold_types = '', "
        "queue_time = to_timestamp($2), "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND state = 'held'";
    static const char to_waiting[] =
        "UPDATE jobs SET state = 'waiting', hold_types = '', "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND state = 'held'";
    static const char types_only[] =
        "UPDATE jobs SET hold_types = $2, "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND state = 'held'";
    const char *state = dv_db_get(job, 0, "state");
    const char *t = dv_db_get(job, 0, "hold_types");
    unsigned old = 0, left;
    char types[4], b1[24], b2[32];

    if (strcmp(state, "finished") == 0) {
        dv_err_set(err, DV_ECONFLICT, "job_finished", "Job has finished");
        return -1;
    }
    if (strcmp(state, "held") != 0) {
        return 0;
    }
    if (t != NULL && *t != '\0' && hold_types_parse(t, &old) < 0) {
        old = 1u;
    }
    left = old & ~c->hold_mask;
    if (left != 0) {
        const char *p[] = {dv_db_i64(b1, c->id), types};
        if (left == old) {
            return 0;
        }
        hold_types_format(left, types);
        if (dv_db_exec_cmd(db, types_only, 2, p, err) < 0) {
            return -1;
        }
    } else if (dv_db_get_double(job, 0, "xtime", 0) > c->now) {
        /* PBS: W while the execution time is still ahead. */
        const char *p[] = {dv_db_i64(b1, c->id)};
        c->waiting_until = dv_db_get_double(job, 0, "xtime", 0);
        if (dv_db_exec_cmd(db, to_waiting, 1, p, err) < 0 ||
            db_notify_waiting(db, c->waiting_until, err) < 0) {
            return -1;
        }
        dv_strlcpy(c->new_state, "waiting", sizeof(c->new_state));
    } else {
        const char *p[] = {dv_db_i64(b1, c->id), dv_db_double(b2, c->now)};
        if (dv_db_exec_cmd(db, requeue, 2, p, err) < 0 ||
            db_insert_eval(db, c->id, "job-release",
                           (int)dv_db_get_i64(job, 0, "priority", 0), c->now,
                           err) < 0) {
            return -1;
        }
        ns->evals = 1;
        dv_strlcpy(c->new_state, "queued", sizeof(c->new_state));
    }
    notify_add_job(ns, c->id);
    return 0;
}

static int
change_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char lock[] =
        "SELECT id, owner, state, hold_types, priority, comment, "
        "spec ? 'groups' AS native, spec ? 'array' AS is_array, "
        "floor(extract(epoch FROM start_time))::bigint AS stime, "
        "extract(epoch FROM execution_time)::float8 AS xtime "
        "FROM jobs WHERE id = $1 FOR UPDATE";
    struct db_job_change *c = arg;
    struct notify_set ns = {0};
    char b1[24];
    const char *p[] = {dv_db_i64(b1, c->id)};
    PGresult *job;
    int rc = -1;

    db_jobs_clear(&c->out);
    c->old_state[0] = '\0';
    c->new_state[0] = '\0';
    c->waiting_until = 0;
    job = dv_db_exec(db, lock, 1, p, err);
    if (job == NULL) {
        goto out;
    }
    if (PQntuples(job) == 0) {
        db_job_not_found(c->server, c->id, err);
        goto out;
    }
    if (!may_change_job(dv_db_get(job, 0, "owner"), c->user, c->root)) {
        dv_err_set(err, DV_EFORBIDDEN, "forbidden", "Unauthorized Request ");
        goto out;
    }
    dv_strlcpy(c->old_state, dv_db_get(job, 0, "state"), sizeof(c->old_state));
    switch (c->op) {
    case JOB_OP_DELETE:
        if (c->array_part >= DV_ARRAY_ONE) {
            rc = array_delete_subjobs(db, c, job, &ns, err);
            break;
        }
        rc = job_delete(db, c, job, &ns, err);
        if (rc == 0 && dv_db_get_bool(job, 0, "is_array", 0) &&
            strcmp(c->new_state, "finished") == 0) {
            rc = array_deleted(db, c->id, c->now, &ns, err);
        }
        break;
    case JOB_OP_HOLD:
    case JOB_OP_RELEASE:
        if (array_begun(job)) {
            rc = array_hold(db, c, job, &ns, err); /* arrays.c */
        } else if (c->op == JOB_OP_HOLD) {
            rc = job_hold(db, c, job, &ns, err);
        } else {
            rc = job_release(db, c, job, &ns, err);
        }
        break;
    }
    if (rc < 0) {
        goto out;
    }
    rc = -1;
    if (db_notify_send(db, &ns, err) < 0 ||
        db_load_job(db, c->id, 0, &c->out, err) != 1) {
        if (err->kind == DV_OK) {
            db_job_not_found(c->server, c->id, err);
        }
        goto out;
    }
    rc = 0;
out:
    PQclear(job);
    notify_cleanup(&ns);
    return rc;
}

/*
 * After a lost COMMIT: did the change land? A qdel whose commit went
 * through finds the job exiting or finished; rerunning it would answer
 * 409 job_finished. Holds and releases are safe to rerun (holding a held
 * job or releasing a queued one changes nothing), and so is any attempt
 * that changed nothing.
 */
static int
change_in_doubt(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char sql[] = "SELECT state FROM jobs WHERE id = $1";
    struct db_job_change *c = arg;
    char b1[24];
    const char *p[] = {dv_db_i64(b1, c->id)};
    PGresult *res;
    const char *state;
    int reached;

    if (c->op != JOB_OP_DELETE || c->new_state[0] == '\0') {
        return 0;
    }
    res = dv_db_exec(db, sql, 1, p, err);
    if (res == NULL) {
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0; /* gone: the rerun answers 404 */
    }
    state = dv_db_get(res, 0, "state");
    reached = strcmp(state, "exiting") == 0 || strcmp(state, "finished") == 0;
    PQclear(res);
    if (!reached) {
        return 0;
    }
    if (db_load_job(db, c->id, 0, &c->out, err) != 1) {
        if (err->kind == DV_OK) {
            db_job_not_found(c->server, c->id, err);
        }
        return -1;
    }
    return 1;
}

int
db_job_change(struct dv_db *db, struct db_job_change *c, struct dv_err *err)
{
    c->out.next_after = -1;
    return dv_db_tx(db, DV_DB_READ_COMMITTED, change_tx, change_in_doubt, c,
                    QMGR_TX_ATTEMPTS, err);
}

/* --- a job's allocations --- */

void
db_job_allocs_clear(struct db_job_allocs *a)
{
    PQclear(a->allocs);
    a->allocs = NULL;
    a->next_after = -1;
}

static int
job_allocs_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char job[] = "SELECT id FROM jobs WHERE id = $1";
    /* Newest first: the primary key walked down from the cursor. */
    static const char allocs[] =
        "SELECT a.id, a.group_index, a.instance, a.chunk_index, "
        "j.spec->'placement'->'groups'->a.group_index->>'name' AS group_name, "
        "a.node_id, n.name AS node_name, a.desired_status, "
        "a.desired_description, a.client_status, a.exit_status, a.message, "
        "a.ncpus, a.cpuset, a.mem, a.ngpus, a.gpus, a.disk, "
        "floor(extract(epoch FROM a.create_time))::bigint AS create_time, "
        "floor(extract(epoch FROM a.start_time))::bigint AS start_time, "
        "floor(extract(epoch FROM a.end_time))::bigint AS end_time, "
        "a.previous_alloc, a.reschedule_count, a.modify_index "
        "FROM allocations a JOIN jobs j ON j.id = a.job_id "
        "JOIN nodes n ON n.id = a.node_id "
        "WHERE a.job_id = $1 AND a.id < $2 ORDER BY a.id DESC LIMIT $3";
    struct db_job_allocs *a = arg;
    char b1[24], b2[24], b3[24];
    const char *p[] = {dv_db_i64(b1, a->id),
                       dv_db_i64(b2, a->after > 0 ? a->after : INT64_MAX),
                       dv_db_i64(b3, (int64_t)a->limit + 1)};
    PGresult *res;
    int n;

    db_job_allocs_clear(a);
    res = dv_db_exec(db, job, 1, p, err);
    if (res == NULL) {
        return -1;
    }
    n = PQntuples(res);
    PQclear(res);
    if (n == 0) {
        db_job_not_found(a->server, a->id, err);
        return -1;
    }
    a->allocs = dv_db_exec(db, allocs, 3, p, err);
    if (a->allocs == NULL) {
        return -1;
    }
    if (PQntuples(a->allocs) > a->limit) {
        a->next_after = dv_db_get_i64(a->allocs, a->limit - 1, "id", 0);
    }
    return 0;
}

int
db_job_allocs(struct dv_db *db, struct db_job_allocs *a, struct dv_err *err)
{
    a->next_after = -1;
    return dv_db_tx(db, DV_DB_REPEATABLE_READ, job_allocs_tx, NULL, a,
                    QMGR_TX_ATTEMPTS, err);
}
