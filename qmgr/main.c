/*
 * drover-qmgr: the API server. Reads the configuration table, then runs
 * one of its subcommands: "serve" (the default) or "migrate" (applies the
 * embedded SQL migrations and names the cluster). Owns the signals:
 * SIGTERM/SIGINT stop gracefully, SIGHUP reloads the reloadable options.
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/version.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "qmgr/qmgr.h"

#define OPT(name, type, def, min, max, reload, field, help)                    \
    {                                                                          \
        name, type, def, min, max, reload,                                     \
            offsetof(struct qmgr_config, field), help                          \
    }

static const struct dv_conf_opt qmgr_opts[] = {
    OPT("listen", DV_CONF_STRING, "127.0.0.1:4750", 0, 0, 0, listen,
        "TCP address of the API, HOST:PORT (empty: none)"),
    OPT("socket", DV_CONF_STRING, NULL, 0, 0, 0, socket,
        "Unix socket path of the API (peer credentials identify users)"),
    OPT("database", DV_CONF_STRING, "dbname=drover", 0, 0, 0, database,
        "PostgreSQL connection string (libpq conninfo)"),
    OPT("server-name", DV_CONF_STRING, NULL, 0, 0, 0, server_name,
        "cluster name set by migrate (default: the short host name)"),
    OPT("workers", DV_CONF_INT, "4", 1, 64, 0, workers,
        "database worker threads"),
    OPT("node-ttl", DV_CONF_DURATION, "10s", 1000, 3600000, 0, node_ttl,
        "heartbeat TTL given to nodes"),
    OPT("liveness-interval", DV_CONF_DURATION, "1s", 50, 600000, 0,
        liveness_interval, "how often missed heartbeats are looked for"),
    OPT("tls-cert", DV_CONF_STRING, NULL, 0, 0, 0, tls_cert,
        "PEM certificate chain: serve TLS on --listen"),
    OPT("tls-key", DV_CONF_STRING, NULL, 0, 0, 0, tls_key,
        "PEM private key of --tls-cert"),
    OPT("tls-client-ca", DV_CONF_STRING, NULL, 0, 0, 0, tls_client_ca,
        "PEM CA: require client certificates it signed"),
    OPT("max-body", DV_CONF_SIZE, "8mb", 1024, 1073741824, 0, max_body,
        "largest request body"),
    OPT("log-level", DV_CONF_STRING, "info", 0, 0, 1, log_level,
        "debug, info, notice, warn or error"),
    OPT("log-file", DV_CONF_STRING, NULL, 0, 0, 1, log_file,
        "append logs to this file (default: stderr)"),
    OPT("node-uid", DV_CONF_INT, "-1", -1, 4294967294LL, 0, node_uid,
        "uid besides root allowed to call node routes on the Unix socket "
        "(-1: none)"),
    OPT("max-heartbeat-rate", DV_CONF_INT, "200", 0, 1000000, 0,
        max_heartbeat_rate,
        "node heartbeats per second the TTL is raised to stay under (0: "
        "never raise it)"),
    OPT("sendmail", DV_CONF_STRING, NULL, 0, 0, 0, sendmail,
        "send job mail (qsub -m) through this program, run as "
        "PATH -f FROM RCPT... (default: log it at info level)"),
    OPT("mail-from", DV_CONF_STRING, "adm", 0, 0, 0, mail_from,
        "sender of job mail (PBS's mail_from)"),
};
#define NOPTS (sizeof(qmgr_opts) / sizeof(qmgr_opts[0]))

static void
usage(FILE *f)
{
    struct dv_buf b;

    dv_buf_init(&b);
    dv_conf_usage(qmgr_opts, NOPTS, &b);
    fprintf(f,
            "usage: drover-qmgr [serve] [options]\n"
            "       drover-qmgr migrate [options]\n"
            "\n"
            "serve    run the API server (the default)\n"
            "migrate  apply the database migrations and name the cluster\n"
            "\n"
            "options:\n%s",
            dv_buf_str(&b));
    dv_buf_cleanup(&b);
}

/* Checks what the table cannot. Returns 0 or -1 with err set. */
static int
check_config(const struct qmgr_config *cfg, struct dv_err *err)
{
    enum dv_log_level level;

    if (cfg->log_level == NULL ||
        dv_log_level_parse(cfg->log_level, &level) < 0) {
        dv_err_set(err, DV_EINVAL, "invalid_config",
                   "invalid log-level \"%s\": debug, info, notice, warn or "
                   "error expected",
                   cfg->log_level != NULL ? cfg->log_level : "");
        return -1;
    }
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        dv_err_set(err, DV_EINVAL, "invalid_config",
                   "tls-cert and tls-key go together");
        return -1;
    }
    if (cfg->tls_client_ca != NULL && cfg->tls_cert == NULL) {
        dv_err_set(err, DV_EINVAL, "invalid_config",
                   "tls-client-ca needs tls-cert and tls-key");
        return -1;
    }
    if (dv_str_empty(cfg->listen) && dv_str_empty(cfg->socket)) {
        dv_err_set(err, DV_EINVAL, "invalid_config",
                   "nothing to serve on: set listen or socket");
        return -1;
    }
    if (dv_str_empty(cfg->database)) {
        dv_err_set(err, DV_EINVAL, "invalid_config", "database is empty");
        return -1;
    }
    return 0;
}

