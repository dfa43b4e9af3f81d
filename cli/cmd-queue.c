/*
 * Queue management: the native "drover queue create|set|unset|delete|list"
 * (and "drover queue fairshare": users' decayed usage) and PBS's "qmgr" (a link
 * to drover) for its common queue directives (qmgr -c '...' or directives on
 * stdin): create, set, unset, delete, list and print queue, list and print
 * server. Both call GET/POST /v1/queues and GET/PATCH/DELETE /v1/queues/:name;
 * changes are root's. Errors are qmgr's (pbs-cli.md section 6): "qmgr obj=<q>
 * svr=default: <server text>" and "qmgr: Error (<errno>) returned from server",
 * exit errno mod 256.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/mem.h"
#include "lib/strutil.h"

#define QMGR_MAX_INPUT (1024 * 1024)

/* --- requests --- */

static void
queue_path(struct dv_buf *b, const char *name)
{
    dv_buf_puts(b, "/v1/queues");
    if (name != NULL) {
        dv_buf_putc(b, '/');
        cli_urlencode(b, name);
    }
}

/* Sends one request to path. Returns 0 with r->body set, -1 on a server
 * error (r->code, r->message), or a transport failure's exit status (> 0)
 * after reporting it. */
static int
api_call(struct cli_client *c, const char *method, const char *path,
         const json_t *body, struct cli_reply *r)
{
    struct dv_err err;

    dv_err_clear(&err);
    if (cli_client_call(c, method, path, body, NULL, 0, r, &err) < 0) {
        return cli_client_report_transport(c, &err);
    }
    if (r->status < 200 || r->status >= 300 || r->body == NULL) {
        if (r->message[0] == '\0') {
            dv_strlcpy(r->message, "no answer", sizeof(r->message));
        }
        return -1;
    }
    return 0;
}

/* api_call on /v1/queues or /v1/queues/:name. */
static int
queue_call(struct cli_client *c, const char *method, const char *name,
           const json_t *body, struct cli_reply *r)
{
    struct dv_buf path;
    int rc;

    dv_buf_init(&path);
    queue_path(&path, name);
    rc = api_call(c, method, dv_buf_str(&path), body, r);
    dv_buf_cleanup(&path);
    return rc;
}

/* The API body of attribute changes: {"set": {...}, "add": {...},
 * "remove": {...}} or {"unset": [...]}. */
static json_t *
change_body(const char *name, const struct qmgr_attr *a, int n, int unset)
{
    json_t *o = json_object();
    json_t *set = json_object(), *add = json_object(), *rem = json_object();
    json_t *un = json_array();

    if (name != NULL) {
        json_object_set_new(o, "name", json_string(name));
    }
    for (int i = 0; i < n; i++) {
        if (unset) {
            json_array_append_new(un, json_string(a[i].name));
        } else {
            json_object_set_new(a[i].op == '+'   ? add
                                : a[i].op == '-' ? rem
                                                 : set,
                                a[i].name, json_string(a[i].value));
        }
    }
    json_object_set_new(o, "set", set);
    json_object_set_new(o, "add", add);
    json_object_set_new(o, "remove", rem);
    if (json_array_size(un) > 0) {
        json_object_set_new(o, "unset", un);
    } else {
        json_decref(un);
    }
    return o;
}

/* --- qmgr --- */

struct qmgr_run {
    struct cli_client *c;
    int status; /* of the last failure */
    int printed_header;
};

static void
server_error(struct qmgr_run *m, const char *obj, const struct cli_reply *r)
{
    const struct pbs_error *e = pbs_error_lookup(r->code);

    fprintf(stderr, "qmgr obj=%s svr=default: %s\n", obj, r->message);
    if (e != NULL) {
        fprintf(stderr, "qmgr: Error (%d) returned from server\n",
                e->pbs_errno);
        m->status = e->exit_status;
    } else {
        m->status = 1;
    }
}

