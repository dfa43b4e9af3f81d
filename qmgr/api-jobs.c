/*
 * The jobs API (docs/api.md "Jobs"): submit (PBS-style and native job
 * specs), list, get (blocking), qdel (stop, for native jobs), qhold, qrls,
 * and a job's allocations. Each handler decodes and checks the request on the
 * loop thread, then hands a run callback to the pool; the run callback calls
 * db.c and renders the answer on the worker thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

/* --- rendering --- */

static void
set_int_or_null(json_t *o, const char *key, const PGresult *res, int row,
                const char *col)
{
    if (dv_db_is_null(res, row, col)) {
        json_object_set_new(o, key, json_null());
    } else {
        json_object_set_new(o, key,
                            json_integer(dv_db_get_i64(res, row, col, 0)));
    }
}

static void
set_str_or_null(json_t *o, const char *key, const char *v)
{
    json_object_set_new(o, key, v != NULL ? json_string(v) : json_null());
}

/* Parses a jsonb column; {} when it is NULL or does not parse. */
static json_t *
json_column(const PGresult *res, int row, const char *col, int null_ok)
{
    const char *text = dv_db_get(res, row, col);
    json_t *j;

    if (text == NULL) {
        return null_ok ? json_null() : json_object();
    }
    j = json_loads(text, JSON_DECODE_ANY, NULL);
    return j != NULL ? j : json_object();
}

