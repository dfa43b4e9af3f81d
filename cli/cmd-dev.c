/*
 * drover dev: the embedded all-in-one cluster. Starts, in the foreground, a
 * private PostgreSQL in DIR/pg (initdb on first use, as the postgres user
 * when run as root), applies migrations, and runs drover-qmgr, one
 * drover-sched and one drover-noded found next to this binary. SIGINT or
 * SIGTERM stops everything in reverse order; a second start reuses DIR.
 */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/http-client.h"
#include "lib/mem.h"
#include "lib/strutil.h"

#define DEV_PG_PORT "5432"

enum dev_child_kind {
    DEV_POSTGRES = 0,
    DEV_QMGR,
    DEV_SCHED,
    DEV_NODED,
    DEV_NCHILDREN,
};

static const char *const dev_child_names[] = {"postgres", "drover-qmgr",
                                              "drover-sched", "drover-noded"};

struct dev {
    char *data_dir;
    char *addr;
    char *bindir;    /* where drover-qmgr & co. live */
    char *pg_bindir; /* PostgreSQL server binaries */
    char *conninfo;
    char *server_name;
    uid_t pg_uid;
    gid_t pg_gid;
    int as_root;
    struct ev_loop *loop;
    ev_child children[DEV_NCHILDREN];
    pid_t pids[DEV_NCHILDREN];
    ev_signal sigint;
    ev_signal sigterm;
    ev_timer stop_timer;
    int stopping;
    int failed;
};

static void
dev_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
dev_log(const char *fmt, ...)
{
    va_list ap;

    fputs("drover dev: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Creates path and its parents with mode. */
static int
mkdir_p(const char *path, mode_t mode)
{
    char *copy = dv_xstrdup(path);
    int rc = 0;

    for (char *p = copy + 1; *p != '\0'; p++) {
        if (*p != '/') {
            continue;
        }
        *p = '\0';
        if (mkdir(copy, 0755) < 0 && errno != EEXIST) {
            rc = -1;
        }
        *p = '/';
    }
    if (mkdir(copy, mode) < 0 && errno != EEXIST) {
        rc = -1;
    }
    free(copy);
    return rc;
}

/* Forks and execs argv; as the postgres user when as_pg (and root). The
 * child gets its own process group so that a terminal's Ctrl-C reaches
 * only drover dev, which then stops the children in order. Returns the pid
 * or -1. */
static pid_t
spawn(struct dev *d, const char *const *argv, int as_pg)
{
    sigset_t all, old;
    pid_t pid;

    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0) {
        sigset_t none;
        for (int s = 1; s < NSIG; s++) {
            signal(s, SIG_DFL);
        }
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setpgid(0, 0);
        if (as_pg && d->as_root) {
            if (setgroups(0, NULL) < 0 || setgid(d->pg_gid) < 0 ||
                setuid(d->pg_uid) < 0) {
                fprintf(stderr, "drover dev: cannot become postgres: %s\n",
                        strerror(errno));
                _exit(127);
            }
        }
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "drover dev: cannot run %s: %s\n", argv[0],
                strerror(errno));
        _exit(127);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        dev_log("cannot fork: %s", strerror(errno));
    }
    return pid;
}

