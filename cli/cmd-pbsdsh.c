/*
 * pbsdsh: run a command on the chunks of the PBS job it runs in (PBS
 * pbsdsh(1B)). The job is $PBS_JOBID; POST /v1/jobs/:id/tasks starts one
 * task per chunk (or on chunk -n N, or -c N copies round-robin), each
 * node daemon runs its task as the job owner with the job's environment,
 * and pbsdsh waits for them with a blocking query on the job (GET
 * /v1/jobs/:id/tasks?index=N&wait=D), relays each task's output to its
 * own stdout and stderr (inside the job: the job's output files) and exits
 * with the worst task status. -s runs the tasks one after the other, -o
 * does not wait, -v reports each task's end on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/mem.h"
#include "lib/strutil.h"

#define PBSDSH_WAIT "20s" /* below the CLI's request timeout */

struct pbsdsh {
    struct cli_client *c;
    long long seq;
    const char *jobid;
    char **argv;
    int argc;
    int verbose;
    int no_wait;
    int worst; /* the exit status so far */
};

static int
pbsdsh_usage(void)
{
    fputs("usage: pbsdsh [-c copies][-s][-v][-o] -- program [args...]\n"
          "       pbsdsh [-n node_index][-s][-v][-o] -- program [args...]\n"
          "       pbsdsh --version\n",
          stderr);
    return 1;
}

/* A task's PBS exit status as a process exit code: a signal (256 + N)
 * as a shell reports it (128 + N), a task that could not start 255. */
static int
exit_code(long long status)
{
    if (status < 0) {
        return 255;
    }
    if (status > 256) {
        return (int)(128 + (status - 256) % 128);
    }
    return (int)(status & 0xff);
}

static int
report_error(struct pbsdsh *p, const struct cli_reply *r)
{
    if (strcmp(r->code, "job_not_found") == 0) {
        fprintf(stderr, "pbsdsh: Unknown Job Id %s\n", p->jobid);
    } else {
        fprintf(stderr, "pbsdsh: %s\n", r->message);
    }
    return 1;
}

/* Starts argv on node (-1: every node). Appends the new task ids to
 * *ids. Returns the job's index, or -1 on failure (reported unless it is
 * a node index past the last one and quiet_range is set; *code gets the
 * API error code). */
static long long
start_tasks(struct pbsdsh *p, int node, int quiet_range, long long **ids,
            int *nids, char *code, size_t codesize)
{
    json_t *body = json_object(), *argv = json_array(), *t;
    struct cli_reply r;
    struct dv_err err;
    char path[96];
    long long index = -1;
    size_t i;

    code[0] = '\0';
    for (int k = 0; k < p->argc; k++) {
        json_array_append_new(argv, json_string(p->argv[k]));
    }
    json_object_set_new(body, "argv", argv);
    json_object_set_new(body, "node",
                        node >= 0 ? json_integer(node) : json_null());
    snprintf(path, sizeof(path), "/v1/jobs/%lld/tasks", p->seq);
    dv_err_clear(&err);
    if (cli_client_call(p->c, "POST", path, body, NULL, 0, &r, &err) < 0) {
        json_decref(body);
        cli_client_report_transport(p->c, &err);
        return -1;
    }
    json_decref(body);
    if (r.status < 200 || r.status >= 300) {
        dv_strlcpy(code, r.code, codesize);
        if (strcmp(r.code, "bad_node_index") != 0 || !quiet_range) {
            report_error(p, &r);
        }
        cli_reply_cleanup(&r);
        return -1;
    }
    json_array_foreach (json_object_get(r.body, "tasks"), i, t) {
        *ids = dv_xrealloc(*ids, sizeof(**ids) * (size_t)(*nids + 1));
        (*ids)[(*nids)++] =
            (long long)json_integer_value(json_object_get(t, "id"));
    }
    index = (long long)json_integer_value(json_object_get(r.body, "index"));
    cli_reply_cleanup(&r);
    return index;
}

