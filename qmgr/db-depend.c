/*
 * Job dependencies at submission: the edges of a new job's -W depend list
 * (the job_depends table of sql/0005-depend.sql), checked against their
 * targets under the targets' row locks, in the submission's transaction.
 * Resolution when a target starts or ends is the database's
 * (drover_depend_resolve, run by a trigger in the transaction that changes
 * the target's state); this file applies the same rule (lib/depend.h) to
 * targets that have already started or ended. Rules of db.c apply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/array.h"
#include "lib/depend.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

/*
 * The targets, read under a share lock so that none can start or end
 * before this transaction commits (its ending transaction waits for us,
 * and then sees our edges; one that committed first is seen finished).
 * Targets not marked has_dependents yet are marked first (an exclusive
 * lock, in id order, taken once in a target's life): later submissions
 * that depend on the same job only share its lock, so that thousands of
 * them do not queue behind one another. Targets of before types are
 * locked exclusively here too (their row is changed below), so that two
 * registrations never both hold a share lock they want to upgrade.
 */
static PGresult *
lock_targets(struct dv_db *db, const struct dv_depend *d, int64_t self,
             struct dv_err *err)
{
    static const char mark[] =
        "UPDATE jobs j SET has_dependents = true FROM (SELECT id FROM jobs "
        "WHERE id = ANY($1::bigint[]) AND id <> $2 "
        "AND (NOT has_dependents OR id = ANY($3::bigint[])) "
        "ORDER BY id FOR UPDATE) AS l WHERE j.id = l.id";
    static const char read[] =
        "SELECT id, owner, state, exit_status, start_time IS NOT NULL AS ran, "
        "depend_on, EXISTS (SELECT 1 FROM job_arrays a WHERE a.job_id = "
        "jobs.id) AS is_array FROM jobs WHERE id = ANY($1::bigint[]) "
        "AND id <> $2 ORDER BY id FOR SHARE";
    struct dv_buf ids, before;
    char b2[24];
    PGresult *res = NULL;
    int nb = 0;

    dv_buf_init(&ids);
    dv_buf_init(&before);
    dv_buf_putc(&ids, '{');
    dv_buf_putc(&before, '{');
    for (int i = 0; i < d->nedges; i++) {
        dv_buf_printf(&ids, "%s%lld", i > 0 ? "," : "", d->edges[i].id);
        if (dv_depend_is_before(d->edges[i].type)) {
            dv_buf_printf(&before, "%s%lld", nb++ > 0 ? "," : "",
                          d->edges[i].id);
        }
    }
    dv_buf_putc(&ids, '}');
    dv_buf_putc(&before, '}');
    const char *p[] = {dv_buf_str(&ids), dv_db_i64(b2, self),
                       dv_buf_str(&before)};
    if (dv_db_exec_cmd(db, mark, 3, p, err) >= 0) {
        res = dv_db_exec(db, read, 2, p, err);
    }
    dv_buf_cleanup(&ids);
    dv_buf_cleanup(&before);
    return res;
}

static int
find_row(PGresult *res, long long id)
{
    for (int r = 0; r < PQntuples(res); r++) {
        if (dv_db_get_i64(res, r, "id", 0) == id) {
            return r;
        }
    }
    return -1;
}

static int
insert_edge(struct dv_db *db, int64_t target, int index, const char *type,
            int64_t dependent, struct dv_err *err)
{
    static const char sql[] =
        "INSERT INTO job_depends (target, target_index, type, dependent) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
    char b1[24], b2[24], b4[24];
    const char *p[] = {dv_db_i64(b1, target), dv_db_i64(b2, index), type,
                       dv_db_i64(b4, dependent)};

    return dv_db_exec_cmd(db, sql, 4, p, err) < 0 ? -1 : 0;
}

/* A before type on target t: t (submitted with on:<count>, same owner,
 * still waiting) now waits for the new job with the matching after type. */
