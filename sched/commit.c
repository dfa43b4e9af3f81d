/*
 * The optimistic commit: one transaction per plan. Node rows are locked in
 * id order (the plan's nodes and the nodes of the allocations it stops),
 * then the job row; every placement is re-checked against the node's
 * current free cores, memory, GPUs and disk (the exact cores planned are
 * kept when still free, else chosen again on the locked row); what fits is
 * written with one index drawn after the locks: node capacity, the new
 * allocations (one multi-row INSERT), the stops, the job's state, the
 * evaluation. Placements that no longer fit are refused and handed back
 * for re-planning; a gang plan commits whole or not at all. An array's
 * subjobs are checked against %max and written by sched/array.c under the
 * same job row lock.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/clock.h"
#include "lib/cpuset.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/resources.h"
#include "lib/strutil.h"
#include "sched/sched.h"

struct commit_tx {
    const char *owner;
    int64_t eval_id;
    const struct plan *plan;
    int finish;
    double now;
    double lease;
    struct commit_result *r;
};

void
commit_result_cleanup(struct commit_result *r)
{
    for (int i = 0; i < r->nafter; i++) {
        free(r->after[i].free_cpuset);
        free(r->after[i].free_gpuset);
    }
    free(r->after);
    free(r->refused_idx);
    memset(r, 0, sizeof(*r));
}

static void
result_reset(struct commit_result *r)
{
    double keep = r->seconds;

    commit_result_cleanup(r);
    r->seconds = keep;
}

static char *
bitmap_text(hwloc_const_bitmap_t b)
{
    char *s = NULL, *copy;

    if (hwloc_bitmap_iszero(b)) {
        return dv_xstrdup("");
    }
    if (hwloc_bitmap_list_asprintf(&s, b) < 0 || s == NULL) {
        abort(); /* out of memory */
    }
    copy = dv_xstrdup(s);
    free(s);
    return copy;
}

static hwloc_bitmap_t
bitmap_parse(const char *s)
{
    hwloc_bitmap_t b = hwloc_bitmap_alloc();

    if (s != NULL && *s != '\0' &&
        (hwloc_bitmap_list_sscanf(b, s) < 0 || hwloc_bitmap_weight(b) < 0)) {
        hwloc_bitmap_zero(b);
    }
    return b;
}

static int
id_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* Sorted distinct node ids of the plan's placements and stops, and of the
 * job's reservations (released when it places, under the same locks). */
static int64_t *
locked_ids(const struct plan *plan, const PGresult *resv, int *n)
{
    int nresv = resv != NULL ? PQntuples(resv) : 0;
    int cap = plan->nplacements + (plan->rec != NULL ? plan->rec->nstops : 0) +
              nresv;
    int64_t *ids = dv_xcalloc((size_t)cap + 1, sizeof(*ids));
    int k = 0, out = 0;

    for (int i = 0; i < nresv; i++) {
        ids[k++] = dv_db_get_i64(resv, i, "node_id", 0);
    }
    for (int i = 0; i < plan->nplacements; i++) {
        ids[k++] = plan->placements[i].pn->node->id;
    }
    for (int i = 0; plan->rec != NULL && i < plan->rec->nstops; i++) {
        ids[k++] = plan->rec->stops[i].node_id;
    }
    qsort(ids, (size_t)k, sizeof(*ids), id_cmp);
    for (int i = 0; i < k; i++) {
        if (out == 0 || ids[out - 1] != ids[i]) {
            ids[out++] = ids[i];
        }
    }
    *n = out;
    return ids;
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

/* Appends "x" to a PostgreSQL array literal of text being built in b. */
static void
text_elem(struct dv_buf *b, const char *s, int first)
{
    if (!first) {
        dv_buf_putc(b, ',');
    }
    dv_buf_putc(b, '"');
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            dv_buf_putc(b, '\\');
        }
        dv_buf_putc(b, *p);
    }
    dv_buf_putc(b, '"');
}

/* The state of a locked node row while this transaction changes it. */
struct locked {
    int64_t id;
    int ready;
    hwloc_bitmap_t cores;
    int64_t mem;
    hwloc_bitmap_t gpus;
    int64_t disk;
    int changed;
    struct bf_amount total;
    struct bf_amount initial; /* free when locked, before this plan */
    struct snap_resv *resv;   /* reservations on the node */
    int nresv;
    int64_t modify_index;
    int64_t capacity_index;
    int64_t excl_job; /* held whole by this job (place=excl); 0: none */
    int64_t db_excl;  /* ... as read */
    int empty;        /* nothing ran on it when locked */
};