static void
relay(const char *text, FILE *f)
{
    if (text != NULL && *text != '\0') {
        fputs(text, f);
        fflush(f);
    }
}

/* Waits for every task of ids to end, relaying each one's output once.
 * Returns 0, or -1 when the job ended first or a request failed. */
static int
wait_tasks(struct pbsdsh *p, const long long *ids, int nids, long long index)
{
    char *done = dv_xcalloc((size_t)nids + 1, 1);
    struct dv_buf path;
    int left = nids, rc = -1;

    dv_buf_init(&path);
    while (left > 0) {
        struct cli_reply r;
        struct dv_err err;
        const char *state;
        json_t *t;
        size_t i;

        dv_buf_reset(&path);
        dv_buf_printf(&path, "/v1/jobs/%lld/tasks?ids=", p->seq);
        for (int k = 0; k < nids; k++) {
            dv_buf_printf(&path, "%s%lld", k > 0 ? "," : "", ids[k]);
        }
        /* The first read answers at once; later ones wait for the job to
         * move (a task ended, or the job did). */
        if (index >= 0) {
            dv_buf_printf(&path, "&index=%lld&wait=%s", index, PBSDSH_WAIT);
        }
        dv_err_clear(&err);
        if (cli_client_call(p->c, "GET", dv_buf_str(&path), NULL, NULL, 0, &r,
                            &err) < 0) {
            cli_client_report_transport(p->c, &err);
            goto out;
        }
        if (r.status < 200 || r.status >= 300) {
            report_error(p, &r);
            cli_reply_cleanup(&r);
            goto out;
        }
        json_array_foreach (json_object_get(r.body, "tasks"), i, t) {
            long long id = json_integer_value(json_object_get(t, "id"));
            long long st;
            int k;

            for (k = 0; k < nids && ids[k] != id; k++) {
            }
            if (k == nids || done[k] ||
                strcmp(json_string_value(json_object_get(t, "state")) != NULL
                           ? json_string_value(json_object_get(t, "state"))
                           : "",
                       "exited") != 0) {
                continue;
            }
            done[k] = 1;
            left--;
            st = json_integer_value(json_object_get(t, "exit_status"));
            relay(json_string_value(json_object_get(t, "stdout")), stdout);
            relay(json_string_value(json_object_get(t, "stderr")), stderr);
            if (p->verbose) {
                const char *msg =
                    json_string_value(json_object_get(t, "message"));
                fprintf(stderr,
                        "pbsdsh: task %lld on node %lld (%s) exit status "
                        "%lld%s%s\n",
                        id,
                        (long long)json_integer_value(
                            json_object_get(t, "node_index")),
                        json_string_value(json_object_get(t, "host")) != NULL
                            ? json_string_value(json_object_get(t, "host"))
                            : "?",
                        st, msg != NULL ? ": " : "", msg != NULL ? msg : "");
            }
            if (exit_code(st) > p->worst) {
                p->worst = exit_code(st);
            }
        }
        index = (long long)json_integer_value(json_object_get(r.body, "index"));
        state = json_string_value(json_object_get(r.body, "job_state"));
        if (left > 0 && state != NULL && strcmp(state, "running") != 0 &&
            strcmp(state, "exiting") != 0) {
            fprintf(stderr, "pbsdsh: job %s ended before %d task%s did\n",
                    p->jobid, left, left == 1 ? "" : "s");
            cli_reply_cleanup(&r);
            goto out;
        }
        cli_reply_cleanup(&r);
    }
    rc = 0;
out:
    dv_buf_cleanup(&path);
    free(done);
    return rc;
}

