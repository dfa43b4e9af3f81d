/*
 * qsig, qrerun, qmove and qalter: one request per job id operand (POST
 * /v1/jobs/:id/signal|rerun|move|alter, docs/api.md), silent on success;
 * every operand is processed and the exit status is that of the last
 * failure, with PBS's messages ("qsig: Request invalid for state of job
 * 9.srv", "qrerun: job is not rerunnable 9.srv").
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/mem.h"
#include "lib/strutil.h"

/* --- qsig --- */

int
cmd_qsig(int argc, char **argv)
{
    struct cli_getopt g;
    struct dv_buf errs;
    const char *sig = "SIGTERM";
    json_t *body;
    int errflg = 0, status, c;

    if (cli_print_version_if_asked(argc, argv)) {
        return 0;
    }
    dv_buf_init(&errs);
    cli_getopt_init(&g, argc, argv, "s:", "qsig");
    g.errors = &errs;
    while ((c = cli_getopt_next(&g)) != -1) {
        if (c == 's') {
            sig = g.optarg;
        } else {
            errflg++;
        }
    }
    fputs(dv_buf_str(&errs), stderr);
    if (errflg > 0 || g.noperands == 0) {
        fputs("usage: qsig [-s signal] job_identifier...\n"
              "       qsig --version\n",
              stderr);
        status = 2;
    } else {
        body = json_pack("{s:s}", "signal", sig);
        status = cli_each_job("qsig", "POST", "/signal", body, g.noperands,
                              g.operands);
        json_decref(body);
    }
    cli_getopt_cleanup(&g);
    dv_buf_cleanup(&errs);
    return status;
}

/* --- qrerun --- */

int
cmd_qrerun(int argc, char **argv)
{
    struct cli_getopt g;
    struct dv_buf errs;
    int errflg = 0, status, c;

    if (cli_print_version_if_asked(argc, argv)) {
        return 0;
    }
    dv_buf_init(&errs);
    cli_getopt_init(&g, argc, argv, "W:", "qrerun");
    g.errors = &errs;
    while ((c = cli_getopt_next(&g)) != -1) {
        if (c != 'W' || strcmp(g.optarg, "force") != 0) {
            errflg++;
        }
    }
    fputs(dv_buf_str(&errs), stderr);
    if (errflg > 0 || g.noperands == 0) {
        fputs("usage: qrerun [-W force] job_identifier...\n"
              "       qrerun --version\n",
              stderr);
        status = 2;
    } else {
        status = cli_each_job("qrerun", "POST", "/rerun", NULL, g.noperands,
                              g.operands);
    }
    cli_getopt_cleanup(&g);
    dv_buf_cleanup(&errs);
    return status;
}

/* --- qmove --- */

int
cmd_qmove(int argc, char **argv)
{
    struct cli_getopt g;
    struct dv_buf errs;
    int errflg = 0, status, c;

    if (cli_print_version_if_asked(argc, argv)) {
        return 0;
    }
    dv_buf_init(&errs);
    cli_getopt_init(&g, argc, argv, "", "qmove");
    g.errors = &errs;
    while ((c = cli_getopt_next(&g)) != -1) {
        errflg++;
    }
    fputs(dv_buf_str(&errs), stderr);
    if (errflg > 0 || g.noperands < 2) {
        fputs("usage: qmove destination job_identifier...\n"
              "       qmove --version\n",
              stderr);
        status = 2;
    } else {
        /* destination: queue, queue@server or @server (one server). */
        char *dest = dv_xstrdup(g.operands[0]);
        char *at = strchr(dest, '@');
        json_t *body;

        if (at != NULL) {
            *at = '\0';
        }
        if (*dest == '\0') {
            fprintf(stderr, "qmove: illegally formed destination: %s\n",
                    g.operands[0]);
            status = 1;
        } else {
            body = json_pack("{s:s}", "queue", dest);
            status = cli_each_job("qmove", "POST", "/move", body,
                                  g.noperands - 1, g.operands + 1);
            json_decref(body);
        }
        free(dest);
    }
    cli_getopt_cleanup(&g);
    dv_buf_cleanup(&errs);
    return status;
}

/* --- qalter --- */

static int
qalter_usage(void)
{
    fputs("usage: qalter [-a date_time] [-A account_string] [-c interval] "
          "[-e path]\n"
          "\t[-h hold_list] [-j y|n] [-k keep] [-l resource_list] "
          "[-m mail_options]\n"
          "\t[-M user_list] [-N jobname] [-o path] [-p priority] "
          "[-P project] [-r y|n]\n"
          "\t[-R o|e|oe] [-S path] [-u user_list] [-W dependency_list] "
          "job_identifier...\n"
          "       qalter --version\n",
          stderr);
    return 2;
}

int
qalter_opts_parse(int argc, char **argv, json_t *body, struct dv_buf *errs,
                  struct cli_getopt *g)
{
    struct qsub_opts o;
    char cwd[4096];
    int nerr = 0, c;