json_t *
api_job_json(const struct db_jobs *r, int row, int *vrow, const char *server,
             int full)
{
    const PGresult *res = r->jobs;
    int64_t id = dv_db_get_i64(res, row, "id", 0);
    json_t *o = json_object();
    char jid[300];
    struct dv_buf vnode;
    struct vnode_part *parts = NULL;
    int nparts = 0, cap = 0;

    dv_job_id_format((long long)id, server, jid, sizeof(jid));
    json_object_set_new(o, "id", json_integer(id));
    json_object_set_new(o, "job_id", json_string(jid));
    json_object_set_new(o, "name", json_string(dv_db_get(res, row, "name")));
    json_object_set_new(o, "owner", json_string(dv_db_get(res, row, "owner")));
    json_object_set_new(o, "queue", json_string(dv_db_get(res, row, "queue")));
    json_object_set_new(o, "type", json_string(dv_db_get(res, row, "type")));
    json_object_set_new(o, "state", json_string(dv_db_get(res, row, "state")));
    json_object_set_new(o, "priority",
                        json_integer(dv_db_get_i64(res, row, "priority", 0)));
    json_object_set_new(o, "hold_types",
                        json_string(dv_db_get(res, row, "hold_types")));
    json_object_set_new(
        o, "rerunnable",
        json_boolean(dv_db_get_bool(res, row, "rerunnable", 1)));
    set_int_or_null(o, "exit_status", res, row, "exit_status");
    set_str_or_null(o, "exec_host", dv_db_get(res, row, "exec_host"));

    /* exec_vnode from the job's current allocations (rows ordered by job
     * id, like the jobs). */
    dv_buf_init(&vnode);
    if (r->vnodes != NULL) {
        int n = PQntuples(r->vnodes);
        while (*vrow < n && dv_db_get_i64(r->vnodes, *vrow, "job_id", 0) < id) {
            (*vrow)++;
        }
        while (*vrow < n &&
               dv_db_get_i64(r->vnodes, *vrow, "job_id", 0) == id) {
            if (nparts == cap) {
                cap = cap == 0 ? 4 : cap * 2;
                parts = dv_xrealloc(parts, sizeof(*parts) * (size_t)cap);
            }
            parts[nparts].host = dv_db_get(r->vnodes, *vrow, "host");
            parts[nparts].ncpus =
                (int)dv_db_get_i64(r->vnodes, *vrow, "ncpus", 0);
            parts[nparts].mem = dv_db_get_i64(r->vnodes, *vrow, "mem", 0);
            parts[nparts].ngpus =
                (int)dv_db_get_i64(r->vnodes, *vrow, "ngpus", 0);
            nparts++;
            (*vrow)++;
        }
    }
    if (nparts > 0) {
        fmt_exec_vnode(parts, nparts, &vnode);
        json_object_set_new(o, "exec_vnode", json_string(dv_buf_str(&vnode)));
    } else {
        json_object_set_new(o, "exec_vnode", json_null());
    }
    dv_buf_cleanup(&vnode);
    free(parts);

    set_str_or_null(o, "comment", dv_db_get(res, row, "comment"));
    set_int_or_null(o, "ctime", res, row, "ctime");
    set_int_or_null(o, "qtime", res, row, "qtime");
    set_int_or_null(o, "stime", res, row, "stime");
    set_int_or_null(o, "mtime", res, row, "mtime");
    set_int_or_null(o, "end_time", res, row, "end_time");
    if (strcmp(dv_db_get(res, row, "state"), "queued") == 0) {
        /* the scheduler's estimate (backfill), while the job waits */
        set_int_or_null(o, "estimated_start_time", res, row, "est_start");
    } else {
        json_object_set_new(o, "estimated_start_time", json_null());
    }
    json_object_set_new(o, "run_count",
                        json_integer(dv_db_get_i64(res, row, "run_count", 0)));
    if (!dv_db_is_null(res, row, "used_walltime")) {
        json_object_set_new(
            o, "resources_used",
            json_pack(
                "{s:I, s:I, s:I}", "cput",
                (json_int_t)dv_db_get_i64(res, row, "used_cput", 0), "walltime",
                (json_int_t)dv_db_get_i64(res, row, "used_walltime", 0), "mem",
                (json_int_t)dv_db_get_i64(res, row, "used_mem", 0)));
    } else if (!dv_db_is_null(res, row, "stime") &&
               !dv_db_is_null(res, row, "exec_host")) {
        /* Running: what is known so far. */
        int64_t stime = dv_db_get_i64(res, row, "stime", 0);
        int64_t wall = (int64_t)dv_now() - stime;
        json_object_set_new(
            o, "resources_used",
            json_pack("{s:I, s:I, s:I}", "cput", (json_int_t)0, "walltime",
                      (json_int_t)(wall > 0 ? wall : 0), "mem", (json_int_t)0));
    } else {
        json_object_set_new(o, "resources_used", json_null());
    }
    json_object_set_new(o, "resource_list",
                        json_column(res, row, "resource_list", 0));
    json_object_set_new(
        o, "modify_index",
        json_integer(dv_db_get_i64(res, row, "modify_index", 0)));
    if (full && !dv_db_is_null(res, row, "spec")) {
        json_object_set_new(o, "spec", json_column(res, row, "spec", 1));
    }
    array_json_add(r, id, server, o);
    return o;
}

static void
job_event_log(const char *server, int64_t id, const char *what, const char *who)
{
    char jid[300];

    dv_job_id_format((long long)id, server, jid, sizeof(jid));
    log_notice("job %s %s%s%s", jid, what, who != NULL ? " by " : "",
               who != NULL ? who : "");
}

/* --- submit --- */

struct submit_ctx {
    struct dv_job_spec spec;
    char key[130];
    struct db_submit s;
};

static void
submit_ctx_free(void *arg)
{
    struct submit_ctx *c = arg;

    dv_job_spec_cleanup(&c->spec);
    db_jobs_clear(&c->s.out);
    free(c->s.queue_used);
    free(c);
}

