/*
 * Tests for lib/db.c against a throwaway PostgreSQL started by
 * tests/lib/pg.sh: statements and result helpers, error mapping, dv_db_tx
 * retries (serialization failures, lost connections, in-doubt commits), the
 * client-side timeout, LISTEN/NOTIFY across a reconnect, multi-host
 * conninfo and migrations.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/db.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/migrations.h"
#include "lib/strutil.h"
#include "tests/unit/unit.h"

#define PG_SH "tests/lib/pg.sh"

static char pg_dir[64];
static char pg_sh[4096];
static char conninfo[512];
static char sockdir[256];
static char port[16];
static int watchdog_fd = -1;
static pid_t watchdog_pid = -1;

/* An autocommit connection for side effects (killing backends...). */
static struct dv_db *admin;

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs pg.sh CMD pg_dir in a child with stdout on fd out (-1: /dev/null). */
static pid_t
pg_spawn(const char *cmd, int out)
{
    char *const argv[] = {(char *)"bash", pg_sh, (char *)cmd, pg_dir, NULL};
    pid_t pid = fork();
    int fd;

    if (pid != 0) {
        return pid;
    }
    fd = out >= 0 ? out : open("/dev/null", O_WRONLY);
    if (fd >= 0 && fd != 1) {
        dup2(fd, 1);
    }
    execv("/bin/bash", argv);
    _exit(127);
}

/*
 * Starts a watchdog that destroys the cluster once this process is gone,
 * however it ends (a sanitizer abort runs no atexit handler): it waits for
 * end-of-file on a pipe whose only writer is this process.
 */
