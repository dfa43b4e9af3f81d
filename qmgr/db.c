/*
 * The shared part of qmgr's SQL (db-jobs.c and db-nodes.c hold the rest):
 * NOTIFY collection, reading jobs for answers, evaluations, stopping a job's
 * allocations, ending a job whose allocation ended, the long-poll fallback
 * read and the cluster row. Statements are fixed text with $n parameters;
 * times come from Drover's clock as parameters (to_timestamp($n)); every
 * row change stamps modify_index from modify_index_seq; a transaction
 * NOTIFYs once per channel at its end (db_notify_send). Transaction
 * functions may run several times (dv_db_tx retries), so each resets its
 * outputs first.
 *
 * Lock order, shared with the scheduler (docs/internals/qmgr.md): node rows
 * first, in id order, then job rows, in id order, then allocation rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cpuset.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

/* --- small helpers --- */

static void
add_id(int64_t **v, int *n, int *cap, int64_t id)
{
    for (int i = 0; i < *n; i++) {
        if ((*v)[i] == id) {
            return;
        }
    }
    if (*n == *cap) {
        *cap = *cap == 0 ? 8 : *cap * 2;
        *v = dv_xrealloc(*v, sizeof(**v) * (size_t)*cap);
    }
    (*v)[(*n)++] = id;
}

void
notify_add_node(struct notify_set *n, int64_t id)
{
    add_id(&n->nodes, &n->nnodes, &n->capnodes, id);
}

void
notify_add_job(struct notify_set *n, int64_t id)
{
    add_id(&n->jobs, &n->njobs, &n->capjobs, id);
}

void
notify_reset(struct notify_set *n)
{
    n->nnodes = 0;
    n->njobs = 0;
    n->evals = 0;
    n->capacity = 0;
}

void
notify_cleanup(struct notify_set *n)
{
    free(n->nodes);
    free(n->jobs);
    memset(n, 0, sizeof(*n));
}

/* The id list of a payload; empty when too long (receivers then re-check
 * everything). */
static void
payload(const int64_t *ids, int n, struct dv_buf *out)
{
    fmt_id_list(ids, n, out);
    if (out->len > QMGR_NOTIFY_MAX) {
        dv_buf_reset(out);
        dv_buf_puts(out, "");
    }
}

/* Sends what n collected: one NOTIFY per channel, in one statement. */
int
db_notify_send(struct dv_db *db, const struct notify_set *n, struct dv_err *err)
{
    static const char sql[] =
        "SELECT CASE WHEN $1::boolean THEN pg_notify('evals', '') END, "
        "CASE WHEN $2::boolean THEN pg_notify('capacity', '') END, "
        "CASE WHEN $3::text IS NOT NULL THEN pg_notify('allocs', $3) END, "
        "CASE WHEN $4::text IS NOT NULL THEN pg_notify('jobs', $4) END";
    struct dv_buf nodes, jobs;
    int64_t rc;

    if (!n->evals && !n->capacity && n->nnodes == 0 && n->njobs == 0) {
        return 0;
    }
    dv_buf_init(&nodes);
    dv_buf_init(&jobs);
    payload(n->nodes, n->nnodes, &nodes);
    payload(n->jobs, n->njobs, &jobs);
    const char *p[] = {n->evals ? "true" : "false",
                       n->capacity ? "true" : "false",
                       n->nnodes > 0 ? dv_buf_str(&nodes) : NULL,
                       n->njobs > 0 ? dv_buf_str(&jobs) : NULL};
    rc = dv_db_exec_cmd(db, sql, 4, p, err);
    dv_buf_cleanup(&nodes);
    dv_buf_cleanup(&jobs);
    return rc < 0 ? -1 : 0;
}

void
db_job_not_found(const char *server, int64_t id, struct dv_err *err)
{
    char jid[300];

    dv_job_id_format((long long)id, server, jid, sizeof(jid));
    dv_err_set(err, DV_ENOTFOUND, "job_not_found", "Unknown Job Id %s", jid);
}

void
db_node_not_found(int64_t id, struct dv_err *err)
{
    dv_err_set(err, DV_ENOTFOUND, "node_not_found", "Unknown node id %lld",
               (long long)id);
}

int
db_node_identity(int64_t id, const char *name, const char *cn,
                 struct dv_err *err)
{
    if (name == NULL) {
        db_node_not_found(id, err);
        return -1;
    }
    if (cn != NULL && strcmp(name, cn) != 0) {
        dv_err_set(err, DV_EFORBIDDEN, "forbidden",
                   "node %lld is not \"%s\", the name of the client "
                   "certificate",
                   (long long)id, cn);
        return -1;
    }
    return 0;
}

