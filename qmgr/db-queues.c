/*
 * The queues' SQL: reading a queue (also for submissions), listing queues
 * with their job counts, creating, changing and deleting them. A change
 * holds the queue's lock (drover_queue_lock, sql/0006-queues.sql) so that
 * schedulers counting against its limits see all of it or none, and wakes
 * every evaluation waiting for the queue. Rules of db.c apply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

#define QUEUE_COLUMNS                                                          \
    "name, is_default, priority, enabled, started, preemption, "               \
    "max_running, max_user_run, max_run_all, max_run_user, "                   \
    "acl_user_enable, acl_users, acl_group_enable, acl_groups, "               \
    "resources_default::text AS resources_default, "                           \
    "resources_max::text AS resources_max, "                                   \
    "resources_min::text AS resources_min"

static int
opt_int(const PGresult *res, int row, const char *col)
{
    return dv_db_is_null(res, row, col) ? -1
                                        : (int)dv_db_get_i64(res, row, col, -1);
}

void
db_queue_from_row(const PGresult *res, int row, struct dv_queue *q)
{
    dv_queue_cleanup(q);
    dv_strlcpy(q->name, dv_db_get(res, row, "name"), sizeof(q->name));
    q->is_default = dv_db_get_bool(res, row, "is_default", 0);
    q->priority = (int)dv_db_get_i64(res, row, "priority", 0);
    q->enabled = dv_db_get_bool(res, row, "enabled", 0);
    q->started = dv_db_get_bool(res, row, "started", 0);
    q->preemption = dv_db_get_bool(res, row, "preemption", 0);
    q->max_running = opt_int(res, row, "max_running");
    q->max_user_run = opt_int(res, row, "max_user_run");
    q->max_run_all = opt_int(res, row, "max_run_all");
    q->max_run_user = opt_int(res, row, "max_run_user");
    q->acl_user_enable = dv_db_get_bool(res, row, "acl_user_enable", 0);
    q->acl_group_enable = dv_db_get_bool(res, row, "acl_group_enable", 0);
    dv_queue_list_parse(dv_db_get(res, row, "acl_users"), &q->acl_users,
                        &q->nacl_users);
    dv_queue_list_parse(dv_db_get(res, row, "acl_groups"), &q->acl_groups,
                        &q->nacl_groups);
    dv_queue_resources_parse(dv_db_get(res, row, "resources_default"),
                             &q->rdefault, &q->nrdefault);
    dv_queue_resources_parse(dv_db_get(res, row, "resources_max"), &q->rmax,
                             &q->nrmax);
    dv_queue_resources_parse(dv_db_get(res, row, "resources_min"), &q->rmin,
                             &q->nrmin);
}

int
db_queue_for_submit(struct dv_db *db, const char *name, struct dv_queue *q,
                    struct dv_err *err)
{
    /* FOR KEY SHARE: a queue cannot be deleted under a submission (what
     * the foreign key did before 0006), while its attributes may change. */
    static const char named[] =
        "SELECT " QUEUE_COLUMNS " FROM queues WHERE name = $1 FOR KEY SHARE";
    static const char dflt[] =
        "SELECT " QUEUE_COLUMNS " FROM queues WHERE is_default FOR KEY SHARE";
    PGresult *res;
    int found;

    if (name != NULL) {
        const char *p[] = {name};
        res = dv_db_exec(db, named, 1, p, err);
    } else {
        res = dv_db_exec(db, dflt, 0, NULL, err);
    }
    if (res == NULL) {
        return -1;
    }
    found = PQntuples(res) > 0;
    if (found) {
        db_queue_from_row(res, 0, q);
    }
    PQclear(res);
    return found;
}

/* --- reads --- */

void
db_queues_clear(struct db_queues *out)
{
    PQclear(out->queues);
    PQclear(out->counts);
    out->queues = NULL;
    out->counts = NULL;
}