static struct locked *
find_locked(struct locked *l, int n, int64_t id)
{
    for (int i = 0; i < n; i++) {
        if (l[i].id == id) {
            return &l[i];
        }
    }
    return NULL;
}

/* Is want's slot (group and instance; group and node for system jobs)
 * already held by a live allocation in live (NULL: none)? */
static int
slot_taken(const PGresult *live, const struct sched_want *w)
{
    for (int i = 0; live != NULL && i < PQntuples(live); i++) {
        if (dv_db_get_i64(live, i, "group_index", -1) != w->group) {
            continue;
        }
        if (w->node_id != 0
                ? dv_db_get_i64(live, i, "node_id", 0) == w->node_id
                : dv_db_get_i64(live, i, "instance", -1) == w->instance) {
            return 1;
        }
    }
    return 0;
}

static int
job_wants_placing(const struct sched_job *job, const char *state)
{
    if (job->array != NULL) {
        /* queued, or running (begun) with subjobs left to place */
        return strcmp(state, "queued") == 0 || strcmp(state, "running") == 0;
    }
    if (job->pbs) {
        return strcmp(state, "queued") == 0;
    }
    return strcmp(state, "queued") == 0 || strcmp(state, "running") == 0;
}

static void
run_comment(const struct plan *plan, double now, const int *accepted,
            struct dv_buf *out)
{
    char when[64];
    time_t t = (time_t)now;
    struct tm tm;
    int first = 1;

    localtime_r(&t, &tm);
    strftime(when, sizeof(when), "%a %b %d at %H:%M", &tm);
    dv_buf_printf(out, "Job run at %s on ", when);
    for (int i = 0; i < plan->nplacements; i++) {
        const struct placement *pl = &plan->placements[i];
        char size[32];
        if (!accepted[i]) {
            continue;
        }
        if (!plan->job->pbs && !first) {
            dv_buf_printf(out, "+...");
            break;
        }
        dv_buf_printf(out, "%s(%s:ncpus=%d", first ? "" : "+",
                      pl->pn->node->name, hwloc_bitmap_weight(pl->cores));
        if (pl->mem > 0) {
            dv_format_size(pl->mem, size, sizeof(size));
            dv_buf_printf(out, ":mem=%s", size);
        }
        if (!hwloc_bitmap_iszero(pl->gpus)) {
            dv_buf_printf(out, ":ngpus=%d", hwloc_bitmap_weight(pl->gpus));
        }
        dv_buf_putc(out, ')');
        first = 0;
    }
}

/* For sched/array.c: the PBS comment and text-array element that the
 * commit writes for placements. */
void
commit_run_comment(const struct plan *plan, double now, const int *accepted,
                   struct dv_buf *out)
{
    run_comment(plan, now, accepted, out);
}

void
commit_text_elem(struct dv_buf *b, const char *s, int first)
{
    text_elem(b, s, first);
}

/* A queue admission answer (a "why" column): when it says to wait, the
 * commit's outcome is COMMIT_QUEUE_WAIT with the reason; returns 1 then,
 * else 0. */
static int
queue_wait(const PGresult *res, struct commit_result *r)
{
    if (dv_db_is_null(res, 0, "why")) {
        return 0;
    }
    r->outcome = COMMIT_QUEUE_WAIT;
    dv_strlcpy(r->why, dv_db_get(res, 0, "why"), sizeof(r->why));
    return 1;
}

