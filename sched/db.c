/*
 * Every SQL statement of the scheduler: leasing evaluations, reading jobs
 * and nodes, committing plans under node row locks, blocking and waking
 * evaluations. Lock order everywhere: node rows in id order, then the job.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/cpuset.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/strutil.h"
#include "sched/sched.h"

/* Held (transaction-scoped) while blocking an evaluation or waking blocked
 * ones, so that a wake-up can never slip between a planner's read of the
 * nodes and its commit of "blocked". */
#define BLOCK_LOCK_KEY "4750001"

/* Appends a PostgreSQL array literal of quoted strings. */
static void
array_literal(struct dv_buf *b, char *const *items, int n)
{
    dv_buf_putc(b, '{');
    for (int i = 0; i < n; i++) {
        if (i > 0) {
            dv_buf_putc(b, ',');
        }
        dv_buf_putc(b, '"');
        for (const char *p = items[i]; *p != '\0'; p++) {
            if (*p == '"' || *p == '\\') {
                dv_buf_putc(b, '\\');
            }
            dv_buf_putc(b, *p);
        }
        dv_buf_putc(b, '"');
    }
    dv_buf_putc(b, '}');
}

static void
int_array_literal(struct dv_buf *b, const int64_t *v, int n)
{
    dv_buf_putc(b, '{');
    for (int i = 0; i < n; i++) {
        dv_buf_printf(b, "%s%lld", i > 0 ? "," : "", (long long)v[i]);
    }
    dv_buf_putc(b, '}');
}

static int
eval_cmp(const void *a, const void *b)
{
    const struct sched_eval *x = a, *y = b;

    if (x->priority != y->priority) {
        return x->priority > y->priority ? -1 : 1;
    }
    return x->id < y->id ? -1 : x->id > y->id;
}

