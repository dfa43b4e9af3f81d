/*
 * Simulated nodes (drover-noded --simulate N): N virtual nodes in one
 * process, for scale tests and the benchmark. Each is a struct noded that
 * registers (a synthetic hwloc topology, or one of a small heterogeneous
 * set), heartbeats (phases spread over TTL/3) and long-polls through the
 * real API with client.c, sharing a few HTTP clients. Its allocations only
 * pretend to run: each is an entry in one timing wheel for the whole
 * process (no timer, process or system call per allocation) that ends
 * after the job's runtime (meta "drover.sim_runtime", else the walltime,
 * else when stopped). Per node, allocations live in a hash by id; their
 * status updates are batched per node like a real daemon's.
 */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/http-client.h"
#include "lib/jobspec.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "noded/noded.h"

#define SIM_TICK 0.05 /* real seconds per wheel slot */
#define SIM_SLOTS 4096
#define SIM_BATCH_DELAY 0.25 /* real seconds to gather a node's updates */
#define SIM_STATS_EVERY 10.0
#define SIM_FLUSH_LIMIT 40.0
/* Nodes per HTTP client: libcurl's multi handle does some work in the
 * number of its transfers (removing one, finding a connection), and every
 * node keeps a long poll in flight. */
#define SIM_NODES_PER_CLIENT 128
#define SIM_STATUS_DELETED (256 + SIGTERM)

enum sim_state {
    SIM_RUNNING,
    SIM_DONE,
};

struct sim_alloc {
    long long id;
    struct sim_node *sn;
    struct sim_alloc *hnext;         /* the node's hash chain */
    struct sim_alloc *wnext, *wprev; /* wheel slot; graveyard: wnext */
    uint64_t due;                    /* wheel tick; 0: not in the wheel */
    unsigned long ack_gen;           /* poll in flight when acknowledged */
    unsigned long seen;              /* last full answer that listed it */
    struct status_update *run_u;     /* its queued "running" update */
    unsigned char state;             /* enum sim_state */
    unsigned char pbs0;              /* runs a PBS script: 271 when stopped */
    unsigned char over;              /* cut by its walltime: -29 */
    unsigned char acked;
};

struct sim_node {
    struct noded *nd;
    struct sim_alloc **buckets;
    unsigned nbuckets;            /* a power of two */
    int count;                    /* allocations known */
    int active;                   /* ... not DONE */
    struct sim_alloc *grave_head; /* DONE and acknowledged, in that order */
    struct sim_alloc *grave_tail;
    int done; /* its orderly stop is over */
};

/* One topology of the simulated nodes, with what makes it differ. */
struct sim_kind {
    const char *synthetic;
    int64_t memory; /* 0: --memory, or 4 GiB per core */
    int gpus;
};

/* --simulate-mix: chosen by node index from a fixed pattern, so that a
 * cluster of N nodes is the same on every run. */
static const struct sim_kind sim_mix[] = {
    {"pack:1 numa:1 core:8 pu:2", 32LL << 30, 0},
    {"pack:2 numa:2 core:16 pu:1", 256LL << 30, 0},
    {"pack:2 numa:1 core:24 pu:2", 192LL << 30, 4},
    {"pack:4 numa:2 core:16 pu:1", 512LL << 30, 8},
};
/* Of every ten nodes: 3 small, 4 medium, 2 with 4 GPUs, 1 large. */
static const int sim_mix_pattern[10] = {0, 1, 2, 1, 0, 3, 1, 0, 2, 1};

struct sim {
    struct ev_loop *loop;
    const struct noded_config *cfg;
    struct topology **topos; /* one per kind */
    int ntopos;
    struct noded *nodes;
    int n;
    struct dv_http_async **http;
    int nhttp;
    struct sim_alloc *slots[SIM_SLOTS];
    uint64_t tick; /* last tick processed */
    double t0;     /* ev_now of tick 0 */
    long nwheel;
    ev_timer tick_w;
    ev_timer stats_w;
    ev_signal sigterm_w, sigint_w, sighup_w;
    ev_timer shutdown_w;
    void (*reload_cb)(struct noded *nd);
    int stopping;
    int ndone;
    int exit_status;
    long started, finished; /* allocations, for the stats line */
};

/* ---- runtimes ----------------------------------------------------------- */

