/*
 * The nodes API (docs/api.md "Nodes"): who may call node routes, the
 * heartbeat TTL, register, heartbeat, a node's allocations (blocking; the
 * batches are run by longpoll.c, the answers rendered here), batched
 * allocation status updates with per-update errors, the node list, one
 * node, and operators' eligibility and drain changes (root only). Bodies
 * are decoded strictly into C structs on the loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

/* --- who may call node routes --- */

int
api_nodes_allowed(struct qreq *qr)
{
    const struct qmgr_config *cfg = qr->q->cfg;

    if (qr->unix_peer) {
        /* Any local user reaches the socket: only root and the daemon's
         * own user may speak for nodes. */
        if (qr->peer_uid == 0 ||
            (cfg->node_uid >= 0 && (int64_t)qr->peer_uid == cfg->node_uid)) {
            return 0;
        }
        qreq_fail(qr, DV_EFORBIDDEN, "forbidden",
                  "node routes are for drover-noded: uid %lu may not call "
                  "them (root%s may)",
                  (unsigned long)qr->peer_uid,
                  cfg->node_uid >= 0 ? " and --node-uid" : "");
        return -1;
    }
    if (!dv_str_empty(cfg->tls_client_ca)) {
        /* Mutual TLS: the certificate names the node. */
        const char *cn = dv_http_request_tls_peer_cn(qr->req);

        if (dv_str_empty(cn)) {
            qreq_fail(qr, DV_EFORBIDDEN, "forbidden",
                      "node routes need a client certificate naming the "
                      "node");
            return -1;
        }
        free(qr->node_cn);
        qr->node_cn = dv_xstrdup(cn);
    }
    /* Plain TCP: trusted (loopback and development only, docs/api.md). */
    return 0;
}

double
api_nodes_ttl(struct qmgr *q)
{
    double ttl = q->node_ttl;
    int ready = __atomic_load_n(&q->ready_nodes, __ATOMIC_RELAXED);

    if (q->max_heartbeat_rate > 0) {
        /* A heartbeat every TTL/3 real seconds from each ready node. */
        double scaled =
            3.0 * (double)ready / q->max_heartbeat_rate * dv_clock_scale();

        if (scaled > ttl) {
            ttl = scaled;
        }
    }
    return ttl;
}

/* --- register --- */

struct register_ctx {
    json_t *body; /* keeps the borrowed strings alive */
    struct node_reg_json texts;
    struct db_node_reg r;
};

static void
register_ctx_free(void *arg)
{
    struct register_ctx *c = arg;

    json_decref(c->body);
    node_reg_json_free(&c->texts);
    free(c);
}

static int
register_run(struct qreq *qr, struct dv_db *db)
{
    struct register_ctx *c = qr->ctx;

    c->r.now = dv_now();
    if (db_node_register(db, &c->r, &qr->err) < 0) {
        return -1;
    }
    qreq_set_json(qr, 200,
                  json_pack("{s:I, s:f}", "node_id", (json_int_t)c->r.node_id,
                            "heartbeat_ttl", c->r.ttl));
    if (c->r.created) {
        log_notice("node %s (id %lld) registered: %lld cores, %lld bytes of "
                   "memory, %lld GPUs",
                   c->r.name, (long long)c->r.node_id, (long long)c->r.cores,
                   (long long)c->r.memory, (long long)c->r.gpus);
    } else if (strcmp(c->r.old_status, "ready") != 0) {
        log_notice("node %s (id %lld) registered again: %s -> ready", c->r.name,
                   (long long)c->r.node_id, c->r.old_status);
    } else {
        log_info("node %s (id %lld) registered again", c->r.name,
                 (long long)c->r.node_id);
    }
    if (c->r.system_evals > 0) {
        log_info("node %s: %d system jobs to place there", c->r.name,
                 c->r.system_evals);
    }
    return 0;
}

