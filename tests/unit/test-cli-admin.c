/* Unit tests of the management commands' client side: qalter's options
 * (cli/cmd-qadmin.c), pbsnodes's layouts (cli/cmd-pbsnodes.c) and qstat
 * -f's substate. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "tests/unit/unit.h"

/* Parses a NULL-terminated list of words into body; returns the result
 * and leaves the operands count in *nops. */
static int
alter(json_t *body, struct dv_buf *errs, int *nops, ...)
{
    char *argv[32];
    int argc = 0, rc;
    struct cli_getopt g;
    va_list ap;

    static char prog[] = "qalter";

    argv[argc++] = prog;
    va_start(ap, nops);
    for (char *a = va_arg(ap, char *); a != NULL && argc < 32;
         a = va_arg(ap, char *)) {
        argv[argc++] = a;
    }
    va_end(ap);
    json_object_clear(body);
    dv_buf_reset(errs);
    rc = qalter_opts_parse(argc, argv, body, errs, &g);
    *nops = g.noperands;
    cli_getopt_cleanup(&g);
    return rc;
}

static void
test_qalter_opts(void)
{
    json_t *b = json_object();
    struct dv_buf e;
    int n = 0;
    char *text;

    dv_buf_init(&e);
    CHECK_INT(alter(b, &e, &n, "-l", "ncpus=4,walltime=1:00:00", "-l",
                    "mem=2gb", "-N", "renamed", "-p", " -5", "-h", "u", "-r",
                    "n", "-j", "oe", "-W", "depend=afterok:12", "12", "13",
                    NULL),
              0);
    CHECK_INT(n, 2);
    text = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK_STR(text, "{\"depend\":\"afterok:12\",\"hold_types\":\"u\","
                    "\"join\":\"oe\",\"name\":\"renamed\",\"priority\":-5,"
                    "\"rerunnable\":false,\"resources\":{\"mem\":\"2gb\","
                    "\"ncpus\":\"4\",\"walltime\":\"1:00:00\"}}");
    free(text);
    /* -o/-e: the host part dropped, made absolute. */
    CHECK_INT(
        alter(b, &e, &n, "-o", "host:/tmp/out", "-e", "/tmp/err", "1", NULL),
        0);
    CHECK_STR(json_string_value(json_object_get(b, "stdout")), "/tmp/out");
    CHECK_STR(json_string_value(json_object_get(b, "stderr")), "/tmp/err");
    /* PBS's refusals: each prints its line, then the usage (caller). */
    CHECK_INT(alter(b, &e, &n, "-p", "5000", "1", NULL), -1);
    CHECK_STR(dv_buf_str(&e), "qalter: illegal -p value\n");
    CHECK_INT(alter(b, &e, &n, "-N", "a/b", "1", NULL), -1);
    CHECK_STR(dv_buf_str(&e), "qalter: illegal -N value\n");
    CHECK_INT(alter(b, &e, &n, "-l", "ncpus", "1", NULL), -1);
    CHECK_STR(dv_buf_str(&e), "qalter: illegal -l value\n");
    CHECK_INT(alter(b, &e, &n, "-h", "x", "1", NULL), -1);
    CHECK_STR(dv_buf_str(&e), "qalter: illegal -h value\n");
    CHECK_INT(alter(b, &e, &n, "-j", "y", "1", NULL), -1);
    CHECK_STR(dv_buf_str(&e), "qalter: illegal -j value\n");
    CHECK_INT(alter(b, &e, &n, "-A", "acct", "1", NULL), -1);
    CHECK_STR(dv_buf_str(&e), "qalter: option -A is not supported yet\n");
    CHECK_INT(alter(b, &e, &n, "-W", "umask=022", "1", NULL), -1);
    CHECK_STR(dv_buf_str(&e), "qalter: -W umask is not supported yet\n");
    CHECK_INT(alter(b, &e, &n, "-Z", "1", NULL), -1);
    CHECK_STR(dv_buf_str(&e), "qalter: invalid option -- 'Z'\n");
    /* Nothing to alter: a usage error. */
    CHECK_INT(alter(b, &e, &n, "1", NULL), -1);
    dv_buf_cleanup(&e);
    json_decref(b);
}

static json_t *
node(const char *status, int eligible, int free_cores, const char *comment)
{
    json_t *n =
        json_pack("{s:I, s:s, s:s, s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:I}",
                  "id", (json_int_t)1, "name", "node1", "status", status,
                  "eligible", eligible, "drain", 0, "total_cores",
                  (json_int_t)4, "free_cores", (json_int_t)free_cores,
                  "total_mem", (json_int_t)8589934592LL, "free_mem",
                  (json_int_t)(8589934592LL - (4 - free_cores) * 1073741824LL),
                  "total_gpus", (json_int_t)0, "free_gpus", (json_int_t)0);

    json_object_set_new(n, "comment",
                        comment != NULL ? json_string(comment) : json_null());
    return n;
}

