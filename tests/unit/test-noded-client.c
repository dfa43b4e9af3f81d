/* Unit tests: noded/client.c against a fake qmgr (lib/http-server.h on the
 * same loop): registration, heartbeats, the long poll, batched status
 * updates kept across failures, re-registration on node_not_found, and the
 * orderly stop with a job running. */
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/http-server.h"
#include "lib/strutil.h"
#include "noded/noded.h"
#include "unit.h"

static char tmpdir[256];
static struct ev_loop *loop;
static struct topology *topo;
static struct noded_config cfg;
static struct noded nd;
static char owner[256];
static char server[64];

/* ---- the fake qmgr ------------------------------------------------------ */

struct fake {
    struct dv_http_server *srv;
    int registers, heartbeats, polls, posts;
    int fail_posts; /* answer 503 to the next N status POSTs */
    int hb_404;     /* answer 404 node_not_found to the next heartbeat */
    long long index;
    json_t *allocs;  /* the node's pending/running allocations */
    json_t *updates; /* every update acknowledged, in order */
    json_t *reg_body;
    struct dv_http_request *held; /* a long poll waiting for a change */
    long long last_poll_index;
};

static struct fake fk;

static void
fake_answer_poll(struct dv_http_request *req)
{
    dv_http_respond_json(req, 200,
                         json_pack("{s:I, s:O}", "index", (json_int_t)fk.index,
                                   "allocations", fk.allocs),
                         NULL, 0);
}

static void
fake_abort_cb(struct dv_http_request *req, void *arg)
{
    (void)arg;
    if (fk.held == req) {
        fk.held = NULL;
    }
}

/* Something changed: bump the index and wake the held poll. */
static void
fake_publish(void)
{
    fk.index++;
    if (fk.held != NULL) {
        struct dv_http_request *r = fk.held;

        fk.held = NULL;
        fake_answer_poll(r);
    }
}

static json_t *
fake_find(long long id, size_t *pos)
{
    size_t i;
    json_t *a;

    json_array_foreach (fk.allocs, i, a) {
        if (json_integer_value(json_object_get(a, "id")) == id) {
            *pos = i;
            return a;
        }
    }
    return NULL;
}

static void
fake_status(struct dv_http_request *req)
{
    size_t len, i;
    json_t *body = json_loads(dv_http_request_body(req, &len), 0, NULL);
    json_t *arr = json_object_get(body, "updates"), *u;

    fk.posts++;
    if (fk.fail_posts > 0) {
        fk.fail_posts--;
        json_decref(body);
        dv_http_respond_errorf(req, 503, "database_unavailable",
                               "PostgreSQL unreachable");
        return;
    }
    json_array_foreach (arr, i, u) {
        long long id = json_integer_value(json_object_get(u, "id"));
        const char *cs = json_string_value(json_object_get(u, "client_status"));
        size_t pos;
        json_t *a = fake_find(id, &pos);

        json_array_append(fk.updates, u);
        if (a == NULL) {
            continue;
        }
        if (strcmp(cs, "running") == 0) {
            json_object_set_new(a, "client_status", json_string("running"));
        } else {
            json_array_remove(fk.allocs, pos);
        }
    }
    json_decref(body);
    fake_publish();
    dv_http_respond_json(req, 200, json_pack("{s:I}", "index", fk.index), NULL,
                         0);
}

static void
fake_handler(struct dv_http_request *req, void *arg)
{
    const char *m = dv_http_request_method(req);
    const char *p = dv_http_request_path(req);
    size_t len;

    (void)arg;
    if (strcmp(m, "POST") == 0 && strcmp(p, "/v1/nodes/register") == 0) {
        fk.registers++;
        json_decref(fk.reg_body);
        fk.reg_body = json_loads(dv_http_request_body(req, &len), 0, NULL);
        dv_http_respond_json(
            req, 200,
            json_pack("{s:i, s:f}", "node_id", 5, "heartbeat_ttl", 0.3), NULL,
            0);
    } else if (strcmp(m, "PUT") == 0 &&
               strcmp(p, "/v1/nodes/5/heartbeat") == 0) {
        fk.heartbeats++;
        if (fk.hb_404 > 0) {
            fk.hb_404--;
            dv_http_respond_errorf(req, 404, "node_not_found",
                                   "Unknown node id 5");
            return;
        }
        dv_http_respond_json(req, 200, json_pack("{s:f}", "heartbeat_ttl", 0.3),
                             NULL, 0);
    } else if (strcmp(m, "GET") == 0 &&
               strcmp(p, "/v1/nodes/5/allocations") == 0) {
        const char *i = dv_http_request_query(req, "index");
        int64_t idx = 0;

        fk.polls++;
        if (i == NULL || dv_parse_i64(i, 0, INT64_MAX, &idx) < 0 ||
            dv_http_request_query(req, "wait") == NULL) {
            dv_http_respond_errorf(req, 400, "invalid_request", "bad query");
            return;
        }
        fk.last_poll_index = idx;
        if (fk.index > idx) {
            fake_answer_poll(req);
            return;
        }
        if (fk.held != NULL) { /* one poll at a time */
            dv_http_respond_errorf(req, 409, "bad_state", "two polls");
            return;
        }
        fk.held = req;
        dv_http_request_set_abort_cb(req, fake_abort_cb, NULL);
    } else if (strcmp(m, "POST") == 0 &&
               strcmp(p, "/v1/nodes/5/allocations/status") == 0) {
        fake_status(req);
    } else {
        dv_http_respond_errorf(req, 404, "not_found", "no such path %s", p);
    }
}