static void
not_supported(struct qmgr_run *m, const char *obj)
{
    struct cli_reply r;

    memset(&r, 0, sizeof(r));
    dv_strlcpy(r.code, "not_supported", sizeof(r.code));
    dv_strlcpy(r.message, "Feature/function not supported", sizeof(r.message));
    server_error(m, obj, &r);
}

static void
emit(struct dv_buf *out)
{
    if (out->len > 0) {
        fwrite(out->data, 1, out->len, stdout);
    }
    fflush(stdout);
    dv_buf_reset(out);
}

/* list or print of queues: names, or every queue. */
static void
show_queues(struct qmgr_run *m, const struct qmgr_directive *d, int print)
{
    struct dv_buf out;

    dv_buf_init(&out);
    if (print && !m->printed_header) {
        dv_buf_puts(&out, "#\n# Create queues and set their attributes.\n#\n");
        m->printed_header = 1;
    }
    if (d->nnames == 0) {
        struct cli_reply r;
        int rc = queue_call(m->c, "GET", NULL, NULL, &r);
        if (rc == 0) {
            size_t i;
            json_t *q;
            json_array_foreach (json_object_get(r.body, "queues"), i, q) {
                if (print) {
                    queue_print_text(&out, q);
                } else {
                    queue_list_text(&out, q);
                }
            }
        } else if (rc < 0) {
            server_error(m, "", &r);
        } else {
            m->status = rc;
        }
        cli_reply_cleanup(&r);
    }
    for (int i = 0; i < d->nnames; i++) {
        struct cli_reply r;
        int rc = queue_call(m->c, "GET", d->names[i], NULL, &r);
        if (rc == 0) {
            if (print) {
                queue_print_text(&out, r.body);
            } else {
                queue_list_text(&out, r.body);
            }
        } else if (rc < 0) {
            server_error(m, d->names[i], &r);
        } else {
            m->status = rc;
        }
        cli_reply_cleanup(&r);
    }
    emit(&out);
    dv_buf_cleanup(&out);
}

static void
show_server(struct qmgr_run *m, int print)
{
    struct cli_reply r, sr;
    struct dv_buf out;
    const char *server, *dflt;
    long long total = 0;
    double hl;
    size_t i;
    json_t *q;
    int rc;

    dv_buf_init(&out);
    memset(&sr, 0, sizeof(sr));
    rc = queue_call(m->c, "GET", NULL, NULL, &r);
    if (rc == 0) {
        rc = api_call(m->c, "GET", "/v1/server", NULL, &sr);
    }
    if (rc != 0) {
        if (rc < 0) {
            server_error(m, "", sr.message[0] != '\0' ? &sr : &r);
        } else {
            m->status = rc;
        }
        goto out;
    }
    server = json_string_value(json_object_get(sr.body, "name"));
    dflt = json_string_value(json_object_get(sr.body, "default_queue"));
    hl = json_number_value(json_object_get(sr.body, "fairshare_half_life"));
    json_array_foreach (json_object_get(r.body, "queues"), i, q) {
        total +=
            (long long)json_integer_value(json_object_get(q, "total_jobs"));
        if (print) {
            if (i == 0) {
                dv_buf_puts(
                    &out, "#\n# Create queues and set their attributes.\n#\n");
            }
            queue_print_text(&out, q);
        }
    }
    if (print) {
        dv_buf_puts(&out, "#\n# Set server attributes.\n#\n");
        if (dflt != NULL) {
            dv_buf_printf(&out, "set server default_queue = %s\n", dflt);
        }
        dv_buf_printf(&out, "set server fairshare_half_life = %.0f\n", hl);
    } else {
        dv_buf_printf(&out, "Server %s\n", server != NULL ? server : "");
        dv_buf_puts(&out, "    server_state = Active\n");
        if (dflt != NULL) {
            dv_buf_printf(&out, "    default_queue = %s\n", dflt);
        }
        dv_buf_printf(&out, "    total_jobs = %lld\n", total);
        dv_buf_printf(&out, "    fairshare_half_life = %.0f\n", hl);
        dv_buf_printf(&out, "    pbs_version = %s\n\n", DV_VERSION);
    }
    emit(&out);
out:
    dv_buf_cleanup(&out);
    cli_reply_cleanup(&r);
    cli_reply_cleanup(&sr);
}

