/*
 * The process context and the life of a request: accepting it from the
 * HTTP layer, finding who asks, routing it to its API handler, handing its
 * database work to the pool, answering it (or dropping it when the client
 * left), and the graceful stop that waits for in-flight work.
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

/* How long a graceful stop waits for in-flight work (real seconds). */
#define SERVER_DRAIN_GRACE 30.0
#define SERVER_DRAIN_POLL 0.05

static struct qreq *
qreq_new(struct qmgr *q, struct dv_http_request *req)
{
    struct qreq *qr = dv_xcalloc(1, sizeof(*qr));

    qr->q = q;
    qr->req = req;
    qr->state = QREQ_LOOP;
    qr->index = -1;
    dv_strlcpy(qr->method, dv_http_request_method(req), sizeof(qr->method));
    qr->path = dv_xstrdup(dv_http_request_path(req));
    q->nreqs++;
    return qr;
}

static void
qreq_free(struct qreq *qr)
{
    if (qr == NULL) {
        return;
    }
    if (qr->ctx_free != NULL) {
        qr->ctx_free(qr->ctx);
    }
    qr->q->nreqs--;
    free(qr->path);
    free(qr->user);
    free(qr->node_cn);
    free(qr->body);
    free(qr->location);
    free(qr);
}

int
api_error_status(const struct dv_err *err, const char **code)
{
    *code = err->code != NULL ? err->code : dv_err_kind_code(err->kind);
    if (strcmp(*code, "method_not_allowed") == 0) {
        return 405;
    }
    switch (err->kind) {
    case DV_EDBCONN:
    case DV_ESERIAL:
    case DV_ETIMEOUT:
        *code = "database_unavailable";
        return 503;
    case DV_EDB:
    case DV_EINTERNAL:
    case DV_EIO:
        *code = "internal_error";
        return 500;
    default:
        break;
    }
    return dv_err_http_status(err);
}

static void
respond_error(struct qreq *qr, const struct dv_err *err, const char *allow)
{
    const char *code;
    int status = api_error_status(err, &code);
    json_t *body =
        json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", err->msg);
    struct dv_http_header h[1];
    int nh = 0;
    char *text;

    if (status >= 500) {
        log_error("%s %s: %s", qr->method, qr->path, err->msg);
    }
    if (allow != NULL && allow[0] != '\0') {
        h[nh].name = "Allow";
        h[nh].value = allow;
        nh++;
    }
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    dv_http_respond(qr->req, status, "application/json", text,
                    text != NULL ? strlen(text) : 0, h, nh);
    free(text);
}

void
qreq_finish(struct qreq *qr)
{
    if (qr->req != NULL) {
        if (qr->failed) {
            respond_error(qr, &qr->err, NULL);
        } else {
            struct dv_http_header h[2];
            char idx[24];
            int nh = 0;

            if (qr->index >= 0) {
                h[nh].name = "X-Drover-Index";
                h[nh].value = dv_db_i64(idx, qr->index);
                nh++;
            }
            if (qr->location != NULL) {
                h[nh].name = "Location";
                h[nh].value = qr->location;
                nh++;
            }
            dv_http_respond(qr->req, qr->status, "application/json",
                            qr->body != NULL ? qr->body : "{}",
                            qr->body != NULL ? strlen(qr->body) : 2, h, nh);
        }
        qr->req = NULL;
    }
    qreq_free(qr);
}

void
qreq_fail(struct qreq *qr, enum dv_err_kind kind, const char *code,
          const char *fmt, ...)
{
    va_list ap;

    qr->failed = 1;
    qr->err.kind = kind;
    qr->err.code = code != NULL ? code : dv_err_kind_code(kind);
    va_start(ap, fmt);
    vsnprintf(qr->err.msg, sizeof(qr->err.msg), fmt, ap);
    va_end(ap);
    qreq_finish(qr);
}