/* ---- helpers ------------------------------------------------------------ */

static double
mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
tick_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l;
    (void)w;
    (void)revents;
}

/* Runs the loop until pred() holds or timeout seconds pass. */
static int
run_until(int (*pred)(void), double timeout)
{
    ev_timer tick;
    double end = mono() + timeout;

    ev_timer_init(&tick, tick_cb, 0.02, 0.02);
    ev_timer_start(loop, &tick);
    while (!pred() && mono() < end) {
        ev_run(loop, EVRUN_ONCE);
    }
    ev_timer_stop(loop, &tick);
    return pred();
}

static int
never(void)
{
    return 0;
}

static int
registered(void)
{
    return nd.registered && fk.held != NULL;
}

static int
two_heartbeats(void)
{
    return fk.heartbeats >= 2;
}

static long long want_id;
static const char *want_status;

static json_t *
update_of(long long id, const char *status)
{
    size_t i;
    json_t *u;

    json_array_foreach (fk.updates, i, u) {
        if (json_integer_value(json_object_get(u, "id")) == id &&
            strcmp(json_string_value(json_object_get(u, "client_status")),
                   status) == 0) {
            return u;
        }
    }
    return NULL;
}

static int
have_update(void)
{
    return update_of(want_id, want_status) != NULL;
}

static int
forgotten(void)
{
    return alloc_find(&nd, want_id) == NULL;
}

static json_t *
alloc_json(long long id, const char *script, const char *out)
{
    return json_pack(
        "{s:I, s:I, s:s, s:i, s:s, s:s, s:i, s:I, s:s, s:I, s:I, "
        "s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s}, s:[{s:s, s:i}]}",
        "id", (json_int_t)id, "job_id", (json_int_t)id, "job_id_str", "1.srv",
        "chunk_index", 0, "desired_status", "run", "client_status", "pending",
        "ncpus", 1, "mem", (json_int_t)0, "cpuset", "0", "modify_index",
        (json_int_t)fk.index + 1, "walltime", (json_int_t)0, "queue", "workq",
        "job", "name", "t", "owner", owner, "script", script, "stdout", out,
        "join", "oe", "shell", "/bin/sh", "hosts", "host", "node1", "ncpus", 1);
}

static void
add_alloc(long long id, const char *script)
{
    char *out = dv_xasprintf("%s/job%lld.out", tmpdir, id);

    json_array_append_new(fk.allocs, alloc_json(id, script, out));
    free(out);
    fake_publish();
}

/* ---- tests -------------------------------------------------------------- */

static void
test_register_and_heartbeat(void)
{
    json_t *res;

    CHECK(run_until(registered, 5));
    CHECK_INT(fk.registers, 1);
    CHECK_INT(nd.node_id, 5);
    CHECK_STR(json_string_value(json_object_get(fk.reg_body, "name")), "node1");
    CHECK_STR(json_string_value(json_object_get(fk.reg_body, "pool")),
              "default");
    CHECK_STR(json_string_value(json_object_get(fk.reg_body, "datacenter")),
              "dc1");
    CHECK(json_is_string(json_object_get(fk.reg_body, "address")));
    res = json_object_get(fk.reg_body, "resources");
    CHECK_INT(json_integer_value(json_object_get(res, "cores")), 4);
    CHECK_INT(json_integer_value(json_object_get(res, "memory")), 2LL << 30);
    CHECK(json_is_object(json_object_get(fk.reg_body, "topology")));
    CHECK(json_is_object(json_object_get(fk.reg_body, "attributes")));
    /* TTL 0.3 s: a heartbeat every 0.1 s. */
    CHECK(run_until(two_heartbeats, 2));
}

static void
test_run_and_report(void)
{
    json_t *u;
    size_t i;
    int running_at = -1, complete_at = -1;

    add_alloc(10, "echo hi\n");
    want_id = 10;
    want_status = "complete";
    CHECK(run_until(have_update, 10));
    json_array_foreach (fk.updates, i, u) {
        if (json_integer_value(json_object_get(u, "id")) != 10) {
            continue;
        }
        if (strcmp(json_string_value(json_object_get(u, "client_status")),
                   "running") == 0) {
            running_at = (int)i;
        } else {
            complete_at = (int)i;
        }
    }
    CHECK(running_at >= 0 && complete_at > running_at);
    u = update_of(10, "complete");
    CHECK(u != NULL);
    if (u != NULL) {
        CHECK_INT(json_integer_value(json_object_get(u, "exit_status")), 0);
        CHECK(json_is_object(json_object_get(u, "resources_used")));
        CHECK(json_is_integer(json_object_get(u, "time")));
    }
    /* Acknowledged and no longer listed: forgotten. */
    CHECK(run_until(forgotten, 5));
    CHECK_INT(nd.nupdates, 0);
}