int
db_lease_evals(struct dv_db *db, const char *owner, double deadline,
               int batch, struct sched_eval **evals, int *n,
               struct dv_err *err)
{
    static const char sql[] =
        "UPDATE evaluations SET status = 'leased', lease_owner = $1, "
        "lease_deadline = to_timestamp($2), attempts = attempts + 1, "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = ANY(ARRAY(SELECT id FROM evaluations e "
        "WHERE status = 'pending' AND (wait_until IS NULL OR "
        "wait_until <= to_timestamp($4)) "
        "AND NOT EXISTS (SELECT 1 FROM evaluations l "
        "WHERE l.job_id = e.job_id AND l.status = 'leased') "
        "ORDER BY priority DESC, id LIMIT $3 FOR UPDATE SKIP LOCKED)) "
        "RETURNING id, job_id, priority";
    char dl[32], lim[24], nowb[32];
    const char *params[] = {owner, dv_db_double(dl, deadline),
                            dv_db_i64(lim, batch), dv_db_double(nowb, dv_now())};
    PGresult *res = dv_db_exec(db, sql, 4, params, err);
    int rows;

    *evals = NULL;
    *n = 0;
    if (res == NULL) {
        return -1;
    }
    rows = PQntuples(res);
    *evals = dv_xcalloc((size_t)rows + 1, sizeof(**evals));
    for (int i = 0; i < rows; i++) {
        (*evals)[i].id = dv_db_get_i64(res, i, "id", 0);
        (*evals)[i].job_id = dv_db_get_i64(res, i, "job_id", 0);
        (*evals)[i].priority = (int)dv_db_get_i64(res, i, "priority", 0);
    }
    *n = rows;
    PQclear(res);
    /* RETURNING gives no order: plan higher priority first. */
    qsort(*evals, (size_t)rows, sizeof(**evals), eval_cmp);
    return 0;
}

static int
parse_chunks(const char *chunks_json, const char *place, struct dv_resreq *rr,
             struct dv_err *err)
{
    json_error_t jerr;
    json_t *a = json_loads(chunks_json != NULL ? chunks_json : "[]", 0, &jerr);
    json_t *c;
    size_t i;
    int rc = -1;

    memset(rr, 0, sizeof(*rr));
    if (!json_is_array(a) || json_array_size(a) == 0 ||
        json_array_size(a) > DV_MAX_CHUNK_KINDS) {
        dv_err_set(err, DV_EINTERNAL, "bad_spec",
                   "stored job spec has no valid chunks");
        goto out;
    }
    json_array_foreach(a, i, c)
    {
        struct dv_chunk *k = &rr->kinds[rr->nkinds++];
        json_int_t count = 0, ncpus = 0, mem = 0, ngpus = 0;
        if (json_unpack(c, "{s:I, s:I, s?I, s?I}", "count", &count, "ncpus",
                        &ncpus, "mem", &mem, "ngpus", &ngpus) < 0 ||
            count < 1 || count > DV_MAX_CHUNKS || ncpus < 0 ||
            ncpus > DV_MAX_NCPUS || mem < 0 || mem > DV_MAX_MEM) {
            dv_err_set(err, DV_EINTERNAL, "bad_spec",
                       "stored job spec has a malformed chunk");
            goto out;
        }
        k->count = (int)count;
        k->ncpus = (int)ncpus;
        k->mem = mem;
        k->ngpus = (int)ngpus;
    }
    if (place != NULL && dv_str_has_prefix(place, "pack")) {
        rr->place = DV_PLACE_PACK;
    } else if (place != NULL && dv_str_has_prefix(place, "scatter")) {
        rr->place = DV_PLACE_SCATTER;
    } else {
        rr->place = DV_PLACE_FREE;
    }
    dv_resreq_finish(rr);
    rc = 0;
out:
    json_decref(a);
    return rc;
}

int
db_load_job(struct dv_db *db, int64_t id, struct sched_job *job,
            struct dv_err *err)
{
    static const char sql[] =
        "SELECT id, name, state, priority, spec->'chunks' AS chunks, "
        "spec->'resource_list'->>'place' AS place FROM jobs WHERE id = $1";
    char idbuf[24];
    const char *params[] = {dv_db_i64(idbuf, id)};
    PGresult *res = dv_db_exec(db, sql, 1, params, err);
    int rc = -1;

    memset(job, 0, sizeof(*job));
    if (res == NULL) {
        return -1;
    }
    if (PQntuples(res) == 0) {
        rc = 0;
        goto out;
    }
    job->id = id;
    job->name = dv_xstrdup(dv_db_get(res, 0, "name"));
    job->state = dv_xstrdup(dv_db_get(res, 0, "state"));
    job->priority = (int)dv_db_get_i64(res, 0, "priority", 0);
    if (parse_chunks(dv_db_get(res, 0, "chunks"), dv_db_get(res, 0, "place"),
                     &job->req, err) < 0) {
        sched_job_cleanup(job);
        goto out;
    }
    rc = 1;
out:
    PQclear(res);
    return rc;
}

int
db_load_snapshot(struct dv_db *db, struct sched_snapshot *snap,
                 struct dv_err *err)
{
    static const char sql[] =
        "SELECT id, name, status = 'ready' AND eligible AS ready, "
        "free_cores, free_mem, free_cpuset, total_cores, total_mem, "
        "capacity_index FROM nodes ORDER BY id";
    PGresult *res = dv_db_exec(db, sql, 0, NULL, err);
    int rows;

    memset(snap, 0, sizeof(*snap));
    if (res == NULL) {
        return -1;
    }
    rows = PQntuples(res);
    snap->nodes = dv_xcalloc((size_t)rows + 1, sizeof(*snap->nodes));
    for (int i = 0; i < rows; i++) {
        struct sched_node *n = &snap->nodes[i];
        int64_t ci = dv_db_get_i64(res, i, "capacity_index", 0);
        n->id = dv_db_get_i64(res, i, "id", 0);
        n->name = dv_xstrdup(dv_db_get(res, i, "name"));
        n->ready = dv_db_get_bool(res, i, "ready", 0);
        n->free_cores = (int)dv_db_get_i64(res, i, "free_cores", 0);
        n->free_mem = dv_db_get_i64(res, i, "free_mem", 0);
        n->free_cpuset = dv_xstrdup(dv_db_get(res, i, "free_cpuset"));
        n->total_cores = (int)dv_db_get_i64(res, i, "total_cores", 0);
        n->total_mem = dv_db_get_i64(res, i, "total_mem", 0);
        if (ci > snap->capacity_index) {
            snap->capacity_index = ci;
        }
    }
    snap->n = rows;
    PQclear(res);
    return 0;
}

/* --- the plan commit --- */

struct commit_tx {
    const char *owner;
    int64_t eval_id;
    const struct sched_job *job;
    const struct sched_snapshot *snap;
    const struct plan *plan;
    enum commit_outcome outcome;
};

/* Distinct snapshot node indexes of the plan, in node id order. */
static int
plan_nodes(const struct sched_snapshot *snap, const struct plan *plan,
           int *out)
{
    int n = 0;

    for (int i = 0; i < plan->n; i++) {
        int seen = 0;
        for (int j = 0; j < n; j++) {
            seen |= out[j] == plan->allocs[i].node;
        }
        if (!seen) {
            out[n++] = plan->allocs[i].node;
        }
    }
    /* snapshot rows are ordered by id, so index order is id order */
    for (int i = 1; i < n; i++) {
        for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
            int t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    }
    (void)snap;
    return n;
}

static int
commit_tx_fn(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char lock_nodes[] =
        "SELECT id, status = 'ready' AND eligible AS ready, free_cores, "
        "free_mem, free_cpuset FROM nodes WHERE id = ANY($1::bigint[]) "
        "ORDER BY id FOR UPDATE";
    static const char lock_job[] =
        "SELECT state FROM jobs WHERE id = $1 FOR UPDATE";
    static const char update_node[] =
        "UPDATE nodes SET free_cpuset = $2, free_cores = $3, "
        "free_mem = free_mem - $4, modify_index = nextval('modify_index_seq') "
        "WHERE id = $1";
    static const char insert_allocs[] =
        "INSERT INTO allocations (job_id, node_id, eval_id, chunk_index, "
        "ncpus, mem, cpuset, desired_status, client_status, create_time, "
        "modify_index, alloc_modify_index) "
        "SELECT $1, n, $2, c, p, m, s, 'run', 'pending', to_timestamp($3), "
        "i.v, i.v FROM (SELECT nextval('modify_index_seq') AS v) i, "
        "unnest($4::bigint[], $5::int[], $6::int[], $7::bigint[], "
        "$8::text[]) AS u(n, c, p, m, s)";
    static const char update_job[] =
        "UPDATE jobs SET state = 'running', exec_host = $2, "
        "start_time = to_timestamp($3), run_count = run_count + 1, "
        "comment = $4, exit_status = NULL, "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND state = 'queued'";
    static const char finish_eval[] =
        "UPDATE evaluations SET status = $3, status_description = $4, "
        "lease_owner = NULL, lease_deadline = NULL, "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND lease_owner = $2";
    static const char notify[] = "SELECT pg_notify('allocs', $1), "
                                 "pg_notify('jobs', $2)";
    struct commit_tx *c = arg;
    const struct plan *plan = c->plan;
    int *nodes = dv_xcalloc((size_t)plan->n + 1, sizeof(int));
    int64_t *node_ids = dv_xcalloc((size_t)plan->n + 1, sizeof(int64_t));
    char **node_free = dv_xcalloc((size_t)plan->n + 1, sizeof(char *));
    char **cpusets = dv_xcalloc((size_t)plan->n + 1, sizeof(char *));
    int64_t *alloc_nodes = dv_xcalloc((size_t)plan->n + 1, sizeof(int64_t));
    int64_t *chunk_idx = dv_xcalloc((size_t)plan->n + 1, sizeof(int64_t));
    int64_t *ncpus = dv_xcalloc((size_t)plan->n + 1, sizeof(int64_t));
    int64_t *mems = dv_xcalloc((size_t)plan->n + 1, sizeof(int64_t));
    char *exec_host = NULL;
    struct dv_buf a1, a2, a3, a4, a5, a6, comment;
    char b1[24], b2[24], b3[32], b4[24];
    PGresult *res = NULL;
    int nn, rc = -1;

    dv_buf_init(&a1);
    dv_buf_init(&a2);
    dv_buf_init(&a3);
    dv_buf_init(&a4);
    dv_buf_init(&a5);
    dv_buf_init(&a6);
    dv_buf_init(&comment);
    c->outcome = COMMIT_STALE;
    nn = plan_nodes(c->snap, plan, nodes);
    for (int i = 0; i < nn; i++) {
        node_ids[i] = c->snap->nodes[nodes[i]].id;
    }
    int_array_literal(&a1, node_ids, nn);
    {
        const char *p[] = {dv_buf_str(&a1)};
        res = dv_db_exec(db, lock_nodes, 1, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    if (PQntuples(res) != nn) {
        rc = 0; /* a node vanished: re-plan */
        goto out;
    }
    /* Re-check every node against its current free capacity. */
    for (int i = 0; i < nn; i++) {
        int want_cores = 0;
        int64_t want_mem = 0;
        for (int j = 0; j < plan->n; j++) {
            if (plan->allocs[j].node == nodes[i]) {
                want_cores += plan->allocs[j].ncpus;
                want_mem += plan->allocs[j].mem;
            }
        }
        if (!dv_db_get_bool(res, i, "ready", 0) ||
            dv_db_get_i64(res, i, "free_cores", 0) < want_cores ||
            dv_db_get_i64(res, i, "free_mem", 0) < want_mem) {
            rc = 0;
            goto out;
        }
        node_free[i] = dv_xstrdup(dv_db_get(res, i, "free_cpuset"));
    }
    PQclear(res);
    {
        const char *p[] = {dv_db_i64(b1, c->job->id)};
        res = dv_db_exec(db, lock_job, 1, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    if (PQntuples(res) == 0 || strcmp(dv_db_get(res, 0, "state"), "queued")) {
        const char *p[] = {dv_db_i64(b1, c->eval_id), c->owner, "complete",
                           "job no longer queued"};
        c->outcome = COMMIT_JOB_GONE;
        if (dv_db_exec_cmd(db, finish_eval, 4, p, err) < 0) {
            goto out;
        }
        rc = 0;
        goto out;
    }
    PQclear(res);
    res = NULL;
    /* Grant exact cores, lowest free first, chunk by chunk. */
    for (int i = 0; i < nn; i++) {
        int64_t took_mem = 0;
        for (int j = 0; j < plan->n; j++) {
            char *taken = NULL, *rest = NULL;
            if (plan->allocs[j].node != nodes[i]) {
                continue;
            }
            if (dv_cpuset_take(node_free[i], plan->allocs[j].ncpus, &taken,
                               &rest, err) < 0) {
                /* free_cores disagreed with free_cpuset: treat as stale */
                log_warn("node %s: free_cpuset \"%s\" disagrees with "
                         "free_cores",
                         c->snap->nodes[nodes[i]].name, node_free[i]);
                rc = 0;
                goto out;
            }
            free(node_free[i]);
            node_free[i] = rest;
            cpusets[j] = taken;
            took_mem += plan->allocs[j].mem;
        }
        {
            char cores[24], mem[24];
            const char *p[] = {dv_db_i64(b1, node_ids[i]), node_free[i],
                               dv_db_i64(cores, dv_cpuset_count(node_free[i])),
                               dv_db_i64(mem, took_mem)};
            if (dv_db_exec_cmd(db, update_node, 4, p, err) < 0) {
                goto out;
            }
        }
    }
    for (int j = 0; j < plan->n; j++) {
        alloc_nodes[j] = c->snap->nodes[plan->allocs[j].node].id;
        chunk_idx[j] = plan->allocs[j].chunk_index;
        ncpus[j] = plan->allocs[j].ncpus;
        mems[j] = plan->allocs[j].mem;
    }
    int_array_literal(&a2, alloc_nodes, plan->n);
    int_array_literal(&a3, chunk_idx, plan->n);
    int_array_literal(&a4, ncpus, plan->n);
    int_array_literal(&a5, mems, plan->n);
    array_literal(&a6, cpusets, plan->n);
    {
        double now = dv_now();
        const char *p[] = {dv_db_i64(b1, c->job->id),
                           dv_db_i64(b2, c->eval_id),
                           dv_db_double(b3, now),
                           dv_buf_str(&a2),
                           dv_buf_str(&a3),
                           dv_buf_str(&a4),
                           dv_buf_str(&a5),
                           dv_buf_str(&a6)};
        char when[64];
        time_t t = (time_t)now;
        struct tm tm;

        if (dv_db_exec_cmd(db, insert_allocs, 8, p, err) < 0) {
            goto out;
        }
        localtime_r(&t, &tm);
        strftime(when, sizeof(when), "%a %b %d at %H:%M", &tm);
        dv_buf_printf(&comment, "Job run at %s on ", when);
        for (int j = 0; j < plan->n; j++) {
            char size[32];
            dv_buf_printf(&comment, "%s(%s:ncpus=%d", j > 0 ? "+" : "",
                          c->snap->nodes[plan->allocs[j].node].name,
                          plan->allocs[j].ncpus);
            if (plan->allocs[j].mem > 0) {
                dv_format_size(plan->allocs[j].mem, size, sizeof(size));
                dv_buf_printf(&comment, ":mem=%s", size);
            }
            dv_buf_putc(&comment, ')');
        }
        exec_host = plan_exec_host(c->snap, plan, cpusets);
        const char *pj[] = {dv_db_i64(b1, c->job->id), exec_host,
                            dv_db_double(b3, now), dv_buf_str(&comment)};
        int64_t n = dv_db_exec_cmd(db, update_job, 4, pj, err);
        if (n < 0) {
            goto out;
        }
        if (n != 1) {
            dv_err_set(err, DV_EINTERNAL, NULL,
                       "job %lld changed state under its row lock",
                       (long long)c->job->id);
            goto out;
        }
    }
    {
        const char *p[] = {dv_db_i64(b1, c->eval_id), c->owner, "complete",
                           "placed"};
        if (dv_db_exec_cmd(db, finish_eval, 4, p, err) < 0) {
            goto out;
        }
    }
    {
        struct dv_buf ids;
        dv_buf_init(&ids);
        for (int i = 0; i < nn; i++) {
            dv_buf_printf(&ids, "%s%lld", i > 0 ? "," : "",
                          (long long)node_ids[i]);
        }
        const char *p[] = {dv_buf_str(&ids), dv_db_i64(b4, c->job->id)};
        int64_t n = dv_db_exec_cmd(db, notify, 2, p, err);
        dv_buf_cleanup(&ids);
        if (n < 0) {
            goto out;
        }
    }
    c->outcome = COMMIT_PLACED;
    rc = 0;
out:
    PQclear(res);
    for (int i = 0; i < plan->n; i++) {
        free(node_free[i]);
        free(cpusets[i]);
    }
    free(nodes);
    free(node_ids);
    free(node_free);
    free(cpusets);
    free(alloc_nodes);
    free(chunk_idx);
    free(ncpus);
    free(mems);
    free(exec_host);
    dv_buf_cleanup(&a1);
    dv_buf_cleanup(&a2);
    dv_buf_cleanup(&a3);
    dv_buf_cleanup(&a4);
    dv_buf_cleanup(&a5);
    dv_buf_cleanup(&a6);
    dv_buf_cleanup(&comment);
    return rc;
}

int
db_commit_plan(struct dv_db *db, const char *owner, int64_t eval_id,
               const struct sched_job *job, const struct sched_snapshot *snap,
               const struct plan *plan, enum commit_outcome *outcome,
               struct dv_err *err)
{
    struct commit_tx c = {
        .owner = owner,
        .eval_id = eval_id,
        .job = job,
        .snap = snap,
        .plan = plan,
    };

    /* A rerun after an in-doubt commit re-checks the job's state under its
     * lock, so it can never place the job twice. */
    if (dv_db_tx(db, DV_DB_READ_COMMITTED, commit_tx_fn, NULL, &c, 0, err) <
        0) {
        return -1;
    }
    *outcome = c.outcome;
    return 0;
}

/* --- blocking and waking --- */

struct block_tx {
    const char *owner;
    int64_t eval_id;
    int64_t job_id;
    int64_t snap_index;
    const char *why;
    int woken;
};

static int
block_tx_fn(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char lock[] = "SELECT pg_advisory_xact_lock(" BLOCK_LOCK_KEY
                               ")";
    static const char block[] =
        "UPDATE evaluations e SET status = CASE WHEN EXISTS (SELECT 1 "
        "FROM evaluations o WHERE o.job_id = e.job_id AND "
        "o.status = 'pending') THEN 'cancelled' WHEN (SELECT "
        "coalesce(max(capacity_index), 0) FROM nodes) > $3 THEN 'pending' "
        "ELSE 'blocked' END, blocked_index = $3, status_description = $4, "
        "lease_owner = NULL, lease_deadline = NULL, "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND status = 'leased' AND lease_owner = $2 "
        "RETURNING status";
    /* The latest look at a job supersedes older blocked ones. */
    static const char supersede[] =
        "UPDATE evaluations SET status = 'cancelled', "
        "status_description = 'superseded', "
        "modify_index = nextval('modify_index_seq') "
        "WHERE job_id = $1 AND status = 'blocked' AND id <> $2";
    static const char comment[] =
        "UPDATE jobs SET comment = $2, "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND state = 'queued' AND comment IS DISTINCT FROM $2";
    struct block_tx *b = arg;
    char b1[24], b2[24];
    PGresult *res;

    b->woken = 0;
    if (dv_db_exec_cmd(db, lock, 0, NULL, err) < 0) {
        return -1;
    }
    {
        const char *p[] = {dv_db_i64(b1, b->eval_id), b->owner,
                           dv_db_i64(b2, b->snap_index), b->why};
        res = dv_db_exec(db, block, 4, p, err);
    }
    if (res == NULL) {
        return -1;
    }
    b->woken = PQntuples(res) == 1 &&
               strcmp(dv_db_get(res, 0, "status"), "pending") == 0;
    PQclear(res);
    {
        const char *p[] = {dv_db_i64(b1, b->job_id), dv_db_i64(b2, b->eval_id)};
        if (dv_db_exec_cmd(db, supersede, 2, p, err) < 0) {
            return -1;
        }
    }
    {
        const char *p[] = {dv_db_i64(b1, b->job_id), b->why};
        if (dv_db_exec_cmd(db, comment, 2, p, err) < 0) {
            return -1;
        }
    }
    return 0;
}

int
db_block_eval(struct dv_db *db, const char *owner, int64_t eval_id,
              int64_t job_id, int64_t snap_index, const char *why,
              int *woken, struct dv_err *err)
{
    struct block_tx b = {
        .owner = owner,
        .eval_id = eval_id,
        .job_id = job_id,
        .snap_index = snap_index,
        .why = why,
    };

    if (dv_db_tx(db, DV_DB_READ_COMMITTED, block_tx_fn, NULL, &b, 0, err) <
        0) {
        return -1;
    }
    *woken = b.woken;
    return 0;
}

int
db_finish_eval(struct dv_db *db, const char *owner, int64_t eval_id,
               const char *status, const char *description,
               struct dv_err *err)
{
    static const char sql[] =
        "UPDATE evaluations e SET status = CASE WHEN $3 = 'pending' AND "
        "EXISTS (SELECT 1 FROM evaluations o WHERE o.job_id = e.job_id AND "
        "o.status = 'pending') THEN 'cancelled' ELSE $3 END, "
        "status_description = $4, lease_owner = NULL, lease_deadline = NULL, "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND lease_owner = $2";
    char b1[24];
    const char *p[] = {dv_db_i64(b1, eval_id), owner, status, description};

    return dv_db_exec_cmd(db, sql, 4, p, err) < 0 ? -1 : 0;
}

struct unblock_tx {
    int woken;
};

static int
unblock_tx_fn(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char lock[] = "SELECT pg_advisory_xact_lock(" BLOCK_LOCK_KEY
                               ")";
    static const char wake[] =
        "WITH woken AS (UPDATE evaluations SET status = 'pending', "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id IN (SELECT DISTINCT ON (job_id) id FROM evaluations b "
        "WHERE status = 'blocked' AND blocked_index < (SELECT "
        "coalesce(max(capacity_index), 0) FROM nodes) AND NOT EXISTS "
        "(SELECT 1 FROM evaluations o WHERE o.job_id = b.job_id AND "
        "o.status IN ('pending', 'leased')) ORDER BY job_id, id DESC) "
        "RETURNING id) "
        "SELECT count(*) AS n, CASE WHEN count(*) > 0 THEN "
        "pg_notify('evals', '') END FROM woken";
    struct unblock_tx *u = arg;
    PGresult *res;

    u->woken = 0;
    if (dv_db_exec_cmd(db, lock, 0, NULL, err) < 0) {
        return -1;
    }
    res = dv_db_exec(db, wake, 0, NULL, err);
    if (res == NULL) {
        return -1;
    }
    u->woken = (int)dv_db_get_i64(res, 0, "n", 0);
    PQclear(res);
    return 0;
}

int
db_unblock(struct dv_db *db, struct dv_err *err)
{
    struct unblock_tx u = {0};

    if (dv_db_tx(db, DV_DB_READ_COMMITTED, unblock_tx_fn, NULL, &u, 0, err) <
        0) {
        return -1;
    }
    return u.woken;
}

int
db_reap_leases(struct dv_db *db, double now, struct dv_err *err)
{
    static const char sql[] =
        "WITH reaped AS (UPDATE evaluations e SET status = CASE WHEN EXISTS "
        "(SELECT 1 FROM evaluations o WHERE o.job_id = e.job_id AND "
        "o.status = 'pending') THEN 'cancelled' ELSE 'pending' END, "
        "lease_owner = NULL, lease_deadline = NULL, "
        "modify_index = nextval('modify_index_seq') "
        "WHERE status = 'leased' AND lease_deadline < to_timestamp($1) "
        "RETURNING id) "
        "SELECT count(*) AS n, CASE WHEN count(*) > 0 THEN "
        "pg_notify('evals', '') END FROM reaped";
    char b1[32];
    const char *p[] = {dv_db_double(b1, now)};
    PGresult *res = dv_db_exec(db, sql, 1, p, err);
    int n;

    if (res == NULL) {
        return -1;
    }
    n = (int)dv_db_get_i64(res, 0, "n", 0);
    PQclear(res);
    return n;
}
