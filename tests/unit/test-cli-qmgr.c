/* Unit tests: cli/qmgr-parse.c (qmgr directives) and cli/queue-format.c
 * (qmgr list/print and qstat -Q layouts). */
#include <stdlib.h>

#include "cli/cli.h"
#include "unit.h"

static int
parse(const char *text, struct qmgr_directive *d, char *msg, size_t size)
{
    struct dv_buf b;
    int rc;

    dv_buf_init(&b);
    rc = qmgr_parse(text, d, &b);
    snprintf(msg, size, "%s", dv_buf_str(&b));
    dv_buf_cleanup(&b);
    return rc;
}

static void
test_parse_forms(void)
{
    struct qmgr_directive d;
    char msg[256];

    CHECK_INT(parse("create queue q1 Priority=10,resources_max.walltime="
                    "1:00:00",
                    &d, msg, sizeof(msg)),
              0);
    CHECK_STR(d.cmd, "create");
    CHECK_STR(d.obj, "queue");
    CHECK_INT(d.nnames, 1);
    CHECK_STR(d.names[0], "q1");
    CHECK_INT(d.nattrs, 2);
    CHECK_STR(d.attrs[1].name, "resources_max.walltime");
    CHECK_STR(d.attrs[1].value, "1:00:00");
    CHECK_INT(d.attrs[0].op, '=');
    qmgr_directive_cleanup(&d);

    CHECK_INT(parse("s q workq acl_users += \"bob\", max_run = "
                    "'[o:PBS_ALL=4],[u:PBS_GENERIC=2]'",
                    &d, msg, sizeof(msg)),
              0);
    CHECK_STR(d.cmd, "set");
    CHECK_STR(d.obj, "queue");
    CHECK_INT(d.attrs[0].op, '+');
    CHECK_STR(d.attrs[0].value, "bob");
    CHECK_STR(d.attrs[1].value, "[o:PBS_ALL=4],[u:PBS_GENERIC=2]");
    qmgr_directive_cleanup(&d);

    /* brackets hold max_run's '=' and ',' without quotes */
    CHECK_INT(parse("set queue workq max_run=[u:PBS_GENERIC=2]", &d, msg,
                    sizeof(msg)),
              0);
    CHECK_STR(d.attrs[0].value, "[u:PBS_GENERIC=2]");
    qmgr_directive_cleanup(&d);

    CHECK_INT(
        parse("unset queue a,b@srv max_run,acl_users", &d, msg, sizeof(msg)),
        0);
    CHECK_INT(d.nnames, 2);
    CHECK_STR(d.names[1], "b");
    CHECK_INT(d.nattrs, 2);
    CHECK_INT(d.attrs[1].op, 0);
    qmgr_directive_cleanup(&d);

    CHECK_INT(parse("list queue @default", &d, msg, sizeof(msg)), 0);
    CHECK(d.all && d.nnames == 0);
    qmgr_directive_cleanup(&d);

    CHECK_INT(parse("set server scheduling = True", &d, msg, sizeof(msg)), 0);
    CHECK_STR(d.obj, "server");
    CHECK_INT(d.nnames, 0);
    CHECK_STR(d.attrs[0].name, "scheduling");
    qmgr_directive_cleanup(&d);

    CHECK_INT(parse("   ", &d, msg, sizeof(msg)), 0);
    CHECK(d.empty);
    qmgr_directive_cleanup(&d);
}

static void
test_parse_errors(void)
{
    struct qmgr_directive d;
    char msg[256];

    CHECK_INT(parse("frob queue q", &d, msg, sizeof(msg)), 1);
    CHECK_STR(msg, "qmgr: Illegal operation: frob\n"
                   "Try 'help' if you are having trouble.\n");
    CHECK_INT(parse("e queue q", &d, msg, sizeof(msg)), 1); /* exit|export */
    CHECK_INT(parse("list", &d, msg, sizeof(msg)), 2);
    CHECK_STR(msg, "qmgr: No object type given\n");
    CHECK_INT(parse("list widget", &d, msg, sizeof(msg)), 2);
    CHECK_STR(msg, "qmgr: Illegal object type: widget.\n");
    CHECK_INT(parse("set queue q Priority =", &d, msg, sizeof(msg)), 3);
    CHECK_STR(msg, "qmgr: Syntax error\n");
    CHECK_INT(parse("set queue q Priority", &d, msg, sizeof(msg)), 3);
    CHECK_INT(parse("unset queue q Priority = 3", &d, msg, sizeof(msg)), 3);
    CHECK_INT(parse("set queue q a = 1,", &d, msg, sizeof(msg)), 3);
    CHECK_INT(parse("set queue q a = 'open", &d, msg, sizeof(msg)), 3);
    CHECK_INT(parse("create queue q acl_users += x", &d, msg, sizeof(msg)), 3);
}

