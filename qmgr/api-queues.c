/*
 * The queues' API: GET /v1/queues, GET /v1/queues/:name (anyone),
 * POST /v1/queues, PUT|PATCH /v1/queues/:name, DELETE /v1/queues/:name
 * (root only, identity as everywhere in the API); GET /v1/server and
 * PATCH|PUT /v1/server (root): the default queue and fair share. Bodies:
 *   {"name": "q", "set": {"attr": "value"}, "add": {"attr": "value"},
 *    "remove": {"attr": "value"}, "unset": ["attr"]}
 * with PBS's attribute names and qmgr's values (lib/queue.h); "add" and
 * "remove" are qmgr's += and -=. docs/api.md, "Queues".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

#define QUEUE_MAX_OPS 256

/* --- rendering --- */

static json_t *
names_json(char *const *v, int n)
{
    json_t *a = json_array();

    for (int i = 0; i < n; i++) {
        json_array_append_new(a, json_string(v[i]));
    }
    return a;
}

static json_t *
opt_int_json(int v)
{
    return v >= 0 ? json_integer(v) : json_null();
}

static json_t *
queue_json(const struct db_queues *r, int row)
{
    static const char *const states[] = {"queued", "held", "running",
                                         "exiting"};
    struct dv_queue q;
    json_t *o, *sc;
    long long counts[4] = {0, 0, 0, 0}, total = 0;
    char *mr;

    dv_queue_init(&q);
    db_queue_from_row(r->queues, row, &q);
    for (int i = 0; i < PQntuples(r->counts); i++) {
        if (strcmp(dv_db_get(r->counts, i, "queue"), q.name) != 0) {
            continue;
        }
        for (int k = 0; k < 4; k++) {
            if (strcmp(dv_db_get(r->counts, i, "state"), states[k]) == 0) {
                counts[k] += dv_db_get_i64(r->counts, i, "n", 0);
            }
        }
    }
    for (int k = 0; k < 4; k++) {
        total += counts[k];
    }
    sc =
        json_pack("{s:i, s:I, s:I, s:i, s:I, s:I, s:i}", "Transit", 0, "Queued",
                  (json_int_t)counts[0], "Held", (json_int_t)counts[1],
                  "Waiting", 0, "Running", (json_int_t)counts[2], "Exiting",
                  (json_int_t)counts[3], "Begun", 0);
    mr = dv_queue_max_run_text(&q);
    o = json_object();
    json_object_set_new(o, "name", json_string(q.name));
    json_object_set_new(o, "queue_type", json_string("Execution"));
    json_object_set_new(o, "is_default", json_boolean(q.is_default));
    json_object_set_new(o, "priority", json_integer(q.priority));
    json_object_set_new(o, "enabled", json_boolean(q.enabled));
    json_object_set_new(o, "started", json_boolean(q.started));
    json_object_set_new(o, "preemption", json_boolean(q.preemption));
    json_object_set_new(o, "max_running", opt_int_json(q.max_running));
    json_object_set_new(o, "max_user_run", opt_int_json(q.max_user_run));
    json_object_set_new(o, "max_run",
                        mr != NULL ? json_string(mr) : json_null());
    json_object_set_new(o, "resources_default",
                        dv_queue_resources_json(q.rdefault, q.nrdefault));
    json_object_set_new(o, "resources_max",
                        dv_queue_resources_json(q.rmax, q.nrmax));
    json_object_set_new(o, "resources_min",
                        dv_queue_resources_json(q.rmin, q.nrmin));
    json_object_set_new(o, "acl_user_enable", json_boolean(q.acl_user_enable));
    json_object_set_new(o, "acl_users", names_json(q.acl_users, q.nacl_users));
    json_object_set_new(o, "acl_group_enable",
                        json_boolean(q.acl_group_enable));
    json_object_set_new(o, "acl_groups",
                        names_json(q.acl_groups, q.nacl_groups));
    json_object_set_new(o, "total_jobs", json_integer((json_int_t)total));
    json_object_set_new(o, "state_count", sc);
    json_object_set_new(o, "attributes", dv_queue_attrs_json(&q));
    free(mr);
    dv_queue_cleanup(&q);
    return o;
}

/* --- list and get --- */

struct queues_ctx {
    char *name;
    struct db_queues r;
    struct queue_op *ops;
    int nops;
    json_t *body; /* the request body: ops borrow its strings */
    int create;
};

static void
queues_ctx_free(void *arg)
{
    struct queues_ctx *c = arg;

    db_queues_clear(&c->r);
    free(c->ops);
    json_decref(c->body);
    free(c->name);
    free(c);
}

