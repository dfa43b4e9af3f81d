/* Unit tests of cli/node-format.c: drover node's arguments, sizes, the node
 * table, one node's details and the line printed after a change. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "tests/unit/unit.h"

#define DRAIN_FLAGS (NODE_OPT_FLAGS | NODE_OPT_NODE)
#define ELIG_FLAGS (NODE_OPT_FLAGS | NODE_OPT_NODE | NODE_OPT_ONE_OF)

/* Parses a NULL-terminated list of words. */
static int
parse(int flags, struct node_opts *o, struct dv_buf *errs, ...)
{
    char *argv[16];
    int argc = 0;
    va_list ap;

    va_start(ap, errs);
    for (char *a = va_arg(ap, char *); a != NULL && argc < 16;
         a = va_arg(ap, char *)) {
        argv[argc++] = a;
    }
    va_end(ap);
    dv_buf_reset(errs);
    return node_opts_parse("drover node x", argc, argv, flags, o, errs);
}

static void
test_opts(void)
{
    struct node_opts o;
    struct dv_buf e;

    dv_buf_init(&e);
    CHECK_INT(parse(DRAIN_FLAGS, &o, &e, "node1", NULL), 0);
    CHECK_STR(o.node, "node1");
    CHECK_INT(o.enable + o.disable + o.has_comment, 0);
    CHECK_INT(parse(DRAIN_FLAGS, &o, &e, "-disable", "node1", "-comment",
                    "back in service", NULL),
              0);
    CHECK_STR(o.node, "node1");
    CHECK_INT(o.disable, 1);
    CHECK_INT(o.has_comment, 1);
    CHECK_STR(o.comment, "back in service");
    CHECK_INT(
        parse(DRAIN_FLAGS, &o, &e, "--comment=a=b", "7", "--enable", NULL), 0);
    CHECK_STR(o.comment, "a=b");
    CHECK_STR(o.node, "7");
    CHECK_INT(o.enable, 1);
    /* an empty comment is given (it clears the node's) */
    CHECK_INT(parse(DRAIN_FLAGS, &o, &e, "n", "-comment", "", NULL), 0);
    CHECK_INT(o.has_comment, 1);
    CHECK_STR(o.comment, "");
    /* a comment may start with a dash; "--" ends options */
    CHECK_INT(parse(DRAIN_FLAGS, &o, &e, "-comment", "-x-", "--", "-n", NULL),
              0);
    CHECK_STR(o.comment, "-x-");
    CHECK_STR(o.node, "-n");
    CHECK_INT(parse(ELIG_FLAGS, &o, &e, "node2", "-enable", NULL), 0);
    CHECK_INT(o.enable, 1);
    CHECK_INT(parse(0, &o, &e, NULL), 0);
    CHECK(o.node == NULL);
    CHECK_INT(parse(0, &o, &e, "node1", NULL), 0);
    CHECK_STR(o.node, "node1");
    dv_buf_cleanup(&e);
}

static void
test_opts_bad(void)
{
    struct node_opts o;
    struct dv_buf e;

    dv_buf_init(&e);
    CHECK_INT(parse(DRAIN_FLAGS, &o, &e, NULL), -1);
    CHECK_STR(dv_buf_str(&e),
              "drover node x: a node (name or id) is required\n");
    CHECK_INT(parse(DRAIN_FLAGS, &o, &e, "a", "b", NULL), -1);
    CHECK_STR(dv_buf_str(&e),
              "drover node x: only one node may be given (\"a\" and \"b\")\n");
    CHECK_INT(parse(DRAIN_FLAGS, &o, &e, "a", "-force", NULL), -1);
    CHECK_STR(dv_buf_str(&e), "drover node x: unknown option \"-force\"\n");
    CHECK_INT(parse(DRAIN_FLAGS, &o, &e, "a", "-comment", NULL), -1);
    CHECK_STR(dv_buf_str(&e),
              "drover node x: option -comment needs an argument\n");
    CHECK_INT(parse(DRAIN_FLAGS, &o, &e, "a", "-disable=yes", NULL), -1);
    CHECK_STR(dv_buf_str(&e), "drover node x: option -disable takes no "
                              "value\n");
    CHECK_INT(parse(ELIG_FLAGS, &o, &e, "a", "-enable", "-disable", NULL), -1);
    CHECK_STR(dv_buf_str(&e), "drover node x: -enable and -disable cannot be "
                              "used together\n");
    CHECK_INT(parse(ELIG_FLAGS, &o, &e, "a", NULL), -1);
    CHECK_STR(dv_buf_str(&e), "drover node x: one of -enable and -disable is "
                              "required\n");
    /* status takes no options */
    CHECK_INT(parse(0, &o, &e, "-disable", NULL), -1);
    CHECK_STR(dv_buf_str(&e), "drover node x: unknown option \"-disable\"\n");
    dv_buf_cleanup(&e);
}

static void
test_bytes(void)
{
    static const struct {
        int64_t n;
        const char *text;
    } cases[] = {
        {0, "0b"},
        {-5, "0b"},
        {512, "512b"},
        {1023, "1023b"},
        {1024, "1kb"},
        {1536, "1.5kb"},
        {1610612736, "1.5gb"},
        {8589934592LL, "8gb"},
        {7516192768LL, "7gb"},
        {1073741823, "1gb"},
        {1099511627776LL, "1tb"},
        {1181116006LL, "1.1gb"},
    };
    char buf[32];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        node_fmt_bytes(cases[i].n, buf, sizeof(buf));
        CHECK_STR(buf, cases[i].text);
    }
}

