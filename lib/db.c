/*
 * PostgreSQL access on libpq (lib/db.h): connecting with failover-friendly
 * options, running parameterised statements under a client-side timeout,
 * mapping SQLSTATEs to error kinds, transactions with retries and in-doubt
 * commits, LISTEN/NOTIFY and the embedded migrations. docs/internals/db.md
 * explains the rules.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/db.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/migrations.h"
#include "lib/strutil.h"

/* Statements prepared per connection, keyed by the SQL text's address. */
#define DB_STMT_MAX 128
/* How long to wait for the answer to a cancel request before giving the
 * connection up (real seconds). */
#define DB_CANCEL_GRACE 5.0
/* Session limits set after connecting. */
#define DB_IDLE_IN_TX_TIMEOUT "60s"
#define DB_STATEMENT_TIMEOUT "60s"
/* Key of the session advisory lock that serialises migrations ("drov"). */
#define DB_MIGRATE_LOCK "1685220726"
/* Retry backoff bounds, in milliseconds. */
#define DB_BACKOFF_MIN_MS 5
#define DB_BACKOFF_MAX_MS 500
#define DB_CHANNEL_MAX 63

/* Flags for db_query. */
#define DB_PREPARE 0x1 /* use (and fill) the prepared statement cache */
#define DB_SIMPLE 0x2  /* simple protocol: several statements, no params */

struct db_stmt {
    const char *key; /* the caller's SQL pointer (borrowed; never read) */
    char *text;      /* a copy, compared on every hit */
    char name[16];
};

struct dv_db {
    char *conninfo;
    char *appname;
    PQconninfoOption *opts; /* the parsed conninfo (NULL until parsed) */
    const char **kw;        /* keywords/values for PQconnectdbParams,
                               pointing into opts or to constants */
    const char **val;
    char *desc; /* "host=... port=... dbname=..." for logs, no secrets */

    PGconn *conn;
    int broken;         /* lost: the next connect starts afresh */
    int ever_connected; /* a later connect is a reconnect */
    int in_tx;          /* inside dv_db_tx or a migration: never reconnect
                           implicitly */
    int syncrep_cancel; /* a commit's wait for a standby was cancelled */
    char lost[160];     /* why the connection was lost */

    double timeout; /* client-side limit per statement, real seconds */
    uint64_t rng;

    char **channels;
    size_t nchannels;

    struct db_stmt stmts[DB_STMT_MAX];
    size_t nstmts;
    unsigned stmt_seq;
};

static double
mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Copies a libpq message into buf as one line, without the final newline. */
static const char *
db_oneline(const char *msg, char *buf, size_t size)
{
    size_t i, n;

    if (msg == NULL || *msg == '\0') {
        msg = "unknown error";
    }
    n = dv_strlcpy(buf, msg, size);
    if (n >= size) {
        n = size - 1;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) {
        buf[--n] = '\0';
    }
    for (i = 0; i < n; i++) {
        if (buf[i] == '\n' || buf[i] == '\t') {
            buf[i] = ' ';
        }
    }
    return buf;
}

static void
db_stmts_clear(struct dv_db *db)
{
    size_t i;

    for (i = 0; i < db->nstmts; i++) {
        free(db->stmts[i].text);
        db->stmts[i].text = NULL;
        db->stmts[i].key = NULL;
    }
    db->nstmts = 0;
}

static void
db_close(struct dv_db *db)
{
    if (db->conn != NULL) {
        PQfinish(db->conn);
        db->conn = NULL;
    }
    db_stmts_clear(db);
    db->broken = 0;
}

/* Marks the connection lost; the next dv_db_connect starts a new one. */
static void
db_lost(struct dv_db *db, const char *why)
{
    if (db->broken) {
        return;
    }
    db->broken = 1;
    dv_strlcpy(db->lost, why, sizeof(db->lost));
    log_warn("lost connection to database %s: %s", db->desc, why);
}

struct dv_db *
dv_db_new(const char *conninfo, const char *application_name)
{
    struct dv_db *db = dv_xcalloc(1, sizeof(*db));

    db->conninfo = dv_xstrdup(conninfo != NULL ? conninfo : "");
    db->appname = dv_xstrdup(application_name);
    db->desc = dv_xstrdup("(not parsed)");
    db->rng = ((uint64_t)(uintptr_t)db ^
               ((uint64_t)(mono_now() * 1e9) * 0x9e3779b97f4a7c15ULL) ^
               (uint64_t)getpid()) |
              1;
    return db;
}

void
dv_db_free(struct dv_db *db)
{
    size_t i;

    if (db == NULL) {
        return;
    }
    db_close(db);
    for (i = 0; i < db->nchannels; i++) {
        free(db->channels[i]);
    }
    free(db->channels);
    free(db->kw);
    free(db->val);
    if (db->opts != NULL) {
        PQconninfoFree(db->opts);
    }
    free(db->desc);
    free(db->appname);
    free(db->conninfo);
    free(db);
}