static int
duration_value(const json_t *v, double *out)
{
    int64_t secs;

    if (json_is_number(v) && json_number_value(v) >= 0) {
        *out = json_number_value(v);
        return 0;
    }
    if (json_is_string(v) &&
        dv_jobspec_parse_duration(json_string_value(v), &secs) == 0) {
        *out = (double)secs;
        return 0;
    }
    return -1;
}

double
sim_runtime(const json_t *spec, int64_t walltime, int *over)
{
    json_t *meta = json_object_get(spec, "meta");
    json_t *env = json_object_get(spec, "env");
    double rt = -1;

    *over = 0;
    if (json_is_object(meta) &&
        duration_value(json_object_get(meta, "drover.sim_runtime"), &rt) < 0) {
        rt = -1;
    }
    if (rt < 0 && json_is_array(env)) {
        size_t i;
        json_t *e;
        static const char key[] = "DROVER_SIM_RUNTIME=";

        json_array_foreach (env, i, e) {
            json_t *v;

            if (!json_is_string(e) ||
                !dv_str_has_prefix(json_string_value(e), key)) {
                continue;
            }
            v = json_string(json_string_value(e) + strlen(key));
            if (duration_value(v, &rt) < 0) {
                rt = -1;
            }
            json_decref(v);
        }
    }
    if (rt < 0) {
        return walltime > 0 ? (double)walltime : -1;
    }
    if (walltime > 0 && rt > (double)walltime) {
        *over = 1;
        return (double)walltime;
    }
    return rt;
}

/* ---- the wheel ---------------------------------------------------------- */

static void sim_alloc_expired(struct sim_alloc *sa);

static uint64_t
sim_tick_now(const struct sim *s)
{
    double t = (ev_now(s->loop) - s->t0) / SIM_TICK;

    return t > 0 ? (uint64_t)t : 0;
}

static void
wheel_remove(struct sim *s, struct sim_alloc *sa)
{
    if (sa->due == 0) {
        return;
    }
    if (sa->wprev != NULL) {
        sa->wprev->wnext = sa->wnext;
    } else {
        s->slots[sa->due % SIM_SLOTS] = sa->wnext;
    }
    if (sa->wnext != NULL) {
        sa->wnext->wprev = sa->wprev;
    }
    sa->wnext = sa->wprev = NULL;
    sa->due = 0;
    s->nwheel--;
}

static void
wheel_insert(struct sim *s, struct sim_alloc *sa, double real_span)
{
    uint64_t due, slot;

    if (s->nwheel == 0) {
        s->tick = sim_tick_now(s);
    }
    due = s->tick + (uint64_t)ceil(real_span / SIM_TICK);
    if (due <= s->tick) {
        due = s->tick + 1;
    }
    slot = due % SIM_SLOTS;
    sa->due = due;
    sa->wprev = NULL;
    sa->wnext = s->slots[slot];
    if (sa->wnext != NULL) {
        sa->wnext->wprev = sa;
    }
    s->slots[slot] = sa;
    s->nwheel++;
    if (!ev_is_active(&s->tick_w)) {
        ev_timer_again(s->loop, &s->tick_w);
    }
}

/* Expires what is due in slot. */
static void
wheel_slot(struct sim *s, uint64_t slot, uint64_t now_tick)
{
    struct sim_alloc *sa = s->slots[slot], *next;

    for (; sa != NULL; sa = next) {
        next = sa->wnext;
        if (sa->due <= now_tick) {
            wheel_remove(s, sa);
            sim_alloc_expired(sa);
        }
    }
}

static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sim *s = w->data;
    uint64_t now_tick = sim_tick_now(s);

    (void)loop;
    (void)revents;
    if (now_tick - s->tick >= SIM_SLOTS) {
        for (uint64_t slot = 0; slot < SIM_SLOTS; slot++) {
            wheel_slot(s, slot, now_tick);
        }
    } else {
        for (uint64_t t = s->tick + 1; t <= now_tick; t++) {
            wheel_slot(s, t % SIM_SLOTS, now_tick);
        }
    }
    s->tick = now_tick;
    if (s->nwheel == 0) {
        ev_timer_stop(s->loop, &s->tick_w);
    }
}

/* ---- a node's allocations ----------------------------------------------- */

static unsigned
hash_of(long long id, unsigned nbuckets)
{
    return (unsigned)(((uint64_t)id * 0x9e3779b97f4a7c15ULL) >> 32) &
           (nbuckets - 1);
}

