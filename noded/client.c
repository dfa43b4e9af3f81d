/*
 * The conversation with qmgr (docs/api.md, "Nodes"): register, heartbeat
 * every TTL/3, long-poll the node's allocations, and send batched status
 * updates that stay queued, in order, until qmgr acknowledges them. Every
 * request is asynchronous on the daemon's loop; transport errors are
 * retried with backoff while the jobs keep running.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/http-client.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "noded/noded.h"

#define CLIENT_POLL_WAIT "30s"
#define CLIENT_POLL_TIMEOUT 45.0 /* real seconds: longer than the wait */
#define CLIENT_TIMEOUT 30.0
#define CLIENT_BATCH_DELAY 0.005 /* real seconds to gather updates */
#define CLIENT_BATCH_MAX 256

static void client_register(struct noded *nd);
static void client_poll(struct noded *nd);
static void client_post(struct noded *nd);

/* ---- status updates ----------------------------------------------------- */

struct status_update *
status_update_new(long long alloc_id, const char *client_status)
{
    struct status_update *u = dv_xcalloc(1, sizeof(*u));

    u->alloc_id = alloc_id;
    u->client_status = client_status;
    u->time = dv_now();
    return u;
}

void
status_update_free(struct status_update *u)
{
    if (u == NULL) {
        return;
    }
    free(u->message);
    free(u);
}

static void
client_schedule_post(struct noded *nd, double delay)
{
    if (nd->posting || ev_is_active(&nd->post_w) || nd->nupdates == 0) {
        return;
    }
    ev_timer_set(&nd->post_w, delay, 0.);
    ev_timer_start(nd->loop, &nd->post_w);
}

void
client_queue_update(struct noded *nd, struct status_update *u)
{
    u->next = NULL;
    *nd->updates_tail = u;
    nd->updates_tail = &u->next;
    nd->nupdates++;
    log_debug("allocation %lld: queued update %s (%d queued)", u->alloc_id,
              u->client_status, nd->nupdates);
    if (nd->http != NULL) {
        client_schedule_post(nd, CLIENT_BATCH_DELAY);
    }
}

json_t *
client_updates_json(const struct status_update *u, int n)
{
    json_t *arr = json_array();

    for (int i = 0; i < n && u != NULL; i++, u = u->next) {
        json_t *o = json_pack("{s:I, s:s, s:I}", "id", (json_int_t)u->alloc_id,
                              "client_status", u->client_status, "time",
                              (json_int_t)u->time);
        if (u->has_exit) {
            json_object_set_new(o, "exit_status", json_integer(u->exit_status));
        }
        if (u->message != NULL) {
            json_object_set_new(o, "message", json_string(u->message));
        }
        if (u->has_used) {
            json_object_set_new(o, "resources_used",
                                json_pack("{s:I, s:I, s:I}", "cput",
                                          (json_int_t)u->cput, "walltime",
                                          (json_int_t)u->walltime, "mem",
                                          (json_int_t)u->mem));
        }
        json_array_append_new(arr, o);
    }
    return json_pack("{s:o}", "updates", arr);
}

/* ---- helpers ------------------------------------------------------------ */

static int
send_json(struct noded *nd, const char *method, const char *path, json_t *body,
          double timeout, dv_http_done_cb cb, struct dv_err *err)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    int rc;

    rc = dv_http_async_send(nd->http, method, path, text,
                            text != NULL ? strlen(text) : 0, NULL, 0, timeout,
                            cb, nd, err);
    free(text);
    return rc;
}

/* Describes a failed exchange: the transport error, or the status with the
 * error code and message of the body. *code gets the API error code or
 * "". */
static void
describe_failure(const struct dv_http_response *resp, const struct dv_err *err,
                 char *buf, size_t size, char *code, size_t codesize)
{
    json_t *root = NULL, *e;
    const char *c = "", *m = "";

    code[0] = '\0';
    if (resp == NULL) {
        snprintf(buf, size, "%s", err != NULL ? err->msg : "no response");
        return;
    }
    if (resp->body != NULL) {
        root = json_loads(resp->body, 0, NULL);
    }
    e = root != NULL ? json_object_get(root, "error") : NULL;
    if (json_is_object(e)) {
        if (json_is_string(json_object_get(e, "code"))) {
            c = json_string_value(json_object_get(e, "code"));
        }
        if (json_is_string(json_object_get(e, "message"))) {
            m = json_string_value(json_object_get(e, "message"));
        }
    }
    dv_strlcpy(code, c, codesize);
    snprintf(buf, size, "HTTP %ld%s%s%s%s", resp->status, *c ? " " : "", c,
             *m ? ": " : "", m);
    json_decref(root);
}