static const char *
db_opt(const PQconninfoOption *opts, const char *keyword)
{
    const PQconninfoOption *o;

    for (o = opts; o->keyword != NULL; o++) {
        if (strcmp(o->keyword, keyword) == 0) {
            return o->val;
        }
    }
    return NULL;
}

/*
 * Parses the conninfo once and builds the keyword/value arrays for
 * PQconnectdbParams: what the caller gave, then our defaults for what it
 * left out (a failover-following session, bounded connect and dead-peer
 * detection), then application_name.
 */
static int
db_params(struct dv_db *db, struct dv_err *err)
{
    static const char *const defaults[][2] = {
        {"target_session_attrs", "read-write"},
        {"connect_timeout", "5"},
        {"keepalives", "1"},
        {"keepalives_idle", "10"},
        {"keepalives_interval", "5"},
        {"keepalives_count", "3"},
        {"tcp_user_timeout", "15000"},
    };
    const size_t ndefaults = sizeof(defaults) / sizeof(defaults[0]);
    PQconninfoOption *opts, *o;
    char *errmsg = NULL;
    char line[200];
    size_t n = 0, i;
    const char *host, *port, *dbname;

    if (db->opts != NULL) {
        return 0;
    }
    opts = PQconninfoParse(db->conninfo, &errmsg);
    if (opts == NULL) {
        dv_err_set(err, DV_EINVAL, "invalid_conninfo",
                   "invalid database connection string: %s",
                   db_oneline(errmsg != NULL ? errmsg : "out of memory", line,
                              sizeof(line)));
        PQfreemem(errmsg);
        return -1;
    }
    for (o = opts; o->keyword != NULL; o++) {
        n++;
    }
    db->kw = dv_xcalloc(n + ndefaults + 2, sizeof(*db->kw));
    db->val = dv_xcalloc(n + ndefaults + 2, sizeof(*db->val));
    n = 0;
    for (o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL) {
            continue;
        }
        if (db->appname != NULL &&
            strcmp(o->keyword, "application_name") == 0) {
            continue;
        }
        db->kw[n] = o->keyword;
        db->val[n] = o->val;
        n++;
    }
    for (i = 0; i < ndefaults; i++) {
        if (db_opt(opts, defaults[i][0]) == NULL) {
            db->kw[n] = defaults[i][0];
            db->val[n] = defaults[i][1];
            n++;
        }
    }
    if (db->appname != NULL) {
        db->kw[n] = "application_name";
        db->val[n] = db->appname;
        n++;
    }
    db->kw[n] = NULL;
    db->val[n] = NULL;
    db->opts = opts;

    host = db_opt(opts, "host");
    if (host == NULL) {
        host = db_opt(opts, "hostaddr");
    }
    port = db_opt(opts, "port");
    dbname = db_opt(opts, "dbname");
    free(db->desc);
    db->desc = dv_xasprintf(
        "\"%s\" (host=%s port=%s)", dbname != NULL ? dbname : "(default)",
        host != NULL ? host : "(default)", port != NULL ? port : "(default)");
    return 0;
}

static int
db_match_syncrep(const char *msg)
{
    /* PostgreSQL's two wordings (syncrep.c); both mean the commit is
     * local but may not have reached a standby. */
    return msg != NULL && strncmp(msg, "canceling ", 10) == 0 &&
           strstr(msg, "wait for synchronous replication") != NULL;
}

/* libpq's notice receiver: keeps notices off the terminal, spots a
 * cancelled synchronous-replication wait, and a FATAL sent outside a query
 * (backend terminated while idle). */
static void
db_notice_cb(void *arg, const PGresult *res)
{
    struct dv_db *db = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

    if (sev == NULL) {
        sev = PQresultErrorField(res, PG_DIAG_SEVERITY);
    }
    if (msg == NULL) {
        msg = "";
    }
    if (db_match_syncrep(msg)) {
        db->syncrep_cancel = 1;
    }
    if (sev != NULL &&
        (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0)) {
        db_lost(db, msg);
    } else if (sev != NULL && strcmp(sev, "WARNING") == 0) {
        log_warn("database %s: warning: %s", db->desc, msg);
    } else {
        log_debug("database %s: %s: %s", db->desc, sev != NULL ? sev : "notice",
                  msg);
    }
}

/* SQLSTATEs that mean this connection is gone or unusable for writes:
 * class 08, administrator shutdowns, and a read-only transaction (the
 * server became a standby after a failover). */
static int
db_sqlstate_conn(const char *state)
{
    return state != NULL &&
           (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
            strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0 ||
            strcmp(state, "25006") == 0);
}