void
db_add_event(struct job_event **ev, int *n, int64_t job_id, const char *state,
             int has_exit, int exit_status)
{
    *ev = dv_xrealloc(*ev, sizeof(**ev) * (size_t)(*n + 1));
    (*ev)[*n].job_id = job_id;
    dv_strlcpy((*ev)[*n].state, state, sizeof((*ev)[*n].state));
    (*ev)[*n].has_exit = has_exit;
    (*ev)[*n].exit_status = exit_status;
    (*n)++;
}

void
db_jobs_clear(struct db_jobs *r)
{
    PQclear(r->jobs);
    PQclear(r->vnodes);
    PQclear(r->arrays);
    PQclear(r->subjobs);
    r->jobs = NULL;
    r->vnodes = NULL;
    r->arrays = NULL;
    r->subjobs = NULL;
    r->next_after = -1;
}

/*
 * Reads the allocations of the current run of every job in r->jobs that
 * has an exec_host (for exec_vnode): the latest placement's (eval_id),
 * lost ones left out.
 */
int
db_load_vnodes(struct dv_db *db, struct db_jobs *r, struct dv_err *err)
{
    static const char sql[] =
        "SELECT a.job_id, n.name AS host, a.ncpus, a.mem, a.ngpus "
        "FROM allocations a JOIN nodes n ON n.id = a.node_id "
        "WHERE a.job_id = ANY($1::bigint[]) AND a.client_status <> 'lost' "
        "AND a.eval_id IS NOT DISTINCT FROM (SELECT max(b.eval_id) "
        "FROM allocations b WHERE b.job_id = a.job_id) "
        "ORDER BY a.job_id, a.chunk_index, a.id";
    struct dv_buf ids;
    int n = 0;

    PQclear(r->vnodes);
    r->vnodes = NULL;
    dv_buf_init(&ids);
    dv_buf_putc(&ids, '{');
    for (int i = 0; i < PQntuples(r->jobs); i++) {
        if (dv_db_is_null(r->jobs, i, "exec_host")) {
            continue;
        }
        dv_buf_printf(&ids, "%s%s", n > 0 ? "," : "",
                      dv_db_get(r->jobs, i, "id"));
        n++;
    }
    dv_buf_putc(&ids, '}');
    if (n > 0) {
        const char *p[] = {dv_buf_str(&ids)};
        r->vnodes = dv_db_exec(db, sql, 1, p, err);
    }
    dv_buf_cleanup(&ids);
    if (n > 0 && r->vnodes == NULL) {
        return -1;
    }
    return array_load(db, r, err);
}

/* Reads one job (with its spec when full) and its vnodes into r. Returns 1,
 * 0 when there is no such job, or -1. */
int
db_load_job(struct dv_db *db, int64_t id, int full, struct db_jobs *r,
            struct dv_err *err)
{
    static const char sql[] = "SELECT " DB_JOB_COLUMNS
                              ", CASE WHEN $2::boolean THEN j.spec END AS spec "
                              "FROM jobs j WHERE j.id = $1";
    char b1[24];
    const char *p[] = {dv_db_i64(b1, id), full ? "true" : "false"};

    db_jobs_clear(r);
    r->jobs = dv_db_exec(db, sql, 2, p, err);
    if (r->jobs == NULL) {
        return -1;
    }
    if (PQntuples(r->jobs) == 0) {
        return 0;
    }
    return db_load_vnodes(db, r, err) < 0 ? -1 : 1;
}

/* --- evaluations and allocations of a job --- */

/* Cancels the evaluations of a job that no longer needs placing. */
int
db_cancel_evals(struct dv_db *db, int64_t id, const char *why,
                struct dv_err *err)
{
    static const char sql[] =
        "UPDATE evaluations SET status = 'cancelled', "
        "status_description = $2, modify_index = nextval('modify_index_seq') "
        "WHERE job_id = $1 AND status IN ('pending', 'blocked')";
    char b1[24];
    const char *p[] = {dv_db_i64(b1, id), why};

    return dv_db_exec_cmd(db, sql, 2, p, err) < 0 ? -1 : 0;
}

int
db_insert_eval(struct dv_db *db, int64_t job_id, const char *why, int priority,
               double now, struct dv_err *err)
{
    static const char sql[] =
        "INSERT INTO evaluations (job_id, triggered_by, status, priority, "
        "create_time, modify_index) VALUES ($1, $2, 'pending', $3, "
        "to_timestamp($4), nextval('modify_index_seq')) "
        "ON CONFLICT (job_id) WHERE status = 'pending' DO NOTHING";
    char b1[24], b3[24], b4[32];
    const char *p[] = {dv_db_i64(b1, job_id), why, dv_db_i64(b3, priority),
                       dv_db_double(b4, now)};

    return dv_db_exec_cmd(db, sql, 4, p, err) < 0 ? -1 : 0;
}