static int
is_node_not_found(const struct dv_http_response *resp, const char *code)
{
    return resp != NULL && resp->status == 404 &&
           (strcmp(code, "node_not_found") == 0 || code[0] == '\0');
}

/* qmgr forgot this node (404 node_not_found): register again; polling,
 * heartbeats and updates resume once registered. */
static void
client_need_register(struct noded *nd)
{
    if (!nd->registered) {
        return;
    }
    log_notice("qmgr does not know node %lld (%s): registering again",
               nd->node_id, nd->cfg->name);
    nd->registered = 0;
    ev_timer_stop(nd->loop, &nd->heartbeat_w);
    ev_timer_stop(nd->loop, &nd->poll_w);
    client_register(nd);
}

/* The first non-loopback IPv4 address that is up, or 127.0.0.1. */
static void
host_address(char *buf, size_t size)
{
    struct ifaddrs *ifa = NULL;

    dv_strlcpy(buf, "127.0.0.1", size);
    if (getifaddrs(&ifa) < 0) {
        return;
    }
    for (struct ifaddrs *i = ifa; i != NULL; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
            (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP)) {
            continue;
        }
        inet_ntop(AF_INET,
                  &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, buf,
                  (socklen_t)size);
        break;
    }
    freeifaddrs(ifa);
}

/* ---- registration and heartbeats ---------------------------------------- */

static void
register_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct noded *nd = w->data;

    (void)loop;
    (void)revents;
    client_register(nd);
}

static void
register_retry(struct noded *nd)
{
    double d = backoff_next(&nd->register_bo);

    ev_timer_stop(nd->loop, &nd->register_w);
    ev_timer_set(&nd->register_w, d, 0.);
    ev_timer_start(nd->loop, &nd->register_w);
}

static void
register_done_cb(const struct dv_http_response *resp, const struct dv_err *err,
                 void *arg)
{
    struct noded *nd = arg;
    json_t *root = NULL;
    json_int_t id = 0;
    double ttl = 0;
    char why[512], code[64];

    nd->registering = 0;
    if (resp == NULL || resp->status != 200) {
        describe_failure(resp, err, why, sizeof(why), code, sizeof(code));
        log_warn("could not register with %s: %s (retrying)", nd->cfg->server,
                 why);
        register_retry(nd);
        return;
    }
    root = resp->body != NULL ? json_loads(resp->body, 0, NULL) : NULL;
    if (root == NULL ||
        json_unpack(root, "{s:I, s:F}", "node_id", &id, "heartbeat_ttl", &ttl) <
            0 ||
        id <= 0 || !(ttl > 0)) {
        log_warn("could not register with %s: unexpected answer (retrying)",
                 nd->cfg->server);
        json_decref(root);
        register_retry(nd);
        return;
    }
    json_decref(root);
    backoff_reset(&nd->register_bo);
    if (nd->node_id != 0 && nd->node_id != (long long)id) {
        log_notice("node %s changed id from %lld to %lld", nd->cfg->name,
                   nd->node_id, (long long)id);
        nd->index = 0;
    }
    nd->node_id = (long long)id;
    nd->ttl = ttl;
    nd->registered = 1;
    log_notice("registered with %s as node %lld (%s): %d cores, %d PUs, %d "
               "NUMA nodes, %d GPUs; heartbeat TTL %gs",
               nd->cfg->server, nd->node_id, nd->cfg->name, nd->topo->ncores,
               nd->topo->npus, nd->topo->nnuma, nd->topo->ngpus, ttl);
    ev_timer_stop(nd->loop, &nd->heartbeat_w);
    ev_timer_set(&nd->heartbeat_w, dv_clock_real_span(ttl / 3.0),
                 dv_clock_real_span(ttl / 3.0));
    ev_timer_start(nd->loop, &nd->heartbeat_w);
    client_poll(nd);
    client_schedule_post(nd, 0.);
}

