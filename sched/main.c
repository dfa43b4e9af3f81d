/*
 * drover-sched: starts the worker threads and, on the main thread, a libev
 * loop that listens for NOTIFY evals/capacity, reaps expired leases, wakes
 * blocked evaluations when capacity frees, and handles signals.
 */
#include <ev.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/config.h"
#include "lib/http-server.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "sched/sched.h"

#define OPT(n, t, d, lo, hi, r, f, h)                                          \
    {n, t, d, lo, hi, r, offsetof(struct sched_config, f), h}

static const struct dv_conf_opt sched_opts[] = {
    OPT("database", DV_CONF_STRING, "dbname=drover", 0, 0, 0, database,
        "libpq conninfo (several hosts allowed)"),
    OPT("workers", DV_CONF_INT, "1", 1, 64, 0, workers,
        "scheduler worker threads"),
    OPT("name", DV_CONF_STRING, NULL, 0, 0, 0, name,
        "lease owner name (default host:pid)"),
    OPT("lease", DV_CONF_DURATION, "30s", 1000, 3600000, 0, lease,
        "how long an evaluation stays leased"),
    OPT("batch", DV_CONF_INT, "16", 1, 10000, 0, batch,
        "evaluations leased at once"),
    OPT("poll-interval", DV_CONF_DURATION, "5s", 100, 600000, 0,
        poll_interval, "fallback re-check when no notification arrives"),
    OPT("max-attempts", DV_CONF_INT, "3", 1, 100, 0, max_attempts,
        "plans tried per evaluation before giving it back"),
    OPT("sample", DV_CONF_INT, "0", 0, 100000, 0, sample,
        "nodes scored per placement on big clusters (0: max(2, log2 n))"),
    OPT("sample-threshold", DV_CONF_INT, "64", 0, 10000000, 0,
        sample_threshold,
        "feasible sets up to this size are scored whole"),
    OPT("full-refresh", DV_CONF_DURATION, "10s", 100, 3600000, 0,
        full_refresh, "re-read every node at least this often"),
    OPT("metrics-listen", DV_CONF_STRING, NULL, 0, 0, 0, metrics_listen,
        "serve GET /metrics here (HOST:PORT), off when unset"),
    OPT("stats-interval", DV_CONF_DURATION, "10s", 100, 3600000, 1,
        stats_interval, "log a metrics summary this often"),
    OPT("log-level", DV_CONF_STRING, "info", 0, 0, 1, log_level,
        "debug, info, notice, warn, error"),
    OPT("log-file", DV_CONF_STRING, NULL, 0, 0, 0, log_file,
        "append logs here instead of stderr"),
    OPT("backfill-depth", DV_CONF_INT, "1", 0, 1000, 0, backfill_depth,
        "waiting jobs that get reservations (PBS backfill_depth; 0: none)"),
    OPT("backfill", DV_CONF_BOOL, "true", 0, 0, 0, backfill,
        "lower-ranked jobs may start around reservations (false: strict "
        "order)"),
};
#define NOPTS (sizeof(sched_opts) / sizeof(sched_opts[0]))

struct sched_main {
    struct ev_loop *loop;
    struct sched_shared *shared;
    struct dv_db *listen_db;
    int listening;
    ev_io notify_io;
    ev_timer tick;
    ev_timer stats;
    struct dv_http_server *metrics;
    ev_signal sigterm;
    ev_signal sigint;
    ev_signal sighup;
    struct sched_config *cfg;
    int argc;
    char **argv;
    const char *config_path;
};

static void
notify_cb(const char *channel, const char *payload, void *arg)
{
    struct sched_main *m = arg;
    struct dv_err err;

    (void)payload;
    if (strcmp(channel, "capacity") == 0) {
        int n = db_unblock(m->listen_db, !m->shared->cfg->backfill,
                           (int)m->shared->cfg->backfill_depth, &err);
        if (n < 0) {
            log_warn("could not wake blocked evaluations: %s", err.msg);
        } else if (n > 0) {
            log_debug("capacity freed: %d blocked evaluations pending again",
                      n);
        }
    }
    shared_wake(m->shared);
}

