/* Unit tests: simulated nodes (noded/sim.c) against a fake qmgr serving
 * several nodes (names <name>-<i>, timer allocations ending after their
 * runtime, stops answered at once, 271 for a PBS script, heartbeats
 * spread, the orderly stop), and the pure pieces of native groups
 * (noded/native.c: the restart policy; noded/env.c: a task's
 * environment). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/http-server.h"
#include "lib/strutil.h"
#include "noded/noded.h"
#include "unit.h"

#define NNODES 3

static struct ev_loop *loop;

/* ---- the fake qmgr: NNODES nodes ---------------------------------------- */

struct fnode {
    char name[64];
    int heartbeats;
    long long index;
    json_t *allocs;
    struct dv_http_request *held;
};

static struct {
    struct dv_http_server *srv;
    struct fnode n[NNODES + 1]; /* by id 1..NNODES */
    json_t *jobs;
    json_t *updates;
    int registers;
} fk;

static void
answer(struct fnode *f, struct dv_http_request *req)
{
    dv_http_respond_json(req, 200,
                         json_pack("{s:I, s:b, s:O, s:O}", "index",
                                   (json_int_t)f->index, "full", 1,
                                   "allocations", f->allocs, "jobs", fk.jobs),
                         NULL, 0);
}

static void
abort_cb(struct dv_http_request *req, void *arg)
{
    struct fnode *f = arg;

    if (f->held == req) {
        f->held = NULL;
    }
}

static void
publish(int id)
{
    struct fnode *f = &fk.n[id];

    f->index++;
    if (f->held != NULL) {
        struct dv_http_request *r = f->held;

        f->held = NULL;
        answer(f, r);
    }
}

static int
path_id(const char *p)
{
    int64_t id = 0;
    char num[16];
    size_t len;

    if (!dv_str_has_prefix(p, "/v1/nodes/")) {
        return -1;
    }
    p += strlen("/v1/nodes/");
    len = strcspn(p, "/");
    if (len == 0 || len >= sizeof(num)) {
        return -1;
    }
    memcpy(num, p, len);
    num[len] = '\0';
    if (dv_parse_i64(num, 1, NNODES, &id) < 0) {
        return -1;
    }
    return (int)id;
}