/* set server default_queue = q, fairshare_half_life = D. */
static void
change_server(struct qmgr_run *m, const struct qmgr_directive *d)
{
    struct cli_reply r;
    json_t *set = json_object();
    json_t *body;
    int rc;

    for (int i = 0; i < d->nattrs; i++) {
        if (d->attrs[i].op != '=') {
            json_decref(set);
            not_supported(m, "");
            return;
        }
        json_object_set_new(set, d->attrs[i].name,
                            json_string(d->attrs[i].value));
    }
    body = json_pack("{s:o}", "set", set);
    rc = api_call(m->c, "PATCH", "/v1/server", body, &r);
    if (rc < 0) {
        server_error(m, "", &r);
    } else if (rc > 0) {
        m->status = rc;
    }
    json_decref(body);
    cli_reply_cleanup(&r);
}

static void
change_queues(struct qmgr_run *m, const struct qmgr_directive *d)
{
    int create = strcmp(d->cmd, "create") == 0;
    int del = strcmp(d->cmd, "delete") == 0;
    int unset = strcmp(d->cmd, "unset") == 0;

    for (int i = 0; i < d->nnames; i++) {
        struct cli_reply r;
        json_t *body = NULL;
        int rc;

        if (!del) {
            body = change_body(create ? d->names[i] : NULL, d->attrs, d->nattrs,
                               unset);
        }
        rc = queue_call(m->c,
                        create ? "POST"
                        : del  ? "DELETE"
                               : "PATCH",
                        create ? NULL : d->names[i], body, &r);
        if (rc < 0) {
            server_error(m, d->names[i], &r);
        } else if (rc > 0) {
            m->status = rc;
        }
        json_decref(body);
        cli_reply_cleanup(&r);
    }
}

static const char qmgr_help[] =
    "General syntax: command [object][@server][,object...] "
    "[attribute op value[,...]]\n"
    "Commands: create, delete, set, unset, list, print, quit\n"
    "Objects: queue (all commands), server (list, print; set default_queue,\n"
    "         fairshare_half_life)\n"
    "Operators: = += -=\n"
    "Example: qmgr -c 'set queue workq resources_max.walltime = 24:00:00'\n";

/* Runs one directive; returns 1 on quit/exit. */
static int
qmgr_run_one(struct qmgr_run *m, const char *text)
{
    struct qmgr_directive d;
    struct dv_buf msg;
    int rc;

    dv_buf_init(&msg);
    rc = qmgr_parse(text, &d, &msg);
    if (rc != 0) {
        fputs(dv_buf_str(&msg), stderr);
        m->status = rc;
        dv_buf_cleanup(&msg);
        return 0;
    }
    dv_buf_cleanup(&msg);
    if (d.empty || strcmp(d.cmd, "active") == 0) {
        qmgr_directive_cleanup(&d);
        return 0;
    }
    if (strcmp(d.cmd, "quit") == 0 || strcmp(d.cmd, "exit") == 0) {
        qmgr_directive_cleanup(&d);
        return 1;
    }
    if (strcmp(d.cmd, "help") == 0) {
        fputs(qmgr_help, stdout);
    } else if (strcmp(d.obj, "queue") == 0) {
        int list = strcmp(d.cmd, "list") == 0;
        int print = strcmp(d.cmd, "print") == 0;
        if (list || print) {
            show_queues(m, &d, print);
        } else if (strcmp(d.cmd, "import") == 0 ||
                   strcmp(d.cmd, "export") == 0) {
            not_supported(m, d.nnames > 0 ? d.names[0] : "");
        } else if (d.nnames == 0) {
            fputs("qmgr: Syntax error\n", stderr);
            m->status = 3;
        } else {
            change_queues(m, &d);
        }
    } else if (strcmp(d.obj, "server") == 0 &&
               (strcmp(d.cmd, "list") == 0 || strcmp(d.cmd, "print") == 0)) {
        show_server(m, strcmp(d.cmd, "print") == 0);
    } else if (strcmp(d.obj, "server") == 0 && strcmp(d.cmd, "set") == 0 &&
               d.nattrs > 0) {
        change_server(m, &d);
    } else {
        not_supported(m, d.nnames > 0 ? d.names[0] : "");
    }
    qmgr_directive_cleanup(&d);
    return 0;
}