static void
client_register(struct noded *nd)
{
    json_t *body;
    char addr[64];
    struct dv_err err;

    ev_timer_stop(nd->loop, &nd->register_w);
    if (nd->registering) {
        return;
    }
    host_address(addr, sizeof(addr));
    body = topology_fingerprint_json(nd->topo, nd->hostname);
    json_object_set_new(body, "name", json_string(nd->cfg->name));
    json_object_set_new(body, "datacenter", json_string(nd->cfg->datacenter));
    json_object_set_new(body, "pool", json_string(nd->cfg->pool));
    json_object_set_new(body, "address", json_string(addr));
    if (send_json(nd, "POST", "/v1/nodes/register", body, CLIENT_TIMEOUT,
                  register_done_cb, &err) < 0) {
        log_warn("could not register with %s: %s (retrying)", nd->cfg->server,
                 err.msg);
        register_retry(nd);
    } else {
        nd->registering = 1;
    }
    json_decref(body);
}

static void
heartbeat_done_cb(const struct dv_http_response *resp, const struct dv_err *err,
                  void *arg)
{
    struct noded *nd = arg;
    char why[512], code[64];
    json_t *root;
    double ttl = 0;

    nd->heartbeating = 0;
    if (resp != NULL && resp->status == 200) {
        if (nd->hb_failing) {
            log_notice("heartbeats to %s work again", nd->cfg->server);
            nd->hb_failing = 0;
        }
        root = resp->body != NULL ? json_loads(resp->body, 0, NULL) : NULL;
        if (root != NULL &&
            json_unpack(root, "{s:F}", "heartbeat_ttl", &ttl) == 0 && ttl > 0 &&
            ttl != nd->ttl && nd->registered) {
            nd->ttl = ttl;
            nd->heartbeat_w.repeat = dv_clock_real_span(ttl / 3.0);
            ev_timer_again(nd->loop, &nd->heartbeat_w);
        }
        json_decref(root);
        return;
    }
    describe_failure(resp, err, why, sizeof(why), code, sizeof(code));
    if (is_node_not_found(resp, code)) {
        client_need_register(nd);
        return;
    }
    if (!nd->hb_failing) {
        log_warn("heartbeat to %s failed: %s (jobs keep running; retrying)",
                 nd->cfg->server, why);
        nd->hb_failing = 1;
    }
}

static void
heartbeat_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct noded *nd = w->data;
    char path[128];
    struct dv_err err;

    (void)loop;
    (void)revents;
    if (!nd->registered || nd->heartbeating) {
        return;
    }
    snprintf(path, sizeof(path), "/v1/nodes/%lld/heartbeat", nd->node_id);
    if (dv_http_async_send(nd->http, "PUT", path, NULL, 0, NULL, 0,
                           CLIENT_TIMEOUT, heartbeat_done_cb, nd, &err) < 0) {
        log_warn("could not send a heartbeat: %s", err.msg);
        return;
    }
    nd->heartbeating = 1;
}

/* ---- long poll ---------------------------------------------------------- */

static int
get_ll(json_t *o, const char *key, long long *out, int required)
{
    json_t *v = json_object_get(o, key);

    if (v == NULL || json_is_null(v)) {
        return required ? -1 : 0;
    }
    if (!json_is_integer(v)) {
        return -1;
    }
    *out = (long long)json_integer_value(v);
    return 0;
}

static int
get_str(json_t *o, const char *key, char **out, int required)
{
    json_t *v = json_object_get(o, key);

    if (v == NULL || json_is_null(v)) {
        return required ? -1 : 0;
    }
    if (!json_is_string(v)) {
        return -1;
    }
    free(*out);
    *out = dv_xstrdup(json_string_value(v));
    return 0;
}

static int
decode_one(struct noded *nd, json_t *o, struct alloc_desc *d,
           struct dv_err *err)
{
    long long v;
    char *desired = NULL;
    json_t *hosts, *job;
    struct dv_err serr;
    int rc = -1;