void
api_nodes_register(struct qreq *qr)
{
    struct register_ctx *c;
    json_t *j;
    struct dv_err err;

    if (api_nodes_allowed(qr) < 0) {
        return;
    }
    j = qreq_body_json(qr, 0, NULL);
    if (j == NULL) {
        return;
    }
    c = dv_xcalloc(1, sizeof(*c));
    c->body = j;
    qr->ctx = c;
    qr->ctx_free = register_ctx_free;
    dv_err_clear(&err);
    if (decode_node_register(j, &c->r, &c->texts, &err) < 0) {
        qr->failed = 1;
        qr->err = err;
        qreq_finish(qr);
        return;
    }
    if (qr->node_cn != NULL && strcmp(qr->node_cn, c->r.name) != 0) {
        qreq_fail(qr, DV_EFORBIDDEN, "forbidden",
                  "cannot register node \"%.64s\" with a certificate for "
                  "\"%.64s\"",
                  c->r.name, qr->node_cn);
        return;
    }
    c->r.topology = c->texts.topology != NULL ? c->texts.topology : "{}";
    c->r.attributes = c->texts.attributes != NULL ? c->texts.attributes : "{}";
    c->r.meta = c->texts.meta != NULL ? c->texts.meta : "{}";
    c->r.ttl = api_nodes_ttl(qr->q);
    qr->run = register_run;
    qreq_submit(qr);
}

/* --- heartbeat --- */

static int
heartbeat_run(struct qreq *qr, struct dv_db *db)
{
    double ttl = api_nodes_ttl(qr->q);

    if (db_node_heartbeat(db, qr->id, qr->node_cn, ttl, dv_now(), &qr->err) <
        0) {
        return -1;
    }
    qreq_set_json(qr, 200, json_pack("{s:f}", "heartbeat_ttl", ttl));
    return 0;
}

void
api_nodes_heartbeat(struct qreq *qr, int64_t id)
{
    if (api_nodes_allowed(qr) < 0) {
        return;
    }
    qr->id = id;
    qr->run = heartbeat_run;
    qreq_submit(qr);
}

/* --- a node's allocations (blocking, answered in batches) --- */

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static int
find_first(const int64_t *v, int n, int64_t key)
{
    int lo = 0, hi = n;

    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;

        if (v[mid] < key) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < n && v[lo] == key ? lo : -1;
}

static json_t *
alloc_json(const PGresult *res, int row, const struct db_node_polls *b,
           const char *server, int with_hosts)
{
    int64_t job_id = dv_db_get_i64(res, row, "job_id", 0);
    char jid[300];
    json_t *o;

    int aidx = (int)dv_db_get_i64(res, row, "array_index", -1);

    if (aidx >= 0) {
        dv_array_id_format((long long)job_id, DV_ARRAY_ONE, aidx, aidx, server,
                           jid, sizeof(jid));
    } else {
        dv_job_id_format((long long)job_id, server, jid, sizeof(jid));
    }
    o = json_pack(
        "{s:I, s:I, s:s, s:I, s:I, s:I, s:s, s:s, s:I, s:I, s:s, s:I, s:s, "
        "s:I, s:I, s:s}",
        "id", (json_int_t)dv_db_get_i64(res, row, "id", 0), "job_id",
        (json_int_t)job_id, "job_id_str", jid, "group_index",
        (json_int_t)dv_db_get_i64(res, row, "group_index", 0), "instance",
        (json_int_t)dv_db_get_i64(res, row, "instance", 0), "chunk_index",
        (json_int_t)dv_db_get_i64(res, row, "chunk_index", 0), "desired_status",
        dv_db_get(res, row, "desired_status"), "client_status",
        dv_db_get(res, row, "client_status"), "ncpus",
        (json_int_t)dv_db_get_i64(res, row, "ncpus", 0), "mem",
        (json_int_t)dv_db_get_i64(res, row, "mem", 0), "gpus",
        dv_db_get(res, row, "gpus"), "disk",
        (json_int_t)dv_db_get_i64(res, row, "disk", 0), "cpuset",
        dv_db_get(res, row, "cpuset"), "alloc_modify_index",
        (json_int_t)dv_db_get_i64(res, row, "alloc_modify_index", 0),
        "walltime", (json_int_t)dv_db_get_i64(res, row, "walltime", 0), "queue",
        dv_db_get(res, row, "queue"));
    if (aidx >= 0) {
        char aid[300];
        dv_array_id_format((long long)job_id, DV_ARRAY_WHOLE, 0, 0, server, aid,
                           sizeof(aid));
        json_object_set_new(o, "array_index", json_integer(aidx));
        json_object_set_new(o, "array_id", json_string(aid));
    }
    /* qsig: the latest signal requested and how many were (noded
     * delivers each new one once). */
    if (!dv_db_is_null(res, row, "signal")) {
        json_object_set_new(o, "signal",
                            json_string(dv_db_get(res, row, "signal")));
        json_object_set_new(
            o, "signal_seq",
            json_integer(dv_db_get_i64(res, row, "signal_seq", 0)));
    }
    if (with_hosts && b->hosts != NULL) {
        int nh = PQntuples(b->hosts);
        int h = find_first(b->host_ids, nh, job_id);
        json_t *hosts = json_array();

        for (; h >= 0 && h < nh && b->host_ids[h] == job_id; h++) {
            if (dv_db_get_i64(b->hosts, h, "array_index", -1) != aidx) {
                continue; /* another subjob's */
            }
            json_array_append_new(
                hosts,
                json_pack(
                    "{s:s, s:I, s:I}", "host", dv_db_get(b->hosts, h, "host"),
                    "ncpus", (json_int_t)dv_db_get_i64(b->hosts, h, "ncpus", 0),
                    "chunk",
                    (json_int_t)dv_db_get_i64(b->hosts, h, "chunk_index", 0)));
        }
        json_object_set_new(o, "hosts", hosts);
    }
    return o;
}

