/*
 * The SQL of real sites' job attributes: custom resources (the operator's
 * declarations, and a submission's check against them), the execution
 * times of waiting (W) jobs, and the jobs that mail is about. Rules of
 * db.c apply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

/* --- custom resources --- */

void
db_custom_clear(struct db_custom *c)
{
    for (int i = 0; i < c->n; i++) {
        free(c->canon[i]);
    }
    free(c->canon);
    memset(c, 0, sizeof(*c));
}

int
db_custom_check(struct dv_db *db, const struct dv_job_spec *spec,
                struct db_custom *out, struct dv_err *err)
{
    static const char sql[] = "SELECT type FROM resource_defs WHERE name = $1";

    db_custom_clear(out);
    if (spec->ncustom == 0) {
        return 0;
    }
    out->canon = dv_xcalloc((size_t)spec->ncustom, sizeof(char *));
    out->n = spec->ncustom;
    for (int i = 0; i < spec->ncustom; i++) {
        const struct dv_kv *kv = &spec->resources[spec->custom[i]];
        const char *p[] = {kv->key};
        PGresult *res = dv_db_exec(db, sql, 1, p, err);
        char canon[4200];
        int rc;

        if (res == NULL) {
            return -1;
        }
        if (PQntuples(res) == 0) {
            PQclear(res);
            dv_err_set(err, DV_EINVAL, "unknown_resource",
                       "Unknown resource Resource_List.%s", kv->key);
            return -1;
        }
        rc = dv_resource_value_check(dv_db_get(res, 0, "type"), kv->value,
                                     canon, sizeof(canon));
        PQclear(res);
        if (rc < 0) {
            dv_err_set(err, DV_EINVAL, "bad_resource_value",
                       "Illegal attribute or resource value Resource_List.%s",
                       kv->key);
            return -1;
        }
        out->canon[i] = dv_xstrdup(canon);
    }
    return 0;
}

struct resource_tx {
    struct db_resource_op *op;
};

static int
resource_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char insert[] =
        "INSERT INTO resource_defs (name, type, flags, create_time, "
        "modify_index) VALUES ($1, $2, $3, to_timestamp($4), "
        "nextval('modify_index_seq')) ON CONFLICT (name) DO NOTHING";
    static const char busy[] = "SELECT id FROM jobs WHERE state <> 'finished' "
                               "AND spec->'resources' ? $1 ORDER BY id LIMIT 1";
    static const char del[] = "DELETE FROM resource_defs WHERE name = $1";
    static const char list[] =
        "SELECT name, type, flags, "
        "floor(extract(epoch FROM create_time))::bigint AS create_time "
        "FROM resource_defs ORDER BY name";
    struct db_resource_op *op = arg;
    PGresult *res;
    int64_t n;

    PQclear(op->list);
    op->list = NULL;
    op->busy_job = 0;
    switch (op->kind) {
    case RESOURCE_OP_CREATE: {
        char b4[32];
        const char *p[] = {op->name, op->type, op->flags,
                           dv_db_double(b4, op->now)};
        n = dv_db_exec_cmd(db, insert, 4, p, err);
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            dv_err_set(err, DV_ECONFLICT, "resource_exists",
                       "Duplicate entry in list : resource %s", op->name);
            return -1;
        }
        return 0;
    }
    case RESOURCE_OP_DELETE: {
        const char *p[] = {op->name};
        res = dv_db_exec(db, busy, 1, p, err);
        if (res == NULL) {
            return -1;
        }
        if (PQntuples(res) > 0) {
            op->busy_job = dv_db_get_i64(res, 0, "id", 0);
            PQclear(res);
            dv_err_set(err, DV_ECONFLICT, "resource_busy",
                       "Resource busy on job");
            return -1;
        }
        PQclear(res);
        n = dv_db_exec_cmd(db, del, 1, p, err);
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            dv_err_set(err, DV_ENOTFOUND, "unknown_resource",
                       "Unknown resource %s", op->name);
            return -1;
        }
        return 0;
    }
    case RESOURCE_OP_LIST:
        op->list = dv_db_exec(db, list, 0, NULL, err);
        return op->list == NULL ? -1 : 0;
    }
    return -1;
}

int
db_resource_op(struct dv_db *db, struct db_resource_op *op, struct dv_err *err)
{
    return dv_db_tx(db, DV_DB_READ_COMMITTED, resource_tx, NULL, op,
                    QMGR_TX_ATTEMPTS, err);
}

/* --- execution times (W) --- */

struct waiting_tx {
    double now;
    int released;
    double next;
};