void
qreq_set_json(struct qreq *qr, int status, json_t *body)
{
    free(qr->body);
    qr->body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    qr->status = status;
    if (qr->body == NULL) {
        qr->failed = 1;
        dv_err_set(&qr->err, DV_EINTERNAL, "internal_error",
                   "could not encode the answer");
    }
}

json_t *
qreq_body_json(struct qreq *qr, int allow_empty, int *empty)
{
    size_t len;
    const char *body = dv_http_request_body(qr->req, &len);
    json_error_t jerr;
    json_t *j;

    if (empty != NULL) {
        *empty = 0;
    }
    if (allow_empty) {
        size_t i = 0;
        while (i < len && (body[i] == ' ' || body[i] == '\n' ||
                           body[i] == '\r' || body[i] == '\t')) {
            i++;
        }
        if (i == len) {
            if (empty != NULL) {
                *empty = 1;
            }
            return NULL;
        }
    }
    j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        qreq_fail(qr, DV_EINVAL, "invalid_json",
                  "body is not valid JSON: %s (line %d, column %d)", jerr.text,
                  jerr.line, jerr.column);
        return NULL;
    }
    return j;
}

/* --- the pool side of a request --- */

static void
qreq_work_run(struct pool_work *w, struct dv_db *db)
{
    struct qreq *qr = (struct qreq *)w;

    dv_err_clear(&qr->err);
    qr->failed = 0;
    if (server_name_ensure(qr->q, db, &qr->err) < 0 || qr->run(qr, db) < 0) {
        qr->failed = 1;
        if (qr->err.kind == DV_OK) {
            dv_err_set(&qr->err, DV_EINTERNAL, "internal_error",
                       "request failed without saying why");
        }
    }
}

static void
qreq_work_done(struct pool_work *w)
{
    struct qreq *qr = (struct qreq *)w;

    qr->state = QREQ_LOOP;
    if (qr->req == NULL) {
        if (qr->lp_kind != LP_NONE) {
            longpoll_forget(qr);
        }
        qreq_free(qr);
        return;
    }
    if (w->skipped) {
        if (qr->lp_kind != LP_NONE) {
            longpoll_forget(qr);
        }
        qreq_fail(qr, DV_EUNAVAIL, "unavailable", "the server is stopping");
        return;
    }
    if (qr->done != NULL) {
        qr->done(qr);
    } else {
        qreq_finish(qr);
    }
}

void
qreq_submit(struct qreq *qr)
{
    qr->state = QREQ_POOL;
    qr->work.run = qreq_work_run;
    qr->work.done = qreq_work_done;
    pool_submit(qr->q->pool, &qr->work);
}

static void
qreq_abort_cb(struct dv_http_request *req, void *arg)
{
    struct qreq *qr = arg;

    (void)req;
    qr->req = NULL;
    switch (qr->state) {
    case QREQ_POOL:
        /* A worker may hold it: the done callback frees it. */
        pool_cancel(&qr->work);
        break;
    case QREQ_WAITING:
        longpoll_forget(qr);
        qreq_free(qr);
        break;
    case QREQ_LOOP:
        /* Answered synchronously by the handler: nothing holds it. */
        break;
    }
}

/* --- identity --- */

static int
valid_user(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64 || s[0] == '-') {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-' ||
              (*p == '$' && p[1] == '\0'))) {
            return 0;
        }
    }
    return 1;
}

/* Finds who asks (docs/api.md "Identity"). Returns 0, or -1 when the
 * request was answered (a malformed header). */
static int
identify(struct qreq *qr)
{
    uid_t uid;
    const char *h;

    if (dv_http_request_peer_uid(qr->req, &uid) == 0) {
        struct passwd pw, *found = NULL;
        char buf[4096];

        qr->unix_peer = 1;
        qr->peer_uid = uid;
        qr->root = uid == 0;
        if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 &&
            found != NULL) {
            qr->user = dv_xstrdup(pw.pw_name);
        } else {
            qr->user = dv_xasprintf("%lu", (unsigned long)uid);
        }
        return 0;
    }
    h = dv_http_request_header(qr->req, "X-Drover-User");
    if (h == NULL) {
        return 0;
    }
    if (!valid_user(h)) {
        qreq_fail(qr, DV_EINVAL, "invalid_request",
                  "invalid X-Drover-User header: a user name of 1 to 64 "
                  "characters is expected");
        return -1;
    }
    qr->user = dv_xstrdup(h);
    qr->root = strcmp(h, "root") == 0;
    return 0;
}

