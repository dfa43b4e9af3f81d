/*
 * A reentrant getopt with glibc's behaviour, which the PBS commands inherit
 * on Linux: non-option arguments are collected (permuted to the end), "--"
 * ends option scanning, options cluster ("-fx", "-lwalltime=1"), an
 * option's argument may be the next word even when it starts with "-", and
 * errors are worded as glibc words them. Reentrant because qsub parses the
 * command line and then each directive line with the same option table.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/mem.h"

void
cli_getopt_init(struct cli_getopt *g, int argc, char **argv,
                const char *optstring, const char *prog)
{
    memset(g, 0, sizeof(*g));
    g->argc = argc;
    g->argv = argv;
    g->optstring = optstring;
    g->prog = prog;
    g->idx = 1;
    g->operands = dv_xcalloc((size_t)argc + 1, sizeof(char *));
    g->operand_idx = dv_xcalloc((size_t)argc + 1, sizeof(int));
    g->ddash = -1;
}

void
cli_getopt_cleanup(struct cli_getopt *g)
{
    free(g->operands);
    free(g->operand_idx);
    g->operands = NULL;
    g->operand_idx = NULL;
}

static void
add_operand(struct cli_getopt *g, int i)
{
    g->operands[g->noperands] = g->argv[i];
    g->operand_idx[g->noperands] = i;
    g->noperands++;
}

static void
report(struct cli_getopt *g, int missing_arg, int c)
{
    if (g->errors == NULL) {
        return;
    }
    if (missing_arg) {
        dv_buf_printf(g->errors, "%s: option requires an argument -- '%c'\n",
                      g->prog, c);
    } else {
        dv_buf_printf(g->errors, "%s: invalid option -- '%c'\n", g->prog, c);
    }
}

int
cli_getopt_next(struct cli_getopt *g)
{
    const char *spec;
    char c;

    g->optarg = NULL;
    while (g->sub == 0) {
        const char *a;

        if (g->idx >= g->argc) {
            return -1;
        }
        a = g->argv[g->idx];
        if (strcmp(a, "--") == 0) {
            g->ddash = g->idx;
            for (int i = g->idx + 1; i < g->argc; i++) {
                add_operand(g, i);
            }
            g->idx = g->argc;
            return -1;
        }
        if (a[0] != '-' || a[1] == '\0') {
            add_operand(g, g->idx);
            g->idx++;
            continue;
        }
        g->sub = 1;
    }
    c = g->argv[g->idx][g->sub++];
    g->optopt = (unsigned char)c;
    spec = c != ':' ? strchr(g->optstring, c) : NULL;
    if (spec == NULL) {
        report(g, 0, c);
        if (g->argv[g->idx][g->sub] == '\0') {
            g->idx++;
            g->sub = 0;
        }
        return '?';
    }
    if (spec[1] != ':') {
        if (g->argv[g->idx][g->sub] == '\0') {
            g->idx++;
            g->sub = 0;
        }
        return c;
    }
    if (g->argv[g->idx][g->sub] != '\0') {
        g->optarg = &g->argv[g->idx][g->sub];
        g->idx++;
        g->sub = 0;
        return c;
    }
    g->idx++;
    g->sub = 0;
    if (g->idx >= g->argc) {
        report(g, 1, c);
        return '?';
    }
    g->optarg = g->argv[g->idx++];
    return c;
}