static int
submit_run(struct qreq *qr, struct dv_db *db)
{
    struct submit_ctx *c = qr->ctx;
    const char *server = server_name(qr->q);
    int vrow = 0;
    int64_t id;

    c->s.spec = &c->spec;
    c->s.key = c->key;
    c->s.now = dv_now();
    if (db_job_submit(db, &c->s, &qr->err) < 0) {
        return -1;
    }
    id = dv_db_get_i64(c->s.out.jobs, 0, "id", 0);
    qreq_set_json(qr, c->s.replay ? 200 : 201,
                  api_job_json(&c->s.out, 0, &vrow, server, 0));
    qr->location = dv_xasprintf("/v1/jobs/%lld", (long long)id);
    if (!c->s.replay) {
        char what[400];
        snprintf(what, sizeof(what), "submitted to queue %s%s",
                 c->s.queue_used != NULL ? c->s.queue_used : "?",
                 c->spec.hold                ? " (held)"
                 : c->s.waiting_until > 0 ? " (waiting for its execution "
                                              "time)"
                                            : "");
        job_event_log(server, id, what, c->spec.owner);
    }
    return 0;
}

/* Loop thread: a job that waits (W) arms the execution-time timer. */
static void
submit_done(struct qreq *qr)
{
    struct submit_ctx *c = qr->ctx;

    if (!qr->failed && c->s.waiting_until > 0) {
        site_waiting_hint(qr->q, c->s.waiting_until);
    }
    qreq_finish(qr);
}

void
api_jobs_submit(struct qreq *qr)
{
    struct submit_ctx *c;
    json_t *j = qreq_body_json(qr, 0, NULL);
    const char *key;
    struct dv_err err;

    if (j == NULL) {
        return;
    }
    c = dv_xcalloc(1, sizeof(*c));
    dv_job_spec_init(&c->spec);
    qr->ctx = c;
    qr->ctx_free = submit_ctx_free;
    dv_err_clear(&err);
    if (dv_job_spec_from_json(j, &c->spec, &err) < 0) {
        json_decref(j);
        qr->failed = 1;
        qr->err = err;
        qreq_finish(qr);
        return;
    }
    json_decref(j);
    /* The owner: the peer on the Unix socket, X-Drover-User or the spec's
     * owner field on TCP; only root submits for someone else. */
    if (c->spec.owner == NULL) {
        if (qr->user == NULL) {
            qreq_fail(qr, DV_EINVAL, "invalid_job",
                      "the job has no owner: set \"owner\" or the "
                      "X-Drover-User header");
            return;
        }
        c->spec.owner = dv_xstrdup(qr->user);
    } else if (qr->user != NULL && strcmp(c->spec.owner, qr->user) != 0 &&
               !qr->root) {
        qreq_fail(qr, DV_EFORBIDDEN, "forbidden", "Unauthorized Request ");
        return;
    }
    if (dv_job_spec_normalize(&c->spec, &err) < 0 ||
        (c->spec.native != NULL && !qr->root &&
         dv_jobspec_check_users(c->spec.native, c->spec.owner, &err) < 0)) {
        /* Tasks run as the owner unless root submits them. */
        qr->failed = 1;
        qr->err = err;
        qreq_finish(qr);
        return;
    }
    key = dv_http_request_header(qr->req, "Idempotency-Key");
    if (key != NULL) {
        if (!idempotency_key_valid(key)) {
            qreq_fail(qr, DV_EINVAL, "invalid_request",
                      "invalid Idempotency-Key header: 1 to 128 printable "
                      "characters are expected");
            return;
        }
        dv_strlcpy(c->key, key, sizeof(c->key));
    } else if (random_key(c->key) < 0) {
        qreq_fail(qr, DV_EINTERNAL, "internal_error",
                  "could not draw a random idempotency key");
        return;
    }
    qr->run = submit_run;
    qr->done = submit_done;
    qreq_submit(qr);
}

/* --- list --- */

struct list_ctx {
    struct db_job_list f;
    char *owner;
    char *queue;
    int subjobs; /* ?subjobs=true: arrays list their subjobs */
};

static void
list_ctx_free(void *arg)
{
    struct list_ctx *c = arg;

    free(c->owner);
    free(c->queue);
    free(c);
}

