/*
 * The scheduler's SQL besides the plan commit (commit.c): leasing
 * evaluations, reading jobs and their allocations, blocking and waking
 * evaluations, preemption. Lock order everywhere: node rows in id order,
 * then the job, then allocations. Blocking and waking hold the advisory
 * lock BLOCK_LOCK_KEY exclusively; every transaction that adds capacity
 * holds it shared (the nodes trigger of sql/0002-engine.sql), so a wake-up
 * can never fall between a planner's read and its "blocked".
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/strutil.h"
#include "sched/sched.h"

#define BLOCK_LOCK_KEY "4750001"
/* Blocked evaluations woken at most by one capacity change (the
 * best-ranked first): a thousand waiting jobs re-planned for every job
 * that ends would swamp the schedulers. */
#define UNBLOCK_LIMIT "32"

/* A float8 column as text ("-Infinity" included); -inf when NULL. */
static double
db_get_float8(const PGresult *res, int row, const char *col)
{
    const char *v = dv_db_get(res, row, col);
    char *end = NULL;
    double d;

    if (v == NULL) {
        return -HUGE_VAL;
    }
    d = strtod(v, &end);
    return end == v ? -HUGE_VAL : d;
}

static void
int_array(struct dv_buf *b, const int64_t *v, int n)
{
    dv_buf_putc(b, '{');
    for (int i = 0; i < n; i++) {
        dv_buf_printf(b, "%s%lld", i > 0 ? "," : "", (long long)v[i]);
    }
    dv_buf_putc(b, '}');
}

int
sched_eval_order_cmp(const struct sched_eval *x, const struct sched_eval *y)
{
    /* an evaluation's age is its id */
    struct sched_rank a = {x->queue_priority, x->priority, x->fairshare,
                           x->id};
    struct sched_rank b = {y->queue_priority, y->priority, y->fairshare,
                           y->id};

    return sched_rank_cmp(&a, &b);
}

static int
eval_cmp(const void *a, const void *b)
{
    return sched_eval_order_cmp(a, b);
}

void
db_evals_free(struct sched_eval *evals, int n)
{
    for (int i = 0; i < n; i++) {
        free(evals[i].triggered_by);
    }
    free(evals);
}