static int
setup_log(const struct qmgr_config *cfg)
{
    enum dv_log_level level = DV_LOG_INFO;

    dv_log_level_parse(cfg->log_level, &level);
    if (dv_log_setup("drover-qmgr", level, cfg->log_file) < 0) {
        log_error("could not open log file \"%s\"; logging to stderr",
                  cfg->log_file);
        return -1;
    }
    return 0;
}

/* --- migrate --- */

static int
run_migrate(const struct qmgr_config *cfg)
{
    struct dv_db *db = dv_db_new(cfg->database, "drover-qmgr-migrate");
    struct dv_err err;
    char host[256];
    const char *name = cfg->server_name;
    int applied = 0, rc = 1;

    dv_err_clear(&err);
    if (dv_str_empty(name)) {
        char *dot;

        if (gethostname(host, sizeof(host)) < 0) {
            dv_strlcpy(host, "localhost", sizeof(host));
        }
        host[sizeof(host) - 1] = '\0';
        dot = strchr(host, '.');
        if (dot != NULL) {
            *dot = '\0';
        }
        name = host;
    }
    if (dv_db_migrate(db, &applied, &err) < 0) {
        fprintf(stderr, "drover-qmgr: migrate: %s\n", err.msg);
        goto out;
    }
    if (db_cluster_init(db, name, &err) < 0) {
        fprintf(stderr,
                "drover-qmgr: migrate: could not name the cluster: "
                "%s\n",
                err.msg);
        goto out;
    }
    log_debug("migrations applied: %d", applied);
    rc = 0;
out:
    dv_db_free(db);
    return rc;
}

/* --- serve --- */

static void
sig_stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct qmgr *q = w->data;

    (void)loop;
    (void)revents;
    if (q->stopping) {
        log_notice("signal %d: already stopping", w->signum);
        return;
    }
    log_notice("signal %d: stopping", w->signum);
    server_shutdown(q);
}

static void
sig_hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct qmgr *q = w->data;
    struct dv_err err;
    struct qmgr_config *cfg = q->cfg;

    (void)loop;
    (void)revents;
    dv_err_clear(&err);
    if (dv_conf_reload(qmgr_opts, NOPTS, cfg, q->config_path, q->argc, q->argv,
                       &err) < 0 ||
        check_config(cfg, &err) < 0) {
        log_error("reload failed, keeping the current configuration: %s",
                  err.msg);
        return;
    }
    setup_log(cfg);
    log_notice("configuration reloaded (log-level %s)", cfg->log_level);
}