/* Appends ,"tasks":[...] with the pending tasks of allocation id. */
static void
poll_tasks_json(const struct db_node_polls *b, int64_t id, struct dv_buf *out)
{
    int nt = b->tasks != NULL ? PQntuples(b->tasks) : 0;
    int t = find_first(b->task_allocs, nt, id);

    dv_buf_puts(out, ",\"tasks\":[");
    for (int k = 0; t >= 0 && t < nt && b->task_allocs[t] == id; t++, k++) {
        dv_buf_printf(out, "%s%s", k > 0 ? "," : "",
                      dv_db_get(b->tasks, t, "task"));
    }
    dv_buf_putc(out, ']');
}

static int
needs_spec(const PGresult *res, int row)
{
    return strcmp(dv_db_get(res, row, "client_status"), "pending") == 0 &&
           strcmp(dv_db_get(res, row, "desired_status"), "run") == 0;
}

/*
 * The answer is built as text: each stored spec is copied as PostgreSQL
 * printed it (valid JSON) instead of being parsed and printed again, which
 * at a thousand nodes woken at once is most of the work.
 */
char *
api_nodes_poll_json(const struct db_node_polls *b, int i, const char *server)
{
    const struct db_node_poll *p = &b->p[i];
    const PGresult *res = b->allocs;
    int64_t *jobs = dv_xcalloc((size_t)p->nrows + 1, sizeof(int64_t));
    int njobs = 0, nj = b->jobs != NULL ? PQntuples(b->jobs) : 0;
    struct dv_buf out;

    dv_buf_init(&out);
    dv_buf_printf(&out, "{\"index\":%lld,\"full\":%s,\"allocations\":[",
                  (long long)p->index, p->full ? "true" : "false");
    for (int r = p->first_row; r < p->first_row + p->nrows; r++) {
        int spec = needs_spec(res, r);
        int hosts = spec && !dv_db_get_bool(res, r, "native", 0) &&
                    dv_db_get_i64(res, r, "chunk_index", 0) == 0;
        int tasks = dv_db_get_bool(res, r, "has_tasks", 0);
        json_t *o = alloc_json(res, r, b, server, hosts);
        char *text = json_dumps(o, JSON_COMPACT);

        json_decref(o);
        if (text == NULL) {
            abort(); /* only fails on out-of-memory */
        }
        if (tasks) {
            /* pbsdsh tasks, spliced in as PostgreSQL printed them. */
            text[strlen(text) - 1] = '\0';
            dv_buf_printf(&out, "%s%s", r > p->first_row ? "," : "", text);
            poll_tasks_json(b, dv_db_get_i64(res, r, "id", 0), &out);
            dv_buf_putc(&out, '}');
        } else {
            dv_buf_printf(&out, "%s%s", r > p->first_row ? "," : "", text);
        }
        free(text);
        if (spec || tasks) {
            int64_t job = dv_db_get_i64(res, r, "job_id", 0);

            if (njobs == 0 || jobs[njobs - 1] != job) {
                jobs[njobs++] = job;
            }
        }
    }
    dv_buf_puts(&out, "],\"jobs\":{");
    /* Rows are in allocation id order: the same job may come back after
     * another; print each once. */
    qsort(jobs, (size_t)njobs, sizeof(*jobs), cmp_i64);
    for (int k = 0, printed = 0; k < njobs; k++) {
        int j;

        if (k > 0 && jobs[k] == jobs[k - 1]) {
            continue;
        }
        j = find_first(b->job_ids, nj, jobs[k]);
        if (j < 0) {
            continue;
        }
        dv_buf_printf(&out, "%s\"%lld\":%s", printed++ > 0 ? "," : "",
                      (long long)jobs[k], dv_db_get(b->jobs, j, "spec"));
    }
    dv_buf_puts(&out, "}}");
    free(jobs);
    return dv_buf_steal(&out);
}

