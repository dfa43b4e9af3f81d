/*
 * The nodes' SQL: registration, heartbeats, the nodes' long polls (many
 * nodes read in one transaction), batched allocation status updates
 * (capacity release, then qmgr/lifecycle.c for the jobs), the node list,
 * the status counts and the liveness pass (nodes down). Rules of db.c
 * apply. Every writer of a node's allocations' alloc_modify_index holds
 * the node's row lock when it draws the index.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cpuset.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

/* --- nodes --- */

/* Sets *out to the index set total minus everything the rows of res hold
 * in column col (a new string); a row that does not parse is logged. */
static char *
subtract_sets(const char *total, const PGresult *res, const char *col,
              const char *name)
{
    char *set = dv_xstrdup(total);

    for (int i = 0; i < PQntuples(res); i++) {
        struct dv_err e;
        const char *held = dv_db_get(res, i, col);
        char *rest;

        if (dv_str_empty(held)) {
            continue;
        }
        rest = dv_cpuset_subtract(set, held, &e);
        if (rest != NULL) {
            free(set);
            set = rest;
        } else {
            log_warn("node %s: %s", name, e.msg);
        }
    }
    return set;
}

static int
register_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char find[] =
        "SELECT id, status FROM nodes WHERE name = $1 FOR NO KEY UPDATE";
    static const char active[] =
        "SELECT cpuset, gpus, mem, ngpus, disk FROM allocations "
        "WHERE node_id = $1 AND client_status IN " DB_ACTIVE
        " AND end_time IS NULL";
    static const char upsert[] =
        "INSERT INTO nodes (name, datacenter, pool, status, address, "
        "attributes, topology, total_cores, total_mem, total_gpus, "
        "free_cores, free_mem, free_gpus, free_cpuset, heartbeat_ttl, "
        "heartbeat_deadline, register_time, status_time, free_gpuset, "
        "total_disk, free_disk, node_class, meta, modify_index) "
        "VALUES ($1, $2, $3, 'ready', $4, $5::jsonb, $6::jsonb, $7, $8, $9, "
        "$10, $11, $12, $13, $14, to_timestamp($15), to_timestamp($16), "
        "to_timestamp($16), $17, $18, $19, $20, $21::jsonb, "
        "nextval('modify_index_seq')) "
        "ON CONFLICT (name) DO UPDATE SET datacenter = EXCLUDED.datacenter, "
        "pool = EXCLUDED.pool, address = EXCLUDED.address, "
        "node_class = EXCLUDED.node_class, meta = EXCLUDED.meta, "
        "attributes = EXCLUDED.attributes, topology = EXCLUDED.topology, "
        "total_cores = EXCLUDED.total_cores, total_mem = EXCLUDED.total_mem, "
        "total_gpus = EXCLUDED.total_gpus, free_cores = EXCLUDED.free_cores, "
        "free_mem = EXCLUDED.free_mem, free_gpus = EXCLUDED.free_gpus, "
        "free_cpuset = EXCLUDED.free_cpuset, "
        "free_gpuset = EXCLUDED.free_gpuset, "
        "total_disk = EXCLUDED.total_disk, free_disk = EXCLUDED.free_disk, "
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
    char *all_cores = dv_cpuset_first_n((int)r->cores);
    char *all_gpus = dv_cpuset_first_n((int)r->gpus);
    char *free_set = NULL, *free_gpuset = NULL;
    int64_t free_mem = r->memory, free_gpus = r->gpus, free_disk = r->disk;
    int64_t free_cores, n;
    int rc = -1;

    r->node_id = 0;
    r->created = 0;
    r->system_evals = 0;
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
        free_set = subtract_sets(all_cores, res, "cpuset", r->name);
        free_gpuset = subtract_sets(all_gpus, res, "gpus", r->name);
        for (int i = 0; i < PQntuples(res); i++) {
            free_mem -= dv_db_get_i64(res, i, "mem", 0);
            free_gpus -= dv_db_get_i64(res, i, "ngpus", 0);
            free_disk -= dv_db_get_i64(res, i, "disk", 0);
        }
    } else {
        r->created = 1;
        free_set = dv_xstrdup(all_cores);
        free_gpuset = dv_xstrdup(all_gpus);
    }
    PQclear(res);
    res = NULL;
    free_cores = dv_cpuset_count(free_set);
    if (free_cores < 0) {
        free_cores = 0;
    }
    {
        char b7[24], b8[24], b9[24], b10[24], b11[24], b12[24], b14[32],
            b15[32], b16[32], b18[24], b19[24];
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
            free_gpuset,
            dv_db_i64(b18, r->disk),
            dv_db_i64(b19, free_disk > 0 ? free_disk : 0),
            r->node_class,
            r->meta != NULL ? r->meta : "{}",
        };
        res = dv_db_exec(db, upsert, 21, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    r->node_id = dv_db_get_i64(res, 0, "id", 0);
    /* System jobs run on every eligible node, joining ones included. */
    n = db_system_evals(db, r->now, err);
    if (n < 0) {
        goto out;
    }
    r->system_evals = (int)n;
    ns.evals = n > 0;
    ns.capacity = 1;
    if (db_notify_send(db, &ns, err) < 0) {
        goto out;
    }
    rc = 0;
out:
    PQclear(res);
    free(all_cores);
    free(all_gpus);
    free(free_set);
    free(free_gpuset);
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
    const char *cn;
    double ttl;
    double now;
};