static int
qmgr_usage(void)
{
    fputs("Usage: qmgr [-a] [-c command] [-e] [-n] [-z] [server...]\n"
          "       qmgr --version\n",
          stderr);
    return 2;
}

static char *
read_all(FILE *f)
{
    struct dv_buf b;
    char chunk[4096];
    size_t n;

    dv_buf_init(&b);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        dv_buf_append(&b, chunk, n);
        if (b.len > QMGR_MAX_INPUT) {
            break;
        }
    }
    return dv_buf_steal(&b);
}

int
cmd_qmgr(int argc, char **argv)
{
    struct qmgr_run m;
    struct cli_getopt g;
    struct dv_err err;
    const char *command = NULL;
    int abort_on_error = 0, echo = 0, parse_only = 0, errflg = 0, c;
    char **dirs = NULL, *input = NULL;
    int ndirs = 0;

    if (cli_print_version_if_asked(argc, argv)) {
        return 0;
    }
    memset(&m, 0, sizeof(m));
    cli_getopt_init(&g, argc, argv, "ac:enz", "qmgr");
    while ((c = cli_getopt_next(&g)) != -1) {
        switch (c) {
        case 'a':
            abort_on_error = 1;
            break;
        case 'c':
            command = g.optarg;
            break;
        case 'e':
            echo = 1;
            break;
        case 'n':
            parse_only = 1;
            break;
        case 'z':
            break;
        default:
            errflg++;
        }
    }
    cli_getopt_cleanup(&g);
    if (errflg > 0) {
        return qmgr_usage();
    }
    dv_err_clear(&err);
    m.c = cli_client_new("qmgr", &err);
    if (m.c == NULL) {
        fprintf(stderr, "qmgr: %s\n", err.msg);
        return 1;
    }
    if (command == NULL) {
        input = read_all(stdin);
    }
    dirs = qmgr_split(command != NULL ? command : input, &ndirs);
    for (int i = 0; i < ndirs; i++) {
        int before = m.status;
        if (echo) {
            printf("%s\n", dirs[i]);
            fflush(stdout);
        }
        if (parse_only) {
            struct qmgr_directive d;
            struct dv_buf msg;
            int rc;
            dv_buf_init(&msg);
            rc = qmgr_parse(dirs[i], &d, &msg);
            if (rc != 0) {
                fputs(dv_buf_str(&msg), stderr);
                m.status = rc;
            } else {
                qmgr_directive_cleanup(&d);
            }
            dv_buf_cleanup(&msg);
            continue;
        }
        m.status = 0;
        if (qmgr_run_one(&m, dirs[i])) {
            m.status = before;
            break;
        }
        if (m.status == 0) {
            m.status = before;
        } else if (abort_on_error) {
            break;
        }
    }
    for (int i = 0; i < ndirs; i++) {
        free(dirs[i]);
    }
    free(dirs);
    free(input);
    cli_client_free(m.c);
    return m.status;
}

/* --- drover queue --- */