void
api_nodes_allocs(struct qreq *qr, int64_t id)
{
    const char *i = dv_http_request_query(qr->req, "index");
    const char *w = dv_http_request_query(qr->req, "wait");
    double wait = QMGR_MAX_WAIT;
    int64_t index = 0;

    if (api_nodes_allowed(qr) < 0) {
        return;
    }
    qr->id = id;
    if (w != NULL && parse_wait(w, &wait) < 0) {
        qreq_fail(qr, DV_EINVAL, "invalid_request",
                  "invalid wait \"%.32s\": a duration such as 30s or 5m "
                  "expected",
                  w);
        return;
    }
    if (i != NULL && *i != '\0' && dv_parse_i64(i, 0, INT64_MAX, &index) < 0) {
        qreq_fail(qr, DV_EINVAL, "invalid_request",
                  "invalid index \"%.32s\": a non-negative integer expected",
                  i);
        return;
    }
    qr->lp_kind = LP_NODE_ALLOCS;
    qr->lp_key = id;
    qr->lp_min_index = index;
    /* Without an index the answer is the full list, at once. */
    longpoll_start(qr, i != NULL && *i != '\0' ? wait : 0);
}

/* --- allocation status updates --- */

struct status_ctx {
    struct alloc_update *u;
    int n;
    struct db_alloc_status s;
};

static void
status_ctx_free(void *arg)
{
    struct status_ctx *c = arg;

    decode_updates_free(c->u, c->n);
    db_alloc_status_clear(&c->s);
    free(c);
}

static int
status_run(struct qreq *qr, struct dv_db *db)
{
    struct status_ctx *c = qr->ctx;
    const char *server = server_name(qr->q);
    json_t *errors;

    c->s.node_id = qr->id;
    c->s.cn = qr->node_cn;
    c->s.u = c->u;
    c->s.n = c->n;
    c->s.now = dv_now();
    if (db_alloc_status(db, &c->s, &qr->err) < 0) {
        return -1;
    }
    for (int i = 0; i < c->s.nevents; i++) {
        const struct job_event *e = &c->s.events[i];
        char jid[300];

        dv_job_id_format((long long)e->job_id, server, jid, sizeof(jid));
        if (e->has_exit) {
            log_notice("job %s finished: exit status %d", jid, e->exit_status);
        } else if (strcmp(e->state, "queued") == 0) {
            log_notice("job %s requeued: its allocation was lost", jid);
        } else {
            log_notice("job %s is %s", jid, e->state);
        }
    }
    site_mail(qr->q, db, c->s.events, c->s.nevents);
    errors = json_array();
    for (int i = 0; i < c->s.nerrors; i++) {
        const struct update_error *e = &c->s.errors[i];

        log_warn("node %lld: update %d (allocation %lld) rejected: %s",
                 (long long)qr->id, e->pos, (long long)e->id, e->message);
        json_array_append_new(
            errors, json_pack("{s:i, s:o, s:s, s:s}", "pos", e->pos, "id",
                              e->id >= 0 ? json_integer(e->id) : json_null(),
                              "code", e->code, "message", e->message));
    }
    qreq_set_json(qr, 200,
                  json_pack("{s:I, s:i, s:o}", "index", (json_int_t)c->s.index,
                            "applied", c->s.applied, "errors", errors));
    return 0;
}