/* --- routing --- */

static void
server_handler_cb(struct dv_http_request *req, void *arg)
{
    struct qmgr *q = arg;
    struct qreq *qr = qreq_new(q, req);
    struct route_match m;
    struct dv_err err;

    dv_http_request_set_abort_cb(req, qreq_abort_cb, qr);
    dv_err_clear(&err);
    if (route_find(qr->method, qr->path, &m, &err) < 0) {
        respond_error(qr, &err, m.allow);
        qr->req = NULL;
        qreq_free(qr);
        return;
    }
    if (identify(qr) < 0) {
        return;
    }
    qr->id = m.num;
    log_debug("%s %s from %s as %s", qr->method, qr->path,
              dv_http_request_peer(req), qr->user != NULL ? qr->user : "-");
    switch (m.id) {
    case ROUTE_STATUS:
        api_status(qr);
        break;
    case ROUTE_JOBS_LIST:
        api_jobs_list(qr);
        break;
    case ROUTE_JOBS_SUBMIT:
        api_jobs_submit(qr);
        break;
    case ROUTE_JOB_GET:
        api_jobs_get(qr, m.num);
        break;
    case ROUTE_JOB_DELETE:
        api_jobs_change(qr, m.num, JOB_OP_DELETE);
        break;
    case ROUTE_JOB_HOLD:
        api_jobs_change(qr, m.num, JOB_OP_HOLD);
        break;
    case ROUTE_JOB_RELEASE:
        api_jobs_change(qr, m.num, JOB_OP_RELEASE);
        break;
    case ROUTE_JOB_ALLOCS:
        api_jobs_allocs(qr, m.num);
        break;
    case ROUTE_JOB_SIGNAL:
        api_jobs_admin(qr, m.num, JOB_ADMIN_SIGNAL);
        break;
    case ROUTE_JOB_RERUN:
        api_jobs_admin(qr, m.num, JOB_ADMIN_RERUN);
        break;
    case ROUTE_JOB_MOVE:
        api_jobs_admin(qr, m.num, JOB_ADMIN_MOVE);
        break;
    case ROUTE_JOB_ALTER:
        api_jobs_admin(qr, m.num, JOB_ADMIN_ALTER);
        break;
    case ROUTE_JOB_TASKS_CREATE:
        api_tasks_create(qr, m.num);
        break;
    case ROUTE_JOB_TASKS_GET:
        api_tasks_get(qr, m.num);
        break;
    case ROUTE_NODE_TASK_STATUS:
        api_tasks_status(qr, m.num);
        break;
    case ROUTE_NODES_LIST:
        api_nodes_list(qr);
        break;
    case ROUTE_NODE_REGISTER:
        api_nodes_register(qr);
        break;
    case ROUTE_NODE_HEARTBEAT:
        api_nodes_heartbeat(qr, m.num);
        break;
    case ROUTE_NODE_ALLOCS:
        api_nodes_allocs(qr, m.num);
        break;
    case ROUTE_NODE_ALLOC_STATUS:
        api_nodes_alloc_status(qr, m.num);
        break;
    case ROUTE_NODE_GET:
        api_nodes_get(qr, m.num, m.name);
        break;
    case ROUTE_NODE_ELIGIBILITY:
        api_nodes_set(qr, m.num, m.name, NODE_FLAG_ELIGIBLE);
        break;
    case ROUTE_NODE_DRAIN:
        api_nodes_set(qr, m.num, m.name, NODE_FLAG_DRAIN);
        break;
    case ROUTE_RESOURCES_LIST:
        api_resources_list(qr);
        break;
    case ROUTE_RESOURCES_CREATE:
        api_resources_create(qr);
        break;
    case ROUTE_RESOURCE_DELETE:
        api_resources_delete(qr, m.name);
        break;
    case ROUTE_QUEUES_LIST:
        api_queues_list(qr, NULL);
        break;
    case ROUTE_QUEUES_CREATE:
        api_queues_create(qr);
        break;
    case ROUTE_QUEUE_GET:
        api_queues_list(qr, m.name);
        break;
    case ROUTE_QUEUE_CHANGE:
        api_queues_change(qr, m.name);
        break;
    case ROUTE_QUEUE_DELETE:
        api_queues_delete(qr, m.name);
        break;
    case ROUTE_SERVER_GET:
        api_server_get(qr);
        break;
    case ROUTE_SERVER_CHANGE:
        api_server_change(qr);
        break;
    }
}