static struct sim_alloc *
sim_find(struct sim_node *sn, long long id)
{
    struct sim_alloc *sa;

    if (sn->nbuckets == 0) {
        return NULL;
    }
    for (sa = sn->buckets[hash_of(id, sn->nbuckets)]; sa != NULL;
         sa = sa->hnext) {
        if (sa->id == id) {
            return sa;
        }
    }
    return NULL;
}

static void
sim_hash_add(struct sim_node *sn, struct sim_alloc *sa)
{
    unsigned h;

    if ((unsigned)sn->count + 1 > sn->nbuckets) {
        unsigned nb = sn->nbuckets == 0 ? 16 : sn->nbuckets * 2;
        struct sim_alloc **nbk = dv_xcalloc(nb, sizeof(*nbk));

        for (unsigned i = 0; i < sn->nbuckets; i++) {
            struct sim_alloc *x = sn->buckets[i], *next;

            for (; x != NULL; x = next) {
                next = x->hnext;
                h = hash_of(x->id, nb);
                x->hnext = nbk[h];
                nbk[h] = x;
            }
        }
        free(sn->buckets);
        sn->buckets = nbk;
        sn->nbuckets = nb;
    }
    h = hash_of(sa->id, sn->nbuckets);
    sa->hnext = sn->buckets[h];
    sn->buckets[h] = sa;
    sn->count++;
}

static void
sim_hash_del(struct sim_node *sn, struct sim_alloc *sa)
{
    struct sim_alloc **pp = &sn->buckets[hash_of(sa->id, sn->nbuckets)];

    for (; *pp != NULL; pp = &(*pp)->hnext) {
        if (*pp == sa) {
            *pp = sa->hnext;
            sn->count--;
            return;
        }
    }
}

static struct sim_alloc *
sim_alloc_new(struct sim_node *sn, long long id)
{
    struct sim_alloc *sa = dv_xcalloc(1, sizeof(*sa));

    sa->id = id;
    sa->sn = sn;
    sa->state = SIM_RUNNING;
    sim_hash_add(sn, sa);
    sn->active++;
    return sa;
}

static void
sim_alloc_finish(struct sim_alloc *sa, const char *client_status, int status,
                 const char *msg)
{
    struct noded *nd = sa->sn->nd;
    struct status_update *u;

    if (sa->state == SIM_DONE) {
        return;
    }
    wheel_remove(nd->sim, sa);
    sa->state = SIM_DONE;
    sa->sn->active--;
    nd->sim->finished++;
    /* Not sent yet: the terminal update says it all. */
    client_drop_update(nd, sa->run_u);
    sa->run_u = NULL;
    u = status_update_new(sa->id, client_status);
    u->has_exit = 1;
    u->exit_status = status;
    u->message = msg != NULL ? dv_xstrdup(msg) : NULL;
    client_queue_update(nd, u);
    noded_check_done(nd);
}

static void
sim_alloc_expired(struct sim_alloc *sa)
{
    if (sa->over) {
        sim_alloc_finish(sa, "failed", -29, "exceeded resource walltime");
    } else {
        sim_alloc_finish(sa, "complete", 0, NULL);
    }
}

static void
sim_alloc_stop(struct sim_alloc *sa, enum alloc_stop reason)
{
    if (sa->state != SIM_RUNNING) {
        return;
    }
    if (reason == ALLOC_STOP_DESIRED && !sa->pbs0) {
        sim_alloc_finish(sa, "complete", 0, "stopped on request");
    } else {
        /* What a job killed by SIGTERM reports (qdel: 271). */
        sim_alloc_finish(sa, "failed", SIM_STATUS_DELETED,
                         reason == ALLOC_STOP_DESIRED ? NULL
                         : reason == ALLOC_STOP_FENCED
                             ? "stopped: no heartbeat reached the servers "
                               "for a TTL"
                         : reason == ALLOC_STOP_SHUTDOWN
                             ? "stopped by drover-noded shutting down"
                             : "stopped: no longer assigned to this node");
    }
}

static void
sim_start_alloc(struct sim_node *sn, const struct alloc_desc *d)
{
    struct sim *s = sn->nd->sim;
    struct sim_alloc *sa = sim_alloc_new(sn, d->id);
    int native = d->job != NULL && native_spec_is(d->job);
    struct status_update *u;
    double rt = -1;
    int over = 0;

    s->started++;
    sa->pbs0 = !native && d->chunk_index == 0;
    if (native || d->chunk_index == 0) {
        rt = d->job != NULL    ? sim_runtime(d->job, d->walltime, &over)
             : d->walltime > 0 ? (double)d->walltime
                               : -1;
    }
    sa->over = (unsigned char)over;
    if (s->cfg->simulate_running) {
        u = status_update_new(sa->id, "running");
        sa->run_u = u;
        client_queue_update(sn->nd, u);
    }
    if (rt >= 0) {
        wheel_insert(s, sa, dv_clock_real_span(rt));
    }
}