static int
queue_usage(FILE *f)
{
    fputs("usage: drover queue list [NAME]\n"
          "       drover queue create NAME [ATTR=VALUE...]\n"
          "       drover queue set NAME ATTR=VALUE|ATTR+=VALUE|ATTR-=VALUE...\n"
          "       drover queue unset NAME ATTR...\n"
          "       drover queue delete NAME\n"
          "       drover queue fairshare\n"
          "ATTR: PBS's queue attributes (Priority, enabled, started, "
          "max_running,\nmax_user_run, max_run, resources_default.R, "
          "resources_max.R,\nresources_min.R, acl_user_enable, acl_users, "
          "acl_group_enable, acl_groups,\npreemption); docs/cli.md\n",
          f);
    return 2;
}

/* "attr=value", "attr+=value", "attr-=value" (unset: "attr"). */
static int
parse_assignments(char **argv, int argc, int unset, struct qmgr_attr **out,
                  int *n)
{
    *out = dv_xcalloc((size_t)argc + 1, sizeof(**out));
    *n = 0;
    for (int i = 0; i < argc; i++) {
        struct qmgr_attr *a = &(*out)[(*n)++];
        const char *eq = strchr(argv[i], '=');
        if (unset) {
            if (eq != NULL) {
                return -1;
            }
            a->name = dv_xstrdup(argv[i]);
            continue;
        }
        if (eq == NULL || eq == argv[i]) {
            return -1;
        }
        a->op = '=';
        if (eq[-1] == '+' || eq[-1] == '-') {
            a->op = eq[-1];
            a->name = dv_xstrndup(argv[i], (size_t)(eq - 1 - argv[i]));
        } else {
            a->name = dv_xstrndup(argv[i], (size_t)(eq - argv[i]));
        }
        a->value = dv_xstrdup(eq + 1);
    }
    return 0;
}

static void
attrs_free(struct qmgr_attr *a, int n)
{
    for (int i = 0; i < n; i++) {
        free(a[i].name);
        free(a[i].value);
    }
    free(a);
}

static const char *
opt_num(const json_t *v, char *buf, size_t size)
{
    if (!json_is_integer(v)) {
        return "-";
    }
    snprintf(buf, size, "%lld", (long long)json_integer_value(v));
    return buf;
}

static void
native_table(struct dv_buf *out, const json_t *queues)
{
    size_t i;
    json_t *q;

    dv_buf_puts(out, "NAME             PRIORITY ENABLED STARTED MAX_RUNNING "
                     "MAX_USER_RUN QUEUED RUNNING HELD DEFAULT\n");
    json_array_foreach (queues, i, q) {
        char b1[24], b2[24];
        const json_t *mr = json_object_get(q, "max_running");
        const json_t *mu = json_object_get(q, "max_user_run");
        const json_t *sc = json_object_get(q, "state_count");
        dv_buf_printf(
            out, "%-16s %8lld %-7s %-7s %11s %12s %6lld %7lld %4lld %s\n",
            json_string_value(json_object_get(q, "name")),
            (long long)json_integer_value(json_object_get(q, "priority")),
            json_is_true(json_object_get(q, "enabled")) ? "yes" : "no",
            json_is_true(json_object_get(q, "started")) ? "yes" : "no",
            opt_num(mr, b1, sizeof(b1)), opt_num(mu, b2, sizeof(b2)),
            (long long)json_integer_value(json_object_get(sc, "Queued")),
            (long long)json_integer_value(json_object_get(sc, "Running")),
            (long long)json_integer_value(json_object_get(sc, "Held")),
            json_is_true(json_object_get(q, "is_default")) ? "yes" : "no");
    }
}

/* drover queue fairshare: each user's decayed usage, lowest first (the
 * order fair share gives equal jobs). */