void
api_nodes_alloc_status(struct qreq *qr, int64_t id)
{
    struct status_ctx *c;
    json_t *j;
    struct dv_err err;
    int rc;

    if (api_nodes_allowed(qr) < 0) {
        return;
    }
    j = qreq_body_json(qr, 0, NULL);
    if (j == NULL) {
        return;
    }
    c = dv_xcalloc(1, sizeof(*c));
    qr->ctx = c;
    qr->ctx_free = status_ctx_free;
    qr->id = id;
    dv_err_clear(&err);
    rc = decode_alloc_updates(j, &c->u, &c->n, &err);
    json_decref(j);
    if (rc < 0) {
        qr->failed = 1;
        qr->err = err;
        qreq_finish(qr);
        return;
    }
    qr->run = status_run;
    qreq_submit(qr);
}

/* --- the node object, the node list, one node --- */

json_t *
api_node_json(const PGresult *nodes, int row, json_t *jobs, int64_t nallocs)
{
    const char *addr = dv_db_get(nodes, row, "address");
    const char *comment = dv_db_get(nodes, row, "comment");
    const char *node_class = dv_db_get(nodes, row, "node_class");
    json_t *meta = json_loads(dv_db_get(nodes, row, "meta"), 0, NULL);
    json_t *node = json_pack(
        "{s:I, s:s, s:s, s:b, s:b, s:o, s:s, s:s, s:o, s:I, s:I, s:I, s:I, "
        "s:I, s:I, s:s, s:o, s:I, s:f, s:I, s:I}",
        "id", (json_int_t)dv_db_get_i64(nodes, row, "id", 0), "name",
        dv_db_get(nodes, row, "name"), "status",
        dv_db_get(nodes, row, "status"), "eligible",
        dv_db_get_bool(nodes, row, "eligible", 1), "drain",
        dv_db_get_bool(nodes, row, "drain", 0), "comment",
        comment != NULL ? json_string(comment) : json_null(), "datacenter",
        dv_db_get(nodes, row, "datacenter"), "pool",
        dv_db_get(nodes, row, "pool"), "address",
        addr != NULL ? json_string(addr) : json_null(), "total_cores",
        (json_int_t)dv_db_get_i64(nodes, row, "total_cores", 0), "free_cores",
        (json_int_t)dv_db_get_i64(nodes, row, "free_cores", 0), "total_mem",
        (json_int_t)dv_db_get_i64(nodes, row, "total_mem", 0), "free_mem",
        (json_int_t)dv_db_get_i64(nodes, row, "free_mem", 0), "total_gpus",
        (json_int_t)dv_db_get_i64(nodes, row, "total_gpus", 0), "free_gpus",
        (json_int_t)dv_db_get_i64(nodes, row, "free_gpus", 0), "free_cpuset",
        dv_db_get(nodes, row, "free_cpuset"), "jobs", jobs, "allocation_count",
        (json_int_t)nallocs, "heartbeat_ttl",
        dv_db_get_double(nodes, row, "heartbeat_ttl", 0), "heartbeat_deadline",
        (json_int_t)dv_db_get_i64(nodes, row, "heartbeat_deadline", 0),
        "modify_index",
        (json_int_t)dv_db_get_i64(nodes, row, "modify_index", 0));

    json_object_set_new(node, "node_class",
                        node_class != NULL ? json_string(node_class)
                                           : json_null());
    json_object_set_new(node, "meta", meta != NULL ? meta : json_object());
    return node;
}

/* A node's job as PBS's pbsnodes names it: "12.srv", or "124[7].srv" for
 * a subjob (idx >= 0). */
static void
node_job_id(int64_t job, int idx, const char *server, char *buf, size_t size)
{
    if (idx >= 0) {
        dv_array_id_format((long long)job, DV_ARRAY_ONE, idx, idx, server, buf,
                           size);
    } else {
        dv_job_id_format((long long)job, server, buf, size);
    }
}

