/* Unit tests: noded/client.c against a fake qmgr (lib/http-server.h on the
 * same loop): registration, heartbeats, the long poll (full and delta
 * answers, specs once per job), batched status updates kept across
 * failures, updates rejected as invalid dropped (one by one when a batch is
 * refused), re-registration on node_not_found, fencing when heartbeats
 * fail for a TTL, native allocations (tasks, restarts, environment), and
 * the orderly stop with a job running. */
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
    int fail_posts;   /* answer 503 to the next N status POSTs */
    int hb_404;       /* answer 404 node_not_found to the next heartbeat */
    int hb_fail;      /* answer 500 to heartbeats while set */
    long long poison; /* a batch holding this allocation id: 400 */
    long long reject; /* this allocation id: a per-update error */
    int full;         /* answers are full lists (else: deltas) */
    long long index;
    json_t *allocs;  /* the node's pending/running allocations */
    json_t *jobs;    /* job id -> spec */
    json_t *updates; /* every update acknowledged, in order */
    json_t *reg_body;
    json_t *last_answer;
    struct dv_http_request *held; /* a long poll waiting for a change */
    long long last_poll_index;
};

static struct fake fk;

static void
fake_answer_poll(struct dv_http_request *req)
{
    json_t *a = json_deep_copy(fk.allocs);

    json_decref(fk.last_answer);
    fk.last_answer =
        json_pack("{s:I, s:b, s:o, s:O}", "index", (json_int_t)fk.index, "full",
                  fk.full, "allocations", a, "jobs", fk.jobs);
    dv_http_respond_json(req, 200, json_incref(fk.last_answer), NULL, 0);
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

    json_t *errors = json_array();

    fk.posts++;
    if (fk.fail_posts > 0) {
        fk.fail_posts--;
        json_decref(body);
        json_decref(errors);
        dv_http_respond_errorf(req, 503, "database_unavailable",
                               "PostgreSQL unreachable");
        return;
    }
    json_array_foreach (arr, i, u) {
        if (json_integer_value(json_object_get(u, "id")) == fk.poison) {
            json_decref(body);
            json_decref(errors);
            dv_http_respond_errorf(req, 400, "invalid_request",
                                   "poisoned update");
            return;
        }
    }
    json_array_foreach (arr, i, u) {
        long long id = json_integer_value(json_object_get(u, "id"));
        const char *cs = json_string_value(json_object_get(u, "client_status"));
        size_t pos;
        json_t *a = fake_find(id, &pos);

        if (id == fk.reject) {
            json_array_append_new(
                errors, json_pack("{s:i, s:I, s:s, s:s}", "pos", (int)i, "id",
                                  (json_int_t)id, "code", "internal_error",
                                  "message", "bad row"));
            continue;
        }
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
    /* A node's own reports never wake its long poll. */
    dv_http_respond_json(
        req, 200, json_pack("{s:I, s:o}", "index", fk.index, "errors", errors),
        NULL, 0);
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
        if (fk.hb_fail) {
            dv_http_respond_errorf(req, 500, "internal_error", "down");
            return;
        }
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

static int queue_empty(void);

static int
poll_held(void)
{
    return fk.held != NULL;
}

/* An acknowledged allocation is forgotten by the answer to a poll sent
 * after the acknowledgement: the poll in flight then may be older. */
static void
publish_twice(void)
{
    fake_publish();
    run_until(poll_held, 5);
    fake_publish();
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
alloc_json(long long id, long long job_id)
{
    return json_pack("{s:I, s:I, s:s, s:i, s:i, s:i, s:s, s:s, s:i, s:I, s:s, "
                     "s:s, s:I, s:I, s:s, s:[{s:s, s:i}]}",
                     "id", (json_int_t)id, "job_id", (json_int_t)job_id,
                     "job_id_str", "1.srv", "chunk_index", 0, "group_index", 0,
                     "instance", 0, "desired_status", "run", "client_status",
                     "pending", "ncpus", 1, "mem", (json_int_t)0, "cpuset", "0",
                     "gpus", "", "alloc_modify_index", (json_int_t)fk.index + 1,
                     "walltime", (json_int_t)0, "queue", "workq", "hosts",
                     "host", "node1", "ncpus", 1);
}

static void
set_job(long long job_id, json_t *spec)
{
    char key[32];

    snprintf(key, sizeof(key), "%lld", job_id);
    json_object_set_new(fk.jobs, key, spec);
}

static void
add_alloc(long long id, const char *script)
{
    char *out = dv_xasprintf("%s/job%lld.out", tmpdir, id);

    set_job(id, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", "t",
                          "owner", owner, "script", script, "stdout", out,
                          "join", "oe", "shell", "/bin/sh"));
    json_array_append_new(fk.allocs, alloc_json(id, id));
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
    /* A job that ends within the batching window is reported once, as
     * complete; one that runs longer, running first. */
    CHECK(complete_at >= 0 && (running_at < 0 || complete_at > running_at));
    u = update_of(10, "complete");
    CHECK(u != NULL);
    if (u != NULL) {
        CHECK_INT(json_integer_value(json_object_get(u, "exit_status")), 0);
        CHECK(json_is_object(json_object_get(u, "resources_used")));
        CHECK(json_is_integer(json_object_get(u, "time")));
    }
    /* Acknowledged; the node's own report does not wake its poll, so it
     * is forgotten once a later answer comes. */
    CHECK(alloc_find(&nd, 10) != NULL);
    CHECK(run_until(queue_empty, 10));
    publish_twice();
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
    CHECK_INT(json_integer_value(
                  json_object_get(update_of(11, "failed"), "exit_status")),
              4);
    CHECK(run_until(queue_empty, 10));
    publish_twice();
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

/* The answer the node decodes: each spec once, under "jobs". */
static void
test_answer_format(void)
{
    struct poll_answer ans;
    struct dv_err err;
    char *body;
    json_t *j = json_pack(
        "{s:I, s:b, s:[{s:I, s:I, s:s, s:s}, {s:I, s:I, s:s, s:s, s:i}], "
        "s:{s:{s:s}}}",
        "index", (json_int_t)9, "full", 0, "allocations", "id", (json_int_t)1,
        "job_id", (json_int_t)7, "desired_status", "run", "client_status",
        "pending", "id", (json_int_t)2, "job_id", (json_int_t)7,
        "desired_status", "stop", "client_status", "running", "instance", 3,
        "jobs", "7", "name", "x");

    body = json_dumps(j, JSON_COMPACT);
    CHECK_INT(client_decode_allocations(body, &ans, &err), 0);
    CHECK_INT(ans.index, 9);
    CHECK_INT(ans.full, 0);
    CHECK_INT(ans.n, 2);
    if (ans.n == 2) {
        CHECK(ans.descs[0].job != NULL && ans.descs[0].job == ans.descs[1].job);
        CHECK_INT(ans.descs[0].desired_run, 1);
        CHECK_INT(ans.descs[1].desired_run, 0);
        CHECK_INT(ans.descs[1].instance, 3);
        CHECK_STR(ans.descs[1].client_status, "running");
    }
    poll_answer_cleanup(&ans);
    free(body);
    json_decref(j);
    /* An answer without "full" is a full list; malformed ones fail. */
    CHECK_INT(client_decode_allocations("{\"index\": 1, \"allocations\": []}",
                                        &ans, &err),
              0);
    CHECK_INT(ans.full, 1);
    poll_answer_cleanup(&ans);
    CHECK_INT(client_decode_allocations("{\"allocations\": []}", &ans, &err),
              -1);
    CHECK_INT(client_decode_allocations(
                  "{\"index\": 1, \"allocations\": [{\"id\": 1}]}", &ans, &err),
              -1);
    CHECK_INT(client_decode_allocations("[", &ans, &err), -1);
}

static int
alloc_state_is(long long id, enum alloc_state st)
{
    struct alloc *a = alloc_find(&nd, id);

    return a != NULL && a->state == st;
}

static int
want_running_20(void)
{
    return alloc_state_is(20, ALLOC_RUNNING) && update_of(20, "running");
}

/* Delta answers list changes only: what they leave out keeps running. */
static void
test_delta_keeps_unlisted(void)
{
    ev_timer t;

    add_alloc(20, "sleep 30\n");
    CHECK(run_until(want_running_20, 10));
    fk.full = 0;
    json_array_clear(fk.allocs);
    fake_publish();
    /* 0.3 s later it still runs. */
    ev_timer_init(&t, tick_cb, 0.3, 0.);
    ev_timer_start(loop, &t);
    while (ev_is_active(&t)) {
        ev_run(loop, EVRUN_ONCE);
    }
    CHECK(alloc_state_is(20, ALLOC_RUNNING));
    /* A full list that leaves it out stops it. */
    fk.full = 1;
    fake_publish();
    want_id = 20;
    want_status = "failed";
    CHECK(run_until(have_update, 10));
    CHECK_INT(json_integer_value(
                  json_object_get(update_of(20, "failed"), "exit_status")),
              271);
    CHECK(run_until(queue_empty, 10));
    publish_twice();
    CHECK(run_until(forgotten, 5));
}

static int
queue_empty(void)
{
    return nd.nupdates == 0 && !nd.posting;
}

/* Allocations 30..33 have all ended here (their last updates queued). */
static int
ended_30_33(void)
{
    for (long long id = 30; id <= 33; id++) {
        if (!alloc_state_is(id, ALLOC_DONE)) {
            return 0;
        }
    }
    return 1;
}

/* A batch refused as invalid is sent again one update at a time, and the
 * update refused alone is dropped; one rejected inside a 200 answer is
 * dropped at once. Neither blocks the others. */
static void
test_rejected_updates_dropped(void)
{
    int posts;

    fk.poison = 31;
    fk.reject = 33;
    for (long long id = 30; id <= 33; id++) {
        char *out = dv_xasprintf("%s/job%lld.out", tmpdir, id);

        set_job(id, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", "t",
                              "owner", owner, "script", "exit 0\n", "stdout",
                              out, "join", "oe", "shell", "/bin/sh"));
        json_array_append_new(fk.allocs, alloc_json(id, id));
        free(out);
    }
    fake_publish();
    want_id = 32;
    want_status = "complete";
    CHECK(run_until(have_update, 10));
    want_id = 30;
    CHECK(run_until(have_update, 10));
    /* every job ended, so that no update is still to come */
    CHECK(run_until(ended_30_33, 10));
    CHECK(run_until(queue_empty, 10));
    CHECK(update_of(31, "complete") == NULL);
    CHECK(update_of(33, "complete") == NULL);
    /* Nothing is retried afterwards. */
    posts = fk.posts;
    run_until(never, 0.3);
    CHECK_INT(fk.posts, posts);
    fk.poison = 0;
    fk.reject = 0;
    json_array_clear(fk.allocs);
    fake_publish();
}

static int
fenced(void)
{
    return nd.fenced && update_of(40, "failed") != NULL;
}

static int
unfenced(void)
{
    return !nd.fenced;
}

/* Heartbeats failing for a TTL (0.3 s here): every job is stopped, the
 * servers having requeued them elsewhere. */
static void
test_fencing(void)
{
    json_t *u;

    add_alloc(40, "sleep 30\n");
    want_id = 40;
    want_status = "running";
    CHECK(run_until(have_update, 10));
    fk.hb_fail = 1;
    CHECK(run_until(fenced, 5));
    u = update_of(40, "failed");
    if (u != NULL) {
        CHECK_INT(json_integer_value(json_object_get(u, "exit_status")), 271);
        CHECK(strstr(json_string_value(json_object_get(u, "message")),
                     "heartbeat") != NULL);
    }
    fk.hb_fail = 0;
    CHECK(run_until(unfenced, 5));
    json_array_clear(fk.allocs);
    fake_publish();
}

static json_t *
native_alloc(long long id, int instance, const char *gpus)
{
    json_t *a = alloc_json(id, id);

    json_object_set_new(a, "instance", json_integer(instance));
    json_object_set_new(a, "gpus", json_string(gpus));
    return a;
}

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char buf[4096];
    size_t n;

    if (f == NULL) {
        return NULL;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return dv_xstrdup(buf);
}

/* Every task of the group runs with its environment; a task that fails
 * is restarted per the group's policy; the allocation completes when all
 * exit 0. */
static void
test_native_tasks(void)
{
    char *path, *text;

    set_job(50,
            json_pack("{s:s, s:s, s:s, s:[{s:s, s:{s:i, s:s, s:s}, "
                      "s:[{s:s, s:s, s:[s, s], s:{s:s}}, {s:s, s:s, s:[s, "
                      "s]}]}]}",
                      "name", "nat", "type", "batch", "owner", owner, "groups",
                      "name", "g", "restart", "attempts", 1, "interval", "1h",
                      "delay", "0s", "tasks", "name", "a", "command", "/bin/sh",
                      "args", "-c",
                      "echo $DROVER_TASK $DROVER_GROUP $DROVER_ALLOC_INDEX "
                      "$NOMAD_ALLOC_INDEX $CUDA_VISIBLE_DEVICES $GREETING > "
                      "$NOMAD_ALLOC_DIR/a.env",
                      "env", "GREETING", "hello", "name", "b", "command", "sh",
                      "args", "-c",
                      "if [ -e $NOMAD_ALLOC_DIR/once ]; then echo again; "
                      "exit 0; fi; touch $NOMAD_ALLOC_DIR/once; exit 3"));
    json_array_append_new(fk.allocs, native_alloc(50, 2, "0-1"));
    fake_publish();
    want_id = 50;
    want_status = "complete";
    CHECK(run_until(have_update, 10));
    CHECK_INT(json_integer_value(
                  json_object_get(update_of(50, "complete"), "exit_status")),
              0);
    path = dv_xasprintf("%s/data/alloc/50/alloc/a.env", tmpdir);
    text = slurp(path);
    CHECK_STR(text, "a g 2 2 0,1 hello\n");
    free(text);
    free(path);
    /* b ran twice; its output was appended, not replaced. */
    path = dv_xasprintf("%s/data/alloc/50/b.stdout", tmpdir);
    text = slurp(path);
    CHECK_STR(text, "again\n");
    free(text);
    free(path);
    json_array_clear(fk.allocs);
    CHECK(run_until(queue_empty, 10));
    publish_twice();
    CHECK(run_until(forgotten, 5));
}

/* A task failing beyond its policy fails the allocation with its status
 * and stops the others. */
static void
test_native_fails_beyond_policy(void)
{
    json_t *u;

    set_job(51, json_pack("{s:s, s:s, s:s, s:[{s:s, s:{s:i, s:s}, "
                          "s:[{s:s, s:s, s:[s]}, {s:s, s:s, s:[s, s]}]}]}",
                          "name", "nat2", "type", "batch", "owner", owner,
                          "groups", "name", "g", "restart", "attempts", 1,
                          "delay", "0s", "tasks", "name", "sleeper", "command",
                          "/bin/sleep", "args", "30", "name", "bad", "command",
                          "/bin/sh", "args", "-c", "exit 5"));
    json_array_append_new(fk.allocs, native_alloc(51, 0, ""));
    fake_publish();
    want_id = 51;
    want_status = "failed";
    CHECK(run_until(have_update, 10));
    u = update_of(51, "failed");
    if (u != NULL) {
        CHECK_INT(json_integer_value(json_object_get(u, "exit_status")), 5);
        CHECK_STR(json_string_value(json_object_get(u, "message")),
                  "task bad failed: exit status 5");
    }
    json_array_clear(fk.allocs);
    fake_publish();
}

/* The group's walltime ends a native allocation like a PBS job's: -29. */
static void
test_native_walltime(void)
{
    json_t *a, *u;

    set_job(52, json_pack("{s:s, s:s, s:s, s:[{s:s, s:[{s:s, s:s, s:[s]}]}]}",
                          "name", "nat3", "type", "batch", "owner", owner,
                          "groups", "name", "g", "tasks", "name", "sleeper",
                          "command", "/bin/sleep", "args", "30"));
    a = native_alloc(52, 0, "");
    json_object_set_new(a, "walltime", json_integer(1));
    json_array_append_new(fk.allocs, a);
    fake_publish();
    want_id = 52;
    want_status = "failed";
    CHECK(run_until(have_update, 10));
    u = update_of(52, "failed");
    if (u != NULL) {
        CHECK_INT(json_integer_value(json_object_get(u, "exit_status")), -29);
        CHECK_STR(json_string_value(json_object_get(u, "message")),
                  "exceeded resource walltime");
    }
    json_array_clear(fk.allocs);
    fake_publish();
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
    fk.jobs = json_object();
    fk.updates = json_array();
    fk.full = 1;
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
    if (client_start(&nd, 0, &err) < 0) {
        fprintf(stderr, "client_start: %s\n", err.msg);
        return 1;
    }

    RUN(test_register_and_heartbeat);
    RUN(test_run_and_report);
    RUN(test_updates_survive_failures);
    RUN(test_reregister);
    RUN(test_answer_format);
    RUN(test_delta_keeps_unlisted);
    RUN(test_rejected_updates_dropped);
    RUN(test_fencing);
    RUN(test_native_tasks);
    RUN(test_native_fails_beyond_policy);
    RUN(test_native_walltime);
    RUN(test_shutdown);

    rc = unit_done();
    (void)never;
    noded_cleanup(&nd);
    dv_http_server_free(fk.srv);
    json_decref(fk.allocs);
    json_decref(fk.jobs);
    json_decref(fk.last_answer);
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
