/*
 * Blocking queries (docs/api.md "Blocking queries"). A request with
 * ?index=N is kept in a table keyed by (kind, id) from the moment it is
 * queued until it is answered. A LISTEN connection on the loop thread
 * (channels allocs and jobs; payload: ids) wakes the waiters of the ids it
 * names. A fallback pass every few seconds looks again at every parked
 * waiter, because notifications are hints. When the LISTEN connection
 * drops it is opened again (on a worker, with backoff) and every waiter is
 * re-checked.
 *
 * Node waiters (thousands: one per node daemon) are never read one by
 * one: woken ones join a pending queue, and a batch of up to
 * LP_BATCH_MAX of them is read in one transaction (db_node_polls: one
 * statement for all their indexes, one for the allocations of those to
 * answer) and answered together; at most LP_MAX_BATCHES run at once, so
 * a storm of notifications makes larger batches, not more work. A waiter
 * woken while its batch runs is queued again when the batch is back. Job
 * waiters re-run their own query (few clients wait on jobs).
 */
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "qmgr/qmgr.h"

#define LP_BUCKETS 16384
#define LP_BACKOFF_MIN 0.5
#define LP_BACKOFF_MAX 30.0
/* Node waiters read in one transaction, and such batches at once. */
#define LP_BATCH_MAX 1000
#define LP_MAX_BATCHES 2

/* A batch of node waiters being read on a worker. */
struct lp_batch {
    struct pool_work work; /* first */
    struct longpoll *lp;
    struct qreq *reqs; /* linked by lp_batch_next */
    int n;
    int ok;
    struct dv_err err;
};

struct lp_connect {
    struct pool_work work; /* first */
    struct longpoll *lp;
    int ok;
    struct dv_err err;
};

struct lp_check {
    struct pool_work work; /* first */
    struct longpoll *lp;
    int64_t *nodes; /* sorted, unique */
    int64_t *node_idx;
    int nn;
    int64_t *jobs; /* sorted, unique */
    int64_t *job_idx;
    int nj;
    int ok;
};

struct longpoll {
    struct qmgr *q;
    struct qreq *buckets[LP_BUCKETS];
    struct qreq *all;
    int count;

    /* The LISTEN connection: used by the loop thread, except while a
     * worker (re)connects it (connecting set, io stopped). */
    struct dv_db *db;
    ev_io io;
    ev_timer retry;
    double backoff;
    int connecting;
    int lost;   /* it worked once and then dropped */
    int warned; /* a failure to connect was logged */
    struct lp_connect conn;

    ev_timer fallback;
    struct lp_check check;
    int checking;

    /* Node waiters to read, oldest first (linked by lp_batch_next). */
    struct qreq *pend_head;
    struct qreq *pend_tail;
    int npend;
    int nbatches; /* in flight */

    int stopping;
};

static void lp_done(struct qreq *qr);

static unsigned
bucket_of(enum lp_kind kind, int64_t key)
{
    uint64_t h = (uint64_t)key * 0x9e3779b97f4a7c15ULL + (uint64_t)kind;

    return (unsigned)(h >> 40) % LP_BUCKETS;
}

static void
link_waiter(struct longpoll *lp, struct qreq *qr)
{
    unsigned b = bucket_of(qr->lp_kind, qr->lp_key);

    qr->lp_prev = NULL;
    qr->lp_next = lp->buckets[b];
    if (qr->lp_next != NULL) {
        qr->lp_next->lp_prev = qr;
    }
    lp->buckets[b] = qr;
    qr->lp_all_prev = NULL;
    qr->lp_all_next = lp->all;
    if (lp->all != NULL) {
        lp->all->lp_all_prev = qr;
    }
    lp->all = qr;
    lp->count++;
}