/*
 * Sets err from a failed statement's result (NULL when none came back) and
 * frees it. cancelled: we cancelled the statement for exceeding the
 * client-side limit.
 */
static void
db_fail(struct dv_db *db, PGresult *res, int cancelled, struct dv_err *err)
{
    const char *state = NULL, *primary = NULL;
    char line[200];

    if (res != NULL) {
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        if (primary == NULL) {
            primary = PQresultErrorMessage(res);
        }
    }
    if (res == NULL && cancelled) {
        db_lost(db, "no answer to a cancel request");
        dv_err_set(err, DV_ETIMEOUT, NULL,
                   "statement timed out after %gs and the connection was "
                   "reset",
                   db->timeout);
    } else if (res == NULL || db->conn == NULL ||
               PQstatus(db->conn) == CONNECTION_BAD ||
               db_sqlstate_conn(state)) {
        if (res != NULL) {
            db_oneline(primary, line, sizeof(line));
        } else if (db->broken && db->lost[0] != '\0') {
            dv_strlcpy(line, db->lost, sizeof(line));
        } else {
            db_oneline(db->conn != NULL ? PQerrorMessage(db->conn)
                                        : "not connected",
                       line, sizeof(line));
        }
        db_lost(db, line);
        dv_err_set(err, DV_EDBCONN, "database_unavailable",
                   "database connection lost: %s", line);
    } else if (state == NULL) {
        dv_err_set(err, DV_EDB, NULL, "database error: %s",
                   db_oneline(primary, line, sizeof(line)));
    } else if (strcmp(state, "57014") == 0 && cancelled) {
        dv_err_set(err, DV_ETIMEOUT, NULL, "statement timed out after %gs",
                   db->timeout);
    } else if (strcmp(state, "57014") == 0) {
        dv_err_set(err, DV_ETIMEOUT, NULL, "database error %s: %s", state,
                   db_oneline(primary, line, sizeof(line)));
    } else if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0) {
        dv_err_set(err, DV_ESERIAL, NULL, "database error %s: %s", state,
                   db_oneline(primary, line, sizeof(line)));
    } else if (strcmp(state, "23505") == 0) {
        dv_err_set(err, DV_ECONFLICT, "duplicate", "database error %s: %s",
                   state, db_oneline(primary, line, sizeof(line)));
    } else {
        dv_err_set(err, DV_EDB, NULL, "database error %s: %s", state,
                   db_oneline(primary, line, sizeof(line)));
    }
    PQclear(res);
}

static void
db_cancel(struct dv_db *db)
{
    PGcancel *c = PQgetCancel(db->conn);
    char buf[256];

    if (c == NULL) {
        return;
    }
    if (PQcancel(c, buf, sizeof(buf)) == 0) {
        log_warn("could not cancel statement on database %s: %s", db->desc,
                 buf);
    }
    PQfreeCancel(c);
}

/* Waits until a result can be read without blocking. Returns 1 when it
 * can, 0 at the deadline, -1 when the connection failed (PQgetResult then
 * reports it). */
static int
db_wait(struct dv_db *db, double deadline)
{
    struct pollfd pfd;
    double left;
    int rc;

    while (PQisBusy(db->conn)) {
        left = deadline - mono_now();
        if (left <= 0) {
            return 0;
        }
        pfd.fd = PQsocket(db->conn);
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (pfd.fd < 0) {
            return -1;
        }
        rc = poll(&pfd, 1, (int)ceil(left * 1000.0));
        if (rc < 0 && errno != EINTR) {
            return -1;
        }
        if (rc > 0 && PQconsumeInput(db->conn) == 0) {
            return -1;
        }
    }
    return 1;
}

static int
db_res_ok(const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);

    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/*
 * Collects what a sent statement returns, cancelling it at the deadline (0:
 * none). Returns the last result, or the first failed one; NULL when none
 * came back (connection lost, or no answer after the cancel).
 */
static PGresult *
db_collect(struct dv_db *db, double deadline, int *cancelled)
{
    PGresult *keep = NULL, *r;
    ExecStatusType st;
    int w;

    *cancelled = 0;
    for (;;) {
        if (deadline > 0) {
            w = db_wait(db, deadline);
            if (w == 0 && !*cancelled) {
                db_cancel(db);
                *cancelled = 1;
                deadline = mono_now() + DB_CANCEL_GRACE;
                continue;
            }
            if (w == 0) {
                PQclear(keep);
                return NULL;
            }
        }
        r = PQgetResult(db->conn);
        if (r == NULL) {
            break;
        }
        st = PQresultStatus(r);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT ||
            st == PGRES_COPY_BOTH) {
            /* Not ours to drive: give the connection up. */
            PQclear(r);
            PQclear(keep);
            db_lost(db, "unexpected COPY from a statement");
            return NULL;
        }
        if (keep == NULL || db_res_ok(keep)) {
            PQclear(keep);
            keep = r;
        } else {
            PQclear(r);
        }
    }
    return keep;
}