static int
fairshare_show(void)
{
    struct cli_client *c;
    struct cli_reply r;
    struct dv_err err;
    size_t i;
    json_t *u;
    int rc;

    dv_err_clear(&err);
    c = cli_client_new("drover queue", &err);
    if (c == NULL) {
        fprintf(stderr, "drover queue: %s\n", err.msg);
        return 1;
    }
    rc = api_call(c, "GET", "/v1/server", NULL, &r);
    if (rc == 0) {
        printf(
            "half-life %.0f s\nUSER             USAGE(core-s) "
            "TOTAL(core-s)\n",
            json_number_value(json_object_get(r.body, "fairshare_half_life")));
        json_array_foreach (json_object_get(r.body, "fairshare"), i, u) {
            printf("%-16s %13.1f %13.1f\n",
                   json_string_value(json_object_get(u, "user")),
                   json_number_value(json_object_get(u, "usage")),
                   json_number_value(json_object_get(u, "core_seconds")));
        }
    } else if (rc < 0) {
        fprintf(stderr, "drover queue: %s\n", r.message);
        rc = pbs_error_exit_status(r.code);
    }
    cli_reply_cleanup(&r);
    cli_client_free(c);
    return rc;
}

int
cmd_queue(int argc, char **argv)
{
    struct cli_client *c = NULL;
    struct cli_reply r;
    struct qmgr_attr *attrs = NULL;
    struct dv_buf out;
    struct dv_err err;
    const char *sub;
    int nattrs = 0, rc, status = 0;

    if (argc < 2) {
        return queue_usage(stderr);
    }
    sub = argv[1];
    if (strcmp(sub, "help") == 0 || strcmp(sub, "-h") == 0) {
        queue_usage(stdout);
        return 0;
    }
    if (strcmp(sub, "fairshare") == 0 && argc == 2) {
        return fairshare_show();
    }
    if (strcmp(sub, "list") != 0 && strcmp(sub, "create") != 0 &&
        strcmp(sub, "set") != 0 && strcmp(sub, "unset") != 0 &&
        strcmp(sub, "delete") != 0) {
        fprintf(stderr, "drover queue: unknown command \"%s\"\n", sub);
        return queue_usage(stderr);
    }
    if ((strcmp(sub, "list") == 0 && argc > 3) ||
        (strcmp(sub, "list") != 0 && argc < 3) ||
        (strcmp(sub, "delete") == 0 && argc != 3) ||
        ((strcmp(sub, "set") == 0 || strcmp(sub, "unset") == 0) && argc < 4)) {
        return queue_usage(stderr);
    }
    if (argc > 3 && strcmp(sub, "delete") != 0 &&
        parse_assignments(argv + 3, argc - 3, strcmp(sub, "unset") == 0, &attrs,
                          &nattrs) < 0) {
        attrs_free(attrs, nattrs);
        fprintf(stderr, "drover queue: expected ATTR=VALUE (or ATTR for "
                        "unset)\n");
        return queue_usage(stderr);
    }
    dv_err_clear(&err);
    c = cli_client_new("drover queue", &err);
    if (c == NULL) {
        fprintf(stderr, "drover queue: %s\n", err.msg);
        attrs_free(attrs, nattrs);
        return 1;
    }
    dv_buf_init(&out);
    if (strcmp(sub, "list") == 0) {
        rc = queue_call(c, "GET", argc == 3 ? argv[2] : NULL, NULL, &r);
        if (rc == 0) {
            if (argc == 3) {
                queue_list_text(&out, r.body);
            } else {
                native_table(&out, json_object_get(r.body, "queues"));
            }
        }
    } else if (strcmp(sub, "delete") == 0) {
        rc = queue_call(c, "DELETE", argv[2], NULL, &r);
    } else {
        int create = strcmp(sub, "create") == 0;
        json_t *body = change_body(create ? argv[2] : NULL, attrs, nattrs,
                                   strcmp(sub, "unset") == 0);
        rc = queue_call(c, create ? "POST" : "PATCH", create ? NULL : argv[2],
                        body, &r);
        json_decref(body);
    }
    if (rc < 0) {
        fprintf(stderr, "drover queue: %s\n", r.message);
        status = pbs_error_exit_status(r.code);
    } else {
        status = rc;
    }
    if (out.len > 0) {
        fwrite(out.data, 1, out.len, stdout);
    }
    cli_reply_cleanup(&r);
    dv_buf_cleanup(&out);
    attrs_free(attrs, nattrs);
    cli_client_free(c);
    return status;
}