/* Takes qr out of the pending queue (a client that left while queued). */
static void
unqueue(struct longpoll *lp, struct qreq *qr)
{
    if (!qr->lp_queued) {
        return;
    }
    if (qr->lp_batch_prev != NULL) {
        qr->lp_batch_prev->lp_batch_next = qr->lp_batch_next;
    } else {
        lp->pend_head = qr->lp_batch_next;
    }
    if (qr->lp_batch_next != NULL) {
        qr->lp_batch_next->lp_batch_prev = qr->lp_batch_prev;
    } else {
        lp->pend_tail = qr->lp_batch_prev;
    }
    lp->npend--;
    qr->lp_batch_next = qr->lp_batch_prev = NULL;
    qr->lp_queued = 0;
}

void
longpoll_forget(struct qreq *qr)
{
    struct longpoll *lp = qr->q->lp;
    unsigned b;

    if (qr->lp_kind == LP_NONE || lp == NULL) {
        return;
    }
    unqueue(lp, qr);
    b = bucket_of(qr->lp_kind, qr->lp_key);
    if (qr->lp_prev != NULL) {
        qr->lp_prev->lp_next = qr->lp_next;
    } else {
        lp->buckets[b] = qr->lp_next;
    }
    if (qr->lp_next != NULL) {
        qr->lp_next->lp_prev = qr->lp_prev;
    }
    if (qr->lp_all_prev != NULL) {
        qr->lp_all_prev->lp_all_next = qr->lp_all_next;
    } else {
        lp->all = qr->lp_all_next;
    }
    if (qr->lp_all_next != NULL) {
        qr->lp_all_next->lp_all_prev = qr->lp_all_prev;
    }
    qr->lp_next = qr->lp_prev = qr->lp_all_next = qr->lp_all_prev = NULL;
    ev_timer_stop(lp->q->loop, &qr->lp_timer);
    lp->count--;
    qr->lp_kind = LP_NONE;
}

/* --- node waiters: the pending queue and its batches --- */

static void lp_kick(struct longpoll *lp);

/* Queues a parked node waiter to be read in the next batch. */
static void
enqueue(struct longpoll *lp, struct qreq *qr)
{
    if (qr->lp_queued) {
        return;
    }
    qr->lp_queued = 1;
    qr->lp_batch_next = NULL;
    qr->lp_batch_prev = lp->pend_tail;
    if (lp->pend_tail != NULL) {
        lp->pend_tail->lp_batch_next = qr;
    } else {
        lp->pend_head = qr;
    }
    lp->pend_tail = qr;
    lp->npend++;
}

static void
lp_batch_run(struct pool_work *w, struct dv_db *db)
{
    struct lp_batch *bt = (struct lp_batch *)w;
    struct qmgr *q = bt->lp->q;
    struct db_node_polls b = {0};
    const char *server;
    struct qreq *qr;
    int i = 0;

    dv_err_clear(&bt->err);
    b.n = bt->n;
    b.p = dv_xcalloc((size_t)bt->n + 1, sizeof(*b.p));
    for (qr = bt->reqs; qr != NULL; qr = qr->lp_batch_next, i++) {
        b.p[i].node_id = qr->lp_key;
        b.p[i].since = qr->lp_min_index > 0 ? qr->lp_min_index : 0;
        b.p[i].force = qr->lp_expired;
    }
    bt->ok = server_name_ensure(q, db, &bt->err) == 0 &&
             db_node_polls(db, &b, &bt->err) == 0;
    if (!bt->ok) {
        log_debug("node long-poll batch of %d failed: %s", bt->n, bt->err.msg);
        goto out;
    }
    server = server_name(q);
    i = 0;
    for (qr = bt->reqs; qr != NULL; qr = qr->lp_batch_next, i++) {
        const struct db_node_poll *p = &b.p[i];

        qr->failed = 0;
        qr->lp_moved = 0;
        dv_err_clear(&qr->err);
        if (db_node_identity(qr->lp_key, p->found ? p->name : NULL,
                             qr->node_cn, &qr->err) < 0) {
            qr->failed = 1;
        } else if (p->answer) {
            free(qr->body);
            qr->body = api_nodes_poll_json(&b, i, server);
            qr->status = 200;
            qr->index = p->index;
            qr->lp_moved = 1;
        }
    }
out:
    db_node_polls_clear(&b);
    free(b.p);
}