/* The job's chunk count (Resource_List.nodect), or -1. */
static int
job_nodect(struct pbsdsh *p)
{
    struct cli_reply r;
    struct dv_err err;
    char path[64];
    const char *v;
    int n = -1;

    snprintf(path, sizeof(path), "/v1/jobs/%lld", p->seq);
    dv_err_clear(&err);
    if (cli_client_call(p->c, "GET", path, NULL, NULL, 0, &r, &err) < 0) {
        cli_client_report_transport(p->c, &err);
        return -1;
    }
    if (r.status != 200) {
        report_error(p, &r);
    } else {
        v = json_string_value(json_object_get(
            json_object_get(r.body, "resource_list"), "nodect"));
        if (v == NULL || dv_parse_int(v, 1, 1000000, &n) < 0) {
            n = -1;
        }
    }
    cli_reply_cleanup(&r);
    return n;
}

/* Starts on node (-1: all), waits unless -o. Returns 0, 1 on failure, 2
 * when serial and node is past the last one (not reported). */
static int
run_on(struct pbsdsh *p, int node, int serial)
{
    long long *ids = NULL;
    char code[64];
    int nids = 0, rc = 0, quiet = serial && node > 0;
    long long index =
        start_tasks(p, node, quiet, &ids, &nids, code, sizeof(code));

    if (index < 0) {
        free(ids);
        return quiet && strcmp(code, "bad_node_index") == 0 ? 2 : 1;
    }
    if (!p->no_wait && wait_tasks(p, ids, nids, -1) < 0) {
        rc = 1;
    }
    (void)index;
    free(ids);
    return rc;
}

int
cmd_pbsdsh(int argc, char **argv)
{
    struct pbsdsh p;
    struct dv_err err;
    int node = -1, copies = -1, serial = 0, i, rc = 0;
    char *server = NULL;

    memset(&p, 0, sizeof(p));
    if (cli_print_version_if_asked(argc, argv)) {
        return 0;
    }
    /* Options stop at "--" or at the program (its own options follow). */
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0') {
            break;
        }
        for (const char *f = a + 1; *f != '\0'; f++) {
            if (*f == 's') {
                serial = 1;
            } else if (*f == 'v') {
                p.verbose = 1;
            } else if (*f == 'o') {
                p.no_wait = 1;
            } else if (*f == 'n' || *f == 'c') {
                const char *v =
                    f[1] != '\0' ? f + 1 : (i + 1 < argc ? argv[++i] : NULL);
                int n;

                if (v == NULL ||
                    dv_parse_int(v, *f == 'n' ? 0 : 1, 1000000, &n) < 0) {
                    return pbsdsh_usage();
                }
                if (*f == 'n') {
                    node = n;
                } else {
                    copies = n;
                }
                break;
            } else {
                return pbsdsh_usage();
            }
        }
    }
    if (i >= argc || (node >= 0 && copies >= 0)) {
        return pbsdsh_usage();
    }
    p.argv = argv + i;
    p.argc = argc - i;
    p.jobid = getenv("PBS_JOBID");
    if (dv_str_empty(p.jobid)) {
        fputs("pbsdsh: not running in a PBS job: PBS_JOBID is not set\n",
              stderr);
        return 1;
    }
    if (jobid_parse(p.jobid, &p.seq, &server) < 0) {
        fprintf(stderr, "pbsdsh: illegally formed job identifier: %s\n",
                p.jobid);
        return 1;
    }
    free(server);
    dv_err_clear(&err);
    p.c = cli_client_new("pbsdsh", &err);
    if (p.c == NULL) {
        fprintf(stderr, "pbsdsh: %s\n", err.msg);
        return 1;
    }
    if (node >= 0) {
        rc = run_on(&p, node, 0);
    } else if (copies > 0) {
        int nodect = job_nodect(&p);

        for (int k = 0; nodect > 0 && k < copies && rc != 1; k++) {
            rc = run_on(&p, k % nodect, 0);
        }
        rc = nodect > 0 ? rc : 1;
    } else if (serial) {
        /* One node after the other, until past the last one. */
        for (int k = 0; rc == 0; k++) {
            rc = run_on(&p, k, 1);
        }
        rc = rc == 2 ? 0 : rc;
    } else {
        rc = run_on(&p, -1, 0);
    }
    cli_client_free(p.c);
    if (rc != 0) {
        return rc;
    }
    return p.worst;
}