static int
terminal(const char *cs)
{
    return cs != NULL && (strcmp(cs, "complete") == 0 ||
                          strcmp(cs, "failed") == 0 || strcmp(cs, "lost") == 0);
}

void
sim_reconcile(struct noded *nd, const struct poll_answer *ans,
              unsigned long gen)
{
    struct sim_node *sn = nd->simnode;

    /* Acknowledged before this poll was sent: forgotten. */
    while (sn->grave_head != NULL && sn->grave_head->ack_gen < gen) {
        struct sim_alloc *sa = sn->grave_head;

        sn->grave_head = sa->wnext;
        if (sn->grave_head == NULL) {
            sn->grave_tail = NULL;
        }
        sim_hash_del(sn, sa);
        free(sa);
    }
    for (int i = 0; i < ans->n; i++) {
        const struct alloc_desc *d = &ans->descs[i];
        struct sim_alloc *sa = sim_find(sn, d->id);

        if (sa != NULL) {
            sa->seen = gen;
            if (terminal(d->client_status)) {
                sim_alloc_stop(sa, ALLOC_STOP_MISSING);
            } else if (!d->desired_run) {
                sim_alloc_stop(sa, ALLOC_STOP_DESIRED);
            }
            continue;
        }
        if (nd->state == NODED_STOPPING || d->client_status == NULL ||
            terminal(d->client_status)) {
            continue;
        }
        if (d->desired_run && strcmp(d->client_status, "pending") == 0) {
            sim_start_alloc(sn, d);
            sim_find(sn, d->id)->seen = gen;
            continue;
        }
        /* Listed but never run here (the simulation restarted). */
        sa = sim_alloc_new(sn, d->id);
        sa->seen = gen;
        if (strcmp(d->client_status, "running") == 0) {
            sim_alloc_finish(sa, "lost", 0,
                             "drover-noded does not run it (restarted?)");
        } else {
            sa->pbs0 = d->job == NULL || !native_spec_is(d->job);
            sa->pbs0 = sa->pbs0 && d->chunk_index == 0;
            sim_alloc_stop(sa, ALLOC_STOP_DESIRED);
        }
    }
    if (!ans->full) {
        return;
    }
    for (unsigned b = 0; b < sn->nbuckets; b++) {
        for (struct sim_alloc *sa = sn->buckets[b]; sa != NULL;
             sa = sa->hnext) {
            if (sa->state == SIM_RUNNING && sa->seen != gen) {
                sim_alloc_stop(sa, ALLOC_STOP_MISSING);
            }
        }
    }
}

void
sim_stop_all(struct noded *nd, enum alloc_stop reason)
{
    struct sim_node *sn = nd->simnode;

    for (unsigned b = 0; b < sn->nbuckets; b++) {
        for (struct sim_alloc *sa = sn->buckets[b]; sa != NULL;
             sa = sa->hnext) {
            sim_alloc_stop(sa, reason);
        }
    }
}

int
sim_active_count(const struct noded *nd)
{
    return nd->simnode != NULL ? nd->simnode->active : 0;
}

int
sim_known(struct noded *nd, long long id)
{
    return sim_find(nd->simnode, id) != NULL;
}

void
sim_final_acked(struct noded *nd, long long id)
{
    struct sim_node *sn = nd->simnode;
    struct sim_alloc *sa = sim_find(sn, id);

    if (sa == NULL || sa->state != SIM_DONE || sa->acked) {
        return;
    }
    sa->acked = 1;
    sa->ack_gen = nd->poll_gen;
    sa->wnext = NULL;
    if (sn->grave_tail != NULL) {
        sn->grave_tail->wnext = sa;
    } else {
        sn->grave_head = sa;
    }
    sn->grave_tail = sa;
}

void
sim_update_gone(struct noded *nd, const struct status_update *u)
{
    struct sim_alloc *sa = sim_find(nd->simnode, u->alloc_id);

    if (sa != NULL && sa->run_u == u) {
        sa->run_u = NULL;
    }
}

