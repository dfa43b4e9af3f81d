/*
 * The database worker pool: N threads, each with its own connection
 * (struct dv_db, blocking libpq), taking work from one queue. A finished
 * work goes to a done list and an ev_async wakes the loop thread, which
 * calls each work's done callback. Nothing here answers HTTP; the owner of
 * the work does, on the loop thread.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "qmgr/qmgr.h"

struct pool_worker {
    struct pool *pool;
    pthread_t thread;
    struct dv_db *db;
    int index;
    int started;
};

struct pool {
    struct ev_loop *loop;
    ev_async async;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct pool_work *head; /* queued, in order */
    struct pool_work *tail;
    struct pool_work *done_head; /* finished, waiting for the loop */
    struct pool_work *done_tail;
    int stopping;
    int outstanding; /* submitted and not yet handed to done */

    struct pool_worker *workers;
    int nworkers;
};

static void
push_done(struct pool *p, struct pool_work *w)
{
    w->next = NULL;
    if (p->done_tail != NULL) {
        p->done_tail->next = w;
    } else {
        p->done_head = w;
    }
    p->done_tail = w;
}

static void *
worker_main(void *arg)
{
    struct pool_worker *wk = arg;
    struct pool *p = wk->pool;

    for (;;) {
        struct pool_work *w;
        int skip;

        pthread_mutex_lock(&p->lock);
        while (p->head == NULL && !p->stopping) {
            pthread_cond_wait(&p->cond, &p->lock);
        }
        if (p->head == NULL) {
            pthread_mutex_unlock(&p->lock);
            break;
        }
        w = p->head;
        p->head = w->next;
        if (p->head == NULL) {
            p->tail = NULL;
        }
        skip = p->stopping;
        pthread_mutex_unlock(&p->lock);

        if (skip || __atomic_load_n(&w->cancelled, __ATOMIC_ACQUIRE)) {
            w->skipped = 1;
        } else {
            w->run(w, wk->db);
        }

        pthread_mutex_lock(&p->lock);
        push_done(p, w);
        pthread_mutex_unlock(&p->lock);
        ev_async_send(p->loop, &p->async);
    }
    return NULL;
}

/* Calls the done callbacks of every finished work (loop thread). */
static void
drain_done(struct pool *p)
{
    struct pool_work *w, *next;

    pthread_mutex_lock(&p->lock);
    w = p->done_head;
    p->done_head = NULL;
    p->done_tail = NULL;
    pthread_mutex_unlock(&p->lock);
    for (; w != NULL; w = next) {
        next = w->next;
        w->next = NULL;
        p->outstanding--;
        w->done(w);
    }
}

static void
pool_async_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    struct pool *p = a->data;

    (void)loop;
    (void)revents;
    drain_done(p);
}

struct pool *
pool_new(struct ev_loop *loop, const char *conninfo, int n)
{
    struct pool *p = dv_xcalloc(1, sizeof(*p));
    sigset_t all, old;

    p->loop = loop;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    ev_async_init(&p->async, pool_async_cb);
    p->async.data = p;
    ev_async_start(loop, &p->async);
    p->workers = dv_xcalloc((size_t)n, sizeof(*p->workers));
    p->nworkers = n;
    /* Workers inherit a mask that blocks every signal: signals belong to
     * the loop thread (ev_signal). */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < n; i++) {
        struct pool_worker *wk = &p->workers[i];
        int rc;

        wk->pool = p;
        wk->index = i;
        wk->db = dv_db_new(conninfo, "drover-qmgr");
        dv_db_set_timeout(wk->db, QMGR_DB_TIMEOUT);
        rc = pthread_create(&wk->thread, NULL, worker_main, wk);
        if (rc != 0) {
            log_error("could not start database worker %d: %s", i,
                      strerror(rc));
            continue;
        }
        wk->started = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return p;
}

void
pool_submit(struct pool *p, struct pool_work *w)
{
    w->next = NULL;
    w->skipped = 0;
    __atomic_store_n(&w->cancelled, 0, __ATOMIC_RELEASE);
    p->outstanding++;
    pthread_mutex_lock(&p->lock);
    if (p->tail != NULL) {
        p->tail->next = w;
    } else {
        p->head = w;
    }
    p->tail = w;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

void
pool_cancel(struct pool_work *w)
{
    __atomic_store_n(&w->cancelled, 1, __ATOMIC_RELEASE);
}

int
pool_outstanding(const struct pool *p)
{
    return p->outstanding;
}

void
pool_free(struct pool *p)
{
    if (p == NULL) {
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nworkers; i++) {
        if (p->workers[i].started) {
            pthread_join(p->workers[i].thread, NULL);
        }
    }
    /* Work nobody took (no worker could start) is skipped too. */
    pthread_mutex_lock(&p->lock);
    while (p->head != NULL) {
        struct pool_work *w = p->head;
        p->head = w->next;
        w->skipped = 1;
        push_done(p, w);
    }
    p->tail = NULL;
    pthread_mutex_unlock(&p->lock);
    /* Done callbacks may submit again (a long poll re-check); those are
     * skipped at once since the pool is stopping. */
    while (p->done_head != NULL) {
        drain_done(p);
        pthread_mutex_lock(&p->lock);
        while (p->head != NULL) {
            struct pool_work *w = p->head;
            p->head = w->next;
            w->skipped = 1;
            push_done(p, w);
        }
        p->tail = NULL;
        pthread_mutex_unlock(&p->lock);
    }
    ev_async_stop(p->loop, &p->async);
    for (int i = 0; i < p->nworkers; i++) {
        dv_db_free(p->workers[i].db);
    }
    free(p->workers);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
