/*
 * The conversation with qmgr (docs/api.md, "Nodes"): register, heartbeat
 * every TTL/3 (and fence: stop every job when no heartbeat got through for
 * a TTL), long-poll the node's allocations, and send batched status
 * updates that stay queued, in order, until qmgr acknowledges them (or
 * rejects one as invalid: it is logged and dropped). Every request is
 * asynchronous on the daemon's loop; transport errors are retried with
 * backoff while the jobs keep running. Simulated nodes (sim.c) run this
 * same code, sharing one HTTP client.
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
        client_schedule_post(nd, nd->batch_delay);
    }
}

void
client_drop_update(struct noded *nd, struct status_update *u)
{
    (void)nd;
    if (u != NULL && !u->sent) {
        u->dropped = 1;
    }
}

json_t *
client_updates_json(const struct status_update *u, int n)
{
    json_t *arr = json_array();

    for (int i = 0; i < n && u != NULL; i++, u = u->next) {
        json_t *o;

        if (u->dropped) {
            continue;
        }
        o = json_pack("{s:I, s:s, s:I}", "id", (json_int_t)u->alloc_id,
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

/* qmgr forgot this node, or marked it down (404 node_not_found): register
 * again; polling, heartbeats and updates resume once registered. */
static void
client_need_register(struct noded *nd, const char *why)
{
    if (!nd->registered) {
        return;
    }
    log_notice("qmgr does not take node %lld (%s) as it is (%s): registering "
               "again",
               nd->node_id, nd->name, why);
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

/* ---- fencing ------------------------------------------------------------ */

/* No heartbeat reached the servers for a TTL: they mark the node down and
 * requeue its jobs elsewhere, so they must not keep running here. */
static void
fence_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct noded *nd = w->data;
    int n = alloc_active_count(nd);

    (void)loop;
    (void)revents;
    if (nd->fenced || n == 0) {
        nd->fenced = 1;
        return;
    }
    nd->fenced = 1;
    log_warn("node %s: no heartbeat reached %s for %.1fs (TTL %gs): "
             "stopping %d allocations, the servers will have placed them "
             "elsewhere",
             nd->name, nd->cfg->server, ev_now(nd->loop) - nd->hb_ok, nd->ttl,
             n);
    alloc_stop_all(nd, ALLOC_STOP_FENCED);
}

/* The servers took a heartbeat (or registration) sent at real time sent:
 * the node is safe for another TTL from then. */
static void
fence_reset(struct noded *nd, double sent)
{
    double left;

    if (sent > nd->hb_ok) {
        nd->hb_ok = sent;
    }
    if (nd->fenced) {
        log_notice("node %s: heartbeats reach %s again", nd->name,
                   nd->cfg->server);
    }
    nd->fenced = 0;
    left = nd->hb_ok + dv_clock_real_span(nd->ttl) - ev_now(nd->loop);
    ev_timer_stop(nd->loop, &nd->fence_w);
    ev_timer_set(&nd->fence_w, left > 0 ? left : 0., 0.);
    ev_timer_start(nd->loop, &nd->fence_w);
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
    double ttl = 0, every;
    char why[512], code[64];

    nd->registering = 0;
    if (resp == NULL || resp->status != 200) {
        describe_failure(resp, err, why, sizeof(why), code, sizeof(code));
        log_warn("node %s: could not register with %s: %s (retrying)", nd->name,
                 nd->cfg->server, why);
        register_retry(nd);
        return;
    }
    root = resp->body != NULL ? json_loads(resp->body, 0, NULL) : NULL;
    if (root == NULL ||
        json_unpack(root, "{s:I, s:F}", "node_id", &id, "heartbeat_ttl", &ttl) <
            0 ||
        id <= 0 || !(ttl > 0)) {
        log_warn("node %s: could not register with %s: unexpected answer "
                 "(retrying)",
                 nd->name, nd->cfg->server);
        json_decref(root);
        register_retry(nd);
        return;
    }
    json_decref(root);
    backoff_reset(&nd->register_bo);
    if (nd->node_id != 0 && nd->node_id != (long long)id) {
        log_notice("node %s changed id from %lld to %lld", nd->name,
                   nd->node_id, (long long)id);
        nd->index = 0;
    }
    nd->node_id = (long long)id;
    nd->ttl = ttl;
    nd->registered = 1;
    if (nd->sim == NULL) {
        log_notice("registered with %s as node %lld (%s): %d cores, %d PUs, "
                   "%d NUMA nodes, %d GPUs; heartbeat TTL %gs",
                   nd->cfg->server, nd->node_id, nd->name, nd->topo->ncores,
                   nd->topo->npus, nd->topo->nnuma, nd->topo->ngpus, ttl);
    } else {
        log_debug("registered %s as node %lld", nd->name, nd->node_id);
    }
    /* Registering marks the node ready until now + TTL, like a heartbeat
     * sent now would. */
    fence_reset(nd, ev_now(nd->loop));
    every = dv_clock_real_span(ttl / 3.0);
    ev_timer_stop(nd->loop, &nd->heartbeat_w);
    ev_timer_set(&nd->heartbeat_w,
                 every * (nd->hb_phase > 0 ? nd->hb_phase : 1), every);
    ev_timer_start(nd->loop, &nd->heartbeat_w);
    client_poll(nd);
    client_schedule_post(nd, 0.);
}

