/* Unit tests: noded under DROVER_TIME_SCALE (walltime and kill grace are
 * Drover seconds; timers run dv_clock_real_span of them). */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/strutil.h"
#include "noded/noded.h"
#include "unit.h"

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

static void
test_walltime_scaled(void)
{
    struct passwd *pw = getpwuid(geteuid());
    char tmpdir[] = "/tmp/drover-noded-scale.XXXXXX";
    struct noded_config cfg;
    struct topology *topo;
    struct ev_loop *loop;
    struct noded nd;
    struct dv_err err;
    struct poll_answer ans;
    struct status_update *final = NULL;
    ev_timer tick;
    double t0, elapsed;
    char *body, *data;
    json_t *j;

    CHECK(dv_clock_scale() == 20.0);
    CHECK(mkdtemp(tmpdir) != NULL && pw != NULL);
    data = dv_xasprintf("%s/data", tmpdir);
    memset(&cfg, 0, sizeof(cfg));
    cfg.data_dir = data;
    cfg.name = (char *)"node1";
    cfg.allow_root = 1;
    cfg.kill_grace = 10; /* Drover seconds: 0.5 s real */
    topo = topology_load(NULL, "pack:1 core:1 pu:1", 0, &err);
    loop = ev_loop_new(EVFLAG_AUTO);
    CHECK(topo != NULL && loop != NULL && allocdir_init(data, &err) == 0);
    noded_init(&nd, loop, &cfg, topo);

    /* 40 Drover seconds of walltime are 2 s of real time; the job ignores
     * SIGTERM, so SIGKILL follows 0.5 s later. */
    j = json_pack("{s:I, s:[{s:i, s:I, s:s, s:s, s:s, s:s, s:i}], "
                  "s:{s:{s:s, s:s, s:s, s:s, s:s}}}",
                  "index", (json_int_t)1, "allocations", "id", 1, "job_id",
                  (json_int_t)1, "job_id_str", "1.srv", "desired_status", "run",
                  "client_status", "pending", "cpuset", "0", "walltime", 40,
                  "jobs", "1", "owner", pw->pw_name, "script",
                  "trap '' TERM\nsleep 30\n", "stdout", "/dev/null", "join",
                  "oe", "shell", "/bin/sh");
    body = json_dumps(j, JSON_COMPACT);
    CHECK_INT(client_decode_allocations(body, &ans, &err), 0);
    t0 = mono();
    alloc_reconcile(&nd, &ans, 1);
    poll_answer_cleanup(&ans);
    free(body);
    json_decref(j);

    ev_timer_init(&tick, tick_cb, 0.02, 0.02);
    ev_timer_start(loop, &tick);
    while (mono() - t0 < 10) {
        for (struct status_update *u = nd.updates; u != NULL; u = u->next) {
            if (strcmp(u->client_status, "running") != 0) {
                final = u;
            }
        }
        if (final != NULL) {
            break;
        }
        ev_run(loop, EVRUN_ONCE);
    }
    ev_timer_stop(loop, &tick);
    elapsed = mono() - t0;
    CHECK(final != NULL);
    if (final != NULL) {
        CHECK_INT(final->exit_status, -29);
        /* 40 + 10 Drover seconds, reported in Drover seconds. */
        CHECK(final->walltime >= 45 && final->walltime <= 60);
    }
    CHECK(elapsed >= 2.4 && elapsed < 4.0);

    noded_cleanup(&nd);
    ev_loop_destroy(loop);
    topology_free(topo);
    CHECK_INT(allocdir_remove(tmpdir, &err), 0);
    free(data);
}

int
main(void)
{
    /* Before anything reads the clock. */
    setenv("DROVER_TIME_SCALE", "20", 1);
    RUN(test_walltime_scaled);
    return unit_done();
}
