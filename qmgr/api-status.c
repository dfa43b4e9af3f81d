/*
 * GET /v1/status: the server's name and version, Drover's clock, and counts
 * of jobs by state, nodes by status and evaluations by status. Answers 503
 * database_unavailable when PostgreSQL cannot be reached.
 */
#include "lib/version.h"
#include "lib/clock.h"
#include "qmgr/qmgr.h"

static json_int_t
count(const PGresult *res, const char *col)
{
    return (json_int_t)dv_db_get_i64(res, 0, col, 0);
}

static int
status_run(struct qreq *qr, struct dv_db *db)
{
    PGresult *res = NULL;
    json_t *body;

    if (db_status(db, &res, &qr->err) < 0) {
        PQclear(res);
        return -1;
    }
    body = json_pack(
        "{s:s, s:s, s:f, s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I}, "
        "s:{s:I, s:I, s:I}}",
        "server", server_name(qr->q), "version", DV_VERSION, "time", dv_now(),
        "jobs", "queued", count(res, "queued"), "held", count(res, "held"),
        "running", count(res, "running"), "exiting", count(res, "exiting"),
        "finished", count(res, "finished"), "waiting", count(res, "waiting"),
        "nodes", "ready",
        count(res, "nodes_ready"), "down", count(res, "nodes_down"),
        "evaluations", "pending", count(res, "evals_pending"), "leased",
        count(res, "evals_leased"), "blocked", count(res, "evals_blocked"));
    PQclear(res);
    qreq_set_json(qr, 200, body);
    return 0;
}

void
api_status(struct qreq *qr)
{
    qr->run = status_run;
    qreq_submit(qr);
}