static int
register_before(struct dv_db *db, const struct dv_depend_edge *e, PGresult *t,
                int row, int64_t id, const char *owner, const char *server,
                struct notify_set *ns, struct dv_err *err)
{
    /* One registration less to wait for; the mirror after type shows in
     * the target's depend, as PBS's register_dep records it. */
    static const char take_on[] =
        "UPDATE jobs j SET depend_on = j.depend_on - 1, depend = x.d, "
        "spec = CASE WHEN x.d IS NULL THEN j.spec - 'depend' "
        "ELSE jsonb_set(j.spec, '{depend}', to_jsonb(x.d)) END, "
        "modify_index = nextval('modify_index_seq') "
        "FROM (SELECT drover_depend_add(drover_depend_set_on(depend, "
        "depend_on - 1), $2, $3) AS d FROM jobs WHERE id = $1) AS x "
        "WHERE j.id = $1";
    static const char mark_self[] =
        "UPDATE jobs SET has_dependents = true WHERE id = $1";
    const char *mirror = dv_depend_type_name(dv_depend_reverse(e->type));
    char b1[24], b2[24], self[320], shown[400];
    const char *pt[] = {dv_db_i64(b1, e->id), mirror, shown};
    const char *ps[] = {dv_db_i64(b2, id)};

    if (strcmp(dv_db_get(t, row, "owner"), owner) != 0) {
        dv_err_set(err, DV_EFORBIDDEN, "forbidden", "Unauthorized Request ");
        return -1;
    }
    /* PBS: a before type needs a target waiting with "on" left. */
    if (strcmp(dv_db_get(t, row, "state"), "held") != 0 ||
        dv_db_get_i64(t, row, "depend_on", 0) <= 0) {
        dv_err_set(err, DV_EINVAL, "bad_depend",
                   "Invalid Job Dependency: job %lld was not submitted with "
                   "-W depend=on:<count> or no longer waits for one",
                   e->id);
        return -1;
    }
    dv_job_id_format(id, server, self, sizeof(self));
    if (server != NULL && *server != '\0') {
        snprintf(shown, sizeof(shown), "%s@%s", self, server);
    } else {
        dv_strlcpy(shown, self, sizeof(shown));
    }
    if (insert_edge(db, id, -1, mirror, e->id, err) < 0 ||
        dv_db_exec_cmd(db, take_on, 3, pt, err) < 0 ||
        dv_db_exec_cmd(db, mark_self, 1, ps, err) < 0) {
        return -1;
    }
    notify_add_job(ns, e->id);
    return 0;
}

/* What an edge in array syntax ("124[]", "124[7]") waits on, read under
 * the array's row lock (held FOR SHARE: every transaction that starts or
 * ends a subjob locks the array's row first). */
enum { SUBJOB_WAIT = -1 };
struct subjob_state {
    int event; /* enum dv_depend_event, or SUBJOB_WAIT */
    int has_exit;
    int exit_status;
};

/* Checks that e names an array (and a subjob of its range) and, for a
 * subjob, reads what it did so far into *st. 404 "Unknown Job Id
 * 124[7].srv" otherwise, as for any job id that names no job. */
static int
subjob_read(struct dv_db *db, const struct dv_depend_edge *e,
            const char *server, struct subjob_state *st, struct dv_err *err)
{
    static const char sql[] =
        "SELECT a.first_index, a.last_index, a.step, s.state, "
        "s.exit_status, s.start_time IS NOT NULL AS ran "
        "FROM job_arrays a LEFT JOIN subjobs s ON s.job_id = a.job_id "
        "AND s.array_index = $2 WHERE a.job_id = $1";
    char b1[24], b2[24], jid[300];
    const char *p[] = {dv_db_i64(b1, e->id), dv_db_i64(b2, e->index)};
    PGresult *res = dv_db_exec(db, sql, 2, p, err);
    struct dv_array a = {0};
    const char *state;
    int ok;

    if (res == NULL) {
        return -1;
    }
    st->event = SUBJOB_WAIT;
    ok = PQntuples(res) > 0;
    if (ok) {
        a.first = (int)dv_db_get_i64(res, 0, "first_index", 0);
        a.last = (int)dv_db_get_i64(res, 0, "last_index", 0);
        a.step = (int)dv_db_get_i64(res, 0, "step", 1);
        ok = e->index < 0 || dv_array_has(&a, e->index);
    }
    if (!ok) {
        PQclear(res);
        dv_array_id_format(e->id, e->index >= 0 ? DV_ARRAY_ONE : DV_ARRAY_WHOLE,
                           e->index, e->index, server, jid, sizeof(jid));
        dv_err_set(err, DV_ENOTFOUND, "job_not_found", "Unknown Job Id %s",
                   jid);
        return -1;
    }
    state =
        dv_db_is_null(res, 0, "state") ? "queued" : dv_db_get(res, 0, "state");
    st->has_exit = !dv_db_is_null(res, 0, "exit_status");
    st->exit_status = (int)dv_db_get_i64(res, 0, "exit_status", 0);
    if (strcmp(state, "running") == 0 || strcmp(state, "exiting") == 0) {
        st->event = DV_DEPEND_STARTED;
    } else if (strcmp(state, "finished") == 0) {
        st->event = dv_db_get_bool(res, 0, "ran", 0) && st->has_exit
                        ? DV_DEPEND_ENDED
                        : DV_DEPEND_DELETED;
    }
    PQclear(res);
    return 0;
}

