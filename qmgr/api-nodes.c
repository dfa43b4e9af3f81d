/*
 * The nodes API (docs/api.md "Nodes"): who may call node routes, the
 * heartbeat TTL, register, heartbeat, a node's allocations (blocking; the
 * batches are run by longpoll.c, the answers rendered here), batched
 * allocation status updates with per-update errors, and the node list.
 * Bodies are decoded strictly into C structs on the loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    char *topology;
    char *attributes;
    struct db_node_reg r;
};

static void
register_ctx_free(void *arg)
{
    struct register_ctx *c = arg;

    json_decref(c->body);
    free(c->topology);
    free(c->attributes);
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
    if (decode_node_register(j, &c->r, &c->topology, &c->attributes, &err) <
        0) {
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
    c->r.topology = c->topology != NULL ? c->topology : "{}";
    c->r.attributes = c->attributes != NULL ? c->attributes : "{}";
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

    dv_job_id_format((long long)job_id, server, jid, sizeof(jid));
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
    if (with_hosts && b->hosts != NULL) {
        int nh = PQntuples(b->hosts);
        int h = find_first(b->host_ids, nh, job_id);
        json_t *hosts = json_array();

        for (; h >= 0 && h < nh && b->host_ids[h] == job_id; h++) {
            json_array_append_new(
                hosts,
                json_pack("{s:s, s:I}", "host", dv_db_get(b->hosts, h, "host"),
                          "ncpus",
                          (json_int_t)dv_db_get_i64(b->hosts, h, "ncpus", 0)));
        }
        json_object_set_new(o, "hosts", hosts);
    }
    return o;
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
        json_t *o = alloc_json(res, r, b, server, hosts);
        char *text = json_dumps(o, JSON_COMPACT);

        json_decref(o);
        if (text == NULL) {
            abort(); /* only fails on out-of-memory */
        }
        dv_buf_printf(&out, "%s%s", r > p->first_row ? "," : "", text);
        free(text);
        if (spec) {
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

/* --- the node list --- */

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
        json_t *ids = json_array();
        const char *addr = dv_db_get(nodes, i, "address");

        while (jr < nj && dv_db_get_i64(jobs, jr, "node_id", 0) < id) {
            jr++;
        }
        while (jr < nj && dv_db_get_i64(jobs, jr, "node_id", 0) == id) {
            char jid[300];
            dv_job_id_format((long long)dv_db_get_i64(jobs, jr, "job_id", 0),
                             server, jid, sizeof(jid));
            json_array_append_new(ids, json_string(jid));
            jr++;
        }
        json_array_append_new(
            list,
            json_pack(
                "{s:I, s:s, s:s, s:b, s:s, s:s, s:o, s:I, s:I, s:I, s:I, "
                "s:I, s:I, s:s, s:o, s:f, s:I, s:I}",
                "id", (json_int_t)id, "name", dv_db_get(nodes, i, "name"),
                "status", dv_db_get(nodes, i, "status"), "eligible",
                dv_db_get_bool(nodes, i, "eligible", 1), "datacenter",
                dv_db_get(nodes, i, "datacenter"), "pool",
                dv_db_get(nodes, i, "pool"), "address",
                addr != NULL ? json_string(addr) : json_null(), "total_cores",
                (json_int_t)dv_db_get_i64(nodes, i, "total_cores", 0),
                "free_cores",
                (json_int_t)dv_db_get_i64(nodes, i, "free_cores", 0),
                "total_mem",
                (json_int_t)dv_db_get_i64(nodes, i, "total_mem", 0), "free_mem",
                (json_int_t)dv_db_get_i64(nodes, i, "free_mem", 0),
                "total_gpus",
                (json_int_t)dv_db_get_i64(nodes, i, "total_gpus", 0),
                "free_gpus",
                (json_int_t)dv_db_get_i64(nodes, i, "free_gpus", 0),
                "free_cpuset", dv_db_get(nodes, i, "free_cpuset"), "jobs", ids,
                "heartbeat_ttl", dv_db_get_double(nodes, i, "heartbeat_ttl", 0),
                "heartbeat_deadline",
                (json_int_t)dv_db_get_i64(nodes, i, "heartbeat_deadline", 0),
                "modify_index",
                (json_int_t)dv_db_get_i64(nodes, i, "modify_index", 0)));
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