/* System jobs run on every eligible node: a node that joins, comes back or
 * becomes usable again needs an evaluation of each queued or running
 * system job (none when the job already has one pending). Returns how many
 * were made, or -1. */
int
db_system_evals(struct dv_db *db, double now, struct dv_err *err)
{
    static const char sql[] =
        "INSERT INTO evaluations (job_id, triggered_by, status, priority, "
        "create_time, modify_index) "
        "SELECT id, 'node-update', 'pending', priority, to_timestamp($1), "
        "nextval('modify_index_seq') FROM jobs "
        "WHERE type = 'system' AND state IN ('queued', 'running') "
        "ON CONFLICT (job_id) WHERE status = 'pending' DO NOTHING";
    char b1[32];
    const char *p[] = {dv_db_double(b1, now)};
    int64_t n = dv_db_exec_cmd(db, sql, 1, p, err);

    return n < 0 ? -1 : (int)n;
}

/* Asks every active allocation of a job but one (skip, 0 for none) to stop;
 * their nodes go into ns. Returns how many, or -1. */
int
db_stop_allocs(struct dv_db *db, int64_t job_id, int64_t skip, const char *why,
               struct notify_set *ns, struct dv_err *err)
{
    return db_stop_subjob_allocs(db, job_id, -1, skip, why, ns, err);
}

int
db_stop_subjob_allocs(struct dv_db *db, int64_t job_id, int array_index,
                      int64_t skip, const char *why, struct notify_set *ns,
                      struct dv_err *err)
{
    /* alloc_modify_index is drawn under the node rows' locks (in id
     * order), so that a node's long poll never reads an index while a
     * smaller one is still to commit (docs/internals/qmgr.md). */
    static const char lock_nodes[] =
        "SELECT id FROM nodes WHERE id IN (SELECT node_id FROM allocations "
        "WHERE job_id = $1 AND id <> $2 AND desired_status = 'run' "
        "AND client_status IN " DB_ACTIVE " AND end_time IS NULL"
        " AND ($3::int < 0 OR array_index = $3)"
        ") ORDER BY id FOR NO KEY UPDATE";
    static const char sql[] =
        "WITH i AS (SELECT nextval('modify_index_seq') AS v) "
        "UPDATE allocations SET desired_status = 'stop', "
        "desired_description = $3, modify_index = i.v, "
        "alloc_modify_index = i.v FROM i "
        "WHERE job_id = $1 AND id <> $2 AND desired_status = 'run' "
        "AND client_status IN " DB_ACTIVE " AND end_time IS NULL"
        " AND ($4::int < 0 OR array_index = $4) RETURNING node_id";
    char b1[24], b2[24], b4[24];
    const char *p[] = {dv_db_i64(b1, job_id), dv_db_i64(b2, skip), why,
                       dv_db_i64(b4, array_index)};
    const char *pl[] = {p[0], p[1], p[3]};
    PGresult *res = dv_db_exec(db, lock_nodes, 3, pl, err);
    int n;

    if (res == NULL) {
        return -1;
    }
    PQclear(res);
    res = dv_db_exec(db, sql, 4, p, err);
    if (res == NULL) {
        return -1;
    }
    n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        notify_add_node(ns, dv_db_get_i64(res, i, "node_id", 0));
    }
    PQclear(res);
    return n;
}

int
db_count_active(struct dv_db *db, int64_t job_id, struct dv_err *err)
{
    static const char sql[] =
        "SELECT count(*) AS n FROM allocations "
        "WHERE job_id = $1 AND client_status IN " DB_ACTIVE
        " AND end_time IS NULL";
    char b1[24];
    const char *p[] = {dv_db_i64(b1, job_id)};
    PGresult *res = dv_db_exec(db, sql, 1, p, err);
    int n;

    if (res == NULL) {
        return -1;
    }
    n = (int)dv_db_get_i64(res, 0, "n", 0);
    PQclear(res);
    return n;
}

/* --- ending jobs (allocation status, node down) --- */

/*
 * Ends, requeues or leaves alone the job of an allocation that became
 * terminal (its row is locked by the caller). Only an allocation the
 * servers still wanted running ends a running job; any ends an exiting
 * (deleted) one.
 */