    if (!json_is_object(o) || get_ll(o, "id", &d->id, 1) < 0 ||
        get_str(o, "desired_status", &desired, 1) < 0 ||
        get_str(o, "client_status", &d->client_status, 1) < 0 ||
        get_ll(o, "job_id", &d->job_id, 0) < 0 ||
        get_str(o, "job_id_str", &d->job_id_str, 0) < 0 ||
        get_str(o, "cpuset", &d->cpuset, 0) < 0 ||
        get_str(o, "queue", &d->queue, 0) < 0 ||
        get_ll(o, "modify_index", &d->modify_index, 0) < 0) {
        dv_err_set(err, DV_EINVAL, "bad_answer",
                   "malformed allocation in the long-poll answer");
        goto out;
    }
    d->desired_run = strcmp(desired, "run") == 0;
    v = 0;
    if (get_ll(o, "chunk_index", &v, 0) < 0 || v < 0 || v > 1000000) {
        goto bad_field;
    }
    d->chunk_index = (int)v;
    v = 0;
    if (get_ll(o, "ncpus", &v, 0) < 0 || v < 0 || v > DV_MAX_NCPUS) {
        goto bad_field;
    }
    d->ncpus = (int)v;
    v = 0;
    if (get_ll(o, "mem", &v, 0) < 0) {
        goto bad_field;
    }
    d->mem = v;
    v = 0;
    if (get_ll(o, "walltime", &v, 0) < 0 || v < 0) {
        goto bad_field;
    }
    d->walltime = v;
    hosts = json_object_get(o, "hosts");
    if (json_is_array(hosts)) {
        size_t i;
        json_t *h;

        d->hosts = dv_xcalloc(json_array_size(hosts) + 1, sizeof(*d->hosts));
        json_array_foreach (hosts, i, h) {
            const char *name = NULL;
            json_int_t nc = 0;

            if (json_unpack(h, "{s:s, s:I}", "host", &name, "ncpus", &nc) < 0 ||
                nc < 0 || nc > DV_MAX_NCPUS) {
                goto bad_field;
            }
            d->hosts[d->nhosts].host = dv_xstrdup(name);
            d->hosts[d->nhosts].ncpus = (int)nc;
            d->nhosts++;
        }
    }
    /* The job spec matters only for allocations we are about to start. */
    job = json_object_get(o, "job");
    if (alloc_find(nd, d->id) == NULL && d->chunk_index == 0) {
        if (!json_is_object(job)) {
            d->spec_error = dv_xstrdup("the allocation carries no job");
        } else if (dv_job_spec_from_json(job, &d->spec, &serr) < 0 ||
                   dv_job_spec_normalize(&d->spec, &serr) < 0) {
            d->spec_error = dv_xstrdup(serr.msg);
        } else {
            d->have_spec = 1;
        }
    }
    rc = 0;
    goto out;
bad_field:
    dv_err_set(err, DV_EINVAL, "bad_answer",
               "malformed allocation %lld in the long-poll answer", d->id);
out:
    free(desired);
    return rc;
}

int
client_decode_allocations(struct noded *nd, const char *body,
                          struct alloc_desc **descs, int *n, long long *index,
                          struct dv_err *err)
{
    json_error_t jerr;
    json_t *root = body != NULL ? json_loads(body, 0, &jerr) : NULL;
    json_t *arr, *o;
    struct alloc_desc *out = NULL;
    size_t i;
    int count = 0;

    *descs = NULL;
    *n = 0;
    if (root == NULL) {
        dv_err_set(err, DV_EINVAL, "bad_answer",
                   "the long-poll answer is not JSON");
        return -1;
    }
    arr = json_object_get(root, "allocations");
    if (get_ll(root, "index", index, 1) < 0 || !json_is_array(arr)) {
        dv_err_set(err, DV_EINVAL, "bad_answer",
                   "the long-poll answer lacks index or allocations");
        goto fail;
    }
    out = dv_xcalloc(json_array_size(arr) + 1, sizeof(*out));
    json_array_foreach (arr, i, o) {
        alloc_desc_init(&out[count]);
        count++;
        if (decode_one(nd, o, &out[count - 1], err) < 0) {
            goto fail;
        }
    }
    json_decref(root);
    *descs = out;
    *n = count;
    return 0;
fail:
    for (int k = 0; k < count; k++) {
        alloc_desc_cleanup(&out[k]);
    }
    free(out);
    json_decref(root);
    return -1;
}

