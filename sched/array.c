/*
 * Array jobs (qsub -J X-Y[:Z][%max]) in the scheduler. An array is one job
 * whose subjobs are placed as independent units, in index order: each
 * subjob is a gang of the job's chunks (like one run of a PBS job), and
 * subjobs do not wait for each other. Nothing exists per subjob until it
 * is placed: the unplaced indexes are those of the range without a
 * subjobs row (sql/0004-arrays.sql), found from the array's cursor.
 *
 * What this file reads is a hint. The commit (commit.c) re-checks under
 * the job's row lock, which every commit for the array takes: that a
 * subjob is still unplaced and that %max is not exceeded, so two workers
 * can never run more than %max subjobs at once.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/cpuset.h"
#include "lib/mem.h"
#include "sched/sched.h"

void
sched_array_free(struct sched_array *a)
{
    if (a == NULL) {
        return;
    }
    free(a->cand);
    free(a);
}

static int
cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;

    return x < y ? -1 : x > y;
}

int
db_load_array(struct dv_db *db, struct sched_job *job, struct dv_err *err)
{
    static const char head[] =
        "SELECT a.max_run, (SELECT count(*) FROM subjobs s "
        "WHERE s.job_id = a.job_id AND s.state IN ('running', 'exiting')) "
        "AS running, (SELECT hold_types <> '' FROM jobs j "
        "WHERE j.id = a.job_id) AS held FROM job_arrays a WHERE a.job_id = $1";
    /* Requeued subjobs first, then unplaced indexes from the cursor. */
    static const char cands[] =
        "(SELECT array_index AS i FROM subjobs WHERE job_id = $1 "
        "AND state = 'queued' ORDER BY array_index LIMIT $2) "
        "UNION ALL (SELECT g.i FROM job_arrays a, "
        "generate_series(a.next_index, a.last_index, a.step) AS g(i) "
        "WHERE a.job_id = $1 AND NOT EXISTS (SELECT 1 FROM subjobs s "
        "WHERE s.job_id = $1 AND s.array_index = g.i) ORDER BY g.i LIMIT $2)";
    char b1[24], b2[24];
    const char *p[] = {dv_db_i64(b1, job->id), NULL};
    PGresult *res;
    struct sched_array *a;
    int limit, chunks = 0, held;

    res = dv_db_exec(db, head, 1, p, err);
    if (res == NULL) {
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        sched_array_free(job->array);
        job->array = NULL;
        return 0; /* not an array job (any more) */
    }
    sched_array_free(job->array);
    a = dv_xcalloc(1, sizeof(*a));
    a->max_run = (int)dv_db_get_i64(res, 0, "max_run", 0);
    a->running = (int)dv_db_get_i64(res, 0, "running", 0);
    held = dv_db_get_bool(res, 0, "held", 0);
    PQclear(res);
    for (int g = 0; g < job->ngroups; g++) {
        chunks += job->groups[g].count;
    }
    a->chunks = chunks;
    job->array = a;
    /* One subjob of several chunks is a gang; single-chunk subjobs are
     * placed many to a plan, each on its own. */
    job->gang = chunks > 1;
    limit = chunks > 1 ? 1 : ARRAY_PLAN_MAX;
    if (a->max_run > 0 && a->max_run - a->running < limit) {
        limit = a->max_run - a->running;
    }
    if (held) {
        limit = 0; /* qhold of a begun array: its queued remainder waits */
    }
    if (limit <= 0 || (strcmp(job->state, "queued") != 0 &&
                       strcmp(job->state, "running") != 0)) {
        return 0;
    }
    p[1] = dv_db_i64(b2, limit);
    res = dv_db_exec(db, cands, 2, p, err);
    if (res == NULL) {
        return -1;
    }
    a->cand = dv_xcalloc((size_t)PQntuples(res) + 1, sizeof(int));
    for (int i = 0; i < PQntuples(res); i++) {
        a->cand[a->ncand++] = (int)dv_db_get_i64(res, i, "i", 0);
    }
    PQclear(res);
    qsort(a->cand, (size_t)a->ncand, sizeof(int), cmp_int);
    if (a->ncand > limit) {
        a->ncand = limit;
    }
    return 0;
}

void
reconcile_array(const struct sched_job *job, struct reconcile_result *out)
{
    const struct sched_array *a = job->array;
    int n = 0;

    memset(out, 0, sizeof(*out));
    if (a->ncand == 0 || a->chunks == 0) {
        return;
    }
    out->wants = dv_xcalloc((size_t)a->ncand * (size_t)a->chunks + 1,
                            sizeof(*out->wants));
    for (int c = 0; c < a->ncand; c++) {
        int chunk = 0;
        for (int g = 0; g < job->ngroups; g++) {
            for (int i = 0; i < job->groups[g].count; i++) {
                out->wants[n++] = (struct sched_want){
                    .group = g,
                    .instance = i,
                    .sub = 1,
                    .array_index = a->cand[c],
                    .chunk = chunk++,
                };
            }
        }
    }
    out->nwants = n;
}