/* --- the cluster's name --- */

int
server_name_ensure(struct qmgr *q, struct dv_db *db, struct dv_err *err)
{
    char *name = NULL;
    int rc = 0;

    if (__atomic_load_n(&q->server_known, __ATOMIC_ACQUIRE)) {
        return 0;
    }
    pthread_mutex_lock(&q->server_lock);
    if (!q->server_known) {
        if (db_cluster_name(db, &name, err) < 0) {
            rc = -1;
        } else {
            if (name == NULL) {
                log_warn("the database has no cluster name (was "
                         "\"drover-qmgr migrate\" run?); using \"%s\"",
                         q->fallback_server);
            }
            dv_strlcpy(q->server, name != NULL ? name : q->fallback_server,
                       sizeof(q->server));
            __atomic_store_n(&q->server_known, 1, __ATOMIC_RELEASE);
            log_info("cluster name: %s", q->server);
        }
    }
    pthread_mutex_unlock(&q->server_lock);
    free(name);
    return rc;
}

const char *
server_name(struct qmgr *q)
{
    if (__atomic_load_n(&q->server_known, __ATOMIC_ACQUIRE)) {
        return q->server;
    }
    return q->fallback_server;
}

/* --- start and stop --- */

static char *
short_hostname(void)
{
    char host[256];
    char *dot;

    if (gethostname(host, sizeof(host)) < 0) {
        return dv_xstrdup("localhost");
    }
    host[sizeof(host) - 1] = '\0';
    dot = strchr(host, '.');
    if (dot != NULL) {
        *dot = '\0';
    }
    return dv_xstrdup(host[0] != '\0' ? host : "localhost");
}

void
server_init(struct qmgr *q, struct ev_loop *loop, struct qmgr_config *cfg)
{
    memset(q, 0, sizeof(*q));
    q->loop = loop;
    q->cfg = cfg;
    q->conninfo = dv_xstrdup(cfg->database);
    q->node_ttl = cfg->node_ttl;
    q->max_heartbeat_rate = (double)cfg->max_heartbeat_rate;
    q->sendmail = !dv_str_empty(cfg->sendmail) ? dv_xstrdup(cfg->sendmail)
                                                : NULL;
    q->mail_from = dv_xstrdup(!dv_str_empty(cfg->mail_from) ? cfg->mail_from
                                                             : "adm");
    q->fallback_server = !dv_str_empty(cfg->server_name)
                             ? dv_xstrdup(cfg->server_name)
                             : short_hostname();
    pthread_mutex_init(&q->server_lock, NULL);
}

/* Every node daemon keeps a long poll open (a simulated cluster keeps
 * thousands): use every descriptor the hard limit allows, and let the
 * HTTP servers take nearly all of them. Returns the connection limit. */
static int
raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        return 0;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;

        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            log_warn("could not raise the open files limit to %llu: %s",
                     (unsigned long long)want, strerror(errno));
            getrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1000000) {
        return 1000000;
    }
    /* Descriptors for the database connections, logs and slack. */
    return rl.rlim_cur > 256 ? (int)rl.rlim_cur - 128 : 128;
}