int
db_lease_evals(struct dv_db *db, const char *owner, double deadline,
               int batch, struct sched_eval **evals, int *n,
               struct dv_err *err)
{
    /* At most one evaluation per job in flight: a job whose evaluation is
     * leased elsewhere waits. */
    static const char sql[] =
        "UPDATE evaluations SET status = 'leased', lease_owner = $1, "
        "lease_deadline = to_timestamp($2), attempts = attempts + 1, "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = ANY(ARRAY(SELECT id FROM evaluations e "
        "WHERE status = 'pending' AND (wait_until IS NULL OR "
        "wait_until <= to_timestamp($4)) "
        "AND NOT EXISTS (SELECT 1 FROM evaluations l "
        "WHERE l.job_id = e.job_id AND l.status = 'leased') "
        "ORDER BY " SCHED_EVAL_ORDER " LIMIT $3 FOR UPDATE SKIP LOCKED)) "
        "RETURNING id, job_id, priority, queue_priority, "
        /* the owner's usage now: a stamp may predate a job's end */
        "coalesce((SELECT u.usage_log2 FROM jobs j JOIN user_usage u "
        "ON u.owner = j.owner WHERE j.id = evaluations.job_id), "
        "'-Infinity') AS fairshare, triggered_by";
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
        (*evals)[i].queue_priority =
            (int)dv_db_get_i64(res, i, "queue_priority", 0);
        (*evals)[i].fairshare = db_get_float8(res, i, "fairshare");
        (*evals)[i].triggered_by =
            dv_xstrdup(dv_db_get(res, i, "triggered_by"));
    }
    *n = rows;
    PQclear(res);
    /* RETURNING has no order: plan in the order of work, with every
     * owner's usage as it is now (an evaluation that was pending while
     * one of its owner's jobs ended carries an older stamp). */
    qsort(*evals, (size_t)rows, sizeof(**evals), eval_cmp);
    return 0;
}

/* A PBS spec stored before "placement" existed: its chunks become one
 * gang of groups. */
static char *
placement_from_chunks(const char *chunks, const char *place)
{
    json_t *a = json_loads(chunks != NULL ? chunks : "[]", 0, NULL);
    json_t *groups = json_array(), *c, *root;
    char *text;
    size_t i;

    json_array_foreach(a, i, c)
    {
        char name[32];
        snprintf(name, sizeof(name), "chunk%zu", i);
        json_array_append_new(
            groups,
            json_pack("{s:s, s:O, s:O, s:O, s:O}", "name", name, "count",
                      json_object_get(c, "count"), "cores",
                      json_object_get(c, "ncpus"), "memory",
                      json_object_get(c, "mem"), "gpus",
                      json_object_get(c, "ngpus")));
    }
    root = json_pack("{s:b, s:s, s:o}", "gang", 1, "place",
                     place != NULL ? place : "pack", "groups", groups);
    text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    json_decref(a);
    return text;
}

int
db_load_job(struct dv_db *db, int64_t id, struct sched_job *job,
            struct dv_err *err)
{
    static const char sql[] =
        "SELECT j.id, j.name, j.type, j.state, j.priority, "
        "j.spec->'placement' AS placement, j.spec->'chunks' AS chunks, "
        "split_part(j.spec->'resource_list'->>'place', ':', 1) AS place, "
        "(j.spec ? 'script' OR j.spec ? 'argv') AS pbs, "
        "j.spec ? 'array' AS is_array, "
        "coalesce(q.preemption, false) AS preemption, "
        "coalesce(j.alter_time, 'epoch') AS alter_time, j.walltime "
        "FROM jobs j LEFT JOIN queues q ON q.name = j.queue WHERE j.id = $1";
    char idbuf[24];
    const char *params[] = {dv_db_i64(idbuf, id)};
    PGresult *res = dv_db_exec(db, sql, 1, params, err);
    char *legacy = NULL;
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
    job->type = dv_xstrdup(dv_db_get(res, 0, "type"));
    job->state = dv_xstrdup(dv_db_get(res, 0, "state"));
    job->priority = (int)dv_db_get_i64(res, 0, "priority", 0);
    job->pbs = dv_db_get_bool(res, 0, "pbs", 0);
    job->can_preempt = dv_db_get_bool(res, 0, "preemption", 0);
    job->alter_time = dv_xstrdup(dv_db_get(res, 0, "alter_time"));
    job->walltime = (double)dv_db_get_i64(res, 0, "walltime", 0);
    if (dv_db_is_null(res, 0, "placement")) {
        legacy = placement_from_chunks(dv_db_get(res, 0, "chunks"),
                                       dv_db_get(res, 0, "place"));
    }
    if (sched_job_parse_placement(job,
                                  legacy != NULL
                                      ? legacy
                                      : dv_db_get(res, 0, "placement"),
                                  err) < 0) {
        sched_job_cleanup(job);
        goto out;
    }
    if (dv_db_get_bool(res, 0, "is_array", 0) &&
        db_load_array(db, job, err) < 0) {
        sched_job_cleanup(job);
        goto out;
    }
    rc = 1;
out:
    free(legacy);
    PQclear(res);
    return rc;
}

int
db_load_allocs(struct dv_db *db, int64_t job_id, struct sched_alloc **out,
               int *n, struct dv_err *err)
{
    static const char sql[] =
        "SELECT id, node_id, group_index, instance, desired_status, "
        "client_status, reschedule_count FROM allocations WHERE job_id = $1";
    char b1[24];
    const char *p[] = {dv_db_i64(b1, job_id)};
    PGresult *res = dv_db_exec(db, sql, 1, p, err);
    int rows;

    *out = NULL;
    *n = 0;
    if (res == NULL) {
        return -1;
    }
    rows = PQntuples(res);
    *out = dv_xcalloc((size_t)rows + 1, sizeof(**out));
    for (int i = 0; i < rows; i++) {
        struct sched_alloc *a = &(*out)[i];
        const char *ds = dv_db_get(res, i, "desired_status");
        const char *cs = dv_db_get(res, i, "client_status");
        int live = strcmp(cs, "pending") == 0 || strcmp(cs, "running") == 0;

        a->id = dv_db_get_i64(res, i, "id", 0);
        a->node_id = dv_db_get_i64(res, i, "node_id", 0);
        a->group = (int)dv_db_get_i64(res, i, "group_index", 0);
        a->instance = (int)dv_db_get_i64(res, i, "instance", 0);
        a->reschedule_count =
            (int)dv_db_get_i64(res, i, "reschedule_count", 0);
        a->stopping = strcmp(ds, "stop") == 0;
        a->active = live && !a->stopping;
        a->complete = strcmp(cs, "complete") == 0;
        a->failed = strcmp(cs, "failed") == 0;
        a->lost = strcmp(cs, "lost") == 0;
    }
    *n = rows;
    PQclear(res);
    return 0;
}

int
db_load_victims(struct dv_db *db, const int64_t *node_ids, int n, int priority,
                struct victim **out, int *nout, struct dv_err *err)
{
    static const char sql[] =
        "SELECT a.id, a.node_id, a.job_id, j.priority, a.ncpus, a.mem, "
        "a.ngpus FROM allocations a JOIN jobs j ON j.id = a.job_id "
        "WHERE a.node_id = ANY($1::bigint[]) AND a.desired_status = 'run' "
        "AND a.client_status IN ('pending', 'running') AND a.end_time IS NULL "
        "AND j.priority < $2 "
        /* a PBS job is evicted by requeueing it: only rerunnable ones */
        "AND (j.rerunnable OR j.spec ? 'groups')";
    struct dv_buf ids;
    char b1[24];
    PGresult *res;
    int rows;