static struct db_stmt *
db_stmt_find(struct dv_db *db, const char *sql)
{
    size_t i;

    for (i = 0; i < db->nstmts; i++) {
        if (db->stmts[i].key == sql) {
            /* The same address may hold other text than last time (a
             * freed and reused buffer): only the same text is a hit. */
            if (strcmp(db->stmts[i].text, sql) == 0) {
                return &db->stmts[i];
            }
            return NULL;
        }
    }
    return NULL;
}

static void
db_stmt_forget(struct dv_db *db, struct db_stmt *s)
{
    size_t i = (size_t)(s - db->stmts);

    free(s->text);
    db->stmts[i] = db->stmts[db->nstmts - 1];
    db->stmts[db->nstmts - 1].text = NULL;
    db->stmts[db->nstmts - 1].key = NULL;
    db->nstmts--;
}

static int
db_stmt_slot_free(const struct dv_db *db, const char *sql)
{
    size_t i;

    if (db->nstmts >= DB_STMT_MAX) {
        return 0;
    }
    for (i = 0; i < db->nstmts; i++) {
        if (db->stmts[i].key == sql) {
            return 0; /* the address is taken by other text */
        }
    }
    return 1;
}

/*
 * Runs one statement on the current connection under the client-side
 * timeout. With DB_PREPARE the statement is prepared once per connection
 * (when the cache has room) and executed by name. Returns a successful
 * result (caller PQclears) or NULL with err set.
 */
static PGresult *
db_query(struct dv_db *db, const char *sql, int nparams,
         const char *const *params, int flags, struct dv_err *err)
{
    double deadline = db->timeout > 0 ? mono_now() + db->timeout : 0;
    struct db_stmt *stmt = NULL;
    PGresult *res;
    const char *state;
    char name[16];
    int cancelled = 0, sent;

    if (db->conn == NULL || db->broken) {
        dv_err_set(err, DV_EDBCONN, "database_unavailable",
                   "not connected to database %s", db->desc);
        return NULL;
    }
    if (flags & DB_PREPARE) {
        stmt = db_stmt_find(db, sql);
        if (stmt == NULL && db_stmt_slot_free(db, sql)) {
            snprintf(name, sizeof(name), "dv_%u", ++db->stmt_seq);
            if (PQsendPrepare(db->conn, name, sql, nparams, NULL) == 0) {
                db_fail(db, NULL, 0, err);
                return NULL;
            }
            res = db_collect(db, deadline, &cancelled);
            if (res == NULL || !db_res_ok(res)) {
                db_fail(db, res, cancelled, err);
                return NULL;
            }
            PQclear(res);
            stmt = &db->stmts[db->nstmts++];
            stmt->key = sql;
            stmt->text = dv_xstrdup(sql);
            dv_strlcpy(stmt->name, name, sizeof(stmt->name));
        }
    }
    if (stmt != NULL) {
        sent = PQsendQueryPrepared(db->conn, stmt->name, nparams, params, NULL,
                                   NULL, 0);
    } else if (flags & DB_SIMPLE) {
        sent = PQsendQuery(db->conn, sql);
    } else {
        sent = PQsendQueryParams(db->conn, sql, nparams, NULL, params, NULL,
                                 NULL, 0);
    }
    if (sent == 0) {
        db_fail(db, NULL, 0, err);
        return NULL;
    }
    res = db_collect(db, deadline, &cancelled);
    if (res != NULL && db_res_ok(res)) {
        return res;
    }
    state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (stmt != NULL && state != NULL && strcmp(state, "0A000") == 0 &&
        PQstatus(db->conn) == CONNECTION_OK) {
        /* "cached plan must not change result type": a table changed under
         * a prepared statement. Prepare again next time; the statement
         * will work then, so report it as retryable. */
        char line[200];

        db_stmt_forget(db, stmt);
        dv_err_set(err, DV_ESERIAL, NULL, "database error %s: %s", state,
                   db_oneline(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY),
                              line, sizeof(line)));
        PQclear(res);
        return NULL;
    }
    if (res != NULL && PQresultStatus(res) == PGRES_EMPTY_QUERY) {
        PQclear(res);
        dv_err_set(err, DV_EINTERNAL, NULL, "empty statement");
        return NULL;
    }
    db_fail(db, res, cancelled, err);
    return NULL;
}

/* Re-issues LISTEN for one remembered channel. */
static int
db_listen_one(struct dv_db *db, const char *channel, struct dv_err *err)
{
    /* The one statement not sent with parameters: LISTEN takes no $n. The
     * channel is one of our fixed identifiers, checked by db_channel_ok
     * (lowercase letters, digits and underscores only) before it was
     * remembered, so it cannot carry SQL. */
    char *sql = dv_xasprintf("LISTEN %s", channel);
    PGresult *res = db_query(db, sql, 0, NULL, 0, err);

    free(sql);
    if (res == NULL) {
        return -1;
    }
    PQclear(res);
    return 0;
}

