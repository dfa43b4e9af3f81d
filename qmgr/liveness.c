/*
 * The node-liveness duty: every --liveness-interval a pass runs on a worker,
 * in one transaction under a PostgreSQL advisory lock so that one qmgr of
 * many does it. Nodes whose heartbeat deadline passed are marked down,
 * their active allocations lost, their capacity reset, and their jobs
 * requeued or finished (db_liveness). One pass at a time. Each pass also
 * counts the ready nodes, from which the heartbeat TTL is scaled.
 *
 * After this process could not reach the database, and on its first pass,
 * the deadlines of ready nodes are first pushed out by one TTL: their
 * heartbeats may have failed for the same reason, and a qmgr restart must
 * not mark every node down.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "qmgr/qmgr.h"

struct liveness {
    struct pool_work work; /* first */
    struct qmgr *q;
    ev_timer timer;
    int busy;
    int stopped;
    int grace;   /* extend deadlines before the next down pass */
    int failing; /* the last pass failed (logged once) */
    int ok;
    struct dv_err err;
};

static void
liveness_run(struct pool_work *w, struct dv_db *db)
{
    struct liveness *l = (struct liveness *)w;
    const char *server;
    struct db_liveness res = {0};

    dv_err_clear(&l->err);
    l->ok = 0;
    res.now = dv_now();
    res.grace = l->grace;
    if (server_name_ensure(l->q, db, &l->err) < 0 ||
        db_liveness(db, &res, &l->err) < 0) {
        db_liveness_clear(&res);
        return;
    }
    l->ok = 1;
    /* For the heartbeat TTL (api_nodes_ttl). */
    __atomic_store_n(&l->q->ready_nodes, res.ready_nodes, __ATOMIC_RELAXED);
    if (res.got_lock && res.grace) {
        log_info("node liveness duty: heartbeat deadlines of %d ready nodes "
                 "extended by one TTL",
                 res.extended);
    }
    if (res.got_lock) {
        l->grace = 0;
    }
    server = server_name(l->q);
    for (int i = 0; i < res.ndown; i++) {
        log_notice("node %s (id %lld) missed its heartbeat: marked down, %d "
                   "allocation%s lost",
                   res.down[i].name, (long long)res.down[i].id,
                   res.down[i].lost, res.down[i].lost == 1 ? "" : "s");
    }
    for (int i = 0; i < res.nevents; i++) {
        char jid[300];

        dv_job_id_format((long long)res.events[i].job_id, server, jid,
                         sizeof(jid));
        if (strcmp(res.events[i].state, "queued") == 0) {
            log_notice("job %s requeued: its node was lost", jid);
        } else {
            log_notice("job %s finished: its node was lost (exit status %d)",
                       jid, res.events[i].exit_status);
        }
    }
    site_mail(l->q, db, res.events, res.nevents);
    db_liveness_clear(&res);
}

static void
liveness_done(struct pool_work *w)
{
    struct liveness *l = (struct liveness *)w;

    l->busy = 0;
    if (w->skipped) {
        return;
    }
    if (!l->ok) {
        if (!l->failing) {
            log_warn("node liveness check failed: %s", l->err.msg);
        }
        l->failing = 1;
        l->grace = 1;
    } else if (l->failing) {
        log_info("node liveness check works again");
        l->failing = 0;
    }
}

static void
liveness_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct liveness *l = t->data;

    (void)loop;
    (void)revents;
    if (l->busy || l->stopped) {
        return;
    }
    l->busy = 1;
    pool_submit(l->q->pool, &l->work);
}

struct liveness *
liveness_new(struct qmgr *q, double interval)
{
    struct liveness *l = dv_xcalloc(1, sizeof(*l));
    double every = dv_clock_real_span(interval);

    l->q = q;
    l->grace = 1;
    l->work.run = liveness_run;
    l->work.done = liveness_done;
    if (every < 0.01) {
        every = 0.01;
    }
    ev_timer_init(&l->timer, liveness_timer_cb, every, every);
    l->timer.data = l;
    ev_timer_start(q->loop, &l->timer);
    return l;
}

void
liveness_stop(struct liveness *l)
{
    if (l == NULL) {
        return;
    }
    l->stopped = 1;
    ev_timer_stop(l->q->loop, &l->timer);
}

int
liveness_busy(const struct liveness *l)
{
    return l != NULL && l->busy;
}

void
liveness_free(struct liveness *l)
{
    if (l == NULL) {
        return;
    }
    ev_timer_stop(l->q->loop, &l->timer);
    free(l);
}