    *out = NULL;
    *nout = 0;
    dv_buf_init(&ids);
    int_array(&ids, node_ids, n);
    {
        const char *p[] = {dv_buf_str(&ids), dv_db_i64(b1, priority)};
        res = dv_db_exec(db, sql, 2, p, err);
    }
    dv_buf_cleanup(&ids);
    if (res == NULL) {
        return -1;
    }
    rows = PQntuples(res);
    *out = dv_xcalloc((size_t)rows + 1, sizeof(**out));
    for (int i = 0; i < rows; i++) {
        struct victim *v = &(*out)[i];
        v->alloc_id = dv_db_get_i64(res, i, "id", 0);
        v->node_id = dv_db_get_i64(res, i, "node_id", 0);
        v->job_id = dv_db_get_i64(res, i, "job_id", 0);
        v->priority = (int)dv_db_get_i64(res, i, "priority", 0);
        v->cores = (int)dv_db_get_i64(res, i, "ncpus", 0);
        v->mem = dv_db_get_i64(res, i, "mem", 0);
        v->gpus = (int)dv_db_get_i64(res, i, "ngpus", 0);
    }
    *nout = rows;
    PQclear(res);
    return 0;
}

/* --- blocking --- */

struct block_tx {
    const char *owner;
    int64_t eval_id;
    int64_t job_id;
    const struct plan *plan;
    int woken;
};

static int
block_tx_fn(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char lock[] =
        "SELECT pg_advisory_xact_lock(" BLOCK_LOCK_KEY ")";
    /* Capacity gained since the snapshot on a node the job could use, or a
     * node that joined, sends the evaluation back to pending instead. */
    static const char changed[] =
        "SELECT (SELECT count(*) FROM nodes n JOIN unnest($1::bigint[], "
        "$2::bigint[], $5::boolean[]) AS s(id, ci, f) ON n.id = s.id "
        "WHERE CASE WHEN s.f AND NOT $4 THEN n.capacity_index "
        "ELSE n.shape_index END > s.ci) "
        "+ (SELECT count(*) FROM nodes WHERE id > $3) AS changed, "
        "(SELECT coalesce(max(capacity_index), 0) FROM nodes) AS top";
    static const char block[] =
        "UPDATE evaluations e SET status = CASE WHEN EXISTS (SELECT 1 "
        "FROM evaluations o WHERE o.job_id = e.job_id AND "
        "o.status = 'pending') THEN 'cancelled' WHEN $3 THEN 'pending' "
        "ELSE 'blocked' END, blocked_index = $4, status_description = $5, "
        "need_cores = $6, need_mem = $7, need_gpus = $8, never = $9, "
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
    /* A job of a limited queue that waits for capacity hands the slot it
     * may have been woken for to the next job waiting for one. */
    static const char pass_on[] = "SELECT drover_queue_pass_on($1)";
    struct block_tx *b = arg;
    const struct plan *plan = b->plan;
    struct dv_buf ids, cis, fs;
    char b1[24], b2[24], b3[24], b4[24], b5[24], b6[24];
    PGresult *res;
    int moved, blocked, rc = -1;
    int64_t top;

    b->woken = 0;
    dv_buf_init(&ids);
    dv_buf_init(&cis);
    dv_buf_init(&fs);
    /* The job row first: qmgr's transactions lock jobs before the trigger
     * takes the advisory lock shared, so taking it first here would invert
     * the order. */
    {
        const char *p[] = {dv_db_i64(b1, b->job_id), plan->why};
        if (dv_db_exec_cmd(db, comment, 2, p, err) < 0) {
            goto out;
        }
    }
    if (dv_db_exec_cmd(db, lock, 0, NULL, err) < 0) {
        goto out;
    }
    int_array(&ids, plan->node_ids, plan->nnodes_seen);
    int_array(&cis, plan->node_ci, plan->nnodes_seen);
    dv_buf_putc(&fs, '{');
    for (int i = 0; i < plan->nnodes_seen; i++) {
        dv_buf_printf(&fs, "%s%s", i > 0 ? "," : "",
                      plan->node_feasible[i] ? "t" : "f");
    }
    dv_buf_putc(&fs, '}');
    {
        const char *p[] = {dv_buf_str(&ids), dv_buf_str(&cis),
                           dv_db_i64(b1, plan->max_node_id),
                           plan->never ? "true" : "false", dv_buf_str(&fs)};
        res = dv_db_exec(db, changed, 5, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    moved = dv_db_get_i64(res, 0, "changed", 0) > 0;
    top = dv_db_get_i64(res, 0, "top", 0);
    PQclear(res);
    {
        const char *p[] = {dv_db_i64(b1, b->eval_id),
                           b->owner,
                           moved ? "true" : "false",
                           dv_db_i64(b2, top),
                           plan->why,
                           dv_db_i64(b3, plan->need_cores),
                           dv_db_i64(b4, plan->need_mem),
                           dv_db_i64(b5, plan->need_gpus),
                           plan->never ? "true" : "false"};
        res = dv_db_exec(db, block, 9, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    b->woken = PQntuples(res) == 1 &&
               strcmp(dv_db_get(res, 0, "status"), "pending") == 0;
    blocked = PQntuples(res) == 1 &&
              strcmp(dv_db_get(res, 0, "status"), "blocked") == 0;
    PQclear(res);
    {
        const char *p[] = {dv_db_i64(b1, b->job_id), dv_db_i64(b6, b->eval_id)};
        if (dv_db_exec_cmd(db, supersede, 2, p, err) < 0) {
            goto out;
        }
    }
    if (blocked) {
        const char *p[] = {dv_db_i64(b1, b->job_id)};
        if (dv_db_exec_cmd(db, pass_on, 1, p, err) < 0) {
            goto out;
        }
    }
    rc = 0;
out:
    dv_buf_cleanup(&ids);
    dv_buf_cleanup(&cis);
    dv_buf_cleanup(&fs);
    return rc;
}

int
db_block_eval(struct dv_db *db, const char *owner, int64_t eval_id,
              int64_t job_id, const struct plan *plan, int *woken,
              struct dv_err *err)
{
    struct block_tx b = {
        .owner = owner,
        .eval_id = eval_id,
        .job_id = job_id,
        .plan = plan,
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
    /* Giving an evaluation back to pending when the job already has a
     * pending one cancels it instead (one pending per job). */
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

/* --- preemption --- */

struct preempt_tx {
    const struct victim *victims;
    int n;
    int64_t job_id;
    int priority;
    int cores;
    int64_t mem;
    int gpus;
    int stopped;
};

/* How long capacity freed by preemption stays held for the preemptor. */
#define RESERVATION_SECONDS 120.0

static int
preempt_tx_fn(struct dv_db *db, void *arg, struct dv_err *err)
{
    /* The victims, and every live allocation of a PBS job among them: a
     * PBS job is evicted whole (requeued by qmgr), never chunk by chunk. */
    static const char targets[] =
        "SELECT a.id, a.node_id FROM allocations a "
        "WHERE a.desired_status = 'run' AND a.client_status IN "
        "('pending', 'running') AND a.end_time IS NULL AND (a.id = ANY($1::bigint[]) OR a.job_id IN "
        "(SELECT x.job_id FROM allocations x JOIN jobs j ON j.id = x.job_id "
        "WHERE x.id = ANY($1::bigint[]) AND NOT (j.spec ? 'groups'))) "
        "ORDER BY a.node_id";
    static const char lock[] =
        "SELECT id FROM nodes WHERE id = ANY($1::bigint[]) ORDER BY id "
        "FOR NO KEY UPDATE";
    static const char stop[] =
        "WITH i AS (SELECT nextval('modify_index_seq') AS v) "
        "UPDATE allocations SET desired_status = 'stop', "
        "desired_description = $2, modify_index = i.v, "
        "alloc_modify_index = i.v FROM i "
        "WHERE id = ANY($1::bigint[]) AND desired_status = 'run' "
        "AND client_status IN ('pending', 'running') AND end_time IS NULL";
    static const char notify[] = "SELECT pg_notify('allocs', $1)";
    static const char reserve[] =
        "INSERT INTO reservations (job_id, node_id, priority, cores, mem, "
        "gpus, reason, create_time, expire_time) VALUES ($1, $2, $3, $4, $5, "
        "$6, 'preemption', to_timestamp($7), to_timestamp($8))";
    struct preempt_tx *t = arg;
    int64_t *allocs = dv_xcalloc((size_t)t->n + 1, sizeof(int64_t));
    struct dv_buf nb, ab, csv;
    char *why = dv_xasprintf("preempted by job %lld", (long long)t->job_id);
    PGresult *res = NULL;
    int rc = -1;
    int64_t n, last = -1;

    dv_buf_init(&nb);
    dv_buf_init(&ab);
    dv_buf_init(&csv);
    t->stopped = 0;
    for (int i = 0; i < t->n; i++) {
        allocs[i] = t->victims[i].alloc_id;
    }
    int_array(&ab, allocs, t->n);
    {
        const char *p[] = {dv_buf_str(&ab)};
        res = dv_db_exec(db, targets, 1, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    dv_buf_reset(&ab);
    dv_buf_putc(&ab, '{');
    dv_buf_putc(&nb, '{');
    for (int i = 0, k = 0; i < PQntuples(res); i++) {
        int64_t node = dv_db_get_i64(res, i, "node_id", 0);
        dv_buf_printf(&ab, "%s%lld", i > 0 ? "," : "",
                      (long long)dv_db_get_i64(res, i, "id", 0));
        if (node != last) {
            dv_buf_printf(&nb, "%s%lld", k > 0 ? "," : "", (long long)node);
            dv_buf_printf(&csv, "%s%lld", k++ > 0 ? "," : "", (long long)node);
            last = node;
        }
    }
    dv_buf_putc(&ab, '}');
    dv_buf_putc(&nb, '}');
    {
        const char *p[] = {dv_buf_str(&nb)};
        if (dv_db_exec_cmd(db, lock, 1, p, err) < 0) {
            goto out;
        }
    }
    {
        const char *p[] = {dv_buf_str(&ab), why};
        n = dv_db_exec_cmd(db, stop, 2, p, err);
        if (n < 0) {
            goto out;
        }
        t->stopped = (int)n;
    }
    if (t->stopped > 0) {
        const char *p[] = {dv_buf_str(&csv)};
        if (dv_db_exec_cmd(db, notify, 1, p, err) < 0) {
            goto out;
        }
    }
    {
        char r1[24], r2[24], r3[24], r4[24], r5[24], r6[24], r7[32], r8[32];
        double now = dv_now();
        const char *p[] = {dv_db_i64(r1, t->job_id),
                           dv_db_i64(r2, t->victims[0].node_id),
                           dv_db_i64(r3, t->priority),
                           dv_db_i64(r4, t->cores),
                           dv_db_i64(r5, t->mem),
                           dv_db_i64(r6, t->gpus),
                           dv_db_double(r7, now),
                           dv_db_double(r8, now + RESERVATION_SECONDS)};
        if (dv_db_exec_cmd(db, reserve, 8, p, err) < 0) {
            goto out;
        }
    }
    rc = 0;
out:
    PQclear(res);
    free(allocs);
    free(why);
    dv_buf_cleanup(&nb);
    dv_buf_cleanup(&ab);
    dv_buf_cleanup(&csv);
    return rc;
}

int
db_preempt(struct dv_db *db, const char *owner, int64_t eval_id,
           const struct plan *plan, const struct victim *victims, int n,
           struct dv_err *err)
{
    const struct sched_group *g =
        &plan->job->groups[plan->rec->wants[plan->unplaced[0]].group];
    struct preempt_tx t = {.victims = victims,
                           .n = n,
                           .job_id = plan->job->id,
                           .priority = plan->job->priority,
                           .cores = g->cores,
                           .mem = g->mem,
                           .gpus = g->gpus};
    int woken = 0;

    if (dv_db_tx(db, DV_DB_READ_COMMITTED, preempt_tx_fn, NULL, &t, 0, err) <
        0) {
        return -1;
    }
    log_notice("job %lld preempts %d allocation%s", (long long)plan->job->id,
               t.stopped, t.stopped == 1 ? "" : "s");
    /* Wait for the victims' capacity like any blocked work. */
    return db_block_eval(db, owner, eval_id, plan->job->id, plan, &woken, err);
}

/* --- waking --- */

struct unblock_tx {
    int strict;
    int depth;
    int woken;
};

/* Does reservation r's holder rank above blocked evaluation b's job, in the
 * order of work (the holder's keys as captured with the reservation)? */
#define RANKS_ABOVE \
    "drover_ranks_above(r.queue_priority, r.priority, r.fairshare, " \
    "r.job_id, b.queue_priority, b.priority, b.fairshare, b.job_id)"

static int
unblock_tx_fn(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char lock[] =
        "SELECT pg_advisory_xact_lock(" BLOCK_LOCK_KEY ")";
    /* Capacity freed after an evaluation blocked, on a node that could hold
     * its smallest instance, wakes it (one per job, never next to one
     * already pending or leased). */
    static const char wake[] =
        /* strict order ($1): only the best-ranked waiting job may start,
         * so only it wakes (the others would plan and block again) */
        "WITH top AS (SELECT job_id FROM evaluations WHERE status IN "
        "('blocked', 'pending', 'leased') AND NOT never "
        "ORDER BY " SCHED_JOB_ORDER " LIMIT 1), "
        "free AS (SELECT coalesce(sum(free_cores), 0) AS c FROM nodes "
        "WHERE status = 'ready' AND eligible AND NOT drain), "
        "woken AS (UPDATE evaluations SET status = 'pending', "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id IN (SELECT id FROM (SELECT DISTINCT ON (job_id) id, "
        "job_id, priority, queue_priority, fairshare FROM evaluations b "
        "WHERE status = 'blocked' AND b.wait_queue IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM evaluations o "
        "WHERE o.job_id = b.job_id AND o.status IN ('pending', 'leased')) "
        /* strict order: nothing ranked below a fifo holder can start, so
         * capacity does not wake it (the holder's release does) */
        "AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.kind = 'fifo' "
        "AND r.job_id <> b.job_id AND " RANKS_ABOVE ") "
        "AND (NOT $1::boolean OR b.never OR b.job_id IN (SELECT job_id "
        "FROM top)) "
        /* a PBS job is placed whole: not before the cluster has its
         * cores free somewhere */
        "AND (b.never OR NOT EXISTS (SELECT 1 FROM jobs j WHERE "
        "j.id = b.job_id AND j.pbs AND j.ncpus > (SELECT c FROM free))) "
        "AND CASE WHEN b.never THEN EXISTS (SELECT 1 FROM nodes n "
        "WHERE n.shape_index > b.blocked_index) "
        "ELSE EXISTS (SELECT 1 FROM nodes n WHERE n.capacity_index > "
        "b.blocked_index AND n.status = 'ready' AND n.eligible AND "
        "NOT n.drain AND n.free_cores >= b.need_cores AND "
        "n.free_mem >= b.need_mem AND n.free_gpus >= b.need_gpus "
        /* a hint, not the check: not a node whose backfill reservation
         * the job would run into and not fit beside (backfill.c decides
         * exactly when it is planned) */
        "AND NOT EXISTS (SELECT 1 FROM reservations r JOIN jobs bj "
        "ON bj.id = b.job_id WHERE r.node_id = n.id AND r.kind = 'backfill' "
        "AND r.job_id <> b.job_id AND " RANKS_ABOVE " AND "
        "(bj.walltime <= 0 OR r.start_time IS NULL OR r.start_time < "
        "to_timestamp($2) + make_interval(secs => bj.walltime)) AND "
        "n.free_cores - r.cores < b.need_cores)) END "
        "ORDER BY job_id, id DESC) c "
        /* the best-ranked first, a bounded number at a time: the rest
         * still satisfy this at the next capacity change or tick */
        "ORDER BY " SCHED_JOB_ORDER " LIMIT " UNBLOCK_LIMIT ") "
        "RETURNING id) "
        "SELECT count(*) AS n, CASE WHEN count(*) > 0 THEN "
        "pg_notify('evals', '') END FROM woken";
    /* The top --backfill-depth waiting batch jobs without a reservation
     * are evaluated again whatever capacity did: a holder that started or
     * left hands its place on at once, so the top job always holds one. */
    static const char top[] =
        "WITH w AS (SELECT DISTINCT ON (e.job_id) e.id, e.job_id, e.status, "
        "e.priority, e.queue_priority, e.fairshare "
        "FROM evaluations e JOIN jobs j ON j.id = e.job_id "
        "AND j.type = 'batch' AND j.pbs "
        "WHERE e.status IN ('blocked', 'pending', 'leased') AND NOT e.never "
        "ORDER BY e.job_id, e.id DESC), "
        "best AS (SELECT * FROM w ORDER BY " SCHED_JOB_ORDER " LIMIT $1), "
        "woken AS (UPDATE evaluations SET status = 'pending', "
        "modify_index = nextval('modify_index_seq') WHERE id IN "
        "(SELECT id FROM best b WHERE b.status = 'blocked' AND NOT EXISTS "
        "(SELECT 1 FROM evaluations o WHERE o.job_id = b.job_id "
        "AND o.status IN ('pending', 'leased')) AND NOT EXISTS "
        "(SELECT 1 FROM reservations r WHERE r.job_id = b.job_id "
        "AND r.kind <> 'preemption')) RETURNING id) "
        "SELECT count(*) AS n, CASE WHEN count(*) > 0 THEN "
        "pg_notify('evals', '') END FROM woken";
    struct unblock_tx *u = arg;
    PGresult *res;
    char b1[24];

    u->woken = 0;
    if (dv_db_exec_cmd(db, lock, 0, NULL, err) < 0) {
        return -1;
    }
    {
        char b2[32];
        const char *p[] = {u->strict ? "true" : "false",
                           dv_db_double(b2, dv_now())};
        res = dv_db_exec(db, wake, 2, p, err);
    }
    if (res == NULL) {
        return -1;
    }
    u->woken = (int)dv_db_get_i64(res, 0, "n", 0);
    PQclear(res);
    if (u->depth > 0) {
        const char *p[] = {dv_db_i64(b1, u->depth)};
        res = dv_db_exec(db, top, 1, p, err);
        if (res == NULL) {
            return -1;
        }
        u->woken += (int)dv_db_get_i64(res, 0, "n", 0);
        PQclear(res);
    }
    return 0;
}

int
db_unblock(struct dv_db *db, int strict, int depth, struct dv_err *err)
{
    struct unblock_tx u = {.strict = strict, .depth = depth};

    if (dv_db_tx(db, DV_DB_READ_COMMITTED, unblock_tx_fn, NULL, &u, 0, err) <
        0) {
        return -1;
    }
    return u.woken;
}

int
db_expire_reservations(struct dv_db *db, double now, struct dv_err *err)
{
    /* What an expired reservation held back is free for others now. */
    static const char sql[] =
        "WITH gone AS (DELETE FROM reservations "
        "WHERE expire_time < to_timestamp($1) RETURNING node_id) "
        "SELECT drover_wake_nodes(array_agg(DISTINCT node_id)) FROM gone";
    char b1[32];
    const char *p[] = {dv_db_double(b1, now)};

    return dv_db_exec_cmd(db, sql, 1, p, err) < 0 ? -1 : 0;
}

int
db_renew_lease(struct dv_db *db, const char *owner, int64_t eval_id,
               double deadline, struct dv_err *err)
{
    static const char sql[] =
        "UPDATE evaluations SET lease_deadline = to_timestamp($3) "
        "WHERE id = $1 AND status = 'leased' AND lease_owner = $2";
    char b1[24], b3[32];
    const char *p[] = {dv_db_i64(b1, eval_id), owner,
                       dv_db_double(b3, deadline)};
    int64_t n = dv_db_exec_cmd(db, sql, 3, p, err);

    return n < 0 ? -1 : n > 0;
}

int
db_wake_nodes(struct dv_db *db, const int64_t *ids, int n, struct dv_err *err)
{
    static const char sql[] = "SELECT drover_wake_nodes($1::bigint[])";
    struct dv_buf b;
    int rc;

    dv_buf_init(&b);
    int_array(&b, ids, n);
    {
        const char *p[] = {dv_buf_str(&b)};
        rc = dv_db_exec_cmd(db, sql, 1, p, err) < 0 ? -1 : 0;
    }
    dv_buf_cleanup(&b);
    return rc;
}

int
db_holds_reservation(struct dv_db *db, int64_t job_id, int backfill,
                     struct dv_err *err)
{
    static const char sql[] =
        "SELECT 1 FROM reservations WHERE job_id = $1 "
        "AND (kind <> 'preemption') = $3::boolean "
        "AND expire_time > to_timestamp($2) LIMIT 1";
    char b1[24], b2[32];
    const char *p[] = {dv_db_i64(b1, job_id), dv_db_double(b2, dv_now()),
                       backfill ? "true" : "false"};
    PGresult *res = dv_db_exec(db, sql, 3, p, err);
    int found;

    if (res == NULL) {
        return -1;
    }
    found = PQntuples(res) > 0;
    PQclear(res);
    return found;
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

int
db_load_running(struct dv_db *db, const int64_t *node_ids, int n,
                struct bf_running **out, int *nout, struct dv_err *err)
{
    /* Live allocations and their estimated end (no walltime: never). */
    static const char sql[] =
        "SELECT a.node_id, a.ncpus, a.mem, a.ngpus, j.walltime, "
        "extract(epoch FROM coalesce(a.start_time, a.create_time)) AS t0 "
        "FROM allocations a JOIN jobs j ON j.id = a.job_id "
        "WHERE a.node_id = ANY($1::bigint[]) AND a.end_time IS NULL";
    struct dv_buf b;
    PGresult *res;
    int rows;

    *out = NULL;
    *nout = 0;
    dv_buf_init(&b);
    int_array(&b, node_ids, n);
    {
        const char *p[] = {dv_buf_str(&b)};
        res = dv_db_exec(db, sql, 1, p, err);
    }
    dv_buf_cleanup(&b);
    if (res == NULL) {
        return -1;
    }
    rows = PQntuples(res);
    *out = dv_xcalloc((size_t)rows + 1, sizeof(**out));
    for (int i = 0; i < rows; i++) {
        struct bf_running *r = &(*out)[i];
        int64_t wall = dv_db_get_i64(res, i, "walltime", 0);
        r->node_id = dv_db_get_i64(res, i, "node_id", 0);
        r->cores = (int)dv_db_get_i64(res, i, "ncpus", 0);
        r->mem = dv_db_get_i64(res, i, "mem", 0);
        r->gpus = (int)dv_db_get_i64(res, i, "ngpus", 0);
        r->end = wall > 0 ? dv_db_get_double(res, i, "t0", 0) + (double)wall
                          : INFINITY;
    }
    *nout = rows;
    PQclear(res);
    return 0;
}

/* Serialises the choice of the top jobs between schedulers. */
#define BACKFILL_LOCK_KEY "4750007"

struct reserve_tx {
    const struct sched_rank *rank;
    double start;
    double expire;
    const struct bf_slot *slots;
    int nslots;
    const char *kind;
    int depth;
    int made;
};

static int
slot_cmp(const void *a, const void *b)
{
    const struct bf_slot *x = a, *y = b;

    return x->node_id < y->node_id ? -1 : x->node_id > y->node_id;
}

/* Is the job's stored reservation (own, ordered by node) the one about to
 * be made? Starts that have both begun, or differ by under a second,
 * count as the same. */
static int
own_unchanged(const PGresult *own, const struct reserve_tx *t)
{
    struct bf_slot *s;
    double now = dv_now();
    int same = PQntuples(own) == t->nslots;

    if (!same) {
        return 0;
    }
    s = dv_xcalloc((size_t)t->nslots + 1, sizeof(*s));
    memcpy(s, t->slots, sizeof(*s) * (size_t)t->nslots);
    qsort(s, (size_t)t->nslots, sizeof(*s), slot_cmp);
    for (int i = 0; i < t->nslots && same; i++) {
        double st = dv_db_get_double(own, i, "start", 0);
        same = dv_db_get_i64(own, i, "node_id", 0) == s[i].node_id &&
               dv_db_get_i64(own, i, "cores", 0) == s[i].a.cores &&
               dv_db_get_i64(own, i, "mem", 0) == s[i].a.mem &&
               dv_db_get_i64(own, i, "gpus", 0) == s[i].a.gpus &&
               strcmp(dv_db_get(own, i, "kind"), t->kind) == 0 &&
               ((st <= now && t->start <= now) || fabs(st - t->start) < 1.0);
    }
    free(s);
    return same;
}

static int
reserve_tx_fn(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char lock[] =
        "SELECT pg_advisory_xact_lock(" BACKFILL_LOCK_KEY ")";
    /* Waiting jobs ranked above this one (up to the depth). */
    static const char above_sql[] =
        "SELECT drover_ranked_above($1, $2, $3, $4, $5) AS n";
    /* Holders that are no longer among the top waiting jobs (ranked by
     * the keys captured with their reservations). */
    static const char holders[] =
        "SELECT job_id FROM (SELECT job_id, max(queue_priority) AS q, "
        "max(priority) AS p, min(fairshare) AS f "
        "FROM reservations WHERE kind <> 'preemption' AND job_id <> $1 "
        "GROUP BY job_id) h "
        "WHERE drover_ranked_above(h.job_id, h.q, h.p, h.f, $2) >= $2";
    static const char own[] =
        "SELECT node_id, cores, mem, gpus, kind, "
        "coalesce(extract(epoch FROM start_time), 0) AS start "
        "FROM reservations WHERE job_id = $1 AND kind <> 'preemption' "
        "ORDER BY node_id";
    /* the holder's rank keys as they are now, too */
    static const char extend[] =
        "UPDATE reservations SET expire_time = to_timestamp($2), "
        "queue_priority = $3, priority = $4, fairshare = $5 "
        "WHERE job_id = $1 AND kind <> 'preemption'";
    static const char insert[] =
        "INSERT INTO reservations (job_id, node_id, priority, cores, mem, "
        "gpus, reason, create_time, expire_time, start_time, kind, "
        "queue_priority, fairshare) "
        "SELECT $1, n, $2, c, m, g, 'backfill', to_timestamp($3), "
        "to_timestamp($4), to_timestamp($5), $6, $11, $12 "
        "FROM unnest($7::bigint[], $8::int[], $9::bigint[], $10::int[]) "
        "AS u(n, c, m, g)";
    static const char estimate[] =
        "UPDATE jobs SET estimated_start_time = $2 WHERE id = $1 "
        "AND estimated_start_time IS DISTINCT FROM $2";
    /* Pushed out of the top: let go (and wake what it held back). */
    static const char drop_job[] =
        "WITH gone AS (DELETE FROM reservations WHERE job_id = $1 "
        "AND kind <> 'preemption' RETURNING node_id) "
        "SELECT drover_wake_nodes(array_agg(DISTINCT node_id)) FROM gone";
    static const char clear_estimate[] =
        "UPDATE jobs SET estimated_start_time = NULL WHERE id = $1 "
        "AND estimated_start_time IS NOT NULL";
    struct reserve_tx *t = arg;
    char b1[24], b2[24], b3[32], b4[32], b5[32], q[24], f[32];
    struct dv_buf n, c, m, g;
    PGresult *res = NULL, *mine = NULL;
    int above = 0, rc = -1;

    dv_buf_init(&n);
    dv_buf_init(&c);
    dv_buf_init(&m);
    dv_buf_init(&g);
    t->made = 0;
    if (dv_db_exec_cmd(db, lock, 0, NULL, err) < 0) {
        goto out;
    }
    {
        const char *p[] = {dv_db_i64(b1, t->rank->id),
                           dv_db_i64(q, t->rank->queue_priority),
                           dv_db_i64(b2, t->rank->priority),
                           dv_db_double(f, t->rank->fairshare),
                           dv_db_i64(b3, t->depth)};
        res = dv_db_exec(db, above_sql, 5, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    above = (int)dv_db_get_i64(res, 0, "n", 0);
    PQclear(res);
    res = NULL;
    if (above < t->depth && t->nslots > 0) {
        int same;
        {
            const char *p[] = {dv_db_i64(b1, t->rank->id)};
            mine = dv_db_exec(db, own, 1, p, err);
        }
        if (mine == NULL) {
            goto out;
        }
        same = own_unchanged(mine, t);
        PQclear(mine);
        mine = NULL;
        if (same) {
            /* The same reservation: keep it (moving it would wake the
             * nodes, and the job would be evaluated again for nothing). */
            const char *p[] = {dv_db_i64(b1, t->rank->id),
                               dv_db_double(b4, t->expire),
                               dv_db_i64(q, t->rank->queue_priority),
                               dv_db_i64(b2, t->rank->priority),
                               dv_db_double(f, t->rank->fairshare)};
            if (dv_db_exec_cmd(db, extend, 5, p, err) < 0) {
                goto out;
            }
            t->made = 1;
            goto others;
        }
        {
            const char *p[] = {dv_db_i64(b1, t->rank->id)};
            if (dv_db_exec_cmd(db, drop_job, 1, p, err) < 0) {
                goto out;
            }
        }
        dv_buf_putc(&n, '{');
        dv_buf_putc(&c, '{');
        dv_buf_putc(&m, '{');
        dv_buf_putc(&g, '{');
        for (int i = 0; i < t->nslots; i++) {
            const char *sep = i > 0 ? "," : "";
            dv_buf_printf(&n, "%s%lld", sep, (long long)t->slots[i].node_id);
            dv_buf_printf(&c, "%s%d", sep, t->slots[i].a.cores);
            dv_buf_printf(&m, "%s%lld", sep, (long long)t->slots[i].a.mem);
            dv_buf_printf(&g, "%s%d", sep, t->slots[i].a.gpus);
        }
        dv_buf_putc(&n, '}');
        dv_buf_putc(&c, '}');
        dv_buf_putc(&m, '}');
        dv_buf_putc(&g, '}');
        {
            const char *p[] = {dv_db_i64(b1, t->rank->id),
                               dv_db_i64(b2, t->rank->priority),
                               dv_db_double(b3, dv_now()),
                               dv_db_double(b4, t->expire),
                               dv_db_double(b5, t->start),
                               t->kind,
                               dv_buf_str(&n),
                               dv_buf_str(&c),
                               dv_buf_str(&m),
                               dv_buf_str(&g),
                               dv_db_i64(q, t->rank->queue_priority),
                               dv_db_double(f, t->rank->fairshare)};
            if (dv_db_exec_cmd(db, insert, 12, p, err) < 0) {
                goto out;
            }
        }
        {
            char when[64];
            const char *p[] = {dv_db_i64(b1, t->rank->id), when};
            dv_clock_iso(t->start, when, sizeof(when));
            if (dv_db_exec_cmd(db, estimate, 2, p, err) < 0) {
                goto out;
            }
        }
        t->made = 1;
    } else {
        const char *p[] = {dv_db_i64(b1, t->rank->id)};
        if (dv_db_exec_cmd(db, drop_job, 1, p, err) < 0 ||
            dv_db_exec_cmd(db, clear_estimate, 1, p, err) < 0) {
            goto out;
        }
    }
others:
    /* Holders now ranked beyond the depth give their place up. */
    {
        const char *p[] = {dv_db_i64(b1, t->rank->id), dv_db_i64(b2, t->depth)};
        res = dv_db_exec(db, holders, 2, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        const char *p[] = {dv_db_get(res, i, "job_id")};
        if (dv_db_exec_cmd(db, drop_job, 1, p, err) < 0 ||
            dv_db_exec_cmd(db, clear_estimate, 1, p, err) < 0) {
            goto out;
        }
    }
    rc = 0;
out:
    PQclear(res);
    PQclear(mine);
    dv_buf_cleanup(&n);
    dv_buf_cleanup(&c);
    dv_buf_cleanup(&m);
    dv_buf_cleanup(&g);
    return rc;
}

int
db_reserve(struct dv_db *db, const struct sched_rank *rank, double start,
           double expire, const struct bf_slot *slots, int nslots,
           const char *kind, int depth, int *made, struct dv_err *err)
{
    struct reserve_tx t = {
        .rank = rank,
        .start = start,
        .expire = expire,
        .slots = slots,
        .nslots = nslots,
        .kind = kind,
        .depth = depth,
    };

    if (dv_db_tx(db, DV_DB_READ_COMMITTED, reserve_tx_fn, NULL, &t, 0, err) <
        0) {
        return -1;
    }
    *made = t.made;
    return 0;
}

int
db_ranked_above(struct dv_db *db, const struct sched_rank *rank, int depth,
                struct dv_err *err)
{
    static const char sql[] =
        "SELECT drover_ranked_above($1, $2, $3, $4, $5) AS n";
    char b1[24], b2[24], b3[24], b4[24], b5[32];
    const char *p[] = {dv_db_i64(b1, rank->id),
                       dv_db_i64(b4, rank->queue_priority),
                       dv_db_i64(b2, rank->priority),
                       dv_db_double(b5, rank->fairshare),
                       dv_db_i64(b3, depth)};
    PGresult *res = dv_db_exec(db, sql, 5, p, err);
    int n;

    if (res == NULL) {
        return -1;
    }
    n = (int)dv_db_get_i64(res, 0, "n", 0);
    PQclear(res);
    return n;
}