static int
read_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char all[] =
        "SELECT " QUEUE_COLUMNS " FROM queues ORDER BY name";
    static const char one[] =
        "SELECT " QUEUE_COLUMNS " FROM queues WHERE name = $1";
    /* Active jobs by queue and state: the partial index jobs_queue. */
    static const char counts_all[] =
        "SELECT queue, state, count(*) AS n FROM jobs "
        "WHERE state <> 'finished' GROUP BY queue, state";
    static const char counts_one[] =
        "SELECT queue, state, count(*) AS n FROM jobs "
        "WHERE state <> 'finished' AND queue = $1 GROUP BY queue, state";
    struct db_queues *out = arg;
    const char *p[] = {out->name};

    db_queues_clear(out);
    out->queues = out->name != NULL ? dv_db_exec(db, one, 1, p, err)
                                    : dv_db_exec(db, all, 0, NULL, err);
    if (out->queues == NULL) {
        return -1;
    }
    out->counts = out->name != NULL ? dv_db_exec(db, counts_one, 1, p, err)
                                    : dv_db_exec(db, counts_all, 0, NULL, err);
    return out->counts == NULL ? -1 : 0;
}

int
db_queues_read(struct dv_db *db, struct db_queues *out, struct dv_err *err)
{
    if (dv_db_tx(db, DV_DB_REPEATABLE_READ, read_tx, NULL, out,
                 QMGR_TX_ATTEMPTS, err) < 0) {
        return -1;
    }
    if (out->name != NULL && PQntuples(out->queues) == 0) {
        dv_err_set(err, DV_ENOTFOUND, "unknown_queue", "Unknown queue");
        return -1;
    }
    return 0;
}

/* --- changes --- */

