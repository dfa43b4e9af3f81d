/*
 * qdel, qhold and qrls: one request per job id operand (DELETE
 * /v1/jobs/:id, POST /v1/jobs/:id/hold, POST /v1/jobs/:id/release),
 * silent on success; every operand is processed and the exit status is
 * that of the last failure, with PBS's messages ("qdel: Unknown Job Id
 * 9.srv", "qhold: Request invalid for state of job 9.srv").
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/mem.h"
#include "lib/strutil.h"

struct job_action {
    const char *prog;
    const char *method;
    const char *suffix;     /* "", "/hold", "/release" */
    const char *hold_types; /* -h letters, or NULL */
    const json_t *body;     /* or the body to send, or NULL */
};

int
cli_report_job_error(const char *prog, const struct cli_reply *r,
                     const char *display_id)
{
    const struct pbs_error *e = pbs_error_lookup(r->code);

    /* Errors whose server text names what was refused (a resource, an
     * attribute) are printed as the server wrote them. */
    if (e != NULL && r->message[0] != '\0' &&
        (strcmp(r->code, "bad_resource_value") == 0 ||
         strcmp(r->code, "bad_attribute_value") == 0 ||
         strcmp(r->code, "unknown_resource") == 0 ||
         strcmp(r->code, "modify_running") == 0)) {
        fprintf(stderr, "%s: %s %s\n", prog, r->message, display_id);
        return e->exit_status;
    }
    if (e != NULL) {
        fprintf(stderr, "%s: %s %s\n", prog, e->text, display_id);
        return e->exit_status;
    }
    fprintf(stderr, "%s: %s %s\n", prog, r->message, display_id);
    return 1;
}

static int
each_job(const struct job_action *a, int n, char **operands)
{
    struct cli_client *c;
    struct dv_err err;
    json_t *body = NULL;
    int any_failed = 0;

    dv_err_clear(&err);
    c = cli_client_new(a->prog, &err);
    if (c == NULL) {
        fprintf(stderr, "%s: %s\n", a->prog, err.msg);
        return 1;
    }
    if (a->hold_types != NULL) {
        body = json_pack("{s:s}", "hold_types", a->hold_types);
    } else if (a->body != NULL) {
        body = json_incref((json_t *)a->body);
    }
    for (int i = 0; i < n; i++) {
        struct cli_reply r;
        struct jobid jid;
        char path[96];

        /* qdel takes subjobs and ranges (124[7], 124[1-5]); qhold and qrls
         * jobs and whole arrays only, as PBS's. */
        if (jobid_parse_array(operands[i], &jid) < 0 ||
            (strcmp(a->method, "DELETE") != 0 && jid.part != DV_ARRAY_NONE &&
             jid.part != DV_ARRAY_WHOLE)) {
            free(jid.server);
            fprintf(stderr, "%s: illegally formed job identifier: %s\n",
                    a->prog, operands[i]);
            any_failed = 1;
            continue;
        }
        free(jid.server);
        if (jid.part == DV_ARRAY_ONE) {
            snprintf(path, sizeof(path), "/v1/jobs/%lld%s?subjobs=%d", jid.seq,
                     a->suffix, jid.lo);
        } else if (jid.part == DV_ARRAY_RANGE) {
            snprintf(path, sizeof(path), "/v1/jobs/%lld%s?subjobs=%d-%d",
                     jid.seq, a->suffix, jid.lo, jid.hi);
        } else {
            snprintf(path, sizeof(path), "/v1/jobs/%lld%s", jid.seq, a->suffix);
        }
        dv_err_clear(&err);
        if (cli_client_call(c, a->method, path, body, NULL, 0, &r, &err) < 0) {
            any_failed = cli_client_report_transport(c, &err);
            continue;
        }
        if (r.status < 200 || r.status >= 300) {
            char *id = jobid_expand(operands[i], cli_client_server_name(c));

            any_failed = cli_report_job_error(a->prog, &r, id);
            free(id);
        }
        cli_reply_cleanup(&r);
    }
    json_decref(body);
    cli_client_free(c);
    return any_failed;
}

int
cli_each_job(const char *prog, const char *method, const char *suffix,
             const json_t *body, int n, char **operands)
{
    struct job_action a = {prog, method, suffix, NULL, body};

    return each_job(&a, n, operands);
}

static int
qdel_usage(void)
{
    fputs("usage:\n\tqdel [-W force|suppress_email=X] [-x] "
          "job_identifier...\n\tqdel --version\n",
          stderr);
    return 2;
}

int
cmd_qdel(int argc, char **argv)
{
    struct cli_getopt g;
    struct dv_buf errs;
    struct job_action a = {"qdel", "DELETE", "", NULL, NULL};
    int errflg = 0;
    int status;
    int c;

    if (cli_print_version_if_asked(argc, argv)) {
        return 0;
    }
    dv_buf_init(&errs);
    cli_getopt_init(&g, argc, argv, "W:x", "qdel");
    g.errors = &errs;
    while ((c = cli_getopt_next(&g)) != -1) {
        if (c == 'W') {
            int n;

            if (strcmp(g.optarg, "force") == 0) {
                continue; /* the server always stops a running job */
            }
            if (dv_str_has_prefix(g.optarg, "suppress_email=") &&
                dv_parse_int(g.optarg + strlen("suppress_email="), -1,
                             2147483647, &n) == 0) {
                continue; /* no mail is sent */
            }
            errflg++;
        } else if (c == 'x') {
            dv_buf_puts(&errs, "qdel: option -x is not supported yet\n");
            errflg++;
        } else {
            errflg++;
        }
    }
    fputs(dv_buf_str(&errs), stderr);
    if (errflg > 0 || g.noperands == 0) {
        status = qdel_usage();
    } else {
        status = each_job(&a, g.noperands, g.operands);
    }
    cli_getopt_cleanup(&g);
    dv_buf_cleanup(&errs);
    return status;
}

/* qhold and qrls: -h letters of "uos". */
static int
hold_cmd(int argc, char **argv, const char *prog, const char *suffix)
{
    struct cli_getopt g;
    struct dv_buf errs;
    struct job_action a = {prog, "POST", suffix, NULL, NULL};
    int errflg = 0;
    int status;
    int c;

    if (cli_print_version_if_asked(argc, argv)) {
        return 0;
    }
    dv_buf_init(&errs);
    cli_getopt_init(&g, argc, argv, "h:", prog);
    g.errors = &errs;
    while ((c = cli_getopt_next(&g)) != -1) {
        if (c == 'h') {
            const char *h = g.optarg;

            while (*h == ' ' || *h == '\t') {
                h++;
            }
            if (*h == '\0' || h[strspn(h, "uos")] != '\0') {
                dv_buf_printf(&errs, "%s: illegal -h value\n", prog);
                errflg++;
            } else {
                a.hold_types = h;
            }
        } else {
            errflg++;
        }
    }
    fputs(dv_buf_str(&errs), stderr);
    if (errflg > 0 || g.noperands == 0) {
        fprintf(stderr,
                "usage: %s [-h hold_list] job_identifier...\n"
                "       %s --version\n",
                prog, prog);
        status = 2;
    } else {
        status = each_job(&a, g.noperands, g.operands);
    }
    cli_getopt_cleanup(&g);
    dv_buf_cleanup(&errs);
    return status;
}

int
cmd_qhold(int argc, char **argv)
{
    return hold_cmd(argc, argv, "qhold", "/hold");
}

int
cmd_qrls(int argc, char **argv)
{
    return hold_cmd(argc, argv, "qrls", "/release");
}
