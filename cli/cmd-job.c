/*
 * drover job: the native interface to JSON jobs (docs/jobspec.md).
 *   drover job run FILE.json    submit ("-" reads standard input); prints
 *                               the job id, as qsub does
 *   drover job status ID        the job and a table of its allocations
 *   drover job stop ID          stop the job (DELETE /v1/jobs/:id)
 *   drover job wait ID...       wait for the jobs to finish (blocking
 *                               queries); print each exit status, exit
 *                               with the worst
 * Errors are worded and numbered as the PBS commands' are (docs/api.md's
 * table); a submission is retried under one Idempotency-Key, as qsub's.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/mem.h"
#include "lib/strutil.h"

#define JOB_ATTEMPTS 4
#define JOB_MAX_FILE (8 * 1024 * 1024)
#define JOB_ALLOCS_SHOWN 1000

static int
job_usage(FILE *f)
{
    fputs("usage: drover job run FILE.json   submit a JSON job (- reads "
          "standard input)\n"
          "       drover job status ID      show a job and its "
          "allocations\n"
          "       drover job stop ID        stop a job\n"
          "       drover job wait ID...     wait for jobs to finish; exit "
          "with the worst status\n",
          f);
    return 2;
}

/* Reads path ("-": standard input) into out. Returns 0 or the exit status
 * after a message. */
static int
read_spec(const char *path, struct dv_buf *out)
{
    int fd = STDIN_FILENO;
    char buf[65536];
    int rc = 0;

    if (strcmp(path, "-") != 0) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "drover job run: cannot open %s: %s\n", path,
                    strerror(errno));
            return 1;
        }
    }
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            fprintf(stderr, "drover job run: cannot read %s: %s\n", path,
                    strerror(errno));
            rc = 1;
            break;
        }
        if (n == 0) {
            break;
        }
        if (out->len + (size_t)n > JOB_MAX_FILE) {
            fprintf(stderr, "drover job run: %s is larger than %d bytes\n",
                    path, JOB_MAX_FILE);
            rc = 1;
            break;
        }
        dv_buf_append(out, buf, (size_t)n);
    }
    if (fd != STDIN_FILENO) {
        close(fd);
    }
    return rc;
}