static int
list_run(struct qreq *qr, struct dv_db *db)
{
    struct list_ctx *c = qr->ctx;
    const char *server = server_name(qr->q);
    struct db_jobs out = {0};
    json_t *jobs, *body;
    int vrow = 0, n;

    out.next_after = -1;
    out.subjobs_want = c->subjobs ? DB_SUBJOBS_ALL : DB_SUBJOBS_NONE;
    if (db_job_list(db, &c->f, &out, &qr->err) < 0) {
        db_jobs_clear(&out);
        return -1;
    }
    jobs = json_array();
    n = PQntuples(out.jobs);
    if (n > c->f.limit) {
        n = c->f.limit;
    }
    for (int i = 0; i < n; i++) {
        json_array_append_new(jobs,
                              api_job_json(&out, i, &vrow, server, c->f.full));
    }
    body = json_pack("{s:s, s:o}", "server", server, "jobs", jobs);
    json_object_set_new(body, "next_after",
                        out.next_after >= 0 ? json_integer(out.next_after)
                                            : json_null());
    qreq_set_json(qr, 200, body);
    db_jobs_clear(&out);
    return 0;
}

static int
query_bool(struct qreq *qr, const char *name, int *out)
{
    const char *v = dv_http_request_query(qr->req, name);

    *out = 0;
    if (v == NULL) {
        return 0;
    }
    if (*v == '\0') {
        *out = 1;
        return 0;
    }
    if (dv_parse_bool(v, out) < 0) {
        qreq_fail(qr, DV_EINVAL, "invalid_request",
                  "invalid value for %s: true or false expected", name);
        return -1;
    }
    return 0;
}

void
api_jobs_list(struct qreq *qr)
{
    struct list_ctx *c = dv_xcalloc(1, sizeof(*c));
    const char *v;
    int history = 0, limit = 1000;
    int64_t after = 0;

    qr->ctx = c;
    qr->ctx_free = list_ctx_free;
    if (query_bool(qr, "history", &history) < 0 ||
        query_bool(qr, "full", &c->f.full) < 0 ||
        query_bool(qr, "subjobs", &c->subjobs) < 0) {
        return;
    }
    c->f.states = (1u << DV_JOB_NSTATES) - 1;
    if (!history) {
        c->f.states &= ~(1u << DV_JOB_FINISHED);
    }
    v = dv_http_request_query(qr->req, "state");
    if (v != NULL && state_list_parse(v, &c->f.states) < 0) {
        qreq_fail(qr, DV_EINVAL, "invalid_request",
                  "invalid state list \"%.64s\": names among queued, held, "
                  "running, exiting, finished, waiting expected",
                  v);
        return;
    }
    v = dv_http_request_query(qr->req, "limit");
    if (v != NULL && dv_parse_int(v, 1, 10000, &limit) < 0) {
        qreq_fail(qr, DV_EINVAL, "invalid_request",
                  "invalid limit \"%.32s\": 1 to 10000 expected", v);
        return;
    }
    v = dv_http_request_query(qr->req, "after");
    if (v != NULL && dv_parse_i64(v, 0, INT64_MAX, &after) < 0) {
        qreq_fail(qr, DV_EINVAL, "invalid_request",
                  "invalid after \"%.32s\": a job number expected", v);
        return;
    }
    v = dv_http_request_query(qr->req, "owner");
    if (v != NULL && *v != '\0') {
        c->owner = dv_xstrdup(v);
    }
    v = dv_http_request_query(qr->req, "queue");
    if (v != NULL && *v != '\0') {
        c->queue = dv_xstrdup(v);
    }
    c->f.owner = c->owner;
    c->f.queue = c->queue;
    c->f.after = after;
    c->f.limit = limit;
    qr->run = list_run;
    qreq_submit(qr);
}

/* --- get (blocking) --- */

/* GET /v1/jobs/:id?subjobs=true (every subjob of an array) or
 * ?subjob=N (one). */
struct get_ctx {
    int want;
    int index;
};