static struct queues_ctx *
queues_ctx_new(struct qreq *qr, const char *name)
{
    struct queues_ctx *c = dv_xcalloc(1, sizeof(*c));

    c->name = name != NULL ? dv_xstrdup(name) : NULL;
    qr->ctx = c;
    qr->ctx_free = queues_ctx_free;
    return c;
}

/* Reads and renders the queue(s) of c; status is the answer's. */
static int
render(struct qreq *qr, struct dv_db *db, int status)
{
    struct queues_ctx *c = qr->ctx;
    const char *server;
    json_t *body;

    if (server_name_ensure(qr->q, db, &qr->err) < 0) {
        return -1;
    }
    server = server_name(qr->q);
    c->r.name = c->name;
    if (db_queues_read(db, &c->r, &qr->err) < 0) {
        return -1;
    }
    if (c->name != NULL) {
        body = queue_json(&c->r, 0);
    } else {
        json_t *a = json_array();
        for (int i = 0; i < PQntuples(c->r.queues); i++) {
            json_array_append_new(a, queue_json(&c->r, i));
        }
        body = json_pack("{s:s, s:o}", "server", server, "queues", a);
    }
    qreq_set_json(qr, status, body);
    return 0;
}

static int
list_run(struct qreq *qr, struct dv_db *db)
{
    return render(qr, db, 200);
}

void
api_queues_list(struct qreq *qr, const char *name)
{
    queues_ctx_new(qr, name);
    qr->run = list_run;
    qreq_submit(qr);
}

/* --- changes --- */

static int
require_root(struct qreq *qr)
{
    if (qr->root) {
        return 0;
    }
    qreq_fail(qr, DV_EFORBIDDEN, "forbidden", "Unauthorized Request ");
    return -1;
}

static int
add_ops(struct queues_ctx *c, json_t *o, const char *key, enum dv_queue_op op,
        struct dv_err *err)
{
    const char *attr;
    json_t *v;

    if (o == NULL) {
        return 0;
    }
    if (!json_is_object(o)) {
        dv_err_set(err, DV_EINVAL, "invalid_request",
                   "\"%s\" must be an object of attribute names to values",
                   key);
        return -1;
    }
    json_object_foreach (o, attr, v) {
        if (!json_is_string(v) && !json_is_integer(v) && !json_is_boolean(v)) {
            dv_err_set(err, DV_EINVAL, "invalid_request",
                       "%s.%.64s: a string value is expected", key, attr);
            return -1;
        }
        if (c->nops >= QUEUE_MAX_OPS) {
            dv_err_set(err, DV_ETOOLARGE, "too_large",
                       "at most %d attribute changes per request",
                       QUEUE_MAX_OPS);
            return -1;
        }
        if (!json_is_string(v)) {
            /* numbers and booleans as text, kept alive by the body */
            char *text =
                json_is_integer(v)
                    ? dv_xasprintf("%lld", (long long)json_integer_value(v))
                    : dv_xstrdup(json_is_true(v) ? "True" : "False");
            json_object_set_new(o, attr, json_string(text));
            free(text);
            v = json_object_get(o, attr);
        }
        c->ops[c->nops].attr = attr;
        c->ops[c->nops].op = op;
        c->ops[c->nops].value = json_string_value(v);
        c->nops++;
    }
    return 0;
}

