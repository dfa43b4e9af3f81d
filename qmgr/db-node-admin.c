/*
 * One node as operators see it (GET /v1/nodes/:id: the row and its active
 * allocations) and their changes to it: eligibility and drain. Both flags
 * only stop new placements (the schedulers' snapshot reads a node as
 * ready only when it is eligible and not drained); running work is left
 * alone. Rules of db.c apply; a node is named by id or by name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

void
db_node_view_clear(struct db_node_view *v)
{
    PQclear(v->node);
    PQclear(v->allocs);
    v->node = NULL;
    v->allocs = NULL;
}

static void
node_not_found(int64_t id, const char *name, struct dv_err *err)
{
    if (id > 0) {
        db_node_not_found(id, err);
    } else {
        dv_err_set(err, DV_ENOTFOUND, "node_not_found", "Unknown node %.200s",
                   name);
    }
}

/* Reads the view of node id (known to exist unless the caller has no lock
 * on it: then 404). */
static int
read_view(struct dv_db *db, int64_t id, const char *name,
          struct db_node_view *v, struct dv_err *err)
{
    static const char by_id[] =
        "SELECT " DB_NODE_COLUMNS " FROM nodes n WHERE n.id = $1";
    static const char by_name[] =
        "SELECT " DB_NODE_COLUMNS " FROM nodes n WHERE n.name = $1";
    static const char allocs[] =
        "SELECT id, job_id, coalesce(array_index, -1) AS array_index, "
        "ncpus, mem, ngpus, client_status, "
        "desired_status FROM allocations WHERE node_id = $1 "
        "AND client_status IN " DB_ACTIVE " AND end_time IS NULL ORDER BY id";
    char b1[24];

    db_node_view_clear(v);
    {
        const char *p[] = {id > 0 ? dv_db_i64(b1, id) : name};
        v->node = dv_db_exec(db, id > 0 ? by_id : by_name, 1, p, err);
    }
    if (v->node == NULL) {
        return -1;
    }
    if (PQntuples(v->node) == 0) {
        node_not_found(id, name, err);
        return -1;
    }
    {
        const char *p[] = {dv_db_i64(b1, dv_db_get_i64(v->node, 0, "id", 0))};
        v->allocs = dv_db_exec(db, allocs, 1, p, err);
    }
    return v->allocs == NULL ? -1 : 0;
}

struct get_tx {
    int64_t id;
    const char *name;
    struct db_node_view *v;
};

static int
get_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    struct get_tx *t = arg;

    return read_view(db, t->id, t->name, t->v, err);
}

int
db_node_get(struct dv_db *db, int64_t id, const char *name,
            struct db_node_view *out, struct dv_err *err)
{
    struct get_tx t = {.id = id, .name = name, .v = out};

    out->node = NULL;
    out->allocs = NULL;
    return dv_db_tx(db, DV_DB_REPEATABLE_READ, get_tx, NULL, &t,
                    QMGR_TX_ATTEMPTS, err);
}

static int
set_tx(struct dv_db *db, void *arg, struct dv_err *err)
{
    /* The row lock orders this change with the schedulers' plan commits,
     * which lock the nodes they place on and re-read their readiness: a
     * placement either commits before the change or sees it. */
    static const char lock_id[] = "SELECT id, name, eligible, drain FROM "
                                  "nodes WHERE id = $1 FOR UPDATE";
    static const char lock_name[] = "SELECT id, name, eligible, drain FROM "
                                    "nodes WHERE name = $1 FOR UPDATE";
    /* The nodes_capacity trigger moves capacity_index and shape_index when
     * eligible becomes true or drain false. */
    static const char set_eligible[] =
        "UPDATE nodes SET eligible = $2::boolean, "
        "comment = CASE WHEN $3::boolean THEN $4::text ELSE comment END, "
        "modify_index = nextval('modify_index_seq') WHERE id = $1";
    static const char set_drain[] =
        "UPDATE nodes SET drain = $2::boolean, "
        "comment = CASE WHEN $3::boolean THEN $4::text ELSE comment END, "
        "modify_index = nextval('modify_index_seq') WHERE id = $1";
    struct db_node_set *s = arg;
    struct notify_set ns = {0};
    PGresult *res = NULL;
    int eligible, drain, was_usable, rc = -1;
    int64_t n;
    char b1[24];

    db_node_view_clear(&s->view);
    s->node_id = 0;
    s->node_name[0] = '\0';
    s->old_value = 0;
    s->usable_again = 0;
    s->system_evals = 0;
    {
        const char *p[] = {s->id > 0 ? dv_db_i64(b1, s->id) : s->name};
        res = dv_db_exec(db, s->id > 0 ? lock_id : lock_name, 1, p, err);
    }
    if (res == NULL) {
        goto out;
    }
    if (PQntuples(res) == 0) {
        node_not_found(s->id, s->name, err);
        goto out;
    }
    s->node_id = dv_db_get_i64(res, 0, "id", 0);
    dv_strlcpy(s->node_name, dv_db_get(res, 0, "name"), sizeof(s->node_name));
    eligible = dv_db_get_bool(res, 0, "eligible", 1);
    drain = dv_db_get_bool(res, 0, "drain", 0);
    was_usable = eligible && !drain;
    if (s->flag == NODE_FLAG_ELIGIBLE) {
        s->old_value = eligible;
        eligible = s->value;
    } else {
        s->old_value = drain;
        drain = s->value;
    }
    PQclear(res);
    res = NULL;
    {
        const char *p[] = {dv_db_i64(b1, s->node_id),
                           s->value ? "true" : "false",
                           s->set_comment ? "true" : "false", s->comment};
        n = dv_db_exec_cmd(
            db, s->flag == NODE_FLAG_ELIGIBLE ? set_eligible : set_drain, 4, p,
            err);
    }
    if (n < 0) {
        goto out;
    }
    s->usable_again = !was_usable && eligible && !drain;
    if (s->usable_again) {
        /* Blocked work may fit now; system jobs belong there again. */
        int k = db_system_evals(db, s->now, err);

        if (k < 0) {
            goto out;
        }
        s->system_evals = k;
        ns.capacity = 1;
        ns.evals = k > 0;
    }
    if (db_notify_send(db, &ns, err) < 0) {
        goto out;
    }
    if (read_view(db, s->node_id, NULL, &s->view, err) < 0) {
        goto out;
    }
    rc = 0;
out:
    PQclear(res);
    notify_cleanup(&ns);
    return rc;
}

int
db_node_set(struct dv_db *db, struct db_node_set *s, struct dv_err *err)
{
    s->view.node = NULL;
    s->view.allocs = NULL;
    return dv_db_tx(db, DV_DB_READ_COMMITTED, set_tx, NULL, s, QMGR_TX_ATTEMPTS,
                    err);
}