static void
lp_batch_done(struct pool_work *w)
{
    struct lp_batch *bt = (struct lp_batch *)w;
    struct longpoll *lp = bt->lp;
    struct qreq *qr, *next;
    int skipped;

    lp->nbatches--;
    for (qr = bt->reqs; qr != NULL; qr = next) {
        next = qr->lp_batch_next;
        qr->lp_batch_next = NULL;
        qr->state = QREQ_LOOP;
        if (qr->req == NULL) { /* the client left */
            longpoll_forget(qr);
            qreq_finish(qr);
            continue;
        }
        if (w->skipped) {
            longpoll_forget(qr);
            qreq_fail(qr, DV_EUNAVAIL, "unavailable", "the server is stopping");
            continue;
        }
        if (!bt->ok) {
            qr->failed = 1;
            qr->err = bt->err;
        }
        if (qr->failed || qr->lp_moved) {
            longpoll_forget(qr);
            qreq_finish(qr);
            continue;
        }
        qr->state = QREQ_WAITING;
        if (qr->lp_expired || qr->lp_renotified) {
            qr->lp_renotified = 0;
            enqueue(lp, qr);
        }
    }
    skipped = w->skipped;
    free(bt);
    if (!skipped) {
        lp_kick(lp);
    }
}

/* Starts batches for the pending node waiters. */
static void
lp_kick(struct longpoll *lp)
{
    while (lp->npend > 0 && lp->nbatches < LP_MAX_BATCHES) {
        struct lp_batch *bt = dv_xcalloc(1, sizeof(*bt));
        struct qreq **tail = &bt->reqs;

        bt->lp = lp;
        bt->work.run = lp_batch_run;
        bt->work.done = lp_batch_done;
        while (lp->pend_head != NULL && bt->n < LP_BATCH_MAX) {
            struct qreq *qr = lp->pend_head;

            lp->pend_head = qr->lp_batch_next;
            if (lp->pend_head != NULL) {
                lp->pend_head->lp_batch_prev = NULL;
            }
            lp->npend--;
            qr->lp_queued = 0;
            qr->lp_batch_next = NULL;
            qr->lp_batch_prev = NULL;
            qr->lp_renotified = 0;
            qr->state = QREQ_POOL;
            *tail = qr;
            tail = &qr->lp_batch_next;
            bt->n++;
        }
        if (lp->pend_head == NULL) {
            lp->pend_tail = NULL;
        }
        lp->nbatches++;
        pool_submit(lp->q->pool, &bt->work);
    }
}

/* Reads qr again: node waiters in the next batch, job waiters now (or
 * once their running query is back). */
static void
recheck(struct longpoll *lp, struct qreq *qr)
{
    if (qr->state == QREQ_WAITING) {
        if (qr->lp_kind == LP_NODE_ALLOCS) {
            enqueue(lp, qr);
        } else {
            qreq_submit(qr);
        }
    } else if (qr->state == QREQ_POOL) {
        qr->lp_renotified = 1;
    }
}

static void
recheck_all(struct longpoll *lp, enum lp_kind kind)
{
    for (struct qreq *qr = lp->all; qr != NULL; qr = qr->lp_all_next) {
        if (kind == LP_NONE || qr->lp_kind == kind) {
            recheck(lp, qr);
        }
    }
    lp_kick(lp);
}

static void
lp_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct qreq *qr = t->data;
    struct longpoll *lp = qr->q->lp;

    (void)loop;
    (void)revents;
    qr->lp_expired = 1;
    if (qr->state == QREQ_WAITING) {
        recheck(lp, qr);
        lp_kick(lp);
    }
}