static int
waiting_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    /* The due jobs, earliest first, at most a batch; each gets its
     * evaluation in the same statement. Conditional on state, so that a
     * second qmgr (or a rerun) changes nothing twice. */
    static const char release[] =
        "WITH due AS (UPDATE jobs SET state = 'queued', "
        "queue_time = to_timestamp($1), "
        "modify_index = nextval('modify_index_seq') "
        "WHERE id = ANY(ARRAY(SELECT id FROM jobs WHERE state = 'waiting' "
        "AND execution_time <= to_timestamp($1) ORDER BY execution_time "
        "LIMIT $2 FOR UPDATE SKIP LOCKED)) AND state = 'waiting' "
        "RETURNING id, priority), "
        "ev AS (INSERT INTO evaluations (job_id, triggered_by, status, "
        "priority, create_time, modify_index) "
        "SELECT id, 'job-eligible', 'pending', priority, to_timestamp($1), "
        "nextval('modify_index_seq') FROM due "
        "ON CONFLICT (job_id) WHERE status = 'pending' DO NOTHING) "
        "SELECT id FROM due ORDER BY id";
    static const char next[] =
        "SELECT extract(epoch FROM min(execution_time))::float8 AS next "
        "FROM jobs WHERE state = 'waiting'";
    struct waiting_tx *t = arg;
    struct notify_set ns = {0};
    char b1[32], b2[24];
    const char *p[] = {dv_db_double(b1, t->now),
                       dv_db_i64(b2, QMGR_WAITING_BATCH)};
    PGresult *res;
    int rc = -1;

    t->released = 0;
    t->next = 0;
    res = dv_db_exec(db, release, 2, p, err);
    if (res == NULL) {
        goto out;
    }
    t->released = PQntuples(res);
    for (int i = 0; i < t->released; i++) {
        notify_add_job(&ns, dv_db_get_i64(res, i, "id", 0));
    }
    PQclear(res);
    ns.evals = t->released > 0;
    if (db_notify_send(db, &ns, err) < 0) {
        goto out;
    }
    res = dv_db_exec(db, next, 0, NULL, err);
    if (res == NULL) {
        goto out;
    }
    t->next =
        dv_db_is_null(res, 0, "next") ? 0 : dv_db_get_double(res, 0, "next", 0);
    PQclear(res);
    rc = 0;
out:
    notify_cleanup(&ns);
    return rc;
}

int
db_release_waiting(struct dv_db *db, double now, int *released, double *next,
                   struct dv_err *err)
{
    struct waiting_tx t = {now, 0, 0};

    if (dv_db_tx(db, DV_DB_READ_COMMITTED, waiting_tx, NULL, &t,
                 QMGR_TX_ATTEMPTS, err) < 0) {
        return -1;
    }
    *released = t.released;
    *next = t.next;
    return 0;
}

int
db_notify_waiting(struct dv_db *db, double when, struct dv_err *err)
{
    static const char sql[] = "SELECT pg_notify('waiting', $1)";
    char b1[32];
    const char *p[] = {dv_db_double(b1, when)};
    PGresult *res = dv_db_exec(db, sql, 1, p, err);

    if (res == NULL) {
        return -1;
    }
    PQclear(res);
    return 0;
}

/* --- mail --- */

int
db_mail_jobs(struct dv_db *db, const int64_t *ids, int n, PGresult **out,
             struct dv_err *err)
{
    /* Only the PBS jobs whose Mail_Points may ask for mail (a, the
     * default, included). */
    static const char sql[] =
        "SELECT id, name, owner, state, exit_status, comment, "
        "coalesce(spec->>'mail_points', 'a') AS mail_points, "
        "spec->>'mail_users' AS mail_users, "
        "spec->>'submit_host' AS submit_host, used_cput, used_walltime, "
        "used_mem FROM jobs WHERE id = ANY($1::bigint[]) "
        "AND NOT spec ? 'groups' "
        "AND coalesce(spec->>'mail_points', 'a') <> 'n' ORDER BY id";
    struct dv_buf ids_text;
    const char *p[1];

    *out = NULL;
    dv_buf_init(&ids_text);
    dv_buf_putc(&ids_text, '{');
    for (int i = 0; i < n; i++) {
        dv_buf_printf(&ids_text, "%s%lld", i > 0 ? "," : "", (long long)ids[i]);
    }
    dv_buf_putc(&ids_text, '}');
    p[0] = dv_buf_str(&ids_text);
    *out = dv_db_exec(db, sql, 1, p, err);
    dv_buf_cleanup(&ids_text);
    return *out == NULL ? -1 : 0;
}