/* Runs argv to completion; returns its exit status or -1. */
static int
run_wait(struct dev *d, const char *const *argv, int as_pg)
{
    pid_t pid = spawn(d, argv, as_pg);
    int status;

    if (pid < 0) {
        return -1;
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static char *
find_pg_bindir(void)
{
    const char *env = getenv("DROVER_PG_BINDIR");
    glob_t g;
    char *dir = NULL;

    if (!dv_str_empty(env)) {
        return dv_xstrdup(env);
    }
    if (glob("/usr/lib/postgresql/*/bin/postgres", 0, NULL, &g) == 0 &&
        g.gl_pathc > 0) {
        /* glob sorts: the last is the newest major version */
        const char *p = g.gl_pathv[g.gl_pathc - 1];
        dir = dv_xstrndup(p, strlen(p) - strlen("/postgres"));
    }
    globfree(&g);
    return dir;
}

static char *
self_dir(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    char *slash;

    if (n <= 0) {
        return dv_xstrdup(".");
    }
    buf[n] = '\0';
    slash = strrchr(buf, '/');
    if (slash != NULL) {
        *slash = '\0';
    }
    return dv_xstrdup(buf);
}

/* Can the postgres user reach dir? Checked in a child that drops to it. */
static int
pg_can_reach(struct dev *d, const char *dir)
{
    pid_t pid;
    int status;

    if (!d->as_root) {
        return 1;
    }
    pid = fork();
    if (pid == 0) {
        if (setgroups(0, NULL) < 0 || setgid(d->pg_gid) < 0 ||
            setuid(d->pg_uid) < 0) {
            _exit(1);
        }
        _exit(access(dir, X_OK) == 0 ? 0 : 1);
    }
    if (pid < 0 || waitpid(pid, &status, 0) < 0) {
        return 0;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int
pg_init(struct dev *d)
{
    char *pgdir = dv_xasprintf("%s/pg", d->data_dir);
    char *datadir = dv_xasprintf("%s/pg/data", d->data_dir);
    char *rundir = dv_xasprintf("%s/pg/run", d->data_dir);
    char *version = dv_xasprintf("%s/PG_VERSION", datadir);
    char *initdb = dv_xasprintf("%s/initdb", d->pg_bindir);
    struct stat st;
    int rc = -1;

    if (mkdir_p(pgdir, 0700) < 0 || mkdir_p(rundir, 0700) < 0) {
        dev_log("cannot create %s: %s", pgdir, strerror(errno));
        goto out;
    }
    if (d->as_root && (chown(pgdir, d->pg_uid, d->pg_gid) < 0 ||
                       chown(rundir, d->pg_uid, d->pg_gid) < 0)) {
        dev_log("cannot give %s to postgres: %s", pgdir, strerror(errno));
        goto out;
    }
    if (!pg_can_reach(d, pgdir)) {
        dev_log("the postgres user cannot reach %s; choose a --data-dir "
                "under a directory every user may traverse, such as "
                "/var/lib/drover/dev",
                pgdir);
        goto out;
    }
    if (stat(version, &st) < 0) {
        const char *argv[] = {initdb,       "-D",         datadir, "-U",
                        "postgres",   "--auth=trust", "-E",    "UTF8",
                        "--no-sync",  NULL};
        int fd;

        dev_log("initialising PostgreSQL in %s", datadir);
        /* initdb is chatty; its output goes to a file next to the data. */
        char *log = dv_xasprintf("%s/initdb.log", pgdir);
        fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0 && d->as_root && fchown(fd, d->pg_uid, d->pg_gid) < 0) {
            dev_log("cannot chown %s: %s", log, strerror(errno));
        }
        int saved_out = dup(1), saved_err = dup(2);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        int status = run_wait(d, argv, 1);
        if (fd >= 0) {
            dup2(saved_out, 1);
            dup2(saved_err, 2);
            close(fd);
        }
        close(saved_out);
        close(saved_err);
        if (status != 0) {
            dev_log("initdb failed (exit status %d); see %s", status, log);
            free(log);
            goto out;
        }
        free(log);
    }
    rc = 0;
out:
    free(pgdir);
    free(datadir);
    free(rundir);
    free(version);
    free(initdb);
    return rc;
}

static int
pg_start(struct dev *d)
{
    char *postgres = dv_xasprintf("%s/postgres", d->pg_bindir);
    char *datadir = dv_xasprintf("%s/pg/data", d->data_dir);
    char *rundir = dv_xasprintf("%s/pg/run", d->data_dir);
    char *admin = dv_xasprintf("host=%s port=%s dbname=postgres user=postgres "
                               "connect_timeout=2",
                               rundir, DEV_PG_PORT);
    const char *argv[] = {postgres,
                    "-D",
                    datadir,
                    "-k",
                    rundir,
                    "-p",
                    DEV_PG_PORT,
                    "-c",
                    "listen_addresses=",
                    "-c",
                    "max_connections=200",
                    "-c",
                    "logging_collector=on",
                    "-c",
                    "log_directory=log",
                    NULL};
    PGconn *conn = NULL;
    PGresult *res = NULL;
    int rc = -1;

    d->pids[DEV_POSTGRES] = spawn(d, argv, 1);
    if (d->pids[DEV_POSTGRES] < 0) {
        goto out;
    }
    for (int i = 0; i < 300; i++) {
        int status;
        if (PQping(admin) == PQPING_OK) {
            break;
        }
        if (waitpid(d->pids[DEV_POSTGRES], &status, WNOHANG) ==
            d->pids[DEV_POSTGRES]) {
            d->pids[DEV_POSTGRES] = 0;
            dev_log("PostgreSQL exited while starting (is another server "
                    "using %s?)",
                    datadir);
            goto out;
        }
        usleep(100000);
    }
    conn = PQconnectdb(admin);
    if (PQstatus(conn) != CONNECTION_OK) {
        dev_log("cannot connect to PostgreSQL: %s", PQerrorMessage(conn));
        goto out;
    }
    res = PQexecParams(conn, "SELECT 1 FROM pg_database WHERE datname = $1",
                       1, NULL, (const char *const[]){"drover"}, NULL, NULL,
                       0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        dev_log("cannot query PostgreSQL: %s", PQerrorMessage(conn));
        goto out;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        /* A fixed statement: CREATE DATABASE takes no parameters. */
        res = PQexec(conn, "CREATE DATABASE drover");
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            dev_log("cannot create database drover: %s",
                    PQerrorMessage(conn));
            goto out;
        }
    }
    rc = 0;
out:
    PQclear(res);
    PQfinish(conn);
    free(postgres);
    free(datadir);
    free(rundir);
    free(admin);
    return rc;
}

static void
stop_child(struct dev *d, enum dev_child_kind k)
{
    if (d->pids[k] > 0) {
        /* postgres: SIGINT is its fast shutdown */
        kill(d->pids[k], k == DEV_POSTGRES ? SIGINT : SIGTERM);
    }
}

/* Stops the next running child, last started first; postgres goes last,
 * once the daemons that use it have gone. */
static void
stop_next(struct dev *d)
{
    for (int k = DEV_NCHILDREN - 1; k >= 0; k--) {
        if (d->pids[k] > 0) {
            stop_child(d, (enum dev_child_kind)k);
            return;
        }
    }
    ev_break(d->loop, EVBREAK_ALL);
}

static void
child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
    struct dev *d = w->data;
    int k = (int)(w - d->children);

    (void)revents;
    ev_child_stop(loop, w);
    d->pids[k] = 0;
    if (!d->stopping) {
        dev_log("%s exited unexpectedly (status %d); stopping the cluster",
                dev_child_names[k],
                WIFEXITED(w->rstatus) ? WEXITSTATUS(w->rstatus)
                                      : 128 + WTERMSIG(w->rstatus));
        d->stopping = 1;
        d->failed = 1;
    }
    stop_next(d);
}

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct dev *d = w->data;

    (void)loop;
    (void)revents;
    if (d->stopping) {
        return;
    }
    dev_log("stopping");
    d->stopping = 1;
    stop_next(d);
}