static int
watchdog_start(void)
{
    int p[2];
    char c;

    if (pipe2(p, O_CLOEXEC) < 0) {
        return -1;
    }
    watchdog_pid = fork();
    if (watchdog_pid < 0) {
        return -1;
    }
    if (watchdog_pid == 0) {
        signal(SIGTERM, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        close(p[1]);
        while (read(p[0], &c, 1) != 0 && errno == EINTR) {
        }
        close(p[0]);
        pid_t pid = pg_spawn("destroy", -1);
        int st;
        if (pid > 0) {
            waitpid(pid, &st, 0);
        }
        _exit(0);
    }
    close(p[0]);
    watchdog_fd = p[1];
    return 0;
}

static int
pg_start(void)
{
    char buf[512];
    size_t len = 0;
    ssize_t n;
    int p[2], st;
    pid_t pid;
    PQconninfoOption *opts, *o;

    if (realpath(PG_SH, pg_sh) == NULL) {
        fprintf(stderr, "cannot find %s: run from the repository root\n",
                PG_SH);
        return -1;
    }
    dv_strlcpy(pg_dir, "/tmp/drover-test-db.XXXXXX", sizeof(pg_dir));
    if (mkdtemp(pg_dir) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    if (watchdog_start() < 0 || pipe2(p, O_CLOEXEC) < 0) {
        perror("pipe");
        return -1;
    }
    pid = pg_spawn("start", p[1]);
    close(p[1]);
    for (;;) {
        n = read(p[0], buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
        if (len == sizeof(buf) - 1) {
            break;
        }
    }
    close(p[0]);
    buf[len] = '\0';
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "pg.sh start failed\n");
        return -1;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
        buf[--len] = '\0';
    }
    dv_strlcpy(conninfo, buf, sizeof(conninfo));
    opts = PQconninfoParse(conninfo, NULL);
    if (opts == NULL) {
        fprintf(stderr, "pg.sh printed a bad conninfo: %s\n", conninfo);
        return -1;
    }
    for (o = opts; o->keyword != NULL; o++) {
        if (o->val != NULL && strcmp(o->keyword, "host") == 0) {
            dv_strlcpy(sockdir, o->val, sizeof(sockdir));
        }
        if (o->val != NULL && strcmp(o->keyword, "port") == 0) {
            dv_strlcpy(port, o->val, sizeof(port));
        }
    }
    PQconninfoFree(opts);
    return 0;
}

static void
pg_stop(void)
{
    int st;

    if (watchdog_fd >= 0) {
        close(watchdog_fd);
        watchdog_fd = -1;
        waitpid(watchdog_pid, &st, 0);
    }
}

static struct dv_db *
connect_new(const char *ci)
{
    struct dv_db *db = dv_db_new(ci, "test-db");
    struct dv_err err;

    if (dv_db_connect(db, &err) < 0) {
        fprintf(stderr, "connect: %s\n", err.msg);
    }
    return db;
}

/* Runs sql on admin; 0 or -1. */
static int
admin_cmd(const char *sql, int n, const char *const *params)
{
    struct dv_err err;

    if (dv_db_exec_cmd(admin, sql, n, params, &err) < 0) {
        fprintf(stderr, "admin: %s: %s\n", sql, err.msg);
        return -1;
    }
    return 0;
}

static int64_t
query_i64(struct dv_db *db, const char *sql, int n, const char *const *params)
{
    struct dv_err err;
    PGresult *res = dv_db_exec(db, sql, n, params, &err);
    int64_t v;

    if (res == NULL) {
        fprintf(stderr, "query: %s: %s\n", sql, err.msg);
        return -1;
    }
    v = PQntuples(res) > 0 ? dv_db_get_i64(res, 0, PQfname(res, 0), -2) : -3;
    PQclear(res);
    return v;
}

static int64_t
backend_pid(struct dv_db *db)
{
    return query_i64(db, "SELECT pg_backend_pid() AS pid", 0, NULL);
}

/* Terminates db's backend from admin and waits until it is gone. */
static void
kill_backend(int64_t pid)
{
    char buf[24];
    const char *p[] = {dv_db_i64(buf, pid)};

    CHECK_INT(admin_cmd("SELECT pg_terminate_backend($1, 5000)", 1, p), 0);
}

static void
test_connect_options(void)
{
    struct dv_db *db = connect_new(conninfo);
    struct dv_err err;
    PQconninfoOption *used, *o;
    PGresult *res;
    int seen = 0;

    CHECK(dv_db_connected(db));
    CHECK(dv_db_socket(db) >= 0);
    res = dv_db_exec(db,
                     "SELECT current_setting('statement_timeout') AS st, "
                     "current_setting('idle_in_transaction_session_timeout') "
                     "AS idle, current_setting('application_name') AS app",
                     0, NULL, &err);
    CHECK(res != NULL);
    if (res != NULL) {
        CHECK_STR(dv_db_get(res, 0, "st"), "1min");
        CHECK_STR(dv_db_get(res, 0, "idle"), "1min");
        CHECK_STR(dv_db_get(res, 0, "app"), "test-db");
        PQclear(res);
    }
    used = PQconninfo(dv_db_conn(db));
    for (o = used; o != NULL && o->keyword != NULL; o++) {
        if (o->val == NULL) {
            continue;
        }
        if (strcmp(o->keyword, "target_session_attrs") == 0) {
            CHECK_STR(o->val, "read-write");
            seen++;
        } else if (strcmp(o->keyword, "connect_timeout") == 0) {
            CHECK_STR(o->val, "5");
            seen++;
        } else if (strcmp(o->keyword, "keepalives_idle") == 0) {
            CHECK_STR(o->val, "10");
            seen++;
        } else if (strcmp(o->keyword, "tcp_user_timeout") == 0) {
            CHECK_STR(o->val, "15000");
            seen++;
        }
    }
    CHECK_INT(seen, 4);
    PQconninfoFree(used);
    dv_db_free(db);

    /* What the conninfo says wins over our defaults. */
    char ci[700];
    snprintf(ci, sizeof(ci), "%s target_session_attrs=any connect_timeout=7",
             conninfo);
    db = connect_new(ci);
    used = PQconninfo(dv_db_conn(db));
    for (o = used; o != NULL && o->keyword != NULL; o++) {
        if (o->val != NULL && strcmp(o->keyword, "target_session_attrs") == 0) {
            CHECK_STR(o->val, "any");
        }
        if (o->val != NULL && strcmp(o->keyword, "connect_timeout") == 0) {
            CHECK_STR(o->val, "7");
        }
    }
    PQconninfoFree(used);
    dv_db_free(db);
}

static void
test_connect_errors(void)
{
    struct dv_db *db;
    struct dv_err err;
    char ci[700];

    db = dv_db_new("host=/nonexistent port=", NULL);
    dv_db_free(db); /* never connected: frees cleanly */

    db = dv_db_new("this is not a conninfo", NULL);
    CHECK_INT(dv_db_connect(db, &err), -1);
    CHECK_INT(err.kind, DV_EINVAL);
    dv_db_free(db);

    snprintf(ci, sizeof(ci),
             "host=127.0.0.1 port=1 dbname=drover user=postgres "
             "password=sekrit");
    db = dv_db_new(ci, "test-db");
    CHECK_INT(dv_db_connect(db, &err), -1);
    CHECK_INT(err.kind, DV_EDBCONN);
    CHECK_STR(err.code, "database_unavailable");
    CHECK(strstr(err.msg, "sekrit") == NULL);
    CHECK(!dv_db_connected(db));
    CHECK_INT(dv_db_socket(db), -1);
    /* dv_db_exec connects first and reports the same */
    CHECK(dv_db_exec(db, "SELECT 1", 0, NULL, &err) == NULL);
    CHECK_INT(err.kind, DV_EDBCONN);
    dv_db_free(db);
}

static void
test_multi_host(void)
{
    char ci[700];
    struct dv_db *db;

    /* The first host refuses; the second is our socket. */
    snprintf(ci, sizeof(ci),
             "host=127.0.0.1,%s port=1,%s dbname=drover user=postgres", sockdir,
             port);
    db = connect_new(ci);
    CHECK(dv_db_connected(db));
    if (dv_db_connected(db)) {
        CHECK_STR(PQport(dv_db_conn(db)), port);
        CHECK_STR(PQhost(dv_db_conn(db)), sockdir);
    }
    CHECK(query_i64(db, "SELECT 1 AS one", 0, NULL) == 1);
    dv_db_free(db);

    /* The same as a URI. */
    snprintf(ci, sizeof(ci),
             "postgresql://postgres@127.0.0.1:1,localhost:%s/drover?host=127."
             "0.0.1,%s",
             port, sockdir);
    db = connect_new(ci);
    CHECK(dv_db_connected(db));
    dv_db_free(db);
}

static void
test_exec_params(void)
{
    struct dv_db *db = dv_db_new(conninfo, "test-db");
    const char *p[] = {"42", NULL, "x'); DROP TABLE t; --", "1.5", "true"};
    struct dv_err err;
    PGresult *res;
    char ibuf[24], dbuf[32];

    /* dv_db_exec connects by itself */
    res = dv_db_exec(db,
                     "SELECT $1::bigint AS a, $2::text AS b, $3::text AS c, "
                     "$4::float8 AS d, $5::boolean AS e, $2::int IS NULL AS "
                     "f, NULL::float8 AS g",
                     5, p, &err);
    CHECK(res != NULL);
    if (res != NULL) {
        CHECK_INT(PQresultStatus(res), PGRES_TUPLES_OK);
        CHECK_INT(dv_db_get_i64(res, 0, "a", -1), 42);
        CHECK(dv_db_get(res, 0, "b") == NULL);
        CHECK(dv_db_is_null(res, 0, "b"));
        CHECK(!dv_db_is_null(res, 0, "a"));
        CHECK_INT(dv_db_get_i64(res, 0, "b", -7), -7);
        CHECK_STR(dv_db_get(res, 0, "c"), "x'); DROP TABLE t; --");
        CHECK(dv_db_get_double(res, 0, "d", 0) == 1.5);
        CHECK(dv_db_get_double(res, 0, "g", 2.5) == 2.5);
        CHECK_INT(dv_db_get_bool(res, 0, "e", 0), 1);
        CHECK_INT(dv_db_get_bool(res, 0, "f", 0), 1);
        CHECK_INT(dv_db_get_bool(res, 0, "b", -1), -1);
        PQclear(res);
    }

    CHECK_INT(dv_db_exec_cmd(db,
                             "CREATE TABLE ex (id int PRIMARY KEY, v text, "
                             "n bigint, x float8)",
                             0, NULL, &err),
              0);
    for (int i = 1; i <= 3; i++) {
        const char *q[] = {dv_db_i64(ibuf, i), i == 2 ? NULL : "v",
                           dv_db_i64(dbuf, INT64_MIN + i)};
        CHECK_INT(dv_db_exec_cmd(db,
                                 "INSERT INTO ex (id, v, n) VALUES ($1, "
                                 "$2, $3)",
                                 3, q, &err),
                  1);
    }
    CHECK_INT(dv_db_exec_cmd(db, "UPDATE ex SET v = 'w' WHERE v IS NOT NULL", 0,
                             NULL, &err),
              2);
    res = dv_db_exec(db, "SELECT id, v, n FROM ex ORDER BY id", 0, NULL, &err);
    CHECK(res != NULL);
    if (res != NULL) {
        CHECK_INT(PQntuples(res), 3);
        CHECK_INT(dv_db_get_i64(res, 0, "n", 0), INT64_MIN + 1);
        CHECK(dv_db_get(res, 1, "v") == NULL);
        CHECK_STR(dv_db_get(res, 2, "v"), "w");
        PQclear(res);
    }

    /* Number formatting round-trips through the server. */
    const char *d[] = {dv_db_double(dbuf, 0.1), dv_db_i64(ibuf, INT64_MAX)};
    res = dv_db_exec(db,
                     "SELECT $1::float8 = 0.1::float8 AS same, "
                     "$2::bigint = 9223372036854775807 AS max",
                     2, d, &err);
    CHECK(res != NULL);
    if (res != NULL) {
        CHECK_INT(dv_db_get_bool(res, 0, "same", 0), 1);
        CHECK_INT(dv_db_get_bool(res, 0, "max", 0), 1);
        PQclear(res);
    }
    CHECK_STR(dv_db_double(dbuf, 1.0 / 0.0), "Infinity");
    CHECK_STR(dv_db_i64(ibuf, -5), "-5");
    dv_db_free(db);
}

static void
test_prepared_cache(void)
{
    static const char sql[] = "SELECT $1::int + 1 AS v";
    struct dv_db *db = connect_new(conninfo);
    const char *p[] = {"1"};
    char *buf;

    CHECK_INT(query_i64(db, sql, 1, p), 2);
    CHECK_INT(query_i64(db, sql, 1, p), 2);
    CHECK_INT(query_i64(db,
                        "SELECT count(*) AS n FROM pg_prepared_statements "
                        "WHERE statement = 'SELECT $1::int + 1 AS v'",
                        0, NULL),
              1);

    /* Other text at an address seen before is not mistaken for it. */
    buf = dv_xstrdup("SELECT $1::int + 10 AS v");
    CHECK_INT(query_i64(db, buf, 1, p), 11);
    snprintf(buf, strlen(buf) + 1, "SELECT $1::int + 20 AS v");
    CHECK_INT(query_i64(db, buf, 1, p), 21);
    free(buf);

    /* A table changed under a prepared SELECT *: retryable, then fine. */
    static const char star[] = "SELECT * FROM chg";
    struct dv_err err;
    PGresult *res;
    CHECK_INT(admin_cmd("CREATE TABLE chg (a int)", 0, NULL), 0);
    res = dv_db_exec(db, star, 0, NULL, &err);
    CHECK(res != NULL);
    PQclear(res);
    CHECK_INT(admin_cmd("ALTER TABLE chg ADD COLUMN b int", 0, NULL), 0);
    res = dv_db_exec(db, star, 0, NULL, &err);
    CHECK(res == NULL);
    CHECK_INT(err.kind, DV_ESERIAL);
    PQclear(res);
    res = dv_db_exec(db, star, 0, NULL, &err);
    CHECK(res != NULL);
    if (res != NULL) {
        CHECK_INT(PQnfields(res), 2);
        PQclear(res);
    }
    dv_db_free(db);
}

static void
test_errors(void)
{
    struct dv_db *db = connect_new(conninfo);
    const char *p[] = {"k1"};
    struct dv_err err;

    CHECK_INT(dv_db_exec_cmd(db, "CREATE TABLE uq (k text PRIMARY KEY)", 0,
                             NULL, &err),
              0);
    CHECK_INT(dv_db_exec_cmd(db, "INSERT INTO uq VALUES ($1)", 1, p, &err), 1);
    CHECK_INT(dv_db_exec_cmd(db, "INSERT INTO uq VALUES ($1)", 1, p, &err), -1);
    CHECK_INT(err.kind, DV_ECONFLICT);
    CHECK_STR(err.code, "duplicate");
    CHECK(dv_str_has_prefix(err.msg, "database error 23505: duplicate key"));

    CHECK(dv_db_exec(db, "SELECT * FROM no_such_table", 0, NULL, &err) == NULL);
    CHECK_INT(err.kind, DV_EDB);
    CHECK_STR(err.code, "database_error");
    CHECK_STR(err.msg,
              "database error 42P01: relation \"no_such_table\" does not "
              "exist");

    CHECK(dv_db_exec(db, "SELEC 1", 0, NULL, &err) == NULL);
    CHECK_INT(err.kind, DV_EDB);
    CHECK(dv_str_has_prefix(err.msg, "database error 42601: "));

    CHECK(dv_db_exec(db,
                     "DO $$ BEGIN RAISE EXCEPTION 'boom' USING ERRCODE = "
                     "'40P01'; END $$",
                     0, NULL, &err) == NULL);
    CHECK_INT(err.kind, DV_ESERIAL);

    /* A read-only transaction (a standby after failover): reconnect. */
    CHECK(dv_db_exec(db,
                     "DO $$ BEGIN RAISE EXCEPTION 'ro' USING ERRCODE = "
                     "'25006'; END $$",
                     0, NULL, &err) == NULL);
    CHECK_INT(err.kind, DV_EDBCONN);
    CHECK_STR(err.code, "database_unavailable");
    CHECK(!dv_db_connected(db));
    CHECK_INT(query_i64(db, "SELECT 7 AS v", 0, NULL), 7);
    CHECK(dv_db_connected(db));

    /* Connection loss outside a transaction: reported, then reconnected. */
    kill_backend(backend_pid(db));
    CHECK(dv_db_exec(db, "SELECT 1", 0, NULL, &err) == NULL);
    CHECK_INT(err.kind, DV_EDBCONN);
    CHECK_INT(query_i64(db, "SELECT 8 AS v", 0, NULL), 8);
    dv_db_free(db);
}

/* --- transactions --- */

struct txarg {
    int calls;
    int in_doubt_calls;
    int in_doubt_answer;
    int mode;
    int guard_ok;
    const char *key;
};

enum {
    TX_FORCED_SERIAL,
    TX_REAL_SERIAL,
    TX_KILL_MID,
    TX_KILL_BEFORE_COMMIT,
    TX_CONFLICT,
};

static int
tx_fn(struct dv_db *db, void *argp, struct dv_err *err)
{
    struct txarg *a = argp;
    const char *p[] = {a->key};
    PGresult *res;

    a->calls++;
    if (dv_db_exec_cmd(db, "INSERT INTO txt (k) VALUES ($1)", 1, p, err) < 0) {
        return -1;
    }
    switch (a->mode) {
    case TX_FORCED_SERIAL:
        if (a->calls == 1 &&
            dv_db_exec_cmd(db,
                           "DO $$ BEGIN RAISE EXCEPTION 'forced' USING "
                           "ERRCODE = '40001'; END $$",
                           0, NULL, err) < 0) {
            return -1;
        }
        break;
    case TX_REAL_SERIAL:
        /* Read the counter, let another session change it, then write. */
        res = dv_db_exec(db, "SELECT v FROM ctr WHERE id = 1", 0, NULL, err);
        if (res == NULL) {
            return -1;
        }
        PQclear(res);
        if (a->calls == 1 &&
            admin_cmd("UPDATE ctr SET v = v + 100 WHERE id = 1", 0, NULL) < 0) {
            return -1;
        }
        if (dv_db_exec_cmd(db, "UPDATE ctr SET v = v + 1 WHERE id = 1", 0, NULL,
                           err) < 0) {
            return -1;
        }
        break;
    case TX_KILL_MID:
        if (a->calls == 1) {
            kill_backend(backend_pid(db));
            /* The statement fails; the next one must not reconnect and
             * run outside the transaction. */
            if (dv_db_exec_cmd(db, "SELECT 1", 0, NULL, err) == -1 &&
                err->kind == DV_EDBCONN &&
                dv_db_exec_cmd(db, "SELECT 1", 0, NULL, err) == -1 &&
                err->kind == DV_EDBCONN && !dv_db_connected(db)) {
                a->guard_ok = 1;
            }
        }
        if (dv_db_exec_cmd(db, "INSERT INTO txt (k) VALUES ($1 || '-2')", 1, p,
                           err) < 0) {
            return -1;
        }
        break;
    case TX_KILL_BEFORE_COMMIT:
        /* The last statement is done: lose the connection so that the
         * COMMIT that follows finds it gone. */
        if (a->calls == 1) {
            kill_backend(backend_pid(db));
        }
        break;
    case TX_CONFLICT:
        dv_err_set(err, DV_ECONFLICT, "job_not_queued", "not queued");
        return -1;
    }
    return 0;
}

static int
tx_in_doubt(struct dv_db *db, void *argp, struct dv_err *err)
{
    struct txarg *a = argp;
    const char *p[] = {a->key};
    PGresult *res;
    int found;

    a->in_doubt_calls++;
    res =
        dv_db_exec(db, "SELECT count(*) AS n FROM txt WHERE k = $1", 1, p, err);
    if (res == NULL) {
        return -1;
    }
    found = dv_db_get_i64(res, 0, "n", 0) > 0;
    PQclear(res);
    return a->in_doubt_answer >= 0 ? a->in_doubt_answer : found;
}

static int64_t
txt_count(const char *key)
{
    const char *p[] = {key};

    return query_i64(admin, "SELECT count(*) AS n FROM txt WHERE k LIKE $1", 1,
                     p);
}

static void
test_tx_setup(void)
{
    CHECK_INT(admin_cmd("CREATE TABLE txt (k text NOT NULL)", 0, NULL), 0);
    CHECK_INT(
        admin_cmd("CREATE TABLE ctr (id int PRIMARY KEY, v int)", 0, NULL), 0);
    CHECK_INT(admin_cmd("INSERT INTO ctr VALUES (1, 0)", 0, NULL), 0);
}

static void
test_tx_forced_serialization(void)
{
    struct dv_db *db = connect_new(conninfo);
    struct txarg a = {.mode = TX_FORCED_SERIAL, .key = "forced"};
    struct dv_err err;

    CHECK_INT(dv_db_tx(db, DV_DB_READ_COMMITTED, tx_fn, NULL, &a, 0, &err), 0);
    CHECK_INT(a.calls, 2);
    CHECK_INT(txt_count("forced"), 1);
    dv_db_free(db);
}

static void
test_tx_real_serialization(void)
{
    struct dv_db *db = connect_new(conninfo);
    struct txarg a = {.mode = TX_REAL_SERIAL, .key = "real"};
    struct dv_err err;

    CHECK_INT(dv_db_tx(db, DV_DB_SERIALIZABLE, tx_fn, NULL, &a, 0, &err), 0);
    CHECK_INT(a.calls, 2);
    CHECK_INT(txt_count("real"), 1);
    CHECK_INT(query_i64(admin, "SELECT v FROM ctr WHERE id = 1", 0, NULL), 101);

    /* With one attempt allowed the failure comes back. */
    a.calls = 0;
    a.key = "real1";
    CHECK_INT(dv_db_tx(db, DV_DB_REPEATABLE_READ, tx_fn, NULL, &a, 1, &err),
              -1);
    CHECK_INT(err.kind, DV_ESERIAL);
    CHECK_INT(a.calls, 1);
    CHECK_INT(txt_count("real1"), 0);
    CHECK(dv_db_connected(db));
    dv_db_free(db);
}

static void
test_tx_not_retried(void)
{
    struct dv_db *db = connect_new(conninfo);
    struct txarg a = {.mode = TX_CONFLICT, .key = "conflict"};
    struct dv_err err;

    CHECK_INT(dv_db_tx(db, DV_DB_READ_COMMITTED, tx_fn, NULL, &a, 0, &err), -1);
    CHECK_INT(err.kind, DV_ECONFLICT);
    CHECK_STR(err.code, "job_not_queued");
    CHECK_INT(a.calls, 1);
    CHECK_INT(txt_count("conflict"), 0); /* rolled back */
    CHECK(dv_db_connected(db));
    CHECK_INT(PQtransactionStatus(dv_db_conn(db)), PQTRANS_IDLE);
    dv_db_free(db);
}

static void
test_tx_connection_lost(void)
{
    struct dv_db *db = connect_new(conninfo);
    struct txarg a = {.mode = TX_KILL_MID, .key = "mid"};
    struct dv_err err;

    CHECK_INT(dv_db_tx(db, DV_DB_READ_COMMITTED, tx_fn, NULL, &a, 0, &err), 0);
    CHECK_INT(a.calls, 2);
    CHECK_INT(txt_count("mid"), 1);
    CHECK_INT(txt_count("mid-2"), 1);
    CHECK_INT(a.guard_ok, 1);
    dv_db_free(db);
}

static void
test_tx_in_doubt(void)
{
    struct dv_db *db = connect_new(conninfo);
    struct txarg a = {
        .mode = TX_KILL_BEFORE_COMMIT, .key = "doubt", .in_doubt_answer = -1};
    struct dv_err err;

    /* The killed transaction did not commit: in_doubt says so, fn reruns. */
    CHECK_INT(
        dv_db_tx(db, DV_DB_READ_COMMITTED, tx_fn, tx_in_doubt, &a, 0, &err), 0);
    CHECK_INT(a.in_doubt_calls, 1);
    CHECK_INT(a.calls, 2);
    CHECK_INT(txt_count("doubt"), 1);

    /* in_doubt finds it committed: fn does not run again. */
    struct txarg b = {
        .mode = TX_KILL_BEFORE_COMMIT, .key = "doubt1", .in_doubt_answer = 1};
    CHECK_INT(
        dv_db_tx(db, DV_DB_READ_COMMITTED, tx_fn, tx_in_doubt, &b, 0, &err), 0);
    CHECK_INT(b.in_doubt_calls, 1);
    CHECK_INT(b.calls, 1);

    /* Without in_doubt fn simply runs again. */
    struct txarg c = {.mode = TX_KILL_BEFORE_COMMIT, .key = "doubt2"};
    CHECK_INT(dv_db_tx(db, DV_DB_READ_COMMITTED, tx_fn, NULL, &c, 0, &err), 0);
    CHECK_INT(c.calls, 2);
    CHECK_INT(txt_count("doubt2"), 1);

    /* Out of attempts while in doubt: the caller hears DV_EDBCONN. */
    struct txarg d = {
        .mode = TX_KILL_BEFORE_COMMIT, .key = "doubt3", .in_doubt_answer = -1};
    CHECK_INT(
        dv_db_tx(db, DV_DB_READ_COMMITTED, tx_fn, tx_in_doubt, &d, 1, &err),
        -1);
    CHECK_INT(err.kind, DV_EDBCONN);
    CHECK_INT(d.in_doubt_calls, 0);
    dv_db_free(db);
}

static void
test_timeout(void)
{
    struct dv_db *db = connect_new(conninfo);
    struct dv_err err;
    int64_t pid = backend_pid(db);
    double t0;

    dv_db_set_timeout(db, 0.3);
    t0 = now_s();
    CHECK(dv_db_exec(db, "SELECT pg_sleep(10)", 0, NULL, &err) == NULL);
    CHECK_INT(err.kind, DV_ETIMEOUT);
    CHECK(now_s() - t0 < 3.0);
    /* The same connection goes on. */
    CHECK(dv_db_connected(db));
    CHECK_INT(backend_pid(db), pid);
    CHECK_INT(query_i64(db, "SELECT 5 AS v", 0, NULL), 5);

    /* Inside a transaction: not retried, rolled back, still connected. */
    dv_db_set_timeout(db, 0);
    CHECK_INT(query_i64(db, "SELECT 6 AS v", 0, NULL), 6);
    dv_db_free(db);
}

static int
sleepy_fn(struct dv_db *db, void *argp, struct dv_err *err)
{
    int *calls = argp;

    (*calls)++;
    return dv_db_exec_cmd(db, "SELECT pg_sleep(10)", 0, NULL, err) < 0 ? -1 : 0;
}

static void
test_timeout_in_tx(void)
{
    struct dv_db *db = connect_new(conninfo);
    struct dv_err err;
    int calls = 0;

    dv_db_set_timeout(db, 0.2);
    CHECK_INT(
        dv_db_tx(db, DV_DB_READ_COMMITTED, sleepy_fn, NULL, &calls, 0, &err),
        -1);
    CHECK_INT(err.kind, DV_ETIMEOUT);
    CHECK_INT(calls, 1);
    CHECK(dv_db_connected(db));
    CHECK_INT(PQtransactionStatus(dv_db_conn(db)), PQTRANS_IDLE);
    dv_db_free(db);
}

static int
syncrep_fn(struct dv_db *db, void *argp, struct dv_err *err)
{
    struct txarg *a = argp;
    const char *p[] = {a->key};

    a->calls++;
    if (dv_db_exec_cmd(db, "SET LOCAL synchronous_commit = on", 0, NULL, err) <
        0) {
        return -1;
    }
    return dv_db_exec_cmd(db, "INSERT INTO txt (k) VALUES ($1)", 1, p, err) < 0
               ? -1
               : 0;
}

/*
 * A COMMIT waiting for a synchronous standby that never answers: the
 * client-side timeout cancels the wait, PostgreSQL answers with a warning
 * and the commit stays local, which dv_db_tx must treat as in doubt.
 */
static void
test_tx_syncrep_cancel(void)
{
    struct dv_db *db = connect_new(conninfo);
    struct txarg a = {.key = "syncrep", .in_doubt_answer = -1};
    struct dv_err err;
    double t0 = 0;
    int active = 0, i;

    CHECK_INT(admin_cmd("ALTER SYSTEM SET synchronous_standby_names = "
                        "'nobody'",
                        0, NULL),
              0);
    CHECK_INT(admin_cmd("SELECT pg_reload_conf()", 0, NULL), 0);
    /* The setting reaches backends through the checkpointer: wait until a
     * synchronous commit blocks. */
    dv_db_set_timeout(db, 0.2);
    CHECK_INT(dv_db_exec_cmd(db, "SET synchronous_commit = on", 0, NULL, &err),
              0);
    for (i = 0; i < 50 && !active; i++) {
        t0 = now_s();
        dv_db_exec_cmd(db, "INSERT INTO txt (k) VALUES ('probe')", 0, NULL,
                       &err);
        active = now_s() - t0 >= 0.2;
        if (!active) {
            usleep(100000);
        }
    }
    CHECK(active);
    CHECK_INT(dv_db_exec_cmd(db, "SET synchronous_commit = off", 0, NULL, &err),
              0);

    dv_db_set_timeout(db, 0.3);
    CHECK_INT(dv_db_tx(db, DV_DB_READ_COMMITTED, syncrep_fn, tx_in_doubt, &a, 0,
                       &err),
              0);
    CHECK_INT(a.calls, 1);
    CHECK_INT(a.in_doubt_calls, 1);
    CHECK_INT(txt_count("syncrep"), 1);

    CHECK_INT(
        admin_cmd("ALTER SYSTEM RESET synchronous_standby_names", 0, NULL), 0);
    CHECK_INT(admin_cmd("SELECT pg_reload_conf()", 0, NULL), 0);
    dv_db_free(db);
}

static void
test_tx_unreachable(void)
{
    struct dv_db *db =
        dv_db_new("host=127.0.0.1 port=1 dbname=drover", "test-db");
    struct txarg a = {.mode = TX_CONFLICT, .key = "never"};
    struct dv_err err;
    double t0 = now_s();

    CHECK_INT(dv_db_tx(db, DV_DB_READ_COMMITTED, tx_fn, NULL, &a, 0, &err), -1);
    CHECK_INT(err.kind, DV_EDBCONN);
    CHECK_INT(a.calls, 0);
    CHECK(now_s() - t0 < 5.0);
    dv_db_free(db);
}

/* --- LISTEN/NOTIFY --- */

struct notes {
    int n;
    char channel[64];
    char payload[64];
};

static void
note_cb(const char *channel, const char *payload, void *arg)
{
    struct notes *ns = arg;

    ns->n++;
    dv_strlcpy(ns->channel, channel, sizeof(ns->channel));
    dv_strlcpy(ns->payload, payload, sizeof(ns->payload));
}

/* Waits up to 5 s for notifications or a failure; returns the last
 * dv_db_consume_notifies result. */
static int
wait_notes(struct dv_db *db, struct notes *ns, struct dv_err *err)
{
    double end = now_s() + 5;
    struct pollfd pfd;
    int r = 0;

    while (now_s() < end) {
        pfd.fd = dv_db_socket(db);
        pfd.events = POLLIN;
        if (pfd.fd < 0) {
            return -1;
        }
        if (poll(&pfd, 1, 100) > 0) {
            r = dv_db_consume_notifies(db, note_cb, ns, err);
            if (r != 0) {
                return r;
            }
        }
    }
    return r;
}

static void
test_listen_notify(void)
{
    struct dv_db *db = connect_new(conninfo);
    struct notes ns = {0};
    const char *p[] = {"dv_test", "hello"};
    struct dv_err err;

    CHECK_INT(dv_db_listen(db, "Bad-Name", &err), -1);
    CHECK_INT(err.kind, DV_EINVAL);
    CHECK_INT(dv_db_listen(db, "x; DROP TABLE txt", &err), -1);
    CHECK_INT(dv_db_listen(db, "dv_test", &err), 0);
    CHECK_INT(dv_db_listen(db, "dv_test", &err), 0); /* once is enough */
    CHECK_INT(dv_db_listen(db, "dv_other", &err), 0);
    CHECK_INT(admin_cmd("SELECT pg_notify($1, $2)", 2, p), 0);
    CHECK_INT(wait_notes(db, &ns, &err), 1);
    CHECK_INT(ns.n, 1);
    CHECK_STR(ns.channel, "dv_test");
    CHECK_STR(ns.payload, "hello");

    /* The backend goes away: the loss is reported, a reconnect listens
     * again on both channels. */
    kill_backend(backend_pid(db));
    CHECK_INT(wait_notes(db, &ns, &err), -1);
    CHECK_INT(err.kind, DV_EDBCONN);
    CHECK_INT(dv_db_socket(db), -1);
    CHECK_INT(dv_db_connect(db, &err), 0);
    CHECK_INT(query_i64(db,
                        "SELECT count(*) AS n FROM pg_listening_channels() c "
                        "WHERE c IN ('dv_test', 'dv_other')",
                        0, NULL),
              2);
    p[0] = "dv_other";
    p[1] = "again";
    CHECK_INT(admin_cmd("SELECT pg_notify($1, $2)", 2, p), 0);
    CHECK_INT(wait_notes(db, &ns, &err), 1);
    CHECK_INT(ns.n, 2);
    CHECK_STR(ns.channel, "dv_other");
    CHECK_STR(ns.payload, "again");
    dv_db_free(db);

    /* Listening before connecting connects. */
    db = dv_db_new(conninfo, "test-db");
    CHECK_INT(dv_db_listen(db, "dv_test", &err), 0);
    CHECK(dv_db_connected(db));
    dv_db_free(db);
}

/* --- migrations --- */

static int64_t
migration_rows(struct dv_db *db)
{
    return query_i64(db, "SELECT count(*) AS n FROM schema_migrations", 0,
                     NULL);
}

static void
test_migrate(void)
{
    struct dv_db *db = connect_new(conninfo);
    struct dv_err err;
    int applied = -1;

    CHECK_INT(dv_db_migrate(db, &applied, &err), 0);
    CHECK_INT(applied, dv_migrations_count);
    CHECK_INT(migration_rows(db), dv_migrations_count);
    if (dv_migrations_count > 0) {
        const char *p[] = {dv_migrations[0].name};
        CHECK_INT(query_i64(db,
                            "SELECT count(*) AS n FROM schema_migrations "
                            "WHERE name = $1 AND applied_at > "
                            "'2020-01-01'::timestamptz",
                            1, p),
                  1);
    }
    /* Again: nothing to do. */
    applied = -1;
    CHECK_INT(dv_db_migrate(db, &applied, &err), 0);
    CHECK_INT(applied, 0);
    CHECK_INT(migration_rows(db), dv_migrations_count);
    CHECK_INT(dv_db_migrate(db, NULL, &err), 0);
    /* The advisory lock was released. */
    CHECK_INT(query_i64(admin,
                        "SELECT count(*) AS n FROM pg_locks WHERE locktype = "
                        "'advisory'",
                        0, NULL),
              0);
    dv_db_free(db);
}

struct migrator {
    char conninfo[700];
    int rc;
    int applied;
};

static void *
migrate_thread(void *argp)
{
    struct migrator *m = argp;
    struct dv_db *db = dv_db_new(m->conninfo, "test-db-migrate");
    struct dv_err err;

    m->rc = dv_db_migrate(db, &m->applied, &err);
    if (m->rc < 0) {
        fprintf(stderr, "migrate: %s\n", err.msg);
    }
    dv_db_free(db);
    return NULL;
}

static void
test_migrate_concurrent(void)
{
    struct migrator m[2];
    pthread_t t[2];
    struct dv_db *db;
    int i, round;

    for (round = 0; round < 3; round++) {
        char name[32], create[64];

        /* CREATE DATABASE takes no parameters: the name is ours. */
        snprintf(name, sizeof(name), "mig_%d", round);
        snprintf(create, sizeof(create), "CREATE DATABASE %s", name);
        CHECK_INT(admin_cmd(create, 0, NULL), 0);
        for (i = 0; i < 2; i++) {
            snprintf(m[i].conninfo, sizeof(m[i].conninfo), "%s dbname=%s",
                     conninfo, name);
            m[i].rc = -1;
            m[i].applied = -1;
        }
        for (i = 0; i < 2; i++) {
            CHECK_INT(pthread_create(&t[i], NULL, migrate_thread, &m[i]), 0);
        }
        for (i = 0; i < 2; i++) {
            pthread_join(t[i], NULL);
            CHECK_INT(m[i].rc, 0);
        }
        CHECK_INT(m[0].applied + m[1].applied, dv_migrations_count);
        db = connect_new(m[0].conninfo);
        CHECK_INT(migration_rows(db), dv_migrations_count);
        CHECK_INT(query_i64(db,
                            "SELECT count(DISTINCT version) AS n FROM "
                            "schema_migrations",
                            0, NULL),
                  dv_migrations_count);
        dv_db_free(db);
    }
}

int
main(void)
{
    struct dv_err err;
    double t0 = now_s();

    dv_log_setup("test-db", DV_LOG_WARN, NULL);
    if (pg_start() < 0) {
        pg_stop();
        printf("not ok pg_start\n");
        return 1;
    }
    admin = dv_db_new(conninfo, "test-db-admin");
    if (dv_db_connect(admin, &err) < 0) {
        fprintf(stderr, "admin connect: %s\n", err.msg);
        dv_db_free(admin);
        pg_stop();
        printf("not ok admin_connect\n");
        return 1;
    }
    RUN(test_connect_options);
    RUN(test_connect_errors);
    RUN(test_multi_host);
    RUN(test_exec_params);
    RUN(test_prepared_cache);
    RUN(test_errors);
    RUN(test_tx_setup);
    RUN(test_tx_forced_serialization);
    RUN(test_tx_real_serialization);
    RUN(test_tx_not_retried);
    RUN(test_tx_connection_lost);
    RUN(test_tx_in_doubt);
    RUN(test_timeout);
    RUN(test_timeout_in_tx);
    RUN(test_tx_syncrep_cancel);
    RUN(test_tx_unreachable);
    RUN(test_listen_notify);
    RUN(test_migrate);
    RUN(test_migrate_concurrent);
    dv_db_free(admin);
    pg_stop();
    fprintf(stderr, "test-db: %.1fs\n", now_s() - t0);
    return unit_done();
}