static int
decode_change(struct queues_ctx *c, json_t *j, int create, struct dv_err *err)
{
    static const char *const known[] = {"name", "set", "add", "remove",
                                        "unset"};
    const char *key;
    json_t *v, *unset;

    if (!json_is_object(j)) {
        dv_err_set(err, DV_EINVAL, "invalid_request",
                   "the body must be a JSON object");
        return -1;
    }
    json_object_foreach (j, key, v) {
        size_t k;
        for (k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
            if (strcmp(key, known[k]) == 0) {
                break;
            }
        }
        if (k == sizeof(known) / sizeof(known[0])) {
            dv_err_set(err, DV_EINVAL, "invalid_request",
                       "unknown key \"%.64s\" (name, set, add, remove, unset)",
                       key);
            return -1;
        }
    }
    if (create) {
        const char *name = json_string_value(json_object_get(j, "name"));
        if (!dv_queue_name_valid(name)) {
            dv_err_set(err, DV_EINVAL, "bad_queue_name",
                       "invalid queue name \"%.64s\": 1 to 15 of A-Z a-z 0-9 "
                       "_ -, starting with a letter or digit",
                       name != NULL ? name : "");
            return -1;
        }
        c->name = dv_xstrdup(name);
    }
    c->ops = dv_xcalloc(QUEUE_MAX_OPS + 1, sizeof(*c->ops));
    if (add_ops(c, json_object_get(j, "set"), "set", DV_QUEUE_SET, err) < 0 ||
        add_ops(c, json_object_get(j, "add"), "add", DV_QUEUE_ADD, err) < 0 ||
        add_ops(c, json_object_get(j, "remove"), "remove", DV_QUEUE_REMOVE,
                err) < 0) {
        return -1;
    }
    unset = json_object_get(j, "unset");
    if (unset != NULL) {
        size_t i;
        if (!json_is_array(unset)) {
            dv_err_set(err, DV_EINVAL, "invalid_request",
                       "\"unset\" must be an array of attribute names");
            return -1;
        }
        json_array_foreach (unset, i, v) {
            if (!json_is_string(v) || c->nops >= QUEUE_MAX_OPS) {
                dv_err_set(err, DV_EINVAL, "invalid_request",
                           "\"unset\" must be an array of at most %d "
                           "attribute names",
                           QUEUE_MAX_OPS);
                return -1;
            }
            c->ops[c->nops].attr = json_string_value(v);
            c->ops[c->nops].unset = 1;
            c->nops++;
        }
    }
    return 0;
}

static int
change_run(struct qreq *qr, struct dv_db *db)
{
    struct queues_ctx *c = qr->ctx;
    struct db_queue_change ch = {
        .name = c->name,
        .create = c->create,
        .ops = c->ops,
        .nops = c->nops,
    };

    if (db_queue_change(db, &ch, &qr->err) < 0) {
        return -1;
    }
    log_notice("queue %s %s by %s (%d attribute change%s)%s", c->name,
               c->create ? "created" : "changed",
               qr->user != NULL ? qr->user : "-", c->nops,
               c->nops == 1 ? "" : "s",
               ch.woken > 0 ? "; waiting work woken" : "");
    return render(qr, db, c->create ? 201 : 200);
}

static void
start_change(struct qreq *qr, const char *name, int create)
{
    struct queues_ctx *c;
    struct dv_err err;
    json_t *j;
    int empty = 0;

    if (require_root(qr) < 0) {
        return;
    }
    j = qreq_body_json(qr, !create, &empty);
    if (j == NULL && !empty) {
        return;
    }
    c = queues_ctx_new(qr, name);
    c->create = create;
    c->body = j != NULL ? j : json_object();
    dv_err_clear(&err);
    if (decode_change(c, c->body, create, &err) < 0) {
        qr->failed = 1;
        qr->err = err;
        qreq_finish(qr);
        return;
    }
    if (create) {
        qr->location = dv_xasprintf("/v1/queues/%s", c->name);
    }
    qr->run = change_run;
    qreq_submit(qr);
}

void
api_queues_create(struct qreq *qr)
{
    start_change(qr, NULL, 1);
}

void
api_queues_change(struct qreq *qr, const char *name)
{
    start_change(qr, name, 0);
}

static int
delete_run(struct qreq *qr, struct dv_db *db)
{
    struct queues_ctx *c = qr->ctx;

    if (db_queue_delete(db, c->name, &qr->err) < 0) {
        return -1;
    }
    log_notice("queue %s deleted by %s", c->name,
               qr->user != NULL ? qr->user : "-");
    qreq_set_json(qr, 200,
                  json_pack("{s:s, s:b}", "name", c->name, "deleted", 1));
    return 0;
}

void
api_queues_delete(struct qreq *qr, const char *name)
{
    if (require_root(qr) < 0) {
        return;
    }
    queues_ctx_new(qr, name);
    qr->run = delete_run;
    qreq_submit(qr);
}

/* --- /v1/server: the default queue and fair share --- */

struct server_ctx {
    struct db_server r;
    struct db_server_change ch;
    char *default_queue;
};

static void
server_ctx_free(void *arg)
{
    struct server_ctx *c = arg;

    db_server_clear(&c->r);
    free(c->default_queue);
    free(c);
}

