/*
 * qstat: job status in PBS's layouts (default, alternate -a/-u/-i/-r/-H
 * with -n -s -1 -G -M -w, full -f with -F json|dsv and -D). Operands are
 * job ids (GET /v1/jobs/:id) or destinations (queue[@server]: every page
 * of GET /v1/jobs?queue=...); no operand lists every job. Errors are
 * PBS's, and the exit status is that of the last failure.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "lib/clock.h"
#include "lib/mem.h"
#include "lib/strutil.h"

#define QSTAT_OPTSTRING "ainpqrstwxu:fGHJMQEBW:T1F:D:"

enum qstat_format { FMT_DEFAULT = 0, FMT_DSV, FMT_JSON };

/* What is shown and how. */
struct qstat {
    struct cli_client *c;
    int full;           /* -f */
    int alt;            /* -a -i -r -H -u -n -s -G -M -1 */
    int alt_opt;        /* QSTAT_ALT_* */
    int wide;           /* -w */
    int history;        /* -x, -H */
    int subjobs;        /* -t: arrays are followed by their subjobs */
    int arrays_only;    /* -J: only arrays (with -t, and their subjobs) */
    const char *states; /* state letters to keep, or NULL */
    char *users;        /* -u list, or NULL */
    enum qstat_format format;
    const char *delim;
    int header; /* the next display may print the header */
    int any_failed;
    json_t *json_jobs; /* "Jobs", once a job was shown */

    int queues;          /* -Q: queue status */
    json_t *json_queues; /* -Qf -F json: "Queue" */
    struct dv_buf out;
};

static const char qstat_usage_text[] =
    "usage: \n"
    "qstat [-f] [-J] [-p] [-t] [-x] [-E] [-F format | -w] [-D delim] [ "
    "job_identifier... | destination... ]\n"
    "qstat [-a|-i|-r|-H|-T] [-J] [-t] [-u user] [-n] [-s] [-G|-M] [-1] "
    "[-w]\n"
    "\t[ job_identifier... | destination... ]\n"
    "qstat -Q [-f] [-F format] [-D delim] [ destination... ]\n"
    "qstat -q [-G|-M] [ destination... ]\n"
    "qstat -B [-f] [-F format] [-D delim] [ server_name... ]\n"
    "qstat --version\n";

static void
flush_out(struct qstat *q)
{
    if (q->out.len > 0) {
        fwrite(q->out.data, 1, q->out.len, stdout);
        dv_buf_reset(&q->out);
    }
    fflush(stdout);
}

static int
user_listed(const char *users, const char *owner)
{
    size_t olen = strcspn(owner, "@");
    const char *p = users;

    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        size_t ulen = strcspn(p, "@,");

        if (ulen == olen && strncmp(p, owner, olen) == 0) {
            return 1;
        }
        p += n;
        if (*p == ',') {
            p++;
        }
    }
    return 0;
}

static int
keep(const struct qstat *q, const struct cli_job *j)
{
    if (q->states != NULL &&
        strchr(q->states, cli_job_state_letter(j)) == NULL) {
        return 0;
    }
    if (q->users != NULL &&
        (j->owner == NULL || !user_listed(q->users, j->owner))) {
        return 0;
    }
    return 1;
}

/* Shows jobs (those kept); prints the header first when allowed. As in
 * PBS, only the first answer from the server may print the header (qstat
 * fetches the server status, which carries the header, on its first
 * connection only): an operand that reached the server clears q->header
 * whether or not it showed jobs; one that never reached it does not. */
static void display_one(struct qstat *q, struct cli_job *j, const char *server,
                        int *header);

static void
display(struct qstat *q, struct cli_job *jobs, int n, const char *server)
{
    int header = q->header;

    q->header = 0;
    for (int i = 0; i < n; i++) {
        struct cli_job *j = &jobs[i];

        if (q->arrays_only && j->array == 0) {
            continue;
        }
        if (j->array != CLI_SUBJOB) {
            display_one(q, j, server, &header);
        }
        for (int k = 0; q->subjobs && k < j->nsubjobs; k++) {
            if (keep(q, &j->subjobs[k])) {
                display_one(q, &j->subjobs[k], server, &header);
            }
        }
        if (j->array == CLI_SUBJOB) {
            display_one(q, j, server, &header);
        }
    }
    flush_out(q);
}