void
sim_free_node(struct noded *nd)
{
    struct sim_node *sn = nd->simnode;

    if (sn == NULL) {
        return;
    }
    for (unsigned b = 0; b < sn->nbuckets; b++) {
        struct sim_alloc *sa = sn->buckets[b], *next;

        for (; sa != NULL; sa = next) {
            next = sa->hnext;
            if (sa->state == SIM_RUNNING) {
                wheel_remove(nd->sim, sa);
            }
            free(sa);
        }
    }
    free(sn->buckets);
    free(sn);
    nd->simnode = NULL;
}

/* ---- the simulation ----------------------------------------------------- */

void
sim_node_done(struct noded *nd)
{
    struct sim *s = nd->sim;

    if (nd->simnode == NULL || nd->simnode->done) {
        return;
    }
    nd->simnode->done = 1;
    s->ndone++;
    if (s->ndone == s->n) {
        log_notice("simulation: every node stopped and reported: exiting");
        ev_break(s->loop, EVBREAK_ALL);
    }
}

static void
sim_shutdown_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sim *s = w->data;

    (void)revents;
    log_warn("simulation: giving up with %d of %d nodes not done",
             s->n - s->ndone, s->n);
    s->exit_status = 1;
    ev_break(loop, EVBREAK_ALL);
}

static void
sim_sigterm_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct sim *s = w->data;

    (void)loop;
    (void)revents;
    if (s->stopping) {
        log_notice("received signal %d again: still stopping (%d of %d "
                   "nodes done)",
                   w->signum, s->ndone, s->n);
        return;
    }
    log_notice("received signal %d: stopping %d simulated nodes", w->signum,
               s->n);
    s->stopping = 1;
    ev_timer_set(&s->shutdown_w,
                 dv_clock_real_span(s->cfg->kill_grace) + SIM_FLUSH_LIMIT, 0.);
    ev_timer_start(s->loop, &s->shutdown_w);
    for (int i = 0; i < s->n; i++) {
        noded_shutdown(&s->nodes[i]);
    }
}

static void
sim_sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct sim *s = w->data;

    (void)loop;
    (void)revents;
    if (s->reload_cb != NULL && s->n > 0) {
        s->reload_cb(&s->nodes[0]);
    }
}

static void
sim_stats_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sim *s = w->data;
    int registered = 0, pending = 0;
    long active = 0;

    (void)loop;
    (void)revents;
    for (int i = 0; i < s->nhttp; i++) {
        pending += dv_http_async_pending(s->http[i]);
    }
    for (int i = 0; i < s->n; i++) {
        registered += s->nodes[i].registered;
        active += s->nodes[i].simnode != NULL ? s->nodes[i].simnode->active : 0;
    }
    log_info("simulation: %d of %d nodes registered, %ld allocations "
             "running, %ld started, %ld ended, %d requests in flight",
             registered, s->n, active, s->started, s->finished, pending);
}

void
sim_set_reload(struct sim *s, void (*cb)(struct noded *nd))
{
    s->reload_cb = cb;
}

struct sim *
sim_new(struct ev_loop *loop, const struct noded_config *cfg,
        struct dv_err *err)
{
    struct sim *s = dv_xcalloc(1, sizeof(*s));
    struct dv_http_client_config hc;
    const char *base = cfg->name != NULL ? cfg->name : "sim";