static void
listen_stop(struct sched_main *m)
{
    if (m->listening) {
        ev_io_stop(m->loop, &m->notify_io);
        m->listening = 0;
    }
}

/* (Re)connects the LISTEN connection; returns 0 when listening. */
static int
listen_start(struct sched_main *m)
{
    struct dv_err err;

    if (m->listening) {
        return 0;
    }
    if (dv_db_listen(m->listen_db, "evals", &err) < 0 ||
        dv_db_listen(m->listen_db, "capacity", &err) < 0) {
        log_warn("could not listen for notifications: %s", err.msg);
        return -1;
    }
    ev_io_init(&m->notify_io, NULL, dv_db_socket(m->listen_db), EV_READ);
    m->notify_io.data = m;
    m->listening = 1;
    return 0;
}

static void notify_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void listen_check(struct sched_main *m);

static void
listen_arm(struct sched_main *m)
{
    if (listen_start(m) == 0 && !ev_is_active(&m->notify_io)) {
        ev_set_cb(&m->notify_io, notify_io_cb);
        ev_io_start(m->loop, &m->notify_io);
    }
}

static void
notify_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sched_main *m = w->data;
    struct dv_err err;

    (void)loop;
    (void)revents;
    if (dv_db_consume_notifies(m->listen_db, notify_cb, m, &err) < 0) {
        log_warn("notification connection lost: %s; re-checking on the "
                 "next tick",
                 err.msg);
        listen_stop(m);
        return;
    }
    listen_check(m);
}

/* A statement on the LISTEN connection may have reconnected it: watch the
 * new socket (the database layer listens again on its own). */
static void
listen_check(struct sched_main *m)
{
    if (m->listening && dv_db_socket(m->listen_db) != m->notify_io.fd) {
        listen_stop(m);
        shared_wake(m->shared);
    }
    if (!m->listening) {
        listen_arm(m);
    }
}

static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sched_main *m = w->data;
    struct dv_err err;
    int n;

    (void)loop;
    (void)revents;
    listen_check(m);
    n = db_reap_leases(m->listen_db, dv_now(), &err);
    if (n < 0) {
        log_warn("could not reap expired leases: %s", err.msg);
    } else if (n > 0) {
        log_notice("%d expired evaluation leases returned to pending", n);
    }
    if (db_unblock(m->listen_db, !m->shared->cfg->backfill,
                           (int)m->shared->cfg->backfill_depth, &err) < 0) {
        log_warn("could not wake blocked evaluations: %s", err.msg);
    }
    if (db_expire_reservations(m->listen_db, dv_now(), &err) < 0) {
        log_warn("could not expire reservations: %s", err.msg);
    }
    listen_check(m);
    /* Notifications that arrived during those statements. */
    if (m->listening &&
        dv_db_consume_notifies(m->listen_db, notify_cb, m, &err) < 0) {
        listen_stop(m);
    }
    shared_wake(m->shared);
}

static void
stats_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sched_main *m = w->data;
    const struct sched_metrics *mt = &m->shared->metrics;
    uint64_t commits = atomic_load(&mt->commit_seconds.count);

    (void)loop;
    (void)revents;
    log_info("evaluations %llu, placements %llu in %llu plans, conflicts "
             "%llu, retries %llu, blocked %llu, preemptions %llu, errors "
             "%llu, mean commit %.1f ms",
             (unsigned long long)atomic_load(&mt->evals),
             (unsigned long long)atomic_load(&mt->placements),
             (unsigned long long)atomic_load(&mt->plans),
             (unsigned long long)atomic_load(&mt->conflicts),
             (unsigned long long)atomic_load(&mt->retries),
             (unsigned long long)atomic_load(&mt->blocked),
             (unsigned long long)atomic_load(&mt->preemptions),
             (unsigned long long)atomic_load(&mt->errors),
             commits > 0 ? (double)atomic_load(&mt->commit_seconds.sum_micro) /
                               1e3 / (double)commits
                         : 0.0);
}