static void
random_key(char *buf, size_t size)
{
    unsigned char raw[16];
    static const char hex[] = "0123456789abcdef";

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

static void
sleep_seconds(double s)
{
    struct timespec ts;

    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static int
job_run(const char *path)
{
    struct cli_client *c = NULL;
    struct cli_reply r;
    struct dv_err err;
    struct dv_http_header hdr;
    struct dv_buf text;
    json_error_t jerr;
    json_t *body = NULL;
    char key[64];
    double delay = 0.25;
    int status, rc = -1;

    memset(&r, 0, sizeof(r));
    dv_buf_init(&text);
    status = read_spec(path, &text);
    if (status != 0) {
        goto out;
    }
    body =
        json_loadb(dv_buf_str(&text), text.len, JSON_REJECT_DUPLICATES, &jerr);
    if (body == NULL) {
        fprintf(stderr,
                "drover job run: %s: not valid JSON: line %d column "
                "%d: %s\n",
                strcmp(path, "-") == 0 ? "standard input" : path, jerr.line,
                jerr.column, jerr.text);
        status = 1;
        goto out;
    }
    if (json_is_object(body) && json_object_get(body, "submit_host") == NULL) {
        char host[256];
        if (gethostname(host, sizeof(host) - 1) == 0) {
            host[sizeof(host) - 1] = '\0';
            json_object_set_new(body, "submit_host", json_string(host));
        }
    }
    dv_err_clear(&err);
    c = cli_client_new("drover job run", &err);
    if (c == NULL) {
        fprintf(stderr, "drover job run: %s\n", err.msg);
        status = 1;
        goto out;
    }
    random_key(key, sizeof(key));
    hdr.name = "Idempotency-Key";
    hdr.value = key;
    for (int attempt = 1; attempt <= JOB_ATTEMPTS; attempt++) {
        cli_reply_cleanup(&r);
        dv_err_clear(&err);
        rc = cli_client_call(c, "POST", "/v1/jobs", body, &hdr, 1, &r, &err);
        if ((rc == 0 && r.status != 502 && r.status != 503 &&
             r.status != 504) ||
            attempt == JOB_ATTEMPTS) {
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
            fprintf(stderr, "drover job run: the server's answer has no job "
                            "id\n");
            status = 1;
        } else {
            printf("%s\n", id);
        }
    } else {
        fprintf(stderr, "drover job run: %s\n", r.message);
        status = pbs_error_exit_status(r.code);
    }
out:
    cli_reply_cleanup(&r);
    cli_client_free(c);
    json_decref(body);
    dv_buf_cleanup(&text);
    return status;
}

static const char *
str_or(const json_t *o, const char *key, const char *def)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? s : def;
}

static void
put_time(struct dv_buf *out, const json_t *v)
{
    char buf[64];
    time_t t;
    struct tm tm;

    if (!json_is_integer(v)) {
        dv_buf_puts(out, "-");
        return;
    }
    t = (time_t)json_integer_value(v);
    localtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
    dv_buf_puts(out, buf);
}

static void
put_int(struct dv_buf *out, const json_t *v)
{
    if (json_is_integer(v)) {
        dv_buf_printf(out, "%lld", (long long)json_integer_value(v));
    } else {
        dv_buf_puts(out, "-");
    }
}

/* The job's summary lines. */
static void
format_job(struct dv_buf *out, const json_t *j)
{
    const json_t *spec = json_object_get(j, "spec");
    const json_t *groups = json_object_get(spec, "groups");
    size_t i;
    json_t *g;

    dv_buf_printf(out, "Job:        %s\n", str_or(j, "job_id", "?"));
    dv_buf_printf(out, "Name:       %s\n", str_or(j, "name", "-"));
    dv_buf_printf(out, "Type:       %s\n", str_or(j, "type", "-"));
    dv_buf_printf(out, "Owner:      %s\n", str_or(j, "owner", "-"));
    dv_buf_printf(out, "Queue:      %s\n", str_or(j, "queue", "-"));
    dv_buf_puts(out, "Priority:   ");
    put_int(out, json_object_get(j, "priority"));
    dv_buf_printf(out, "\nState:      %s\n", str_or(j, "state", "-"));
    dv_buf_puts(out, "Exit:       ");
    put_int(out, json_object_get(j, "exit_status"));
    dv_buf_puts(out, "\nSubmitted:  ");
    put_time(out, json_object_get(j, "ctime"));
    dv_buf_puts(out, "\nStarted:    ");
    put_time(out, json_object_get(j, "stime"));
    dv_buf_puts(out, "\nEnded:      ");
    put_time(out, json_object_get(j, "end_time"));
    dv_buf_printf(out, "\nComment:    %s\n", str_or(j, "comment", "-"));
    json_array_foreach(groups, i, g)
    {
        const json_t *res = json_object_get(g, "resources");
        dv_buf_printf(out, "Group:      %s count=", str_or(g, "name", "?"));
        put_int(out, json_object_get(g, "count"));
        dv_buf_puts(out, " cores=");
        put_int(out, json_object_get(res, "cores"));
        dv_buf_printf(out, " memory=%s\n", str_or(res, "memory", "-"));
    }
}

/* The allocations table. */
static void
format_allocs(struct dv_buf *out, const json_t *allocs)
{
    size_t i;
    json_t *a;

    dv_buf_printf(out,
                  "\nAllocations\n%-10s %-14s %-8s %-16s %-8s %-9s %-6s "
                  "%s\n",
                  "ID", "Group", "Instance", "Node", "Desired", "Status",
                  "Exit", "Created");
    json_array_foreach(allocs, i, a)
    {
        char exit_text[24];
        const json_t *e = json_object_get(a, "exit_status");

        if (json_is_integer(e)) {
            snprintf(exit_text, sizeof(exit_text), "%lld",
                     (long long)json_integer_value(e));
        } else {
            dv_strlcpy(exit_text, "-", sizeof(exit_text));
        }
        dv_buf_printf(
            out, "%-10lld %-14.14s %-8lld %-16.16s %-8s %-9s %-6s ",
            (long long)json_integer_value(json_object_get(a, "id")),
            str_or(a, "group", "-"),
            (long long)json_integer_value(json_object_get(a, "instance")),
            str_or(a, "node", "-"), str_or(a, "desired_status", "-"),
            str_or(a, "client_status", "-"), exit_text);
        put_time(out, json_object_get(a, "create_time"));
        dv_buf_putc(out, '\n');
    }
    if (json_array_size(allocs) == 0) {
        dv_buf_puts(out, "(none)\n");
    }
}

/* GET path; prints the error and returns its exit status, or 0 with
 * r->body set. */
static int
get_json(struct cli_client *c, const char *prog, const char *path,
         const char *operand, struct cli_reply *r)
{
    struct dv_err err;

    dv_err_clear(&err);
    if (cli_client_call(c, "GET", path, NULL, NULL, 0, r, &err) < 0) {
        return cli_client_report_transport(c, &err);
    }
    if (r->status < 200 || r->status >= 300 || r->body == NULL) {
        char *id = jobid_expand(operand, cli_client_server_name(c));
        int status = cli_report_job_error(prog, r, id);
        free(id);
        return status;
    }
    return 0;
}

static int
job_status(const char *operand)
{
    static const char prog[] = "drover job status";
    struct cli_client *c;
    struct cli_reply rj, ra;
    struct dv_err err;
    struct dv_buf out;
    long long seq;
    char *server = NULL;
    char path[128];
    int status;

    memset(&rj, 0, sizeof(rj));
    memset(&ra, 0, sizeof(ra));
    if (jobid_parse(operand, &seq, &server) < 0) {
        fprintf(stderr, "%s: illegally formed job identifier: %s\n", prog,
                operand);
        return 1;
    }
    free(server);
    dv_err_clear(&err);
    c = cli_client_new(prog, &err);
    if (c == NULL) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        return 1;
    }
    dv_buf_init(&out);
    snprintf(path, sizeof(path), "/v1/jobs/%lld", seq);
    status = get_json(c, prog, path, operand, &rj);
    if (status != 0) {
        goto out;
    }
    snprintf(path, sizeof(path), "/v1/jobs/%lld/allocations?limit=%d", seq,
             JOB_ALLOCS_SHOWN);
    status = get_json(c, prog, path, operand, &ra);
    if (status != 0) {
        goto out;
    }
    format_job(&out, rj.body);
    format_allocs(&out, json_object_get(ra.body, "allocations"));
    if (json_is_integer(json_object_get(ra.body, "next_after"))) {
        dv_buf_printf(&out, "(only the newest %d allocations are shown)\n",
                      JOB_ALLOCS_SHOWN);
    }
    fputs(dv_buf_str(&out), stdout);
out:
    dv_buf_cleanup(&out);
    cli_reply_cleanup(&rj);
    cli_reply_cleanup(&ra);
    cli_client_free(c);
    return status;
}