json_t *
noded_meta_parse(const char *text, struct dv_err *err)
{
    json_t *meta = json_object();
    char *copy = dv_xstrdup(text != NULL ? text : "");
    char *save = NULL;

    for (char *kv = strtok_r(copy, ",", &save); kv != NULL;
         kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');

        if (eq == NULL || eq == kv) {
            dv_err_set(err, DV_EINVAL, "invalid_config",
                       "invalid meta \"%.64s\": expected key=value", kv);
            json_decref(meta);
            meta = NULL;
            break;
        }
        *eq = '\0';
        json_object_set_new(meta, kv, json_string(eq + 1));
    }
    free(copy);
    return meta;
}

json_t *
client_register_body(struct noded *nd)
{
    json_t *body = topology_fingerprint_json(nd->topo, nd->hostname);
    char addr[64];

    host_address(addr, sizeof(addr));
    json_object_set_new(body, "name", json_string(nd->name));
    json_object_set_new(body, "datacenter", json_string(nd->cfg->datacenter));
    json_object_set_new(body, "pool", json_string(nd->cfg->pool));
    if (!dv_str_empty(nd->cfg->node_class)) {
        json_object_set_new(body, "node_class",
                            json_string(nd->cfg->node_class));
    }
    if (!dv_str_empty(nd->cfg->meta)) {
        json_t *meta = noded_meta_parse(nd->cfg->meta, NULL);

        if (meta != NULL) { /* checked at startup */
            json_object_set_new(body, "meta", meta);
        }
    }
    json_object_set_new(body, "address", json_string(addr));
    json_object_set_new(json_object_get(body, "resources"), "disk",
                        json_integer(nd->disk));
    return body;
}

static void
client_register(struct noded *nd)
{
    json_t *body;
    struct dv_err err;

    ev_timer_stop(nd->loop, &nd->register_w);
    if (nd->registering) {
        return;
    }
    body = client_register_body(nd);
    if (send_json(nd, "POST", "/v1/nodes/register", body, CLIENT_TIMEOUT,
                  register_done_cb, &err) < 0) {
        log_warn("node %s: could not register with %s: %s (retrying)", nd->name,
                 nd->cfg->server, err.msg);
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
            log_notice("node %s: heartbeats to %s work again", nd->name,
                       nd->cfg->server);
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
        fence_reset(nd, nd->hb_sent);
        return;
    }
    describe_failure(resp, err, why, sizeof(why), code, sizeof(code));
    if (is_node_not_found(resp, code)) {
        client_need_register(nd, why);
        return;
    }
    if (resp != NULL && resp->status == 503 &&
        strcmp(code, "database_unavailable") == 0) {
        /* No server can mark the node down without the database, and
         * the first liveness pass after it is back gives every node a
         * TTL: nothing to fence against. */
        fence_reset(nd, nd->hb_sent);
    }
    if (!nd->hb_failing) {
        log_warn("node %s: heartbeat to %s failed: %s (jobs keep running "
                 "for the TTL; retrying)",
                 nd->name, nd->cfg->server, why);
        nd->hb_failing = 1;
    }
}