static void
poll_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct noded *nd = w->data;

    (void)loop;
    (void)revents;
    client_poll(nd);
}

static void
poll_retry(struct noded *nd)
{
    ev_timer_stop(nd->loop, &nd->poll_w);
    ev_timer_set(&nd->poll_w, backoff_next(&nd->poll_bo), 0.);
    ev_timer_start(nd->loop, &nd->poll_w);
}

static void
poll_done_cb(const struct dv_http_response *resp, const struct dv_err *err,
             void *arg)
{
    struct noded *nd = arg;
    struct alloc_desc *descs = NULL;
    struct dv_err derr;
    long long index = 0;
    char why[512], code[64];
    int n = 0;

    nd->polling = 0;
    if (nd->stop_poll) {
        return;
    }
    if (resp == NULL || resp->status != 200) {
        describe_failure(resp, err, why, sizeof(why), code, sizeof(code));
        if (is_node_not_found(resp, code)) {
            client_need_register(nd);
            return;
        }
        if (!nd->poll_failing) {
            log_warn("could not get the allocations of node %lld from %s: "
                     "%s (jobs keep running; retrying)",
                     nd->node_id, nd->cfg->server, why);
            nd->poll_failing = 1;
        } else {
            log_debug("long poll failed again: %s", why);
        }
        poll_retry(nd);
        return;
    }
    if (client_decode_allocations(nd, resp->body, &descs, &n, &index, &derr) <
        0) {
        log_warn("could not read the allocations of node %lld: %s "
                 "(retrying)",
                 nd->node_id, derr.msg);
        poll_retry(nd);
        return;
    }
    backoff_reset(&nd->poll_bo);
    if (nd->poll_failing) {
        log_notice("long poll of %s works again", nd->cfg->server);
        nd->poll_failing = 0;
    }
    if (index < nd->index) {
        log_info("allocation index went back from %lld to %lld", nd->index,
                 index);
    }
    log_debug("long poll: index %lld, %d allocations", index, n);
    nd->index = index;
    alloc_reconcile(nd, descs, n, index);
    for (int i = 0; i < n; i++) {
        alloc_desc_cleanup(&descs[i]);
    }
    free(descs);
    client_poll(nd);
}

static void
client_poll(struct noded *nd)
{
    char path[160];
    struct dv_err err;

    if (nd->stop_poll || !nd->registered || nd->polling ||
        ev_is_active(&nd->poll_w)) {
        return;
    }
    snprintf(path, sizeof(path),
             "/v1/nodes/%lld/allocations?index=%lld&wait=%s", nd->node_id,
             nd->index, CLIENT_POLL_WAIT);
    if (dv_http_async_send(nd->http, "GET", path, NULL, 0, NULL, 0,
                           CLIENT_POLL_TIMEOUT, poll_done_cb, nd, &err) < 0) {
        log_warn("could not poll %s: %s (retrying)", nd->cfg->server, err.msg);
        poll_retry(nd);
        return;
    }
    nd->polling = 1;
}

void
client_stop_polling(struct noded *nd)
{
    nd->stop_poll = 1;
    ev_timer_stop(nd->loop, &nd->poll_w);
}

/* ---- status POSTs ------------------------------------------------------- */

static void
post_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct noded *nd = w->data;

    (void)loop;
    (void)revents;
    client_post(nd);
}