static int
commit_tx_fn(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char own_reservations[] =
        "SELECT DISTINCT node_id FROM reservations WHERE job_id = $1";
    static const char lock_nodes[] =
        "SELECT id, status = 'ready' AND eligible AND NOT drain AS ready, "
        "free_cpuset, free_mem, free_gpuset, free_disk, modify_index, "
        "capacity_index, coalesce(excl_job, 0) AS excl_job, "
        "free_cores = total_cores AND free_mem = total_mem AND "
        "free_gpus = total_gpus AS empty, total_cores, total_mem, "
        "total_gpus FROM nodes "
        "WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE";
    /* Still ours? A lease that expired mid-plan may have been taken over:
     * then write nothing. Renewed here while the job row is locked. */
    static const char renew[] =
        "UPDATE evaluations SET lease_deadline = to_timestamp($3) "
        "WHERE id = $1 AND status = 'leased' AND lease_owner = $2";
    /* Instance slots already filled by a live allocation. */
    static const char live_slots[] =
        "SELECT group_index, instance, node_id FROM allocations "
        "WHERE job_id = $1 AND desired_status = 'run' AND end_time IS NULL";
    /* altered: qalter or qmove changed the queued job after the plan's
     * load (the plan asks for the old request; the change queued a new
     * evaluation, which plans with the new one) */
    static const char lock_job[] =
        "SELECT state, state = 'queued' AND $2::timestamptz IS NOT NULL AND "
        "coalesce(alter_time, 'epoch') <> $2::timestamptz AS altered "
        "FROM jobs WHERE id = $1 FOR UPDATE";
    /* A job about to start: its queue's started flag and running-job
     * limits, counted under the queue's lock (sql/0006-queues.sql). */
    static const char admit[] =
        "SELECT drover_queue_admit($1, $2, $3) AS why";
    /* An array's subjobs count one by one against the same limits (PBS),
     * at every commit that places some, not only the array's first. */
    static const char array_room[] =
        "SELECT room, why FROM drover_queue_array_room($1, $2, $3, $4)";
    static const char next_index[] = "SELECT nextval('modify_index_seq') AS v";
    /* Reservations on the locked nodes, and what the running work there
     * still holds at their start (read under the row locks: nothing else
     * can place on these nodes meanwhile). Which bind this job, and how, is
     * backfill.c's. */
    static const char reserved[] =
        "SELECT r.node_id, r.job_id, r.priority, r.queue_priority, "
        "r.fairshare, r.kind, r.cores, r.mem, "
        "r.gpus, coalesce(extract(epoch FROM r.start_time), 0) AS start, "
        "b.cores AS busy_cores, b.mem AS busy_mem, b.gpus AS busy_gpus "
        "FROM reservations r "
        "CROSS JOIN LATERAL drover_busy_at(r.node_id, r.start_time) b "
        "WHERE r.node_id = ANY($1::bigint[]) AND r.job_id <> $2 "
        "AND r.expire_time > to_timestamp($3)";
    static const char drop_reservations[] =
        "SELECT drover_release_reservations($1)";
    static const char update_nodes[] =
        "UPDATE nodes SET free_cpuset = u.c, free_cores = u.nc, "
        "free_mem = u.m, free_gpuset = u.g, free_gpus = u.ng, "
        "free_disk = u.d, modify_index = $1 "
        "FROM unnest($2::bigint[], $3::text[], $4::int[], $5::bigint[], "
        "$6::text[], $7::int[], $8::bigint[]) AS u(id, c, nc, m, g, ng, d) "
        "WHERE nodes.id = u.id "
        "RETURNING nodes.id, nodes.capacity_index";
    static const char insert_allocs[] =
        "INSERT INTO allocations (job_id, node_id, eval_id, chunk_index, "
        "group_index, instance, ncpus, mem, ngpus, gpus, disk, cpuset, "
        "previous_alloc, reschedule_count, desired_status, client_status, "
        "create_time, modify_index, alloc_modify_index, array_index, excl) "
        "SELECT $1, n, $2, ci, gi, inst, p, m, ng, g, d, c, "
        "nullif(prev, 0), rc, 'run', 'pending', to_timestamp($3), $4, $4, "
        "nullif(ai, -1), $18::boolean "
        "FROM unnest($5::bigint[], $6::int[], $7::int[], $8::int[], "
        "$9::int[], $10::bigint[], $11::int[], $12::text[], $13::bigint[], "
        "$14::text[], $15::bigint[], $16::int[], $17::int[]) "
        "AS u(n, ci, gi, inst, p, m, ng, g, d, c, prev, rc, ai)";
    static const char stop_allocs[] =
        "UPDATE allocations SET desired_status = 'stop', "
        "desired_description = u.why, modify_index = $1, "
        "alloc_modify_index = $1 "
        "FROM unnest($2::bigint[], $3::text[]) AS u(id, why) "
        "WHERE allocations.id = u.id AND desired_status = 'run'";
    static const char start_job[] =
        "UPDATE jobs SET state = 'running', exec_host = $2, "
        "start_time = to_timestamp($3), run_count = run_count + 1, "
        "comment = $4, exit_status = NULL, modify_index = $5 "
        "WHERE id = $1 AND state = 'queued'";
    static const char finish_eval[] =
        "UPDATE evaluations SET status = 'complete', status_description = $3, "
        "lease_owner = NULL, lease_deadline = NULL, modify_index = $4 "
        "WHERE id = $1 AND lease_owner = $2";
    static const char notify[] =
        "SELECT pg_notify('allocs', $1), pg_notify('jobs', $2)";
    /* place=excl: the nodes it landed on are its alone until its
     * allocations there end (sql/0010-chunks.sql clears it). */
    static const char hold_excl[] =
        "UPDATE nodes SET excl_job = $2 WHERE id = ANY($1::bigint[])";
    struct commit_tx *c = arg;
    const struct plan *plan = c->plan;
    const struct sched_job *job = plan->job;
    struct commit_result *r = c->r;
    int nids = 0, *accepted = NULL, rc = -1, starting;
    int64_t *ids = NULL, index = 0;
    struct locked *lk = NULL;
    char **cpusets = dv_xcalloc((size_t)plan->nplacements + 1, sizeof(char *));
    char **gpusets = dv_xcalloc((size_t)plan->nplacements + 1, sizeof(char *));
    struct dv_buf a1, a2, a3, a4, a5, a6, a7, a8;
    struct dv_buf b_ids, b_why, comment, exec_host, nodes_csv;
    struct dv_buf *bufs[] = {&a1,    &a2,    &a3,      &a4,
                             &a5,    &a6,    &a7,      &a8,
                             &b_ids, &b_why, &comment, &exec_host,
                             &nodes_csv};
    char b1[24], b2[24], b3[32], b4[24];
    PGresult *res = NULL, *live = NULL;
    struct array_check ac;

    memset(&ac, 0, sizeof(ac));
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) {
        dv_buf_init(bufs[i]);
    }
    result_reset(r);
    accepted = dv_xcalloc((size_t)plan->nplacements + 1, sizeof(int));
    r->outcome = COMMIT_DONE;
    {
        const char *p[] = {dv_db_i64(b1, job->id)};
        res = dv_db_exec(db, own_reservations, 1, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    r->released = PQntuples(res) > 0;
    ids = locked_ids(plan, res, &nids);
    PQclear(res);
    res = NULL;
    lk = dv_xcalloc((size_t)nids + 1, sizeof(*lk));

    int_array(&a1, ids, nids);
    {
        const char *p[] = {dv_buf_str(&a1)};
        res = dv_db_exec(db, lock_nodes, 1, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    for (int i = 0; i < PQntuples(res) && i < nids; i++) {
        lk[i].id = dv_db_get_i64(res, i, "id", 0);
        lk[i].ready = dv_db_get_bool(res, i, "ready", 0);
        lk[i].cores = bitmap_parse(dv_db_get(res, i, "free_cpuset"));
        lk[i].mem = dv_db_get_i64(res, i, "free_mem", 0);
        lk[i].gpus = bitmap_parse(dv_db_get(res, i, "free_gpuset"));
        lk[i].disk = dv_db_get_i64(res, i, "free_disk", 0);
        lk[i].modify_index = dv_db_get_i64(res, i, "modify_index", 0);
        lk[i].capacity_index = dv_db_get_i64(res, i, "capacity_index", 0);
        lk[i].excl_job = dv_db_get_i64(res, i, "excl_job", 0);
        lk[i].db_excl = lk[i].excl_job;
        lk[i].empty = dv_db_get_bool(res, i, "empty", 0);
        lk[i].total.cores = (int)dv_db_get_i64(res, i, "total_cores", 0);
        lk[i].total.mem = dv_db_get_i64(res, i, "total_mem", 0);
        lk[i].total.gpus = (int)dv_db_get_i64(res, i, "total_gpus", 0);
        lk[i].initial.cores = hwloc_bitmap_weight(lk[i].cores);
        lk[i].initial.mem = lk[i].mem;
        lk[i].initial.gpus = hwloc_bitmap_weight(lk[i].gpus);
    }
    PQclear(res);
    {
        const char *p[] = {dv_db_i64(b1, job->id), job->alter_time};
        res = dv_db_exec(db, lock_job, 2, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    if (PQntuples(res) == 0 ||
        !job_wants_placing(job, dv_db_get(res, 0, "state")) ||
        dv_db_get_bool(res, 0, "altered", 0)) {
        int altered =
            PQntuples(res) > 0 && dv_db_get_bool(res, 0, "altered", 0);

        PQclear(res);
        res = NULL;
        r->outcome = altered ? COMMIT_ALTERED : COMMIT_JOB_GONE;
        if (c->finish && db_finish_eval(db, c->owner, c->eval_id, "complete",
                                        altered ? "job altered since planned"
                                                : "job no longer needs placing",
                                        err) < 0) {
            goto out;
        }
        rc = 0;
        goto out;
    }
    starting = strcmp(dv_db_get(res, 0, "state"), "queued") == 0;
    PQclear(res);
    res = NULL;
    {
        const char *p[] = {dv_db_i64(b1, c->eval_id), c->owner,
                           dv_db_double(b3, dv_now() + c->lease)};
        int64_t n = dv_db_exec_cmd(db, renew, 3, p, err);
        if (n < 0) {
            goto out;
        }
        if (n == 0) {
            r->outcome = COMMIT_LEASE_LOST;
            rc = 0;
            goto out;
        }
    }
    if (job->array != NULL && array_check_load(db, plan, &ac, err) < 0) {
        goto out;
    }
    if (job->array != NULL && ac.max_run >= 0 && plan->nplacements > 0) {
        const char *p[] = {dv_db_i64(b1, job->id), dv_db_i64(b2, c->eval_id),
                           c->owner, dv_db_i64(b4, plan->nplacements)};
        res = dv_db_exec(db, array_room, 4, p, err);
        if (res == NULL) {
            goto out;
        }
        if (queue_wait(res, r)) {
            rc = 0;
            goto out;
        }
        ac.queue_room = (int)dv_db_get_i64(res, 0, "room", 0);
        PQclear(res);
        res = NULL;
    }
    if (starting && plan->nplacements > 0 && job->array == NULL) {
        const char *p[] = {dv_db_i64(b1, job->id), dv_db_i64(b2, c->eval_id),
                           c->owner};
        res = dv_db_exec(db, admit, 3, p, err);
        if (res == NULL) {
            goto out;
        }
        if (queue_wait(res, r)) {
            rc = 0;
            goto out;
        }
        PQclear(res);
        res = NULL;
    }
    if (!job->pbs) {
        const char *p[] = {dv_db_i64(b1, job->id)};
        live = dv_db_exec(db, live_slots, 1, p, err);
        if (live == NULL) {
            goto out;
        }
    }
    {
        const char *p[] = {dv_buf_str(&a1), dv_db_i64(b1, job->id),
                           dv_db_double(b3, c->now)};
        res = dv_db_exec(db, reserved, 3, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        struct locked *l =
            find_locked(lk, nids, dv_db_get_i64(res, i, "node_id", 0));
        struct snap_resv *rv;
        if (l == NULL) {
            continue;
        }
        l->resv = dv_xrealloc(l->resv,
                              sizeof(*l->resv) * (size_t)(l->nresv + 1));
        rv = &l->resv[l->nresv++];
        snap_resv_read(res, i, rv);
    }
    PQclear(res);
    res = dv_db_exec(db, next_index, 0, NULL, err);
    if (res == NULL) {
        goto out;
    }
    index = dv_db_get_i64(res, 0, "v", 0);
    PQclear(res);
    res = NULL;

    /* Re-check and grant, placement by placement. */
    for (int i = 0; i < plan->nplacements; i++) {
        const struct placement *pl = &plan->placements[i];
        struct locked *l = find_locked(lk, nids, pl->pn->node->id);
        hwloc_bitmap_t cores = NULL, gpus = NULL;
        int ncores = hwloc_bitmap_weight(pl->cores);
        int ngpus = hwloc_bitmap_weight(pl->gpus);
        const struct sched_group *gr =
            &job->groups[plan->rec->wants[pl->want].group];

        if (slot_taken(live, &plan->rec->wants[pl->want])) {
            goto refuse; /* another lease holder placed it meanwhile */
        }
        if (job->array != NULL &&
            !array_admits(&ac, plan->rec->wants[pl->want].array_index)) {
            goto refuse; /* placed or deleted meanwhile, or at %max */
        }
        /* place=excl, checked under the row lock: no job joins a node
         * held whole by another, and an exclusive job lands only on a node
         * where nothing ran (its own chunks of this plan aside). */
        if (l != NULL && ((l->excl_job != 0 && l->excl_job != job->id) ||
                          (job->exclusive && !l->empty))) {
            goto refuse;
        }
        if (l == NULL || !l->ready || l->mem < pl->mem ||
            (pl->disk > 0 && l->disk < pl->disk) ||
            hwloc_bitmap_weight(l->cores) < ncores ||
            hwloc_bitmap_weight(l->gpus) < ngpus) {
            goto refuse;
        }
        if (l->nresv > 0) {
            /* The job's share of the node: what this commit already
             * granted it there, and this placement. */
            struct bf_amount use = {
                l->initial.cores - hwloc_bitmap_weight(l->cores) + ncores,
                l->initial.mem - l->mem + pl->mem,
                l->initial.gpus - hwloc_bitmap_weight(l->gpus) + ngpus};
            struct sched_rank rank = sched_job_rank(job);
            if (!backfill_allows(l->resv, l->nresv, &l->total, &l->initial,
                                 &use, &rank, c->now,
                                 job->walltime > 0 ? c->now + job->walltime
                                                   : INFINITY)) {
                goto refuse;
            }
        }
        if (hwloc_bitmap_isincluded(pl->cores, l->cores)) {
            cores = hwloc_bitmap_dup(pl->cores);
        } else {
            cores = hwloc_bitmap_alloc();
            if (cores_pick(pl->pn->node, l->cores, ncores, gr->numa, cores) <
                0) {
                hwloc_bitmap_free(cores);
                goto refuse;
            }
        }
        if (hwloc_bitmap_isincluded(pl->gpus, l->gpus)) {
            gpus = hwloc_bitmap_dup(pl->gpus);
        } else {
            gpus = hwloc_bitmap_alloc();
            if (gpus_pick(pl->pn->node, l->gpus, ngpus, cores, gpus) < 0) {
                hwloc_bitmap_free(cores);
                hwloc_bitmap_free(gpus);
                goto refuse;
            }
        }
        hwloc_bitmap_andnot(l->cores, l->cores, cores);
        hwloc_bitmap_andnot(l->gpus, l->gpus, gpus);
        l->mem -= pl->mem;
        l->disk -= pl->disk;
        l->changed = 1;
        if (job->exclusive) {
            l->excl_job = job->id;
        }
        cpusets[i] = bitmap_text(cores);
        gpusets[i] = bitmap_text(gpus);
        hwloc_bitmap_free(cores);
        hwloc_bitmap_free(gpus);
        accepted[i] = 1;
        if (job->array != NULL) {
            array_took(&ac, plan->rec->wants[pl->want].array_index);
        }
        r->placed++;
        continue;
    refuse:
        r->refused_idx = dv_xrealloc(r->refused_idx, sizeof(int) *
                                                         (size_t)(r->refused + 1));
        r->refused_idx[r->refused++] = i;
    }
    if (job->gang && r->refused > 0) {
        /* Whole or nothing: write nothing, hand every placement back. */
        r->placed = 0;
        free(r->refused_idx);
        r->refused_idx = dv_xcalloc((size_t)plan->nplacements + 1, sizeof(int));
        r->refused = plan->nplacements;
        for (int i = 0; i < plan->nplacements; i++) {
            r->refused_idx[i] = i;
        }
        rc = 0;
        goto feedback;
    }

    if (r->placed > 0) {
        /* Node capacity. */
        int first = 1;
        dv_buf_putc(&a2, '{');
        dv_buf_putc(&a3, '{');
        dv_buf_putc(&a4, '{');
        dv_buf_putc(&a5, '{');
        dv_buf_putc(&a6, '{');
        dv_buf_putc(&a7, '{');
        dv_buf_putc(&a8, '{');
        for (int i = 0; i < nids; i++) {
            char *cs, *gs;
            if (!lk[i].changed) {
                continue;
            }
            cs = bitmap_text(lk[i].cores);
            gs = bitmap_text(lk[i].gpus);
            dv_buf_printf(&a2, "%s%lld", first ? "" : ",", (long long)lk[i].id);
            text_elem(&a3, cs, first);
            dv_buf_printf(&a4, "%s%d", first ? "" : ",",
                          hwloc_bitmap_weight(lk[i].cores));
            dv_buf_printf(&a5, "%s%lld", first ? "" : ",", (long long)lk[i].mem);
            text_elem(&a6, gs, first);
            dv_buf_printf(&a7, "%s%d", first ? "" : ",",
                          hwloc_bitmap_weight(lk[i].gpus));
            dv_buf_printf(&a8, "%s%lld", first ? "" : ",",
                          (long long)lk[i].disk);
            first = 0;
            free(cs);
            free(gs);
        }
        dv_buf_putc(&a2, '}');
        dv_buf_putc(&a3, '}');
        dv_buf_putc(&a4, '}');
        dv_buf_putc(&a5, '}');
        dv_buf_putc(&a6, '}');
        dv_buf_putc(&a7, '}');
        dv_buf_putc(&a8, '}');
        {
            const char *p[] = {dv_db_i64(b1, index), dv_buf_str(&a2),
                               dv_buf_str(&a3), dv_buf_str(&a4),
                               dv_buf_str(&a5), dv_buf_str(&a6),
                               dv_buf_str(&a7), dv_buf_str(&a8)};
            res = dv_db_exec(db, update_nodes, 8, p, err);
        }
        if (res == NULL) {
            goto out;
        }
        PQclear(res);
        res = NULL;
        if (job->exclusive) {
            const char *p[] = {dv_buf_str(&a2), dv_db_i64(b1, job->id)};
            if (dv_db_exec_cmd(db, hold_excl, 2, p, err) < 0) {
                goto out;
            }
        }
        /* Allocations: one row per accepted placement, one statement. */
        {
            struct dv_buf c_node, c_ci, c_gi, c_inst, c_p, c_m, c_ng, c_g, c_d,
                c_c, c_prev, c_rc, c_ai;
            struct dv_buf *cs[] = {&c_node, &c_ci, &c_gi, &c_inst, &c_p,
                                   &c_m,    &c_ng, &c_g,  &c_d,    &c_c,
                                   &c_prev, &c_rc, &c_ai};
            int n = 0;
            for (size_t k = 0; k < sizeof(cs) / sizeof(cs[0]); k++) {
                dv_buf_init(cs[k]);
                dv_buf_putc(cs[k], '{');
            }
            for (int i = 0; i < plan->nplacements; i++) {
                const struct placement *pl = &plan->placements[i];
                const struct sched_want *w = &plan->rec->wants[pl->want];
                const char *sep = n > 0 ? "," : "";
                if (!accepted[i]) {
                    continue;
                }
                dv_buf_printf(&c_node, "%s%lld", sep,
                              (long long)pl->pn->node->id);
                dv_buf_printf(&c_ci, "%s%d", sep,
                              w->sub     ? w->chunk
                              : job->pbs ? pl->want
                                         : w->instance);
                dv_buf_printf(&c_ai, "%s%d", sep, w->sub ? w->array_index : -1);
                dv_buf_printf(&c_gi, "%s%d", sep, w->group);
                dv_buf_printf(&c_inst, "%s%d", sep, w->instance);
                dv_buf_printf(&c_p, "%s%d", sep, hwloc_bitmap_weight(pl->cores));
                dv_buf_printf(&c_m, "%s%lld", sep, (long long)pl->mem);
                dv_buf_printf(&c_ng, "%s%d", sep, hwloc_bitmap_weight(pl->gpus));
                text_elem(&c_g, gpusets[i], n == 0);
                dv_buf_printf(&c_d, "%s%lld", sep, (long long)pl->disk);
                text_elem(&c_c, cpusets[i], n == 0);
                dv_buf_printf(&c_prev, "%s%lld", sep,
                              (long long)w->previous_alloc);
                dv_buf_printf(&c_rc, "%s%d", sep, w->reschedule_count);
                n++;
            }
            for (size_t k = 0; k < sizeof(cs) / sizeof(cs[0]); k++) {
                dv_buf_putc(cs[k], '}');
            }
            {
                /* clang-format off */
                const char *p[] = {dv_db_i64(b1, job->id),
                                   dv_db_i64(b2, c->eval_id),
                                   dv_db_double(b3, c->now),
                                   dv_db_i64(b4, index),
                                   dv_buf_str(&c_node),
                                   dv_buf_str(&c_ci),
                                   dv_buf_str(&c_gi),
                                   dv_buf_str(&c_inst),
                                   dv_buf_str(&c_p),
                                   dv_buf_str(&c_m),
                                   dv_buf_str(&c_ng),
                                   dv_buf_str(&c_g),
                                   dv_buf_str(&c_d),
                                   dv_buf_str(&c_c),
                                   dv_buf_str(&c_prev),
                                   dv_buf_str(&c_rc),
                                   dv_buf_str(&c_ai),
                                   job->exclusive ? "true" : "false"};
                /* clang-format on */
                int64_t got = dv_db_exec_cmd(db, insert_allocs, 18, p, err);
                for (size_t k = 0; k < sizeof(cs) / sizeof(cs[0]); k++) {
                    dv_buf_cleanup(cs[k]);
                }
                if (got < 0) {
                    goto out;
                }
            }
        }
    }
    /* Stops (count reduced, node no longer eligible). */
    if (plan->rec != NULL && plan->rec->nstops > 0) {
        dv_buf_putc(&b_ids, '{');
        dv_buf_putc(&b_why, '{');
        for (int i = 0; i < plan->rec->nstops; i++) {
            dv_buf_printf(&b_ids, "%s%lld", i > 0 ? "," : "",
                          (long long)plan->rec->stops[i].alloc_id);
            text_elem(&b_why, plan->rec->stops[i].why, i == 0);
        }
        dv_buf_putc(&b_ids, '}');
        dv_buf_putc(&b_why, '}');
        {
            const char *p[] = {dv_db_i64(b1, index), dv_buf_str(&b_ids),
                               dv_buf_str(&b_why)};
            int64_t n = dv_db_exec_cmd(db, stop_allocs, 3, p, err);
            if (n < 0) {
                goto out;
            }
            r->stopped = (int)n;
        }
    }
    if (r->placed > 0) {
        /* Placed: whatever was held for the job is no longer needed. */
        const char *pd[] = {dv_db_i64(b1, job->id)};
        if (dv_db_exec_cmd(db, drop_reservations, 1, pd, err) < 0) {
            goto out;
        }
        if (job->array != NULL) {
            if (array_commit_write(db, plan, &ac, accepted, cpusets, c->now,
                                   index, err) < 0) {
                goto out;
            }
        } else if (job->pbs) {
            for (int i = 0, k = 0; i < plan->nplacements; i++) {
                const struct placement *pl = &plan->placements[i];
                if (!accepted[i]) {
                    continue;
                }
                int first = 0;
                dv_cpuset_list(cpusets[i], &first, 1);
                dv_buf_printf(&exec_host, "%s%s/%d*%d", k++ > 0 ? "+" : "",
                              pl->pn->node->name, first,
                              hwloc_bitmap_weight(pl->cores));
            }
        }
        if (job->array == NULL) {
            run_comment(plan, c->now, accepted, &comment);
            const char *p[] = {dv_db_i64(b1, job->id),
                               job->pbs ? dv_buf_str(&exec_host) : NULL,
                               dv_db_double(b3, c->now), dv_buf_str(&comment),
                               dv_db_i64(b4, index)};
            if (dv_db_exec_cmd(db, start_job, 5, p, err) < 0) {
                goto out;
            }
        }
    }
    if (c->finish && r->refused == 0) {
        const char *p[] = {dv_db_i64(b1, c->eval_id), c->owner, "placed",
                           dv_db_i64(b4, index)};
        if (dv_db_exec_cmd(db, finish_eval, 4, p, err) < 0) {
            goto out;
        }
    }
    if (r->placed > 0 || r->stopped > 0) {
        for (int i = 0, k = 0; i < nids; i++) {
            dv_buf_printf(&nodes_csv, "%s%lld", k++ > 0 ? "," : "",
                          (long long)lk[i].id);
        }
        const char *p[] = {dv_buf_str(&nodes_csv), dv_db_i64(b1, job->id)};
        if (dv_db_exec_cmd(db, notify, 2, p, err) < 0) {
            goto out;
        }
    }
    rc = 0;
feedback:
    /* What the locked rows hold now, for the snapshot. */
    r->after = dv_xcalloc((size_t)nids + 1, sizeof(*r->after));
    for (int i = 0; i < nids; i++) {
        struct node_after *a = &r->after[r->nafter++];
        a->id = lk[i].id;
        a->free_cpuset = bitmap_text(lk[i].cores);
        a->free_gpuset = bitmap_text(lk[i].gpus);
        a->free_mem = lk[i].mem;
        a->free_disk = lk[i].disk;
        a->modify_index = lk[i].changed ? index : lk[i].modify_index;
        a->capacity_index = lk[i].capacity_index;
        a->excl_job = r->placed > 0 ? lk[i].excl_job : lk[i].db_excl;
    }
out:
    array_check_cleanup(&ac);
    PQclear(res);
    PQclear(live);
    for (int i = 0; lk != NULL && i < nids; i++) {
        hwloc_bitmap_free(lk[i].cores);
        hwloc_bitmap_free(lk[i].gpus);
        free(lk[i].resv);
    }
    for (int i = 0; i < plan->nplacements; i++) {
        free(cpusets[i]);
        free(gpusets[i]);
    }
    free(cpusets);
    free(gpusets);
    free(lk);
    free(ids);
    free(accepted);
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) {
        dv_buf_cleanup(bufs[i]);
    }
    return rc;
}

/* Did a commit whose answer was lost write this plan's allocations? They
 * carry the plan's own timestamp. */
static int
commit_in_doubt(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char sql[] =
        "SELECT count(*) AS n FROM allocations WHERE job_id = $1 AND "
        "eval_id = $2 AND create_time = to_timestamp($3)";
    struct commit_tx *c = arg;
    char b1[24], b2[24], b3[32];
    const char *p[] = {dv_db_i64(b1, c->plan->job->id),
                       dv_db_i64(b2, c->eval_id), dv_db_double(b3, c->now)};
    PGresult *res;
    int found;

    if (c->r->placed == 0) {
        return 0; /* nothing inserted: rerunning is harmless */
    }
    res = dv_db_exec(db, sql, 3, p, err);
    if (res == NULL) {
        return -1;
    }
    found = dv_db_get_i64(res, 0, "n", 0) > 0;
    PQclear(res);
    return found;
}

int
commit_plan(struct dv_db *db, const char *owner, int64_t eval_id,
            const struct plan *plan, int finish, double lease,
            struct commit_result *r, struct dv_err *err)
{
    struct commit_tx c = {
        .owner = owner,
        .eval_id = eval_id,
        .plan = plan,
        .finish = finish,
        .now = dv_now(),
        .lease = lease,
        .r = r,
    };
    double start = dv_now();
    int rc;

    memset(r, 0, sizeof(*r));
    rc = dv_db_tx(db, DV_DB_READ_COMMITTED, commit_tx_fn, commit_in_doubt, &c,
                  0, err);
    r->seconds = (dv_now() - start) / dv_clock_scale();
    return rc;
}