    qsub_opts_init(&o);
    if (getcwd(cwd, sizeof(cwd)) == NULL) {
        dv_strlcpy(cwd, "/", sizeof(cwd));
    }
    cli_getopt_init(g, argc, argv,
                    "a:A:c:e:h:j:k:l:m:M:N:o:p:P:r:R:S:u:W:", "qalter");
    g->errors = errs;
    while ((c = cli_getopt_next(g)) != -1) {
        const char *arg = g->optarg;

        switch (c) {
        case 'l':
            if (qsub_parse_resources(&o, arg, QSUB_SRC_CMDLINE) < 0) {
                dv_buf_printf(errs, "qalter: illegal -l value\n");
                nerr++;
            }
            break;
        case 'N': {
            size_t n = strlen(arg);
            int ok = n > 0 && n <= 236;

            for (const char *p = arg; ok && *p != '\0'; p++) {
                unsigned char ch = (unsigned char)*p;
                ok = !(ch <= ' ' || ch == 0x7f || ch == '/' || ch == '@' ||
                       ch == ':');
            }
            if (!ok) {
                dv_buf_printf(errs, "qalter: illegal -N value\n");
                nerr++;
            } else {
                json_object_set_new(body, "name", json_string(arg));
            }
            break;
        }
        case 'p': {
            int prio;

            while (isspace((unsigned char)*arg)) {
                arg++;
            }
            if (dv_parse_int(arg, -1024, 1023, &prio) < 0) {
                dv_buf_printf(errs, "qalter: illegal -p value\n");
                nerr++;
            } else {
                json_object_set_new(body, "priority", json_integer(prio));
            }
            break;
        }
        case 'o':
        case 'e': {
            /* [host:]path; the host part is dropped (output is written
             * on the execution host), relative paths are made absolute. */
            const char *colon = strchr(arg, ':');
            char *abs = qsub_abs_path(colon != NULL ? colon + 1 : arg, cwd);

            json_object_set_new(body, c == 'o' ? "stdout" : "stderr",
                                json_string(abs));
            free(abs);
            break;
        }
        case 'j':
            if (strcmp(arg, "oe") != 0 && strcmp(arg, "eo") != 0 &&
                strcmp(arg, "n") != 0) {
                dv_buf_printf(errs, "qalter: illegal -j value\n");
                nerr++;
            } else {
                json_object_set_new(body, "join", json_string(arg));
            }
            break;
        case 'h':
            if (*arg == '\0' || arg[strspn(arg, "uos")] != '\0') {
                dv_buf_printf(errs, "qalter: illegal -h value\n");
                nerr++;
            } else {
                json_object_set_new(body, "hold_types", json_string(arg));
            }
            break;
        case 'r':
            if (strcmp(arg, "y") != 0 && strcmp(arg, "n") != 0) {
                dv_buf_printf(errs, "qalter: illegal -r value\n");
                nerr++;
            } else {
                json_object_set_new(body, "rerunnable",
                                    json_boolean(arg[0] == 'y'));
            }
            break;
        case 'W':
            if (dv_str_has_prefix(arg, "depend=")) {
                json_object_set_new(body, "depend",
                                    json_string(arg + strlen("depend=")));
            } else {
                dv_buf_printf(errs, "qalter: -W %.*s is not supported yet\n",
                              (int)strcspn(arg, "="), arg);
                nerr++;
            }
            break;
        case '?':
            nerr++;
            break;
        default:
            dv_buf_printf(errs, "qalter: option -%c is not supported yet\n", c);
            nerr++;
            break;
        }
    }
    if (o.nres > 0) {
        json_t *res = json_object();

        for (int i = 0; i < o.nres; i++) {
            json_object_set_new(res, o.res[i].name,
                                json_string(o.res[i].value));
        }
        json_object_set_new(body, "resources", res);
    }
    qsub_opts_cleanup(&o);
    if (nerr == 0 && json_object_size(body) == 0) {
        nerr++; /* nothing to alter: PBS prints the usage */
    }
    return nerr > 0 ? -1 : 0;
}

int
cmd_qalter(int argc, char **argv)
{
    struct cli_getopt g;
    struct dv_buf errs;
    json_t *body = json_object();
    int status;

    if (cli_print_version_if_asked(argc, argv)) {
        json_decref(body);
        return 0;
    }
    dv_buf_init(&errs);
    if (qalter_opts_parse(argc, argv, body, &errs, &g) < 0 ||
        g.noperands == 0) {
        fputs(dv_buf_str(&errs), stderr);
        status = qalter_usage();
    } else {
        status = cli_each_job("qalter", "POST", "/alter", body, g.noperands,
                              g.operands);
    }
    cli_getopt_cleanup(&g);
    dv_buf_cleanup(&errs);
    json_decref(body);
    return status;
}