int
db_depend_submit(struct dv_db *db, int64_t id, const struct dv_job_spec *spec,
                 double now, struct notify_set *ns, struct dv_err *err)
{
    static const char server_sql[] = "SELECT name FROM cluster";
    static const char hold[] =
        "UPDATE jobs SET state = 'held', depend_on = $2, "
        "hold_types = hold_types || 's', depend = $3, "
        "spec = jsonb_set(spec, '{depend}', to_jsonb($3::text)), "
        "comment = 'Job held: waiting for its dependencies', "
        "modify_index = nextval('modify_index_seq') WHERE id = $1";
    static const char store[] =
        "UPDATE jobs SET depend = nullif($3, ''), depend_on = $2, "
        "spec = CASE WHEN $3 = '' THEN spec - 'depend' "
        "ELSE jsonb_set(spec, '{depend}', to_jsonb($3::text)) END "
        "WHERE id = $1";
    static const char unmet[] =
        "UPDATE jobs SET state = 'finished', hold_types = '', depend = $3, "
        "spec = jsonb_set(spec, '{depend}', to_jsonb($3::text)), "
        "end_time = to_timestamp($2), comment = $4, "
        "modify_index = nextval('modify_index_seq') WHERE id = $1";
    struct dv_depend d;
    PGresult *srv = NULL, *targets = NULL;
    const char *server = NULL;
    char *text = NULL, jid[320], comment[400];
    int waits = 0, rc = -1;
    char *met = NULL; /* met[i]: edge i is met already */
    long long unmet_id = -1;
    const struct dv_depend_edge *unmet_edge = NULL;
    struct subjob_state *subs = NULL; /* subs[i]: edge i's subjob */

    if (dv_depend_parse(spec->depend, &d, err) < 0) {
        return -1;
    }
    met = dv_xcalloc((size_t)d.nedges + 1, sizeof(*met));
    srv = dv_db_exec(db, server_sql, 0, NULL, err);
    if (srv == NULL) {
        goto out;
    }
    if (PQntuples(srv) > 0) {
        server = dv_db_get(srv, 0, "name");
    }
    for (int i = 0; i < d.nedges; i++) {
        if (d.edges[i].id == id) {
            dv_err_set(err, DV_EINVAL, "bad_depend",
                       "Invalid Job Dependency: a job cannot depend on "
                       "itself");
            goto out;
        }
    }
    targets = lock_targets(db, &d, id, err);
    if (targets == NULL) {
        goto out;
    }
    for (int i = 0; i < d.nedges; i++) {
        if (find_row(targets, d.edges[i].id) < 0) {
            db_job_not_found(server, d.edges[i].id, err);
            goto out;
        }
    }
    subs = dv_xcalloc((size_t)d.nedges + 1, sizeof(*subs));
    for (int i = 0; i < d.nedges; i++) {
        struct dv_depend_edge *e = &d.edges[i];

        /* "124" of an array is the array as a whole, shown "124[]" */
        if (!e->array &&
            dv_db_get_bool(targets, find_row(targets, e->id), "is_array", 0)) {
            e->array = 1;
            e->index = -1;
        }
        if (e->array && dv_depend_is_before(e->type)) {
            dv_err_set(err, DV_EINVAL, "bad_depend",
                       "Invalid Job Dependency: a before type cannot name a "
                       "job array or a subjob");
            goto out;
        }
    }
    for (int i = 0; i < d.nedges; i++) {
        if (d.edges[i].array &&
            subjob_read(db, &d.edges[i], server, &subs[i], err) < 0) {
            goto out;
        }
    }
    /* After types: edges on targets that have not decided them yet. */
    for (int i = 0; i < d.nedges && unmet_id < 0; i++) {
        const struct dv_depend_edge *e = &d.edges[i];
        int row = find_row(targets, e->id);
        const char *state = dv_db_get(targets, row, "state");
        enum dv_depend_outcome o = DV_DEPEND_WAIT;

        if (dv_depend_is_before(e->type)) {
            continue;
        }
        if (e->array && e->index >= 0) {
            /* a subjob: its own row (none yet: not placed) */
            if (subs[i].event != SUBJOB_WAIT) {
                o = dv_depend_outcome(e->type,
                                      (enum dv_depend_event)subs[i].event,
                                      subs[i].has_exit, subs[i].exit_status);
            } else if (strcmp(state, "finished") == 0) {
                /* the array ended without running it */
                o = dv_depend_outcome(e->type, DV_DEPEND_DELETED, 0, 0);
            }
        } else if (strcmp(state, "finished") == 0) {
            o = dv_depend_outcome(
                e->type,
                dv_db_get_bool(targets, row, "ran", 0) ? DV_DEPEND_ENDED
                                                       : DV_DEPEND_DELETED,
                !dv_db_is_null(targets, row, "exit_status"),
                (int)dv_db_get_i64(targets, row, "exit_status", 0));
        } else if (strcmp(state, "running") == 0 ||
                   strcmp(state, "exiting") == 0) {
            o = dv_depend_outcome(e->type, DV_DEPEND_STARTED, 0, 0);
        }
        if (o == DV_DEPEND_UNMET) {
            unmet_id = e->id;
            unmet_edge = e;
        } else if (o == DV_DEPEND_MET) {
            met[i] = 1;
        } else {
            if (insert_edge(db, e->id, e->index, dv_depend_type_name(e->type),
                            id, err) < 0) {
                goto out;
            }
            waits = 1;
        }
    }
    if (unmet_id >= 0) {
        text = dv_depend_format(&d, server);
    } else {
        /* What is met already is not shown (PBS drops it too). */
        struct dv_depend shown = d;

        shown.edges = dv_xcalloc((size_t)d.nedges + 1, sizeof(*shown.edges));
        shown.nedges = 0;
        for (int i = 0; i < d.nedges; i++) {
            if (!met[i]) {
                shown.edges[shown.nedges++] = d.edges[i];
            }
        }
        text = dv_depend_format(&shown, server);
        free(shown.edges);
    }
    if (unmet_id >= 0) {
        /* Accepted and deleted at once, as PBS aborts a job whose
         * dependency on a finished job can never be met. */
        char b1[24], b2[32];
        const char *p[] = {dv_db_i64(b1, id), dv_db_double(b2, now), text,
                           comment};
        if (unmet_edge->array) {
            dv_array_id_format(
                unmet_id,
                unmet_edge->index >= 0 ? DV_ARRAY_ONE : DV_ARRAY_WHOLE,
                unmet_edge->index, unmet_edge->index, server, jid, sizeof(jid));
        } else {
            dv_job_id_format(unmet_id, server, jid, sizeof(jid));
        }
        snprintf(comment, sizeof(comment),
                 "Job deleted as result of dependency on job %s", jid);
        if (dv_db_exec_cmd(db, unmet, 4, p, err) < 0) {
            goto out;
        }
        rc = 1;
        goto out;
    }
    /* Before types: registered on their targets. */
    for (int i = 0; i < d.nedges; i++) {
        const struct dv_depend_edge *e = &d.edges[i];

        if (dv_depend_is_before(e->type) &&
            register_before(db, e, targets, find_row(targets, e->id), id,
                            spec->owner, server, ns, err) < 0) {
            goto out;
        }
    }
    {
        char b1[24], b2[24];
        const char *p[] = {dv_db_i64(b1, id), dv_db_i64(b2, d.on), text};
        if (dv_db_exec_cmd(db, waits || d.on > 0 ? hold : store, 3, p, err) <
            0) {
            goto out;
        }
    }
    rc = waits || d.on > 0 ? 1 : 0;
out:
    if (rc < 0 && err->kind == DV_OK) {
        dv_err_set(err, DV_EINTERNAL, NULL, "dependency registration failed");
    }
    free(text);
    free(met);
    free(subs);
    PQclear(targets);
    PQclear(srv);
    dv_depend_cleanup(&d);
    return rc;
}