static void
test_split(void)
{
    int n = 0;
    char **v = qmgr_split("create queue a; set queue a x = 'p;q'\n"
                          "# comment\nlist queue \\\na\n\n",
                          &n);

    CHECK_INT(n, 3);
    CHECK_STR(v[0], "create queue a");
    CHECK_STR(v[1], " set queue a x = 'p;q'");
    CHECK_STR(v[2], "list queue a");
    for (int i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

static json_t *
sample_queue(void)
{
    return json_loads(
        "{\"name\": \"workq\", \"queue_type\": \"Execution\", "
        "\"enabled\": true, \"started\": false, \"max_running\": 12, "
        "\"total_jobs\": 5, \"state_count\": {\"Transit\": 0, \"Queued\": 2, "
        "\"Held\": 1, \"Waiting\": 0, \"Running\": 2, \"Exiting\": 0, "
        "\"Begun\": 0}, \"attributes\": [[\"queue_type\", \"Execution\"], "
        "[\"Priority\", \"10\"], [\"max_running\", \"12\"], "
        "[\"resources_max.walltime\", \"01:00:00\"], "
        "[\"acl_users\", \"a,b\"], [\"enabled\", \"True\"], "
        "[\"started\", \"False\"], "
        "[\"max_run\", \"[o:PBS_ALL=4],[u:PBS_GENERIC=2]\"]]}",
        0, NULL);
}

static void
test_formats(void)
{
    json_t *q = sample_queue();
    struct dv_buf b;
    json_t *j;

    dv_buf_init(&b);
    queue_list_text(&b, q);
    CHECK_STR(dv_buf_str(&b),
              "Queue workq\n"
              "    queue_type = Execution\n"
              "    Priority = 10\n"
              "    total_jobs = 5\n"
              "    state_count = Transit:0 Queued:2 Held:1 Waiting:0 "
              "Running:2 Exiting:0 Begun:0 \n"
              "    max_running = 12\n"
              "    resources_max.walltime = 01:00:00\n"
              "    acl_users = a,b\n"
              "    enabled = True\n"
              "    started = False\n"
              "    max_run = [o:PBS_ALL=4],[u:PBS_GENERIC=2]\n\n");
    dv_buf_reset(&b);
    queue_print_text(&b, q);
    CHECK_STR(
        dv_buf_str(&b),
        "#\n# Create and define queue workq\n#\n"
        "create queue workq\n"
        "set queue workq queue_type = Execution\n"
        "set queue workq Priority = 10\n"
        "set queue workq max_running = 12\n"
        "set queue workq resources_max.walltime = 01:00:00\n"
        "set queue workq acl_users = a\n"
        "set queue workq acl_users += b\n"
        "set queue workq enabled = True\n"
        "set queue workq started = False\n"
        "set queue workq max_run = \"[o:PBS_ALL=4],[u:PBS_GENERIC=2]\"\n");
    dv_buf_reset(&b);
    qstat_queue_header(&b);
    qstat_queue_row(&b, q);
    CHECK_STR(dv_buf_str(&b),
              "Queue              Max   Tot Ena Str   Que   Run   Hld   Wat "
              "  Trn   Ext Type\n"
              "---------------- ----- ----- --- --- ----- ----- ----- ----- "
              "----- ----- ----\n"
              "workq               12     5 yes  no     2     2     1     0 "
              "    0     0 Exe*\n");
    dv_buf_reset(&b);
    qstat_queue_full(&b, q);
    CHECK(strncmp(dv_buf_str(&b),
                  "Queue: workq\n    queue_type = Execution\n"
                  "    Priority = 10\n    total_jobs = 5\n",
                  strlen("Queue: workq\n    queue_type = Execution\n"
                         "    Priority = 10\n    total_jobs = 5\n")) == 0);
    dv_buf_reset(&b);
    qstat_queue_dsv(&b, q, "|");
    CHECK(strncmp(dv_buf_str(&b),
                  "Queue: workq|queue_type=Execution|Priority=10|"
                  "total_jobs=5|",
                  strlen("Queue: workq|queue_type=Execution|Priority=10|"
                         "total_jobs=5|")) == 0);
    CHECK(strstr(dv_buf_str(&b), "|resources_max.walltime=01:00:00|") != NULL);
    j = qstat_queue_json(q);
    CHECK_STR(json_string_value(json_object_get(
                  json_object_get(j, "resources_max"), "walltime")),
              "01:00:00");
    CHECK(json_number_value(json_object_get(j, "Priority")) == 10);
    CHECK_STR(json_string_value(json_object_get(j, "started")), "False");
    json_decref(j);
    dv_buf_cleanup(&b);
    json_decref(q);
}

int
main(void)
{
    RUN(test_parse_forms);
    RUN(test_parse_errors);
    RUN(test_split);
    RUN(test_formats);
    return unit_done();
}