void
longpoll_start(struct qreq *qr, double wait)
{
    struct longpoll *lp = qr->q->lp;

    qr->lp_moved = 0;
    qr->lp_renotified = 0;
    qr->lp_expired = lp->stopping || wait <= 0;
    link_waiter(lp, qr);
    ev_timer_init(&qr->lp_timer, lp_timer_cb, wait, 0);
    qr->lp_timer.data = qr;
    if (!qr->lp_expired) {
        ev_timer_start(lp->q->loop, &qr->lp_timer);
    }
    if (qr->lp_kind == LP_NODE_ALLOCS) {
        qr->state = QREQ_WAITING;
        enqueue(lp, qr);
        lp_kick(lp);
        return;
    }
    qr->done = lp_done;
    qreq_submit(qr);
}

/* A job waiter's run came back (loop thread). */
static void
lp_done(struct qreq *qr)
{
    if (qr->failed || qr->lp_moved) {
        longpoll_forget(qr);
        qreq_finish(qr);
        return;
    }
    if (qr->lp_expired || qr->lp_renotified) {
        qr->lp_renotified = 0;
        qreq_submit(qr);
        return;
    }
    qr->state = QREQ_WAITING;
}

/* --- notifications --- */

static void
notify_cb(const char *channel, const char *payload, void *arg)
{
    struct longpoll *lp = arg;
    enum lp_kind kind;
    int64_t *ids = NULL;
    int n;

    if (strcmp(channel, "allocs") == 0) {
        kind = LP_NODE_ALLOCS;
    } else if (strcmp(channel, "jobs") == 0) {
        kind = LP_JOB;
    } else if (strcmp(channel, "waiting") == 0) {
        /* A job waits (W) for the time in the payload (site.c). */
        site_waiting_notified(lp->q, payload);
        return;
    } else {
        return;
    }
    n = parse_id_list(payload, &ids);
    if (n <= 0) {
        /* No ids (a long list is sent empty): everything may have moved. */
        recheck_all(lp, kind);
        free(ids);
        return;
    }
    for (int i = 0; i < n; i++) {
        unsigned b = bucket_of(kind, ids[i]);
        for (struct qreq *qr = lp->buckets[b]; qr != NULL; qr = qr->lp_next) {
            if (qr->lp_kind == kind && qr->lp_key == ids[i]) {
                recheck(lp, qr);
            }
        }
    }
    free(ids);
    lp_kick(lp);
}

static void lp_schedule_connect(struct longpoll *lp);

static void
lp_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct longpoll *lp = w->data;
    struct dv_err err;

    (void)revents;
    dv_err_clear(&err);
    if (dv_db_consume_notifies(lp->db, notify_cb, lp, &err) >= 0) {
        return;
    }
    ev_io_stop(loop, w);
    log_warn("lost the LISTEN connection to the database: %s; blocking "
             "queries poll until it is back",
             err.msg);
    lp->lost = 1;
    lp->backoff = LP_BACKOFF_MIN;
    lp_schedule_connect(lp);
}

static void
lp_connect_run(struct pool_work *w, struct dv_db *db)
{
    struct lp_connect *c = (struct lp_connect *)w;

    (void)db; /* the LISTEN connection is the long-poll table's own */
    dv_err_clear(&c->err);
    c->ok = dv_db_listen(c->lp->db, "allocs", &c->err) == 0 &&
            dv_db_listen(c->lp->db, "jobs", &c->err) == 0 &&
            dv_db_listen(c->lp->db, "waiting", &c->err) == 0;
}