int
db_job_end(struct dv_db *db, const struct job_end *e, const char *desired,
           struct notify_set *ns, struct job_event **ev, int *nev,
           struct dv_err *err)
{
    static const char read_job[] =
        "SELECT state, rerunnable, rerun_pending, priority, comment, "
        "extract(epoch FROM start_time)::float8 AS stime, "
        "(SELECT extract(epoch FROM create_time)::float8 FROM allocations "
        "WHERE id = $2) AS atime FROM jobs WHERE id = $1";
    static const char finish[] =
        "UPDATE jobs SET state = 'finished', exit_status = $2, "
        "end_time = to_timestamp($3), used_cput = $4, used_walltime = $5, "
        "used_mem = $6, comment = $7, "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND state IN ('running', 'exiting')";
    static const char requeue[] =
        "UPDATE jobs SET state = 'queued', exec_host = NULL, "
        "rerun_pending = false, queue_time = to_timestamp($2), comment = $3, "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = $1 AND state = 'running'";
    char b1[24], b2[24], b3[32], b4[24], b5[24], b6[24];
    const char *pj[] = {dv_db_i64(b1, e->job_id), dv_db_i64(b2, e->alloc_id)};
    PGresult *job = dv_db_exec(db, read_job, 2, pj, err);
    const char *state;
    double stime;
    int exiting, preempted, rc = -1;
    char *comment = NULL;

    if (job == NULL) {
        return -1;
    }
    if (PQntuples(job) == 0) {
        rc = 0;
        goto out;
    }
    state = dv_db_get(job, 0, "state");
    exiting = strcmp(state, "exiting") == 0;
    /* A running job whose allocation a scheduler asked to stop was
     * preempted (qdel makes the job exiting first). */
    preempted = strcmp(state, "running") == 0 && strcmp(desired, "stop") == 0;
    if (!exiting && !preempted &&
        !(strcmp(state, "running") == 0 && strcmp(desired, "run") == 0)) {
        rc = 0; /* an old run's allocation, or the job already ended */
        goto out;
    }
    stime = dv_db_get_double(job, 0, "stime", 0);
    /* A chunk of an earlier run (the job was requeued and placed again
     * while it was still stopping) says nothing about this run. */
    if (!exiting && !dv_db_is_null(job, 0, "atime") &&
        dv_db_get_double(job, 0, "atime", 0) + 0.0005 < stime) {
        rc = 0;
        goto out;
    }
    if ((e->kind == END_LOST || preempted) && !exiting &&
        dv_db_get_bool(job, 0, "rerunnable", 1)) {
        const char *p[] = {
            b1, dv_db_double(b3, e->now),
            preempted && dv_db_get_bool(job, 0, "rerun_pending", 0)
                ? "Job requeued: rerun" /* qrerun */
            : preempted ? "Job requeued: preempted by higher-priority work"
                        : "Job requeued: its allocation was lost; waiting to "
                          "run again"};
        if (dv_db_exec_cmd(db, requeue, 3, p, err) < 0 ||
            db_insert_eval(
                db, e->job_id, preempted ? "alloc-stopped" : "alloc-lost",
                (int)dv_db_get_i64(job, 0, "priority", 0), e->now, err) < 0) {
            goto out;
        }
        ns->evals = 1;
        db_add_event(ev, nev, e->job_id, "queued", 0, 0);
    } else {
        int exit_status;
        int64_t walltime;
        const char *how;

        db_end_outcome(e, exiting, stime, &exit_status, &walltime, &how);
        comment = fmt_end_comment(dv_db_get(job, 0, "comment"), stime, how);
        const char *p[] = {b1,
                           dv_db_i64(b2, exit_status),
                           dv_db_double(b3, e->when),
                           dv_db_i64(b4, e->has_used ? e->used_cput : 0),
                           dv_db_i64(b5, walltime),
                           dv_db_i64(b6, e->has_used ? e->used_mem : 0),
                           comment};
        if (dv_db_exec_cmd(db, finish, 7, p, err) < 0) {
            goto out;
        }
        db_add_event(ev, nev, e->job_id, "finished", 1, exit_status);
    }
    if (db_stop_allocs(db, e->job_id, e->alloc_id,
                       e->kind == END_LOST ? "job lost an allocation"
                                           : "job ended",
                       ns, err) < 0) {
        goto out;
    }
    notify_add_job(ns, e->job_id);
    rc = 0;
out:
    free(comment);
    PQclear(job);
    return rc;
}