static void
metrics_request_cb(struct dv_http_request *req, void *arg)
{
    struct sched_main *m = arg;
    struct dv_buf out;

    if (strcmp(dv_http_request_path(req), "/metrics") != 0) {
        dv_http_respond_errorf(req, 404, "not_found", "no such path");
        return;
    }
    if (strcmp(dv_http_request_method(req), "GET") != 0) {
        dv_http_respond_errorf(req, 405, "method_not_allowed",
                               "use GET /metrics");
        return;
    }
    dv_buf_init(&out);
    metrics_format(&m->shared->metrics, m->cfg->name, &out);
    dv_http_respond(req, 200, "text/plain; version=0.0.4", dv_buf_str(&out),
                    out.len, NULL, 0);
    dv_buf_cleanup(&out);
}

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct sched_main *m = w->data;
    struct dv_err err;

    (void)revents;
    if (w->signum == SIGHUP) {
        enum dv_log_level level;
        if (dv_conf_reload(sched_opts, NOPTS, m->cfg, m->config_path, m->argc,
                           m->argv, &err) < 0) {
            log_error("configuration not reloaded: %s", err.msg);
            return;
        }
        if (dv_log_level_parse(m->cfg->log_level, &level) == 0) {
            dv_log_setup(NULL, level, m->cfg->log_file);
        }
        log_notice("configuration reloaded");
        return;
    }
    log_notice("received signal %d: stopping", w->signum);
    pthread_mutex_lock(&m->shared->lock);
    m->shared->stopping = 1;
    pthread_cond_broadcast(&m->shared->wake);
    pthread_mutex_unlock(&m->shared->lock);
    ev_break(loop, EVBREAK_ALL);
}

static void
usage(FILE *f)
{
    struct dv_buf b;

    dv_buf_init(&b);
    dv_conf_usage(sched_opts, NOPTS, &b);
    fprintf(f, "usage: drover-sched [options]\n%s", dv_buf_str(&b));
    dv_buf_cleanup(&b);
}