static void
lp_connect_done(struct pool_work *w)
{
    struct lp_connect *c = (struct lp_connect *)w;
    struct longpoll *lp = c->lp;
    int fd;

    lp->connecting = 0;
    if (w->skipped || lp->stopping) {
        return;
    }
    fd = c->ok ? dv_db_socket(lp->db) : -1;
    if (fd < 0) {
        if (!lp->warned) {
            log_warn("could not listen for database notifications: %s; "
                     "retrying",
                     c->ok ? "no socket" : c->err.msg);
            lp->warned = 1;
        }
        lp_schedule_connect(lp);
        return;
    }
    if (lp->lost || lp->warned) {
        log_notice("listening for database notifications again");
    }
    lp->lost = 0;
    lp->warned = 0;
    lp->backoff = LP_BACKOFF_MIN;
    ev_io_init(&lp->io, lp_io_cb, fd, EV_READ);
    lp->io.data = lp;
    ev_io_start(lp->q->loop, &lp->io);
    /* Whatever happened while nobody listened: look again. */
    recheck_all(lp, LP_NONE);
    site_waiting_notified(lp->q, NULL);
    ev_feed_event(lp->q->loop, &lp->io, EV_READ);
}

static void
lp_retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct longpoll *lp = t->data;

    (void)loop;
    (void)revents;
    if (lp->connecting || lp->stopping) {
        return;
    }
    lp->connecting = 1;
    pool_submit(lp->q->pool, &lp->conn.work);
}

/* Reconnects after the current backoff, which then doubles. */
static void
lp_schedule_connect(struct longpoll *lp)
{
    ev_timer_stop(lp->q->loop, &lp->retry);
    ev_timer_set(&lp->retry, lp->backoff, 0);
    ev_timer_start(lp->q->loop, &lp->retry);
    lp->backoff *= 2;
    if (lp->backoff > LP_BACKOFF_MAX) {
        lp->backoff = LP_BACKOFF_MAX;
    }
}

/* --- the fallback pass --- */

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static int
uniq(int64_t *v, int n)
{
    int m = 0;

    qsort(v, (size_t)n, sizeof(*v), cmp_i64);
    for (int i = 0; i < n; i++) {
        if (m == 0 || v[m - 1] != v[i]) {
            v[m++] = v[i];
        }
    }
    return m;
}

static void
check_clear(struct lp_check *c)
{
    free(c->nodes);
    free(c->node_idx);
    free(c->jobs);
    free(c->job_idx);
    c->nodes = c->node_idx = c->jobs = c->job_idx = NULL;
    c->nn = c->nj = 0;
}

static void
lp_check_run(struct pool_work *w, struct dv_db *db)
{
    struct lp_check *c = (struct lp_check *)w;
    struct dv_err err;

    dv_err_clear(&err);
    c->ok = db_indexes(db, c->nodes, c->nn, c->node_idx, c->jobs, c->nj,
                       c->job_idx, &err) == 0;
    if (!c->ok) {
        log_debug("long-poll fallback check failed: %s", err.msg);
    }
}

static int64_t
lookup(const int64_t *keys, const int64_t *vals, int n, int64_t key,
       int64_t def)
{
    const int64_t *hit = bsearch(&key, keys, (size_t)n, sizeof(*keys), cmp_i64);

    return hit != NULL ? vals[hit - keys] : def;
}

static void
lp_check_done(struct pool_work *w)
{
    struct lp_check *c = (struct lp_check *)w;
    struct longpoll *lp = c->lp;

    lp->checking = 0;
    if (!w->skipped && !lp->stopping && c->ok) {
        for (struct qreq *qr = lp->all; qr != NULL; qr = qr->lp_all_next) {
            int64_t idx;

            if (qr->state != QREQ_WAITING) {
                continue;
            }
            if (qr->lp_kind == LP_JOB) {
                idx = lookup(c->jobs, c->job_idx, c->nj, qr->lp_key, 0);
                if (idx < 0 || idx > qr->lp_min_index) {
                    qreq_submit(qr); /* moved, or gone (answers 404) */
                }
            }
        }
    }
    check_clear(c);
}

