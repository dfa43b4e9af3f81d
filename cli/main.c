/*
 * drover: one binary for the native interface ("drover <command>") and
 * the PBS-compatible commands, chosen by the name it was run as (qsub,
 * qstat, qdel, qhold, qrls are links to it).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
};

static const struct command commands[] = {
    {"qsub", cmd_qsub, "submit a batch job (PBS qsub)"},
    {"qstat", cmd_qstat, "show the status of jobs (PBS qstat)"},
    {"qdel", cmd_qdel, "delete jobs (PBS qdel)"},
    {"qhold", cmd_qhold, "hold jobs (PBS qhold)"},
    {"qrls", cmd_qrls, "release held jobs (PBS qrls)"},
    {"qalter", cmd_qalter, "alter waiting jobs (PBS qalter)"},
    {"qsig", cmd_qsig, "signal running jobs (PBS qsig)"},
    {"qrerun", cmd_qrerun, "requeue running jobs (PBS qrerun)"},
    {"qmove", cmd_qmove, "move waiting jobs to another queue (PBS qmove)"},
    {"pbsnodes", cmd_pbsnodes, "list nodes, mark them offline (PBS pbsnodes)"},
    {"pbsdsh", cmd_pbsdsh, "run a command on a job's nodes (PBS pbsdsh)"},
    {"qmgr", cmd_qmgr, "manage queues (PBS qmgr -c '...')"},
    {"job", cmd_job, "run, inspect and stop JSON jobs (run|status|stop)"},
    {"queue", cmd_queue, "list, create, change and delete queues"},
    {"node", cmd_node,
     "list, drain and mark nodes (in)eligible "
     "(status|drain|eligibility)"},
    {"resource", cmd_resource,
     "declare, list and delete custom resources (create|list|delete)"},
    {"dev", cmd_dev, "run an all-in-one development cluster"},
    {NULL, NULL, NULL},
};

static void
help(FILE *f)
{
    fprintf(f, "usage: drover <command> [arguments]\n"
               "       drover --version\n\ncommands:\n");
    for (const struct command *c = commands; c->name != NULL; c++) {
        fprintf(f, "  %-8s %s\n", c->name, c->help);
    }
    fprintf(f, "\nThe PBS commands (qsub ... pbsnodes) also run under their "
               "own names\n(links to drover). The server is DROVER_ADDR "
               "(default http://127.0.0.1:4750).\n");
}

static const struct command *
find(const char *name)
{
    for (const struct command *c = commands; c->name != NULL; c++) {
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }
    return NULL;
}

int
main(int argc, char **argv)
{
    const char *base = argc > 0 ? strrchr(argv[0], '/') : NULL;
    const struct command *c;

    base = base != NULL ? base + 1 : (argc > 0 ? argv[0] : "drover");
    c = find(base);
    if (c != NULL && strcmp(c->name, "dev") != 0) {
        return c->fn(argc, argv);
    }
    if (argc < 2) {
        help(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("drover %s\n", DV_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        help(stdout);
        return 0;
    }
    c = find(argv[1]);
    if (c == NULL) {
        fprintf(stderr, "drover: unknown command \"%s\"\n", argv[1]);
        help(stderr);
        return 2;
    }
    return c->fn(argc - 1, argv + 1);
}