static int
heartbeat_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    /* A heartbeat moves only the deadline, which no reader of "changes
     * since index N" cares about: modify_index stays. A down node does
     * not come back this way: it registers again, which recomputes its
     * capacity (its allocations were lost meanwhile). */
    static const char sql[] =
        "UPDATE nodes SET heartbeat_deadline = to_timestamp($2), "
        "heartbeat_ttl = $3 WHERE id = $1 AND status = 'ready' "
        "AND ($4::text IS NULL OR name = $4)";
    static const char why[] = "SELECT name, status FROM nodes WHERE id = $1";
    struct heartbeat_tx *h = arg;
    char b1[24], b2[32], b3[32];
    const char *p[] = {dv_db_i64(b1, h->id), dv_db_double(b2, h->now + h->ttl),
                       dv_db_double(b3, h->ttl), h->cn};
    PGresult *res;
    int64_t n;

    n = dv_db_exec_cmd(db, sql, 4, p, err);
    if (n != 0) {
        return n < 0 ? -1 : 0;
    }
    res = dv_db_exec(db, why, 1, p, err);
    if (res == NULL) {
        return -1;
    }
    if (db_node_identity(h->id,
                         PQntuples(res) > 0 ? dv_db_get(res, 0, "name") : NULL,
                         h->cn, err) == 0) {
        dv_err_set(err, DV_ENOTFOUND, "node_not_found",
                   "node %lld is %s: register again", (long long)h->id,
                   dv_db_get(res, 0, "status"));
    }
    PQclear(res);
    return -1;
}

int
db_node_heartbeat(struct dv_db *db, int64_t id, const char *cn, double ttl,
                  double now, struct dv_err *err)
{
    struct heartbeat_tx h = {.id = id, .cn = cn, .ttl = ttl, .now = now};

    return dv_db_tx(db, DV_DB_READ_COMMITTED, heartbeat_tx, NULL, &h,
                    QMGR_TX_ATTEMPTS, err);
}

/* --- node long polls, many at once --- */