int
main(int argc, char **argv)
{
    struct sched_config cfg;
    struct dv_conf_args args;
    struct sched_shared shared;
    struct sched_main m;
    struct sched_worker *workers = NULL;
    enum dv_log_level level;
    struct dv_err err;
    char host[256];
    int rc = 1;

    memset(&cfg, 0, sizeof(cfg));
    memset(&m, 0, sizeof(m));
    if (dv_conf_load(sched_opts, NOPTS, &cfg, argc, argv, &args, &err) < 0) {
        fprintf(stderr, "drover-sched: %s\n", err.msg);
        usage(stderr);
        dv_conf_cleanup(sched_opts, NOPTS, &cfg);
        return 2;
    }
    if (args.help) {
        usage(stdout);
        rc = 0;
        goto out_args;
    }
    if (args.nargs > 0) {
        fprintf(stderr, "drover-sched: unexpected argument \"%s\"\n",
                args.args[0]);
        rc = 2;
        goto out_args;
    }
    if (dv_log_level_parse(cfg.log_level, &level) < 0) {
        fprintf(stderr, "drover-sched: invalid log level \"%s\"\n",
                cfg.log_level);
        rc = 2;
        goto out_args;
    }
    if (args.print_config) {
        struct dv_buf b;
        dv_buf_init(&b);
        dv_conf_format(sched_opts, NOPTS, &cfg, &b);
        fputs(dv_buf_str(&b), stdout);
        dv_buf_cleanup(&b);
    }
    if (args.check_config || args.print_config) {
        rc = 0;
        goto out_args;
    }
    if (cfg.name == NULL) {
        if (gethostname(host, sizeof(host)) < 0) {
            snprintf(host, sizeof(host), "sched");
        }
        host[sizeof(host) - 1] = '\0';
        cfg.name = dv_xasprintf("%s:%ld", host, (long)getpid());
    }
    if (dv_log_setup("drover-sched", level, cfg.log_file) < 0) {
        fprintf(stderr, "drover-sched: could not open log file %s\n",
                cfg.log_file);
    }
    signal(SIGPIPE, SIG_IGN);

    memset(&shared, 0, sizeof(shared));
    shared.cfg = &cfg;
    snapshot_init(&shared.snap);
    pthread_mutex_init(&shared.lock, NULL);
    pthread_cond_init(&shared.wake, NULL);

    m.loop = ev_default_loop(0);
    m.shared = &shared;
    m.cfg = &cfg;
    m.argc = argc;
    m.argv = argv;
    m.config_path = args.config_path;
    m.listen_db = dv_db_new(cfg.database, "drover-sched-listen");
    listen_arm(&m);

    /* Load the snapshot before serving: the first evaluations should not
     * pay for reading every node. */
    {
        struct dv_db *db = dv_db_new(cfg.database, "drover-sched-init");
        if (snapshot_refresh(&shared.snap, db, 1, &err) < 0) {
            log_warn("could not read the nodes yet: %s", err.msg);
        } else {
            log_info("snapshot loaded: %d nodes", shared.snap.n);
        }
        dv_db_free(db);
    }
    workers = dv_xcalloc((size_t)cfg.workers, sizeof(*workers));
    for (int i = 0; i < cfg.workers; i++) {
        workers[i].shared = &shared;
        workers[i].index = i;
        snprintf(workers[i].owner, sizeof(workers[i].owner), "%s/%d",
                 cfg.name, i);
        workers[i].planner.sample = cfg.sample;
        workers[i].planner.sample_threshold = cfg.sample_threshold;
        workers[i].planner.seed =
            (unsigned int)(dv_now() * 1000.0) ^ (unsigned int)(getpid() * 31 + i);
        if (pthread_create(&workers[i].thread, NULL, worker_main,
                           &workers[i]) != 0) {
            fatal("could not start worker thread %d", i);
        }
    }
    log_notice("scheduler %s started with %lld worker%s", cfg.name,
               (long long)cfg.workers, cfg.workers == 1 ? "" : "s");

    ev_timer_init(&m.tick, tick_cb, 0.0, dv_clock_real_span(cfg.poll_interval));
    m.tick.data = &m;
    ev_timer_start(m.loop, &m.tick);
    if (cfg.metrics_listen != NULL) {
        struct dv_http_server_config hc = {.listen = cfg.metrics_listen};
        m.metrics = dv_http_server_new(m.loop, &hc, metrics_request_cb, &m,
                                       &err);
        if (m.metrics == NULL) {
            fatal("could not serve metrics on %s: %s", cfg.metrics_listen,
                  err.msg);
        }
    }
    ev_timer_init(&m.stats, stats_cb, dv_clock_real_span(cfg.stats_interval),
                  dv_clock_real_span(cfg.stats_interval));
    m.stats.data = &m;
    ev_timer_start(m.loop, &m.stats);
    ev_signal_init(&m.sigterm, signal_cb, SIGTERM);
    ev_signal_init(&m.sigint, signal_cb, SIGINT);
    ev_signal_init(&m.sighup, signal_cb, SIGHUP);
    m.sigterm.data = m.sigint.data = m.sighup.data = &m;
    ev_signal_start(m.loop, &m.sigterm);
    ev_signal_start(m.loop, &m.sigint);
    ev_signal_start(m.loop, &m.sighup);

    ev_run(m.loop, 0);

    for (int i = 0; i < cfg.workers; i++) {
        pthread_join(workers[i].thread, NULL);
    }
    listen_stop(&m);
    ev_timer_stop(m.loop, &m.tick);
    ev_timer_stop(m.loop, &m.stats);
    ev_signal_stop(m.loop, &m.sigterm);
    ev_signal_stop(m.loop, &m.sigint);
    ev_signal_stop(m.loop, &m.sighup);
    dv_http_server_free(m.metrics);
    ev_loop_destroy(m.loop);
    dv_db_free(m.listen_db);
    snapshot_cleanup(&shared.snap);
    free(workers);
    pthread_cond_destroy(&shared.wake);
    pthread_mutex_destroy(&shared.lock);
    log_notice("scheduler %s stopped", cfg.name);
    rc = 0;
out_args:
    dv_conf_args_cleanup(&args);
    dv_conf_cleanup(sched_opts, NOPTS, &cfg);
    return rc;
}