/* --- the commit's check and writes, under the job's row lock --- */

static int
int_in(const int *v, int n, int x)
{
    for (int i = 0; i < n; i++) {
        if (v[i] == x) {
            return 1;
        }
    }
    return 0;
}

int
array_check_load(struct dv_db *db, const struct plan *plan,
                 struct array_check *ac, struct dv_err *err)
{
    static const char sql[] =
        "SELECT a.max_run, (SELECT count(*) FROM subjobs s "
        "WHERE s.job_id = a.job_id AND s.state IN ('running', 'exiting')) "
        "AS running, (SELECT coalesce(array_agg(s.array_index), '{}') "
        "FROM subjobs s WHERE s.job_id = a.job_id "
        "AND s.array_index = ANY($2::int[]) AND s.state <> 'queued') "
        "AS taken, (SELECT hold_types <> '' FROM jobs j "
        "WHERE j.id = a.job_id) AS held FROM job_arrays a "
        "WHERE a.job_id = $1";
    struct dv_buf idx;
    char b1[24];
    PGresult *res;
    const char *t;

    dv_buf_init(&idx);
    dv_buf_putc(&idx, '{');
    for (int i = 0; i < plan->nplacements; i++) {
        dv_buf_printf(&idx, "%s%d", i > 0 ? "," : "",
                      plan->rec->wants[plan->placements[i].want].array_index);
    }
    dv_buf_putc(&idx, '}');
    {
        const char *p[] = {dv_db_i64(b1, plan->job->id), dv_buf_str(&idx)};
        res = dv_db_exec(db, sql, 2, p, err);
    }
    dv_buf_cleanup(&idx);
    if (res == NULL) {
        return -1;
    }
    ac->queue_room = -1;
    ac->taken = dv_xcalloc((size_t)plan->nplacements + 1, sizeof(int));
    ac->accepted = dv_xcalloc((size_t)plan->nplacements + 1, sizeof(int));
    if (PQntuples(res) == 0) {
        /* no array row: nothing may be placed */
        ac->max_run = -1;
        PQclear(res);
        return 0;
    }
    /* held (qhold of a begun array): nothing may be placed */
    ac->max_run = dv_db_get_bool(res, 0, "held", 0)
                      ? -1
                      : (int)dv_db_get_i64(res, 0, "max_run", 0);
    ac->running = (int)dv_db_get_i64(res, 0, "running", 0);
    t = dv_db_get(res, 0, "taken");
    for (const char *q = t != NULL ? t : ""; *q != '\0'; q++) {
        if (*q >= '0' && *q <= '9') {
            int v = 0;
            while (*q >= '0' && *q <= '9') {
                v = v * 10 + (*q - '0');
                q++;
            }
            if (ac->ntaken < plan->nplacements) {
                ac->taken[ac->ntaken++] = v;
            }
            q--;
        }
    }
    PQclear(res);
    return 0;
}

/* May a chunk of subjob idx be placed? */
int
array_admits(const struct array_check *ac, int idx)
{
    if (ac->max_run < 0 || int_in(ac->taken, ac->ntaken, idx)) {
        return 0;
    }
    if (int_in(ac->accepted, ac->naccepted, idx)) {
        return 1; /* another chunk of a subjob already placed */
    }
    if (ac->queue_room >= 0 && ac->naccepted >= ac->queue_room) {
        return 0; /* the queue's max_run / max_user_run */
    }
    return ac->max_run == 0 || ac->running + ac->naccepted < ac->max_run;
}

/* A chunk of subjob idx was granted. */
void
array_took(struct array_check *ac, int idx)
{
    if (!int_in(ac->accepted, ac->naccepted, idx)) {
        ac->accepted[ac->naccepted++] = idx;
    }
}

/* Writes the placed subjobs: their rows (running, exec_host, comment),
 * the array begun, the cursor past what is placed. */