static void
heartbeat_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct noded *nd = w->data;
    char path[128];
    struct dv_err err;

    (void)revents;
    if (!nd->registered || nd->heartbeating) {
        return;
    }
    snprintf(path, sizeof(path), "/v1/nodes/%lld/heartbeat", nd->node_id);
    if (dv_http_async_send(nd->http, "PUT", path, NULL, 0, NULL, 0,
                           CLIENT_TIMEOUT, heartbeat_done_cb, nd, &err) < 0) {
        log_warn("node %s: could not send a heartbeat: %s", nd->name, err.msg);
        return;
    }
    nd->heartbeating = 1;
    nd->hb_sent = ev_now(loop);
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
get_str(json_t *o, const char *key, const char **out, int required)
{
    json_t *v = json_object_get(o, key);

    if (v == NULL || json_is_null(v)) {
        return required ? -1 : 0;
    }
    if (!json_is_string(v)) {
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static int
get_int(json_t *o, const char *key, long long min, long long max, int *out)
{
    long long v = 0;

    if (get_ll(o, key, &v, 0) < 0 || v < min || v > max) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int
decode_one(json_t *o, json_t *jobs, struct alloc_desc *d, struct dv_err *err)
{
    const char *desired = NULL;
    long long v;
    char key[32];

    memset(d, 0, sizeof(*d));
    d->job_id_str = NULL;
    d->cpuset = "";
    d->gpus = "";
    d->array_index = -1;
    if (!json_is_object(o) || get_ll(o, "id", &d->id, 1) < 0 ||
        get_str(o, "desired_status", &desired, 1) < 0 ||
        get_str(o, "client_status", &d->client_status, 1) < 0 ||
        get_ll(o, "job_id", &d->job_id, 0) < 0 ||
        get_str(o, "job_id_str", &d->job_id_str, 0) < 0 ||
        get_str(o, "cpuset", &d->cpuset, 0) < 0 ||
        get_str(o, "gpus", &d->gpus, 0) < 0 ||
        get_str(o, "queue", &d->queue, 0) < 0 ||
        get_str(o, "signal", &d->signal, 0) < 0) {
        dv_err_set(err, DV_EINVAL, "bad_answer",
                   "malformed allocation in the long-poll answer");
        return -1;
    }
    d->desired_run = strcmp(desired, "run") == 0;
    v = 0;
    if (get_int(o, "chunk_index", 0, 1000000, &d->chunk_index) < 0 ||
        get_int(o, "group_index", 0, 1000000, &d->group_index) < 0 ||
        get_int(o, "instance", 0, 100000000, &d->instance) < 0 ||
        get_int(o, "ncpus", 0, DV_MAX_NCPUS, &d->ncpus) < 0 ||
        get_ll(o, "mem", &v, 0) < 0) {
        goto bad_field;
    }
    d->mem = v;
    v = 0;
    if (get_ll(o, "disk", &v, 0) < 0) {
        goto bad_field;
    }
    d->disk = v;
    v = 0;
    if (get_ll(o, "walltime", &v, 0) < 0 || v < 0) {
        goto bad_field;
    }
    d->walltime = v;
    if (get_int(o, "array_index", -1, 2147483647, &d->array_index) < 0 ||
        get_str(o, "array_id", &d->array_id, 0) < 0 ||
        get_int(o, "signal_seq", 0, 2147483647, &d->signal_seq) < 0) {
        goto bad_field;
    }
    d->hosts = json_object_get(o, "hosts");
    if (d->hosts != NULL && !json_is_array(d->hosts)) {
        goto bad_field;
    }
    d->tasks = json_object_get(o, "tasks");
    if (d->tasks != NULL && !json_is_array(d->tasks)) {
        goto bad_field;
    }
    snprintf(key, sizeof(key), "%lld", d->job_id);
    d->job = json_is_object(jobs) ? json_object_get(jobs, key) : NULL;
    if (d->job != NULL && !json_is_object(d->job)) {
        d->job = NULL;
    }
    return 0;
bad_field:
    dv_err_set(err, DV_EINVAL, "bad_answer",
               "malformed allocation %lld in the long-poll answer", d->id);
    return -1;
}

void
poll_answer_cleanup(struct poll_answer *ans)
{
    free(ans->descs);
    json_decref(ans->root);
    memset(ans, 0, sizeof(*ans));
}

int
client_decode_allocations(const char *body, struct poll_answer *ans,
                          struct dv_err *err)
{
    json_error_t jerr;
    json_t *arr, *o, *jobs, *full;
    size_t i;

    memset(ans, 0, sizeof(*ans));
    ans->root = body != NULL ? json_loads(body, 0, &jerr) : NULL;
    if (ans->root == NULL) {
        dv_err_set(err, DV_EINVAL, "bad_answer",
                   "the long-poll answer is not JSON");
        return -1;
    }
    arr = json_object_get(ans->root, "allocations");
    jobs = json_object_get(ans->root, "jobs");
    full = json_object_get(ans->root, "full");
    if (get_ll(ans->root, "index", &ans->index, 1) < 0 || !json_is_array(arr) ||
        (jobs != NULL && !json_is_object(jobs))) {
        dv_err_set(err, DV_EINVAL, "bad_answer",
                   "the long-poll answer lacks index or allocations");
        goto fail;
    }
    /* An answer that does not say is a full list (the only kind once). */
    ans->full = full == NULL || json_is_true(full);
    ans->descs = dv_xcalloc(json_array_size(arr) + 1, sizeof(*ans->descs));
    json_array_foreach (arr, i, o) {
        if (decode_one(o, jobs, &ans->descs[ans->n], err) < 0) {
            goto fail;
        }
        ans->n++;
    }
    return 0;
fail:
    poll_answer_cleanup(ans);
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
    struct poll_answer ans;
    struct dv_err derr;
    char why[512], code[64];

    nd->polling = 0;
    if (nd->stop_poll) {
        return;
    }
    if (resp == NULL || resp->status != 200) {
        describe_failure(resp, err, why, sizeof(why), code, sizeof(code));
        if (is_node_not_found(resp, code)) {
            client_need_register(nd, why);
            return;
        }
        if (!nd->poll_failing) {
            log_warn("could not get the allocations of node %lld (%s) from "
                     "%s: %s (jobs keep running; retrying)",
                     nd->node_id, nd->name, nd->cfg->server, why);
            nd->poll_failing = 1;
        } else {
            log_debug("long poll failed again: %s", why);
        }
        poll_retry(nd);
        return;
    }
    if (client_decode_allocations(resp->body, &ans, &derr) < 0) {
        log_warn("could not read the allocations of node %lld (%s): %s "
                 "(retrying)",
                 nd->node_id, nd->name, derr.msg);
        poll_retry(nd);
        return;
    }
    backoff_reset(&nd->poll_bo);
    if (nd->poll_failing) {
        log_notice("node %s: long poll of %s works again", nd->name,
                   nd->cfg->server);
        nd->poll_failing = 0;
    }
    if (ans.index < nd->index) {
        log_info("node %s: allocation index went back from %lld to %lld",
                 nd->name, nd->index, ans.index);
    }
    log_debug("long poll of %s: index %lld, %s, %d allocations", nd->name,
              ans.index, ans.full ? "full" : "changes", ans.n);
    nd->index = ans.index;
    alloc_reconcile(nd, &ans, nd->poll_gen);
    poll_answer_cleanup(&ans);
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
        log_warn("node %s: could not poll %s: %s (retrying)", nd->name,
                 nd->cfg->server, err.msg);
        poll_retry(nd);
        return;
    }
    nd->polling = 1;
    nd->poll_gen++;
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

/* Takes the first n updates off the queue (acknowledged, or dropped). */
static void
client_pop_updates(struct noded *nd, int n)
{
    for (int i = 0; i < n && nd->updates != NULL; i++) {
        struct status_update *u = nd->updates;

        nd->updates = u->next;
        nd->nupdates--;
        if (strcmp(u->client_status, "running") == 0) {
            alloc_update_gone(nd, u);
        } else if (!u->dropped) {
            alloc_final_acked(nd, u->alloc_id);
        }
        status_update_free(u);
    }
    if (nd->updates == NULL) {
        nd->updates_tail = &nd->updates;
    }
    if (nd->post_isolate > 0) {
        nd->post_isolate -= n < nd->post_isolate ? n : nd->post_isolate;
    }
}

/* The updates qmgr refused one by one in a 200 answer: logged; they are
 * dropped with the batch (they can never apply). */
static void
log_rejected(struct noded *nd, json_t *errors)
{
    size_t i;
    json_t *e;

    json_array_foreach (errors, i, e) {
        json_t *id = json_object_get(e, "id");
        json_t *msg = json_object_get(e, "message");

        log_error("node %s: qmgr rejected the update of allocation %lld: %s "
                  "(dropped)",
                  nd->name,
                  json_is_integer(id) ? (long long)json_integer_value(id)
                                      : -1LL,
                  json_is_string(msg) ? json_string_value(msg) : "?");
    }
}

/* A whole batch was refused as invalid (400, 413): if it held several
 * updates, send them one by one to find the bad one; a single update that
 * is refused can never apply and is dropped. Returns 1 when handled. */
static int
post_rejected(struct noded *nd, const struct dv_http_response *resp, int n,
              const char *why)
{
    const struct status_update *u;

    if (resp == NULL ||
        (resp->status != 400 && resp->status != 413 && resp->status != 422)) {
        return 0;
    }
    for (u = nd->updates; u != NULL && u->dropped; u = u->next) {
    }
    if (nd->post_live > 1) {
        log_warn("node %s: qmgr refused a batch of %d updates (%s): sending "
                 "them one by one",
                 nd->name, n, why);
        nd->post_isolate = n;
        for (struct status_update *x = nd->updates; x != NULL; x = x->next) {
            x->sent = 0;
        }
        client_schedule_post(nd, 0.);
        return 1;
    }
    log_error("node %s: qmgr refused the update %s of allocation %lld: %s "
              "(dropped)",
              nd->name, u != NULL ? u->client_status : "?",
              u != NULL ? u->alloc_id : -1LL, why);
    client_pop_updates(nd, n);
    client_schedule_post(nd, 0.);
    noded_check_done(nd);
    return 1;
}

static void
post_done_cb(const struct dv_http_response *resp, const struct dv_err *err,
             void *arg)
{
    struct noded *nd = arg;
    char why[512], code[64];
    json_t *root;
    int n = nd->post_count;

    nd->posting = 0;
    nd->post_count = 0;
    if (resp == NULL || resp->status != 200) {
        describe_failure(resp, err, why, sizeof(why), code, sizeof(code));
        for (struct status_update *x = nd->updates; x != NULL; x = x->next) {
            x->sent = 0;
        }
        if (is_node_not_found(resp, code)) {
            client_need_register(nd, why); /* registering resumes POSTs */
            return;
        }
        if (post_rejected(nd, resp, n, why)) {
            return;
        }
        if (!nd->post_failing) {
            log_warn("node %s: could not send %d allocation updates to %s: "
                     "%s (kept, retrying)",
                     nd->name, n, nd->cfg->server, why);
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
        log_notice("node %s: allocation updates reach %s again", nd->name,
                   nd->cfg->server);
        nd->post_failing = 0;
    }
    root = resp->body != NULL ? json_loads(resp->body, 0, NULL) : NULL;
    if (root != NULL && json_is_array(json_object_get(root, "errors"))) {
        log_rejected(nd, json_object_get(root, "errors"));
    }
    json_decref(root);
    client_pop_updates(nd, n);
    log_debug("node %s: %d allocation updates acknowledged", nd->name, n);
    client_schedule_post(nd, 0.);
    noded_check_done(nd);
}

static void
client_post(struct noded *nd)
{
    json_t *body;
    char path[128];
    struct dv_err err;
    struct status_update *u;
    int n, max, live = 0;

    if (nd->http == NULL || nd->posting || nd->nupdates == 0 ||
        !nd->registered) {
        return;
    }
    max = nd->post_isolate > 0 ? 1 : CLIENT_BATCH_MAX;
    /* n queued updates cover at most max live ones; dropped ones go with
     * them. */
    n = 0;
    for (u = nd->updates; u != NULL && (live < max || u->dropped);
         u = u->next) {
        n++;
        live += !u->dropped;
    }
    if (live == 0) {
        client_pop_updates(nd, n);
        noded_check_done(nd);
        return;
    }
    body = client_updates_json(nd->updates, n);
    snprintf(path, sizeof(path), "/v1/nodes/%lld/allocations/status",
             nd->node_id);
    if (send_json(nd, "POST", path, body, CLIENT_TIMEOUT, post_done_cb, &err) <
        0) {
        log_warn("node %s: could not send allocation updates: %s (retrying)",
                 nd->name, err.msg);
        ev_timer_set(&nd->post_w, backoff_next(&nd->post_bo), 0.);
        ev_timer_start(nd->loop, &nd->post_w);
    } else {
        nd->posting = 1;
        nd->post_count = n;
        nd->post_live = live;
        u = nd->updates;
        for (int i = 0; i < n && u != NULL; i++, u = u->next) {
            u->sent = 1;
        }
    }
    json_decref(body);
}

/* ---- lifecycle ---------------------------------------------------------- */

void
client_init(struct noded *nd)
{
    nd->updates = NULL;
    nd->updates_tail = &nd->updates;
    nd->batch_delay = 0.005;
    ev_timer_init(&nd->register_w, register_retry_cb, 0., 0.);
    ev_timer_init(&nd->heartbeat_w, heartbeat_cb, 1., 1.);
    ev_timer_init(&nd->fence_w, fence_cb, 1., 0.);
    ev_timer_init(&nd->poll_w, poll_retry_cb, 0., 0.);
    ev_timer_init(&nd->post_w, post_timer_cb, 0., 0.);
    nd->register_w.data = nd;
    nd->heartbeat_w.data = nd;
    nd->fence_w.data = nd;
    nd->poll_w.data = nd;
    nd->post_w.data = nd;
}

int
client_start(struct noded *nd, double delay, struct dv_err *err)
{
    struct dv_http_client_config hc;

    if (nd->http == NULL) {
        memset(&hc, 0, sizeof(hc));
        hc.base = nd->cfg->server;
        hc.ca_file = nd->cfg->tls_ca;
        hc.cert = nd->cfg->tls_cert;
        hc.key = nd->cfg->tls_key;
        nd->http = dv_http_async_new(nd->loop, &hc, err);
        if (nd->http == NULL) {
            return -1;
        }
        nd->owns_http = 1;
    }
    if (delay > 0) {
        ev_timer_set(&nd->register_w, delay, 0.);
        ev_timer_start(nd->loop, &nd->register_w);
        return 0;
    }
    client_register(nd);
    return 0;
}

void
client_cleanup(struct noded *nd)
{
    ev_timer_stop(nd->loop, &nd->register_w);
    ev_timer_stop(nd->loop, &nd->heartbeat_w);
    ev_timer_stop(nd->loop, &nd->fence_w);
    ev_timer_stop(nd->loop, &nd->poll_w);
    ev_timer_stop(nd->loop, &nd->post_w);
    if (nd->owns_http) {
        dv_http_async_free(nd->http);
    }
    nd->http = NULL;
    nd->owns_http = 0;
    while (nd->updates != NULL) {
        struct status_update *u = nd->updates;

        nd->updates = u->next;
        status_update_free(u);
    }
    nd->updates_tail = &nd->updates;
    nd->nupdates = 0;
}