void
db_end_outcome(const struct job_end *e, int exiting, double stime,
               int *exit_status, int64_t *walltime, const char **how)
{
    if (e->kind == END_LOST) {
        *exit_status = -20;
        *how = exiting ? "terminated" : e->lost_how;
    } else {
        *exit_status = e->has_exit ? e->exit_status
                       : strcmp(e->client_status, "complete") == 0 ? 0
                                                                   : -1;
        *how = fmt_end_how(e->client_status, e->message, exiting);
    }
    *walltime = e->has_used                    ? e->used_walltime
                : stime > 0 && e->when > stime ? (int64_t)(e->when - stime)
                                               : 0;
}

/* Core indexes of set that a node of cores cores has (drops the rest). */
char *
db_clip_cpuset(const char *set, int64_t cores, struct dv_err *err)
{
    char *all = dv_cpuset_first_n((int)cores);
    char *outside = dv_cpuset_subtract(set, all, err);
    char *inside = NULL;

    if (outside != NULL) {
        inside = dv_cpuset_subtract(set, outside, err);
    }
    free(all);
    free(outside);
    return inside;
}

/* --- long-poll fallback, cluster --- */

struct indexes_tx {
    const int64_t *node_ids;
    int nn;
    int64_t *node_idx;
    const int64_t *job_ids;
    int nj;
    int64_t *job_idx;
};

/* Stores the idx column of each row of res into out[ord - 1]. */
static void
spread(PGresult *res, int n, int64_t *out)
{
    for (int r = 0; r < PQntuples(res); r++) {
        int64_t ord = dv_db_get_i64(res, r, "ord", 0);

        if (ord >= 1 && ord <= n) {
            out[ord - 1] = dv_db_get_i64(res, r, "idx", 0);
        }
    }
}

static int
indexes_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char nodes[] =
        "SELECT u.o AS ord, coalesce((SELECT max(a.alloc_modify_index) "
        "FROM allocations a WHERE a.node_id = u.n), 0) AS idx "
        "FROM unnest($1::bigint[]) WITH ORDINALITY AS u(n, o)";
    static const char jobs[] =
        "SELECT u.o AS ord, j.modify_index AS idx "
        "FROM unnest($1::bigint[]) WITH ORDINALITY AS u(n, o) "
        "JOIN jobs j ON j.id = u.n";
    struct indexes_tx *t = arg;
    struct dv_buf b;
    PGresult *res;

    for (int i = 0; i < t->nn; i++) {
        t->node_idx[i] = 0;
    }
    for (int i = 0; i < t->nj; i++) {
        t->job_idx[i] = -1;
    }
    dv_buf_init(&b);
    if (t->nn > 0) {
        fmt_id_array(t->node_ids, t->nn, &b);
        const char *p[] = {dv_buf_str(&b)};
        res = dv_db_exec(db, nodes, 1, p, err);
        if (res == NULL) {
            dv_buf_cleanup(&b);
            return -1;
        }
        spread(res, t->nn, t->node_idx);
        PQclear(res);
    }
    if (t->nj > 0) {
        dv_buf_reset(&b);
        fmt_id_array(t->job_ids, t->nj, &b);
        const char *p[] = {dv_buf_str(&b)};
        res = dv_db_exec(db, jobs, 1, p, err);
        if (res == NULL) {
            dv_buf_cleanup(&b);
            return -1;
        }
        spread(res, t->nj, t->job_idx);
        PQclear(res);
    }
    dv_buf_cleanup(&b);
    return 0;
}

int
db_indexes(struct dv_db *db, const int64_t *node_ids, int nn, int64_t *node_idx,
           const int64_t *job_ids, int nj, int64_t *job_idx, struct dv_err *err)
{
    struct indexes_tx t = {node_ids, nn, node_idx, job_ids, nj, job_idx};

    return dv_db_tx(db, DV_DB_REPEATABLE_READ, indexes_tx, NULL, &t,
                    QMGR_TX_ATTEMPTS, err);
}

int
db_cluster_name(struct dv_db *db, char **name, struct dv_err *err)
{
    static const char sql[] = "SELECT name FROM cluster";
    PGresult *res = dv_db_exec(db, sql, 0, NULL, err);

    *name = NULL;
    if (res == NULL) {
        return -1;
    }
    if (PQntuples(res) > 0) {
        *name = dv_xstrdup(dv_db_get(res, 0, "name"));
    }
    PQclear(res);
    return 0;
}

int
db_cluster_init(struct dv_db *db, const char *name, struct dv_err *err)
{
    static const char sql[] =
        "INSERT INTO cluster (name) VALUES ($1) ON CONFLICT DO NOTHING";
    const char *p[] = {name};

    return dv_db_exec_cmd(db, sql, 1, p, err) < 0 ? -1 : 0;
}