/* One row (or -f block) of job j. */
static void
display_one(struct qstat *q, struct cli_job *j, const char *server, int *header)
{
    if (q->alt) {
        if (*header) {
            qstat_alt_header_opt(&q->out, server, q->wide, q->alt_opt);
            *header = 0;
        }
        qstat_alt_row(&q->out, j, q->alt_opt);
    } else if (q->full) {
        struct qstat_attrs a;
        char *srv = cli_job_server(j, server);

        memset(&a, 0, sizeof(a));
        qstat_job_attrs(j, srv, &a);
        if (q->format == FMT_JSON) {
            if (q->json_jobs == NULL) {
                q->json_jobs = json_object();
            }
            json_object_set_new(q->json_jobs, j->job_id, qstat_attrs_json(&a));
        } else if (q->format == FMT_DSV) {
            qstat_full_dsv(&q->out, j->job_id, &a, q->delim);
        } else {
            qstat_full_text(&q->out, j->job_id, &a, q->wide);
        }
        qstat_attrs_cleanup(&a);
        free(srv);
    } else {
        if (*header) {
            qstat_default_header(&q->out, q->wide);
            *header = 0;
        }
        qstat_job_default_row(&q->out, j, q->wide);
    }
}

static int
report_reply(struct qstat *q, const struct cli_reply *r)
{
    fprintf(stderr, "qstat: %s\n", r->message);
    q->any_failed = pbs_error_exit_status(r->code);
    return q->any_failed;
}

/* Lists jobs (optionally of one queue) and shows those kept. */
static void
show_list(struct qstat *q, const char *queue)
{
    struct cli_joblist list;
    struct cli_reply r;
    struct dv_err err;
    struct dv_buf query;
    int rc;
    int n = 0;

    dv_err_clear(&err);
    memset(&r, 0, sizeof(r));
    dv_buf_init(&query);
    dv_buf_puts(&query, q->history ? "history=true" : "");
    if (q->full && !q->alt) {
        dv_buf_puts(&query, query.len > 0 ? "&full=true" : "full=true");
    }
    if (q->subjobs) {
        dv_buf_puts(&query, query.len > 0 ? "&subjobs=true" : "subjobs=true");
    }
    if (!dv_str_empty(queue)) {
        dv_buf_puts(&query, query.len > 0 ? "&queue=" : "queue=");
        cli_urlencode(&query, queue);
    }
    if (q->users != NULL && strchr(q->users, ',') == NULL) {
        char *u = dv_xstrndup(q->users, strcspn(q->users, "@"));

        dv_buf_puts(&query, query.len > 0 ? "&owner=" : "owner=");
        cli_urlencode(&query, u);
        free(u);
    }
    rc = cli_jobs_list(q->c, dv_buf_str(&query), &list, &r, &err);
    dv_buf_cleanup(&query);
    if (rc < 0) {
        q->any_failed = cli_client_report_transport(q->c, &err);
        return;
    }
    if (rc > 0) {
        report_reply(q, &r);
        cli_reply_cleanup(&r);
        q->header = 0;
        return;
    }
    for (int i = 0; i < list.n; i++) {
        if (keep(q, &list.jobs[i])) {
            if (n != i) {
                struct cli_job tmp = list.jobs[n];
                list.jobs[n] = list.jobs[i];
                list.jobs[i] = tmp;
            }
            n++;
        }
    }
    if (n > 0) {
        display(q, list.jobs, n, list.server);
    } else {
        q->header = 0;
    }
    cli_joblist_cleanup(&list);
}