int
server_start(struct qmgr *q, struct dv_err *err)
{
    const struct qmgr_config *cfg = q->cfg;
    struct dv_http_server_config hc;
    int maxconn = raise_nofile();

    log_info("serving at most %d connections", maxconn);
    q->pool = pool_new(q->loop, q->conninfo, (int)cfg->workers);
    if (!dv_str_empty(cfg->listen)) {
        memset(&hc, 0, sizeof(hc));
        hc.listen = cfg->listen;
        hc.tls_cert = cfg->tls_cert;
        hc.tls_key = cfg->tls_key;
        hc.tls_client_ca = cfg->tls_client_ca;
        hc.max_body_bytes = (size_t)cfg->max_body;
        hc.max_connections = maxconn;
        q->tcp = dv_http_server_new(q->loop, &hc, server_handler_cb, q, err);
        if (q->tcp == NULL) {
            return -1;
        }
    }
    if (!dv_str_empty(cfg->socket)) {
        char *addr = dv_xasprintf("unix:%s", cfg->socket);

        memset(&hc, 0, sizeof(hc));
        hc.listen = addr;
        hc.max_body_bytes = (size_t)cfg->max_body;
        hc.max_connections = maxconn;
        q->unix_srv =
            dv_http_server_new(q->loop, &hc, server_handler_cb, q, err);
        free(addr);
        if (q->unix_srv == NULL) {
            return -1;
        }
    }
    q->lp = longpoll_new(q);
    q->live = liveness_new(q, cfg->liveness_interval);
    q->site = site_new(q);
    return 0;
}

static void
server_drain_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct qmgr *q = t->data;

    (void)revents;
    if (q->nreqs > 0 || pool_outstanding(q->pool) > 0) {
        if (ev_now(loop) < q->drain_deadline) {
            return;
        }
        log_warn("stopping with %d requests still in flight", q->nreqs);
    }
    ev_timer_stop(loop, t);
    ev_break(loop, EVBREAK_ALL);
}

void
server_shutdown(struct qmgr *q)
{
    if (q->stopping) {
        return;
    }
    q->stopping = 1;
    log_notice("stopping: finishing %d requests in flight", q->nreqs);
    if (q->tcp != NULL) {
        dv_http_server_stop_accepting(q->tcp);
    }
    if (q->unix_srv != NULL) {
        dv_http_server_stop_accepting(q->unix_srv);
    }
    liveness_stop(q->live);
    site_stop(q->site);
    longpoll_expire_all(q->lp);
    q->drain_deadline = ev_now(q->loop) + SERVER_DRAIN_GRACE;
    ev_timer_init(&q->drain_timer, server_drain_cb, 0, SERVER_DRAIN_POLL);
    q->drain_timer.data = q;
    ev_timer_start(q->loop, &q->drain_timer);
}

void
server_cleanup(struct qmgr *q)
{
    q->stopping = 1;
    ev_timer_stop(q->loop, &q->drain_timer);
    /* Unanswered requests get their abort callback here. */
    dv_http_server_free(q->tcp);
    dv_http_server_free(q->unix_srv);
    q->tcp = NULL;
    q->unix_srv = NULL;
    if (q->lp != NULL) {
        longpoll_expire_all(q->lp);
    }
    if (q->live != NULL) {
        liveness_stop(q->live);
    }
    site_stop(q->site);
    /* Runs the done callback of every work still in the pool. */
    pool_free(q->pool);
    q->pool = NULL;
    longpoll_free(q->lp);
    q->lp = NULL;
    liveness_free(q->live);
    q->live = NULL;
    site_free(q->site);
    q->site = NULL;
    free(q->conninfo);
    free(q->fallback_server);
    free(q->sendmail);
    free(q->mail_from);
    q->conninfo = NULL;
    q->fallback_server = NULL;
    pthread_mutex_destroy(&q->server_lock);
}
