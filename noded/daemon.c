/*
 * The daemon as a whole: initialisation and teardown of struct noded, the
 * SIGCHLD, SIGTERM/SIGINT and SIGHUP watchers, and the orderly stop (no
 * more polling, jobs signalled, their exits reported, then the loop ends).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "noded/noded.h"

/* How long a stopping daemon keeps trying to deliver its last updates
 * after its jobs ended (real seconds). */
#define NODED_FLUSH_LIMIT 30.0

double
backoff_next(struct backoff *b)
{
    b->cur = b->cur <= 0 ? 0.5 : b->cur * 2;
    if (b->cur > 10.0) {
        b->cur = 10.0;
    }
    return b->cur;
}

void
backoff_reset(struct backoff *b)
{
    b->cur = 0;
}

static void
sigchld_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    alloc_reap(w->data);
}

static void
sigterm_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct noded *nd = w->data;

    (void)loop;
    (void)revents;
    if (nd->state == NODED_STOPPING) {
        log_notice("received signal %d again: still stopping (%d jobs left, "
                   "%d updates queued)",
                   w->signum, alloc_active_count(nd), nd->nupdates);
        return;
    }
    log_notice("received signal %d: stopping jobs, reporting their exits, "
               "then exiting",
               w->signum);
    noded_shutdown(nd);
}

static void
sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct noded *nd = w->data;

    (void)loop;
    (void)revents;
    if (nd->reload_cb != NULL) {
        nd->reload_cb(nd);
    }
}

static void
shutdown_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct noded *nd = w->data;

    (void)revents;
    log_warn("giving up: %d jobs still running, %d allocation updates not "
             "delivered",
             alloc_active_count(nd), nd->nupdates);
    for (struct status_update *u = nd->updates; u != NULL; u = u->next) {
        log_warn("undelivered: allocation %lld %s exit_status %d", u->alloc_id,
                 u->client_status, u->has_exit ? u->exit_status : 0);
    }
    nd->exit_status = 1;
    ev_break(loop, EVBREAK_ALL);
}

void
noded_init(struct noded *nd, struct ev_loop *loop,
           const struct noded_config *cfg, struct topology *topo)
{
    char host[256];

    memset(nd, 0, sizeof(*nd));
    nd->loop = loop;
    nd->cfg = cfg;
    nd->topo = topo;
    nd->name = dv_xstrdup(cfg->name != NULL ? cfg->name : "localhost");
    nd->disk = cfg->disk;
    nd->state = NODED_RUNNING;
    if (gethostname(host, sizeof(host)) < 0) {
        host[0] = '\0';
    }
    host[sizeof(host) - 1] = '\0';
    nd->hostname = dv_xstrdup(host[0] != '\0' ? host : "localhost");
    client_init(nd);
    dsh_init(nd);
    ev_signal_init(&nd->sigchld_w, sigchld_cb, SIGCHLD);
    ev_signal_init(&nd->sigterm_w, sigterm_cb, SIGTERM);
    ev_signal_init(&nd->sigint_w, sigterm_cb, SIGINT);
    ev_signal_init(&nd->sighup_w, sighup_cb, SIGHUP);
    ev_timer_init(&nd->shutdown_w, shutdown_timeout_cb, 0., 0.);
    nd->sigchld_w.data = nd;
    nd->sigterm_w.data = nd;
    nd->sigint_w.data = nd;
    nd->sighup_w.data = nd;
    nd->shutdown_w.data = nd;
    if (cfg->simulate == 0) {
        ev_signal_start(loop, &nd->sigchld_w);
    }
}

void
noded_start_signals(struct noded *nd)
{
    ev_signal_start(nd->loop, &nd->sigterm_w);
    ev_signal_start(nd->loop, &nd->sigint_w);
    ev_signal_start(nd->loop, &nd->sighup_w);
}

void
noded_cleanup(struct noded *nd)
{
    ev_signal_stop(nd->loop, &nd->sigchld_w);
    ev_signal_stop(nd->loop, &nd->sigterm_w);
    ev_signal_stop(nd->loop, &nd->sigint_w);
    ev_signal_stop(nd->loop, &nd->sighup_w);
    ev_timer_stop(nd->loop, &nd->shutdown_w);
    client_cleanup(nd);
    dsh_cleanup(nd);
    alloc_free_all(nd);
    free(nd->hostname);
    free(nd->name);
    nd->hostname = NULL;
    nd->name = NULL;
}

void
noded_shutdown(struct noded *nd)
{
    if (nd->state == NODED_STOPPING) {
        return;
    }
    nd->state = NODED_STOPPING;
    client_stop_polling(nd);
    alloc_stop_all(nd, ALLOC_STOP_SHUTDOWN);
    /* The jobs get the grace period and a little more to die after
     * SIGKILL; then the updates get NODED_FLUSH_LIMIT to reach qmgr. */
    if (nd->sim == NULL) { /* a simulation bounds its nodes' stop */
        ev_timer_set(&nd->shutdown_w,
                     dv_clock_real_span(nd->cfg->kill_grace) + 5.0 +
                         NODED_FLUSH_LIMIT,
                     0.);
        ev_timer_start(nd->loop, &nd->shutdown_w);
    }
    noded_check_done(nd);
}

void
noded_check_done(struct noded *nd)
{
    if (nd->state != NODED_STOPPING || alloc_active_count(nd) > 0) {
        return;
    }
    if (nd->nupdates > 0 && nd->http != NULL) {
        return; /* still delivering */
    }
    if (nd->sim != NULL) {
        sim_node_done(nd);
        return;
    }
    log_notice("all jobs stopped and reported: exiting");
    ev_break(nd->loop, EVBREAK_ALL);
}

int64_t
noded_disk_space(const char *path)
{
    struct statvfs st;

    if (statvfs(path, &st) < 0) {
        return 0;
    }
    return (int64_t)st.f_bavail * (int64_t)st.f_frsize;
}

long
noded_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        return -1;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            log_warn("could not raise the open files limit to %llu: %s",
                     (unsigned long long)rl.rlim_max, strerror(errno));
            getrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    return rl.rlim_cur == RLIM_INFINITY ? 1L << 30 : (long)rl.rlim_cur;
}
