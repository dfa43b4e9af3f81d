/*
 * The nodes' SQL: registration, heartbeats, a node's allocations (blocking
 * queries), batched allocation status updates (capacity release, job
 * ends), the node list, the status counts and the liveness pass (nodes
 * down). Rules of db.c apply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cpuset.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

/* --- nodes --- */

static int
register_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char find[] =
        "SELECT id, status FROM nodes WHERE name = $1 FOR UPDATE";
    static const char active[] =
        "SELECT cpuset, mem, ngpus FROM allocations "
        "WHERE node_id = $1 AND client_status IN " DB_ACTIVE;
    static const char upsert[] =
        "INSERT INTO nodes (name, datacenter, pool, status, address, "
        "attributes, topology, total_cores, total_mem, total_gpus, "
        "free_cores, free_mem, free_gpus, free_cpuset, heartbeat_ttl, "
        "heartbeat_deadline, register_time, status_time, modify_index) "
        "VALUES ($1, $2, $3, 'ready', $4, $5::jsonb, $6::jsonb, $7, $8, $9, "
        "$10, $11, $12, $13, $14, to_timestamp($15), to_timestamp($16), "
        "to_timestamp($16), nextval('modify_index_seq')) "
        "ON CONFLICT (name) DO UPDATE SET datacenter = EXCLUDED.datacenter, "
        "pool = EXCLUDED.pool, address = EXCLUDED.address, "
        "attributes = EXCLUDED.attributes, topology = EXCLUDED.topology, "
        "total_cores = EXCLUDED.total_cores, total_mem = EXCLUDED.total_mem, "
        "total_gpus = EXCLUDED.total_gpus, free_cores = EXCLUDED.free_cores, "
        "free_mem = EXCLUDED.free_mem, free_gpus = EXCLUDED.free_gpus, "
        "free_cpuset = EXCLUDED.free_cpuset, "
        "heartbeat_ttl = EXCLUDED.heartbeat_ttl, "
        "heartbeat_deadline = EXCLUDED.heartbeat_deadline, "
        "register_time = EXCLUDED.register_time, "
        "status_time = CASE WHEN nodes.status <> 'ready' "
        "THEN EXCLUDED.status_time ELSE nodes.status_time END, "
        "status = 'ready', modify_index = nextval('modify_index_seq') "
        "RETURNING id";
    struct db_node_reg *r = arg;
    struct notify_set ns = {0};
    PGresult *res = NULL;
    char *free_set = dv_cpuset_first_n((int)r->cores);
    int64_t free_mem = r->memory, free_gpus = r->gpus, free_cores;
    int rc = -1;

    r->node_id = 0;
    r->created = 0;
    r->old_status[0] = '\0';
    {
        const char *p[] = {r->name};
        res = dv_db_exec(db, find, 1, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    if (PQntuples(res) > 0) {
        char b1[24];
        const char *p[] = {dv_db_i64(b1, dv_db_get_i64(res, 0, "id", 0))};

        dv_strlcpy(r->old_status, dv_db_get(res, 0, "status"),
                   sizeof(r->old_status));
        PQclear(res);
        res = dv_db_exec(db, active, 1, p, err);
        if (res == NULL) {
            goto out;
        }
        /* Free capacity: totals minus what its active allocations hold. */
        for (int i = 0; i < PQntuples(res); i++) {
            struct dv_err e;
            char *rest =
                dv_cpuset_subtract(free_set, dv_db_get(res, i, "cpuset"), &e);
            if (rest != NULL) {
                free(free_set);
                free_set = rest;
            } else {
                log_warn("node %s: %s", r->name, e.msg);
            }
            free_mem -= dv_db_get_i64(res, i, "mem", 0);
            free_gpus -= dv_db_get_i64(res, i, "ngpus", 0);
        }
    } else {
        r->created = 1;
    }
    PQclear(res);
    res = NULL;
    free_cores = dv_cpuset_count(free_set);
    if (free_cores < 0) {
        free_cores = 0;
    }
    {
        char b7[24], b8[24], b9[24], b10[24], b11[24], b12[24], b14[32],
            b15[32], b16[32];
        const char *p[] = {
            r->name,
            r->datacenter,
            r->pool,
            r->address,
            r->attributes,
            r->topology,
            dv_db_i64(b7, r->cores),
            dv_db_i64(b8, r->memory),
            dv_db_i64(b9, r->gpus),
            dv_db_i64(b10, free_cores),
            dv_db_i64(b11, free_mem > 0 ? free_mem : 0),
            dv_db_i64(b12, free_gpus > 0 ? free_gpus : 0),
            free_set,
            dv_db_double(b14, r->ttl),
            dv_db_double(b15, r->now + r->ttl),
            dv_db_double(b16, r->now),
        };
        res = dv_db_exec(db, upsert, 16, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    r->node_id = dv_db_get_i64(res, 0, "id", 0);
    ns.capacity = 1;
    if (db_notify_send(db, &ns, err) < 0) {
        goto out;
    }
    rc = 0;
out:
    PQclear(res);
    free(free_set);
    notify_cleanup(&ns);
    return rc;
}

int
db_node_register(struct dv_db *db, struct db_node_reg *r, struct dv_err *err)
{
    return dv_db_tx(db, DV_DB_READ_COMMITTED, register_tx, NULL, r,
                    QMGR_TX_ATTEMPTS, err);
}

struct heartbeat_tx {
    int64_t id;
    double ttl;
    double now;
    int was_down;
    char name[256];
};

static int
heartbeat_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    /* A heartbeat moves only the deadline, which no reader of "changes
     * since index N" cares about: modify_index moves when the status
     * does. */
    static const char sql[] =
        "UPDATE nodes n SET heartbeat_deadline = to_timestamp($2), "
        "heartbeat_ttl = $3, status = 'ready', "
        "status_time = CASE WHEN o.status <> 'ready' THEN to_timestamp($4) "
        "ELSE n.status_time END, "
        "modify_index = CASE WHEN o.status <> 'ready' "
        "THEN nextval('modify_index_seq') ELSE n.modify_index END "
        "FROM (SELECT id, status FROM nodes WHERE id = $1 FOR UPDATE) o "
        "WHERE n.id = o.id RETURNING o.status AS old_status, n.name";
    struct heartbeat_tx *h = arg;
    struct notify_set ns = {0};
    char b1[24], b2[32], b3[32], b4[32];
    const char *p[] = {dv_db_i64(b1, h->id), dv_db_double(b2, h->now + h->ttl),
                       dv_db_double(b3, h->ttl), dv_db_double(b4, h->now)};
    PGresult *res;
    int rc = 0;

    h->was_down = 0;
    h->name[0] = '\0';
    res = dv_db_exec(db, sql, 4, p, err);
    if (res == NULL) {
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        db_node_not_found(h->id, err);
        return -1;
    }
    dv_strlcpy(h->name, dv_db_get(res, 0, "name"), sizeof(h->name));
    h->was_down = strcmp(dv_db_get(res, 0, "old_status"), "ready") != 0;
    PQclear(res);
    if (h->was_down) {
        ns.capacity = 1;
        rc = db_notify_send(db, &ns, err);
    }
    notify_cleanup(&ns);
    return rc;
}

int
db_node_heartbeat(struct dv_db *db, int64_t id, double ttl, double now,
                  int *was_down, char *name, size_t namelen, struct dv_err *err)
{
    struct heartbeat_tx h = {.id = id, .ttl = ttl, .now = now};

    if (dv_db_tx(db, DV_DB_READ_COMMITTED, heartbeat_tx, NULL, &h,
                 QMGR_TX_ATTEMPTS, err) < 0) {
        return -1;
    }
    *was_down = h.was_down;
    dv_strlcpy(name, h.name, namelen);
    return 0;
}

void
db_node_allocs_clear(struct db_node_allocs *a)
{
    PQclear(a->allocs);
    PQclear(a->hosts);
    a->allocs = NULL;
    a->hosts = NULL;
}

static int
node_allocs_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char index[] =
        "SELECT n.id, coalesce((SELECT max(a.modify_index) FROM allocations a "
        "WHERE a.node_id = n.id), 0) AS idx FROM nodes n WHERE n.id = $1";
    static const char allocs[] =
        "SELECT a.id, a.job_id, a.chunk_index, a.desired_status, "
        "a.client_status, a.ncpus, a.mem, a.ngpus, a.cpuset, a.modify_index, "
        "j.walltime, j.queue, j.spec FROM allocations a "
        "JOIN jobs j ON j.id = a.job_id "
        "WHERE a.node_id = $1 AND a.client_status IN " DB_ACTIVE
        " ORDER BY a.id";
    static const char hosts[] =
        "SELECT a.job_id, n.name AS host, a.ncpus FROM allocations a "
        "JOIN nodes n ON n.id = a.node_id "
        "WHERE a.job_id = ANY($1::bigint[]) AND a.client_status IN " DB_ACTIVE
        " ORDER BY a.job_id, a.chunk_index, a.id";
    struct db_node_allocs *a = arg;
    char b1[24];
    const char *p[] = {dv_db_i64(b1, a->node_id)};
    PGresult *res;
    struct dv_buf ids;
    int64_t last = -1;
    int n = 0;

    db_node_allocs_clear(a);
    a->moved = 0;
    a->index = 0;
    res = dv_db_exec(db, index, 1, p, err);
    if (res == NULL) {
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        db_node_not_found(a->node_id, err);
        return -1;
    }
    a->index = dv_db_get_i64(res, 0, "idx", 0);
    PQclear(res);
    if (a->min_index >= 0 && a->index <= a->min_index) {
        return 0;
    }
    a->moved = 1;
    a->allocs = dv_db_exec(db, allocs, 1, p, err);
    if (a->allocs == NULL) {
        return -1;
    }
    dv_buf_init(&ids);
    dv_buf_putc(&ids, '{');
    for (int i = 0; i < PQntuples(a->allocs); i++) {
        int64_t j = dv_db_get_i64(a->allocs, i, "job_id", 0);
        if (j != last) {
            dv_buf_printf(&ids, "%s%lld", n++ > 0 ? "," : "", (long long)j);
            last = j;
        }
    }
    dv_buf_putc(&ids, '}');
    {
        const char *ph[] = {dv_buf_str(&ids)};
        a->hosts = dv_db_exec(db, hosts, 1, ph, err);
    }
    dv_buf_cleanup(&ids);
    return a->hosts == NULL ? -1 : 0;
}

int
db_node_allocs(struct dv_db *db, struct db_node_allocs *a, struct dv_err *err)
{
    return dv_db_tx(db, DV_DB_REPEATABLE_READ, node_allocs_tx, NULL, a,
                    QMGR_TX_ATTEMPTS, err);
}

void
db_alloc_status_clear(struct db_alloc_status *s)
{
    free(s->events);
    s->events = NULL;
    s->nevents = 0;
}

static int
is_terminal(const char *status)
{
    return strcmp(status, "complete") == 0 || strcmp(status, "failed") == 0 ||
           strcmp(status, "lost") == 0;
}

static int
alloc_status_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char lock_node[] =
        "SELECT id, free_cpuset, total_cores FROM nodes WHERE id = $1 "
        "FOR UPDATE";
    static const char find_node[] = "SELECT id FROM nodes WHERE id = $1";
    static const char lock_jobs[] =
        "SELECT id FROM jobs WHERE id IN (SELECT job_id FROM allocations "
        "WHERE id = ANY($1::bigint[]) AND node_id = $2) ORDER BY id "
        "FOR UPDATE";
    static const char running[] =
        "UPDATE allocations SET client_status = 'running', "
        "start_time = to_timestamp($3), "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND node_id = $2 AND client_status = 'pending'";
    static const char ended[] =
        "UPDATE allocations SET client_status = $3, exit_status = $4, "
        "message = $5, used_cput = $6, used_mem = $7, "
        "end_time = to_timestamp($8), "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND node_id = $2 AND client_status IN " DB_ACTIVE
        " RETURNING job_id, chunk_index, cpuset, mem, ngpus, desired_status";
    static const char release[] =
        "UPDATE nodes SET free_cpuset = $2, free_cores = $3, "
        "free_mem = least(total_mem, free_mem + $4), "
        "free_gpus = least(total_gpus, free_gpus + $5), "
        "modify_index = nextval('modify_index_seq') WHERE id = $1";
    static const char index[] =
        "SELECT coalesce(max(modify_index), 0) AS idx FROM allocations "
        "WHERE node_id = $1";
    struct db_alloc_status *s = arg;
    struct notify_set ns = {0};
    PGresult *res = NULL;
    char nid[24];
    char *free_set = NULL;
    int64_t total_cores = 0, freed_mem = 0, freed_gpus = 0;
    int terminal = 0, freed = 0, rc = -1;
    struct dv_buf ids;

    db_alloc_status_clear(s);
    s->index = 0;
    s->applied = 0;
    dv_buf_init(&ids);
    dv_db_i64(nid, s->node_id);
    for (int i = 0; i < s->n; i++) {
        terminal |= is_terminal(s->u[i].status);
    }
    {
        const char *p[] = {nid};
        res = dv_db_exec(db, terminal ? lock_node : find_node, 1, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    if (PQntuples(res) == 0) {
        db_node_not_found(s->node_id, err);
        goto out;
    }
    if (terminal) {
        free_set = dv_xstrdup(dv_db_get(res, 0, "free_cpuset"));
        total_cores = dv_db_get_i64(res, 0, "total_cores", 0);
    }
    PQclear(res);
    res = NULL;

    /* Jobs before allocations (the lock order). */
    {
        int64_t *v = dv_xcalloc((size_t)s->n + 1, sizeof(int64_t));
        for (int i = 0; i < s->n; i++) {
            v[i] = s->u[i].id;
        }
        fmt_id_array(v, s->n, &ids);
        free(v);
        const char *p[] = {dv_buf_str(&ids), nid};
        res = dv_db_exec(db, lock_jobs, 2, p, err);
        if (res == NULL) {
            goto out;
        }
        PQclear(res);
        res = NULL;
    }

    for (int i = 0; i < s->n; i++) {
        const struct alloc_update *u = &s->u[i];
        double when = u->time > 0 ? u->time : s->now;
        char b1[24], b3[32], b4[24], b6[24], b7[24];

        if (strcmp(u->status, "running") == 0) {
            const char *p[] = {dv_db_i64(b1, u->id), nid,
                               dv_db_double(b3, when)};
            int64_t n = dv_db_exec_cmd(db, running, 3, p, err);
            if (n < 0) {
                goto out;
            }
            s->applied += (int)n;
            continue;
        }
        {
            const char *p[] = {
                dv_db_i64(b1, u->id),
                nid,
                u->status,
                u->has_exit ? dv_db_i64(b4, u->exit_status) : NULL,
                u->message,
                u->has_used ? dv_db_i64(b6, u->used_cput) : NULL,
                u->has_used ? dv_db_i64(b7, u->used_mem) : NULL,
                dv_db_double(b3, when),
            };
            res = dv_db_exec(db, ended, 8, p, err);
        }
        if (res == NULL) {
            goto out;
        }
        if (PQntuples(res) == 0) {
            PQclear(res);
            res = NULL;
            continue; /* unknown, another node's, or already ended */
        }
        s->applied++;
        {
            struct dv_err e;
            char *u2 =
                dv_cpuset_union(free_set, dv_db_get(res, 0, "cpuset"), &e);
            if (u2 != NULL) {
                free(free_set);
                free_set = u2;
            } else {
                log_warn("allocation %lld: %s", (long long)u->id, e.msg);
            }
        }
        freed_mem += dv_db_get_i64(res, 0, "mem", 0);
        freed_gpus += dv_db_get_i64(res, 0, "ngpus", 0);
        freed = 1;
        if (dv_db_get_i64(res, 0, "chunk_index", 0) == 0) {
            struct job_end e = {
                .job_id = dv_db_get_i64(res, 0, "job_id", 0),
                .alloc_id = u->id,
                .kind = strcmp(u->status, "lost") == 0 ? END_LOST : END_EXIT,
                .client_status = u->status,
                .message = u->message,
                .has_exit = u->has_exit,
                .exit_status = u->exit_status,
                .has_used = u->has_used,
                .used_cput = u->used_cput,
                .used_walltime = u->used_walltime,
                .used_mem = u->used_mem,
                .when = when,
                .now = s->now,
                .lost_how = "failed: its allocation was lost",
            };
            char desired[8];
            dv_strlcpy(desired, dv_db_get(res, 0, "desired_status"),
                       sizeof(desired));
            PQclear(res);
            res = NULL;
            if (db_job_end(db, &e, desired, &ns, &s->events, &s->nevents, err) <
                0) {
                goto out;
            }
        } else {
            PQclear(res);
            res = NULL;
        }
    }
    if (s->applied > 0) {
        notify_add_node(&ns, s->node_id);
    }
    if (freed) {
        struct dv_err e;
        char *clipped = db_clip_cpuset(free_set, total_cores, &e);
        char b3[24], b4[24], b5[24];
        int cores;

        if (clipped == NULL) {
            dv_err_set(err, DV_EINTERNAL, NULL, "node %lld: %s",
                       (long long)s->node_id, e.msg);
            goto out;
        }
        cores = dv_cpuset_count(clipped);
        const char *p[] = {nid, clipped, dv_db_i64(b3, cores < 0 ? 0 : cores),
                           dv_db_i64(b4, freed_mem), dv_db_i64(b5, freed_gpus)};
        int64_t n = dv_db_exec_cmd(db, release, 5, p, err);
        free(clipped);
        if (n < 0) {
            goto out;
        }
        ns.capacity = 1;
    }
    if (db_notify_send(db, &ns, err) < 0) {
        goto out;
    }
    {
        const char *p[] = {nid};
        res = dv_db_exec(db, index, 1, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    s->index = dv_db_get_i64(res, 0, "idx", 0);
    rc = 0;
out:
    PQclear(res);
    free(free_set);
    dv_buf_cleanup(&ids);
    notify_cleanup(&ns);
    return rc;
}

int
db_alloc_status(struct dv_db *db, struct db_alloc_status *s, struct dv_err *err)
{
    return dv_db_tx(db, DV_DB_READ_COMMITTED, alloc_status_tx, NULL, s,
                    QMGR_TX_ATTEMPTS, err);
}

struct node_list_tx {
    PGresult **nodes;
    PGresult **jobs;
};

static int
node_list_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char nodes[] =
        "SELECT id, name, status, eligible, datacenter, pool, address, "
        "total_cores, free_cores, total_mem, free_mem, total_gpus, free_gpus, "
        "free_cpuset, heartbeat_ttl, "
        "floor(extract(epoch FROM heartbeat_deadline))::bigint "
        "AS heartbeat_deadline, modify_index FROM nodes ORDER BY id";
    static const char jobs[] =
        "SELECT DISTINCT node_id, job_id FROM allocations "
        "WHERE client_status IN " DB_ACTIVE " ORDER BY node_id, job_id";
    struct node_list_tx *t = arg;

    PQclear(*t->nodes);
    PQclear(*t->jobs);
    *t->jobs = NULL;
    *t->nodes = dv_db_exec(db, nodes, 0, NULL, err);
    if (*t->nodes == NULL) {
        return -1;
    }
    *t->jobs = dv_db_exec(db, jobs, 0, NULL, err);
    return *t->jobs == NULL ? -1 : 0;
}

int
db_node_list(struct dv_db *db, PGresult **nodes, PGresult **jobs,
             struct dv_err *err)
{
    struct node_list_tx t = {nodes, jobs};

    *nodes = NULL;
    *jobs = NULL;
    return dv_db_tx(db, DV_DB_REPEATABLE_READ, node_list_tx, NULL, &t,
                    QMGR_TX_ATTEMPTS, err);
}

static int
status_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    /* Each count is one indexed read: the partial indexes of active jobs
     * and of evaluation states; finished jobs are counted on the primary
     * key (the one count that grows with history). */
    static const char sql[] =
        "SELECT (SELECT count(*) FROM jobs WHERE state = 'queued') AS queued, "
        "(SELECT count(*) FROM jobs WHERE state = 'held') AS held, "
        "(SELECT count(*) FROM jobs WHERE state = 'running') AS running, "
        "(SELECT count(*) FROM jobs WHERE state = 'exiting') AS exiting, "
        "(SELECT count(*) FROM jobs WHERE state = 'finished') AS finished, "
        "(SELECT count(*) FROM nodes WHERE status = 'ready') AS nodes_ready, "
        "(SELECT count(*) FROM nodes WHERE status = 'down') AS nodes_down, "
        "(SELECT count(*) FROM evaluations WHERE status = 'pending') "
        "AS evals_pending, "
        "(SELECT count(*) FROM evaluations WHERE status = 'leased') "
        "AS evals_leased, "
        "(SELECT count(*) FROM evaluations WHERE status = 'blocked') "
        "AS evals_blocked";
    PGresult **res = arg;

    PQclear(*res);
    *res = dv_db_exec(db, sql, 0, NULL, err);
    return *res == NULL ? -1 : 0;
}

int
db_status(struct dv_db *db, PGresult **res, struct dv_err *err)
{
    *res = NULL;
    return dv_db_tx(db, DV_DB_REPEATABLE_READ, status_tx, NULL, res,
                    QMGR_TX_ATTEMPTS, err);
}

/* --- liveness --- */

void
db_liveness_clear(struct db_liveness *l)
{
    for (int i = 0; i < l->ndown; i++) {
        free(l->down[i].name);
    }
    free(l->down);
    free(l->events);
    l->down = NULL;
    l->ndown = 0;
    l->events = NULL;
    l->nevents = 0;
}

static int
liveness_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char lock[] = "SELECT pg_try_advisory_xact_lock($1) AS got";
    static const char expired[] =
        "SELECT id, name, total_cores FROM nodes WHERE status = 'ready' "
        "AND heartbeat_deadline < to_timestamp($1) ORDER BY id LIMIT $2 "
        "FOR UPDATE SKIP LOCKED";
    static const char lock_jobs[] =
        "SELECT id FROM jobs WHERE id IN (SELECT job_id FROM allocations "
        "WHERE node_id = ANY($1::bigint[]) AND client_status IN " DB_ACTIVE
        ") ORDER BY id FOR UPDATE";
    static const char lose[] =
        "WITH i AS (SELECT nextval('modify_index_seq') AS v) "
        "UPDATE allocations SET client_status = 'lost', "
        "message = 'node down', end_time = to_timestamp($2), "
        "modify_index = i.v, alloc_modify_index = i.v FROM i "
        "WHERE node_id = ANY($1::bigint[]) AND client_status IN " DB_ACTIVE
        " RETURNING id, job_id, node_id, desired_status";
    static const char down[] =
        "UPDATE nodes SET status = 'down', status_time = to_timestamp($2), "
        "free_cores = total_cores, free_mem = total_mem, "
        "free_gpus = total_gpus, free_cpuset = $3, "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND status = 'ready'";
    static const char grace[] =
        "UPDATE nodes SET heartbeat_deadline = to_timestamp($1) + "
        "heartbeat_ttl * interval '1 second' WHERE status = 'ready' "
        "AND heartbeat_deadline < to_timestamp($1) + "
        "heartbeat_ttl * interval '1 second'";
    struct db_liveness *l = arg;
    struct notify_set ns = {0};
    PGresult *res = NULL, *lost = NULL;
    struct dv_buf ids;
    char b1[24], b2[32];
    int rc = -1;

    db_liveness_clear(l);
    l->got_lock = 0;
    l->extended = 0;
    dv_buf_init(&ids);
    {
        char k[24];
        const char *p[] = {dv_db_i64(k, QMGR_LIVENESS_LOCK)};
        res = dv_db_exec(db, lock, 1, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    l->got_lock = dv_db_get_bool(res, 0, "got", 0);
    PQclear(res);
    res = NULL;
    if (!l->got_lock) {
        rc = 0;
        goto out;
    }
    if (l->grace) {
        const char *p[] = {dv_db_double(b2, l->now)};
        int64_t n = dv_db_exec_cmd(db, grace, 1, p, err);
        if (n < 0) {
            goto out;
        }
        l->extended = (int)n;
        rc = 0;
        goto out;
    }
    {
        const char *p[] = {dv_db_double(b2, l->now),
                           dv_db_i64(b1, QMGR_LIVENESS_BATCH)};
        res = dv_db_exec(db, expired, 2, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    l->ndown = PQntuples(res);
    if (l->ndown == 0) {
        rc = 0;
        goto out;
    }
    l->down = dv_xcalloc((size_t)l->ndown, sizeof(*l->down));
    dv_buf_putc(&ids, '{');
    for (int i = 0; i < l->ndown; i++) {
        l->down[i].id = dv_db_get_i64(res, i, "id", 0);
        l->down[i].name = dv_xstrdup(dv_db_get(res, i, "name"));
        dv_buf_printf(&ids, "%s%lld", i > 0 ? "," : "",
                      (long long)l->down[i].id);
    }
    dv_buf_putc(&ids, '}');

    /* Nodes are locked (id order); now their jobs (id order). */
    {
        const char *p[] = {dv_buf_str(&ids)};
        PGresult *jr = dv_db_exec(db, lock_jobs, 1, p, err);
        if (jr == NULL) {
            goto out;
        }
        PQclear(jr);
    }
    {
        const char *p[] = {dv_buf_str(&ids), dv_db_double(b2, l->now)};
        lost = dv_db_exec(db, lose, 2, p, err);
    }
    if (lost == NULL) {
        goto out;
    }
    for (int i = 0; i < l->ndown; i++) {
        char *all =
            dv_cpuset_first_n((int)dv_db_get_i64(res, i, "total_cores", 0));
        char b3[24];
        const char *p[] = {dv_db_i64(b3, l->down[i].id),
                           dv_db_double(b2, l->now), all};
        int64_t n = dv_db_exec_cmd(db, down, 3, p, err);

        free(all);
        if (n < 0) {
            goto out;
        }
        notify_add_node(&ns, l->down[i].id);
    }
    for (int i = 0; i < PQntuples(lost); i++) {
        int64_t node = dv_db_get_i64(lost, i, "node_id", 0);
        struct job_end e = {
            .job_id = dv_db_get_i64(lost, i, "job_id", 0),
            .alloc_id = dv_db_get_i64(lost, i, "id", 0),
            .kind = END_LOST,
            .client_status = "lost",
            .when = l->now,
            .now = l->now,
            .lost_how = "failed: its node was lost",
        };

        for (int k = 0; k < l->ndown; k++) {
            if (l->down[k].id == node) {
                l->down[k].lost++;
            }
        }
        if (db_job_end(db, &e, dv_db_get(lost, i, "desired_status"), &ns,
                       &l->events, &l->nevents, err) < 0) {
            goto out;
        }
    }
    if (db_notify_send(db, &ns, err) < 0) {
        goto out;
    }
    rc = 0;
out:
    PQclear(res);
    PQclear(lost);
    dv_buf_cleanup(&ids);
    notify_cleanup(&ns);
    return rc;
}

int
db_liveness(struct dv_db *db, struct db_liveness *l, struct dv_err *err)
{
    return dv_db_tx(db, DV_DB_READ_COMMITTED, liveness_tx, NULL, l, 0, err);
}