static int
get_run(struct qreq *qr, struct dv_db *db)
{
    const char *server = server_name(qr->q);
    const struct get_ctx *g = qr->ctx;
    struct db_jobs out = {0};
    int64_t min = qr->lp_expired ? -1 : qr->lp_min_index;
    int moved = 0, vrow = 0;
    int64_t index = 0;

    qr->lp_moved = 0;
    if (g != NULL) {
        out.subjobs_want = g->want;
        out.subjob_index = g->index;
    }
    if (db_job_get(db, server, qr->id, min, &out, &moved, &index, &qr->err) <
        0) {
        db_jobs_clear(&out);
        return -1;
    }
    if (moved && g != NULL && g->want == DB_SUBJOBS_ONE) {
        /* 124[7]: the array must hold index 7 */
        json_t *o = api_job_json(&out, 0, &vrow, server, 1);
        json_t *subs = json_object_get(json_object_get(o, "array"), "subjobs");
        size_t nsubs = json_array_size(subs);
        json_decref(o);
        if (nsubs == 0) {
            char jid[300];
            dv_array_id_format((long long)qr->id, DV_ARRAY_ONE, g->index,
                               g->index, server, jid, sizeof(jid));
            dv_err_set(&qr->err, DV_ENOTFOUND, "job_not_found",
                       "Unknown Job Id %s", jid);
            db_jobs_clear(&out);
            return -1;
        }
        vrow = 0;
    }
    if (moved) {
        qreq_set_json(qr, 200, api_job_json(&out, 0, &vrow, server, 1));
        qr->index = index;
        qr->lp_moved = 1;
    }
    db_jobs_clear(&out);
    return 0;
}

/* Reads ?index=N&wait=D. Returns 1 for a blocking query, 0 for a plain
 * one, -1 when the request was answered (bad parameters). */
static int
blocking_params(struct qreq *qr, int64_t *index, double *wait)
{
    const char *i = dv_http_request_query(qr->req, "index");
    const char *w = dv_http_request_query(qr->req, "wait");

    *wait = QMGR_MAX_WAIT;
    if (w != NULL && parse_wait(w, wait) < 0) {
        qreq_fail(qr, DV_EINVAL, "invalid_request",
                  "invalid wait \"%.32s\": a duration such as 30s or 5m "
                  "expected",
                  w);
        return -1;
    }
    if (i == NULL || *i == '\0') {
        return 0;
    }
    if (dv_parse_i64(i, 0, INT64_MAX, index) < 0) {
        qreq_fail(qr, DV_EINVAL, "invalid_request",
                  "invalid index \"%.32s\": a non-negative integer expected",
                  i);
        return -1;
    }
    return 1;
}

void
api_jobs_get(struct qreq *qr, int64_t id)
{
    int64_t index = 0;
    double wait = 0;
    int blocking = blocking_params(qr, &index, &wait);

    if (blocking < 0) {
        return;
    }
    {
        const char *one = dv_http_request_query(qr->req, "subjob");
        int all = 0;
        if (query_bool(qr, "subjobs", &all) < 0) {
            return;
        }
        if (one != NULL || all) {
            struct get_ctx *g = dv_xcalloc(1, sizeof(*g));
            qr->ctx = g;
            qr->ctx_free = free;
            g->want = all ? DB_SUBJOBS_ALL : DB_SUBJOBS_ONE;
            if (one != NULL &&
                dv_parse_int(one, 0, DV_ARRAY_MAX_INDEX, &g->index) < 0) {
                qreq_fail(qr, DV_EINVAL, "invalid_request",
                          "invalid subjob \"%.32s\": an index expected", one);
                return;
            }
        }
    }
    qr->id = id;
    qr->run = get_run;
    if (blocking && wait > 0) {
        qr->lp_kind = LP_JOB;
        qr->lp_key = id;
        qr->lp_min_index = index;
        longpoll_start(qr, wait);
        return;
    }
    qr->lp_min_index = -1;
    qreq_submit(qr);
}

