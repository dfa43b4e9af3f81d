/*
 * pbsdsh's API (docs/api.md "Tasks"): starting a command on a running
 * job's chunks, waiting for the tasks (a blocking query on the job), and
 * the node route by which node daemons report the tasks' ends. Requests
 * are decoded here on the loop thread; db-tasks.c does the SQL on a
 * worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

#define TASKS_MAX_ARGS 256
#define TASKS_MAX_ARG 4096
#define TASKS_MAX_UPDATES 64
#define TASKS_MAX_OUTPUT (256 * 1024)

struct tasks_ctx {
    struct db_tasks t;
    char **argv;
    int argc;
    int64_t *ids;
    struct task_end *ends;
    int nends;
};

static void
tasks_ctx_free(void *arg)
{
    struct tasks_ctx *c = arg;

    db_tasks_clear(&c->t);
    for (int i = 0; i < c->argc; i++) {
        free(c->argv[i]);
    }
    free(c->argv);
    free(c->ids);
    for (int i = 0; i < c->nends; i++) {
        free(c->ends[i].out);
        free(c->ends[i].err);
        free(c->ends[i].message);
    }
    free(c->ends);
    free(c);
}

static struct tasks_ctx *
tasks_ctx_new(struct qreq *qr, int64_t id)
{
    struct tasks_ctx *c = dv_xcalloc(1, sizeof(*c));

    qr->ctx = c;
    qr->ctx_free = tasks_ctx_free;
    qr->id = id;
    c->t.job_id = id;
    c->t.node = -1;
    c->t.min_index = -1;
    return c;
}

static json_t *
str_or_null(const PGresult *res, int row, const char *col)
{
    return dv_db_is_null(res, row, col) ? json_null()
                                        : json_string(dv_db_get(res, row, col));
}

/* {"job_id", "index", "job_state", "tasks": [...]} */
static json_t *
tasks_json(const struct db_tasks *t, const char *server)
{
    json_t *list = json_array();
    char jid[300];

    for (int i = 0; t->tasks != NULL && i < PQntuples(t->tasks); i++) {
        const PGresult *r = t->tasks;
        json_t *o =
            json_pack("{s:I, s:I, s:s, s:I, s:s}", "id",
                      (json_int_t)dv_db_get_i64(r, i, "id", 0), "node_index",
                      (json_int_t)dv_db_get_i64(r, i, "node_index", 0), "host",
                      dv_db_get(r, i, "host"), "tasknum",
                      (json_int_t)dv_db_get_i64(r, i, "tasknum", 0), "state",
                      dv_db_get(r, i, "state"));

        json_object_set_new(
            o, "exit_status",
            dv_db_is_null(r, i, "exit_status")
                ? json_null()
                : json_integer(dv_db_get_i64(r, i, "exit_status", 0)));
        json_object_set_new(o, "stdout", str_or_null(r, i, "stdout"));
        json_object_set_new(o, "stderr", str_or_null(r, i, "stderr"));
        json_object_set_new(o, "message", str_or_null(r, i, "message"));
        json_array_append_new(list, o);
    }
    dv_job_id_format((long long)t->job_id, server, jid, sizeof(jid));
    return json_pack("{s:s, s:I, s:s, s:o}", "job_id", jid, "index",
                     (json_int_t)t->index, "job_state", t->job_state, "tasks",
                     list);
}

/* --- create --- */

static int
create_run(struct qreq *qr, struct dv_db *db)
{
    struct tasks_ctx *c = qr->ctx;
    const char *server = server_name(qr->q);
    char jid[300];

    c->t.server = server;
    c->t.user = qr->user;
    c->t.root = qr->root;
    c->t.argv = c->argv;
    c->t.argc = c->argc;
    c->t.now = dv_now();
    if (db_tasks_create(db, &c->t, &qr->err) < 0) {
        return -1;
    }
    dv_job_id_format((long long)qr->id, server, jid, sizeof(jid));
    log_info("job %s: %d task%s of \"%.64s\" started by %s", jid,
             PQntuples(c->t.tasks), PQntuples(c->t.tasks) == 1 ? "" : "s",
             c->argv[0], qr->user != NULL ? qr->user : "?");
    qreq_set_json(qr, 201, tasks_json(&c->t, server));
    qr->index = c->t.index;
    return 0;
}