/* Session settings and listens of a new connection. */
static int
db_session_setup(struct dv_db *db, struct dv_err *err)
{
    static const char *const params[] = {DB_IDLE_IN_TX_TIMEOUT,
                                         DB_STATEMENT_TIMEOUT};
    PGresult *res;
    size_t i;

    res = db_query(db,
                   "SELECT set_config('idle_in_transaction_session_timeout', "
                   "$1, false), set_config('statement_timeout', $2, false)",
                   2, params, 0, err);
    if (res == NULL) {
        return -1;
    }
    PQclear(res);
    for (i = 0; i < db->nchannels; i++) {
        if (db_listen_one(db, db->channels[i], err) < 0) {
            return -1;
        }
    }
    return 0;
}

int
dv_db_connect(struct dv_db *db, struct dv_err *err)
{
    char line[200];
    PGconn *conn;

    if (dv_db_connected(db)) {
        return 0;
    }
    if (db->in_tx) {
        /* A new connection would run the rest of the work outside the
         * transaction; dv_db_tx reconnects once the attempt has ended. */
        dv_err_set(err, DV_EDBCONN, "database_unavailable",
                   "database connection lost inside a transaction%s%s",
                   db->lost[0] != '\0' ? ": " : "", db->lost);
        return -1;
    }
    if (db_params(db, err) < 0) {
        return -1;
    }
    db_close(db);
    conn = PQconnectdbParams(db->kw, db->val, 0);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        db_oneline(conn != NULL ? PQerrorMessage(conn) : "out of memory", line,
                   sizeof(line));
        PQfinish(conn);
        dv_err_set(err, DV_EDBCONN, "database_unavailable",
                   "could not connect to database %s: %s", db->desc, line);
        log_debug("could not connect to database %s: %s", db->desc, line);
        return -1;
    }
    PQsetNoticeReceiver(conn, db_notice_cb, db);
    db->conn = conn;
    if (db_session_setup(db, err) < 0) {
        db_close(db);
        return -1;
    }
    if (db->ever_connected) {
        log_warn("reconnected to database \"%s\" on %s port %s after: %s",
                 PQdb(conn), PQhost(conn), PQport(conn),
                 db->lost[0] != '\0' ? db->lost : "connection reset");
    } else {
        log_debug("connected to database \"%s\" on %s port %s", PQdb(conn),
                  PQhost(conn), PQport(conn));
    }
    db->ever_connected = 1;
    db->lost[0] = '\0';
    return 0;
}

int
dv_db_connected(const struct dv_db *db)
{
    return db != NULL && db->conn != NULL && !db->broken &&
           PQstatus(db->conn) == CONNECTION_OK;
}

PGconn *
dv_db_conn(struct dv_db *db)
{
    return db->conn;
}

void
dv_db_set_timeout(struct dv_db *db, double seconds)
{
    db->timeout = seconds > 0 ? seconds : 0;
}

PGresult *
dv_db_exec(struct dv_db *db, const char *sql, int nparams,
           const char *const *params, struct dv_err *err)
{
    if (dv_db_connect(db, err) < 0) {
        return NULL;
    }
    return db_query(db, sql, nparams, params, DB_PREPARE, err);
}

int64_t
dv_db_exec_cmd(struct dv_db *db, const char *sql, int nparams,
               const char *const *params, struct dv_err *err)
{
    PGresult *res = dv_db_exec(db, sql, nparams, params, err);
    const char *n;
    int64_t rows = 0;

    if (res == NULL) {
        return -1;
    }
    n = PQcmdTuples(res);
    if (n != NULL && *n != '\0' && dv_parse_i64(n, 0, INT64_MAX, &rows) < 0) {
        rows = 0;
    }
    PQclear(res);
    return rows;
}

/* Internal statements (transaction control, bookkeeping): not prepared. */
static int
db_cmd(struct dv_db *db, const char *sql, int nparams,
       const char *const *params, struct dv_err *err)
{
    PGresult *res = db_query(db, sql, nparams, params, 0, err);

    if (res == NULL) {
        return -1;
    }
    PQclear(res);
    return 0;
}

/* Rolls back an open transaction when the connection is still alive. */
static void
db_rollback(struct dv_db *db)
{
    struct dv_err e;

    if (!dv_db_connected(db) || PQtransactionStatus(db->conn) == PQTRANS_IDLE) {
        return;
    }
    if (db_cmd(db, "ROLLBACK", 0, NULL, &e) < 0 && dv_db_connected(db)) {
        db_lost(db, e.msg);
    }
}

