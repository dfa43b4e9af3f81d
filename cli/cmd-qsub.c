/*
 * qsub: reads the command line, the job script (a file, standard input, or
 * "-- command args" instead) and its directives, builds the job spec and
 * submits it with POST /v1/jobs. A submission that fails at the transport
 * level (connection refused or reset, 502/503/504, timeout) is retried
 * with backoff under the same Idempotency-Key, so that a retried qsub never
 * creates two jobs. Prints only the job id, as PBS does.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/mem.h"
#include "lib/strutil.h"

extern char **environ;

#define QSUB_ATTEMPTS 4

static int
usage(void)
{
    fputs(qsub_usage_text, stderr);
    return 2;
}

static int
read_all(int fd, struct dv_buf *out)
{
    char buf[65536];

    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (n == 0) {
            return 0;
        }
        dv_buf_append(out, buf, (size_t)n);
    }
}

/* Reads the script; returns 0 or the exit status after a PBS message. */
static int
read_script(const char *path, struct dv_buf *script)
{
    struct stat st;
    int fd;
    int rc;

    if (path == NULL || strcmp(path, "-") == 0) {
        if (isatty(STDIN_FILENO)) {
            printf("Job script will be read from standard input. Submit "
                   "with CTRL+D.\n");
            fflush(stdout);
        }
        if (read_all(STDIN_FILENO, script) < 0) {
            fprintf(stderr, "qsub: error reading script file\n");
            return 5;
        }
        return 0;
    }
    if (stat(path, &st) < 0) {
        fprintf(stderr, "qsub: script file:: %s\n", strerror(errno));
        return 1;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "qsub: script not a file\n");
        return 1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "qsub: opening script file:: %s\n", strerror(errno));
        return 8;
    }
    rc = read_all(fd, script);
    close(fd);
    if (rc < 0) {
        fprintf(stderr, "qsub: error reading script file\n");
        return 5;
    }
    return 0;
}

/* PBS_O_WORKDIR: $PWD when it names the current directory, else getcwd. */
static char *
work_dir(void)
{
    const char *pwd = getenv("PWD");
    struct stat a;
    struct stat b;
    char buf[4096];

    if (pwd != NULL && pwd[0] == '/' && stat(pwd, &a) == 0 &&
        stat(".", &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
        return dv_xstrdup(pwd);
    }
    if (getcwd(buf, sizeof(buf)) == NULL) {
        return NULL;
    }
    return dv_xstrdup(buf);
}

static char *
full_host_name(const char *host)
{
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    char *out;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = AI_CANONNAME;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL) {
        return dv_xstrdup(host);
    }
    out =
        dv_xstrdup(!dv_str_empty(res->ai_canonname) ? res->ai_canonname : host);
    freeaddrinfo(res);
    return out;
}

static char *
group_name(void)
{
    struct group *gr = getgrgid(getgid());

    if (gr != NULL && !dv_str_empty(gr->gr_name)) {
        return dv_xstrdup(gr->gr_name);
    }
    return NULL;
}

static void
idempotency_key(char *buf, size_t size)
{
    unsigned char raw[16];
    static const char hex[] = "0123456789abcdef";

    /* getrandom first: RAND_bytes seeds OpenSSL's DRBG, a quarter of the
     * instructions of a whole qsub run (docs/performance.md) */
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw) &&
        RAND_bytes(raw, sizeof(raw)) != 1) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(buf, size, "%lx-%lx-%lx", (long)getpid(), (long)ts.tv_sec,
                 ts.tv_nsec);
        return;
    }
    for (size_t i = 0; i < sizeof(raw) && 2 * i + 2 < size; i++) {
        buf[2 * i] = hex[raw[i] >> 4];
        buf[2 * i + 1] = hex[raw[i] & 15];
        buf[2 * i + 2] = '\0';
    }
}

static int
retryable(int rc, const struct cli_reply *r)
{
    if (rc < 0) {
        return 1;
    }
    return r->status == 502 || r->status == 503 || r->status == 504;
}