    s->loop = loop;
    s->cfg = cfg;
    s->n = (int)cfg->simulate;
    s->ntopos =
        cfg->simulate_mix ? (int)(sizeof(sim_mix) / sizeof(sim_mix[0])) : 1;
    s->topos = dv_xcalloc((size_t)s->ntopos, sizeof(*s->topos));
    for (int k = 0; k < s->ntopos; k++) {
        const char *syn = cfg->simulate_mix ? sim_mix[k].synthetic
                          : cfg->simulate_topology != NULL
                              ? cfg->simulate_topology
                              : "pack:2 numa:2 core:16 pu:1";
        int64_t mem = cfg->memory;

        if (mem <= 0 && cfg->simulate_mix) {
            mem = sim_mix[k].memory;
        }
        s->topos[k] = topology_load(NULL, syn, mem, err);
        if (s->topos[k] == NULL) {
            goto fail;
        }
        if (mem <= 0) {
            s->topos[k]->memory = (uint64_t)s->topos[k]->ncores << 32;
        }
        if (cfg->simulate_mix && sim_mix[k].gpus > 0) {
            topology_fake_gpus(s->topos[k], sim_mix[k].gpus);
        }
    }
    memset(&hc, 0, sizeof(hc));
    hc.base = cfg->server;
    hc.ca_file = cfg->tls_ca;
    hc.cert = cfg->tls_cert;
    hc.key = cfg->tls_key;
    s->nhttp = (s->n + SIM_NODES_PER_CLIENT - 1) / SIM_NODES_PER_CLIENT;
    s->http = dv_xcalloc((size_t)s->nhttp, sizeof(*s->http));
    for (int i = 0; i < s->nhttp; i++) {
        s->http[i] = dv_http_async_new(loop, &hc, err);
        if (s->http[i] == NULL) {
            goto fail;
        }
    }
    s->nodes = dv_xcalloc((size_t)s->n, sizeof(*s->nodes));
    for (int i = 0; i < s->n; i++) {
        struct noded *nd = &s->nodes[i];
        int kind = cfg->simulate_mix ? sim_mix_pattern[i % 10] : 0;

        noded_init(nd, loop, cfg, s->topos[kind]);
        free(nd->name);
        nd->name = dv_xasprintf("%s-%d", base, i + 1);
        nd->disk = cfg->disk > 0 ? cfg->disk : 100LL << 30;
        nd->sim = s;
        nd->simnode = dv_xcalloc(1, sizeof(*nd->simnode));
        nd->simnode->nd = nd;
        nd->http = s->http[i % s->nhttp];
        nd->batch_delay = SIM_BATCH_DELAY;
        /* Heartbeats spread evenly over TTL/3. */
        nd->hb_phase = (double)(i + 1) / (double)s->n;
    }
    ev_timer_init(&s->tick_w, tick_cb, 0., SIM_TICK);
    s->tick_w.data = s;
    ev_timer_init(&s->stats_w, sim_stats_cb, SIM_STATS_EVERY, SIM_STATS_EVERY);
    s->stats_w.data = s;
    ev_signal_init(&s->sigterm_w, sim_sigterm_cb, SIGTERM);
    ev_signal_init(&s->sigint_w, sim_sigterm_cb, SIGINT);
    ev_signal_init(&s->sighup_w, sim_sighup_cb, SIGHUP);
    s->sigterm_w.data = s;
    s->sigint_w.data = s;
    s->sighup_w.data = s;
    ev_timer_init(&s->shutdown_w, sim_shutdown_timeout_cb, 0., 0.);
    s->shutdown_w.data = s;
    s->t0 = ev_now(loop);
    return s;
fail:
    sim_free(s);
    return NULL;
}

int
sim_start(struct sim *s, struct dv_err *err)
{
    /* Registrations spread over up to 5 s (a thousand a second). */
    double spread = s->n / 1000.0 < 5.0 ? s->n / 1000.0 : 5.0;

    ev_signal_start(s->loop, &s->sigterm_w);
    ev_signal_start(s->loop, &s->sigint_w);
    ev_signal_start(s->loop, &s->sighup_w);
    ev_timer_start(s->loop, &s->stats_w);
    for (int i = 0; i < s->n; i++) {
        if (client_start(&s->nodes[i], 0.001 + spread * i / s->n, err) < 0) {
            return -1;
        }
    }
    log_notice("simulating %d nodes (%s-1 ... %s-%d), %s topolog%s, server "
               "%s",
               s->n, s->nodes[0].name,
               s->cfg->name != NULL ? s->cfg->name : "sim", s->n,
               s->cfg->simulate_mix ? "mixed" : "one",
               s->cfg->simulate_mix ? "ies" : "y", s->cfg->server);
    return 0;
}

int
sim_exit_status(const struct sim *s)
{
    return s->exit_status;
}

void
sim_free(struct sim *s)
{
    if (s == NULL) {
        return;
    }
    ev_timer_stop(s->loop, &s->tick_w);
    ev_timer_stop(s->loop, &s->stats_w);
    ev_timer_stop(s->loop, &s->shutdown_w);
    ev_signal_stop(s->loop, &s->sigterm_w);
    ev_signal_stop(s->loop, &s->sigint_w);
    ev_signal_stop(s->loop, &s->sighup_w);
    for (int i = 0; s->nodes != NULL && i < s->n; i++) {
        s->nodes[i].http = NULL; /* shared: freed below */
        noded_cleanup(&s->nodes[i]);
    }
    free(s->nodes);
    for (int i = 0; s->http != NULL && i < s->nhttp; i++) {
        dv_http_async_free(s->http[i]);
    }
    free(s->http);
    for (int k = 0; k < s->ntopos; k++) {
        topology_free(s->topos[k]);
    }
    free(s->topos);
    free(s);
}