static int
job_stop(const char *operand)
{
    static const char prog[] = "drover job stop";
    struct cli_client *c;
    struct cli_reply r;
    struct dv_err err;
    long long seq;
    char *server = NULL;
    char path[96];
    int status = 0;

    if (jobid_parse(operand, &seq, &server) < 0) {
        fprintf(stderr, "%s: illegally formed job identifier: %s\n", prog,
                operand);
        return 1;
    }
    free(server);
    dv_err_clear(&err);
    c = cli_client_new(prog, &err);
    if (c == NULL) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        return 1;
    }
    snprintf(path, sizeof(path), "/v1/jobs/%lld", seq);
    if (cli_client_call(c, "DELETE", path, NULL, NULL, 0, &r, &err) < 0) {
        status = cli_client_report_transport(c, &err);
    } else {
        if (r.status < 200 || r.status >= 300) {
            char *id = jobid_expand(operand, cli_client_server_name(c));
            status = cli_report_job_error(prog, &r, id);
            free(id);
        }
        cli_reply_cleanup(&r);
    }
    cli_client_free(c);
    return status;
}

/*
 * drover job wait ID...: waits for each job to finish (blocking queries,
 * cli_jobs_wait) and prints "<id> <Exit_status>" for each, or "<id> -
 * <comment>" for one that ended without a status. Exits with the worst
 * (highest) of their qsub -W block=true statuses.
 */
static int
job_wait(int n, char **operands)
{
    static const char prog[] = "drover job wait";
    struct cli_client *c;
    struct dv_err err;
    int worst = 0;

    dv_err_clear(&err);
    c = cli_client_new(prog, &err);
    if (c == NULL) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        struct cli_reply r;
        struct cli_job j;
        long long seq;
        char *server = NULL, *id;
        int status, rc;

        if (jobid_parse(operands[i], &seq, &server) < 0) {
            fprintf(stderr, "%s: illegally formed job identifier: %s\n", prog,
                    operands[i]);
            worst = worst > 1 ? worst : 1;
            continue;
        }
        free(server);
        rc = cli_jobs_wait(c, seq, &j, &r, &err);
        if (rc < 0) {
            status = cli_client_report_transport(c, &err);
        } else if (rc > 0) {
            id = jobid_expand(operands[i], cli_client_server_name(c));
            status = cli_report_job_error(prog, &r, id);
            free(id);
            cli_reply_cleanup(&r);
        } else {
            status = cli_wait_exit_code(&j);
            if (j.has_exit_status) {
                printf("%s %d\n", j.job_id, j.exit_status);
            } else {
                printf("%s - %s\n", j.job_id,
                       j.comment != NULL ? j.comment : "");
            }
            fflush(stdout);
            cli_job_cleanup(&j);
        }
        worst = status > worst ? status : worst;
    }
    cli_client_free(c);
    return worst;
}

int
cmd_job(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "wait") == 0) {
        return job_wait(argc - 2, argv + 2);
    }
    if (argc != 3) {
        if (argc == 2 &&
            (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0)) {
            job_usage(stdout);
            return 0;
        }
        return job_usage(stderr);
    }
    if (strcmp(argv[1], "run") == 0) {
        return job_run(argv[2]);
    }
    if (strcmp(argv[1], "status") == 0) {
        return job_status(argv[2]);
    }
    if (strcmp(argv[1], "stop") == 0) {
        return job_stop(argv[2]);
    }
    fprintf(stderr, "drover job: unknown command \"%s\"\n", argv[1]);
    return job_usage(stderr);
}