static void
post_done_cb(const struct dv_http_response *resp, const struct dv_err *err,
             void *arg)
{
    struct noded *nd = arg;
    char why[512], code[64];
    json_t *root;
    json_int_t index = 0;
    int n = nd->post_count;

    nd->posting = 0;
    nd->post_count = 0;
    if (resp == NULL || resp->status != 200) {
        describe_failure(resp, err, why, sizeof(why), code, sizeof(code));
        if (is_node_not_found(resp, code)) {
            client_need_register(nd); /* registering resumes the POSTs */
            return;
        }
        if (!nd->post_failing) {
            log_warn("could not send %d allocation updates to %s: %s (kept, "
                     "retrying)",
                     n, nd->cfg->server, why);
            nd->post_failing = 1;
        } else {
            log_debug("status POST failed again (%d queued): %s", nd->nupdates,
                      why);
        }
        ev_timer_set(&nd->post_w, backoff_next(&nd->post_bo), 0.);
        ev_timer_start(nd->loop, &nd->post_w);
        return;
    }
    backoff_reset(&nd->post_bo);
    if (nd->post_failing) {
        log_notice("allocation updates reach %s again", nd->cfg->server);
        nd->post_failing = 0;
    }
    root = resp->body != NULL ? json_loads(resp->body, 0, NULL) : NULL;
    if (root != NULL) {
        json_unpack(root, "{s?I}", "index", &index);
        json_decref(root);
    }
    for (int i = 0; i < n && nd->updates != NULL; i++) {
        struct status_update *u = nd->updates;

        nd->updates = u->next;
        nd->nupdates--;
        if (strcmp(u->client_status, "running") != 0) {
            alloc_final_acked(nd, u->alloc_id, (long long)index);
        }
        status_update_free(u);
    }
    if (nd->updates == NULL) {
        nd->updates_tail = &nd->updates;
    }
    log_debug("%d allocation updates acknowledged (index %lld)", n,
              (long long)index);
    client_schedule_post(nd, 0.);
    noded_check_done(nd);
}

static void
client_post(struct noded *nd)
{
    json_t *body;
    char path[128];
    struct dv_err err;
    int n;

    if (nd->http == NULL || nd->posting || nd->nupdates == 0 ||
        !nd->registered) {
        return;
    }
    n = nd->nupdates < CLIENT_BATCH_MAX ? nd->nupdates : CLIENT_BATCH_MAX;
    body = client_updates_json(nd->updates, n);
    snprintf(path, sizeof(path), "/v1/nodes/%lld/allocations/status",
             nd->node_id);
    if (send_json(nd, "POST", path, body, CLIENT_TIMEOUT, post_done_cb, &err) <
        0) {
        log_warn("could not send allocation updates: %s (retrying)", err.msg);
        ev_timer_set(&nd->post_w, backoff_next(&nd->post_bo), 0.);
        ev_timer_start(nd->loop, &nd->post_w);
    } else {
        nd->posting = 1;
        nd->post_count = n;
    }
    json_decref(body);
}

/* ---- lifecycle ---------------------------------------------------------- */

void
client_init(struct noded *nd)
{
    nd->updates = NULL;
    nd->updates_tail = &nd->updates;
    ev_timer_init(&nd->register_w, register_retry_cb, 0., 0.);
    ev_timer_init(&nd->heartbeat_w, heartbeat_cb, 1., 1.);
    ev_timer_init(&nd->poll_w, poll_retry_cb, 0., 0.);
    ev_timer_init(&nd->post_w, post_timer_cb, 0., 0.);
    nd->register_w.data = nd;
    nd->heartbeat_w.data = nd;
    nd->poll_w.data = nd;
    nd->post_w.data = nd;
}

int
client_start(struct noded *nd, struct dv_err *err)
{
    struct dv_http_client_config hc;

    memset(&hc, 0, sizeof(hc));
    hc.base = nd->cfg->server;
    hc.ca_file = nd->cfg->tls_ca;
    hc.cert = nd->cfg->tls_cert;
    hc.key = nd->cfg->tls_key;
    nd->http = dv_http_async_new(nd->loop, &hc, err);
    if (nd->http == NULL) {
        return -1;
    }
    client_register(nd);
    return 0;
}

void
client_cleanup(struct noded *nd)
{
    ev_timer_stop(nd->loop, &nd->register_w);
    ev_timer_stop(nd->loop, &nd->heartbeat_w);
    ev_timer_stop(nd->loop, &nd->poll_w);
    ev_timer_stop(nd->loop, &nd->post_w);
    dv_http_async_free(nd->http);
    nd->http = NULL;
    while (nd->updates != NULL) {
        struct status_update *u = nd->updates;

        nd->updates = u->next;
        status_update_free(u);
    }
    nd->updates_tail = &nd->updates;
    nd->nupdates = 0;
}