static void
watch(struct dev *d, enum dev_child_kind k)
{
    ev_child_init(&d->children[k], child_cb, d->pids[k], 0);
    d->children[k].data = d;
    ev_child_start(d->loop, &d->children[k]);
}

static int
start_daemons(struct dev *d)
{
    char *qmgr = dv_xasprintf("%s/drover-qmgr", d->bindir);
    char *sched = dv_xasprintf("%s/drover-sched", d->bindir);
    char *noded = dv_xasprintf("%s/drover-noded", d->bindir);
    char *server = dv_xasprintf("http://%s", d->addr);
    char *noded_dir = dv_xasprintf("%s/noded", d->data_dir);
    int rc = -1;

    {
        const char *argv[] = {qmgr, "migrate", "--database", d->conninfo,
                        "--server-name", d->server_name, NULL};
        int status = run_wait(d, argv, 0);
        if (status != 0) {
            dev_log("drover-qmgr migrate failed (exit status %d)", status);
            goto out;
        }
    }
    {
        const char *argv[] = {qmgr, "--database", d->conninfo, "--listen", d->addr,
                        NULL};
        d->pids[DEV_QMGR] = spawn(d, argv, 0);
    }
    {
        const char *argv[] = {sched, "--database", d->conninfo, NULL};
        d->pids[DEV_SCHED] = spawn(d, argv, 0);
    }
    if (mkdir_p(noded_dir, 0755) < 0) {
        dev_log("cannot create %s: %s", noded_dir, strerror(errno));
        goto out;
    }
    {
        const char *argv[] = {noded, "--server", server, "--data-dir", noded_dir,
                        "--allow-root", NULL};
        d->pids[DEV_NODED] = spawn(d, argv, 0);
    }
    if (d->pids[DEV_QMGR] < 0 || d->pids[DEV_SCHED] < 0 ||
        d->pids[DEV_NODED] < 0) {
        goto out;
    }
    rc = 0;
out:
    free(qmgr);
    free(sched);
    free(noded);
    free(server);
    free(noded_dir);
    return rc;
}

