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