static void
lp_fallback_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct longpoll *lp = t->data;
    struct lp_check *c = &lp->check;

    (void)loop;
    (void)revents;
    if (lp->stopping || lp->count == 0) {
        return;
    }
    /* Node waiters: all of them in the next batches (their indexes are
     * read first, so this costs one statement per batch). */
    for (struct qreq *qr = lp->all; qr != NULL; qr = qr->lp_all_next) {
        if (qr->state == QREQ_WAITING && qr->lp_kind == LP_NODE_ALLOCS) {
            enqueue(lp, qr);
        }
    }
    lp_kick(lp);
    if (lp->checking) {
        return;
    }
    c->nodes = dv_xcalloc(1, sizeof(int64_t));
    c->jobs = dv_xcalloc((size_t)lp->count, sizeof(int64_t));
    for (struct qreq *qr = lp->all; qr != NULL; qr = qr->lp_all_next) {
        if (qr->state == QREQ_WAITING && qr->lp_kind == LP_JOB) {
            c->jobs[c->nj++] = qr->lp_key;
        }
    }
    if (c->nn == 0 && c->nj == 0) {
        check_clear(c);
        return;
    }
    c->nn = uniq(c->nodes, c->nn);
    c->nj = uniq(c->jobs, c->nj);
    c->node_idx = dv_xcalloc((size_t)c->nn + 1, sizeof(int64_t));
    c->job_idx = dv_xcalloc((size_t)c->nj + 1, sizeof(int64_t));
    lp->checking = 1;
    pool_submit(lp->q->pool, &c->work);
}

/* --- life --- */

struct longpoll *
longpoll_new(struct qmgr *q)
{
    struct longpoll *lp = dv_xcalloc(1, sizeof(*lp));

    lp->q = q;
    lp->db = dv_db_new(q->conninfo, "drover-qmgr-listen");
    dv_db_set_timeout(lp->db, QMGR_DB_TIMEOUT);
    lp->backoff = LP_BACKOFF_MIN;
    lp->conn.lp = lp;
    lp->conn.work.run = lp_connect_run;
    lp->conn.work.done = lp_connect_done;
    lp->check.lp = lp;
    lp->check.work.run = lp_check_run;
    lp->check.work.done = lp_check_done;
    ev_init(&lp->io, lp_io_cb);
    lp->io.data = lp;
    ev_timer_init(&lp->retry, lp_retry_cb, 0, 0);
    lp->retry.data = lp;
    ev_timer_init(&lp->fallback, lp_fallback_cb, QMGR_LONGPOLL_FALLBACK,
                  QMGR_LONGPOLL_FALLBACK);
    lp->fallback.data = lp;
    ev_timer_start(q->loop, &lp->fallback);
    lp->connecting = 1;
    pool_submit(q->pool, &lp->conn.work);
    return lp;
}

void
longpoll_expire_all(struct longpoll *lp)
{
    if (lp == NULL) {
        return;
    }
    lp->stopping = 1;
    ev_io_stop(lp->q->loop, &lp->io);
    ev_timer_stop(lp->q->loop, &lp->retry);
    ev_timer_stop(lp->q->loop, &lp->fallback);
    for (struct qreq *qr = lp->all; qr != NULL; qr = qr->lp_all_next) {
        qr->lp_expired = 1;
        ev_timer_stop(lp->q->loop, &qr->lp_timer);
        if (qr->state == QREQ_WAITING) {
            recheck(lp, qr);
        }
    }
    lp_kick(lp);
}

int
longpoll_count(const struct longpoll *lp)
{
    return lp != NULL ? lp->count : 0;
}

void
longpoll_free(struct longpoll *lp)
{
    if (lp == NULL) {
        return;
    }
    ev_io_stop(lp->q->loop, &lp->io);
    ev_timer_stop(lp->q->loop, &lp->retry);
    ev_timer_stop(lp->q->loop, &lp->fallback);
    check_clear(&lp->check);
    dv_db_free(lp->db);
    free(lp);
}