/* --- qdel, qhold, qrls --- */

static void
change_ctx_free(void *arg)
{
    struct db_job_change *c = arg;

    db_jobs_clear(&c->out);
    free(c);
}

static int
change_run(struct qreq *qr, struct dv_db *db)
{
    struct db_job_change *c = qr->ctx;
    const char *server = server_name(qr->q);
    int vrow = 0;

    c->id = qr->id;
    c->user = qr->user;
    c->root = qr->root;
    c->now = dv_now();
    c->server = server;
    if (db_job_change(db, c, &qr->err) < 0) {
        return -1;
    }
    qreq_set_json(qr, 200, api_job_json(&c->out, 0, &vrow, server, 0));
    if (c->new_state[0] != '\0') {
        char what[128];
        const char *verb = c->op == JOB_OP_DELETE ? "deleted"
                           : c->op == JOB_OP_HOLD ? "held"
                                                  : "released";
        if (strcmp(c->old_state, c->new_state) != 0) {
            snprintf(what, sizeof(what), "%s (%s -> %s)", verb, c->old_state,
                     c->new_state);
        } else {
            snprintf(what, sizeof(what), "%s", verb);
        }
        job_event_log(server, c->id, what, qr->user);
    }
    if (strcmp(c->new_state, "finished") == 0) {
        /* Deleted before it ran (or with nothing left running it). */
        struct job_event ev = {.job_id = c->id, .state = "finished"};
        site_mail(qr->q, db, &ev, 1);
    }
    return 0;
}

static void
change_done(struct qreq *qr)
{
    struct db_job_change *c = qr->ctx;

    if (!qr->failed && c->waiting_until > 0) {
        site_waiting_hint(qr->q, c->waiting_until);
    }
    qreq_finish(qr);
}

void
api_jobs_change(struct qreq *qr, int64_t id, enum job_op op)
{
    struct db_job_change *c = dv_xcalloc(1, sizeof(*c));

    c->op = op;
    c->hold_mask = 1u;
    c->out.next_after = -1;
    qr->ctx = c;
    qr->ctx_free = change_ctx_free;
    qr->id = id;
    if (op == JOB_OP_DELETE) {
        /* ?subjobs=7 or ?subjobs=1-5: qdel 124[7], 124[1-5] */
        const char *v = dv_http_request_query(qr->req, "subjobs");
        if (v != NULL) {
            char *text = dv_xasprintf("[%s]", v);
            enum dv_array_part part;
            const char *end;
            int rc = dv_array_id_bracket(text, &part, &c->array_lo,
                                         &c->array_hi, &end);
            int bad = rc < 0 || *end != '\0' || part < DV_ARRAY_ONE;
            free(text);
            if (bad) {
                qreq_fail(qr, DV_EINVAL, "invalid_request",
                          "invalid subjobs \"%.32s\": an index or a range "
                          "expected",
                          v);
                return;
            }
            c->array_part = (int)part;
        }
    }
    if (op != JOB_OP_DELETE) {
        int empty = 0, rc;
        json_t *j = qreq_body_json(qr, 1, &empty);
        struct dv_err err;

        if (j == NULL && !empty) {
            return;
        }
        dv_err_clear(&err);
        rc = decode_hold_body(j, &c->hold_mask, &err);
        json_decref(j);
        if (rc < 0) {
            qr->failed = 1;
            qr->err = err;
            qreq_finish(qr);
            return;
        }
        if ((c->hold_mask & ~1u) != 0 && !qr->root) {
            /* Operator and system holds are the administrator's. */
            qreq_fail(qr, DV_EFORBIDDEN, "forbidden", "Unauthorized Request ");
            return;
        }
    }
    qr->run = change_run;
    qr->done = change_done;
    qreq_submit(qr);
}

/* --- a job's allocations --- */

static void
allocs_ctx_free(void *arg)
{
    struct db_job_allocs *a = arg;

    db_job_allocs_clear(a);
    free(a);
}