static void
db_backoff(struct dv_db *db, int attempt)
{
    long cap = DB_BACKOFF_MIN_MS, ms;
    struct timespec ts;
    int i;

    for (i = 1; i < attempt && cap < DB_BACKOFF_MAX_MS; i++) {
        cap *= 2;
    }
    if (cap > DB_BACKOFF_MAX_MS) {
        cap = DB_BACKOFF_MAX_MS;
    }
    /* xorshift64: jitter so that clients retrying together spread out */
    db->rng ^= db->rng << 13;
    db->rng ^= db->rng >> 7;
    db->rng ^= db->rng << 17;
    ms = cap / 2 + (long)(db->rng % (uint64_t)(cap / 2 + 1));
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/*
 * One attempt: BEGIN, fn, COMMIT. Returns 0 once committed, -1 with err set
 * otherwise; *doubt is set when the outcome of COMMIT is unknown.
 */
static int
db_tx_once(struct dv_db *db, enum dv_db_isolation iso, dv_db_tx_fn fn,
           void *arg, int *doubt, struct dv_err *err)
{
    static const char *const begin[] = {
        [DV_DB_READ_COMMITTED] = "BEGIN ISOLATION LEVEL READ COMMITTED",
        [DV_DB_REPEATABLE_READ] = "BEGIN ISOLATION LEVEL REPEATABLE READ",
        [DV_DB_SERIALIZABLE] = "BEGIN ISOLATION LEVEL SERIALIZABLE",
    };
    PGresult *res;

    if ((unsigned)iso >= sizeof(begin) / sizeof(begin[0])) {
        dv_err_set(err, DV_EINTERNAL, NULL, "bad isolation level %d", (int)iso);
        return -1;
    }
    if (dv_db_connect(db, err) < 0 ||
        db_cmd(db, begin[iso], 0, NULL, err) < 0) {
        return -1;
    }
    db->in_tx = 1;
    if (fn(db, arg, err) < 0) {
        db->in_tx = 0;
        if (err->kind == DV_OK) {
            dv_err_set(err, DV_EINTERNAL, NULL,
                       "transaction function failed without saying why");
        }
        db_rollback(db);
        return -1;
    }
    if (!dv_db_connected(db)) {
        db->in_tx = 0;
        dv_err_set(err, DV_EDBCONN, "database_unavailable",
                   "database connection lost inside a transaction: %s",
                   db->lost);
        return -1;
    }
    if (PQtransactionStatus(db->conn) == PQTRANS_INERROR) {
        /* COMMIT would answer ROLLBACK without an error. */
        db->in_tx = 0;
        dv_err_set(err, DV_EINTERNAL, NULL,
                   "transaction function ignored a failed statement");
        db_rollback(db);
        return -1;
    }
    db->syncrep_cancel = 0;
    res = db_query(db, "COMMIT", 0, NULL, 0, err);
    db->in_tx = 0;
    if (res == NULL) {
        if (!dv_db_connected(db)) {
            /* Lost while COMMIT was in flight: it may have committed. */
            *doubt = 1;
            dv_err_set(err, DV_EDBCONN, "database_unavailable",
                       "commit outcome unknown: %s", db->lost);
        }
        db_rollback(db);
        return -1;
    }
    PQclear(res);
    if (db->syncrep_cancel) {
        *doubt = 1;
        dv_err_set(err, DV_EDBCONN, "database_unavailable",
                   "commit outcome unknown: the wait for synchronous "
                   "replication was cancelled");
        return -1;
    }
    return 0;
}

int
dv_db_tx(struct dv_db *db, enum dv_db_isolation iso, dv_db_tx_fn fn,
         dv_db_in_doubt_fn in_doubt, void *arg, int max_attempts,
         struct dv_err *err)
{
    struct dv_err e;
    int attempt, doubt = 0, r;

    if (max_attempts <= 0) {
        max_attempts = 8;
    }
    if (db->in_tx) {
        dv_err_set(err, DV_EINTERNAL, NULL, "nested dv_db_tx");
        return -1;
    }
    for (attempt = 1;; attempt++) {
        dv_err_clear(&e);
        r = -1;
        if (doubt) {
            /* Ask on a fresh connection whether the last COMMIT landed. */
            r = dv_db_connect(db, &e);
            if (r == 0) {
                r = in_doubt(db, arg, &e);
                if (r == 1) {
                    log_notice("in-doubt commit on database %s was found "
                               "committed",
                               db->desc);
                    return 0;
                }
                if (r == 0) {
                    doubt = 0;
                    log_warn("in-doubt commit on database %s was not "
                             "committed; running the transaction again",
                             db->desc);
                } else if (e.kind == DV_OK) {
                    dv_err_set(&e, DV_EINTERNAL, NULL,
                               "in-doubt check failed without saying why");
                }
            }
        }
        if (!doubt) {
            if (db_tx_once(db, iso, fn, arg, &doubt, &e) == 0) {
                return 0;
            }
            if (doubt && in_doubt == NULL) {
                doubt = 0; /* fn is safe to repeat: just run it again */
            }
        }
        if ((e.kind != DV_EDBCONN && e.kind != DV_ESERIAL) ||
            attempt >= max_attempts) {
            break;
        }
        log_warn("retrying transaction on database %s (attempt %d of %d): "
                 "%s",
                 db->desc, attempt + 1, max_attempts, e.msg);
        db_backoff(db, attempt);
    }
    if (err != NULL) {
        *err = e;
    }
    return -1;
}

static int
db_channel_ok(const char *channel)
{
    size_t n = 0;
    const char *p;

    if (channel == NULL) {
        return 0;
    }
    for (p = channel; *p != '\0'; p++, n++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_')) {
            return 0;
        }
    }
    return n > 0 && n <= DB_CHANNEL_MAX &&
           !(channel[0] >= '0' && channel[0] <= '9');
}

