/*
 * PostgreSQL access on libpq: one struct dv_db is one connection, used by one
 * thread at a time. Parameterised statements only (text parameters, NULL
 * entries are SQL NULL). Connects with a multi-host conninfo and
 * target_session_attrs=read-write (added when the conninfo lacks it) so that
 * it follows a failover, with connect_timeout and TCP keepalives. Errors map
 * to kinds: DV_EDBCONN (connection lost or unreachable; the next call
 * reconnects), DV_ESERIAL (SQLSTATE 40001, 40P01), DV_ECONFLICT (23505,
 * code "duplicate"), DV_EDB (anything else; the SQLSTATE is in the message).
 */
#ifndef DV_DB_H
#define DV_DB_H

/* Debian keeps libpq's headers in /usr/include/postgresql (pkg-config
 * --cflags libpq); find them there when the build does not say so. */
#if defined(__has_include)
#if __has_include(<libpq-fe.h>)
#include <libpq-fe.h>
#else
#include <postgresql/libpq-fe.h>
#endif
#else
#include <libpq-fe.h>
#endif
#include <stdint.h>

#include "lib/err.h"

struct dv_db;

/* Returns a new, not yet connected handle (caller frees). application_name
 * is shown in pg_stat_activity. */
struct dv_db *dv_db_new(const char *conninfo, const char *application_name);
void dv_db_free(struct dv_db *db);
/* Connects, or reconnects when the connection is bad. Sets
 * idle_in_transaction_session_timeout and statement_timeout for the
 * session. Returns 0, or -1 with err set (DV_EDBCONN; DV_EINVAL when the
 * conninfo does not parse). Inside dv_db_tx's fn it never reconnects. */
int dv_db_connect(struct dv_db *db, struct dv_err *err);
/* True when connected and the connection is healthy. */
int dv_db_connected(const struct dv_db *db);
/* The underlying connection, or NULL (borrowed; for PQsocket). */
PGconn *dv_db_conn(struct dv_db *db);
/* Sets the client-side limit on one statement, commits included, in real
 * seconds (0: none). A statement over it is cancelled (PQcancel) and fails
 * with DV_ETIMEOUT. */
void dv_db_set_timeout(struct dv_db *db, double seconds);

/* Runs one statement, connecting first when needed (but not inside
 * dv_db_tx's fn: a lost connection there fails every later statement of the
 * attempt). sql should be fixed text: it is prepared once per connection,
 * keyed by its address. Returns a result with status PGRES_TUPLES_OK or
 * PGRES_COMMAND_OK (caller PQclears), or NULL with err set. */
PGresult *dv_db_exec(struct dv_db *db, const char *sql, int nparams,
                     const char *const *params, struct dv_err *err);
/* Runs a statement and discards its result. Returns the number of rows it
 * affected (0 for statements without a count), or -1 with err set. */
int64_t dv_db_exec_cmd(struct dv_db *db, const char *sql, int nparams,
                       const char *const *params, struct dv_err *err);

/* Work to do inside a transaction. It may run several times (after a
 * serialization failure or a lost connection), so it must have no effect
 * outside the database and must reset whatever it records in arg. Returns
 * 0, or -1 with err set; a retryable error makes dv_db_tx retry. */
typedef int (*dv_db_tx_fn)(struct dv_db *db, void *arg, struct dv_err *err);
/* Asked after the connection was lost during COMMIT, on a fresh connection:
 * returns 1 when the transaction's work is found committed (by an
 * idempotency key, a conditional state...), 0 when it is not, -1 with err
 * set on error. */
typedef int (*dv_db_in_doubt_fn)(struct dv_db *db, void *arg,
                                 struct dv_err *err);

enum dv_db_isolation {
    DV_DB_READ_COMMITTED = 0,
    DV_DB_REPEATABLE_READ,
    DV_DB_SERIALIZABLE,
};

/* Runs fn between BEGIN and COMMIT. Retries (with a short randomised
 * backoff, at most max_attempts times in all, 0 meaning 8) when fn or
 * COMMIT fails with DV_EDBCONN or DV_ESERIAL, reconnecting first when the
 * connection was lost. When the connection is lost during COMMIT, in_doubt
 * decides whether to rerun fn; with in_doubt NULL fn is rerun, so its
 * statements must be safe to repeat (conditional state transitions).
 * Rolls back on any failure. Returns 0, or -1 with err set. */
int dv_db_tx(struct dv_db *db, enum dv_db_isolation iso, dv_db_tx_fn fn,
             dv_db_in_doubt_fn in_doubt, void *arg, int max_attempts,
             struct dv_err *err);

/* LISTEN on channel (an identifier; not quoted by us, so use plain lower-
 * case names). Listens again on every channel after a reconnect. Returns 0
 * or -1. */
int dv_db_listen(struct dv_db *db, const char *channel, struct dv_err *err);
/* The socket to watch for notifications, or -1 when not connected. */
int dv_db_socket(struct dv_db *db);
typedef void (*dv_db_notify_cb)(const char *channel, const char *payload,
                                void *arg);
/* Reads what arrived on the socket and calls cb for each notification.
 * Returns how many there were, or -1 with err set (DV_EDBCONN: reconnect,
 * listen again, and assume notifications were missed). */
int dv_db_consume_notifies(struct dv_db *db, dv_db_notify_cb cb, void *arg,
                           struct dv_err *err);

/* Applies the embedded migrations (lib/migrations.h) that are not yet
 * recorded in schema_migrations, each in its own transaction, under an
 * advisory lock so that concurrent callers do not race. Idempotent.
 * *applied (may be NULL) receives how many were applied now. */
int dv_db_migrate(struct dv_db *db, int *applied, struct dv_err *err);

/* Result helpers: the value of column name in row, by PQfnumber. A missing
 * column is a bug (assert); SQL NULL gives NULL / def. */
const char *dv_db_get(const PGresult *res, int row, const char *name);
int64_t dv_db_get_i64(const PGresult *res, int row, const char *name,
                      int64_t def);
double dv_db_get_double(const PGresult *res, int row, const char *name,
                        double def);
int dv_db_get_bool(const PGresult *res, int row, const char *name, int def);
int dv_db_is_null(const PGresult *res, int row, const char *name);

/* Formats v into buf for use as a text parameter; returns buf. */
const char *dv_db_i64(char buf[24], int64_t v);
const char *dv_db_double(char buf[32], double v);

#endif