static int
nodes_run(struct qreq *qr, struct dv_db *db)
{
    const char *server = server_name(qr->q);
    PGresult *nodes = NULL, *jobs = NULL;
    json_t *list;
    int jr = 0, nj;

    if (db_node_list(db, &nodes, &jobs, &qr->err) < 0) {
        PQclear(nodes);
        PQclear(jobs);
        return -1;
    }
    list = json_array();
    nj = PQntuples(jobs);
    for (int i = 0; i < PQntuples(nodes); i++) {
        int64_t id = dv_db_get_i64(nodes, i, "id", 0);
        int64_t nallocs = 0;
        json_t *ids = json_array();

        while (jr < nj && dv_db_get_i64(jobs, jr, "node_id", 0) < id) {
            jr++;
        }
        while (jr < nj && dv_db_get_i64(jobs, jr, "node_id", 0) == id) {
            char jid[300];
            node_job_id(dv_db_get_i64(jobs, jr, "job_id", 0),
                        (int)dv_db_get_i64(jobs, jr, "array_index", -1), server,
                        jid, sizeof(jid));
            json_array_append_new(ids, json_string(jid));
            nallocs += dv_db_get_i64(jobs, jr, "n", 0);
            jr++;
        }
        json_array_append_new(list, api_node_json(nodes, i, ids, nallocs));
    }
    PQclear(nodes);
    PQclear(jobs);
    qreq_set_json(qr, 200, json_pack("{s:o}", "nodes", list));
    return 0;
}

void
api_nodes_list(struct qreq *qr)
{
    qr->run = nodes_run;
    qreq_submit(qr);
}

struct node_job {
    int64_t job;
    int idx; /* subjob index, -1: none */
};