int
dv_db_listen(struct dv_db *db, const char *channel, struct dv_err *err)
{
    size_t i;

    if (!db_channel_ok(channel)) {
        dv_err_set(err, DV_EINVAL, NULL,
                   "invalid channel name \"%s\": use lowercase letters, "
                   "digits and underscores",
                   channel != NULL ? channel : "(null)");
        return -1;
    }
    for (i = 0; i < db->nchannels; i++) {
        if (strcmp(db->channels[i], channel) == 0) {
            break;
        }
    }
    if (i == db->nchannels) {
        db->channels = dv_xrealloc(db->channels,
                                   (db->nchannels + 1) * sizeof(*db->channels));
        db->channels[db->nchannels++] = dv_xstrdup(channel);
    }
    if (!dv_db_connected(db)) {
        /* Connecting listens on every remembered channel. */
        return dv_db_connect(db, err);
    }
    return db_listen_one(db, channel, err);
}

int
dv_db_socket(struct dv_db *db)
{
    return dv_db_connected(db) ? PQsocket(db->conn) : -1;
}

int
dv_db_consume_notifies(struct dv_db *db, dv_db_notify_cb cb, void *arg,
                       struct dv_err *err)
{
    PGnotify *n;
    int count = 0;
    char line[200];

    if (!dv_db_connected(db)) {
        dv_err_set(err, DV_EDBCONN, "database_unavailable",
                   "not connected to database %s%s%s", db->desc,
                   db->lost[0] != '\0' ? ": " : "", db->lost);
        return -1;
    }
    if (PQconsumeInput(db->conn) == 0) {
        db_lost(db, db_oneline(PQerrorMessage(db->conn), line, sizeof(line)));
    }
    /* Deliver what arrived even when the connection then failed. */
    for (;;) {
        n = PQnotifies(db->conn);
        if (n == NULL) {
            break;
        }
        if (cb != NULL) {
            cb(n->relname, n->extra, arg);
        }
        PQfreemem(n);
        count++;
    }
    if (!dv_db_connected(db)) {
        if (!db->broken) {
            db_lost(db,
                    db_oneline(PQerrorMessage(db->conn), line, sizeof(line)));
        }
        dv_err_set(err, DV_EDBCONN, "database_unavailable",
                   "database connection lost: %s", db->lost);
        return -1;
    }
    return count;
}

static int
db_migration_applied(const PGresult *res, int version)
{
    int i, n = PQntuples(res);

    for (i = 0; i < n; i++) {
        if (dv_db_get_i64(res, i, "version", -1) == version) {
            return 1;
        }
    }
    return 0;
}

/* Applies one migration and records it, in one transaction. */
static int
db_migrate_one(struct dv_db *db, const struct dv_migration *m,
               struct dv_err *err)
{
    static const char *const no_limit[] = {"0"};
    char vbuf[24], tbuf[32];
    const char *params[3];
    struct dv_err e;
    PGresult *res;

    dv_err_clear(&e);
    if (db_cmd(db, "BEGIN", 0, NULL, &e) < 0) {
        goto fail;
    }
    db->in_tx = 1;
    /* A migration may rewrite a large table: no statement_timeout here. */
    if (db_cmd(db, "SELECT set_config('statement_timeout', $1, true)", 1,
               no_limit, &e) < 0) {
        goto fail;
    }
    /* The migration text is our own SQL file embedded at build time, never
     * input, and holds several statements: the simple protocol runs it. */
    res = db_query(db, m->sql, 0, NULL, DB_SIMPLE, &e);
    if (res == NULL) {
        goto fail;
    }
    PQclear(res);
    params[0] = dv_db_i64(vbuf, m->version);
    params[1] = m->name;
    params[2] = dv_db_double(tbuf, dv_now());
    if (db_cmd(db,
               "INSERT INTO schema_migrations (version, name, applied_at) "
               "VALUES ($1, $2, to_timestamp($3))",
               3, params, &e) < 0) {
        goto fail;
    }
    if (db_cmd(db, "COMMIT", 0, NULL, &e) < 0) {
        goto fail;
    }
    db->in_tx = 0;
    log_notice("applied migration %s to database %s", m->name, db->desc);
    return 0;

fail:
    db->in_tx = 0;
    db_rollback(db);
    dv_err_set(err, e.kind, e.code, "could not apply migration %s: %s", m->name,
               e.msg);
    return -1;
}