void
api_tasks_create(struct qreq *qr, int64_t id)
{
    struct tasks_ctx *c;
    json_t *j, *argv, *node, *v;
    const char *key;
    size_t i;

    j = qreq_body_json(qr, 0, NULL);
    if (j == NULL) {
        return;
    }
    c = tasks_ctx_new(qr, id);
    if (!json_is_object(j)) {
        json_decref(j);
        qreq_fail(qr, DV_EINVAL, "invalid_request",
                  "the body must be an object");
        return;
    }
    json_object_foreach (j, key, v) {
        if (strcmp(key, "argv") != 0 && strcmp(key, "node") != 0) {
            json_decref(j);
            qreq_fail(qr, DV_EINVAL, "invalid_request",
                      "unknown field \"%.64s\"", key);
            return;
        }
    }
    argv = json_object_get(j, "argv");
    node = json_object_get(j, "node");
    if (!json_is_array(argv) || json_array_size(argv) == 0 ||
        json_array_size(argv) > TASKS_MAX_ARGS) {
        json_decref(j);
        qreq_fail(qr, DV_EINVAL, "invalid_request",
                  "field \"argv\" must be an array of 1 to %d strings",
                  TASKS_MAX_ARGS);
        return;
    }
    if (node != NULL && !json_is_null(node) &&
        (!json_is_integer(node) || json_integer_value(node) < 0 ||
         json_integer_value(node) > DV_MAX_CHUNKS)) {
        json_decref(j);
        qreq_fail(qr, DV_EINVAL, "invalid_request",
                  "field \"node\" must be a node index (0 or more)");
        return;
    }
    if (node != NULL && json_is_integer(node)) {
        c->t.node = (int)json_integer_value(node);
    }
    c->argv = dv_xcalloc(json_array_size(argv) + 1, sizeof(char *));
    json_array_foreach (argv, i, v) {
        const char *s = json_string_value(v);

        if (s == NULL || strlen(s) > TASKS_MAX_ARG ||
            (i == 0 && s[0] == '\0')) {
            json_decref(j);
            qreq_fail(qr, DV_EINVAL, "invalid_request",
                      "argv[%zu] must be a string of at most %d bytes%s", i,
                      TASKS_MAX_ARG, i == 0 ? ", not empty" : "");
            return;
        }
        c->argv[c->argc++] = dv_xstrdup(s);
    }
    json_decref(j);
    qr->run = create_run;
    qreq_submit(qr);
}

/* --- get (blocking on the job) --- */

static int
get_run(struct qreq *qr, struct dv_db *db)
{
    struct tasks_ctx *c = qr->ctx;
    const char *server = server_name(qr->q);

    c->t.server = server;
    c->t.user = qr->user;
    c->t.root = qr->root;
    c->t.min_index = qr->lp_expired ? -1 : qr->lp_min_index;
    qr->lp_moved = 0;
    if (db_tasks_get(db, &c->t, &qr->err) < 0) {
        return -1;
    }
    if (c->t.moved) {
        qreq_set_json(qr, 200, tasks_json(&c->t, server));
        qr->index = c->t.index;
        qr->lp_moved = 1;
    }
    db_tasks_clear(&c->t);
    return 0;
}