static void
show_job(struct qstat *q, const char *operand)
{
    struct cli_job j;
    struct cli_reply r;
    struct dv_err err;
    struct jobid want;
    char query[64] = "";
    int rc;

    if (jobid_parse_array(operand, &want) < 0) {
        fprintf(stderr, "qstat: illegally formed job identifier: %s\n",
                operand);
        q->any_failed = 1;
        return;
    }
    free(want.server);
    if (want.part == DV_ARRAY_ONE) {
        snprintf(query, sizeof(query), "subjob=%d", want.lo);
    } else if (want.part == DV_ARRAY_RANGE || q->subjobs) {
        snprintf(query, sizeof(query), "subjobs=true");
    }
    dv_err_clear(&err);
    rc = cli_jobs_get_query(q->c, want.seq, query, &j, &r, &err);
    if (rc < 0) {
        q->any_failed = cli_client_report_transport(q->c, &err);
        return;
    }
    if (rc > 0) {
        if (r.code[0] != '\0' && pbs_error_lookup(r.code) != NULL) {
            char *id = jobid_expand(operand, cli_client_server_name(q->c));
            q->any_failed = cli_report_job_error("qstat", &r, id);
            free(id);
        } else {
            report_reply(q, &r);
        }
        cli_reply_cleanup(&r);
        cli_job_cleanup(&j);
        q->header = 0;
        return;
    }
    if (!q->history && cli_job_state_letter(&j) == 'F') {
        char *srv = cli_job_server(&j, NULL);
        char *id = jobid_expand(operand, srv);

        fprintf(stderr,
                "qstat: %s Job has finished, use -x or -H to obtain "
                "historical job information\n",
                id);
        q->any_failed = pbs_error_exit_status("job_finished");
        free(id);
        free(srv);
        cli_job_cleanup(&j);
        q->header = 0;
        return;
    }
    {
        char *srv = cli_job_server(&j, NULL);

        if (want.part == DV_ARRAY_ONE || want.part == DV_ARRAY_RANGE) {
            /* 124[7]: that subjob; 124[1-5]: the subjobs in the range */
            int shown = 0;
            for (int k = 0; k < j.nsubjobs; k++) {
                struct cli_job *s = &j.subjobs[k];
                if (s->array_index >= want.lo && s->array_index <= want.hi) {
                    display(q, s, 1, srv);
                    shown++;
                }
            }
            if (shown == 0) {
                char *jid = jobid_expand(operand, srv);
                fprintf(stderr, "qstat: Unknown Job Id %s\n", jid);
                q->any_failed = pbs_error_exit_status("job_not_found");
                free(jid);
                q->header = 0;
            }
        } else {
            display(q, &j, 1, srv);
        }
        free(srv);
    }
    cli_job_cleanup(&j);
}

static int
usage(void)
{
    fputs(qstat_usage_text, stderr);
    return 2;
}

static void
print_json(struct qstat *q)
{
    json_t *root = json_object();
    const char *server = q->c->server_name;

    if (dv_str_empty(server)) {
        server = cli_client_server_name(q->c);
    }
    json_object_set_new(root, "timestamp", json_integer((json_int_t)dv_now()));
    json_object_set_new(root, "pbs_version", json_string(DV_VERSION));
    json_object_set_new(root, "pbs_server", json_string(server));
    if (q->json_jobs != NULL) {
        json_object_set_new(root, "Jobs", q->json_jobs);
        q->json_jobs = NULL;
    }
    if (q->json_queues != NULL) {
        json_object_set_new(root, "Queue", q->json_queues);
        q->json_queues = NULL;
    }
    cli_json_print(&q->out, root);
    dv_buf_putc(&q->out, '\n');
    flush_out(q);
    json_decref(root);
}