static void
test_updates_survive_failures(void)
{
    int posts;

    fk.fail_posts = 3;
    posts = fk.posts;
    add_alloc(11, "exit 4\n");
    want_id = 11;
    want_status = "failed";
    /* 0.5 + 1 + 2 s of backoff at most. */
    CHECK(run_until(have_update, 10));
    CHECK(fk.posts >= posts + 4);
    CHECK_INT(fk.fail_posts, 0);
    CHECK(update_of(11, "running") != NULL);
    CHECK_INT(json_integer_value(
                  json_object_get(update_of(11, "failed"), "exit_status")),
              4);
    CHECK(run_until(forgotten, 5));
    CHECK_INT(nd.nupdates, 0);
}

static int
reregistered(void)
{
    return fk.registers >= 2 && nd.registered && fk.held != NULL;
}

static void
test_reregister(void)
{
    fk.hb_404 = 1;
    CHECK(run_until(reregistered, 5));
    CHECK_INT(fk.registers, 2);
    /* Work still flows afterwards. */
    add_alloc(12, "true\n");
    want_id = 12;
    want_status = "complete";
    CHECK(run_until(have_update, 10));
}

static int stopped_loop;

static void
test_shutdown(void)
{
    json_t *u;
    ev_timer guard;

    add_alloc(13, "sleep 30\n");
    want_id = 13;
    want_status = "running";
    CHECK(run_until(have_update, 10));
    noded_shutdown(&nd);
    /* ev_run returns once the job is reported (or the guard fires). */
    ev_timer_init(&guard, tick_cb, 10., 0.);
    ev_timer_start(loop, &guard);
    ev_run(loop, 0);
    stopped_loop = ev_is_active(&guard);
    ev_timer_stop(loop, &guard);
    CHECK(stopped_loop);
    u = update_of(13, "failed");
    CHECK(u != NULL);
    if (u != NULL) {
        CHECK_INT(json_integer_value(json_object_get(u, "exit_status")), 271);
    }
    CHECK_INT(nd.nupdates, 0);
    CHECK_INT(nd.exit_status, 0);
}

int
main(void)
{
    struct dv_http_server_config sc;
    struct passwd *pw = getpwuid(geteuid());
    struct dv_err err;
    char *data;
    int rc;

    signal(SIGPIPE, SIG_IGN);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/drover-noded-client.XXXXXX");
    if (mkdtemp(tmpdir) == NULL || pw == NULL) {
        perror("setup");
        return 1;
    }
    dv_strlcpy(owner, pw->pw_name, sizeof(owner));
    loop = ev_loop_new(EVFLAG_AUTO);
    memset(&sc, 0, sizeof(sc));
    sc.listen = "127.0.0.1:0";
    fk.allocs = json_array();
    fk.updates = json_array();
    fk.srv = dv_http_server_new(loop, &sc, fake_handler, NULL, &err);
    if (fk.srv == NULL) {
        fprintf(stderr, "fake qmgr: %s\n", err.msg);
        return 1;
    }
    snprintf(server, sizeof(server), "http://127.0.0.1:%d",
             dv_http_server_port(fk.srv));
    data = dv_xasprintf("%s/data", tmpdir);
    cfg.data_dir = data;
    cfg.name = (char *)"node1";
    cfg.server = server;
    cfg.datacenter = (char *)"dc1";
    cfg.pool = (char *)"default";
    cfg.allow_root = 1;
    cfg.kill_grace = 0.5;
    topo = topology_load(NULL, "pack:1 core:4 pu:1", 2LL << 30, &err);
    if (topo == NULL || allocdir_init(data, &err) < 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return 1;
    }
    noded_init(&nd, loop, &cfg, topo);
    if (client_start(&nd, &err) < 0) {
        fprintf(stderr, "client_start: %s\n", err.msg);
        return 1;
    }

    RUN(test_register_and_heartbeat);
    RUN(test_run_and_report);
    RUN(test_updates_survive_failures);
    RUN(test_reregister);
    RUN(test_shutdown);

    rc = unit_done();
    (void)never;
    noded_cleanup(&nd);
    dv_http_server_free(fk.srv);
    json_decref(fk.allocs);
    json_decref(fk.updates);
    json_decref(fk.reg_body);
    ev_loop_destroy(loop);
    topology_free(topo);
    if (allocdir_remove(tmpdir, &err) < 0) {
        fprintf(stderr, "cleanup: %s\n", err.msg);
    }
    free(data);
    return rc;
}
