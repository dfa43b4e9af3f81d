/*
 * The SQL of pbsdsh tasks (sql/0010-chunks.sql): creating tasks in a
 * running job's chunks (which wakes those nodes' long polls), reading them
 * for pbsdsh's blocking query, and applying the ends that node daemons
 * report (which wakes pbsdsh).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

void
db_tasks_clear(struct db_tasks *t)
{
    PQclear(t->tasks);
    t->tasks = NULL;
    t->index = 0;
    t->moved = 0;
    t->job_state[0] = '\0';
}

/* Appends "s" to a PostgreSQL array literal being built in b. */
static void
arr_text_elem(struct dv_buf *b, const char *s, int first)
{
    if (!first) {
        dv_buf_putc(b, ',');
    }
    if (s == NULL) {
        dv_buf_puts(b, "NULL");
        return;
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

static int
may_use_job(const char *owner, const char *user, int root)
{
    return root || (user != NULL && owner != NULL && strcmp(owner, user) == 0);
}

/* The job's owner and state (no lock); 0, or -1 with err set (not found,
 * not the owner's). */
static int
job_check(struct dv_db *db, struct db_tasks *t, int64_t *modify_index,
          struct dv_err *err)
{
    static const char sql[] =
        "SELECT owner, state, modify_index FROM jobs WHERE id = $1";
    char b1[24];
    const char *p[] = {dv_db_i64(b1, t->job_id)};
    PGresult *res = dv_db_exec(db, sql, 1, p, err);
    int rc = -1;

    if (res == NULL) {
        return -1;
    }
    if (PQntuples(res) == 0) {
        db_job_not_found(t->server, t->job_id, err);
        goto out;
    }
    if (!may_use_job(dv_db_get(res, 0, "owner"), t->user, t->root)) {
        dv_err_set(err, DV_EFORBIDDEN, "forbidden", "Unauthorized Request ");
        goto out;
    }
    dv_strlcpy(t->job_state, dv_db_get(res, 0, "state"), sizeof(t->job_state));
    *modify_index = dv_db_get_i64(res, 0, "modify_index", 0);
    rc = 0;
out:
    PQclear(res);
    return rc;
}

static int
create_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    /* The job's live chunks, in chunk order. */
    static const char chunks[] =
        "SELECT a.id, a.node_id, a.chunk_index FROM allocations a "
        "WHERE a.job_id = $1 AND a.desired_status = 'run' "
        "AND a.end_time IS NULL ORDER BY a.chunk_index, a.id";
    /* A node's long poll reads alloc_modify_index, which is drawn under
     * the node's row lock by every writer (db-nodes.c). */
    static const char lock_nodes[] =
        "SELECT id FROM nodes WHERE id = ANY($1::bigint[]) ORDER BY id "
        "FOR NO KEY UPDATE";
    static const char next_index[] = "SELECT nextval('modify_index_seq') AS v";
    static const char touch[] =
        "UPDATE allocations SET alloc_modify_index = $2, modify_index = $2 "
        "WHERE id = ANY($1::bigint[]) AND desired_status = 'run' "
        "AND end_time IS NULL RETURNING id";
    static const char insert[] =
        "INSERT INTO tasks (job_id, alloc_id, node_id, node_index, tasknum, "
        "argv, requested_by, create_time, modify_index) "
        "SELECT $1, a.id, a.node_id, a.chunk_index, 1 + coalesce((SELECT "
        "max(x.tasknum) FROM tasks x WHERE x.alloc_id = a.id), 1), "
        "$3::text[], $4, to_timestamp($5), $6 "
        "FROM allocations a WHERE a.id = ANY($2::bigint[]) "
        "ORDER BY a.chunk_index, a.id "
        "RETURNING id";
    static const char read[] =
        "SELECT t.id, t.node_index, n.name AS host, t.tasknum, t.state, "
        "t.exit_status, t.stdout, t.stderr, t.message FROM tasks t "
        "JOIN nodes n ON n.id = t.node_id "
        "WHERE t.job_id = $1 AND t.modify_index = $2 ORDER BY t.id";
    struct db_tasks *t = arg;
    struct notify_set ns = {0};
    struct dv_buf ids, nodes, argv;
    PGresult *res = NULL;
    int64_t *allocs = NULL, *node_ids = NULL, idx = 0, jidx = 0;
    int n = 0, nsel = 0, rc = -1, nlive;
    char b1[24], b2[24], b3[32];

    db_tasks_clear(t);
    dv_buf_init(&ids);
    dv_buf_init(&nodes);
    dv_buf_init(&argv);
    if (job_check(db, t, &jidx, err) < 0) {
        goto out;
    }
    if (strcmp(t->job_state, "running") != 0) {
        char jid[300];

        dv_job_id_format((long long)t->job_id, t->server, jid, sizeof(jid));
        dv_err_set(err, DV_ECONFLICT, "job_not_running",
                   "job %s is not running (state %s)", jid, t->job_state);
        goto out;
    }
    {
        const char *p[] = {dv_db_i64(b1, t->job_id)};
        res = dv_db_exec(db, chunks, 1, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    nlive = PQntuples(res);
    allocs = dv_xcalloc((size_t)nlive + 1, sizeof(*allocs));
    node_ids = dv_xcalloc((size_t)nlive + 1, sizeof(*node_ids));
    for (int i = 0; i < nlive; i++) {
        if (t->node >= 0 && i != t->node) {
            continue;
        }
        allocs[n] = dv_db_get_i64(res, i, "id", 0);
        node_ids[n] = dv_db_get_i64(res, i, "node_id", 0);
        n++;
    }
    PQclear(res);
    res = NULL;
    if (n == 0) {
        if (t->node >= 0) {
            dv_err_set(err, DV_EINVAL, "bad_node_index",
                       "node index %d is out of range: the job has %d "
                       "node%s (0-%d)",
                       t->node, nlive, nlive == 1 ? "" : "s", nlive - 1);
        } else {
            dv_err_set(err, DV_ECONFLICT, "job_not_running",
                       "job %lld has no running chunk", (long long)t->job_id);
        }
        goto out;
    }
    nsel = n;
    fmt_id_array(allocs, n, &ids);
    fmt_id_array(node_ids, n, &nodes);
    {
        const char *p[] = {dv_buf_str(&nodes)};
        res = dv_db_exec(db, lock_nodes, 1, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    PQclear(res);
    res = dv_db_exec(db, next_index, 0, NULL, err);
    if (res == NULL) {
        goto out;
    }
    idx = dv_db_get_i64(res, 0, "v", 0);
    PQclear(res);
    {
        const char *p[] = {dv_buf_str(&ids), dv_db_i64(b1, idx)};
        res = dv_db_exec(db, touch, 2, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    /* Only the chunks still live under the locks get a task. */
    n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        allocs[i] = dv_db_get_i64(res, i, "id", 0);
    }
    PQclear(res);
    res = NULL;
    if (n == 0) {
        dv_err_set(err, DV_ECONFLICT, "job_not_running",
                   "job %lld has no running chunk", (long long)t->job_id);
        goto out;
    }
    dv_buf_reset(&ids);
    fmt_id_array(allocs, n, &ids);
    dv_buf_putc(&argv, '{');
    for (int i = 0; i < t->argc; i++) {
        arr_text_elem(&argv, t->argv[i], i == 0);
    }
    dv_buf_putc(&argv, '}');
    {
        char b4[24];
        const char *p[] = {dv_db_i64(b1, t->job_id), dv_buf_str(&ids),
                           dv_buf_str(&argv),        t->user,
                           dv_db_double(b3, t->now), dv_db_i64(b4, idx)};
        if (dv_db_exec_cmd(db, insert, 6, p, err) < 0) {
            goto out;
        }
    }
    {
        const char *p[] = {dv_db_i64(b1, t->job_id), dv_db_i64(b2, idx)};
        t->tasks = dv_db_exec(db, read, 2, p, err);
    }
    if (t->tasks == NULL) {
        goto out;
    }
    for (int i = 0; i < nsel; i++) {
        notify_add_node(&ns, node_ids[i]);
    }
    if (db_notify_send(db, &ns, err) < 0) {
        goto out;
    }
    t->index = jidx;
    rc = 0;
out:
    if (rc < 0) {
        db_tasks_clear(t);
    }
    PQclear(res);
    notify_cleanup(&ns);
    free(allocs);
    free(node_ids);
    dv_buf_cleanup(&ids);
    dv_buf_cleanup(&nodes);
    dv_buf_cleanup(&argv);
    return rc;
}

int
db_tasks_create(struct dv_db *db, struct db_tasks *t, struct dv_err *err)
{
    return dv_db_tx(db, DV_DB_READ_COMMITTED, create_tx, NULL, t,
                    QMGR_TX_ATTEMPTS, err);
}

static int
get_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char read[] =
        "SELECT t.id, t.node_index, n.name AS host, t.tasknum, t.state, "
        "t.exit_status, t.stdout, t.stderr, t.message FROM tasks t "
        "JOIN nodes n ON n.id = t.node_id "
        "WHERE t.job_id = $1 AND ($2::bigint[] IS NULL OR "
        "t.id = ANY($2::bigint[])) ORDER BY t.id LIMIT 1000";
    struct db_tasks *t = arg;
    struct dv_buf ids;
    char b1[24];
    int64_t jidx = 0;
    int rc = -1;

    db_tasks_clear(t);
    dv_buf_init(&ids);
    if (job_check(db, t, &jidx, err) < 0) {
        goto out;
    }
    t->index = jidx;
    /* A waiter is answered once the job moved past its index (a task
     * ended, or the job changed state). */
    t->moved = t->min_index < 0 || jidx > t->min_index;
    if (!t->moved) {
        rc = 0;
        goto out;
    }
    if (t->nids > 0) {
        fmt_id_array(t->ids, t->nids, &ids);
    }
    {
        const char *p[] = {dv_db_i64(b1, t->job_id),
                           t->nids > 0 ? dv_buf_str(&ids) : NULL};
        t->tasks = dv_db_exec(db, read, 2, p, err);
    }
    if (t->tasks == NULL) {
        goto out;
    }
    rc = 0;
out:
    dv_buf_cleanup(&ids);
    return rc;
}

int
db_tasks_get(struct dv_db *db, struct db_tasks *t, struct dv_err *err)
{
    return dv_db_tx(db, DV_DB_REPEATABLE_READ, get_tx, NULL, t,
                    QMGR_TX_ATTEMPTS, err);
}

static int
ended_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char find_node[] = "SELECT name FROM nodes WHERE id = $1";
    static const char next_index[] = "SELECT nextval('modify_index_seq') AS v";
    /* The job's modify_index moves with its tasks' ends: pbsdsh waits on
     * the job. */
    static const char ended[] =
        "WITH d AS (UPDATE tasks t SET state = 'exited', exit_status = u.ex, "
        "stdout = u.o, stderr = u.e, message = u.m, "
        "end_time = to_timestamp($7), modify_index = $8 "
        "FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], "
        "$5::text[]) AS u(id, ex, o, e, m) "
        "WHERE t.id = u.id AND t.node_id = $6 AND t.state = 'pending' "
        "RETURNING t.job_id) "
        "UPDATE jobs SET modify_index = $8 "
        "WHERE id IN (SELECT job_id FROM d) RETURNING id";
    struct db_task_ended *s = arg;
    struct notify_set ns = {0};
    struct dv_buf a1, a2, a3, a4, a5;
    PGresult *res = NULL;
    char b6[24], b7[32], b8[24];
    int rc = -1;

    dv_buf_init(&a1);
    dv_buf_init(&a2);
    dv_buf_init(&a3);
    dv_buf_init(&a4);
    dv_buf_init(&a5);
    {
        const char *p[] = {dv_db_i64(b6, s->node_id)};
        res = dv_db_exec(db, find_node, 1, p, err);
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
    res = dv_db_exec(db, next_index, 0, NULL, err);
    if (res == NULL) {
        goto out;
    }
    s->index = dv_db_get_i64(res, 0, "v", 0);
    PQclear(res);
    res = NULL;
    dv_buf_putc(&a1, '{');
    dv_buf_putc(&a2, '{');
    dv_buf_putc(&a3, '{');
    dv_buf_putc(&a4, '{');
    dv_buf_putc(&a5, '{');
    for (int i = 0; i < s->n; i++) {
        const struct task_end *e = &s->ends[i];

        dv_buf_printf(&a1, "%s%lld", i > 0 ? "," : "", (long long)e->id);
        dv_buf_printf(&a2, "%s%d", i > 0 ? "," : "", e->exit_status);
        arr_text_elem(&a3, e->out, i == 0);
        arr_text_elem(&a4, e->err, i == 0);
        arr_text_elem(&a5, e->message, i == 0);
    }
    dv_buf_putc(&a1, '}');
    dv_buf_putc(&a2, '}');
    dv_buf_putc(&a3, '}');
    dv_buf_putc(&a4, '}');
    dv_buf_putc(&a5, '}');
    {
        const char *p[] = {dv_buf_str(&a1),          dv_buf_str(&a2),
                           dv_buf_str(&a3),          dv_buf_str(&a4),
                           dv_buf_str(&a5),          dv_db_i64(b6, s->node_id),
                           dv_db_double(b7, s->now), dv_db_i64(b8, s->index)};
        res = dv_db_exec(db, ended, 8, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        notify_add_job(&ns, dv_db_get_i64(res, i, "id", 0));
    }
    if (db_notify_send(db, &ns, err) < 0) {
        goto out;
    }
    rc = 0;
out:
    PQclear(res);
    notify_cleanup(&ns);
    dv_buf_cleanup(&a1);
    dv_buf_cleanup(&a2);
    dv_buf_cleanup(&a3);
    dv_buf_cleanup(&a4);
    dv_buf_cleanup(&a5);
    return rc;
}

int
db_tasks_ended(struct dv_db *db, struct db_task_ended *s, struct dv_err *err)
{
    /* Conditional on state 'pending': a batch sent again changes
     * nothing. */
    return dv_db_tx(db, DV_DB_READ_COMMITTED, ended_tx, NULL, s,
                    QMGR_TX_ATTEMPTS, err);
}