static void
test_pbsnodes_state(void)
{
    char s[64];
    json_t *n;

    n = node("ready", 1, 4, NULL);
    pbsnodes_state(n, s, sizeof(s));
    CHECK_STR(s, "free");
    json_decref(n);
    n = node("ready", 1, 0, NULL);
    pbsnodes_state(n, s, sizeof(s));
    CHECK_STR(s, "job-busy");
    json_decref(n);
    n = node("ready", 0, 0, NULL);
    pbsnodes_state(n, s, sizeof(s));
    CHECK_STR(s, "offline");
    json_decref(n);
    n = node("down", 0, 4, NULL);
    pbsnodes_state(n, s, sizeof(s));
    CHECK_STR(s, "down,offline");
    json_decref(n);
    n = node("ready", 1, 4, NULL);
    json_object_set_new(n, "drain", json_true()); /* drained: offline too */
    pbsnodes_state(n, s, sizeof(s));
    CHECK_STR(s, "offline");
    json_decref(n);
}

static void
test_pbsnodes_formats(void)
{
    json_t *n = node("ready", 1, 2, "disk swap");
    json_t *o;
    struct dv_buf b;
    char *text;

    json_object_set_new(n, "allocations",
                        json_pack("[{s:s, s:I}, {s:s, s:I}]", "job_id",
                                  "12.srv", "cores", (json_int_t)1, "job_id",
                                  "13.srv", "cores", (json_int_t)1));
    json_object_set_new(n, "jobs", json_pack("[s, s]", "12.srv", "13.srv"));
    dv_buf_init(&b);
    pbsnodes_format_node(&b, n);
    CHECK_STR(dv_buf_str(&b), "node1\n"
                              "     Mom = node1\n"
                              "     pbs_version = " DV_VERSION "\n"
                              "     ntype = PBS\n"
                              "     state = free\n"
                              "     pcpus = 4\n"
                              "     jobs = 12.srv/0, 13.srv/1\n"
                              "     resources_available.host = node1\n"
                              "     resources_available.mem = 8388608kb\n"
                              "     resources_available.ncpus = 4\n"
                              "     resources_available.vnode = node1\n"
                              "     resources_assigned.mem = 2097152kb\n"
                              "     resources_assigned.ncpus = 2\n"
                              "     resv_enable = True\n"
                              "     sharing = default_shared\n"
                              "     comment = disk swap\n"
                              "\n");
    dv_buf_reset(&b);
    pbsnodes_format_list_line(&b, n);
    CHECK_STR(dv_buf_str(&b), "node1                free disk swap\n");
    o = pbsnodes_node_json(n);
    text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK_STR(text, "{\"Mom\":\"node1\",\"comment\":\"disk swap\","
                    "\"jobs\":[\"12.srv\",\"13.srv\"],\"ntype\":\"PBS\","
                    "\"pbs_version\":\"" DV_VERSION "\",\"pcpus\":4,"
                    "\"resources_assigned\":{\"mem\":\"2097152kb\","
                    "\"ncpus\":2},\"resources_available\":{\"host\":"
                    "\"node1\",\"mem\":\"8388608kb\",\"ncpus\":4,"
                    "\"vnode\":\"node1\"},\"resv_enable\":\"True\","
                    "\"sharing\":\"default_shared\",\"state\":\"free\"}");
    free(text);
    json_decref(o);
    json_decref(n);
    /* An idle node: no jobs, resources_assigned empty in JSON. */
    n = node("ready", 1, 4, NULL);
    o = pbsnodes_node_json(n);
    CHECK(json_object_get(o, "jobs") == NULL);
    CHECK_INT(json_object_size(json_object_get(o, "resources_assigned")), 0);
    CHECK(json_object_get(o, "comment") == NULL);
    json_decref(o);
    json_decref(n);
    dv_buf_cleanup(&b);
}

static void
test_substate(void)
{
    static char queued[] = "queued", held[] = "held", running[] = "running",
                exiting[] = "exiting", finished[] = "finished",
                term[] = "Job run at Mon Jan 04 at 10:00 on (n:ncpus=1) and "
                         "terminated";
    struct cli_job j;

    memset(&j, 0, sizeof(j));
    j.state = queued;
    CHECK_INT(qstat_job_substate(&j), 10);
    j.state = held;
    CHECK_INT(qstat_job_substate(&j), 20);
    j.state = running;
    CHECK_INT(qstat_job_substate(&j), 42);
    j.state = exiting;
    CHECK_INT(qstat_job_substate(&j), 50);
    j.state = finished;
    j.has_exit_status = 1;
    CHECK_INT(qstat_job_substate(&j), 92);
    j.exit_status = -29;
    CHECK_INT(qstat_job_substate(&j), 93);
    j.comment = term;
    CHECK_INT(qstat_job_substate(&j), 91);
}

int
main(void)
{
    RUN(test_qalter_opts);
    RUN(test_pbsnodes_state);
    RUN(test_pbsnodes_formats);
    RUN(test_substate);
    return unit_done();
}