static int
apply_ops(struct dv_queue *q, const struct db_queue_change *c,
          struct dv_err *err)
{
    for (int i = 0; i < c->nops; i++) {
        const struct queue_op *o = &c->ops[i];
        int rc = o->unset ? dv_queue_unset(q, o->attr, err)
                          : dv_queue_set(q, o->attr, o->op, o->value, err);
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

static int
write_queue(struct dv_db *db, const struct dv_queue *q, struct dv_err *err)
{
    static const char sql[] =
        "UPDATE queues SET priority = $2, enabled = $3, started = $4, "
        "preemption = $5, max_running = $6, max_user_run = $7, "
        "max_run_all = $8, max_run_user = $9, acl_user_enable = $10, "
        "acl_users = $11::text[], acl_group_enable = $12, "
        "acl_groups = $13::text[], resources_default = $14::jsonb, "
        "resources_max = $15::jsonb, resources_min = $16::jsonb, "
        "modify_index = nextval('modify_index_seq') WHERE name = $1";
    char b2[24], b6[24], b7[24], b8[24], b9[24];
    char *users = dv_queue_list_text(q->acl_users, q->nacl_users);
    char *groups = dv_queue_list_text(q->acl_groups, q->nacl_groups);
    json_t *rd = dv_queue_resources_json(q->rdefault, q->nrdefault);
    json_t *rx = dv_queue_resources_json(q->rmax, q->nrmax);
    json_t *rn = dv_queue_resources_json(q->rmin, q->nrmin);
    char *trd = json_dumps(rd, JSON_COMPACT | JSON_SORT_KEYS);
    char *trx = json_dumps(rx, JSON_COMPACT | JSON_SORT_KEYS);
    char *trn = json_dumps(rn, JSON_COMPACT | JSON_SORT_KEYS);
    const char *p[] = {
        q->name,
        dv_db_i64(b2, q->priority),
        q->enabled ? "true" : "false",
        q->started ? "true" : "false",
        q->preemption ? "true" : "false",
        q->max_running >= 0 ? dv_db_i64(b6, q->max_running) : NULL,
        q->max_user_run >= 0 ? dv_db_i64(b7, q->max_user_run) : NULL,
        q->max_run_all >= 0 ? dv_db_i64(b8, q->max_run_all) : NULL,
        q->max_run_user >= 0 ? dv_db_i64(b9, q->max_run_user) : NULL,
        q->acl_user_enable ? "true" : "false",
        users,
        q->acl_group_enable ? "true" : "false",
        groups,
        trd,
        trx,
        trn,
    };
    int64_t n = dv_db_exec_cmd(db, sql, 16, p, err);

    free(users);
    free(groups);
    free(trd);
    free(trx);
    free(trn);
    json_decref(rd);
    json_decref(rx);
    json_decref(rn);
    return n < 0 ? -1 : 0;
}

static int
change_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char lock[] = "SELECT drover_queue_lock($1, true)";
    static const char create[] =
        "INSERT INTO queues (name, enabled, started) VALUES ($1, false, "
        "false) ON CONFLICT (name) DO NOTHING";
    static const char get[] =
        "SELECT " QUEUE_COLUMNS " FROM queues WHERE name = $1 FOR UPDATE";
    /* Limits or started may have changed: everything waiting for the
     * queue looks again (an operator's action, not a storm). */
    static const char wake[] = "SELECT drover_queue_wake($1, NULL, true)";
    struct db_queue_change *c = arg;
    const char *p[] = {c->name};
    struct dv_queue q;
    PGresult *res;
    int rc = -1;

    dv_queue_init(&q);
    c->woken = 0;
    if (dv_db_exec_cmd(db, lock, 1, p, err) < 0) {
        goto out;
    }
    if (c->create) {
        int64_t n = dv_db_exec_cmd(db, create, 1, p, err);
        if (n < 0) {
            goto out;
        }
        if (n == 0) {
            dv_err_set(err, DV_ECONFLICT, "queue_exists",
                       "Queue already exists");
            goto out;
        }
    }
    res = dv_db_exec(db, get, 1, p, err);
    if (res == NULL) {
        goto out;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        dv_err_set(err, DV_ENOTFOUND, "unknown_queue", "Unknown queue");
        goto out;
    }
    db_queue_from_row(res, 0, &q);
    PQclear(res);
    if (apply_ops(&q, c, err) < 0 || write_queue(db, &q, err) < 0) {
        goto out;
    }
    if (!c->create) {
        res = dv_db_exec(db, wake, 1, p, err);
        if (res == NULL) {
            goto out;
        }
        c->woken = (int)dv_db_get_i64(res, 0, "drover_queue_wake", 0);
        PQclear(res);
    }
    rc = 0;
out:
    dv_queue_cleanup(&q);
    return rc;
}

int
db_queue_change(struct dv_db *db, struct db_queue_change *c, struct dv_err *err)
{
    return dv_db_tx(db, DV_DB_READ_COMMITTED, change_tx, NULL, c,
                    QMGR_TX_ATTEMPTS, err);
}

static int
delete_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char lock[] = "SELECT drover_queue_lock($1, true)";
    static const char get[] =
        "SELECT name FROM queues WHERE name = $1 FOR UPDATE";
    static const char busy[] =
        "SELECT 1 FROM jobs WHERE queue = $1 AND state <> 'finished' LIMIT 1";
    static const char del[] = "DELETE FROM queues WHERE name = $1";
    const char *name = arg;
    const char *p[] = {name};
    PGresult *res;
    int n;

    if (dv_db_exec_cmd(db, lock, 1, p, err) < 0) {
        return -1;
    }
    res = dv_db_exec(db, get, 1, p, err);
    if (res == NULL) {
        return -1;
    }
    n = PQntuples(res);
    PQclear(res);
    if (n == 0) {
        dv_err_set(err, DV_ENOTFOUND, "unknown_queue", "Unknown queue");
        return -1;
    }
    res = dv_db_exec(db, busy, 1, p, err);
    if (res == NULL) {
        return -1;
    }
    n = PQntuples(res);
    PQclear(res);
    if (n > 0) {
        /* PBS refuses to delete a queue that holds jobs. */
        dv_err_set(err, DV_ECONFLICT, "queue_busy", "Cannot delete busy queue");
        return -1;
    }
    return dv_db_exec_cmd(db, del, 1, p, err) < 0 ? -1 : 0;
}