int
array_commit_write(struct dv_db *db, const struct plan *plan,
                   const struct array_check *ac, const int *accepted,
                   char **cpusets, double now, int64_t index,
                   struct dv_err *err)
{
    static const char upsert[] =
        "INSERT INTO subjobs (job_id, array_index, state, exec_host, "
        "comment, start_time, run_count, modify_index) "
        "SELECT $1, u.i, 'running', u.h, u.c, to_timestamp($2), 1, $3 "
        "FROM unnest($4::int[], $5::text[], $6::text[]) AS u(i, h, c) "
        "ON CONFLICT (job_id, array_index) DO UPDATE SET state = 'running', "
        "exec_host = EXCLUDED.exec_host, comment = EXCLUDED.comment, "
        "start_time = EXCLUDED.start_time, exit_status = NULL, "
        "end_time = NULL, run_count = subjobs.run_count + 1, "
        "modify_index = EXCLUDED.modify_index "
        "WHERE subjobs.state = 'queued'";
    static const char begin[] =
        "UPDATE jobs SET state = 'running', "
        "start_time = coalesce(start_time, to_timestamp($2)), "
        "comment = CASE WHEN state = 'queued' THEN $3 ELSE comment END, "
        "modify_index = $4 WHERE id = $1 AND state IN ('queued', 'running')";
    static const char cursor[] =
        "UPDATE job_arrays a SET next_index = coalesce((SELECT g.i FROM "
        "generate_series(a.next_index, a.last_index, a.step) AS g(i) "
        "WHERE NOT EXISTS (SELECT 1 FROM subjobs s WHERE s.job_id = a.job_id "
        "AND s.array_index = g.i) ORDER BY g.i LIMIT 1), a.last_index + 1), "
        "modify_index = $2 WHERE a.job_id = $1";
    struct dv_buf bi, bh, bc, one, began;
    int *mask = dv_xcalloc((size_t)plan->nplacements + 1, sizeof(int));
    char b1[24], b2[32], b3[24], when[64];
    time_t t = (time_t)now;
    struct tm tm;
    int rc = -1;

    dv_buf_init(&bi);
    dv_buf_init(&bh);
    dv_buf_init(&bc);
    dv_buf_init(&one);
    dv_buf_init(&began);
    dv_buf_putc(&bi, '{');
    dv_buf_putc(&bh, '{');
    dv_buf_putc(&bc, '{');
    for (int k = 0; k < ac->naccepted; k++) {
        int idx = ac->accepted[k], n = 0;
        dv_buf_reset(&one);
        for (int i = 0; i < plan->nplacements; i++) {
            const struct placement *pl = &plan->placements[i];
            int first = 0;
            mask[i] =
                accepted[i] && plan->rec->wants[pl->want].array_index == idx;
            if (!mask[i]) {
                continue;
            }
            dv_cpuset_list(cpusets[i], &first, 1);
            dv_buf_printf(&one, "%s%s/%d*%d", n++ > 0 ? "+" : "",
                          pl->pn->node->name, first,
                          hwloc_bitmap_weight(pl->cores));
        }
        dv_buf_printf(&bi, "%s%d", k > 0 ? "," : "", idx);
        commit_text_elem(&bh, dv_buf_str(&one), k == 0);
        dv_buf_reset(&one);
        commit_run_comment(plan, now, mask, &one);
        commit_text_elem(&bc, dv_buf_str(&one), k == 0);
    }
    dv_buf_putc(&bi, '}');
    dv_buf_putc(&bh, '}');
    dv_buf_putc(&bc, '}');
    {
        const char *p[] = {dv_db_i64(b1, plan->job->id),
                           dv_db_double(b2, now),
                           dv_db_i64(b3, index),
                           dv_buf_str(&bi),
                           dv_buf_str(&bh),
                           dv_buf_str(&bc)};
        if (dv_db_exec_cmd(db, upsert, 6, p, err) < 0) {
            goto out;
        }
    }
    localtime_r(&t, &tm);
    strftime(when, sizeof(when), "%a %b %d %H:%M:%S %Y", &tm);
    dv_buf_printf(&began, "Job Array Began at %s", when);
    {
        const char *p[] = {dv_db_i64(b1, plan->job->id), dv_db_double(b2, now),
                           dv_buf_str(&began), dv_db_i64(b3, index)};
        if (dv_db_exec_cmd(db, begin, 4, p, err) < 0) {
            goto out;
        }
    }
    {
        const char *p[] = {dv_db_i64(b1, plan->job->id), dv_db_i64(b3, index)};
        if (dv_db_exec_cmd(db, cursor, 2, p, err) < 0) {
            goto out;
        }
    }
    rc = 0;
out:
    free(mask);
    dv_buf_cleanup(&bi);
    dv_buf_cleanup(&bh);
    dv_buf_cleanup(&bc);
    dv_buf_cleanup(&one);
    dv_buf_cleanup(&began);
    return rc;
}

void
array_check_cleanup(struct array_check *ac)
{
    free(ac->taken);
    free(ac->accepted);
    memset(ac, 0, sizeof(*ac));
}