int
dv_db_migrate(struct dv_db *db, int *applied, struct dv_err *err)
{
    static const char *const lock[] = {DB_MIGRATE_LOCK};
    PGresult *done = NULL;
    int i, n = 0, locked = 0, rc = -1;

    if (applied != NULL) {
        *applied = 0;
    }
    if (db->in_tx) {
        dv_err_set(err, DV_EINTERNAL, NULL,
                   "dv_db_migrate inside a "
                   "transaction");
        return -1;
    }
    if (dv_db_connect(db, err) < 0) {
        return -1;
    }
    /* Taken before CREATE TABLE IF NOT EXISTS, which itself races. */
    if (db_cmd(db, "SELECT pg_advisory_lock($1)", 1, lock, err) < 0) {
        goto out;
    }
    locked = 1;
    if (db_cmd(db,
               "CREATE TABLE IF NOT EXISTS schema_migrations ("
               "version int PRIMARY KEY, name text NOT NULL, "
               "applied_at timestamptz NOT NULL)",
               0, NULL, err) < 0) {
        goto out;
    }
    done =
        db_query(db, "SELECT version FROM schema_migrations", 0, NULL, 0, err);
    if (done == NULL) {
        goto out;
    }
    for (i = 0; i < dv_migrations_count; i++) {
        if (db_migration_applied(done, dv_migrations[i].version)) {
            continue;
        }
        if (db_migrate_one(db, &dv_migrations[i], err) < 0) {
            goto out;
        }
        n++;
    }
    rc = 0;

out:
    if (n > 0 && db->nstmts > 0 && dv_db_connected(db)) {
        /* Tables changed under statements prepared earlier. */
        struct dv_err e;

        if (db_cmd(db, "DEALLOCATE ALL", 0, NULL, &e) == 0) {
            db_stmts_clear(db);
        }
    }
    if (locked && dv_db_connected(db)) {
        struct dv_err e;

        if (db_cmd(db, "SELECT pg_advisory_unlock($1)", 1, lock, &e) < 0) {
            /* A session lock outliving us would block every migration. */
            db_lost(db, e.msg);
        }
    }
    PQclear(done);
    if (applied != NULL) {
        *applied = n;
    }
    return rc;
}

static int
db_col(const PGresult *res, int row, const char *name)
{
    int col = PQfnumber(res, name);

    assert(col >= 0 && "no such column in result");
    assert(row >= 0 && row < PQntuples(res));
    return col;
}

const char *
dv_db_get(const PGresult *res, int row, const char *name)
{
    int col = db_col(res, row, name);

    if (PQgetisnull(res, row, col)) {
        return NULL;
    }
    return PQgetvalue(res, row, col);
}

int64_t
dv_db_get_i64(const PGresult *res, int row, const char *name, int64_t def)
{
    const char *s = dv_db_get(res, row, name);
    int64_t v;

    if (s == NULL || dv_parse_i64(s, INT64_MIN, INT64_MAX, &v) < 0) {
        return def;
    }
    return v;
}

double
dv_db_get_double(const PGresult *res, int row, const char *name, double def)
{
    const char *s = dv_db_get(res, row, name);
    char *end = NULL;
    double v;

    if (s == NULL || *s == '\0') {
        return def;
    }
    errno = 0;
    v = strtod(s, &end);
    if (end == s || *end != '\0') {
        return def;
    }
    return v;
}

int
dv_db_get_bool(const PGresult *res, int row, const char *name, int def)
{
    const char *s = dv_db_get(res, row, name);
    int v;

    if (s == NULL || dv_parse_bool(s, &v) < 0) {
        return def;
    }
    return v;
}

int
dv_db_is_null(const PGresult *res, int row, const char *name)
{
    int col = db_col(res, row, name);

    return PQgetisnull(res, row, col);
}

const char *
dv_db_i64(char buf[24], int64_t v)
{
    snprintf(buf, 24, "%" PRId64, v);
    return buf;
}

const char *
dv_db_double(char buf[32], double v)
{
    if (isnan(v)) {
        dv_strlcpy(buf, "NaN", 32);
    } else if (isinf(v)) {
        dv_strlcpy(buf, v > 0 ? "Infinity" : "-Infinity", 32);
    } else {
        snprintf(buf, 32, "%.17g", v);
    }
    return buf;
}