int
db_queue_delete(struct dv_db *db, const char *name, struct dv_err *err)
{
    return dv_db_tx(db, DV_DB_READ_COMMITTED, delete_tx, NULL, (void *)name,
                    QMGR_TX_ATTEMPTS, err);
}

/* --- server-wide settings: the default queue, fair share --- */

void
db_server_clear(struct db_server *out)
{
    PQclear(out->settings);
    PQclear(out->usage);
    out->settings = NULL;
    out->usage = NULL;
}

static int
server_read_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char settings[] =
        "SELECT c.name, c.fairshare_half_life, "
        "(SELECT name FROM queues WHERE is_default) AS default_queue "
        "FROM cluster c";
    /* Decayed usage now: 2^(usage_log2 - now / half_life). */
    static const char usage[] =
        "SELECT u.owner, u.core_seconds, "
        "power(2.0::float8, greatest(-1000, least(1000, u.usage_log2 - "
        "$1::float8 / c.fairshare_half_life))) AS usage "
        "FROM user_usage u, cluster c ORDER BY u.usage_log2, u.owner";
    struct db_server *out = arg;
    char b1[32];
    const char *p[] = {dv_db_double(b1, out->now)};

    db_server_clear(out);
    out->settings = dv_db_exec(db, settings, 0, NULL, err);
    if (out->settings == NULL) {
        return -1;
    }
    out->usage = dv_db_exec(db, usage, 1, p, err);
    return out->usage == NULL ? -1 : 0;
}

int
db_server_read(struct dv_db *db, struct db_server *out, struct dv_err *err)
{
    return dv_db_tx(db, DV_DB_REPEATABLE_READ, server_read_tx, NULL, out,
                    QMGR_TX_ATTEMPTS, err);
}

static int
server_change_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    static const char lock[] = "SELECT name FROM cluster FOR UPDATE";
    static const char exists[] = "SELECT 1 FROM queues WHERE name = $1 "
                                 "FOR KEY SHARE";
    static const char clear_default[] =
        "UPDATE queues SET is_default = false, "
        "modify_index = nextval('modify_index_seq') "
        "WHERE is_default AND name <> $1";
    static const char set_default[] =
        "UPDATE queues SET is_default = true, "
        "modify_index = nextval('modify_index_seq') "
        "WHERE name = $1 AND NOT is_default";
    /* The stored usage is relative to the half-life: rescale it so that
     * every user's decayed usage now stays what it was. */
    static const char half_life[] =
        "WITH old AS (SELECT fairshare_half_life AS h FROM cluster), "
        "u AS (UPDATE user_usage SET usage_log2 = usage_log2 "
        "- $2::float8 / old.h + $2::float8 / $1::float8 FROM old) "
        "UPDATE cluster SET fairshare_half_life = $1::float8";
    struct db_server_change *c = arg;
    PGresult *res;

    res = dv_db_exec(db, lock, 0, NULL, err);
    if (res == NULL) {
        return -1;
    }
    PQclear(res);
    if (c->default_queue != NULL) {
        const char *p[] = {c->default_queue};
        int n;
        res = dv_db_exec(db, exists, 1, p, err);
        if (res == NULL) {
            return -1;
        }
        n = PQntuples(res);
        PQclear(res);
        if (n == 0) {
            dv_err_set(err, DV_ENOTFOUND, "unknown_queue", "Unknown queue");
            return -1;
        }
        if (dv_db_exec_cmd(db, clear_default, 1, p, err) < 0 ||
            dv_db_exec_cmd(db, set_default, 1, p, err) < 0) {
            return -1;
        }
    }
    if (c->half_life > 0) {
        char b1[32], b2[32];
        const char *p[] = {dv_db_double(b1, c->half_life),
                           dv_db_double(b2, c->now)};
        if (dv_db_exec_cmd(db, half_life, 2, p, err) < 0) {
            return -1;
        }
    }
    return 0;
}

int
db_server_change(struct dv_db *db, struct db_server_change *c,
                 struct dv_err *err)
{
    return dv_db_tx(db, DV_DB_READ_COMMITTED, server_change_tx, NULL, c,
                    QMGR_TX_ATTEMPTS, err);
}