/* Shows one queue (an API queue object) in the chosen layout. */
static void
show_queue(struct qstat *q, const json_t *queue)
{
    if (!q->full) {
        if (q->header) {
            qstat_queue_header(&q->out);
            q->header = 0;
        }
        qstat_queue_row(&q->out, queue);
    } else if (q->format == FMT_JSON) {
        if (q->json_queues == NULL) {
            q->json_queues = json_object();
        }
        json_object_set_new(q->json_queues,
                            json_string_value(json_object_get(queue, "name")),
                            qstat_queue_json(queue));
    } else if (q->format == FMT_DSV) {
        qstat_queue_dsv(&q->out, queue, q->delim);
    } else {
        qstat_queue_full(&q->out, queue);
    }
}

/* qstat -Q [-f [-F json]] [destination...]: GET /v1/queues[/:name].
 * Returns the exit status. */
static int
show_queues(struct qstat *q, const struct cli_getopt *g)
{
    int status = 0;

    for (int i = 0; i < (g->noperands > 0 ? g->noperands : 1); i++) {
        struct cli_reply r;
        struct dv_buf path;
        struct dv_err err;
        const char *op = g->noperands > 0 ? g->operands[i] : NULL;
        size_t n = op != NULL ? strcspn(op, "@") : 0;

        dv_buf_init(&path);
        dv_buf_puts(&path, "/v1/queues");
        if (op != NULL && n > 0) {
            char *name = dv_xstrndup(op, n);
            dv_buf_putc(&path, '/');
            cli_urlencode(&path, name);
            free(name);
        }
        dv_err_clear(&err);
        if (cli_client_call(q->c, "GET", dv_buf_str(&path), NULL, NULL, 0, &r,
                            &err) < 0) {
            status = cli_client_report_transport(q->c, &err);
        } else if (r.status != 200 || r.body == NULL) {
            fprintf(stderr, "qstat: %s %s\n", r.message, op != NULL ? op : "");
            status = pbs_error_exit_status(r.code);
        } else if (op != NULL && n > 0) {
            show_queue(q, r.body);
        } else {
            size_t k;
            json_t *queue;
            json_array_foreach (json_object_get(r.body, "queues"), k, queue) {
                show_queue(q, queue);
            }
        }
        cli_reply_cleanup(&r);
        dv_buf_cleanup(&path);
        flush_out(q);
    }
    if (q->format == FMT_JSON && q->full) {
        print_json(q);
    }
    return status;
}