static int
cmp_node_job(const void *a, const void *b)
{
    const struct node_job *x = a, *y = b;

    if (x->job != y->job) {
        return x->job < y->job ? -1 : 1;
    }
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* One node with its active allocations (GET /v1/nodes/:id and the answer
 * to a change). */
static json_t *
node_view_json(const struct db_node_view *v, const char *server)
{
    json_t *jobs = json_array(), *allocs = json_array(), *o;
    int n = PQntuples(v->allocs);

    for (int i = 0; i < n; i++) {
        int64_t job = dv_db_get_i64(v->allocs, i, "job_id", 0);
        char jid[300];

        node_job_id(job, (int)dv_db_get_i64(v->allocs, i, "array_index", -1),
                    server, jid, sizeof(jid));
        json_array_append_new(
            allocs,
            json_pack(
                "{s:I, s:s, s:I, s:I, s:I, s:s, s:s}", "id",
                (json_int_t)dv_db_get_i64(v->allocs, i, "id", 0), "job_id", jid,
                "cores", (json_int_t)dv_db_get_i64(v->allocs, i, "ncpus", 0),
                "memory", (json_int_t)dv_db_get_i64(v->allocs, i, "mem", 0),
                "gpus", (json_int_t)dv_db_get_i64(v->allocs, i, "ngpus", 0),
                "state", dv_db_get(v->allocs, i, "client_status"),
                "desired_status", dv_db_get(v->allocs, i, "desired_status")));
    }
    /* "jobs" as in the list: each job (or subjob) once, in id order. */
    {
        struct node_job *ids = dv_xcalloc((size_t)n + 1, sizeof(*ids));
        int m = 0;

        for (int i = 0; i < n; i++) {
            ids[m].job = dv_db_get_i64(v->allocs, i, "job_id", 0);
            ids[m++].idx = (int)dv_db_get_i64(v->allocs, i, "array_index", -1);
        }
        qsort(ids, (size_t)m, sizeof(*ids), cmp_node_job);
        for (int i = 0; i < m; i++) {
            char jid[300];

            if (i > 0 && ids[i].job == ids[i - 1].job &&
                ids[i].idx == ids[i - 1].idx) {
                continue;
            }
            node_job_id(ids[i].job, ids[i].idx, server, jid, sizeof(jid));
            json_array_append_new(jobs, json_string(jid));
        }
        free(ids);
    }
    o = api_node_json(v->node, 0, jobs, n);
    json_object_set_new(o, "allocations", allocs);
    return o;
}

struct node_ctx {
    int64_t id;
    char *name;    /* NULL when by id */
    char *comment; /* the new comment (set.comment points here) */
    struct db_node_set set;
    struct db_node_view view;
};

static void
node_ctx_free(void *arg)
{
    struct node_ctx *c = arg;

    db_node_view_clear(&c->view);
    db_node_view_clear(&c->set.view);
    free(c->name);
    free(c->comment);
    free(c);
}

static struct node_ctx *
node_ctx_new(struct qreq *qr, int64_t id, const char *name)
{
    struct node_ctx *c = dv_xcalloc(1, sizeof(*c));

    c->id = id;
    c->name = !dv_str_empty(name) ? dv_xstrdup(name) : NULL;
    qr->ctx = c;
    qr->ctx_free = node_ctx_free;
    qr->id = id;
    return c;
}

static int
node_get_run(struct qreq *qr, struct dv_db *db)
{
    struct node_ctx *c = qr->ctx;

    if (db_node_get(db, c->id, c->name, &c->view, &qr->err) < 0) {
        return -1;
    }
    qr->index = dv_db_get_i64(c->view.node, 0, "modify_index", 0);
    qreq_set_json(qr, 200, node_view_json(&c->view, server_name(qr->q)));
    return 0;
}

void
api_nodes_get(struct qreq *qr, int64_t id, const char *name)
{
    node_ctx_new(qr, id, name);
    qr->run = node_get_run;
    qreq_submit(qr);
}

static int
node_set_run(struct qreq *qr, struct dv_db *db)
{
    struct node_ctx *c = qr->ctx;
    struct db_node_set *s = &c->set;
    const char *what = s->flag == NODE_FLAG_ELIGIBLE ? "eligible" : "drain";

    s->now = dv_now();
    if (db_node_set(db, s, &qr->err) < 0) {
        return -1;
    }
    if (s->old_value != s->value) {
        log_notice("node %s (id %lld) %s by %s%s%s%s", s->node_name,
                   (long long)s->node_id,
                   s->flag == NODE_FLAG_ELIGIBLE
                       ? (s->value ? "made eligible" : "made ineligible")
                       : (s->value ? "drained" : "undrained"),
                   qr->user != NULL ? qr->user : "-",
                   s->comment != NULL ? " (comment: " : "",
                   s->comment != NULL ? s->comment : "",
                   s->comment != NULL ? ")" : "");
    } else {
        log_info("node %s (id %lld): %s already %s", s->node_name,
                 (long long)s->node_id, what, s->value ? "true" : "false");
    }
    if (s->usable_again) {
        log_info("node %s (id %lld) takes new work again%s", s->node_name,
                 (long long)s->node_id,
                 s->system_evals > 0 ? " (system jobs to place there)" : "");
    }
    qr->index = dv_db_get_i64(s->view.node, 0, "modify_index", 0);
    qreq_set_json(qr, 200, node_view_json(&s->view, server_name(qr->q)));
    return 0;
}

void
api_nodes_set(struct qreq *qr, int64_t id, const char *name,
              enum node_flag flag)
{
    const char *key = flag == NODE_FLAG_ELIGIBLE ? "eligible" : "drain";
    struct node_ctx *c;
    struct dv_err err;
    json_t *j;
    int empty = 0;

    /* Operator actions: root only (on the Unix socket the peer's uid; on
     * TCP the X-Drover-User header, trusted as everywhere in the API until
     * ACL tokens land). */
    if (!qr->root) {
        qreq_fail(qr, DV_EFORBIDDEN, "forbidden",
                  "Unauthorized Request: only root may change a node's %s "
                  "(asked by %s)",
                  flag == NODE_FLAG_ELIGIBLE ? "eligibility" : "drain",
                  qr->user != NULL ? qr->user : "an unnamed user");
        return;
    }
    j = qreq_body_json(qr, 1, &empty);
    if (j == NULL && !empty) {
        return;
    }
    c = node_ctx_new(qr, id, name);
    c->set.id = id;
    c->set.name = c->name;
    c->set.flag = flag;
    dv_err_clear(&err);
    if (decode_node_flag(j, key, &c->set.value, &c->set.set_comment,
                         &c->set.comment, &err) < 0) {
        json_decref(j);
        qr->failed = 1;
        qr->err = err;
        qreq_finish(qr);
        return;
    }
    /* The comment is borrowed from the body: keep a copy in the context. */
    if (c->set.comment != NULL) {
        c->comment = dv_xstrdup(c->set.comment);
        c->set.comment = c->comment;
    }
    json_decref(j);
    qr->run = node_set_run;
    qreq_submit(qr);
}
