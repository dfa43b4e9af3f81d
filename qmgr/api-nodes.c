/*
 * The nodes API (docs/api.md "Nodes"): register, heartbeat, a node's
 * allocations (blocking), batched allocation status updates, and the node
 * list. Bodies are decoded strictly into C structs on the loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

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
                   "memory",
                   c->r.name, (long long)c->r.node_id, (long long)c->r.cores,
                   (long long)c->r.memory);
    } else if (strcmp(c->r.old_status, "ready") != 0) {
        log_notice("node %s (id %lld) registered again: %s -> ready", c->r.name,
                   (long long)c->r.node_id, c->r.old_status);
    } else {
        log_info("node %s (id %lld) registered again", c->r.name,
                 (long long)c->r.node_id);
    }
    return 0;
}

void
api_nodes_register(struct qreq *qr)
{
    struct register_ctx *c;
    json_t *j = qreq_body_json(qr, 0, NULL);
    struct dv_err err;

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
    c->r.topology = c->topology != NULL ? c->topology : "{}";
    c->r.attributes = c->attributes != NULL ? c->attributes : "{}";
    c->r.ttl = qr->q->node_ttl;
    qr->run = register_run;
    qreq_submit(qr);
}

/* --- heartbeat --- */

static int
heartbeat_run(struct qreq *qr, struct dv_db *db)
{
    double ttl = qr->q->node_ttl;
    char name[256];
    int was_down = 0;

    if (db_node_heartbeat(db, qr->id, ttl, dv_now(), &was_down, name,
                          sizeof(name), &qr->err) < 0) {
        return -1;
    }
    if (was_down) {
        log_notice("node %s (id %lld) is back: down -> ready", name,
                   (long long)qr->id);
    }
    qreq_set_json(qr, 200, json_pack("{s:f}", "heartbeat_ttl", ttl));
    return 0;
}

void
api_nodes_heartbeat(struct qreq *qr, int64_t id)
{
    qr->id = id;
    qr->run = heartbeat_run;
    qreq_submit(qr);
}

/* --- a node's allocations (blocking) --- */

static json_t *
hosts_of(const PGresult *hosts, int64_t job_id)
{
    json_t *a = json_array();

    for (int i = 0; i < PQntuples(hosts); i++) {
        if (dv_db_get_i64(hosts, i, "job_id", 0) != job_id) {
            continue;
        }
        json_array_append_new(
            a, json_pack("{s:s, s:I}", "host", dv_db_get(hosts, i, "host"),
                         "ncpus",
                         (json_int_t)dv_db_get_i64(hosts, i, "ncpus", 0)));
    }
    return a;
}

static json_t *
alloc_json(const PGresult *res, int row, const PGresult *hosts,
           const char *server)
{
    int64_t job_id = dv_db_get_i64(res, row, "job_id", 0);
    const char *spec = dv_db_get(res, row, "spec");
    json_t *job = spec != NULL ? json_loads(spec, 0, NULL) : NULL;
    char jid[300];

    dv_job_id_format((long long)job_id, server, jid, sizeof(jid));
    return json_pack(
        "{s:I, s:I, s:s, s:I, s:s, s:s, s:I, s:I, s:I, s:s, s:I, s:I, s:s, "
        "s:o, s:o}",
        "id", (json_int_t)dv_db_get_i64(res, row, "id", 0), "job_id",
        (json_int_t)job_id, "job_id_str", jid, "chunk_index",
        (json_int_t)dv_db_get_i64(res, row, "chunk_index", 0), "desired_status",
        dv_db_get(res, row, "desired_status"), "client_status",
        dv_db_get(res, row, "client_status"), "ncpus",
        (json_int_t)dv_db_get_i64(res, row, "ncpus", 0), "mem",
        (json_int_t)dv_db_get_i64(res, row, "mem", 0), "ngpus",
        (json_int_t)dv_db_get_i64(res, row, "ngpus", 0), "cpuset",
        dv_db_get(res, row, "cpuset"), "modify_index",
        (json_int_t)dv_db_get_i64(res, row, "modify_index", 0), "walltime",
        (json_int_t)dv_db_get_i64(res, row, "walltime", 0), "queue",
        dv_db_get(res, row, "queue"), "job", job != NULL ? job : json_object(),
        "hosts", hosts_of(hosts, job_id));
}

int
api_nodes_allocs_run(struct qreq *qr, struct dv_db *db)
{
    struct db_node_allocs a = {0};
    const char *server = server_name(qr->q);
    json_t *list;

    qr->lp_moved = 0;
    a.node_id = qr->id;
    a.min_index = qr->lp_expired ? -1 : qr->lp_min_index;
    if (db_node_allocs(db, &a, &qr->err) < 0) {
        db_node_allocs_clear(&a);
        return -1;
    }
    if (a.moved) {
        list = json_array();
        for (int i = 0; i < PQntuples(a.allocs); i++) {
            json_array_append_new(list,
                                  alloc_json(a.allocs, i, a.hosts, server));
        }
        qreq_set_json(qr, 200,
                      json_pack("{s:I, s:o}", "index", (json_int_t)a.index,
                                "allocations", list));
        qr->index = a.index;
        qr->lp_moved = 1;
    }
    db_node_allocs_clear(&a);
    return 0;
}

void
api_nodes_allocs(struct qreq *qr, int64_t id)
{
    const char *i = dv_http_request_query(qr->req, "index");
    const char *w = dv_http_request_query(qr->req, "wait");
    double wait = QMGR_MAX_WAIT;
    int64_t index = 0;

    qr->id = id;
    qr->run = api_nodes_allocs_run;
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
    if (i != NULL && *i != '\0' && wait > 0) {
        qr->lp_kind = LP_NODE_ALLOCS;
        qr->lp_key = id;
        qr->lp_min_index = index;
        longpoll_start(qr, wait);
        return;
    }
    qr->lp_min_index = -1;
    qreq_submit(qr);
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

    c->s.node_id = qr->id;
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
        } else {
            log_notice("job %s requeued: its allocation was lost", jid);
        }
    }
    qreq_set_json(qr, 200, json_pack("{s:I}", "index", (json_int_t)c->s.index));
    return 0;
}

void
api_nodes_alloc_status(struct qreq *qr, int64_t id)
{
    struct status_ctx *c;
    json_t *j = qreq_body_json(qr, 0, NULL);
    struct dv_err err;
    int rc;

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