void
db_node_polls_clear(struct db_node_polls *b)
{
    PQclear(b->allocs);
    PQclear(b->jobs);
    PQclear(b->hosts);
    PQclear(b->tasks);
    b->allocs = b->jobs = b->hosts = b->tasks = NULL;
    free(b->job_ids);
    free(b->host_ids);
    free(b->task_allocs);
    b->job_ids = b->host_ids = b->task_allocs = NULL;
    for (int i = 0; i < b->n; i++) {
        struct db_node_poll *p = &b->p[i];

        free(p->name);
        p->name = NULL;
        p->found = p->answer = p->full = 0;
        p->index = 0;
        p->first_row = p->nrows = 0;
    }
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* Sorts v and drops duplicates; returns the new count. */
static int
sort_unique(int64_t *v, int n)
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

/* The column col of every row of res as a new array. */
static int64_t *
column_ids(const PGresult *res, const char *col)
{
    int n = PQntuples(res);
    int64_t *v = dv_xcalloc((size_t)n + 1, sizeof(*v));

    for (int i = 0; i < n; i++) {
        v[i] = dv_db_get_i64(res, i, col, 0);
    }
    return v;
}

static int
node_polls_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    /* alloc_modify_index moves only on the servers' changes, and every
     * writer draws it under the node's row lock: per node, index order is
     * commit order, so "past N" never misses a commit. */
    static const char indexes[] =
        "SELECT u.o AS ord, n.name, coalesce((SELECT "
        "max(a.alloc_modify_index) FROM allocations a WHERE a.node_id = "
        "u.n), 0) AS idx FROM unnest($1::bigint[]) WITH ORDINALITY AS u(n, o) "
        "JOIN nodes n ON n.id = u.n";
    /* Full lists (since 0): the active allocations; deltas: whatever the
     * servers changed past the client's index, terminal ones included
     * (lost). */
    static const char allocs[] =
        "SELECT u.o AS ord, a.id, a.job_id, a.group_index, a.instance, "
        "a.chunk_index, a.desired_status, a.client_status, a.ncpus, a.mem, "
        "coalesce(a.array_index, -1) AS array_index, "
        "a.gpus, a.disk, a.cpuset, a.alloc_modify_index, j.queue, "
        "a.signal, a.signal_seq, "
        "j.spec ? 'groups' AS native, "
        "CASE WHEN j.spec ? 'groups' AND jsonb_typeof(j.spec #> "
        "ARRAY['placement', 'groups', a.group_index::text, 'walltime']) = "
        "'number' THEN (j.spec #>> ARRAY['placement', 'groups', "
        "a.group_index::text, 'walltime'])::numeric::bigint "
        "ELSE j.walltime END AS walltime, "
        /* the uncorrelated test runs once (an InitPlan): without any
         * pending task anywhere, no row probes the tasks index */
        "CASE WHEN (SELECT EXISTS (SELECT 1 FROM tasks "
        "WHERE state = 'pending')) THEN EXISTS (SELECT 1 FROM tasks t "
        "WHERE t.alloc_id = a.id AND t.state = 'pending') ELSE false END "
        "AS has_tasks "
        "FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY "
        "AS u(n, s, o) CROSS JOIN LATERAL ("
        "SELECT * FROM allocations x WHERE x.node_id = u.n AND u.s = 0 "
        "AND x.client_status IN " DB_ACTIVE " AND x.end_time IS NULL"
        " UNION ALL "
        "SELECT * FROM allocations x WHERE x.node_id = u.n AND u.s > 0 "
        "AND x.alloc_modify_index > u.s) a "
        "JOIN jobs j ON j.id = a.job_id ORDER BY u.o, a.id";
    static const char jobs[] = "SELECT id, spec::text AS spec FROM jobs "
                               "WHERE id = ANY($1::bigint[]) ORDER BY id";
    /* PBS_NODEFILE: the allocations of the job's current run only. */
    static const char hosts[] =
        "SELECT a.job_id, n.name AS host, a.ncpus, a.chunk_index, "
        "coalesce(a.array_index, -1) AS array_index FROM allocations a "
        "JOIN nodes n ON n.id = a.node_id "
        "WHERE a.job_id = ANY($1::bigint[]) AND a.desired_status = 'run' "
        "AND a.client_status IN " DB_ACTIVE " AND a.end_time IS NULL"
        " ORDER BY a.job_id, a.chunk_index, a.id";
    /* pbsdsh tasks waiting to start (api-tasks.c). */
    static const char tasks[] =
        "SELECT alloc_id, json_build_object('id', id, 'node_index', "
        "node_index, 'tasknum', tasknum, 'argv', argv)::text AS task "
        "FROM tasks WHERE alloc_id = ANY($1::bigint[]) AND state = 'pending' "
        "ORDER BY alloc_id, id";
    struct db_node_polls *b = arg;
    struct dv_buf a1, a2;
    PGresult *res = NULL;
    int64_t *ids = dv_xcalloc((size_t)b->n + 1, sizeof(int64_t));
    int64_t *since = dv_xcalloc((size_t)b->n + 1, sizeof(int64_t));
    int *ord = dv_xcalloc((size_t)b->n + 1, sizeof(int));
    int64_t *need_specs = NULL, *need_hosts = NULL, *need_tasks = NULL;
    int nanswer = 0, nspecs = 0, nhosts = 0, ntasks = 0, rc = -1;

    db_node_polls_clear(b);
    dv_buf_init(&a1);
    dv_buf_init(&a2);
    for (int i = 0; i < b->n; i++) {
        ids[i] = b->p[i].node_id;
    }
    fmt_id_array(ids, b->n, &a1);
    {
        const char *p[] = {dv_buf_str(&a1)};
        res = dv_db_exec(db, indexes, 1, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        int64_t o = dv_db_get_i64(res, r, "ord", 0);
        struct db_node_poll *p;

        if (o < 1 || o > b->n) {
            continue;
        }
        p = &b->p[o - 1];
        p->found = 1;
        p->name = dv_xstrdup(dv_db_get(res, r, "name"));
        p->index = dv_db_get_i64(res, r, "idx", 0);
        /* A client ahead of the servers (its index came from another
         * database or node id) gets the full list to start again from. */
        p->full = p->since <= 0 || p->since > p->index;
        p->answer = p->force || p->index > p->since || p->since > p->index;
        if (p->answer) {
            ids[nanswer] = p->node_id;
            since[nanswer] = p->full ? 0 : p->since;
            ord[nanswer] = (int)(o - 1);
            nanswer++;
        }
    }
    PQclear(res);
    res = NULL;
    if (nanswer == 0) {
        rc = 0;
        goto out;
    }
    dv_buf_reset(&a1);
    fmt_id_array(ids, nanswer, &a1);
    fmt_id_array(since, nanswer, &a2);
    {
        const char *p[] = {dv_buf_str(&a1), dv_buf_str(&a2)};
        b->allocs = dv_db_exec(db, allocs, 2, p, err);
    }
    if (b->allocs == NULL) {
        goto out;
    }
    need_specs = dv_xcalloc((size_t)PQntuples(b->allocs) + 1, sizeof(int64_t));
    need_hosts = dv_xcalloc((size_t)PQntuples(b->allocs) + 1, sizeof(int64_t));
    need_tasks = dv_xcalloc((size_t)PQntuples(b->allocs) + 1, sizeof(int64_t));
    for (int r = 0; r < PQntuples(b->allocs); r++) {
        int64_t o = dv_db_get_i64(b->allocs, r, "ord", 0);
        struct db_node_poll *p;
        int64_t job = dv_db_get_i64(b->allocs, r, "job_id", 0);

        if (o < 1 || o > nanswer) {
            continue;
        }
        p = &b->p[ord[o - 1]];
        if (p->nrows == 0) {
            p->first_row = r;
        }
        p->nrows++;
        if (dv_db_get_bool(b->allocs, r, "has_tasks", 0)) {
            /* pbsdsh tasks run in the job's context: its spec. */
            need_tasks[ntasks++] = dv_db_get_i64(b->allocs, r, "id", 0);
            need_specs[nspecs++] = job;
        }
        /* Only what the node may start needs its spec (and hosts). */
        if (strcmp(dv_db_get(b->allocs, r, "client_status"), "pending") != 0 ||
            strcmp(dv_db_get(b->allocs, r, "desired_status"), "run") != 0) {
            continue;
        }
        need_specs[nspecs++] = job;
        if (!dv_db_get_bool(b->allocs, r, "native", 0) &&
            dv_db_get_i64(b->allocs, r, "chunk_index", 0) == 0) {
            need_hosts[nhosts++] = job;
        }
    }
    nspecs = sort_unique(need_specs, nspecs);
    nhosts = sort_unique(need_hosts, nhosts);
    if (nspecs > 0) {
        dv_buf_reset(&a1);
        fmt_id_array(need_specs, nspecs, &a1);
        const char *p[] = {dv_buf_str(&a1)};
        b->jobs = dv_db_exec(db, jobs, 1, p, err);
        if (b->jobs == NULL) {
            goto out;
        }
        b->job_ids = column_ids(b->jobs, "id");
    }
    if (nhosts > 0) {
        dv_buf_reset(&a1);
        fmt_id_array(need_hosts, nhosts, &a1);
        const char *p[] = {dv_buf_str(&a1)};
        b->hosts = dv_db_exec(db, hosts, 1, p, err);
        if (b->hosts == NULL) {
            goto out;
        }
        b->host_ids = column_ids(b->hosts, "job_id");
    }
    if (ntasks > 0) {
        dv_buf_reset(&a1);
        fmt_id_array(need_tasks, sort_unique(need_tasks, ntasks), &a1);
        const char *p[] = {dv_buf_str(&a1)};
        b->tasks = dv_db_exec(db, tasks, 1, p, err);
        if (b->tasks == NULL) {
            goto out;
        }
        b->task_allocs = column_ids(b->tasks, "alloc_id");
    }
    rc = 0;
out:
    PQclear(res);
    free(ids);
    free(since);
    free(ord);
    free(need_specs);
    free(need_hosts);
    free(need_tasks);
    dv_buf_cleanup(&a1);
    dv_buf_cleanup(&a2);
    return rc;
}

int
db_node_polls(struct dv_db *db, struct db_node_polls *b, struct dv_err *err)
{
    return dv_db_tx(db, DV_DB_REPEATABLE_READ, node_polls_tx, NULL, b,
                    QMGR_TX_ATTEMPTS, err);
}

/* --- allocation status batches --- */

void
db_alloc_status_clear(struct db_alloc_status *s)
{
    free(s->events);
    free(s->errors);
    s->events = NULL;
    s->nevents = 0;
    s->errors = NULL;
    s->nerrors = 0;
}

static int
is_terminal(const char *status)
{
    return strcmp(status, "complete") == 0 || strcmp(status, "failed") == 0 ||
           strcmp(status, "lost") == 0;
}

static void
add_update_error(struct db_alloc_status *s, int pos, const char *code,
                 const char *msg)
{
    struct update_error *e;

    s->errors =
        dv_xrealloc(s->errors, sizeof(*s->errors) * (size_t)(s->nerrors + 1));
    e = &s->errors[s->nerrors++];
    e->pos = pos;
    e->id = s->u[pos].id;
    e->code = code;
    dv_strlcpy(e->message, msg, sizeof(e->message));
}

/* Element separators and values of PostgreSQL array literals. */
static void
arr_sep(struct dv_buf *b)
{
    if (b->len > 0 && b->data[b->len - 1] != '{') {
        dv_buf_putc(b, ',');
    }
}

static void
arr_text(struct dv_buf *b, const char *s)
{
    arr_sep(b);
    if (s == NULL) {
        dv_buf_puts(b, "NULL");
        return;
    }
    dv_buf_putc(b, '"');
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\') {
            dv_buf_putc(b, '\\');
        }
        dv_buf_putc(b, *s);
    }
    dv_buf_putc(b, '"');
}