static int
run_serve(struct qmgr_config *cfg, int argc, char **argv,
          const char *config_path)
{
    struct ev_loop *loop;
    struct qmgr q;
    struct dv_err err;
    int rc = 0;

    signal(SIGPIPE, SIG_IGN);
    json_object_seed(0);
    loop = ev_default_loop(EVFLAG_AUTO);
    if (loop == NULL) {
        fprintf(stderr, "drover-qmgr: could not start the event loop\n");
        return 1;
    }
    server_init(&q, loop, cfg);
    q.argc = argc;
    q.argv = argv;
    q.config_path = config_path;
    /* Signal watchers before the worker threads, which block signals. */
    ev_signal_init(&q.sig_term, sig_stop_cb, SIGTERM);
    ev_signal_init(&q.sig_int, sig_stop_cb, SIGINT);
    ev_signal_init(&q.sig_hup, sig_hup_cb, SIGHUP);
    q.sig_term.data = q.sig_int.data = q.sig_hup.data = &q;
    ev_signal_start(loop, &q.sig_term);
    ev_signal_start(loop, &q.sig_int);
    ev_signal_start(loop, &q.sig_hup);
    dv_err_clear(&err);
    if (server_start(&q, &err) < 0) {
        log_error("could not start: %s", err.msg);
        rc = 1;
    } else {
        log_notice("drover-qmgr %s serving%s%s%s%s (%lld database workers)",
                   DV_VERSION, q.tcp != NULL ? " on " : "",
                   q.tcp != NULL ? cfg->listen : "",
                   q.unix_srv != NULL ? " on unix:" : "",
                   q.unix_srv != NULL ? cfg->socket : "",
                   (long long)cfg->workers);
        ev_run(loop, 0);
        log_notice("stopped");
    }
    ev_signal_stop(loop, &q.sig_term);
    ev_signal_stop(loop, &q.sig_int);
    ev_signal_stop(loop, &q.sig_hup);
    server_cleanup(&q);
    ev_loop_destroy(loop);
    return rc;
}

int
main(int argc, char **argv)
{
    struct qmgr_config cfg;
    struct dv_conf_args args;
    struct dv_err err;
    const char *cmd = "serve";
    int rc = 0;

    memset(&cfg, 0, sizeof(cfg));
    dv_err_clear(&err);
    if (dv_conf_load(qmgr_opts, NOPTS, &cfg, argc, argv, &args, &err) < 0) {
        fprintf(stderr, "drover-qmgr: %s\n", err.msg);
        dv_conf_cleanup(qmgr_opts, NOPTS, &cfg);
        return 2;
    }
    if (args.help) {
        usage(stdout);
        goto out;
    }
    if (args.nargs > 1 ||
        (args.nargs == 1 && strcmp(args.args[0], "serve") != 0 &&
         strcmp(args.args[0], "migrate") != 0)) {
        fprintf(stderr, "drover-qmgr: unknown command \"%s\"\n",
                args.args[args.nargs > 1 ? 1 : 0]);
        usage(stderr);
        rc = 2;
        goto out;
    }
    if (args.nargs == 1) {
        cmd = args.args[0];
    }
    if (check_config(&cfg, &err) < 0) {
        fprintf(stderr, "drover-qmgr: %s\n", err.msg);
        rc = 2;
        goto out;
    }
    if (args.print_config) {
        struct dv_buf b;

        dv_buf_init(&b);
        dv_conf_format(qmgr_opts, NOPTS, &cfg, &b);
        fputs(dv_buf_str(&b), stdout);
        dv_buf_cleanup(&b);
        goto out;
    }
    if (args.check_config) {
        goto out;
    }
    setup_log(&cfg);
    if (strcmp(cmd, "migrate") == 0) {
        /* Silent on success: only warnings and errors. */
        if (dv_log_threshold < DV_LOG_WARN) {
            dv_log_setup(NULL, DV_LOG_WARN, cfg.log_file);
        }
        rc = run_migrate(&cfg);
    } else {
        rc = run_serve(&cfg, argc, argv, args.config_path);
    }
out:
    dv_conf_args_cleanup(&args);
    dv_conf_cleanup(qmgr_opts, NOPTS, &cfg);
    return rc;
}