void
api_tasks_get(struct qreq *qr, int64_t id)
{
    struct tasks_ctx *c = tasks_ctx_new(qr, id);
    const char *ids = dv_http_request_query(qr->req, "ids");
    const char *i = dv_http_request_query(qr->req, "index");
    const char *w = dv_http_request_query(qr->req, "wait");
    double wait = QMGR_MAX_WAIT;
    int64_t index = 0;
    int n;

    n = parse_id_list(ids, &c->ids);
    if (n < 0 || n > 1000) {
        qreq_fail(qr, DV_EINVAL, "invalid_request",
                  "invalid ids \"%.32s\": at most 1000 task ids, "
                  "comma-separated",
                  ids);
        return;
    }
    c->t.ids = c->ids;
    c->t.nids = n;
    if (w != NULL && parse_wait(w, &wait) < 0) {
        qreq_fail(qr, DV_EINVAL, "invalid_request",
                  "invalid wait \"%.32s\": a duration such as 30s or 5m "
                  "expected",
                  w);
        return;
    }
    qr->run = get_run;
    if (i != NULL && *i != '\0') {
        if (dv_parse_i64(i, 0, INT64_MAX, &index) < 0) {
            qreq_fail(qr, DV_EINVAL, "invalid_request",
                      "invalid index \"%.32s\": a non-negative integer "
                      "expected",
                      i);
            return;
        }
        if (wait > 0) {
            qr->lp_kind = LP_JOB;
            qr->lp_key = id;
            qr->lp_min_index = index;
            longpoll_start(qr, wait);
            return;
        }
    }
    qr->lp_min_index = -1;
    qreq_submit(qr);
}

/* --- a node reports task ends --- */

static int
ended_run(struct qreq *qr, struct dv_db *db)
{
    struct tasks_ctx *c = qr->ctx;
    struct db_task_ended s;

    memset(&s, 0, sizeof(s));
    s.node_id = qr->id;
    s.cn = qr->node_cn;
    s.ends = c->ends;
    s.n = c->nends;
    s.now = dv_now();
    if (db_tasks_ended(db, &s, &qr->err) < 0) {
        return -1;
    }
    qreq_set_json(qr, 200, json_pack("{s:I}", "index", (json_int_t)s.index));
    return 0;
}

/* Decodes one {"id", "exit_status", "stdout", "stderr", "message"}. */
static int
decode_end(const json_t *o, struct task_end *e)
{
    const char *key;
    json_t *v;

    if (!json_is_object(o)) {
        return -1;
    }
    json_object_foreach ((json_t *)o, key, v) {
        if (strcmp(key, "id") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) <= 0) {
                return -1;
            }
            e->id = json_integer_value(v);
        } else if (strcmp(key, "exit_status") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < -1000000 ||
                json_integer_value(v) > 1000000) {
                return -1;
            }
            e->exit_status = (int)json_integer_value(v);
        } else if (strcmp(key, "stdout") == 0 || strcmp(key, "stderr") == 0 ||
                   strcmp(key, "message") == 0) {
            char **to = key[0] == 'm'   ? &e->message
                        : key[3] == 'o' ? &e->out
                                        : &e->err;
            if (json_is_null(v)) {
                continue;
            }
            if (!json_is_string(v) ||
                json_string_length(v) > TASKS_MAX_OUTPUT ||
                strlen(json_string_value(v)) != json_string_length(v)) {
                return -1;
            }
            free(*to);
            *to = dv_xstrdup(json_string_value(v));
        } else {
            return -1;
        }
    }
    return e->id > 0 ? 0 : -1;
}

void
api_tasks_status(struct qreq *qr, int64_t id)
{
    struct tasks_ctx *c;
    json_t *j, *updates, *o;
    size_t i;

    if (api_nodes_allowed(qr) < 0) {
        return;
    }
    j = qreq_body_json(qr, 0, NULL);
    if (j == NULL) {
        return;
    }
    c = tasks_ctx_new(qr, id);
    updates = json_object_get(j, "updates");
    if (!json_is_object(j) || json_object_size(j) != 1 ||
        !json_is_array(updates) || json_array_size(updates) == 0 ||
        json_array_size(updates) > TASKS_MAX_UPDATES) {
        json_decref(j);
        qreq_fail(qr, DV_EINVAL, "invalid_request",
                  "the body must be {\"updates\": [...]} with 1 to %d "
                  "updates",
                  TASKS_MAX_UPDATES);
        return;
    }
    c->ends = dv_xcalloc(json_array_size(updates) + 1, sizeof(*c->ends));
    json_array_foreach (updates, i, o) {
        c->nends++;
        if (decode_end(o, &c->ends[i]) < 0) {
            json_decref(j);
            qreq_fail(qr, DV_EINVAL, "invalid_request",
                      "malformed task update %zu", i);
            return;
        }
    }
    json_decref(j);
    qr->run = ended_run;
    qreq_submit(qr);
}