static void
sleep_seconds(double s)
{
    struct timespec ts;

    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* The job -W block=true waits for, for the signal handler's message. */
static char block_jobid[256];

/* SIGINT, SIGTERM, SIGHUP while blocked: PBS's message, exit 2 (only
 * async-signal-safe calls). */
static void
block_signal_cb(int sig)
{
    static const char head[] = "qsub: wait for job ";
    static const char mid[] = " interrupted by signal ";
    char num[12];
    int n = (int)sizeof(num);

    num[--n] = '\n';
    do {
        num[--n] = (char)('0' + sig % 10);
        sig /= 10;
    } while (sig > 0 && n > 0);
    (void)!write(STDERR_FILENO, head, sizeof(head) - 1);
    (void)!write(STDERR_FILENO, block_jobid, strlen(block_jobid));
    (void)!write(STDERR_FILENO, mid, sizeof(mid) - 1);
    (void)!write(STDERR_FILENO, num + n, sizeof(num) - (size_t)n);
    _exit(2);
}

static void
block_signals(const char *jobid)
{
    struct sigaction sa;

    dv_strlcpy(block_jobid, jobid, sizeof(block_jobid));
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = block_signal_cb;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

/*
 * -W block=true: waits for the job through blocking queries (surviving a
 * qmgr restart) and returns PBS's exit status for it: Exit_status mod 256,
 * or 3 with "qsub: <id> <comment>" when it ended without running.
 */
static int
block_wait(struct cli_client *c, const char *jobid)
{
    struct cli_reply r;
    struct cli_job j;
    struct dv_err err;
    long long seq;
    char *server = NULL;
    int status, rc;

    if (jobid_parse(jobid, &seq, &server) < 0) {
        fprintf(stderr, "qsub: illegally formed job identifier: %s\n", jobid);
        return 1;
    }
    free(server);
    dv_err_clear(&err);
    rc = cli_jobs_wait(c, seq, &j, &r, &err);
    if (rc < 0) {
        status = cli_client_report_transport(c, &err);
    } else if (rc > 0) {
        status = cli_report_job_error("qsub", &r, jobid);
        cli_reply_cleanup(&r);
    } else {
        status = cli_wait_exit_code(&j);
        if (!j.has_exit_status) {
            fprintf(stderr, "qsub: %s %s\n", jobid,
                    j.comment != NULL ? j.comment : "Job deleted");
        }
        cli_job_cleanup(&j);
    }
    return status;
}

/* Submits; prints the id (unless -z), then waits for the job when block.
 * Returns the exit status. */
static int
submit(const struct dv_job_spec *spec, int quiet, int block)
{
    struct cli_client *c;
    struct cli_reply r;
    struct dv_err err;
    struct dv_http_header hdr;
    char key[64];
    json_t *body = NULL;
    int status = 0;
    int rc = -1;
    double delay = 0.25;

    memset(&r, 0, sizeof(r));
    dv_err_clear(&err);
    c = cli_client_new("qsub", &err);
    if (c == NULL) {
        fprintf(stderr, "qsub: %s\n", err.msg);
        return 1;
    }
    idempotency_key(key, sizeof(key));
    hdr.name = "Idempotency-Key";
    hdr.value = key;
    body = dv_job_spec_to_json(spec);
    for (int attempt = 1; attempt <= QSUB_ATTEMPTS; attempt++) {
        cli_reply_cleanup(&r);
        dv_err_clear(&err);
        rc = cli_client_call(c, "POST", "/v1/jobs", body, &hdr, 1, &r, &err);
        if (!retryable(rc, &r) || attempt == QSUB_ATTEMPTS) {
            break;
        }
        sleep_seconds(delay);
        delay *= 2;
    }
    if (rc < 0) {
        status = cli_client_report_transport(c, &err);
    } else if (r.status >= 200 && r.status < 300) {
        const char *id = json_string_value(json_object_get(r.body, "job_id"));

        if (id == NULL) {
            fprintf(stderr, "qsub: the server's answer has no job id\n");
            status = 1;
        } else {
            if (block) {
                block_signals(id);
            }
            if (!quiet) {
                printf("%s\n", id);
            }
            if (block) {
                fflush(stdout);
                status = block_wait(c, id);
            }
        }
    } else {
        fprintf(stderr, "qsub: %s\n", r.message);
        status = pbs_error_exit_status(r.code);
    }
    cli_reply_cleanup(&r);
    json_decref(body);
    cli_client_free(c);
    return status;
}

static char *
join_args(int argc, char **argv)
{
    struct dv_buf b;

    dv_buf_init(&b);
    for (int i = 1; i < argc; i++) {
        if (i > 1) {
            dv_buf_putc(&b, ' ');
        }
        dv_buf_puts(&b, argv[i]);
    }
    return dv_buf_steal(&b);
}

/* Reads directives into o. Returns 0 or the exit status after messages. */
static int
scan_directives(struct qsub_opts *o, const char *script)
{
    struct dir_scan scan;
    const char *env_prefix = getenv("PBS_DPREFIX");

    dir_scan_init(&scan, script);
    for (;;) {
        struct cli_getopt g;
        struct dv_buf errs;
        char **argv = NULL;
        int argc = 0;
        char bad = 0;
        int n;
        int rc;

        rc = dir_scan_next(&scan, qsub_dir_prefix(o, env_prefix), &argv, &argc,
                           &bad);
        if (rc == 0) {
            return 0;
        }
        if (rc < 0) {
            fprintf(stderr, "qsub: unmatched %c\n", bad);
            return 1;
        }
        dv_buf_init(&errs);
        n = qsub_opts_parse(o, argc, argv, QSUB_SRC_DIRECTIVE, &errs, &g);
        if (n == 0 && (g.noperands > 0 || g.ddash >= 0)) {
            n = 1;
        }
        if (n > 0) {
            qsub_directive_error(&errs, argc, argv);
            fputs(dv_buf_str(&errs), stderr);
        }
        dv_buf_cleanup(&errs);
        cli_getopt_cleanup(&g);
        cli_strv_free(argv, argc);
        if (n > 0) {
            return 1;
        }
    }
}

int
cmd_qsub(int argc, char **argv)
{
    struct qsub_opts o;
    struct cli_getopt g;
    struct dv_buf errs;
    struct dv_buf script;
    struct dv_job_spec spec;
    struct qsub_ctx ctx;
    struct utsname uts;
    char hostbuf[256];
    char *submit_args = NULL;
    char *user = NULL;
    char *group = NULL;
    char *fqdn = NULL;
    char *cwd = NULL;
    char *default_name = NULL;
    const char *script_path = NULL;
    char **cmd = NULL;
    int ncmd = 0;
    int status = 0;
    int nerr;

    if (cli_print_version_if_asked(argc, argv)) {
        return 0;
    }
    qsub_opts_init(&o);
    dv_buf_init(&errs);
    dv_buf_init(&script);
    dv_job_spec_init(&spec);
    nerr = qsub_opts_parse(&o, argc, argv, QSUB_SRC_CMDLINE, &errs, &g);
    fputs(dv_buf_str(&errs), stderr);
    if (g.ddash >= 0) {
        /* "-- command args": nothing else may be an operand. */
        if (g.noperands == 0 || g.operand_idx[0] != g.ddash + 1) {
            nerr++;
        }
        cmd = &argv[g.ddash + 1];
        ncmd = argc - g.ddash - 1;
    } else if (g.noperands > 1 ||
               (g.noperands == 1 && g.operand_idx[0] != argc - 1)) {
        nerr++;
    } else if (g.noperands == 1) {
        script_path = g.operands[0];
    }
    cli_getopt_cleanup(&g);
    if (nerr > 0) {
        status = usage();
        goto out;
    }
    if (ncmd == 0) {
        const char *base;

        status = read_script(script_path, &script);
        if (status != 0) {
            goto out;
        }
        if (script_has_crlf(dv_buf_str(&script))) {
            fprintf(stderr, "qsub: script contains cr, lf\n");
            status = 1;
            goto out;
        }
        status = scan_directives(&o, dv_buf_str(&script));
        if (status != 0) {
            goto out;
        }
        if (script_path == NULL || strcmp(script_path, "-") == 0) {
            default_name = dv_xstrdup("STDIN");
        } else {
            base = strrchr(script_path, '/');
            default_name = dv_xstrdup(base != NULL ? base + 1 : script_path);
        }
    } else {
        default_name = dv_xstrdup("STDIN");
    }

    if (o.array_src > 0 && o.rerun_src > 0 && !o.rerunnable) {
        fputs("qsub:  cannot submit non-rerunable Array Job\n", stderr);
        status = usage();
        goto out;
    }
    cwd = work_dir();
    if (cwd == NULL) {
        fprintf(stderr, "qsub: cannot get current directory: %s\n",
                strerror(errno));
        status = 3;
        goto out;
    }
    if (gethostname(hostbuf, sizeof(hostbuf) - 1) < 0) {
        fprintf(stderr, "qsub: cannot get full local host name\n");
        status = 3;
        goto out;
    }
    hostbuf[sizeof(hostbuf) - 1] = '\0';
    if (uname(&uts) < 0) {
        fprintf(stderr, "qsub: cannot get uname info: %s\n", strerror(errno));
        status = 3;
        goto out;
    }
    fqdn = full_host_name(hostbuf);
    user = cli_current_user();
    group = group_name();
    submit_args = join_args(argc, argv);
    memset(&ctx, 0, sizeof(ctx));
    ctx.user = user;
    ctx.group = group;
    ctx.host = hostbuf;
    ctx.fqdn = fqdn;
    ctx.cwd = cwd;
    ctx.system = uts.sysname;
    ctx.envp = environ;
    ctx.script = ncmd == 0 ? dv_buf_str(&script) : NULL;
    ctx.cmd_argv = cmd;
    ctx.cmd_argc = ncmd;
    ctx.default_name = default_name;
    ctx.submit_args = submit_args;
    dv_buf_reset(&errs);
    if (qsub_build_spec(&o, &ctx, &spec, &errs) < 0) {
        fputs(dv_buf_str(&errs), stderr);
        status = 1;
        goto out;
    }
    status = submit(&spec, o.z_src > 0 && o.z, o.block_src > 0 && o.block);
out:
    dv_job_spec_cleanup(&spec);
    qsub_opts_cleanup(&o);
    dv_buf_cleanup(&errs);
    dv_buf_cleanup(&script);
    free(submit_args);
    free(user);
    free(group);
    free(fqdn);
    free(cwd);
    free(default_name);
    return status;
}