static void
handler(struct dv_http_request *req, void *arg)
{
    const char *m = dv_http_request_method(req);
    const char *p = dv_http_request_path(req);
    size_t len;
    int id;

    (void)arg;
    if (strcmp(m, "POST") == 0 && strcmp(p, "/v1/nodes/register") == 0) {
        json_t *b = json_loads(dv_http_request_body(req, &len), 0, NULL);
        const char *name = json_string_value(json_object_get(b, "name"));
        const char *dash = name != NULL ? strrchr(name, '-') : NULL;
        int64_t i = 0;

        fk.registers++;
        if (dash == NULL || dv_parse_i64(dash + 1, 1, NNODES, &i) < 0) {
            json_decref(b);
            dv_http_respond_errorf(req, 400, "invalid_request", "bad name");
            return;
        }
        dv_strlcpy(fk.n[i].name, name, sizeof(fk.n[i].name));
        json_decref(b);
        dv_http_respond_json(req, 200,
                             json_pack("{s:I, s:f}", "node_id", (json_int_t)i,
                                       "heartbeat_ttl", 3.0),
                             NULL, 0);
        return;
    }
    id = path_id(p);
    if (id < 0) {
        dv_http_respond_errorf(req, 404, "not_found", "no such path");
        return;
    }
    if (strcmp(m, "PUT") == 0) {
        fk.n[id].heartbeats++;
        dv_http_respond_json(req, 200, json_pack("{s:f}", "heartbeat_ttl", 3.0),
                             NULL, 0);
    } else if (strcmp(m, "GET") == 0) {
        const char *i = dv_http_request_query(req, "index");
        int64_t idx = 0;

        dv_parse_i64(i != NULL ? i : "0", 0, INT64_MAX, &idx);
        if (fk.n[id].index > idx || fk.n[id].held != NULL) {
            answer(&fk.n[id], req);
            return;
        }
        fk.n[id].held = req;
        dv_http_request_set_abort_cb(req, abort_cb, &fk.n[id]);
    } else {
        json_t *b = json_loads(dv_http_request_body(req, &len), 0, NULL);
        size_t k;
        json_t *u;

        json_array_foreach (json_object_get(b, "updates"), k, u) {
            long long aid = json_integer_value(json_object_get(u, "id"));
            const char *cs =
                json_string_value(json_object_get(u, "client_status"));
            size_t x;
            json_t *a;

            json_object_set_new(u, "node", json_integer(id));
            json_array_append(fk.updates, u);
            json_array_foreach (fk.n[id].allocs, x, a) {
                if (json_integer_value(json_object_get(a, "id")) != aid) {
                    continue;
                }
                if (strcmp(cs, "running") == 0) {
                    json_object_set_new(a, "client_status",
                                        json_string("running"));
                } else {
                    json_array_remove(fk.n[id].allocs, x);
                }
                break;
            }
        }
        json_decref(b);
        dv_http_respond_json(
            req, 200, json_pack("{s:i, s:[]}", "index", 1, "errors"), NULL, 0);
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
all_polling(void)
{
    for (int i = 1; i <= NNODES; i++) {
        if (fk.n[i].held == NULL) {
            return 0;
        }
    }
    return 1;
}

static void
add(int node, long long id, long long job, int chunk, const char *desired)
{
    json_array_append_new(fk.n[node].allocs,
                          json_pack("{s:I, s:I, s:i, s:s, s:s, s:I}", "id",
                                    (json_int_t)id, "job_id", (json_int_t)job,
                                    "chunk_index", chunk, "desired_status",
                                    desired, "client_status", "pending",
                                    "walltime", (json_int_t)0));
}

static void
set_desired(int node, long long id, const char *desired)
{
    size_t i;
    json_t *a;

    json_array_foreach (fk.n[node].allocs, i, a) {
        if (json_integer_value(json_object_get(a, "id")) == id) {
            json_object_set_new(a, "desired_status", json_string(desired));
        }
    }
}

static long long want_id;
static const char *want_status;

static int
have_update(void)
{
    return update_of(want_id, want_status) != NULL;
}

/* ---- tests -------------------------------------------------------------- */

static void
test_runtime(void)
{
    json_t *s;
    int over;

    s = json_pack("{s:{s:s}}", "meta", "drover.sim_runtime", "1m30s");
    CHECK(sim_runtime(s, 0, &over) == 90 && !over);
    CHECK(sim_runtime(s, 60, &over) == 60 && over);
    json_decref(s);
    s = json_pack("{s:{s:i}}", "meta", "drover.sim_runtime", 5);
    CHECK(sim_runtime(s, 600, &over) == 5 && !over);
    json_decref(s);
    s = json_pack("{s:[s, s]}", "env", "A=1", "DROVER_SIM_RUNTIME=3");
    CHECK(sim_runtime(s, 0, &over) == 3);
    json_decref(s);
    /* Nothing (or nonsense) said: the walltime, else until stopped. */
    s = json_pack("{s:{s:s}}", "meta", "drover.sim_runtime", "soon");
    CHECK(sim_runtime(s, 7, &over) == 7 && !over);
    CHECK(sim_runtime(s, 0, &over) == -1);
    json_decref(s);
    /* An explicit 0 is "at once", not "until stopped". */
    s = json_pack("{s:[s]}", "env", "DROVER_SIM_RUNTIME=0");
    CHECK(sim_runtime(s, 0, &over) == 0 && !over);
    CHECK(sim_runtime(s, 60, &over) == 0 && !over);
    json_decref(s);
}

static void
test_restart_policy(void)
{
    struct dv_restart p = {
        .attempts = 2, .interval = 60, .delay = 5, .mode = DV_RESTART_FAIL};
    struct restart_state st = {0};
    double d = -1;

    CHECK_INT(native_restart_decide(&p, &st, 1000, &d), 1);
    CHECK(d == 5);
    CHECK_INT(native_restart_decide(&p, &st, 1010, &d), 1);
    CHECK_INT(native_restart_decide(&p, &st, 1020, &d), 0);
    /* A new interval starts afresh. */
    CHECK_INT(native_restart_decide(&p, &st, 1070, &d), 1);
    /* No attempts: the first failure fails. */
    p.attempts = 0;
    memset(&st, 0, sizeof(st));
    CHECK_INT(native_restart_decide(&p, &st, 1000, &d), 0);
    /* Mode delay: used up, wait for the interval's end. */
    p.attempts = 1;
    p.mode = DV_RESTART_DELAY;
    memset(&st, 0, sizeof(st));
    CHECK_INT(native_restart_decide(&p, &st, 1000, &d), 1);
    CHECK(d == 5);
    CHECK_INT(native_restart_decide(&p, &st, 1010, &d), 1);
    CHECK(d == 50);
    /* That restart (at 1060) began a new interval and used its attempt:
     * the next failure waits for that interval's end. */
    CHECK_INT(native_restart_decide(&p, &st, 1061, &d), 1);
    CHECK(d == 59);
}

static void
test_task_env(void)
{
    struct dv_kv env[] = {{(char *)"PATH", (char *)"/opt/bin:/bin"},
                          {(char *)"DROVER_TASK", (char *)"spoofed"}};
    struct dv_task t = {.name = (char *)"web", .env = env, .nenv = 2};
    struct env_user u = {.name = (char *)"alice",
                         .home = (char *)"/home/alice",
                         .shell = (char *)"/bin/sh"};
    struct env_task_info in = {.task = &t,
                               .user = &u,
                               .job_name = "site",
                               .job_id = 12,
                               .job_id_str = "12.srv",
                               .alloc_id = 77,
                               .instance = 3,
                               .group = "frontend",
                               .cpuset = "4-5",
                               .gpus = "0,2-3",
                               .ncpus = 2,
                               .mem = 512LL << 20,
                               .alloc_dir = "/d/alloc/77",
                               .node_name = "n1"};
    char **e = env_build_task(&in);

    CHECK_STR(env_get(e, "PATH"), "/opt/bin:/bin");
    CHECK_STR(env_get(e, "DROVER_TASK"), "web");
    CHECK_STR(env_get(e, "DROVER_GROUP"), "frontend");
    CHECK_STR(env_get(e, "DROVER_JOB_ID"), "12");
    CHECK_STR(env_get(e, "DROVER_ALLOC_ID"), "77");
    CHECK_STR(env_get(e, "DROVER_ALLOC_INDEX"), "3");
    CHECK_STR(env_get(e, "DROVER_CPUSET"), "4-5");
    CHECK_STR(env_get(e, "NOMAD_ALLOC_INDEX"), "3");
    CHECK_STR(env_get(e, "NOMAD_ALLOC_DIR"), "/d/alloc/77/alloc");
    CHECK_STR(env_get(e, "NOMAD_TASK_NAME"), "web");
    CHECK_STR(env_get(e, "NOMAD_MEMORY_LIMIT"), "512");
    CHECK_STR(env_get(e, "CUDA_VISIBLE_DEVICES"), "0,2,3");
    CHECK_STR(env_get(e, "TMPDIR"), "/d/alloc/77/tmp");
    CHECK_STR(env_get(e, "HOME"), "/home/alice");
    CHECK_STR(env_get(e, "USER"), "alice");
    env_free(e);
    in.gpus = "";
    e = env_build_task(&in);
    CHECK(env_get(e, "CUDA_VISIBLE_DEVICES") == NULL);
    env_free(e);
}

static struct sim *the_sim;

static void
test_simulation(void)
{
    struct sim *s = the_sim;
    double t0;

    CHECK(run_until(all_polling, 10));
    CHECK_STR(fk.n[1].name, "simu-1");
    CHECK_STR(fk.n[3].name, "simu-3");
    CHECK_INT(fk.registers, NNODES);
    /* A native job: runs its meta's runtime (0.4 s), then completes. */
    json_object_set_new(fk.jobs, "7",
                        json_pack("{s:s, s:{s:s}, s:[{s:s}]}", "name", "n",
                                  "meta", "drover.sim_runtime", "1", "groups",
                                  "name", "g"));
    add(2, 100, 7, 0, "run");
    add(3, 101, 7, 0, "run");
    publish(2);
    publish(3);
    t0 = mono();
    want_id = 100;
    want_status = "complete";
    CHECK(run_until(have_update, 5));
    want_id = 101;
    CHECK(run_until(have_update, 5));
    /* DROVER_TIME_SCALE=2.5: 1 Drover second is 0.4 s; 0.25 s batching. */
    CHECK(mono() - t0 >= 0.35 && mono() - t0 < 2.0);
    CHECK(update_of(100, "running") != NULL);
    CHECK_INT(json_integer_value(
                  json_object_get(update_of(100, "complete"), "exit_status")),
              0);
    /* A runtime of 0 ends at the wheel's next tick (benchmarks of trivial
     * jobs), not "until stopped". */
    json_object_set_new(fk.jobs, "9",
                        json_pack("{s:s, s:[s], s:[s]}", "name", "z", "argv",
                                  "true", "env", "DROVER_SIM_RUNTIME=0"));
    add(1, 150, 9, 0, "run");
    publish(1);
    want_id = 150;
    want_status = "complete";
    CHECK(run_until(have_update, 5));
    CHECK_INT(json_integer_value(
                  json_object_get(update_of(150, "complete"), "exit_status")),
              0);
    /* A PBS job without a walltime runs until deleted: 271 for its
     * script, complete for its other chunk. */
    json_object_set_new(fk.jobs, "8",
                        json_pack("{s:s, s:[s]}", "name", "p", "argv", "true"));
    add(1, 200, 8, 0, "run");
    add(2, 201, 8, 1, "run");
    publish(1);
    publish(2);
    want_id = 201;
    want_status = "running";
    CHECK(run_until(have_update, 5));
    set_desired(1, 200, "stop");
    set_desired(2, 201, "stop");
    publish(1);
    publish(2);
    want_id = 200;
    want_status = "failed";
    CHECK(run_until(have_update, 5));
    CHECK_INT(json_integer_value(
                  json_object_get(update_of(200, "failed"), "exit_status")),
              271);
    want_id = 201;
    want_status = "complete";
    CHECK(run_until(have_update, 5));
    /* Listed running but unknown (a restarted simulation): lost. */
    json_array_append_new(fk.n[3].allocs,
                          json_pack("{s:i, s:i, s:s, s:s}", "id", 300, "job_id",
                                    8, "desired_status", "run", "client_status",
                                    "running"));
    publish(3);
    want_id = 300;
    want_status = "lost";
    CHECK(run_until(have_update, 5));
    /* Heartbeats flow (TTL 3 s at scale 2.5: every 0.4 s, phases
     * spread). */
    CHECK(fk.n[1].heartbeats + fk.n[2].heartbeats + fk.n[3].heartbeats > 0);
    /* An allocation still running when the simulation stops ends with
     * it. */
    add(1, 400, 8, 0, "run");
    publish(1);
    want_id = 400;
    want_status = "running";
    CHECK(run_until(have_update, 5));
    raise(SIGTERM);
    {
        ev_timer guard;

        ev_timer_init(&guard, tick_cb, 10., 0.);
        ev_timer_start(loop, &guard);
        ev_run(loop, 0);
        CHECK(ev_is_active(&guard));
        ev_timer_stop(loop, &guard);
    }
    CHECK(update_of(400, "failed") != NULL);
    CHECK_INT(sim_exit_status(s), 0);
}

int
main(void)
{
    struct dv_http_server_config sc;
    struct noded_config cfg;
    struct dv_err err;
    struct sim *s;
    char server[64];

    setenv("DROVER_TIME_SCALE", "2.5", 1);
    signal(SIGPIPE, SIG_IGN);
    RUN(test_runtime);
    RUN(test_restart_policy);
    RUN(test_task_env);

    loop = ev_loop_new(EVFLAG_AUTO);
    memset(&sc, 0, sizeof(sc));
    sc.listen = "127.0.0.1:0";
    fk.srv = dv_http_server_new(loop, &sc, handler, NULL, &err);
    if (fk.srv == NULL) {
        fprintf(stderr, "fake qmgr: %s\n", err.msg);
        return 1;
    }
    fk.jobs = json_object();
    fk.updates = json_array();
    for (int i = 1; i <= NNODES; i++) {
        fk.n[i].allocs = json_array();
    }
    snprintf(server, sizeof(server), "http://127.0.0.1:%d",
             dv_http_server_port(fk.srv));
    memset(&cfg, 0, sizeof(cfg));
    cfg.server = server;
    cfg.name = (char *)"simu";
    cfg.datacenter = (char *)"dc1";
    cfg.pool = (char *)"default";
    cfg.data_dir = (char *)"/nonexistent";
    cfg.kill_grace = 1;
    cfg.simulate = NNODES;
    cfg.simulate_topology = (char *)"pack:1 numa:2 core:2 pu:1";
    cfg.simulate_running = 1;
    s = sim_new(loop, &cfg, &err);
    if (s == NULL || sim_start(s, &err) < 0) {
        fprintf(stderr, "simulation: %s\n", err.msg);
        return 1;
    }
    the_sim = s;
    RUN(test_simulation);
    sim_free(s);
    dv_http_server_free(fk.srv);
    json_decref(fk.jobs);
    json_decref(fk.updates);
    for (int i = 1; i <= NNODES; i++) {
        json_decref(fk.n[i].allocs);
    }
    ev_loop_destroy(loop);
    return unit_done();
}