static json_t *
load(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);

    CHECK(j != NULL);
    return j;
}

static void
test_table(void)
{
    json_t *nodes =
        load("[{\"id\": 1, \"name\": \"node1\", \"status\": \"ready\", "
             "\"eligible\": true, \"drain\": true, \"total_cores\": 4, "
             "\"free_cores\": 2, \"total_mem\": 8589934592, \"free_mem\": "
             "6442450944, \"total_gpus\": 2, \"free_gpus\": 1, "
             "\"allocation_count\": 3},"
             "{\"id\": 12, \"name\": \"compute-long-7\", \"status\": \"down\", "
             "\"eligible\": false, \"drain\": false, \"total_cores\": 64, "
             "\"free_cores\": 64, \"total_mem\": 274877906944, \"free_mem\": "
             "274877906944, \"total_gpus\": 0, \"free_gpus\": 0, "
             "\"allocation_count\": 0}]");
    struct dv_buf out;

    dv_buf_init(&out);
    node_format_table(&out, nodes);
    CHECK_STR(dv_buf_str(&out),
              "Name           ID     Status Eligible Drain Cores     Memory  "
              "          GPUs    Allocs\n"
              "node1          1      ready  yes      yes   2/4       6gb/8gb "
              "          1/2     3\n"
              "compute-long-7 12     down   no       no    64/64     "
              "256gb/256gb       0/0     0\n");
    json_decref(nodes);
    dv_buf_cleanup(&out);
}

static void
test_details(void)
{
    json_t *node = load(
        "{\"id\": 1, \"name\": \"node1\", \"status\": \"ready\", "
        "\"eligible\": true, \"drain\": true, \"comment\": \"disk swap\", "
        "\"datacenter\": \"dc1\", \"pool\": \"default\", \"address\": null, "
        "\"total_cores\": 4, \"free_cores\": 2, \"free_cpuset\": \"2-3\", "
        "\"total_mem\": 8589934592, \"free_mem\": 7516192768, "
        "\"total_gpus\": 0, \"free_gpus\": 0, \"heartbeat_deadline\": 0, "
        "\"allocations\": [{\"id\": 81, \"job_id\": \"12.srv\", \"cores\": 2, "
        "\"memory\": 1073741824, \"gpus\": 0, \"state\": \"running\", "
        "\"desired_status\": \"run\"}]}");
    struct dv_buf out;

    setenv("TZ", "UTC", 1);
    tzset();
    dv_buf_init(&out);
    node_format_details(&out, node);
    CHECK_STR(dv_buf_str(&out),
              "Name:        node1\n"
              "ID:          1\n"
              "Status:      ready\n"
              "Eligible:    yes\n"
              "Drain:       yes\n"
              "Comment:     disk swap\n"
              "Datacenter:  dc1\n"
              "Pool:        default\n"
              "Address:     -\n"
              "Cores:       2/4 free (free cores: 2-3)\n"
              "Memory:      7gb/8gb free\n"
              "GPUs:        0/0 free\n"
              "Heartbeat:   due by 1970-01-01 00:00:00\n"
              "\n"
              "Allocations\n"
              "ID         Job                  Cores  Memory    GPUs  Desired  "
              "Status\n"
              "81         12.srv               2      1gb       0     run      "
              "running\n");
    json_object_set_new(node, "allocations", json_array());
    json_object_set_new(node, "free_cpuset", json_string(""));
    dv_buf_reset(&out);
    node_format_details(&out, node);
    CHECK(strstr(dv_buf_str(&out), "(free cores: none)") != NULL);
    CHECK(strstr(dv_buf_str(&out), "Status\n(none)\n") != NULL);
    json_decref(node);
    dv_buf_cleanup(&out);
}

static void
test_change(void)
{
    json_t *n = load("{\"name\": \"node1\", \"eligible\": true, \"drain\": "
                     "true, \"allocation_count\": 2}");
    struct dv_buf out;

    dv_buf_init(&out);
    node_format_change(&out, n, 1);
    CHECK_STR(dv_buf_str(&out), "Node \"node1\" drained: no new work is "
                                "placed on it (2 allocations still running)\n");
    dv_buf_reset(&out);
    node_format_change(&out, n, 0);
    CHECK_STR(dv_buf_str(&out), "Node \"node1\" eligible\n");
    json_object_set_new(n, "drain", json_false());
    json_object_set_new(n, "eligible", json_false());
    json_object_set_new(n, "allocation_count", json_integer(1));
    dv_buf_reset(&out);
    node_format_change(&out, n, 1);
    CHECK_STR(dv_buf_str(&out), "Node \"node1\" undrained\n");
    dv_buf_reset(&out);
    node_format_change(&out, n, 0);
    CHECK_STR(dv_buf_str(&out), "Node \"node1\" ineligible: no new work is "
                                "placed on it (1 allocation still running)\n");
    json_decref(n);
    dv_buf_cleanup(&out);
}

int
main(void)
{
    RUN(test_opts);
    RUN(test_opts_bad);
    RUN(test_bytes);
    RUN(test_table);
    RUN(test_details);
    RUN(test_change);
    return unit_done();
}