static int
server_render(struct qreq *qr, struct dv_db *db)
{
    struct server_ctx *c = qr->ctx;
    json_t *o, *users;

    c->r.now = dv_now();
    if (db_server_read(db, &c->r, &qr->err) < 0) {
        return -1;
    }
    users = json_array();
    for (int i = 0; i < PQntuples(c->r.usage); i++) {
        json_array_append_new(
            users,
            json_pack("{s:s, s:f, s:f}", "user",
                      dv_db_get(c->r.usage, i, "owner"), "usage",
                      strtod(dv_db_get(c->r.usage, i, "usage"), NULL),
                      "core_seconds",
                      strtod(dv_db_get(c->r.usage, i, "core_seconds"), NULL)));
    }
    o = json_object();
    json_object_set_new(o, "name",
                        json_string(PQntuples(c->r.settings) > 0
                                        ? dv_db_get(c->r.settings, 0, "name")
                                        : server_name(qr->q)));
    json_object_set_new(
        o, "default_queue",
        PQntuples(c->r.settings) > 0 &&
                !dv_db_is_null(c->r.settings, 0, "default_queue")
            ? json_string(dv_db_get(c->r.settings, 0, "default_queue"))
            : json_null());
    json_object_set_new(o, "fairshare_half_life",
                        json_real(PQntuples(c->r.settings) > 0
                                      ? strtod(dv_db_get(c->r.settings, 0,
                                                         "fairshare_half_life"),
                                               NULL)
                                      : 0));
    json_object_set_new(o, "fairshare", users);
    qreq_set_json(qr, 200, o);
    return 0;
}

void
api_server_get(struct qreq *qr)
{
    struct server_ctx *c = dv_xcalloc(1, sizeof(*c));

    qr->ctx = c;
    qr->ctx_free = server_ctx_free;
    qr->run = server_render;
    qreq_submit(qr);
}

static int
server_change_run(struct qreq *qr, struct dv_db *db)
{
    struct server_ctx *c = qr->ctx;

    c->ch.now = dv_now();
    if (db_server_change(db, &c->ch, &qr->err) < 0) {
        return -1;
    }
    log_notice("server settings changed by %s%s%s%s",
               qr->user != NULL ? qr->user : "-",
               c->default_queue != NULL ? ": default queue " : "",
               c->default_queue != NULL ? c->default_queue : "",
               c->ch.half_life > 0 ? " (fair-share half-life changed)" : "");
    return server_render(qr, db);
}

/* {"set": {"default_queue": "q", "fairshare_half_life": "7:00:00"}} */
static int
decode_server(struct server_ctx *c, const json_t *j, struct dv_err *err)
{
    const json_t *set = json_object_get(j, "set");
    const char *key;
    json_t *v;

    if (!json_is_object(j) || json_object_size(j) != 1 ||
        !json_is_object(set)) {
        dv_err_set(err, DV_EINVAL, "invalid_request",
                   "the body must be {\"set\": {attribute: value}}");
        return -1;
    }
    json_object_foreach ((json_t *)set, key, v) {
        const char *s = json_string_value(v);
        int64_t secs;
        if (s == NULL) {
            dv_err_set(err, DV_EINVAL, "invalid_request",
                       "set.%.64s: a string value is expected", key);
            return -1;
        }
        if (strcmp(key, "default_queue") == 0) {
            if (!dv_queue_name_valid(s)) {
                dv_err_set(err, DV_EINVAL, "unknown_queue", "Unknown queue");
                return -1;
            }
            free(c->default_queue);
            c->default_queue = dv_xstrdup(s);
            c->ch.default_queue = c->default_queue;
        } else if (strcmp(key, "fairshare_half_life") == 0) {
            if (dv_parse_walltime(s, &secs) < 0 || secs <= 0) {
                dv_err_set(err, DV_EINVAL, "bad_attribute_value",
                           "Illegal attribute or resource value "
                           "fairshare_half_life");
                return -1;
            }
            c->ch.half_life = (double)secs;
        } else {
            dv_err_set(err, DV_EINVAL, "unknown_attribute",
                       "Undefined attribute %.64s", key);
            return -1;
        }
    }
    return 0;
}

void
api_server_change(struct qreq *qr)
{
    struct server_ctx *c;
    struct dv_err err;
    json_t *j;

    if (require_root(qr) < 0) {
        return;
    }
    j = qreq_body_json(qr, 0, NULL);
    if (j == NULL) {
        return;
    }
    c = dv_xcalloc(1, sizeof(*c));
    qr->ctx = c;
    qr->ctx_free = server_ctx_free;
    dv_err_clear(&err);
    if (decode_server(c, j, &err) < 0) {
        json_decref(j);
        qr->failed = 1;
        qr->err = err;
        qreq_finish(qr);
        return;
    }
    json_decref(j);
    qr->run = server_change_run;
    qreq_submit(qr);
}