/* Waits until qmgr answers GET /v1/status and a node is ready. */
static int
wait_ready(struct dev *d)
{
    char *base = dv_xasprintf("http://%s", d->addr);
    struct dv_http_client_config cc = {.base = base, .connect_timeout = 1};
    struct dv_http_client *c = dv_http_client_new(&cc, NULL);
    int rc = -1;

    for (int i = 0; c != NULL && i < 300; i++) {
        struct dv_http_response resp = {0};
        struct dv_err err;
        if (dv_http_client_do(c, "GET", "/v1/status", NULL, 0, NULL, 0, 2,
                              &resp, &err) == 0 &&
            resp.status == 200 && resp.body != NULL &&
            strstr(resp.body, "\"ready\": 0") == NULL &&
            strstr(resp.body, "\"ready\":0") == NULL) {
            dv_http_response_cleanup(&resp);
            rc = 0;
            break;
        }
        dv_http_response_cleanup(&resp);
        for (int k = 0; k < DEV_NCHILDREN; k++) {
            int status;
            if (d->pids[k] > 0 &&
                waitpid(d->pids[k], &status, WNOHANG) == d->pids[k]) {
                dev_log("%s exited while starting", dev_child_names[k]);
                d->pids[k] = 0;
                goto out;
            }
        }
        usleep(100000);
    }
out:
    dv_http_client_free(c);
    free(base);
    return rc;
}

static void
dev_usage(FILE *f)
{
    fprintf(f, "usage: drover dev [--data-dir DIR] [--addr HOST:PORT]\n"
               "  --data-dir DIR   cluster state (default /var/lib/drover/dev "
               "for root,\n"
               "                   ~/.local/share/drover/dev otherwise)\n"
               "  --addr HOST:PORT where drover-qmgr listens (default "
               "127.0.0.1:4750)\n");
}

static void
stop_all_now(struct dev *d)
{
    for (int k = DEV_NCHILDREN - 1; k >= 0; k--) {
        if (d->pids[k] > 0) {
            int status;
            stop_child(d, (enum dev_child_kind)k);
            waitpid(d->pids[k], &status, 0);
            d->pids[k] = 0;
        }
    }
}