int
cmd_qstat(int argc, char **argv)
{
    struct qstat q;
    struct cli_getopt g;
    struct dv_buf errs;
    struct dv_err err;
    int errflg = 0;
    int conflict = 0;
    int excl = 0;
    int status = 0;
    int c;

    if (cli_print_version_if_asked(argc, argv)) {
        return 0;
    }
    memset(&q, 0, sizeof(q));
    dv_buf_init(&q.out);
    dv_buf_init(&errs);
    q.delim = "|";
    cli_getopt_init(&g, argc, argv, QSTAT_OPTSTRING, "qstat");
    g.errors = &errs;
    while ((c = cli_getopt_next(&g)) != -1) {
        switch (c) {
        case 'a':
            q.alt = 1;
            excl |= 1;
            break;
        case 'i':
            q.alt = 1;
            excl |= 2;
            q.states = "EHQTW";
            break;
        case 'r':
            q.alt = 1;
            excl |= 4;
            q.states = "RS";
            break;
        case 'H':
            q.alt = 1;
            excl |= 8;
            q.history = 1;
            q.states = "FMX";
            break;
        case 'u':
            q.alt = 1;
            free(q.users);
            q.users = dv_xstrdup(g.optarg);
            break;
        case 'n':
            q.alt = 1;
            q.full = 0;
            q.alt_opt |= QSTAT_ALT_NODES;
            break;
        case 's':
            q.alt = 1;
            q.full = 0;
            q.alt_opt |= QSTAT_ALT_COMMENT;
            break;
        case 'G':
            q.alt = 1;
            q.alt_opt |= QSTAT_ALT_G;
            break;
        case 'M':
            q.alt = 1;
            q.alt_opt |= QSTAT_ALT_M;
            break;
        case '1':
            q.alt_opt |= QSTAT_ALT_ONELINE;
            break;
        case 'w':
            q.wide = 1;
            q.alt_opt |= QSTAT_ALT_WIDE;
            break;
        case 'x':
            q.history = 1;
            break;
        case 't':
            q.subjobs = 1;
            break;
        case 'J':
            q.arrays_only = 1;
            break;
        case 'E':
            break; /* nothing to sort for */
        case 'f':
            q.full = 1;
            break;
        case 'F':
            if (strcasecmp(g.optarg, "json") == 0) {
                q.format = FMT_JSON;
            } else if (strcasecmp(g.optarg, "dsv") == 0) {
                q.format = FMT_DSV;
            } else if (strcasecmp(g.optarg, "default") == 0) {
                q.format = FMT_DEFAULT;
            } else {
                errflg++;
            }
            break;
        case 'D':
            if (q.format == FMT_DSV) {
                q.delim = g.optarg;
            } else {
                errflg++;
            }
            break;
        case 'Q':
            q.queues = 1;
            break;
        case 'T':
            q.alt = 1;
            q.alt_opt |= QSTAT_ALT_EST;
            break;
        case 'p':
        case 'q':
        case 'B':
        case 'W':
            dv_buf_printf(&errs, "qstat: option -%c is not supported yet\n", c);
            errflg++;
            break;
        default:
            errflg++;
        }
    }
    if (excl != 0 && excl != 1 && excl != 2 && excl != 4 && excl != 8) {
        conflict++;
    }
    if ((q.alt_opt & (QSTAT_ALT_G | QSTAT_ALT_M)) ==
        (QSTAT_ALT_G | QSTAT_ALT_M)) {
        conflict++;
    }
    if (q.format != FMT_DEFAULT && !q.full) {
        conflict++;
    }
    if ((q.alt_opt & QSTAT_ALT_ONELINE) &&
        !(q.alt_opt & (QSTAT_ALT_NODES | QSTAT_ALT_COMMENT))) {
        conflict++;
    }
    if (q.queues && (q.alt || excl != 0 || q.history)) {
        conflict++;
    }
    for (int i = 0; i < conflict; i++) {
        dv_buf_puts(&errs, "qstat: conflicting options.\n");
    }
    if (q.wide && q.format != FMT_DEFAULT) {
        dv_buf_puts(&errs, "qstat: option w cannot be used with -F\n");
        errflg++;
    }
    fputs(dv_buf_str(&errs), stderr);
    if (errflg > 0 || conflict > 0) {
        status = usage();
        goto out;
    }
    if (q.alt && q.wide && q.full) {
        q.alt = 0; /* -f -w wins over the alternate layout */
    }
    dv_err_clear(&err);
    q.c = cli_client_new("qstat", &err);
    if (q.c == NULL) {
        fprintf(stderr, "qstat: %s\n", err.msg);
        status = 1;
        goto out;
    }
    q.header = 1;
    if (q.queues) {
        status = show_queues(&q, &g);
        goto out;
    }
    if (g.noperands == 0) {
        show_list(&q, NULL);
    }
    for (int i = 0; i < g.noperands; i++) {
        const char *op = g.operands[i];

        if (jobid_is_jobid(op)) {
            show_job(&q, op);
        } else {
            size_t n = strcspn(op, "@");
            char *queue = dv_xstrndup(op, n);

            if (op[n] == '@' && op[n + 1] == '\0') {
                fprintf(stderr, "qstat: illegally formed destination: %s\n",
                        op);
                q.any_failed = 1;
            } else {
                show_list(&q, queue);
            }
            free(queue);
        }
    }
    if (q.format == FMT_JSON && q.full) {
        print_json(&q);
    }
    status = q.any_failed;
out:
    cli_getopt_cleanup(&g);
    json_decref(q.json_jobs);
    json_decref(q.json_queues);
    cli_client_free(q.c);
    free(q.users);
    dv_buf_cleanup(&q.out);
    dv_buf_cleanup(&errs);
    return status;
}