static void
set_col_str(json_t *o, const char *key, const PGresult *res, int row,
            const char *col)
{
    set_str_or_null(o, key, dv_db_get(res, row, col));
}

/* One allocation of GET /v1/jobs/:id/allocations. */
static json_t *
alloc_json(const PGresult *res, int row)
{
    json_t *o = json_object();

    set_int_or_null(o, "id", res, row, "id");
    set_col_str(o, "group", res, row, "group_name");
    set_int_or_null(o, "group_index", res, row, "group_index");
    set_int_or_null(o, "instance", res, row, "instance");
    set_int_or_null(o, "chunk_index", res, row, "chunk_index");
    set_int_or_null(o, "node_id", res, row, "node_id");
    set_col_str(o, "node", res, row, "node_name");
    set_col_str(o, "desired_status", res, row, "desired_status");
    set_col_str(o, "desired_description", res, row, "desired_description");
    set_col_str(o, "client_status", res, row, "client_status");
    set_int_or_null(o, "exit_status", res, row, "exit_status");
    set_col_str(o, "message", res, row, "message");
    set_int_or_null(o, "cores", res, row, "ncpus");
    set_col_str(o, "cpuset", res, row, "cpuset");
    set_int_or_null(o, "memory", res, row, "mem");
    set_int_or_null(o, "ngpus", res, row, "ngpus");
    set_col_str(o, "gpus", res, row, "gpus");
    set_int_or_null(o, "disk", res, row, "disk");
    set_int_or_null(o, "create_time", res, row, "create_time");
    set_int_or_null(o, "start_time", res, row, "start_time");
    set_int_or_null(o, "end_time", res, row, "end_time");
    set_int_or_null(o, "previous_alloc", res, row, "previous_alloc");
    set_int_or_null(o, "reschedule_count", res, row, "reschedule_count");
    set_int_or_null(o, "modify_index", res, row, "modify_index");
    return o;
}

static int
allocs_run(struct qreq *qr, struct dv_db *db)
{
    struct db_job_allocs *a = qr->ctx;
    const char *server = server_name(qr->q);
    json_t *list, *body;
    char jid[300];
    int n;

    a->server = server;
    if (db_job_allocs(db, a, &qr->err) < 0) {
        return -1;
    }
    list = json_array();
    n = PQntuples(a->allocs);
    if (n > a->limit) {
        n = a->limit;
    }
    for (int i = 0; i < n; i++) {
        json_array_append_new(list, alloc_json(a->allocs, i));
    }
    dv_job_id_format((long long)a->id, server, jid, sizeof(jid));
    body = json_pack("{s:s, s:o}", "job_id", jid, "allocations", list);
    json_object_set_new(body, "next_after",
                        a->next_after >= 0 ? json_integer(a->next_after)
                                           : json_null());
    qreq_set_json(qr, 200, body);
    db_job_allocs_clear(a);
    return 0;
}

void
api_jobs_allocs(struct qreq *qr, int64_t id)
{
    struct db_job_allocs *a = dv_xcalloc(1, sizeof(*a));
    const char *v;

    a->id = id;
    a->limit = 1000;
    a->next_after = -1;
    qr->ctx = a;
    qr->ctx_free = allocs_ctx_free;
    qr->id = id;
    v = dv_http_request_query(qr->req, "limit");
    if (v != NULL && dv_parse_int(v, 1, 10000, &a->limit) < 0) {
        qreq_fail(qr, DV_EINVAL, "invalid_request",
                  "invalid limit \"%.32s\": 1 to 10000 expected", v);
        return;
    }
    v = dv_http_request_query(qr->req, "after");
    if (v != NULL && dv_parse_i64(v, 0, INT64_MAX, &a->after) < 0) {
        qreq_fail(qr, DV_EINVAL, "invalid_request",
                  "invalid after \"%.32s\": an allocation id expected", v);
        return;
    }
    qr->run = allocs_run;
    qreq_submit(qr);
}