int
cmd_dev(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data-dir", required_argument, NULL, 'd'},
        {"addr", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct dev d;
    struct passwd *pw;
    char host[256];
    int opt, rc = 1;

    memset(&d, 0, sizeof(d));
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            free(d.data_dir);
            d.data_dir = dv_xstrdup(optarg);
            break;
        case 'a':
            free(d.addr);
            d.addr = dv_xstrdup(optarg);
            break;
        case 'h':
            dev_usage(stdout);
            return 0;
        default:
            dev_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        dev_usage(stderr);
        rc = 2;
        goto out;
    }
    d.as_root = geteuid() == 0;
    if (d.data_dir == NULL) {
        const char *home = getenv("HOME");
        d.data_dir = d.as_root || dv_str_empty(home)
                         ? dv_xstrdup("/var/lib/drover/dev")
                         : dv_xasprintf("%s/.local/share/drover/dev", home);
    }
    if (d.data_dir[0] != '/') {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof(cwd)) == NULL) {
            dev_log("cannot read the current directory: %s", strerror(errno));
            goto out;
        }
        char *abs = dv_xasprintf("%s/%s", cwd, d.data_dir);
        free(d.data_dir);
        d.data_dir = abs;
    }
    if (d.addr == NULL) {
        d.addr = dv_xstrdup("127.0.0.1:4750");
    }
    if (d.as_root) {
        pw = getpwnam("postgres");
        if (pw == NULL) {
            dev_log("running as root needs a postgres user to run "
                    "PostgreSQL as (apt-get install postgresql creates it)");
            goto out;
        }
        d.pg_uid = pw->pw_uid;
        d.pg_gid = pw->pw_gid;
    }
    d.pg_bindir = find_pg_bindir();
    if (d.pg_bindir == NULL) {
        dev_log("PostgreSQL server binaries not found under "
                "/usr/lib/postgresql (set DROVER_PG_BINDIR)");
        goto out;
    }
    d.bindir = self_dir();
    if (gethostname(host, sizeof(host)) < 0) {
        dv_strlcpy(host, "localhost", sizeof(host));
    }
    host[sizeof(host) - 1] = '\0';
    host[strcspn(host, ".")] = '\0';
    d.server_name = dv_xstrdup(host);
    d.conninfo = dv_xasprintf("host=%s/pg/run port=%s dbname=drover "
                              "user=postgres",
                              d.data_dir, DEV_PG_PORT);
    if (mkdir_p(d.data_dir, 0755) < 0) {
        dev_log("cannot create %s: %s", d.data_dir, strerror(errno));
        goto out;
    }
    d.loop = ev_default_loop(0);
    /* Signals first, so that Ctrl-C during start-up stops cleanly. */
    ev_signal_init(&d.sigint, signal_cb, SIGINT);
    ev_signal_init(&d.sigterm, signal_cb, SIGTERM);
    d.sigint.data = d.sigterm.data = &d;
    ev_signal_start(d.loop, &d.sigint);
    ev_signal_start(d.loop, &d.sigterm);
    if (pg_init(&d) < 0 || pg_start(&d) < 0) {
        stop_all_now(&d);
        goto out;
    }
    /* Watch every child at once: libev reaps children only inside ev_run,
     * so the waitpid calls of wait_ready still see them before that. */
    if (start_daemons(&d) < 0 || wait_ready(&d) < 0) {
        dev_log("the cluster did not come up; stopping");
        stop_all_now(&d);
        goto out;
    }
    for (int k = 0; k < DEV_NCHILDREN; k++) {
        if (d.pids[k] > 0) {
            watch(&d, (enum dev_child_kind)k);
        }
    }
    dev_log("cluster ready: DROVER_ADDR=http://%s, server %s, data in %s; "
            "Ctrl-C stops it",
            d.addr, d.server_name, d.data_dir);
    ev_run(d.loop, 0);
    for (int k = 0; k < DEV_NCHILDREN; k++) {
        ev_child_stop(d.loop, &d.children[k]);
    }
    dev_log("stopped");
    rc = d.failed ? 1 : 0;
out:
    if (d.loop != NULL) {
        ev_signal_stop(d.loop, &d.sigint);
        ev_signal_stop(d.loop, &d.sigterm);
    }
    free(d.data_dir);
    free(d.addr);
    free(d.bindir);
    free(d.pg_bindir);
    free(d.conninfo);
    free(d.server_name);
    return rc;
}