static void
arr_i64(struct dv_buf *b, int has, int64_t v)
{
    arr_sep(b);
    if (has) {
        dv_buf_printf(b, "%lld", (long long)v);
    } else {
        dv_buf_puts(b, "NULL");
    }
}

static void
arr_double(struct dv_buf *b, double v)
{
    char t[32];

    arr_sep(b);
    dv_buf_puts(b, dv_db_double(t, v));
}

static void
notify_merge(struct notify_set *to, const struct notify_set *from)
{
    for (int i = 0; i < from->nnodes; i++) {
        notify_add_node(to, from->nodes[i]);
    }
    for (int i = 0; i < from->njobs; i++) {
        notify_add_job(to, from->jobs[i]);
    }
    to->evals |= from->evals;
    to->capacity |= from->capacity;
}

/*
 * Applies the updates sel[0..n) of s, set-based: one statement for the
 * running ones, one for the terminal ones (whose rows say what to give
 * back), then the node's capacity in one statement and each ended
 * allocation's consequence for its job (lifecycle.c). The node row and the
 * jobs are locked by the caller. Node reports move modify_index, never
 * alloc_modify_index, and notify no long poll of this node: a node is not
 * woken by its own reports. Returns 0 or -1.
 */
static int
status_apply(struct dv_db *db, struct db_alloc_status *s, const int *sel, int n,
             const char *nid, struct notify_set *ns, struct dv_err *err)
{
    static const char running[] =
        "UPDATE allocations a SET client_status = 'running', "
        "start_time = to_timestamp(u.t), modify_index = i.v "
        "FROM (SELECT nextval('modify_index_seq') AS v) i, "
        "unnest($1::bigint[], $2::float8[]) AS u(id, t) "
        "WHERE a.id = u.id AND a.node_id = $3 AND a.client_status = 'pending' "
        "RETURNING a.job_id, a.chunk_index";
    static const char ended[] =
        "UPDATE allocations a SET client_status = u.st, exit_status = u.ex, "
        "message = u.msg, used_cput = u.cput, used_mem = u.mem, "
        "end_time = to_timestamp(u.t), modify_index = i.v "
        "FROM (SELECT nextval('modify_index_seq') AS v) i, "
        "unnest($1::bigint[], $2::text[], $3::int[], $4::text[], "
        "$5::bigint[], $6::bigint[], $7::float8[], $8::int[]) "
        "AS u(id, st, ex, msg, cput, mem, t, pos) "
        "WHERE a.id = u.id AND a.node_id = $9 "
        "AND a.client_status IN " DB_ACTIVE " AND a.end_time IS NULL"
        " RETURNING a.id, a.job_id, a.cpuset, a.gpus, a.mem, a.ngpus, a.disk, "
        "u.pos, a.chunk_index, a.start_time IS NULL AS unstarted";
    static const char read_node[] =
        "SELECT free_cpuset, free_gpuset, total_cores, total_gpus "
        "FROM nodes WHERE id = $1";
    static const char release[] =
        "UPDATE nodes SET free_cpuset = $2, free_cores = $3, "
        "free_mem = least(total_mem, free_mem + $4), "
        "free_gpus = least(total_gpus, free_gpus + $5), "
        "free_gpuset = $6, free_disk = least(total_disk, free_disk + $7), "
        "modify_index = nextval('modify_index_seq') WHERE id = $1";
    struct dv_buf r1, r2, e1, e2, e3, e4, e5, e6, e7, e8;
    PGresult *res = NULL, *node = NULL;
    char *cpus = NULL, *gpus = NULL, *clip_c = NULL, *clip_g = NULL;
    int64_t freed_mem = 0, freed_gpus = 0, freed_disk = 0;
    int nrun = 0, nend = 0, rc = -1;

    dv_buf_init(&r1);
    dv_buf_init(&r2);
    dv_buf_init(&e1);
    dv_buf_init(&e2);
    dv_buf_init(&e3);
    dv_buf_init(&e4);
    dv_buf_init(&e5);
    dv_buf_init(&e6);
    dv_buf_init(&e7);
    dv_buf_init(&e8);
    dv_buf_putc(&r1, '{');
    dv_buf_putc(&r2, '{');
    dv_buf_putc(&e1, '{');
    dv_buf_putc(&e2, '{');
    dv_buf_putc(&e3, '{');
    dv_buf_putc(&e4, '{');
    dv_buf_putc(&e5, '{');
    dv_buf_putc(&e6, '{');
    dv_buf_putc(&e7, '{');
    dv_buf_putc(&e8, '{');
    for (int k = 0; k < n; k++) {
        const struct alloc_update *u = &s->u[sel[k]];
        double when = u->time > 0 ? u->time : s->now;

        if (strcmp(u->status, "running") == 0) {
            arr_i64(&r1, 1, u->id);
            arr_double(&r2, when);
            nrun++;
            continue;
        }
        arr_i64(&e1, 1, u->id);
        arr_text(&e2, u->status);
        arr_i64(&e3, u->has_exit, u->exit_status);
        arr_text(&e4, u->message);
        arr_i64(&e5, u->has_used, u->used_cput);
        arr_i64(&e6, u->has_used, u->used_mem);
        arr_double(&e7, when);
        arr_i64(&e8, 1, sel[k]);
        nend++;
    }
    dv_buf_putc(&r1, '}');
    dv_buf_putc(&r2, '}');
    dv_buf_putc(&e1, '}');
    dv_buf_putc(&e2, '}');
    dv_buf_putc(&e3, '}');
    dv_buf_putc(&e4, '}');
    dv_buf_putc(&e5, '}');
    dv_buf_putc(&e6, '}');
    dv_buf_putc(&e7, '}');
    dv_buf_putc(&e8, '}');

    /* Running first: a batch may say running and then complete. */
    if (nrun > 0) {
        const char *p[] = {dv_buf_str(&r1), dv_buf_str(&r2), nid};
        PGresult *run = dv_db_exec(db, running, 3, p, err);
        if (run == NULL) {
            goto out;
        }
        s->applied += PQntuples(run);
        /* A PBS job begins when its chunk 0 runs (mail 'b'). */
        for (int k = 0; k < PQntuples(run); k++) {
            if (!dv_db_is_null(run, k, "chunk_index") &&
                dv_db_get_i64(run, k, "chunk_index", -1) == 0) {
                db_add_event(&s->events, &s->nevents,
                             dv_db_get_i64(run, k, "job_id", 0), "running", 0,
                             0);
            }
        }
        PQclear(run);
    }
    if (nend == 0) {
        rc = 0;
        goto out;
    }
    {
        const char *p[] = {dv_buf_str(&e1), dv_buf_str(&e2), dv_buf_str(&e3),
                           dv_buf_str(&e4), dv_buf_str(&e5), dv_buf_str(&e6),
                           dv_buf_str(&e7), dv_buf_str(&e8), nid};
        res = dv_db_exec(db, ended, 9, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    if (PQntuples(res) == 0) {
        rc = 0; /* unknown, another node's, or already ended */
        goto out;
    }
    s->applied += PQntuples(res);
    {
        const char *p[] = {nid};
        node = dv_db_exec(db, read_node, 1, p, err);
    }
    if (node == NULL) {
        goto out;
    }
    if (PQntuples(node) == 0) {
        db_node_not_found(s->node_id, err);
        goto out;
    }
    cpus = dv_xstrdup(dv_db_get(node, 0, "free_cpuset"));
    gpus = dv_xstrdup(dv_db_get(node, 0, "free_gpuset"));
    for (int r = 0; r < PQntuples(res); r++) {
        const char *held[2] = {dv_db_get(res, r, "cpuset"),
                               dv_db_get(res, r, "gpus")};
        char **set[2] = {&cpus, &gpus};

        for (int k = 0; k < 2; k++) {
            struct dv_err e;
            char *un;

            if (dv_str_empty(held[k])) {
                continue;
            }
            un = dv_cpuset_union(*set[k], held[k], &e);
            if (un != NULL) {
                free(*set[k]);
                *set[k] = un;
            } else {
                log_warn("allocation %s: %s", dv_db_get(res, r, "id"), e.msg);
            }
        }
        freed_mem += dv_db_get_i64(res, r, "mem", 0);
        freed_gpus += dv_db_get_i64(res, r, "ngpus", 0);
        freed_disk += dv_db_get_i64(res, r, "disk", 0);
    }
    {
        struct dv_err e;
        char b3[24], b4[24], b5[24], b7[24];
        int cores;

        clip_c =
            db_clip_cpuset(cpus, dv_db_get_i64(node, 0, "total_cores", 0), &e);
        if (clip_c != NULL) {
            clip_g = db_clip_cpuset(
                gpus, dv_db_get_i64(node, 0, "total_gpus", 0), &e);
        }
        if (clip_c == NULL || clip_g == NULL) {
            dv_err_set(err, DV_EINTERNAL, NULL, "node %lld: %s",
                       (long long)s->node_id, e.msg);
            goto out;
        }
        cores = dv_cpuset_count(clip_c);
        const char *p[] = {nid,
                           clip_c,
                           dv_db_i64(b3, cores < 0 ? 0 : cores),
                           dv_db_i64(b4, freed_mem),
                           dv_db_i64(b5, freed_gpus),
                           clip_g,
                           dv_db_i64(b7, freed_disk)};
        if (dv_db_exec_cmd(db, release, 7, p, err) < 0) {
            goto out;
        }
        ns->capacity = 1;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        int pos = (int)dv_db_get_i64(res, r, "pos", 0);
        const struct alloc_update *u;
        double when;

        if (pos < 0 || pos >= s->n) {
            continue;
        }
        u = &s->u[pos];
        when = u->time > 0 ? u->time : s->now;
        if (dv_db_get_i64(res, r, "chunk_index", -1) == 0 &&
            dv_db_get_bool(res, r, "unstarted", 0) && u->has_exit &&
            strcmp(u->status, "lost") != 0) {
            /* Its "running" report was never seen (it ended first): the
             * job still began (mail 'b'). */
            db_add_event(&s->events, &s->nevents,
                         dv_db_get_i64(res, r, "job_id", 0), "running", 0, 0);
        }
        {
            /* What the end means for the job: qmgr/lifecycle.c. */
            struct job_end e = {
                .job_id = dv_db_get_i64(res, r, "job_id", 0),
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
            if (lifecycle_alloc_ended(db, &e, ns, &s->events, &s->nevents,
                                      err) < 0) {
                goto out;
            }
        }
    }
    rc = 0;
out:
    PQclear(res);
    PQclear(node);
    free(cpus);
    free(gpus);
    free(clip_c);
    free(clip_g);
    dv_buf_cleanup(&r1);
    dv_buf_cleanup(&r2);
    dv_buf_cleanup(&e1);
    dv_buf_cleanup(&e2);
    dv_buf_cleanup(&e3);
    dv_buf_cleanup(&e4);
    dv_buf_cleanup(&e5);
    dv_buf_cleanup(&e6);
    dv_buf_cleanup(&e7);
    dv_buf_cleanup(&e8);
    return rc;
}

/* status_apply inside a savepoint: on a database error (a bad row, a
 * check that fails) the savepoint is rolled back and 1 returned, with
 * *err saying why; s and ns are left as they were. 0 when applied, -1 on
 * errors that end the transaction (connection, serialization). */
static int
status_apply_sp(struct dv_db *db, struct db_alloc_status *s, const int *sel,
                int n, const char *nid, struct notify_set *ns,
                struct dv_err *err)
{
    static const char savepoint[] = "SAVEPOINT drover_status";
    static const char rollback[] = "ROLLBACK TO SAVEPOINT drover_status";
    static const char release[] = "RELEASE SAVEPOINT drover_status";
    struct notify_set mine = {0};
    int nevents = s->nevents, applied = s->applied, rc;
    struct dv_err e2;

    if (dv_db_exec_cmd(db, savepoint, 0, NULL, err) < 0) {
        return -1;
    }
    rc = status_apply(db, s, sel, n, nid, &mine, err);
    if (rc == 0) {
        notify_merge(ns, &mine);
        notify_cleanup(&mine);
        return dv_db_exec_cmd(db, release, 0, NULL, err) < 0 ? -1 : 0;
    }
    notify_cleanup(&mine);
    if (err->kind != DV_EDB && err->kind != DV_EINTERNAL) {
        return -1;
    }
    s->nevents = nevents;
    s->applied = applied;
    if (dv_db_exec_cmd(db, rollback, 0, NULL, &e2) < 0) {
        *err = e2;
        return -1;
    }
    return 1;
}

static int
alloc_status_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char lock_node[] =
        "SELECT name FROM nodes WHERE id = $1 FOR NO KEY UPDATE";
    static const char find_node[] = "SELECT name FROM nodes WHERE id = $1";
    static const char lock_jobs[] =
        "SELECT id FROM jobs WHERE id IN (SELECT job_id FROM allocations "
        "WHERE id = ANY($1::bigint[]) AND node_id = $2) ORDER BY id "
        "FOR UPDATE";
    static const char index[] =
        "SELECT coalesce(max(alloc_modify_index), 0) AS idx "
        "FROM allocations WHERE node_id = $1";
    struct db_alloc_status *s = arg;
    struct notify_set ns = {0};
    PGresult *res = NULL;
    char nid[24];
    int *sel = dv_xcalloc((size_t)s->n + 1, sizeof(int));
    int64_t *ids = dv_xcalloc((size_t)s->n + 1, sizeof(int64_t));
    int64_t *ended = dv_xcalloc((size_t)s->n + 1, sizeof(int64_t));
    int terminal = 0, nsel = 0, nended = 0, rc = -1, k;
    struct dv_buf ids_text;

    db_alloc_status_clear(s);
    s->index = 0;
    s->applied = 0;
    dv_buf_init(&ids_text);
    dv_db_i64(nid, s->node_id);
    for (int i = 0; i < s->n; i++) {
        if (s->u[i].bad) {
            add_update_error(s, i,
                             s->u[i].error.code != NULL ? s->u[i].error.code
                                                        : "invalid_request",
                             s->u[i].error.msg);
            continue;
        }
        if (is_terminal(s->u[i].status)) {
            terminal = 1;
            ended[nended++] = s->u[i].id;
        }
        ids[nsel] = s->u[i].id;
        sel[nsel++] = i;
    }
    /* Terminal updates give capacity back: the node row first (lock
     * order: nodes, jobs, allocations). */
    {
        const char *p[] = {nid};
        res = dv_db_exec(db, terminal ? lock_node : find_node, 1, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    if (db_node_identity(s->node_id,
                         PQntuples(res) > 0 ? dv_db_get(res, 0, "name") : NULL,
                         s->cn, err) < 0) {
        goto out;
    }
    PQclear(res);
    res = NULL;
    if (nsel > 0) {
        /* Only an allocation's end changes its job: "running" reports lock
         * no job row (a 1,000-task job's reports from many nodes would
         * otherwise queue on it, and on the schedulers' commits). */
        if (nended > 0) {
            fmt_id_array(ended, nended, &ids_text);
            const char *p[] = {dv_buf_str(&ids_text), nid};
            res = dv_db_exec(db, lock_jobs, 2, p, err);
            if (res == NULL) {
                goto out;
            }
            PQclear(res);
            res = NULL;
            dv_buf_reset(&ids_text);
        }
        /* All at once; when that fails on a database error, one by one,
         * so that an update that can never apply does not block the
         * others (nor every later batch of this node). */
        k = status_apply_sp(db, s, sel, nsel, nid, &ns, err);
        if (k < 0) {
            goto out;
        }
        if (k > 0) {
            log_warn("node %lld: a status batch of %d updates failed (%s); "
                     "applying them one by one",
                     (long long)s->node_id, nsel, err->msg);
            for (int i = 0; i < nsel; i++) {
                k = status_apply_sp(db, s, &sel[i], 1, nid, &ns, err);
                if (k < 0) {
                    goto out;
                }
                if (k > 0) {
                    log_error("node %lld: update %s of allocation %lld "
                              "cannot be applied: %s",
                              (long long)s->node_id, s->u[sel[i]].status,
                              (long long)s->u[sel[i]].id, err->msg);
                    add_update_error(s, sel[i], "internal_error", err->msg);
                }
            }
            dv_err_clear(err);
        }
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
    free(sel);
    free(ids);
    free(ended);
    dv_buf_cleanup(&ids_text);
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
        "SELECT " DB_NODE_COLUMNS " FROM nodes n ORDER BY n.id";
    static const char jobs[] =
        "SELECT node_id, job_id, coalesce(array_index, -1) AS array_index, "
        "count(*) AS n FROM allocations "
        "WHERE client_status IN " DB_ACTIVE " AND end_time IS NULL "
        "GROUP BY node_id, job_id, array_index "
        "ORDER BY node_id, job_id, array_index";
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
        "(SELECT count(*) FROM jobs WHERE state = 'waiting') AS waiting, "
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
        "SELECT id, name, total_cores, total_gpus FROM nodes "
        "WHERE status = 'ready' "
        "AND heartbeat_deadline < to_timestamp($1) ORDER BY id LIMIT $2 "
        "FOR UPDATE SKIP LOCKED";
    static const char lock_jobs[] =
        "SELECT id FROM jobs WHERE id IN (SELECT job_id FROM allocations "
        "WHERE node_id = ANY($1::bigint[]) AND client_status IN " DB_ACTIVE
        " AND end_time IS NULL"
        ") ORDER BY id FOR UPDATE";
    static const char lose[] =
        "WITH i AS (SELECT nextval('modify_index_seq') AS v) "
        "UPDATE allocations SET client_status = 'lost', "
        "message = 'node down', end_time = to_timestamp($2), "
        "modify_index = i.v, alloc_modify_index = i.v FROM i "
        "WHERE node_id = ANY($1::bigint[]) AND client_status IN " DB_ACTIVE
        " AND end_time IS NULL"
        " RETURNING id, job_id, node_id, desired_status";
    static const char down[] =
        "UPDATE nodes SET status = 'down', status_time = to_timestamp($2), "
        "free_cores = total_cores, free_mem = total_mem, "
        "free_gpus = total_gpus, free_cpuset = $3, free_gpuset = $4, "
        "free_disk = total_disk, modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND status = 'ready'";
    static const char ready[] =
        "SELECT count(*) AS n FROM nodes WHERE status = 'ready'";
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
    l->ready_nodes = 0;
    dv_buf_init(&ids);
    res = dv_db_exec(db, ready, 0, NULL, err);
    if (res == NULL) {
        goto out;
    }
    l->ready_nodes = (int)dv_db_get_i64(res, 0, "n", 0);
    PQclear(res);
    res = NULL;
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
        char *gpus =
            dv_cpuset_first_n((int)dv_db_get_i64(res, i, "total_gpus", 0));
        char b3[24];
        const char *p[] = {dv_db_i64(b3, l->down[i].id),
                           dv_db_double(b2, l->now), all, gpus};
        int64_t n = dv_db_exec_cmd(db, down, 4, p, err);

        free(all);
        free(gpus);
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
        if (lifecycle_alloc_ended(db, &e, &ns, &l->events, &l->nevents, err) <
            0) {
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
